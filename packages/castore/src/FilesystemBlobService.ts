/**
 * A {@link BlobService.BlobService} that keeps each blob as one file under a
 * directory: `<directory>/blobs/<first two hex digits>/<64 hex digits>`.
 *
 * A blob is written to a temporary file in `<directory>/tmp/` (the same
 * filesystem) and renamed to its digest only once it is complete, so a crash
 * never leaves a partial blob under a digest. A blob that already exists is
 * not rewritten. The writer never holds more than a few hundred KiB of a blob
 * in memory.
 *
 * The file operations are Node's synchronous `fs` calls: per blob they cost a
 * handful of system calls and no thread-pool round trip, which is what makes
 * importing tens of thousands of small files fast. Each call blocks the event
 * loop only for as long as the kernel takes to copy one buffer (at most
 * {@link flushBytes}) into the page cache.
 *
 * Node.js only.
 *
 * @since 0.1.0
 */
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { BlobInfo, BlobWriter, ReadRange, Service } from "./BlobService.js"
import { BlobService } from "./BlobService.js"
import { BlobServiceError } from "./CastoreError.js"
import { concatChunks } from "./internal/bytes.js"
import { checkRange, resolveRange, writerClosedError } from "./internal/range.js"
import { scopedWriter } from "./internal/writer.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The root directory of the store; created when missing. */
  readonly directory: string
  /**
   * `fsync` each blob file before renaming it into place, and its directory
   * after, so a completed write survives a power loss (not only a crash of
   * the process). Much slower for small blobs. Default `false`.
   */
  readonly fsync?: boolean | undefined
}

/**
 * A writer keeps up to this many bytes of a blob in memory before writing
 * them out; a blob no larger than this is hashed in one call and written to
 * disk only at `close` (and not at all when the store already holds it).
 *
 * @since 0.1.0
 * @category constants
 */
export const flushBytes = 256 * 1024

/** Reads of at most this many bytes are served in one synchronous read. */
const smallReadBytes = 256 * 1024

/** Chunk size of streamed reads. */
const readChunkBytes = 256 * 1024

interface Errno {
  readonly code?: string
  readonly message: string
}

const describe = (cause: unknown): string =>
  typeof cause === "object" && cause !== null && "message" in cause ? String((cause as Errno).message) : String(cause)

const storageError = (description: string, cause: unknown, digest?: Uint8Array): BlobServiceError =>
  new BlobServiceError({
    reason: "Storage",
    ...(digest === undefined ? {} : { digest: B3Digest.toHex(digest) }),
    description: `${description}: ${describe(cause)}`,
    cause
  })

const isNoEntry = (cause: unknown): boolean => (cause as Errno | undefined)?.code === "ENOENT"

/**
 * Largest single write. Measured on Linux (ext4): one `write` of 64 MiB runs at
 * ~0.5 GB/s, 256 KiB writes of the same bytes at ~6 GB/s.
 */
const writeLimit = 256 * 1024

/** Writes `chunks` (`total` bytes in all) with one `writev`, finishing a short write chunk by chunk. */
const writeFully = (fd: number, chunks: ReadonlyArray<Uint8Array>, total: number): void => {
  let written = chunks.length === 1 ? Fs.writeSync(fd, chunks[0]) : Fs.writevSync(fd, chunks as Array<Uint8Array>)
  if (written === total) return
  for (const chunk of chunks) {
    if (written >= chunk.length) {
      written -= chunk.length
      continue
    }
    let offset = written
    written = 0
    while (offset < chunk.length) offset += Fs.writeSync(fd, chunk, offset)
  }
}

/** Writes every chunk at the current position of `fd`, in writes of at most {@link writeLimit} bytes. */
const writeChunks = (fd: number, chunks: ReadonlyArray<Uint8Array>): void => {
  let batch: Array<Uint8Array> = []
  let batchBytes = 0
  for (const chunk of chunks) {
    for (let offset = 0; offset < chunk.length;) {
      const piece = chunk.subarray(offset, offset + writeLimit - batchBytes)
      batch.push(piece)
      batchBytes += piece.length
      offset += piece.length
      if (batchBytes === writeLimit) {
        writeFully(fd, batch, batchBytes)
        batch = []
        batchBytes = 0
      }
    }
  }
  if (batchBytes > 0) writeFully(fd, batch, batchBytes)
}

class Store {
  readonly blobsDir: string
  readonly tmpDir: string
  private readonly tmpPrefix: string
  private tmpCounter = 0
  private readonly madeDirs = new Set<string>()

  constructor(readonly root: string, readonly fsync: boolean) {
    this.blobsDir = Path.join(root, "blobs")
    this.tmpDir = Path.join(root, "tmp")
    this.tmpPrefix = `${process.pid}-${Crypto.randomBytes(6).toString("hex")}-`
  }

  pathOf(key: string): string {
    // (concatenation: path.join costs more than the read of a small blob)
    return this.blobsDir + Path.sep + key.slice(0, 2) + Path.sep + key
  }

  nextTmpPath(): string {
    return Path.join(this.tmpDir, this.tmpPrefix + (this.tmpCounter++).toString(36))
  }

  /**
   * Moves a finished temporary file to its digest; drops it when the blob is
   * already there (unless the caller has just checked that). Should another
   * writer publish the same blob in between, the rename replaces it with
   * identical bytes, atomically.
   */
  publish(tmpPath: string, digest: B3Digest.B3Digest, key: string, checked: boolean): BlobServiceError | undefined {
    const target = this.pathOf(key)
    const dir = Path.dirname(target)
    try {
      if (!checked && Fs.existsSync(target)) {
        Fs.unlinkSync(tmpPath)
        return undefined
      }
      if (!this.madeDirs.has(dir)) {
        Fs.mkdirSync(dir, { recursive: true })
        this.madeDirs.add(dir)
      }
      try {
        Fs.renameSync(tmpPath, target)
      } catch (cause) {
        if (!isNoEntry(cause) || !Fs.existsSync(tmpPath)) throw cause
        // The fan-out directory vanished since we made it: make it again.
        Fs.mkdirSync(dir, { recursive: true })
        Fs.renameSync(tmpPath, target)
      }
      if (this.fsync) syncDirectory(dir)
      return undefined
    } catch (cause) {
      removeQuietly(tmpPath)
      return storageError(`could not move ${tmpPath} to ${target}`, cause, digest)
    }
  }

  /** Writes a complete blob held in memory: temporary file, then rename. */
  writeWhole(chunks: ReadonlyArray<Uint8Array>, size: number): BlobInfo | BlobServiceError {
    const data = concatChunks(chunks, size)
    const digest = B3Digest.hash(data)
    const key = B3Digest.toHex(digest)
    if (Fs.existsSync(this.pathOf(key))) return { digest, size }
    const tmpPath = this.nextTmpPath()
    let fd = -1
    try {
      fd = Fs.openSync(tmpPath, "wx")
      writeChunks(fd, [data])
      if (this.fsync) Fs.fsyncSync(fd)
      Fs.closeSync(fd)
      fd = -1
    } catch (cause) {
      if (fd !== -1) closeQuietly(fd)
      removeQuietly(tmpPath)
      return storageError(`could not write ${tmpPath}`, cause, digest)
    }
    const failed = this.publish(tmpPath, digest, key, true)
    return failed ?? { digest, size }
  }
}

const closeQuietly = (fd: number): void => {
  try {
    Fs.closeSync(fd)
  } catch {
    // already closed or never valid: nothing left to release
  }
}

const removeQuietly = (path: string): void => {
  try {
    Fs.unlinkSync(path)
  } catch {
    // already gone
  }
}

const syncDirectory = (dir: string): void => {
  const fd = Fs.openSync(dir, "r")
  try {
    Fs.fsyncSync(fd)
  } finally {
    Fs.closeSync(fd)
  }
}

class FilesystemWriter implements BlobWriter {
  private pending: Array<Uint8Array> = []
  private pendingBytes = 0
  private size = 0
  private fd = -1
  private tmpPath = ""
  private hasher: B3Digest.B3Hasher | undefined = undefined
  private done = false

  constructor(private readonly store: Store) {}

  readonly write = (chunk: Uint8Array): Effect.Effect<void, BlobServiceError> =>
    Effect.suspend(() => {
      if (this.done) return Effect.fail(writerClosedError())
      if (chunk.length === 0) return Effect.void
      this.pending.push(chunk)
      this.pendingBytes += chunk.length
      this.size += chunk.length
      if (this.pendingBytes < flushBytes) return Effect.void
      const failed = this.flush()
      return failed === undefined ? Effect.void : Effect.fail(failed)
    })

  /** Hashes and writes the pending chunks to the temporary file, opening it first if needed. */
  private flush(): BlobServiceError | undefined {
    try {
      if (this.fd === -1) {
        this.tmpPath = this.store.nextTmpPath()
        this.fd = Fs.openSync(this.tmpPath, "wx")
        this.hasher = B3Digest.hasher()
      }
      const hasher = this.hasher!
      for (const chunk of this.pending) hasher.update(chunk)
      writeChunks(this.fd, this.pending)
      this.pending = []
      this.pendingBytes = 0
      return undefined
    } catch (cause) {
      const path = this.tmpPath
      this.discard()
      return storageError(`could not write ${path}`, cause)
    }
  }

  readonly close: Effect.Effect<BlobInfo, BlobServiceError> = Effect.suspend(() => {
    if (this.done) return Effect.fail(writerClosedError())
    if (this.fd === -1) {
      // Small blob: never touched the disk so far.
      this.done = true
      const result = this.store.writeWhole(this.pending, this.pendingBytes)
      this.pending = []
      return result instanceof BlobServiceError ? Effect.fail(result) : Effect.succeed(result)
    }
    if (this.pendingBytes > 0) {
      const failed = this.flush()
      if (failed !== undefined) return Effect.fail(failed)
    }
    this.done = true
    const fd = this.fd
    this.fd = -1
    try {
      if (this.store.fsync) Fs.fsyncSync(fd)
      Fs.closeSync(fd)
    } catch (cause) {
      closeQuietly(fd)
      removeQuietly(this.tmpPath)
      return Effect.fail(storageError(`could not write ${this.tmpPath}`, cause))
    }
    const digest = this.hasher!.digest()
    this.hasher = undefined
    const failed = this.store.publish(this.tmpPath, digest, B3Digest.toHex(digest), false)
    return failed === undefined ? Effect.succeed({ digest, size: this.size }) : Effect.fail(failed)
  })

  /** Drops everything received; removes the temporary file. */
  discard(): void {
    this.done = true
    this.pending = []
    this.hasher = undefined
    if (this.fd !== -1) {
      closeQuietly(this.fd)
      this.fd = -1
      removeQuietly(this.tmpPath)
    }
  }
}

/** Reads `length` bytes at `position` into a fresh buffer; fails when the file is shorter. */
const readExactly = (fd: number, position: number, length: number): Buffer => {
  const buffer = Buffer.allocUnsafe(length)
  let filled = 0
  while (filled < length) {
    const n = Fs.readSync(fd, buffer, filled, length - filled, position + filled)
    if (n === 0) throw new Error(`file ended at byte ${position + filled}, expected ${position + length}`)
    filled += n
  }
  return buffer
}

/**
 * Reads the range of one blob file into one array with synchronous calls:
 * open, read, close; `fstat` only when the range has no length or the file
 * ends before it (to tell a cut range from an offset past the end).
 * `undefined` when there is no such blob. A range with a length is read into
 * `arena` at `at` when given (which must have room for it).
 */
const readWholeSync = (
  store: Store,
  digest: B3Digest.B3Digest,
  range: ReadRange | undefined,
  arena?: Buffer,
  at = 0
): Uint8Array | undefined | BlobServiceError => {
  const path = store.pathOf(B3Digest.toHex(digest))
  let fd: number
  try {
    fd = Fs.openSync(path, "r")
  } catch (cause) {
    return isNoEntry(cause) ? undefined : storageError(`could not open ${path}`, cause, digest)
  }
  try {
    const offset = range?.offset ?? 0
    let length = range?.length
    let buffer: Buffer | undefined
    if (length === undefined || !Number.isSafeInteger(offset) || offset < 0) {
      const resolved = resolveRange(digest, Fs.fstatSync(fd).size, range)
      if (resolved instanceof BlobServiceError) return resolved
      length = resolved.end - resolved.start
    } else if (!Number.isSafeInteger(length) || length < 0) {
      return resolveRange(digest, 0, range) as BlobServiceError
    } else if (arena !== undefined) {
      buffer = arena.subarray(at, at + length)
    }
    buffer ??= Buffer.allocUnsafe(length)
    let filled = 0
    while (filled < length) {
      const n = Fs.readSync(fd, buffer, filled, length - filled, offset + filled)
      if (n === 0) break
      filled += n
    }
    if (filled === length) return buffer
    // The file ends inside the range: cut it there, unless the offset lies past the end.
    const resolved = resolveRange(digest, Fs.fstatSync(fd).size, range)
    if (resolved instanceof BlobServiceError) return resolved
    return buffer.subarray(0, filled)
  } catch (cause) {
    return storageError(`could not read ${path}`, cause, digest)
  } finally {
    closeQuietly(fd)
  }
}

/** The room a read takes in `readMany`'s shared buffer: its length when it has a valid one. */
const arenaLength = (range: ReadRange | undefined): number => {
  const length = range?.length
  return length !== undefined && Number.isSafeInteger(length) && length > 0 ? length : 0
}

const readAsync = (fd: number, length: number, position: number) =>
  Effect.async<Buffer, NodeJS.ErrnoException>((resume) => {
    const buffer = Buffer.allocUnsafe(length)
    Fs.read(fd, buffer, 0, length, position, (error, n) => {
      if (error) resume(Effect.fail(error))
      else resume(Effect.succeed(n === length ? buffer : buffer.subarray(0, n)))
    })
  })

const streamFile = (
  path: string,
  digest: B3Digest.B3Digest,
  start: number,
  end: number
): Stream.Stream<Uint8Array, BlobServiceError> =>
  Stream.unwrapScoped(
    Effect.map(
      Effect.acquireRelease(
        Effect.try({
          try: () => Fs.openSync(path, "r"),
          catch: (cause) => storageError(`could not open ${path}`, cause, digest)
        }),
        (fd) => Effect.sync(() => closeQuietly(fd))
      ),
      (fd) =>
        Stream.paginateEffect(start, (position) =>
          readAsync(fd, Math.min(readChunkBytes, end - position), position).pipe(
            Effect.mapError((cause) => storageError(`could not read ${path}`, cause, digest)),
            Effect.flatMap((chunk) =>
              chunk.length === 0
                ? Effect.fail(
                  new BlobServiceError({
                    reason: "Storage",
                    digest: B3Digest.toHex(digest),
                    description: `${path} ended at byte ${position}, expected ${end} bytes`
                  })
                )
                : Effect.succeed(
                  [
                    chunk as Uint8Array,
                    position + chunk.length < end ? Option.some(position + chunk.length) : Option.none()
                  ] as const
                )
            )
          ))
    )
  )

/**
 * Opens (and creates when missing) a filesystem blob store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, BlobServiceError> =>
  Effect.gen(function*() {
    const store = new Store(Path.resolve(options.directory), options.fsync ?? false)
    yield* Effect.try({
      try: () => {
        Fs.mkdirSync(store.blobsDir, { recursive: true })
        Fs.mkdirSync(store.tmpDir, { recursive: true })
      },
      catch: (cause) => storageError(`could not create the blob store in ${store.root}`, cause)
    })

    const stat = (digest: B3Digest.B3Digest): Effect.Effect<Fs.Stats | undefined, BlobServiceError> =>
      Effect.try({
        try: () => Fs.statSync(store.pathOf(B3Digest.toHex(digest)), { throwIfNoEntry: false }),
        catch: (cause) => storageError(`could not stat ${store.pathOf(B3Digest.toHex(digest))}`, cause, digest)
      })

    return BlobService.of({
      has: (digest) => Effect.map(stat(digest), (stats) => stats !== undefined),
      size: (digest) => Effect.map(stat(digest), (stats) => Option.map(Option.fromNullable(stats), (s) => s.size)),
      read: (digest, range) =>
        Effect.suspend(() => {
          // A range of known small length: read at once, no stat first.
          if (range?.length !== undefined && range.length <= smallReadBytes) {
            const bytes = readWholeSync(store, digest, range)
            if (bytes instanceof BlobServiceError) return Effect.fail(bytes)
            return Effect.succeed(
              bytes === undefined ? Option.none() : Option.some(bytes.length === 0 ? Stream.empty : Stream.succeed(bytes))
            )
          }
          return Effect.flatMap(stat(digest), (stats) => {
            if (stats === undefined) return Effect.succeedNone
            const path = store.pathOf(B3Digest.toHex(digest))
            return Effect.flatMap(checkRange(digest, stats.size, range), ({ end, start }) => {
              if (start === end) return Effect.succeed(Option.some(Stream.empty))
              if (end - start > smallReadBytes) return Effect.succeed(Option.some(streamFile(path, digest, start, end)))
              return Effect.try({
                try: () => {
                  const fd = Fs.openSync(path, "r")
                  try {
                    return Option.some(Stream.succeed(readExactly(fd, start, end - start) as Uint8Array))
                  } finally {
                    Fs.closeSync(fd)
                  }
                },
                catch: (cause) => storageError(`could not read ${path}`, cause, digest)
              })
            })
          })
        }),
      // Synchronous reads, one after another: for small blobs a handful of
      // system calls each and no stream. Ranges with a length are read into
      // one buffer for the whole call (the results share it).
      readMany: (reads) =>
        Effect.suspend(() => {
          let arenaBytes = 0
          for (const { range } of reads) arenaBytes += arenaLength(range)
          const arena = arenaBytes > 0 ? Buffer.allocUnsafe(arenaBytes) : undefined
          let at = 0
          const out: Array<Option.Option<Uint8Array>> = new Array(reads.length)
          for (let i = 0; i < reads.length; i++) {
            const range = reads[i].range
            const bytes = readWholeSync(store, reads[i].digest, range, arena, at)
            at += arenaLength(range)
            if (bytes instanceof BlobServiceError) return Effect.fail(bytes)
            out[i] = bytes === undefined ? Option.none() : Option.some(bytes)
          }
          return Effect.succeed(out)
        }),
      writer: scopedWriter(() => new FilesystemWriter(store)),
      // Synchronous from open to rename, so no Scope is needed to clean up:
      // nothing can interrupt it halfway.
      putBytes: (bytes) =>
        Effect.suspend(() => {
          const result = store.writeWhole([bytes], bytes.length)
          return result instanceof BlobServiceError ? Effect.fail(result) : Effect.succeed(result)
        })
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<BlobService, BlobServiceError> =>
  Layer.effect(BlobService, make(options))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config<Options>
): Layer.Layer<BlobService, BlobServiceError | ConfigError.ConfigError> =>
  Layer.effect(BlobService, Effect.flatMap(config, make))
