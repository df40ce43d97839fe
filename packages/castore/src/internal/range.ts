/**
 * Validation of blob read ranges, shared by every BlobService backend.
 *
 * @internal
 */
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Effect from "effect/Effect"
import { BlobServiceError } from "../CastoreError.js"

/** Byte positions `[start, end)` of a range within a blob. */
export interface ResolvedRange {
  readonly start: number
  readonly end: number
}

const isCount = (n: number) => Number.isSafeInteger(n) && n >= 0

const describeInvalid = (
  size: number,
  offset: number,
  length: number | undefined
): string | undefined => {
  if (!isCount(offset)) return `range offset ${offset} is not a non-negative integer`
  if (length !== undefined && !isCount(length)) return `range length ${length} is not a non-negative integer`
  if (offset > size) return `range offset ${offset} is past the end of the blob (${size} bytes)`
  return undefined
}

/** The positions `range` selects in the blob `digest` of `size` bytes, or an `InvalidRange` error (returned, not thrown). */
export const resolveRange = (
  digest: Uint8Array,
  size: number,
  range: { readonly offset: number; readonly length?: number } | undefined
): ResolvedRange | BlobServiceError => {
  if (range === undefined) return { start: 0, end: size }
  const { length, offset } = range
  const invalid = describeInvalid(size, offset, length)
  if (invalid !== undefined) {
    return new BlobServiceError({ reason: "InvalidRange", digest: B3Digest.toHex(digest), description: invalid })
  }
  return { start: offset, end: length === undefined ? size : Math.min(size, offset + length) }
}

/** {@link resolveRange} as an effect. */
export const checkRange = (
  digest: Uint8Array,
  size: number,
  range: { readonly offset: number; readonly length?: number } | undefined
): Effect.Effect<ResolvedRange, BlobServiceError> => {
  const resolved = resolveRange(digest, size, range)
  return resolved instanceof BlobServiceError ? Effect.fail(resolved) : Effect.succeed(resolved)
}

/** The error of a writer used after `close` or after a failure. */
export const writerClosedError = (): BlobServiceError =>
  new BlobServiceError({ reason: "WriterClosed", description: "the writer was already closed or has failed" })
