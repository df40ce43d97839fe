/**
 * The target of a castore symlink: non-empty, without NUL, at most 4095 bytes of
 * UTF-8 (the Linux limit, as in tvix/snix). Any other content is allowed,
 * including absolute paths, `..` and dangling targets.
 *
 * As with names, targets are kept as strings and must be valid UTF-8.
 *
 * @since 0.1.0
 */
import type * as Brand from "effect/Brand"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { decodeUtf8, show, showBytes, utf8Length } from "./internal/utf8.js"

/** The longest valid target, in UTF-8 bytes. */
export const MAX_LENGTH = 4095

/**
 * @since 0.1.0
 */
export type SymlinkTarget = string & Brand.Brand<"SymlinkTarget">

/**
 * @since 0.1.0
 */
export type InvalidReason = "Empty" | "ContainsNul" | "TooLong" | "InvalidUtf8"

const reasonText = (reason: InvalidReason, byteLength: number): string => {
  switch (reason) {
    case "Empty":
      return "must not be empty"
    case "ContainsNul":
      return "must not contain NUL"
    case "TooLong":
      return `must be at most ${MAX_LENGTH} bytes, got ${byteLength}`
    case "InvalidUtf8":
      return "must be valid UTF-8"
  }
}

/**
 * @since 0.1.0
 */
export class InvalidSymlinkTarget extends Schema.TaggedError<InvalidSymlinkTarget>()("InvalidSymlinkTarget", {
  /** The offending target (for invalid UTF-8: a hex rendering of the bytes). */
  target: Schema.String,
  reason: Schema.Literal("Empty", "ContainsNul", "TooLong", "InvalidUtf8"),
  byteLength: Schema.Number
}) {
  get rule(): string {
    return reasonText(this.reason, this.byteLength)
  }
  override get message(): string {
    return `invalid symlink target ${this.reason === "InvalidUtf8" ? this.target : show(this.target)}: ${this.rule}`
  }
}

/** @internal */
export const checkWithLength = (s: string, byteLength: number): InvalidReason | undefined => {
  if (byteLength < 0) return "InvalidUtf8"
  if (byteLength === 0) return "Empty"
  if (byteLength > MAX_LENGTH) return "TooLong"
  if (s.includes("\0")) return "ContainsNul"
  return undefined
}

/**
 * A `string` that is a valid symlink target.
 *
 * @since 0.1.0
 */
export const SymlinkTarget: Schema.brand<Schema.filter<typeof Schema.String>, "SymlinkTarget"> = Schema.String.pipe(
  Schema.filter((s) => {
    const byteLength = utf8Length(s)
    const reason = checkWithLength(s, byteLength)
    return reason === undefined || `invalid symlink target ${show(s)}: ${reasonText(reason, byteLength)}`
  }),
  Schema.brand("SymlinkTarget"),
  Schema.annotations({ identifier: "SymlinkTarget" })
)

/**
 * @since 0.1.0
 */
export const validate = (s: string): Either.Either<SymlinkTarget, InvalidSymlinkTarget> => {
  const byteLength = utf8Length(s)
  const reason = checkWithLength(s, byteLength)
  return reason === undefined
    ? Either.right(s as SymlinkTarget)
    : Either.left(
      new InvalidSymlinkTarget({
        target: reason === "InvalidUtf8" ? s.replace(/[\ud800-\udfff]/g, "\ufffd") : s,
        reason,
        byteLength
      })
    )
}

/**
 * Decodes a target from its bytes; invalid UTF-8 is rejected.
 *
 * @since 0.1.0
 */
export const fromUtf8 = (bytes: Uint8Array): Either.Either<SymlinkTarget, InvalidSymlinkTarget> =>
  fromUtf8Range(bytes, 0, bytes.length)

/** @internal */
export const fromUtf8Range = (
  bytes: Uint8Array,
  start: number,
  end: number
): Either.Either<SymlinkTarget, InvalidSymlinkTarget> => {
  const len = end - start
  let reason: InvalidReason | undefined = len === 0 ? "Empty" : len > MAX_LENGTH ? "TooLong" : undefined
  if (reason === undefined && bytes.subarray(start, end).includes(0)) reason = "ContainsNul"
  const s = reason === "TooLong" ? undefined : decodeUtf8(bytes, start, end)
  if (reason === undefined && s === undefined) reason = "InvalidUtf8"
  if (reason !== undefined) {
    return Either.left(
      new InvalidSymlinkTarget({ target: s ?? showBytes(bytes, start, end), reason, byteLength: len })
    )
  }
  return Either.right(s as SymlinkTarget)
}
