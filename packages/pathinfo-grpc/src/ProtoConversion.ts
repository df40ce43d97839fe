/**
 * Between the protobuf messages of the tvix/snix wire format and the strict
 * nixfx types: every message that arrives is checked here, and a rejected one
 * becomes a {@link ProtoDecodeError} naming the field and index in the
 * message's own (tvix) field names, e.g.
 * `references[2]: digest must be 20 bytes, got 19`.
 *
 * The rules are tvix's (`store/src/proto/mod.rs`, castore's node checks) plus
 * the strict PathInfo's own (`@nixfx/pathinfo/PathInfo`):
 *
 * - `narinfo` must be present; `node` must be present and set, named by the
 *   store path basename; digests are 20 (store paths) or 32 (BLAKE3,
 *   `nar_sha256`) bytes; sizes fit in 2^53-1;
 * - `narinfo.reference_names` has one basename per entry of `references`, in
 *   the same order and with the same digests; references may come in any
 *   order (they are sorted by basename) but not twice;
 * - signatures carry a valid key name and 64 bytes; the deriver is sent
 *   without its final `.drv` (as tvix and snix do) and must make a valid
 *   `.drv` store path with it; the CA's digest length fits its hash type;
 * - the nixfx extension `nixfx_reference_nodes` (field 1001) holds valid nodes,
 *   each named by one of the `reference_names`, at most one per reference.
 *
 * Directory messages are decoded and checked by `@nixfx/castore-nodes`
 * (`Directory.decode`) straight from the wire bytes.
 *
 * Proto message types stay inside this package: the client and server layers
 * only ever hand out strict types.
 *
 * @since 0.1.0
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Directory from "@nixfx/castore-nodes/Directory"
import * as Node from "@nixfx/castore-nodes/Node"
import * as SymlinkTarget from "@nixfx/castore-nodes/SymlinkTarget"
import * as CAHash from "@nixfx/nix-compat/CAHash"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as Nixbase32 from "@nixfx/nix-compat/Nixbase32"
import * as NixHash from "@nixfx/nix-compat/NixHash"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import {
  type DirectoryNode as ProtoDirectoryNode,
  DirectoryNodeSchema,
  type FileNode as ProtoFileNode,
  FileNodeSchema,
  type Node as ProtoNode,
  NodeSchema as ProtoNodeSchema,
  type SymlinkNode as ProtoSymlinkNode,
  SymlinkNodeSchema
} from "./gen/tvix/castore/protos/castore_pb.js"
import {
  type NARInfo as ProtoNarInfo,
  NARInfo_CA_Hash,
  NARInfo_CASchema,
  NARInfo_SignatureSchema,
  NARInfoSchema,
  type PathInfo as ProtoPathInfo,
  PathInfoSchema as ProtoPathInfoSchema,
  StorePathSchema as ProtoStorePathSchema
} from "./gen/tvix/store/protos/pathinfo_pb.js"
import {
  type CalculateNARResponse as ProtoCalculateNarResponse,
  CalculateNARResponseSchema
} from "./gen/tvix/store/protos/rpc_pathinfo_pb.js"
import { caKinds, caWireType, decodePathInfo, encodePathInfo } from "./internal/pathInfoWire.js"

export type {
  /**
   * The generated `tvix.castore.v1.Node` message (protobuf-es).
   *
   * @since 0.1.0
   * @category proto
   */
  ProtoNode,
  /**
   * The generated `tvix.store.v1.PathInfo` message (protobuf-es).
   *
   * @since 0.1.0
   * @category proto
   */
  ProtoPathInfo
}

export {
  /**
   * protobuf-es schema of `tvix.castore.v1.Node` (for `create`, `toBinary`, `fromBinary`).
   *
   * @since 0.1.0
   * @category proto
   */
  NARInfo_CASchema as ProtoCASchema,
  /**
   * protobuf-es schema of `tvix.store.v1.NARInfo`.
   *
   * @since 0.1.0
   * @category proto
   */
  NARInfoSchema as ProtoNarInfoSchema,
  /**
   * protobuf-es schema of `tvix.castore.v1.Node`.
   *
   * @since 0.1.0
   * @category proto
   */
  ProtoNodeSchema,
  /**
   * protobuf-es schema of `tvix.store.v1.PathInfo`.
   *
   * @since 0.1.0
   * @category proto
   */
  ProtoPathInfoSchema,
  /**
   * protobuf-es schema of `tvix.store.v1.NARInfo.Signature`.
   *
   * @since 0.1.0
   * @category proto
   */
  NARInfo_SignatureSchema as ProtoSignatureSchema,
  /**
   * protobuf-es schema of `tvix.store.v1.StorePath`.
   *
   * @since 0.1.0
   * @category proto
   */
  ProtoStorePathSchema
}

// ---------------------------------------------------------------------------
// the error
// ---------------------------------------------------------------------------

/**
 * A protobuf message was rejected. `messageType` is the full message name
 * (`tvix.store.v1.PathInfo`), `field` the path of the offending field in the
 * message's field names (`references[2]`, `narinfo.signatures[0].data`,
 * `node.file.digest`; empty for the message as a whole), `detail` what is
 * wrong. The message reads `<field>: <detail>`.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProtoDecodeError extends Schema.TaggedError<ProtoDecodeError>("@nixfx/pathinfo-grpc/ProtoDecodeError")(
  "ProtoDecodeError",
  {
    messageType: Schema.String,
    field: Schema.String,
    detail: Schema.String
  }
) {
  override get message(): string {
    return this.field === "" ? this.detail : `${this.field}: ${this.detail}`
  }
}

const fail = (messageType: string, field: string, detail: string): Either.Either<never, ProtoDecodeError> =>
  Either.left(new ProtoDecodeError({ messageType, field, detail }))

const PATH_INFO = "tvix.store.v1.PathInfo"
const NODE = "tvix.castore.v1.Node"

// ---------------------------------------------------------------------------
// small helpers (plain functions)
// ---------------------------------------------------------------------------

const utf8 = new TextDecoder("utf-8", { fatal: true })
const utf8Encoder = new TextEncoder()

const decodeUtf8 = (bytes: Uint8Array): string | undefined => {
  try {
    return utf8.decode(bytes)
  } catch {
    return undefined
  }
}

const hex = B3Digest.toHex

/** A name for messages: the text when it is UTF-8, otherwise hex. */
const showName = (bytes: Uint8Array): string => {
  const s = decodeUtf8(bytes)
  return s === undefined ? `0x${hex(bytes)} (not UTF-8)` : JSON.stringify(s)
}

const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** A uint64 as a JS number when it is at most 2^53-1. */
const safeNumber = (n: bigint): number | undefined => (n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : undefined)

const copy = (bytes: Uint8Array): Uint8Array => bytes.slice()

// ---------------------------------------------------------------------------
// nodes
// ---------------------------------------------------------------------------

/**
 * A node message split into its (unchecked) name bytes and the checked node.
 *
 * @since 0.1.0
 * @category models
 */
export interface NamedNode {
  readonly name: Uint8Array
  readonly node: Node.Node
}

/**
 * Checks a `Node` message and returns its name bytes (not checked: what a
 * name must be depends on where the node is) and the node. `field` prefixes
 * the error path (e.g. `node`, `nixfx_reference_nodes[1]`).
 *
 * @since 0.1.0
 * @category decoding
 */
export const namedNodeFromProto = (
  message: ProtoNode | undefined,
  field: string,
  messageType: string = NODE
): Either.Either<NamedNode, ProtoDecodeError> => {
  if (message === undefined) return fail(messageType, field, "missing (a node is required)")
  const oneof = message.node
  switch (oneof.case) {
    case undefined:
      return fail(messageType, field, "no node set (expected one of directory, file, symlink)")
    case "directory":
    case "file": {
      const at = `${field}.${oneof.case}`
      const v = oneof.value
      if (v.digest.length !== B3Digest.LENGTH) {
        return fail(messageType, `${at}.digest`, `digest must be ${B3Digest.LENGTH} bytes, got ${v.digest.length}`)
      }
      const size = safeNumber(v.size)
      if (size === undefined) {
        return fail(messageType, `${at}.size`, `size ${v.size} exceeds 2^53-1 (the largest size nixfx represents)`)
      }
      const digest = copy(v.digest) as B3Digest.B3Digest
      const node = oneof.case === "directory"
        ? new Node.DirectoryNode({ digest, size })
        : new Node.FileNode({ digest, size, executable: (v as ProtoFileNode).executable })
      return Either.right({ name: v.name, node })
    }
    case "symlink": {
      const target = SymlinkTarget.fromUtf8(oneof.value.target)
      if (Either.isLeft(target)) return fail(messageType, `${field}.symlink.target`, target.left.message)
      return Either.right({ name: oneof.value.name, node: new Node.SymlinkNode({ target: target.right }) })
    }
  }
}

/**
 * Checks an anonymous `Node` message (empty name), as `CalculateNAR` takes.
 *
 * @since 0.1.0
 * @category decoding
 */
export const anonymousNodeFromProto = (
  message: ProtoNode | undefined,
  field: string = ""
): Either.Either<Node.Node, ProtoDecodeError> =>
  Either.flatMap(namedNodeFromProto(message, field === "" ? "node" : field), ({ name, node }) =>
    name.length === 0
      ? Either.right(node)
      : fail(NODE, `${field === "" ? "node" : field}.${kindField(node)}.name`, `an anonymous node has no name, got ${showName(name)}`))

const kindField = (node: Node.Node): "directory" | "file" | "symlink" =>
  node._tag === "Directory" ? "directory" : node._tag === "File" ? "file" : "symlink"

/**
 * A `Node` message for `node`, named `name` (empty: anonymous).
 *
 * @since 0.1.0
 * @category encoding
 */
export const nodeToProto = (node: Node.Node, name: Uint8Array | string = new Uint8Array(0)): ProtoNode => {
  const nameBytes = typeof name === "string" ? utf8Encoder.encode(name) : name
  switch (node._tag) {
    case "Directory":
      return create(ProtoNodeSchema, {
        node: {
          case: "directory",
          value: create(DirectoryNodeSchema, {
            name: nameBytes,
            digest: node.digest,
            size: BigInt(node.size)
          }) satisfies ProtoDirectoryNode
        }
      })
    case "File":
      return create(ProtoNodeSchema, {
        node: {
          case: "file",
          value: create(FileNodeSchema, {
            name: nameBytes,
            digest: node.digest,
            size: BigInt(node.size),
            executable: node.executable
          }) satisfies ProtoFileNode
        }
      })
    case "Symlink":
      return create(ProtoNodeSchema, {
        node: {
          case: "symlink",
          value: create(SymlinkNodeSchema, {
            name: nameBytes,
            target: utf8Encoder.encode(node.target)
          }) satisfies ProtoSymlinkNode
        }
      })
  }
}

/**
 * The bytes of a `Node` message for `node`, named `name` (empty: anonymous).
 *
 * @since 0.1.0
 * @category encoding
 */
export const nodeToBinary = (node: Node.Node, name?: Uint8Array | string): Uint8Array =>
  toBinary(ProtoNodeSchema, nodeToProto(node, name))

/**
 * Decodes and checks the bytes of an anonymous `Node` message.
 *
 * @since 0.1.0
 * @category decoding
 */
export const anonymousNodeFromBinary = (bytes: Uint8Array): Either.Either<Node.Node, ProtoDecodeError> =>
  Either.flatMap(parseBinary(ProtoNodeSchema, bytes), (m) => anonymousNodeFromProto(m))

/** Checks that a node's name is a store path basename; returns the store path. */
const storePathFromNodeName = (
  name: Uint8Array,
  node: Node.Node,
  field: string
): Either.Either<StorePath.StorePath, ProtoDecodeError> => {
  const at = `${field}.${kindField(node)}.name`
  const text = decodeUtf8(name)
  if (text === undefined) return fail(PATH_INFO, at, `name ${showName(name)} is not a store path basename`)
  if (text === "") return fail(PATH_INFO, at, "name is empty, expected the store path basename <hash>-<name>")
  const sp = StorePath.parseBasename(text)
  return Either.isLeft(sp) ? fail(PATH_INFO, at, sp.left.message) : Either.right(sp.right)
}

// ---------------------------------------------------------------------------
// content addresses
// ---------------------------------------------------------------------------

const caFromProto = (
  ca: { readonly type: NARInfo_CA_Hash; readonly digest: Uint8Array }
): Either.Either<CAHash.CAHash, ProtoDecodeError> => {
  const kind = caKinds.find(([t]) => t === ca.type)
  if (kind === undefined) {
    return fail(PATH_INFO, "narinfo.ca.type", `unknown hash type ${ca.type} (known: 0 to ${caKinds.length - 1})`)
  }
  const [, tag, algorithm] = kind
  const expected = NixHash.digestLength[algorithm]
  if (ca.digest.length !== expected) {
    return fail(
      PATH_INFO,
      "narinfo.ca.digest",
      `a ${NARInfo_CA_Hash[ca.type]} digest is ${expected} bytes, got ${ca.digest.length}`
    )
  }
  const hash = NixHash.unsafeMake(algorithm, copy(ca.digest))
  return Either.right(tag === "Nar" ? new CAHash.Nar({ hash }) : tag === "Flat" ? new CAHash.Flat({ hash }) : new CAHash.Text({ hash }))
}

const caToProto = (ca: CAHash.CAHash) => create(NARInfo_CASchema, { type: caWireType(ca), digest: ca.hash.digest })

// ---------------------------------------------------------------------------
// PathInfo
// ---------------------------------------------------------------------------

const DRV = ".drv"

/** Maps a field path of the strict PathInfo to the proto field it came from. */
const protoFieldOf = (
  strictField: string,
  referenceOrigin: ReadonlyArray<number>,
  nodeOrigin: ReadonlyMap<number, number>
): string => {
  const m = /^references\[(\d+)\](\.node)?(.*)$/.exec(strictField)
  if (m !== null) {
    const sorted = Number(m[1])
    if (m[2] !== undefined) {
      const j = nodeOrigin.get(sorted)
      return j === undefined ? strictField : `nixfx_reference_nodes[${j}]${m[3]}`
    }
    const i = referenceOrigin[sorted]
    return i === undefined ? strictField : `references[${i}]${m[3]}`
  }
  const head = /^([A-Za-z]+)(.*)$/.exec(strictField)
  if (head === null) return strictField
  const renamed: Record<string, string> = {
    storePath: "node.name",
    node: "node",
    narSize: "narinfo.nar_size",
    narSha256: "narinfo.nar_sha256",
    signatures: "narinfo.signatures",
    deriver: "narinfo.deriver",
    ca: "narinfo.ca"
  }
  return (renamed[head[1]] ?? head[1]) + head[2]
}

/**
 * Checks a `PathInfo` message and builds the strict PathInfo (see the module
 * documentation for the rules).
 *
 * @since 0.1.0
 * @category decoding
 */
export const pathInfoFromProto = (message: ProtoPathInfo): Either.Either<PathInfo.PathInfo, ProtoDecodeError> => {
  const narinfo = message.narinfo
  if (narinfo === undefined) return fail(PATH_INFO, "narinfo", "missing (the NAR size, hash and reference names are required)")

  // references and their names
  const refs = message.references
  for (let i = 0; i < refs.length; i++) {
    if (refs[i].length !== StorePath.digestLength) {
      return fail(PATH_INFO, `references[${i}]`, `digest must be ${StorePath.digestLength} bytes, got ${refs[i].length}`)
    }
  }
  const names = narinfo.referenceNames
  if (names.length !== refs.length) {
    return fail(
      PATH_INFO,
      "narinfo.reference_names",
      `${names.length} reference names for ${refs.length} references (one name per entry of references, in the same order)`
    )
  }
  const referencePaths: Array<StorePath.StorePath> = []
  const indexByBasename = new Map<string, number>()
  for (let i = 0; i < names.length; i++) {
    const parsed = StorePath.parseBasename(names[i])
    if (Either.isLeft(parsed)) return fail(PATH_INFO, `narinfo.reference_names[${i}]`, parsed.left.message)
    const sp = parsed.right
    if (!bytesEqual(sp.digest, refs[i])) {
      return fail(
        PATH_INFO,
        `narinfo.reference_names[${i}]`,
        `${names[i]} does not have the digest of references[${i}] (${Nixbase32.encode(refs[i])})`
      )
    }
    const earlier = indexByBasename.get(names[i])
    if (earlier !== undefined) {
      return fail(PATH_INFO, `references[${i}]`, `duplicate reference ${names[i]} (also references[${earlier}])`)
    }
    indexByBasename.set(names[i], i)
    referencePaths.push(sp)
  }

  // the root node and the store path
  const root = namedNodeFromProto(message.node, "node", PATH_INFO)
  if (Either.isLeft(root)) return Either.left(root.left)
  const storePath = storePathFromNodeName(root.right.name, root.right.node, "node")
  if (Either.isLeft(storePath)) return Either.left(storePath.left)

  // reference nodes (nixfx extension)
  const referenceNodes = new Map<number, Node.Node>()
  const nodeOriginByRef = new Map<number, number>()
  for (let j = 0; j < message.nixfxReferenceNodes.length; j++) {
    const at = `nixfx_reference_nodes[${j}]`
    const named = namedNodeFromProto(message.nixfxReferenceNodes[j], at, PATH_INFO)
    if (Either.isLeft(named)) return Either.left(named.left)
    const nameAt = `${at}.${kindField(named.right.node)}.name`
    const name = decodeUtf8(named.right.name)
    const i = name === undefined ? undefined : indexByBasename.get(name)
    if (i === undefined) {
      return fail(PATH_INFO, nameAt, `${showName(named.right.name)} is not one of narinfo.reference_names`)
    }
    const earlier = nodeOriginByRef.get(i)
    if (earlier !== undefined) {
      return fail(PATH_INFO, nameAt, `a second node for ${name} (also nixfx_reference_nodes[${earlier}])`)
    }
    referenceNodes.set(i, named.right.node)
    nodeOriginByRef.set(i, j)
  }

  // NAR size and hash
  const narSize = safeNumber(narinfo.narSize)
  if (narSize === undefined) {
    return fail(PATH_INFO, "narinfo.nar_size", `${narinfo.narSize} exceeds 2^53-1 (the largest size nixfx represents)`)
  }
  if (narinfo.narSha256.length !== 32) {
    return fail(PATH_INFO, "narinfo.nar_sha256", `must be 32 bytes, got ${narinfo.narSha256.length}`)
  }

  // signatures
  const signatures: Array<Keys.Signature> = []
  for (let i = 0; i < narinfo.signatures.length; i++) {
    const s = narinfo.signatures[i]
    const keyName = validateKeyName(s.name)
    if (Either.isLeft(keyName)) {
      return fail(PATH_INFO, `narinfo.signatures[${i}].name`, `invalid key name ${JSON.stringify(s.name)}: ${firstMessage(keyName.left)}`)
    }
    if (s.data.length !== Keys.signatureLength) {
      return fail(PATH_INFO, `narinfo.signatures[${i}].data`, `a signature is ${Keys.signatureLength} bytes, got ${s.data.length}`)
    }
    // both fields were just checked against the class's own schemas
    signatures.push(new Keys.Signature({ keyName: s.name, bytes: copy(s.data) }, true))
  }

  // deriver: sent without its final ".drv"
  let deriver = Option.none<StorePath.StorePath>()
  if (narinfo.deriver !== undefined) {
    const d = narinfo.deriver
    if (d.digest.length !== StorePath.digestLength) {
      return fail(PATH_INFO, "narinfo.deriver.digest", `digest must be ${StorePath.digestLength} bytes, got ${d.digest.length}`)
    }
    const made = StorePath.make(copy(d.digest), d.name + DRV)
    if (Either.isLeft(made)) {
      return fail(PATH_INFO, "narinfo.deriver.name", `${JSON.stringify(d.name)} (+ ".drv"): ${made.left.detail}`)
    }
    deriver = Option.some(made.right)
  }

  // content address
  let ca = Option.none<CAHash.CAHash>()
  if (narinfo.ca !== undefined) {
    const parsed = caFromProto(narinfo.ca)
    if (Either.isLeft(parsed)) return Either.left(parsed.left)
    ca = Option.some(parsed.right)
  }

  // references sorted by basename; remember where each came from
  const order = referencePaths.map((_, i) => i).sort((a, b) => (names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : 0))
  const references = order.map((i) => ({ storePath: referencePaths[i], node: Option.fromNullable(referenceNodes.get(i)) }))
  const nodeOrigin = new Map<number, number>()
  order.forEach((i, sorted) => {
    const j = nodeOriginByRef.get(i)
    if (j !== undefined) nodeOrigin.set(sorted, j)
  })

  const made = PathInfo.make({
    storePath: storePath.right,
    node: root.right.node,
    references,
    narSize,
    narSha256: copy(narinfo.narSha256),
    signatures,
    deriver,
    ca
  })
  if (Either.isLeft(made)) {
    return fail(PATH_INFO, protoFieldOf(made.left.field, order, nodeOrigin), made.left.detail)
  }
  return Either.right(made.right)
}

const validateKeyName = Schema.validateEither(Keys.KeyName)

const firstMessage = (e: ParseResult.ParseError): string => ParseResult.ArrayFormatter.formatErrorSync(e)[0]?.message ?? e.message

/**
 * The `PathInfo` message of a strict PathInfo (references by content in
 * `nixfx_reference_nodes`, the deriver without its final `.drv`).
 *
 * @since 0.1.0
 * @category encoding
 */
export const pathInfoToProto = (pathInfo: PathInfo.PathInfo): ProtoPathInfo => {
  const referenceNames: Array<string> = []
  const references: Array<Uint8Array> = []
  const referenceNodes: Array<ProtoNode> = []
  for (const r of pathInfo.references) {
    const basename = StorePath.toBasename(r.storePath)
    referenceNames.push(basename)
    references.push(r.storePath.digest)
    if (Option.isSome(r.node)) referenceNodes.push(nodeToProto(r.node.value, basename))
  }
  const narinfo: ProtoNarInfo = create(NARInfoSchema, {
    narSize: BigInt(pathInfo.narSize),
    narSha256: pathInfo.narSha256,
    signatures: pathInfo.signatures.map((s) => create(NARInfo_SignatureSchema, { name: s.keyName, data: s.bytes })),
    referenceNames,
    ...(Option.isSome(pathInfo.deriver)
      ? {
        deriver: create(ProtoStorePathSchema, {
          name: pathInfo.deriver.value.name.slice(0, -DRV.length),
          digest: pathInfo.deriver.value.digest
        })
      }
      : {}),
    ...(Option.isSome(pathInfo.ca) ? { ca: caToProto(pathInfo.ca.value) } : {})
  })
  return create(ProtoPathInfoSchema, {
    node: nodeToProto(pathInfo.node, StorePath.toBasename(pathInfo.storePath)),
    references,
    narinfo,
    nixfxReferenceNodes: referenceNodes
  })
}

/**
 * Parses protobuf bytes with a generated message schema; malformed bytes are a
 * `ProtoDecodeError` for the message as a whole.
 *
 * @internal
 */
export const parseBinary = <T extends Parameters<typeof fromBinary>[0]>(
  schema: T,
  bytes: Uint8Array
): Either.Either<ReturnType<typeof fromBinary<T>>, ProtoDecodeError> => {
  try {
    return Either.right(fromBinary(schema, bytes))
  } catch (e) {
    return fail(schema.typeName, "", `malformed protobuf: ${e instanceof Error ? e.message : String(e)}`)
  }
}

/**
 * Decodes and checks the bytes of a `PathInfo` message.
 *
 * @since 0.1.0
 * @category decoding
 */
export const pathInfoFromBinary = (bytes: Uint8Array): Either.Either<PathInfo.PathInfo, ProtoDecodeError> => {
  // the usual shape on the fast path; anything else through protobuf-es (its errors)
  const message = decodePathInfo(bytes)
  return message !== undefined ? pathInfoFromProto(message) : Either.flatMap(parseBinary(ProtoPathInfoSchema, bytes), pathInfoFromProto)
}

/**
 * The bytes of the `PathInfo` message of a strict PathInfo (the bytes
 * `toBinary(ProtoPathInfoSchema, pathInfoToProto(pathInfo))` gives, written
 * without building the message).
 *
 * @since 0.1.0
 * @category encoding
 */
export const pathInfoToBinary = (pathInfo: PathInfo.PathInfo): Uint8Array => encodePathInfo(pathInfo)

/**
 * Decodes and checks the bytes of a `Directory` message (with castore-nodes'
 * decoder: canonical re-encoding, digest, sorted unique names).
 *
 * @since 0.1.0
 * @category decoding
 */
export const directoryFromBinary = (bytes: Uint8Array): Either.Either<Directory.Directory, ProtoDecodeError> =>
  Either.mapLeft(
    Directory.decode(bytes),
    (e) => new ProtoDecodeError({ messageType: "tvix.castore.v1.Directory", field: e.field === "directory" ? "" : e.field, detail: e.message.startsWith(e.field + ": ") ? e.message.slice(e.field.length + 2) : e.message })
  )

// ---------------------------------------------------------------------------
// CalculateNAR
// ---------------------------------------------------------------------------

/**
 * The NAR size and SHA-256 of a `CalculateNARResponse`.
 *
 * @since 0.1.0
 * @category models
 */
export interface NarCalculation {
  readonly narSize: number
  readonly narSha256: Uint8Array
}

/**
 * @since 0.1.0
 * @category decoding
 */
export const calculateNarResponseFromProto = (
  message: ProtoCalculateNarResponse
): Either.Either<NarCalculation, ProtoDecodeError> => {
  const type = "tvix.store.v1.CalculateNARResponse"
  const narSize = safeNumber(message.narSize)
  if (narSize === undefined) return fail(type, "nar_size", `${message.narSize} exceeds 2^53-1`)
  if (message.narSha256.length !== 32) return fail(type, "nar_sha256", `must be 32 bytes, got ${message.narSha256.length}`)
  return Either.right({ narSize, narSha256: copy(message.narSha256) })
}

/**
 * @since 0.1.0
 * @category encoding
 */
export const calculateNarResponseToProto = (calculation: NarCalculation): ProtoCalculateNarResponse =>
  create(CalculateNARResponseSchema, { narSize: BigInt(calculation.narSize), narSha256: calculation.narSha256 })

// ---------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------

const isProtoPathInfo = (u: unknown): u is ProtoPathInfo =>
  typeof u === "object" && u !== null && (u as { $typeName?: unknown }).$typeName === "tvix.store.v1.PathInfo"

const isProtoNode = (u: unknown): u is ProtoNode =>
  typeof u === "object" && u !== null && (u as { $typeName?: unknown }).$typeName === NODE

/** A decode failure as a ParseResult issue at the offending field's path. */
const issueOf = (e: ProtoDecodeError, ast: Schema.Schema.AnyNoContext["ast"], actual: unknown): ParseResult.ParseIssue => {
  const path = e.field === "" ? [] : e.field.split(/\.|(?=\[)/).map((p) => (p.startsWith("[") ? Number(p.slice(1, -1)) : p))
  const inner = new ParseResult.Type(ast, actual, e.detail)
  return path.length === 0 ? inner : new ParseResult.Pointer(path as [PropertyKey, ...Array<PropertyKey>], actual, inner)
}

/**
 * The generated `tvix.store.v1.PathInfo` message ↔ the strict PathInfo. A
 * rejected message fails with an issue at the offending field's path.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PathInfoFromProto: Schema.Schema<PathInfo.PathInfo, ProtoPathInfo> = Schema.transformOrFail(
  Schema.declare(isProtoPathInfo, { identifier: "tvix.store.v1.PathInfo" }),
  Schema.typeSchema(PathInfo.PathInfo),
  {
    strict: true,
    decode: (message, _, ast) =>
      Either.match(pathInfoFromProto(message), {
        onLeft: (e) => ParseResult.fail(issueOf(e, ast, message)),
        onRight: ParseResult.succeed
      }),
    encode: (pathInfo) => ParseResult.succeed(pathInfoToProto(pathInfo))
  }
).annotations({ identifier: "PathInfoFromProto" })

/**
 * The bytes of a `PathInfo` message ↔ the strict PathInfo.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PathInfoFromBinary: Schema.Schema<PathInfo.PathInfo, Uint8Array> = Schema.transformOrFail(
  Schema.Uint8ArrayFromSelf,
  Schema.typeSchema(PathInfo.PathInfo),
  {
    strict: true,
    decode: (bytes, _, ast) =>
      Either.match(pathInfoFromBinary(bytes), {
        onLeft: (e) => ParseResult.fail(issueOf(e, ast, bytes)),
        onRight: ParseResult.succeed
      }),
    encode: (pathInfo) => ParseResult.succeed(pathInfoToBinary(pathInfo))
  }
).annotations({ identifier: "PathInfoFromBinary" })

/**
 * An anonymous `tvix.castore.v1.Node` message ↔ a castore `Node`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const NodeFromProto: Schema.Schema<Node.Node, ProtoNode> = Schema.transformOrFail(
  Schema.declare(isProtoNode, { identifier: NODE }),
  Schema.declare(Node.isNode, { identifier: "Node" }),
  {
    strict: true,
    decode: (message, _, ast) =>
      Either.match(anonymousNodeFromProto(message), {
        onLeft: (e) => ParseResult.fail(issueOf(e, ast, message)),
        onRight: ParseResult.succeed
      }),
    encode: (node) => ParseResult.succeed(nodeToProto(node))
  }
).annotations({ identifier: "NodeFromProto" })

/**
 * The first issue of a failed decode with one of this module's Schemas, as a
 * `ProtoDecodeError` (field path and detail).
 *
 * @since 0.1.0
 * @category errors
 */
export const fromParseError = (messageType: string, error: ParseResult.ParseError): ProtoDecodeError => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (issue === undefined) return new ProtoDecodeError({ messageType, field: "", detail: error.message })
  let field = ""
  for (const key of issue.path) field += typeof key === "number" ? `[${key}]` : field === "" ? String(key) : "." + String(key)
  return new ProtoDecodeError({ messageType, field, detail: issue.message })
}

/**
 * A decoding failure as the `InvalidPathInfo` of the PathInfoService error
 * family (same field and detail).
 *
 * @since 0.1.0
 * @category errors
 */
export const toInvalidPathInfo = (error: ProtoDecodeError, storePath: string = ""): PathInfo.InvalidPathInfo =>
  new PathInfo.InvalidPathInfo({ storePath, field: error.field, detail: error.detail })
