import { ValidationError } from "@effect/cli"
import { Cause, Console, Data, Effect } from "effect"

/**
 * An expected failure of a command: one line for stderr and the process exit
 * code. Library errors are turned into this at the edge of each command.
 */
export class CommandFailed extends Data.TaggedError("CommandFailed")<{
  readonly message: string
  readonly exitCode: number
}> {}

/** Exit codes: 0 success, 1 the input was bad or a check failed, 2 usage. */
export const ExitCode = {
  Success: 0,
  Failure: 1,
  Usage: 2
} as const

const messageOf = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "message" in error && typeof error.message === "string" && error.message.length > 0) {
    return error.message
  }
  return String(error)
}

/**
 * Turns every expected failure into one clear stderr line and an exit code;
 * defects (bugs) keep their full cause so they can be reported.
 */
export const reportFailures = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<void, never, R> =>
  self.pipe(
    Effect.asVoid,
    Effect.catchAll((error: unknown) => {
      if (ValidationError.isValidationError(error)) {
        // @effect/cli has already printed the usage problem and help.
        return Effect.sync(() => {
          process.exitCode = ExitCode.Usage
        })
      }
      const exitCode = error instanceof CommandFailed ? error.exitCode : ExitCode.Failure
      const line = messageOf(error).split("\n").join(" ")
      return Console.error(`nixfx: ${line}`).pipe(
        Effect.zipRight(Effect.sync(() => {
          process.exitCode = exitCode
        }))
      )
    }),
    Effect.catchAllDefect((defect) =>
      Console.error(`nixfx: internal error (a bug, please report it):\n${Cause.pretty(Cause.die(defect))}`).pipe(
        Effect.zipRight(Effect.sync(() => {
          process.exitCode = 70
        }))
      )
    )
  )
