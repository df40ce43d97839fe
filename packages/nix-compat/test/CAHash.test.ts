import { assert, describe, it } from "@effect/vitest"
import { Either, Equal, Schema } from "effect"
import { CAHash, NixHash } from "@nixfx/nix-compat"
import { manifest } from "./fixtures.js"

const parseError = (s: string) => {
  const r = CAHash.parse(s)
  if (Either.isRight(r)) assert.fail(`expected ${JSON.stringify(s)} to be rejected`)
  assert.strictEqual(r.left._tag, "CAHashError")
  return r.left
}

describe("CAHash", () => {
  it("parses and renders every CA in the fixtures (all algorithms, all three kinds)", () => {
    const seen = new Set<string>()
    for (const p of manifest.caches.xz.paths) {
      if (p.ca === null) continue
      const ca = Either.getOrThrow(CAHash.parse(p.ca))
      assert.strictEqual(CAHash.render(ca), p.ca)
      seen.add(p.ca.slice(0, p.ca.lastIndexOf(":")))
      if (p.ca.startsWith("fixed:r:sha256:")) {
        // for fixed:r:sha256 paths the CA digest is the NAR hash
        assert.strictEqual(ca._tag, "Nar")
        assert.strictEqual(NixHash.toNixbase32String(ca.hash), p.narHash)
      }
    }
    for (
      const kind of [
        "fixed:r:sha256",
        "fixed:r:sha1",
        "fixed:r:sha512",
        "fixed:r:md5",
        "fixed:sha256",
        "fixed:sha1",
        "fixed:sha512",
        "fixed:md5",
        "text:sha256"
      ]
    ) assert.isTrue(seen.has(kind), kind)
  })

  it("tags and hash", () => {
    const h = "1wkqjqw15waca5wp08ff50ryrclfz919qz587rj2hq0z41n9573w"
    const text = Either.getOrThrow(CAHash.parse(`text:sha256:${h}`))
    const nar = Either.getOrThrow(CAHash.parse(`fixed:r:sha256:${h}`))
    const flat = Either.getOrThrow(CAHash.parse(`fixed:sha256:${h}`))
    assert.deepStrictEqual([text._tag, nar._tag, flat._tag], ["Text", "Nar", "Flat"])
    assert.isTrue(Equal.equals(text.hash, nar.hash))
    assert.isFalse(Equal.equals(text, nar))
  })

  it("accepts hex and base64 digests and reports the encoding; renders nixbase32 by default", () => {
    const h = NixHash.unsafeMake("sha1", new Uint8Array(20).fill(7))
    const hex = `fixed:r:sha1:${NixHash.encodeDigest(h.digest, "hex")}`
    const p = Either.getOrThrow(CAHash.parseDetailed(hex))
    assert.strictEqual(p.encoding, "hex")
    assert.strictEqual(CAHash.render(p.ca, "hex"), hex)
    assert.strictEqual(CAHash.render(p.ca), `fixed:r:sha1:${NixHash.encodeDigest(h.digest, "nixbase32")}`)
    const b64 = Either.getOrThrow(CAHash.parseDetailed(`fixed:sha1:${NixHash.encodeDigest(h.digest, "base64")}`))
    assert.strictEqual(b64.encoding, "base64")
  })

  it("rejects malformed content addresses", () => {
    const h = "1wkqjqw15waca5wp08ff50ryrclfz919qz587rj2hq0z41n9573w"
    const cases: Array<[string, string]> = [
      [`fixed:r:sha384:${h}`, `unknown hash algorithm "sha384"`],
      [`text:sha1:${"0".repeat(32)}`, "text content addresses use sha256, got sha1"],
      [`source:sha256:${h}`, "expected it to start with 'fixed:r:', 'fixed:' or 'text:'"],
      [`fixed:sha256`, "expected <algo>:<hash>"],
      [`fixed:sha256:${h.slice(1)}`, "got 51"],
      [`fixed:sha256:${h.slice(0, -1)}e`, "invalid nixbase32 character 'e'"]
    ]
    for (const [s, text] of cases) {
      const e = parseError(s)
      assert.include(e.message, text)
      assert.include(e.message, JSON.stringify(s))
    }
  })

  it.prop("render ∘ parse round trip", [CAHash.arbitrary], ([ca]) => {
    const back = Either.getOrThrow(CAHash.parse(CAHash.render(ca)))
    assert.strictEqual(back._tag, ca._tag)
    assert.isTrue(NixHash.equals(back.hash, ca.hash))
    const viaSchema = Schema.decodeSync(CAHash.FromString)(Schema.encodeSync(CAHash.FromString)(ca))
    assert.strictEqual(CAHash.render(viaSchema), CAHash.render(ca))
  })
})
