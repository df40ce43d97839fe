/**
 * Hashes as Nix prints and parses them: md5, sha1, sha256, sha512, in the
 * forms `algo:<nixbase32>`, `algo:<hex>`, `algo:<base64>`, SRI
 * (`algo-<base64>`) and a bare digest whose algorithm is known from context
 * (the encoding is then told apart by length, as Nix does).
 *
 * @since 0.1.0
 */
import { Arbitrary, Data, Either, Equal, FastCheck, Hash, ParseResult, Schema } from "effect"
import * as Base64 from "./internal/base64.js"
import * as Nixbase32 from "./Nixbase32.js"

/** The hash algorithms Nix knows. */
export const Algorithm = Schema.Literal("md5", "sha1", "sha256", "sha512")
/** @see Algorithm */
export type Algorithm = typeof Algorithm.Type

/** Digest length in bytes per algorithm. */
export const digestLength: { readonly [A in Algorithm]: number } = { md5: 16, sha1: 20, sha256: 32, sha512: 64 }

/** `true` when `s` names an algorithm Nix knows. */
export const isAlgorithm = (s: string): s is Algorithm =>
  s === "sha256" || s === "sha512" || s === "sha1" || s === "md5"

/** How a digest is written: lowercase hex, nixbase32 or standard (padded) base64. */
export type Encoding = "hex" | "nixbase32" | "base64"

/**
 * A textual form of a whole hash: `algo:` followed by an `Encoding`, or SRI
 * (`algo-<base64>`).
 */
export type Format = Encoding | "sri"

/** Why a hash could not be parsed or built. */
export type NixHashErrorReason =
  | "UnknownAlgorithm"
  | "MissingAlgorithm"
  | "AlgorithmMismatch"
  | "InvalidDigestLength"
  | "InvalidEncoding"

/** A hash string or digest was rejected; `message` says what was wrong. */
export class NixHashError extends Data.TaggedError("NixHashError")<{
  readonly input: string
  readonly reason: NixHashErrorReason
  readonly detail: string
}> {
  override get message(): string {
    return `invalid hash ${JSON.stringify(this.input)}: ${this.detail}`
  }
}

const fail = (input: string, reason: NixHashErrorReason, detail: string) =>
  Either.left(new NixHashError({ input, reason, detail }))

/**
 * A hash: the algorithm and a digest of exactly that algorithm's length.
 * Equality compares algorithm and digest bytes.
 */
export class NixHash extends Schema.Class<NixHash>("@nixfx/nix-compat/NixHash")(
  Schema.Struct({
    algorithm: Algorithm,
    digest: Schema.Uint8ArrayFromSelf
  }).pipe(
    Schema.filter((h) =>
      h.digest.length === digestLength[h.algorithm] ||
      `a ${h.algorithm} digest is ${digestLength[h.algorithm]} bytes, got ${h.digest.length}`
    ),
    Schema.annotations({
      arbitrary: () => (fc) =>
        fc.constantFrom<Algorithm>("md5", "sha1", "sha256", "sha512").chain((algorithm) =>
          fc.uint8Array({ minLength: digestLength[algorithm], maxLength: digestLength[algorithm] }).map((digest) => ({
            algorithm,
            digest
          }))
        )
    })
  )
) {
  /** `algo:<nixbase32>` (Nix's default printing). */
  override toString(): string {
    return toNixbase32String(this)
  }

  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof NixHash && equals(this, that)
  }

  [Hash.symbol](): number {
    return Hash.cached(this, Hash.string(this.algorithm + ":" + Buffer.from(this.digest).toString("hex")))
  }
}

/** Builds a hash from trusted parts (no validation). @internal */
export const unsafeMake = (algorithm: Algorithm, digest: Uint8Array): NixHash => {
  // what the class constructor builds, without its per-call overhead (parsers make many)
  const h = Object.create(NixHash.prototype) as { algorithm: Algorithm; digest: Uint8Array }
  h.algorithm = algorithm
  h.digest = digest
  return h as NixHash
}

/** Builds a hash, checking the digest length against the algorithm. */
export const make = (algorithm: Algorithm, digest: Uint8Array): Either.Either<NixHash, NixHashError> =>
  digest.length === digestLength[algorithm]
    ? Either.right(unsafeMake(algorithm, digest))
    : fail(
      Buffer.from(digest).toString("hex"),
      "InvalidDigestLength",
      `a ${algorithm} digest is ${digestLength[algorithm]} bytes, got ${digest.length}`
    )

/** `true` when algorithm and digest bytes are equal. */
export const equals = (a: NixHash, b: NixHash): boolean => {
  if (a === b) return true
  if (a.algorithm !== b.algorithm) return false
  const x = a.digest
  const y = b.digest
  if (x.length !== y.length) return false
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false
  return true
}

// ---------------------------------------------------------------------------
// encodings of a bare digest
// ---------------------------------------------------------------------------

/** Length in characters of a digest of `algorithm` in `encoding`. */
export const encodedLength = (algorithm: Algorithm, encoding: Encoding): number => {
  const n = digestLength[algorithm]
  switch (encoding) {
    case "hex":
      return n * 2
    case "nixbase32":
      return Nixbase32.encodedLength(n)
    case "base64":
      return Math.ceil(n / 3) * 4
  }
}

/** Writes the bare digest in `encoding`. */
export const encodeDigest = (digest: Uint8Array, encoding: Encoding): string => {
  switch (encoding) {
    case "hex":
      return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString("hex")
    case "nixbase32":
      return Nixbase32.encode(digest)
    case "base64":
      return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString("base64")
  }
}

const isLowerHex = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false
  }
  return true
}

/**
 * Decodes a bare digest known to be of `algorithm`, in the given encoding
 * (canonical forms only: lowercase hex; nixbase32 and padded base64 with zero
 * trailing bits), reporting problems against `input` (the whole string being
 * parsed).
 *
 * @internal
 */
export const decodeDigestAs = (
  s: string,
  algorithm: Algorithm,
  encoding: Encoding,
  input: string = s
): Either.Either<Uint8Array, NixHashError> => {
  const expected = encodedLength(algorithm, encoding)
  if (s.length !== expected) {
    return fail(
      input,
      "InvalidDigestLength",
      `a ${algorithm} digest in ${encoding} is ${expected} characters, got ${s.length}`
    )
  }
  switch (encoding) {
    case "nixbase32": {
      const out = new Uint8Array(digestLength[algorithm])
      const failure = Nixbase32.decodeInto(s, 0, s.length, out)
      if (failure === undefined) return Either.right(out)
      return fail(
        input,
        "InvalidEncoding",
        failure.reason === "InvalidCharacter"
          ? `invalid nixbase32 character '${s[failure.position]}' at position ${failure.position}`
          : "non-canonical nixbase32 (unused trailing bits are not zero)"
      )
    }
    case "hex": {
      if (!isLowerHex(s)) return fail(input, "InvalidEncoding", "invalid lowercase hex digest")
      return Either.right(new Uint8Array(Buffer.from(s, "hex")))
    }
    case "base64": {
      const r = Base64.decode(s, 0, s.length, digestLength[algorithm])
      if (r instanceof Uint8Array) return Either.right(r)
      switch (r.reason) {
        case "WrongSize":
          return fail(
            input,
            "InvalidDigestLength",
            `base64 digest decodes to ${r.bytes} bytes, a ${algorithm} digest is ${digestLength[algorithm]}`
          )
        case "InvalidCharacter":
          return fail(input, "InvalidEncoding", `invalid base64 character ${JSON.stringify(s[r.position])} at position ${r.position}`)
        default:
          return fail(input, "InvalidEncoding", "non-canonical base64 digest (non-zero trailing bits)")
      }
    }
  }
}

/** Tells the encoding of a bare digest of `algorithm` apart by its length, as Nix does. */
export const encodingOfLength = (algorithm: Algorithm, length: number): Encoding | undefined => {
  const n = digestLength[algorithm]
  if (length === n * 2) return "hex"
  if (length === Nixbase32.encodedLength(n)) return "nixbase32"
  if (length === Math.ceil(n / 3) * 4) return "base64"
  return undefined
}

/** A parsed hash together with the form it was written in. */
export interface Parsed {
  readonly hash: NixHash
  /** `sri` for `algo-<base64>`, else the digest encoding after `algo:` (or of the bare digest). */
  readonly format: Format
  /** `false` for a bare digest (algorithm given by the caller). */
  readonly prefixed: boolean
}

/**
 * Parses a bare digest of a known algorithm, telling hex, nixbase32 and
 * base64 apart by length (as Nix does).
 */
export const parseDigest = (
  s: string,
  algorithm: Algorithm,
  input: string = s
): Either.Either<{ readonly hash: NixHash; readonly encoding: Encoding }, NixHashError> => {
  const encoding = encodingOfLength(algorithm, s.length)
  if (encoding === undefined) {
    return fail(
      input,
      "InvalidDigestLength",
      `a ${algorithm} digest is ${encodedLength(algorithm, "nixbase32")} (nixbase32), ${
        encodedLength(algorithm, "hex")
      } (hex) or ${encodedLength(algorithm, "base64")} (base64) characters, got ${s.length}`
    )
  }
  return Either.map(decodeDigestAs(s, algorithm, encoding, input), (digest) => ({
    hash: unsafeMake(algorithm, digest),
    encoding
  }))
}

const checkExpected = (
  input: string,
  parsed: Parsed,
  expected: Algorithm | undefined
): Either.Either<Parsed, NixHashError> =>
  expected !== undefined && parsed.hash.algorithm !== expected
    ? fail(input, "AlgorithmMismatch", `expected a ${expected} hash, got ${parsed.hash.algorithm}`)
    : Either.right(parsed)

/**
 * Parses any form Nix accepts and tells which one it was: `algo:<digest>`
 * (hex, nixbase32 or base64 by length), SRI `algo-<base64>`, or — only when
 * `algorithm` is given — a bare digest. With `algorithm`, a prefixed hash of
 * another algorithm is an `AlgorithmMismatch`.
 */
export const parseDetailed = (s: string, algorithm?: Algorithm): Either.Either<Parsed, NixHashError> => {
  const colon = s.indexOf(":")
  if (colon >= 0) {
    const algo = s.slice(0, colon)
    if (!isAlgorithm(algo)) return fail(s, "UnknownAlgorithm", `unknown hash algorithm ${JSON.stringify(algo)}`)
    return Either.flatMap(
      parseDigest(s.slice(colon + 1), algo, s),
      ({ encoding, hash }) => checkExpected(s, { hash, format: encoding, prefixed: true }, algorithm)
    )
  }
  const dash = s.indexOf("-")
  if (dash >= 0) {
    const algo = s.slice(0, dash)
    if (!isAlgorithm(algo)) return fail(s, "UnknownAlgorithm", `unknown SRI hash algorithm ${JSON.stringify(algo)}`)
    return Either.flatMap(
      decodeDigestAs(s.slice(dash + 1), algo, "base64", s),
      (digest) => checkExpected(s, { hash: unsafeMake(algo, digest), format: "sri", prefixed: true }, algorithm)
    )
  }
  if (algorithm === undefined) {
    return fail(s, "MissingAlgorithm", "no algorithm prefix (`algo:` or SRI `algo-`) and none known from context")
  }
  return Either.map(parseDigest(s, algorithm), ({ encoding, hash }) => ({ hash, format: encoding, prefixed: false }))
}

/** Parses any form Nix accepts (see `parseDetailed`). */
export const parse = (s: string, algorithm?: Algorithm): Either.Either<NixHash, NixHashError> =>
  Either.map(parseDetailed(s, algorithm), (p) => p.hash)

// ---------------------------------------------------------------------------
// printing
// ---------------------------------------------------------------------------

/** `algo:<nixbase32>` */
export const toNixbase32String = (h: NixHash): string => h.algorithm + ":" + Nixbase32.encode(h.digest)

/** `algo:<hex>` */
export const toHexString = (h: NixHash): string => h.algorithm + ":" + encodeDigest(h.digest, "hex")

/** `algo:<base64>` */
export const toBase64String = (h: NixHash): string => h.algorithm + ":" + encodeDigest(h.digest, "base64")

/** SRI: `algo-<base64>` */
export const toSri = (h: NixHash): string => h.algorithm + "-" + encodeDigest(h.digest, "base64")

/** Prints in the given form. */
export const format = (h: NixHash, form: Format): string =>
  form === "sri" ? toSri(h) : h.algorithm + ":" + encodeDigest(h.digest, form)

// ---------------------------------------------------------------------------
// schemas
// ---------------------------------------------------------------------------

const fromString = (identifier: string, form: Format, algorithm?: Algorithm): Schema.Schema<NixHash, string> =>
  Schema.transformOrFail(Schema.String, Schema.typeSchema(NixHash), {
    strict: true,
    decode: (s, _, ast) =>
      Either.match(parse(s, algorithm), {
        onLeft: (e) => ParseResult.fail(new ParseResult.Type(ast, s, e.message)),
        onRight: ParseResult.succeed
      }),
    encode: (h, _, ast) =>
      algorithm !== undefined && h.algorithm !== algorithm
        ? ParseResult.fail(new ParseResult.Type(ast, h, `expected a ${algorithm} hash, got ${h.algorithm}`))
        : ParseResult.succeed(format(h, form))
  }).annotations({ identifier })

/** Decodes every form Nix accepts (except bare digests); encodes as `algo:<nixbase32>`. */
export const FromString: Schema.Schema<NixHash, string> = fromString("NixHashFromString", "nixbase32")

/** Decodes every form Nix accepts (except bare digests); encodes as SRI `algo-<base64>`. */
export const FromSri: Schema.Schema<NixHash, string> = fromString("NixHashFromSri", "sri")

/** Decodes every form Nix accepts (except bare digests); encodes as `algo:<hex>`. */
export const FromHexString: Schema.Schema<NixHash, string> = fromString("NixHashFromHexString", "hex")

/** Like `FromString`, for sha256 hashes only (e.g. a NarHash). */
export const Sha256FromString: Schema.Schema<NixHash, string> = fromString("Sha256FromString", "nixbase32", "sha256")

/** FastCheck arbitrary of hashes of every algorithm (for property tests). */
export const arbitrary: FastCheck.Arbitrary<NixHash> = Arbitrary.make(NixHash)
