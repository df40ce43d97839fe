import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Either, FastCheck as fc, Stream } from "effect"
import * as Nar from "../src/Nar.js"

const compareBytes = (a: Uint8Array, b: Uint8Array): number => {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] - b[i]
  }
  return a.length - b.length
}

/** Valid entry names: 1–20 bytes (sometimes up to 255), no '/' or NUL, not '.' or '..'. */
const nameArb: fc.Arbitrary<Uint8Array> = fc
  .oneof(
    { weight: 5, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 12 }) },
    { weight: 2, arbitrary: fc.constantFrom(".a", "..a", "-", "a", "b", "ab", "aB", "Z", "é", "😀").map((s) => new TextEncoder().encode(s)) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 200, maxLength: 255 }) }
  )
  .map((b) => b.map((c) => (c === 0 || c === 0x2f ? 0x41 : c)))
  .filter((b) => !(b.length === 1 && b[0] === 0x2e) && !(b.length === 2 && b[0] === 0x2e && b[1] === 0x2e))

const targetArb = fc
  .uint8Array({ minLength: 1, maxLength: 64 })
  .map((b) => b.map((c) => (c === 0 ? 1 : c)))

const contentsArb = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1000, maxLength: 5000 }) }
)

const treeArb: fc.Arbitrary<Nar.Tree> = fc.letrec<{ tree: Nar.Tree; dir: Nar.Tree }>((tie) => ({
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.record({ _tag: fc.constant("File" as const), executable: fc.boolean(), contents: contentsArb }),
    fc.record({ _tag: fc.constant("Symlink" as const), target: targetArb }),
    tie("dir")
  ),
  dir: fc
    .uniqueArray(fc.record({ name: nameArb, node: tie("tree") }), {
      maxLength: 6,
      selector: (e) => Array.from(e.name).join(",")
    })
    .map((entries): Nar.Tree => ({ _tag: "Directory", entries: [...entries].sort((a, b) => compareBytes(a.name, b.name)) }))
})).tree

const splitAt = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Array<Uint8Array> = []
  let prev = 0
  for (const p of points) {
    out.push(bytes.subarray(prev, p))
    prev = p
  }
  out.push(bytes.subarray(prev))
  return out
}

describe("Nar round trips", () => {
  it.prop("random trees: written then read give the same tree and the same bytes", [treeArb, fc.array(fc.nat(), { maxLength: 20 })], ([tree, cuts]) => {
    const nar = Either.getOrThrow(Nar.encodeTree(tree))
    assert.strictEqual(nar.length % 8, 0)
    const decoded = Either.getOrThrow(Nar.decodeTree(splitAt(nar, cuts)))
    assert.deepStrictEqual(decoded, tree)
    assert.deepStrictEqual(Either.getOrThrow(Nar.encodeTree(decoded, { chunkSize: 8192 })), nar)
  }, { fastCheck: { numRuns: 300 } })

  it.prop("random trees: any strict prefix is rejected as truncated", [treeArb, fc.nat()], ([tree, n]) => {
    const nar = Either.getOrThrow(Nar.encodeTree(tree))
    const cut = n % nar.length
    const r = Nar.decodeTree(nar.subarray(0, cut))
    assert.isTrue(Either.isLeft(r))
    if (Either.isLeft(r)) assert.strictEqual(r.left.reason, "Truncated")
  }, { fastCheck: { numRuns: 200 } })

  it.effect.prop("random trees through the Stream adapters", [treeArb, fc.array(fc.nat(), { maxLength: 10 })], ([tree, cuts]) =>
    Effect.gen(function*() {
      const nar = Either.getOrThrow(Nar.encodeTree(tree))
      const out = yield* Stream.runCollect(Nar.encode(Nar.events(Stream.fromIterable(splitAt(nar, cuts)))))
      const bytes = Chunk.toReadonlyArray(out)
      const total = bytes.reduce((n, c) => n + c.length, 0)
      assert.strictEqual(total, nar.length)
      const joined = new Uint8Array(total)
      let p = 0
      for (const c of bytes) {
        joined.set(c, p)
        p += c.length
      }
      assert.deepStrictEqual(joined, nar)
    }), { fastCheck: { numRuns: 100 } })
})
