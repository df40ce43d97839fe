import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit } from "effect"
import * as Cli from "./Cli.js"
import { reportFailures } from "./internal/failure.js"

Cli.run(process.argv).pipe(
  reportFailures,
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    // Commands set process.exitCode for expected failures; a server stopped by
    // SIGINT/SIGTERM (interruption) has shut down gracefully: success.
    teardown: (exit, onExit) =>
      onExit(
        Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause) ? 70 : (Number(process.exitCode ?? 0) || 0)
      )
  })
)
