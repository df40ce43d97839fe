/**
 * A minimal protobuf wire codec for the castore messages.
 *
 * Hand-written instead of going through a generic runtime: the encoder computes
 * every length first and writes one exactly-sized buffer (no forks/joins), and
 * the decoder walks offsets into the input without allocating per field, which
 * also lets the caller say precisely which field of which entry was malformed.
 *
 * @internal
 */

export const WIRE_VARINT = 0
export const WIRE_FIXED64 = 1
export const WIRE_LEN = 2
export const WIRE_START_GROUP = 3
export const WIRE_END_GROUP = 4
export const WIRE_FIXED32 = 5

/** Thrown by the reader for bytes that are not valid protobuf; callers turn it into a typed error. */
export class Malformed {
  constructor(
    readonly detail: string,
    /** The sub-field the problem is in (e.g. "size"), when known. */
    readonly field?: string
  ) {}
}

/** Same nesting limit as prost's default recursion limit. */
const MAX_GROUP_DEPTH = 100

export class Reader {
  pos: number
  constructor(
    readonly buf: Uint8Array,
    pos: number,
    readonly end: number
  ) {
    this.pos = pos
  }

  get done(): boolean {
    return this.pos >= this.end
  }

  /**
   * Reads a varint of at most 10 bytes. Values at or above 2^53 come out as an
   * imprecise number >= 2^53, so `Number.isSafeInteger` tells the caller whether
   * the value is exact.
   */
  varint(): number {
    const buf = this.buf
    let pos = this.pos
    const end = this.end
    if (pos < end) {
      const b = buf[pos]
      if (b < 0x80) {
        this.pos = pos + 1
        return b
      }
    }
    let result = 0
    let scale = 1
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw new Malformed("truncated varint")
      const b = buf[pos++]
      if (i === 9 && b > 1) throw new Malformed("varint exceeds 64 bits")
      result += (b & 0x7f) * scale
      if (b < 0x80) {
        this.pos = pos
        return result
      }
      scale *= 128
    }
    throw new Malformed("varint longer than 10 bytes")
  }

  /** Reads a field key; returns `fieldNumber * 8 + wireType`. */
  tag(): number {
    const key = this.varint()
    if (key > 0xffffffff) throw new Malformed(`invalid field key ${key}`)
    const wire = key % 8
    if (key < 8) throw new Malformed(`invalid field number 0`)
    if (wire > 5) throw new Malformed(`invalid wire type ${wire} for field ${Math.floor(key / 8)}`)
    return key
  }

  /** Reads a length prefix and returns the start of the payload; `pos` moves past the payload. */
  lengthDelimited(): number {
    const len = this.varint()
    const start = this.pos
    if (len > this.end - start) {
      throw new Malformed(`truncated: length ${len} exceeds the ${this.end - start} bytes left`)
    }
    this.pos = start + len
    return start
  }

  /** Skips the payload of a field we do not know. */
  skip(key: number, depth = 0): void {
    const wire = key % 8
    switch (wire) {
      case WIRE_VARINT:
        this.varint()
        return
      case WIRE_FIXED64:
        this.advance(8)
        return
      case WIRE_FIXED32:
        this.advance(4)
        return
      case WIRE_LEN:
        this.lengthDelimited()
        return
      case WIRE_START_GROUP: {
        if (depth >= MAX_GROUP_DEPTH) throw new Malformed("groups nested too deeply")
        const field = Math.floor(key / 8)
        for (;;) {
          if (this.done) throw new Malformed(`truncated: group ${field} not closed`)
          const inner = this.tag()
          if (inner % 8 === WIRE_END_GROUP) {
            if (Math.floor(inner / 8) !== field) {
              throw new Malformed(`group ${field} closed by end-group of field ${Math.floor(inner / 8)}`)
            }
            return
          }
          this.skip(inner, depth + 1)
        }
      }
      default:
        throw new Malformed(`unexpected end-group of field ${Math.floor(key / 8)}`)
    }
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) throw new Malformed(`truncated: ${n}-byte fixed field`)
    this.pos += n
  }
}

/** The number of bytes the varint form of a non-negative safe integer takes. */
export const varintLength = (n: number): number => {
  if (n < 0x80) return 1
  if (n < 0x4000) return 2
  if (n < 0x200000) return 3
  if (n < 0x10000000) return 4
  if (n < 0x800000000) return 5
  if (n < 0x40000000000) return 6
  if (n < 0x2000000000000) return 7
  return 8 // up to 2^56, beyond Number.MAX_SAFE_INTEGER
}

/** Writes a non-negative safe integer as a varint; returns the position after it. */
export const writeVarint = (out: Uint8Array, pos: number, n: number): number => {
  if (n < 0x80000000) {
    while (n > 0x7f) {
      out[pos++] = (n & 0x7f) | 0x80
      n >>>= 7
    }
    out[pos++] = n
    return pos
  }
  while (n > 0x7f) {
    out[pos++] = (n % 128) | 0x80
    n = Math.floor(n / 128)
  }
  out[pos++] = n
  return pos
}

/** Field keys (fieldNumber << 3 | wireType) used by the castore messages, all single-byte. */
export const KEY_1_LEN = 0x0a
export const KEY_2_LEN = 0x12
export const KEY_3_LEN = 0x1a
export const KEY_3_VARINT = 0x18
export const KEY_4_VARINT = 0x20

/** A human name for a wire type, for error messages. */
export const wireTypeName = (wire: number): string =>
  ["varint", "fixed64", "length-delimited", "start-group", "end-group", "fixed32"][wire] ?? `wire type ${wire}`
