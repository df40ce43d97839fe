import { assert, describe, it, layer } from "@effect/vitest"
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as FilesystemBlobService from "@nixfx/castore/FilesystemBlobService"
import * as NarImport from "@nixfx/castore/NarImport"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Node from "@nixfx/castore-nodes/Node"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as Nar from "@nixfx/nix-compat/Nar"
import * as NarInfo from "@nixfx/nix-compat/NarInfo"
import * as Nixbase32 from "@nixfx/nix-compat/Nixbase32"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import { loadFixturePathInfos, makeTestPathInfo, randomStorePath } from "@nixfx/pathinfo/testing"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import * as zlib from "node:zlib"
import * as BinaryCacheServer from "../src/BinaryCacheServer.js"
import * as Decompression from "../src/Decompression.js"
import { type Directories, loadDirectories, narSize as layoutSize, renderRange } from "../src/internal/serverNar.js"
import { fixturesDir, manifest, type ManifestPath, publicKey, readFixture } from "./support/fixtures.js"

// ---------------------------------------------------------------------------
// fixtures: the real NARs, a memory store holding every fixture path
// ---------------------------------------------------------------------------

interface Store {
  readonly pathInfos: PathInfoService.PathInfoServiceShape
  readonly blobs: BlobService.Service
  readonly directories: DirectoryService.Service
}

const infos = loadFixturePathInfos(fixturesDir)

/** Every fixture path's manifest entry, from the `br` cache (the one with all 27). */
const manifestPaths: ReadonlyArray<ManifestPath> = manifest.caches.br.paths

/** The real NAR bytes Nix wrote for a fixture path. */
const narOf = (name: string): Uint8Array => {
  const plain = manifest.caches.none.paths.find((p) => p.name === name)
  if (plain !== undefined) return readFixture(`caches/none/${plain.url}`)
  const br = manifest.caches.br.paths.find((p) => p.name === name)
  if (br === undefined) throw new Error(`no fixture NAR for ${name}`)
  return zlib.brotliDecompressSync(readFixture(`caches/br/${br.url}`))
}

const nars = new Map(infos.map((p) => [p.basename, narOf(p.storePath.name)]))

const memoryStore: Effect.Effect<Store> = Effect.all({
  pathInfos: PathInfoService.makeMemory,
  blobs: BlobService.makeMemory,
  directories: DirectoryService.makeMemory
})

/** A store whose blobs are files (a FilesystemBlobService in `blobDir`, a temp dir removed with the Scope). */
const filesystemStore: Effect.Effect<Store & { readonly blobDir: string }, never, Scope.Scope> = Effect.gen(function*() {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "nixfx-serve-blobs-"))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )
  return {
    pathInfos: yield* PathInfoService.makeMemory,
    blobs: yield* Effect.orDie(FilesystemBlobService.make({ directory: dir })),
    directories: yield* DirectoryService.makeMemory,
    blobDir: dir
  }
})

const storeKinds = [["memory", memoryStore], ["filesystem", filesystemStore]] as const

const provideStore = (store: Store) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.provideService(PathInfoService.PathInfoService, store.pathInfos),
    Effect.provideService(BlobService.BlobService, store.blobs),
    Effect.provideService(DirectoryService.DirectoryService, store.directories)
  )

/** Imports every fixture NAR into castore and puts the PathInfos (`strip`: without signatures). */
const fillStore = (store: Store, options?: { readonly strip?: boolean }) =>
  Effect.forEach(infos, (p) =>
    Effect.gen(function*() {
      const imported = yield* NarImport.ingest(Stream.make(nars.get(p.basename)!))
      assert.isTrue(Node.equals(imported.root, p.node), `${p.basename}: imported root is the manifest's`)
      yield* store.pathInfos.put(
        options?.strip === true ? new PathInfo.PathInfo({ ...p, signatures: [] }) : p
      )
    }).pipe(provideStore(store)), { discard: true })

const serve = (store: Store, options: Partial<BinaryCacheServer.Options> = {}) =>
  BinaryCacheServer.serve({ port: 0, accessLog: false, ...options }).pipe(provideStore(store))

// ---------------------------------------------------------------------------
// a raw HTTP client (paths sent as they are, no normalisation)
// ---------------------------------------------------------------------------

interface Reply {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly body: Buffer
  /** The body arrived whole (as framed by Content-Length or chunking). */
  readonly complete: boolean
}

interface Send {
  readonly method?: string
  readonly headers?: Record<string, string>
  readonly body?: Uint8Array | string
}

const send = (base: string, target: string, options: Send = {}): Effect.Effect<Reply, Error> =>
  Effect.async<Reply, Error>((resume) => {
    const url = new URL(base)
    const req = http.request({
      host: url.hostname,
      port: url.port,
      method: options.method ?? "GET",
      path: target,
      headers: options.headers,
      agent: false
    }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("error", () => {})
      res.on("close", () =>
        resume(Effect.succeed({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          complete: res.complete
        })))
    })
    req.on("error", (e) => resume(Effect.fail(e)))
    req.end(options.body)
    return Effect.sync(() => req.destroy())
  })

const get = (base: string, target: string, headers?: Record<string, string>) => send(base, target, { headers: headers ?? {} })

const head = (base: string, target: string) => send(base, target, { method: "HEAD" })

const hashOf = (p: PathInfo.PathInfo) => Nixbase32.encode(p.storePath.digest)

const narPath = (p: PathInfo.PathInfo) => "/" + BinaryCacheServer.narUrl(p)

const byName = (name: string): PathInfo.PathInfo => {
  const p = infos.find((i) => i.storePath.name === name)
  if (p === undefined) throw new Error(`no fixture ${name}`)
  return p
}

const sameBytes = (actual: Uint8Array, expected: Uint8Array, what: string) => {
  assert.strictEqual(actual.length, expected.length, `${what}: length`)
  assert.isTrue(Buffer.from(actual).equals(Buffer.from(expected)), `${what}: bytes differ`)
}

/** A test-scoped server over a store filled with every fixture path. */
class Served extends Context.Tag("test/Served")<Served, { readonly url: string; readonly store: Store }>() {}

const servedLayer = (options: Partial<BinaryCacheServer.Options> = {}, fill?: { readonly strip?: boolean }) =>
  Layer.scoped(
    Served,
    Effect.gen(function*() {
      const store = yield* memoryStore
      yield* fillStore(store, fill)
      const running = yield* serve(store, options)
      return { url: running.url, store }
    })
  )

// ---------------------------------------------------------------------------
// the NAR layout and ranges, against the NARs real Nix wrote
// ---------------------------------------------------------------------------

describe("BinaryCacheServer: NAR layout and seeking", () => {
  // memory blobs are streamed one by one; filesystem blobs (with readMany) are read in batches
  for (const [kind, makeStore] of storeKinds) {
    it.scoped(`${kind} blobs: the layout size of every fixture is its NarSize, and the full render is the real NAR`, () =>
      Effect.gen(function*() {
        const store = yield* makeStore
        yield* fillStore(store)
        assert.strictEqual(infos.length, 27)
        for (const p of infos) {
          const directories = yield* loadDirectories(store.directories, p.node)
          assert.strictEqual(layoutSize(p.node, directories), p.narSize, `${p.basename}: layout size`)
          const whole = yield* collect(renderRange(store.blobs, directories, p.node, 0, p.narSize))
          sameBytes(whole, nars.get(p.basename)!, p.basename)
        }
      }))

    it.scopedLive(`${kind} blobs: ranges of every fixture NAR but fx-large start and end at every token boundary and its neighbours`, () =>
      Effect.gen(function*() {
        const store = yield* makeStore
        yield* fillStore(store)
        let checked = 0
        const check = (p: PathInfo.PathInfo, directories: Directories, start: number, end: number) =>
          Effect.gen(function*() {
            const got = yield* collect(renderRange(store.blobs, directories, p.node, start, end))
            sameBytes(got, nars.get(p.basename)!.subarray(start, end), `${p.basename} [${start}, ${end})`)
            checked++
          })
        for (const p of infos) {
          if (p.narSize > 40_000) continue
          const n = p.narSize
          const directories = yield* loadDirectories(store.directories, p.node)
          // NAR tokens are 8-byte aligned: offsets 0, 1 and 7 mod 8 are at, after and before every boundary;
          // fx-tree is larger: the offsets around the parser's events, and every 61st byte
          const offsets = new Set<number>()
          if (n <= 2048) {
            for (let o = 0; o <= n; o++) if ([0, 1, 7].includes(o % 8)) offsets.add(o)
          } else {
            for (const e of eventOffsets(nars.get(p.basename)!)) for (const d of [-1, 0, 1, 8]) offsets.add(e + d)
            for (let o = 0; o < n; o += 127) offsets.add(o)
            offsets.add(n - 1)
            offsets.add(n)
          }
          for (const o of offsets) {
            if (o < 0 || o > n) continue
            if (o < n) yield* check(p, directories, o, n)
            if (o > 0) yield* check(p, directories, 0, o)
            // let the test runner's messages through between the many short renders
            if (checked % 200 === 0) yield* Effect.sleep("1 millis")
          }
        }
        assert.isAbove(checked, 5_000)
      }), 120_000)

    it.scopedLive(`${kind} blobs: fx-large: ranges starting and ending around every token and file boundary, and at random offsets`, () =>
      Effect.gen(function*() {
        const store = yield* makeStore
        yield* fillStore(store)
        const p = byName("fx-large")
        const nar = nars.get(p.basename)!
        const n = nar.length
        const offsets = new Set<number>([0, 1, n - 1, n])
        for (const e of eventOffsets(nar)) for (const d of [-1, 0, 1, 8]) offsets.add(e + d)
        const random = crypto.createHash("sha512").update("fx-large offsets").digest()
        for (let i = 0; i < 60; i++) offsets.add(random.readUInt32LE(i) % n)
        const directories = yield* loadDirectories(store.directories, p.node)
        let checked = 0
        for (const o of offsets) {
          if (o < 0 || o > n) continue
          if (o < n) {
            const end = Math.min(n, o + 3_000)
            sameBytes(yield* collect(renderRange(store.blobs, directories, p.node, o, end)), nar.subarray(o, end), `[${o}, ${end})`)
            checked++
          }
          if (o > 0) {
            const start = Math.max(0, o - 17)
            sameBytes(yield* collect(renderRange(store.blobs, directories, p.node, start, o)), nar.subarray(start, o), `[${start}, ${o})`)
            checked++
          }
          if (checked % 100 === 0) yield* Effect.sleep("1 millis")
        }
        assert.isAbove(checked, 1000)
        sameBytes(yield* collect(renderRange(store.blobs, directories, p.node, n - 1, n)), nar.subarray(n - 1), "the last byte")
      }), 120_000)
  }

  it.effect("a range reads only the blobs it touches, from an offset", () =>
    Effect.gen(function*() {
      const inner = yield* memoryStore
      yield* fillStore(inner)
      const reads: Array<{ digest: string; offset: number; length: number | undefined }> = []
      const blobs: BlobService.Service = {
        ...inner.blobs,
        read: (digest, range) => {
          reads.push({ digest: B3Digest.toHex(digest), offset: range?.offset ?? 0, length: range?.length })
          return inner.blobs.read(digest, range)
        }
      }
      const p = byName("fx-large")
      const directories = yield* loadDirectories(inner.directories, p.node)
      const nar = nars.get(p.basename)!
      const start = nar.length - 5000
      sameBytes(
        yield* collect(renderRange(blobs, directories, p.node, start, nar.length)),
        nar.subarray(start),
        "the last 5000 bytes"
      )
      assert.isAtLeast(reads.length, 1)
      assert.isBelow(reads.length, 10, `only the files in the last 5000 bytes are read, got ${reads.length}`)
      const total = reads.reduce((n, r) => n + (r.length ?? 0), 0)
      assert.isAtMost(total, 5000)
    }))
  it.scoped("filesystem blobs read in batches: a missing blob file is MissingBlob, a shortened one BlobSizeMismatch", () =>
    Effect.gen(function*() {
      const store = yield* filesystemStore
      yield* fillStore(store)
      const p = byName("fx-large")
      const directories = yield* loadDirectories(store.directories, p.node)
      // the small files of the tree (read in batches), by digest
      const small = new Map<string, number>()
      for (const directory of directories.values()) {
        for (const { node } of directory.entries) {
          if (node._tag === "File" && node.size > 8 && node.size <= 64 * 1024) small.set(B3Digest.toHex(node.digest), node.size)
        }
      }
      assert.isAtLeast(small.size, 3)
      const [, second, third] = Array.from(small.keys())
      const blobFile = (hex: string) => path.join(store.blobDir, "blobs", hex.slice(0, 2), hex)
      const render = Effect.flip(collect(renderRange(store.blobs, directories, p.node, 0, p.narSize)))

      fs.renameSync(blobFile(second), blobFile(second) + ".away")
      const missing = yield* render
      assert.strictEqual(missing.reason, "MissingBlob")
      assert.strictEqual(missing.digest, second)
      assert.notStrictEqual(missing.path, "/")
      fs.renameSync(blobFile(second) + ".away", blobFile(second))

      fs.truncateSync(blobFile(third), small.get(third)! - 3)
      const short = yield* render
      assert.strictEqual(short.reason, "BlobSizeMismatch")
      assert.strictEqual(short.digest, third)
      assert.include(short.message, `the FileNode says ${small.get(third)} bytes`)
    }))
})

/**
 * Offsets in a NAR (to within 8 bytes) where Nix's grammar has an event: a
 * node, an entry, file contents starting or ending.
 */
const eventOffsets = (nar: Uint8Array): Array<number> => {
  const out: Array<number> = []
  const parser = Nar.makeParser({
    directoryStart: () => out.push(parser.offset),
    entry: () => out.push(parser.offset),
    directoryEnd: () => out.push(parser.offset),
    fileStart: () => out.push(parser.offset),
    fileChunk: () => {},
    fileEnd: () => out.push(parser.offset),
    symlink: () => out.push(parser.offset)
  })
  for (let i = 0; i < nar.length; i += 8) parser.push(nar.subarray(i, Math.min(nar.length, i + 8)))
  parser.end()
  return out
}

const collect = <E>(stream: Stream.Stream<Uint8Array, E>) =>
  Effect.map(Stream.runCollect(stream), (chunks) => Buffer.concat(Chunk.toReadonlyArray(chunks)))

// ---------------------------------------------------------------------------
// HTTP: reads
// ---------------------------------------------------------------------------

layer(servedLayer())("BinaryCacheServer: reading", (it) => {
  it.effect("GET and HEAD /nix-cache-info", () =>
    Effect.gen(function*() {
      const { url } = yield* Served
      const r = yield* get(url, "/nix-cache-info")
      assert.strictEqual(r.status, 200)
      assert.strictEqual(r.headers["content-type"], "text/x-nix-cache-info")
      assert.strictEqual(r.body.toString(), "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n")
      const h = yield* head(url, "/nix-cache-info")
      assert.strictEqual(h.status, 200)
      assert.strictEqual(h.headers["content-length"], String(r.body.length))
      assert.strictEqual(h.body.length, 0)
    }))

  it.effect("every fixture narinfo: the stored fields and signatures, our NAR URL, Compression none", () =>
    Effect.gen(function*() {
      const { url } = yield* Served
      assert.strictEqual(manifestPaths.length, 27)
      for (const m of manifestPaths) {
        const r = yield* get(url, `/${m.hashPart}.narinfo`)
        assert.strictEqual(r.status, 200, m.name)
        assert.strictEqual(r.headers["content-type"], "text/x-nix-narinfo")
        assert.strictEqual(r.headers["content-length"], String(r.body.length))
        const ni = Either.getOrThrow(NarInfo.parse(r.body.toString()))
        const p = byName(m.name)
        assert.strictEqual(StorePath.toAbsolutePath(ni.storePath), m.storePath)
        assert.strictEqual("sha256:" + Nixbase32.encode(ni.narHash.digest), m.narHash)
        assert.strictEqual(ni.narSize, m.narSize)
        assert.deepStrictEqual(ni.references.map(StorePath.toBasename), [...m.references].sort())
        assert.strictEqual(Option.getOrNull(Option.map(ni.deriver, StorePath.toBasename)), m.deriver)
        assert.deepStrictEqual(ni.signatures.map(Keys.formatSignature), [...m.signatures])
        assert.strictEqual(ni.compression, "none")
        assert.strictEqual(ni.url, BinaryCacheServer.narUrl(p))
        assert.strictEqual(ni.url, `nar/${m.hashPart}-${m.narHash.slice("sha256:".length)}.nar`)
        assert.strictEqual(Option.getOrThrow(ni.fileSize), m.narSize)
        assert.isTrue(
          ni.signatures.every((s) => Keys.verifyFingerprint(NarInfo.fingerprint(ni), s, publicKey("test-cache-1")))
        )
        assert.strictEqual(r.headers["etag"]?.startsWith('"'), true)
        const h = yield* head(url, `/${m.hashPart}.narinfo`)
        assert.strictEqual(h.status, 200)
        assert.strictEqual(h.headers["content-length"], r.headers["content-length"])
        assert.strictEqual(h.headers["etag"], r.headers["etag"])
        assert.strictEqual(h.body.length, 0)
        const again = yield* get(url, `/${m.hashPart}.narinfo`, { "if-none-match": r.headers["etag"]! })
        assert.strictEqual(again.status, 304)
        assert.strictEqual(again.body.length, 0)
      }
    }))

  it.effect("every fixture NAR: GET is the real NAR with NarSize as Content-Length; HEAD sends the headers only", () =>
    Effect.gen(function*() {
      const { url } = yield* Served
      for (const p of infos) {
        const r = yield* get(url, narPath(p))
        assert.strictEqual(r.status, 200, p.basename)
        assert.isTrue(r.complete)
        sameBytes(r.body, nars.get(p.basename)!, p.basename)
        assert.strictEqual(r.headers["content-length"], String(p.narSize))
        assert.strictEqual(r.headers["content-type"], "application/x-nix-nar")
        assert.strictEqual(r.headers["accept-ranges"], "bytes")
        assert.strictEqual(r.headers["cache-control"], "public, max-age=31536000, immutable")
        assert.strictEqual(r.headers["etag"], `"${Nixbase32.encode(p.narSha256)}"`)
        assert.isUndefined(r.headers["content-encoding"])
        const h = yield* head(url, narPath(p))
        assert.strictEqual(h.status, 200)
        assert.strictEqual(h.headers["content-length"], String(p.narSize))
        assert.strictEqual(h.headers["etag"], r.headers["etag"])
        assert.strictEqual(h.body.length, 0)
        const cached = yield* get(url, narPath(p), { "if-none-match": r.headers["etag"]! })
        assert.strictEqual(cached.status, 304)
      }
    }))

  it.effect("Range on NARs: single ranges are 206 with Content-Range, past the end is 416, others the whole NAR", () =>
    Effect.gen(function*() {
      const { url } = yield* Served
      const p = byName("fx-large")
      const nar = nars.get(p.basename)!
      const n = nar.length
      const partial: ReadonlyArray<readonly [string, number, number]> = [
        ["bytes=0-0", 0, 1],
        ["bytes=0-99", 0, 100],
        ["bytes=100-", 100, n],
        [`bytes=${n - 1}-`, n - 1, n],
        [`bytes=${n - 1}-${n + 100}`, n - 1, n],
        ["bytes=-1", n - 1, n],
        ["bytes=-5000", n - 5000, n],
        [`bytes=-${n + 10}`, 0, n],
        ["bytes=700000-700999", 700_000, 701_000],
        [" bytes = 12345 - 23456 ", 12_345, 23_457]
      ]
      for (const [range, start, end] of partial) {
        const r = yield* get(url, narPath(p), { range })
        assert.strictEqual(r.status, 206, range)
        assert.strictEqual(r.headers["content-range"], `bytes ${start}-${end - 1}/${n}`, range)
        assert.strictEqual(r.headers["content-length"], String(end - start), range)
        sameBytes(r.body, nar.subarray(start, end), range)
      }
      for (const range of [`bytes=${n}-`, `bytes=${n + 5}-${n + 10}`, "bytes=-0"]) {
        const r = yield* get(url, narPath(p), { range })
        assert.strictEqual(r.status, 416, range)
        assert.strictEqual(r.headers["content-range"], `bytes */${n}`)
      }
      for (const range of ["bytes=0-1,5-9", "items=0-5", "bytes=5-1", "bytes=x-", "bytes=--1"]) {
        const r = yield* get(url, narPath(p), { range })
        assert.strictEqual(r.status, 200, range)
        sameBytes(r.body, nar, range)
      }
      // If-Range with another tag: the whole NAR; with the current one: the range
      const other = yield* get(url, narPath(p), { range: "bytes=10-19", "if-range": '"something-else"' })
      assert.strictEqual(other.status, 200)
      const same = yield* get(url, narPath(p), { range: "bytes=10-19", "if-range": `"${Nixbase32.encode(p.narSha256)}"` })
      assert.strictEqual(same.status, 206)
      sameBytes(same.body, nar.subarray(10, 20), "If-Range")
      // ranges of small NARs through HTTP, including inside headers and at the last byte
      for (const q of infos) {
        const whole = nars.get(q.basename)!
        for (const start of [0, 1, 7, 8, 9, 55, 56, 57, whole.length - 9, whole.length - 1]) {
          if (start < 0) continue
          const r = yield* get(url, narPath(q), { range: `bytes=${start}-` })
          assert.strictEqual(r.status, 206, `${q.basename} from ${start}`)
          sameBytes(r.body, whole.subarray(start), `${q.basename} from ${start}`)
        }
      }
    }))

  it.effect("zstd: Content-Encoding when accepted (no ranges), the .nar.zst file, and identity otherwise", () =>
    Effect.gen(function*() {
      const { url } = yield* Served
      for (const name of ["fx-large", "fx-tree", "fx-empty-file"]) {
        const p = byName(name)
        const nar = nars.get(p.basename)!
        const r = yield* get(url, narPath(p), { "accept-encoding": "gzip, zstd, br" })
        assert.strictEqual(r.status, 200)
        assert.strictEqual(r.headers["content-encoding"], "zstd")
        assert.isUndefined(r.headers["content-length"])
        assert.strictEqual(r.headers["vary"], "accept-encoding")
        assert.isTrue(r.headers["etag"]?.startsWith("W/"))
        sameBytes(yield* collect(Decompression.decompressBytes("zstd", r.body)), nar, `${name} (Content-Encoding)`)
        if (name === "fx-large") assert.isBelow(r.body.length, nar.length / 4)

        const file = yield* get(url, "/" + BinaryCacheServer.narUrl(p, "zstd"))
        assert.strictEqual(file.status, 200)
        assert.isUndefined(file.headers["content-encoding"])
        assert.strictEqual(file.headers["content-type"], "application/zstd")
        assert.strictEqual(file.headers["accept-ranges"], "none")
        sameBytes(yield* collect(Decompression.decompressBytes("zstd", file.body)), nar, `${name} (.nar.zst)`)
      }
      const p = byName("fx-large")
      const refused = yield* get(url, narPath(p), { "accept-encoding": "zstd;q=0, gzip" })
      assert.isUndefined(refused.headers["content-encoding"])
      sameBytes(refused.body, nars.get(p.basename)!, "zstd;q=0")
      const ranged = yield* get(url, narPath(p), { "accept-encoding": "zstd", range: "bytes=5-9" })
      assert.strictEqual(ranged.status, 206)
      assert.isUndefined(ranged.headers["content-encoding"])
      sameBytes(ranged.body, nars.get(p.basename)!.subarray(5, 10), "zstd + range")
    }))

  it.effect("404 for what is not there", () =>
    Effect.gen(function*() {
      const { url } = yield* Served
      const p = byName("fx-tree")
      const unknownHash = Nixbase32.encode(new Uint8Array(20).fill(7))
      const otherNarHash = Nixbase32.encode(new Uint8Array(32).fill(1))
      for (
        const target of [
          `/${unknownHash}.narinfo`,
          `/nar/${unknownHash}-${Nixbase32.encode(p.narSha256)}.nar`,
          `/nar/${hashOf(p)}-${otherNarHash}.nar`,
          `/nar/${hashOf(p)}-${otherNarHash}.nar.zst`,
          "/etc/passwd",
          "/",
          "/index.html",
          `/${hashOf(p)}.ls`,
          `/log/${hashOf(p)}`
        ]
      ) {
        const r = yield* get(url, target)
        assert.strictEqual(r.status, 404, target)
        const h = yield* head(url, target)
        assert.strictEqual(h.status, 404, `HEAD ${target}`)
      }
    }))

  it.effect("400 for malformed paths; nothing outside the store is reachable", () =>
    Effect.gen(function*() {
      const { url } = yield* Served
      const p = byName("fx-tree")
      const narHash = Nixbase32.encode(p.narSha256)
      const malformed = [
        "/nar/../../etc/passwd",
        "/../etc/passwd",
        "/nar/./x.nar",
        "/%2e%2e/etc/passwd",
        "/nar/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/nar/..%2f..%2fetc%2fpasswd",
        "//etc/passwd",
        "/nar//x.nar",
        "/nar\\..\\etc\\passwd",
        "/abc.narinfo",
        `/${"e".repeat(32)}.narinfo`,
        `/${hashOf(p)}x.narinfo`,
        `/nar/${hashOf(p)}-${narHash.slice(1)}.nar`,
        `/nar/${"e".repeat(32)}-${narHash}.nar`,
        `/nar/${hashOf(p)}-${narHash}.tar`,
        `/nar/sub/${hashOf(p)}-${narHash}.nar`,
        "/nar/x.nar.lz4",
        "/nar/UPPER.nar",
        "/nar/",
        "/nar",
        "http://127.0.0.1/etc/passwd"
      ]
      for (const target of malformed) {
        const r = yield* get(url, target)
        assert.strictEqual(r.status, 400, target)
        assert.notInclude(r.body.toString(), "root:", target)
      }
    }))

  it.effect("other methods are refused with 405 and Allow; uploads are off by default", () =>
    Effect.gen(function*() {
      const { url } = yield* Served
      const p = byName("fx-tree")
      for (const [method, target] of [["POST", "/nix-cache-info"], ["DELETE", narPath(p)], ["PUT", `/${hashOf(p)}.narinfo`], [
        "PUT",
        "/nar/abc.nar.xz"
      ]] as const) {
        const r = yield* send(url, target, { method, body: "x" })
        assert.strictEqual(r.status, 405, `${method} ${target}`)
        assert.strictEqual(r.headers["allow"], "GET, HEAD")
      }
    }))
})

// ---------------------------------------------------------------------------
// signing and advertised compression
// ---------------------------------------------------------------------------

describe("BinaryCacheServer: signing and compression", () => {
  const key = Either.getOrThrow(Keys.generateSecretKey("nixfx-serve-test-1"))

  it.scoped("with a signing key, an unsigned store's narinfos carry exactly one valid signature", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      yield* fillStore(store, { strip: true })
      const { url } = yield* serve(store, { signingKey: key })
      for (const m of manifestPaths) {
        const ni = Either.getOrThrow(NarInfo.parse((yield* get(url, `/${m.hashPart}.narinfo`)).body.toString()))
        assert.strictEqual(ni.signatures.length, 1, m.name)
        assert.strictEqual(ni.signatures[0].keyName, "nixfx-serve-test-1")
        assert.isTrue(Keys.verifyFingerprint(NarInfo.fingerprint(ni), ni.signatures[0], key.public), m.name)
        assert.strictEqual(NarInfo.fingerprint(ni), (m as ManifestPath & { readonly fingerprint: string }).fingerprint)
      }
    }))

  it.scoped("with a signing key, stored signatures stay and the new one is added", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      yield* fillStore(store)
      const { url } = yield* serve(store, { signingKey: key })
      const m = manifestPaths.find((q) => q.name === "fx-app-1.0")!
      const ni = Either.getOrThrow(NarInfo.parse((yield* get(url, `/${m.hashPart}.narinfo`)).body.toString()))
      assert.deepStrictEqual(ni.signatures.map((s) => s.keyName), ["test-cache-1", "nixfx-serve-test-1"])
      for (const [s, k] of [[ni.signatures[0], publicKey("test-cache-1")], [ni.signatures[1], key.public]] as const) {
        assert.isTrue(Keys.verifyFingerprint(NarInfo.fingerprint(ni), s, k))
      }
    }))

  it.scoped("compression zstd: narinfos point at the .nar.zst file with Compression: zstd", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      yield* fillStore(store)
      const { url } = yield* serve(store, { compression: "zstd", storeDir: "/nix/store", priority: 7 })
      assert.include((yield* get(url, "/nix-cache-info")).body.toString(), "Priority: 7\n")
      const p = byName("fx-large")
      const ni = Either.getOrThrow(NarInfo.parse((yield* get(url, `/${hashOf(p)}.narinfo`)).body.toString()))
      assert.strictEqual(ni.compression, "zstd")
      assert.strictEqual(ni.url, BinaryCacheServer.narUrl(p, "zstd"))
      assert.isTrue(Option.isNone(ni.fileSize))
      const body = (yield* get(url, "/" + ni.url)).body
      sameBytes(yield* collect(Decompression.decompressBytes("zstd", body)), nars.get(p.basename)!, "fx-large.zst")
    }))
})

// ---------------------------------------------------------------------------
// broken stores, limits, logs, shutdown
// ---------------------------------------------------------------------------

/** A blob service whose reads wait for `gate` (and count how many are waiting). */
const gatedBlobs = (inner: BlobService.Service, gate: Deferred.Deferred<void>) => {
  const waiting = { count: 0 }
  const blobs: BlobService.Service = {
    ...inner,
    read: (digest, range) =>
      Effect.zipRight(
        Effect.acquireUseRelease(
          Effect.sync(() => waiting.count++),
          () => Deferred.await(gate),
          () => Effect.sync(() => waiting.count--)
        ),
        inner.read(digest, range)
      )
  }
  return { blobs, waiting }
}

const waitUntil = (check: () => boolean, what: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500; i++) {
      if (check()) return
      yield* Effect.sleep("10 millis")
    }
    return assert.fail(`timed out waiting until ${what}`)
  })

describe("BinaryCacheServer: failures, limits, logs, shutdown", () => {
  it.live("a blob missing half-way cuts the connection; a NarSize the tree does not have is a 500", () =>
    Effect.scoped(Effect.gen(function*() {
      const store = yield* memoryStore
      yield* fillStore(store)
      const missing = new Node.FileNode({
        digest: B3Digest.unsafeMake(new Uint8Array(crypto.randomBytes(32))),
        size: 300_000,
        executable: false
      })
      const broken = makeTestPathInfo({ name: "broken", node: missing })
      yield* store.pathInfos.put(broken)
      // (the server logs these failures as errors: expected here)
      const { url } = yield* serve(store).pipe(Logger.withMinimumLogLevel(LogLevel.None))
      // the connection is cut: before the headers went out (an error) or after (an incomplete body)
      const r = yield* Effect.either(get(url, narPath(broken)))
      if (Either.isRight(r)) {
        assert.strictEqual(r.right.status, 200)
        assert.isFalse(r.right.complete, "the body must not look complete")
        assert.isBelow(r.right.body.length, broken.narSize)
      }
      const tree = byName("fx-tree")
      // a PathInfo whose NarSize disagrees with its tree
      const lying = new PathInfo.PathInfo({
        ...tree,
        storePath: randomStorePath("lying"),
        references: [],
        narSize: tree.narSize + 8,
        ca: Option.none()
      })
      yield* store.pathInfos.put(lying)
      const bad = yield* get(url, narPath(lying))
      assert.strictEqual(bad.status, 500)
      assert.include(bad.body.toString(), `its NarSize is ${tree.narSize + 8}`)
    })))

  it.live("a blob missing after 200 files were sent: the body ends incomplete, the log says failed", () =>
    Effect.scoped(Effect.gen(function*() {
      const inner = yield* memoryStore
      yield* fillStore(inner)
      let reads = 0
      const blobs: BlobService.Service = {
        ...inner.blobs,
        read: (digest, range) => ++reads > 200 ? Effect.succeedNone : inner.blobs.read(digest, range)
      }
      const entries: Array<BinaryCacheServer.AccessLogEntry> = []
      const { url } = yield* serve({ ...inner, blobs }, { accessLog: (e) => entries.push(e) }).pipe(
        Logger.withMinimumLogLevel(LogLevel.None)
      )
      const p = byName("fx-large")
      const r = yield* get(url, narPath(p))
      assert.strictEqual(r.status, 200)
      assert.strictEqual(r.headers["content-length"], String(p.narSize))
      assert.isFalse(r.complete, "the body must not look complete")
      assert.isAbove(r.body.length, 100_000)
      assert.isBelow(r.body.length, p.narSize)
      sameBytes(r.body, nars.get(p.basename)!.subarray(0, r.body.length), "what was sent is the NAR's start")
      yield* waitUntil(() => entries.length === 1, "the access log entry")
      assert.strictEqual(entries[0].outcome, "failed")
    })))

  it.live("NAR streams beyond the bound wait, then get 503 with Retry-After; HEAD is not bounded", () =>
    Effect.scoped(Effect.gen(function*() {
      const inner = yield* memoryStore
      yield* fillStore(inner)
      const gate = yield* Deferred.make<void>()
      const gated = gatedBlobs(inner.blobs, gate)
      const store = { ...inner, blobs: gated.blobs }
      const { url } = yield* serve(store, { maxConcurrentNarStreams: 2, narStreamWait: "200 millis" })
      const p = byName("fx-large")
      const first = yield* Effect.fork(get(url, narPath(p)))
      const second = yield* Effect.fork(get(url, narPath(p)))
      yield* waitUntil(() => gated.waiting.count === 2, "two NAR streams are reading")
      const third = yield* get(url, narPath(p))
      assert.strictEqual(third.status, 503)
      assert.strictEqual(third.headers["retry-after"], "1")
      assert.strictEqual((yield* head(url, narPath(p))).status, 200)
      assert.strictEqual((yield* get(url, `/${hashOf(p)}.narinfo`)).status, 200)
      // a waiting request gets the slot a finishing one frees
      const fourth = yield* Effect.fork(send(url, narPath(p)))
      yield* Effect.sleep("50 millis")
      yield* Deferred.succeed(gate, undefined)
      for (const f of [first, second, fourth]) {
        const r = yield* Fiber.join(f)
        assert.strictEqual(r.status, 200)
        sameBytes(r.body, nars.get(p.basename)!, "after the gate opened")
      }
    })))

  it.live("access log: one entry per request with status, bytes and outcome", () =>
    Effect.scoped(Effect.gen(function*() {
      const store = yield* memoryStore
      yield* fillStore(store)
      const entries: Array<BinaryCacheServer.AccessLogEntry> = []
      const { url } = yield* serve(store, { accessLog: (e) => entries.push(e) })
      const p = byName("fx-large")
      yield* get(url, "/nix-cache-info")
      yield* get(url, narPath(p))
      yield* head(url, narPath(p))
      yield* get(url, "/nar/../x")
      yield* get(url, narPath(p), { range: "bytes=0-9" })
      yield* waitUntil(() => entries.length === 5, "five log entries")
      const byTarget = entries.map((e) => [e.method, e.target, e.status, e.bytes, e.outcome] as const)
      assert.deepStrictEqual(byTarget, [
        ["GET", "/nix-cache-info", 200, 51, "complete"],
        ["GET", narPath(p), 200, p.narSize, "complete"],
        ["HEAD", narPath(p), 200, 0, "complete"],
        ["GET", "/nar/../x", 400, entries[3].bytes, "complete"],
        ["GET", narPath(p), 206, 10, "complete"]
      ])
      for (const e of entries) {
        assert.strictEqual(e.remoteAddress, "127.0.0.1")
        assert.isAtLeast(e.durationMs, 0)
      }
    })))

  it.live("graceful shutdown: the listener closes, requests in flight finish, new ones are refused", () =>
    Effect.gen(function*() {
      const inner = yield* memoryStore
      yield* fillStore(inner)
      const gate = yield* Deferred.make<void>()
      const gated = gatedBlobs(inner.blobs, gate)
      const scope = yield* Scope.make()
      const { url } = yield* Scope.extend(serve({ ...inner, blobs: gated.blobs }, { shutdownTimeout: "5 seconds" }), scope)
      const p = byName("fx-large")
      const inFlight = yield* Effect.fork(get(url, narPath(p)))
      yield* waitUntil(() => gated.waiting.count === 1, "the NAR request is in flight")
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* Effect.sleep("100 millis")
      const refused = yield* Effect.either(get(url, "/nix-cache-info"))
      assert.isTrue(Either.isLeft(refused), "a new connection is refused while draining")
      assert.isNull(closing.unsafePoll(), "shutdown waits for the request in flight")
      yield* Deferred.succeed(gate, undefined)
      const r = yield* Fiber.join(inFlight)
      assert.strictEqual(r.status, 200)
      assert.isTrue(r.complete)
      sameBytes(r.body, nars.get(p.basename)!, "finished during shutdown")
      yield* Fiber.join(closing)
    }))

  it.live("shutdown timeout: requests still running are cut", () =>
    Effect.gen(function*() {
      const inner = yield* memoryStore
      yield* fillStore(inner)
      const gate = yield* Deferred.make<void>()
      const gated = gatedBlobs(inner.blobs, gate)
      const scope = yield* Scope.make()
      const { url } = yield* Scope.extend(serve({ ...inner, blobs: gated.blobs }, { shutdownTimeout: "300 millis" }), scope)
      const p = byName("fx-large")
      const inFlight = yield* Effect.fork(Effect.either(get(url, narPath(p))))
      yield* waitUntil(() => gated.waiting.count === 1, "the NAR request is in flight")
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      assert.isAtLeast(Date.now() - started, 250)
      assert.isBelow(Date.now() - started, 3000)
      const r = yield* Fiber.join(inFlight)
      assert.isTrue(Either.isLeft(r) || !r.right.complete, "the cut request did not complete")
    }))
})

// ---------------------------------------------------------------------------
// uploads
// ---------------------------------------------------------------------------

const token = "upload-token-0123456789"
const bearer = { authorization: `Bearer ${token}` }

const xzPath = (name: string) => {
  const m = manifest.caches.xz.paths.find((p) => p.name === name)
  if (m === undefined) throw new Error(`no ${name} in the xz cache`)
  return { m, nar: readFixture(`caches/xz/${m.url}`), narinfo: readFixture(m.narinfo).toString() }
}

const withField = (text: string, field: string, value: string): string =>
  text.replace(new RegExp(`^${field}: .*$`, "m"), `${field}: ${value}`)

describe("BinaryCacheServer: uploads", () => {
  const uploading = Effect.gen(function*() {
    const store = yield* memoryStore
    const running = yield* serve(store, { upload: { token: Redacted.make(token) } })
    return { url: running.url, store }
  })

  it.scoped("PUT nar then narinfo: verified, then served (leaves first, references by content)", () =>
    Effect.gen(function*() {
      const { store, url } = yield* uploading
      for (const name of ["fx-base-1.0", "fx-lib-1.0", "fx-app-1.0", "fx-large", "fx-tree"]) {
        const { m, nar, narinfo } = xzPath(name)
        const put = yield* send(url, "/" + m.url, { method: "PUT", headers: bearer, body: nar })
        assert.strictEqual(put.status, 204, `${name}: ${put.body}`)
        const before = yield* get(url, `/${m.hashPart}.narinfo`)
        assert.strictEqual(before.status, 404, `${name} is not visible before its narinfo`)
        const info = yield* send(url, `/${m.hashPart}.narinfo`, { method: "PUT", headers: bearer, body: narinfo })
        assert.strictEqual(info.status, 204, `${name}: ${info.body}`)
        const stored = Option.getOrThrow(yield* store.pathInfos.get(Either.getOrThrow(Nixbase32.decode(m.hashPart, 20))))
        const expected = byName(name)
        assert.isTrue(PathInfo.equals(stored, expected), `${name}: the stored PathInfo is the fixture's, reference nodes included`)
        const served = yield* get(url, "/" + BinaryCacheServer.narUrl(stored))
        sameBytes(served.body, nars.get(stored.basename)!, name)
      }
    }))

  it.scoped("a .nar upload may be gzip (recognised by its magic) or plain; bz2, zst and br by suffix", () =>
    Effect.gen(function*() {
      const { url } = yield* uploading
      const cases = [["gzip", "fx-tree"], ["none", "fx-executable-file"], ["bzip2", "fx-app-1.0.drv"], [
        "zstd",
        "fx-added-dir"
      ], ["br", "fx-text.txt"]] as const
      for (const [cache, name] of cases) {
        const m = manifest.caches[cache].paths.find((p) => p.name === name)!
        const put = yield* send(url, "/" + m.url, { method: "PUT", headers: bearer, body: readFixture(`caches/${cache}/${m.url}`) })
        assert.strictEqual(put.status, 204, `${cache}: ${put.body}`)
        const info = yield* send(url, `/${m.hashPart}.narinfo`, {
          method: "PUT",
          headers: bearer,
          body: readFixture(m.narinfo)
        })
        assert.strictEqual(info.status, 204, `${cache} ${name}: ${info.body}`)
        const r = yield* get(url, narPath(byName(name)))
        sameBytes(r.body, nars.get(byName(name).basename)!, `${cache} ${name}`)
      }
    }))

  it.scoped("credentials: missing or wrong token is 401; Bearer and Basic (token as password) pass", () =>
    Effect.gen(function*() {
      const { url } = yield* uploading
      const { m, nar } = xzPath("fx-regular-file")
      for (const headers of [{}, { authorization: "Bearer wrong-token-0123456789" }, { authorization: token }, {
        authorization: `Basic ${Buffer.from(`nix:${token}x`).toString("base64")}`
      }]) {
        const r = yield* send(url, "/" + m.url, { method: "PUT", headers, body: nar })
        assert.strictEqual(r.status, 401, JSON.stringify(headers))
        assert.include(r.headers["www-authenticate"], "Bearer")
      }
      const basic = yield* send(url, "/" + m.url, {
        method: "PUT",
        headers: { authorization: `Basic ${Buffer.from(`nix:${token}`).toString("base64")}` },
        body: nar
      })
      assert.strictEqual(basic.status, 204)
    }))

  it.scoped("a narinfo that disagrees with its NAR is refused and nothing becomes visible", () =>
    Effect.gen(function*() {
      const { store, url } = yield* uploading
      const { m, nar, narinfo } = xzPath("fx-tree")
      assert.strictEqual((yield* send(url, "/" + m.url, { method: "PUT", headers: bearer, body: nar })).status, 204)
      const other = xzPath("fx-large").m
      const cases: ReadonlyArray<readonly [string, string, number, string]> = [
        ["NarHash", withField(narinfo, "NarHash", other.narHash), 400, "NarHash is"],
        ["NarSize", withField(narinfo, "NarSize", String(m.narSize + 8)), 400, "NarSize is"],
        ["FileSize", withField(narinfo, "FileSize", String(m.fileSize + 1)), 400, "FileSize is"],
        ["FileHash", withField(narinfo, "FileHash", other.narHash), 400, "FileHash is"],
        ["Compression", withField(narinfo, "Compression", "bzip2"), 400, "Compression is"],
        ["URL", withField(narinfo, "URL", "nar/0000000000000000000000000000000000000000000000000000.nar.xz"), 409, "was not uploaded"],
        ["garbage", "StorePath: nonsense\n", 400, "StorePath"]
      ]
      for (const [what, text, status, message] of cases) {
        const r = yield* send(url, `/${m.hashPart}.narinfo`, { method: "PUT", headers: bearer, body: text })
        assert.strictEqual(r.status, status, `${what}: ${r.body}`)
        assert.include(r.body.toString(), message, what)
      }
      const wrongUrl = yield* send(url, `/${xzPath("fx-large").m.hashPart}.narinfo`, {
        method: "PUT",
        headers: bearer,
        body: narinfo
      })
      assert.strictEqual(wrongUrl.status, 400)
      assert.include(wrongUrl.body.toString(), "describes another store path")
      assert.isTrue(Option.isNone(yield* store.pathInfos.get(Either.getOrThrow(Nixbase32.decode(m.hashPart, 20)))))
      assert.strictEqual((yield* get(url, `/${m.hashPart}.narinfo`)).status, 404)
      // the right narinfo still goes through afterwards
      const ok = yield* send(url, `/${m.hashPart}.narinfo`, { method: "PUT", headers: bearer, body: narinfo })
      assert.strictEqual(ok.status, 204, String(ok.body))
    }))

  it.scoped("an invalid or corrupt NAR upload is a 400", () =>
    Effect.gen(function*() {
      const { url } = yield* uploading
      const notNar = yield* send(url, "/nar/abc.nar", { method: "PUT", headers: bearer, body: "definitely not a NAR" })
      assert.strictEqual(notNar.status, 400)
      assert.include(notNar.body.toString(), "not a valid NAR")
      const { nar } = xzPath("fx-large")
      const cut = yield* send(url, "/nar/abc.nar.xz", { method: "PUT", headers: bearer, body: nar.subarray(0, 1000) })
      assert.strictEqual(cut.status, 400)
      assert.include(cut.body.toString(), "xz")
      const lz4 = yield* send(url, "/nar/abc.nar.lz4", { method: "PUT", headers: bearer, body: nar })
      assert.strictEqual(lz4.status, 400)
    }))
})

// ---------------------------------------------------------------------------
// options and helpers
// ---------------------------------------------------------------------------

describe("BinaryCacheServer: options", () => {
  it.effect("invalid options fail with ServerConfigError naming the option", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const cases: ReadonlyArray<readonly [Partial<BinaryCacheServer.Options>, string]> = [
        [{ port: -1 }, "port"],
        [{ port: 70000 }, "port"],
        [{ maxConcurrentNarStreams: 0 }, "maxConcurrentNarStreams"],
        [{ priority: -3 }, "priority"],
        [{ storeDir: "nix/store" }, "storeDir"],
        [{ zstdLevel: 99 }, "zstdLevel"],
        [{ upload: { token: Redacted.make("short") } }, "upload.token"]
      ]
      for (const [options, option] of cases) {
        const e = yield* Effect.flip(Effect.scoped(serve(store, options)))
        assert.strictEqual(e._tag, "ServerConfigError")
        if (e._tag === "ServerConfigError") assert.strictEqual(e.option, option)
      }
    }))

  it.scoped("a port in use is a ListenError naming host and port", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const first = yield* serve(store)
      const e = yield* Effect.flip(serve(store, { port: first.port }))
      assert.strictEqual(e._tag, "ListenError")
      assert.include(e.message, `127.0.0.1:${first.port}`)
      assert.include(e.message, "EADDRINUSE")
    }))

  it.effect("parseListenAddress and readSigningKeyFile", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(Either.getOrThrow(BinaryCacheServer.parseListenAddress("127.0.0.1:8080")), {
        host: "127.0.0.1",
        port: 8080
      })
      assert.deepStrictEqual(Either.getOrThrow(BinaryCacheServer.parseListenAddress("[::1]:0")), { host: "::1", port: 0 })
      assert.deepStrictEqual(Either.getOrThrow(BinaryCacheServer.parseListenAddress("localhost:5000")), {
        host: "localhost",
        port: 5000
      })
      for (const bad of ["8080", "host:", ":80", "host:99999", "::1:80", "a b:80"]) {
        assert.isTrue(Either.isLeft(BinaryCacheServer.parseListenAddress(bad)), bad)
      }
      const key = yield* BinaryCacheServer.readSigningKeyFile(`${fixturesDir}keys/test-cache-1.secret`)
      assert.strictEqual(key.name, "test-cache-1")
      assert.strictEqual(Keys.formatPublicKey(key.public), manifest.keys["test-cache-1"].public)
      const missing = yield* Effect.flip(BinaryCacheServer.readSigningKeyFile(`${fixturesDir}keys/nope.secret`))
      assert.strictEqual(missing.option, "signing key file")
      assert.include(missing.message, "nope.secret")
      const notAKey = yield* Effect.flip(BinaryCacheServer.readSigningKeyFile(`${fixturesDir}keys/test-cache-1.public`))
      assert.include(notAKey.message, "test-cache-1.public")
    }))

  it.scoped("layer provides the running address", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const ctx = yield* Layer.build(
        BinaryCacheServer.layer({ port: 0, accessLog: false }).pipe(
          Layer.provide(Layer.succeed(PathInfoService.PathInfoService, store.pathInfos)),
          Layer.provide(Layer.succeed(BlobService.BlobService, store.blobs)),
          Layer.provide(Layer.succeed(DirectoryService.DirectoryService, store.directories))
        )
      )
      const running = Context.get(ctx, BinaryCacheServer.BinaryCacheServer)
      assert.strictEqual(running.url, `http://127.0.0.1:${running.port}`)
      assert.strictEqual((yield* get(running.url, "/nix-cache-info")).status, 200)
    }))
})
