/**
 * BLAKE3 digests as used throughout castore: blob contents and Directory messages
 * are addressed by the 32-byte BLAKE3 hash of their bytes.
 *
 * @since 0.1.0
 */
import { blake3, Blake3Hasher } from "@napi-rs/blake-hash"
import type * as Brand from "effect/Brand"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

/** The length of a BLAKE3 digest in bytes. */
export const LENGTH = 32

/**
 * A BLAKE3 digest: exactly 32 bytes. Treat it as immutable.
 *
 * @since 0.1.0
 */
export type B3Digest = Uint8Array & Brand.Brand<"B3Digest">

/**
 * A byte array that is not 32 bytes long was offered as a digest.
 *
 * @since 0.1.0
 */
export class InvalidDigestLength extends Schema.TaggedError<InvalidDigestLength>()("InvalidDigestLength", {
  length: Schema.Number
}) {
  override get message(): string {
    return `digest must be ${LENGTH} bytes, got ${this.length}`
  }
}

/**
 * A textual digest (hex or base64) that could not be parsed.
 *
 * @since 0.1.0
 */
export class InvalidDigestEncoding extends Schema.TaggedError<InvalidDigestEncoding>()("InvalidDigestEncoding", {
  encoding: Schema.Literal("hex", "base64"),
  input: Schema.String
}) {
  override get message(): string {
    const shown = this.input.length > 100 ? JSON.stringify(this.input.slice(0, 100)) + "…" : JSON.stringify(this.input)
    return `invalid ${this.encoding} digest ${shown}: expected ${
      this.encoding === "hex" ? "64 hex digits" : "44 base64 characters (32 bytes)"
    }`
  }
}

/**
 * `Uint8Array` → `B3Digest`: checks the length (the bytes are not copied).
 *
 * @since 0.1.0
 */
export const B3Digest: Schema.brand<Schema.filter<typeof Schema.Uint8ArrayFromSelf>, "B3Digest"> = Schema
  .Uint8ArrayFromSelf.pipe(
    Schema.filter((bytes) => bytes.length === LENGTH || `digest must be ${LENGTH} bytes, got ${bytes.length}`),
    Schema.brand("B3Digest"),
    Schema.annotations({ identifier: "B3Digest" })
  )

/**
 * Checks the length of `bytes` and brands them; the bytes are not copied.
 *
 * @since 0.1.0
 */
export const fromBytes = (bytes: Uint8Array): Either.Either<B3Digest, InvalidDigestLength> =>
  bytes.length === LENGTH
    ? Either.right(bytes as B3Digest)
    : Either.left(new InvalidDigestLength({ length: bytes.length }))

/**
 * Brands `bytes` after checking their length; throws a `RangeError` when they are
 * not 32 bytes (for values that are known to be digests, e.g. constants).
 *
 * @since 0.1.0
 */
export const unsafeMake = (bytes: Uint8Array): B3Digest => {
  if (bytes.length !== LENGTH) throw new RangeError(`digest must be ${LENGTH} bytes, got ${bytes.length}`)
  return bytes as B3Digest
}

const HEX_RE = /^[0-9a-fA-F]{64}$/
const BASE64_RE = /^[A-Za-z0-9+/]{43}=$/

/**
 * Parses 64 hex digits (either case).
 *
 * @since 0.1.0
 */
export const fromHex = (hex: string): Either.Either<B3Digest, InvalidDigestEncoding> =>
  HEX_RE.test(hex)
    ? Either.right(toUint8(Buffer.from(hex, "hex")) as B3Digest)
    : Either.left(new InvalidDigestEncoding({ encoding: "hex", input: hex }))

/**
 * Parses standard base64 with padding (44 characters).
 *
 * @since 0.1.0
 */
export const fromBase64 = (b64: string): Either.Either<B3Digest, InvalidDigestEncoding> => {
  if (!BASE64_RE.test(b64)) return Either.left(new InvalidDigestEncoding({ encoding: "base64", input: b64 }))
  const bytes = Buffer.from(b64, "base64")
  // Non-canonical encodings (non-zero padding bits) decode fine but do not round-trip.
  if (bytes.toString("base64") !== b64) {
    return Either.left(new InvalidDigestEncoding({ encoding: "base64", input: b64 }))
  }
  return Either.right(toUint8(bytes) as B3Digest)
}

/**
 * Lowercase hex (64 characters).
 *
 * @since 0.1.0
 */
export const toHex = (digest: Uint8Array): string =>
  Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString("hex")

/**
 * Standard base64 with padding (44 characters).
 *
 * @since 0.1.0
 */
export const toBase64 = (digest: B3Digest): string =>
  Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString("base64")

/**
 * Byte equality.
 *
 * @since 0.1.0
 */
export const equals = (a: B3Digest, b: B3Digest): boolean => {
  if (a === b) return true
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return false
  }
  return true
}

/**
 * A 32-bit hash of a digest (its first four bytes), for `Hash` implementations.
 *
 * @since 0.1.0
 */
export const hashCode = (digest: B3Digest): number =>
  (digest[0] | (digest[1] << 8) | (digest[2] << 16) | (digest[3] << 24)) | 0

/**
 * The BLAKE3 digest of `bytes`, computed in one native call. This is the cheapest
 * way to hash a buffer that is already complete, small or large.
 *
 * @since 0.1.0
 */
export const hash = (bytes: Uint8Array): B3Digest => toUint8(blake3(bytes)) as B3Digest

/**
 * An incremental BLAKE3 hasher for streamed input.
 *
 * @since 0.1.0
 */
export interface B3Hasher {
  /** Adds a chunk. Throws if called after `digest()`. */
  update(chunk: Uint8Array): void
  /** The digest of everything passed to `update`; finishes the hasher (calling it again returns the same digest). */
  digest(): B3Digest
}

// Creating a native Blake3Hasher costs 10-25µs (several times a one-shot hash of a
// small buffer), while reset() + reuse costs about as much as a one-shot hash. So
// finished hashers go back to a small pool and are reused: hashing many small
// files through `hasher()` stays close to the one-shot cost.
const pool: Array<Blake3Hasher> = []
const POOL_MAX = 32

/**
 * A new incremental hasher. Each `update` is one native call (sub-microsecond
 * fixed cost), so feed it reasonably large chunks; for a buffer already in memory
 * `hash` is slightly cheaper.
 *
 * @since 0.1.0
 */
export const hasher = (): B3Hasher => {
  let native: Blake3Hasher | undefined = pool.pop() ?? new Blake3Hasher()
  let result: B3Digest | undefined
  return {
    update(chunk) {
      if (native === undefined) throw new Error("B3Hasher.update called after digest()")
      if (chunk.length > 0) native.update(chunk)
    },
    digest() {
      if (result === undefined) {
        const n = native!
        native = undefined
        result = toUint8(n.digestBuffer()) as B3Digest
        n.reset()
        if (pool.length < POOL_MAX) pool.push(n)
      }
      return result
    }
  }
}

// Digests are handed out as plain `Uint8Array`s (not `Buffer`s) so that they compare
// equal to other `Uint8Array`s in deep-equality checks and print the same everywhere.
const toUint8 = (buf: Buffer): Uint8Array => new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
