import { B3Digest, Node, type SymlinkTarget } from "@nixfx/castore-nodes"
import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire"
import { assert, describe, it } from "@effect/vitest"
import { Either, Equal, HashSet, Schema } from "effect"
import * as fs from "node:fs"
import { node as nodeArb, pathComponent } from "./arbitraries.js"

const fixtures = new URL("../../../fixtures/", import.meta.url)

type ManifestNode =
  | { type: "directory"; digest: string; size: number }
  | { type: "file"; digest: string; size: number; executable: boolean }
  | { type: "symlink"; target: string }

const manifest = JSON.parse(fs.readFileSync(new URL("manifest.json", fixtures), "utf8")) as {
  caches: Record<string, { paths: Array<{ storePath: string; castore: ManifestNode }> }>
}

const fromManifest = (m: ManifestNode): Node.Node => {
  switch (m.type) {
    case "directory":
      return new Node.DirectoryNode({ digest: Either.getOrThrow(B3Digest.fromHex(m.digest)), size: m.size })
    case "file":
      return new Node.FileNode({
        digest: Either.getOrThrow(B3Digest.fromHex(m.digest)),
        size: m.size,
        executable: m.executable
      })
    case "symlink":
      return new Node.SymlinkNode({ target: m.target as SymlinkTarget.SymlinkTarget })
  }
}

const b3 = (hex: string) => "b3:" + Buffer.from(hex, "hex").toString("base64")

const digestA = B3Digest.hash(new Uint8Array([1]))
const digestB = B3Digest.hash(new Uint8Array([2]))

describe("Node", () => {
  it("represents every castore root node of the fixture manifest", () => {
    let count = 0
    const kinds = new Set<string>()
    for (const cache of Object.values(manifest.caches)) {
      for (const path of cache.paths) {
        const m = path.castore
        const node = fromManifest(m)
        const json = Node.toJson(node)
        const expected = m.type === "symlink" ? m : { ...m, digest: b3(m.digest) }
        assert.deepStrictEqual(json, expected, path.storePath)
        // and back through the JSON Schema
        const back = Schema.decodeUnknownSync(Node.NodeFromJson)(json)
        assert.isTrue(Node.equals(back, node))
        assert.deepStrictEqual(Schema.encodeSync(Node.NodeFromJson)(node), json)
        kinds.add(m.type)
        count++
      }
    }
    assert.isAbove(count, 100)
    assert.deepStrictEqual([...kinds].sort(), ["directory", "file", "symlink"])
  })

  it("toJson uses b3: + standard base64", () => {
    const node = new Node.FileNode({ digest: B3Digest.hash(new Uint8Array(0)), size: 0, executable: true })
    assert.deepStrictEqual(Node.toJson(node), {
      type: "file",
      digest: "b3:rxNJufX5oaagQE3qNtzJSZvLJcmtwRK3zJqTyuQfMmI=",
      size: 0,
      executable: true
    })
  })

  it("NodeFromJson rejects bad input naming the problem", () => {
    const bad = [
      [{ type: "file", digest: "b3:AAAA", size: 1, executable: false }, "expected \"b3:\""],
      [{ type: "directory", digest: b3("00".repeat(32)), size: -1 }, "size must be a non-negative safe integer, got -1"],
      [{ type: "symlink", target: "" }, "must not be empty"],
      [{ type: "socket" }, "socket"]
    ] as const
    for (const [input, text] of bad) {
      const r = Schema.decodeUnknownEither(Node.NodeFromJson)(input)
      assert.isTrue(Either.isLeft(r), JSON.stringify(input))
      if (Either.isLeft(r)) assert.include(r.left.message, text)
    }
  })

  it("equals and Equal.equals compare digests by bytes", () => {
    const a = new Node.DirectoryNode({ digest: digestA, size: 3 })
    const a2 = new Node.DirectoryNode({ digest: B3Digest.unsafeMake(digestA.slice()), size: 3 })
    const b = new Node.DirectoryNode({ digest: digestB, size: 3 })
    const f = new Node.FileNode({ digest: digestA, size: 3, executable: false })
    assert.isTrue(Node.equals(a, a2))
    assert.isTrue(Equal.equals(a, a2))
    assert.isFalse(Node.equals(a, b))
    assert.isFalse(Node.equals(a, f))
    assert.isFalse(Equal.equals(a, f))
    assert.isFalse(Equal.equals(f, new Node.FileNode({ digest: digestA, size: 3, executable: true })))
    assert.strictEqual(HashSet.size(HashSet.make(a, a2, b, f)), 3)
  })

  it("constructors refuse invalid fields", () => {
    assert.throws(
      () => new Node.FileNode({ digest: new Uint8Array(31) as B3Digest.B3Digest, size: 0, executable: false }),
      /FileNode.digest: digest must be 32 bytes, got 31/
    )
    assert.throws(() => new Node.DirectoryNode({ digest: digestA, size: -1 }), /DirectoryNode.size/)
    assert.throws(() => new Node.DirectoryNode({ digest: digestA, size: 2 ** 53 }), /non-negative safe integer/)
    assert.throws(() => new Node.SymlinkNode({ target: "" as SymlinkTarget.SymlinkTarget }), /must not be empty/)
  })

  it.prop("encodeNamed/decodeNamed round-trip, and bufbuild reads the same fields", [pathComponent, nodeArb()], ([name, node]) => {
    const bytes = Node.encodeNamed(name, node)
    const back = Either.getOrThrow(Node.decodeNamed(bytes))
    assert.strictEqual(back.name, name)
    assert.isTrue(Node.equals(back.node, node))
    assert.deepStrictEqual(Node.encodeNamed(Buffer.from(name, "utf8"), node), bytes)

    // independent reader
    const outer = new BinaryReader(bytes)
    const [field] = outer.tag()
    assert.strictEqual(field, { Directory: 1, File: 2, Symlink: 3 }[node._tag])
    const inner = new BinaryReader(outer.bytes())
    assert.strictEqual(outer.pos, outer.len)
    const seen: Record<number, unknown> = {}
    while (inner.pos < inner.len) {
      const [f] = inner.tag()
      seen[f] = f === 1 || f === 2 ? inner.bytes() : f === 3 ? Number(inner.uint64()) : inner.bool()
    }
    assert.strictEqual(Buffer.from(seen[1] as Uint8Array).toString("utf8"), name)
    if (node._tag === "Symlink") {
      assert.strictEqual(Buffer.from(seen[2] as Uint8Array).toString("utf8"), node.target)
    } else {
      assert.deepStrictEqual(seen[2], node.digest)
      assert.strictEqual(seen[3], node.size === 0 ? undefined : node.size)
      if (node._tag === "File") assert.strictEqual(seen[4], node.executable ? true : undefined)
    }
  })

  it("an empty name gives an anonymous node", () => {
    const node = new Node.SymlinkNode({ target: "x" as SymlinkTarget.SymlinkTarget })
    const bytes = Node.encodeNamed("", node)
    assert.deepStrictEqual([...bytes], [0x1a, 3, 0x12, 1, 0x78])
    const back = Either.getOrThrow(Node.decodeNamed(bytes))
    assert.strictEqual(back.name, "")
  })

  it("decodeNamed: last oneof member wins, repeats merge, unknown fields are skipped", () => {
    const w = new BinaryWriter()
    w.tag(1, 2).fork().tag(1, 2).bytes(Buffer.from("d")).tag(2, 2).bytes(digestA).join() // directory
    w.tag(2, 2).fork().tag(1, 2).bytes(Buffer.from("f")).tag(2, 2).bytes(digestB).join() // file
    w.tag(9, 0).uint32(7) // unknown
    w.tag(2, 2).fork().tag(3, 0).uint64(12).tag(4, 0).bool(true).tag(7, 2).string("?").join() // merges into file
    const back = Either.getOrThrow(Node.decodeNamed(w.finish()))
    assert.strictEqual(back.name, "f")
    assert.isTrue(Node.equals(back.node, new Node.FileNode({ digest: digestB, size: 12, executable: true })))
  })

  const decodeError = (bytes: Uint8Array) => {
    const r = Node.decodeNamed(bytes)
    assert.isTrue(Either.isLeft(r))
    return Either.isLeft(r) ? r.left : assert.fail("expected an error")
  }

  it("decodeNamed rejects invalid messages naming the field", () => {
    let e = decodeError(new Uint8Array(0))
    assert.strictEqual(e._tag, "InvalidNodeMessage")
    assert.strictEqual(e.reason, "NoNodeSet")

    const w = new BinaryWriter()
    w.tag(2, 2).fork().tag(1, 2).bytes(Buffer.from("foo")).tag(2, 2).bytes(new Uint8Array(31)).join()
    e = decodeError(w.finish())
    assert.strictEqual(e.reason, "InvalidDigest")
    assert.strictEqual(e.field, "file.digest")
    assert.strictEqual(e.message, `file.digest: digest must be 32 bytes, got 31 (entry "foo")`)

    const s = new BinaryWriter()
    s.tag(3, 2).fork().tag(1, 2).bytes(Buffer.from("link")).join()
    e = decodeError(s.finish())
    assert.strictEqual(e.reason, "InvalidSymlinkTarget")
    assert.strictEqual(e.message, `symlink.target: invalid symlink target "": must not be empty (entry "link")`)

    const n = new BinaryWriter()
    n.tag(1, 2).fork().tag(1, 2).bytes(Buffer.from("..")).tag(2, 2).bytes(digestA).join()
    e = decodeError(n.finish())
    assert.strictEqual(e.reason, "InvalidName")
    assert.strictEqual(e.field, "directory.name")

    const full = Node.encodeNamed("name", new Node.FileNode({ digest: digestA, size: 5, executable: false }))
    e = decodeError(full.subarray(0, full.length - 3))
    assert.strictEqual(e.reason, "MalformedProtobuf")
    assert.strictEqual(e.field, "file")
    assert.include(e.message, "file: truncated")

    const wire = new BinaryWriter()
    wire.tag(2, 2).fork().tag(3, 2).bytes(new Uint8Array(1)).join()
    e = decodeError(wire.finish())
    assert.strictEqual(e.message, "file.size: expected varint, got length-delimited")

    const big = new BinaryWriter()
    big.tag(2, 2).fork().tag(2, 2).bytes(digestA).tag(3, 0).uint64(2n ** 64n - 1n).join()
    e = decodeError(big.finish())
    assert.strictEqual(e.reason, "InvalidSize")
    assert.include(e.message, "file.size: size ≥ 2^64 exceeds 2^53-1")
  })
})
