// Runs each example program as the README describes it and checks what it did.
import { assert, describe, it } from "@effect/vitest"
import { PathInfo } from "@nixfx/pathinfo"
import { Effect, Option } from "effect"
import { fileURLToPath } from "node:url"
import * as GrpcRoundTrip from "../grpc-round-trip.js"
import * as Metered from "../metered-path-info-service.js"
import * as ReadThroughCache from "../read-through-cache.js"

const zstdCache = fileURLToPath(new URL("../../fixtures/caches/zstd", import.meta.url))
const closure = [
  "nyiw7bjzqq5k276s660r6xya32zqjdf0-fx-app-1.0",
  "9xc71gkdj2sfw6cxciibs8rmxv5ffwwz-fx-lib-1.0",
  "pkq0kryrbi8cf4amk8zyndzrg6s3vb7s-fx-base-1.0"
]

describe("examples", () => {
  it.live("read-through-cache: the first get fetches the closure, the second fetches nothing", () =>
    Effect.gen(function*() {
      const result = yield* ReadThroughCache.program(zstdCache)
      assert.strictEqual(result.pathInfo.basename, closure[0])
      assert.deepStrictEqual([...result.firstFetched].sort(), [...closure].sort())
      assert.deepStrictEqual(result.secondFetched, [])
      // references by content: each carries the node its path was imported as
      assert.isTrue(result.references.every((r) => Option.isSome(r.node)))
    }))

  it.live("grpc-round-trip: what is read back over gRPC is what was served", () =>
    Effect.gen(function*() {
      const result = yield* GrpcRoundTrip.program(zstdCache)
      assert.match(result.url, /^grpc\+http:\/\/127\.0\.0\.1:\d+$/)
      assert.isTrue(PathInfo.equals(result.read.info, result.original))
      assert.isAbove(result.read.directories, 0)
      assert.isAbove(result.read.fileBytes, 0)
      assert.strictEqual(result.copied, 3)
      assert.isTrue(PathInfo.equals(result.copiedRoot, result.original))
    }))

  it.live("metered-path-info-service: counts the misses of its demo", () =>
    Effect.gen(function*() {
      const result = yield* Metered.program("memory://")
      assert.strictEqual(result.listed, 0)
      assert.isAtLeast(result.misses, 2)
    }))
})
