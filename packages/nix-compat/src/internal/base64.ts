/**
 * Strict standard base64 (RFC 4648 §4, padded) for short values (digests,
 * keys, signatures) on hot paths: a table-driven decoder that rejects
 * non-alphabet characters, wrong padding and non-zero trailing bits, so each
 * byte string has exactly one accepted encoding.
 *
 * @internal
 */

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

const valueOf: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1)
  for (let i = 0; i < 64; i++) t[alphabet.charCodeAt(i)] = i
  return t
})()

/** Number of characters of the padded encoding of `n` bytes. */
export const encodedLength = (n: number): number => Math.ceil(n / 3) * 4

/** Why a decode failed; `position` is the offending character index (from `start`), or -1. */
export type Failure =
  | { readonly reason: "InvalidLength"; readonly position: -1 }
  | { readonly reason: "WrongSize"; readonly position: -1; readonly bytes: number }
  | { readonly reason: "InvalidCharacter"; readonly position: number }
  | { readonly reason: "NonCanonical"; readonly position: -1 }

const invalidLength: Failure = { reason: "InvalidLength", position: -1 }
const nonCanonical: Failure = { reason: "NonCanonical", position: -1 }

/**
 * Decodes `s.slice(start, end)`, which must be the padded encoding of exactly
 * `length` bytes; returns the bytes or a `Failure`.
 */
export const decode = (s: string, start: number, end: number, length: number): Uint8Array | Failure => {
  if (end - start !== encodedLength(length)) return invalidLength
  let pad = 0
  while (pad < 2 && end - pad - 1 >= start && s.charCodeAt(end - pad - 1) === 61) pad++
  const size = ((end - start) / 4) * 3 - pad
  if (size !== length) {
    for (let i = start; i < end - pad; i++) {
      const c = s.charCodeAt(i)
      if (c >= 128 || valueOf[c] < 0) return { reason: "InvalidCharacter", position: i - start }
    }
    return { reason: "WrongSize", position: -1, bytes: size }
  }
  const out = new Uint8Array(length)
  const full = Math.floor(length / 3)
  let p = start
  let o = 0
  for (let g = 0; g < full; g++) {
    const c0 = s.charCodeAt(p)
    const c1 = s.charCodeAt(p + 1)
    const c2 = s.charCodeAt(p + 2)
    const c3 = s.charCodeAt(p + 3)
    const v0 = c0 < 128 ? valueOf[c0] : -1
    const v1 = c1 < 128 ? valueOf[c1] : -1
    const v2 = c2 < 128 ? valueOf[c2] : -1
    const v3 = c3 < 128 ? valueOf[c3] : -1
    if ((v0 | v1 | v2 | v3) < 0) {
      const bad = v0 < 0 ? 0 : v1 < 0 ? 1 : v2 < 0 ? 2 : 3
      return { reason: "InvalidCharacter", position: p + bad - start }
    }
    const n = (v0 << 18) | (v1 << 12) | (v2 << 6) | v3
    out[o++] = n >>> 16
    out[o++] = (n >>> 8) & 0xff
    out[o++] = n & 0xff
    p += 4
  }
  const rest = length - full * 3
  if (rest > 0) {
    // rest = 1: "xx==" (4 trailing bits must be 0); rest = 2: "xxx=" (2 trailing bits must be 0)
    const chars = rest + 1
    let n = 0
    for (let i = 0; i < chars; i++) {
      const c = s.charCodeAt(p + i)
      const v = c < 128 ? valueOf[c] : -1
      if (v < 0) return { reason: "InvalidCharacter", position: p + i - start }
      n = (n << 6) | v
    }
    for (let i = chars; i < 4; i++) {
      if (s.charCodeAt(p + i) !== 61) return { reason: "InvalidCharacter", position: p + i - start }
    }
    if (rest === 1) {
      if ((n & 0xf) !== 0) return nonCanonical
      out[o] = n >>> 4
    } else {
      if ((n & 0x3) !== 0) return nonCanonical
      out[o] = n >>> 10
      out[o + 1] = (n >>> 2) & 0xff
    }
  }
  return out
}

/** Padded standard base64. */
export const encode = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64")
