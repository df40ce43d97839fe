import { Config, Effect, Layer, Logger, LogLevel, Option } from "effect"
import { CommandFailed, ExitCode } from "./failure.js"

/**
 * Log levels by the names `--log-level` (built into @effect/cli) takes, so
 * `NIXFX_LOG_LEVEL` accepts exactly the same words.
 */
export const levelNames: ReadonlyArray<string> = LogLevel.allLevels.map((level) => level._tag.toLowerCase())

export const defaultLevel: LogLevel.LogLevel = LogLevel.Info

/** `NIXFX_LOG_LEVEL`, read where the program starts; unset means {@link defaultLevel}. */
export const levelFromEnvironment: Effect.Effect<LogLevel.LogLevel, CommandFailed> = Config.option(
  Config.string("NIXFX_LOG_LEVEL")
).pipe(
  Effect.mapError((error) => new CommandFailed({ message: `NIXFX_LOG_LEVEL: ${error.message}`, exitCode: ExitCode.Usage })),
  Effect.flatMap(Option.match({
    onNone: () => Effect.succeed(defaultLevel),
    onSome: (text) => {
      const level = LogLevel.allLevels.find((level) => level._tag.toLowerCase() === text.trim().toLowerCase())
      return level === undefined
        ? Effect.fail(
          new CommandFailed({
            message: `NIXFX_LOG_LEVEL: expected one of ${levelNames.join(", ")}, got ${JSON.stringify(text)}`,
            exitCode: ExitCode.Usage
          })
        )
        : Effect.succeed(level)
    }
  }))
)

/**
 * Logs go to stderr, never stdout (stdout carries results and JSON): pretty
 * on a terminal, one logfmt line per entry otherwise (greppable in pipes and
 * service logs).
 */
export const layer: Layer.Layer<never> = Logger.replace(
  Logger.defaultLogger,
  process.stderr.isTTY ? Logger.prettyLogger({ stderr: true }) : Logger.withConsoleError(Logger.logfmtLogger)
)
