/**
 * Nix store paths: a 20-byte digest and a validated name.
 *
 * The basename is `<32 nixbase32 chars>-<name>`; the absolute path puts it
 * under a store directory (`/nix/store` unless said otherwise).
 *
 * @since 0.1.0
 */
import { Arbitrary, Data, Either, Equal, FastCheck, Hash, Order as Ord, ParseResult, Schema } from "effect"
import * as Nixbase32 from "./Nixbase32.js"

/** The store directory Nix uses unless configured otherwise. */
export const defaultStoreDir = "/nix/store"

/** Length in bytes of a store path digest. */
export const digestLength = 20

/** Length in characters of the nixbase32 digest at the start of a basename. */
export const hashPartLength = 32

/** Longest name Nix accepts (211 = 255 − 32 − 1 − 11 for `.drv.chroot`-style suffixes). */
export const maxNameLength = 211

/** Why a store path (or part of one) is invalid. */
export type StorePathErrorReason =
  | "InvalidDigest"
  | "InvalidDigestLength"
  | "MissingDash"
  | "EmptyName"
  | "NameTooLong"
  | "InvalidNameCharacter"
  | "LeadingDot"
  | "NotInStoreDir"
  | "NotADerivation"

/** A store path, basename, name or digest was rejected; `message` says which part and why. */
export class StorePathError extends Data.TaggedError("StorePathError")<{
  readonly input: string
  readonly reason: StorePathErrorReason
  readonly detail: string
}> {
  override get message(): string {
    return `invalid store path ${JSON.stringify(this.input)}: ${this.detail}`
  }
}

// ---------------------------------------------------------------------------
// name validation (plain functions, used by every parser below)
// ---------------------------------------------------------------------------

/** 1 for every char code allowed in a store path name: `[A-Za-z0-9+\-_?=.]`. */
const nameChar: Uint8Array = (() => {
  const t = new Uint8Array(128)
  for (let c = 0; c < 128; c++) {
    const ch = String.fromCharCode(c)
    if (/[A-Za-z0-9+\-_?=.]/.test(ch)) t[c] = 1
  }
  return t
})()

/**
 * Checks a name (the part after `<hash>-`); returns `undefined` when valid,
 * otherwise the reason and a detail message.
 *
 * @internal
 */
export const checkName = (
  s: string,
  start: number,
  end: number
): undefined | { readonly reason: StorePathErrorReason; readonly detail: string } => {
  const len = end - start
  if (len === 0) return { reason: "EmptyName", detail: "name is empty" }
  if (len > maxNameLength) {
    return { reason: "NameTooLong", detail: `name is ${len} characters long, at most ${maxNameLength} are allowed` }
  }
  if (s.charCodeAt(start) === 46) return { reason: "LeadingDot", detail: "name must not start with '.'" }
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i)
    if (c >= 128 || nameChar[c] === 0) {
      const ch = String.fromCodePoint(s.codePointAt(i)!)
      return {
        reason: "InvalidNameCharacter",
        detail: `name contains invalid character ${JSON.stringify(ch)} at position ${i - start}`
      }
    }
  }
  return undefined
}

/** A valid store path name: 1–211 characters of `[A-Za-z0-9+\-_?=.]`, not starting with `.`. */
export const Name = Schema.String.pipe(
  Schema.filter((s) => {
    const failure = checkName(s, 0, s.length)
    return failure === undefined ? true : failure.detail
  }, {
    arbitrary: () => (fc) =>
      fc.tuple(
        fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-_?="),
        fc.stringMatching(/^[A-Za-z0-9+\-_?=.]{0,210}$/)
      ).map(([first, rest]) => first + rest)
  }),
  Schema.brand("@nixfx/nix-compat/StorePath/Name"),
  Schema.annotations({ identifier: "StorePathName" })
)
/** @see Name */
export type Name = typeof Name.Type

/** The 20-byte digest of a store path. */
export const Digest = Schema.Uint8ArrayFromSelf.pipe(
  Schema.filter((b) => b.length === digestLength || `expected ${digestLength} bytes, got ${b.length}`),
  Schema.annotations({
    identifier: "StorePathDigest",
    arbitrary: () => (fc) => fc.uint8Array({ minLength: digestLength, maxLength: digestLength })
  })
)

// ---------------------------------------------------------------------------
// the value
// ---------------------------------------------------------------------------

/**
 * Where a store path keeps its basename once computed: a non-enumerable own
 * property (invisible to equality, encoding and spreading). A WeakMap did the
 * same, but every entry is an ephemeron the garbage collector must trace, and
 * decoders make store paths by the thousand.
 */
const basenameKey: unique symbol = Symbol.for("@nixfx/nix-compat/StorePath/basename")

const rememberBasename = (sp: StorePath, basename: string): void => {
  Object.defineProperty(sp, basenameKey, { value: basename, enumerable: false, writable: false, configurable: false })
}

/**
 * A store path: its 20-byte `digest` and its `name`. Equality (`Equal.equals`
 * and `equals`) compares digest bytes and name.
 */
export class StorePath extends Schema.Class<StorePath>("@nixfx/nix-compat/StorePath")({
  digest: Digest,
  name: Name
}) {
  /** The 32-character nixbase32 digest. */
  get hashPart(): string {
    return toBasename(this).slice(0, hashPartLength)
  }

  /** `<hashPart>-<name>` */
  get basename(): string {
    return toBasename(this)
  }

  override toString(): string {
    return toBasename(this)
  }

  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof StorePath && equals(this, that)
  }

  [Hash.symbol](): number {
    return Hash.cached(this, Hash.string(toBasename(this)))
  }
}

/** Builds a store path from already-validated parts, remembering its basename. @internal */
export const unsafeMake = (digest: Uint8Array, name: string, basename?: string): StorePath => {
  // Same object the class constructor builds (a prototype and two own
  // enumerable fields), without its per-call default merging: parsers build
  // many of these.
  const sp = Object.create(StorePath.prototype) as { digest: Uint8Array; name: string }
  sp.digest = digest
  sp.name = name
  if (basename !== undefined) rememberBasename(sp as StorePath, basename)
  return sp as StorePath
}

/** `<32 nixbase32 chars>-<name>` */
export const toBasename = (sp: StorePath): string => {
  let b = (sp as { readonly [basenameKey]?: string })[basenameKey]
  if (b === undefined) {
    b = Nixbase32.encode(sp.digest) + "-" + sp.name
    // a frozen instance cannot hold it; it is cheap to recompute
    if (Object.isExtensible(sp)) rememberBasename(sp, b)
  }
  return b
}

/** The absolute path under `storeDir` (default `/nix/store`). */
export const toAbsolutePath = (sp: StorePath, storeDir: string = defaultStoreDir): string =>
  storeDir + "/" + toBasename(sp)

/** `true` when both have the same digest and name. */
export const equals = (a: StorePath, b: StorePath): boolean => {
  if (a === b) return true
  if (a.name !== b.name) return false
  const x = a.digest
  const y = b.digest
  if (x.length !== y.length) return false
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false
  return true
}

/** Orders store paths by basename (the order Nix sorts references in). */
export const Order: Ord.Order<StorePath> = Ord.mapInput(Ord.string, toBasename)

/** `true` when the name ends in `.drv` (a derivation, as a narinfo `Deriver` must be). */
export const isDerivation = (sp: StorePath): boolean => sp.name.endsWith(".drv")

// ---------------------------------------------------------------------------
// parsing
// ---------------------------------------------------------------------------

/**
 * Parses `s.slice(start, end)` as a basename; plain function for hot paths.
 * Returns the store path or `[reason, detail]`.
 *
 * @internal
 */
export const parseBasenameRange = (
  s: string,
  start: number,
  end: number
): StorePath | { readonly reason: StorePathErrorReason; readonly detail: string } => {
  if (end - start < hashPartLength + 2 || s.charCodeAt(start + hashPartLength) !== 45) {
    if (end - start > hashPartLength && s.charCodeAt(start + hashPartLength) !== 45) {
      return { reason: "MissingDash", detail: `expected '-' after the ${hashPartLength}-character digest` }
    }
    if (end - start === hashPartLength + 1) return { reason: "EmptyName", detail: "name is empty" }
    return {
      reason: "InvalidDigestLength",
      detail: `expected a ${hashPartLength}-character nixbase32 digest, '-' and a name, got ${end - start} characters`
    }
  }
  const digest = new Uint8Array(digestLength)
  const failure = Nixbase32.decodeInto(s, start, start + hashPartLength, digest)
  if (failure !== undefined) {
    return {
      reason: "InvalidDigest",
      detail: failure.reason === "InvalidCharacter"
        ? `invalid nixbase32 character '${s[start + failure.position]}' in digest at position ${failure.position}`
        : "digest is non-canonical nixbase32 (unused trailing bits are not zero)"
    }
  }
  const nameFailure = checkName(s, start + hashPartLength + 1, end)
  if (nameFailure !== undefined) return nameFailure
  const basename = start === 0 && end === s.length ? s : s.slice(start, end)
  return unsafeMake(digest, basename.slice(hashPartLength + 1), basename)
}

/** Parses a basename `<32 nixbase32 chars>-<name>`. */
export const parseBasename = (s: string): Either.Either<StorePath, StorePathError> => {
  const r = parseBasenameRange(s, 0, s.length)
  return r instanceof StorePath ? Either.right(r) : Either.left(new StorePathError({ input: s, ...r }))
}

/** Parses an absolute path directly under `storeDir` (default `/nix/store`). */
export const parseAbsolutePath = (
  s: string,
  storeDir: string = defaultStoreDir
): Either.Either<StorePath, StorePathError> => {
  if (!(s.length > storeDir.length + 1 && s.startsWith(storeDir) && s.charCodeAt(storeDir.length) === 47)) {
    return Either.left(
      new StorePathError({ input: s, reason: "NotInStoreDir", detail: `not directly under the store directory ${storeDir}` })
    )
  }
  const r = parseBasenameRange(s, storeDir.length + 1, s.length)
  return r instanceof StorePath ? Either.right(r) : Either.left(new StorePathError({ input: s, ...r }))
}

/** Parses an absolute path (starting with `/`) under `storeDir`, or else a basename. */
export const parse = (s: string, storeDir: string = defaultStoreDir): Either.Either<StorePath, StorePathError> =>
  s.startsWith("/") ? parseAbsolutePath(s, storeDir) : parseBasename(s)

/** Builds a store path from a digest and a name, validating both. */
export const make = (digest: Uint8Array, name: string): Either.Either<StorePath, StorePathError> => {
  if (digest.length !== digestLength) {
    return Either.left(
      new StorePathError({
        input: name,
        reason: "InvalidDigestLength",
        detail: `digest must be ${digestLength} bytes, got ${digest.length}`
      })
    )
  }
  const failure = checkName(name, 0, name.length)
  return failure === undefined
    ? Either.right(unsafeMake(digest, name))
    : Either.left(new StorePathError({ input: name, ...failure }))
}

/** Parses a derivation's store path (basename or absolute): as `parse`, and the name must end in `.drv`. */
export const parseDerivation = (
  s: string,
  storeDir: string = defaultStoreDir
): Either.Either<StorePath, StorePathError> =>
  Either.flatMap(parse(s, storeDir), (sp) =>
    isDerivation(sp)
      ? Either.right(sp)
      : Either.left(new StorePathError({ input: s, reason: "NotADerivation", detail: "name does not end in .drv" })))

// ---------------------------------------------------------------------------
// schemas
// ---------------------------------------------------------------------------

const fromStringSchema = (
  identifier: string,
  decode: (s: string) => Either.Either<StorePath, StorePathError>,
  encode: (sp: StorePath) => string
): Schema.Schema<StorePath, string> =>
  Schema.transformOrFail(Schema.String, Schema.typeSchema(StorePath), {
    strict: true,
    decode: (s, _, ast) =>
      Either.match(decode(s), {
        onLeft: (e) => ParseResult.fail(new ParseResult.Type(ast, s, e.message)),
        onRight: ParseResult.succeed
      }),
    encode: (sp) => ParseResult.succeed(encode(sp))
  }).annotations({ identifier })

/** Schema between a basename `<hash>-<name>` and a `StorePath`. */
export const FromBasename: Schema.Schema<StorePath, string> = fromStringSchema(
  "StorePathFromBasename",
  parseBasename,
  toBasename
)

/** Schema between an absolute path under `storeDir` and a `StorePath`. */
export const fromAbsolutePath = (storeDir: string = defaultStoreDir): Schema.Schema<StorePath, string> =>
  fromStringSchema("StorePathFromAbsolutePath", (s) => parseAbsolutePath(s, storeDir), (sp) => toAbsolutePath(sp, storeDir))

/** Schema between an absolute path under `/nix/store` and a `StorePath`. */
export const FromAbsolutePath: Schema.Schema<StorePath, string> = fromAbsolutePath(defaultStoreDir)

/** FastCheck arbitrary of valid store paths (for property tests). */
export const arbitrary: FastCheck.Arbitrary<StorePath> = Arbitrary.make(StorePath)
