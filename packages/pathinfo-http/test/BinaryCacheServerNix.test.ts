/**
 * The server against Debian's real Nix (2.8): `nix copy --from
 * http://127.0.0.1:PORT` into a chroot store, and `nix copy --to` it with
 * uploads on. Skipped, saying so, when `nix` is not installed.
 */
import { assert, describe, it } from "@effect/vitest"
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as NarInfo from "@nixfx/nix-compat/NarInfo"
import * as Nixbase32 from "@nixfx/nix-compat/Nixbase32"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import type * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as BinaryCacheServer from "../src/BinaryCacheServer.js"
import { serveCache } from "./support/cacheServer.js"
import { cacheDir, digestOf, manifest, type ManifestPath, publicKey } from "./support/fixtures.js"
import { memoryStore, open, some } from "./support/helpers.js"

const nixVersion = (() => {
  try {
    return childProcess.execFileSync("nix", ["--version"], { encoding: "utf8" }).trim()
  } catch {
    return undefined
  }
})()

if (nixVersion === undefined) {
  console.warn("BinaryCacheServerNix.test.ts: `nix` is not on PATH — SKIPPING the tests against real Nix")
}

const nixEnv = {
  ...process.env,
  NIX_CONFIG: ["experimental-features = nix-command", "sandbox = false", "build-users-group =", "substituters ="].join("\n")
}

/** Options every Nix call gets: no narinfo disk cache for our ephemeral ports. */
const noCache = ["--option", "narinfo-cache-positive-ttl", "0", "--option", "narinfo-cache-negative-ttl", "0"]

interface NixResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const nix = (args: ReadonlyArray<string>): Effect.Effect<NixResult> =>
  Effect.async<NixResult>((resume) => {
    const child = childProcess.execFile("nix", [...args], { env: nixEnv, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : (typeof error.code === "number" ? error.code : 1), stdout, stderr })))
    return Effect.sync(() => child.kill())
  })

const nixOk = (args: ReadonlyArray<string>) =>
  Effect.flatMap(nix(args), (r) =>
    r.code === 0 ? Effect.succeed(r) : Effect.dieMessage(`nix ${args.join(" ")} failed (${r.code}):\n${r.stderr}`))

const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), prefix))),
    (dir) =>
      Effect.sync(() => {
        // a chroot store's files are read-only
        childProcess.execFileSync("chmod", ["-R", "u+w", dir])
        fs.rmSync(dir, { recursive: true, force: true })
      })
  )

const allPaths: ReadonlyArray<ManifestPath> = manifest.caches.br.paths
const isDrv = (p: ManifestPath) => p.storePath.endsWith(".drv")

/**
 * Copies every fixture path from `from` into `to`. `nix copy` takes a `.drv`
 * argument as its outputs, so the derivations go in a second call with
 * `--derivation`.
 */
const copyAll = (from: string, to: string, trusted: ReadonlyArray<string>, extra: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const common = ["copy", "--from", from, "--to", to, ...noCache, "--option", "trusted-public-keys", trusted.join(" "), ...extra]
    yield* nixOk([...common, ...allPaths.filter((p) => !isDrv(p)).map((p) => p.storePath)])
    yield* nixOk([...common, "--derivation", ...allPaths.filter(isDrv).map((p) => p.storePath)])
  })

interface NixPathInfo {
  readonly path: string
  readonly narHash: string
  readonly narSize: number
  readonly references: ReadonlyArray<string>
  readonly signatures?: ReadonlyArray<string>
  readonly ca?: string
}

/** What Nix recorded in the chroot store: every fixture path with the manifest's hash, size and references. */
const expectCopied = (root: string, trusted: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const store = `local?root=${root}`
    const listed = JSON.parse((yield* nixOk(["path-info", "--store", store, "--json", "--all"])).stdout) as Array<NixPathInfo>
    const byPath = new Map(listed.map((p) => [p.path, p]))
    assert.strictEqual(listed.length, allPaths.length)
    for (const p of allPaths) {
      const got = byPath.get(p.storePath)
      if (got === undefined) return assert.fail(`Nix's store lacks ${p.storePath}`)
      assert.strictEqual(got.narHash, p.narHashSRI, `${p.name}: narHash`)
      assert.strictEqual(got.narSize, p.narSize, `${p.name}: narSize`)
      assert.deepStrictEqual(
        [...got.references].map((r) => path.basename(r)).sort(),
        [...p.references].sort(),
        `${p.name}: references`
      )
      assert.isTrue(fs.lstatSync(path.join(root, p.storePath), { throwIfNoEntry: false }) !== undefined, `${p.name} is on disk`)
    }
    // every path's contents against its NarHash, and its signatures against the trusted keys
    yield* nixOk(["store", "verify", "--store", store, "--all", "--option", "trusted-public-keys", trusted.join(" ")])
    return byPath
  })

/** Every fixture path fetched through the BinaryCache client from a local server of the `br` cache. */
const filledStore = Effect.gen(function*() {
  const cache = yield* serveCache([cacheDir("br")])
  const store = yield* memoryStore
  const client = yield* open(cache, store, { trustedPublicKeys: [publicKey("test-cache-1")] })
  for (const p of allPaths) some(yield* client.fetch(digestOf(p)), p.name)
  return store
})

const serveStore = (store: StoreComposition.Store, options: Partial<BinaryCacheServer.Options> = {}) =>
  BinaryCacheServer.serve({ port: 0, accessLog: false, ...options }).pipe(
    Effect.provideService(PathInfoService.PathInfoService, store.pathInfoService),
    Effect.provideService(BlobService.BlobService, store.blobService),
    Effect.provideService(DirectoryService.DirectoryService, store.directoryService)
  )

const key1 = manifest.keys["test-cache-1"].public

describe.skipIf(nixVersion === undefined)(`BinaryCacheServer with real Nix (${nixVersion ?? "nix missing"})`, () => {
  it.live("nix copy --from the server: every fixture path and closure arrives; Nix accepts signatures and hashes", () =>
    Effect.scoped(Effect.gen(function*() {
      const store = yield* filledStore
      const server = yield* serveStore(store)
      const root = yield* tempDir("nixfx-serve-copy-")
      yield* copyAll(server.url, `local?root=${root}`, [key1])
      const copied = yield* expectCopied(root, [key1])
      // the signatures Nix stored are the fixture's (test-cache-1), verified by Nix on the way in
      for (const p of allPaths) {
        const sigs = copied.get(p.storePath)?.signatures ?? []
        for (const s of p.signatures) assert.include(sigs, s, p.name)
      }
      // a closure: copying only the top pulls in everything below it
      const closureRoot = yield* tempDir("nixfx-serve-closure-")
      const app = allPaths.find((p) => p.name === "fx-app-1.0")!
      yield* nixOk(["copy", "--from", server.url, "--to", `local?root=${closureRoot}`, ...noCache, "--option", "trusted-public-keys", key1, app.storePath])
      const closure = JSON.parse(
        (yield* nixOk(["path-info", "--store", `local?root=${closureRoot}`, "--json", "--all"])).stdout
      ) as Array<NixPathInfo>
      assert.deepStrictEqual(
        closure.map((p) => path.basename(p.path).slice(33)).sort(),
        ["fx-app-1.0", "fx-base-1.0", "fx-lib-1.0"]
      )
    })), 180_000)

  it.live("a NAR download cut half-way: Nix resumes it with a Range request, which the server answers from the offset", () =>
    Effect.scoped(Effect.gen(function*() {
      const store = yield* filledStore
      // the first NAR response fails after 150 files: the server cuts the connection
      let reads = 0
      let failed = false
      const blobs: BlobService.Service = {
        ...store.blobService,
        read: (digest, range) => {
          if (!failed && ++reads > 150) {
            failed = true
            return Effect.succeedNone
          }
          return store.blobService.read(digest, range)
        }
      }
      const entries: Array<BinaryCacheServer.AccessLogEntry> = []
      const server = yield* serveStore({ ...store, blobService: blobs }, { accessLog: (e) => entries.push(e) }).pipe(
        Logger.withMinimumLogLevel(LogLevel.None)
      )
      const large = allPaths.find((p) => p.name === "fx-large")!
      const root = yield* tempDir("nixfx-serve-resume-")
      const copied = yield* nixOk([
        "copy",
        "--from",
        server.url,
        "--to",
        `local?root=${root}`,
        ...noCache,
        "--option",
        "trusted-public-keys",
        key1,
        large.storePath
      ])
      assert.isTrue(failed, "the first transfer was cut")
      assert.include(copied.stderr, "retrying from offset")
      const nars = entries.filter((e) => e.target.startsWith("/nar/"))
      assert.deepStrictEqual(nars.map((e) => [e.status, e.outcome]), [[200, "failed"], [206, "complete"]])
      assert.strictEqual(nars[0].bytes + nars[1].bytes, large.narSize, "the resumed request sent exactly the rest")
      const info = JSON.parse((yield* nixOk(["path-info", "--store", `local?root=${root}`, "--json", large.storePath])).stdout)
      assert.strictEqual(info[0].narHash, large.narHashSRI)
      yield* nixOk(["store", "verify", "--store", `local?root=${root}`, "--all", "--option", "trusted-public-keys", key1])
    })), 180_000)

  it.live("a signing key on a store without signatures: Nix trusts the server's key, and only it", () =>
    Effect.scoped(Effect.gen(function*() {
      const filled = yield* filledStore
      // the same castore data, PathInfos without a single signature
      const unsigned = yield* PathInfoService.makeMemory
      const infos = Chunk.toReadonlyArray(yield* Stream.runCollect(filled.pathInfoService.list))
      assert.strictEqual(infos.length, allPaths.length)
      // (a memory store takes them in any order: only references it holds are checked)
      for (const p of infos) yield* unsigned.put(new PathInfo.PathInfo({ ...p, signatures: [] }))
      const key = Either.getOrThrow(Keys.generateSecretKey("nixfx-serve-nix-test"))
      const keyText = Keys.formatPublicKey(key.public)
      const server = yield* serveStore({ ...filled, pathInfoService: unsigned }, { signingKey: key })
      // every narinfo carries exactly our signature
      for (const p of allPaths) {
        const text = yield* Effect.promise(() => fetch(`${server.url}/${p.hashPart}.narinfo`).then((r) => r.text()))
        const ni = Either.getOrThrow(NarInfo.parse(text))
        assert.deepStrictEqual(ni.signatures.map((s) => s.keyName), ["nixfx-serve-nix-test"], p.name)
      }
      const root = yield* tempDir("nixfx-serve-signed-")
      yield* copyAll(server.url, `local?root=${root}`, [keyText])
      const copied = yield* expectCopied(root, [keyText])
      for (const p of allPaths) {
        if (p.ca !== null) continue // content-addressed paths need no signature
        const sigs = copied.get(p.storePath)?.signatures ?? []
        assert.isTrue(sigs.some((s) => s.startsWith("nixfx-serve-nix-test:")), `${p.name} carries the server's signature`)
      }
      // Nix trusting only another key refuses an input-addressed path
      const refusedRoot = yield* tempDir("nixfx-serve-refused-")
      const lib = allPaths.find((p) => p.name === "fx-lib-1.0")!
      const refused = yield* nix([
        "copy",
        "--from",
        server.url,
        "--to",
        `local?root=${refusedRoot}`,
        ...noCache,
        "--option",
        "trusted-public-keys",
        key1,
        lib.storePath
      ])
      assert.notStrictEqual(refused.code, 0)
      assert.include(refused.stderr, "lacks a valid signature")
    })), 180_000)

  it.live("nix copy --to the server with uploads on (token from a netrc file), then back out of it", () =>
    Effect.scoped(Effect.gen(function*() {
      const store = yield* memoryStore
      const token = "nix-upload-token-" + Math.random().toString(36).slice(2)
      const server = yield* serveStore(store, { upload: { token: Redacted.make(token) } })
      const dir = yield* tempDir("nixfx-serve-upload-")
      const netrc = path.join(dir, "netrc")
      fs.writeFileSync(netrc, `machine 127.0.0.1 login nix password ${token}\n`)
      // without credentials Nix's upload is refused
      const denied = yield* nix([
        "copy",
        "--from",
        `file://${cacheDir("xz")}`,
        "--to",
        server.url,
        ...noCache,
        allPaths.find((p) => p.name === "fx-regular-file")!.storePath
      ])
      assert.notStrictEqual(denied.code, 0)
      assert.include(denied.stderr, "401")
      yield* copyAll(`file://${cacheDir("xz")}`, `${server.url}?compression=xz`, [key1], ["--option", "netrc-file", netrc])
      // the store holds every path, as the fixture says, with the fixture's signatures
      for (const p of allPaths) {
        const info = some(yield* store.pathInfoService.get(digestOf(p)), `uploaded ${p.name}`)
        assert.strictEqual("sha256:" + Nixbase32.encode(info.narSha256), p.narHash, p.name)
        assert.strictEqual(info.narSize, p.narSize)
        assert.deepStrictEqual(info.signatures.map(Keys.formatSignature), [...p.signatures])
      }
      // and serves them back to Nix
      const root = path.join(dir, "root")
      yield* copyAll(server.url, `local?root=${root}`, [key1])
      yield* expectCopied(root, [key1])
    })), 180_000)
})
