/**
 * Properties of the strict PathInfo's two encodings: its own Schema (JSON)
 * and the tvix protobuf message (ProtoConversion). For any valid PathInfo —
 * references with and without nodes (the self-reference too), signatures, a
 * deriver, a content address — decode ∘ encode = id; and a message with any
 * one field replaced by noise decodes to a PathInfo or a ProtoDecodeError.
 */
import { create, toBinary } from "@bufbuild/protobuf"
import { assert, describe, it } from "@effect/vitest"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Node from "@nixfx/castore-nodes/Node"
import type * as SymlinkTarget from "@nixfx/castore-nodes/SymlinkTarget"
import * as CAHash from "@nixfx/nix-compat/CAHash"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as NixHash from "@nixfx/nix-compat/NixHash"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import * as ProtoConversion from "@nixfx/pathinfo-grpc/ProtoConversion"
import { Arbitrary, Either, FastCheck as fc, Option, Schema } from "effect"

const digest32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => b as B3Digest.B3Digest)
const targetArb = fc.string({ unit: "binary", minLength: 1, maxLength: 40 }).map((s) => s.replace(/\0/g, "_") as SymlinkTarget.SymlinkTarget)

const nodeArb: fc.Arbitrary<Node.Node> = fc.oneof(
  fc.record({ digest: digest32, size: fc.integer({ min: 0, max: 2 ** 20 }) }).map((a) => new Node.DirectoryNode(a)),
  fc.record({ digest: digest32, size: fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 0, max: 2 ** 50 })), executable: fc.boolean() })
    .map((a) => new Node.FileNode(a)),
  targetArb.map((target) => new Node.SymlinkNode({ target }))
)

// NAR sizes, computed here from the NAR grammar (an oracle independent of pathinfo's own check)
const str = (n: number) => 8 + ((n + 7) & ~7)
const header = str(13) + str(1) + str(4)
const narSizeArb = (node: Node.Node): fc.Arbitrary<number> => {
  switch (node._tag) {
    case "File":
      return fc.constant(header + str(7) + (node.executable ? str(10) + str(0) : 0) + str(8) + 8 + ((node.size + 7) & ~7) + str(1))
    case "Symlink":
      return fc.constant(header + str(7) + str(6) + str(Buffer.byteLength(node.target)) + str(1))
    case "Directory":
      // at least: every entry costs more than 200 bytes of NAR
      return fc.integer({ min: header + str(9) + str(1) + node.size * 200, max: Number.MAX_SAFE_INTEGER })
  }
}

const storePathArb = StorePath.arbitrary
const deriverArb = fc.tuple(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.stringMatching(/^[a-z][a-z0-9.+_-]{0,40}$/))
  .map(([d, name]) => StorePath.make(d, `${name}.drv`))
  .filter(Either.isRight)
  .map((e) => e.right)
const signatureArb = Arbitrary.make(Keys.Signature)

const pathInfoArb: fc.Arbitrary<PathInfo.PathInfo> = fc
  .record({
    storePath: storePathArb,
    node: nodeArb,
    others: fc.uniqueArray(fc.record({ storePath: storePathArb, node: fc.option(nodeArb, { nil: undefined }) }), {
      maxLength: 5,
      selector: (r) => Buffer.from(r.storePath.digest).toString("hex")
    }),
    selfReference: fc.constantFrom("none", "unknown node", "root node"),
    narSha256: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    signatures: fc.uniqueArray(signatureArb, { maxLength: 3, selector: (s) => Keys.formatSignature(s) }),
    deriver: fc.option(deriverArb, { nil: undefined }),
    ca: fc.constantFrom("none", "nar", "other"),
    otherCa: CAHash.arbitrary
  })
  .chain((r) => narSizeArb(r.node).map((narSize) => ({ ...r, narSize })))
  .map((r) => {
    const references = r.others
      .filter((o) => StorePath.toBasename(o.storePath) !== StorePath.toBasename(r.storePath) && !Buffer.from(o.storePath.digest).equals(Buffer.from(r.storePath.digest)))
      .map((o) => ({ storePath: o.storePath, node: Option.fromNullable(o.node) }))
    if (r.selfReference !== "none") {
      references.push({ storePath: r.storePath, node: r.selfReference === "root node" ? Option.some(r.node) : Option.none() })
    }
    references.sort((a, b) => (StorePath.toBasename(a.storePath) < StorePath.toBasename(b.storePath) ? -1 : 1))
    const ca = r.ca === "none"
      ? Option.none<CAHash.CAHash>()
      : r.ca === "nar"
      ? Option.some<CAHash.CAHash>(new CAHash.Nar({ hash: NixHash.unsafeMake("sha256", r.narSha256) }))
      : Option.some(r.otherCa)
    return PathInfo.make({
      storePath: r.storePath,
      node: r.node,
      references,
      narSize: r.narSize,
      narSha256: r.narSha256,
      signatures: r.signatures,
      deriver: Option.fromNullable(r.deriver),
      ca
    })
  })
  // (an arbitrary CA only fits some roots: a flat or text one needs a plain file, text no self-reference)
  .filter(Either.isRight)
  .map((e) => e.right)

describe("PathInfo encodings round trip", () => {
  it.prop("the Schema (JSON): decode ∘ encode = id, through JSON text too", [pathInfoArb], ([info]) => {
    const json = Schema.encodeSync(PathInfo.PathInfo)(info)
    const back = Schema.decodeUnknownSync(PathInfo.PathInfo)(JSON.parse(JSON.stringify(json)))
    assert.isTrue(PathInfo.equals(back, info))
    assert.isTrue(PathInfo.equals(Either.getOrThrow(PathInfo.fromJson(PathInfo.toJson(info))), info))
  }, { fastCheck: { numRuns: 300 } })

  it.prop("ProtoConversion: proto → strict ∘ strict → proto = id, as messages and as bytes", [pathInfoArb], ([info]) => {
    assert.isTrue(PathInfo.equals(Either.getOrThrow(ProtoConversion.pathInfoFromProto(ProtoConversion.pathInfoToProto(info))), info))
    const bytes = ProtoConversion.pathInfoToBinary(info)
    assert.isTrue(PathInfo.equals(Either.getOrThrow(ProtoConversion.pathInfoFromBinary(bytes)), info))
    const viaSchema = Schema.decodeSync(ProtoConversion.PathInfoFromBinary)(Schema.encodeSync(ProtoConversion.PathInfoFromBinary)(info))
    assert.isTrue(PathInfo.equals(viaSchema, info))
  }, { fastCheck: { numRuns: 300 } })

  it.prop("the encodings agree: JSON → strict → proto → strict → JSON is the same JSON", [pathInfoArb], ([info]) => {
    const json = PathInfo.toJson(info)
    const again = Either.getOrThrow(ProtoConversion.pathInfoFromBinary(ProtoConversion.pathInfoToBinary(Either.getOrThrow(PathInfo.fromJson(json)))))
    assert.deepStrictEqual(PathInfo.toJson(again), json)
  }, { fastCheck: { numRuns: 100 } })
})

describe("PathInfo messages with one field replaced by noise", () => {
  const noise = fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constant(new Uint8Array(0)))
  it.prop("decode to a PathInfo or a ProtoDecodeError naming a field, never throw", [pathInfoArb, fc.nat(7), noise, fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })], ([info, which, bytes, n]) => {
    const m = ProtoConversion.pathInfoToProto(info)
    const narinfo = m.narinfo!
    switch (which) {
      case 0:
        if (m.references.length > 0) m.references[0] = bytes
        else narinfo.referenceNames.push("x")
        break
      case 1:
        narinfo.narSha256 = bytes
        break
      case 2:
        narinfo.narSize = n
        break
      case 3:
        narinfo.signatures.push(create(ProtoConversion.ProtoSignatureSchema, { name: Buffer.from(bytes).toString("latin1"), data: bytes }))
        break
      case 4:
        if (m.node?.node.case !== undefined) m.node.node.value.name = bytes
        break
      case 5:
        if (m.node?.node.case === "directory" || m.node?.node.case === "file") m.node.node.value.digest = bytes
        break
      case 6:
        if (m.node?.node.case === "directory" || m.node?.node.case === "file") m.node.node.value.size = n
        break
      case 7:
        narinfo.referenceNames.reverse()
        break
    }
    const r = ProtoConversion.pathInfoFromBinary(toBinary(ProtoConversion.ProtoPathInfoSchema, m))
    if (Either.isLeft(r)) {
      assert.strictEqual(r.left._tag, "ProtoDecodeError")
      assert.isAbove(r.left.field.length, 0, r.left.message)
    }
  }, { fastCheck: { numRuns: 500 } })
})
