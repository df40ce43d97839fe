/**
 * `PathInfoService`: where PathInfos are kept, keyed by the 20-byte digest of
 * their store path.
 *
 * Every backend keeps the same promises (the conformance suite in
 * `@nixfx/pathinfo/testing` checks them):
 *
 * - `get` of an unknown digest is `Option.none()`;
 * - `put` is atomic and returns what the store now holds for that path: an
 *   identical PathInfo is a no-op; a PathInfo for an already stored path is
 *   merged into it (signatures added; a missing deriver, CA or reference node
 *   filled in) and anything contradicting the stored one is a
 *   `PathInfoConflict`;
 * - references by content never contradict each other: `put` fails with
 *   `ReferenceConflict` when the new PathInfo records a node for a stored
 *   reference that differs from it, or when its own node differs from what
 *   stored referrers recorded for it;
 * - `list` streams every stored PathInfo once (order is the backend's).
 *
 * @since 0.1.0
 */
import * as Node from "@nixfx/castore-nodes/Node"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { forwardConflict, merge, reverseConflict } from "./internal/consistency.js"
import { hex } from "./internal/show.js"
import * as PathInfo from "./PathInfo.js"
import { InvalidPathInfo, type PathInfoServiceError } from "./PathInfoError.js"

export {
  /**
   * @since 0.1.0
   * @category errors
   */
  InvalidPathInfo,
  /**
   * @since 0.1.0
   * @category errors
   */
  isPathInfoServiceError,
  /**
   * @since 0.1.0
   * @category errors
   */
  NotSupported,
  /**
   * @since 0.1.0
   * @category errors
   */
  PathInfoConflict,
  /**
   * @since 0.1.0
   * @category errors
   */
  PathInfoServiceError,
  /**
   * @since 0.1.0
   * @category errors
   */
  ReferenceConflict,
  /**
   * @since 0.1.0
   * @category errors
   */
  StorageError
} from "./PathInfoError.js"

/** Length of a store path digest, the key of a PathInfoService. */
export const digestLength = 20

/**
 * The operations of a PathInfoService.
 *
 * @since 0.1.0
 * @category models
 */
export interface PathInfoServiceShape {
  /** The PathInfo of the store path with this 20-byte digest, if stored. */
  readonly get: (digest: Uint8Array) => Effect.Effect<Option.Option<PathInfo.PathInfo>, PathInfoServiceError>
  /** Stores a PathInfo; returns what the store holds for that path afterwards. */
  readonly put: (pathInfo: PathInfo.PathInfo) => Effect.Effect<PathInfo.PathInfo, PathInfoServiceError>
  /** Every stored PathInfo, once. */
  readonly list: Stream.Stream<PathInfo.PathInfo, PathInfoServiceError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class PathInfoService extends Context.Tag("@nixfx/pathinfo/PathInfoService")<
  PathInfoService,
  PathInfoServiceShape
>() {}

/**
 * Fails for a digest that is not 20 bytes (the one check every `get` needs).
 *
 * @since 0.1.0
 * @category validation
 */
export const checkDigest = (digest: Uint8Array): Effect.Effect<void, InvalidPathInfo> =>
  digest instanceof Uint8Array && digest.length === digestLength ? Effect.void : Effect.fail(
    new InvalidPathInfo({
      storePath: "",
      field: "digest",
      detail: `a store path digest is ${digestLength} bytes, got ${
        digest instanceof Uint8Array ? `${digest.length} (${hex(digest)})` : typeof digest
      }`
    })
  )

/**
 * Builds a service from its operations, adding the digest check to `get`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (shape: PathInfoServiceShape): PathInfoServiceShape => ({
  get: (digest) => Effect.zipRight(checkDigest(digest), shape.get(digest)),
  put: shape.put,
  list: shape.list
})

/**
 * `get` by store path: the PathInfo only when its store path (digest and
 * name) is the one asked for.
 *
 * @since 0.1.0
 * @category accessors
 */
export const getStorePath = (
  service: PathInfoServiceShape,
  storePath: { readonly digest: Uint8Array; readonly name: string }
): Effect.Effect<Option.Option<PathInfo.PathInfo>, PathInfoServiceError> =>
  Effect.map(service.get(storePath.digest), Option.filter((p) => p.storePath.name === storePath.name))

// ---------------------------------------------------------------------------
// memory
// ---------------------------------------------------------------------------

const keyOf = (digest: Uint8Array): string =>
  Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString("latin1")

/**
 * An in-memory PathInfoService (one per evaluation of this effect). `put` is
 * synchronous and therefore atomic; `list` streams a snapshot in insertion
 * order.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<PathInfoServiceShape> = Effect.sync(() => {
  const byDigest = new Map<string, PathInfo.PathInfo>()
  /** reference digest → (referrer digest → node the referrer recorded) */
  const recordedBy = new Map<string, Map<string, { readonly referrer: string; readonly node: Node.Node }>>()

  const put = (pathInfo: PathInfo.PathInfo): Effect.Effect<PathInfo.PathInfo, PathInfoServiceError> =>
    Effect.suspend((): Effect.Effect<PathInfo.PathInfo, PathInfoServiceError> => {
      const key = keyOf(pathInfo.storePath.digest)
      const stored = byDigest.get(key)
      let next = pathInfo
      if (stored !== undefined) {
        const merged = merge(stored, pathInfo)
        if (Either.isLeft(merged)) return Effect.fail(merged.left)
        if (merged.right === stored) return Effect.succeed(stored)
        next = merged.right
      }
      const forward = forwardConflict(next, (ref) => byDigest.get(keyOf(ref.digest))?.node)
      if (forward !== undefined) return Effect.fail(forward)
      if (stored === undefined) {
        // A stored path's node cannot change (merge refuses), so only a new
        // path can contradict what referrers recorded for it.
        const recorded = recordedBy.get(key)
        if (recorded !== undefined) {
          for (const r of recorded.values()) {
            if (!Node.equals(r.node, next.node)) return Effect.fail(reverseConflict(next, r.referrer, r.node))
          }
        }
      }
      byDigest.set(key, next)
      for (const ref of next.references) {
        if (Option.isNone(ref.node)) continue
        const refKey = keyOf(ref.storePath.digest)
        if (refKey === key) continue
        let m = recordedBy.get(refKey)
        if (m === undefined) recordedBy.set(refKey, m = new Map())
        m.set(key, { referrer: next.basename, node: ref.node.value })
      }
      return Effect.succeed(next)
    })

  return make({
    get: (digest) => Effect.sync(() => Option.fromNullable(byDigest.get(keyOf(digest)))),
    put,
    list: Stream.suspend(() => Stream.fromIterable(Array.from(byDigest.values())))
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<PathInfoService> = Layer.effect(PathInfoService, makeMemory)
