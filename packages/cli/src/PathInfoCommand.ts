/**
 * `nixfx path-info`: show PathInfos of a store, like `nix path-info`.
 */
import { Args, Command, Options } from "@effect/cli"
import { Node } from "@nixfx/castore-nodes"
import { CAHash, Keys, NixHash, StorePath } from "@nixfx/nix-compat"
import { PathInfo, PathInfoService } from "@nixfx/pathinfo"
import { Console, Effect, Either, Option, Schema } from "effect"
import { CommandFailed, ExitCode } from "./internal/failure.js"
import { printJson } from "./internal/output.js"
import { defaultStoreUrl, describeStore, storeLayer, storeOption } from "./internal/store.js"

/** One element of the `--json` array (stable: fields are only ever added). */
export const PathInfoJson = Schema.Struct({
  /** Absolute store path. */
  path: Schema.String,
  /** SRI form, `sha256-…`. */
  narHash: Schema.String,
  narSize: Schema.NonNegativeInt,
  /** Absolute store paths, sorted. */
  references: Schema.Array(Schema.String),
  /** Absolute path of the .drv, when known. */
  deriver: Schema.NullOr(Schema.String),
  /** Content address (`fixed:…`, `text:…`), for content-addressed paths. */
  ca: Schema.NullOr(Schema.String),
  /** `keyname:base64`. */
  signatures: Schema.Array(Schema.String),
  /** The castore root node of the path's content. */
  root: Node.NodeFromJson,
  /** Per reference (absolute path), the node it had when this path was ingested; null when unknown. */
  referenceNodes: Schema.Record({ key: Schema.String, value: Schema.NullOr(Node.NodeFromJson) })
})
export type PathInfoJson = typeof PathInfoJson.Type

/** What `--json` prints: the PathInfos found, in the order asked. */
export const Output = Schema.Array(PathInfoJson)

export const toJson = (pathInfo: PathInfo.PathInfo): PathInfoJson => {
  const referenceNodes: Record<string, Node.Node | null> = {}
  for (const reference of pathInfo.references) {
    referenceNodes[StorePath.toAbsolutePath(reference.storePath)] = Option.getOrNull(reference.node)
  }
  return {
    path: StorePath.toAbsolutePath(pathInfo.storePath),
    narHash: NixHash.toSri(PathInfo.narHash(pathInfo)),
    narSize: pathInfo.narSize,
    references: pathInfo.references.map((reference) => StorePath.toAbsolutePath(reference.storePath)),
    deriver: Option.match(pathInfo.deriver, { onNone: () => null, onSome: (d) => StorePath.toAbsolutePath(d) }),
    ca: Option.match(pathInfo.ca, { onNone: () => null, onSome: (ca) => CAHash.render(ca) }),
    signatures: pathInfo.signatures.map(Keys.formatSignature),
    root: pathInfo.node,
    referenceNodes
  }
}

/** A store path given on the command line: absolute (under /nix/store) or a basename. */
export const parseStorePathArgument = (arg: string): Either.Either<StorePath.StorePath, CommandFailed> =>
  (arg.startsWith("/") ? StorePath.parseAbsolutePath(arg) : StorePath.parseBasename(arg)).pipe(
    Either.mapLeft((error) => new CommandFailed({ message: `${arg}: ${error.message}`, exitCode: ExitCode.Usage }))
  )

export const command = Command.make(
  "path-info",
  {
    store: storeOption(defaultStoreUrl(), "Store to read (default: the embedded store under $XDG_DATA_HOME/nixfx)"),
    json: Options.boolean("json").pipe(
      Options.withDescription("Print a JSON array with NAR hash and size, references with their recorded nodes, castore root")
    ),
    paths: Args.text({ name: "PATH" }).pipe(Args.withDescription("Store paths (absolute or basename)"), Args.atLeast(1))
  },
  ({ json, paths, store }) =>
    Effect.gen(function*() {
      const storePaths = yield* Effect.forEach(paths, parseStorePathArgument)
      const service = yield* PathInfoService.PathInfoService
      const found = yield* Effect.forEach(storePaths, (storePath) => PathInfoService.getStorePath(service, storePath), {
        concurrency: 8
      })
      const present = found.flatMap((info) => Option.toArray(info))
      if (json) {
        yield* printJson(Output, present.map(toJson))
      } else {
        for (const info of present) yield* Console.log(StorePath.toAbsolutePath(info.storePath))
      }
      const missing = storePaths.filter((_, i) => Option.isNone(found[i]))
      if (missing.length > 0) {
        return yield* new CommandFailed({
          message: `not in ${store}: ${missing.map((p) => StorePath.toAbsolutePath(p)).join(", ")}`,
          exitCode: ExitCode.Failure
        })
      }
    }).pipe(
      Effect.provide(storeLayer(store)),
      Effect.withSpan("nixfx path-info", { attributes: { "nixfx.store": describeStore(store), "nix.store_paths": paths } })
    )
).pipe(Command.withDescription("Show the PathInfo of store paths (like nix path-info); --json adds castore roots and reference nodes"))
