/**
 * `PathInfo`: what a store path is — its castore root node, the store paths it
 * references (each with the castore node it was ingested against), the NAR
 * size and sha256, signatures, deriver and content address.
 *
 * A `PathInfo` is valid by construction: `new PathInfo(…)` throws a
 * `ParseError` and `make(…)` returns an `InvalidPathInfo` naming the field for
 * anything that breaks the rules below.
 *
 * - `references` ascend strictly by basename (so no duplicates) and no two
 *   share a digest; a self-reference has the store path's own name and, when
 *   it records a node, the root node itself.
 * - `narSize` agrees with the root node: exactly the NAR size of a file or
 *   symlink, at least the smallest possible NAR of a directory with that many
 *   entries.
 * - `narSha256` is 32 bytes; `deriver` is a `.drv`; `signatures` hold no
 *   duplicate.
 * - `ca`: `fixed:r:sha256` carries the NAR hash itself; `fixed:<algo>` (flat)
 *   and `text:` describe a single non-executable file; a `text:` path does not
 *   reference itself.
 *
 * Unlike tvix's `PathInfo` proto, the root node carries no name: the store
 * path is the key (tvix checks that the root node's name equals the store path
 * basename; here that cannot go wrong).
 *
 * @since 0.1.0
 */
import * as Node from "@nixfx/castore-nodes/Node"
import * as CAHash from "@nixfx/nix-compat/CAHash"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as NarInfo from "@nixfx/nix-compat/NarInfo"
import * as NixHash from "@nixfx/nix-compat/NixHash"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as Either from "effect/Either"
import * as Equal from "effect/Equal"
import * as Hash from "effect/Hash"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { checkNarSize } from "./internal/narSize.js"

// ---------------------------------------------------------------------------
// field schemas
// ---------------------------------------------------------------------------

/**
 * A castore `Node` (the JSON form `{type, digest: "b3:…", …}` when encoded).
 *
 * @since 0.1.0
 * @category schemas
 */
export const NodeSchema: Schema.Schema<Node.Node, Node.NodeJson> = Node.NodeFromJson

/**
 * A store path, encoded as its basename `<hash>-<name>`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const StorePathSchema: Schema.Schema<StorePath.StorePath, string> = StorePath.FromBasename

/**
 * The sha256 of a NAR: 32 bytes, encoded as `sha256:<nixbase32>` (any form
 * Nix accepts decodes: nixbase32, hex, base64, SRI).
 *
 * @since 0.1.0
 * @category schemas
 */
export const NarSha256: Schema.Schema<Uint8Array, string> = Schema.transformOrFail(
  Schema.String,
  Schema.Uint8ArrayFromSelf.pipe(
    Schema.filter((b) => b.length === 32 || `a NAR sha256 is 32 bytes, got ${b.length}`),
    Schema.annotations({ arbitrary: () => (fc) => fc.uint8Array({ minLength: 32, maxLength: 32 }) })
  ),
  {
    strict: true,
    decode: (s, _, ast) =>
      Either.match(NixHash.parse(s, "sha256"), {
        onLeft: (e) => ParseResult.fail(new ParseResult.Type(ast, s, e.message)),
        onRight: (h) => ParseResult.succeed(h.digest)
      }),
    encode: (digest) => ParseResult.succeed(NixHash.toNixbase32String(NixHash.unsafeMake("sha256", digest)))
  }
).annotations({ identifier: "NarSha256" })

/**
 * A derivation's store path (name ends in `.drv`), encoded as its basename.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DeriverSchema: Schema.Schema<StorePath.StorePath, string> = StorePath.FromBasename.pipe(
  Schema.filter((sp) => StorePath.isDerivation(sp) || `a deriver must be a .drv, got ${sp.name}`)
)

const NarSizeSchema = Schema.Number.pipe(
  Schema.filter((n) => (Number.isSafeInteger(n) && n >= 0) || `a NAR size is a non-negative safe integer, got ${n}`),
  Schema.annotations({ arbitrary: () => (fc) => fc.maxSafeNat() })
)

/**
 * One reference: the referenced store path and the castore root node it had
 * when the referrer was ingested — none only when genuinely unknown (a narinfo,
 * a tvix peer). Encoded `{ storePath: "<basename>", node: NodeJson | null }`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Reference = Schema.Struct({
  storePath: StorePathSchema,
  node: Schema.OptionFromNullOr(NodeSchema)
}).annotations({ identifier: "Reference" })

/**
 * @since 0.1.0
 * @category models
 */
export interface Reference {
  readonly storePath: StorePath.StorePath
  readonly node: Option.Option<Node.Node>
}

// ---------------------------------------------------------------------------
// cross-field rules
// ---------------------------------------------------------------------------

const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

const showNode = (node: Node.Node): string => JSON.stringify(Node.toJson(node))

interface Fields {
  readonly storePath: StorePath.StorePath
  readonly node: Node.Node
  readonly references: ReadonlyArray<Reference>
  readonly narSize: number
  readonly narSha256: Uint8Array
  readonly signatures: ReadonlyArray<Keys.Signature>
  readonly deriver: Option.Option<StorePath.StorePath>
  readonly ca: Option.Option<CAHash.CAHash>
}

/** The first broken cross-field rule, as a path and a message; `undefined` when valid. */
const checkFields = (p: Fields): Schema.FilterIssue | undefined => {
  const self = p.storePath
  const selfBasename = StorePath.toBasename(self)
  let selfReference = false
  let previous = ""
  for (let i = 0; i < p.references.length; i++) {
    const ref = p.references[i]
    const basename = StorePath.toBasename(ref.storePath)
    if (i > 0) {
      if (basename === previous) {
        return { path: ["references", i], message: `duplicate reference ${basename} (also at index ${i - 1})` }
      }
      if (basename < previous) {
        return {
          path: ["references", i],
          message: `references must ascend by basename: ${basename} comes after ${previous}`
        }
      }
      if (basename.slice(0, StorePath.hashPartLength) === previous.slice(0, StorePath.hashPartLength)) {
        return {
          path: ["references", i],
          message: `${basename} has the same digest as ${previous} (index ${i - 1}): a digest names one store path`
        }
      }
    }
    previous = basename
    if (bytesEqual(ref.storePath.digest, self.digest)) {
      if (ref.storePath.name !== self.name) {
        return {
          path: ["references", i],
          message: `${basename} has the digest of the store path itself (${selfBasename}) but another name`
        }
      }
      selfReference = true
      if (Option.isSome(ref.node) && !Node.equals(ref.node.value, p.node)) {
        return {
          path: ["references", i, "node"],
          message: `the self-reference records node ${showNode(ref.node.value)}, but the root node is ${showNode(p.node)}`
        }
      }
    }
  }
  const sizeProblem = checkNarSize(p.narSize, p.node)
  if (sizeProblem !== undefined) return { path: ["narSize"], message: sizeProblem }
  for (let i = 1; i < p.signatures.length; i++) {
    for (let j = 0; j < i; j++) {
      if (p.signatures[i].keyName === p.signatures[j].keyName && bytesEqual(p.signatures[i].bytes, p.signatures[j].bytes)) {
        return {
          path: ["signatures", i],
          message: `duplicate signature by ${p.signatures[i].keyName} (also at index ${j})`
        }
      }
    }
  }
  if (Option.isSome(p.ca)) {
    const ca = p.ca.value
    if (ca._tag === "Nar" && ca.hash.algorithm === "sha256" && !bytesEqual(ca.hash.digest, p.narSha256)) {
      return {
        path: ["ca"],
        message: `${CAHash.render(ca)} must equal the NAR hash ${
          NixHash.toNixbase32String(NixHash.unsafeMake("sha256", p.narSha256))
        } (fixed:r:sha256 hashes the NAR)`
      }
    }
    if (ca._tag !== "Nar" && !(p.node._tag === "File" && !p.node.executable)) {
      return {
        path: ["ca"],
        message: `${CAHash.render(ca)} addresses a single non-executable file, but the root node is ${showNode(p.node)}`
      }
    }
    if (ca._tag === "Text" && selfReference) {
      return { path: ["ca"], message: `a text-addressed path cannot reference itself (${selfBasename})` }
    }
  }
  return undefined
}

const FieldsSchema = Schema.Struct({
  storePath: StorePathSchema,
  node: NodeSchema,
  references: Schema.Array(Reference),
  narSize: NarSizeSchema,
  narSha256: NarSha256,
  signatures: Schema.Array(Keys.SignatureFromString),
  deriver: Schema.OptionFromNullOr(DeriverSchema),
  ca: Schema.OptionFromNullOr(CAHash.FromString)
}).pipe(Schema.filter((p) => checkFields(p)))

const validateFieldsSyncBySchema = Schema.validateSync(Schema.typeSchema(FieldsSchema))

const isOptionOf = (u: unknown, isValue: (v: unknown) => boolean): boolean =>
  Option.isOption(u) && (Option.isNone(u) || isValue(u.value))

const isStorePath = (u: unknown): boolean => u instanceof StorePath.StorePath

const isDeriver = (u: unknown): boolean => u instanceof StorePath.StorePath && StorePath.isDerivation(u)

const isCAHash = (u: unknown): boolean => u instanceof CAHash.Nar || u instanceof CAHash.Flat || u instanceof CAHash.Text

/**
 * `true` only when `FieldsSchema`'s type side accepts `p`: each field is an
 * instance its schema accepts (class instances are accepted by `instanceof`,
 * which this asks too), the plain fields pass the same filters, and the
 * cross-field rules hold. Any doubt answers `false` and the caller asks the
 * Schema, which gives the error. Schema's general validation walks every
 * field through ParseResult; this is the per-call path of every decoder.
 */
const fieldsPlainlyValid = (p: PathInfoFields): boolean => {
  if (typeof p !== "object" || p === null) return false
  const { deriver, narSha256, narSize, references, signatures } = p
  if (
    !isStorePath(p.storePath) || !Node.isNode(p.node) || !Array.isArray(references) || !Array.isArray(signatures) ||
    typeof narSize !== "number" || !Number.isSafeInteger(narSize) || narSize < 0 ||
    !(narSha256 instanceof Uint8Array) || narSha256.length !== 32 ||
    !isOptionOf(deriver, isDeriver) || !isOptionOf(p.ca, isCAHash)
  ) return false
  for (const ref of references as ReadonlyArray<unknown>) {
    if (typeof ref !== "object" || ref === null) return false
    const r = ref as { readonly storePath?: unknown; readonly node?: unknown }
    if (!isStorePath(r.storePath) || !isOptionOf(r.node, Node.isNode)) return false
  }
  for (const s of signatures as ReadonlyArray<unknown>) if (!(s instanceof Keys.Signature)) return false
  return checkFields(p as Fields) === undefined
}

/** Throws the Schema's `ParseError` unless the fields are valid. */
const validateFieldsSync = (props: PathInfoFields): void => {
  if (!fieldsPlainlyValid(props)) validateFieldsSyncBySchema(props)
}

// ---------------------------------------------------------------------------
// the class
// ---------------------------------------------------------------------------

/**
 * A validated PathInfo. The encoded form (`Schema.encode(PathInfo)`) is plain
 * JSON: basenames, `NodeJson`, `sha256:<nixbase32>`, `name:base64` signatures,
 * `null` for absent options.
 *
 * Equality (`Equal.equals`, `equals`) compares every field, reference nodes
 * and signature order included.
 *
 * @since 0.1.0
 * @category models
 */
export class PathInfo extends Schema.Class<PathInfo>("@nixfx/pathinfo/PathInfo")(FieldsSchema) {
  /**
   * Validates like any `Schema.Class` constructor (throws a `ParseError`),
   * through a validator compiled once: Schema's default derives the type AST
   * on every construction, ~10× slower.
   */
  constructor(props: PathInfoFields, options?: Schema.MakeOptions) {
    if (!(options === true || (typeof options === "object" && options.disableValidation === true))) {
      validateFieldsSync(props)
    }
    super(props, true)
  }

  /** The store path's basename, `<hash>-<name>`. */
  get basename(): string {
    return StorePath.toBasename(this.storePath)
  }

  /** The node recorded for a reference (by basename or store path), if it is one and the node is known. */
  referenceNode(reference: string | StorePath.StorePath): Option.Option<Node.Node> {
    const basename = typeof reference === "string" ? reference : StorePath.toBasename(reference)
    const i = findReference(this.references, basename)
    return i < 0 ? Option.none() : this.references[i].node
  }

  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof PathInfo && equals(this, that)
  }

  [Hash.symbol](): number {
    return Hash.cached(this, Hash.string(StorePath.toBasename(this.storePath)))
  }
}

/** Binary search over references sorted by basename; index or -1. */
const findReference = (references: ReadonlyArray<Reference>, basename: string): number => {
  let lo = 0
  let hi = references.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    const b = StorePath.toBasename(references[mid].storePath)
    if (b === basename) return mid
    if (b < basename) lo = mid + 1
    else hi = mid - 1
  }
  return -1
}

/**
 * The constructor's argument.
 *
 * @since 0.1.0
 * @category models
 */
export type PathInfoFields = Schema.Struct.Constructor<typeof FieldsSchema.from.fields>

// ---------------------------------------------------------------------------
// errors and construction
// ---------------------------------------------------------------------------

/**
 * A PathInfo broke a rule (see the module documentation). `storePath` is the
 * basename when known (empty otherwise), `field` the path of the offending
 * field such as `references[3]`.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPathInfo extends Schema.TaggedError<InvalidPathInfo>("@nixfx/pathinfo/InvalidPathInfo")(
  "InvalidPathInfo",
  {
    storePath: Schema.String,
    field: Schema.String,
    detail: Schema.String
  }
) {
  override get message(): string {
    const where = this.storePath === "" ? "" : ` for ${this.storePath}`
    return `invalid PathInfo${where}: ${this.field === "" ? "" : this.field + ": "}${this.detail}`
  }
}

const formatPath = (path: ReadonlyArray<PropertyKey>): string => {
  let out = ""
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`
    else out += out === "" ? String(key) : "." + String(key)
  }
  return out
}

const basenameOf = (u: unknown): string => {
  if (u !== null && typeof u === "object" && "storePath" in u && u.storePath instanceof StorePath.StorePath) {
    return StorePath.toBasename(u.storePath)
  }
  return ""
}

/**
 * Turns a `ParseError` from validating PathInfo fields into an `InvalidPathInfo`
 * naming the first offending field.
 *
 * @since 0.1.0
 * @category errors
 */
export const invalidFromParseError = (error: ParseResult.ParseError, input: unknown): InvalidPathInfo => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const first = issues[0]
  return new InvalidPathInfo({
    storePath: basenameOf(input),
    field: first === undefined ? "" : formatPath(first.path),
    detail: first === undefined ? error.message : first.message
  })
}

const validateFields = Schema.validateEither(Schema.typeSchema(FieldsSchema))

/** The fast check and the Schema's validation, for the test that they agree. @internal */
export const validators = { fieldsPlainlyValid, validateFields } as const

/**
 * Validates and builds a PathInfo.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (fields: PathInfoFields): Either.Either<PathInfo, InvalidPathInfo> => {
  if (fieldsPlainlyValid(fields)) return Either.right(new PathInfo(fields, true))
  const r = validateFields(fields)
  return Either.isRight(r) ? Either.right(new PathInfo(fields, true)) : Either.left(invalidFromParseError(r.left, fields))
}

// ---------------------------------------------------------------------------
// equality and merging helpers
// ---------------------------------------------------------------------------

const optionEquals = <A>(a: Option.Option<A>, b: Option.Option<A>, eq: (x: A, y: A) => boolean): boolean =>
  Option.isNone(a) ? Option.isNone(b) : Option.isSome(b) && eq(a.value, b.value)

/** @since 0.1.0 */
export const signatureEquals = (a: Keys.Signature, b: Keys.Signature): boolean =>
  a.keyName === b.keyName && bytesEqual(a.bytes, b.bytes)

/** @since 0.1.0 */
export const caEquals = (a: CAHash.CAHash, b: CAHash.CAHash): boolean =>
  a._tag === b._tag && NixHash.equals(a.hash, b.hash)

/**
 * Every field equal, references with their nodes, signatures in order.
 *
 * @since 0.1.0
 * @category equality
 */
export const equals = (a: PathInfo, b: PathInfo): boolean => {
  if (a === b) return true
  if (
    !StorePath.equals(a.storePath, b.storePath) || !Node.equals(a.node, b.node) || a.narSize !== b.narSize ||
    !bytesEqual(a.narSha256, b.narSha256) || a.references.length !== b.references.length ||
    a.signatures.length !== b.signatures.length || !optionEquals(a.deriver, b.deriver, StorePath.equals) ||
    !optionEquals(a.ca, b.ca, caEquals)
  ) return false
  for (let i = 0; i < a.references.length; i++) {
    const x = a.references[i]
    const y = b.references[i]
    if (!StorePath.equals(x.storePath, y.storePath) || !optionEquals(x.node, y.node, Node.equals)) return false
  }
  for (let i = 0; i < a.signatures.length; i++) {
    if (!signatureEquals(a.signatures[i], b.signatures[i])) return false
  }
  return true
}

/**
 * Equal except that `b` may carry signatures `a` does not (all of `a`'s in
 * `b`, in `a`'s order relative to each other). What a signing layer does to a
 * PathInfo.
 *
 * @since 0.1.0
 * @category equality
 */
export const equalsIgnoringAddedSignatures = (a: PathInfo, b: PathInfo): boolean => {
  if (a.signatures.length > b.signatures.length) return false
  let j = 0
  for (const sig of a.signatures) {
    while (j < b.signatures.length && !signatureEquals(sig, b.signatures[j])) j++
    if (j === b.signatures.length) return false
    j++
  }
  return equals(a, new PathInfo({ ...b, signatures: a.signatures }, true))
}

/**
 * The signatures of `a` followed by those of `b` that `a` lacks.
 *
 * @since 0.1.0
 */
export const mergeSignatures = (
  a: ReadonlyArray<Keys.Signature>,
  b: ReadonlyArray<Keys.Signature>
): ReadonlyArray<Keys.Signature> => {
  let out: Array<Keys.Signature> | undefined
  for (const sig of b) {
    if (!a.some((s) => signatureEquals(s, sig)) && !(out?.some((s) => signatureEquals(s, sig)) ?? false)) {
      ;(out ??= [...a]).push(sig)
    }
  }
  return out ?? a
}

/**
 * The absolute store paths of the references (ascending), under `storeDir`.
 *
 * @since 0.1.0
 */
export const referencePaths = (pathInfo: PathInfo): ReadonlyArray<StorePath.StorePath> =>
  pathInfo.references.map((r) => r.storePath)

// ---------------------------------------------------------------------------
// narinfo and signatures
// ---------------------------------------------------------------------------

/**
 * The NAR hash as a `NixHash`.
 *
 * @since 0.1.0
 */
export const narHash = (pathInfo: PathInfo): NixHash.NixHash => NixHash.unsafeMake("sha256", pathInfo.narSha256)

/**
 * The string Nix signs for this path:
 * `1;<store path>;sha256:<nixbase32>;<NAR size>;<reference paths, comma-separated>`.
 *
 * @since 0.1.0
 * @category signatures
 */
export const fingerprint = (pathInfo: PathInfo, storeDir: string = StorePath.defaultStoreDir): string =>
  NarInfo.fingerprintOf(pathInfo.storePath, narHash(pathInfo), pathInfo.narSize, referencePaths(pathInfo), storeDir)

/**
 * Signs the fingerprint with `secretKey` and adds the signature (unchanged if
 * the PathInfo already carries exactly that signature; ed25519 is
 * deterministic).
 *
 * @since 0.1.0
 * @category signatures
 */
export const sign = (
  pathInfo: PathInfo,
  secretKey: Keys.SecretKey,
  storeDir: string = StorePath.defaultStoreDir
): PathInfo => {
  const signature = Keys.signFingerprint(fingerprint(pathInfo, storeDir), secretKey)
  if (pathInfo.signatures.some((s) => signatureEquals(s, signature))) return pathInfo
  return new PathInfo({ ...pathInfo, signatures: [...pathInfo.signatures, signature] }, true)
}

/**
 * Which of the PathInfo's signatures verify against `trustedKeys` (matched by
 * key name).
 *
 * @since 0.1.0
 * @category signatures
 */
export const verifiedSignatures = (
  pathInfo: PathInfo,
  trustedKeys: Iterable<Keys.PublicKey>,
  storeDir: string = StorePath.defaultStoreDir
): ReadonlyArray<Keys.Signature> => {
  const keys = Array.from(trustedKeys)
  let fp: string | undefined
  const out: Array<Keys.Signature> = []
  for (const sig of pathInfo.signatures) {
    for (const key of keys) {
      if (key.name !== sig.keyName) continue
      fp ??= fingerprint(pathInfo, storeDir)
      if (Keys.verifyFingerprint(fp, sig, key)) {
        out.push(sig)
        break
      }
    }
  }
  return out
}

/**
 * Builds a PathInfo from a narinfo, the castore root node of the path (which
 * a narinfo cannot say: it comes from ingesting the NAR) and, optionally, the
 * nodes of its references by basename.
 *
 * - References are sorted and de-duplicated (old caches list them out of
 *   order); a self-reference records `node`; other references record the node
 *   given in `referenceNodes`, or none. A `referenceNodes` key that is not a
 *   reference of the narinfo is an error (it would otherwise be lost silently).
 * - Duplicate signatures are dropped (Nix keeps a set).
 * - `URL`, `Compression`, `FileHash`, `FileSize` and `System` describe one
 *   cache's copy of the NAR, not the path; they are not kept.
 *
 * Fails when the narinfo contradicts the node (e.g. a NarSize a file of that
 * size cannot have, a `fixed:r:sha256` CA that is not the NarHash).
 *
 * @since 0.1.0
 * @category conversions
 */
export const fromNarInfo = (
  narInfo: NarInfo.NarInfo,
  node: Node.Node,
  referenceNodes?: ReadonlyMap<string, Node.Node>
): Either.Either<PathInfo, InvalidPathInfo> => {
  const selfBasename = StorePath.toBasename(narInfo.storePath)
  const byBasename = new Map<string, StorePath.StorePath>()
  for (const r of narInfo.references) byBasename.set(StorePath.toBasename(r), r)
  if (referenceNodes !== undefined) {
    for (const key of referenceNodes.keys()) {
      if (!byBasename.has(key)) {
        return Either.left(
          new InvalidPathInfo({
            storePath: selfBasename,
            field: "references",
            detail: `a node was given for ${key}, which the narinfo does not list as a reference`
          })
        )
      }
    }
  }
  const basenames = Array.from(byBasename.keys()).sort()
  const references: Array<Reference> = basenames.map((basename) => ({
    storePath: byBasename.get(basename)!,
    node: basename === selfBasename ? Option.some(node) : Option.fromNullable(referenceNodes?.get(basename))
  }))
  const signatures: Array<Keys.Signature> = []
  for (const sig of narInfo.signatures) {
    if (!signatures.some((s) => signatureEquals(s, sig))) signatures.push(sig)
  }
  return make({
    storePath: narInfo.storePath,
    node,
    references,
    narSize: narInfo.narSize,
    narSha256: narInfo.narHash.digest,
    signatures,
    deriver: narInfo.deriver,
    ca: narInfo.ca
  })
}

/**
 * Where a cache keeps the NAR of a path and how: the narinfo fields a
 * PathInfo does not hold.
 *
 * @since 0.1.0
 * @category conversions
 */
export interface NarInfoLocation {
  /** The NAR file, relative to the narinfo (e.g. `nar/<filehash>.nar.xz`). */
  readonly url: string
  /** "none", "xz", "bzip2", "zstd", "br", "gzip", … (default "none"). */
  readonly compression?: string | undefined
  readonly fileHash?: NixHash.NixHash | undefined
  readonly fileSize?: number | undefined
  readonly system?: string | undefined
}

/**
 * Renders a PathInfo as a narinfo. What a narinfo cannot express is dropped:
 * the castore root node and every reference's node (the reference names stay,
 * a self-reference included). Signatures are kept as they are, so they verify
 * whenever they did for the path.
 *
 * @since 0.1.0
 * @category conversions
 */
export const toNarInfo = (pathInfo: PathInfo, location: NarInfoLocation): NarInfo.NarInfo =>
  new NarInfo.NarInfo({
    storePath: pathInfo.storePath,
    url: location.url,
    compression: location.compression ?? "none",
    fileHash: Option.fromNullable(location.fileHash),
    fileSize: Option.fromNullable(location.fileSize),
    narHash: narHash(pathInfo),
    narSize: pathInfo.narSize,
    references: referencePaths(pathInfo),
    deriver: pathInfo.deriver,
    system: Option.fromNullable(location.system),
    signatures: pathInfo.signatures,
    ca: pathInfo.ca,
    quirks: NarInfo.noQuirks
  })

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

/**
 * The encoded (JSON) form of a PathInfo.
 *
 * @since 0.1.0
 * @category schemas
 */
export type PathInfoJson = typeof PathInfo.Encoded

/**
 * @since 0.1.0
 * @category conversions
 */
export const toJson: (pathInfo: PathInfo) => PathInfoJson = Schema.encodeSync(PathInfo)

/**
 * Decodes the JSON form, validating everything.
 *
 * @since 0.1.0
 * @category conversions
 */
export const fromJson = (json: unknown): Either.Either<PathInfo, InvalidPathInfo> =>
  Either.mapLeft(Schema.decodeUnknownEither(PathInfo)(json), (e) => {
    const issues = ParseResult.ArrayFormatter.formatErrorSync(e)
    const first = issues[0]
    const storePath = json !== null && typeof json === "object" && "storePath" in json &&
        typeof json.storePath === "string"
      ? json.storePath
      : ""
    return new InvalidPathInfo({
      storePath,
      field: first === undefined ? "" : formatPath(first.path),
      detail: first === undefined ? e.message : first.message
    })
  })
