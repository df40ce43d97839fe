/**
 * Child process of GrpcFaults.test.ts: serves the store at a URL over gRPC
 * on 127.0.0.1 (a port the OS picks) until killed, and prints its URL as the
 * first line. Runs from the built `dist` (`npx tsc -b`).
 *
 * argv: <store URL>
 */
import * as GrpcServer from "@nixfx/pathinfo-grpc/GrpcServer"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import * as Effect from "effect/Effect"

const [url] = process.argv.slice(2)

const program = Effect.scoped(Effect.gen(function*() {
  const store = yield* StoreComposition.build(url)
  const server = yield* GrpcServer.make(store, { address: "127.0.0.1:0" })
  process.stdout.write(server.url + "\n")
  return yield* Effect.never
}))

Effect.runPromise(program).catch((e) => {
  process.stderr.write(String(e) + "\n")
  process.exit(1)
})
