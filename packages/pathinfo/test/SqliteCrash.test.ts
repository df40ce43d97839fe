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

/**
 * Starts the child and lets it complete `minPuts` puts; then, when the next
 * put begins, kills it after a random fraction of the typical put time.
 */
const runAndKill = (file: string, driver: string, first: number, minPuts: number): Promise<Run> =>
  new Promise((resolve, reject) => {
    const proc: ChildProcess = spawn(
      process.execPath,
      [viteNode, "--root", packageDir, "--config", path.join(packageDir, "vitest.config.ts"), child, file, driver, String(first)],
      { cwd: packageDir, stdio: ["ignore", "pipe", "pipe"] }
    )
    let buffered = ""
    let err = ""
    let completed = 0
    let lastLine = ""
    let shortest = Infinity
    let armed = false
    proc.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString()
      const lines = buffered.split("\n")
      buffered = lines.pop()!
      for (const line of lines) {
        lastLine = line
        if (line.startsWith("done ")) {
          completed++
          shortest = Math.min(shortest, Number(line.split(" ")[2]))
        } else if (line.startsWith("begin ") && completed >= minPuts && !armed) {
          armed = true
          setTimeout(() => proc.kill("SIGKILL"), Math.random() * 0.9 * shortest)
        }
      }
    })
    proc.stderr!.on("data", (chunk: Buffer) => (err += chunk.toString()))
    proc.on("exit", (code, signal) => {
      if (signal !== "SIGKILL") return reject(new Error(`child exited on its own (${String(code)}): ${err}`))
      resolve({
        completed,
        inFlight: lastLine.startsWith("begin ") ? lastLine.split(" ")[2] : undefined
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
        for (let round = 0; round < 8 && (round < 3 || killedMidPut < 2); round++) {
          const r = yield* Effect.promise(() => runAndKill(file, driver, round * 1000, 2))
          total += r.completed
          if (r.inFlight !== undefined) killedMidPut++
        }
        assert.isAtLeast(killedMidPut, 2, "kills landed inside puts")

        const layer = SqlPathInfoService.layer().pipe(Layer.provideMerge(StoreComposition.sqliteClientLayer(file, driver)))
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
          // The interrupted puts are absent, or whole if the kill came after the
          // commit: the checks above hold for every stored path, those included.
        }).pipe(Effect.provide(layer))
        fs.rmSync(dir, { recursive: true, force: true })
      }), 240_000)
  }
})
