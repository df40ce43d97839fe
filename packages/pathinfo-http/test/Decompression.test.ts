import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import * as crypto from "node:crypto"
import { createRequire } from "node:module"
import * as zlib from "node:zlib"
import * as Decompression from "../src/Decompression.js"
import { manifest, readFixture } from "./support/fixtures.js"

const require = createRequire(import.meta.url)
const zstd = require("zstd-napi") as { compress: (data: Uint8Array) => Buffer }
const lzma = require("lzma-native") as { compress: (data: Uint8Array) => Promise<Buffer> }
const lzmaStreams = require("lzma-native") as {
  createStream: (coder: "aloneEncoder", options: { readonly preset: number }) => import("node:stream").Transform
}

/** `bytes` cut into pieces of `size`. */
const split = (bytes: Uint8Array, size: number): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size))
  return out
}

const decode = (compression: Decompression.Compression, chunks: ReadonlyArray<Uint8Array>) =>
  Effect.map(
    Stream.runCollect(Decompression.decompress(compression)(Stream.fromIterable(chunks))),
    (out) => Buffer.concat(Chunk.toReadonlyArray(out))
  )

const sri = (bytes: Uint8Array): string => "sha256-" + crypto.createHash("sha256").update(bytes).digest("base64")

const compressions = ["xz", "bzip2", "zstd", "br", "gzip"] as const

describe("Decompression.parse", () => {
  it("reads narinfo Compression values", () => {
    for (const c of Decompression.supported) assert.strictEqual(Either.getOrThrow(Decompression.parse(c)), c)
    assert.strictEqual(Either.getOrThrow(Decompression.parse("")), "none")
    for (const c of ["lz4", "lzip", "XZ", "compress", "gz"]) {
      const r = Decompression.parse(c)
      if (Either.isRight(r)) return assert.fail(`${c} accepted`)
      assert.strictEqual(r.left._tag, "UnsupportedCompression")
      assert.include(r.left.message, JSON.stringify(c))
    }
  })
})

describe("Decompression of every fixture NAR file", () => {
  for (const cache of ["none", ...compressions]) {
    it.effect(`${cache}: every file, whole and in pieces, decodes to its NarHash`, () =>
      Effect.gen(function*() {
        for (const p of manifest.caches[cache].paths) {
          const file = readFixture(`${manifest.caches[cache].dir}/${p.url}`)
          const c = Either.getOrThrow(Decompression.parse(p.compression))
          for (const size of [file.length, 4096, 13]) {
            if (size === 13 && file.length > 64 * 1024) continue
            const out = yield* decode(c, split(file, Math.max(1, size)))
            assert.strictEqual(out.length, p.narSize, `${cache} ${p.name} in pieces of ${size}`)
            assert.strictEqual(sri(out), p.narHashSRI, `${cache} ${p.name} in pieces of ${size}`)
          }
        }
      }), 60_000)
  }
})

describe("Decompression failures", () => {
  const large = (cache: string) => {
    const p = manifest.caches[cache].paths.find((q) => q.name === "fx-large")!
    return { p, file: readFixture(`${manifest.caches[cache].dir}/${p.url}`) }
  }

  for (const c of compressions) {
    it.effect(`${c}: input cut short is a DecompressionError naming the format`, () =>
      Effect.gen(function*() {
        const { file } = large(c)
        for (const cut of [1, 10, Math.floor(file.length / 2), file.length - 1]) {
          const e = yield* Effect.flip(decode(c, split(file.subarray(0, cut), 4096)))
          assert.strictEqual(e._tag, "DecompressionError", `${c} cut at ${cut}`)
          assert.strictEqual(e.compression, c)
          assert.isAtMost(e.offset, cut)
        }
      }))

    it.effect(`${c}: corrupt input fails or decodes to other bytes (the NarHash check catches those)`, () =>
      Effect.gen(function*() {
        const { file, p } = large(c)
        const bad = Buffer.from(file)
        bad[Math.floor(bad.length / 2)] ^= 0x55
        const r = yield* Effect.either(decode(c, split(bad, 4096)))
        if (Either.isLeft(r)) assert.strictEqual(r.left._tag, "DecompressionError")
        else assert.notStrictEqual(sri(r.right), p.narHashSRI)
      }))
  }

  it.effect("bzip2: a changed byte is caught by the block CRC or the Huffman decoder", () =>
    Effect.gen(function*() {
      const { file } = large("bzip2")
      let failures = 0
      for (const at of [100, 1000, 5000, Math.floor(file.length / 3), file.length - 20]) {
        const bad = Buffer.from(file)
        bad[at] ^= 0x10
        const r = yield* Effect.either(decode("bzip2", [bad]))
        if (Either.isLeft(r)) failures++
      }
      assert.strictEqual(failures, 5)
    }))

  it.effect("bzip2: not a bzip2 stream, and empty input, are errors", () =>
    Effect.gen(function*() {
      const e1 = yield* Effect.flip(decode("bzip2", [Buffer.from("hello, world")]))
      assert.include(e1.detail, "not a bzip2 stream")
      const e2 = yield* Effect.flip(decode("bzip2", []))
      assert.include(e2.detail, "empty")
    }))

  it.effect("an input stream's own error passes through", () =>
    Effect.gen(function*() {
      for (const c of ["none", ...compressions] as const) {
        const { file } = large(c === "none" ? "xz" : c)
        const input = Stream.concat(Stream.make(file.subarray(0, 100)), Stream.fail("boom" as const))
        const e = yield* Effect.flip(Stream.runDrain(Decompression.decompress(c)(input)))
        assert.strictEqual(e, "boom", c)
      }
    }))
})

describe("Decompression: lzma (the .lzma format Nix can also write)", () => {
  it.effect("decodes what liblzma's alone encoder wrote", () =>
    Effect.gen(function*() {
      const p = manifest.caches.none.paths.find((q) => q.name === "fx-tree")!
      const nar = readFixture(`${manifest.caches.none.dir}/${p.url}`)
      const encoded = yield* Effect.async<Buffer>((resume) => {
        const parts: Array<Buffer> = []
        const encoder = lzmaStreams.createStream("aloneEncoder", { preset: 6 })
        encoder.on("data", (d: Buffer) => parts.push(d))
        encoder.on("end", () => resume(Effect.succeed(Buffer.concat(parts))))
        encoder.end(nar)
      })
      assert.isTrue(encoded.subarray(0, 1)[0] !== 0xfd, "not an .xz stream")
      const out = yield* decode("lzma", split(encoded, 100))
      assert.strictEqual(sri(out), p.narHashSRI)
    }))
})

describe("Decompression of concatenations", () => {
  it.effect("zstd frames, gzip members, bzip2 and xz streams decode one after another", () =>
    Effect.gen(function*() {
      for (const c of ["zstd", "gzip", "bzip2", "xz"] as const) {
        const ps = manifest.caches[c].paths.filter((p) => ["fx-tree", "fx-large", "fx-empty-file"].includes(p.name))
        const files = ps.map((p) => readFixture(`${manifest.caches[c].dir}/${p.url}`))
        const out = yield* decode(c, split(Buffer.concat(files), 1000))
        const expected = Buffer.concat(
          yield* Effect.forEach(files, (file) => decode(c, [file]))
        )
        assert.strictEqual(out.length, ps.reduce((n, p) => n + p.narSize, 0), c)
        assert.isTrue(out.equals(expected), c)
      }
    }))

  it.effect("bzip2: bytes after the last stream that start no stream are ignored (as Nix does)", () =>
    Effect.gen(function*() {
      const p = manifest.caches.bzip2.paths.find((q) => q.name === "fx-tree")!
      const file = readFixture(`${manifest.caches.bzip2.dir}/${p.url}`)
      const out = yield* decode("bzip2", [file, Buffer.from("trailing garbage")])
      assert.strictEqual(sri(out), p.narHashSRI)
    }))
})

describe("Decompression is lazy: a consumer that stops, stops the decoder", () => {
  const MiB = 1024 * 1024
  const zeros = Buffer.alloc(MiB)
  // Concatenated members, so how much input was read shows how far the
  // decoder ran ahead. (br has no concatenation; Node runs it through the
  // same zlib stream code as gzip.)
  const bombs: ReadonlyArray<readonly [Decompression.Compression, Uint8Array]> = [
    ["zstd", zstd.compress(zeros)],
    ["gzip", zlib.gzipSync(zeros)]
  ]
  for (const [c, make] of [...bombs.map(([c, m]) => [c, Effect.succeed(m)] as const), ["xz", Effect.promise(() => lzma.compress(zeros))] as const]) {
    it.effect(`${c}: 4 GiB of output on offer, 2 MiB taken, little input read`, () =>
      Effect.gen(function*() {
        const member = yield* make
        const members = 4096
        let pulled = 0
        const input = Stream.fromIterable(Array.from({ length: members }, () => member)).pipe(
          Stream.rechunk(1),
          Stream.tap(() => Effect.sync(() => pulled++))
        )
        let taken = 0
        yield* Decompression.decompress(c)(input).pipe(
          Stream.takeWhile(() => taken < 2 * MiB),
          Stream.runForEach((b) => Effect.sync(() => (taken += b.length)))
        )
        assert.isAtLeast(taken, 2 * MiB)
        assert.isBelow(pulled, 64, `${c}: ${pulled} of ${members} input chunks read`)
      }), 20_000)
  }
})
