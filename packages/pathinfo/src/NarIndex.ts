/**
 * `NarIndex`: which castore root a NAR became when it was imported, keyed by
 * the NAR's sha256 (its NarHash), with its size.
 *
 * Importing the same NAR always yields the same root node, so a store that
 * has imported a NAR once never needs its bytes again: a binary cache reader
 * asks the index before downloading, checks that the root's content is still
 * in castore, and skips the download (a second store path with the same
 * content, or the same path after its PathInfo was lost). The index is a
 * hint, not an authority: an entry whose content is gone is simply
 * re-imported and overwritten.
 *
 * Stores keep it beside their PathInfos (`StoreComposition.Store.narIndex`):
 * memory stores in memory, SQL stores in a table next to the PathInfo tables
 * (`SqlNarIndex`), where every stored PathInfo answers for its NarHash too.
 *
 * @since 0.1.0
 */
import type * as Node from "@nixfx/castore-nodes/Node"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { StorageError } from "./PathInfoError.js"

/**
 * One imported NAR: its sha256, its size and the castore root it became.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry {
  readonly narSha256: Uint8Array
  readonly narSize: number
  readonly node: Node.Node
}

/**
 * @since 0.1.0
 * @category models
 */
export interface NarIndexShape {
  /** The entry of the NAR with this sha256, if one was recorded (or a stored PathInfo has that NarHash). */
  readonly get: (narSha256: Uint8Array) => Effect.Effect<Option.Option<Entry>, StorageError>
  /** Records (or replaces) the entry of a NAR. */
  readonly put: (entry: Entry) => Effect.Effect<void, StorageError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class NarIndex extends Context.Tag("@nixfx/pathinfo/NarIndex")<NarIndex, NarIndexShape>() {}

/** Length of a NAR sha256. */
export const narSha256Length = 32

const keyOf = (digest: Uint8Array): string =>
  Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString("latin1")

/**
 * An index in memory (one per evaluation of this effect).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<NarIndexShape> = Effect.sync(() => {
  const entries = new Map<string, Entry>()
  return {
    get: (narSha256) => Effect.sync(() => Option.fromNullable(entries.get(keyOf(narSha256)))),
    put: (entry) =>
      Effect.sync(() => {
        entries.set(keyOf(entry.narSha256), {
          narSha256: new Uint8Array(entry.narSha256),
          narSize: entry.narSize,
          node: entry.node
        })
      })
  }
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<NarIndex> = Layer.effect(NarIndex, makeMemory)
