/**
 * Small HTTP pieces of the binary cache server: byte ranges, content
 * negotiation, entity tags, credentials.
 *
 * @internal
 */
import * as crypto from "node:crypto"

// ---------------------------------------------------------------------------
// Range (RFC 9110 §14)
// ---------------------------------------------------------------------------

/**
 * What a `Range` header asks of a representation of `size` bytes:
 *
 * - `Full`: no usable range — absent, not `bytes=`, syntactically invalid, or
 *   several ranges (answered with the whole body, which RFC 9110 allows);
 * - `Partial`: one satisfiable range `[start, end)`;
 * - `Unsatisfiable`: one range that lies wholly past the end (416).
 */
export type RangeRequest =
  | { readonly _tag: "Full" }
  | { readonly _tag: "Partial"; readonly start: number; readonly end: number }
  | { readonly _tag: "Unsatisfiable" }

const FULL: RangeRequest = { _tag: "Full" }
const DIGITS = /^[0-9]+$/

export const parseRange = (header: string | undefined, size: number): RangeRequest => {
  if (header === undefined) return FULL
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header)
  if (m === null) return FULL
  const spec = m[1].trim()
  if (spec.includes(",")) return FULL
  const dash = spec.indexOf("-")
  if (dash < 0) return FULL
  const first = spec.slice(0, dash).trim()
  const last = spec.slice(dash + 1).trim()
  if (first === "") {
    // suffix range: the last N bytes
    if (!DIGITS.test(last)) return FULL
    const n = Number(last)
    if (!Number.isSafeInteger(n)) return FULL
    if (n === 0 || size === 0) return { _tag: "Unsatisfiable" }
    return { _tag: "Partial", start: Math.max(0, size - n), end: size }
  }
  if (!DIGITS.test(first) || (last !== "" && !DIGITS.test(last))) return FULL
  const start = Number(first)
  if (!Number.isSafeInteger(start)) return { _tag: "Unsatisfiable" }
  let end = size
  if (last !== "") {
    const lastByte = Number(last)
    if (lastByte < start) return FULL
    if (Number.isSafeInteger(lastByte)) end = Math.min(size, lastByte + 1)
  }
  if (start >= size) return { _tag: "Unsatisfiable" }
  return { _tag: "Partial", start, end }
}

// ---------------------------------------------------------------------------
// Accept-Encoding
// ---------------------------------------------------------------------------

/** Whether `Accept-Encoding` names `zstd` with a non-zero quality. */
export const acceptsZstd = (header: string | undefined): boolean => {
  if (header === undefined) return false
  for (const part of header.split(",")) {
    const [coding, ...params] = part.split(";").map((s) => s.trim())
    if (coding.toLowerCase() !== "zstd") continue
    for (const p of params) {
      const q = /^q\s*=\s*([0-9.]+)$/i.exec(p)
      if (q !== null && Number(q[1]) === 0) return false
    }
    return true
  }
  return false
}

// ---------------------------------------------------------------------------
// ETag
// ---------------------------------------------------------------------------

/** A strong entity tag over `text` (a narinfo, `nix-cache-info`). */
export const etagOf = (text: string): string =>
  `"${crypto.createHash("sha256").update(text).digest("base64url").slice(0, 27)}"`

const opaque = (tag: string): string => (tag.startsWith("W/") ? tag.slice(2) : tag)

/** Whether `If-None-Match` matches `etag` (weak comparison, as RFC 9110 wants for it). */
export const noneMatch = (header: string | undefined, etag: string): boolean => {
  if (header === undefined) return false
  if (header.trim() === "*") return true
  const want = opaque(etag)
  return header.split(",").some((t) => opaque(t.trim()) === want)
}

/** Whether `If-Range` allows a partial answer: absent, or the current strong tag. */
export const ifRangeAllows = (header: string | undefined, etag: string): boolean =>
  header === undefined || (!header.startsWith("W/") && header.trim() === etag)

// ---------------------------------------------------------------------------
// credentials
// ---------------------------------------------------------------------------

const digest = (s: string): Buffer => crypto.createHash("sha256").update(s, "utf8").digest()

/**
 * Checks an `Authorization` header against the upload token in constant
 * time: `Bearer <token>`, or `Basic` with the token as the password (any
 * user name), which is what Nix sends from a netrc file.
 */
export const makeTokenCheck = (token: string): ((authorization: string | undefined) => boolean) => {
  const expected = digest(token)
  return (authorization) => {
    if (authorization === undefined) return false
    const m = /^\s*(\S+)\s+(\S+)\s*$/.exec(authorization)
    if (m === null) return false
    const scheme = m[1].toLowerCase()
    let given: string
    if (scheme === "bearer") {
      given = m[2]
    } else if (scheme === "basic") {
      const decoded = Buffer.from(m[2], "base64").toString("utf8")
      const colon = decoded.indexOf(":")
      if (colon < 0) return false
      given = decoded.slice(colon + 1)
    } else {
      return false
    }
    return crypto.timingSafeEqual(digest(given), expected)
  }
}
