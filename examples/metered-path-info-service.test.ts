// The conformance suite of @nixfx/pathinfo against the metered layer of
// ./metered-path-info-service.ts, over the in-memory and the SQLite service.
import { afterAll, assert, describe, it } from "@effect/vitest"
import { PathInfoService, StoreComposition } from "@nixfx/pathinfo"
import { pathInfoServiceSuite } from "@nixfx/pathinfo/testing"
import { Effect, Layer, Metric } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Metered from "./metered-path-info-service.js"

const fixturesDir = fileURLToPath(new URL("../fixtures/", import.meta.url))
const sqliteDir = mkdtempSync(join(tmpdir(), "nixfx-example-metered-"))
afterAll(() => rmSync(sqliteDir, { recursive: true, force: true }))

pathInfoServiceSuite("metered memory PathInfoService", Metered.layer.pipe(Layer.provide(PathInfoService.layerMemory)), {
  fixturesDir
})

let instance = 0
// a fresh SQLite database for each test of the suite (the layer is built per test)
const sqlite = Layer.unwrapEffect(
  Effect.sync(() => StoreComposition.layerPathInfoService(`sqlite://${join(sqliteDir, String(instance++))}`))
)
pathInfoServiceSuite("metered SQLite PathInfoService", Metered.layer.pipe(Layer.provide(sqlite)), { fixturesDir })

describe("the metered layer", () => {
  it.effect("counted the suite's calls", () =>
    Effect.gen(function*() {
      const hits = yield* Metric.value(Metric.tagged(Metered.gets, "outcome", "hit"))
      const misses = yield* Metric.value(Metric.tagged(Metered.gets, "outcome", "miss"))
      const puts = yield* Metric.value(Metered.puts)
      assert.isAbove(hits.count, 0)
      assert.isAbove(misses.count, 0)
      assert.isAbove(puts.count, 0)
    }))
})
