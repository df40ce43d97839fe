/**
 * Fault injection for tests (no vitest here, so tests of other packages can
 * use it): runs the writer child (`faultWriter.ts`, from `dist`) on a store
 * and SIGKILLs it (or another process) at a random moment inside a chosen
 * phase of a write; then checks that the store is consistent.
 */
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Effect from "effect/Effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { Store } from "../StoreComposition.js"
import * as StoreVerify from "../StoreVerify.js"
import type { Phase } from "./testWorkload.js"

/** The built writer: the same path from `src/internal` (tests) and `dist/internal`. */
export const writerScript = fileURLToPath(new URL("../../dist/internal/faultWriter.js", import.meta.url))

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

const emptyTally = (): Tally => ({
  rounds: 0,
  inside: { "large-blob": 0, directories: 0, pathinfo: 0 },
  completed: 0
})

/**
 * The shortest duration (ms) seen for each phase: a kill is aimed at a random
 * moment within it, so it lands inside the phase even when the phase runs
 * at its fastest (the first write of a process is much slower than later ones).
 */
const shortest: Record<string, number> = {}

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
    /** A module exporting `registry` (a StoreComposition.Registry) for URLs the built-in one lacks. */
    readonly registryModule?: string
  }
): Promise<Round> =>
  new Promise((resolve, reject) => {
    const args = [writerScript, url, String(options.first), String(options.largeBytes)]
    if (options.registryModule !== undefined) args.push(options.registryModule)
    const writer = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] })
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
        if (word === "end" && !armed) shortest[phase] = Math.min(shortest[phase] ?? Infinity, Number(ms))
        if (word === "begin" && phase === options.target && !armed && ++seen === nth) {
          armed = true
          setTimeout(kill, Math.random() * 0.9 * (shortest[phase] ?? 5))
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

/**
 * Runs kill rounds, aiming at each target in turn: at least `minRounds`, then
 * more while the time budget lasts (a fast machine tries more moments, a
 * slow one still finishes), at most `maxRounds`.
 */
export const killRounds = (
  options: { readonly minRounds: number; readonly maxRounds: number; readonly budgetMs: number },
  round: (index: number, target: Target) => Promise<Round>
): Effect.Effect<Tally> =>
  Effect.promise(async () => {
    const tally = emptyTally()
    const started = Date.now()
    for (let index = 0; index < options.maxRounds; index++) {
      if (index >= options.minRounds && Date.now() - started > options.budgetMs) break
      const target = targets[index % targets.length]
      const result = await round(index, target)
      tally.rounds++
      tally.completed += result.completed
      if (result.killedIn === target) tally.inside[target]++
    }
    return tally
  })

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
