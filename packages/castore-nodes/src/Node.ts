/**
 * castore nodes: what a name in a Directory (or the root of a store path) points at.
 *
 * - `DirectoryNode`: the digest of a Directory message and its recursive size.
 * - `FileNode`: the BLAKE3 digest of the contents, their length, the executable bit.
 * - `SymlinkNode`: the target.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import * as Equal from "effect/Equal"
import * as Hash from "effect/Hash"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as B3Digest from "./B3Digest.js"
import {
  KEY_1_LEN,
  KEY_2_LEN,
  KEY_3_LEN,
  KEY_3_VARINT,
  KEY_4_VARINT,
  Malformed,
  Reader,
  varintLength,
  WIRE_LEN,
  WIRE_VARINT,
  wireTypeName,
  writeVarint
} from "./internal/proto.js"
import { decodeUtf8, show, showBytes, utf8Length, writeUtf8 } from "./internal/utf8.js"
import * as PathComponent from "./PathComponent.js"
import * as SymlinkTarget from "./SymlinkTarget.js"

const checkDigest = (what: string, digest: Uint8Array): void => {
  if (!(digest instanceof Uint8Array) || digest.length !== B3Digest.LENGTH) {
    throw new RangeError(
      `${what}.digest: digest must be ${B3Digest.LENGTH} bytes, got ${
        digest instanceof Uint8Array ? digest.length : typeof digest
      }`
    )
  }
}

const checkSize = (what: string, size: number): void => {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(`${what}.size: size must be a non-negative safe integer, got ${size}`)
  }
}

/**
 * A directory: the digest of its Directory message and its size (the number of
 * entries in it and, recursively, in all its subdirectories).
 *
 * The constructor throws a `RangeError` for a digest that is not 32 bytes or a
 * size that is not a non-negative safe integer (programming errors: decoders
 * validate before constructing).
 *
 * @since 0.1.0
 */
export class DirectoryNode extends Data.TaggedClass("Directory")<{
  readonly digest: B3Digest.B3Digest
  readonly size: number
}> {
  constructor(args: { readonly digest: B3Digest.B3Digest; readonly size: number }) {
    super(args)
    checkDigest("DirectoryNode", args.digest)
    checkSize("DirectoryNode", args.size)
  }
  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof DirectoryNode && this.size === that.size && B3Digest.equals(this.digest, that.digest)
  }
  [Hash.symbol](): number {
    return Hash.combine(B3Digest.hashCode(this.digest))(Hash.number(this.size))
  }
}

/**
 * A regular file: BLAKE3 digest of the contents, their length in bytes, and the
 * executable bit. The constructor checks like `DirectoryNode`'s.
 *
 * @since 0.1.0
 */
export class FileNode extends Data.TaggedClass("File")<{
  readonly digest: B3Digest.B3Digest
  readonly size: number
  readonly executable: boolean
}> {
  constructor(args: { readonly digest: B3Digest.B3Digest; readonly size: number; readonly executable: boolean }) {
    super(args)
    checkDigest("FileNode", args.digest)
    checkSize("FileNode", args.size)
  }
  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof FileNode && this.size === that.size && this.executable === that.executable &&
      B3Digest.equals(this.digest, that.digest)
  }
  [Hash.symbol](): number {
    return Hash.combine(B3Digest.hashCode(this.digest))(Hash.number(this.size)) ^ (this.executable ? 1 : 0)
  }
}

/**
 * A symbolic link. The constructor throws a `RangeError` for an invalid target.
 *
 * @since 0.1.0
 */
export class SymlinkNode extends Data.TaggedClass("Symlink")<{
  readonly target: SymlinkTarget.SymlinkTarget
}> {
  constructor(args: { readonly target: SymlinkTarget.SymlinkTarget }) {
    super(args)
    const invalid = SymlinkTarget.validate(args.target)
    if (Either.isLeft(invalid)) throw new RangeError(`SymlinkNode.target: ${invalid.left.message}`)
  }
  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof SymlinkNode && this.target === that.target
  }
  [Hash.symbol](): number {
    return Hash.string(this.target)
  }
}

/**
 * @since 0.1.0
 */
export type Node = DirectoryNode | FileNode | SymlinkNode

/**
 * @since 0.1.0
 */
export const isNode = (u: unknown): u is Node =>
  u instanceof DirectoryNode || u instanceof FileNode || u instanceof SymlinkNode

/**
 * Structural equality (digests compared by bytes). `Equal.equals` agrees.
 *
 * @since 0.1.0
 */
export const equals = (a: Node, b: Node): boolean => {
  switch (a._tag) {
    case "Directory":
      return b._tag === "Directory" && a.size === b.size && B3Digest.equals(a.digest, b.digest)
    case "File":
      return b._tag === "File" && a.size === b.size && a.executable === b.executable &&
        B3Digest.equals(a.digest, b.digest)
    case "Symlink":
      return b._tag === "Symlink" && a.target === b.target
  }
}

/**
 * A `Node` in the form the CLI prints and accepts. Digests are `"b3:"` followed by
 * standard base64.
 *
 * @since 0.1.0
 */
export type NodeJson =
  | { readonly type: "directory"; readonly digest: string; readonly size: number }
  | { readonly type: "file"; readonly digest: string; readonly size: number; readonly executable: boolean }
  | { readonly type: "symlink"; readonly target: string }

const B3_PREFIX = "b3:"

/**
 * @since 0.1.0
 */
export const toJson = (node: Node): NodeJson => {
  switch (node._tag) {
    case "Directory":
      return { type: "directory", digest: B3_PREFIX + B3Digest.toBase64(node.digest), size: node.size }
    case "File":
      return {
        type: "file",
        digest: B3_PREFIX + B3Digest.toBase64(node.digest),
        size: node.size,
        executable: node.executable
      }
    case "Symlink":
      return { type: "symlink", target: node.target }
  }
}

const B3DigestFromJson = Schema.transformOrFail(Schema.String, B3Digest.B3Digest, {
  strict: true,
  decode: (s, _, ast) => {
    const parsed = s.startsWith(B3_PREFIX) ? B3Digest.fromBase64(s.slice(B3_PREFIX.length)) : undefined
    return parsed !== undefined && Either.isRight(parsed)
      ? ParseResult.succeed(parsed.right)
      : ParseResult.fail(
        new ParseResult.Type(ast, s, `expected "b3:" followed by 44 base64 characters, got ${show(s)}`)
      )
  },
  encode: (d) => ParseResult.succeed(B3_PREFIX + B3Digest.toBase64(d as B3Digest.B3Digest))
})

const Size = Schema.Number.pipe(
  Schema.filter((n) => (Number.isSafeInteger(n) && n >= 0) || `size must be a non-negative safe integer, got ${n}`)
)

/**
 * `NodeJson` ↔ `Node`, validating every field.
 *
 * @since 0.1.0
 */
export const NodeFromJson: Schema.Schema<Node, NodeJson> = Schema.Union(
  Schema.transform(
    Schema.Struct({ type: Schema.Literal("directory"), digest: B3DigestFromJson, size: Size }),
    Schema.declare((u): u is DirectoryNode => u instanceof DirectoryNode),
    {
      strict: true,
      decode: ({ digest, size }) => new DirectoryNode({ digest, size }),
      encode: (n) => ({ type: "directory" as const, digest: n.digest, size: n.size })
    }
  ),
  Schema.transform(
    Schema.Struct({ type: Schema.Literal("file"), digest: B3DigestFromJson, size: Size, executable: Schema.Boolean }),
    Schema.declare((u): u is FileNode => u instanceof FileNode),
    {
      strict: true,
      decode: ({ digest, executable, size }) => new FileNode({ digest, size, executable }),
      encode: (n) => ({ type: "file" as const, digest: n.digest, size: n.size, executable: n.executable })
    }
  ),
  Schema.transform(
    Schema.Struct({ type: Schema.Literal("symlink"), target: SymlinkTarget.SymlinkTarget }),
    Schema.declare((u): u is SymlinkNode => u instanceof SymlinkNode),
    {
      strict: true,
      decode: ({ target }) => new SymlinkNode({ target }),
      encode: (n) => ({ type: "symlink" as const, target: n.target })
    }
  )
).annotations({ identifier: "NodeFromJson" })

// ---------------------------------------------------------------------------
// protobuf (tvix.castore.v1 / snix.castore.v1; identical on the wire)
//
//   message DirectoryNode { bytes name = 1; bytes digest = 2; uint64 size = 3; }
//   message FileNode      { bytes name = 1; bytes digest = 2; uint64 size = 3; bool executable = 4; }
//   message SymlinkNode   { bytes name = 1; bytes target = 2; }
//   message Node { oneof node { DirectoryNode directory = 1; FileNode file = 2; SymlinkNode symlink = 3; } }
// ---------------------------------------------------------------------------

/**
 * Why a node message was rejected.
 *
 * @since 0.1.0
 */
export type InvalidNodeReason =
  | "MalformedProtobuf"
  | "NoNodeSet"
  | "InvalidName"
  | "InvalidDigest"
  | "InvalidSize"
  | "InvalidSymlinkTarget"

/**
 * A `Node` message that is not valid protobuf or does not describe a valid node.
 * `field` is the path of the offending field, e.g. `file.digest`.
 *
 * @since 0.1.0
 */
export class InvalidNodeMessage extends Schema.TaggedError<InvalidNodeMessage>()("InvalidNodeMessage", {
  field: Schema.String,
  reason: Schema.Literal("MalformedProtobuf", "NoNodeSet", "InvalidName", "InvalidDigest", "InvalidSize", "InvalidSymlinkTarget"),
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.field}: ${this.detail}`
  }
}

/** The three node kinds in the order of their field numbers (1, 2, 3). @internal */
export type Kind = "Directory" | "File" | "Symlink"

/** The fields of one DirectoryNode/FileNode/SymlinkNode message, as offsets into the input. @internal */
export interface RawNode {
  nameStart: number
  nameEnd: number
  /** digest (Directory, File) or target (Symlink) */
  bytesStart: number
  bytesEnd: number
  size: number
  executable: boolean
  /**
   * Whether the body was in canonical form: known fields only, each at most once,
   * in field-number order, defaults omitted, single-byte keys, minimal varints,
   * `executable` written as 1. Then re-encoding would reproduce the input bytes.
   */
  canonical: boolean
}

/** @internal */
export const emptyRawNode = (): RawNode => ({
  nameStart: 0,
  nameEnd: 0,
  bytesStart: 0,
  bytesEnd: 0,
  size: 0,
  executable: false,
  canonical: true
})

const rethrowIn = (e: unknown, field: string): never => {
  throw e instanceof Malformed && e.field === undefined ? new Malformed(e.detail, field) : e
}

/**
 * Parses the body of a DirectoryNode/FileNode/SymlinkNode message in
 * `buf[start, end)`. Unknown fields are skipped; a repeated singular field
 * keeps its last value (protobuf semantics). `into` lets a repeated oneof member
 * merge into the earlier one, as protobuf requires (and lets the caller see the
 * fields read before an error).
 *
 * @internal
 */
export const parseBody = (buf: Uint8Array, start: number, end: number, kind: Kind, into?: RawNode): RawNode => {
  const raw: RawNode = into ?? emptyRawNode()
  const r = new Reader(buf, start, end)
  let canonical = raw.canonical && end > start
  let lastField = 0
  while (!r.done) {
    const keyStart = r.pos
    const key = r.tag()
    const field = key >>> 3
    const wire = key & 7
    if (r.pos - keyStart !== 1 || field <= lastField) canonical = false
    lastField = field
    if (field === 1 || field === 2) {
      const name = field === 1 ? "name" : kind === "Symlink" ? "target" : "digest"
      if (wire !== WIRE_LEN) throw new Malformed(`expected length-delimited, got ${wireTypeName(wire)}`, name)
      const lengthStart = r.pos
      let s = 0
      try {
        s = r.lengthDelimited()
      } catch (e) {
        rethrowIn(e, name)
      }
      const length = r.pos - s
      if (length === 0 || s - lengthStart !== varintLength(length)) canonical = false
      if (field === 1) {
        raw.nameStart = s
        raw.nameEnd = r.pos
      } else {
        raw.bytesStart = s
        raw.bytesEnd = r.pos
      }
    } else if ((field === 3 && kind !== "Symlink") || (field === 4 && kind === "File")) {
      const name = field === 3 ? "size" : "executable"
      if (wire !== WIRE_VARINT) throw new Malformed(`expected varint, got ${wireTypeName(wire)}`, name)
      const valueStart = r.pos
      let v = 0
      try {
        v = r.varint()
      } catch (e) {
        rethrowIn(e, name)
      }
      if (field === 3) {
        raw.size = v
        if (v === 0 || r.pos - valueStart !== varintLength(v)) canonical = false
      } else {
        raw.executable = v !== 0
        if (v !== 1 || r.pos - valueStart !== 1) canonical = false
      }
    } else {
      canonical = false
      r.skip(key)
    }
  }
  raw.canonical = canonical
  return raw
}

/** A validation failure of a parsed node: the sub-field, the reason and the text. @internal */
export interface NodeProblem {
  readonly field: "name" | "digest" | "size" | "target"
  readonly reason: Exclude<InvalidNodeReason, "MalformedProtobuf" | "NoNodeSet">
  readonly detail: string
}

/**
 * Turns a parsed node (minus its name) into a `Node`, or says what is wrong.
 *
 * @internal
 */
export const nodeFromRaw = (
  buf: Uint8Array,
  kind: Kind,
  raw: RawNode,
  digests?: { readonly store: Uint8Array; next: number }
): Node | NodeProblem => {
  if (kind === "Symlink") {
    const target = SymlinkTarget.fromUtf8Range(buf, raw.bytesStart, raw.bytesEnd)
    if (Either.isLeft(target)) {
      return { field: "target", reason: "InvalidSymlinkTarget", detail: target.left.message }
    }
    return new SymlinkNode({ target: target.right })
  }
  const digestLength = raw.bytesEnd - raw.bytesStart
  if (digestLength !== B3Digest.LENGTH) {
    return { field: "digest", reason: "InvalidDigest", detail: `digest must be ${B3Digest.LENGTH} bytes, got ${digestLength}` }
  }
  if (!Number.isSafeInteger(raw.size)) {
    return {
      field: "size",
      reason: "InvalidSize",
      detail: `size ${raw.size >= 2 ** 64 ? "≥ 2^64" : raw.size} exceeds 2^53-1 (the largest size nixfx represents)`
    }
  }
  // Copied: a digest must not alias (and keep alive) the caller's input buffer.
  // Directory.decode passes one store for all digests of a message (one allocation
  // instead of one per entry).
  let digest: B3Digest.B3Digest
  if (digests !== undefined) {
    const at = digests.next
    digests.store.set(buf.subarray(raw.bytesStart, raw.bytesEnd), at)
    digests.next = at + B3Digest.LENGTH
    digest = digests.store.subarray(at, at + B3Digest.LENGTH) as B3Digest.B3Digest
  } else {
    digest = buf.slice(raw.bytesStart, raw.bytesEnd) as B3Digest.B3Digest
  }
  return kind === "Directory"
    ? new DirectoryNode({ digest, size: raw.size })
    : new FileNode({ digest, size: raw.size, executable: raw.executable })
}

/** Length of a node message body without its name field. @internal */
export const bodyLengthWithoutName = (node: Node, targetLength: number): number => {
  switch (node._tag) {
    case "Directory":
      return 2 + B3Digest.LENGTH + (node.size > 0 ? 1 + varintLength(node.size) : 0)
    case "File":
      return 2 + B3Digest.LENGTH + (node.size > 0 ? 1 + varintLength(node.size) : 0) + (node.executable ? 2 : 0)
    case "Symlink":
      return 1 + varintLength(targetLength) + targetLength
  }
}

/** Writes a node message body after its name field; returns the position after it. @internal */
export const writeBodyWithoutName = (out: Uint8Array, pos: number, node: Node, targetLength: number): number => {
  switch (node._tag) {
    case "Directory":
    case "File": {
      out[pos++] = KEY_2_LEN
      out[pos++] = B3Digest.LENGTH
      out.set(node.digest, pos)
      pos += B3Digest.LENGTH
      if (node.size > 0) {
        out[pos++] = KEY_3_VARINT
        pos = writeVarint(out, pos, node.size)
      }
      if (node._tag === "File" && node.executable) {
        out[pos++] = KEY_4_VARINT
        out[pos++] = 1
      }
      return pos
    }
    case "Symlink":
      out[pos++] = KEY_2_LEN
      pos = writeVarint(out, pos, targetLength)
      return writeUtf8(node.target, out, pos)
  }
}

const oneofKey = (node: Node): number =>
  node._tag === "Directory" ? KEY_1_LEN : node._tag === "File" ? KEY_2_LEN : KEY_3_LEN

/**
 * The `Node` message for `node` under `name` (in a PathInfo the root node's name
 * is the store path basename). An empty name is omitted, as protobuf does for
 * defaults, giving an anonymous node.
 *
 * @since 0.1.0
 */
export const encodeNamed = (name: Uint8Array | string, node: Node): Uint8Array => {
  const nameLength = typeof name === "string" ? utf8Length(name) : name.length
  if (nameLength < 0) throw new RangeError(`encodeNamed: name ${show(name as string)} is not well-formed Unicode`)
  const targetLength = node._tag === "Symlink" ? utf8Length(node.target) : 0
  const body = (nameLength > 0 ? 1 + varintLength(nameLength) + nameLength : 0) +
    bodyLengthWithoutName(node, targetLength)
  const out = new Uint8Array(1 + varintLength(body) + body)
  out[0] = oneofKey(node)
  let pos = writeVarint(out, 1, body)
  if (nameLength > 0) {
    out[pos++] = KEY_1_LEN
    pos = writeVarint(out, pos, nameLength)
    if (typeof name === "string") {
      pos = writeUtf8(name, out, pos)
    } else {
      out.set(name, pos)
      pos += nameLength
    }
  }
  writeBodyWithoutName(out, pos, node, targetLength)
  return out
}

const KINDS: ReadonlyArray<Kind> = ["Directory", "File", "Symlink"]
const KIND_FIELDS = ["directory", "file", "symlink"] as const

/**
 * Decodes a `Node` message. The name may be empty (an anonymous node); otherwise
 * it must be a valid `PathComponent`. When the oneof is set more than once the last
 * member wins, and repeats of the same member merge, as protobuf specifies.
 * Unknown fields are skipped.
 *
 * @since 0.1.0
 */
export const decodeNamed = (bytes: Uint8Array): Either.Either<{ name: string; node: Node }, InvalidNodeMessage> => {
  let kindIndex = -1
  let raw: RawNode | undefined
  let field = "node"
  try {
    const r = new Reader(bytes, 0, bytes.length)
    while (!r.done) {
      const key = r.tag()
      const fieldNumber = key >>> 3
      if (fieldNumber >= 1 && fieldNumber <= 3) {
        field = KIND_FIELDS[fieldNumber - 1]
        if ((key & 7) !== WIRE_LEN) {
          throw new Malformed(`expected length-delimited, got ${wireTypeName(key & 7)}`)
        }
        const start = r.lengthDelimited()
        const same = kindIndex === fieldNumber - 1
        kindIndex = fieldNumber - 1
        raw = parseBody(bytes, start, r.pos, KINDS[kindIndex], same ? raw : undefined)
        field = "node"
      } else {
        r.skip(key)
      }
    }
  } catch (e) {
    if (!(e instanceof Malformed)) throw e
    return Either.left(
      new InvalidNodeMessage({
        field: e.field === undefined ? field : `${field}.${e.field}`,
        reason: "MalformedProtobuf",
        detail: e.detail
      })
    )
  }
  if (raw === undefined) {
    return Either.left(new InvalidNodeMessage({ field: "node", reason: "NoNodeSet", detail: "no node set" }))
  }
  const prefix = KIND_FIELDS[kindIndex]
  let name = ""
  if (raw.nameEnd > raw.nameStart) {
    const decoded = PathComponent.fromUtf8Range(bytes, raw.nameStart, raw.nameEnd)
    if (Either.isLeft(decoded)) {
      return Either.left(
        new InvalidNodeMessage({ field: `${prefix}.name`, reason: "InvalidName", detail: decoded.left.message })
      )
    }
    name = decoded.right
  }
  const node = nodeFromRaw(bytes, KINDS[kindIndex], raw)
  if (!isNode(node)) {
    const where = name === "" ? "" : ` (entry ${show(name)})`
    return Either.left(
      new InvalidNodeMessage({ field: `${prefix}.${node.field}`, reason: node.reason, detail: node.detail + where })
    )
  }
  return Either.right({ name, node })
}

/** A name for error messages: the text when it is valid UTF-8, else a hex rendering. @internal */
export const nameForError = (bytes: Uint8Array, start: number, end: number): string =>
  decodeUtf8(bytes, start, end) ?? showBytes(bytes, start, end)
