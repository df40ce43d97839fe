/**
 * `nixfx serve http`: a store as a Nix binary cache that `nix copy --from`
 * and substituters read.
 */
import { Command, Options } from "@effect/cli"
import { BinaryCacheServer } from "@nixfx/pathinfo-http"
import { Console, Effect, Either, Option, Redacted } from "effect"
import * as fs from "node:fs"
import { CommandFailed, ExitCode } from "./internal/failure.js"
import { defaultStoreUrl, storeLayer, storeOption } from "./internal/store.js"

const readToken = (file: string) =>
  Effect.try({
    try: () => fs.readFileSync(file, "utf8").trim(),
    catch: (e) =>
      new CommandFailed({
        message: `--upload-token-file: ${file}: ${e instanceof Error ? e.message : String(e)}`,
        exitCode: ExitCode.Usage
      })
  }).pipe(
    Effect.filterOrFail(
      (token) => token.length > 0,
      () => new CommandFailed({ message: `--upload-token-file: ${file} is empty`, exitCode: ExitCode.Usage })
    )
  )

export const command = Command.make(
  "http",
  {
    store: storeOption(defaultStoreUrl(), "Store to serve (default: the embedded store under $XDG_DATA_HOME/nixfx)"),
    listen: Options.text("listen").pipe(
      Options.withDescription("HOST:PORT ([IPv6]:PORT); port 0 picks a free one"),
      Options.withDefault("127.0.0.1:8080")
    ),
    signKeyFile: Options.file("sign-key-file", { exists: "yes" }).pipe(
      Options.withDescription("Nix secret key (name:base64): every narinfo served also carries its signature"),
      Options.optional
    ),
    uploadTokenFile: Options.file("upload-token-file", { exists: "yes" }).pipe(
      Options.withDescription("Accept PUT uploads (verified before they become visible) carrying this bearer token"),
      Options.optional
    )
  },
  ({ listen, signKeyFile, store, uploadTokenFile }) =>
    Effect.scoped(
      Effect.gen(function*() {
        const address = yield* Either.match(BinaryCacheServer.parseListenAddress(listen), {
          onLeft: (e) => Effect.fail(new CommandFailed({ message: `--listen: ${e.message}`, exitCode: ExitCode.Usage })),
          onRight: Effect.succeed
        })
        const signingKey = Option.isSome(signKeyFile)
          ? yield* BinaryCacheServer.readSigningKeyFile(signKeyFile.value)
          : undefined
        const token = Option.isSome(uploadTokenFile) ? yield* readToken(uploadTokenFile.value) : undefined
        const running = yield* BinaryCacheServer.serve({
          host: address.host,
          port: address.port,
          signingKey,
          upload: token === undefined ? undefined : { token: Redacted.make(token) }
        })
        // The first line on stdout says where to connect (scripts read it).
        yield* Console.log(running.url)
        yield* Console.error(`serving ${store} as a binary cache at ${running.url}; Ctrl-C stops`)
        return yield* Effect.never
      })
    ).pipe(Effect.provide(storeLayer(store)))
).pipe(Command.withDescription("Serve a store as a Nix binary cache (narinfos, NARs with ranges and zstd, optional uploads)"))
