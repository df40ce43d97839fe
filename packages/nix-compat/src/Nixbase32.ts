/**
 * Nix's base-32 encoding ("nixbase32").
 *
 * Nix prints digests in base 32 with its own alphabet (no `e`, `o`, `u`, `t`)
 * and in an unusual bit order: the output starts with the bits of the *last*
 * byte. A 20-byte store path digest is 32 characters, a sha256 is 52.
 *
 * @since 0.1.0
 */
import { Data, Either, ParseResult, Schema } from "effect"

/** The 32 characters of the nixbase32 alphabet, in digit order. */
export const alphabet = "0123456789abcdfghijklmnpqrsvwxyz"

/** Lookup table from char code (0..127) to digit value, -1 for characters outside the alphabet. */
const digitOf: Int8Array = (() => {
  const table = new Int8Array(128).fill(-1)
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i
  return table
})()

/** Number of characters needed to encode `byteLength` bytes. */
export const encodedLength = (byteLength: number): number => Math.ceil((byteLength * 8) / 5)

/** Number of bytes that `charLength` characters decode to (if that length is valid at all). */
export const decodedLength = (charLength: number): number => Math.floor((charLength * 5) / 8)

/** Why a string is not valid nixbase32. */
export type Nixbase32ErrorReason = "InvalidLength" | "InvalidCharacter" | "NonCanonical"

/**
 * A string could not be decoded as nixbase32.
 *
 * `position` is the character index (from the start of the input) for
 * `InvalidCharacter`, and -1 otherwise.
 */
export class Nixbase32Error extends Data.TaggedError("Nixbase32Error")<{
  readonly input: string
  readonly reason: Nixbase32ErrorReason
  readonly position: number
  readonly expectedBytes?: number | undefined
}> {
  override get message(): string {
    switch (this.reason) {
      case "InvalidCharacter":
        return `invalid nixbase32 character '${this.input[this.position]}' at position ${this.position} of ${
          JSON.stringify(this.input)
        }`
      case "InvalidLength":
        return this.expectedBytes === undefined
          ? `invalid nixbase32 length ${this.input.length} of ${JSON.stringify(this.input)}: no byte length encodes to it`
          : `invalid nixbase32 length ${this.input.length} of ${JSON.stringify(this.input)}: expected ${
            encodedLength(this.expectedBytes)
          } characters for ${this.expectedBytes} bytes`
      case "NonCanonical":
        return `non-canonical nixbase32 ${JSON.stringify(this.input)}: unused trailing bits are not zero`
    }
  }
}

/** Encodes bytes as nixbase32 (Nix order: the first character holds the bits of the last byte). */
export const encode = (bytes: Uint8Array): string => {
  const len = encodedLength(bytes.length)
  let out = ""
  for (let n = len - 1; n >= 0; n--) {
    const b = n * 5
    const i = b >>> 3
    const j = b & 7
    const c = (bytes[i] >> j) | (i + 1 < bytes.length ? bytes[i + 1] << (8 - j) : 0)
    out += alphabet[c & 0x1f]
  }
  return out
}

/**
 * Decodes into `out` (which must be `decodedLength(s.length)` bytes, zeroed),
 * returning `undefined` on success or the error reason and position.
 * Plain function for hot paths; `decode` wraps it.
 *
 * @internal
 */
export const decodeInto = (
  s: string,
  start: number,
  end: number,
  out: Uint8Array
): undefined | { readonly reason: Nixbase32ErrorReason; readonly position: number } => {
  const size = out.length
  const count = end - start
  for (let n = 0; n < count; n++) {
    const pos = end - 1 - n
    const code = s.charCodeAt(pos)
    const digit = code < 128 ? digitOf[code] : -1
    if (digit < 0) return { reason: "InvalidCharacter", position: pos - start }
    const b = n * 5
    const i = b >>> 3
    const j = b & 7
    out[i] |= (digit << j) & 0xff
    const carry = digit >> (8 - j)
    if (i + 1 < size) out[i + 1] |= carry
    else if (carry !== 0) return { reason: "NonCanonical", position: -1 }
  }
  return undefined
}

/**
 * Decodes nixbase32. Rejects characters outside the alphabet, lengths that no
 * byte length encodes to (or that differ from `expectedBytes` when given) and
 * non-zero unused trailing bits (so every byte string has exactly one encoding).
 */
export const decode = (s: string, expectedBytes?: number): Either.Either<Uint8Array, Nixbase32Error> => {
  const size = expectedBytes ?? decodedLength(s.length)
  if (encodedLength(size) !== s.length) {
    return Either.left(new Nixbase32Error({ input: s, reason: "InvalidLength", position: -1, expectedBytes }))
  }
  const out = new Uint8Array(size)
  const failure = decodeInto(s, 0, s.length, out)
  return failure === undefined
    ? Either.right(out)
    : Either.left(new Nixbase32Error({ input: s, reason: failure.reason, position: failure.position, expectedBytes }))
}

/** `true` when `s` is canonical nixbase32 (of any valid length, or of `expectedBytes` bytes). */
export const isValid = (s: string, expectedBytes?: number): boolean => Either.isRight(decode(s, expectedBytes))

/**
 * Schema between a nixbase32 string and its bytes.
 */
export const Uint8ArrayFromNixbase32: Schema.Schema<Uint8Array, string> = Schema.transformOrFail(
  Schema.String,
  Schema.Uint8ArrayFromSelf,
  {
    strict: true,
    decode: (s, _, ast) =>
      Either.match(decode(s), {
        onLeft: (e) => ParseResult.fail(new ParseResult.Type(ast, s, e.message)),
        onRight: (bytes) => ParseResult.succeed(bytes)
      }),
    encode: (bytes) => ParseResult.succeed(encode(bytes))
  }
).annotations({ identifier: "Uint8ArrayFromNixbase32" })
