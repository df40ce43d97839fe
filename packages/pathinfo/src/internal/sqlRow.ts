/**
 * SQL rows ↔ PathInfo. One `pathinfo` row per store path, one
 * `pathinfo_reference` row per reference (ordered by `position`); reads join
 * them, so a PathInfo arrives as one or more rows sharing the path columns.
 *
 * Encoding choices: digests and hashes as raw bytes (BLOB / BYTEA), nodes as
 * the canonical castore `Node` protobuf message without a name (canonical, so
 * two nodes are equal exactly when their bytes are), signatures as a JSON
 * array of `name:base64`, deriver as a basename, CA in Nix's text form.
 */
import * as Node from "@nixfx/castore-nodes/Node"
import * as CAHash from "@nixfx/nix-compat/CAHash"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as PathInfo from "../PathInfo.js"
import { InvalidPathInfo } from "../PathInfoError.js"
import { hex } from "./show.js"

/** What a driver hands back for a BLOB/BYTEA: Buffer (better-sqlite3, pg), ArrayBuffer (libsql). */
export const toBytes = (u: unknown): Uint8Array | undefined => {
  if (u instanceof Uint8Array) return u
  if (u instanceof ArrayBuffer) return new Uint8Array(u)
  return undefined
}

/** Bytes as a Buffer view (what every driver binds as BLOB/BYTEA), without copying. */
export const toBuffer = (b: Uint8Array): Buffer =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)

/** Integers come back as number (SQLite) or string (pg int8). */
export const toNumber = (u: unknown): number => {
  if (typeof u === "number") return u
  if (typeof u === "bigint") return Number(u)
  if (typeof u === "string" && /^[0-9]+$/.test(u)) return Number(u)
  return Number.NaN
}

export const encodeNode = (node: Node.Node): Buffer => toBuffer(Node.encodeNamed("", node))

export interface PathRow {
  readonly digest: Buffer
  readonly name: string
  readonly node: Buffer
  readonly nar_size: number
  readonly nar_sha256: Buffer
  readonly signatures: string
  readonly deriver: string | null
  readonly ca: string | null
  readonly reference_count: number
}

export interface ReferenceRow {
  readonly referrer: Buffer
  readonly position: number
  readonly reference: Buffer
  readonly name: string
  readonly node: Buffer | null
}

export const encodeSignatures = (sigs: ReadonlyArray<Keys.Signature>): string =>
  JSON.stringify(sigs.map(Keys.formatSignature))

export const encodePath = (p: PathInfo.PathInfo): PathRow => ({
  digest: toBuffer(p.storePath.digest),
  name: p.storePath.name,
  node: encodeNode(p.node),
  nar_size: p.narSize,
  nar_sha256: toBuffer(p.narSha256),
  signatures: encodeSignatures(p.signatures),
  deriver: Option.isSome(p.deriver) ? StorePath.toBasename(p.deriver.value) : null,
  ca: Option.isSome(p.ca) ? CAHash.render(p.ca.value) : null,
  reference_count: p.references.length
})

export const encodeReference = (referrer: Buffer, position: number, ref: PathInfo.Reference): ReferenceRow => ({
  referrer,
  position,
  reference: toBuffer(ref.storePath.digest),
  name: ref.storePath.name,
  node: Option.isSome(ref.node) ? encodeNode(ref.node.value) : null
})

/** The columns of a `pathinfo` row, as a driver returns them. */
export interface PathColumns {
  readonly digest: unknown
  readonly name: unknown
  readonly node: unknown
  readonly nar_size: unknown
  readonly nar_sha256: unknown
  readonly signatures: unknown
  readonly deriver: unknown
  readonly ca: unknown
  readonly reference_count: unknown
}

/** The columns of a `pathinfo_reference` row (all null for a path without references in a LEFT JOIN). */
export interface ReferenceColumns {
  readonly position: unknown
  readonly ref_digest: unknown
  readonly ref_name: unknown
  readonly ref_node: unknown
}

/** A joined row: the path columns plus one reference's. */
export interface JoinedRow extends PathColumns, ReferenceColumns {}

class Corrupt {
  constructor(readonly field: string, readonly detail: string) {}
}

const decodeNode = (u: unknown, field: string): Node.Node => {
  const bytes = toBytes(u)
  if (bytes === undefined) throw new Corrupt(field, `expected bytes, got ${typeof u}`)
  const r = Node.decodeNamed(bytes)
  if (Either.isLeft(r)) throw new Corrupt(field, r.left.message)
  return r.right.node
}

const decodeStorePath = (digestU: unknown, nameU: unknown, field: string): StorePath.StorePath => {
  const digest = toBytes(digestU)
  if (digest === undefined) throw new Corrupt(field, `expected digest bytes, got ${typeof digestU}`)
  if (typeof nameU !== "string") throw new Corrupt(field, `expected a name, got ${typeof nameU}`)
  const r = StorePath.make(new Uint8Array(digest), nameU)
  if (Either.isLeft(r)) throw new Corrupt(field, r.left.message)
  return r.right
}

/**
 * Decodes one PathInfo from its path row and its reference rows
 * (`refs[start, end)`, sorted by position). Stored data is validated like any
 * input: a corrupt or tampered row is an `InvalidPathInfo`, never a wrong
 * value.
 */
export const decodePathInfo = (
  first: PathColumns,
  refs: ReadonlyArray<ReferenceColumns>,
  start: number,
  end: number
): Either.Either<PathInfo.PathInfo, InvalidPathInfo> => {
  const digestBytes = toBytes(first.digest)
  const label = typeof first.name === "string" && digestBytes !== undefined
    ? `${digestBytes.length === 20 ? StorePath.toBasename(StorePath.unsafeMake(digestBytes, first.name)) : hex(digestBytes) + "-" + first.name}`
    : "(unreadable row)"
  try {
    const storePath = decodeStorePath(first.digest, first.name, "storePath")
    const node = decodeNode(first.node, "node")
    const narSize = toNumber(first.nar_size)
    const narSha256 = toBytes(first.nar_sha256)
    if (narSha256 === undefined) throw new Corrupt("narSha256", "expected bytes")
    if (typeof first.signatures !== "string") throw new Corrupt("signatures", "expected text")
    let sigStrings: unknown
    try {
      sigStrings = JSON.parse(first.signatures)
    } catch {
      throw new Corrupt("signatures", `not JSON: ${first.signatures.slice(0, 80)}`)
    }
    if (!Array.isArray(sigStrings)) throw new Corrupt("signatures", "expected a JSON array")
    const signatures = sigStrings.map((s: unknown, i) => {
      if (typeof s !== "string") throw new Corrupt(`signatures[${i}]`, "expected a string")
      const r = Keys.parseSignature(s)
      if (Either.isLeft(r)) throw new Corrupt(`signatures[${i}]`, r.left.message)
      return r.right
    })
    let deriver: Option.Option<StorePath.StorePath> = Option.none()
    if (first.deriver !== null && first.deriver !== undefined) {
      if (typeof first.deriver !== "string") throw new Corrupt("deriver", "expected text")
      const r = StorePath.parseBasename(first.deriver)
      if (Either.isLeft(r)) throw new Corrupt("deriver", r.left.message)
      deriver = Option.some(r.right)
    }
    let ca: Option.Option<CAHash.CAHash> = Option.none()
    if (first.ca !== null && first.ca !== undefined) {
      if (typeof first.ca !== "string") throw new Corrupt("ca", "expected text")
      const r = CAHash.parse(first.ca)
      if (Either.isLeft(r)) throw new Corrupt("ca", r.left.message)
      ca = Option.some(r.right)
    }
    const references: Array<PathInfo.Reference> = []
    for (let i = start; i < end; i++) {
      const row = refs[i]
      if (row.ref_digest === null || row.ref_digest === undefined) continue
      const field = `references[${references.length}]`
      if (toNumber(row.position) !== references.length) {
        throw new Corrupt(field, `reference rows are not contiguous: expected position ${references.length}, got ${String(row.position)}`)
      }
      references.push({
        storePath: decodeStorePath(row.ref_digest, row.ref_name, field),
        node: row.ref_node === null || row.ref_node === undefined
          ? Option.none()
          : Option.some(decodeNode(row.ref_node, field + ".node"))
      })
    }
    const count = toNumber(first.reference_count)
    if (count !== references.length) {
      throw new Corrupt("references", `the row says ${String(first.reference_count)} references, ${references.length} are stored`)
    }
    return Either.mapLeft(
      PathInfo.make({ storePath, node, references, narSize, narSha256: new Uint8Array(narSha256), signatures, deriver, ca }),
      (e) => new InvalidPathInfo({ storePath: label, field: e.field, detail: "stored row: " + e.detail })
    )
  } catch (e) {
    if (e instanceof Corrupt) {
      return Either.left(new InvalidPathInfo({ storePath: label, field: e.field, detail: "stored row: " + e.detail }))
    }
    throw e
  }
}

/** Decodes the rows of one PathInfo from a LEFT JOIN (`rows[start, end)`, sorted by position). */
export const decodeRows = (
  rows: ReadonlyArray<JoinedRow>,
  start: number,
  end: number
): Either.Either<PathInfo.PathInfo, InvalidPathInfo> => decodePathInfo(rows[start], rows, start, end)
