/**
 * The error family of `PathInfoService`: every operation fails with one of
 * these tagged errors (`PathInfoServiceError`). They are `Schema.TaggedError`s
 * so they can cross a wire (gRPC) intact; nodes travel in their JSON form.
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import { InvalidPathInfo, NodeSchema } from "./PathInfo.js"
import { nodeToString } from "./internal/show.js"

export {
  /**
   * A PathInfo (or a request's digest, or a stored row) broke a rule.
   *
   * @since 0.1.0
   * @category errors
   */
  InvalidPathInfo
} from "./PathInfo.js"

/**
 * The backend failed: I/O, SQL, network. `cause` holds the underlying error.
 *
 * @since 0.1.0
 * @category errors
 */
export class StorageError extends Schema.TaggedError<StorageError>("@nixfx/pathinfo/StorageError")("StorageError", {
  backend: Schema.String,
  operation: Schema.String,
  detail: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `${this.backend} ${this.operation}: ${this.detail}`
  }
}

/**
 * The backend cannot do this operation at all (e.g. listing a binary cache).
 *
 * @since 0.1.0
 * @category errors
 */
export class NotSupported extends Schema.TaggedError<NotSupported>("@nixfx/pathinfo/NotSupported")("NotSupported", {
  backend: Schema.String,
  operation: Schema.String
}) {
  override get message(): string {
    return `${this.backend} does not support ${this.operation}`
  }
}

/**
 * `put` was refused because references by content would contradict each
 * other: `referrer` records `reference` (both basenames) as `recordedNode`, but
 * `reference` is (or, for the PathInfo being put, would be) `actualNode`.
 *
 * `putSide` says which of the two the refused `put` was for: `"referrer"` —
 * the new PathInfo records a node for an already stored reference that differs
 * from it; `"reference"` — the new PathInfo's root node differs from what
 * already stored referrers recorded for it.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReferenceConflict extends Schema.TaggedError<ReferenceConflict>("@nixfx/pathinfo/ReferenceConflict")(
  "ReferenceConflict",
  {
    referrer: Schema.String,
    reference: Schema.String,
    recordedNode: NodeSchema,
    actualNode: NodeSchema,
    putSide: Schema.Literal("referrer", "reference")
  }
) {
  override get message(): string {
    const recorded = nodeToString(this.recordedNode)
    const actual = nodeToString(this.actualNode)
    return this.putSide === "referrer"
      ? `reference conflict: ${this.referrer} records its reference ${this.reference} as ${recorded}, but the store holds ${this.reference} as ${actual}`
      : `reference conflict: ${this.reference} has root node ${actual}, but the stored ${this.referrer} records it as ${recorded}`
  }
}

/**
 * `put` was refused because the store already holds a PathInfo for the same
 * store path that disagrees on `field` (the content — node, NAR hash or size —,
 * the set of references, a reference's recorded node, or the content address).
 * Signatures are merged and a missing deriver, CA or reference node is filled
 * in instead; see the README.
 *
 * @since 0.1.0
 * @category errors
 */
export class PathInfoConflict extends Schema.TaggedError<PathInfoConflict>("@nixfx/pathinfo/PathInfoConflict")(
  "PathInfoConflict",
  {
    storePath: Schema.String,
    field: Schema.String,
    stored: Schema.String,
    incoming: Schema.String
  }
) {
  override get message(): string {
    return `${this.storePath} is already stored with a different ${this.field}: stored ${this.stored}, refused ${this.incoming}`
  }
}

/**
 * The one error type of every `PathInfoService` operation.
 *
 * @since 0.1.0
 * @category errors
 */
export type PathInfoServiceError =
  | StorageError
  | InvalidPathInfo
  | NotSupported
  | ReferenceConflict
  | PathInfoConflict

/**
 * Schema of the error family (for transports).
 *
 * @since 0.1.0
 * @category errors
 */
export const PathInfoServiceError = Schema.Union(
  StorageError,
  InvalidPathInfo,
  NotSupported,
  ReferenceConflict,
  PathInfoConflict
)

const tags = new Set(["StorageError", "InvalidPathInfo", "NotSupported", "ReferenceConflict", "PathInfoConflict"])

/**
 * @since 0.1.0
 * @category errors
 */
export const isPathInfoServiceError = (u: unknown): u is PathInfoServiceError =>
  Predicate.hasProperty(u, "_tag") && typeof u._tag === "string" && tags.has(u._tag) &&
  Predicate.hasProperty(u, "message")
