/**
 * NAR import: a NAR byte stream into castore, in one streaming pass.
 *
 * File contents go to the {@link BlobService} as they arrive (the blob writer
 * hashes them with BLAKE3 while streaming); directories are built bottom-up
 * and put leaves first through one {@link DirectoryService} putter; the NAR's
 * size and SHA-256 are computed over the raw bytes on the way. Nothing is held
 * in memory beyond the chunks a blob writer buffers and the directories of the
 * closure until the putter closes.
 *
 * The putter is closed only when the whole NAR was read and stored: a failed
 * import (invalid NAR, failing store, failing input stream) leaves no
 * directory of it reachable in the DirectoryService. Blobs written before the
 * failure may remain (they are content-addressed and harmless).
 *
 * @since 0.1.0
 */
import type * as Node from "@nixfx/castore-nodes/Node"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { BlobService } from "./BlobService.js"
import { DirectoryService } from "./DirectoryService.js"
import { ImportRun } from "./internal/narImport.js"
import type { NarImportError } from "./internal/narErrors.js"

export {
  /**
   * @since 0.1.0
   * @category errors
   */
  NarImportError,
  /**
   * @since 0.1.0
   * @category errors
   */
  type NarImportErrorCause,
  /**
   * @since 0.1.0
   * @category errors
   */
  type NarImportErrorReason
} from "./internal/narErrors.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Most nested directories accepted (the root counts as 1). Default 256. */
  readonly maxDepth?: number
}

/**
 * What an import produced: the castore root node of the NAR, the NAR's size
 * in bytes and its SHA-256 digest (32 bytes).
 *
 * @since 0.1.0
 * @category models
 */
export interface Result {
  readonly root: Node.Node
  readonly narSize: number
  readonly narSha256: Uint8Array
}

/**
 * Imports a NAR. Fails with {@link NarImportError} (reason `InvalidNar` with
 * the `NarError` as cause, or the store error that stopped it, with the path
 * inside the NAR) or with the input stream's own error.
 *
 * @since 0.1.0
 * @category import
 */
export const ingest = <E, R>(
  nar: Stream.Stream<Uint8Array, E, R>,
  options?: Options
): Effect.Effect<Result, NarImportError | E, BlobService | DirectoryService | R> =>
  Effect.scoped(
    Effect.gen(function*() {
      const blobs = yield* BlobService
      const directories = yield* DirectoryService
      const run = new ImportRun(blobs, directories, yield* Effect.scope, options)
      yield* Stream.runForEachChunk(
        nar,
        (chunk) =>
          chunk.length === 1
            ? run.consume(Chunk.unsafeGet(chunk, 0))
            : Effect.forEach(chunk, run.consume, { discard: true })
      )
      const result = yield* run.finish
      yield* Effect.annotateCurrentSpan({ "nix.nar_size": result.narSize, "castore.node": result.root._tag })
      return result
    })
  ).pipe(Effect.withSpan("NarImport.ingest"))
