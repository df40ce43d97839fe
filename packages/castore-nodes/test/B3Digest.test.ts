import { B3Digest } from "@nixfx/castore-nodes"
import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"

const EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
// Official BLAKE3 test vector for "abc".
const ABC = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"

describe("B3Digest", () => {
  it("hashes the empty input and a known vector", () => {
    assert.strictEqual(B3Digest.toHex(B3Digest.hash(new Uint8Array(0))), EMPTY)
    assert.strictEqual(B3Digest.toHex(B3Digest.hash(new TextEncoder().encode("abc"))), ABC)
  })

  it("returns plain Uint8Arrays, not Buffers", () => {
    const d = B3Digest.hash(new Uint8Array(3))
    assert.strictEqual(Object.getPrototypeOf(d), Uint8Array.prototype)
    assert.strictEqual(d.length, 32)
  })

  it.prop("the incremental hasher agrees with the one-shot hash", [
    fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 8 })
  ], ([chunks]) => {
    const h = B3Digest.hasher()
    for (const c of chunks) h.update(c)
    const whole = Buffer.concat(chunks)
    assert.isTrue(B3Digest.equals(h.digest(), B3Digest.hash(whole)))
  })

  it("pooled hashers start clean; a finished hasher refuses more input", () => {
    const h1 = B3Digest.hasher()
    h1.update(new Uint8Array([1, 2, 3]))
    const d1 = h1.digest()
    assert.strictEqual(h1.digest(), d1) // stable
    assert.throws(() => h1.update(new Uint8Array([4])), /after digest/)
    // the native hasher behind h1 is reused here: it must have been reset
    const hs = Array.from({ length: 40 }, () => B3Digest.hasher())
    hs.forEach((h, i) => h.update(new Uint8Array([i])))
    hs.forEach((h, i) => assert.isTrue(B3Digest.equals(h.digest(), B3Digest.hash(new Uint8Array([i])))))
    const empty = B3Digest.hasher()
    empty.update(new Uint8Array(0))
    assert.strictEqual(B3Digest.toHex(empty.digest()), EMPTY)
    // abandoned (never digested) hashers do not affect others
    B3Digest.hasher().update(new Uint8Array([9]))
    assert.strictEqual(B3Digest.toHex(B3Digest.hasher().digest()), EMPTY)
  })

  it("fromBytes accepts exactly 32 bytes", () => {
    assert.isTrue(Either.isRight(B3Digest.fromBytes(new Uint8Array(32))))
    for (const n of [0, 31, 33, 64]) {
      const r = B3Digest.fromBytes(new Uint8Array(n))
      assert.isTrue(Either.isLeft(r))
      if (Either.isLeft(r)) {
        assert.strictEqual(r.left._tag, "InvalidDigestLength")
        assert.strictEqual(r.left.length, n)
        assert.strictEqual(r.left.message, `digest must be 32 bytes, got ${n}`)
      }
    }
    assert.throws(() => B3Digest.unsafeMake(new Uint8Array(31)), /digest must be 32 bytes, got 31/)
  })

  it("the Schema names the length", () => {
    const r = Schema.decodeUnknownEither(B3Digest.B3Digest)(new Uint8Array(33))
    assert.isTrue(Either.isLeft(r))
    if (Either.isLeft(r)) assert.include(r.left.message, "digest must be 32 bytes, got 33")
    assert.isTrue(Either.isRight(Schema.decodeUnknownEither(B3Digest.B3Digest)(new Uint8Array(32))))
  })

  it("hex and base64 round-trip and reject malformed text", () => {
    const d = Either.getOrThrow(B3Digest.fromHex(EMPTY))
    assert.strictEqual(B3Digest.toHex(d), EMPTY)
    assert.strictEqual(B3Digest.toHex(Either.getOrThrow(B3Digest.fromHex(EMPTY.toUpperCase()))), EMPTY)
    const b64 = B3Digest.toBase64(d)
    assert.strictEqual(b64, Buffer.from(EMPTY, "hex").toString("base64"))
    assert.isTrue(B3Digest.equals(Either.getOrThrow(B3Digest.fromBase64(b64)), d))

    for (const bad of ["", EMPTY.slice(1), EMPTY + "00", "g" + EMPTY.slice(1)]) {
      const r = B3Digest.fromHex(bad)
      assert.isTrue(Either.isLeft(r))
      if (Either.isLeft(r)) {
        assert.strictEqual(r.left._tag, "InvalidDigestEncoding")
        assert.include(r.left.message, "invalid hex digest")
      }
    }
    // 44 chars but non-zero padding bits: decodes, yet is not the canonical form.
    const nonCanonical = b64.slice(0, 42) + "j="
    assert.notStrictEqual(nonCanonical, b64)
    assert.isTrue(Either.isLeft(B3Digest.fromBase64(nonCanonical)))
    assert.isTrue(Either.isLeft(B3Digest.fromBase64(b64.slice(0, 43))))
  })

  it("equals compares bytes", () => {
    const a = B3Digest.hash(new Uint8Array([1]))
    const b = B3Digest.unsafeMake(a.slice())
    const c = B3Digest.hash(new Uint8Array([2]))
    assert.isTrue(B3Digest.equals(a, b))
    assert.isFalse(B3Digest.equals(a, c))
  })
})
