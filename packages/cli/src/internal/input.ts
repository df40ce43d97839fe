import { FileSystem } from "@effect/platform"
import * as NodeStream from "@effect/platform-node/NodeStream"
import { Data, Effect, Option, Stream } from "effect"

/** Reading the command's input (a FILE argument, or stdin) failed. */
export class InputError extends Data.TaggedError("InputError")<{
  readonly source: string
  readonly cause: unknown
}> {
  override get message(): string {
    const detail = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `cannot read ${this.source}: ${detail}`
  }
}

export const describeInput = (file: Option.Option<string>): string =>
  Option.match(file, { onNone: () => "standard input", onSome: (path) => path })

/** The bytes of FILE, or of stdin when no FILE was given, as a stream. */
export const inputBytes = (
  file: Option.Option<string>
): Stream.Stream<Uint8Array, InputError, FileSystem.FileSystem> =>
  Option.match(file, {
    onNone: () =>
      NodeStream.fromReadable<InputError>(
        () => process.stdin,
        (cause) => new InputError({ source: "standard input", cause }),
        { chunkSize: 256 * 1024 }
      ),
    onSome: (path) =>
      Stream.unwrap(Effect.map(FileSystem.FileSystem, (fs) =>
        fs.stream(path, { chunkSize: 256 * 1024 }).pipe(
          Stream.mapError((cause) => new InputError({ source: path, cause }))
        )
      ))
  })
