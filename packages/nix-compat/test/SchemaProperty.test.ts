/**
 * Schema properties not covered beside each module's own tests (NixHash,
 * CAHash, NarInfo, StorePath's absolute form, Nixbase32 have theirs):
 * decode ∘ encode = id for any valid value, and any string either decodes to
 * a value that encodes back to it or fails with a ParseError (never throws
 * anything else).
 */
import { assert, describe, it } from "@effect/vitest"
import { Either, Equal, FastCheck as fc, ParseResult, Schema } from "effect"
import * as Keys from "../src/Keys.js"
import * as StorePath from "../src/StorePath.js"

const roundTrips = <A, I>(schema: Schema.Schema<A, I>, value: A): void => {
  const encoded = Schema.encodeSync(schema)(value)
  const decoded = Schema.decodeSync(schema)(encoded)
  assert.isTrue(Equal.equals(decoded, value), JSON.stringify(encoded))
  assert.deepStrictEqual(Schema.encodeSync(schema)(decoded), encoded)
}

/** Any string: a value that encodes back to the same string, or a ParseError. */
const decodesOrFailsTyped = <A>(schema: Schema.Schema<A, string>, s: string): void => {
  const r = Schema.decodeUnknownEither(schema)(s)
  if (Either.isRight(r)) assert.strictEqual(Schema.encodeSync(schema)(r.right), s)
  else assert.isTrue(ParseResult.isParseError(r.left))
}

const base64ish = fc.string({ unit: fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=:-_ \n"), maxLength: 100 })

describe("Schema round trips", () => {
  it.prop("Keys.SignatureFromString: decode ∘ encode = id", [Keys.SignatureFromString], ([sig]) => roundTrips(Keys.SignatureFromString, sig), {
    fastCheck: { numRuns: 300 }
  })

  it.prop("Keys.PublicKeyFromString: decode ∘ encode = id", [Keys.PublicKeyFromString], ([key]) => roundTrips(Keys.PublicKeyFromString, key), {
    fastCheck: { numRuns: 200 }
  })

  it.prop("StorePath.FromBasename: decode ∘ encode = id", [StorePath.FromBasename], ([sp]) => roundTrips(StorePath.FromBasename, sp), {
    fastCheck: { numRuns: 300 }
  })

  const secret = Either.getOrThrow(Keys.generateSecretKey("prop-key-1"))
  it.prop("a signature and its key survive their text forms and still verify", [fc.string({ maxLength: 200 })], ([fingerprint]) => {
    const sig = Keys.signFingerprint(fingerprint, secret)
    const back = Schema.decodeSync(Keys.SignatureFromString)(Schema.encodeSync(Keys.SignatureFromString)(sig))
    const pub = Schema.decodeSync(Keys.PublicKeyFromString)(Schema.encodeSync(Keys.PublicKeyFromString)(secret.public))
    assert.isTrue(Keys.verifyFingerprint(fingerprint, back, pub))
    assert.isFalse(Keys.verifyFingerprint(fingerprint + "x", back, pub))
  }, { fastCheck: { numRuns: 100 } })
})

describe("Schema decoding of arbitrary strings: a value or a ParseError", () => {
  it.prop("Keys.SignatureFromString", [base64ish], ([s]) => decodesOrFailsTyped(Keys.SignatureFromString, s), { fastCheck: { numRuns: 500 } })
  it.prop("Keys.PublicKeyFromString", [base64ish], ([s]) => decodesOrFailsTyped(Keys.PublicKeyFromString, s), { fastCheck: { numRuns: 500 } })
  it.prop("StorePath.FromBasename", [fc.string({ maxLength: 60 })], ([s]) => decodesOrFailsTyped(StorePath.FromBasename, s), {
    fastCheck: { numRuns: 500 }
  })
})
