/**
 * Fault injection over gRPC: a client uploading to a nixfx server (blobs
 * streamed through BlobService.Put, closures through DirectoryService.Put,
 * PathInfo.Put) is SIGKILLed mid-upload; and the server (over a SQLite store)
 * is SIGKILLed mid-upload and restarted. Afterwards the store check finds
 * nothing, both on the store itself and through the restarted server, and
 * every blob file holds the bytes its name promises.
 *
 * The client and server children run from `dist` (`npm test` builds first).
 */
import { assert, describe, it } from "@effect/vitest"
import * as GrpcClient from "@nixfx/pathinfo-grpc/GrpcClient"
import * as GrpcServer from "@nixfx/pathinfo-grpc/GrpcServer"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import * as Effect from "effect/Effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { checkBlobFiles, killRounds, type Tally, verifyStore, writeAndKill } from "@nixfx/pathinfo/internal/faults"

const LARGE_BYTES = 3_000_000
const serverScript = fileURLToPath(new URL("./support/fault-server.mjs", import.meta.url))
/** The writer child builds grpc+http:// stores with this package's registry (built). */
const registryModule = fileURLToPath(new URL("../dist/GrpcClient.js", import.meta.url))

/** Starts the server child on the store at `storeUrl`; resolves with it and its URL. */
const startServer = (storeUrl: string): Promise<{ readonly child: ChildProcess; readonly url: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [serverScript, storeUrl], { stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
      const newline = stdout.indexOf("\n")
      if (newline >= 0) resolve({ child, url: stdout.slice(0, newline) })
    })
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    child.on("exit", (code) => reject(new Error(`server exited (${code}) before it listened: ${stderr}`)))
  })

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()))

/** The checks after the kills, on the store directly and through a server. */
const checkAfter = (dir: string, serverUrl: string, tally: Tally, what: string) =>
  Effect.gen(function*() {
    const local = yield* Effect.scoped(Effect.flatMap(StoreComposition.build(`sqlite://${dir}`), verifyStore))
    assert.deepStrictEqual(local.messages, [], "the store check finds nothing")
    assert.isAtLeast(local.counts.paths, tally.completed, "every completed path is there")
    const remote = yield* Effect.scoped(
      Effect.flatMap(StoreComposition.build(serverUrl, GrpcClient.registry), verifyStore)
    )
    assert.deepStrictEqual(remote.messages, [], "the store check over gRPC finds nothing")
    assert.strictEqual(remote.counts.paths, local.counts.paths)
    const files = checkBlobFiles(StoreComposition.sqliteBlobsDirectory(dir))
    assert.deepStrictEqual(files.bad, [], "no partial blob under a digest")
    assert.isAtLeast(tally.inside["large-blob"], 1, "kills landed inside large blob uploads")
    console.log(
      `fault injection over gRPC, ${what}: ${tally.rounds} kills (inside large blob uploads ${
        tally.inside["large-blob"]
      }, directory puts ${tally.inside.directories}, PathInfo puts ${tally.inside.pathinfo}); ` +
        `${tally.completed} paths completed, ${local.counts.paths} in the store, ${files.blobs} blob files, ` +
        `${files.leftovers} temporary files left; store check: 0 findings`
    )
  })

describe("gRPC uploads cut by a kill leave a consistent store", () => {
  it.live("client killed mid-upload (blob stream, directory closure, PathInfo put)", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nixfx-faults-grpc-client-"))
      yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* StoreComposition.build(`sqlite://${dir}`)
        const server = yield* GrpcServer.make(store, { address: "127.0.0.1:0" })
        const tally = yield* killRounds(
          { minRounds: 6, maxRounds: 12, budgetMs: 15_000 },
          (index, target) =>
            writeAndKill(server.url, { target, first: index * 1000, largeBytes: LARGE_BYTES, registryModule })
        )
        // The server notices the cut streams; let it drop what they sent.
        yield* Effect.sleep("200 millis")
        yield* checkAfter(dir, server.url, tally, "client killed")
      }))
      fs.rmSync(dir, { recursive: true, force: true })
    }), 240_000)

  it.live("server over SQLite killed mid-upload, then restarted", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nixfx-faults-grpc-server-"))
      const storeUrl = `sqlite://${dir}`
      const tally = yield* killRounds(
        { minRounds: 4, maxRounds: 9, budgetMs: 15_000 },
        async (index, target) => {
          const server = await startServer(storeUrl)
          const round = await writeAndKill(server.url, {
            target,
            first: index * 1000,
            largeBytes: LARGE_BYTES,
            registryModule,
            victim: server.child
          })
          await exited(server.child)
          return round
        }
      )
      const restarted = yield* Effect.promise(() => startServer(storeUrl))
      yield* checkAfter(dir, restarted.url, tally, "server killed and restarted").pipe(
        Effect.ensuring(Effect.promise(() => {
          restarted.child.kill("SIGKILL")
          return exited(restarted.child)
        }))
      )
      fs.rmSync(dir, { recursive: true, force: true })
    }), 240_000)
})
