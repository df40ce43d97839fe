import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit, Logger } from "effect"
import * as Cli from "./Cli.js"
import { reportFailures } from "./internal/failure.js"
import * as Logging from "./internal/logging.js"
import * as Tracing from "./internal/tracing.js"

Logging.levelFromEnvironment.pipe(
  // `--log-level` (built into @effect/cli) sets the level again, inside: it wins over NIXFX_LOG_LEVEL.
  Effect.flatMap((level) => Cli.run(process.argv).pipe(Logger.withMinimumLogLevel(level))),
  Effect.provide(Tracing.layer(Cli.version)),
  reportFailures,
  Effect.provide(Logging.layer),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    // Logging.layer replaces the default logger (stdout) with one on stderr.
    disablePrettyLogger: true,
    // Commands set process.exitCode for expected failures; a server stopped by
    // SIGINT/SIGTERM (interruption) has shut down gracefully: success.
    teardown: (exit, onExit) =>
      onExit(
        Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause) ? 70 : (Number(process.exitCode ?? 0) || 0)
      )
  })
)
