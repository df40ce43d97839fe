/**
 * Content addresses of store paths, as written in a narinfo `CA:` field:
 *
 * - `fixed:r:<algo>:<hash>`: the NAR serialisation hashed with `algo` ("recursive"),
 * - `fixed:<algo>:<hash>`: a single flat file hashed with `algo`,
 * - `text:sha256:<hash>`: a text file (e.g. a `.drv`) hashed with sha256.
 *
 * Parsing accepts the digest in nixbase32, hex or base64 (told apart by
 * length, as Nix does); rendering writes nixbase32, as Nix does.
 *
 * @since 0.1.0
 */
import { Arbitrary, Data, Either, FastCheck, ParseResult, Schema } from "effect"
import * as NixHash from "./NixHash.js"

/** `fixed:r:<algo>:<hash>`: the NAR serialisation of the path, hashed. */
export class Nar extends Schema.TaggedClass<Nar>("@nixfx/nix-compat/CAHash/Nar")("Nar", {
  hash: NixHash.NixHash
}) {}

/** `fixed:<algo>:<hash>`: the contents of a single regular file, hashed. */
export class Flat extends Schema.TaggedClass<Flat>("@nixfx/nix-compat/CAHash/Flat")("Flat", {
  hash: NixHash.NixHash
}) {}

const Sha256 = NixHash.NixHash.pipe(
  Schema.filter((h) => h.algorithm === "sha256" || `text content addresses use sha256, got ${h.algorithm}`),
  Schema.annotations({
    arbitrary: () => (fc) =>
      fc.uint8Array({ minLength: 32, maxLength: 32 }).map((digest) => NixHash.unsafeMake("sha256", digest))
  })
)

/** `text:sha256:<hash>`: a text file (a `.drv` or `builtins.toFile` output), always sha256. */
export class Text extends Schema.TaggedClass<Text>("@nixfx/nix-compat/CAHash/Text")("Text", {
  hash: Sha256
}) {}

/** A content address. */
export const CAHash = Schema.Union(Nar, Flat, Text)
/** @see CAHash */
export type CAHash = Nar | Flat | Text

/** A `CA:` string was rejected; `message` says why. */
export class CAHashError extends Data.TaggedError("CAHashError")<{
  readonly input: string
  readonly detail: string
}> {
  override get message(): string {
    return `invalid content address ${JSON.stringify(this.input)}: ${this.detail}`
  }
}

const fail = (input: string, detail: string) => Either.left(new CAHashError({ input, detail }))

/** A parsed content address with the encoding its digest was written in. */
export interface Parsed {
  readonly ca: CAHash
  readonly encoding: NixHash.Encoding
}

const digestPart = (
  input: string,
  rest: string,
  make: (h: NixHash.NixHash) => CAHash,
  onlySha256: boolean
): Either.Either<Parsed, CAHashError> => {
  const colon = rest.indexOf(":")
  if (colon < 0) return fail(input, "expected <algo>:<hash>")
  const algo = rest.slice(0, colon)
  if (!NixHash.isAlgorithm(algo)) return fail(input, `unknown hash algorithm ${JSON.stringify(algo)}`)
  if (onlySha256 && algo !== "sha256") return fail(input, `text content addresses use sha256, got ${algo}`)
  const digest = NixHash.parseDigest(rest.slice(colon + 1), algo)
  if (Either.isLeft(digest)) return fail(input, digest.left.detail)
  return Either.right({ ca: make(digest.right.hash), encoding: digest.right.encoding })
}

/** Parses a content address and tells the digest's encoding. */
export const parseDetailed = (s: string): Either.Either<Parsed, CAHashError> => {
  if (s.startsWith("fixed:r:")) return digestPart(s, s.slice(8), (hash) => new Nar({ hash }, true), false)
  if (s.startsWith("fixed:")) return digestPart(s, s.slice(6), (hash) => new Flat({ hash }, true), false)
  if (s.startsWith("text:")) return digestPart(s, s.slice(5), (hash) => new Text({ hash }, true), true)
  return fail(s, "expected it to start with 'fixed:r:', 'fixed:' or 'text:'")
}

/** Parses `fixed:r:<algo>:<hash>`, `fixed:<algo>:<hash>` or `text:sha256:<hash>`. */
export const parse = (s: string): Either.Either<CAHash, CAHashError> => Either.map(parseDetailed(s), (p) => p.ca)

const prefixOf = (ca: CAHash): string => ca._tag === "Nar" ? "fixed:r:" : ca._tag === "Flat" ? "fixed:" : "text:"

/** Renders as Nix does (nixbase32 digest), or with another digest encoding. */
export const render = (ca: CAHash, encoding: NixHash.Encoding = "nixbase32"): string =>
  prefixOf(ca) + ca.hash.algorithm + ":" + NixHash.encodeDigest(ca.hash.digest, encoding)

/** Schema between the `CA:` string and a `CAHash`; encodes nixbase32 as Nix does. */
export const FromString: Schema.Schema<CAHash, string> = Schema.transformOrFail(
  Schema.String,
  Schema.typeSchema(CAHash),
  {
    strict: true,
    decode: (s, _, ast) =>
      Either.match(parse(s), {
        onLeft: (e) => ParseResult.fail(new ParseResult.Type(ast, s, e.message)),
        onRight: ParseResult.succeed
      }),
    encode: (ca) => ParseResult.succeed(render(ca))
  }
).annotations({ identifier: "CAHashFromString" })

/** FastCheck arbitrary of content addresses (for property tests). */
export const arbitrary: FastCheck.Arbitrary<CAHash> = Arbitrary.make(CAHash)
