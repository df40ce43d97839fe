import type { Handler, WriterOptions } from "../Nar.js"
import { NarError, type NarErrorReason } from "./narError.js"
import {
  compareBytes,
  DEFAULT_MAX_DEPTH,
  MAX_NAME_LENGTH,
  MAX_TARGET_LENGTH,
  nameProblem,
  padLength,
  showBytes,
  targetProblem,
  TOK_CLOSE,
  TOK_DIRECTORY,
  TOK_ENTRY,
  TOK_EXECUTABLE,
  TOK_NODE,
  TOK_REGULAR,
  TOK_START,
  TOK_SYMLINK,
  writeU64
} from "./narWire.js"

// Writer states: which events are allowed next.
const W_ROOT = 0 // the root node
const W_DIR = 1 // entry or directoryEnd
const W_ENTRY_NODE = 2 // the node of the entry just named
const W_FILE = 3 // fileChunk or fileEnd
const W_DONE = 4
const W_FAILED = 5

const DEFAULT_CHUNK_SIZE = 64 * 1024
// Big enough for the longest single write: a padded symlink target plus tokens.
const MIN_CHUNK_SIZE = 8 * 1024

const ALLOWED: ReadonlyArray<string> = [
  "a node event (directoryStart, fileStart or symlink)",
  "entry or directoryEnd",
  "a node event (directoryStart, fileStart or symlink) for the entry",
  "fileChunk or fileEnd",
  "no further event (the archive is complete)"
]

/**
 * Streaming NAR writer. See `Nar.Writer` for the contract.
 *
 * @internal
 */
export class WriterImpl implements Handler {
  private readonly emit: (chunk: Uint8Array) => void
  private readonly chunkSize: number
  private readonly maxDepth: number
  /** Copy file chunks smaller than this into the buffer; emit larger ones as they are. */
  private readonly copyLimit: number

  private buf: Uint8Array
  private pos = 0
  /** Bytes handed to `emit` so far. */
  private emitted = 0

  private state = W_ROOT
  private failure: unknown = undefined
  private depth = 0
  private readonly prevNames: Array<Uint8Array | undefined> = []
  private fileSize = 0
  private remaining = 0

  constructor(emit: (chunk: Uint8Array) => void, options?: WriterOptions) {
    this.emit = emit
    const chunkSize = options?.chunkSize ?? DEFAULT_CHUNK_SIZE
    if (!Number.isSafeInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE) {
      throw new RangeError(`chunkSize must be an integer of at least ${MIN_CHUNK_SIZE}, got ${chunkSize}`)
    }
    const maxDepth = options?.maxDepth ?? DEFAULT_MAX_DEPTH
    if (!Number.isSafeInteger(maxDepth) || maxDepth < 0) {
      throw new RangeError(`maxDepth must be a non-negative integer, got ${maxDepth}`)
    }
    this.chunkSize = chunkSize
    this.maxDepth = maxDepth
    this.copyLimit = chunkSize >>> 2
    this.buf = new Uint8Array(chunkSize)
  }

  /** Bytes written so far (emitted or buffered). */
  get offset(): number {
    return this.emitted + this.pos
  }

  /** Whether the root node is complete. */
  get done(): boolean {
    return this.state === W_DONE
  }

  directoryStart(): void {
    this.nodeStart("directoryStart")
    if (this.depth >= this.maxDepth) {
      this.fail("TooDeep", `directory nested ${this.depth + 1} levels deep, more than the limit of ${this.maxDepth}`)
    }
    this.put(TOK_DIRECTORY)
    this.prevNames[this.depth] = undefined
    this.depth++
    this.state = W_DIR
  }

  entry(name: Uint8Array): void {
    if (this.state !== W_DIR) this.unexpected("entry")
    const len = name.length
    if (len > MAX_NAME_LENGTH) {
      this.fail("NameTooLong", `entry name of ${len} bytes is longer than the limit of ${MAX_NAME_LENGTH}`)
    }
    const problem = nameProblem(name, 0, len)
    if (problem !== undefined) this.fail("InvalidName", `entry name ${showBytes(name)} ${problem}`)
    const level = this.depth - 1
    const prev = this.prevNames[level]
    if (prev !== undefined) {
      const c = compareBytes(prev, name)
      if (c === 0) this.fail("DuplicateEntry", `entry name ${showBytes(name)} appears twice in a directory`)
      if (c > 0) {
        this.fail(
          "UnsortedEntries",
          `entry name ${showBytes(name)} is not after ${showBytes(prev)} (entries must be strictly sorted)`
        )
      }
    }
    // Keep our own copy: the caller may reuse its buffer.
    this.prevNames[level] = name.slice()
    this.reserve(TOK_ENTRY.length + 8 + MAX_NAME_LENGTH + 1 + TOK_NODE.length)
    this.putRaw(TOK_ENTRY)
    this.putString(name)
    this.putRaw(TOK_NODE)
    this.state = W_ENTRY_NODE
  }

  directoryEnd(): void {
    if (this.state !== W_DIR) this.unexpected("directoryEnd")
    this.depth--
    this.put(TOK_CLOSE)
    this.nodeDone()
  }

  fileStart(executable: boolean, size: number): void {
    this.nodeStart("fileStart")
    if (!Number.isSafeInteger(size) || size < 0) {
      this.fail("FileTooLarge", `file size must be a non-negative safe integer, got ${size}`)
    }
    const tok = executable ? TOK_EXECUTABLE : TOK_REGULAR
    this.reserve(tok.length + 8)
    this.putRaw(tok)
    writeU64(this.buf, this.pos, size)
    this.pos += 8
    this.fileSize = size
    this.remaining = size
    this.state = W_FILE
  }

  fileChunk(chunk: Uint8Array): void {
    if (this.state !== W_FILE) this.unexpected("fileChunk")
    const n = chunk.length
    if (n > this.remaining) {
      this.fail(
        "FileSizeMismatch",
        `file contents exceed the announced size of ${this.fileSize} bytes (${n - this.remaining} bytes too many)`
      )
    }
    this.remaining -= n
    if (n < this.copyLimit) {
      if (this.pos + n > this.buf.length) this.flush()
      this.buf.set(chunk, this.pos)
      this.pos += n
    } else {
      this.flush()
      this.emitted += n
      this.emit(chunk)
    }
  }

  fileEnd(): void {
    if (this.state !== W_FILE) this.unexpected("fileEnd")
    if (this.remaining !== 0) {
      this.fail(
        "FileSizeMismatch",
        `file ended after ${this.fileSize - this.remaining} of the announced ${this.fileSize} bytes`
      )
    }
    const pad = padLength(this.fileSize)
    this.reserve(pad + TOK_CLOSE.length)
    this.buf.fill(0, this.pos, this.pos + pad)
    this.pos += pad
    this.putRaw(TOK_CLOSE)
    this.nodeDone()
  }

  symlink(target: Uint8Array): void {
    this.nodeStart("symlink")
    const len = target.length
    if (len > MAX_TARGET_LENGTH) {
      this.fail("TargetTooLong", `symlink target of ${len} bytes is longer than the limit of ${MAX_TARGET_LENGTH}`)
    }
    const problem = targetProblem(target, 0, len)
    if (problem !== undefined) this.fail("InvalidTarget", `symlink target ${showBytes(target)} ${problem}`)
    this.reserve(TOK_SYMLINK.length + 8 + len + 8 + TOK_CLOSE.length)
    this.putRaw(TOK_SYMLINK)
    this.putString(target)
    this.putRaw(TOK_CLOSE)
    this.nodeDone()
  }

  /** Emits whatever is buffered. */
  flush(): void {
    const n = this.pos
    if (n === 0) return
    if (n * 2 < this.buf.length) {
      // Little data: copy it out and keep the buffer.
      const out = this.buf.slice(0, n)
      this.pos = 0
      this.emitted += n
      this.emit(out)
    } else {
      const out = this.buf.subarray(0, n)
      this.buf = new Uint8Array(this.chunkSize)
      this.pos = 0
      this.emitted += n
      this.emit(out)
    }
  }

  /** Checks that the archive is complete and emits the rest. */
  end(): void {
    if (this.state === W_FAILED) throw this.failure
    if (this.state !== W_DONE) {
      this.fail("Truncated", `the archive is incomplete: expected ${ALLOWED[this.state]}`)
    }
    this.flush()
  }

  private nodeStart(event: string): void {
    if (this.state === W_ROOT) {
      this.put(TOK_START)
    } else if (this.state === W_ENTRY_NODE) {
      // "entry" "(" "name" <name> "node" "(" "type" was written by `entry`.
    } else {
      this.unexpected(event)
    }
  }

  private nodeDone(): void {
    if (this.depth === 0) {
      this.state = W_DONE
    } else {
      this.put(TOK_CLOSE)
      this.state = W_DIR
    }
  }

  private unexpected(event: string): never {
    if (this.state === W_FAILED) throw this.failure
    return this.fail("UnexpectedEvent", `${event} is not allowed here: expected ${ALLOWED[this.state]}`)
  }

  private fail(reason: NarErrorReason, detail: string): never {
    if (this.state === W_FAILED) throw this.failure
    const err = new NarError({ reason, offset: this.offset, detail })
    this.state = W_FAILED
    this.failure = err
    throw err
  }

  private reserve(n: number): void {
    if (this.pos + n > this.buf.length) this.flush()
  }

  private put(tok: Uint8Array): void {
    this.reserve(tok.length)
    this.putRaw(tok)
  }

  private putRaw(tok: Uint8Array): void {
    this.buf.set(tok, this.pos)
    this.pos += tok.length
  }

  /** A length-prefixed, zero-padded string; room must have been reserved. */
  private putString(bytes: Uint8Array): void {
    const len = bytes.length
    const buf = this.buf
    writeU64(buf, this.pos, len)
    buf.set(bytes, this.pos + 8)
    const end = this.pos + 8 + len
    const padEnd = end + padLength(len)
    for (let i = end; i < padEnd; i++) buf[i] = 0
    this.pos = padEnd
  }
}
