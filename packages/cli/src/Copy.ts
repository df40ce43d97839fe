/**
 * `nixfx copy`: store paths with their closures from one store to another.
 */
import { Args, Command, Options } from "@effect/cli"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { StorePath } from "@nixfx/nix-compat"
import { StoreComposition, StoreCopy } from "@nixfx/pathinfo"
import { BinaryCache, FileHttpClient } from "@nixfx/pathinfo-http"
import { Console, Effect, Either, Option, Runtime, Schema } from "effect"
import { CommandFailed, ExitCode } from "./internal/failure.js"
import { printJson } from "./internal/output.js"
import { makeProgress } from "./internal/progress.js"
import { defaultStoreUrl, describeStore, storeRegistry } from "./internal/store.js"
import { parseStorePathArgument } from "./PathInfoCommand.js"

/** The JSON printed with `--json` (stable: fields are only ever added). */
export const Output = Schema.Struct({
  /** Paths written into the destination. */
  copied: Schema.NonNegativeInt,
  /** Paths of the closures the destination held already. */
  present: Schema.NonNegativeInt,
  /** The requested paths (absolute). */
  paths: Schema.Array(Schema.String)
})
export type Output = typeof Output.Type

/** A debug log line from a synchronous progress callback, in the command's fiber context. */
const debugLogger = Effect.map(
  Effect.runtime<never>(),
  (runtime) => (message: string) => Runtime.runSync(runtime)(Effect.logDebug(message))
)

const isBinaryCacheUrl = (url: string) => /^((nix\+)?https?|file):\/\//i.test(url)

/** From a binary cache: the cache fetches each closure into the destination itself. */
const fromBinaryCache = (
  from: string,
  to: StoreComposition.Store,
  paths: ReadonlyArray<StorePath.StorePath>,
  checkReferences: boolean
) =>
  Effect.gen(function*() {
    const options = yield* Either.match(BinaryCache.fromUrl(from), { onLeft: Effect.fail, onRight: Effect.succeed })
    const progress = makeProgress("copy")
    const debug = yield* debugLogger
    let copied = 0
    let present = 0
    const cache = yield* BinaryCache.make({
      ...options,
      frankenbuildDetection: checkReferences ? "fail" : options.frankenbuildDetection,
      onEvent: BinaryCache.Event.$match({
        ClosurePlanned: (e) => {
          present += e.present.length
          progress.planned(e.paths.length, e.narBytes)
          debug(`${e.paths.length} paths to fetch (${e.narBytes} NAR bytes), ${e.present.length} present`)
        },
        PathStarted: (e) => debug(`${e.storePath}: fetching ${e.url} (${e.compression})`),
        PathProgress: () => {},
        PathFinished: (e) => {
          copied++
          progress.advance(1, e.narSize)
          debug(`${e.storePath}: stored (${e.narSize} NAR bytes)`)
        },
        FrankenbuildWarning: () => {}
      })
    }, to)
    for (const path of paths) {
      const held = yield* to.pathInfoService.get(path.digest)
      if (Option.isSome(held)) {
        present++
        continue
      }
      const fetched = yield* cache.fetch(path.digest).pipe(
        Effect.withSpan("nixfx copy path", { attributes: { "nix.store_path": StorePath.toAbsolutePath(path) } })
      )
      if (Option.isNone(fetched)) {
        progress.done()
        return yield* new CommandFailed({
          message: `${StorePath.toAbsolutePath(path)}: not in ${cache.url}`,
          exitCode: ExitCode.Failure
        })
      }
    }
    progress.done()
    return { copied, present }
  }).pipe(Effect.provide(FileHttpClient.layer(NodeHttpClient.layerUndici)))

/** Between any two stores. */
const betweenStores = (
  from: StoreComposition.Store,
  to: StoreComposition.Store,
  paths: ReadonlyArray<StorePath.StorePath>
) =>
  Effect.gen(function*() {
    const progress = makeProgress("copy")
    const debug = yield* debugLogger
    const result = yield* StoreCopy.copy(from, to, paths, {
      onEvent: StoreCopy.Event.$match({
        Planned: (e) => {
          progress.planned(e.paths, e.narBytes)
          debug(`${e.paths} paths in the closure (${e.narBytes} NAR bytes)`)
        },
        Copied: (e) => {
          progress.advance(1, e.narSize)
          debug(`${e.storePath}: copied (${e.narSize} NAR bytes)`)
        },
        Present: (e) => {
          progress.advance(1, e.narSize)
          debug(`${e.storePath}: present`)
        }
      })
    }).pipe(Effect.ensuring(Effect.sync(() => progress.done())))
    return { copied: result.copied, present: result.present }
  })

export const command = Command.make(
  "copy",
  {
    from: Options.text("from").pipe(
      Options.withDescription("Source store URL: a binary cache (nix+http(s)://…, file:///dir), grpc+…, sqlite://, postgres://, memory://")
    ),
    to: Options.text("to").pipe(
      Options.withDescription("Destination store (default: the embedded store under $XDG_DATA_HOME/nixfx)"),
      Options.withDefault(defaultStoreUrl())
    ),
    checkReferences: Options.boolean("check-references").pipe(
      Options.withDescription(
        "Frankenbuild detection: fail when the cache serves a reference with another NarHash than the destination holds"
      )
    ),
    json: Options.boolean("json").pipe(Options.withDescription("Print a JSON summary {copied, present, paths} on stdout")),
    paths: Args.text({ name: "PATH" }).pipe(Args.withDescription("Store paths (absolute or basename)"), Args.atLeast(1))
  },
  ({ checkReferences, from, json, paths, to }) =>
    Effect.scoped(
      Effect.gen(function*() {
        const storePaths = yield* Effect.forEach(paths, parseStorePathArgument)
        const registry = yield* storeRegistry
        const destination = yield* StoreComposition.build(to, registry)
        const result = isBinaryCacheUrl(from)
          ? yield* fromBinaryCache(from, destination, storePaths, checkReferences)
          : yield* Effect.flatMap(StoreComposition.build(from, registry), (source) =>
            betweenStores(source, destination, storePaths))
        yield* Effect.annotateCurrentSpan({ "nixfx.copied": result.copied, "nixfx.present": result.present })
        const output: Output = { ...result, paths: storePaths.map((p) => StorePath.toAbsolutePath(p)) }
        yield* json
          ? printJson(Output, output)
          : Console.error(`copied ${result.copied} paths (${result.present} already present) to ${to}`)
      })
    ).pipe(
      Effect.withSpan("nixfx copy", {
        attributes: { "nixfx.from": describeStore(from), "nixfx.to": describeStore(to), "nix.store_paths": paths }
      })
    )
).pipe(Command.withDescription("Copy store paths and their closures between stores, references by content"))
