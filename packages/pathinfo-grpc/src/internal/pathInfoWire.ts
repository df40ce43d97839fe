/**
 * The PathInfo message (and `GetPathInfoRequest`) on the per-call hot path,
 * hand-written: the generic protobuf-es runtime builds every message through
 * `create()` and allocates per field, which made encoding and decoding the
 * larger part of a Get's or Put's CPU time (see the package README's
 * benchmark section).
 *
 * - `encodePathInfo` writes exactly the bytes `toBinary(PathInfoSchema,
 *   pathInfoToProto(p))` writes (same field order, defaults omitted), into one
 *   buffer sized up front.
 * - `decodePathInfo` reads a message of the usual shape into the same plain
 *   message objects `fromBinary` makes (fields `pathInfoFromProto` reads).
 *   Anything unusual — a known field with another wire type, a singular
 *   message field sent twice (protobuf merges those), a field number of five
 *   bytes, a nested length that does not add up, malformed bytes — answers
 *   `undefined`, and the caller decodes with protobuf-es instead, so the
 *   result and every error are the generic decoder's.
 *
 * @internal
 */
import { BinaryReader } from "@bufbuild/protobuf/wire"
import * as Option from "effect/Option"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import type * as Node from "@nixfx/castore-nodes/Node"
import type * as PathInfo from "@nixfx/pathinfo/PathInfo"
import type {
  DirectoryNode as ProtoDirectoryNode,
  FileNode as ProtoFileNode,
  Node as ProtoNode,
  SymlinkNode as ProtoSymlinkNode
} from "../gen/tvix/castore/protos/castore_pb.js"
import type {
  NARInfo as ProtoNarInfo,
  NARInfo_CA as ProtoCA,
  NARInfo_Signature as ProtoSignature,
  PathInfo as ProtoPathInfo,
  StorePath as ProtoStorePath
} from "../gen/tvix/store/protos/pathinfo_pb.js"
import { NARInfo_CA_Hash } from "../gen/tvix/store/protos/pathinfo_pb.js"
import type * as CAHash from "@nixfx/nix-compat/CAHash"
import type * as NixHash from "@nixfx/nix-compat/NixHash"

const VARINT = 0
const LEN = 2

/** Field key of `nixfx_reference_nodes` (1001, length-delimited), as a varint: 8010. */
const REFERENCE_NODES_KEY = (1001 << 3) | LEN

const DRV = ".drv"

/** The content-address kinds of `NARInfo.CA.Hash`, by wire value. */
export const caKinds: ReadonlyArray<readonly [NARInfo_CA_Hash, "Nar" | "Flat" | "Text", NixHash.Algorithm]> = [
  [NARInfo_CA_Hash.NAR_SHA256, "Nar", "sha256"],
  [NARInfo_CA_Hash.NAR_SHA1, "Nar", "sha1"],
  [NARInfo_CA_Hash.NAR_SHA512, "Nar", "sha512"],
  [NARInfo_CA_Hash.NAR_MD5, "Nar", "md5"],
  [NARInfo_CA_Hash.TEXT_SHA256, "Text", "sha256"],
  [NARInfo_CA_Hash.FLAT_SHA1, "Flat", "sha1"],
  [NARInfo_CA_Hash.FLAT_MD5, "Flat", "md5"],
  [NARInfo_CA_Hash.FLAT_SHA256, "Flat", "sha256"],
  [NARInfo_CA_Hash.FLAT_SHA512, "Flat", "sha512"]
]

/** The wire value of a content address's kind. */
export const caWireType = (ca: CAHash.CAHash): NARInfo_CA_Hash =>
  caKinds.find(([, tag, algorithm]) => tag === ca._tag && algorithm === ca.hash.algorithm)![0]

// ---------------------------------------------------------------------------
// encoding
// ---------------------------------------------------------------------------

/** The number of bytes of the varint form of a non-negative safe integer. */
export const varintLength = (n: number): number => {
  let len = 1
  while (n >= 0x80) {
    n = Math.floor(n / 128)
    len++
  }
  return len
}

/** Writes a non-negative safe integer as a varint; returns the position after it. */
export const writeVarint = (out: Uint8Array, pos: number, n: number): number => {
  while (n >= 0x80) {
    out[pos++] = (n % 128) | 0x80
    n = Math.floor(n / 128)
  }
  out[pos++] = n
  return pos
}

/** Size of a length-delimited field with a one-byte key and a payload of `n` bytes. */
const lenField = (n: number): number => 1 + varintLength(n) + n

const utf8Encoder = new TextEncoder()

/** UTF-8 length of `s` (its `length` when ASCII, as store path basenames always are). */
const utf8Length = (s: string): number => {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, "utf8")
  }
  return s.length
}

const writeString = (out: Uint8Array, pos: number, s: string, byteLength: number): number => {
  if (byteLength === s.length) {
    for (let i = 0; i < s.length; i++) out[pos + i] = s.charCodeAt(i)
    return pos + byteLength
  }
  return pos + utf8Encoder.encodeInto(s, out.subarray(pos, pos + byteLength)).written
}

const writeBytesField = (out: Uint8Array, pos: number, key: number, bytes: Uint8Array): number => {
  out[pos++] = key
  pos = writeVarint(out, pos, bytes.length)
  out.set(bytes, pos)
  return pos + bytes.length
}

const writeStringField = (out: Uint8Array, pos: number, key: number, s: string, byteLength: number): number => {
  out[pos++] = key
  pos = writeVarint(out, pos, byteLength)
  return writeString(out, pos, s, byteLength)
}

/** A node with its name, measured: the sizes the writer needs, computed once. */
interface SizedNode {
  readonly node: Node.Node
  readonly name: string
  readonly nameLength: number
  /** UTF-8 of a symlink's target. */
  readonly target: Uint8Array | undefined
  /** Size of the DirectoryNode/FileNode/SymlinkNode message. */
  readonly inner: number
}

const sizeNode = (node: Node.Node, name: string): SizedNode => {
  const nameLength = utf8Length(name)
  let inner = nameLength > 0 ? lenField(nameLength) : 0
  let target: Uint8Array | undefined
  if (node._tag === "Symlink") {
    target = utf8Encoder.encode(node.target)
    if (target.length > 0) inner += lenField(target.length)
  } else {
    if (node.digest.length > 0) inner += lenField(node.digest.length)
    if (node.size !== 0) inner += 1 + varintLength(node.size)
    if (node._tag === "File" && node.executable) inner += 2
  }
  return { node, name, nameLength, target, inner }
}

/** Writes the `Node` message's payload (the oneof field holding the typed node). */
const writeNode = (out: Uint8Array, pos: number, n: SizedNode): number => {
  const node = n.node
  out[pos++] = node._tag === "Directory" ? 0x0a : node._tag === "File" ? 0x12 : 0x1a
  pos = writeVarint(out, pos, n.inner)
  if (n.nameLength > 0) pos = writeStringField(out, pos, 0x0a, n.name, n.nameLength)
  if (node._tag === "Symlink") {
    if (n.target!.length > 0) pos = writeBytesField(out, pos, 0x12, n.target!)
    return pos
  }
  if (node.digest.length > 0) pos = writeBytesField(out, pos, 0x12, node.digest)
  if (node.size !== 0) {
    out[pos++] = 0x18
    pos = writeVarint(out, pos, node.size)
  }
  if (node._tag === "File" && node.executable) {
    out[pos++] = 0x20
    out[pos++] = 1
  }
  return pos
}

/**
 * The bytes of the `PathInfo` message of a strict PathInfo, identical to
 * `toBinary(PathInfoSchema, pathInfoToProto(pathInfo))`.
 */
export const encodePathInfo = (pathInfo: PathInfo.PathInfo): Uint8Array => {
  // sizes first, nested messages innermost first
  const root = sizeNode(pathInfo.node, StorePath.toBasename(pathInfo.storePath))
  const rootSize = lenField(root.inner)
  const refs = pathInfo.references
  const names: Array<string> = new Array(refs.length)
  const referenceNodes: Array<SizedNode> = []
  let narinfoSize = 0
  for (let i = 0; i < refs.length; i++) {
    const name = StorePath.toBasename(refs[i].storePath)
    names[i] = name
    narinfoSize += lenField(utf8Length(name))
    const node = refs[i].node
    if (Option.isSome(node)) referenceNodes.push(sizeNode(node.value, name))
  }
  if (pathInfo.narSize !== 0) narinfoSize += 1 + varintLength(pathInfo.narSize)
  if (pathInfo.narSha256.length > 0) narinfoSize += lenField(pathInfo.narSha256.length)
  const signatureSizes: Array<number> = new Array(pathInfo.signatures.length)
  const keyNameLengths: Array<number> = new Array(pathInfo.signatures.length)
  for (let i = 0; i < pathInfo.signatures.length; i++) {
    const s = pathInfo.signatures[i]
    keyNameLengths[i] = utf8Length(s.keyName)
    signatureSizes[i] = (keyNameLengths[i] > 0 ? lenField(keyNameLengths[i]) : 0) +
      (s.bytes.length > 0 ? lenField(s.bytes.length) : 0)
    narinfoSize += lenField(signatureSizes[i])
  }
  let deriverName = ""
  let deriverNameLength = 0
  let deriverSize = 0
  if (Option.isSome(pathInfo.deriver)) {
    const d = pathInfo.deriver.value
    deriverName = d.name.slice(0, -DRV.length)
    deriverNameLength = utf8Length(deriverName)
    deriverSize = (deriverNameLength > 0 ? lenField(deriverNameLength) : 0) + (d.digest.length > 0 ? lenField(d.digest.length) : 0)
    narinfoSize += lenField(deriverSize)
  }
  let caType = 0
  let caSize = 0
  if (Option.isSome(pathInfo.ca)) {
    const ca = pathInfo.ca.value
    caType = caWireType(ca)
    caSize = (caType !== 0 ? 1 + varintLength(caType) : 0) + (ca.hash.digest.length > 0 ? lenField(ca.hash.digest.length) : 0)
    narinfoSize += lenField(caSize)
  }
  let total = lenField(rootSize) + lenField(narinfoSize)
  for (const r of refs) total += lenField(r.storePath.digest.length)
  for (const n of referenceNodes) total += 2 + varintLength(lenField(n.inner)) + lenField(n.inner)

  const out = new Uint8Array(total)
  let pos = 0
  // node = 1
  out[pos++] = 0x0a
  pos = writeVarint(out, pos, rootSize)
  pos = writeNode(out, pos, root)
  // references = 2
  for (const r of refs) pos = writeBytesField(out, pos, 0x12, r.storePath.digest)
  // narinfo = 3
  out[pos++] = 0x1a
  pos = writeVarint(out, pos, narinfoSize)
  if (pathInfo.narSize !== 0) {
    out[pos++] = 0x08
    pos = writeVarint(out, pos, pathInfo.narSize)
  }
  if (pathInfo.narSha256.length > 0) pos = writeBytesField(out, pos, 0x12, pathInfo.narSha256)
  for (let i = 0; i < pathInfo.signatures.length; i++) {
    const s = pathInfo.signatures[i]
    out[pos++] = 0x1a
    pos = writeVarint(out, pos, signatureSizes[i])
    if (keyNameLengths[i] > 0) pos = writeStringField(out, pos, 0x0a, s.keyName, keyNameLengths[i])
    if (s.bytes.length > 0) pos = writeBytesField(out, pos, 0x12, s.bytes)
  }
  for (const name of names) pos = writeStringField(out, pos, 0x22, name, utf8Length(name))
  if (Option.isSome(pathInfo.deriver)) {
    const d = pathInfo.deriver.value
    out[pos++] = 0x2a
    pos = writeVarint(out, pos, deriverSize)
    if (deriverNameLength > 0) pos = writeStringField(out, pos, 0x0a, deriverName, deriverNameLength)
    if (d.digest.length > 0) pos = writeBytesField(out, pos, 0x12, d.digest)
  }
  if (Option.isSome(pathInfo.ca)) {
    const digest = pathInfo.ca.value.hash.digest
    out[pos++] = 0x32
    pos = writeVarint(out, pos, caSize)
    if (caType !== 0) {
      out[pos++] = 0x08
      pos = writeVarint(out, pos, caType)
    }
    if (digest.length > 0) pos = writeBytesField(out, pos, 0x12, digest)
  }
  // nixfx_reference_nodes = 1001
  for (const n of referenceNodes) {
    pos = writeVarint(out, pos, REFERENCE_NODES_KEY)
    pos = writeVarint(out, pos, lenField(n.inner))
    pos = writeNode(out, pos, n)
  }
  if (pos !== total) throw new Error(`encodePathInfo: wrote ${pos} of ${total} bytes`)
  return out
}

/** The bytes of `GetPathInfoRequest { by_output_hash: digest }`. */
export const encodeGetRequest = (digest: Uint8Array): Uint8Array => {
  const out = new Uint8Array(lenField(digest.length))
  writeBytesField(out, 0, 0x0a, digest)
  return out
}

// ---------------------------------------------------------------------------
// decoding
// ---------------------------------------------------------------------------

/** Thrown inside the decoder for a message it leaves to protobuf-es. */
class Unusual {}
const unusual = new Unusual()

const EMPTY: Uint8Array = new Uint8Array(0)

/** Reads a field key; the unusual ones (five bytes, field 0, wire types 6 and 7) are left to protobuf-es. */
const readKey = (r: BinaryReader): number => {
  const start = r.pos
  const key = r.uint32()
  if (r.pos - start > 4 || key < 8 || (key & 7) > 5) throw unusual
  return key
}

/** Reads a nested message's length; returns where it ends. */
const readEnd = (r: BinaryReader, end: number): number => {
  const len = r.uint32()
  const nestedEnd = r.pos + len
  if (nestedEnd > end) throw unusual
  return nestedEnd
}

const expect = (key: number, wire: number): void => {
  if ((key & 7) !== wire) throw unusual
}

const done = (r: BinaryReader, end: number): void => {
  if (r.pos !== end) throw unusual
}

const skip = (r: BinaryReader, key: number, end: number): void => {
  r.skip(key & 7, key >>> 3)
  if (r.pos > end) throw unusual
}

const readNodeFields = (r: BinaryReader, end: number, kind: 1 | 2 | 3) => {
  let name = EMPTY
  let digest = EMPTY
  let size = 0n
  let executable = false
  while (r.pos < end) {
    const key = readKey(r)
    switch (key >>> 3) {
      case 1:
        expect(key, LEN)
        name = r.bytes()
        break
      case 2:
        expect(key, LEN)
        digest = r.bytes()
        break
      case 3:
        if (kind === 3) {
          skip(r, key, end)
          break
        }
        expect(key, VARINT)
        size = r.uint64() as bigint
        break
      case 4:
        if (kind !== 2) {
          skip(r, key, end)
          break
        }
        expect(key, VARINT)
        executable = r.bool()
        break
      default:
        skip(r, key, end)
    }
  }
  done(r, end)
  switch (kind) {
    case 1:
      return { case: "directory" as const, value: { $typeName: "tvix.castore.v1.DirectoryNode", name, digest, size } satisfies ProtoDirectoryNode }
    case 2:
      return {
        case: "file" as const,
        value: { $typeName: "tvix.castore.v1.FileNode", name, digest, size, executable } satisfies ProtoFileNode
      }
    case 3:
      return { case: "symlink" as const, value: { $typeName: "tvix.castore.v1.SymlinkNode", name, target: digest } satisfies ProtoSymlinkNode }
  }
}

const readNode = (r: BinaryReader, end: number): ProtoNode => {
  let node: ProtoNode["node"] = { case: undefined }
  while (r.pos < end) {
    const key = readKey(r)
    const field = key >>> 3
    if (field === 1 || field === 2 || field === 3) {
      expect(key, LEN)
      // a second node field: protobuf merges or replaces; leave it to protobuf-es
      if (node.case !== undefined) throw unusual
      node = readNodeFields(r, readEnd(r, end), field)
    } else {
      skip(r, key, end)
    }
  }
  done(r, end)
  return { $typeName: "tvix.castore.v1.Node", node }
}

/**
 * Reads a message of a string or varint field 1 and a bytes field 2 — the
 * shape of `NARInfo.Signature` (name, data), `StorePath` (name, digest) and
 * `NARInfo.CA` (type, digest).
 */
const readPair = <F extends string | number>(r: BinaryReader, end: number, first: F): { first: F; bytes: Uint8Array } => {
  let bytes = EMPTY
  while (r.pos < end) {
    const key = readKey(r)
    switch (key >>> 3) {
      case 1:
        expect(key, typeof first === "string" ? LEN : VARINT)
        first = (typeof first === "string" ? r.string(true) : r.int32()) as F
        break
      case 2:
        expect(key, LEN)
        bytes = r.bytes()
        break
      default:
        skip(r, key, end)
    }
  }
  done(r, end)
  return { first, bytes }
}

const readSignature = (r: BinaryReader, end: number): ProtoSignature => {
  const { bytes, first } = readPair(r, end, "")
  return { $typeName: "tvix.store.v1.NARInfo.Signature", name: first, data: bytes }
}

const readStorePath = (r: BinaryReader, end: number): ProtoStorePath => {
  const { bytes, first } = readPair(r, end, "")
  return { $typeName: "tvix.store.v1.StorePath", name: first, digest: bytes }
}

const readCA = (r: BinaryReader, end: number): ProtoCA => {
  const { bytes, first } = readPair(r, end, 0)
  return { $typeName: "tvix.store.v1.NARInfo.CA", type: first, digest: bytes }
}

const readNarInfo = (r: BinaryReader, end: number): ProtoNarInfo => {
  let narSize = 0n
  let narSha256 = EMPTY
  const signatures: Array<ProtoSignature> = []
  const referenceNames: Array<string> = []
  let deriver: ProtoStorePath | undefined
  let ca: ProtoCA | undefined
  while (r.pos < end) {
    const key = readKey(r)
    switch (key >>> 3) {
      case 1:
        expect(key, VARINT)
        narSize = r.uint64() as bigint
        break
      case 2:
        expect(key, LEN)
        narSha256 = r.bytes()
        break
      case 3:
        expect(key, LEN)
        signatures.push(readSignature(r, readEnd(r, end)))
        break
      case 4:
        expect(key, LEN)
        referenceNames.push(r.string(true))
        break
      case 5:
        expect(key, LEN)
        if (deriver !== undefined) throw unusual
        deriver = readStorePath(r, readEnd(r, end))
        break
      case 6:
        expect(key, LEN)
        if (ca !== undefined) throw unusual
        ca = readCA(r, readEnd(r, end))
        break
      default:
        skip(r, key, end)
    }
  }
  done(r, end)
  return { $typeName: "tvix.store.v1.NARInfo", narSize, narSha256, signatures, referenceNames, deriver, ca }
}

/**
 * The `PathInfo` message in `bytes`, as protobuf-es's `fromBinary` would
 * give it (the fields `pathInfoFromProto` reads); `undefined` when the
 * message is of an unusual shape and protobuf-es should decode it.
 */
export const decodePathInfo = (bytes: Uint8Array): ProtoPathInfo | undefined => {
  try {
    const r = new BinaryReader(bytes)
    const end = bytes.length
    let node: ProtoNode | undefined
    const references: Array<Uint8Array> = []
    let narinfo: ProtoNarInfo | undefined
    const nixfxReferenceNodes: Array<ProtoNode> = []
    while (r.pos < end) {
      const key = readKey(r)
      switch (key >>> 3) {
        case 1:
          expect(key, LEN)
          if (node !== undefined) throw unusual
          node = readNode(r, readEnd(r, end))
          break
        case 2:
          expect(key, LEN)
          references.push(r.bytes())
          break
        case 3:
          expect(key, LEN)
          if (narinfo !== undefined) throw unusual
          narinfo = readNarInfo(r, readEnd(r, end))
          break
        case 1001:
          expect(key, LEN)
          nixfxReferenceNodes.push(readNode(r, readEnd(r, end)))
          break
        default:
          skip(r, key, end)
      }
    }
    done(r, end)
    return { $typeName: "tvix.store.v1.PathInfo", node, references, narinfo, nixfxReferenceNodes }
  } catch {
    return undefined
  }
}

/** The digest of a `GetPathInfoRequest` of the usual shape (by_output_hash alone); else `undefined`. */
export const decodeGetRequest = (bytes: Uint8Array): Uint8Array | undefined => {
  // 0x0a <one-byte length> <digest>: what every encoder writes for a 20-byte digest
  if (bytes.length >= 2 && bytes[0] === 0x0a && bytes[1] < 0x80 && bytes.length === 2 + bytes[1]) return bytes.subarray(2)
  return undefined
}
