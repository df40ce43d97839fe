import { assert, describe, it } from "@effect/vitest"
import { Either, Equal, Option, Schema } from "effect"
import { Keys, NarInfo, Signature } from "@nixfx/nix-compat"
import { manifest, readFixture } from "./fixtures.js"

const publicKey = (name: string) => Either.getOrThrow(Signature.parsePublicKey(readFixture(`keys/${name}.public`)))
const secretKey = (name: string) => Either.getOrThrow(Signature.parseSecretKey(readFixture(`keys/${name}.secret`)))

const keyError = <A>(r: Either.Either<A, Keys.KeyError>, what: string) => {
  if (Either.isRight(r)) assert.fail(`expected ${what} to be rejected`)
  assert.strictEqual(r.left._tag, "KeyError")
  return r.left
}

describe("Signature", () => {
  it("parses the fixture keys", () => {
    for (const name of ["test-cache-1", "test-cache-2"]) {
      const pk = publicKey(name)
      const sk = secretKey(name)
      assert.strictEqual(pk.name, name)
      assert.strictEqual(pk.key.length, 32)
      assert.strictEqual(Signature.formatPublicKey(pk), manifest.keys[name].public)
      assert.strictEqual(Signature.formatSecretKey(sk), readFixture(`keys/${name}.secret`))
      assert.isTrue(Equal.equals(sk.public, pk))
      assert.notInclude(String(sk), Signature.formatSecretKey(sk).slice(name.length + 1))
      assert.notInclude(JSON.stringify(sk), Signature.formatSecretKey(sk).slice(name.length + 1))
    }
  })

  it("signing each fixture fingerprint reproduces the stored signature (ed25519 is deterministic)", () => {
    const keys = { "test-cache-1": secretKey("test-cache-1"), "test-cache-2": secretKey("test-cache-2") }
    let count = 0
    for (const cache of Object.values(manifest.caches)) {
      for (const p of cache.paths) {
        for (const stored of p.signatures) {
          const keyName = stored.slice(0, stored.indexOf(":")) as keyof typeof keys
          const sig = Signature.signFingerprint(p.fingerprint, keys[keyName])
          assert.strictEqual(Signature.formatSignature(sig), stored, p.narinfo)
          count++
        }
      }
    }
    assert.isAbove(count, 150)
  })

  it("sign(narInfo) adds the signature Nix would write, once", () => {
    const p = manifest.caches.unsigned.paths[0]
    const ni = Either.getOrThrow(NarInfo.parse(readFixture(p.narinfo)))
    assert.strictEqual(ni.signatures.length, 0)
    const signed = Signature.sign(ni, secretKey("test-cache-1"))
    const expected = manifest.caches.none.paths.find((q) => q.storePath === p.storePath)!.signatures[0]
    assert.deepStrictEqual(signed.signatures.map(Signature.formatSignature), [expected])
    assert.include(NarInfo.render(signed), `\nSig: ${expected}\n`)
    assert.strictEqual(Signature.sign(signed, secretKey("test-cache-1")), signed)
    const both = Signature.sign(signed, secretKey("test-cache-2"))
    assert.deepStrictEqual(both.signatures.map((s) => s.keyName), ["test-cache-1", "test-cache-2"])
    const v = Signature.verify(both, [publicKey("test-cache-2")])
    assert.isTrue(Option.isSome(v) && v.value.key.name === "test-cache-2")
  })

  it("verify says which key verified, and none for wrong keys or tampered fields", () => {
    const p = manifest.caches.none.paths.find((q) => q.references.length > 0)!
    const ni = Either.getOrThrow(NarInfo.parse(readFixture(p.narinfo)))
    const k1 = publicKey("test-cache-1")
    const k2 = publicKey("test-cache-2")
    const v = Signature.verify(ni, [k2, k1])
    assert.isTrue(Option.isSome(v))
    if (Option.isSome(v)) {
      assert.strictEqual(v.value.key, k1)
      assert.strictEqual(Signature.formatSignature(v.value.signature), p.signatures[0])
    }
    assert.isTrue(Option.isNone(Signature.verify(ni, [k2])))
    assert.isTrue(Option.isNone(Signature.verify(ni, [])))
    // same name, other key bytes: rejected
    const impostor = new Signature.PublicKey({ name: "test-cache-1", key: k2.key })
    assert.isTrue(Option.isNone(Signature.verify(ni, [impostor])))
    // tampering with a signed field breaks it
    const tampered = new NarInfo.NarInfo({ ...ni, narSize: ni.narSize + 1 })
    assert.isTrue(Option.isNone(Signature.verify(tampered, [k1])))
    const noRefs = new NarInfo.NarInfo({ ...ni, references: [] })
    assert.isTrue(Option.isNone(Signature.verify(noRefs, [k1])))
    // ...but not an unsigned field (URL is not in the fingerprint)
    const moved = new NarInfo.NarInfo({ ...ni, url: "elsewhere.nar" })
    assert.isTrue(Option.isSome(Signature.verify(moved, [k1])))
  })

  it("a generated key signs and verifies", () => {
    const sk = Either.getOrThrow(Signature.generateSecretKey("my-cache-1"))
    const back = Either.getOrThrow(Signature.parseSecretKey(Signature.formatSecretKey(sk)))
    assert.deepStrictEqual(back.seed, sk.seed)
    const sig = Signature.signFingerprint("1;hello", sk)
    assert.isTrue(Signature.verifyFingerprint("1;hello", sig, sk.public))
    assert.isFalse(Signature.verifyFingerprint("1;hellO", sig, sk.public))
    const parsedSig = Either.getOrThrow(Signature.parseSignature(Signature.formatSignature(sig)))
    assert.isTrue(Equal.equals(parsedSig, sig))
    assert.strictEqual(keyError(Signature.generateSecretKey(""), "empty name").reason, "InvalidName")
  })

  it("parses a list of trusted public keys", () => {
    const keys = Either.getOrThrow(
      Signature.parsePublicKeys(`  ${manifest.keys["test-cache-1"].public}\n ${manifest.keys["test-cache-2"].public} `)
    )
    assert.deepStrictEqual(keys.map((k) => k.name), ["test-cache-1", "test-cache-2"])
    const e = keyError(Signature.parsePublicKeys(`${manifest.keys["test-cache-1"].public} broken`), "list")
    assert.strictEqual(e.reason, "MissingSeparator")
  })

  it("rejects malformed public keys", () => {
    const b32 = Buffer.alloc(32, 1).toString("base64")
    const cases: Array<[string, Keys.KeyErrorReason, string]> = [
      ["no-separator", "MissingSeparator", "found no ':'"],
      [`:${b32}`, "InvalidName", "key name is empty"],
      [`a b:${b32}`, "InvalidName", "whitespace"],
      [`k:${Buffer.alloc(31).toString("base64")}`, "InvalidLength", "expected 32 bytes after base64 decoding, got 31"],
      [`k:${Buffer.alloc(33).toString("base64")}`, "InvalidLength", "expected 32 bytes after base64 decoding, got 33"],
      [`k:${Buffer.alloc(34).toString("base64")}`, "InvalidLength", "expected 44 base64 characters (32 bytes), got 48"],
      [`k:${b32.slice(0, -2)}!=`, "InvalidBase64", `invalid base64 character "!"`],
      [`k:${b32.slice(0, -2)}B=`, "InvalidBase64", "non-canonical base64"]
    ]
    for (const [s, reason, text] of cases) {
      const e = keyError(Signature.parsePublicKey(s), s)
      assert.strictEqual(e.subject, "PublicKey")
      assert.strictEqual(e.reason, reason, s)
      assert.include(e.message, text)
      assert.include(e.message, "invalid public key")
    }
  })

  it("rejects malformed secret keys without echoing them", () => {
    const good = readFixture("keys/test-cache-1.secret")
    const body = good.slice(good.indexOf(":") + 1)
    const short = `test-cache-1:${Buffer.from(body, "base64").subarray(0, 63).toString("base64")}`
    const e = keyError(Signature.parseSecretKey(short), "63-byte secret key")
    assert.strictEqual(e.reason, "InvalidLength")
    assert.include(e.message, "invalid secret key \"test-cache-1\"")
    assert.include(e.message, "expected 88 base64 characters (64 bytes), got 84")
    assert.notInclude(e.message, body.slice(0, 20))
    // the public half of test-cache-2 glued to the seed of test-cache-1
    const other = Buffer.from(readFixture("keys/test-cache-2.secret").split(":")[1], "base64")
    const mixed = Buffer.concat([Buffer.from(body, "base64").subarray(0, 32), other.subarray(32)])
    const e2 = keyError(Signature.parseSecretKey(`mixed:${mixed.toString("base64")}`), "mismatched secret key")
    assert.strictEqual(e2.reason, "InvalidKey")
    assert.include(e2.message, "the public half does not belong to the seed")
    assert.strictEqual(keyError(Signature.parseSecretKey(body), "no name").reason, "MissingSeparator")
  })

  it("rejects malformed signatures", () => {
    const sig64 = Buffer.alloc(64, 3).toString("base64")
    const cases: Array<[string, Keys.KeyErrorReason, string]> = [
      [sig64, "MissingSeparator", "found no ':'"],
      [`:${sig64}`, "InvalidName", "key name is empty"],
      [`k:${Buffer.alloc(63).toString("base64")}`, "InvalidLength", "expected 88 base64 characters (64 bytes), got 84"],
      [`k:${Buffer.alloc(65).toString("base64")}`, "InvalidLength", "expected 64 bytes after base64 decoding, got 65"],
      [`k:${sig64.slice(1)}`, "InvalidLength", "got 87"]
    ]
    for (const [s, reason, text] of cases) {
      const e = keyError(Signature.parseSignature(s), s)
      assert.strictEqual(e.subject, "Signature")
      assert.strictEqual(e.reason, reason, s)
      assert.include(e.message, text)
    }
  })

  it("Schemas", () => {
    const s = manifest.caches.none.paths[0].signatures[0]
    const sig = Schema.decodeUnknownSync(Keys.SignatureFromString)(s)
    assert.strictEqual(Schema.encodeSync(Keys.SignatureFromString)(sig), s)
    const pk = Schema.decodeUnknownSync(Keys.PublicKeyFromString)(manifest.keys["test-cache-2"].public)
    assert.strictEqual(Schema.encodeSync(Keys.PublicKeyFromString)(pk), manifest.keys["test-cache-2"].public)
    const bad = Schema.decodeUnknownEither(Keys.SignatureFromString)("k:AAAA")
    assert.isTrue(Either.isLeft(bad) && bad.left.message.includes("invalid signature \"k\""))
  })
})
