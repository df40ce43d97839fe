import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck, Schema } from "effect"
import { Nixbase32 } from "@nixfx/nix-compat"
import * as crypto from "node:crypto"

const sha256 = (s: string) => new Uint8Array(crypto.createHash("sha256").update(s).digest())

const decodeError = (s: string, expectedBytes?: number) => {
  const r = Nixbase32.decode(s, expectedBytes)
  if (Either.isRight(r)) assert.fail(`expected ${JSON.stringify(s)} to be rejected`)
  return r.left
}

describe("Nixbase32", () => {
  it("encodes known Nix values", () => {
    // `nix hash to-base32` of sha256("") and sha256("abc")
    assert.strictEqual(Nixbase32.encode(sha256("")), "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73")
    assert.strictEqual(Nixbase32.encode(sha256("abc")), "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s")
    assert.strictEqual(Nixbase32.encode(new Uint8Array(0)), "")
    assert.strictEqual(Nixbase32.encode(new Uint8Array([0x1f])), "0z")
    // last byte first: 0x01 0x00 puts the 1 in the least significant bits of the last characters
    assert.strictEqual(Nixbase32.encode(new Uint8Array([1, 0])), "0001")
  })

  it("lengths", () => {
    assert.strictEqual(Nixbase32.encodedLength(20), 32)
    assert.strictEqual(Nixbase32.encodedLength(32), 52)
    assert.strictEqual(Nixbase32.encodedLength(64), 103)
    assert.strictEqual(Nixbase32.decodedLength(52), 32)
  })

  it("decodes known values", () => {
    const r = Nixbase32.decode("1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s", 32)
    assert.deepStrictEqual(Either.getOrThrow(r), sha256("abc"))
  })

  it("rejects characters outside the alphabet, naming the character and position", () => {
    for (const bad of ["e", "o", "u", "t", "A", "-", "é"]) {
      const s = "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c7" + bad
      const e = decodeError(s)
      assert.strictEqual(e._tag, "Nixbase32Error")
      assert.strictEqual(e.reason, "InvalidCharacter")
      assert.strictEqual(e.position, 51)
      assert.include(e.message, `invalid nixbase32 character '${bad}' at position 51`)
    }
  })

  it("rejects non-canonical trailing bits", () => {
    // 52 chars hold 260 bits for 256: the first character carries 1 bit, so only '0' or '1'
    const e = decodeError("zmdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73")
    assert.strictEqual(e.reason, "NonCanonical")
    assert.include(e.message, "non-canonical")
    assert.strictEqual(decodeError("zz").reason, "NonCanonical")
    assert.strictEqual(decodeError("2mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73").reason, "NonCanonical")
    assert.isTrue(Either.isRight(Nixbase32.decode("1mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73")))
  })

  it("rejects impossible and unexpected lengths", () => {
    const e = decodeError("000")
    assert.strictEqual(e.reason, "InvalidLength")
    assert.include(e.message, "invalid nixbase32 length 3")
    const e2 = decodeError("0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73", 20)
    assert.strictEqual(e2.reason, "InvalidLength")
    assert.include(e2.message, "expected 32 characters for 20 bytes")
  })

  it("Schema decodes and reports failures", () => {
    const decode = Schema.decodeUnknownEither(Nixbase32.Uint8ArrayFromNixbase32)
    assert.deepStrictEqual(Either.getOrThrow(decode("0z")), new Uint8Array([0x1f]))
    const r = decode("0e")
    assert.isTrue(Either.isLeft(r))
    if (Either.isLeft(r)) assert.include(r.left.message, "invalid nixbase32 character 'e'")
  })

  it.prop("decode ∘ encode = id", [FastCheck.uint8Array({ maxLength: 100 })], ([bytes]) => {
    const s = Nixbase32.encode(bytes)
    assert.strictEqual(s.length, Nixbase32.encodedLength(bytes.length))
    assert.deepStrictEqual(Either.getOrThrow(Nixbase32.decode(s)), bytes)
    assert.deepStrictEqual(Either.getOrThrow(Nixbase32.decode(s, bytes.length)), bytes)
  })

  it.prop("encode ∘ decode = id on valid strings", [Nixbase32.Uint8ArrayFromNixbase32], ([bytes]) => {
    const s = Nixbase32.encode(bytes)
    assert.strictEqual(Nixbase32.encode(Either.getOrThrow(Nixbase32.decode(s))), s)
  })

  it.prop(
    "every string of a valid length decodes to the unique canonical form or is rejected",
    [FastCheck.stringMatching(/^[0-9a-z]{0,40}$/)],
    ([s]) => {
      const r = Nixbase32.decode(s)
      if (Either.isRight(r)) assert.strictEqual(Nixbase32.encode(r.right), s)
      else assert.strictEqual(r.left._tag, "Nixbase32Error")
    }
  )
})
