import { assert, describe, it } from "@effect/vitest"
import * as NarInfo from "@nixfx/nix-compat/NarInfo"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as BinaryCache from "../src/BinaryCache.js"
import type { BinaryCacheError } from "../src/BinaryCacheError.js"
import { type CacheServer, serveCache } from "./support/cacheServer.js"
import { basename, cacheDir, digestOf, manifest, type ManifestPath, pathByName, publicKey, readFixture } from "./support/fixtures.js"
import {
  expectFixture,
  expectStored,
  expectTag,
  failWith,
  memoryStore,
  narinfoText,
  open,
  otherSha256,
  recordingStore,
  some,
  withNarinfoField
} from "./support/helpers.js"

// ---------------------------------------------------------------------------
// every fixture path, every compression
// ---------------------------------------------------------------------------

describe("BinaryCache: every fixture path of every cache", () => {
  for (const cache of ["none", "xz", "bzip2", "zstd", "br", "gzip"]) {
    it.live(`${cache}: get yields the manifest's node, NarHash, NarSize and references by content`, () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* serveCache([cacheDir(cache)])
        const store = yield* memoryStore
        const bc = yield* open(server, store, { trustedPublicKeys: [publicKey("test-cache-1")] })
        const paths = manifest.caches[cache].paths
        assert.isAtLeast(paths.length, 26)
        for (const p of paths) {
          const got = some(yield* bc.pathInfoService.get(digestOf(p)), `${cache}: ${p.name}`)
          expectFixture(got, p)
        }
        for (const p of paths) yield* expectStored(store, p)
      })), 60_000)
  }

  it.live("signed-test-cache-2 with test-cache-2 trusted, and unsigned with no key, pass", () =>
    Effect.scoped(Effect.gen(function*() {
      for (const [cache, keys] of [["signed-test-cache-2", [publicKey("test-cache-2")]], ["unsigned", []]] as const) {
        const server = yield* serveCache([cacheDir(cache)])
        const bc = yield* open(server, yield* memoryStore, { trustedPublicKeys: keys })
        for (const p of manifest.caches[cache].paths) {
          expectFixture(some(yield* bc.fetch(digestOf(p)), p.name), p)
        }
      }
    })), 60_000)
})

// ---------------------------------------------------------------------------
// closures
// ---------------------------------------------------------------------------

describe("BinaryCache: closures", () => {
  it.live("a closure arrives whole, leaves first, each reference recorded by content", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const { puts, store } = yield* recordingStore
      const events: Array<BinaryCache.Event> = []
      const bc = yield* open(server, store, { onEvent: (e) => events.push(e) })
      const app = pathByName("xz", "fx-app-1.0")
      const lib = pathByName("xz", "fx-lib-1.0")
      const base = pathByName("xz", "fx-base-1.0")
      const got = some(yield* bc.fetch(digestOf(app)), "fx-app-1.0")
      expectFixture(got, app)
      assert.deepStrictEqual(puts, [basename(base.storePath), basename(lib.storePath), basename(app.storePath)])
      for (const p of [app, lib, base]) yield* expectStored(store, p)

      const planned = events.filter(BinaryCache.Event.$is("ClosurePlanned"))
      assert.strictEqual(planned.length, 1)
      assert.deepStrictEqual(planned[0].paths.map((p) => p.storePath), puts)
      assert.strictEqual(planned[0].narBytes, app.narSize + lib.narSize + base.narSize)
      const finished = events.filter(BinaryCache.Event.$is("PathFinished")).map((e) => e.storePath).sort()
      assert.deepStrictEqual(finished, [...puts].sort())
      const progress = events.filter(BinaryCache.Event.$is("PathProgress")).filter((e) => e.storePath === puts[2])
      assert.strictEqual(progress[progress.length - 1].narBytes, app.narSize)

      // fetched again: references are now present locally, only the path itself is planned, and its NAR
      // is not downloaded again (the store's NarIndex knows its root)
      server.requests.length = 0
      events.length = 0
      expectFixture(some(yield* bc.fetch(digestOf(app)), "again"), app)
      const nars = server.requests.filter((r) => r.startsWith("/nar/"))
      assert.deepStrictEqual(nars, [])
      assert.deepStrictEqual(
        events.filter(BinaryCache.Event.$is("PathFinished")).map((e) => [e.storePath, e.reused]),
        [[basename(app.storePath), true]]
      )
      const again = events.filter(BinaryCache.Event.$is("ClosurePlanned"))[0]
      assert.deepStrictEqual(again.present, [basename(lib.storePath)])
    })))

  it.live("references already in the store are recorded with the store's node, not fetched", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("zstd")])
      const store = yield* memoryStore
      const bc = yield* open(server, store)
      const target = pathByName("zstd", "fx-symlink-to-store")
      const dep = pathByName("zstd", "fx-regular-file")
      yield* bc.fetch(digestOf(dep))
      server.requests.length = 0
      expectFixture(some(yield* bc.fetch(digestOf(target)), target.name), target)
      assert.isFalse(server.requests.includes(`/${dep.hashPart}.narinfo`), "a present reference's narinfo is not read")
    })))

  it.live("NAR downloads run concurrently, at most `concurrency` at once", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("none")])
      server.addFault(/^\/nar\//, { _tag: "Slow", chunkBytes: 64, delayMs: 2 })
      const bc = yield* open(server, yield* memoryStore, { concurrency: 2 })
      const app = pathByName("none", "fx-app-1.0")
      expectFixture(some(yield* bc.fetch(digestOf(app)), app.name), app)
      assert.strictEqual(server.maxInFlight.nar, 2)
    })))

  it.live("a reference the cache lacks fails with MissingReference and stores nothing", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const lib = pathByName("xz", "fx-lib-1.0")
      const app = pathByName("xz", "fx-app-1.0")
      server.addFault(`/${pathByName("xz", "fx-base-1.0").hashPart}.narinfo`, { _tag: "Status", status: 404 })
      const store = yield* memoryStore
      const bc = yield* open(server, store)
      const e = expectTag(yield* failWith(bc.fetch(digestOf(app))), "MissingReference")
      assert.strictEqual(e.referrer, basename(lib.storePath))
      assert.strictEqual(e.reference, basename(pathByName("xz", "fx-base-1.0").storePath))
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(app))))
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(lib))))
      assert.isFalse(server.requests.some((r) => r.startsWith("/nar/")), "no NAR is downloaded")
    })))

  it.live("narinfos referencing each other in a cycle fail with ReferenceCycle", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("unsigned")])
      const a = pathByName("unsigned", "fx-text.txt")
      const b = pathByName("unsigned", "fx-regular-file")
      server.files.set(`/${a.hashPart}.narinfo`, withNarinfoField(narinfoText(a), "References", basename(b.storePath)))
      server.files.set(`/${b.hashPart}.narinfo`, withNarinfoField(narinfoText(b), "References", basename(a.storePath)))
      const bc = yield* open(server, yield* memoryStore)
      const e = expectTag(yield* failWith(bc.fetch(digestOf(a))), "ReferenceCycle")
      assert.deepStrictEqual(e.cycle, [basename(a.storePath), basename(b.storePath), basename(a.storePath)])
    })))
})

// ---------------------------------------------------------------------------
// signatures
// ---------------------------------------------------------------------------

describe("BinaryCache: signature policy", () => {
  for (const cache of ["unsigned", "signed-test-cache-2"]) {
    it.live(`${cache} with test-cache-1 trusted: UntrustedNarInfo naming the path and the keys tried`, () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* serveCache([cacheDir(cache)])
        const store = yield* memoryStore
        const bc = yield* open(server, store, { trustedPublicKeys: [publicKey("test-cache-1")] })
        const p = pathByName(cache, "fx-regular-file")
        const e = expectTag(yield* failWith(bc.fetch(digestOf(p))), "UntrustedNarInfo")
        assert.strictEqual(e.storePath, p.storePath)
        assert.deepStrictEqual(e.keysTried, ["test-cache-1"])
        assert.deepStrictEqual(e.signedBy, cache === "unsigned" ? [] : ["test-cache-2"])
        assert.include(e.message, p.storePath)
        assert.include(e.message, "test-cache-1")
        assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(p))))
        // through the PathInfoService interface the error travels inside a StorageError
        const wrapped = expectTag(yield* Effect.flip(bc.pathInfoService.get(digestOf(p))), "StorageError")
        assert.strictEqual((wrapped.cause as BinaryCacheError)._tag, "UntrustedNarInfo")
      })))
  }

  it.live("a signature over other content (NarHash changed) does not verify", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const p = pathByName("xz", "fx-regular-file")
      server.files.set(`/${p.hashPart}.narinfo`, withNarinfoField(narinfoText(p), "NarHash", otherSha256(p.narHash)))
      const bc = yield* open(server, yield* memoryStore, { trustedPublicKeys: [publicKey("test-cache-1")] })
      const e = expectTag(yield* failWith(bc.fetch(digestOf(p))), "UntrustedNarInfo")
      assert.deepStrictEqual(e.signedBy, ["test-cache-1"])
    })))

  it.live("any one trusted key that verifies is enough", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("signed-test-cache-2")])
      const bc = yield* open(server, yield* memoryStore, {
        trustedPublicKeys: [publicKey("test-cache-1"), publicKey("test-cache-2")]
      })
      const p = pathByName("signed-test-cache-2", "fx-tree")
      expectFixture(some(yield* bc.fetch(digestOf(p)), p.name), p)
    })))
})

// ---------------------------------------------------------------------------
// HTTP behaviour and faults
// ---------------------------------------------------------------------------

describe("BinaryCache: HTTP", () => {
  it.live("404 and 403 on a narinfo mean not found; an unknown digest too", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const bc = yield* open(server, yield* memoryStore)
      const p = pathByName("xz", "fx-regular-file")
      server.addFault(`/${p.hashPart}.narinfo`, { _tag: "Status", status: 404 }, 1)
      server.addFault(`/${p.hashPart}.narinfo`, { _tag: "Status", status: 403 }, 1)
      assert.isTrue(Option.isNone(yield* bc.pathInfoService.get(digestOf(p))))
      assert.isTrue(Option.isNone(yield* bc.pathInfoService.get(digestOf(p))))
      assert.isTrue(Option.isSome(yield* bc.pathInfoService.get(digestOf(p))))
      assert.isTrue(Option.isNone(yield* bc.pathInfoService.get(new Uint8Array(20))))
      const e = expectTag(yield* Effect.flip(bc.pathInfoService.get(new Uint8Array(19))), "InvalidPathInfo")
      assert.strictEqual(e.field, "digest")
    })))

  it.live("500 is an HttpError naming the URL and status; retried when retries are allowed", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const p = pathByName("xz", "fx-regular-file")
      const narinfo = `/${p.hashPart}.narinfo`
      server.addFault(narinfo, { _tag: "Status", status: 500 }, 1)
      const bc = yield* open(server, yield* memoryStore)
      const e = expectTag(yield* failWith(bc.fetch(digestOf(p))), "HttpError")
      assert.strictEqual(e.reason, "Status")
      assert.strictEqual(e.status, 500)
      assert.strictEqual(e.url, server.url + narinfo)
      server.addFault(narinfo, { _tag: "Status", status: 503 }, 2)
      const retrying = yield* open(server, yield* memoryStore, { retries: 2 })
      expectFixture(some(yield* retrying.fetch(digestOf(p)), p.name), p)
    })))

  it.live("a NAR the narinfo points at but the cache lacks is an HttpError, not 'not found'", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const p = pathByName("xz", "fx-regular-file")
      server.addFault("/" + p.url, { _tag: "Status", status: 404 })
      const store = yield* memoryStore
      const e = expectTag(yield* failWith((yield* open(server, store)).fetch(digestOf(p))), "HttpError")
      assert.strictEqual(e.status, 404)
      assert.strictEqual(e.url, `${server.url}/${p.url}`)
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(p))))
    })))

  it.live("a body cut short fails and stores nothing", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("none")])
      const p = pathByName("none", "fx-tree")
      server.addFault("/" + p.url, { _tag: "CutAfter", bytes: 1000 })
      const store = yield* memoryStore
      const e = yield* failWith((yield* open(server, store)).fetch(digestOf(p)))
      assert.oneOf(e._tag, ["HttpError", "NarSizeMismatch"], e.message)
      if (e._tag === "HttpError") assert.strictEqual(e.reason, "Body")
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(p))))
    })))

  it.live("a slow body still arrives whole", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("gzip")])
      const p = pathByName("gzip", "fx-tree")
      server.addFault("/" + p.url, { _tag: "Slow", chunkBytes: 100, delayMs: 3 })
      const bc = yield* open(server, yield* memoryStore, { timeout: "2 seconds" })
      expectFixture(some(yield* bc.fetch(digestOf(p)), p.name), p)
    })))

  it.live("a body that stalls fails with a Timeout once no byte came for `timeout`", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("none")])
      const p = pathByName("none", "fx-tree")
      server.addFault("/" + p.url, { _tag: "Stall", bytes: 500 })
      const store = yield* memoryStore
      const started = Date.now()
      const e = expectTag(
        yield* failWith((yield* open(server, store, { timeout: "1 second" })).fetch(digestOf(p))),
        "HttpError"
      )
      assert.strictEqual(e.reason, "Timeout")
      assert.strictEqual(e.url, `${server.url}/${p.url}`)
      assert.isBelow(Date.now() - started, 5000)
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(p))))
    })))

  it.live("nix-cache-info: StoreDir must match, Priority is reported, a missing one is an error", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const p = pathByName("xz", "fx-regular-file")
      server.files.set("/nix-cache-info", "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n")
      const bc = yield* open(server, yield* memoryStore)
      const info = yield* bc.cacheInfo
      assert.deepStrictEqual(info.priority, Option.some(40))
      assert.deepStrictEqual(info.wantMassQuery, Option.some(true))
      assert.deepStrictEqual(info.storeDir, Option.some("/nix/store"))

      server.files.set("/nix-cache-info", "StoreDir: /gnu/store\n")
      const other = yield* open(server, yield* memoryStore)
      const e = expectTag(yield* failWith(other.fetch(digestOf(p))), "CacheInfoError")
      assert.strictEqual(e.reason, "StoreDirMismatch")
      assert.include(e.message, "/gnu/store")
      assert.include(e.message, "/nix/store")
      const elsewhere = yield* open(server, yield* memoryStore, { storeDir: "/gnu/store" })
      expectTag(yield* failWith(elsewhere.fetch(digestOf(p))), "InvalidNarInfo") // its narinfos name /nix/store paths

      server.files.set("/nix-cache-info", "Priority: high\n")
      const bad = yield* open(server, yield* memoryStore)
      assert.strictEqual(expectTag(yield* failWith(bad.fetch(digestOf(p))), "CacheInfoError").reason, "Invalid")

      server.files.delete("/nix-cache-info")
      server.addFault("/nix-cache-info", { _tag: "Status", status: 404 })
      const missing = yield* open(server, yield* memoryStore)
      assert.strictEqual(expectTag(yield* failWith(missing.fetch(digestOf(p))), "CacheInfoError").reason, "Missing")
    })))

  it.live("put and list fail with NotSupported", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const bc = yield* open(server, yield* memoryStore)
      const p = some(yield* bc.fetch(digestOf(pathByName("xz", "fx-empty-file"))), "fx-empty-file")
      const put = expectTag(yield* Effect.flip(bc.pathInfoService.put(p)), "NotSupported")
      assert.strictEqual(put.operation, "put")
      const list = expectTag(yield* Effect.flip(Stream.runDrain(bc.pathInfoService.list)), "NotSupported")
      assert.strictEqual(list.operation, "list")
    })))

  it.live("narinfos that are not narinfos, or describe another path, are InvalidNarInfo", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const p = pathByName("xz", "fx-regular-file")
      const q = pathByName("xz", "fx-empty-file")
      const bc = yield* open(server, yield* memoryStore)
      server.addFault(`/${p.hashPart}.narinfo`, { _tag: "Replace", body: "<html>hello</html>\n" }, 1)
      const parse = expectTag(yield* failWith(bc.fetch(digestOf(p))), "InvalidNarInfo")
      assert.strictEqual(parse.reason, "Parse")
      server.addFault(`/${p.hashPart}.narinfo`, { _tag: "Replace", body: narinfoText(q) }, 1)
      const wrong = expectTag(yield* failWith(bc.fetch(digestOf(p))), "InvalidNarInfo")
      assert.strictEqual(wrong.reason, "WrongStorePath")
      assert.include(wrong.message, basename(q.storePath))
      server.addFault(`/${p.hashPart}.narinfo`, { _tag: "Replace", body: withNarinfoField(narinfoText(p), "Compression", "lz4") }, 1)
      const lz4 = expectTag(yield* failWith(bc.fetch(digestOf(p))), "InvalidNarInfo")
      assert.strictEqual(lz4.reason, "UnsupportedCompression")
      assert.include(lz4.message, "lz4")
    })))
})

// ---------------------------------------------------------------------------
// tampered data
// ---------------------------------------------------------------------------

describe("BinaryCache: tampered data is refused with both values, nothing persisted", () => {
  const refuse = <T extends BinaryCacheError["_tag"]>(
    cache: string,
    name: string,
    tag: T,
    tamper: (server: CacheServer, p: ManifestPath) => void
  ) =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir(cache)])
      const p = pathByName(cache, name)
      tamper(server, p)
      const store = yield* memoryStore
      const bc = yield* open(server, store)
      const e = expectTag(yield* failWith(bc.fetch(digestOf(p))), tag)
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(p))), "nothing persisted")
      return { e, p, server }
    }))

  it.live("a NAR with one byte changed: NarHashMismatch", () =>
    Effect.gen(function*() {
      const { e, p } = yield* refuse("none", "fx-regular-file", "NarHashMismatch", (server, p) => {
        // a byte of the file's contents, so the NAR stays well-formed
        const offset = readFixture(`caches/none/${p.url}`).indexOf("hello from")
        assert.isAbove(offset, 0)
        server.addFault("/" + p.url, { _tag: "FlipByte", offset })
      })
      assert.strictEqual(e.expected, p.narHash)
      assert.notStrictEqual(e.actual, p.narHash)
      assert.match(e.actual, /^sha256:[0-9a-z]{52}$/)
      assert.include(e.message, e.expected)
      assert.include(e.message, e.actual)
      assert.strictEqual(e.storePath, basename(p.storePath))
    }))

  it.live("a narinfo whose NarHash is wrong: NarHashMismatch", () =>
    Effect.gen(function*() {
      let fake = ""
      const { e, p } = yield* refuse("unsigned", "fx-tree", "NarHashMismatch", (server, p) => {
        fake = otherSha256(p.narHash)
        server.files.set(`/${p.hashPart}.narinfo`, withNarinfoField(narinfoText(p), "NarHash", fake))
      })
      assert.strictEqual(e.expected, fake)
      assert.strictEqual(e.actual, p.narHash)
    }))

  it.live("a NAR longer than NarSize: NarSizeMismatch, reading stops right away", () =>
    Effect.gen(function*() {
      const { e, p, server } = yield* refuse("none", "fx-tree", "NarSizeMismatch", (server, p) =>
        server.addFault("/" + p.url, { _tag: "Append", bytes: 1024 * 1024 * 1024 }))
      assert.strictEqual(e.expected, p.narSize)
      assert.isTrue(e.atLeast)
      assert.isAbove(e.actual, p.narSize)
      // a gigabyte was on offer; the client hung up long before
      yield* Effect.sleep("100 millis")
      const sent = server.bytesSent.get("/" + p.url) ?? 0
      assert.isBelow(sent, 64 * 1024 * 1024, `the server sent ${sent} bytes`)
      assert.include(server.aborted, "/" + p.url)
    }))

  it.live("a compressed NAR longer than NarSize: NarSizeMismatch", () =>
    Effect.gen(function*() {
      const { e, p } = yield* refuse("unsigned", "fx-tree", "NarSizeMismatch", (server, p) =>
        server.files.set(`/${p.hashPart}.narinfo`, withNarinfoField(narinfoText(p), "NarSize", String(p.narSize - 8))))
      assert.strictEqual(e.expected, p.narSize - 8)
      assert.isTrue(e.atLeast)
    }))

  // (bzip2 is left out: its unit is a block of up to 900 kB of NAR, and
  // fx-large's NAR fits one block, so its whole file precedes any output.)
  for (const cache of ["xz", "zstd", "gzip", "br"]) {
    it.live(`${cache}: reading a compressed NAR stops once NarSize is exceeded`, () =>
      Effect.gen(function*() {
        const { e, p, server } = yield* refuse(cache, "fx-large", "NarSizeMismatch", (server, p) => {
          server.files.set(`/${p.hashPart}.narinfo`, withNarinfoField(narinfoText(p), "NarSize", "20000"))
          server.addFault("/" + p.url, { _tag: "Slow", chunkBytes: 1024, delayMs: 10 })
        })
        assert.strictEqual(e.expected, 20000)
        assert.isTrue(e.atLeast)
        yield* Effect.sleep("50 millis")
        const sent = server.bytesSent.get("/" + p.url) ?? 0
        // (how much input 20 000 bytes of NAR take depends on the codec)
        assert.isBelow(sent, p.fileSize, `sent ${sent} of ${p.fileSize} bytes`)
        assert.include(server.aborted, "/" + p.url)
      }))
  }

  it.live("a narinfo promising a longer NAR: NarSizeMismatch with the real size", () =>
    Effect.gen(function*() {
      const { e, p } = yield* refuse("unsigned", "fx-tree", "NarSizeMismatch", (server, p) =>
        server.files.set(`/${p.hashPart}.narinfo`, withNarinfoField(narinfoText(p), "NarSize", String(p.narSize + 8))))
      assert.strictEqual(e.expected, p.narSize + 8)
      assert.strictEqual(e.actual, p.narSize)
      assert.isFalse(e.atLeast)
    }))

  for (const cache of ["xz", "bzip2", "zstd", "br", "gzip"]) {
    it.live(`${cache}: a compressed NAR cut short is a NarDecompressionError`, () =>
      Effect.gen(function*() {
        const { e } = yield* refuse(cache, "fx-large", "NarDecompressionError", (server, p) => {
          const file = readFixture(`${manifest.caches[cache].dir}/${p.url}`)
          server.addFault("/" + p.url, { _tag: "Replace", body: file.subarray(0, Math.floor(file.length / 2)) })
        })
        assert.strictEqual(e.compression, cache)
      }), 30_000)
  }

  it.live("a NAR that is not a NAR: NarIngestError", () =>
    Effect.gen(function*() {
      const { e } = yield* refuse("unsigned", "fx-regular-file", "NarIngestError", (server, p) => {
        const text = withNarinfoField(withNarinfoField(narinfoText(p), "Compression", "none"), "URL", "nar/garbage.nar")
        server.files.set(`/${p.hashPart}.narinfo`, withNarinfoField(text, "NarSize", "16"))
        server.files.set("/nar/garbage.nar", "not a NAR at all")
      })
      assert.strictEqual(e.reason, "InvalidNar")
    }))
})

// ---------------------------------------------------------------------------
// CA narinfos that contradict their content
// ---------------------------------------------------------------------------

describe("BinaryCache: narinfo fields checked against the content", () => {
  it.live("a fixed:r:sha256 CA that is not the NarHash is InvalidNarInfo (InvalidPathInfo)", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("unsigned")])
      const p = pathByName("unsigned", "fx-added-dir")
      assert.match(p.ca ?? "", /^fixed:r:sha256:/)
      server.files.set(`/${p.hashPart}.narinfo`, withNarinfoField(narinfoText(p), "CA", "fixed:r:" + otherSha256(p.narHash)))
      const store = yield* memoryStore
      const e = expectTag(yield* failWith((yield* open(server, store)).fetch(digestOf(p))), "InvalidNarInfo")
      assert.strictEqual(e.reason, "InvalidPathInfo")
      assert.include(e.detail, "ca")
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(p))))
    })))
})

// keep NarInfo referenced for the type of narInfo()
describe("BinaryCache.narInfo", () => {
  it.live("returns the parsed, signature-checked narinfo", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const bc = yield* open(server, yield* memoryStore, { trustedPublicKeys: [publicKey("test-cache-1")] })
      const p = pathByName("xz", "fx-app-1.0")
      const ni = some(yield* bc.narInfo(p.hashPart), p.name)
      assert.isTrue(NarInfo.equals(ni, Either.getOrThrow(NarInfo.parse(narinfoText(p)))))
      assert.isTrue(Option.isNone(yield* bc.narInfo("00000000000000000000000000000000")))
    })))
})
