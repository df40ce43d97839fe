/**
 * Child process of Load.test.ts: a gRPC server over a SQLite + filesystem
 * store (`sqlite:///<dir>`, as `nixfx serve grpc --store` opens it) on
 * 127.0.0.1, until SIGTERM (see `runServerChild`). It reports the most
 * handlers it saw running at once (`maxActiveCalls`).
 *
 * argv: <store directory> <maxConcurrentCalls>
 */
import * as GrpcServer from "@nixfx/pathinfo-grpc/GrpcServer"
import { runServerChild } from "@nixfx/pathinfo/loadTesting"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import * as Effect from "effect/Effect"

const [dir, maxConcurrentCalls] = process.argv.slice(2)

runServerChild(Effect.gen(function*() {
  const store = yield* StoreComposition.build(`sqlite://${dir}`)
  const server = yield* GrpcServer.make(store, {
    address: "127.0.0.1:0",
    maxConcurrentCalls: Number(maxConcurrentCalls),
    shutdownTimeout: "10 seconds"
  })
  // Polled often enough to catch the peak: a handler takes well over a millisecond under load.
  let maxActiveCalls = 0
  const timer = setInterval(() => {
    maxActiveCalls = Math.max(maxActiveCalls, Effect.runSync(server.activeCalls))
  }, 1)
  yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(timer)))
  return { url: server.url, probe: () => ({ maxActiveCalls }) }
}))
