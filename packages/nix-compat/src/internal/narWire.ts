/**
 * Facts of the NAR wire format shared by the reader and the writer.
 *
 * A NAR is a sequence of byte strings. Each string is its length as a 64-bit
 * little-endian integer, then its bytes, then zero bytes up to the next
 * multiple of 8. File contents are such a string too. Grammar:
 *
 *   archive   = "nix-archive-1" node
 *   node      = "(" "type" ( regular | symlink | directory ) ")"
 *   regular   = "regular" [ "executable" "" ] "contents" <string>
 *   symlink   = "symlink" "target" <string>
 *   directory = "directory" { "entry" "(" "name" <string> "node" node ")" }
 *
 * @internal
 */

/** Longest entry name, in bytes (Linux NAME_MAX). */
export const MAX_NAME_LENGTH = 255
/** Longest symlink target, in bytes (Linux PATH_MAX - 1). */
export const MAX_TARGET_LENGTH = 4095
/** Default limit for nested directories. */
export const DEFAULT_MAX_DEPTH = 256

const encoder = new TextEncoder()

/** Bytes of zero padding after a string of `n` bytes. */
export const padLength = (n: number): number => (8 - (n % 8)) % 8

/** Wire form (length, bytes, padding) of a sequence of strings. */
export const encodeStrings = (...parts: ReadonlyArray<string>): Uint8Array => {
  const raw = parts.map((s) => encoder.encode(s))
  const total = raw.reduce((acc, b) => acc + 8 + b.length + padLength(b.length), 0)
  const out = new Uint8Array(total)
  let p = 0
  for (const b of raw) {
    writeU64(out, p, b.length)
    out.set(b, p + 8)
    p += 8 + b.length + padLength(b.length)
  }
  return out
}

/** Writes a non-negative safe integer as a 64-bit little-endian number. */
export const writeU64 = (buf: Uint8Array, p: number, n: number): void => {
  const lo = n >>> 0
  const hi = Math.floor(n / 0x1_0000_0000) >>> 0
  buf[p] = lo & 0xff
  buf[p + 1] = (lo >>> 8) & 0xff
  buf[p + 2] = (lo >>> 16) & 0xff
  buf[p + 3] = lo >>> 24
  buf[p + 4] = hi & 0xff
  buf[p + 5] = (hi >>> 8) & 0xff
  buf[p + 6] = (hi >>> 16) & 0xff
  buf[p + 7] = hi >>> 24
}

/** The literal strings of the grammar, as raw bytes (no length, no padding). */
export const LIT_MAGIC = encoder.encode("nix-archive-1")
export const LIT_OPEN = encoder.encode("(")
export const LIT_CLOSE = encoder.encode(")")
export const LIT_TYPE = encoder.encode("type")
export const LIT_REGULAR = encoder.encode("regular")
export const LIT_SYMLINK = encoder.encode("symlink")
export const LIT_DIRECTORY = encoder.encode("directory")
export const LIT_EXECUTABLE = encoder.encode("executable")
export const LIT_EMPTY = new Uint8Array(0)
export const LIT_CONTENTS = encoder.encode("contents")
export const LIT_TARGET = encoder.encode("target")
export const LIT_ENTRY = encoder.encode("entry")
export const LIT_NAME = encoder.encode("name")
export const LIT_NODE = encoder.encode("node")

/** Pre-encoded token runs the writer emits as one block. */
export const TOK_START = encodeStrings("nix-archive-1", "(", "type")
export const TOK_ENTRY = encodeStrings("entry", "(", "name")
export const TOK_NODE = encodeStrings("node", "(", "type")
export const TOK_REGULAR = encodeStrings("regular", "contents")
export const TOK_EXECUTABLE = encodeStrings("regular", "executable", "", "contents")
export const TOK_SYMLINK = encodeStrings("symlink", "target")
export const TOK_DIRECTORY = encodeStrings("directory")
export const TOK_CLOSE = encodeStrings(")")

/** Byte-wise lexicographic comparison. */
export const compareBytes = (a: Uint8Array, b: Uint8Array): number => {
  const n = a.length < b.length ? a.length : b.length
  for (let i = 0; i < n; i++) {
    const d = a[i] - b[i]
    if (d !== 0) return d
  }
  return a.length - b.length
}

/**
 * Why `buf[start, start+len)` is not a valid entry name, or `undefined` when it
 * is. The length limit is checked by the caller.
 */
export const nameProblem = (buf: Uint8Array, start: number, len: number): string | undefined => {
  if (len === 0) return "is empty"
  if (buf[start] === 0x2e) {
    if (len === 1) return "is '.'"
    if (len === 2 && buf[start + 1] === 0x2e) return "is '..'"
  }
  const end = start + len
  for (let i = start; i < end; i++) {
    const c = buf[i]
    if (c === 0x2f) return `contains '/' at byte ${i - start}`
    if (c === 0) return `contains NUL at byte ${i - start}`
  }
  return undefined
}

/** Why a symlink target is invalid, or `undefined`. The length limit is checked by the caller. */
export const targetProblem = (buf: Uint8Array, start: number, len: number): string | undefined => {
  if (len === 0) return "is empty"
  const end = start + len
  for (let i = start; i < end; i++) {
    if (buf[i] === 0) return `contains NUL at byte ${i - start}`
  }
  return undefined
}

const decoder = new TextDecoder("utf-8", { fatal: false })

/** A short, quoted, printable rendering of some bytes for error messages. */
export const showBytes = (bytes: Uint8Array, limit = 64): string => {
  const cut = bytes.length > limit
  const text = decoder.decode(cut ? bytes.subarray(0, limit) : bytes)
  // eslint-disable-next-line no-control-regex
  const escaped = text.replace(/[\u0000-\u001f\u007f\\']/g, (c) =>
    c === "\\" ? "\\\\" : c === "'" ? "\\'" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`
  )
  return `'${escaped}'${cut ? `… (${bytes.length} bytes)` : ""}`
}
