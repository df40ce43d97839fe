/**
 * The load-test harness itself: its memory check fires for a server that
 * keeps memory and stays quiet for one that does not, and a child stopped
 * with SIGTERM reports a clean exit.
 */
import { assert, describe, it } from "@effect/vitest"
import { formatReport, loadProblems, runLoad, spawnServerChild } from "@nixfx/pathinfo/loadTesting"
import * as Effect from "effect/Effect"
import { fileURLToPath } from "node:url"

const packageDir = fileURLToPath(new URL("..", import.meta.url))
const script = fileURLToPath(new URL("./support/leaky-server.ts", import.meta.url))
const MB = 1024 * 1024

const run = (mode: "leak" | "steady") =>
  Effect.gen(function*() {
    const server = yield* spawnServerChild({ packageDir, script, args: [mode] })
    const report = yield* runLoad({
      clients: 2,
      durationMs: 6_000,
      makeClient: () => Effect.void,
      operations: [{ name: "wait", weight: 1, run: () => Effect.as(Effect.sleep(10), "ok" as const) }],
      sample: server.sample,
      sampleEveryMs: 100
    })
    const exit = yield* server.stop
    return { report, exit }
  })

describe("loadTesting", () => {
  it.live("the memory check fires for a server that keeps memory, not for one that does not", () =>
    Effect.gen(function*() {
      const [leak, steady] = yield* Effect.all([run("leak"), run("steady")], { concurrency: "unbounded" })
      console.log(formatReport("harness check: a server keeping 16 MB more at every sample", leak.report))
      const problems = loadProblems(leak.report, { maxGrowthBytes: 8 * MB })
      assert.isTrue(problems.some((p) => p.startsWith("the server's heap (after GC) grew by")), problems.join("\n"))
      assert.isTrue(problems.some((p) => p.startsWith("the server's RSS grew by")), problems.join("\n"))
      assert.deepStrictEqual(loadProblems(steady.report, { maxGrowthBytes: 8 * MB }), [])
      for (const { exit } of [leak, steady]) {
        assert.strictEqual(exit.code, 0, exit.stderr)
        assert.isAtLeast(exit.stoppedMs, 0, "the child reported closing its scope")
      }
    }).pipe(Effect.scoped), 120_000)
})
