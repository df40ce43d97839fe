import { assert, describe, it } from "@effect/vitest"
import { Array as Arr, Either, Equal, FastCheck, Hash, Schema } from "effect"
import { Nixbase32, StorePath } from "@nixfx/nix-compat"

const base = "kjn8vc0fpx2z9xblvas05c9cc6sws2ra-fx-regular-file"

const parseError = (s: string, f: (s: string) => Either.Either<StorePath.StorePath, StorePath.StorePathError>) => {
  const r = f(s)
  if (Either.isRight(r)) assert.fail(`expected ${JSON.stringify(s)} to be rejected`)
  assert.strictEqual(r.left._tag, "StorePathError")
  return r.left
}

describe("StorePath", () => {
  it("parses a basename", () => {
    const sp = Either.getOrThrow(StorePath.parseBasename(base))
    assert.strictEqual(sp.name, "fx-regular-file")
    assert.strictEqual(sp.digest.length, 20)
    assert.strictEqual(Nixbase32.encode(sp.digest), "kjn8vc0fpx2z9xblvas05c9cc6sws2ra")
    assert.strictEqual(sp.hashPart, "kjn8vc0fpx2z9xblvas05c9cc6sws2ra")
    assert.strictEqual(StorePath.toBasename(sp), base)
    assert.strictEqual(sp.basename, base)
    assert.strictEqual(String(sp), base)
    assert.strictEqual(StorePath.toAbsolutePath(sp), "/nix/store/" + base)
    assert.strictEqual(StorePath.toAbsolutePath(sp, "/gnu/store"), "/gnu/store/" + base)
    assert.isFalse(StorePath.isDerivation(sp))
  })

  it("parses absolute paths under the default and a custom store dir", () => {
    const a = Either.getOrThrow(StorePath.parseAbsolutePath("/nix/store/" + base))
    const b = Either.getOrThrow(StorePath.parseAbsolutePath("/gnu/store/" + base, "/gnu/store"))
    const c = Either.getOrThrow(StorePath.parse("/nix/store/" + base))
    const d = Either.getOrThrow(StorePath.parse(base))
    assert.isTrue(StorePath.equals(a, b))
    assert.isTrue(Equal.equals(a, c))
    assert.isTrue(Equal.equals(c, d))
    assert.strictEqual(Hash.hash(a), Hash.hash(d))
  })

  it("parsed values equal constructed ones and satisfy the class schema", () => {
    const parsed = Either.getOrThrow(StorePath.parseBasename(base))
    const built = new StorePath.StorePath({ digest: parsed.digest.slice(), name: parsed.name })
    assert.isTrue(Equal.equals(parsed, built))
    assert.strictEqual(Hash.hash(parsed), Hash.hash(built))
    assert.strictEqual(StorePath.toBasename(built), base)
    assert.isTrue(Schema.is(StorePath.StorePath)(parsed))
    assert.deepStrictEqual(parsed, built)
    assert.throws(() => new StorePath.StorePath({ digest: new Uint8Array(20), name: ".x" as StorePath.Name }))
  })

  it("equality and Order", () => {
    const a = Either.getOrThrow(StorePath.parseBasename("0agbny3dndpf121dd8yvkyg60rparzcx-b"))
    const b = Either.getOrThrow(StorePath.parseBasename("0agbny3dndpf121dd8yvkyg60rparzcx-a"))
    const c = Either.getOrThrow(StorePath.parseBasename("1agbny3dndpf121dd8yvkyg60rparzcx-a"))
    assert.isFalse(StorePath.equals(a, b))
    assert.isFalse(Equal.equals(b, c))
    assert.deepStrictEqual(Arr.sort([c, a, b], StorePath.Order).map(StorePath.toBasename), [
      "0agbny3dndpf121dd8yvkyg60rparzcx-a",
      "0agbny3dndpf121dd8yvkyg60rparzcx-b",
      "1agbny3dndpf121dd8yvkyg60rparzcx-a"
    ])
  })

  it("derivations", () => {
    const drv = Either.getOrThrow(StorePath.parseDerivation("8hx5m64p566gv8l5kmbi1rx9lakzw24m-fx-symlink-to-store.drv"))
    assert.isTrue(StorePath.isDerivation(drv))
    assert.strictEqual(drv.name, "fx-symlink-to-store.drv")
    const e = parseError(base, StorePath.parseDerivation)
    assert.strictEqual(e.reason, "NotADerivation")
    assert.include(e.message, "does not end in .drv")
  })

  it("accepts every allowed name character and the maximum length", () => {
    const name = "Aa0+-_?=." + "x".repeat(202)
    assert.strictEqual(name.length, 211)
    const sp = Either.getOrThrow(StorePath.parseBasename("kjn8vc0fpx2z9xblvas05c9cc6sws2ra-" + name))
    assert.strictEqual(sp.name, name)
  })

  it("rejects bad names", () => {
    const cases: Array<[string, StorePath.StorePathErrorReason, string]> = [
      ["kjn8vc0fpx2z9xblvas05c9cc6sws2ra-", "EmptyName", "name is empty"],
      ["kjn8vc0fpx2z9xblvas05c9cc6sws2ra-" + "a".repeat(212), "NameTooLong", "212 characters long, at most 211"],
      ["kjn8vc0fpx2z9xblvas05c9cc6sws2ra-.hidden", "LeadingDot", "must not start with '.'"],
      ["kjn8vc0fpx2z9xblvas05c9cc6sws2ra-a b", "InvalidNameCharacter", `invalid character " " at position 1`],
      ["kjn8vc0fpx2z9xblvas05c9cc6sws2ra-a/b", "InvalidNameCharacter", `invalid character "/" at position 1`],
      ["kjn8vc0fpx2z9xblvas05c9cc6sws2ra-ü", "InvalidNameCharacter", `invalid character "ü" at position 0`]
    ]
    for (const [input, reason, text] of cases) {
      const e = parseError(input, StorePath.parseBasename)
      assert.strictEqual(e.reason, reason, input)
      assert.include(e.message, text)
      assert.include(e.message, JSON.stringify(input))
    }
  })

  it("rejects bad digests and shapes", () => {
    const cases: Array<[string, StorePath.StorePathErrorReason, string]> = [
      ["kjn8vc0fpx2z9xblvas05c9cc6sws2re-x", "InvalidDigest", "invalid nixbase32 character 'e' in digest at position 31"],
      ["kjn8vc0fpx2z9xblvas05c9cc6sws2r-x", "MissingDash", "expected '-'"],
      ["kjn8vc0fpx2z9xblvas05c9cc6sws2rax-x", "MissingDash", "expected '-' after the 32-character digest"],
      ["short", "InvalidDigestLength", "got 5 characters"],
      ["", "InvalidDigestLength", "got 0 characters"]
    ]
    for (const [input, reason, text] of cases) {
      const e = parseError(input, StorePath.parseBasename)
      assert.strictEqual(e.reason, reason, input)
      assert.include(e.message, text)
    }
  })

  it("rejects paths outside the store dir", () => {
    for (const input of ["/nix/store", "/nix/store/", "/nix/storex/" + base, "/other/" + base, "nix/store/" + base]) {
      const e = parseError(input, (s) => StorePath.parseAbsolutePath(s))
      assert.strictEqual(e.reason, "NotInStoreDir")
      assert.include(e.message, "not directly under the store directory /nix/store")
    }
    const nested = parseError("/nix/store/" + base + "/bin", (s) => StorePath.parseAbsolutePath(s))
    assert.strictEqual(nested.reason, "InvalidNameCharacter")
  })

  it("make validates digest length and name", () => {
    const ok = Either.getOrThrow(StorePath.make(new Uint8Array(20), "hello"))
    assert.strictEqual(StorePath.toBasename(ok), "00000000000000000000000000000000-hello")
    const e = Either.getLeft(StorePath.make(new Uint8Array(19), "hello"))
    assert.strictEqual(e._tag === "Some" && e.value.reason, "InvalidDigestLength")
    const e2 = Either.getLeft(StorePath.make(new Uint8Array(20), ".x"))
    assert.strictEqual(e2._tag === "Some" && e2.value.reason, "LeadingDot")
  })

  it("Schemas decode and encode", () => {
    const fromBase = Schema.decodeUnknownSync(StorePath.FromBasename)(base)
    assert.strictEqual(Schema.encodeSync(StorePath.FromBasename)(fromBase), base)
    assert.strictEqual(Schema.encodeSync(StorePath.FromAbsolutePath)(fromBase), "/nix/store/" + base)
    const gnu = StorePath.fromAbsolutePath("/gnu/store")
    assert.isTrue(StorePath.equals(Schema.decodeUnknownSync(gnu)("/gnu/store/" + base), fromBase))
    const bad = Schema.decodeUnknownEither(StorePath.FromBasename)("kjn8vc0fpx2z9xblvas05c9cc6sws2ra-.x")
    assert.isTrue(Either.isLeft(bad))
    if (Either.isLeft(bad)) assert.include(bad.left.message, "must not start with '.'")
    // the class schema validates too
    assert.isTrue(
      Either.isLeft(Schema.decodeUnknownEither(StorePath.StorePath)({ digest: new Uint8Array(3), name: "x" }))
    )
  })

  it.prop("basename round trip", [StorePath.arbitrary], ([sp]) => {
    const b = StorePath.toBasename(sp)
    assert.strictEqual(b.length, 33 + sp.name.length)
    const back = Either.getOrThrow(StorePath.parseBasename(b))
    assert.isTrue(StorePath.equals(back, sp))
    assert.isTrue(Equal.equals(back, sp))
    assert.strictEqual(StorePath.toBasename(back), b)
  })

  it.prop("absolute path round trip through the Schema", [StorePath.FromAbsolutePath], ([sp]) => {
    const s = Schema.encodeSync(StorePath.FromAbsolutePath)(sp)
    assert.isTrue(StorePath.equals(Schema.decodeSync(StorePath.FromAbsolutePath)(s), sp))
  })

  it.prop(
    "random strings either parse to something that prints back identically or fail typed",
    [FastCheck.string({ maxLength: 60 })],
    ([s]) => {
      const r = StorePath.parseBasename(s)
      if (Either.isRight(r)) assert.strictEqual(StorePath.toBasename(r.right), s)
      else assert.strictEqual(r.left._tag, "StorePathError")
    }
  )
})
