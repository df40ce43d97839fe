/**
 * A process killed (SIGKILL) in the middle of a SQLite `put` leaves no half
 * PathInfo behind: after reopening, every stored PathInfo has all its
 * reference rows, and the put that was cut short is either whole or absent.
 */
import { assert, describe, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import * as SqlPathInfoService from "@nixfx/pathinfo/SqlPathInfoService"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const packageDir = fileURLToPath(new URL("..", import.meta.url))
const repoRoot = path.resolve(packageDir, "../..")
const viteNode = path.join(repoRoot, "node_modules/vite-node/vite-node.mjs")
const child = fileURLToPath(new URL("./support/crash-child.ts", import.meta.url))

interface Run {
  readonly completed: number
  readonly inFlight: string | undefined
}

/** Starts the child, lets it complete at least `minPuts` puts, then kills it at a random moment. */
const runAndKill = (file: string, driver: string, first: number, minPuts: number): Promise<Run> =>
  new Promise((resolve, reject) => {
    const proc: ChildProcess = spawn(
      process.execPath,
      [viteNode, "--root", packageDir, "--config", path.join(packageDir, "vitest.config.ts"), child, file, driver, String(first)],
      { cwd: packageDir, stdio: ["ignore", "pipe", "pipe"] }
    )
    let out = ""
    let err = ""
    let completed = 0
    let killTimer: NodeJS.Timeout | undefined
    proc.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString()
      const done = out.split("\n").filter((l) => l.startsWith("done ")).length
      if (done > completed) completed = done
      if (completed >= minPuts && killTimer === undefined) {
        // somewhere within the next few puts; a put takes most of the loop's time
        killTimer = setTimeout(() => proc.kill("SIGKILL"), 5 + Math.random() * 400)
      }
    })
    proc.stderr!.on("data", (chunk: Buffer) => (err += chunk.toString()))
    proc.on("exit", (_code, signal) => {
      if (signal !== "SIGKILL") return reject(new Error(`child exited on its own (${String(_code)}): ${err}`))
      const lines = out.trim().split("\n")
      const last = lines[lines.length - 1] ?? ""
      resolve({
        completed: lines.filter((l) => l.startsWith("done ")).length,
        inFlight: last.startsWith("begin ") ? last.split(" ")[2] : undefined
      })
    })
    proc.on("error", reject)
  })

describe("SQLite put killed mid-transaction", () => {
  for (const driver of ["better-sqlite3", "libsql"] as const) {
    it.live(`leaves only whole PathInfos (${driver})`, () =>
      Effect.gen(function*() {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nixfx-crash-"))
        const file = path.join(dir, "store.sqlite")
        let total = 0
        let killedMidPut = 0
        const inFlight: Array<string> = []
        for (let round = 0; round < 4; round++) {
          const r = yield* Effect.promise(() => runAndKill(file, driver, round * 1000, 2))
          total += r.completed
          if (r.inFlight !== undefined) {
            killedMidPut++
            inFlight.push(r.inFlight)
          }
        }
        assert.isAtLeast(killedMidPut, 1, "at least one kill landed inside a put")

        const layer = Layer.merge(
          SqlPathInfoService.layer(),
          Layer.empty
        ).pipe(Layer.provideMerge(StoreComposition.sqliteClientLayer(file, driver)))
        yield* Effect.gen(function*() {
          const service = yield* PathInfoService.PathInfoService
          // decoding checks that each path has exactly its reference_count reference rows
          const all = Chunk.toReadonlyArray(yield* Stream.runCollect(service.list))
          assert.isAtLeast(all.length, total, "every completed put is there")
          for (const p of all) assert.strictEqual(p.references.length, 3000, p.basename)
          const sql = yield* SqlClient.SqlClient
          const orphans = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM nixfx_pathinfo_reference r
            WHERE NOT EXISTS (SELECT 1 FROM nixfx_pathinfo p WHERE p.digest = r.referrer)`
          assert.strictEqual(Number(orphans[0].n), 0, "no reference rows without their PathInfo")
          const counts = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM nixfx_pathinfo_reference`
          assert.strictEqual(Number(counts[0].n), all.length * 3000)
          const basenames = new Set(all.map((p) => p.basename))
          // the interrupted puts are absent (or, if the commit made it, whole — checked above)
          for (const b of inFlight) if (basenames.has(b)) assert.isTrue(all.some((p) => p.basename === b))
        }).pipe(Effect.provide(layer))
        fs.rmSync(dir, { recursive: true, force: true })
      }), 120_000)
  }
})
