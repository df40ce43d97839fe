/**
 * Signing and verifying narinfos with Nix's ed25519 keys.
 *
 * Keys and signatures themselves (parsing, printing, raw sign/verify of a
 * fingerprint) are in `Keys`; they are re-exported here for convenience.
 *
 * @since 0.1.0
 */
import { Option } from "effect"
import * as Keys from "./Keys.js"
import * as NarInfo from "./NarInfo.js"

export {
  formatPublicKey,
  formatSecretKey,
  formatSignature,
  generateSecretKey,
  KeyError,
  parsePublicKey,
  parsePublicKeys,
  parseSecretKey,
  parseSignature,
  PublicKey,
  SecretKey,
  Signature,
  signFingerprint,
  verifyFingerprint
} from "./Keys.js"

/** Which trusted key verified which signature of a narinfo. */
export interface Verified {
  readonly key: Keys.PublicKey
  readonly signature: Keys.Signature
}

/**
 * Checks the narinfo's signatures against `trustedKeys` (matched by key
 * name) and returns the first key that verifies one of them, or none.
 */
export const verify = (
  narInfo: NarInfo.NarInfo,
  trustedKeys: Iterable<Keys.PublicKey>,
  options?: NarInfo.Options
): Option.Option<Verified> => {
  if (narInfo.signatures.length === 0) return Option.none()
  const byName = new Map<string, Array<Keys.PublicKey>>()
  for (const k of trustedKeys) {
    const list = byName.get(k.name)
    if (list === undefined) byName.set(k.name, [k])
    else list.push(k)
  }
  let fp: string | undefined
  for (const signature of narInfo.signatures) {
    const keys = byName.get(signature.keyName)
    if (keys === undefined) continue
    fp ??= NarInfo.fingerprint(narInfo, options)
    for (const key of keys) {
      if (Keys.verifyFingerprint(fp, signature, key)) return Option.some({ key, signature })
    }
  }
  return Option.none()
}

/**
 * Signs the narinfo's fingerprint with `secretKey` and returns the narinfo
 * with that signature added (unchanged if it already carries exactly that
 * signature — ed25519 is deterministic).
 */
export const sign = (
  narInfo: NarInfo.NarInfo,
  secretKey: Keys.SecretKey,
  options?: NarInfo.Options
): NarInfo.NarInfo => {
  const signature = Keys.signFingerprint(NarInfo.fingerprint(narInfo, options), secretKey)
  const formatted = Keys.formatSignature(signature)
  if (narInfo.signatures.some((s) => Keys.formatSignature(s) === formatted)) return narInfo
  return new NarInfo.NarInfo({ ...narInfo, signatures: [...narInfo.signatures, signature] }, true)
}
