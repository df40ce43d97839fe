/**
 * An incremental bzip2 decoder over `Uint8Array`s.
 *
 * Written for throughput in plain JavaScript: compressed input is kept in one
 * growable buffer and read through a 32-bit window; Huffman symbols are
 * decoded with a 10-bit lookup table per coding group (longer codes fall back
 * to the canonical limit/base walk); the inverse Burrows–Wheeler transform
 * uses one `Uint32Array` (the classic `tt` vector: predecessor index in the
 * upper 24 bits, byte in the lower 8); the final run-length step produces
 * output lazily, at most `PIECE` bytes per `next()`, so a block that expands
 * a lot (a block holds up to 900 000 symbols, which run-length decode to up
 * to ~46 MB) never sits in memory whole.
 *
 * A block is decoded once enough compressed input is buffered for the
 * largest block the header's level allows (or the input ended); if a block
 * still runs out of input, decoding it is retried when more has arrived.
 * Block and stream CRCs are checked. Concatenated streams (as written by
 * pbzip2) are decoded one after another; bytes after the last stream that do
 * not start another stream are ignored, as Nix's decoder does.
 *
 * Format facts (from the bzip2 documentation and libbz2's decoder): stream
 * header `BZh1`–`BZh9`; block magic 0x314159265359, stream end magic
 * 0x177245385090, each followed by a 32-bit CRC; 2–6 Huffman tables of code
 * lengths 1–20, switched every 50 symbols by MTF-coded selectors; RUNA/RUNB
 * encode runs of the front MTF symbol in bijective base 2; the end-of-block
 * symbol is the alphabet's last; after four equal bytes the next byte is a
 * repeat count.
 *
 * @internal
 */

/** Thrown when a block needs more input than is buffered. */
const NEED_MORE: unique symbol = Symbol("bzip2: need more input")

export class Bzip2FormatError extends Error {
  override readonly name = "Bzip2FormatError"
}

const fail = (detail: string): never => {
  throw new Bzip2FormatError(detail)
}

/** CRC-32 (MSB first, polynomial 0x04c11db7) tables for slicing by four. */
const [crc0, crc1, crc2, crc3] = (() => {
  const t = Array.from({ length: 4 }, () => new Int32Array(256))
  for (let i = 0; i < 256; i++) {
    let c = i << 24
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1
    t[0][i] = c
  }
  for (let i = 0; i < 256; i++) {
    for (let k = 1; k < 4; k++) t[k][i] = (t[k - 1][i] << 8) ^ t[0][(t[k - 1][i] >>> 24) & 0xff]
  }
  return t
})()

/** bzip2's running CRC over `bytes[0..n)`. */
const crcUpdate = (crc: number, bytes: Uint8Array, n: number): number => {
  let i = 0
  for (; i + 4 <= n; i += 4) {
    crc ^= (bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3]
    crc = crc3[crc >>> 24] ^ crc2[(crc >>> 16) & 0xff] ^ crc1[(crc >>> 8) & 0xff] ^ crc0[crc & 0xff]
  }
  for (; i < n; i++) crc = (crc << 8) ^ crc0[((crc >>> 24) ^ bytes[i]) & 0xff]
  return crc
}

/** Output piece size. */
const PIECE = 128 * 1024
const GROUP_SIZE = 50
const MAX_GROUPS = 6
const MAX_ALPHA = 258
const MAX_CODE_LEN = 20
const MAX_SELECTORS = 18002
const LOOKUP_BITS = 10

/** Decoding tables of one Huffman group. */
class HuffmanTable {
  /** `(symbol << 5) | length` for codes of at most LOOKUP_BITS bits, else 0. */
  readonly lookup = new Uint32Array(1 << LOOKUP_BITS)
  /** Canonical decoding: largest code of each length, first index per length, symbols by code. */
  readonly limit = new Int32Array(MAX_CODE_LEN + 2)
  readonly base = new Int32Array(MAX_CODE_LEN + 2)
  readonly perm = new Uint16Array(MAX_ALPHA)
  minLen = 0
  maxLen = 0

  build(lengths: Uint8Array, alphaSize: number): void {
    let minLen = 32
    let maxLen = 0
    for (let i = 0; i < alphaSize; i++) {
      const l = lengths[i]
      if (l > maxLen) maxLen = l
      if (l < minLen) minLen = l
    }
    this.minLen = minLen
    this.maxLen = maxLen
    let pp = 0
    const count = new Int32Array(MAX_CODE_LEN + 2)
    for (let len = minLen; len <= maxLen; len++) {
      for (let s = 0; s < alphaSize; s++) if (lengths[s] === len) this.perm[pp++] = s
    }
    for (let s = 0; s < alphaSize; s++) count[lengths[s]]++
    // canonical codes: code of the first symbol of each length
    let code = 0
    let index = 0
    this.lookup.fill(0)
    for (let len = 1; len <= MAX_CODE_LEN; len++) {
      this.base[len] = index - code // symbol index = code + base[len]
      code += count[len]
      index += count[len]
      this.limit[len] = code - 1 // largest code of this length (−1 when none)
      code <<= 1
    }
    if (code > 1 << (MAX_CODE_LEN + 1)) fail("over-subscribed Huffman code lengths")
    // fill the lookup table
    code = 0
    let p = 0
    for (let len = 1; len <= MAX_CODE_LEN; len++) {
      for (let k = 0; k < count[len]; k++, p++, code++) {
        if (len <= LOOKUP_BITS) {
          const sym = this.perm[p]
          const shift = LOOKUP_BITS - len
          const start = code << shift
          const end = (code + 1) << shift
          for (let x = start; x < end; x++) this.lookup[x] = (sym << 5) | len
        }
      }
      code <<= 1
    }
  }
}

export class Bzip2Decoder {
  // --- input ---
  private buf = new Uint8Array(1 << 20)
  /** Bytes of `buf` holding input. */
  private len = 0
  /** Read position in bits from the start of `buf`. */
  private bitPos = 0
  private ended = false

  // --- stream state ---
  private state: "header" | "block" | "output" | "trailing" | "done" = "header"
  private level = 0
  /** Decode a block only once this many input bytes are buffered (or the input ended). */
  private want = 4
  private streamCrc = 0
  private streams = 0

  // --- block state ---
  private tt = new Uint32Array(0)
  private blockCrc = 0
  private crc = 0
  private nblock = 0
  private used = 0
  private tPos = 0
  private last = -1
  private run = 0
  private repeat = 0

  private readonly tables = Array.from({ length: MAX_GROUPS }, () => new HuffmanTable())
  private readonly selectors = new Uint8Array(MAX_SELECTORS)
  private readonly lengths = new Uint8Array(MAX_ALPHA)
  private readonly seqToUnseq = new Uint8Array(256)
  private readonly mtf = new Uint8Array(256)
  private readonly counts = new Int32Array(256)

  feed(input: Uint8Array): void {
    if (input.length === 0 || this.state === "trailing") return
    if (this.len + input.length > this.buf.length) {
      const start = this.bitPos >>> 3
      const live = this.len - start
      if (live + input.length <= this.buf.length) {
        this.buf.copyWithin(0, start, this.len)
      } else {
        const next = new Uint8Array(1 << Math.ceil(Math.log2(live + input.length)))
        next.set(this.buf.subarray(start, this.len), 0)
        this.buf = next
      }
      this.len = live
      this.bitPos -= start << 3
    }
    this.buf.set(input, this.len)
    this.len += input.length
  }

  end(): void {
    this.ended = true
  }

  /** The next piece of output, or `undefined` when more input is needed (or all is done). */
  next(): Uint8Array | undefined {
    for (;;) {
      switch (this.state) {
        case "output": {
          const piece = this.output()
          if (piece !== undefined) return piece
          if (this.crc !== this.blockCrc) {
            fail(`block CRC mismatch: stored ${hex32(this.blockCrc)}, computed ${hex32(this.crc)}`)
          }
          this.streamCrc = (((this.streamCrc << 1) | (this.streamCrc >>> 31)) ^ this.crc) >>> 0
          this.state = "block"
          this.want = this.blockBytes()
          break
        }
        case "header": {
          const available = this.len - (this.bitPos >>> 3)
          if (available < 4) {
            if (!this.ended) return undefined
            if (this.streams === 0) fail(available === 0 ? "empty input" : "truncated stream header")
            this.state = "done"
            break
          }
          const i = this.bitPos >>> 3
          const b = this.buf
          if (b[i] !== 0x42 || b[i + 1] !== 0x5a || b[i + 2] !== 0x68 || b[i + 3] < 0x31 || b[i + 3] > 0x39) {
            if (this.streams === 0) fail("not a bzip2 stream (no BZh1-9 header)")
            // bytes after the last stream that start no other stream are ignored
            this.bitPos = this.len << 3
            this.state = "trailing"
            break
          }
          this.level = b[i + 3] - 0x30
          this.bitPos += 32
          this.streamCrc = 0
          this.streams++
          if (this.tt.length < this.level * 100000) this.tt = new Uint32Array(this.level * 100000)
          this.state = "block"
          this.want = this.blockBytes()
          break
        }
        case "block": {
          const available = this.len - (this.bitPos >>> 3)
          if (available < this.want && !this.ended) return undefined
          const start = this.bitPos
          try {
            this.readBlock()
          } catch (e) {
            if (e !== NEED_MORE) throw e
            this.bitPos = start
            if (this.ended) fail("truncated input: the compressed data ends inside a block")
            this.want = available * 2
            return undefined
          }
          break
        }
        case "trailing":
        case "done":
          return undefined
      }
    }
  }

  /** Input bytes to wait for before decoding a block: the largest block at this level, with room. */
  private blockBytes(): number {
    return this.level * 100000 + 100000
  }

  // -------------------------------------------------------------------------
  // bits
  // -------------------------------------------------------------------------

  /** Reads `n` ≤ 24 bits. */
  private bits(n: number): number {
    const pos = this.bitPos
    const i = pos >>> 3
    const b = this.buf
    const w = ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) << (pos & 7)
    const end = pos + n
    if (end > this.len << 3) throw NEED_MORE
    this.bitPos = end
    return w >>> (32 - n)
  }

  private bits32(): number {
    return ((this.bits(16) << 16) | this.bits(16)) >>> 0
  }

  // -------------------------------------------------------------------------
  // a block: headers, Huffman + MTF + RUNA/RUNB, inverse BWT set-up
  // -------------------------------------------------------------------------

  private readBlock(): void {
    const m1 = this.bits(24)
    const m2 = this.bits(24)
    if (m1 === 0x177245 && m2 === 0x385090) {
      const stored = this.bits32()
      if (stored !== this.streamCrc) {
        fail(`stream CRC mismatch: stored ${hex32(stored)}, computed ${hex32(this.streamCrc)}`)
      }
      // the stream is padded to a whole byte
      this.bitPos = (this.bitPos + 7) & ~7
      this.state = "header"
      return
    }
    if (m1 !== 0x314159 || m2 !== 0x265359) fail("bad block magic")
    this.blockCrc = this.bits32()
    if (this.bits(1) !== 0) fail("randomised blocks (bzip2 < 0.9.5) are not supported")
    const origPtr = this.bits(24)

    // symbol map
    const inUse16 = this.bits(16)
    let nInUse = 0
    for (let i = 0; i < 16; i++) {
      if ((inUse16 & (0x8000 >>> i)) !== 0) {
        const w = this.bits(16)
        for (let j = 0; j < 16; j++) if ((w & (0x8000 >>> j)) !== 0) this.seqToUnseq[nInUse++] = i * 16 + j
      }
    }
    if (nInUse === 0) fail("block uses no symbols")
    const alphaSize = nInUse + 2

    // selectors
    const nGroups = this.bits(3)
    if (nGroups < 2 || nGroups > MAX_GROUPS) fail(`invalid number of Huffman groups ${nGroups}`)
    const nSelectors = this.bits(15)
    if (nSelectors < 1) fail("no selectors")
    const groupMtf = [0, 1, 2, 3, 4, 5]
    const selectors = this.selectors
    for (let i = 0; i < nSelectors; i++) {
      let j = 0
      while (this.bits(1) === 1) {
        j++
        if (j >= nGroups) fail("selector out of range")
      }
      // undo the MTF coding of selectors
      const v = groupMtf[j]
      for (; j > 0; j--) groupMtf[j] = groupMtf[j - 1]
      groupMtf[0] = v
      if (i < MAX_SELECTORS) selectors[i] = v
    }
    const usedSelectors = Math.min(nSelectors, MAX_SELECTORS)

    // code lengths, delta coded
    for (let t = 0; t < nGroups; t++) {
      let curr = this.bits(5)
      const lengths = this.lengths
      for (let s = 0; s < alphaSize; s++) {
        for (;;) {
          if (curr < 1 || curr > MAX_CODE_LEN) fail(`invalid Huffman code length ${curr}`)
          if (this.bits(1) === 0) break
          curr += this.bits(1) === 0 ? 1 : -1
        }
        lengths[s] = curr
      }
      this.tables[t].build(lengths, alphaSize)
    }

    // the symbols
    const mtf = this.mtf
    for (let i = 0; i < 256; i++) mtf[i] = i
    const counts = this.counts
    counts.fill(0)
    const tt = this.tt
    const maxBlock = this.level * 100000
    const seqToUnseq = this.seqToUnseq
    const eob = nInUse + 1
    const buf = this.buf
    const limitBits = this.len << 3
    let pos = this.bitPos
    let nblock = 0
    let groupNo = -1
    let groupPos = 0
    let table = this.tables[0]
    let runLength = 0
    let runWeight = 1

    for (;;) {
      if (groupPos === 0) {
        groupNo++
        if (groupNo >= usedSelectors) fail("ran out of selectors")
        groupPos = GROUP_SIZE
        table = this.tables[selectors[groupNo]]
      }
      groupPos--
      // decode one symbol through a 32-bit window
      const i = pos >>> 3
      const w = ((buf[i] << 24) | (buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3]) << (pos & 7)
      let sym: number
      const entry = table.lookup[w >>> (32 - LOOKUP_BITS)]
      if (entry !== 0) {
        sym = entry >>> 5
        pos += entry & 31
        if (pos > limitBits) throw NEED_MORE
      } else {
        const maxLen = table.maxLen
        let len = LOOKUP_BITS + 1
        let code = w >>> (32 - len)
        while (len <= maxLen && code > table.limit[len]) {
          len++
          code = w >>> (32 - len)
        }
        // bits past the buffered input are not data yet
        if (pos + Math.min(len, maxLen) > limitBits) throw NEED_MORE
        if (len > maxLen) fail("invalid Huffman code")
        const index = code + table.base[len]
        if (index < 0 || index >= alphaSize) fail("invalid Huffman code")
        sym = table.perm[index]
        pos += len
      }

      if (sym <= 1) {
        // RUNA (0) / RUNB (1): bijective base-2 digits of a run length
        runLength += (sym + 1) * runWeight
        runWeight <<= 1
        if (runLength > maxBlock) fail("run exceeds the block size")
        continue
      }
      if (runLength > 0) {
        const uc = seqToUnseq[mtf[0]]
        if (nblock + runLength > maxBlock) fail("block exceeds its declared size")
        counts[uc] += runLength
        if (runLength < 32) for (let end = nblock + runLength; nblock < end;) tt[nblock++] = uc
        else {
          tt.fill(uc, nblock, nblock + runLength)
          nblock += runLength
        }
        runLength = 0
        runWeight = 1
      }
      if (sym === eob) break
      // MTF: symbol k means the (k-1)th entry of the list
      let k = sym - 1
      if (k >= nInUse) fail("MTF index out of range")
      const v = mtf[k]
      // shift down: small k dominate, a plain loop beats a native call there
      // (libbz2's segmented list measured no faster here)
      if (k < 64) for (; k > 0; k--) mtf[k] = mtf[k - 1]
      else mtf.copyWithin(1, 0, k)
      mtf[0] = v
      if (nblock >= maxBlock) fail("block exceeds its declared size")
      const uc = seqToUnseq[v]
      counts[uc]++
      tt[nblock++] = uc
    }
    this.bitPos = pos
    if (origPtr >= nblock) fail(`origin pointer ${origPtr} outside the block of ${nblock} bytes`)

    // inverse BWT: tt[cumulative position of byte] |= index << 8
    let sum = 0
    const cftab = new Int32Array(256)
    for (let c = 0; c < 256; c++) {
      cftab[c] = sum
      sum += counts[c]
    }
    for (let i = 0; i < nblock; i++) {
      const c = tt[i] & 0xff
      tt[cftab[c]++] |= i << 8
    }
    this.nblock = nblock
    this.used = 0
    this.tPos = tt[origPtr] >>> 8
    this.last = -1
    this.run = 0
    this.repeat = 0
    this.crc = 0xffffffff
    this.state = "output"
  }

  // -------------------------------------------------------------------------
  // output: BWT walk + run-length decoding, a piece at a time
  // -------------------------------------------------------------------------

  private output(): Uint8Array | undefined {
    if (this.used >= this.nblock && this.repeat === 0) {
      this.crc = ~this.crc >>> 0
      return undefined
    }
    const out = new Uint8Array(PIECE)
    const tt = this.tt
    const nblock = this.nblock
    let n = 0
    let used = this.used
    let tPos = this.tPos
    let last = this.last
    let run = this.run
    let repeat = this.repeat
    for (;;) {
      if (repeat > 0) {
        const k = Math.min(repeat, PIECE - n)
        out.fill(last, n, n + k)
        n += k
        repeat -= k
        if (repeat > 0) break
        last = -1
      }
      if (n >= PIECE || used >= nblock) break
      // the common case: plain bytes, no CRC here (computed below, four bytes at a time)
      while (n < PIECE && used < nblock) {
        const entry = tt[tPos]
        const c = entry & 0xff
        tPos = entry >>> 8
        used++
        if (run === 4) {
          // the byte after four equal bytes is how many more of them follow
          repeat = c
          run = 0
          if (repeat === 0) last = -1
          break
        }
        out[n++] = c
        if (c === last) run++
        else {
          last = c
          run = 1
        }
      }
    }
    this.crc = crcUpdate(this.crc, out, n)
    this.used = used
    this.tPos = tPos
    this.last = last
    this.run = run
    this.repeat = repeat
    if (n === 0) return this.output()
    return n === PIECE ? out : out.slice(0, n)
  }
}

const hex32 = (n: number): string => "0x" + (n >>> 0).toString(16).padStart(8, "0")
