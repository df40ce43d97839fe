import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Either, Stream } from "effect"
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { brotliDecompressSync } from "node:zlib"
import * as Nar from "../src/Nar.js"
import * as Nixbase32 from "../src/Nixbase32.js"

const fixtures = new URL("../../../fixtures/", import.meta.url)

interface ManifestPath {
  readonly name: string
  readonly url: string
  readonly narHash: string
  readonly narHashSRI: string
  readonly narSize: number
  readonly castore: { readonly type: string }
}
interface Manifest {
  readonly caches: Record<string, { readonly dir: string; readonly paths: ReadonlyArray<ManifestPath> }>
}
const manifest: Manifest = JSON.parse(readFileSync(new URL("manifest.json", fixtures), "utf8"))

/** Every distinct NAR of the fixtures: the uncompressed cache plus fx-large from the brotli cache. */
const fixtureNars: ReadonlyArray<{ readonly name: string; readonly nar: Uint8Array; readonly path: ManifestPath }> = (
  () => {
    const out: Array<{ name: string; nar: Uint8Array; path: ManifestPath }> = []
    const none = manifest.caches["none"]
    for (const path of none.paths) {
      out.push({ name: path.name, nar: new Uint8Array(readFileSync(new URL(`${none.dir}/${path.url}`, fixtures))), path })
    }
    const br = manifest.caches["br"]
    const large = br.paths.find((p) => p.name === "fx-large")!
    const compressed = readFileSync(new URL(`${br.dir}/${large.url}`, fixtures))
    out.push({ name: large.name, nar: new Uint8Array(brotliDecompressSync(compressed)), path: large })
    return out
  }
)()

const sha256SRI = (chunks: ReadonlyArray<Uint8Array>): string => {
  const h = createHash("sha256")
  for (const c of chunks) h.update(c)
  return `sha256-${h.digest("base64")}`
}

const concat = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0))
  let p = 0
  for (const c of chunks) {
    out.set(c, p)
    p += c.length
  }
  return out
}

const splitEvery = (bytes: Uint8Array, size: number): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  for (let p = 0; p < bytes.length; p += size) out.push(bytes.subarray(p, Math.min(p + size, bytes.length)))
  return out
}

/** Parses `chunks` straight into a writer; returns the written chunks. */
const rewrite = (chunks: ReadonlyArray<Uint8Array>, chunkSize?: number): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  const writer = Nar.makeWriter((c) => out.push(c), chunkSize === undefined ? undefined : { chunkSize })
  const parser = Nar.makeParser(writer)
  for (const c of chunks) parser.push(c)
  parser.end()
  writer.end()
  assert.isTrue(parser.done)
  assert.isTrue(writer.done)
  return out
}

describe("Nar fixtures", () => {
  it("covers all 27 store paths, fx-large included", () => {
    assert.strictEqual(fixtureNars.length, 27)
    const large = fixtureNars.find((f) => f.name === "fx-large")!
    assert.strictEqual(large.nar.length, 1_217_160)
  })

  for (const { name, nar, path } of fixtureNars) {
    it(`${name}: size and sha256 match the manifest`, () => {
      assert.strictEqual(nar.length, path.narSize)
      assert.strictEqual(sha256SRI([nar]), path.narHashSRI)
      const digest = new Uint8Array(createHash("sha256").update(nar).digest())
      assert.strictEqual(`sha256:${Nixbase32.encode(digest)}`, path.narHash)
    })

    it(`${name}: read then written back is byte-identical`, () => {
      const out = rewrite([nar])
      const bytes = concat(out)
      assert.strictEqual(bytes.length, path.narSize)
      assert.strictEqual(sha256SRI(out), path.narHashSRI)
      const digest = new Uint8Array(createHash("sha256").update(bytes).digest())
      assert.strictEqual(`sha256:${Nixbase32.encode(digest)}`, path.narHash)
      assert.deepStrictEqual(bytes, nar)
    })

    it(`${name}: any input split gives the same output`, () => {
      const sizes = nar.length > 100_000 ? [7, 4093, 65536] : [1, 3, 8, 13, 64, 1000]
      for (const size of sizes) {
        const out = concat(rewrite(splitEvery(nar, size), 8192))
        assert.deepStrictEqual(out, nar, `input split every ${size} bytes`)
      }
    })

    it(`${name}: root node type matches the manifest`, () => {
      const tree = Either.getOrThrow(Nar.decodeTree(nar))
      const expected = { directory: "Directory", file: "File", symlink: "Symlink" }[path.castore.type]
      assert.strictEqual(tree._tag, expected)
      assert.deepStrictEqual(Either.getOrThrow(Nar.encodeTree(tree)), nar)
    })
  }

  it("file chunks are views into the input, not copies", () => {
    const large = fixtureNars.find((f) => f.name === "fx-large")!
    let views = 0
    let copies = 0
    const handler: Nar.Handler = {
      directoryStart() {},
      entry() {},
      directoryEnd() {},
      fileStart() {},
      fileChunk(chunk) {
        if (chunk.buffer === large.nar.buffer) views++
        else copies++
      },
      fileEnd() {},
      symlink() {}
    }
    const parser = Nar.makeParser(handler)
    for (const c of splitEvery(large.nar, 65536)) parser.push(c)
    parser.end()
    assert.isAbove(views, 200)
    assert.strictEqual(copies, 0)
  })
})

describe("Nar stream adapters", () => {
  const large = fixtureNars.find((f) => f.name === "fx-large")!
  const tree = fixtureNars.find((f) => f.name === "fx-tree")!

  it.effect("events then encode round-trips a NAR stream", () =>
    Effect.gen(function*() {
      for (const { nar, path } of [large, tree]) {
        const input = Stream.fromIterable(splitEvery(nar, 5000))
        const out = yield* Stream.runCollect(Nar.encode(Nar.events(input)))
        const chunks = Chunk.toReadonlyArray(out)
        assert.strictEqual(sha256SRI(chunks), path.narHashSRI)
        assert.deepStrictEqual(concat(chunks), nar)
      }
    }))

  it.effect("events come in one batch per input chunk", () =>
    Effect.gen(function*() {
      const input = Stream.fromIterable(splitEvery(tree.nar, 4096))
      let batches = 0
      let events = 0
      yield* Stream.runForEachChunk(Nar.events(input), (c) =>
        Effect.sync(() => {
          batches++
          events += Chunk.size(c)
        }))
      assert.isAtMost(batches, Math.ceil(tree.nar.length / 4096))
      assert.isAbove(events, batches)
    }))

  it.effect("events emits the event values in archive order", () =>
    Effect.gen(function*() {
      const nar = Either.getOrThrow(Nar.encodeTree({
        _tag: "Directory",
        entries: [
          { name: new TextEncoder().encode("a"), node: { _tag: "Symlink", target: new TextEncoder().encode("b") } },
          {
            name: new TextEncoder().encode("b"),
            node: { _tag: "File", executable: true, contents: new Uint8Array([1, 2, 3]) }
          }
        ]
      }))
      const events = Chunk.toReadonlyArray(yield* Stream.runCollect(Nar.events(Stream.make(nar))))
      assert.deepStrictEqual(events.map((e) => e._tag), [
        "DirectoryStart",
        "Entry",
        "Symlink",
        "Entry",
        "FileStart",
        "FileChunk",
        "FileEnd",
        "DirectoryEnd"
      ])
      assert.deepStrictEqual(events[4], Nar.fileStart(true, 3))
    }))

  it.effect("events fails with NarError on a truncated stream, after the events before the cut", () =>
    Effect.gen(function*() {
      const cut = tree.nar.subarray(0, 1000)
      let seen = 0
      const err = yield* Stream.runForEach(Nar.events(Stream.make(cut)), () => Effect.sync(() => seen++)).pipe(
        Effect.flip
      )
      assert.strictEqual(err._tag, "NarError")
      assert.strictEqual(err.reason, "Truncated")
      assert.isAbove(seen, 0)
    }))

  it.effect("events passes upstream failures through", () =>
    Effect.gen(function*() {
      const err = yield* Stream.runDrain(Nar.events(Stream.fail("boom" as const))).pipe(Effect.flip)
      assert.strictEqual(err, "boom")
    }))

  it.effect("encode fails with NarError on an invalid event sequence", () =>
    Effect.gen(function*() {
      const err = yield* Stream.runDrain(Nar.encode(Stream.make(Nar.directoryStart, Nar.fileEnd))).pipe(Effect.flip)
      assert.strictEqual(err._tag, "NarError")
      assert.strictEqual(err.reason, "UnexpectedEvent")
      const incomplete = yield* Stream.runDrain(Nar.encode(Stream.make(Nar.directoryStart))).pipe(Effect.flip)
      assert.strictEqual(incomplete.reason, "Truncated")
    }))
})
