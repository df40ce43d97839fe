/**
 * A single name inside a castore Directory.
 *
 * Valid names are non-empty, are not `.` or `..`, contain no `/` and no NUL, and
 * are at most 255 bytes of UTF-8 (the Linux name limit, as in tvix/snix).
 *
 * castore names are arbitrary bytes; nixfx keeps them as JS strings, so a name
 * that is not valid UTF-8 is rejected (`InvalidUtf8`) rather than mangled. This is
 * a documented limitation: such names do not occur in NARs produced from UTF-8
 * file systems, which is every store path we have seen.
 *
 * @since 0.1.0
 */
import type * as Brand from "effect/Brand"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { compareUtf8, decodeUtf8, show, showBytes, utf8Length } from "./internal/utf8.js"

/** The longest valid name, in UTF-8 bytes. */
export const MAX_LENGTH = 255

/**
 * @since 0.1.0
 */
export type PathComponent = string & Brand.Brand<"PathComponent">

/**
 * Which rule a name broke.
 *
 * @since 0.1.0
 */
export type InvalidReason = "Empty" | "CurrentDir" | "ParentDir" | "ContainsSlash" | "ContainsNul" | "TooLong" | "InvalidUtf8"

const reasonText = (reason: InvalidReason, byteLength: number): string => {
  switch (reason) {
    case "Empty":
      return "must not be empty"
    case "CurrentDir":
      return `must not be "."`
    case "ParentDir":
      return `must not be ".."`
    case "ContainsSlash":
      return `must not contain "/"`
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
export class InvalidPathComponent extends Schema.TaggedError<InvalidPathComponent>()("InvalidPathComponent", {
  /** The offending name (for invalid UTF-8: a hex rendering of the bytes). */
  component: Schema.String,
  reason: Schema.Literal("Empty", "CurrentDir", "ParentDir", "ContainsSlash", "ContainsNul", "TooLong", "InvalidUtf8"),
  /** The name's length in UTF-8 bytes. */
  byteLength: Schema.Number
}) {
  /** The rule, without the name: "must not contain \"/\"". */
  get rule(): string {
    return reasonText(this.reason, this.byteLength)
  }
  override get message(): string {
    return `invalid path component ${
      this.reason === "InvalidUtf8" ? this.component : show(this.component)
    }: ${this.rule}`
  }
}

/**
 * Which rule `s` breaks, or `undefined` when it is a valid name. Also gives the
 * UTF-8 length, which the encoder needs anyway.
 *
 * @internal
 */
export const check = (s: string): { readonly reason: InvalidReason | undefined; readonly byteLength: number } => {
  const byteLength = utf8Length(s)
  return { reason: checkWithLength(s, byteLength), byteLength }
}

/** @internal */
export const checkWithLength = (s: string, byteLength: number): InvalidReason | undefined => {
  if (byteLength < 0) return "InvalidUtf8"
  if (byteLength === 0) return "Empty"
  if (byteLength > MAX_LENGTH) return "TooLong"
  if (s === ".") return "CurrentDir"
  if (s === "..") return "ParentDir"
  if (s.includes("/")) return "ContainsSlash"
  if (s.includes("\0")) return "ContainsNul"
  return undefined
}

/**
 * Checks the name rules on raw bytes (without decoding).
 *
 * @internal
 */
export const checkBytes = (bytes: Uint8Array, start: number, end: number): InvalidReason | undefined => {
  const len = end - start
  if (len === 0) return "Empty"
  if (len > MAX_LENGTH) return "TooLong"
  if (bytes[start] === 0x2e && (len === 1 || (len === 2 && bytes[start + 1] === 0x2e))) {
    return len === 1 ? "CurrentDir" : "ParentDir"
  }
  let slash = false
  for (let i = start; i < end; i++) {
    const b = bytes[i]
    if (b === 0) return "ContainsNul"
    if (b === 0x2f) slash = true
  }
  return slash ? "ContainsSlash" : undefined
}

/**
 * A `string` that is a valid castore name.
 *
 * @since 0.1.0
 */
export const PathComponent: Schema.brand<Schema.filter<typeof Schema.String>, "PathComponent"> = Schema.String.pipe(
  Schema.filter((s) => {
    const { byteLength, reason } = check(s)
    return reason === undefined || `invalid path component ${show(s)}: ${reasonText(reason, byteLength)}`
  }),
  Schema.brand("PathComponent"),
  Schema.annotations({ identifier: "PathComponent" })
)

/**
 * @since 0.1.0
 */
export const validate = (s: string): Either.Either<PathComponent, InvalidPathComponent> => {
  const { byteLength, reason } = check(s)
  return reason === undefined
    ? Either.right(s as PathComponent)
    : Either.left(
      new InvalidPathComponent({ component: reason === "InvalidUtf8" ? s.replace(/[\ud800-\udfff]/g, "\ufffd") : s, reason, byteLength })
    )
}

/**
 * Decodes a name from its bytes; invalid UTF-8 is rejected.
 *
 * @since 0.1.0
 */
export const fromUtf8 = (bytes: Uint8Array): Either.Either<PathComponent, InvalidPathComponent> =>
  fromUtf8Range(bytes, 0, bytes.length)

/** @internal */
export const fromUtf8Range = (
  bytes: Uint8Array,
  start: number,
  end: number
): Either.Either<PathComponent, InvalidPathComponent> => {
  const reason = checkBytes(bytes, start, end)
  const s = decodeUtf8(bytes, start, end)
  if (reason !== undefined || s === undefined) {
    return Either.left(
      new InvalidPathComponent({
        component: s ?? showBytes(bytes, start, end),
        reason: reason ?? "InvalidUtf8",
        byteLength: end - start
      })
    )
  }
  return Either.right(s as PathComponent)
}

/**
 * Orders names by their UTF-8 bytes, the order castore requires. This differs
 * from JS string order (`<`, `localeCompare`, `Array.prototype.sort`), which
 * compares UTF-16 code units and so puts astral characters (emoji) before
 * U+E000–U+FFFF.
 *
 * @since 0.1.0
 */
export const compare: (a: PathComponent, b: PathComponent) => -1 | 0 | 1 = compareUtf8

/**
 * The `Order` instance for names (UTF-8 byte order).
 *
 * @since 0.1.0
 */
export const Order: (self: PathComponent, that: PathComponent) => -1 | 0 | 1 = compareUtf8
