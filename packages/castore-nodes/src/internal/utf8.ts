/**
 * UTF-8 helpers over JS strings, written as plain loops: castore names are short,
 * and a loop beats a native call (TextEncoder/Buffer) for them.
 *
 * @internal
 */

/**
 * The UTF-8 byte length of `s`, or -1 when `s` is not well-formed Unicode
 * (it holds a lone surrogate, which has no UTF-8 form).
 */
export const utf8Length = (s: string): number => {
  const len = s.length
  let n = 0
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) {
      n += 1
    } else if (c < 0x800) {
      n += 2
    } else if (c < 0xd800 || c > 0xdfff) {
      n += 3
    } else if (c <= 0xdbff && i + 1 < len) {
      const d = s.charCodeAt(i + 1)
      if (d < 0xdc00 || d > 0xdfff) return -1
      n += 4
      i++
    } else {
      return -1
    }
  }
  return n
}

/**
 * Writes the UTF-8 form of the well-formed string `s` into `out` at `pos` and
 * returns the position after it. The caller has sized `out` with `utf8Length`.
 */
export const writeUtf8 = (s: string, out: Uint8Array, pos: number): number => {
  const len = s.length
  for (let i = 0; i < len; i++) {
    let c = s.charCodeAt(i)
    if (c < 0x80) {
      out[pos++] = c
    } else if (c < 0x800) {
      out[pos++] = 0xc0 | (c >> 6)
      out[pos++] = 0x80 | (c & 0x3f)
    } else if (c < 0xd800 || c > 0xdfff) {
      out[pos++] = 0xe0 | (c >> 12)
      out[pos++] = 0x80 | ((c >> 6) & 0x3f)
      out[pos++] = 0x80 | (c & 0x3f)
    } else {
      c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00)
      out[pos++] = 0xf0 | (c >> 18)
      out[pos++] = 0x80 | ((c >> 12) & 0x3f)
      out[pos++] = 0x80 | ((c >> 6) & 0x3f)
      out[pos++] = 0x80 | (c & 0x3f)
    }
  }
  return pos
}

/** The UTF-8 bytes of a well-formed string. */
export const encodeUtf8 = (s: string): Uint8Array => {
  const n = utf8Length(s)
  if (n < 0) throw new RangeError("encodeUtf8: string is not well-formed Unicode")
  const out = new Uint8Array(n)
  writeUtf8(s, out, 0)
  return out
}

// `ignoreBOM: true` keeps a leading U+FEFF: a name may legitimately start with it,
// and the default decoder would silently drop it (changing the name).
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

// For ASCII input, Buffer's latin1 slice is the fastest string constructor Node has
// (about 2x String.fromCharCode.apply and 1.3x TextDecoder for short names). It is
// an undocumented Buffer method, so fall back to TextDecoder if it ever disappears.
const latin1Slice: ((this: Uint8Array, start: number, end: number) => string) | undefined =
  (Buffer.prototype as unknown as { latin1Slice?: (this: Uint8Array, start: number, end: number) => string })
    .latin1Slice

/**
 * Decodes `bytes[start, end)` as strict UTF-8, or returns `undefined` when the
 * bytes are not valid UTF-8 (overlong forms, surrogates, truncated sequences).
 */
export const decodeUtf8 = (bytes: Uint8Array, start: number, end: number): string | undefined => {
  let i = start
  while (i < end && bytes[i] < 0x80) i++
  if (i === end) {
    return latin1Slice !== undefined ? latin1Slice.call(bytes, start, end) : strictDecoder.decode(bytes.subarray(start, end))
  }
  try {
    return strictDecoder.decode(bytes.subarray(start, end))
  } catch {
    return undefined
  }
}

/**
 * Orders two well-formed strings by their UTF-8 bytes (= by code point), without
 * encoding them. UTF-16 code unit order agrees with code point order except that
 * surrogates (U+D800–DFFF, used for astral code points) sort below U+E000–FFFF in
 * UTF-16 but above them by code point; the two ranges are swapped before comparing.
 */
export const compareUtf8 = (a: string, b: string): -1 | 0 | 1 => {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i)
    let y = b.charCodeAt(i)
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000
      }
      return x < y ? -1 : 1
    }
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0
}

/** Orders `a[aStart, aEnd)` and `b[bStart, bEnd)` bytewise (shorter prefix first). */
export const compareBytes = (
  a: Uint8Array,
  aStart: number,
  aEnd: number,
  b: Uint8Array,
  bStart: number,
  bEnd: number
): -1 | 0 | 1 => {
  const al = aEnd - aStart
  const bl = bEnd - bStart
  const n = al < bl ? al : bl
  for (let i = 0; i < n; i++) {
    const x = a[aStart + i]
    const y = b[bStart + i]
    if (x !== y) return x < y ? -1 : 1
  }
  return al < bl ? -1 : al > bl ? 1 : 0
}

/** A short, quoted, escaped rendering of a name or target for error messages. */
export const show = (s: string, max = 80): string =>
  s.length > max ? JSON.stringify(s.slice(0, max)) + `… (${s.length} chars)` : JSON.stringify(s)

/** Renders raw bytes for an error message: as text when they are valid UTF-8, else as hex. */
export const showBytes = (bytes: Uint8Array, start: number, end: number, max = 80): string => {
  const s = decodeUtf8(bytes, start, end)
  if (s !== undefined) return show(s, max)
  const hex = Array.from(bytes.subarray(start, Math.min(end, start + max)), (b) => b.toString(16).padStart(2, "0"))
    .join("")
  return `0x${hex}${end - start > max ? `… (${end - start} bytes)` : ""}`
}
