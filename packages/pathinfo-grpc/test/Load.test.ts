/**
 * The gRPC server under load: 64 clients on loopback for a bounded time
 * against a server (in a child process, so its memory is its own) over a
 * SQLite + filesystem store holding every fixture path. Every answer is
 * checked; the server's memory must not keep growing; the call bound holds;
 * and stopping the server (SIGTERM) while 64 clients put PathInfos loses
 * no put it acknowledged.
 */
import { assert, describe, it } from "@effect/vitest"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Directory from "@nixfx/castore-nodes/Directory"
import * as Node from "@nixfx/castore-nodes/Node"
import type * as PathComponent from "@nixfx/castore-nodes/PathComponent"
import * as Nixbase32 from "@nixfx/nix-compat/Nixbase32"
import * as GrpcClient from "@nixfx/pathinfo-grpc/GrpcClient"
import { Status } from "@nixfx/pathinfo-grpc/GrpcError"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import {
  fillStore,
  fixtureNars,
  formatReport,
  formatStop,
  loadProblems,
  missingFromStore,
  type Operation,
  runLoad,
  spawnServerChild,
  stopMidWrites
} from "@nixfx/pathinfo/loadTesting"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import { defaultFixturesDir, loadFixturePathInfos, makeTestPathInfo, randomNode } from "@nixfx/pathinfo/testing"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const packageDir = fileURLToPath(new URL("..", import.meta.url))
const serverScript = fileURLToPath(new URL("./support/load-server.ts", import.meta.url))

const CLIENTS = 64
const LOAD_MS = 10_000
/** Below the number of clients, so that the bound is exceeded on purpose. */
const MAX_CONCURRENT_CALLS = 8
const MB = 1024 * 1024

// ---------------------------------------------------------------------------
// expected values, independent of the server: fixtures and the castore
// directories the fixture generator recorded
// ---------------------------------------------------------------------------

const fixtures = loadFixturePathInfos()
const nars = fixtureNars(defaultFixturesDir)

interface FixtureDirectories {
  readonly [narHash: string]: {
    readonly root: { readonly type: string; readonly digest: string }
    readonly directories: ReadonlyArray<{ readonly digest: string; readonly message: string }>
  }
}

const recorded = JSON.parse(
  fs.readFileSync(path.join(defaultFixturesDir, "castore-directories.json"), "utf8")
) as FixtureDirectories

/** The recorded castore trees of the NARs in the store (the file also has franken-b's, which is not). */
const stored = fixtures.map((p) => recorded[`sha256:${Nixbase32.encode(p.narSha256)}`]).filter((c) => c !== undefined)

/** Directory closures: root digest and every digest in it (root first). */
const closures = stored.map((c) => ({
  root: Either.getOrThrow(B3Digest.fromHex(c.root.digest)),
  digests: c.directories.map((d) => d.digest)
}))

/** Every blob the fixtures hold, with its size. */
const blobs: ReadonlyArray<{ readonly digest: B3Digest.B3Digest; readonly size: number }> = (() => {
  const found = new Map<string, { digest: B3Digest.B3Digest; size: number }>()
  const add = (node: Node.Node) => {
    if (node._tag === "File") found.set(B3Digest.toHex(node.digest), { digest: node.digest, size: node.size })
  }
  for (const p of fixtures) add(p.node)
  for (const c of stored) {
    for (const d of c.directories) {
      for (const e of Either.getOrThrow(Directory.decode(Buffer.from(d.message, "base64"))).entries) add(e.node)
    }
  }
  return Array.from(found.values())
})()

const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(Math.random() * xs.length)]

const check = (ok: boolean, what: string): Effect.Effect<void, Error> =>
  ok ? Effect.void : Effect.fail(new Error(what))

const freshStoreDir = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `nixfx-grpc-${name}-`))

/** The store at `dir` filled with every fixture path (then closed, for the server to open). */
const filledStore = (dir: string) =>
  Effect.scoped(Effect.flatMap(StoreComposition.build(`sqlite://${dir}`), (store) => fillStore(store, fixtures, nars)))

/** A client with its own connection: grpc-js shares one between channels with equal arguments. */
const client = (url: string, index: number, options: GrpcClient.Options = {}) =>
  GrpcClient.make(url, { retry: false, maxMessageBytes: 4 * MB + index, ...options })

// ---------------------------------------------------------------------------
// the mix
// ---------------------------------------------------------------------------

interface LoadClient {
  readonly store: GrpcClient.GrpcStore
  /** PathInfos this client put (the latest few), read back later. */
  readonly own: Array<PathInfo.PathInfo>
}

const name = (s: string) => s as PathComponent.PathComponent

const operations: ReadonlyArray<Operation<LoadClient>> = [
  {
    name: "PathInfo Get (hit)",
    weight: 25,
    run: ({ own, store }) =>
      Effect.gen(function*() {
        const expected = own.length > 0 && Math.random() < 0.3 ? pick(own) : pick(fixtures)
        const found = yield* store.pathInfoService.get(expected.storePath.digest)
        yield* check(Option.isSome(found), `${expected.basename} not found`)
        yield* check(PathInfo.equals(Option.getOrThrow(found), expected), `${expected.basename}: another PathInfo came back`)
        return "ok" as const
      })
  },
  {
    name: "PathInfo Get (miss)",
    weight: 5,
    run: ({ store }) =>
      Effect.gen(function*() {
        const found = yield* store.pathInfoService.get(crypto.randomBytes(20))
        yield* check(Option.isNone(found), "a random store path was found")
        return "ok" as const
      })
  },
  {
    name: "PathInfo Put",
    weight: 12,
    run: ({ own, store }) =>
      Effect.gen(function*() {
        const dep = pick(fixtures)
        const p = makeTestPathInfo({
          name: "load",
          references: [{ storePath: dep.storePath, node: Option.some(dep.node) }]
        })
        const stored = yield* store.pathInfoService.put(p)
        yield* check(PathInfo.equals(stored, p), `${p.basename}: put answered another PathInfo`)
        own.push(p)
        if (own.length > 100) own.shift()
        return "ok" as const
      })
  },
  {
    name: "PathInfo List (stream)",
    weight: 1,
    run: ({ store }) =>
      Effect.gen(function*() {
        const listed = new Map<string, PathInfo.PathInfo>()
        yield* Stream.runForEach(store.pathInfoService.list, (p) => Effect.sync(() => listed.set(p.basename, p)))
        for (const f of fixtures) {
          const l = listed.get(f.basename)
          yield* check(l !== undefined && PathInfo.equals(l, f), `${f.basename} missing or different in List`)
        }
        return "ok" as const
      })
  },
  {
    name: "Directory Get (recursive)",
    weight: 10,
    run: ({ store }) =>
      Effect.gen(function*() {
        const c = pick(closures)
        const got = Chunk.toReadonlyArray(yield* Stream.runCollect(store.directoryService.getRecursive(c.root)))
        const digests = got.map((d) => B3Digest.toHex(d.digest))
        yield* check(
          digests[0] === c.digests[0] && digests.length === c.digests.length &&
            [...digests].sort().join() === [...c.digests].sort().join(),
          `closure of ${c.digests[0]}: got ${digests.join(",")}`
        )
        return "ok" as const
      })
  },
  {
    name: "Directory Put (closure)",
    weight: 7,
    run: ({ store }) =>
      Effect.gen(function*() {
        const leaf = Either.getOrThrow(Directory.make([
          { name: name("file"), node: randomNode("file") },
          { name: name("link"), node: randomNode("symlink") }
        ]))
        const root = Either.getOrThrow(Directory.make([
          { name: name("bin"), node: randomNode("executable") },
          { name: name("sub"), node: new Node.DirectoryNode({ digest: leaf.digest, size: leaf.size }) }
        ]))
        const digest = yield* Effect.scoped(Effect.gen(function*() {
          const putter = yield* store.directoryService.putter
          yield* putter.put(leaf)
          yield* putter.put(root)
          return yield* putter.close
        }))
        yield* check(B3Digest.equals(digest, root.digest), "the put closure's root digest differs")
        const back = yield* store.directoryService.get(root.digest)
        yield* check(Option.isSome(back) && B3Digest.equals(back.value.digest, root.digest), "the put directory is not there")
        return "ok" as const
      })
  },
  {
    name: "Blob Read (stream)",
    weight: 22,
    run: ({ store }) =>
      Effect.gen(function*() {
        const b = pick(blobs)
        const stream = yield* store.blobService.read(b.digest)
        yield* check(Option.isSome(stream), `blob ${B3Digest.toHex(b.digest)} not found`)
        const hasher = B3Digest.hasher()
        let size = 0
        yield* Stream.runForEach(Option.getOrThrow(stream), (chunk) =>
          Effect.sync(() => {
            hasher.update(chunk)
            size += chunk.length
          }))
        yield* check(size === b.size, `blob ${B3Digest.toHex(b.digest)}: ${size} bytes, expected ${b.size}`)
        yield* check(B3Digest.equals(hasher.digest(), b.digest), `blob ${B3Digest.toHex(b.digest)}: other bytes`)
        return "ok" as const
      })
  },
  {
    name: "Blob Put",
    weight: 8,
    run: ({ store }) =>
      Effect.gen(function*() {
        const bytes = new Uint8Array(crypto.randomBytes(1 + crypto.randomInt(Math.random() < 0.1 ? MB : 64 * 1024)))
        const info = yield* Effect.scoped(Effect.gen(function*() {
          const writer = yield* store.blobService.writer
          for (let i = 0; i < bytes.length; i += 64 * 1024) yield* writer.write(bytes.subarray(i, i + 64 * 1024))
          return yield* writer.close
        }))
        yield* check(B3Digest.equals(info.digest, B3Digest.hash(bytes)), "the put blob's digest differs")
        yield* check(info.size === bytes.length, "the put blob's size differs")
        return "ok" as const
      })
  }
]

describe("GrpcServer under load", () => {
  it.live(`${CLIENTS} clients for ${LOAD_MS / 1000} s: every answer right, memory flat, the call bound held`, () =>
    Effect.gen(function*() {
      const dir = freshStoreDir("load")
      yield* filledStore(dir)
      const server = yield* spawnServerChild({
        packageDir,
        script: serverScript,
        args: [dir, String(MAX_CONCURRENT_CALLS)]
      })
      const report = yield* runLoad({
        clients: CLIENTS,
        durationMs: LOAD_MS,
        makeClient: (i) => Effect.map(client(server.url, i), (store): LoadClient => ({ store, own: [] })),
        operations,
        sample: server.sample
      })
      console.log(formatReport(`gRPC server (SQLite + filesystem store, maxConcurrentCalls ${MAX_CONCURRENT_CALLS})`, report))
      const last = report.samples[report.samples.length - 1]
      console.log(`  most handlers running at once: ${last.maxActiveCalls}`)

      assert.deepStrictEqual(loadProblems(report, { maxGrowthBytes: 50 * MB }), [])
      assert.strictEqual(report.busy, 0, "gRPC calls over the bound wait; none is refused")
      assert.isAtMost(last.maxActiveCalls, MAX_CONCURRENT_CALLS, "no more handlers than maxConcurrentCalls ran at once")

      const exit = yield* server.stop
      assert.strictEqual(exit.code, 0, exit.stderr)
      fs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.scoped), 180_000)

  it.live(`SIGTERM while ${CLIENTS} clients put PathInfos: every acknowledged put is stored, the rest fail UNAVAILABLE`, () =>
    Effect.gen(function*() {
      const dir = freshStoreDir("shutdown")
      yield* filledStore(dir)
      const server = yield* spawnServerChild({ packageDir, script: serverScript, args: [dir, "256"] })
      const stop = yield* stopMidWrites({
        server,
        clients: CLIENTS,
        makeWriter: (index) =>
          Effect.map(client(server.url, index), (store) =>
            Effect.suspend(() => {
              const p = makeTestPathInfo({ name: `shutdown-${index}` })
              return Effect.as(store.pathInfoService.put(p), p)
            })),
        classify: (e) =>
          e._tag === "StorageError" && (e.cause as { code?: number } | undefined)?.code === Status.UNAVAILABLE
            ? "UNAVAILABLE"
            : `${e._tag}: ${e.message}`
      })

      const missing = yield* missingFromStore(`sqlite://${dir}`, stop.acknowledged)
      console.log(formatStop("gRPC graceful shutdown (PathInfo Put)", stop, missing.length))
      assert.strictEqual(stop.exit.code, 0, stop.exit.stderr)
      assert.deepStrictEqual(missing, [], "every acknowledged put is in the store")
      assert.deepStrictEqual(
        Array.from(stop.refusals),
        [["UNAVAILABLE", CLIENTS]],
        "every client's last call was refused UNAVAILABLE by the stopping server"
      )
      fs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.scoped), 180_000)
})
