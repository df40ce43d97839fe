/**
 * The error families of the castore services: one tagged class per service,
 * with a `reason` for the sub-case and a message naming the digest concerned.
 *
 * Both are `Schema.TaggedError`s so they can cross a wire (gRPC) intact.
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/**
 * What went wrong in a BlobService operation:
 *
 * - `Storage`: the backend failed (I/O error, permissions, …); `cause` holds
 *   the underlying error.
 * - `InvalidRange`: a read range is malformed or starts past the end of the
 *   blob.
 * - `WriterClosed`: a blob writer was used after `close` or after it failed.
 *
 * @since 0.1.0
 * @category errors
 */
export const BlobServiceErrorReason = Schema.Literal("Storage", "InvalidRange", "WriterClosed")

/**
 * @since 0.1.0
 * @category errors
 */
export type BlobServiceErrorReason = typeof BlobServiceErrorReason.Type

/**
 * The one error type of every BlobService operation. `digest` (lower-case
 * hex) names the blob concerned when there is one.
 *
 * @since 0.1.0
 * @category errors
 */
export class BlobServiceError extends Schema.TaggedError<BlobServiceError>("@nixfx/castore/BlobServiceError")(
  "BlobServiceError",
  {
    reason: BlobServiceErrorReason,
    digest: Schema.optional(Schema.String),
    description: Schema.String,
    cause: Schema.optional(Schema.Defect)
  }
) {
  override get message(): string {
    return this.digest === undefined ? `blob service: ${this.description}` : `blob ${this.digest}: ${this.description}`
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export const isBlobServiceError = (u: unknown): u is BlobServiceError => Predicate.isTagged(u, "BlobServiceError")

/**
 * What went wrong in a DirectoryService operation:
 *
 * - `Storage`: the backend failed (SQL error, …); `cause` holds the underlying
 *   error.
 * - `NotFound`: `getRecursive` met a directory the store does not hold (the
 *   root, or a child of a stored directory).
 * - `Corrupt`: stored bytes do not decode to a Directory, or decode to one
 *   with another digest than the key they were stored under.
 * - `MissingChild`: a putter received a directory before one of its child
 *   directories.
 * - `ChildSizeMismatch`: a directory's entry for a child directory states a
 *   size other than that child's actual size.
 * - `Unconnected`: at `close`, a putter holds directories the root does not
 *   reach.
 * - `EmptyClosure`: a putter was closed without any directory.
 * - `PutterClosed`: a putter was used after `close`, or closed after one of
 *   its `put`s failed.
 *
 * @since 0.1.0
 * @category errors
 */
export const DirectoryServiceErrorReason = Schema.Literal(
  "Storage",
  "NotFound",
  "Corrupt",
  "MissingChild",
  "ChildSizeMismatch",
  "Unconnected",
  "EmptyClosure",
  "PutterClosed"
)

/**
 * @since 0.1.0
 * @category errors
 */
export type DirectoryServiceErrorReason = typeof DirectoryServiceErrorReason.Type

/**
 * The one error type of every DirectoryService operation. `digest`
 * (lower-case hex) names the directory concerned when there is one.
 *
 * @since 0.1.0
 * @category errors
 */
export class DirectoryServiceError
  extends Schema.TaggedError<DirectoryServiceError>("@nixfx/castore/DirectoryServiceError")(
    "DirectoryServiceError",
    {
      reason: DirectoryServiceErrorReason,
      digest: Schema.optional(Schema.String),
      description: Schema.String,
      cause: Schema.optional(Schema.Defect)
    }
  )
{
  override get message(): string {
    return this.digest === undefined
      ? `directory service: ${this.description}`
      : `directory ${this.digest}: ${this.description}`
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export const isDirectoryServiceError = (u: unknown): u is DirectoryServiceError =>
  Predicate.isTagged(u, "DirectoryServiceError")

/**
 * The reasons that mean "the client sent an invalid directory closure" (as
 * opposed to a failing backend); a server maps them to an invalid-argument
 * status.
 *
 * @since 0.1.0
 * @category errors
 */
export const isInvalidClosure = (error: DirectoryServiceError): boolean =>
  error.reason === "MissingChild" || error.reason === "ChildSizeMismatch" || error.reason === "Unconnected" ||
  error.reason === "EmptyClosure"
