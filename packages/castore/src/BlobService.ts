/**
 * The blob store of castore: content-addressed byte strings keyed by their
 * BLAKE3 digest.
 *
 * Blobs are written through a {@link BlobWriter}, which hashes the bytes as
 * they arrive: the caller never states a digest, so a stored blob always
 * matches its key. Reads return `Option.none()` for an unknown digest and can
 * be restricted to a byte range.
 *
 * @since 0.1.0
 */
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { BlobServiceError } from "./CastoreError.js"
import { concatChunks } from "./internal/bytes.js"
import { checkRange, writerClosedError } from "./internal/range.js"
import { scopedWriter } from "./internal/writer.js"

export {
  /**
   * @since 0.1.0
   * @category errors
   */
  BlobServiceError,
  /**
   * @since 0.1.0
   * @category errors
   */
  BlobServiceErrorReason,
  /**
   * @since 0.1.0
   * @category errors
   */
  isBlobServiceError
} from "./CastoreError.js"

/**
 * A byte range of a blob: `length` bytes starting at `offset`, or everything
 * from `offset` to the end when `length` is absent. A range that extends past
 * the end of the blob is cut at the end; an `offset` past the end is an
 * `InvalidRange` error (an `offset` equal to the size reads nothing).
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadRange {
  readonly offset: number
  readonly length?: number
}

/**
 * One read of {@link Service.readMany}: a blob, or a range of it.
 *
 * @since 0.1.0
 * @category models
 */
export interface BlobRead {
  readonly digest: B3Digest.B3Digest
  readonly range?: ReadRange | undefined
}

/**
 * The result of a completed write.
 *
 * @since 0.1.0
 * @category models
 */
export interface BlobInfo {
  readonly digest: B3Digest.B3Digest
  readonly size: number
}

/**
 * Streams one blob into the store.
 *
 * `write` chunks in order, then `close` to compute the digest and make the blob visible. A
 * writer whose Scope closes without a successful `close` discards what it
 * received; nothing of it becomes visible.
 *
 * Chunks are treated as immutable, as everywhere in Effect streams: a backend
 * may keep a chunk (the memory store does, the filesystem store until it
 * writes it out), so do not modify a chunk after passing it to `write`.
 *
 * @since 0.1.0
 * @category models
 */
export interface BlobWriter {
  readonly write: (chunk: Uint8Array) => Effect.Effect<void, BlobServiceError>
  readonly close: Effect.Effect<BlobInfo, BlobServiceError>
}

/**
 * The shape of a blob store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly has: (digest: B3Digest.B3Digest) => Effect.Effect<boolean, BlobServiceError>
  readonly size: (digest: B3Digest.B3Digest) => Effect.Effect<Option.Option<number>, BlobServiceError>
  /**
   * The blob's bytes (or the requested range of them), or `Option.none()`
   * when the store does not hold the blob.
   */
  readonly read: (
    digest: B3Digest.B3Digest,
    range?: ReadRange
  ) => Effect.Effect<Option.Option<Stream.Stream<Uint8Array, BlobServiceError>>, BlobServiceError>
  /**
   * Optional: several blobs (or ranges of them), each read into one array, in
   * one effect; `Option.none()` for each blob the store does not hold. For
   * many small blobs (a NAR renderer reading a directory of small files) this
   * saves a stream per blob. Callers use {@link readMany}, which falls back
   * to `read`. A wrapper that changes what `read` returns must change or
   * leave out this method too.
   */
  readonly readMany?: (
    reads: ReadonlyArray<BlobRead>
  ) => Effect.Effect<ReadonlyArray<Option.Option<Uint8Array>>, BlobServiceError>
  /** A fresh writer for one blob, discarded when its Scope closes unless closed first. */
  readonly writer: Effect.Effect<BlobWriter, BlobServiceError, Scope.Scope>
  /**
   * Stores one blob whose bytes are all in memory already. Equivalent to a
   * writer given `bytes` as its only chunk, but needs no Scope: the cheap way
   * to store many small blobs. As with `write`, do not modify `bytes`
   * afterwards (the memory store keeps them).
   */
  readonly putBytes: (bytes: Uint8Array) => Effect.Effect<BlobInfo, BlobServiceError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class BlobService extends Context.Tag("@nixfx/castore/BlobService")<BlobService, Service>() {}

/**
 * Writes a whole stream as one blob and returns its digest and size.
 *
 * @since 0.1.0
 * @category combinators
 */
export const put = <E, R>(
  stream: Stream.Stream<Uint8Array, E, R>
): Effect.Effect<BlobInfo, BlobServiceError | E, BlobService | R> =>
  Effect.scoped(
    Effect.flatMap(BlobService, (service) =>
      Effect.flatMap(service.writer, (writer) =>
        Effect.zipRight(
          Stream.runForEach(stream, writer.write),
          writer.close
        )))
  )

/**
 * Writes one byte array as a blob (through the service's `putBytes`).
 *
 * @since 0.1.0
 * @category combinators
 */
export const putBytes = (bytes: Uint8Array): Effect.Effect<BlobInfo, BlobServiceError, BlobService> =>
  Effect.flatMap(BlobService, (service) => service.putBytes(bytes))

/**
 * A `putBytes` for a backend that has nothing faster than its writer.
 *
 * @since 0.1.0
 * @category constructors
 */
export const putBytesWithWriter = <E>(
  writer: Effect.Effect<BlobWriter, E, Scope.Scope>
) =>
(bytes: Uint8Array): Effect.Effect<BlobInfo, E | BlobServiceError> =>
  Effect.scoped(Effect.flatMap(writer, (w) => Effect.zipRight(w.write(bytes), w.close)))

/** One blob (or range) of `service` collected into one array. */
const readWhole = (
  service: Service,
  digest: B3Digest.B3Digest,
  range: ReadRange | undefined
): Effect.Effect<Option.Option<Uint8Array>, BlobServiceError> =>
  Effect.flatMap(service.read(digest, range), (stream) =>
    Option.match(stream, {
      onNone: () => Effect.succeedNone,
      onSome: (stream) =>
        Effect.map(Stream.runCollect(stream), (chunks) => Option.some(concatChunks(Chunk.toReadonlyArray(chunks))))
    }))

/**
 * Reads a whole blob (or a range of it) into one byte array.
 *
 * @since 0.1.0
 * @category combinators
 */
export const readAll = (
  digest: B3Digest.B3Digest,
  range?: ReadRange
): Effect.Effect<Option.Option<Uint8Array>, BlobServiceError, BlobService> =>
  Effect.flatMap(BlobService, (service) => readWhole(service, digest, range))

/**
 * Several blobs (or ranges), each read into one array: through the service's
 * `readMany` when it has one, else through `read`, one blob after another.
 *
 * @since 0.1.0
 * @category combinators
 */
export const readMany = (
  service: Service,
  reads: ReadonlyArray<BlobRead>
): Effect.Effect<ReadonlyArray<Option.Option<Uint8Array>>, BlobServiceError> =>
  service.readMany !== undefined
    ? service.readMany(reads)
    : Effect.forEach(reads, ({ digest, range }) => readWhole(service, digest, range))

/** Blobs of at most this size are kept as one array (small chunks are joined). */
const joinBelow = 64 * 1024

/** A blob held in memory: the chunks it was written as, in order. */
interface MemoryBlob {
  readonly chunks: ReadonlyArray<Uint8Array>
  readonly size: number
}

/**
 * Stores the blob made of `chunks` unless the map holds it already. The
 * chunks are kept as they are (not copied): copying would cost a second
 * pass over fresh memory for every byte stored. A small blob written in
 * several chunks is joined into one array first, so tiny chunks do not pin
 * large buffers.
 */
const storeInMemory = (
  blobs: Map<string, MemoryBlob>,
  chunks: ReadonlyArray<Uint8Array>,
  size: number
): BlobInfo => {
  let digest: B3Digest.B3Digest
  let kept = chunks
  if (chunks.length === 1 || size <= joinBelow) {
    const data = concatChunks(chunks, size)
    digest = B3Digest.hash(data)
    kept = size === 0 ? [] : [data]
  } else {
    const hasher = B3Digest.hasher()
    for (const chunk of chunks) hasher.update(chunk)
    digest = hasher.digest()
  }
  const key = B3Digest.toHex(digest)
  if (!blobs.has(key)) blobs.set(key, { chunks: kept, size })
  return { digest, size }
}

/** The parts of `chunks` that lie in `[start, end)`, without copying. */
const sliceChunks = (chunks: ReadonlyArray<Uint8Array>, start: number, end: number): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  let offset = 0
  for (const chunk of chunks) {
    const next = offset + chunk.length
    if (next > start && offset < end) {
      out.push(chunk.subarray(Math.max(0, start - offset), Math.min(chunk.length, end - offset)))
    }
    offset = next
    if (offset >= end) break
  }
  return out
}

class MemoryWriter implements BlobWriter {
  private chunks: Array<Uint8Array> = []
  private bytes = 0
  private done = false

  constructor(private readonly blobs: Map<string, MemoryBlob>) {}

  readonly write = (chunk: Uint8Array): Effect.Effect<void, BlobServiceError> =>
    Effect.suspend(() => {
      if (this.done) return Effect.fail(writerClosedError())
      if (chunk.length > 0) {
        this.chunks.push(chunk)
        this.bytes += chunk.length
      }
      return Effect.void
    })

  readonly close: Effect.Effect<BlobInfo, BlobServiceError> = Effect.suspend(() => {
    if (this.done) return Effect.fail(writerClosedError())
    this.done = true
    const chunks = this.chunks
    this.chunks = []
    return Effect.succeed(storeInMemory(this.blobs, chunks, this.bytes))
  })

  discard(): void {
    this.done = true
    this.chunks = []
  }
}

/**
 * A blob store held in a `Map` in memory, for tests and short-lived tools.
 *
 * It keeps the chunks it is given without copying them (small blobs written
 * in several chunks are joined): do not modify a chunk after passing it to
 * `write` or `putBytes`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<Service> = Effect.sync(() => {
  const blobs = new Map<string, MemoryBlob>()
  const lookup = (digest: B3Digest.B3Digest) => blobs.get(B3Digest.toHex(digest))
  return BlobService.of({
    has: (digest) => Effect.sync(() => lookup(digest) !== undefined),
    size: (digest) => Effect.sync(() => Option.map(Option.fromNullable(lookup(digest)), (blob) => blob.size)),
    read: (digest, range) =>
      Effect.suspend(() => {
        const blob = lookup(digest)
        if (blob === undefined) return Effect.succeedNone
        return Effect.map(checkRange(digest, blob.size, range), ({ end, start }) => {
          if (start === end) return Option.some(Stream.empty)
          if (start === 0 && end === blob.size) return Option.some(Stream.fromIterable(blob.chunks))
          return Option.some(Stream.fromIterable(sliceChunks(blob.chunks, start, end)))
        })
      }),
    writer: scopedWriter(() => new MemoryWriter(blobs)),
    putBytes: (bytes) => Effect.sync(() => storeInMemory(blobs, [bytes], bytes.length))
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<BlobService> = Layer.effect(BlobService, makeMemory)
