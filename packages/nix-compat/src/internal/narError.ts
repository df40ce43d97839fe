import * as Data from "effect/Data"

/**
 * Why a NAR was rejected (by the reader) or an event sequence was refused (by
 * the writer).
 */
export type NarErrorReason =
  /** The archive does not start with the string `nix-archive-1`. */
  | "BadMagic"
  /** A syntactic token other than the one the grammar allows at this point. */
  | "UnexpectedToken"
  /** The zero padding after a string or after file contents holds a non-zero byte. */
  | "NonZeroPadding"
  /** An entry name declares more than 255 bytes. */
  | "NameTooLong"
  /** A symlink target declares more than 4095 bytes. */
  | "TargetTooLong"
  /** A file declares more bytes than a JavaScript number can count exactly (2^53 - 1). */
  | "FileTooLarge"
  /** An entry name is empty, `.`, `..`, or contains `/` or NUL. */
  | "InvalidName"
  /** A symlink target is empty or contains NUL. */
  | "InvalidTarget"
  /** An entry name sorts before the previous one in the same directory. */
  | "UnsortedEntries"
  /** An entry name repeats the previous one in the same directory. */
  | "DuplicateEntry"
  /** Directories nest deeper than the configured limit. */
  | "TooDeep"
  /** Bytes follow the end of the root node. */
  | "TrailingData"
  /** The input ends before the root node is complete. */
  | "Truncated"
  /** Writer only: an event that the NAR grammar does not allow at this point. */
  | "UnexpectedEvent"
  /** Writer only: file contents longer or shorter than the size announced in `fileStart`. */
  | "FileSizeMismatch"

/**
 * A NAR could not be read or written. `offset` is the byte offset in the NAR
 * (input for the reader, output for the writer) of the token at fault.
 */
export class NarError extends Data.TaggedError("NarError")<{
  readonly reason: NarErrorReason
  readonly offset: number
  readonly detail: string
}> {
  override get message(): string {
    return `NAR offset ${this.offset}: ${this.detail}`
  }
}

export const isNarError = (u: unknown): u is NarError => u instanceof NarError
