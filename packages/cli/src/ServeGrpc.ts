/**
 * `nixfx serve grpc`: a store's PathInfo, Directory and Blob services over
 * gRPC, under the tvix and the snix package names at once.
 */
import { Command, Options } from "@effect/cli"
import { GrpcServer } from "@nixfx/pathinfo-grpc"
import { Console, Effect } from "effect"
import { defaultStoreUrl, storeLayer, storeOption } from "./internal/store.js"

export const command = Command.make(
  "grpc",
  {
    store: storeOption(defaultStoreUrl(), "Store to serve (default: the embedded store under $XDG_DATA_HOME/nixfx)"),
    listen: Options.text("listen").pipe(
      Options.withDescription("HOST:PORT (port 0 picks a free one) or unix:/abs/socket"),
      Options.withDefault("127.0.0.1:8000")
    )
  },
  ({ listen, store }) =>
    Effect.scoped(
      Effect.gen(function*() {
        const server = yield* GrpcServer.serve({ address: listen })
        // The first line on stdout says where to connect (scripts read it).
        yield* Console.log(server.url)
        yield* Console.error(`serving ${store} over gRPC (tvix.* and snix.*) at ${server.url}; Ctrl-C stops`)
        return yield* Effect.never
      })
    ).pipe(Effect.provide(storeLayer(store)))
).pipe(Command.withDescription("Serve a store over gRPC (tvix.store.v1/castore.v1 and snix.* package names)"))
