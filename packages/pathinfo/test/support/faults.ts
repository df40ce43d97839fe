/**
 * Fault injection for tests: runs the writer child (`fault-writer.mjs`) on a
 * store and SIGKILLs it (or another process) at a random moment inside a
 * chosen phase of a write; then checks that the store is consistent.
 */
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import type { Phase } from "@nixfx/pathinfo/internal/testWorkload"
import type { Store } from "@nixfx/pathinfo/StoreComposition"
import * as StoreVerify from "@nixfx/pathinfo/StoreVerify"
import * as Effect from "effect/Effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export const writerScript = fileURLToPath(new URL("./fault-writer.mjs", import.meta.url))

export type Target = Exclude<Phase, "blob">
export const targets: ReadonlyArray<Target> = ["large-blob", "directories", "pathinfo"]

/** How each round of a fault test went, summed. */
export interface Tally {
  rounds: number
  /** Rounds whose kill landed inside the targeted phase, by phase. */
  inside: Record<Target, number>
  /** Paths the writers reported complete. */
  completed: number
}

export const emptyTally = (): Tally => ({
  rounds: 0,
  inside: { "large-blob": 0, directories: 0, pathinfo: 0 },
  completed: 0
})

/** Duration (ms) last seen for each phase: the window a kill is aimed into. */
const typical: Record<string, number> = { "large-blob": 20, directories: 2, pathinfo: 2 }

export interface Round {
  /** The phase the writer was in when it died (its last line was `begin <phase>`). */
  readonly killedIn: Phase | undefined
  readonly completed: number
}

/**
 * Starts the writer on `url`; at the `nth` time it begins `target` (random 1–3),
 * waits a random part of that phase's usual duration, then SIGKILLs `victim`
 * (the writer itself by default; a server in other tests: the writer is then
 * killed right after).
 */
export const writeAndKill = (
  url: string,
  options: {
    readonly target: Target
    readonly first: number
    readonly largeBytes: number
    readonly victim?: ChildProcess
  }
): Promise<Round> =>
  new Promise((resolve, reject) => {
    const writer = spawn(process.execPath, [writerScript, url, String(options.first), String(options.largeBytes)], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    const nth = 1 + Math.floor(Math.random() * 3)
    let seen = 0
    let buffered = ""
    let stderr = ""
    let lastLine = ""
    let completed = 0
    let armed = false
    const kill = () => {
      if (options.victim !== undefined) options.victim.kill("SIGKILL")
      writer.kill("SIGKILL")
    }
    writer.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString()
      const lines = buffered.split("\n")
      buffered = lines.pop()!
      for (const line of lines) {
        lastLine = line
        const [word, phase, ms] = line.split(" ")
        if (word === "done") completed++
        if (word === "end" && !armed) typical[phase] = Number(ms)
        if (word === "begin" && phase === options.target && !armed && ++seen === nth) {
          armed = true
          setTimeout(kill, Math.random() * 0.9 * (typical[phase] ?? 1))
        }
      }
    })
    writer.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    writer.on("error", reject)
    writer.on("close", (code, signal) => {
      if (!armed) return reject(new Error(`writer exited before the kill (${String(code ?? signal)}): ${stderr}`))
      // The last whole line says where the writer really was when it died (it
      // may have gone on for a moment after the kill was decided).
      const [word, phase] = lastLine.split(" ")
      resolve({ killedIn: word === "begin" ? phase as Phase : undefined, completed })
    })
  })

/** Adds a round to the tally. */
export const count = (tally: Tally, target: Target, round: Round): void => {
  tally.rounds++
  tally.completed += round.completed
  if (round.killedIn === target) tally.inside[target]++
}

/**
 * Every blob file under a filesystem blob store's directory holds the bytes
 * its name promises (no partial blob under a digest). Returns the bad files
 * and how many temporary files were left behind (allowed: they are not
 * blobs).
 */
export const checkBlobFiles = (blobStoreDir: string): { readonly bad: ReadonlyArray<string>; readonly blobs: number; readonly leftovers: number } => {
  const bad: Array<string> = []
  let blobs = 0
  const blobsDir = path.join(blobStoreDir, "blobs")
  for (const fan of fs.existsSync(blobsDir) ? fs.readdirSync(blobsDir) : []) {
    for (const name of fs.readdirSync(path.join(blobsDir, fan))) {
      blobs++
      const file = path.join(blobsDir, fan, name)
      if (B3Digest.toHex(B3Digest.hash(fs.readFileSync(file))) !== name) bad.push(file)
    }
  }
  const tmpDir = path.join(blobStoreDir, "tmp")
  const leftovers = fs.existsSync(tmpDir) ? fs.readdirSync(tmpDir).length : 0
  return { bad, blobs, leftovers }
}

/** The store check over the whole store: its findings' messages and its counts. */
export const verifyStore = (store: Store) =>
  Effect.map(StoreVerify.run(store, { concurrency: 4 }), (report) => ({
    messages: report.findings.map((f) => f.message),
    counts: report.counts
  }))
