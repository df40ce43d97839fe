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
import { concatChunks, copyChunks, hex } from "./internal/bytes.js"
import { checkRange, writerClosedError } from "./internal/range.js"

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
 * `write` chunks in order (a chunk must not be mutated after it was passed to
 * `write`), then `close` to compute the digest and make the blob visible. A
 * writer whose Scope closes without a successful `close` discards what it
 * received; nothing of it becomes visible.
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
  /** A fresh writer for one blob, discarded when its Scope closes unless closed first. */
  readonly writer: Effect.Effect<BlobWriter, BlobServiceError, Scope.Scope>
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
 * Writes one byte array as a blob.
 *
 * @since 0.1.0
 * @category combinators
 */
export const putBytes = (bytes: Uint8Array): Effect.Effect<BlobInfo, BlobServiceError, BlobService> =>
  Effect.scoped(
    Effect.flatMap(BlobService, (service) =>
      Effect.flatMap(service.writer, (writer) => Effect.zipRight(writer.write(bytes), writer.close)))
  )

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
  Effect.flatMap(BlobService, (service) =>
    Effect.flatMap(service.read(digest, range), (stream) =>
      Option.match(stream, {
        onNone: () => Effect.succeedNone,
        onSome: (stream) =>
          Effect.map(Stream.runCollect(stream), (chunks) => Option.some(concatChunks(Chunk.toReadonlyArray(chunks))))
      })))

class MemoryWriter implements BlobWriter {
  private chunks: Array<Uint8Array> = []
  private bytes = 0
  private done = false

  constructor(private readonly blobs: Map<string, Uint8Array>) {}

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
    // One copy: detaches the stored blob from the callers' (possibly larger)
    // buffers, and lets BLAKE3 run once over contiguous memory.
    const data = copyChunks(this.chunks, this.bytes)
    this.chunks = []
    const digest = B3Digest.hash(data)
    const key = hex(digest)
    if (!this.blobs.has(key)) this.blobs.set(key, data)
    return Effect.succeed({ digest, size: data.length })
  })

  discard(): void {
    this.done = true
    this.chunks = []
  }
}

/**
 * A blob store held in a `Map` in memory, for tests and short-lived tools.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<Service> = Effect.sync(() => {
  const blobs = new Map<string, Uint8Array>()
  const lookup = (digest: B3Digest.B3Digest) => blobs.get(hex(digest))
  return BlobService.of({
    has: (digest) => Effect.sync(() => lookup(digest) !== undefined),
    size: (digest) => Effect.sync(() => Option.map(Option.fromNullable(lookup(digest)), (data) => data.length)),
    read: (digest, range) =>
      Effect.suspend(() => {
        const data = lookup(digest)
        if (data === undefined) return Effect.succeedNone
        return Effect.map(
          checkRange(digest, data.length, range),
          ({ end, start }) => Option.some(start === end ? Stream.empty : Stream.succeed(data.subarray(start, end)))
        )
      }),
    writer: Effect.acquireRelease(
      Effect.sync(() => new MemoryWriter(blobs)),
      (writer) => Effect.sync(() => writer.discard())
    )
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<BlobService> = Layer.effect(BlobService, makeMemory)
