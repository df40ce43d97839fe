/**
 * Child process of SqliteCrash.test.ts: puts large PathInfos (many
 * references) into a SQLite file in a loop until killed, printing
 * `begin <i> <basename>` before and `done <i> <milliseconds>` after each put.
 *
 * argv: <database file> <driver> <first index>
 */
import * as Node from "@nixfx/castore-nodes/Node"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import * as SqlPathInfoService from "@nixfx/pathinfo/SqlPathInfoService"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import { makeTestPathInfo, randomNode, randomStorePath } from "@nixfx/pathinfo/internal/testBuilders"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"

const [file, driver, first] = process.argv.slice(2)
const REFERENCES = 3000

const program = Effect.gen(function*() {
  const service = yield* PathInfoService.PathInfoService
  for (let i = Number(first);; i++) {
    const references = Array.from({ length: REFERENCES }, () => ({
      storePath: randomStorePath("dep"),
      node: Option.some<Node.Node>(randomNode("directory"))
    }))
    const p = makeTestPathInfo({ name: `crash-${i}`, references })
    process.stdout.write(`begin ${i} ${p.basename}\n`)
    const started = performance.now()
    yield* service.put(p)
    process.stdout.write(`done ${i} ${Math.round(performance.now() - started)}\n`)
  }
})

Effect.runPromise(
  program.pipe(
    Effect.provide(
      SqlPathInfoService.layer().pipe(
        Layer.provide(StoreComposition.sqliteClientLayer(file, driver as StoreComposition.SqliteDriver))
      )
    )
  )
).catch((e) => {
  process.stderr.write(String(e) + "\n")
  process.exit(1)
})
