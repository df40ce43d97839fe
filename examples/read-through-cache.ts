/**
 * A read-through cache: an in-memory store in front of a Nix binary cache
 * (here the zstd cache in the repository's fixtures, read through file://;
 * `nix+https://cache.nixos.org?trusted-public-keys=…` works the same). The
 * first `get` of a path fetches its closure from the cache — signatures
 * checked, NARs imported into castore, references recorded by content — and
 * keeps it in memory; the second `get` is answered from memory.
 *
 * Run from the repository root: `npm run build && node examples/dist/read-through-cache.js`
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Keys, Nixbase32 } from "@nixfx/nix-compat"
import { PathInfoService, StoreComposition } from "@nixfx/pathinfo"
import { BinaryCache, FileHttpClient } from "@nixfx/pathinfo-http"
import { Console, Effect, Either, Layer, Option } from "effect"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const trustedPublicKeys = Either.getOrThrow(
  Keys.parsePublicKeys("test-cache-1:AShArwCxa9//pz8J8ygDvdfdSz5el6lutUUGAKprce4=")
)
/** /nix/store/nyiw7bjzqq5k276s660r6xya32zqjdf0-fx-app-1.0 (→ fx-lib-1.0 → fx-base-1.0) */
const app = Either.getOrThrow(Nixbase32.decode("nyiw7bjzqq5k276s660r6xya32zqjdf0", 20))

/** PathInfoService: memory in front of the binary cache at `cacheUrl`; `onFetched` sees each NAR downloaded. */
export const layer = (cacheUrl: string, onFetched: (storePath: string) => void) =>
  BinaryCache.layerCached({
    url: cacheUrl,
    trustedPublicKeys,
    onEvent: (event) => {
      if (event._tag === "PathFinished") onFetched(event.storePath)
    }
  }).pipe(
    // the near side: where NARs are imported and PathInfos kept ("sqlite:///abs/dir" persists them)
    Layer.provide(BinaryCache.layerResolveStore),
    Layer.provide(StoreComposition.layer("memory://")),
    // an HTTP client that also reads file:// URLs
    Layer.provide(FileHttpClient.layer(NodeHttpClient.layerUndici))
  )

/** Gets fx-app-1.0 twice; returns what each `get` fetched from the cache. */
export const program = (cacheDir: string) => {
  const fetched: Array<string> = []
  return Effect.gen(function*() {
    const store = yield* PathInfoService.PathInfoService
    const first = Option.getOrThrow(yield* store.get(app))
    const firstFetched = fetched.splice(0)
    yield* Console.log(`first get: ${first.basename}, fetched ${firstFetched.length} NARs: ${firstFetched.join(", ")}`)
    const second = Option.getOrThrow(yield* store.get(app))
    const secondFetched = fetched.splice(0)
    yield* Console.log(`second get: ${second.basename}, fetched ${secondFetched.length} NARs`)
    return {
      pathInfo: second,
      firstFetched,
      secondFetched,
      references: second.references.map((r) => ({ storePath: r.storePath.basename, node: r.node }))
    }
  }).pipe(Effect.provide(layer(`file://${cacheDir}`, (storePath) => fetched.push(storePath))))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  NodeRuntime.runMain(program(path.resolve("fixtures/caches/zstd")))
}
