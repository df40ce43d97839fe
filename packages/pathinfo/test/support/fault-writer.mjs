/**
 * Child process of the fault-injection tests: writes generated store paths
 * (blobs, then directories, then the PathInfo, as a copy does) into the store
 * at a URL, forever, until killed. Each new path refers to paths already in
 * the store. Runs from the built `dist` (`npx tsc -b`).
 *
 * Prints on stdout, one line each: `ready <paths in store>`, `begin <phase>`,
 * `end <phase> <ms>`, `done <index>`.
 *
 * argv: <store URL> <first index> <large blob bytes>
 */
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import { writeGeneratedPath } from "@nixfx/pathinfo/internal/testWorkload"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

const [url, first, largeBytes] = process.argv.slice(2)
const registry = url.startsWith("grpc")
  ? (await import("@nixfx/pathinfo-grpc/GrpcClient")).registry
  : StoreComposition.defaultRegistry
const say = (line) => process.stdout.write(line + "\n")

const program = Effect.scoped(Effect.gen(function*() {
  const store = yield* StoreComposition.build(url, registry)
  const existing = Chunk.toArray(yield* Stream.runCollect(store.pathInfoService.list))
  say(`ready ${existing.length}`)
  for (let index = Number(first);; index++) {
    const pathInfo = yield* writeGeneratedPath(store, {
      index,
      largeBytes: Number(largeBytes),
      existing,
      maxReferences: 20,
      onPhase: (event, phase, ms) => say(event === "begin" ? `begin ${phase}` : `end ${phase} ${ms.toFixed(2)}`)
    })
    existing.push(pathInfo)
    say(`done ${index}`)
  }
}))

Effect.runPromise(program).catch((e) => {
  process.stderr.write(String(e) + "\n")
  process.exit(1)
})
