import { Options } from "@effect/cli"
import { StoreComposition } from "@nixfx/pathinfo"
import { GrpcClient } from "@nixfx/pathinfo-grpc"
import { BinaryCache } from "@nixfx/pathinfo-http"
import { Effect, Layer } from "effect"
import * as os from "node:os"
import * as path from "node:path"

/**
 * The embedded default store: SQLite metadata and blobs on disk under
 * `$XDG_DATA_HOME/nixfx` (`~/.local/share/nixfx` when unset).
 */
export const defaultStoreDirectory = (): string => {
  const dataHome = process.env.XDG_DATA_HOME !== undefined && path.isAbsolute(process.env.XDG_DATA_HOME)
    ? process.env.XDG_DATA_HOME
    : path.join(os.homedir(), ".local", "share")
  return path.join(dataHome, "nixfx")
}

export const defaultStoreUrl = (): string => `sqlite://${defaultStoreDirectory()}`

/** `--store URL`, with a default that each command chooses. */
export const storeOption = (defaultUrl: string, description: string) =>
  Options.text("store").pipe(
    Options.withDescription(description),
    Options.withDefault(defaultUrl)
  )

/** Every store backend the CLI knows: built-in, binary caches, gRPC. */
export const registry: StoreComposition.Registry = StoreComposition.register(
  BinaryCache.registry,
  GrpcClient.storeBackend
)

export const storeRegistry = Effect.succeed(registry)

/** The services of the store a URL (or composition document) names. */
export const storeLayer = (spec: string) =>
  StoreComposition.layer(spec).pipe(Layer.provide(Layer.succeed(StoreComposition.CurrentRegistry, registry)))

/**
 * A store URL for logs and span attributes: a password in it is replaced by
 * `***`; a composition document is not shown (it may hold secrets).
 */
export const describeStore = (spec: string): string => {
  if (spec.trimStart().startsWith("{")) return "(composition document)"
  try {
    const url = new URL(spec)
    if (url.password === "") return spec
    url.password = "***"
    return url.toString()
  } catch {
    return spec
  }
}
