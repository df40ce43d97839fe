import { assert, describe, it } from "@effect/vitest"
import { Either, Equal, FastCheck, Schema } from "effect"
import { NixHash } from "@nixfx/nix-compat"
import * as crypto from "node:crypto"

const digestOf = (algo: NixHash.Algorithm, s: string) => new Uint8Array(crypto.createHash(algo).update(s).digest())

const parseError = (s: string, algorithm?: NixHash.Algorithm) => {
  const r = NixHash.parse(s, algorithm)
  if (Either.isRight(r)) assert.fail(`expected ${JSON.stringify(s)} to be rejected`)
  assert.strictEqual(r.left._tag, "NixHashError")
  return r.left
}

describe("NixHash", () => {
  it("prints and parses every form for every algorithm", () => {
    for (const algorithm of ["md5", "sha1", "sha256", "sha512"] as const) {
      const digest = digestOf(algorithm, "nixfx")
      const h = Either.getOrThrow(NixHash.make(algorithm, digest))
      const hex = Buffer.from(digest).toString("hex")
      const b64 = Buffer.from(digest).toString("base64")
      assert.strictEqual(NixHash.toHexString(h), `${algorithm}:${hex}`)
      assert.strictEqual(NixHash.toBase64String(h), `${algorithm}:${b64}`)
      assert.strictEqual(NixHash.toSri(h), `${algorithm}-${b64}`)
      const nix32 = NixHash.toNixbase32String(h)
      assert.strictEqual(nix32.length, algorithm.length + 1 + NixHash.encodedLength(algorithm, "nixbase32"))
      assert.strictEqual(String(h), nix32)
      const forms: Array<[string, NixHash.Format, boolean]> = [
        [nix32, "nixbase32", true],
        [`${algorithm}:${hex}`, "hex", true],
        [`${algorithm}:${b64}`, "base64", true],
        [`${algorithm}-${b64}`, "sri", true],
        [nix32.slice(algorithm.length + 1), "nixbase32", false],
        [hex, "hex", false],
        [b64, "base64", false]
      ]
      for (const [s, format, prefixed] of forms) {
        const p = Either.getOrThrow(NixHash.parseDetailed(s, algorithm))
        assert.isTrue(Equal.equals(p.hash, h), s)
        assert.strictEqual(p.format, format, s)
        assert.strictEqual(p.prefixed, prefixed, s)
        if (prefixed) {
          assert.isTrue(NixHash.equals(Either.getOrThrow(NixHash.parse(s)), h))
          assert.strictEqual(NixHash.format(h, format), s)
        }
      }
    }
  })

  it("matches Nix's printing of a fixture NarHash", () => {
    // fx-symlink-to-store: NarHash and its SRI form from the manifest
    const h = Either.getOrThrow(NixHash.parse("sha256:08pjh2x6zirjqpx8vpk10xq36pf0fr72ay3d8jvnzjlbcv2vna9q"))
    assert.strictEqual(NixHash.toSri(h), "sha256-OCm7xWaLym+3RG14JU52wF0zcAdh3o36xTLHb7qA8iI=")
  })

  it("rejects unknown algorithms", () => {
    const e = parseError("sha384:abc")
    assert.strictEqual(e.reason, "UnknownAlgorithm")
    assert.include(e.message, `unknown hash algorithm "sha384"`)
    const e2 = parseError("blake3-AAAA")
    assert.strictEqual(e2.reason, "UnknownAlgorithm")
    assert.include(e2.message, "SRI")
  })

  it("rejects bare digests without a known algorithm", () => {
    const e = parseError("0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73")
    assert.strictEqual(e.reason, "MissingAlgorithm")
    assert.include(e.message, "none known from context")
  })

  it("rejects a prefixed hash of another algorithm than expected", () => {
    const e = parseError("sha1:" + "0".repeat(40), "sha256")
    assert.strictEqual(e.reason, "AlgorithmMismatch")
    assert.include(e.message, "expected a sha256 hash, got sha1")
  })

  it("rejects wrong lengths", () => {
    const e = parseError("sha256:" + "0".repeat(51))
    assert.strictEqual(e.reason, "InvalidDigestLength")
    assert.include(e.message, "a sha256 digest is 52 (nixbase32), 64 (hex) or 44 (base64) characters, got 51")
    const sri = parseError("sha256-" + Buffer.alloc(31).toString("base64"))
    assert.strictEqual(sri.reason, "InvalidDigestLength")
    assert.include(sri.message, "base64 digest decodes to 31 bytes, a sha256 digest is 32")
    const sri2 = parseError("sha256-" + Buffer.alloc(32).toString("base64").slice(0, -1))
    assert.include(sri2.message, "a sha256 digest in base64 is 44 characters, got 43")
    const e2 = Either.getLeft(NixHash.make("md5", new Uint8Array(20)))
    assert.isTrue(e2._tag === "Some" && e2.value.message.includes("a md5 digest is 16 bytes, got 20"))
  })

  it("rejects bad characters and non-canonical encodings", () => {
    const cases: Array<[string, string]> = [
      ["sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c7e", "invalid nixbase32 character 'e' at position 51"],
      ["sha256:2mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73", "non-canonical nixbase32"],
      ["sha1:" + "G".repeat(40), "invalid lowercase hex"],
      ["sha1:" + "A".repeat(40), "invalid lowercase hex"],
      ["md5:" + "!".repeat(24), "invalid base64"],
      // 16 bytes: the last base64 char before "==" may only carry 2 bits
      ["md5-AAAAAAAAAAAAAAAAAAAAAB==", "non-canonical base64"],
      ["md5-AAAAAAAAAAAAAAAAAAAAA=A=", "invalid base64"]
    ]
    for (const [s, text] of cases) {
      const e = parseError(s)
      assert.strictEqual(e.reason, "InvalidEncoding", s)
      assert.include(e.message, text)
    }
  })

  it("Schemas encode in their form and decode any", () => {
    const h = NixHash.unsafeMake("sha256", digestOf("sha256", "x"))
    const sri = Schema.encodeSync(NixHash.FromSri)(h)
    assert.strictEqual(sri, NixHash.toSri(h))
    assert.strictEqual(Schema.encodeSync(NixHash.FromString)(h), NixHash.toNixbase32String(h))
    assert.strictEqual(Schema.encodeSync(NixHash.FromHexString)(h), NixHash.toHexString(h))
    assert.isTrue(Equal.equals(Schema.decodeSync(NixHash.FromString)(sri), h))
    const md5 = NixHash.unsafeMake("md5", digestOf("md5", "x"))
    assert.isTrue(Either.isLeft(Schema.encodeEither(NixHash.Sha256FromString)(md5)))
    const bad = Schema.decodeUnknownEither(NixHash.Sha256FromString)(NixHash.toSri(md5))
    assert.isTrue(Either.isLeft(bad) && bad.left.message.includes("expected a sha256 hash, got md5"))
    assert.isTrue(
      Either.isLeft(Schema.decodeUnknownEither(NixHash.NixHash)({ algorithm: "sha1", digest: new Uint8Array(32) }))
    )
  })

  it.prop("every format round trips", [NixHash.arbitrary], ([h]) => {
    for (const format of ["nixbase32", "hex", "base64", "sri"] as const) {
      const s = NixHash.format(h, format)
      const p = Either.getOrThrow(NixHash.parseDetailed(s))
      assert.isTrue(NixHash.equals(p.hash, h))
      assert.strictEqual(p.format, format)
    }
    for (const encoding of ["nixbase32", "hex", "base64"] as const) {
      const p = Either.getOrThrow(NixHash.parseDigest(NixHash.encodeDigest(h.digest, encoding), h.algorithm))
      assert.isTrue(NixHash.equals(p.hash, h))
      assert.strictEqual(p.encoding, encoding)
    }
  })

  it.prop("Schema round trips (decode ∘ encode = id)", [NixHash.FromSri, NixHash.FromString], ([a, b]) => {
    assert.isTrue(Equal.equals(Schema.decodeSync(NixHash.FromSri)(Schema.encodeSync(NixHash.FromSri)(a)), a))
    assert.isTrue(Equal.equals(Schema.decodeSync(NixHash.FromString)(Schema.encodeSync(NixHash.FromString)(b)), b))
  })

  it.prop("garbage fails with a typed error", [FastCheck.string({ maxLength: 80 })], ([s]) => {
    const r = NixHash.parse(s, "sha256")
    if (Either.isLeft(r)) assert.strictEqual(r.left._tag, "NixHashError")
  })
})
