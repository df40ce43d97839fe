/**
 * Compressed hostile NARs (corrupt files and compression bombs) meet
 * Decompression and a BinaryCache fetching from a test server; every hostile
 * NAR of the corpus is also served (uncompressed, with a matching NarHash and
 * NarSize) to a BinaryCache. Each: the expected typed error, nothing
 * persisted, and memory bounded while a bomb of 1 GiB is refused.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Nixbase32 from "@nixfx/nix-compat/Nixbase32"
import * as Decompression from "@nixfx/pathinfo-http/Decompression"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Crypto from "node:crypto"
import { serveCache } from "../packages/pathinfo-http/test/support/cacheServer.js"
import { memoryStore, open } from "../packages/pathinfo-http/test/support/helpers.js"
import { bytesOf, type Case, casesOf, manifest } from "./support/corpus.js"

const compressed = casesOf("compressed")
const bombs = compressed.filter((c) => c.expandsTo !== undefined)
const MiB = 1024 * 1024

/** Samples RSS every 10 ms while `effect` runs; returns its exit and the largest growth seen. */
const withPeakRss = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const before = process.memoryUsage().rss
    let peak = before
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss)
    }, 10)
    const exit = yield* Effect.exit(effect).pipe(Effect.ensuring(Effect.sync(() => clearInterval(timer))))
    peak = Math.max(peak, process.memoryUsage().rss)
    return { exit, growth: peak - before }
  })

const typedFailure = <A, E extends { readonly _tag: string; readonly message: string }>(exit: Exit.Exit<A, E>, id: string): E => {
  if (Exit.isSuccess(exit)) return assert.fail(`${id}: succeeded, expected a failure`)
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) return assert.fail(`${id}: not a typed failure: ${Cause.pretty(exit.cause)}`)
  return failure.value
}

describe("Decompression: hostile compressed files", () => {
  it("the corpus has xz and zstd bombs of 1 GiB, each under 1 MB", () => {
    for (const c of ["xz", "zstd"]) {
      const bomb = bombs.find((b) => b.compression === c)
      assert.isDefined(bomb, c)
      assert.isAbove(bomb!.expandsTo!, 1024 * MiB)
      assert.isBelow(bomb!.size, 1_000_000)
      assert.isAbove(bomb!.expandsTo! / bomb!.narSize, 1000)
    }
  })

  for (const c of compressed.filter((x) => x.expect.tag === "NarDecompressionError")) {
    it.effect(`${c.id}: DecompressionError — ${c.description}`, () =>
      Effect.gen(function*() {
        const bytes = yield* Effect.promise(() => bytesOf(c))
        const e = yield* Effect.flip(Stream.runDrain(Decompression.decompressBytes(c.compression, bytes)))
        assert.strictEqual(e._tag, "DecompressionError")
        assert.strictEqual(e.compression, c.compression)
      }))
  }

  // (256 MiB rather than the whole GiB keeps the test short; each decoder
  // has met the bomb's densest part by then)
  const taken = 256 * MiB
  for (const c of bombs) {
    it.live(`${c.id}: ${Math.min(taken, c.expandsTo!)} bytes of its output read with RSS growth under 100 MB`, () =>
      Effect.gen(function*() {
        const bytes = yield* Effect.promise(() => bytesOf(c))
        let total = 0
        const { exit, growth } = yield* withPeakRss(
          Decompression.decompressBytes(c.compression, bytes).pipe(
            Stream.takeWhile(() => total < taken),
            Stream.runForEach((chunk) => Effect.sync(() => (total += chunk.length)))
          )
        )
        assert.isTrue(Exit.isSuccess(exit))
        assert.isAtLeast(total, Math.min(taken, c.expandsTo!))
        assert.isBelow(growth, 100 * MiB, `RSS grew by ${growth} bytes`)
      }), 120_000)
  }
})

/** The store path served for case `id` (a distinct one per case). */
const storePathOf = (id: string) => {
  const hash = Nixbase32.encode(new Uint8Array(Crypto.createHash("sha1").update(id).digest()))
  return { hashPart: hash, storePath: `${manifest.storeDir}/${hash}-hostile` }
}
const narinfoFor = (c: Case, file: string, compression: string, narSize: number, narSha256: Uint8Array) => {
  const { storePath } = storePathOf(c.id)
  return [
    `StorePath: ${storePath}`,
    `URL: ${file}`,
    `Compression: ${compression}`,
    `NarHash: sha256:${Nixbase32.encode(narSha256)}`,
    `NarSize: ${narSize}`,
    "References: ",
    ""
  ].join("\n")
}
const sha256 = (bytes: Uint8Array) => new Uint8Array(Crypto.createHash("sha256").update(bytes).digest())

describe("BinaryCache.fetch: hostile compressed NARs", () => {
  for (const c of compressed) {
    it.live(`${c.id}: ${c.expect.tag}${c.expandsTo === undefined ? "" : ", RSS growth under 100 MB"}, nothing persisted — ${c.description}`, () =>
      Effect.scoped(Effect.gen(function*() {
        const bytes = yield* Effect.promise(() => bytesOf(c))
        const server = yield* serveCache([])
        server.files.set("/nix-cache-info", `StoreDir: ${manifest.storeDir}\n`)
        const { hashPart, storePath } = storePathOf(c.id)
        const file = `nar/${hashPart}.nar.${c.compression}`
        server.files.set(`/${file}`, bytes)
        // (the narinfo's NarHash only matters for the control that is merely too long; a bomb is refused on size)
        const sample = yield* Effect.promise(() => bytesOf(casesOf("nar").find((n) => n.id === "nar/valid-sample")!))
        server.files.set(`/${hashPart}.narinfo`, narinfoFor(c, file, c.compression, c.narSize, sha256(sample)))
        const store = yield* memoryStore
        const cache = yield* open(server, store)
        const digest = Nixbase32.decode(hashPart).pipe((e) => (e._tag === "Right" ? e.right : assert.fail("digest")))
        const { exit, growth } = yield* withPeakRss(cache.fetch(digest))
        const e = typedFailure(exit, c.id)
        assert.strictEqual(e._tag, c.expect.tag, `${c.id}: ${e.message}`)
        if (e._tag === "NarSizeMismatch") {
          assert.isTrue(e.atLeast)
          assert.strictEqual(e.expected, c.narSize)
        }
        if (c.expandsTo !== undefined) {
          assert.isBelow(growth, 100 * MiB, `RSS grew by ${growth} bytes`)
          // the client hung up long before the file was read whole... or it was small anyway: at most the file
          assert.isAtMost(server.bytesSent.get(`/${file}`) ?? 0, bytes.length)
        }
        assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digest)), `${storePath}: nothing persisted`)
      })), 60_000)
  }
})

describe("BinaryCache.fetch: every hostile NAR, served uncompressed with a matching NarHash and NarSize", () => {
  it.live("NarIngestError with the reader's reason (the valid controls are stored), nothing persisted", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([])
      server.files.set("/nix-cache-info", `StoreDir: ${manifest.storeDir}\n`)
      const store = yield* memoryStore
      let refused = 0
      for (const c of casesOf("nar")) {
        const bytes = yield* Effect.promise(() => bytesOf(c))
        if (bytes.length === 0) continue // NarSize 0 makes no valid narinfo
        const { hashPart } = storePathOf(c.id)
        const file = `nar/${hashPart}.nar`
        server.files.set(`/${file}`, bytes)
        server.files.set(`/${hashPart}.narinfo`, narinfoFor(c, file, "none", bytes.length, sha256(bytes)))
        const cache = yield* open(server, store)
        const digest = Nixbase32.decode(hashPart).pipe((e) => (e._tag === "Right" ? e.right : assert.fail("digest")))
        const exit = yield* Effect.exit(cache.fetch(digest))
        const expect = c.expect
        if ("valid" in expect && expect.import === undefined) {
          assert.isTrue(Exit.isSuccess(exit), c.id)
          assert.isTrue(Option.isSome(yield* store.pathInfoService.get(digest)), c.id)
          continue
        }
        const e = typedFailure(exit, c.id)
        assert.strictEqual(e._tag, "NarIngestError", `${c.id}: ${e.message}`)
        if (e._tag === "NarIngestError") {
          assert.strictEqual(e.reason, "valid" in expect ? expect.import : "InvalidNar", `${c.id}: ${e.message}`)
        }
        assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digest)), `${c.id}: nothing persisted`)
        refused++
      }
      assert.isAbove(refused, 100)
    })), 300_000)
})
