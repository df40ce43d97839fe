/**
 * Child process of the fault-injection tests (run as `node
 * dist/internal/faultWriter.js`; importing it runs it): writes generated store
 * paths (blobs, then directories, then the PathInfo, as a copy does) into the
 * store at a URL, forever, until killed. Each new path refers to paths
 * already in the store.
 *
 * Prints on stdout, one line each: `ready <paths in store>`, `begin <phase>`,
 * `end <phase> <ms>`, `done <index>`.
 *
 * argv: <store URL> <first index> <large blob bytes> [<module exporting a `registry`>]
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as StoreComposition from "../StoreComposition.js"
import { writeGeneratedPath } from "./testWorkload.js"

const [url, first, largeBytes, registryModule] = process.argv.slice(2)
const say = (line: string) => process.stdout.write(line + "\n")

const program = Effect.scoped(Effect.gen(function*() {
  const registry = registryModule === undefined
    ? StoreComposition.defaultRegistry
    : (yield* Effect.promise(() => import(registryModule) as Promise<{ registry: StoreComposition.Registry }>)).registry
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
