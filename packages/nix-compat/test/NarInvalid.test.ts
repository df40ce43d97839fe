import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import * as Nar from "../src/Nar.js"

const utf8 = new TextEncoder()

type Part = string | Uint8Array | { readonly raw: Uint8Array } | { readonly u64: number | bigint }

/** Wire form of a token sequence: strings get length and zero padding; `raw` goes as is; `u64` is 8 bytes. */
const wire = (...parts: ReadonlyArray<Part>): Uint8Array => {
  const out: Array<number> = []
  const u64 = (n: bigint) => {
    for (let i = 0n; i < 8n; i++) out.push(Number((n >> (8n * i)) & 0xffn))
  }
  for (const part of parts) {
    if (typeof part === "object" && "raw" in part) {
      out.push(...part.raw)
    } else if (typeof part === "object" && "u64" in part) {
      u64(BigInt(part.u64))
    } else {
      const b = typeof part === "string" ? utf8.encode(part) : part
      u64(BigInt(b.length))
      out.push(...b)
      while (out.length % 8 !== 0) out.push(0)
    }
  }
  return new Uint8Array(out)
}

const file = (contents: string, executable = false): Array<Part> => [
  "(",
  "type",
  "regular",
  ...(executable ? ["executable", ""] : []),
  "contents",
  contents,
  ")"
]
const dir = (...entries: ReadonlyArray<[string | Uint8Array, Array<Part>]>): Array<Part> => [
  "(",
  "type",
  "directory",
  ...entries.flatMap(([name, node]) => ["entry", "(", "name", name, "node", ...node, ")"]),
  ")"
]
const link = (target: string | Uint8Array): Array<Part> => ["(", "type", "symlink", "target", target, ")"]
const nar = (node: Array<Part>, ...extra: Array<Part>) => wire("nix-archive-1", ...node, ...extra)

/** Offsets at which each part of `wire(...parts)` starts: the token boundaries. */
const boundaries = (...parts: ReadonlyArray<Part>): Array<number> => {
  const out: Array<number> = []
  let p = 0
  for (const part of parts) {
    out.push(p)
    p += wire(part).length
  }
  out.push(p)
  return out
}

/** Parses `bytes` (whole, then split at every byte) and returns the error; asserts both agree. */
const failure = (bytes: Uint8Array, options?: Nar.ParserOptions): Nar.NarError => {
  const whole = Nar.decodeTree(bytes, options)
  assert.isTrue(Either.isLeft(whole), "expected the NAR to be rejected")
  const err = (whole as Either.Left<Nar.NarError, Nar.Tree>).left
  assert.strictEqual(err._tag, "NarError")
  const pieces = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1))
  const split = Nar.decodeTree(pieces, options)
  assert.isTrue(Either.isLeft(split))
  const err2 = (split as Either.Left<Nar.NarError, Nar.Tree>).left
  assert.strictEqual(err2.reason, err.reason)
  assert.strictEqual(err2.offset, err.offset)
  assert.strictEqual(err2.message, err.message)
  return err
}

const sampleParts: Array<Part> = [
  "nix-archive-1",
  ...dir(
    ["a", file("hello")],
    ["b", dir(["c", link("../a")], ["d", file("", true)])],
    ["e", file("12345678")]
  )
]
const sample = wire(...sampleParts)

describe("Nar reader accepts", () => {
  it("the sample", () => {
    const tree = Either.getOrThrow(Nar.decodeTree(sample))
    assert.strictEqual(tree._tag, "Directory")
    assert.deepStrictEqual(Either.getOrThrow(Nar.encodeTree(tree)), sample)
  })

  it("names with bytes above 0x7f and leading dots or dashes", () => {
    // byte order: '-' 0x2d < '.' 0x2e < 'a' 0x61 < 0xff
    const bytes = nar(dir([".a", file("")], ["..a", file("")]))
    assert.strictEqual(failure(bytes).reason, "UnsortedEntries")
    const sorted = nar(dir(["-", file("")], ["..a", file("")], [".a", file("")], [new Uint8Array([0xff]), file("")]))
    assert.isTrue(Either.isRight(Nar.decodeTree(sorted)))
  })

  it("names of exactly 255 bytes and targets of exactly 4095 bytes", () => {
    const bytes = nar(dir(["n".repeat(255), link("t".repeat(4095))]))
    assert.isTrue(Either.isRight(Nar.decodeTree(bytes)))
    const pieces = [bytes.subarray(0, 300), bytes.subarray(300, 2000), bytes.subarray(2000)]
    assert.isTrue(Either.isRight(Nar.decodeTree(pieces)))
  })

  it("directories exactly as deep as the limit", () => {
    let node = file("x")
    for (let i = 0; i < 10; i++) node = dir(["d", node])
    assert.isTrue(Either.isRight(Nar.decodeTree(nar(node), { maxDepth: 10 })))
    assert.strictEqual(failure(nar(node), { maxDepth: 9 }).reason, "TooDeep")
  })
})

describe("Nar reader rejects", () => {
  it("truncation at every token boundary (and every byte) of a small NAR", () => {
    const tokenStarts = new Set(boundaries(...sampleParts))
    assert.strictEqual(tokenStarts.size, sampleParts.length + 1)
    assert.isTrue(tokenStarts.has(sample.length))
    for (let cut = 0; cut < sample.length; cut++) {
      const err = failure(sample.subarray(0, cut))
      assert.strictEqual(err.reason, "Truncated", `cut at ${cut}`)
      if (tokenStarts.has(cut)) {
        // At a token boundary the error points at the cut and names what was expected there.
        assert.strictEqual(err.offset, cut, `cut at ${cut}`)
        assert.match(err.message, new RegExp(`^NAR offset ${cut}: input ends `))
      } else {
        assert.isAtMost(err.offset, cut)
      }
      assert.match(err.detail, /expected|inside/)
    }
  })

  it("truncation names the expected token", () => {
    assert.strictEqual(failure(new Uint8Array(0)).message, "NAR offset 0: input ends where the magic 'nix-archive-1' was expected")
    const afterMagic = wire("nix-archive-1")
    assert.strictEqual(
      failure(afterMagic).message,
      "NAR offset 24: input ends where '(' opening a node was expected"
    )
    const inDir = nar(["(", "type", "directory"])
    assert.strictEqual(
      failure(inDir).message,
      "NAR offset 80: input ends where 'entry' or ')' closing the directory was expected"
    )
    const inFile = nar(["(", "type", "regular", "contents", { u64: 100 }, { raw: new Uint8Array(40) }])
    const err = failure(inFile)
    assert.strictEqual(err.detail, "input ends inside the contents of a 100-byte file (60 bytes missing)")
    const midToken = wire("nix-archive-1", "(").subarray(0, 27)
    assert.strictEqual(
      failure(midToken).message,
      "NAR offset 24: input ends inside the token where '(' opening a node was expected (3 of at least 8 bytes present)"
    )
  })

  it("wrong magic", () => {
    for (const magic of ["nix-archive-2", "nix-archive-", "", "(", "NIX-ARCHIVE-1"]) {
      const err = failure(wire(magic, ...file("x")))
      assert.strictEqual(err.reason, "BadMagic", magic)
      assert.strictEqual(err.offset, 0)
    }
    const huge = failure(wire({ u64: 2n ** 62n }))
    assert.strictEqual(huge.reason, "BadMagic")
    assert.include(huge.detail, "4611686018427387904")
    const gzip = failure(new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]))
    assert.strictEqual(gzip.reason, "BadMagic")
  })

  it("unsorted entries", () => {
    const err = failure(nar(dir(["c", file("")], ["b", file("")])))
    assert.strictEqual(err.reason, "UnsortedEntries")
    assert.strictEqual(
      err.message,
      "NAR offset 312: entry name 'b' is not after 'c' (entries must be strictly sorted)"
    )
    // Byte order, not string order: "a" < "a-b" < "a.b" < "a0" < "aB" < "Z" is wrong; "Z" (0x5a) < "a" (0x61).
    assert.strictEqual(failure(nar(dir(["a", file("")], ["Z", file("")]))).reason, "UnsortedEntries")
    // A prefix sorts first.
    assert.strictEqual(failure(nar(dir(["ab", file("")], ["a", file("")]))).reason, "UnsortedEntries")
    // Order is per directory: the same names in sibling directories are fine.
    assert.isTrue(Either.isRight(Nar.decodeTree(nar(dir(["x", dir(["b", file("")])], ["y", dir(["a", file("")])])))))
  })

  it("duplicate entries", () => {
    const err = failure(nar(dir(["a", file("1")], ["a", file("2")])))
    assert.strictEqual(err.reason, "DuplicateEntry")
    assert.include(err.message, "entry name 'a' appears twice")
  })

  it("invalid names", () => {
    const cases: ReadonlyArray<[string | Uint8Array, string]> = [
      ["..", "is '..'"],
      [".", "is '.'"],
      ["a/b", "contains '/' at byte 1"],
      ["/", "contains '/' at byte 0"],
      [new Uint8Array([0x61, 0]), "contains NUL at byte 1"],
      ["", "is empty"]
    ]
    for (const [name, problem] of cases) {
      const err = failure(nar(dir([name, file("x")])))
      assert.strictEqual(err.reason, "InvalidName")
      assert.strictEqual(err.offset, 128)
      assert.include(err.detail, problem)
    }
  })

  it("invalid symlink targets", () => {
    assert.strictEqual(failure(nar(link(""))).reason, "InvalidTarget")
    const nul = failure(nar(link(new Uint8Array([0x61, 0, 0x62]))))
    assert.strictEqual(nul.reason, "InvalidTarget")
    assert.include(nul.detail, "NUL at byte 1")
  })

  it("non-zero padding in strings and after file contents", () => {
    const good = nar(file("abc"))
    // "abc" body starts after magic(24) ( (16) type (16) regular (16) contents (16) size (8) = 96
    const badContents = good.slice()
    badContents[96 + 5] = 1
    const e1 = failure(badContents)
    assert.strictEqual(e1.reason, "NonZeroPadding")
    assert.strictEqual(e1.offset, 101)
    assert.include(e1.detail, "3-byte file")

    const badMagicPad = good.slice()
    badMagicPad[8 + 13] = 0x20
    const e2 = failure(badMagicPad)
    assert.strictEqual(e2.reason, "NonZeroPadding")
    assert.strictEqual(e2.offset, 21)

    const named = nar(dir(["abc", file("")]))
    const badNamePad = named.slice()
    badNamePad[128 + 8 + 4] = 9
    const e3 = failure(badNamePad)
    assert.strictEqual(e3.reason, "NonZeroPadding")
    assert.strictEqual(e3.offset, 140)
    assert.include(e3.detail, "'abc'")
  })

  it("huge declared lengths, before reading or allocating", () => {
    const name = failure(wire("nix-archive-1", "(", "type", "directory", "entry", "(", "name", { u64: 2n ** 63n }))
    assert.strictEqual(name.reason, "NameTooLong")
    assert.include(name.detail, "9223372036854775808")
    assert.strictEqual(failure(nar(dir(["n".repeat(256), file("")]))).reason, "NameTooLong")

    const target = failure(wire("nix-archive-1", "(", "type", "symlink", "target", { u64: 4096 }))
    assert.strictEqual(target.reason, "TargetTooLong")
    assert.strictEqual(target.offset, 88)

    const size = failure(wire("nix-archive-1", "(", "type", "regular", "contents", { u64: 2n ** 53n }))
    assert.strictEqual(size.reason, "FileTooLarge")

    // A keyword position with an absurd length is rejected right away, not awaited.
    const kw = failure(wire("nix-archive-1", { u64: 0xffff_ffff_ffffn }))
    assert.strictEqual(kw.reason, "UnexpectedToken")
    assert.include(kw.detail, "expected '(' opening a node, found a string declaring 281474976710655 bytes")
  })

  it("a file that declares more bytes than the input holds is truncation, not a long wait", () => {
    const err = failure(wire("nix-archive-1", "(", "type", "regular", "contents", { u64: 2 ** 40 }))
    assert.strictEqual(err.reason, "Truncated")
    assert.include(err.detail, "1099511627776-byte file")
  })

  it("trailing garbage", () => {
    const err = failure(new Uint8Array([...sample, 0]))
    assert.strictEqual(err.reason, "TrailingData")
    assert.strictEqual(err.offset, sample.length)
    assert.strictEqual(failure(new Uint8Array([...sample, ...sample])).reason, "TrailingData")
  })

  it("too deep nesting", () => {
    let node = link("x")
    for (let i = 0; i < 300; i++) node = dir(["d", node])
    const err = failure(nar(node))
    assert.strictEqual(err.reason, "TooDeep")
    assert.include(err.detail, "257 levels deep, more than the limit of 256")
    assert.strictEqual(failure(nar(dir()), { maxDepth: 0 }).reason, "TooDeep")
  })

  it("unexpected tokens, naming what was expected", () => {
    const cases: ReadonlyArray<[Uint8Array, string]> = [
      [wire("nix-archive-1", "[", "type"), "expected '(' opening a node, found '['"],
      [wire("nix-archive-1", "(", "kind"), "expected 'type', found 'kind'"],
      [wire("nix-archive-1", "(", "type", "fifo"), "expected a node type ('regular', 'symlink' or 'directory'), found 'fifo'"],
      [wire("nix-archive-1", "(", "type", "regular", "content"), "expected 'executable' or 'contents', found 'content'"],
      [wire("nix-archive-1", "(", "type", "regular", "executable", "x"), "expected the empty string after 'executable', found 'x'"],
      [wire("nix-archive-1", "(", "type", "regular", "executable", "", "target"), "expected 'contents', found 'target'"],
      [wire("nix-archive-1", ...file("").slice(0, -1), "("), "expected ')' closing the node, found '('"],
      [wire("nix-archive-1", "(", "type", "directory", "entries"), "expected 'entry' or ')' closing the directory, found 'entries'"],
      [wire("nix-archive-1", "(", "type", "directory", "entry", "name"), "expected '(' opening an entry, found 'name'"],
      [wire("nix-archive-1", "(", "type", "directory", "entry", "(", "nam"), "expected 'name', found 'nam'"],
      [wire("nix-archive-1", "(", "type", "directory", "entry", "(", "name", "a", "(",), "expected 'node', found '('"],
      [wire("nix-archive-1", "(", "type", "directory", "entry", "(", "name", "a", "node", ...file(""), "entry"), "expected ')' closing the entry, found 'entry'"],
      [wire("nix-archive-1", "(", "type", "symlink", "contents"), "expected 'target', found 'contents'"],
      [wire("nix-archive-1", ...link("x").slice(0, -1), "\u0001"), "expected ')' closing the node, found '\\x01'"]
    ]
    for (const [bytes, detail] of cases) {
      const err = failure(bytes)
      assert.strictEqual(err.reason, "UnexpectedToken", detail)
      assert.strictEqual(err.detail, detail)
    }
  })

  it("stays failed after an error", () => {
    const parser = Nar.makeParser(new Nar.EventCollector())
    assert.throws(() => parser.push(wire("nix-archive-2")), /BadMagic|magic/)
    assert.throws(() => parser.push(wire("(")), /magic/)
    assert.throws(() => parser.end(), /magic/)
  })
})

describe("Nar writer rejects", () => {
  const write = (f: (w: Nar.Writer) => void): Nar.NarError => {
    const w = Nar.makeWriter(() => {})
    try {
      f(w)
      w.end()
    } catch (e) {
      assert.isTrue(Nar.isNarError(e))
      return e as Nar.NarError
    }
    assert.fail("expected the writer to throw")
  }
  const b = (s: string) => utf8.encode(s)

  it("events out of order", () => {
    assert.strictEqual(write((w) => w.entry(b("a"))).reason, "UnexpectedEvent")
    assert.strictEqual(write((w) => (w.directoryStart(), w.fileChunk(b("x")))).reason, "UnexpectedEvent")
    assert.strictEqual(write((w) => (w.symlink(b("x")), w.symlink(b("y")))).reason, "UnexpectedEvent")
    assert.strictEqual(write((w) => (w.directoryStart(), w.entry(b("a")), w.directoryEnd())).reason, "UnexpectedEvent")
    const e = write((w) => (w.directoryStart(), w.entry(b("a"))))
    assert.strictEqual(e.reason, "Truncated")
    assert.include(e.detail, "for the entry")
  })

  it("file contents not matching the announced size", () => {
    const long = write((w) => (w.fileStart(false, 2), w.fileChunk(b("abc"))))
    assert.strictEqual(long.reason, "FileSizeMismatch")
    assert.include(long.detail, "1 bytes too many")
    const short = write((w) => (w.fileStart(false, 5), w.fileChunk(b("abc")), w.fileEnd()))
    assert.strictEqual(short.reason, "FileSizeMismatch")
    assert.include(short.detail, "after 3 of the announced 5 bytes")
    assert.strictEqual(write((w) => w.fileStart(false, -1)).reason, "FileTooLarge")
  })

  it("invalid, unsorted and duplicate names; invalid targets", () => {
    for (const name of ["", ".", "..", "a/b", "a\u0000"]) {
      assert.strictEqual(write((w) => (w.directoryStart(), w.entry(b(name)))).reason, "InvalidName", name)
    }
    assert.strictEqual(write((w) => (w.directoryStart(), w.entry(b("x".repeat(256))))).reason, "NameTooLong")
    const sorted = (w: Nar.Writer, a: string, c: string) => {
      w.directoryStart()
      w.entry(b(a))
      w.symlink(b("t"))
      w.entry(b(c))
    }
    const unsorted = write((w) => sorted(w, "b", "a"))
    assert.strictEqual(unsorted.reason, "UnsortedEntries")
    assert.include(unsorted.message, "entry name 'a' is not after 'b'")
    assert.strictEqual(write((w) => sorted(w, "a", "a")).reason, "DuplicateEntry")
    assert.strictEqual(write((w) => w.symlink(b(""))).reason, "InvalidTarget")
    assert.strictEqual(write((w) => w.symlink(b("x".repeat(4096)))).reason, "TargetTooLong")
  })

  it("trees with invalid names via encodeTree", () => {
    const tree: Nar.Tree = {
      _tag: "Directory",
      entries: [{ name: b(".."), node: { _tag: "Symlink", target: b("x") } }]
    }
    const r = Nar.encodeTree(tree)
    assert.isTrue(Either.isLeft(r))
  })
})
