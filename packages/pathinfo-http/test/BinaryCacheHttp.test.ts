/**
 * The binary cache client's HTTP behaviour against the fault-injecting test
 * server: retries (which statuses, backoff, Retry-After), the 403 policy and
 * credentials errors, resumed NAR downloads, time limits, FileSize/FileHash,
 * and one test per fault of the issue (each a typed error or a successful
 * retry, never a stored PathInfo of incomplete content).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as HashMap from "effect/HashMap"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { parseRetryAfter } from "../src/internal/http.js"
import { serveCache } from "./support/cacheServer.js"
import { basename, cacheDir, digestOf, pathByName, readFixture } from "./support/fixtures.js"
import {
  expectFixture,
  expectStored,
  expectTag,
  failWith,
  memoryStore,
  narinfoText,
  open,
  some,
  withNarinfoField
} from "./support/helpers.js"

const fast = { retryDelay: "5 millis" } as const

/** A URL on 127.0.0.1 where nothing listens. */
const refusedUrl = Effect.promise(() =>
  new Promise<string>((resolve) => {
    const server = http.createServer()
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(`http://127.0.0.1:${port}`))
    })
  })
)

describe("BinaryCache HTTP: retries", () => {
  for (const status of [408, 429, 500, 502, 503, 504]) {
    it.live(`${status} on the narinfo and on the NAR is retried`, () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* serveCache([cacheDir("xz")])
        const p = pathByName("xz", "fx-tree")
        server.addFault(`/${p.hashPart}.narinfo`, { _tag: "Status", status }, 2)
        server.addFault("/" + p.url, { _tag: "Status", status }, 2)
        const store = yield* memoryStore
        const bc = yield* open(server, store, { retries: 2, ...fast })
        expectFixture(some(yield* bc.fetch(digestOf(p)), p.name), p)
        assert.strictEqual(server.requests.filter((r) => r === `/${p.hashPart}.narinfo`).length, 3)
        assert.strictEqual(server.requests.filter((r) => r === "/" + p.url).length, 3)
        yield* expectStored(store, p)
      })))
  }

  it.live("retries run out: the last HttpError, nothing stored", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const p = pathByName("xz", "fx-tree")
      server.addFault("/" + p.url, { _tag: "Status", status: 503 })
      const store = yield* memoryStore
      const e = expectTag(yield* failWith((yield* open(server, store, { retries: 3, ...fast })).fetch(digestOf(p))), "HttpError")
      assert.strictEqual(e.status, 503)
      assert.strictEqual(server.requests.filter((r) => r === "/" + p.url).length, 4)
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(p))))
    })))

  it.live("never retried: 401, 403, 404, 410 and 501", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const p = pathByName("xz", "fx-tree")
      const narinfo = `/${p.hashPart}.narinfo`
      const bc = yield* open(server, yield* memoryStore, { retries: 3, ...fast })
      for (const status of [401, 403, 404, 410, 501]) {
        server.clearFaults()
        server.requests.length = 0
        server.addFault(narinfo, { _tag: "Status", status })
        yield* Effect.either(bc.fetch(digestOf(p)))
        assert.strictEqual(server.requests.filter((r) => r === narinfo).length, 1, `${status} on the narinfo`)
        server.clearFaults()
        server.requests.length = 0
        server.addFault("/" + p.url, { _tag: "Status", status })
        yield* Effect.either(bc.fetch(digestOf(p)))
        assert.strictEqual(server.requests.filter((r) => r === "/" + p.url).length, 1, `${status} on the NAR`)
      }
    })))

  it.live("the waits grow exponentially from retryDelay", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const p = pathByName("xz", "fx-tree")
      server.addFault(`/${p.hashPart}.narinfo`, { _tag: "Status", status: 500 }, 3)
      const bc = yield* open(server, yield* memoryStore, { retries: 3, retryDelay: "60 millis" })
      const started = Date.now()
      expectFixture(some(yield* bc.fetch(digestOf(p)), p.name), p)
      const elapsed = Date.now() - started
      // 60·(2^(0+j1) + 2^(1+j2) + 2^(2+j3)) with jitter j in [0, 0.5): between 420 and ~594 ms
      assert.isAtLeast(elapsed, 420)
      assert.isBelow(elapsed, 2000)
    })))

  it.live("Retry-After in seconds is honoured; a long one is capped at maxRetryDelay", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const p = pathByName("xz", "fx-tree")
      const narinfo = `/${p.hashPart}.narinfo`
      server.addFault(narinfo, { _tag: "Status", status: 429, headers: { "retry-after": "1" } }, 1)
      const bc = yield* open(server, yield* memoryStore, { retries: 1, ...fast })
      let started = Date.now()
      expectFixture(some(yield* bc.fetch(digestOf(p)), p.name), p)
      assert.isAtLeast(Date.now() - started, 1000)

      server.addFault(narinfo, { _tag: "Status", status: 503, headers: { "retry-after": "3600" } }, 1)
      const capped = yield* open(server, yield* memoryStore, { retries: 1, ...fast, maxRetryDelay: "300 millis" })
      started = Date.now()
      expectFixture(some(yield* capped.fetch(digestOf(p)), p.name), p)
      const elapsed = Date.now() - started
      assert.isAtLeast(elapsed, 300)
      assert.isBelow(elapsed, 3000)
    })))

  it.live("Retry-After as an HTTP-date is honoured", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const p = pathByName("xz", "fx-tree")
      // HTTP-dates have whole seconds: 2 s ahead is at least 1 s of wait
      const date = new Date(Date.now() + 2000).toUTCString()
      server.addFault("/" + p.url, { _tag: "Status", status: 503, headers: { "retry-after": date } }, 1)
      const bc = yield* open(server, yield* memoryStore, { retries: 1, ...fast })
      const started = Date.now()
      expectFixture(some(yield* bc.fetch(digestOf(p)), p.name), p)
      assert.isAtLeast(Date.now() - started, 1000)
    })))

  it("parseRetryAfter: seconds, HTTP-date (past ones are 0), garbage", () => {
    const now = Date.parse("Wed, 25 Nov 2026 07:00:00 GMT")
    assert.strictEqual(parseRetryAfter("120", now), 120_000)
    assert.strictEqual(parseRetryAfter(" 0 ", now), 0)
    assert.strictEqual(parseRetryAfter("Wed, 25 Nov 2026 07:00:30 GMT", now), 30_000)
    assert.strictEqual(parseRetryAfter("Wed, 25 Nov 2026 06:00:00 GMT", now), 0)
    assert.isUndefined(parseRetryAfter("soon", now))
    assert.isUndefined(parseRetryAfter("-5", now))
    assert.isUndefined(parseRetryAfter(undefined, now))
  })

  it.live("a connection reset before any answer is retried", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("zstd")])
      const p = pathByName("zstd", "fx-tree")
      server.addFault(`/${p.hashPart}.narinfo`, { _tag: "Reset" }, 1)
      server.addFault("/" + p.url, { _tag: "Reset" }, 2)
      const bc = yield* open(server, yield* memoryStore, { retries: 2, ...fast })
      expectFixture(some(yield* bc.fetch(digestOf(p)), p.name), p)
      const once = yield* open(server, yield* memoryStore)
      server.addFault("/" + p.url, { _tag: "Reset" }, 1)
      const e = expectTag(yield* failWith(once.fetch(digestOf(p))), "HttpError")
      assert.strictEqual(e.reason, "Transport")
    })))

  it.live("a refused connection is retried, then a Transport error naming the URL", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* refusedUrl
      const bc = yield* open({ url }, yield* memoryStore, { retries: 2, retryDelay: "20 millis" })
      const started = Date.now()
      const e = expectTag(yield* failWith(bc.cacheInfo), "HttpError")
      assert.strictEqual(e.reason, "Transport")
      assert.strictEqual(e.url, `${url}/nix-cache-info`)
      // two waits: at least 20 + 40 ms
      assert.isAtLeast(Date.now() - started, 60)
    })))
})

describe("BinaryCache HTTP: 403 policy and credentials", () => {
  it.live("403 on a narinfo: not found by default (as Nix for S3), AccessDenied with forbidden: error", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const p = pathByName("xz", "fx-tree")
      server.addFault(`/${p.hashPart}.narinfo`, { _tag: "Status", status: 403 })
      const miss = yield* open(server, yield* memoryStore)
      assert.isTrue(Option.isNone(yield* miss.fetch(digestOf(p))))
      const strict = yield* open(server, yield* memoryStore, { forbidden: "error" })
      const e = expectTag(yield* failWith(strict.fetch(digestOf(p))), "AccessDenied")
      assert.strictEqual(e.status, 403)
      assert.strictEqual(e.url, `${server.url}/${p.hashPart}.narinfo`)
      assert.include(e.message, "403")
      assert.include(e.message, e.url)
    })))

  for (const status of [401, 407]) {
    it.live(`${status} is AccessDenied naming the URL and status, for narinfos and NARs alike`, () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* serveCache([cacheDir("xz")])
        const p = pathByName("xz", "fx-tree")
        const bc = yield* open(server, yield* memoryStore, { retries: 2, ...fast })
        server.addFault(`/${p.hashPart}.narinfo`, { _tag: "Status", status }, 1)
        const onNarinfo = expectTag(yield* failWith(bc.fetch(digestOf(p))), "AccessDenied")
        assert.strictEqual(onNarinfo.status, status)
        assert.strictEqual(onNarinfo.url, `${server.url}/${p.hashPart}.narinfo`)
        server.addFault("/" + p.url, { _tag: "Status", status }, 1)
        const onNar = expectTag(yield* failWith(bc.fetch(digestOf(p))), "AccessDenied")
        assert.strictEqual(onNar.url, `${server.url}/${p.url}`)
        // through the PathInfoService interface: a StorageError carrying it, not "not found"
        server.addFault(`/${p.hashPart}.narinfo`, { _tag: "Status", status }, 1)
        const wrapped = expectTag(yield* Effect.flip(bc.pathInfoService.get(digestOf(p))), "StorageError")
        assert.include(wrapped.message, String(status))
      })))
  }

  it.live("403 on a NAR is AccessDenied whatever the policy", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const p = pathByName("xz", "fx-tree")
      server.addFault("/" + p.url, { _tag: "Status", status: 403 })
      const e = expectTag(yield* failWith((yield* open(server, yield* memoryStore)).fetch(digestOf(p))), "AccessDenied")
      assert.strictEqual(e.status, 403)
    })))
})

describe("BinaryCache HTTP: resumed NAR downloads", () => {
  // fx-large (fx-tree where uncompressed): tens of kB, so a cut lands in the middle
  const cut = (cache: string) => {
    const p = pathByName(cache, cache === "none" ? "fx-tree" : "fx-large")
    return { p, half: Math.floor(p.fileSize / 2) }
  }

  for (const cache of ["xz", "none"]) {
    it.live(`${cache}: a connection reset mid-NAR resumes with Range/If-Range and a 206`, () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* serveCache([cacheDir(cache)], { ranges: true })
        const { half, p } = cut(cache)
        server.addFault("/" + p.url, { _tag: "CutAfter", bytes: half }, 1)
        const store = yield* memoryStore
        const bc = yield* open(server, store, { retries: 1, ...fast })
        expectFixture(some(yield* bc.fetch(digestOf(p)), p.name), p)
        yield* expectStored(store, p)
        const nars = server.log.filter((r) => r.path === "/" + p.url)
        assert.strictEqual(nars.length, 2)
        assert.isUndefined(nars[0].headers.range)
        const range = /^bytes=(\d+)-$/.exec(nars[1].headers.range ?? "")
        assert.isNotNull(range, `second request's Range: ${nars[1].headers.range}`)
        const offset = Number(range![1])
        assert.isAbove(offset, 0)
        assert.isAtMost(offset, half)
        assert.match(String(nars[1].headers["if-range"]), /^"[0-9a-f]+"$/)
        // the resumed request only fetched the rest
        assert.isBelow(server.bytesSent.get("/" + p.url)!, p.fileSize + half)
      })))
  }

  it.live("a server without ranges answers 200: the first bytes are skipped (and checked), one import", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("zstd")])
      const { half, p } = cut("zstd")
      server.addFault("/" + p.url, { _tag: "CutAfter", bytes: half }, 1)
      const store = yield* memoryStore
      const events: Array<string> = []
      const bc = yield* open(server, store, { retries: 1, ...fast, onEvent: (e) => events.push(e._tag) })
      expectFixture(some(yield* bc.fetch(digestOf(p)), p.name), p)
      yield* expectStored(store, p)
      assert.strictEqual(server.requests.filter((r) => r === "/" + p.url).length, 2)
      assert.strictEqual(events.filter((t) => t === "PathStarted").length, 1, "one streaming import")
    })))

  it.live("the NAR changes between attempts (ETag changes): Changed, nothing stored", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")], { ranges: true })
      const { half, p } = cut("xz")
      const other = Buffer.from(readFixture(`caches/xz/${p.url}`))
      other[other.length - 100] ^= 0xff
      server.addFault("/" + p.url, { _tag: "CutAfter", bytes: half }, 1)
      server.addFault("/" + p.url, { _tag: "Replace", body: other }, 1)
      const store = yield* memoryStore
      const e = expectTag(
        yield* failWith((yield* open(server, store, { retries: 2, ...fast })).fetch(digestOf(p))),
        "HttpError"
      )
      assert.strictEqual(e.reason, "Changed")
      assert.include(e.message, "ETag")
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(p))))
    })))

  it.live("no ETag, and the bytes before the cut changed: Changed, nothing stored", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const { half, p } = cut("xz")
      server.addFault("/" + p.url, { _tag: "CutAfter", bytes: half }, 1)
      server.addFault("/" + p.url, { _tag: "FlipByte", offset: 100 }, 1)
      const store = yield* memoryStore
      const e = expectTag(
        yield* failWith((yield* open(server, store, { retries: 2, ...fast })).fetch(digestOf(p))),
        "HttpError"
      )
      assert.strictEqual(e.reason, "Changed")
      assert.include(e.message, "differ")
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(p))))
    })))

  it.live("a file that got shorter between attempts: Changed", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const { half, p } = cut("xz")
      server.addFault("/" + p.url, { _tag: "CutAfter", bytes: half }, 1)
      server.addFault("/" + p.url, { _tag: "Replace", body: readFixture(`caches/xz/${p.url}`).subarray(0, 10) }, 1)
      const e = expectTag(
        yield* failWith((yield* open(server, yield* memoryStore, { retries: 2, ...fast })).fetch(digestOf(p))),
        "HttpError"
      )
      assert.strictEqual(e.reason, "Changed")
    })))

  it.live("a 206 for another range than asked: HttpError Range, nothing stored", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")], { ranges: true })
      const { half, p } = cut("xz")
      server.addFault("/" + p.url, { _tag: "CutAfter", bytes: half }, 1)
      server.addFault("/" + p.url, { _tag: "ShiftRange", shift: 10 }, 1)
      const store = yield* memoryStore
      const e = expectTag(
        yield* failWith((yield* open(server, store, { retries: 2, ...fast })).fetch(digestOf(p))),
        "HttpError"
      )
      assert.strictEqual(e.reason, "Range")
      assert.strictEqual(e.status, 206)
      assert.match(e.detail, /^asked for bytes \d+-, got Content-Range bytes \d+-\d+\/\d+$/)
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(p))))
    })))

  it.live("a body that stalls mid-NAR times out and resumes", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("gzip")], { ranges: true })
      const { half, p } = cut("gzip")
      server.addFault("/" + p.url, { _tag: "Stall", bytes: half }, 1)
      const store = yield* memoryStore
      const bc = yield* open(server, store, { retries: 1, ...fast, idleTimeout: "300 millis" })
      expectFixture(some(yield* bc.fetch(digestOf(p)), p.name), p)
      const nars = server.log.filter((r) => r.path === "/" + p.url)
      assert.match(nars[1].headers.range ?? "", /^bytes=\d+-$/)
    })))
})

describe("BinaryCache HTTP: time limits", () => {
  it.live("no response headers within responseTimeout: Timeout; retried, then served", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const p = pathByName("xz", "fx-tree")
      server.addFault(`/${p.hashPart}.narinfo`, { _tag: "NoResponse" }, 1)
      const started = Date.now()
      const once = yield* open(server, yield* memoryStore, { responseTimeout: "300 millis", idleTimeout: "30 seconds" })
      const e = expectTag(yield* failWith(once.fetch(digestOf(p))), "HttpError")
      assert.strictEqual(e.reason, "Timeout")
      assert.include(e.detail, "no response")
      assert.isBelow(Date.now() - started, 5000)
      server.addFault(`/${p.hashPart}.narinfo`, { _tag: "NoResponse" }, 1)
      const retrying = yield* open(server, yield* memoryStore, { retries: 1, ...fast, responseTimeout: "300 millis" })
      expectFixture(some(yield* retrying.fetch(digestOf(p)), p.name), p)
    })))
})

describe("BinaryCache HTTP: FileSize and FileHash of the compressed file", () => {
  it.live("a FileSize that is not the file's: FileSizeMismatch with both values", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const p = pathByName("xz", "fx-large")
      server.files.set(`/${p.hashPart}.narinfo`, withNarinfoField(narinfoText(p), "FileSize", String(p.fileSize + 1)))
      const store = yield* memoryStore
      const e = expectTag(yield* failWith((yield* open(server, store)).fetch(digestOf(p))), "FileSizeMismatch")
      assert.strictEqual(e.expected, p.fileSize + 1)
      assert.strictEqual(e.actual, p.fileSize)
      assert.isFalse(e.atLeast)
      assert.include(e.message, String(p.fileSize + 1))
      assert.include(e.message, String(p.fileSize))
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(p))))
    })))

  it.live("a file longer than FileSize: reading stops at once, FileSizeMismatch (atLeast)", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("zstd")])
      const p = pathByName("zstd", "fx-large")
      server.files.set(`/${p.hashPart}.narinfo`, withNarinfoField(narinfoText(p), "FileSize", "1000"))
      server.addFault("/" + p.url, { _tag: "Slow", chunkBytes: 1024, delayMs: 10 })
      const store = yield* memoryStore
      const e = expectTag(yield* failWith((yield* open(server, store)).fetch(digestOf(p))), "FileSizeMismatch")
      assert.strictEqual(e.expected, 1000)
      assert.isTrue(e.atLeast)
      assert.isAbove(e.actual, 1000)
      yield* Effect.sleep("50 millis")
      assert.isBelow(server.bytesSent.get("/" + p.url) ?? 0, p.fileSize)
      assert.include(server.aborted, "/" + p.url)
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(p))))
    })))

  it.live("a FileHash that is not the file's: FileHashMismatch with both values", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("br")])
      const p = pathByName("br", "fx-tree")
      const text = narinfoText(p)
      const fileHash = /^FileHash: (.*)$/m.exec(text)![1]
      const fake = fileHash.slice(0, -1) + (fileHash.endsWith("0") ? "1" : "0")
      server.files.set(`/${p.hashPart}.narinfo`, withNarinfoField(text, "FileHash", fake))
      const store = yield* memoryStore
      const e = expectTag(yield* failWith((yield* open(server, store)).fetch(digestOf(p))), "FileHashMismatch")
      assert.strictEqual(e.expected, fake)
      assert.strictEqual(e.actual, fileHash)
      assert.include(e.message, fake)
      assert.include(e.message, fileHash)
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(p))))
    })))

  it.live("a narinfo without FileHash/FileSize is fetched on NarHash/NarSize alone", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const p = pathByName("xz", "fx-tree")
      server.files.set(`/${p.hashPart}.narinfo`, narinfoText(p).replace(/^File(Hash|Size): .*\n/gm, ""))
      expectFixture(some(yield* (yield* open(server, yield* memoryStore)).fetch(digestOf(p)), p.name), p)
    })))
})

// ---------------------------------------------------------------------------
// the faults, one test each (some live in BinaryCache.test.ts: noted)
// ---------------------------------------------------------------------------

describe("BinaryCache HTTP: faults end in a typed error or a successful retry, never a stored incomplete path", () => {
  // truncated body: "a body cut short fails and stores nothing" (BinaryCache.test.ts), and here with a resume
  // wrong NarHash, body longer than NarSize: "tampered data" in BinaryCache.test.ts
  it.live("truncated body, no retries left: HttpError Body, nothing stored", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")], { ranges: true })
      const p = pathByName("xz", "fx-large")
      server.addFault("/" + p.url, { _tag: "CutAfter", bytes: 4096 })
      const store = yield* memoryStore
      const e = expectTag(yield* failWith((yield* open(server, store, { retries: 2, ...fast })).fetch(digestOf(p))), "HttpError")
      assert.strictEqual(e.reason, "Body")
      assert.strictEqual(server.requests.filter((r) => r === "/" + p.url).length, 3)
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(p))))
    })))

  it.live("bad compression (a corrupt byte in the middle, no FileHash to catch it first): NarDecompressionError", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("zstd")])
      const p = pathByName("zstd", "fx-large")
      server.files.set(`/${p.hashPart}.narinfo`, narinfoText(p).replace(/^FileHash: .*\n/m, ""))
      server.addFault("/" + p.url, { _tag: "FlipByte", offset: Math.floor(p.fileSize / 2) })
      const store = yield* memoryStore
      const e = yield* failWith((yield* open(server, store)).fetch(digestOf(p)))
      // a flipped byte either breaks the zstd stream or its content (zstd checksums are optional)
      assert.oneOf(e._tag, ["NarDecompressionError", "NarHashMismatch", "NarIngestError"], e.message)
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(p))))
    })))

  it.live("bad compression with a FileHash: a typed error before anything is stored", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const p = pathByName("xz", "fx-large")
      server.addFault("/" + p.url, { _tag: "FlipByte", offset: Math.floor(p.fileSize / 2) })
      const store = yield* memoryStore
      const e = yield* failWith((yield* open(server, store)).fetch(digestOf(p)))
      assert.oneOf(e._tag, ["NarDecompressionError", "FileHashMismatch"], e.message)
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(p))))
    })))

  it.live("500 then 200 on the NAR: retried, stored whole", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("bzip2")])
      const p = pathByName("bzip2", "fx-large")
      server.addFault("/" + p.url, { _tag: "Status", status: 500 }, 1)
      const store = yield* memoryStore
      expectFixture(some(yield* (yield* open(server, store, { retries: 1, ...fast })).fetch(digestOf(p)), p.name), p)
      yield* expectStored(store, p)
    })))

  it.live("connection reset mid-NAR without retries: HttpError Body, nothing stored", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")], { ranges: true })
      const p = pathByName("xz", "fx-large")
      server.addFault("/" + p.url, { _tag: "CutAfter", bytes: Math.floor(p.fileSize / 2) })
      const store = yield* memoryStore
      const e = expectTag(yield* failWith((yield* open(server, store)).fetch(digestOf(p))), "HttpError")
      assert.strictEqual(e.reason, "Body")
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(p))))
    })))
})

// ---------------------------------------------------------------------------
// spans and log annotations
// ---------------------------------------------------------------------------

interface Recorded {
  readonly span: Tracer.Span
  ended: boolean
}

/** A tracer that keeps every span in memory. */
const collectingTracer = () => {
  const spans: Array<Recorded> = []
  let ids = 0
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const attributes = new Map<string, unknown>()
      const recorded: Recorded = {
        ended: false,
        span: {
          _tag: "Span",
          name,
          spanId: String(++ids),
          traceId: "test",
          parent,
          context,
          status: { _tag: "Started", startTime },
          attributes,
          links,
          sampled: true,
          kind,
          end: () => {
            recorded.ended = true
          },
          attribute: (key, value) => {
            attributes.set(key, value)
          },
          event: () => {},
          addLinks: () => {}
        }
      }
      spans.push(recorded)
      return recorded.span
    },
    context: (f) => f()
  })
  const named = (name: string) => spans.filter((s) => s.span.name === name).map((s) => s.span)
  return { spans, tracer, named }
}

describe("BinaryCache HTTP: spans and log annotations", () => {
  it.live("every step has a span with the store path: narInfo, plan, downloadNar (with its requests), importNar, put", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")], { ranges: true })
      const app = pathByName("xz", "fx-app-1.0")
      const closure = [app, pathByName("xz", "fx-lib-1.0"), pathByName("xz", "fx-base-1.0")]
      const names = closure.map((p) => basename(p.storePath)).sort()
      // one NAR is cut once, so its download has two requests
      server.addFault("/" + closure[2].url, { _tag: "CutAfter", bytes: 100 }, 1)
      const { named, spans, tracer } = collectingTracer()
      const bc = yield* open(server, yield* memoryStore, { retries: 1, ...fast })
      expectFixture(some(yield* bc.fetch(digestOf(app)).pipe(Effect.withTracer(tracer)), app.name), app)

      const attr = (s: Tracer.Span, key: string) => s.attributes.get(key)
      const storePaths = (name: string) => named(name).map((s) => String(attr(s, "nix.store_path"))).sort()
      assert.strictEqual(named("BinaryCache.fetch").length, 1)
      assert.strictEqual(attr(named("BinaryCache.fetch")[0], "nix.store_path_hash"), app.hashPart)
      // the requested path's narinfo by hash (its name is not known yet), its references' by name
      assert.deepStrictEqual(
        storePaths("BinaryCache.narInfo"),
        [app.hashPart, ...names.filter((n) => n !== basename(app.storePath))].sort()
      )
      assert.deepStrictEqual(storePaths("BinaryCache.plan"), [basename(app.storePath)])
      assert.deepStrictEqual(storePaths("BinaryCache.importNar"), names)
      assert.deepStrictEqual(storePaths("BinaryCache.downloadNar"), names)
      assert.deepStrictEqual(storePaths("BinaryCache.put"), names)
      for (const s of named("BinaryCache.importNar")) {
        assert.strictEqual(attr(s, "nix.compression"), "xz")
        const p = closure.find((q) => basename(q.storePath) === attr(s, "nix.store_path"))!
        assert.strictEqual(attr(s, "nix.nar_size"), p.narSize)
        assert.strictEqual(attr(s, "nix.file_size"), p.fileSize)
        assert.strictEqual(attr(s, "http.url"), `${server.url}/${p.url}`)
      }
      // NAR requests are children of their download's span, with the attempt and the range
      const cutUrl = `${server.url}/${closure[2].url}`
      const requests = named("BinaryCache.request").filter((s) => attr(s, "http.url") === cutUrl)
      assert.deepStrictEqual(requests.map((s) => attr(s, "http.attempt")), [1, 2])
      assert.isUndefined(attr(requests[0], "http.range"))
      assert.match(String(attr(requests[1], "http.range")), /^bytes=\d+-$/)
      assert.deepStrictEqual(requests.map((s) => attr(s, "http.status")), [200, 206])
      for (const r of requests) {
        const parent = Option.getOrUndefined(r.parent)
        assert.strictEqual(parent?._tag === "Span" ? parent.name : undefined, "BinaryCache.downloadNar")
        assert.strictEqual(parent?._tag === "Span" ? attr(parent, "nix.store_path") : undefined, basename(closure[2].storePath))
      }
      assert.isTrue(spans.every((s) => s.ended), "every span ended")
    })))

  it.live("retries are logged as warnings with the store path, URL, attempt, delay and reason", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const p = pathByName("xz", "fx-tree")
      server.addFault("/" + p.url, { _tag: "Status", status: 503 }, 1)
      const logs: Array<{ level: LogLevel.LogLevel; message: string; annotations: Record<string, unknown> }> = []
      const logger = Logger.make(({ annotations, logLevel, message }) => {
        logs.push({
          level: logLevel,
          message: String(Array.isArray(message) ? message.join(" ") : message),
          annotations: Object.fromEntries(HashMap.toEntries(annotations))
        })
      })
      const bc = yield* open(server, yield* memoryStore, { retries: 1, ...fast })
      yield* bc.fetch(digestOf(p)).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      const retries = logs.filter((l) => l.message.includes("retrying"))
      assert.strictEqual(retries.length, 1)
      const [r] = retries
      assert.strictEqual(r.level, LogLevel.Warning)
      assert.include(r.message, "HTTP 503")
      assert.strictEqual(r.annotations.storePath, basename(p.storePath))
      assert.strictEqual(r.annotations.url, `${server.url}/${p.url}`)
      assert.strictEqual(r.annotations.attempt, 2)
      assert.strictEqual(r.annotations.reason, "Status")
      assert.isNumber(r.annotations.delayMs)
      yield* FiberRef.get(FiberRef.currentLogAnnotations) // (annotations do not leak out of fetch)
        .pipe(Effect.map((a) => assert.isTrue(Option.isNone(HashMap.get(a, "storePath")))))
    })))
})
