import { assert, describe, it } from "@effect/vitest"
import { FastCheck } from "effect"
import * as Base64 from "@nixfx/nix-compat/internal/base64"

describe("internal/base64 (strict)", () => {
  it.prop("decodes what Buffer encodes", [FastCheck.uint8Array({ maxLength: 70 })], ([bytes]) => {
    const s = Buffer.from(bytes).toString("base64")
    const r = Base64.decode(s, 0, s.length, bytes.length)
    assert.instanceOf(r, Uint8Array)
    assert.deepStrictEqual(r, bytes)
    assert.strictEqual(Base64.encode(bytes), s)
  })

  it.prop(
    "accepts only the one canonical encoding",
    [FastCheck.stringMatching(/^[A-Za-z0-9+/=!]{0,12}$/), FastCheck.nat(9)],
    ([s, length]) => {
      const r = Base64.decode(s, 0, s.length, length)
      if (r instanceof Uint8Array) {
        assert.strictEqual(Buffer.from(r).toString("base64"), s)
        assert.strictEqual(r.length, length)
      }
    }
  )

  it("reports the failure kind", () => {
    assert.deepStrictEqual(Base64.decode("AAA", 0, 3, 2), { reason: "InvalidLength", position: -1 })
    assert.deepStrictEqual(Base64.decode("AAAA", 0, 4, 2), { reason: "WrongSize", position: -1, bytes: 3 })
    assert.deepStrictEqual(Base64.decode("AB==", 0, 4, 1), { reason: "NonCanonical", position: -1 })
    assert.deepStrictEqual(Base64.decode("A-A=", 0, 4, 2), { reason: "InvalidCharacter", position: 1 })
    assert.deepStrictEqual(Base64.decode("xAQ==", 1, 5, 1), new Uint8Array([1]))
  })
})
