import { assert, describe, it } from "@effect/vitest"
import { create, type DescField, type DescFile, type DescMessage, fromBinary, toBinary } from "@bufbuild/protobuf"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Node from "@nixfx/castore-nodes/Node"
import * as CAHash from "@nixfx/nix-compat/CAHash"
import * as NixHash from "@nixfx/nix-compat/NixHash"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import { file_snix_castore_protos_castore } from "@nixfx/pathinfo-grpc/gen/snix/castore/protos/castore_pb"
import { file_snix_castore_protos_rpc_blobstore } from "@nixfx/pathinfo-grpc/gen/snix/castore/protos/rpc_blobstore_pb"
import { file_snix_castore_protos_rpc_directory } from "@nixfx/pathinfo-grpc/gen/snix/castore/protos/rpc_directory_pb"
import { file_snix_store_protos_pathinfo, PathInfoSchema as SnixPathInfoSchema } from "@nixfx/pathinfo-grpc/gen/snix/store/protos/pathinfo_pb"
import { file_snix_store_protos_rpc_pathinfo } from "@nixfx/pathinfo-grpc/gen/snix/store/protos/rpc_pathinfo_pb"
import { file_tvix_castore_protos_castore } from "@nixfx/pathinfo-grpc/gen/tvix/castore/protos/castore_pb"
import { file_tvix_castore_protos_rpc_blobstore } from "@nixfx/pathinfo-grpc/gen/tvix/castore/protos/rpc_blobstore_pb"
import { file_tvix_castore_protos_rpc_directory } from "@nixfx/pathinfo-grpc/gen/tvix/castore/protos/rpc_directory_pb"
import { file_tvix_store_protos_pathinfo, PathInfoSchema } from "@nixfx/pathinfo-grpc/gen/tvix/store/protos/pathinfo_pb"
import { file_tvix_store_protos_rpc_pathinfo } from "@nixfx/pathinfo-grpc/gen/tvix/store/protos/rpc_pathinfo_pb"
import * as ProtoConversion from "@nixfx/pathinfo-grpc/ProtoConversion"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import {
  loadFixturePathInfos,
  makeTestPathInfo,
  narSizeFor,
  randomNode,
  randomSignature,
  randomStorePath,
  sortReferences
} from "@nixfx/pathinfo/testing"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as crypto from "node:crypto"

const randomBytes = (n: number) => new Uint8Array(crypto.randomBytes(n))

const roundTrip = (p: PathInfo.PathInfo): PathInfo.PathInfo =>
  Either.getOrThrow(ProtoConversion.pathInfoFromBinary(ProtoConversion.pathInfoToBinary(p)))

const rejection = (message: ReturnType<typeof ProtoConversion.pathInfoToProto>): ProtoConversion.ProtoDecodeError => {
  const r = ProtoConversion.pathInfoFromProto(message)
  if (Either.isRight(r)) return assert.fail("the message was accepted")
  return r.left
}

/**
 * A PathInfo per root node kind, referencing itself and one path of every
 * node kind (and one without a node), with two signatures and a deriver.
 */
const withEveryNodeKind = (): Array<PathInfo.PathInfo> =>
  (["file", "executable", "directory", "symlink"] as const).map((kind) => {
    const node = randomNode(kind)
    const self = randomStorePath("self")
    return new PathInfo.PathInfo({
      ...makeTestPathInfo({ node }),
      storePath: self,
      references: sortReferences([
        { storePath: self, node: Option.some(node) },
        ...(["file", "executable", "directory", "symlink"] as const).map((k) => ({
          storePath: randomStorePath(`dep-${k}`),
          node: Option.some(randomNode(k))
        })),
        { storePath: randomStorePath("unknown"), node: Option.none() }
      ]),
      signatures: [randomSignature("a"), randomSignature("b")],
      deriver: Option.some(randomStorePath("x.drv.drv"))
    })
  })

describe("ProtoConversion", () => {
  it("round-trips every fixture PathInfo (references by content, deriver, CA, signatures)", () => {
    const fixtures = loadFixturePathInfos()
    assert.strictEqual(fixtures.length, 27)
    for (const p of fixtures) assert.isTrue(PathInfo.equals(roundTrip(p), p), p.basename)
  })

  it("round-trips every kind of node, reference node and content address", () => {
    const cas: ReadonlyArray<CAHash.CAHash> = [
      new CAHash.Flat({ hash: NixHash.unsafeMake("md5", randomBytes(16)) }),
      new CAHash.Flat({ hash: NixHash.unsafeMake("sha1", randomBytes(20)) }),
      new CAHash.Flat({ hash: NixHash.unsafeMake("sha256", randomBytes(32)) }),
      new CAHash.Flat({ hash: NixHash.unsafeMake("sha512", randomBytes(64)) }),
      new CAHash.Text({ hash: NixHash.unsafeMake("sha256", randomBytes(32)) })
    ]
    for (const ca of cas) {
      const p = makeTestPathInfo({ node: randomNode("file"), ca: Option.some(ca) })
      assert.isTrue(PathInfo.equals(roundTrip(p), p), CAHash.render(ca))
    }
    for (const algorithm of ["md5", "sha1", "sha512"] as const) {
      const p = makeTestPathInfo({ ca: Option.some(new CAHash.Nar({ hash: NixHash.unsafeMake(algorithm, randomBytes(NixHash.digestLength[algorithm])) })) })
      assert.isTrue(PathInfo.equals(roundTrip(p), p))
    }
    const narSha256 = randomBytes(32)
    const nar = makeTestPathInfo({ narSha256, ca: Option.some(new CAHash.Nar({ hash: NixHash.unsafeMake("sha256", narSha256) })) })
    assert.isTrue(PathInfo.equals(roundTrip(nar), nar))
    for (const p of withEveryNodeKind()) assert.isTrue(PathInfo.equals(roundTrip(p), p), p.node._tag)
  })

  it("writes what tvix writes: the node named by the basename, the deriver without .drv, names beside digests", () => {
    const drv = randomStorePath("thing.drv")
    const refs = sortReferences([
      { storePath: randomStorePath("a"), node: Option.some(randomNode("symlink")) },
      { storePath: randomStorePath("b"), node: Option.none() }
    ])
    const p = makeTestPathInfo({ name: "thing", references: refs, deriver: Option.some(drv) })
    const m = ProtoConversion.pathInfoToProto(p)
    assert.strictEqual(m.node?.node.case, "file")
    assert.strictEqual(Buffer.from(m.node!.node.value!.name).toString(), p.basename)
    assert.deepStrictEqual(m.references.map((r) => Buffer.from(r).toString("hex")), refs.map((r) => Buffer.from(r.storePath.digest).toString("hex")))
    assert.deepStrictEqual(m.narinfo?.referenceNames, refs.map((r) => StorePath.toBasename(r.storePath)))
    assert.strictEqual(m.narinfo?.deriver?.name, "thing")
    assert.strictEqual(m.nixfxReferenceNodes.length, 1)
    const known = refs.find((r) => Option.isSome(r.node))!
    assert.strictEqual(Buffer.from(m.nixfxReferenceNodes[0].node.value!.name).toString(), StorePath.toBasename(known.storePath))
  })

  it("accepts references in any order (sorting them) and refuses duplicates", () => {
    const p = makeTestPathInfo({
      references: [0, 1, 2].map((i) => ({ storePath: randomStorePath(`r${i}`), node: Option.some(randomNode()) }))
    })
    const m = ProtoConversion.pathInfoToProto(p)
    m.references.reverse()
    m.narinfo!.referenceNames.reverse()
    assert.isTrue(PathInfo.equals(Either.getOrThrow(ProtoConversion.pathInfoFromProto(m)), p))
    const d = ProtoConversion.pathInfoToProto(p)
    d.references.push(d.references[0])
    d.narinfo!.referenceNames.push(d.narinfo!.referenceNames[0])
    const e = rejection(d)
    assert.strictEqual(e.field, "references[3]")
    assert.strictEqual(e.detail, `duplicate reference ${d.narinfo!.referenceNames[0]} (also references[0])`)
  })

  it("rejects invalid messages with the field and index", () => {
    const base = () =>
      ProtoConversion.pathInfoToProto(
        makeTestPathInfo({
          references: [0, 1, 2].map((i) => ({ storePath: randomStorePath(`r${i}`), node: Option.none() }))
        })
      )
    const cases: ReadonlyArray<readonly [string, (m: ReturnType<typeof base>) => void, string, string | RegExp]> = [
      ["short reference", (m) => {
        m.references[2] = m.references[2].subarray(1)
      }, "references[2]", "digest must be 20 bytes, got 19"],
      ["no narinfo", (m) => {
        m.narinfo = undefined
      }, "narinfo", "missing (the NAR size, hash and reference names are required)"],
      ["no node", (m) => {
        m.node = undefined
      }, "node", "missing (a node is required)"],
      ["empty node", (m) => {
        m.node = create(ProtoConversion.ProtoNodeSchema)
      }, "node", "no node set (expected one of directory, file, symlink)"],
      ["file digest of 31 bytes", (m) => {
        m.node!.node.value!.name.length
        ;(m.node!.node.value as { digest: Uint8Array }).digest = randomBytes(31)
      }, "node.file.digest", "digest must be 32 bytes, got 31"],
      ["size over 2^53-1", (m) => {
        ;(m.node!.node.value as { size: bigint }).size = 2n ** 60n
      }, "node.file.size", "size 1152921504606846976 exceeds 2^53-1 (the largest size nixfx represents)"],
      ["anonymous root", (m) => {
        m.node!.node.value!.name = new Uint8Array(0)
      }, "node.file.name", "name is empty, expected the store path basename <hash>-<name>"],
      ["root name not UTF-8", (m) => {
        m.node!.node.value!.name = new Uint8Array([0xff, 0xfe])
      }, "node.file.name", "name 0xfffe (not UTF-8) is not a store path basename"],
      ["reference names missing", (m) => {
        m.narinfo!.referenceNames = []
      }, "narinfo.reference_names", "0 reference names for 3 references (one name per entry of references, in the same order)"],
      ["reference name not a basename", (m) => {
        m.narinfo!.referenceNames[1] = "/nix/store/abc"
      }, "narinfo.reference_names[1]", /^invalid store path "\/nix\/store\/abc": /],
      ["reference name of another digest", (m) => {
        m.narinfo!.referenceNames[0] = StorePath.toBasename(randomStorePath("r0"))
      }, "narinfo.reference_names[0]", /does not have the digest of references\[0\] \(/],
      ["nar_sha256 of 31 bytes", (m) => {
        m.narinfo!.narSha256 = randomBytes(31)
      }, "narinfo.nar_sha256", "must be 32 bytes, got 31"],
      ["signature of 65 bytes", (m) => {
        m.narinfo!.signatures = [create(ProtoConversion.ProtoSignatureSchema, { name: "k", data: randomBytes(65) })]
      }, "narinfo.signatures[0].data", "a signature is 64 bytes, got 65"],
      ["signature key name with a colon", (m) => {
        m.narinfo!.signatures = [create(ProtoConversion.ProtoSignatureSchema, { name: "a:b", data: randomBytes(64) })]
      }, "narinfo.signatures[0].name", "invalid key name \"a:b\": key name contains ':'"],
      ["deriver digest of 21 bytes", (m) => {
        m.narinfo!.deriver = create(ProtoConversion.ProtoStorePathSchema, { name: "x", digest: randomBytes(21) })
      }, "narinfo.deriver.digest", "digest must be 20 bytes, got 21"],
      ["deriver name with a slash", (m) => {
        m.narinfo!.deriver = create(ProtoConversion.ProtoStorePathSchema, { name: "a/b", digest: randomBytes(20) })
      }, "narinfo.deriver.name", "\"a/b\" (+ \".drv\"): name contains invalid character \"/\" at position 1"],
      ["CA of an unknown type", (m) => {
        m.narinfo!.ca = create(ProtoConversion.ProtoCASchema, { type: 9 as never, digest: randomBytes(32) })
      }, "narinfo.ca.type", "unknown hash type 9 (known: 0 to 8)"],
      ["CA digest of the wrong length", (m) => {
        m.narinfo!.ca = create(ProtoConversion.ProtoCASchema, { type: 5, digest: randomBytes(32) })
      }, "narinfo.ca.digest", "a FLAT_SHA1 digest is 20 bytes, got 32"],
      ["reference node for a stranger", (m) => {
        m.nixfxReferenceNodes = [ProtoConversion.nodeToProto(randomNode(), StorePath.toBasename(randomStorePath("x")))]
      }, "nixfx_reference_nodes[0].file.name", /is not one of narinfo\.reference_names$/],
      ["two nodes for one reference", (m) => {
        const name = m.narinfo!.referenceNames[1]
        m.nixfxReferenceNodes = [ProtoConversion.nodeToProto(randomNode(), name), ProtoConversion.nodeToProto(randomNode(), name)]
      }, "nixfx_reference_nodes[1].file.name", /^a second node for .* \(also nixfx_reference_nodes\[0\]\)$/],
      ["reference node with a bad symlink", (m) => {
        const node = ProtoConversion.nodeToProto(randomNode("symlink"), m.narinfo!.referenceNames[2])
        ;(node.node.value as { target: Uint8Array }).target = new Uint8Array(0)
        m.nixfxReferenceNodes = [node]
      }, "nixfx_reference_nodes[0].symlink.target", /empty/],
      ["NAR size a file of that size cannot have", (m) => {
        m.narinfo!.narSize += 8n
      }, "narinfo.nar_size", /./]
    ]
    for (const [what, spoil, field, detail] of cases) {
      const m = base()
      spoil(m)
      const e = rejection(m)
      assert.strictEqual(e._tag, "ProtoDecodeError", what)
      assert.strictEqual(e.messageType, "tvix.store.v1.PathInfo", what)
      assert.strictEqual(e.field, field, `${what}: ${e.message}`)
      if (typeof detail === "string") assert.strictEqual(e.detail, detail, what)
      else assert.match(e.detail, detail, what)
      assert.strictEqual(e.message, `${field}: ${e.detail}`)
    }
  })

  it("maps rule violations of the strict PathInfo back to the proto fields", () => {
    // a self-reference recording another node than the root: strict field references[i].node
    const self = randomStorePath("self")
    const p = makeTestPathInfo({ references: [{ storePath: randomStorePath("other"), node: Option.none() }] })
    const m = ProtoConversion.pathInfoToProto(new PathInfo.PathInfo({ ...p, storePath: self }))
    m.references.push(self.digest)
    m.narinfo!.referenceNames.push(StorePath.toBasename(self))
    m.nixfxReferenceNodes = [ProtoConversion.nodeToProto(randomNode("symlink"), StorePath.toBasename(self))]
    const e = rejection(m)
    assert.strictEqual(e.field, "nixfx_reference_nodes[0]")
    assert.include(e.detail, "the self-reference records node")
  })

  it("the Schemas decode and encode, failing with the field as the issue path", () => {
    const p = makeTestPathInfo({ references: [{ storePath: randomStorePath(), node: Option.some(randomNode("directory")) }] })
    const bytes = Schema.encodeSync(ProtoConversion.PathInfoFromBinary)(p)
    assert.isTrue(PathInfo.equals(Schema.decodeSync(ProtoConversion.PathInfoFromBinary)(bytes), p))
    const m = ProtoConversion.pathInfoToProto(p)
    m.references[0] = randomBytes(19)
    const failed = Schema.decodeEither(ProtoConversion.PathInfoFromProto)(m)
    if (Either.isRight(failed)) return assert.fail("accepted")
    const issue = ParseResult.ArrayFormatter.formatErrorSync(failed.left)[0]
    assert.deepStrictEqual(issue.path, ["references", 0])
    assert.strictEqual(issue.message, "digest must be 20 bytes, got 19")
    const error = ProtoConversion.fromParseError("tvix.store.v1.PathInfo", failed.left)
    assert.strictEqual(error.message, "references[0]: digest must be 20 bytes, got 19")
    const node = randomNode("executable")
    assert.isTrue(Node.equals(Schema.decodeSync(ProtoConversion.NodeFromProto)(Schema.encodeSync(ProtoConversion.NodeFromProto)(node)), node))
    const named = ProtoConversion.nodeToProto(node, "name")
    assert.strictEqual(
      Either.flip(Schema.decodeEither(ProtoConversion.NodeFromProto)(named)).pipe(Either.getOrThrow).message.includes("an anonymous node has no name"),
      true
    )
    assert.strictEqual(
      Either.getOrThrow(Either.flip(ProtoConversion.pathInfoFromBinary(new Uint8Array([0x0a, 0x05, 0x01])))).detail.startsWith("malformed protobuf"),
      true
    )
  })

  it("directories decode through castore-nodes with the field named", () => {
    const bytes = Buffer.from([0x12, 0x26, 0x0a, 0x01, 0x66, 0x12, 0x1f, ...new Uint8Array(31), 0x18, 0x01])
    const e = Either.getOrThrow(Either.flip(ProtoConversion.directoryFromBinary(bytes)))
    assert.strictEqual(e.field, "files[0].digest")
    assert.strictEqual(e.message, "files[0].digest: digest must be 32 bytes, got 31 (entry \"f\")")
  })
})

// ---------------------------------------------------------------------------
// wire compatibility
// ---------------------------------------------------------------------------

/**
 * tvix's field numbers and types (store/protos, castore/protos), written out
 * by hand from those files as the oracle: `message.field = number type`.
 */
const tvixFields: Record<string, Record<string, string>> = {
  "castore.v1.Directory": { directories: "1 repeated DirectoryNode", files: "2 repeated FileNode", symlinks: "3 repeated SymlinkNode" },
  "castore.v1.DirectoryNode": { name: "1 bytes", digest: "2 bytes", size: "3 uint64" },
  "castore.v1.FileNode": { name: "1 bytes", digest: "2 bytes", size: "3 uint64", executable: "4 bool" },
  "castore.v1.SymlinkNode": { name: "1 bytes", target: "2 bytes" },
  "castore.v1.Node": { directory: "1 DirectoryNode", file: "2 FileNode", symlink: "3 SymlinkNode" },
  "castore.v1.StatBlobRequest": { digest: "1 bytes", send_chunks: "2 bool", send_bao: "3 bool" },
  "castore.v1.StatBlobResponse": { chunks: "2 repeated StatBlobResponse.ChunkMeta", bao: "3 bytes" },
  "castore.v1.StatBlobResponse.ChunkMeta": { digest: "1 bytes", size: "2 uint64" },
  "castore.v1.ReadBlobRequest": { digest: "1 bytes" },
  "castore.v1.BlobChunk": { data: "1 bytes" },
  "castore.v1.PutBlobResponse": { digest: "1 bytes" },
  "castore.v1.GetDirectoryRequest": { digest: "1 bytes", recursive: "2 bool" },
  "castore.v1.PutDirectoryResponse": { root_digest: "1 bytes" },
  "store.v1.PathInfo": { node: "1 Node", references: "2 repeated bytes", narinfo: "3 NARInfo" },
  "store.v1.StorePath": { name: "1 string", digest: "2 bytes" },
  "store.v1.NARInfo": {
    nar_size: "1 uint64",
    nar_sha256: "2 bytes",
    signatures: "3 repeated NARInfo.Signature",
    reference_names: "4 repeated string",
    deriver: "5 StorePath",
    ca: "6 NARInfo.CA"
  },
  "store.v1.NARInfo.Signature": { name: "1 string", data: "2 bytes" },
  "store.v1.NARInfo.CA": { type: "1 NARInfo.CA.Hash", digest: "2 bytes" },
  "store.v1.GetPathInfoRequest": { by_output_hash: "1 bytes" },
  "store.v1.ListPathInfoRequest": {},
  "store.v1.CalculateNARResponse": { nar_size: "1 uint64", nar_sha256: "2 bytes" }
}

/** The nixfx extension fields (numbers tvix and snix do not use). */
const extensionFields: Record<string, Record<string, string>> = {
  "store.v1.PathInfo": { nixfx_reference_nodes: "1001 repeated Node" },
  "castore.v1.StatBlobResponse": { nixfx_size: "1001 uint64" },
  "castore.v1.ReadBlobRequest": { nixfx_offset: "1001 uint64", nixfx_length: "1002 uint64" }
}

const scalarNames: Record<number, string> = { 4: "uint64", 8: "bool", 9: "string", 12: "bytes" }

/** snix's names for tvix's (messages and the PathInfo root field). */
const toTvixName = (s: string) =>
  s.replace(/^(tvix|snix)\./, "")
    .replace(/\bDirectoryEntry\b/, "DirectoryNode")
    .replace(/\bFileEntry\b/, "FileNode")
    .replace(/\bSymlinkEntry\b/, "SymlinkNode")
    .replace(/\bEntry\b/, "Node")

const fieldSignature = (f: DescField): string => {
  const short = (m: DescMessage | { typeName: string }) => toTvixName(m.typeName).replace(/^(castore|store)\.v1\./, "")
  switch (f.fieldKind) {
    case "scalar":
      return `${f.number} ${scalarNames[f.scalar]}`
    case "message":
      return `${f.number} ${short(f.message)}`
    case "enum":
      return `${f.number} ${short(f.enum)}`
    case "list":
      return `${f.number} repeated ${f.listKind === "scalar" ? scalarNames[f.scalar] : f.listKind === "message" ? short(f.message) : short(f.enum)}`
    case "map":
      return `${f.number} map`
  }
}

const messagesOf = (files: ReadonlyArray<DescFile>): Map<string, Record<string, string>> => {
  const out = new Map<string, Record<string, string>>()
  const visit = (m: DescMessage) => {
    const fields: Record<string, string> = {}
    for (const f of m.fields) fields[f.name === "entry" ? "node" : f.name] = fieldSignature(f)
    out.set(toTvixName(m.typeName), fields)
    m.nestedMessages.forEach(visit)
  }
  for (const file of files) file.messages.forEach(visit)
  return out
}

const tvixFiles = [
  file_tvix_castore_protos_castore,
  file_tvix_castore_protos_rpc_blobstore,
  file_tvix_castore_protos_rpc_directory,
  file_tvix_store_protos_pathinfo,
  file_tvix_store_protos_rpc_pathinfo
]
const snixFiles = [
  file_snix_castore_protos_castore,
  file_snix_castore_protos_rpc_blobstore,
  file_snix_castore_protos_rpc_directory,
  file_snix_store_protos_pathinfo,
  file_snix_store_protos_rpc_pathinfo
]

describe("wire compatibility", () => {
  it("both package variants have tvix's field numbers and types, plus only the documented extensions", () => {
    for (const [variant, files] of [["tvix", tvixFiles], ["snix", snixFiles]] as const) {
      const messages = messagesOf(files)
      assert.sameMembers([...messages.keys()], Object.keys(tvixFields), variant)
      for (const [name, fields] of Object.entries(tvixFields)) {
        assert.deepStrictEqual(messages.get(name), { ...fields, ...extensionFields[name] }, `${variant} ${name}`)
      }
    }
  })

  it("both variants have tvix's services and methods", () => {
    for (const [pkg, files] of [["tvix", tvixFiles], ["snix", snixFiles]] as const) {
      const services = files.flatMap((f) => f.services).map((s) => `${s.typeName}: ${s.methods.map((m) => `${m.name}(${m.methodKind})`).join(" ")}`)
      assert.sameMembers(services, [
        `${pkg}.store.v1.PathInfoService: Get(unary) Put(unary) CalculateNAR(unary) List(server_streaming)`,
        `${pkg}.castore.v1.BlobService: Stat(unary) Read(server_streaming) Put(client_streaming)`,
        `${pkg}.castore.v1.DirectoryService: Get(server_streaming) Put(client_streaming)`
      ])
    }
  })

  it("a PathInfo written with the tvix schema reads back with the snix schema, and the other way", () => {
    const p = makeTestPathInfo({
      node: randomNode("directory"),
      references: [{ storePath: randomStorePath(), node: Option.some(randomNode("file")) }],
      signatures: [randomSignature("k")]
    })
    const tvixBytes = ProtoConversion.pathInfoToBinary(p)
    const snix = fromBinary(SnixPathInfoSchema, tvixBytes)
    assert.strictEqual(snix.entry?.entry.case, "directory")
    assert.strictEqual(snix.nixfxReferenceNodes.length, 1)
    const back = toBinary(SnixPathInfoSchema, snix)
    assert.strictEqual(Buffer.from(back).toString("hex"), Buffer.from(tvixBytes).toString("hex"))
    assert.isTrue(PathInfo.equals(Either.getOrThrow(ProtoConversion.pathInfoFromProto(fromBinary(PathInfoSchema, back))), p))
  })

  it("digests and sizes stay what they are (no aliasing of the input buffer)", () => {
    const node = new Node.FileNode({ digest: B3Digest.hash(randomBytes(4)), size: 3, executable: true })
    const p = makeTestPathInfo({ node, narSize: narSizeFor(node) })
    const bytes = ProtoConversion.pathInfoToBinary(p)
    const decoded = Either.getOrThrow(ProtoConversion.pathInfoFromBinary(bytes))
    bytes.fill(0)
    assert.isTrue(PathInfo.equals(decoded, p))
  })
})

describe("the hand-written PathInfo codec (the per-call hot path)", () => {
  /** What protobuf-es makes of the bytes: the generic decoder the fast path must agree with. */
  const generic = (bytes: Uint8Array) => Either.flatMap(ProtoConversion.parseBinary(PathInfoSchema, bytes), ProtoConversion.pathInfoFromProto)

  const assertSameDecoding = (bytes: Uint8Array, what: string) => {
    const fast = ProtoConversion.pathInfoFromBinary(bytes)
    const slow = generic(bytes)
    if (Either.isRight(slow)) {
      assert.isTrue(Either.isRight(fast) && PathInfo.equals(fast.right, slow.right), `${what}: ${Either.isLeft(fast) ? fast.left.message : "another PathInfo"}`)
    } else {
      assert.isTrue(Either.isLeft(fast), `${what}: accepted what protobuf-es rejects (${slow.left.message})`)
      if (Either.isLeft(fast)) assert.deepStrictEqual([fast.left.field, fast.left.detail], [slow.left.field, slow.left.detail], what)
    }
  }

  const varied = (): Array<PathInfo.PathInfo> => {
    const out: Array<PathInfo.PathInfo> = [...loadFixturePathInfos()]
    for (const ca of [
      new CAHash.Flat({ hash: NixHash.unsafeMake("md5", randomBytes(16)) }),
      new CAHash.Flat({ hash: NixHash.unsafeMake("sha512", randomBytes(64)) }),
      new CAHash.Text({ hash: NixHash.unsafeMake("sha256", randomBytes(32)) })
    ]) out.push(makeTestPathInfo({ node: randomNode("file"), ca: Option.some(ca) }))
    const narSha256 = randomBytes(32)
    out.push(makeTestPathInfo({ narSha256, ca: Option.some(new CAHash.Nar({ hash: NixHash.unsafeMake("sha256", narSha256) })) }))
    out.push(makeTestPathInfo({ ca: Option.some(new CAHash.Nar({ hash: NixHash.unsafeMake("sha1", randomBytes(20)) })) }))
    out.push(...withEveryNodeKind())
    out.push(new PathInfo.PathInfo({ ...makeTestPathInfo({ node: randomNode("directory") }), narSize: 2 ** 40 + 3 }))
    return out
  }

  it("writes exactly the bytes protobuf-es writes", () => {
    for (const p of varied()) {
      assert.deepStrictEqual(
        Buffer.from(ProtoConversion.pathInfoToBinary(p)).toString("hex"),
        Buffer.from(toBinary(PathInfoSchema, ProtoConversion.pathInfoToProto(p))).toString("hex"),
        p.basename
      )
    }
  })

  it("reads what protobuf-es reads, and rejects what it rejects with the same error", () => {
    for (const p of varied()) assertSameDecoding(ProtoConversion.pathInfoToBinary(p), p.basename)

    // the richest: most references (with nodes of every kind), signatures, a deriver
    const p = varied().reduce((a, b) => (b.references.length > a.references.length ? b : a))
    const bytes = ProtoConversion.pathInfoToBinary(p)
    // every truncation
    for (let n = 0; n < bytes.length; n++) assertSameDecoding(bytes.subarray(0, n), `the first ${n} bytes`)
    // every single byte changed (two ways)
    for (let i = 0; i < bytes.length; i++) {
      for (const change of [(b: number) => b ^ 0x01, (b: number) => b ^ 0x80]) {
        const mutated = bytes.slice()
        mutated[i] = change(mutated[i])
        assertSameDecoding(mutated, `byte ${i} changed`)
      }
    }
    // unknown fields (skipped), fields in another order, a singular message field twice (merged)
    const m = ProtoConversion.pathInfoToProto(p)
    const narinfo = toBinary(ProtoConversion.ProtoNarInfoSchema, m.narinfo!)
    const unknown = Uint8Array.from([0x98, 0x3e, 0x07, 0xa2, 0x06, 0x02, 0x01, 0x02, 0x0d, 1, 2, 3, 4])
    const reordered = Buffer.concat([
      Buffer.from([0x1a, ...lengthPrefix(narinfo.length)]),
      narinfo,
      unknown,
      Buffer.from(toBinary(PathInfoSchema, create(PathInfoSchema, { node: m.node, references: m.references, nixfxReferenceNodes: m.nixfxReferenceNodes })))
    ])
    assertSameDecoding(reordered, "reordered, with unknown fields")
    const partialNarinfo = toBinary(ProtoConversion.ProtoNarInfoSchema, create(ProtoConversion.ProtoNarInfoSchema, { narSize: 7n }))
    const merged = Buffer.concat([bytes, Buffer.from([0x1a, ...lengthPrefix(partialNarinfo.length)]), partialNarinfo])
    assertSameDecoding(merged, "narinfo sent twice")
    assert.isTrue(Either.isLeft(ProtoConversion.pathInfoFromBinary(merged)), "the merged nar_size no longer fits the node")
  })
})

const lengthPrefix = (n: number): Array<number> => {
  const out: Array<number> = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  out.push(n)
  return out
}
