/**
 * NARs rendered from castore with random access: the byte layout of a NAR is
 * computed from its root node and directory closure alone (token sizes follow
 * from entry names, symlink targets and file sizes), so a byte range is served
 * by skipping whole subtrees and whole files that lie before it and reading
 * the first file it touches from an offset (BlobService's ranged read).
 * Nothing before the range is rendered or read.
 *
 * The framing written here is the NAR grammar of `@nixfx/nix-compat/Nar`;
 * the tests compare every fixture NAR and slices of it at many offsets with
 * the NARs real Nix wrote.
 *
 * @internal
 */
import * as BlobService from "@nixfx/castore/BlobService"
import type * as DirectoryService from "@nixfx/castore/DirectoryService"
import { NarRenderError } from "@nixfx/castore/NarRender"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import type * as Directory from "@nixfx/castore-nodes/Directory"
import type * as Node from "@nixfx/castore-nodes/Node"
import * as Cause from "effect/Cause"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

// ---------------------------------------------------------------------------
// wire tokens
// ---------------------------------------------------------------------------

const utf8 = new TextEncoder()

const padLength = (n: number): number => (8 - (n % 8)) % 8

const writeU64 = (out: Uint8Array, p: number, n: number): void => {
  let lo = n % 0x1_0000_0000
  let hi = Math.floor(n / 0x1_0000_0000)
  for (let i = 0; i < 4; i++) {
    out[p + i] = lo & 0xff
    lo = lo >>> 8
    out[p + 4 + i] = hi & 0xff
    hi = hi >>> 8
  }
}

/** Wire form of one byte string: length (u64 LE), bytes, zero padding to 8. */
const wireString = (bytes: Uint8Array): Uint8Array => {
  const out = new Uint8Array(8 + bytes.length + padLength(bytes.length))
  writeU64(out, 0, bytes.length)
  out.set(bytes, 8)
  return out
}

const tokens = (...parts: ReadonlyArray<string>): Uint8Array => {
  const encoded = parts.map((p) => wireString(utf8.encode(p)))
  const out = new Uint8Array(encoded.reduce((n, e) => n + e.length, 0))
  let p = 0
  for (const e of encoded) {
    out.set(e, p)
    p += e.length
  }
  return out
}

const T_ARCHIVE = tokens("nix-archive-1", "(", "type")
const T_REGULAR = tokens("regular", "contents")
const T_EXECUTABLE = tokens("regular", "executable", "", "contents")
const T_SYMLINK = tokens("symlink", "target")
const T_DIRECTORY = tokens("directory")
const T_ENTRY = tokens("entry", "(", "name")
const T_NODE = tokens("node", "(", "type")
const T_CLOSE = tokens(")")
const ZEROS = new Uint8Array(8)

const wireLength = (byteLength: number): number => 8 + byteLength + padLength(byteLength)

// ---------------------------------------------------------------------------
// layout
// ---------------------------------------------------------------------------

/** The directories of a closure by hex digest. */
export type Directories = ReadonlyMap<string, Directory.Directory>

/** Byte sizes of directory bodies, by hex digest (a directory may occur many times in a tree). */
type SizeMemo = Map<string, number>

const missingDirectory = (path: string, digest: B3Digest.B3Digest): NarRenderError =>
  new NarRenderError({
    reason: "MissingDirectory",
    path,
    digest: B3Digest.toHex(digest),
    description: "the directory is not in the closure the directory service returned"
  })

/** Bytes of a node's body: what follows `type` up to (not including) the node's closing `)`. */
const bodySize = (node: Node.Node, directories: Directories, memo: SizeMemo, path: string): number => {
  switch (node._tag) {
    case "File":
      return (node.executable ? T_EXECUTABLE.length : T_REGULAR.length) + 8 + node.size + padLength(node.size)
    case "Symlink":
      return T_SYMLINK.length + wireLength(Buffer.byteLength(node.target, "utf8"))
    case "Directory": {
      const key = B3Digest.toHex(node.digest)
      const known = memo.get(key)
      if (known !== undefined) return known
      const directory = directories.get(key)
      if (directory === undefined) throw missingDirectory(path, node.digest)
      let size = T_DIRECTORY.length
      for (const { name, node: child } of directory.entries) {
        size += entrySize(name, child, directories, memo, path === "/" ? "/" + name : path + "/" + name)
      }
      memo.set(key, size)
      return size
    }
  }
}

const entrySize = (name: string, node: Node.Node, directories: Directories, memo: SizeMemo, path: string): number =>
  T_ENTRY.length + wireLength(Buffer.byteLength(name, "utf8")) + T_NODE.length + bodySize(node, directories, memo, path) +
  2 * T_CLOSE.length

/**
 * The size of the NAR of `root`, from the layout alone. Throws a
 * `NarRenderError` when the closure lacks a directory the tree names.
 */
export const narSize = (root: Node.Node, directories: Directories): number =>
  T_ARCHIVE.length + bodySize(root, directories, new Map(), "/") + T_CLOSE.length

/**
 * The directory closure of `root` (nothing for a file or symlink), read
 * with one `getRecursive`.
 */
export const loadDirectories = (
  directoryService: DirectoryService.Service,
  root: Node.Node
): Effect.Effect<Directories, NarRenderError> => {
  if (root._tag !== "Directory") return Effect.succeed(new Map())
  const out = new Map<string, Directory.Directory>()
  return Effect.as(
    Stream.runForEach(
      directoryService.getRecursive(root.digest),
      (directory) => Effect.sync(() => out.set(B3Digest.toHex(directory.digest), directory))
    ).pipe(
      Effect.mapError((e) =>
        new NarRenderError({
          reason: e.reason === "NotFound" ? "MissingDirectory" : "DirectoryService",
          path: "/",
          digest: e.digest ?? B3Digest.toHex(root.digest),
          description: `reading the directory closure: ${e.message}`,
          cause: e
        })
      )
    ),
    out
  )
}

// ---------------------------------------------------------------------------
// rendering a range
// ---------------------------------------------------------------------------

/** Part of one file's contents that a range covers. */
interface BlobSlice {
  readonly _tag: "BlobSlice"
  readonly digest: B3Digest.B3Digest
  readonly offset: number
  readonly length: number
  readonly fileSize: number
  readonly path: string
}

/** Where a small file's contents go in a batch's bytes, once read. */
interface Hole {
  readonly at: number
  readonly slice: BlobSlice
}

/**
 * A piece of output: the NAR bytes of a stretch of the range, with holes
 * where small files' contents go (read in one `readMany`; none when it is
 * all framing or gathered chunks of a streamed file).
 */
interface Batch {
  readonly _tag: "Batch"
  readonly bytes: Buffer
  readonly holes: ReadonlyArray<Hole>
}

/** What the walk hands on: a batch, or one large file slice to stream. */
type Piece = Batch | BlobSlice

/**
 * Output is handed on in pieces of about this size: framing and small files
 * are written into one buffer (the small files read in one batch, see
 * `BlobService.readMany`); larger file chunks pass through as they are.
 * Fewer, larger pieces cost less downstream (one effect step and one socket
 * write each).
 */
const OUTPUT_CHUNK = 128 * 1024
/**
 * File slices up to this size are read whole into a batch when the blob
 * service has `readMany`; larger ones (and all without it: reading through
 * `read` and collecting costs more than streaming) are streamed.
 */
const SMALL_SLICE = 128 * 1024
/** A batch's buffer: a piece, one small file and its framing fit without growing it. */
const BUFFER_BYTES = OUTPUT_CHUNK + SMALL_SLICE + 8 * 1024
/** Chunks of a streamed file at least this large are passed on without copying. */
const PASS_THROUGH = 16 * 1024

/**
 * Walks the tree and yields the NAR bytes that fall in `[start, end)` as
 * batches (framing written into a buffer, holes for small files) and large
 * file slices, skipping what lies before `start` without descending into it
 * and stopping at `end`.
 */
class RangeWalker {
  private pos = 0
  private buffer = Buffer.allocUnsafe(BUFFER_BYTES)
  private fill = 0
  private holes: Array<Hole> = []
  private readonly memo: SizeMemo = new Map()

  constructor(
    private readonly directories: Directories,
    private readonly start: number,
    private readonly end: number,
    /** Slices up to this size go into batches; larger ones are streamed. */
    private readonly smallSlice: number
  ) {}

  /** Bytes gathered so far. */
  get pendingBytes(): number {
    return this.fill
  }

  /** Makes room for `n` more bytes (grows the buffer only for unusually long names or targets). */
  private room(n: number): void {
    if (this.fill + n <= this.buffer.length) return
    const bigger = Buffer.allocUnsafe(Math.max(2 * this.buffer.length, this.fill + n))
    this.buffer.copy(bigger, 0, 0, this.fill)
    this.buffer = bigger
  }

  /** Whether the next `n` bytes of the NAR lie wholly inside the range (then they are written directly). */
  private inside(n: number): boolean {
    return this.pos >= this.start && this.pos + n <= this.end
  }

  /** Accounts for `bytes` at the current position, keeping the part inside the range. */
  private frame(bytes: Uint8Array): void {
    const from = this.pos
    const to = from + bytes.length
    this.pos = to
    if (to <= this.start || from >= this.end) return
    const a = Math.max(0, this.start - from)
    const b = Math.min(bytes.length, this.end - from)
    this.room(b - a)
    if (b - a <= 64) {
      // (a loop beats TypedArray#set for the short tokens that make up most framing)
      const buffer = this.buffer
      let p = this.fill
      for (let i = a; i < b; i++) buffer[p++] = bytes[i]
    } else {
      this.buffer.set(a === 0 && b === bytes.length ? bytes : bytes.subarray(a, b), this.fill)
    }
    this.fill += b - a
  }

  private frameU64(n: number): void {
    if (this.inside(8)) {
      this.room(8)
      writeU64(this.buffer, this.fill, n)
      this.fill += 8
      this.pos += 8
      return
    }
    const out = new Uint8Array(8)
    writeU64(out, 0, n)
    this.frame(out)
  }

  private frameString(s: string): void {
    const length = Buffer.byteLength(s, "utf8")
    const wire = wireLength(length)
    if (this.inside(wire)) {
      this.room(wire)
      writeU64(this.buffer, this.fill, length)
      this.buffer.write(s, this.fill + 8, length, "utf8")
      this.buffer.fill(0, this.fill + 8 + length, this.fill + wire)
      this.fill += wire
      this.pos += wire
      return
    }
    const bytes = utf8.encode(s)
    this.frameU64(bytes.length)
    this.frame(bytes)
    this.frame(ZEROS.subarray(0, padLength(bytes.length)))
  }

  /** Leaves a hole for a small file's contents. */
  private reserve(slice: BlobSlice): void {
    this.room(slice.length)
    this.holes.push({ at: this.fill, slice })
    this.fill += slice.length
  }

  /** Adds bytes of a streamed file to the output being gathered. */
  gather(bytes: Uint8Array): void {
    this.room(bytes.length)
    this.buffer.set(bytes, this.fill)
    this.fill += bytes.length
  }

  /** The output gathered so far, or nothing. */
  take(): Batch | undefined {
    if (this.fill === 0) return undefined
    const batch: Batch = { _tag: "Batch", bytes: this.buffer.subarray(0, this.fill), holes: this.holes }
    this.buffer = Buffer.allocUnsafe(BUFFER_BYTES)
    this.fill = 0
    this.holes = []
    return batch
  }

  /** The gathered output, while it has no holes (a large file is being streamed). */
  takeBytes(): Uint8Array | undefined {
    return this.take()?.bytes
  }

  *pieces(root: Node.Node): Generator<Piece> {
    this.frame(T_ARCHIVE)
    yield* this.body(root, "/")
    this.frame(T_CLOSE)
    const rest = this.take()
    if (rest !== undefined) yield rest
  }

  private *body(node: Node.Node, path: string): Generator<Piece> {
    switch (node._tag) {
      case "Symlink": {
        this.frame(T_SYMLINK)
        this.frameString(node.target)
        return
      }
      case "File": {
        this.frame(node.executable ? T_EXECUTABLE : T_REGULAR)
        this.frameU64(node.size)
        const from = this.pos
        const to = from + node.size
        this.pos = to
        const s = Math.max(from, this.start)
        const e = Math.min(to, this.end)
        if (s < e) {
          const slice: BlobSlice = {
            _tag: "BlobSlice",
            digest: node.digest,
            offset: s - from,
            length: e - s,
            fileSize: node.size,
            path
          }
          if (slice.length <= this.smallSlice) {
            if (this.fill + slice.length > BUFFER_BYTES - 4096) yield this.take()!
            this.reserve(slice)
          } else {
            // Small files before it are read first; framing stays gathered (the streamed chunks join it).
            if (this.holes.length > 0) yield this.take()!
            yield slice
          }
        }
        this.frame(ZEROS.subarray(0, padLength(node.size)))
        return
      }
      case "Directory": {
        const directory = this.directories.get(B3Digest.toHex(node.digest))
        if (directory === undefined) throw missingDirectory(path, node.digest)
        this.frame(T_DIRECTORY)
        for (const { name, node: child } of directory.entries) {
          if (this.pos >= this.end) return
          const childPath = path === "/" ? "/" + name : path + "/" + name
          if (this.pos < this.start) {
            const size = entrySize(name, child, this.directories, this.memo, childPath)
            if (this.pos + size <= this.start) {
              this.pos += size
              continue
            }
          }
          this.frame(T_ENTRY)
          this.frameString(name)
          this.frame(T_NODE)
          yield* this.body(child, childPath)
          this.frame(T_CLOSE)
          this.frame(T_CLOSE)
          if (this.pendingBytes >= OUTPUT_CHUNK) yield this.take()!
        }
        return
      }
    }
  }
}

const sliceError = (slice: BlobSlice, description: string, cause?: BlobService.BlobServiceError): NarRenderError =>
  new NarRenderError({
    reason: cause === undefined || cause.reason === "InvalidRange" ? "BlobSizeMismatch" : "BlobService",
    path: slice.path,
    digest: B3Digest.toHex(slice.digest),
    description,
    ...(cause === undefined ? {} : { cause })
  })

const missingBlob = (slice: BlobSlice): NarRenderError =>
  new NarRenderError({
    reason: "MissingBlob",
    path: slice.path,
    digest: B3Digest.toHex(slice.digest),
    description: `the blob service has no blob for this ${slice.fileSize}-byte file`
  })

const shortBlob = (slice: BlobSlice, seen: number): NarRenderError =>
  sliceError(
    slice,
    `the FileNode says ${slice.fileSize} bytes, but reading bytes ${slice.offset}..${
      slice.offset + slice.length
    } of the blob gave only ${seen}`
  )

type Out = Channel.Channel<Chunk.Chunk<Uint8Array>, unknown, NarRenderError, unknown, void, unknown>
type Pump = Channel.Channel<
  Chunk.Chunk<Uint8Array>,
  Chunk.Chunk<Uint8Array>,
  NarRenderError,
  BlobService.BlobServiceError,
  void,
  unknown
>

/** The bytes of a batch, its holes filled with one `readMany`, each file checked to have exactly its length. */
const readBatch = (blobs: BlobService.Service, batch: Batch): Effect.Effect<Uint8Array, NarRenderError> => {
  const holes = batch.holes
  if (holes.length === 0) return Effect.succeed(batch.bytes)
  return Effect.flatMap(
    Effect.mapError(
      BlobService.readMany(
        blobs,
        holes.map(({ slice }) => ({ digest: slice.digest, range: { offset: slice.offset, length: slice.length } }))
      ),
      (e) => {
        const slice = holes.find((h) => B3Digest.toHex(h.slice.digest) === e.digest)?.slice ?? holes[0].slice
        return sliceError(slice, `reading bytes ${slice.offset}..${slice.offset + slice.length} of the file: ${e.message}`, e)
      }
    ),
    (contents) => {
      for (let i = 0; i < holes.length; i++) {
        const { at, slice } = holes[i]
        const found = contents[i]
        if (Option.isNone(found)) return Effect.fail(missingBlob(slice))
        if (found.value.length !== slice.length) return Effect.fail(shortBlob(slice, found.value.length))
        batch.bytes.set(found.value, at)
      }
      return Effect.succeed(batch.bytes)
    }
  )
}

/**
 * Passes a large blob's chunks on through the walker's output gathering,
 * checking that exactly `slice.length` bytes arrive.
 */
const pumpSlice = (slice: BlobSlice, walker: RangeWalker): Pump => {
  let seen = 0
  const pump: Pump = Channel.readWithCause({
    onInput: (input: Chunk.Chunk<Uint8Array>) => {
      let out: Array<Uint8Array> | undefined
      for (const c of input) {
        seen += c.length
        if (seen > slice.length) {
          return Channel.fail(
            sliceError(slice, `asked for ${slice.length} bytes at offset ${slice.offset}, the blob sent more`)
          )
        }
        if (c.length >= PASS_THROUGH) {
          const gathered = walker.takeBytes()
          out ??= []
          if (gathered !== undefined) out.push(gathered)
          out.push(c)
        } else {
          walker.gather(c)
          if (walker.pendingBytes >= OUTPUT_CHUNK) (out ??= []).push(walker.takeBytes()!)
        }
      }
      return out === undefined ? pump : Channel.flatMap(Channel.write(Chunk.unsafeFromArray(out)), () => pump)
    },
    onFailure: (cause) => Channel.failCause(Cause.map(cause, (e) => sliceError(slice, `reading the file: ${e.message}`, e))),
    onDone: () => seen === slice.length ? Channel.void : Channel.fail(shortBlob(slice, seen))
  })
  return pump
}

/** Exactly `slice.length` bytes of a large blob from `slice.offset`, streamed, or a failure naming the file. */
const streamSlice = (blobs: BlobService.Service, slice: BlobSlice, walker: RangeWalker): Out =>
  Channel.flatMap(
    Channel.fromEffect(Effect.mapError(
      blobs.read(slice.digest, { offset: slice.offset, length: slice.length }),
      (e) => sliceError(slice, `reading bytes ${slice.offset}..${slice.offset + slice.length} of the file: ${e.message}`, e)
    )),
    (found) =>
      Option.isNone(found)
        ? Channel.fail(missingBlob(slice))
        : Channel.pipeTo(Stream.toChannel(found.value), pumpSlice(slice, walker))
  )

/**
 * The bytes `[start, end)` of the NAR of `root`. `directories` must hold the
 * closure of `root` (see {@link loadDirectories}); `end` must not exceed the
 * NAR size. One channel drives the walk; each file it touches is one blob
 * read piped through.
 */
export const renderRange = (
  blobs: BlobService.Service,
  directories: Directories,
  root: Node.Node,
  start: number,
  end: number
): Stream.Stream<Uint8Array, NarRenderError> =>
  Stream.suspend(() => {
    const walker = new RangeWalker(directories, start, end, blobs.readMany === undefined ? 0 : SMALL_SLICE)
    const iterator = walker.pieces(root)
    const loop: Out = Channel.suspend(() => {
      let r: IteratorResult<Piece>
      try {
        r = iterator.next()
      } catch (e) {
        if (e instanceof NarRenderError) return Channel.fail(e)
        throw e
      }
      if (r.done === true) return Channel.void
      const piece = r.value
      return piece._tag === "Batch"
        ? Channel.flatMap(Channel.fromEffect(readBatch(blobs, piece)), (bytes) =>
          Channel.flatMap(Channel.write(Chunk.of(bytes)), () => loop))
        : Channel.flatMap(streamSlice(blobs, piece, walker), () => loop)
    })
    return Stream.fromChannel(loop)
  })
