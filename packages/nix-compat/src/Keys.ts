/**
 * Nix signing keys and signatures (ed25519), in Nix's text formats:
 *
 * - public key: `name:base64(32-byte public key)`
 * - secret key: `name:base64(64 bytes = 32-byte seed ‖ 32-byte public key)`
 * - signature: `name:base64(64-byte ed25519 signature)`
 *
 * Signing and verification use `node:crypto`. Ed25519 is deterministic, so
 * signing the same message with the same key always gives the same bytes.
 *
 * @since 0.1.0
 */
import { Data, Either, Equal, Hash, ParseResult, Schema } from "effect"
import * as crypto from "node:crypto"
import * as Base64 from "./internal/base64.js"

/** Size of an ed25519 public key. */
export const publicKeyLength = 32
/** Size of a Nix secret key (seed ‖ public key). */
export const secretKeyLength = 64
/** Size of an ed25519 signature. */
export const signatureLength = 64

/** What was being parsed when a `KeyError` happened. */
export type KeyErrorSubject = "PublicKey" | "SecretKey" | "Signature"

/** Why a key or signature string was rejected. */
export type KeyErrorReason = "MissingSeparator" | "InvalidName" | "InvalidBase64" | "InvalidLength" | "InvalidKey"

const subjectLabel: Record<KeyErrorSubject, string> = {
  PublicKey: "public key",
  SecretKey: "secret key",
  Signature: "signature"
}

/**
 * A public key, secret key or signature was malformed. The input is kept only
 * for public keys and signatures; a secret key's text never appears in the message.
 */
export class KeyError extends Data.TaggedError("KeyError")<{
  readonly subject: KeyErrorSubject
  readonly reason: KeyErrorReason
  /** The key name, when it could be read. */
  readonly keyName: string | undefined
  readonly detail: string
}> {
  override get message(): string {
    const name = this.keyName === undefined ? "" : ` ${JSON.stringify(this.keyName)}`
    return `invalid ${subjectLabel[this.subject]}${name}: ${this.detail}`
  }
}

const fail = (subject: KeyErrorSubject, reason: KeyErrorReason, keyName: string | undefined, detail: string) =>
  Either.left(new KeyError({ subject, reason, keyName, detail }))

const bytesEqual = (x: Uint8Array, y: Uint8Array): boolean => {
  if (x.length !== y.length) return false
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false
  return true
}

const toBase64 = Base64.encode

/**
 * Strictly decodes padded standard base64 of exactly `length` bytes; returns
 * the bytes or a detail message.
 */
const decodeBase64 = (s: string, length: number): Uint8Array | { readonly reason: KeyErrorReason; readonly detail: string } => {
  const r = Base64.decode(s, 0, s.length, length)
  if (r instanceof Uint8Array) return r
  switch (r.reason) {
    case "InvalidLength":
      return {
        reason: "InvalidLength",
        detail: `expected ${Base64.encodedLength(length)} base64 characters (${length} bytes), got ${s.length}`
      }
    case "WrongSize":
      return { reason: "InvalidLength", detail: `expected ${length} bytes after base64 decoding, got ${r.bytes}` }
    case "InvalidCharacter":
      return {
        reason: "InvalidBase64",
        detail: `invalid base64 character ${JSON.stringify(s[r.position])} at position ${r.position}`
      }
    case "NonCanonical":
      return { reason: "InvalidBase64", detail: "non-canonical base64 (non-zero trailing bits)" }
  }
}

/** Checks a key name; returns a detail message when invalid. */
const checkName = (name: string): string | undefined => {
  if (name.length === 0) return "key name is empty"
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c <= 32 || c === 127) return `key name contains whitespace or a control character at position ${i}`
  }
  return undefined
}

/** Splits `name:base64` into its parts, checking the name. */
const splitNamed = (
  subject: KeyErrorSubject,
  s: string,
  length: number
): Either.Either<readonly [string, Uint8Array], KeyError> => {
  const colon = s.indexOf(":")
  if (colon < 0) return fail(subject, "MissingSeparator", undefined, "expected <name>:<base64>, found no ':'")
  const name = s.slice(0, colon)
  const nameProblem = checkName(name)
  if (nameProblem !== undefined) return fail(subject, "InvalidName", undefined, nameProblem)
  const b = s.slice(colon + 1)
  const bytes = decodeBase64(b, length)
  if (!(bytes instanceof Uint8Array)) return fail(subject, bytes.reason, name, bytes.detail)
  return Either.right([name, bytes] as const)
}

/**
 * A key name: non-empty, without ':' and without whitespace or control
 * characters (Nix splits `name:base64` at the first ':').
 */
export const KeyName = Schema.String.pipe(
  Schema.filter((s) => (s.includes(":") ? "key name contains ':'" : checkName(s)) ?? true, {
    arbitrary: () => (fc) => fc.stringMatching(/^[A-Za-z0-9.-]{1,30}$/)
  }),
  Schema.annotations({ identifier: "KeyName" })
)

// ---------------------------------------------------------------------------
// signatures
// ---------------------------------------------------------------------------

/** A signature: the name of the key that made it and 64 signature bytes. */
export class Signature extends Schema.Class<Signature>("@nixfx/nix-compat/Signature")({
  keyName: KeyName,
  bytes: Schema.Uint8ArrayFromSelf.pipe(
    Schema.filter((b) => b.length === signatureLength || `expected ${signatureLength} bytes, got ${b.length}`),
    Schema.annotations({
      arbitrary: () => (fc) => fc.uint8Array({ minLength: signatureLength, maxLength: signatureLength })
    })
  )
}) {
  /** `name:base64` as in a narinfo `Sig:` line. */
  override toString(): string {
    return formatSignature(this)
  }

  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof Signature && that.keyName === this.keyName && bytesEqual(this.bytes, that.bytes)
  }

  [Hash.symbol](): number {
    return Hash.cached(this, Hash.string(formatSignature(this)))
  }
}

/** Parses `name:base64(64 bytes)`. */
export const parseSignature = (s: string): Either.Either<Signature, KeyError> =>
  Either.map(splitNamed("Signature", s, signatureLength), ([keyName, bytes]) => unsafeMakeSignature(keyName, bytes))

/** Builds a signature from trusted parts (no validation). @internal */
export const unsafeMakeSignature = (keyName: string, bytes: Uint8Array): Signature => {
  // what the class constructor builds, without its per-call overhead (narinfo parsing makes many)
  const sig = Object.create(Signature.prototype) as { keyName: string; bytes: Uint8Array }
  sig.keyName = keyName
  sig.bytes = bytes
  return sig as Signature
}

/** `name:base64` */
export const formatSignature = (sig: Signature): string => sig.keyName + ":" + toBase64(sig.bytes)

// ---------------------------------------------------------------------------
// public keys
// ---------------------------------------------------------------------------

const publicKeyObjects = new WeakMap<PublicKey, crypto.KeyObject>()

const base64url = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64url")

/** A named ed25519 public key (Nix: `trusted-public-keys` entries). */
export class PublicKey extends Schema.Class<PublicKey>("@nixfx/nix-compat/PublicKey")({
  name: KeyName,
  key: Schema.Uint8ArrayFromSelf.pipe(
    Schema.filter((b) => b.length === publicKeyLength || `expected ${publicKeyLength} bytes, got ${b.length}`),
    // Real keys (derived from random seeds): filtering random arrays for 32 bytes never ends.
    Schema.annotations({
      arbitrary: () => (fc) => fc.uint8Array({ minLength: 32, maxLength: 32 }).map((seed) => derivePublic(seed))
    })
  )
}) {
  /** `name:base64` */
  override toString(): string {
    return formatPublicKey(this)
  }

  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof PublicKey && that.name === this.name && bytesEqual(this.key, that.key)
  }

  [Hash.symbol](): number {
    return Hash.cached(this, Hash.string(formatPublicKey(this)))
  }
}

const publicKeyObject = (pk: PublicKey): crypto.KeyObject => {
  let ko = publicKeyObjects.get(pk)
  if (ko === undefined) {
    ko = crypto.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: base64url(pk.key) }, format: "jwk" })
    publicKeyObjects.set(pk, ko)
  }
  return ko
}

/** Parses `name:base64(32 bytes)`, checking that the bytes are a usable ed25519 key. */
export const parsePublicKey = (s: string): Either.Either<PublicKey, KeyError> =>
  Either.flatMap(splitNamed("PublicKey", s.trim(), publicKeyLength), ([name, key]) => {
    const pk = new PublicKey({ name, key }, true)
    try {
      publicKeyObject(pk)
    } catch (e) {
      return fail("PublicKey", "InvalidKey", name, `not an ed25519 public key: ${String(e)}`)
    }
    return Either.right(pk)
  })

/**
 * Parses a whitespace-separated list of public keys (as in Nix's
 * `trusted-public-keys` setting); fails on the first malformed one.
 */
export const parsePublicKeys = (s: string): Either.Either<ReadonlyArray<PublicKey>, KeyError> => {
  const out: Array<PublicKey> = []
  for (const part of s.split(/\s+/)) {
    if (part === "") continue
    const r = parsePublicKey(part)
    if (Either.isLeft(r)) return Either.left(r.left)
    out.push(r.right)
  }
  return Either.right(out)
}

/** `name:base64` */
export const formatPublicKey = (pk: PublicKey): string => pk.name + ":" + toBase64(pk.key)

// ---------------------------------------------------------------------------
// secret keys
// ---------------------------------------------------------------------------

const privateKeyObjects = new WeakMap<SecretKey, crypto.KeyObject>()

/**
 * A named ed25519 secret key: the 32-byte seed and its 32-byte public key.
 * Printing (`toString`, `toJSON`, inspection) hides the seed; use
 * `formatSecretKey` to write it out.
 */
export class SecretKey extends Schema.Class<SecretKey>("@nixfx/nix-compat/SecretKey")({
  name: KeyName,
  seed: Schema.Uint8ArrayFromSelf.pipe(Schema.filter((b) => b.length === 32 || `expected 32 bytes, got ${b.length}`)),
  publicKey: Schema.Uint8ArrayFromSelf.pipe(
    Schema.filter((b) => b.length === publicKeyLength || `expected ${publicKeyLength} bytes, got ${b.length}`)
  )
}) {
  override toString(): string {
    return `SecretKey(${this.name}: <redacted>)`
  }

  toJSON(): unknown {
    return { _id: "SecretKey", name: this.name, seed: "<redacted>" }
  }

  /** The matching public key. */
  get public(): PublicKey {
    return new PublicKey({ name: this.name, key: this.publicKey }, true)
  }
}

const privateKeyObject = (sk: SecretKey): crypto.KeyObject => {
  let ko = privateKeyObjects.get(sk)
  if (ko === undefined) {
    ko = crypto.createPrivateKey({
      key: { kty: "OKP", crv: "Ed25519", x: base64url(sk.publicKey), d: base64url(sk.seed) },
      format: "jwk"
    })
    privateKeyObjects.set(sk, ko)
  }
  return ko
}

const derivePublic = (seed: Uint8Array): Uint8Array => {
  const priv = crypto.createPrivateKey({
    // x is required by JWK import but not used to derive: compute from d alone via PKCS#8
    key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]),
    format: "der",
    type: "pkcs8"
  })
  const jwk = crypto.createPublicKey(priv).export({ format: "jwk" })
  return new Uint8Array(Buffer.from(jwk.x as string, "base64url"))
}

/**
 * Parses Nix's secret key format `name:base64(seed ‖ public key)`; the public
 * half must be the one the seed derives.
 */
export const parseSecretKey = (s: string): Either.Either<SecretKey, KeyError> =>
  Either.flatMap(splitNamed("SecretKey", s.trim(), secretKeyLength), ([name, bytes]) => {
    const seed = bytes.slice(0, 32)
    const publicKey = bytes.slice(32)
    let derived: Uint8Array
    try {
      derived = derivePublic(seed)
    } catch (e) {
      return fail("SecretKey", "InvalidKey", name, `not an ed25519 seed: ${String(e)}`)
    }
    if (!bytesEqual(derived, publicKey)) {
      return fail("SecretKey", "InvalidKey", name, "the public half does not belong to the seed")
    }
    return Either.right(new SecretKey({ name, seed, publicKey }, true))
  })

/** `name:base64(seed ‖ public key)`, Nix's secret key file contents. */
export const formatSecretKey = (sk: SecretKey): string =>
  sk.name + ":" + Buffer.concat([sk.seed, sk.publicKey]).toString("base64")

/** Makes a fresh random secret key named `name` (like `nix-store --generate-binary-cache-key`). */
export const generateSecretKey = (name: string): Either.Either<SecretKey, KeyError> => {
  const problem = checkName(name)
  if (problem !== undefined) return fail("SecretKey", "InvalidName", undefined, problem)
  const seed = new Uint8Array(crypto.randomBytes(32))
  return Either.right(new SecretKey({ name, seed, publicKey: derivePublic(seed) }, true))
}

// ---------------------------------------------------------------------------
// signing and verifying
// ---------------------------------------------------------------------------

/** Signs a message (a narinfo fingerprint) with `key`. */
export const signFingerprint = (fingerprint: string, key: SecretKey): Signature =>
  new Signature(
    { keyName: key.name, bytes: new Uint8Array(crypto.sign(null, Buffer.from(fingerprint, "utf8"), privateKeyObject(key))) },
    true
  )

/** `true` when `signature` was made by `key` over `fingerprint` (and names that key). */
export const verifyFingerprint = (fingerprint: string, signature: Signature, key: PublicKey): boolean =>
  signature.keyName === key.name &&
  crypto.verify(null, Buffer.from(fingerprint, "utf8"), publicKeyObject(key), signature.bytes)

// ---------------------------------------------------------------------------
// schemas
// ---------------------------------------------------------------------------

const fromString = <A>(
  identifier: string,
  target: Schema.Schema<A>,
  parse: (s: string) => Either.Either<A, KeyError>,
  format: (a: A) => string
): Schema.Schema<A, string> =>
  Schema.transformOrFail(Schema.String, target, {
    strict: true,
    decode: (s, _, ast) =>
      Either.match(parse(s), {
        onLeft: (e) => ParseResult.fail(new ParseResult.Type(ast, s, e.message)),
        onRight: ParseResult.succeed
      }),
    encode: (a) => ParseResult.succeed(format(a))
  }).annotations({ identifier })

/** Schema between `name:base64` and a `Signature`. */
export const SignatureFromString: Schema.Schema<Signature, string> = fromString(
  "SignatureFromString",
  Schema.typeSchema(Signature),
  parseSignature,
  formatSignature
)

/** Schema between `name:base64` and a `PublicKey`. */
export const PublicKeyFromString: Schema.Schema<PublicKey, string> = fromString(
  "PublicKeyFromString",
  Schema.typeSchema(PublicKey),
  parsePublicKey,
  formatPublicKey
)

/** Schema between Nix's secret key text and a `SecretKey`. */
export const SecretKeyFromString: Schema.Schema<SecretKey, string> = fromString(
  "SecretKeyFromString",
  Schema.typeSchema(SecretKey),
  parseSecretKey,
  formatSecretKey
)
