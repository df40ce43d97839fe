/**
 * `nixfx narinfo verify`: checks the signatures of a stream of narinfos.
 */
import { Args, Command, Options } from "@effect/cli"
import { NarInfo, Signature, StorePath } from "@nixfx/nix-compat"
import { Console, Effect, Either, Option, Schema, Stream } from "effect"
import { CommandFailed, ExitCode } from "./internal/failure.js"
import { describeInput, inputBytes } from "./internal/input.js"
import { printJson } from "./internal/output.js"

/** The JSON summary printed on stdout (stable: fields are only ever added). */
export const Summary = Schema.Struct({
  /** Narinfos read. */
  total: Schema.NonNegativeInt,
  /** Carrying a valid signature by one of the trusted keys. */
  verified: Schema.NonNegativeInt,
  /** Carrying no signature by any trusted key name (possibly signed by others). */
  unsigned: Schema.NonNegativeInt,
  /** Carrying a signature by a trusted key name that does not verify. */
  badSignature: Schema.NonNegativeInt,
  /** Not a valid narinfo. */
  invalid: Schema.NonNegativeInt
})
export type Summary = typeof Summary.Type

type Outcome =
  | { readonly _tag: "Verified" }
  | { readonly _tag: "Unsigned"; readonly storePath: string }
  | { readonly _tag: "BadSignature"; readonly storePath: string; readonly keyNames: ReadonlyArray<string> }
  | { readonly _tag: "Invalid"; readonly error: NarInfo.NarInfoParseError }

const check = (
  result: Either.Either<NarInfo.NarInfo, NarInfo.NarInfoParseError>,
  trusted: ReadonlyArray<Signature.PublicKey>
): Outcome => {
  if (Either.isLeft(result)) return { _tag: "Invalid", error: result.left }
  const narInfo = result.right
  if (Option.isSome(Signature.verify(narInfo, trusted))) return { _tag: "Verified" }
  const trustedNames = new Set(trusted.map((key) => key.name))
  const claimed = narInfo.signatures.filter((sig) => trustedNames.has(sig.keyName)).map((sig) => sig.keyName)
  const storePath = StorePath.toAbsolutePath(narInfo.storePath)
  return claimed.length === 0 ? { _tag: "Unsigned", storePath } : { _tag: "BadSignature", storePath, keyNames: claimed }
}

const describeFailure = (outcome: Outcome): string | undefined => {
  switch (outcome._tag) {
    case "Verified":
      return undefined
    case "Unsigned":
      return `${outcome.storePath}: no signature by a trusted key`
    case "BadSignature":
      return `${outcome.storePath}: signature by ${outcome.keyNames.join(", ")} does not verify`
    case "Invalid":
      return outcome.error.message
  }
}

/**
 * Splits a text stream into blank-line separated blocks, each with the
 * 0-based line number it starts at, without holding more than one block.
 */
const blocks = <E, R>(
  text: Stream.Stream<string, E, R>
): Stream.Stream<{ readonly text: string; readonly lineOffset: number }, E, R> =>
  text.pipe(
    Stream.splitLines,
    // A final blank line flushes the last block.
    Stream.concat(Stream.make("")),
    Stream.zipWithIndex,
    Stream.mapAccum(
      { lines: [] as Array<string>, start: 0 },
      (state, [line, index]): readonly [
        { lines: Array<string>; start: number },
        Option.Option<{ readonly text: string; readonly lineOffset: number }>
      ] => {
        if (line.trim() !== "") {
          state.lines.push(line)
          return [state, Option.none()]
        }
        const next = { lines: [] as Array<string>, start: index + 1 }
        if (state.lines.length === 0) return [next, Option.none()]
        return [next, Option.some({ text: state.lines.join("\n") + "\n", lineOffset: state.start })]
      }
    ),
    Stream.filterMap((block) => block)
  )

export const command = Command.make(
  "verify",
  {
    trustedPublicKeys: Options.text("trusted-public-keys").pipe(
      Options.withDescription("Space-separated public keys, `name:base64`, as in nix.conf")
    ),
    verbose: Options.boolean("verbose").pipe(
      Options.withDescription("Print one line per narinfo that did not verify (on stderr)")
    ),
    file: Args.file({ name: "FILE", exists: "yes" }).pipe(
      Args.withDescription("Narinfos separated by blank lines; standard input when omitted"),
      Args.optional
    )
  },
  ({ file, trustedPublicKeys, verbose }) =>
    Effect.gen(function*() {
      const trusted = yield* Signature.parsePublicKeys(trustedPublicKeys).pipe(
        Effect.mapError((error) =>
          new CommandFailed({ message: `--trusted-public-keys: ${error.message}`, exitCode: ExitCode.Usage })
        )
      )
      if (trusted.length === 0) {
        return yield* new CommandFailed({ message: "--trusted-public-keys: no key given", exitCode: ExitCode.Usage })
      }
      const counts = { total: 0, verified: 0, unsigned: 0, badSignature: 0, invalid: 0 }
      yield* inputBytes(file).pipe(
        Stream.decodeText(),
        blocks,
        Stream.runForEach(({ lineOffset, text }) => {
          const outcome = check(NarInfo.parse(text, { lineOffset }), trusted)
          counts.total++
          switch (outcome._tag) {
            case "Verified":
              counts.verified++
              break
            case "Unsigned":
              counts.unsigned++
              break
            case "BadSignature":
              counts.badSignature++
              break
            case "Invalid":
              counts.invalid++
              break
          }
          const failure = verbose ? describeFailure(outcome) : undefined
          return failure === undefined ? Effect.void : Console.error(failure)
        })
      )
      const summary: Summary = counts
      yield* Effect.annotateCurrentSpan(summary)
      yield* printJson(Summary, summary)
      const failed = summary.total - summary.verified
      if (failed > 0) {
        return yield* new CommandFailed({
          message: `${failed} of ${summary.total} narinfos from ${describeInput(file)} did not verify`,
          exitCode: ExitCode.Failure
        })
      }
    }).pipe(Effect.withSpan("nixfx narinfo verify"))
).pipe(Command.withDescription("Verify the signatures of narinfos (blank-line separated) against trusted keys; prints a JSON summary"))
