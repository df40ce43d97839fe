/**
 * A PathInfoService layer of your own: this one decorates whatever
 * PathInfoService it is given with metrics (gets by outcome, puts) and a
 * span per call, so any backend can be watched the same way. The
 * conformance suite of @nixfx/pathinfo checks that the decorated service
 * still behaves as a PathInfoService must (./metered-path-info-service.test.ts).
 *
 * Run from the repository root: `npm run build && node examples/dist/metered-path-info-service.js`
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { PathInfoService, StoreComposition } from "@nixfx/pathinfo"
import { Console, Effect, Layer, Metric, Option, Stream } from "effect"
import { fileURLToPath } from "node:url"

export const gets = Metric.counter("nixfx_pathinfo_gets", { description: "PathInfoService.get calls", incremental: true })
export const puts = Metric.counter("nixfx_pathinfo_puts", { description: "PathInfoService.put calls", incremental: true })

const hex = (digest: Uint8Array) => Buffer.from(digest).toString("hex")

/** `service` with every call counted and traced. */
export const metered = (service: PathInfoService.PathInfoServiceShape): PathInfoService.PathInfoServiceShape =>
  PathInfoService.make({
    get: (digest) =>
      service.get(digest).pipe(
        Effect.tap((found) => Metric.increment(Metric.tagged(gets, "outcome", Option.isSome(found) ? "hit" : "miss"))),
        Effect.withSpan("PathInfoService.get", { attributes: { "nix.digest": hex(digest) } })
      ),
    put: (pathInfo) =>
      service.put(pathInfo).pipe(
        Effect.tap(() => Metric.increment(puts)),
        Effect.withSpan("PathInfoService.put", { attributes: { "nix.store_path": pathInfo.basename } })
      ),
    list: service.list
  })

/** Decorates the PathInfoService in context. */
export const layer: Layer.Layer<PathInfoService.PathInfoService, never, PathInfoService.PathInfoService> = Layer.effect(
  PathInfoService.PathInfoService,
  Effect.map(PathInfoService.PathInfoService, metered)
)

/** A few calls against a metered SQLite store in a temporary directory, then the counters. */
export const program = (storeUrl: string) =>
  Effect.gen(function*() {
    const store = yield* PathInfoService.PathInfoService
    const missing = new Uint8Array(20)
    yield* store.get(missing)
    yield* store.get(missing)
    const count = yield* Stream.runCount(store.list)
    const misses = yield* Metric.value(Metric.tagged(gets, "outcome", "miss"))
    yield* Console.log(`${count} PathInfos listed; ${misses.count} gets missed`)
    return { listed: count, misses: misses.count }
  }).pipe(Effect.provide(layer.pipe(Layer.provide(StoreComposition.layerPathInfoService(storeUrl)))))

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  NodeRuntime.runMain(program("memory://"))
}
