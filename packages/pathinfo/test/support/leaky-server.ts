/**
 * Child process of LoadTesting.test.ts: serves nothing, and with `leak`
 * keeps 16 MB more of heap at every memory sample (a leak tied to the
 * samples, not to the clock, so it shows however slow the machine is), so
 * the harness's memory check can be seen to fire.
 *
 * argv: leak | steady
 */
import { runServerChild } from "@nixfx/pathinfo/loadTesting"
import * as Effect from "effect/Effect"

const kept: Array<Array<number>> = []
const leak = process.argv[2] === "leak"

runServerChild(Effect.succeed({
  url: "none://",
  probe: () => {
    if (leak) {
      // pushed, not `new Array(n)`: a large preallocated array is a slow dictionary
      const block: Array<number> = []
      for (let i = 0; i < 2 * 1024 * 1024; i++) block.push(i)
      kept.push(block)
    }
    return { kept: kept.length }
  }
}))
