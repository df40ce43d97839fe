/**
 * `.narinfo` files: the metadata a Nix HTTP binary cache serves for a store
 * path, as `Key: value` lines.
 *
 * Parsing accepts what Nix accepts, including the quirks real caches have
 * (unknown keys, a missing `Compression` meaning bzip2, missing `FileHash` /
 * `FileSize` / `References`, `Deriver: unknown-deriver`, a hex or base64 or
 * SRI `NarHash`, references out of order, fields in another order, no final
 * newline) and records each quirk in `quirks`, so that rendering a parsed
 * value gives back the input byte for byte. It rejects what Nix rejects:
 * duplicate keys, a missing `StorePath`, `URL`, `NarHash` or `NarSize`, a
 * `NarSize` of 0, a `Deriver` that is not a `.drv`, malformed store paths,
 * hashes and signatures.
 *
 * @since 0.1.0
 */
import { Arbitrary, Data, Either, Equal, FastCheck, Hash, Option, ParseResult, Schema } from "effect"
import * as CAHash from "./CAHash.js"
import * as Keys from "./Keys.js"
import * as Nixbase32 from "./Nixbase32.js"
import * as NixHash from "./NixHash.js"
import * as StorePath from "./StorePath.js"

// ---------------------------------------------------------------------------
// the value
// ---------------------------------------------------------------------------

/** The field names Nix writes, in the order it writes them. */
export const knownFields = [
  "StorePath",
  "URL",
  "Compression",
  "FileHash",
  "FileSize",
  "NarHash",
  "NarSize",
  "References",
  "Deriver",
  "System",
  "Sig",
  "CA"
] as const
/** @see knownFields */
export type KnownField = (typeof knownFields)[number]

/** A line whose key this library does not know; kept so rendering reproduces it. */
export const UnknownField = Schema.Struct({
  key: Schema.String.pipe(
    Schema.filter((k) =>
      (k.length > 0 && !k.includes(":") && !k.includes("\n") && !(knownFields as ReadonlyArray<string>).includes(k)) ||
      "an unknown field key is non-empty, has no ':' or newline and is not a known field"
    )
  ),
  value: SingleLine()
})
/** @see UnknownField */
export type UnknownField = typeof UnknownField.Type

function SingleLine() {
  return Schema.String.pipe(Schema.filter((s) => !s.includes("\n") || "must not contain a newline"))
}

function NonEmptySingleLine() {
  return Schema.String.pipe(
    Schema.filter((s) => (s.length > 0 && !s.includes("\n")) || "must be non-empty and contain no newline")
  )
}

/**
 * Deviations from the form Nix itself writes, recorded by the parser so that
 * rendering reproduces the input (and so callers can see them). A value
 * built by hand normally has `noQuirks`.
 */
export const Quirks = Schema.Struct({
  /** Lines with keys this library does not know, in input order. */
  unknownFields: Schema.Array(UnknownField),
  /** `Compression` was absent (Nix then means bzip2; `compression` is "bzip2"). */
  compressionDefault: Schema.Boolean,
  /** `References` was absent (harmonia writes this); `references` is empty. */
  referencesMissing: Schema.Boolean,
  /** References were not strictly ascending by basename (old cache.nixos.org entries). */
  referencesOutOfOrder: Schema.Boolean,
  /** `Deriver: unknown-deriver` was written (legacy tools); `deriver` is none. */
  explicitUnknownDeriver: Schema.Boolean,
  /** How `NarHash` was written (Nix writes `sha256:<nixbase32>`). */
  narHashFormat: Schema.Literal("nixbase32", "hex", "base64", "sri"),
  /** How `FileHash` was written. */
  fileHashFormat: Schema.Literal("nixbase32", "hex", "base64", "sri"),
  /** How the digest in `CA` was written (Nix writes nixbase32). */
  caEncoding: Schema.Literal("nixbase32", "hex", "base64"),
  /**
   * The keys in input order (one entry per line), when the lines were not in
   * the order Nix writes them (unknown fields last).
   */
  fieldOrder: Schema.OptionFromSelf(Schema.Array(Schema.String)),
  /** The last line had no terminating newline. */
  missingFinalNewline: Schema.Boolean
})
/** @see Quirks */
export type Quirks = typeof Quirks.Type

/** The quirks of a narinfo written exactly as Nix writes it. */
export const noQuirks: Quirks = {
  unknownFields: [],
  compressionDefault: false,
  referencesMissing: false,
  referencesOutOfOrder: false,
  explicitUnknownDeriver: false,
  narHashFormat: "nixbase32",
  fileHashFormat: "nixbase32",
  caEncoding: "nixbase32",
  fieldOrder: Option.none(),
  missingFinalNewline: false
}

const Sha256 = NixHash.NixHash.pipe(
  Schema.filter((h) => h.algorithm === "sha256" || `NarHash must be sha256, got ${h.algorithm}`),
  Schema.annotations({
    arbitrary: () => (fc) =>
      fc.uint8Array({ minLength: 32, maxLength: 32 }).map((digest) => NixHash.unsafeMake("sha256", digest))
  })
)

const Derivation = StorePath.StorePath.pipe(
  Schema.filter((sp) => StorePath.isDerivation(sp) || `a Deriver must be a .drv, got ${sp.name}`),
  Schema.annotations({
    arbitrary: () => () =>
      StorePath.arbitrary.filter((sp) => sp.name.length <= 207).map((sp) =>
        StorePath.unsafeMake(sp.digest, sp.name + ".drv")
      )
  })
)

const Size = Schema.Number.pipe(
  Schema.int(),
  Schema.between(0, Number.MAX_SAFE_INTEGER),
  Schema.annotations({ arbitrary: () => (fc) => fc.maxSafeNat() })
)

/**
 * A parsed narinfo. Every field is valid by construction when it comes from
 * `parse` or the Schemas. Equality (`Equal.equals`, `equals`) compares all
 * fields including quirks.
 */
export class NarInfo extends Schema.Class<NarInfo>("@nixfx/nix-compat/NarInfo")({
  /** The store path described. */
  storePath: StorePath.StorePath,
  /** Where the (compressed) NAR is, relative to the narinfo. */
  url: NonEmptySingleLine(),
  /** The compression of the file at `url`: "none", "xz", "bzip2", "zstd", "br", "gzip", … */
  compression: NonEmptySingleLine(),
  /** Hash of the file at `url` (usually sha256). */
  fileHash: Schema.OptionFromSelf(NixHash.NixHash),
  /** Size in bytes of the file at `url`. */
  fileSize: Schema.OptionFromSelf(Size),
  /** sha256 of the uncompressed NAR. */
  narHash: Sha256,
  /** Size in bytes of the uncompressed NAR (never 0). */
  narSize: Size.pipe(Schema.positive(), Schema.annotations({ arbitrary: () => (fc) => fc.integer({ min: 1 }) })),
  /** Store paths the contents refer to, as written (Nix writes them ascending by basename). */
  references: Schema.Array(StorePath.StorePath),
  /** The derivation that built this path, if known. */
  deriver: Schema.OptionFromSelf(Derivation),
  /** The system the deriver was built for. */
  system: Schema.OptionFromSelf(NonEmptySingleLine()),
  /** Signatures over the fingerprint. */
  signatures: Schema.Array(Keys.Signature),
  /** The content address, for content-addressed paths. */
  ca: Schema.OptionFromSelf(CAHash.CAHash),
  /** Deviations from Nix's own writing, for byte-exact rendering. */
  quirks: Schema.optionalWith(Quirks, { default: () => noQuirks, exact: true })
}) {
  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof NarInfo && equals(this, that)
  }

  [Hash.symbol](): number {
    return Hash.cached(this, Hash.string(render(this)))
  }

  /** The narinfo text. */
  override toString(): string {
    return render(this)
  }
}

const optionEquals = <A>(a: Option.Option<A>, b: Option.Option<A>, eq: (x: A, y: A) => boolean): boolean =>
  Option.isNone(a) ? Option.isNone(b) : Option.isSome(b) && eq(a.value, b.value)

const arrayEquals = <A>(a: ReadonlyArray<A>, b: ReadonlyArray<A>, eq: (x: A, y: A) => boolean): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (!eq(a[i], b[i])) return false
  return true
}

const quirksEquals = (a: Quirks, b: Quirks): boolean =>
  a === b || (
    a.compressionDefault === b.compressionDefault &&
    a.referencesMissing === b.referencesMissing &&
    a.referencesOutOfOrder === b.referencesOutOfOrder &&
    a.explicitUnknownDeriver === b.explicitUnknownDeriver &&
    a.narHashFormat === b.narHashFormat &&
    a.fileHashFormat === b.fileHashFormat &&
    a.caEncoding === b.caEncoding &&
    a.missingFinalNewline === b.missingFinalNewline &&
    arrayEquals(a.unknownFields, b.unknownFields, (x, y) => x.key === y.key && x.value === y.value) &&
    optionEquals(a.fieldOrder, b.fieldOrder, (x, y) => arrayEquals(x, y, (p, q) => p === q))
  )

/** Compares every field, including quirks. */
export const equals = (a: NarInfo, b: NarInfo): boolean =>
  a === b || (
    StorePath.equals(a.storePath, b.storePath) &&
    a.url === b.url &&
    a.compression === b.compression &&
    optionEquals(a.fileHash, b.fileHash, NixHash.equals) &&
    optionEquals(a.fileSize, b.fileSize, (x, y) => x === y) &&
    NixHash.equals(a.narHash, b.narHash) &&
    a.narSize === b.narSize &&
    arrayEquals(a.references, b.references, StorePath.equals) &&
    optionEquals(a.deriver, b.deriver, StorePath.equals) &&
    optionEquals(a.system, b.system, (x, y) => x === y) &&
    arrayEquals(a.signatures, b.signatures, Equal.equals) &&
    optionEquals(a.ca, b.ca, (x, y) => x._tag === y._tag && NixHash.equals(x.hash, y.hash)) &&
    quirksEquals(a.quirks, b.quirks)
  )

// ---------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------

/** Why a narinfo was rejected. */
export type NarInfoErrorReason =
  | "InvalidLine"
  | "DuplicateField"
  | "MissingField"
  | "EmptyField"
  | "InvalidStorePath"
  | "InvalidHash"
  | "InvalidSize"
  | "InvalidReference"
  | "InvalidDeriver"
  | "InvalidSignature"
  | "InvalidCA"

/**
 * A narinfo could not be parsed. `line` is 1-based (counted from the start of
 * the whole input for `parseMany`); for a missing field it is the first line
 * of the narinfo. `field` is the key (or "line" when the line itself is malformed).
 */
export class NarInfoParseError extends Data.TaggedError("NarInfoParseError")<{
  readonly line: number
  readonly field: string
  readonly reason: NarInfoErrorReason
  readonly detail: string
}> {
  override get message(): string {
    return `line ${this.line}: ${this.field}: ${this.detail}`
  }
}

// ---------------------------------------------------------------------------
// parsing (plain, fast function; the Schemas wrap it)
// ---------------------------------------------------------------------------

/** Options for parsing and rendering. */
export interface Options {
  /** The store directory of `StorePath:` and the fingerprint (default `/nix/store`). */
  readonly storeDir?: string | undefined
}

/** Options for parsing. */
export interface ParseOptions extends Options {
  /** Lines before this narinfo in the whole input (for error line numbers). */
  readonly lineOffset?: number | undefined
}

const F_STOREPATH = 0
const F_URL = 1
const F_COMPRESSION = 2
const F_FILEHASH = 3
const F_FILESIZE = 4
const F_NARHASH = 5
const F_NARSIZE = 6
const F_REFERENCES = 7
const F_DERIVER = 8
const F_SYSTEM = 9
const F_SIG = 10
const F_CA = 11
const F_UNKNOWN = 12

const rankOf = (key: string): number => {
  switch (key) {
    case "StorePath":
      return F_STOREPATH
    case "URL":
      return F_URL
    case "Compression":
      return F_COMPRESSION
    case "FileHash":
      return F_FILEHASH
    case "FileSize":
      return F_FILESIZE
    case "NarHash":
      return F_NARHASH
    case "NarSize":
      return F_NARSIZE
    case "References":
      return F_REFERENCES
    case "Deriver":
      return F_DERIVER
    case "System":
      return F_SYSTEM
    case "Sig":
      return F_SIG
    case "CA":
      return F_CA
    default:
      return F_UNKNOWN
  }
}

class Failure {
  constructor(
    readonly line: number,
    readonly field: string,
    readonly reason: NarInfoErrorReason,
    readonly detail: string
  ) {}
}

/** Parses a decimal size: digits only, no sign, no leading zeros (except "0"), at most 2^53−1. */
const parseSize = (s: string): number => {
  const n = s.length
  if (n === 0 || n > 16 || (n > 1 && s.charCodeAt(0) === 48)) return -1
  let v = 0
  for (let i = 0; i < n; i++) {
    const d = s.charCodeAt(i) - 48
    if (d < 0 || d > 9) return -1
    v = v * 10 + d
  }
  return v > Number.MAX_SAFE_INTEGER ? -1 : v
}

const sizeDetail = (s: string): string =>
  /^[0-9]+$/.test(s)
    ? s.length > 1 && s.startsWith("0")
      ? `invalid size ${JSON.stringify(s)}: leading zeros`
      : `invalid size ${JSON.stringify(s)}: larger than 2^53-1`
    : `invalid size ${JSON.stringify(s)}: expected a non-negative decimal integer`

/**
 * The parser proper: returns a `NarInfo` or a `Failure` (no exceptions, no
 * Either allocation on the success path).
 */
const parseText = (text: string, storeDir: string, lineOffset: number): NarInfo | Failure => {
  const len = text.length
  const seen = new Int32Array(13) // line number (1-based) where each single-valued field was seen, 0 if not
  const keys: Array<string> = []
  let canonicalOrder = true
  let lastRank = -1

  let storePath: StorePath.StorePath | undefined
  let url: string | undefined
  let compression: string | undefined
  let fileHash: NixHash.NixHash | undefined
  let fileHashFormat: NixHash.Format = "nixbase32"
  let fileSize = -1
  let narHash: NixHash.NixHash | undefined
  let narHashFormat: NixHash.Format = "nixbase32"
  let narSize = -1
  let references: Array<StorePath.StorePath> | undefined
  let referencesOutOfOrder = false
  let deriver: StorePath.StorePath | undefined
  let explicitUnknownDeriver = false
  let system: string | undefined
  const signatures: Array<Keys.Signature> = []
  let ca: CAHash.CAHash | undefined
  let caEncoding: NixHash.Encoding = "nixbase32"
  let unknownFields: Array<UnknownField> | undefined
  let missingFinalNewline = false

  const storePrefix = storeDir + "/"
  let pos = 0
  let line = lineOffset
  while (pos < len) {
    line++
    let eol = text.indexOf("\n", pos)
    if (eol < 0) {
      eol = len
      missingFinalNewline = true
    }
    const colon = text.indexOf(":", pos)
    if (colon < 0 || colon >= eol) {
      return new Failure(
        line,
        "line",
        "InvalidLine",
        eol === pos ? "empty line" : `expected "<Key>: <value>", found no ':' in ${JSON.stringify(text.slice(pos, eol))}`
      )
    }
    const key = text.slice(pos, colon)
    if (colon + 1 >= eol || text.charCodeAt(colon + 1) !== 32) {
      return new Failure(line, key, "InvalidLine", `expected ": " after the key, got ${JSON.stringify(text.slice(colon, eol))}`)
    }
    const value = text.slice(colon + 2, eol)
    pos = eol + 1

    const rank = rankOf(key)
    keys.push(key)
    if (rank < lastRank) canonicalOrder = false
    lastRank = rank
    if (rank !== F_SIG && rank !== F_UNKNOWN) {
      if (seen[rank] !== 0) {
        return new Failure(line, key, "DuplicateField", `duplicate field (first given on line ${seen[rank]})`)
      }
      seen[rank] = line
    }

    switch (rank) {
      case F_STOREPATH: {
        if (!value.startsWith(storePrefix)) {
          return new Failure(
            line,
            key,
            "InvalidStorePath",
            `${JSON.stringify(value)} is not directly under the store directory ${storeDir}`
          )
        }
        const r = StorePath.parseBasenameRange(value, storePrefix.length, value.length)
        if (!(r instanceof StorePath.StorePath)) return new Failure(line, key, "InvalidStorePath", r.detail)
        storePath = r
        break
      }
      case F_URL: {
        if (value.length === 0) return new Failure(line, key, "EmptyField", "must not be empty")
        url = value
        break
      }
      case F_COMPRESSION: {
        if (value.length === 0) return new Failure(line, key, "EmptyField", "must not be empty")
        compression = value
        break
      }
      case F_FILEHASH: {
        const r = NixHash.parseDetailed(value)
        if (Either.isLeft(r)) return new Failure(line, key, "InvalidHash", r.left.detail)
        fileHash = r.right.hash
        fileHashFormat = r.right.format
        break
      }
      case F_FILESIZE: {
        fileSize = parseSize(value)
        if (fileSize < 0) return new Failure(line, key, "InvalidSize", sizeDetail(value))
        break
      }
      case F_NARHASH: {
        // fast path: sha256:<52 nixbase32 chars>, the form Nix writes
        if (value.length === 59 && value.startsWith("sha256:")) {
          const digest = new Uint8Array(32)
          const failure = Nixbase32.decodeInto(value, 7, 59, digest)
          if (failure !== undefined) {
            return new Failure(
              line,
              key,
              "InvalidHash",
              failure.reason === "InvalidCharacter"
                ? `invalid nixbase32 character '${value[7 + failure.position]}' at position ${failure.position}`
                : "non-canonical nixbase32 (unused trailing bits are not zero)"
            )
          }
          narHash = NixHash.unsafeMake("sha256", digest)
          narHashFormat = "nixbase32"
          break
        }
        const r = NixHash.parseDetailed(value)
        if (Either.isLeft(r)) return new Failure(line, key, "InvalidHash", r.left.detail)
        if (r.right.hash.algorithm !== "sha256") {
          return new Failure(line, key, "InvalidHash", `must be a sha256 hash, got ${r.right.hash.algorithm}`)
        }
        narHash = r.right.hash
        narHashFormat = r.right.format
        break
      }
      case F_NARSIZE: {
        narSize = parseSize(value)
        if (narSize < 0) return new Failure(line, key, "InvalidSize", sizeDetail(value))
        if (narSize === 0) return new Failure(line, key, "InvalidSize", "must not be 0")
        break
      }
      case F_REFERENCES: {
        const refs: Array<StorePath.StorePath> = []
        if (value.length > 0) {
          let start = 0
          let prev = ""
          for (let i = 0;; i++) {
            let end = value.indexOf(" ", start)
            if (end < 0) end = value.length
            const r = StorePath.parseBasenameRange(value, start, end)
            if (!(r instanceof StorePath.StorePath)) {
              return new Failure(
                line,
                key,
                "InvalidReference",
                `reference #${i} ${JSON.stringify(value.slice(start, end))}: ${r.detail}`
              )
            }
            const basename = r.basename
            if (prev >= basename) referencesOutOfOrder = true
            prev = basename
            refs.push(r)
            if (end === value.length) break
            start = end + 1
          }
        }
        references = refs
        break
      }
      case F_DERIVER: {
        if (value === "unknown-deriver") {
          explicitUnknownDeriver = true
          break
        }
        if (!value.endsWith(".drv")) {
          return new Failure(line, key, "InvalidDeriver", `${JSON.stringify(value)} does not end in .drv`)
        }
        const r = StorePath.parseBasenameRange(value, 0, value.length)
        if (!(r instanceof StorePath.StorePath)) return new Failure(line, key, "InvalidDeriver", r.detail)
        deriver = r
        break
      }
      case F_SYSTEM: {
        if (value.length === 0) return new Failure(line, key, "EmptyField", "must not be empty")
        system = value
        break
      }
      case F_SIG: {
        const r = Keys.parseSignature(value)
        if (Either.isLeft(r)) {
          return new Failure(line, key, "InvalidSignature", `signature #${signatures.length}: ${r.left.message}`)
        }
        signatures.push(r.right)
        break
      }
      case F_CA: {
        const r = CAHash.parseDetailed(value)
        if (Either.isLeft(r)) return new Failure(line, key, "InvalidCA", r.left.message)
        ca = r.right.ca
        caEncoding = r.right.encoding
        break
      }
      default: {
        ;(unknownFields ??= []).push({ key, value })
      }
    }
  }

  const first = lineOffset + 1
  if (storePath === undefined) return new Failure(first, "StorePath", "MissingField", "missing required field")
  if (url === undefined) return new Failure(first, "URL", "MissingField", "missing required field")
  if (narHash === undefined) return new Failure(first, "NarHash", "MissingField", "missing required field")
  if (narSize < 0) return new Failure(first, "NarSize", "MissingField", "missing required field")

  const compressionDefault = compression === undefined
  const referencesMissing = references === undefined
  const quirky = !canonicalOrder || compressionDefault || referencesMissing || referencesOutOfOrder ||
    explicitUnknownDeriver || narHashFormat !== "nixbase32" || fileHashFormat !== "nixbase32" ||
    caEncoding !== "nixbase32" || unknownFields !== undefined || missingFinalNewline

  return unsafeMake(
    {
      storePath,
      url,
      compression: compression ?? "bzip2",
      fileHash: fileHash === undefined ? Option.none() : Option.some(fileHash),
      fileSize: fileSize < 0 ? Option.none() : Option.some(fileSize),
      narHash,
      narSize,
      references: references ?? [],
      deriver: deriver === undefined ? Option.none() : Option.some(deriver),
      system: system === undefined ? Option.none() : Option.some(system),
      signatures,
      ca: ca === undefined ? Option.none() : Option.some(ca),
      quirks: quirky
        ? {
          unknownFields: unknownFields ?? [],
          compressionDefault,
          referencesMissing,
          referencesOutOfOrder,
          explicitUnknownDeriver,
          narHashFormat,
          fileHashFormat,
          caEncoding,
          fieldOrder: canonicalOrder ? Option.none() : Option.some(keys),
          missingFinalNewline
        }
        : noQuirks
    }
  )
}

/**
 * Builds a NarInfo from trusted, complete fields (no validation, no default
 * merging): the same object `new NarInfo(fields, true)` gives, made faster.
 *
 * @internal
 */
export const unsafeMake = (fields: Schema.Struct.Type<typeof NarInfo.fields>): NarInfo => {
  const ni = Object.create(NarInfo.prototype) as Record<keyof typeof NarInfo.fields, unknown>
  ni.storePath = fields.storePath
  ni.url = fields.url
  ni.compression = fields.compression
  ni.fileHash = fields.fileHash
  ni.fileSize = fields.fileSize
  ni.narHash = fields.narHash
  ni.narSize = fields.narSize
  ni.references = fields.references
  ni.deriver = fields.deriver
  ni.system = fields.system
  ni.signatures = fields.signatures
  ni.ca = fields.ca
  ni.quirks = fields.quirks
  return ni as unknown as NarInfo
}

const toError = (f: Failure): NarInfoParseError =>
  new NarInfoParseError({ line: f.line, field: f.field, reason: f.reason, detail: f.detail })

/** Parses one narinfo. */
export const parse = (text: string, options?: ParseOptions): Either.Either<NarInfo, NarInfoParseError> => {
  const r = parseText(text, options?.storeDir ?? StorePath.defaultStoreDir, options?.lineOffset ?? 0)
  return r instanceof NarInfo ? Either.right(r) : Either.left(toError(r))
}

/**
 * Parses one narinfo, throwing `NarInfoParseError` on bad input. For hot
 * loops and benchmarks; prefer `parse`.
 */
export const parseOrThrow = (text: string, options?: ParseOptions): NarInfo => {
  const r = parseText(text, options?.storeDir ?? StorePath.defaultStoreDir, options?.lineOffset ?? 0)
  if (r instanceof NarInfo) return r
  throw toError(r)
}

/** One narinfo of a multi-narinfo text. */
export interface Entry {
  /** 0-based position of the entry in the input. */
  readonly index: number
  /** 1-based line number of the entry's first line in the whole input. */
  readonly line: number
  /** The entry's text (with its final newline, without the separating blank lines). */
  readonly text: string
  readonly result: Either.Either<NarInfo, NarInfoParseError>
}

/**
 * Splits a text holding several narinfos separated by blank lines and parses
 * each; error line numbers count from the start of the whole text.
 */
export const parseMany = (text: string, options?: Options): Array<Entry> => {
  const out: Array<Entry> = []
  const storeDir = options?.storeDir ?? StorePath.defaultStoreDir
  const len = text.length
  let pos = 0
  let line = 0 // lines consumed before `pos`
  while (pos < len) {
    // skip blank lines
    while (pos < len && text.charCodeAt(pos) === 10) {
      pos++
      line++
    }
    if (pos >= len) break
    const sep = text.indexOf("\n\n", pos)
    const end = sep < 0 ? len : sep + 1
    const entryText = text.slice(pos, end)
    const r = parseText(entryText, storeDir, line)
    out.push({
      index: out.length,
      line: line + 1,
      text: entryText,
      result: r instanceof NarInfo ? Either.right(r) : Either.left(toError(r))
    })
    for (let i = pos; i < end; i++) if (text.charCodeAt(i) === 10) line++
    pos = end
  }
  return out
}

// ---------------------------------------------------------------------------
// rendering
// ---------------------------------------------------------------------------

const renderHash = (h: NixHash.NixHash, form: NixHash.Format): string => NixHash.format(h, form)

/** The line for a single-valued known field, or undefined when the value omits it. */
const fieldLine = (ni: NarInfo, rank: number, storeDir: string): string | undefined => {
  const q = ni.quirks
  switch (rank) {
    case F_STOREPATH:
      return "StorePath: " + StorePath.toAbsolutePath(ni.storePath, storeDir)
    case F_URL:
      return "URL: " + ni.url
    case F_COMPRESSION:
      return q.compressionDefault && ni.compression === "bzip2" ? undefined : "Compression: " + ni.compression
    case F_FILEHASH:
      return Option.isSome(ni.fileHash) ? "FileHash: " + renderHash(ni.fileHash.value, q.fileHashFormat) : undefined
    case F_FILESIZE:
      return Option.isSome(ni.fileSize) ? "FileSize: " + ni.fileSize.value : undefined
    case F_NARHASH:
      return "NarHash: " + renderHash(ni.narHash, q.narHashFormat)
    case F_NARSIZE:
      return "NarSize: " + ni.narSize
    case F_REFERENCES: {
      if (q.referencesMissing && ni.references.length === 0) return undefined
      let s = "References: "
      for (let i = 0; i < ni.references.length; i++) {
        if (i > 0) s += " "
        s += StorePath.toBasename(ni.references[i])
      }
      return s
    }
    case F_DERIVER:
      return Option.isSome(ni.deriver)
        ? "Deriver: " + StorePath.toBasename(ni.deriver.value)
        : q.explicitUnknownDeriver
        ? "Deriver: unknown-deriver"
        : undefined
    case F_SYSTEM:
      return Option.isSome(ni.system) ? "System: " + ni.system.value : undefined
    case F_CA:
      return Option.isSome(ni.ca) ? "CA: " + CAHash.render(ni.ca.value, q.caEncoding) : undefined
    default:
      return undefined
  }
}

/**
 * Renders the narinfo text: as Nix writes it, or — for a parsed value —
 * exactly as it was read (the quirks say how).
 */
export const render = (ni: NarInfo, options?: Options): string => {
  const storeDir = options?.storeDir ?? StorePath.defaultStoreDir
  const q = ni.quirks
  let out = ""
  const sigs = ni.signatures
  const unknown = q.unknownFields
  if (Option.isNone(q.fieldOrder)) {
    for (let rank = F_STOREPATH; rank <= F_CA; rank++) {
      if (rank === F_SIG) {
        for (const sig of sigs) out += "Sig: " + Keys.formatSignature(sig) + "\n"
        continue
      }
      const l = fieldLine(ni, rank, storeDir)
      if (l !== undefined) out += l + "\n"
    }
    for (const u of unknown) out += u.key + ": " + u.value + "\n"
  } else {
    const order = q.fieldOrder.value
    const done = new Uint8Array(13)
    let lastSig = -1
    let lastUnknown = -1
    for (let i = 0; i < order.length; i++) {
      const r = rankOf(order[i])
      if (r === F_SIG) lastSig = i
      else if (r === F_UNKNOWN) lastUnknown = i
    }
    let s = 0
    let u = 0
    for (let i = 0; i < order.length; i++) {
      const rank = rankOf(order[i])
      if (rank === F_SIG) {
        const until = i === lastSig ? sigs.length : Math.min(s + 1, sigs.length)
        for (; s < until; s++) out += "Sig: " + Keys.formatSignature(sigs[s]) + "\n"
      } else if (rank === F_UNKNOWN) {
        const until = i === lastUnknown ? unknown.length : Math.min(u + 1, unknown.length)
        for (; u < until; u++) out += unknown[u].key + ": " + unknown[u].value + "\n"
      } else if (done[rank] === 0) {
        done[rank] = 1
        const l = fieldLine(ni, rank, storeDir)
        if (l !== undefined) out += l + "\n"
      }
    }
    // whatever the recorded order did not place (e.g. fields added after parsing)
    for (let rank = F_STOREPATH; rank <= F_CA; rank++) {
      if (rank === F_SIG) {
        for (; s < sigs.length; s++) out += "Sig: " + Keys.formatSignature(sigs[s]) + "\n"
        continue
      }
      if (done[rank] !== 0) continue
      const l = fieldLine(ni, rank, storeDir)
      if (l !== undefined) out += l + "\n"
    }
    for (; u < unknown.length; u++) out += unknown[u].key + ": " + unknown[u].value + "\n"
  }
  return q.missingFinalNewline && out.length > 0 ? out.slice(0, -1) : out
}

// ---------------------------------------------------------------------------
// fingerprint
// ---------------------------------------------------------------------------

/**
 * The string Nix signs: `1;<store path>;sha256:<nixbase32 NarHash>;<NarSize>;<references>`,
 * references as absolute paths, ascending and without duplicates (as Nix
 * prints its reference set), joined by `,`.
 */
export const fingerprintOf = (
  storePath: StorePath.StorePath,
  narHash: NixHash.NixHash,
  narSize: number,
  references: ReadonlyArray<StorePath.StorePath>,
  storeDir: string = StorePath.defaultStoreDir
): string => {
  let names: ReadonlyArray<string> = references.map(StorePath.toBasename)
  for (let i = 1; i < names.length; i++) {
    if (names[i - 1] >= names[i]) {
      names = Array.from(new Set(names)).sort()
      break
    }
  }
  let refs = ""
  for (let i = 0; i < names.length; i++) {
    if (i > 0) refs += ","
    refs += storeDir + "/" + names[i]
  }
  return "1;" + StorePath.toAbsolutePath(storePath, storeDir) + ";sha256:" + Nixbase32.encode(narHash.digest) + ";" +
    narSize + ";" + refs
}

/** The fingerprint Nix signs for this narinfo (see `fingerprintOf`). */
export const fingerprint = (ni: NarInfo, options?: Options): string =>
  fingerprintOf(ni.storePath, ni.narHash, ni.narSize, ni.references, options?.storeDir)

// ---------------------------------------------------------------------------
// schemas
// ---------------------------------------------------------------------------

/** Schema between `.narinfo` text and a `NarInfo`, for a store under `storeDir`. */
export const fromString = (storeDir: string = StorePath.defaultStoreDir): Schema.Schema<NarInfo, string> =>
  Schema.transformOrFail(Schema.String, Schema.typeSchema(NarInfo), {
    strict: true,
    decode: (s, _, ast) => {
      const r = parseText(s, storeDir, 0)
      return r instanceof NarInfo
        ? ParseResult.succeed(r)
        : ParseResult.fail(new ParseResult.Type(ast, s, toError(r).message))
    },
    encode: (ni) => ParseResult.succeed(render(ni, { storeDir }))
  }).annotations({ identifier: "NarInfoFromString" })

/** Schema between `.narinfo` text and a `NarInfo` in `/nix/store`. */
export const FromString: Schema.Schema<NarInfo, string> = fromString()

/**
 * FastCheck arbitrary of narinfo values as Nix would write them (no quirks),
 * for property tests.
 */
export const arbitrary: FastCheck.Arbitrary<NarInfo> = Arbitrary.make(NarInfo).map((ni) => {
  const byName = new Map<string, StorePath.StorePath>()
  for (const r of ni.references) byName.set(StorePath.toBasename(r), r)
  const references = Array.from(byName.keys()).sort().map((k) => byName.get(k)!)
  return new NarInfo({ ...ni, references, quirks: noQuirks }, true)
})
