/**
 * NAR render: a castore root node back into NAR bytes, streamed.
 *
 * Directories are fetched from the {@link DirectoryService} as the walk
 * reaches them, file contents streamed from the {@link BlobService}; each
 * blob's length is checked against its FileNode. Nothing is materialised: the
 * output is a stream of chunks, and {@link calculate} runs that stream through
 * SHA-256 to get the NAR size and hash.
 *
 * @since 0.1.0
 */
import type * as Node from "@nixfx/castore-nodes/Node"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Crypto from "node:crypto"
import { BlobService, type Service as BlobServiceShape } from "./BlobService.js"
import { DirectoryService, type Service as DirectoryServiceShape } from "./DirectoryService.js"
import type { NarRenderError } from "./internal/narErrors.js"
import * as internal from "./internal/narRender.js"

export {
  /**
   * @since 0.1.0
   * @category errors
   */
  NarRenderError,
  /**
   * @since 0.1.0
   * @category errors
   */
  type NarRenderErrorCause,
  /**
   * @since 0.1.0
   * @category errors
   */
  type NarRenderErrorReason
} from "./internal/narErrors.js"

/**
 * The NAR of `root` as a byte stream. Fails with {@link NarRenderError} naming
 * the path inside the NAR and the digest when a blob or directory is missing,
 * a blob's length differs from its FileNode, or a store fails.
 *
 * @since 0.1.0
 * @category render
 */
export const render = (root: Node.Node): Stream.Stream<Uint8Array, NarRenderError, BlobService | DirectoryService> =>
  Stream.unwrap(
    Effect.map(
      Effect.all([BlobService, DirectoryService]),
      ([blobs, directories]) => internal.render(blobs, directories, root)
    )
  )

/**
 * Like {@link render}, with the services given explicitly.
 *
 * @since 0.1.0
 * @category render
 */
export const renderWith = (
  services: { readonly blobs: BlobServiceShape; readonly directories: DirectoryServiceShape },
  root: Node.Node
): Stream.Stream<Uint8Array, NarRenderError> => internal.render(services.blobs, services.directories, root)

/**
 * The NAR's size and SHA-256 digest (32 bytes).
 *
 * @since 0.1.0
 * @category models
 */
export interface NarInfo {
  readonly narSize: number
  readonly narSha256: Uint8Array
}

/**
 * Size and SHA-256 of the NAR of `root`, computed by streaming the rendered
 * NAR through a hash (the NAR is never held in memory).
 *
 * @since 0.1.0
 * @category render
 */
export const calculate = (root: Node.Node): Effect.Effect<NarInfo, NarRenderError, BlobService | DirectoryService> =>
  Effect.suspend(() => {
    const hash = Crypto.createHash("sha256")
    let narSize = 0
    return Effect.zipRight(
      Stream.runForEachChunk(render(root), (chunk) =>
        Effect.sync(() => {
          for (const bytes of chunk) {
            hash.update(bytes)
            narSize += bytes.length
          }
        })),
      Effect.sync((): NarInfo => ({ narSize, narSha256: new Uint8Array(hash.digest()) }))
    )
  })
