import { PathComponent, SymlinkTarget } from "@nixfx/castore-nodes"
import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"
import { byteOrder, pathComponent } from "./arbitraries.js"

const rejects = (s: string, reason: string, text: string) => {
  const r = PathComponent.validate(s)
  assert.isTrue(Either.isLeft(r), `${JSON.stringify(s)} should be rejected`)
  if (Either.isLeft(r)) {
    assert.strictEqual(r.left._tag, "InvalidPathComponent")
    assert.strictEqual(r.left.reason, reason)
    assert.include(r.left.message, text)
  }
}

describe("PathComponent", () => {
  it("rejects each broken rule with its reason", () => {
    rejects("", "Empty", "must not be empty")
    rejects(".", "CurrentDir", `must not be "."`)
    rejects("..", "ParentDir", `must not be ".."`)
    rejects("a/b", "ContainsSlash", `invalid path component "a/b": must not contain "/"`)
    rejects("/", "ContainsSlash", `must not contain "/"`)
    rejects("a\0b", "ContainsNul", `invalid path component "a\\u0000b": must not contain NUL`)
    rejects("x".repeat(256), "TooLong", "must be at most 255 bytes, got 256")
    rejects("é".repeat(128), "TooLong", "got 256")
    rejects("a\ud800", "InvalidUtf8", "must be valid UTF-8")
  })

  it("accepts names at the limits and odd but legal names", () => {
    for (const s of ["x".repeat(255), "é".repeat(127) + "x", "...", ".a", "-", " ", "\ufeffbom", "😀", "a\\b"]) {
      assert.isTrue(Either.isRight(PathComponent.validate(s)), JSON.stringify(s))
    }
  })

  it("fromUtf8 rejects invalid UTF-8 and keeps a leading BOM", () => {
    const r = PathComponent.fromUtf8(new Uint8Array([0x61, 0xff]))
    assert.isTrue(Either.isLeft(r))
    if (Either.isLeft(r)) {
      assert.strictEqual(r.left.reason, "InvalidUtf8")
      assert.include(r.left.message, "0x61ff")
    }
    // overlong "/" must not sneak through as a slash or as text
    assert.isTrue(Either.isLeft(PathComponent.fromUtf8(new Uint8Array([0xc0, 0xaf]))))
    const bom = Either.getOrThrow(PathComponent.fromUtf8(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])))
    assert.strictEqual(bom, "\ufeffa")
    const slash = PathComponent.fromUtf8(new TextEncoder().encode("a/b"))
    assert.isTrue(Either.isLeft(slash) && slash.left.reason === "ContainsSlash")
  })

  it("the Schema rejects with the rule", () => {
    const r = Schema.decodeUnknownEither(PathComponent.PathComponent)("..")
    assert.isTrue(Either.isLeft(r))
    if (Either.isLeft(r)) assert.include(r.left.message, `must not be ".."`)
  })

  it("orders by UTF-8 bytes, not UTF-16 code units", () => {
    const astral = "😀" as PathComponent.PathComponent
    const highBmp = "\uffff" as PathComponent.PathComponent
    assert.isTrue(astral < highBmp) // JS order
    assert.strictEqual(PathComponent.compare(astral, highBmp), 1) // byte order
    assert.strictEqual(PathComponent.compare(highBmp, astral), -1)
    assert.strictEqual(PathComponent.compare(astral, astral), 0)
    // "Z a a-b a.b a0 aB" from the fixtures is in byte order
    const names = ["Z", "a", "a-b", "a.b", "a0", "aB"] as Array<PathComponent.PathComponent>
    for (let i = 1; i < names.length; i++) assert.strictEqual(PathComponent.compare(names[i - 1], names[i]), -1)
  })

  it.prop("compare agrees with Buffer.compare of the UTF-8 bytes", [pathComponent, pathComponent], ([a, b]) => {
    assert.strictEqual(PathComponent.compare(a, b), Math.sign(byteOrder(a, b)))
  }, { fastCheck: { numRuns: 2000 } })

  it.prop("validate agrees with a Buffer-based oracle", [fc.string({ unit: "binary", maxLength: 4 })], ([s]) => {
    const bytes = Buffer.from(s, "utf8")
    const ok = s.length > 0 && s !== "." && s !== ".." && !bytes.includes(0x2f) && !bytes.includes(0) &&
      bytes.length <= 255
    assert.strictEqual(Either.isRight(PathComponent.validate(s)), ok)
    assert.strictEqual(Either.isRight(PathComponent.fromUtf8(bytes)), ok)
  })
})

describe("SymlinkTarget", () => {
  const rejects = (s: string, reason: string, text: string) => {
    const r = SymlinkTarget.validate(s)
    assert.isTrue(Either.isLeft(r), `${JSON.stringify(s)} should be rejected`)
    if (Either.isLeft(r)) {
      assert.strictEqual(r.left._tag, "InvalidSymlinkTarget")
      assert.strictEqual(r.left.reason, reason)
      assert.include(r.left.message, text)
    }
  }

  it("rejects empty, NUL, too long, ill-formed", () => {
    rejects("", "Empty", "invalid symlink target \"\": must not be empty")
    rejects("a\0", "ContainsNul", "must not contain NUL")
    rejects("t".repeat(4096), "TooLong", "must be at most 4095 bytes, got 4096")
    rejects("\udc00", "InvalidUtf8", "must be valid UTF-8")
    const bytes = SymlinkTarget.fromUtf8(new Uint8Array([0x2f, 0xfe]))
    assert.isTrue(Either.isLeft(bytes) && bytes.left.reason === "InvalidUtf8")
  })

  it("accepts any other target", () => {
    for (const s of ["t".repeat(4095), "/", ".", "..", "../not/a/store/path", "/nix/store/x", "a b😀"]) {
      assert.isTrue(Either.isRight(SymlinkTarget.validate(s)), s)
      assert.isTrue(Either.isRight(SymlinkTarget.fromUtf8(Buffer.from(s))), s)
    }
  })
})
