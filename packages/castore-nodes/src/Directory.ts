/**
 * castore Directories: a list of named nodes, sorted by name and unique, addressed
 * by the BLAKE3 digest of their canonical `tvix.castore.v1.Directory` encoding.
 *
 * On the wire a Directory is three repeated fields, each sorted by name, with
 * names unique across the three:
 *
 *   message Directory {
 *     repeated DirectoryNode directories = 1;
 *     repeated FileNode files = 2;
 *     repeated SymlinkNode symlinks = 3;
 *   }
 *
 * Here a `Directory` holds one merged list of entries sorted by name (UTF-8 byte
 * order); encoding splits it into the three lists.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Equal from "effect/Equal"
import * as Hash from "effect/Hash"
import * as Inspectable from "effect/Inspectable"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as B3Digest from "./B3Digest.js"
import { KEY_1_LEN, KEY_2_LEN, KEY_3_LEN, Malformed, Reader, varintLength, WIRE_LEN, wireTypeName, writeVarint } from "./internal/proto.js"
import { compareBytes, compareUtf8, show, utf8Length, writeUtf8 } from "./internal/utf8.js"
import * as Node from "./Node.js"
import * as PathComponent from "./PathComponent.js"

/**
 * @since 0.1.0
 */
export interface DirectoryEntry {
  readonly name: PathComponent.PathComponent
  readonly node: Node.Node
}

/**
 * @since 0.1.0
 */
export type InvalidDirectoryReason =
  | "MalformedProtobuf"
  | "InvalidName"
  | "InvalidNode"
  | "InvalidDigest"
  | "InvalidSize"
  | "InvalidSymlinkTarget"
  | "Unsorted"
  | "DuplicateName"
  | "SizeOverflow"

/**
 * A Directory (message or entry list) that is not valid.
 *
 * - `field`: where, e.g. `files[2].digest` (wire lists) or `entries[3].name` (`make`).
 * - `entry`: the name of the entry concerned, when it is known.
 *
 * @since 0.1.0
 */
export class InvalidDirectory extends Schema.TaggedError<InvalidDirectory>()("InvalidDirectory", {
  field: Schema.String,
  entry: Schema.optional(Schema.String),
  reason: Schema.Literal(
    "MalformedProtobuf",
    "InvalidName",
    "InvalidNode",
    "InvalidDigest",
    "InvalidSize",
    "InvalidSymlinkTarget",
    "Unsorted",
    "DuplicateName",
    "SizeOverflow"
  ),
  detail: Schema.String
}) {
  override get message(): string {
    const entry = this.entry === undefined ? "" : show(this.entry)
    const suffix = entry === "" || this.detail.includes(entry) ? "" : ` (entry ${entry})`
    return `${this.field}: ${this.detail}${suffix}`
  }
}

const invalid = (
  field: string,
  entry: string | undefined,
  reason: InvalidDirectoryReason,
  detail: string
): Either.Either<never, InvalidDirectory> =>
  Either.left(new InvalidDirectory(entry === undefined ? { field, reason, detail } : { field, entry, reason, detail }))

// ---------------------------------------------------------------------------
// canonical encoding
// ---------------------------------------------------------------------------

const LIST_KEYS = [KEY_1_LEN, KEY_2_LEN, KEY_3_LEN] as const
const LIST_TAGS = ["Directory", "File", "Symlink"] as const
const LIST_NAMES = ["directories", "files", "symlinks"] as const

/**
 * The canonical encoding of valid, sorted entries: the three lists in field order,
 * each in name order, every field in number order, defaults omitted — what prost
 * (tvix/snix) emits and hashes.
 */
const encodeEntries = (entries: ReadonlyArray<DirectoryEntry>, knownNameLengths?: Int32Array): Uint8Array => {
  const n = entries.length
  if (n === 0) return new Uint8Array(0)
  const nameLengths = knownNameLengths ?? new Int32Array(n)
  const targetLengths = new Int32Array(n)
  const bodyLengths = new Int32Array(n)
  let total = 0
  for (let i = 0; i < n; i++) {
    const { name, node } = entries[i]
    const nameLength = knownNameLengths !== undefined ? knownNameLengths[i] : utf8Length(name)
    const targetLength = node._tag === "Symlink" ? utf8Length(node.target) : 0
    const body = 1 + varintLength(nameLength) + nameLength + Node.bodyLengthWithoutName(node, targetLength)
    nameLengths[i] = nameLength
    targetLengths[i] = targetLength
    bodyLengths[i] = body
    total += 1 + varintLength(body) + body
  }
  const out = new Uint8Array(total)
  let pos = 0
  for (let list = 0; list < 3; list++) {
    const tag = LIST_TAGS[list]
    const key = LIST_KEYS[list]
    for (let i = 0; i < n; i++) {
      const { name, node } = entries[i]
      if (node._tag !== tag) continue
      out[pos++] = key
      pos = writeVarint(out, pos, bodyLengths[i])
      out[pos++] = KEY_1_LEN
      pos = writeVarint(out, pos, nameLengths[i])
      pos = writeUtf8(name, out, pos)
      pos = Node.writeBodyWithoutName(out, pos, node, targetLengths[i])
    }
  }
  return out
}

// ---------------------------------------------------------------------------
// the strict type
// ---------------------------------------------------------------------------

/** Only this module constructs Directories: they are valid by construction. */
const constructorToken: unique symbol = Symbol("@nixfx/castore-nodes/Directory/constructor")

/**
 * A valid Directory. Construct with `make` or `decode`.
 *
 * `Equal.equals` on Directories compares digests.
 *
 * @since 0.1.0
 */
export class Directory implements Equal.Equal, Inspectable.Inspectable {
  /** The empty Directory (digest = BLAKE3 of zero bytes). */
  static readonly empty: Directory = new Directory(constructorToken, [], 0, new Uint8Array(0))

  /** Sorted by `PathComponent.compare`, names unique. */
  readonly entries: ReadonlyArray<DirectoryEntry>
  /** The number of entries plus the sizes of all child directories. */
  readonly size: number
  /** BLAKE3 of the canonical encoding. */
  readonly digest: B3Digest.B3Digest
  /** The canonical encoding (kept: it was needed for the digest and is needed to store or send). */
  readonly #encoded: Uint8Array

  /** @internal */
  constructor(token: typeof constructorToken, entries: ReadonlyArray<DirectoryEntry>, size: number, encoded: Uint8Array) {
    if (token !== constructorToken) throw new TypeError("use Directory.make or Directory.decode")
    this.entries = entries
    this.size = size
    this.#encoded = encoded
    this.digest = B3Digest.hash(encoded)
  }

  /** The node named `name`, found by binary search. */
  get(name: string): Option.Option<Node.Node> {
    const entries = this.entries
    let lo = 0
    let hi = entries.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const c = compareUtf8(entries[mid].name, name)
      if (c === 0) return Option.some(entries[mid].node)
      if (c < 0) lo = mid + 1
      else hi = mid - 1
    }
    return Option.none()
  }

  /** @internal */
  static encoded(dir: Directory): Uint8Array {
    return dir.#encoded
  }

  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof Directory && B3Digest.equals(this.digest, that.digest)
  }
  [Hash.symbol](): number {
    return B3Digest.hashCode(this.digest)
  }
  toJSON(): unknown {
    return {
      _id: "Directory",
      digest: B3Digest.toHex(this.digest),
      size: this.size,
      entries: this.entries.map(({ name, node }) => ({ name, ...Node.toJson(node) }))
    }
  }
  toString(): string {
    return Inspectable.format(this.toJSON())
  }
  [Inspectable.NodeInspectSymbol](): unknown {
    return this.toJSON()
  }
}

/**
 * The empty Directory, digest `af1349b9…3262`.
 *
 * @since 0.1.0
 */
export const empty: Directory = Directory.empty

/**
 * @since 0.1.0
 */
export const isDirectory = (u: unknown): u is Directory => u instanceof Directory

/**
 * Builds a Directory from entries that are already sorted by
 * `PathComponent.compare` and unique (they are not sorted for you: an
 * out-of-order entry is an error naming it). Names are re-checked, and the total
 * size must stay a safe integer.
 *
 * @since 0.1.0
 */
export const make = (entries: ReadonlyArray<DirectoryEntry>): Either.Either<Directory, InvalidDirectory> => {
  const n = entries.length
  if (n === 0) return Either.right(Directory.empty)
  let size = n
  let previous: string | undefined
  const nameLengths = new Int32Array(n)
  for (let i = 0; i < n; i++) {
    const { name, node } = entries[i]
    if (typeof name !== "string") {
      return invalid(`entries[${i}].name`, undefined, "InvalidName", `name must be a string, got ${typeof name}`)
    }
    const nameLength = utf8Length(name)
    nameLengths[i] = nameLength
    const reason = PathComponent.checkWithLength(name, nameLength)
    if (reason !== undefined) {
      const error = Either.flip(PathComponent.validate(name))
      if (Either.isRight(error)) return invalid(`entries[${i}].name`, error.right.component, "InvalidName", error.right.message)
    }
    if (previous !== undefined) {
      const c = compareUtf8(previous, name)
      if (c === 0) {
        return invalid(`entries[${i}].name`, name, "DuplicateName", `duplicate name ${show(name)} (also entries[${i - 1}])`)
      }
      if (c > 0) {
        return invalid(
          `entries[${i}].name`,
          name,
          "Unsorted",
          `${show(name)} sorts before the previous name ${show(previous)} (entries must be sorted by UTF-8 bytes)`
        )
      }
    }
    previous = name
    if (!Node.isNode(node)) {
      return invalid(`entries[${i}].node`, name, "InvalidNode", "not a Node (construct it with new DirectoryNode/FileNode/SymlinkNode)")
    }
    if (node._tag === "Directory") {
      size += node.size
      if (size > Number.MAX_SAFE_INTEGER) {
        return invalid(
          `entries[${i}].size`,
          name,
          "SizeOverflow",
          `directory size overflows: the sum of entries and child sizes exceeds 2^53-1`
        )
      }
    }
  }
  return Either.right(new Directory(constructorToken, entries.slice(), size, encodeEntries(entries, nameLengths)))
}

/**
 * The canonical `Directory` message. A fresh copy each call.
 *
 * @since 0.1.0
 */
export const encode = (dir: Directory): Uint8Array => Directory.encoded(dir).slice()

// ---------------------------------------------------------------------------
// decoding
// ---------------------------------------------------------------------------

/**
 * Decodes and validates a `Directory` message.
 *
 * Rejected, with the field and index (and entry name when known): bytes that are
 * not valid protobuf (truncated, bad varints, bad wire types, a known field with
 * the wrong wire type); invalid names; lists that are not strictly sorted by name
 * bytes; a name used twice across the three lists; digests that are not 32 bytes;
 * invalid symlink targets; sizes or a total size above 2^53-1.
 *
 * Unknown fields are skipped, as every protobuf reader (prost in tvix/snix
 * included) does. The digest is then that of the canonical re-encoding, which
 * drops them: tvix likewise never hashes received bytes, it decodes the message
 * and hashes `encode_to_vec()` of it (`Directory::digest`). So a message with
 * extra fields, or with fields in another order, decodes to the same Directory
 * and digest as its canonical form, exactly as in tvix.
 *
 * @since 0.1.0
 */
export const decode = (bytes: Uint8Array): Either.Either<Directory, InvalidDirectory> => {
  const raws: [Array<Node.RawNode>, Array<Node.RawNode>, Array<Node.RawNode>] = [[], [], []]
  let current: Node.RawNode | undefined
  let field = "directory"
  // Whether `bytes` is already the canonical encoding (then it is kept instead of
  // re-encoding): see `RawNode.canonical`; at this level the lists must come in
  // field order with single-byte keys, minimal length prefixes, no unknown fields.
  let canonical = true
  try {
    const r = new Reader(bytes, 0, bytes.length)
    let lastList = 0
    while (!r.done) {
      const keyStart = r.pos
      const key = r.tag()
      const fieldNumber = key >>> 3
      if (fieldNumber >= 1 && fieldNumber <= 3) {
        const list = raws[fieldNumber - 1]
        field = `${LIST_NAMES[fieldNumber - 1]}[${list.length}]`
        current = Node.emptyRawNode()
        if ((key & 7) !== WIRE_LEN) {
          throw new Malformed(`expected length-delimited, got ${wireTypeName(key & 7)}`)
        }
        if (r.pos - keyStart !== 1 || fieldNumber < lastList) canonical = false
        lastList = fieldNumber
        const lengthStart = r.pos
        const start = r.lengthDelimited()
        if (start - lengthStart !== varintLength(r.pos - start)) canonical = false
        const raw = Node.parseBody(bytes, start, r.pos, LIST_TAGS[fieldNumber - 1], current)
        if (!raw.canonical) canonical = false
        list.push(raw)
        current = undefined
        field = "directory"
      } else {
        canonical = false
        r.skip(key)
      }
    }
  } catch (e) {
    if (!(e instanceof Malformed)) throw e
    const entry = current !== undefined && current.nameEnd > current.nameStart
      ? Node.nameForError(bytes, current.nameStart, current.nameEnd)
      : undefined
    return invalid(e.field === undefined ? field : `${field}.${e.field}`, entry, "MalformedProtobuf", e.detail)
  }

  // Validate each list on its own: names, order within the list, nodes.
  const names: [Array<string>, Array<string>, Array<string>] = [[], [], []]
  const nodes: [Array<Node.Node>, Array<Node.Node>, Array<Node.Node>] = [[], [], []]
  const total = raws[0].length + raws[1].length + raws[2].length
  if (total === 0) return Either.right(Directory.empty)
  const digests = { store: new Uint8Array(B3Digest.LENGTH * (raws[0].length + raws[1].length)), next: 0 }
  for (let list = 0; list < 3; list++) {
    const items = raws[list]
    for (let i = 0; i < items.length; i++) {
      const raw = items[i]
      const name = PathComponent.fromUtf8Range(bytes, raw.nameStart, raw.nameEnd)
      if (Either.isLeft(name)) {
        return invalid(`${LIST_NAMES[list]}[${i}].name`, name.left.component, "InvalidName", name.left.message)
      }
      if (i > 0) {
        const prev = items[i - 1]
        const c = compareBytes(bytes, prev.nameStart, prev.nameEnd, bytes, raw.nameStart, raw.nameEnd)
        if (c === 0) {
          return invalid(`${LIST_NAMES[list]}[${i}].name`, name.right, "DuplicateName", `duplicate name ${show(name.right)} (also ${LIST_NAMES[list]}[${i - 1}])`)
        }
        if (c > 0) {
          return invalid(
            `${LIST_NAMES[list]}[${i}].name`,
            name.right,
            "Unsorted",
            `${show(name.right)} sorts before the previous name ${show(names[list][i - 1])} (each list must be sorted by name bytes)`
          )
        }
      }
      const node = Node.nodeFromRaw(bytes, LIST_TAGS[list], raw, digests)
      if (!Node.isNode(node)) {
        return invalid(`${LIST_NAMES[list]}[${i}].${node.field}`, name.right, node.reason, node.detail)
      }
      names[list].push(name.right)
      nodes[list].push(node)
    }
  }

  // Merge the three sorted lists; a name in two lists is a duplicate.
  const entries = new Array<DirectoryEntry>(total)
  const next = [0, 0, 0]
  let size = total
  for (let k = 0; k < total; k++) {
    let best = -1
    for (let list = 0; list < 3; list++) {
      const i = next[list]
      if (i >= raws[list].length) continue
      if (best === -1) {
        best = list
        continue
      }
      const a = raws[best][next[best]]
      const b = raws[list][i]
      const c = compareBytes(bytes, a.nameStart, a.nameEnd, bytes, b.nameStart, b.nameEnd)
      if (c === 0) {
        const name = names[list][i]
        return invalid(
          `${LIST_NAMES[list]}[${i}].name`,
          name,
          "DuplicateName",
          `duplicate name ${show(name)} (also ${LIST_NAMES[best]}[${next[best]}])`
        )
      }
      if (c > 0) best = list
    }
    const i = next[best]++
    const node = nodes[best][i]
    if (node._tag === "Directory") {
      size += node.size
      if (size > Number.MAX_SAFE_INTEGER) {
        return invalid(
          `directories[${i}].size`,
          names[best][i],
          "SizeOverflow",
          "directory size overflows: the sum of entries and child sizes exceeds 2^53-1"
        )
      }
    }
    entries[k] = { name: names[best][i] as PathComponent.PathComponent, node }
  }
  // A canonical input is its own re-encoding; copy it (the caller may reuse its buffer).
  const encoded = canonical ? bytes.slice() : encodeEntries(entries)
  return Either.right(new Directory(constructorToken, entries, size, encoded))
}

// ---------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------

/**
 * @since 0.1.0
 */
export const DirectoryFromSelf: Schema.Schema<Directory> = Schema.declare(isDirectory, {
  identifier: "Directory",
  equivalence: () => (a, b) => B3Digest.equals(a.digest, b.digest)
})

/**
 * Canonical `Directory` message bytes ↔ `Directory`. Decoding fails with the
 * `InvalidDirectory` message (field, index, entry).
 *
 * @since 0.1.0
 */
export const DirectoryFromBytes: Schema.Schema<Directory, Uint8Array> = Schema.transformOrFail(
  Schema.Uint8ArrayFromSelf,
  DirectoryFromSelf,
  {
    strict: true,
    decode: (bytes, _, ast) =>
      Either.match(decode(bytes), {
        onLeft: (e) => ParseResult.fail(new ParseResult.Type(ast, bytes, e.message)),
        onRight: ParseResult.succeed
      }),
    encode: (dir) => ParseResult.succeed(encode(dir))
  }
).annotations({ identifier: "DirectoryFromBytes" })
