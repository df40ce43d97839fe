import { B3Digest, Directory, Node, PathComponent, type SymlinkTarget } from "@nixfx/castore-nodes"
import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire"
import { assert, describe, it } from "@effect/vitest"
import { Either, Equal, FastCheck as fc, Option, Schema } from "effect"
import * as fs from "node:fs"
import { byteOrder, directory as directoryArb, entries as entriesArb } from "./arbitraries.js"

const fixtures = new URL("../../../fixtures/", import.meta.url)
const castoreDirectories = JSON.parse(fs.readFileSync(new URL("castore-directories.json", fixtures), "utf8")) as Record<
  string,
  { storePath: string; directories: Array<{ digest: string; size: number; message: string }> }
>

const EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
const digestA = B3Digest.hash(new Uint8Array([1]))
const name = (s: string) => s as PathComponent.PathComponent
const target = (s: string) => s as SymlinkTarget.SymlinkTarget

// ---------------------------------------------------------------------------
// An independent message builder (bufbuild's writer), for crafting good and bad input.
// ---------------------------------------------------------------------------

type RawEntry = {
  readonly name: string | Uint8Array
  readonly digest?: Uint8Array
  readonly size?: number | bigint
  readonly executable?: boolean
  readonly target?: string | Uint8Array
}
const bytesOf = (s: string | Uint8Array) => (typeof s === "string" ? Buffer.from(s, "utf8") : s)

const message = (lists: {
  directories?: ReadonlyArray<RawEntry>
  files?: ReadonlyArray<RawEntry>
  symlinks?: ReadonlyArray<RawEntry>
}): Uint8Array => {
  const w = new BinaryWriter()
  const put = (field: number, items: ReadonlyArray<RawEntry> | undefined) => {
    for (const e of items ?? []) {
      w.tag(field, 2).fork()
      if (bytesOf(e.name).length > 0) w.tag(1, 2).bytes(bytesOf(e.name))
      if (field === 3) {
        if (e.target !== undefined && bytesOf(e.target).length > 0) w.tag(2, 2).bytes(bytesOf(e.target))
      } else {
        const digest = e.digest ?? digestA
        if (digest.length > 0) w.tag(2, 2).bytes(digest)
        if (e.size !== undefined && e.size !== 0) w.tag(3, 0).uint64(e.size)
        if (e.executable) w.tag(4, 0).bool(true)
      }
      w.join()
    }
  }
  put(1, lists.directories)
  put(2, lists.files)
  put(3, lists.symlinks)
  return w.finish()
}

/** The canonical bytes for entries, built with bufbuild: an oracle for our encoder. */
const oracleEncode = (entries: ReadonlyArray<Directory.DirectoryEntry>): Uint8Array => {
  const pick = (tag: Node.Node["_tag"]) =>
    entries.filter((e) => e.node._tag === tag).map(({ name, node }): RawEntry => {
      switch (node._tag) {
        case "Directory":
          return { name, digest: node.digest, size: node.size }
        case "File":
          return { name, digest: node.digest, size: node.size, executable: node.executable }
        case "Symlink":
          return { name, target: node.target }
      }
    })
  return message({ directories: pick("Directory"), files: pick("File"), symlinks: pick("Symlink") })
}

const decodeError = (bytes: Uint8Array) => {
  const r = Directory.decode(bytes)
  if (Either.isRight(r)) return assert.fail(`expected an error, got a Directory of ${r.right.entries.length} entries`)
  assert.strictEqual(r.left._tag, "InvalidDirectory")
  return r.left
}

const makeError = (entries: ReadonlyArray<Directory.DirectoryEntry>) => {
  const r = Directory.make(entries)
  if (Either.isRight(r)) return assert.fail("expected an error")
  assert.strictEqual(r.left._tag, "InvalidDirectory")
  return r.left
}

// ---------------------------------------------------------------------------
// Non-canonical but valid encodings of the same entries: what another protobuf
// writer could legally send. Decoding must give the canonical digest.
// ---------------------------------------------------------------------------

type Noise = {
  readonly padVarints: boolean // non-minimal varints (extra 0x80 bytes)
  readonly padKeys: boolean // non-minimal field keys
  readonly explicitDefaults: boolean // size 0 / executable false written out
  readonly shuffleFields: boolean // fields of a node out of number order
  readonly unknownFields: boolean
  readonly interleaveLists: boolean // lists not in field order
  readonly repeatedName: boolean // a bogus name first, the real one last
  readonly boolAsTwo: boolean // executable written as 2
}
const noNoise: Noise = {
  padVarints: false,
  padKeys: false,
  explicitDefaults: false,
  shuffleFields: false,
  unknownFields: false,
  interleaveLists: false,
  repeatedName: false,
  boolAsTwo: false
}

const varint = (n: bigint | number, pad: boolean): Array<number> => {
  let v = BigInt(n)
  const out: Array<number> = []
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80)
    v >>= 7n
  }
  out.push(Number(v))
  if (pad && out.length < 9) {
    out[out.length - 1] |= 0x80
    out.push(0x80, 0x00)
  }
  return out
}
const key = (field: number, wire: number, noise: Noise) => varint(field * 8 + wire, noise.padKeys)
const lenField = (field: number, payload: ArrayLike<number>, noise: Noise) => [
  ...key(field, 2, noise),
  ...varint(payload.length, noise.padVarints),
  ...Array.from(payload)
]

const noisyEncode = (entries: ReadonlyArray<Directory.DirectoryEntry>, noise: Noise, rand: () => number): Uint8Array => {
  const shuffle = <A>(xs: Array<A>): Array<A> => {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1))
      ;[xs[i], xs[j]] = [xs[j], xs[i]]
    }
    return xs
  }
  const unknown = (): Array<number> => [...key(11, 0, noise), ...varint(7, false), ...lenField(12, [1, 2], noise)]
  const items: Array<{ list: number; bytes: Array<number> }> = []
  for (const { name, node } of entries) {
    const fields: Array<Array<number>> = []
    if (noise.repeatedName) fields.push(lenField(1, Buffer.from("bogus"), noise))
    const nameField = lenField(1, Buffer.from(name, "utf8"), noise)
    let rest: Array<Array<number>> = []
    if (node._tag === "Symlink") {
      rest.push(lenField(2, Buffer.from(node.target, "utf8"), noise))
    } else {
      rest.push(lenField(2, node.digest, noise))
      if (node.size !== 0 || noise.explicitDefaults) rest.push([...key(3, 0, noise), ...varint(node.size, noise.padVarints)])
      if (node._tag === "File" && (node.executable || noise.explicitDefaults)) {
        rest.push([...key(4, 0, noise), ...varint(node.executable ? (noise.boolAsTwo ? 2 : 1) : 0, noise.padVarints)])
      }
    }
    if (noise.unknownFields) rest.push(unknown())
    if (noise.shuffleFields) rest = shuffle([...rest])
    // the real name must stay after a bogus one
    const body = noise.shuffleFields && !noise.repeatedName ? shuffle([nameField, ...rest]) : [...fields, nameField, ...rest]
    const list = node._tag === "Directory" ? 1 : node._tag === "File" ? 2 : 3
    items.push({ list, bytes: lenField(list, body.flat(), noise) })
  }
  let ordered = [1, 2, 3].flatMap((l) => items.filter((i) => i.list === l))
  if (noise.interleaveLists) {
    // keep each list's own order, interleave the lists at random
    const queues = [1, 2, 3].map((l) => items.filter((i) => i.list === l))
    ordered = []
    while (queues.some((q) => q.length > 0)) {
      const nonEmpty = queues.filter((q) => q.length > 0)
      ordered.push(nonEmpty[Math.floor(rand() * nonEmpty.length)].shift()!)
    }
  }
  const out = ordered.flatMap((i) => i.bytes)
  if (noise.unknownFields) out.unshift(...unknown())
  return new Uint8Array(out)
}

describe("Directory", () => {
  it("the empty Directory has the digest of zero bytes", () => {
    assert.strictEqual(B3Digest.toHex(Directory.empty.digest), EMPTY)
    assert.strictEqual(B3Digest.toHex(Directory.Directory.empty.digest), EMPTY)
    assert.strictEqual(Directory.empty.size, 0)
    assert.strictEqual(Directory.encode(Directory.empty).length, 0)
    assert.strictEqual(B3Digest.toHex(Either.getOrThrow(Directory.make([])).digest), EMPTY)
    assert.strictEqual(B3Digest.toHex(Either.getOrThrow(Directory.decode(new Uint8Array(0))).digest), EMPTY)
  })

  it("decodes every fixture Directory, re-encodes it byte for byte, with the expected digest and size", () => {
    let count = 0
    const known = new Map<string, number>()
    for (const { directories } of Object.values(castoreDirectories)) {
      for (const d of directories) known.set(d.digest, d.size)
    }
    for (const [narHash, { directories, storePath }] of Object.entries(castoreDirectories)) {
      for (const [i, d] of directories.entries()) {
        const bytes = Buffer.from(d.message, "base64")
        const r = Directory.decode(bytes)
        if (Either.isLeft(r)) return assert.fail(`${storePath} (${narHash}) directory ${i}: ${r.left.message}`)
        const dir = r.right
        assert.deepStrictEqual(Directory.encode(dir), new Uint8Array(bytes), `${storePath} directory ${i}`)
        assert.strictEqual(B3Digest.toHex(dir.digest), d.digest)
        assert.strictEqual(dir.size, d.size)
        // make() from the decoded entries gives the same Directory
        const again = Either.getOrThrow(Directory.make(dir.entries))
        assert.isTrue(Equal.equals(again, dir))
        // every child directory is in the fixtures with the size recorded in its parent
        for (const { node } of dir.entries) {
          if (node._tag === "Directory") assert.strictEqual(known.get(B3Digest.toHex(node.digest)), node.size)
        }
        count++
      }
    }
    assert.isAtLeast(count, 40)
  })

  it("get finds entries by name", () => {
    const dir = Either.getOrThrow(Directory.make([
      { name: name("a"), node: new Node.FileNode({ digest: digestA, size: 1, executable: false }) },
      { name: name("b"), node: new Node.DirectoryNode({ digest: digestA, size: 4 }) },
      { name: name("\uffff"), node: new Node.SymlinkNode({ target: target("x") }) },
      { name: name("😀"), node: new Node.SymlinkNode({ target: target("y") }) }
    ]))
    assert.strictEqual(dir.size, 4 + 4)
    assert.isTrue(Option.isSome(dir.get("b")))
    assert.deepStrictEqual(Option.map(dir.get("😀"), (n): string => (n._tag === "Symlink" ? n.target : n._tag)), Option.some("y"))
    assert.isTrue(Option.isSome(dir.get("\uffff")))
    assert.isTrue(Option.isNone(dir.get("c")))
    assert.isTrue(Option.isNone(dir.get("")))
  })

  describe("bad input: a typed error naming field and entry", () => {
    const badNames: ReadonlyArray<readonly [string | Uint8Array, string, string]> = [
      ["", "Empty", `invalid path component "": must not be empty`],
      [".", "CurrentDir", `invalid path component ".": must not be "."`],
      ["..", "ParentDir", `invalid path component "..": must not be ".."`],
      ["a/b", "ContainsSlash", `invalid path component "a/b": must not contain "/"`],
      ["a\0b", "ContainsNul", `invalid path component "a\\u0000b": must not contain NUL`],
      ["n".repeat(256), "TooLong", `must be at most 255 bytes, got 256`],
      [new Uint8Array([0x66, 0xff]), "InvalidUtf8", `invalid path component 0x66ff: must be valid UTF-8`]
    ]

    it("invalid names, in every list", () => {
      for (const [bad, reason, text] of badNames) {
        const pc = typeof bad === "string" ? PathComponent.validate(bad) : PathComponent.fromUtf8(bad)
        assert.isTrue(Either.isLeft(pc) && pc.left.reason === reason)
        for (const list of ["directories", "files", "symlinks"] as const) {
          const e = decodeError(message({
            files: [{ name: "0" }],
            [list]: [{ name: "1", target: "t" }, { name: bad, target: "t" }]
          }))
          assert.strictEqual(e.reason, "InvalidName")
          assert.strictEqual(e.field, `${list}[1].name`)
          assert.isTrue(e.message.startsWith(`${list}[1].name: invalid path component `), e.message)
          assert.include(e.message, text)
          assert.isDefined(e.entry)
        }
        if (typeof bad === "string") {
          const m = makeError([
            { name: name("0"), node: new Node.SymlinkNode({ target: target("t") }) },
            { name: name(bad), node: new Node.SymlinkNode({ target: target("t") }) }
          ])
          assert.strictEqual(m.reason, "InvalidName")
          assert.strictEqual(m.field, "entries[1].name")
          assert.strictEqual(m.entry, bad)
          assert.include(m.message, text)
        }
      }
    })

    it("unsorted entries", () => {
      let e = decodeError(message({ files: [{ name: "a" }, { name: "c" }, { name: "b" }] }))
      assert.strictEqual(e.reason, "Unsorted")
      assert.strictEqual(e.field, "files[2].name")
      assert.strictEqual(e.entry, "b")
      assert.strictEqual(e.message, `files[2].name: "b" sorts before the previous name "c" (each list must be sorted by name bytes)`)

      // UTF-16 order is not byte order: "😀" < "\uffff" in JS, but not in bytes
      e = decodeError(message({ directories: [{ name: "😀" }, { name: "\uffff" }] }))
      assert.strictEqual(e.reason, "Unsorted")
      assert.strictEqual(e.field, "directories[1].name")

      const m = makeError([
        { name: name("b"), node: new Node.SymlinkNode({ target: target("t") }) },
        { name: name("a"), node: new Node.SymlinkNode({ target: target("t") }) }
      ])
      assert.strictEqual(m.reason, "Unsorted")
      assert.strictEqual(m.field, "entries[1].name")
      assert.strictEqual(m.entry, "a")
      assert.include(m.message, `"a" sorts before the previous name "b"`)
    })

    it("duplicate names within and across lists", () => {
      let e = decodeError(message({ directories: [{ name: "x" }, { name: "y" }], files: [{ name: "b" }, { name: "y" }] }))
      assert.strictEqual(e.reason, "DuplicateName")
      assert.strictEqual(e.field, "files[1].name")
      assert.strictEqual(e.entry, "y")
      assert.strictEqual(e.message, `files[1].name: duplicate name "y" (also directories[1])`)

      e = decodeError(message({ files: [{ name: "a" }], symlinks: [{ name: "a", target: "t" }] }))
      assert.strictEqual(e.message, `symlinks[0].name: duplicate name "a" (also files[0])`)

      e = decodeError(message({ symlinks: [{ name: "a", target: "t" }, { name: "a", target: "u" }] }))
      assert.strictEqual(e.reason, "DuplicateName")
      assert.strictEqual(e.message, `symlinks[1].name: duplicate name "a" (also symlinks[0])`)

      const m = makeError([
        { name: name("a"), node: new Node.FileNode({ digest: digestA, size: 0, executable: false }) },
        { name: name("a"), node: new Node.SymlinkNode({ target: target("t") }) }
      ])
      assert.strictEqual(m.reason, "DuplicateName")
      assert.strictEqual(m.message, `entries[1].name: duplicate name "a" (also entries[0])`)
    })

    it("digests of the wrong length", () => {
      for (const n of [0, 31, 33]) {
        const e = decodeError(message({
          directories: [{ name: "d" }],
          files: [{ name: "a" }, { name: "b" }, { name: "c", digest: new Uint8Array(n) }]
        }))
        assert.strictEqual(e.reason, "InvalidDigest")
        assert.strictEqual(e.field, "files[2].digest")
        assert.strictEqual(e.entry, "c")
        assert.strictEqual(e.message, `files[2].digest: digest must be 32 bytes, got ${n} (entry "c")`)
      }
      const e = decodeError(message({ directories: [{ name: "d", digest: new Uint8Array(31) }] }))
      assert.strictEqual(e.message, `directories[0].digest: digest must be 32 bytes, got 31 (entry "d")`)
    })

    it("symlinks with an empty, NUL or too long target", () => {
      let e = decodeError(message({ symlinks: [{ name: "l" }] }))
      assert.strictEqual(e.reason, "InvalidSymlinkTarget")
      assert.strictEqual(e.field, "symlinks[0].target")
      assert.strictEqual(e.entry, "l")
      assert.strictEqual(e.message, `symlinks[0].target: invalid symlink target "": must not be empty (entry "l")`)
      e = decodeError(message({ symlinks: [{ name: "l", target: "a\0" }] }))
      assert.include(e.message, "must not contain NUL")
      e = decodeError(message({ symlinks: [{ name: "l", target: "t".repeat(4096) }] }))
      assert.include(e.message, "must be at most 4095 bytes, got 4096")
    })

    it("size overflow", () => {
      // the sum of entries and child sizes exceeds 2^53-1
      let e = decodeError(message({
        directories: [{ name: "a", size: 2 ** 52 }, { name: "b", size: 2 ** 52 }],
        files: [{ name: "c" }]
      }))
      assert.strictEqual(e.reason, "SizeOverflow")
      assert.strictEqual(e.field, "directories[1].size")
      assert.strictEqual(e.entry, "b")
      assert.strictEqual(
        e.message,
        `directories[1].size: directory size overflows: the sum of entries and child sizes exceeds 2^53-1 (entry "b")`
      )
      const m = makeError([
        { name: name("a"), node: new Node.DirectoryNode({ digest: digestA, size: Number.MAX_SAFE_INTEGER - 1 }) },
        { name: name("b"), node: new Node.SymlinkNode({ target: target("t") }) }
      ])
      assert.strictEqual(m.reason, "SizeOverflow")
      assert.strictEqual(m.field, "entries[0].size")
      assert.strictEqual(m.entry, "a")

      // a single size beyond what a JS number holds exactly
      e = decodeError(message({ files: [{ name: "f", size: 2n ** 53n }] }))
      assert.strictEqual(e.reason, "InvalidSize")
      assert.strictEqual(e.field, "files[0].size")
      assert.strictEqual(e.message, `files[0].size: size 9007199254740992 exceeds 2^53-1 (the largest size nixfx represents) (entry "f")`)
      e = decodeError(message({ directories: [{ name: "d", size: 2n ** 64n - 1n }] }))
      assert.strictEqual(e.reason, "InvalidSize")
      assert.strictEqual(e.field, "directories[0].size")
      // the largest safe size itself is fine
      const ok = Directory.decode(message({ files: [{ name: "f", size: 2 ** 53 - 1 }] }))
      assert.isTrue(Either.isRight(ok))
    })

    it("truncated protobuf", () => {
      const bytes = Buffer.from(Object.values(castoreDirectories)[0].directories[0].message, "base64")
      // element boundaries of the top-level message, found with bufbuild's reader
      const boundaries = new Set<number>([0])
      const r = new BinaryReader(bytes)
      while (r.pos < r.len) {
        r.skip(r.tag()[1])
        boundaries.add(r.pos)
      }
      let truncatedErrors = 0
      for (let cut = 1; cut < bytes.length; cut++) {
        const result = Directory.decode(bytes.subarray(0, cut))
        if (boundaries.has(cut)) {
          assert.isTrue(Either.isRight(result), `cut at element boundary ${cut}`)
          continue
        }
        if (Either.isRight(result)) return assert.fail(`truncation at ${cut} was accepted`)
        assert.strictEqual(result.left.reason, "MalformedProtobuf", `cut at ${cut}: ${result.left.message}`)
        assert.match(result.left.field, /^(directories|files|symlinks)\[\d+\]$/)
        assert.match(result.left.message, /^(directories|files|symlinks)\[\d+\]: truncated/)
        truncatedErrors++
      }
      assert.isAbove(truncatedErrors, 100)

      // inside a node: the error names the entry when its name was read
      const one = message({ files: [{ name: "foo", size: 300 }] })
      const inner = new Uint8Array(one)
      inner[1] -= 1 // the file's length now ends inside the size varint
      const e = decodeError(inner.subarray(0, inner.length - 1))
      assert.strictEqual(e.reason, "MalformedProtobuf")
      assert.strictEqual(e.field, "files[0].size")
      assert.strictEqual(e.entry, "foo")
      assert.strictEqual(e.message, `files[0].size: truncated varint (entry "foo")`)

      // a name that is not UTF-8 is shown as hex
      const raw = message({ symlinks: [{ name: new Uint8Array([0xff]), target: "t" }] })
      const cut = new Uint8Array(raw)
      cut[1] += 1 // the symlink claims one byte more than there is
      const e2 = decodeError(cut)
      assert.strictEqual(e2.field, "symlinks[0]")
      assert.strictEqual(e2.entry, undefined) // the length is wrong before the body is read
      const inner2 = new Uint8Array([0x1a, 0x05, 0x0a, 0x01, 0xff, 0x12, 0x05, 0x74])
      const e3 = decodeError(inner2)
      assert.strictEqual(e3.field, "symlinks[0].target")
      assert.strictEqual(e3.entry, "0xff")
    })

    it("garbage that is not protobuf", () => {
      const cases: ReadonlyArray<readonly [Array<number>, string]> = [
        [[0xff], "directory: truncated varint"],
        [[0x0f], "directory: invalid wire type 7 for field 1"],
        [[0x02, 0x00], "directory: invalid field number 0"],
        [[0x08, 0x01], "directories[0]: expected length-delimited, got varint"],
        [[0x0a, 0x05, 0x00], "directories[0]: truncated: length 5 exceeds the 1 bytes left"],
        [[0x0c], "directories[0]: expected length-delimited, got end-group"],
        [[0x7c], "directory: unexpected end-group of field 15"],
        [[0x7b, 0x0a, 0x00], "directory: truncated: group 15 not closed"],
        [[0x12, 0x02, 0x1a, 0x00], "files[0].size: expected varint, got length-delimited"],
        [[0x78, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], "directory: varint exceeds 64 bits"],
        [[0x78, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], "directory: varint exceeds 64 bits"]
      ]
      for (const [bytes, text] of cases) {
        const e = decodeError(new Uint8Array(bytes))
        assert.strictEqual(e.reason, "MalformedProtobuf", text)
        assert.strictEqual(e.message, text)
      }
    })

    it.prop("random bytes never throw: a Directory or an InvalidDirectory", [fc.uint8Array({ maxLength: 64 })], ([bytes]) => {
      const r = Directory.decode(bytes)
      if (Either.isLeft(r)) assert.strictEqual(r.left._tag, "InvalidDirectory")
    }, { fastCheck: { numRuns: 3000 } })

    it("make refuses things that are not Nodes", () => {
      const e = makeError([{ name: name("a"), node: { _tag: "File" } as unknown as Node.Node }])
      assert.strictEqual(e.reason, "InvalidNode")
      assert.strictEqual(e.field, "entries[0].node")
    })
  })

  describe("tolerated input (as a protobuf reader, like prost in tvix)", () => {
    it("unknown fields are skipped and dropped; the digest is that of the canonical form", () => {
      const canonical = message({ directories: [{ name: "d", size: 2 }], files: [{ name: "f", size: 1 }] })
      const w = new BinaryWriter()
      w.tag(15, 0).uint32(99)
      w.tag(2, 2).fork()
        .tag(9, 2).string("future field")
        .tag(3, 0).uint64(1)
        .tag(2, 2).bytes(digestA)
        .tag(4, 0).bool(false) // explicit default
        .tag(1, 2).bytes(Buffer.from("f"))
        .join()
      w.tag(20, 3).tag(1, 0).uint32(1).tag(20, 4) // a group
      w.tag(1, 2).fork().tag(1, 2).bytes(Buffer.from("d")).tag(2, 2).bytes(digestA).tag(3, 0).uint64(2).join()
      w.tag(30, 1).fixed64(1n).tag(31, 5).fixed32(1)
      const noisy = w.finish()
      const a = Either.getOrThrow(Directory.decode(noisy))
      const b = Either.getOrThrow(Directory.decode(canonical))
      assert.deepStrictEqual(Directory.encode(a), canonical)
      assert.strictEqual(B3Digest.toHex(a.digest), B3Digest.toHex(b.digest))
      assert.strictEqual(B3Digest.toHex(a.digest), B3Digest.toHex(B3Digest.hash(canonical)))
    })

    it("a repeated singular field keeps its last value", () => {
      const w = new BinaryWriter()
      w.tag(3, 2).fork().tag(1, 2).bytes(Buffer.from("first")).tag(2, 2).bytes(Buffer.from("t"))
        .tag(1, 2).bytes(Buffer.from("last")).join()
      const dir = Either.getOrThrow(Directory.decode(w.finish()))
      assert.deepStrictEqual(dir.entries.map((e) => e.name), ["last"])
    })
  })

  describe("properties", () => {
    it.prop("encode → decode round-trips, and encode matches an independent encoder", [directoryArb], ([dir]) => {
      const bytes = Directory.encode(dir)
      assert.deepStrictEqual(bytes, oracleEncode(dir.entries))
      assert.strictEqual(B3Digest.toHex(dir.digest), B3Digest.toHex(B3Digest.hash(bytes)))
      const back = Either.getOrThrow(Directory.decode(bytes))
      assert.strictEqual(back.entries.length, dir.entries.length)
      for (let i = 0; i < dir.entries.length; i++) {
        assert.strictEqual(back.entries[i].name, dir.entries[i].name)
        assert.isTrue(Node.equals(back.entries[i].node, dir.entries[i].node))
      }
      assert.strictEqual(back.size, dir.size)
      assert.isTrue(B3Digest.equals(back.digest, dir.digest))
      assert.isTrue(Equal.equals(back, dir))
      const expectedSize = dir.entries.length +
        dir.entries.reduce((n, e) => n + (e.node._tag === "Directory" ? e.node.size : 0), 0)
      assert.strictEqual(dir.size, expectedSize)
      // and through the Schema
      const viaSchema = Schema.decodeSync(Directory.DirectoryFromBytes)(bytes)
      assert.isTrue(Equal.equals(viaSchema, dir))
    }, { fastCheck: { numRuns: 300 } })

    it.prop(
      "non-canonical encodings decode to the canonical bytes and digest",
      [
        entriesArb,
        fc.record({
          padVarints: fc.boolean(),
          padKeys: fc.boolean(),
          explicitDefaults: fc.boolean(),
          shuffleFields: fc.boolean(),
          unknownFields: fc.boolean(),
          interleaveLists: fc.boolean(),
          repeatedName: fc.boolean(),
          boolAsTwo: fc.boolean()
        }),
        fc.integer()
      ],
      ([entries, noise, seed]) => {
        let state = seed
        const rand = () => {
          state = (Math.imul(state, 1103515245) + 12345) | 0
          return ((state >>> 8) & 0xffff) / 0x10000
        }
        const canonical = oracleEncode(entries)
        const noisy = noisyEncode(entries, noise, rand)
        const dir = Either.getOrThrow(Directory.decode(noisy))
        assert.deepStrictEqual(Directory.encode(dir), canonical)
        assert.strictEqual(B3Digest.toHex(dir.digest), B3Digest.toHex(B3Digest.hash(canonical)))
      },
      { fastCheck: { numRuns: 500 } }
    )

    it.prop("without noise, the test encoder is the canonical one", [entriesArb], ([entries]) => {
      assert.deepStrictEqual(noisyEncode(entries, noNoise, Math.random), oracleEncode(entries))
    })

    it.prop("decoded entries are in Buffer.compare order of their UTF-8 names", [directoryArb], ([dir]) => {
      const back = Either.getOrThrow(Directory.decode(Directory.encode(dir)))
      for (let i = 1; i < back.entries.length; i++) {
        assert.isBelow(byteOrder(back.entries[i - 1].name, back.entries[i].name), 0)
      }
    }, { fastCheck: { numRuns: 300 } })

    it.prop("make refuses any order other than byte order", [entriesArb.filter((es) => es.length >= 2), fc.nat()], ([es, seed]) => {
      const i = seed % (es.length - 1)
      const swapped = es.slice()
      ;[swapped[i], swapped[i + 1]] = [swapped[i + 1], swapped[i]]
      const e = makeError(swapped)
      assert.strictEqual(e.reason, "Unsorted")
      assert.strictEqual(e.field, `entries[${i + 1}].name`)
      assert.strictEqual(e.entry, swapped[i + 1].name)
    })
  })
})
