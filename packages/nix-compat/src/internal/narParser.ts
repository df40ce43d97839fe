import type { Handler, ParserOptions } from "../Nar.js"
import { NarError, type NarErrorReason } from "./narError.js"
import {
  compareBytes,
  DEFAULT_MAX_DEPTH,
  LIT_CLOSE,
  LIT_CONTENTS,
  LIT_DIRECTORY,
  LIT_EMPTY,
  LIT_ENTRY,
  LIT_EXECUTABLE,
  LIT_MAGIC,
  LIT_NAME,
  LIT_NODE,
  LIT_OPEN,
  LIT_REGULAR,
  LIT_SYMLINK,
  LIT_TARGET,
  LIT_TYPE,
  MAX_NAME_LENGTH,
  MAX_TARGET_LENGTH,
  nameProblem,
  padLength,
  showBytes,
  targetProblem
} from "./narWire.js"

// Parser states: what the next bytes must be.
const S_MAGIC = 0 // "nix-archive-1"
const S_OPEN = 1 // "(" opening a node
const S_TYPE_KW = 2 // "type"
const S_TYPE = 3 // "regular" | "symlink" | "directory"
const S_REG_ATTR = 4 // "executable" | "contents"
const S_EXEC_EMPTY = 5 // "" after "executable"
const S_CONTENTS_KW = 6 // "contents" after "executable" ""
const S_SIZE = 7 // u64 file size
const S_CONTENTS = 8 // file bytes (streamed)
const S_PADDING = 9 // zero padding after file bytes (streamed)
const S_CLOSE = 10 // ")" closing a file or symlink node
const S_TARGET_KW = 11 // "target"
const S_TARGET = 12 // symlink target string
const S_DIR_ITEM = 13 // "entry" | ")" inside a directory
const S_ENTRY_OPEN = 14 // "(" after "entry"
const S_NAME_KW = 15 // "name"
const S_NAME = 16 // entry name string
const S_NODE_KW = 17 // "node"
const S_ENTRY_CLOSE = 18 // ")" closing an entry
const S_DONE = 19 // root node complete
const S_FAILED = 20 // an exception was thrown

/**
 * Longest declared length accepted in each token state, checked before the
 * body is read. Keyword states accept a little more than the longest keyword
 * so that a wrong keyword can be shown in the error message.
 */
const KEYWORD_MAX = 64
const MAX_LEN: ReadonlyArray<number> = (() => {
  const m: Array<number> = []
  for (
    const st of [
      S_MAGIC,
      S_OPEN,
      S_TYPE_KW,
      S_TYPE,
      S_REG_ATTR,
      S_EXEC_EMPTY,
      S_CONTENTS_KW,
      S_CLOSE,
      S_TARGET_KW,
      S_DIR_ITEM,
      S_ENTRY_OPEN,
      S_NAME_KW,
      S_NODE_KW,
      S_ENTRY_CLOSE
    ]
  ) m[st] = KEYWORD_MAX
  m[S_SIZE] = Number.MAX_SAFE_INTEGER
  m[S_TARGET] = MAX_TARGET_LENGTH
  m[S_NAME] = MAX_NAME_LENGTH
  return m
})()

const EXPECTED: ReadonlyArray<string> = (() => {
  const m: Array<string> = []
  m[S_MAGIC] = "the magic 'nix-archive-1'"
  m[S_OPEN] = "'(' opening a node"
  m[S_TYPE_KW] = "'type'"
  m[S_TYPE] = "a node type ('regular', 'symlink' or 'directory')"
  m[S_REG_ATTR] = "'executable' or 'contents'"
  m[S_EXEC_EMPTY] = "the empty string after 'executable'"
  m[S_CONTENTS_KW] = "'contents'"
  m[S_SIZE] = "the 8-byte file size"
  m[S_CONTENTS] = "file contents"
  m[S_PADDING] = "the zero padding after file contents"
  m[S_CLOSE] = "')' closing the node"
  m[S_TARGET_KW] = "'target'"
  m[S_TARGET] = "the symlink target"
  m[S_DIR_ITEM] = "'entry' or ')' closing the directory"
  m[S_ENTRY_OPEN] = "'(' opening an entry"
  m[S_NAME_KW] = "'name'"
  m[S_NAME] = "an entry name"
  m[S_NODE_KW] = "'node'"
  m[S_ENTRY_CLOSE] = "')' closing the entry"
  m[S_DONE] = "the end of the archive"
  return m
})()

/** The bytes of a literal equal `lit`? */
const isLit = (buf: Uint8Array, p: number, len: number, lit: Uint8Array): boolean => {
  if (len !== lit.length) return false
  for (let i = 0; i < len; i++) {
    if (buf[p + i] !== lit[i]) return false
  }
  return true
}

const u32 = (b: Uint8Array, p: number): number =>
  (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0

// Scratch space for a token that straddles input chunks: 8 bytes of length,
// then the longest body any state accepts (a symlink target, padded).
const SCRATCH_SIZE = 8 + MAX_TARGET_LENGTH + 1

/**
 * Synchronous push parser. See `Nar.Parser` for the contract.
 *
 * @internal
 */
export class ParserImpl {
  private readonly handler: Handler
  private readonly maxDepth: number

  private state = S_MAGIC
  /** Absolute offset of the first byte of the chunk being pushed. */
  private base = 0
  private failure: unknown = undefined

  // Partially received token (only when it straddles chunks).
  private readonly scratch = new Uint8Array(SCRATCH_SIZE)
  private fill = 0
  private need = 8
  private tokenOffset = 0

  // File being streamed.
  private executable = false
  private fileSize = 0
  private remaining = 0
  private padRemaining = 0

  // Open directories: the previous entry name of each (undefined before the first).
  private depth = 0
  private readonly prevNames: Array<Uint8Array | undefined> = []

  constructor(handler: Handler, options?: ParserOptions) {
    this.handler = handler
    const maxDepth = options?.maxDepth ?? DEFAULT_MAX_DEPTH
    if (!Number.isSafeInteger(maxDepth) || maxDepth < 0) {
      throw new RangeError(`maxDepth must be a non-negative integer, got ${maxDepth}`)
    }
    this.maxDepth = maxDepth
  }

  /** Bytes consumed so far. */
  get offset(): number {
    return this.base
  }

  /** Whether the root node is complete. */
  get done(): boolean {
    return this.state === S_DONE
  }

  push(chunk: Uint8Array): void {
    if (this.state === S_FAILED) throw this.failure
    try {
      this.run(chunk)
    } catch (e) {
      this.state = S_FAILED
      this.failure = e
      throw e
    }
    this.base += chunk.length
  }

  end(): void {
    if (this.state === S_FAILED) throw this.failure
    if (this.state === S_DONE) return
    let err: NarError
    if (this.state === S_CONTENTS) {
      err = this.error(
        "Truncated",
        this.base,
        `input ends inside the contents of a ${this.fileSize}-byte file (${this.remaining} bytes missing)`
      )
    } else if (this.state === S_PADDING) {
      err = this.error("Truncated", this.base, `input ends inside ${EXPECTED[S_PADDING]}`)
    } else if (this.fill > 0) {
      err = this.error(
        "Truncated",
        this.tokenOffset,
        `input ends inside the token where ${EXPECTED[this.state]} was expected (${this.fill} of ${
          this.fill < 8 ? "at least 8" : this.need
        } bytes present)`
      )
    } else {
      err = this.error("Truncated", this.base, `input ends where ${EXPECTED[this.state]} was expected`)
    }
    this.state = S_FAILED
    this.failure = err
    throw err
  }

  private error(reason: NarErrorReason, offset: number, detail: string): NarError {
    return new NarError({ reason, offset, detail })
  }

  private run(chunk: Uint8Array): void {
    const end = chunk.length
    let pos = 0
    while (pos < end) {
      const st = this.state

      if (st === S_CONTENTS) {
        const avail = end - pos
        const n = this.remaining < avail ? this.remaining : avail
        this.remaining -= n
        this.handler.fileChunk(chunk.subarray(pos, pos + n))
        pos += n
        if (this.remaining === 0) this.contentsDone()
        continue
      }

      if (st === S_PADDING) {
        while (this.padRemaining > 0 && pos < end) {
          if (chunk[pos] !== 0) {
            throw this.error(
              "NonZeroPadding",
              this.base + pos,
              `padding byte after the contents of a ${this.fileSize}-byte file is ${chunk[pos]}, not 0`
            )
          }
          pos++
          this.padRemaining--
        }
        if (this.padRemaining === 0) {
          this.state = S_CLOSE
          this.handler.fileEnd()
        }
        continue
      }

      if (st === S_DONE) {
        throw this.error(
          "TrailingData",
          this.base + pos,
          "trailing data after the end of the archive"
        )
      }

      // A token: 8 bytes of length, then (except for the file size) the padded body.
      let buf: Uint8Array
      let p: number
      if (this.fill === 0 && end - pos >= 8) {
        const lo = u32(chunk, pos)
        const hi = u32(chunk, pos + 4)
        this.tokenOffset = this.base + pos
        const len = this.checkLength(st, lo, hi)
        const total = st === S_SIZE ? 8 : 8 + len + padLength(len)
        if (end - pos >= total) {
          buf = chunk
          p = pos
          pos += total
        } else {
          this.scratch.set(chunk.subarray(pos, end), 0)
          this.fill = end - pos
          this.need = total
          pos = end
          break
        }
      } else {
        if (this.fill === 0) this.tokenOffset = this.base + pos
        const scratch = this.scratch
        if (this.fill < 8) {
          const n = Math.min(8 - this.fill, end - pos)
          scratch.set(chunk.subarray(pos, pos + n), this.fill)
          this.fill += n
          pos += n
          if (this.fill < 8) break
          const len = this.checkLength(st, u32(scratch, 0), u32(scratch, 4))
          this.need = st === S_SIZE ? 8 : 8 + len + padLength(len)
        }
        const n = Math.min(this.need - this.fill, end - pos)
        scratch.set(chunk.subarray(pos, pos + n), this.fill)
        this.fill += n
        pos += n
        if (this.fill < this.need) break
        this.fill = 0
        buf = scratch
        p = 0
      }
      this.token(st, buf, p)
    }
  }

  /** Validates a declared length against the current state before anything is read or allocated. */
  private checkLength(st: number, lo: number, hi: number): number {
    const max = MAX_LEN[st]
    if (hi === 0 && lo <= max) return lo
    const declared = hi * 0x1_0000_0000 + lo
    const shown = hi < 0x20_0000 ? String(declared) : (BigInt(hi) * 0x1_0000_0000n + BigInt(lo)).toString()
    switch (st) {
      case S_SIZE:
        if (hi < 0x20_0000) return declared
        throw this.error(
          "FileTooLarge",
          this.tokenOffset,
          `file size ${shown} exceeds the largest supported size ${Number.MAX_SAFE_INTEGER}`
        )
      case S_NAME:
        throw this.error(
          "NameTooLong",
          this.tokenOffset,
          `entry name declares ${shown} bytes, more than the limit of ${MAX_NAME_LENGTH}`
        )
      case S_TARGET:
        throw this.error(
          "TargetTooLong",
          this.tokenOffset,
          `symlink target declares ${shown} bytes, more than the limit of ${MAX_TARGET_LENGTH}`
        )
      default:
        throw this.error(
          st === S_MAGIC ? "BadMagic" : "UnexpectedToken",
          this.tokenOffset,
          `expected ${EXPECTED[st]}, found a string declaring ${shown} bytes`
        )
    }
  }

  /** Handles one complete token at `buf[p]` (length word included) in state `st`. */
  private token(st: number, buf: Uint8Array, p: number): void {
    if (st === S_SIZE) {
      const size = u32(buf, p) + u32(buf, p + 4) * 0x1_0000_0000
      this.fileSize = size
      this.handler.fileStart(this.executable, size)
      if (size === 0) {
        this.state = S_CLOSE
        this.handler.fileEnd()
      } else {
        this.remaining = size
        this.padRemaining = padLength(size)
        this.state = S_CONTENTS
      }
      return
    }

    const len = u32(buf, p)
    const s = p + 8
    // Zero padding of the string.
    const padEnd = s + len + padLength(len)
    for (let i = s + len; i < padEnd; i++) {
      if (buf[i] !== 0) {
        throw this.error(
          "NonZeroPadding",
          this.tokenOffset + (i - p),
          `padding byte after the string ${showBytes(buf.subarray(s, s + len))} is ${buf[i]}, not 0`
        )
      }
    }

    switch (st) {
      case S_DIR_ITEM:
        if (len === 5 && isLit(buf, s, len, LIT_ENTRY)) {
          this.state = S_ENTRY_OPEN
        } else if (len === 1 && buf[s] === 0x29) {
          this.depth--
          this.handler.directoryEnd()
          this.nodeDone()
        } else {
          this.unexpected(st, buf, s, len)
        }
        return
      case S_ENTRY_OPEN:
        return this.literal(st, buf, s, len, LIT_OPEN, S_NAME_KW)
      case S_NAME_KW:
        return this.literal(st, buf, s, len, LIT_NAME, S_NAME)
      case S_NAME:
        return this.name(buf, s, len)
      case S_NODE_KW:
        return this.literal(st, buf, s, len, LIT_NODE, S_OPEN)
      case S_OPEN:
        return this.literal(st, buf, s, len, LIT_OPEN, S_TYPE_KW)
      case S_TYPE_KW:
        return this.literal(st, buf, s, len, LIT_TYPE, S_TYPE)
      case S_TYPE:
        if (len === 7 && isLit(buf, s, len, LIT_REGULAR)) {
          this.executable = false
          this.state = S_REG_ATTR
        } else if (len === 9 && isLit(buf, s, len, LIT_DIRECTORY)) {
          if (this.depth >= this.maxDepth) {
            throw this.error(
              "TooDeep",
              this.tokenOffset,
              `directory nested ${this.depth + 1} levels deep, more than the limit of ${this.maxDepth}`
            )
          }
          this.prevNames[this.depth] = undefined
          this.depth++
          this.state = S_DIR_ITEM
          this.handler.directoryStart()
        } else if (len === 7 && isLit(buf, s, len, LIT_SYMLINK)) {
          this.state = S_TARGET_KW
        } else {
          this.unexpected(st, buf, s, len)
        }
        return
      case S_REG_ATTR:
        if (len === 8 && isLit(buf, s, len, LIT_CONTENTS)) {
          this.state = S_SIZE
        } else if (len === 10 && isLit(buf, s, len, LIT_EXECUTABLE)) {
          this.executable = true
          this.state = S_EXEC_EMPTY
        } else {
          this.unexpected(st, buf, s, len)
        }
        return
      case S_EXEC_EMPTY:
        return this.literal(st, buf, s, len, LIT_EMPTY, S_CONTENTS_KW)
      case S_CONTENTS_KW:
        return this.literal(st, buf, s, len, LIT_CONTENTS, S_SIZE)
      case S_CLOSE:
        if (len === 1 && buf[s] === 0x29) {
          this.nodeDone()
        } else {
          this.unexpected(st, buf, s, len)
        }
        return
      case S_ENTRY_CLOSE:
        return this.literal(st, buf, s, len, LIT_CLOSE, S_DIR_ITEM)
      case S_TARGET_KW:
        return this.literal(st, buf, s, len, LIT_TARGET, S_TARGET)
      case S_TARGET: {
        const problem = targetProblem(buf, s, len)
        if (problem !== undefined) {
          throw this.error(
            "InvalidTarget",
            this.tokenOffset,
            `symlink target ${showBytes(buf.subarray(s, s + len))} ${problem}`
          )
        }
        this.state = S_CLOSE
        this.handler.symlink(buf.slice(s, s + len))
        return
      }
      case S_MAGIC:
        if (isLit(buf, s, len, LIT_MAGIC)) {
          this.state = S_OPEN
        } else {
          throw this.error(
            "BadMagic",
            this.tokenOffset,
            `expected ${EXPECTED[S_MAGIC]}, found ${showBytes(buf.subarray(s, s + len))}`
          )
        }
        return
    }
    /* c8 ignore next */
    throw new Error(`NAR parser bug: token in state ${st}`)
  }

  private literal(st: number, buf: Uint8Array, s: number, len: number, lit: Uint8Array, next: number): void {
    if (isLit(buf, s, len, lit)) {
      this.state = next
    } else {
      this.unexpected(st, buf, s, len)
    }
  }

  private unexpected(st: number, buf: Uint8Array, s: number, len: number): never {
    throw this.error(
      "UnexpectedToken",
      this.tokenOffset,
      `expected ${EXPECTED[st]}, found ${showBytes(buf.subarray(s, s + len))}`
    )
  }

  private name(buf: Uint8Array, s: number, len: number): void {
    const problem = nameProblem(buf, s, len)
    if (problem !== undefined) {
      throw this.error("InvalidName", this.tokenOffset, `entry name ${showBytes(buf.subarray(s, s + len))} ${problem}`)
    }
    const name = buf.slice(s, s + len)
    const level = this.depth - 1
    const prev = this.prevNames[level]
    if (prev !== undefined) {
      const c = compareBytes(prev, name)
      if (c >= 0) {
        throw c === 0
          ? this.error("DuplicateEntry", this.tokenOffset, `entry name ${showBytes(name)} appears twice in a directory`)
          : this.error(
            "UnsortedEntries",
            this.tokenOffset,
            `entry name ${showBytes(name)} is not after ${showBytes(prev)} (entries must be strictly sorted)`
          )
      }
    }
    this.prevNames[level] = name
    this.state = S_NODE_KW
    this.handler.entry(name)
  }

  private contentsDone(): void {
    if (this.padRemaining > 0) {
      this.state = S_PADDING
    } else {
      this.state = S_CLOSE
      this.handler.fileEnd()
    }
  }

  private nodeDone(): void {
    this.state = this.depth === 0 ? S_DONE : S_ENTRY_CLOSE
  }
}
