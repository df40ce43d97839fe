import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import * as Cli from "./Cli.js"
import { reportFailures } from "./internal/failure.js"

Cli.run(process.argv).pipe(
  reportFailures,
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    // Commands set process.exitCode for expected failures; keep it.
    teardown: (exit, onExit) => onExit(exit._tag === "Failure" ? 70 : (Number(process.exitCode ?? 0) || 0))
  })
)
