/**
 * Load tests of a store server: the server runs in a child process (so its
 * memory can be measured on its own and it can be stopped with a signal, as
 * an operator would), many clients drive a mix of operations against it for
 * a bounded time, and the figures come back as a report.
 *
 * - In the child: {@link runServerChild} serves until SIGTERM, answers
 *   memory samples (after a forced GC) on stdin, and reports how shutting
 *   down went.
 * - In the test: {@link spawnServerChild} starts such a child (TypeScript run
 *   by vite-node with the package's vitest aliases), {@link runLoad} runs the
 *   clients while sampling the child's memory, {@link formatReport} prints
 *   the figures.
 *
 * No vitest here: the child imports this module too.
 *
 * @since 0.1.0
 */
import * as Node from "@nixfx/castore-nodes/Node"
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as NarImport from "@nixfx/castore/NarImport"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import * as zlib from "node:zlib"
import * as Option from "effect/Option"
import * as PathInfo from "./PathInfo.js"
import * as StoreComposition from "./StoreComposition.js"

// ---------------------------------------------------------------------------
// the store served
// ---------------------------------------------------------------------------

/**
 * The NAR Nix wrote for every fixture path, by basename (from the
 * uncompressed cache; `fx-large`, which it lacks, from the brotli one).
 *
 * @since 0.1.0
 */
export const fixtureNars = (fixturesDir: string): Map<string, Uint8Array> => {
  const manifest = JSON.parse(fs.readFileSync(path.join(fixturesDir, "manifest.json"), "utf8")) as {
    readonly caches: Record<string, { readonly paths: ReadonlyArray<{ readonly storePath: string; readonly url: string }> }>
  }
  const nars = new Map<string, Uint8Array>()
  for (const p of manifest.caches.none.paths) {
    nars.set(path.basename(p.storePath), fs.readFileSync(path.join(fixturesDir, "caches/none", p.url)))
  }
  for (const p of manifest.caches.br.paths) {
    const basename = path.basename(p.storePath)
    if (!nars.has(basename)) {
      nars.set(basename, zlib.brotliDecompressSync(fs.readFileSync(path.join(fixturesDir, "caches/br", p.url))))
    }
  }
  return nars
}

/**
 * Imports the NAR of every PathInfo into the store's castore (checking that
 * it yields the PathInfo's root node) and puts the PathInfos, in order.
 *
 * @since 0.1.0
 */
export const fillStore = (
  store: StoreComposition.Store,
  pathInfos: ReadonlyArray<PathInfo.PathInfo>,
  nars: ReadonlyMap<string, Uint8Array>
): Effect.Effect<void, unknown> =>
  Effect.forEach(pathInfos, (p) =>
    Effect.gen(function*() {
      const nar = nars.get(p.basename)
      if (nar === undefined) return yield* Effect.fail(new Error(`no NAR for ${p.basename}`))
      const imported = yield* NarImport.ingest(Stream.make(nar)).pipe(
        Effect.provideService(BlobService.BlobService, store.blobService),
        Effect.provideService(DirectoryService.DirectoryService, store.directoryService)
      )
      if (!Node.equals(imported.root, p.node)) {
        return yield* Effect.fail(new Error(`${p.basename}: the imported root is not the PathInfo's node`))
      }
      yield* store.pathInfoService.put(p)
    }), { discard: true })

// ---------------------------------------------------------------------------
// the child
// ---------------------------------------------------------------------------

/**
 * What a served child reports besides its memory: counters it keeps (e.g.
 * the most calls seen running at once).
 *
 * @since 0.1.0
 */
export type Probe = () => Record<string, number>

/**
 * Runs `serve` (which starts a server and returns its URL) until SIGTERM,
 * then closes its scope (the server shuts down gracefully, the store
 * closes) and exits 0 (1 when serving failed). Protocol on stdout:
 * `listening <url>`, `sample <json>` for every `sample` line on stdin,
 * `stopped <milliseconds from SIGTERM>`. Run node with `--expose-gc` so that
 * samples are taken after a full collection.
 *
 * @since 0.1.0
 */
export const runServerChild = <E>(
  serve: Effect.Effect<{ readonly url: string; readonly probe?: Probe | undefined }, E, Scope.Scope>
): void => {
  let probe: Probe | undefined
  const fiber = Effect.runFork(Effect.scoped(Effect.gen(function*() {
    const served = yield* serve
    probe = served.probe
    process.stdout.write(`listening ${served.url}\n`)
    return yield* Effect.never
  })))
  const gc = (globalThis as { gc?: () => void }).gc
  readline.createInterface({ input: process.stdin }).on("line", (line) => {
    if (line.trim() !== "sample") return
    gc?.()
    const m = process.memoryUsage()
    process.stdout.write(
      `sample ${JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, external: m.external, ...probe?.() })}\n`
    )
  })
  let signalledAt: number | undefined
  process.on("SIGTERM", () => {
    if (signalledAt !== undefined) return
    signalledAt = performance.now()
    fiber.unsafeInterruptAsFork(fiber.id())
  })
  fiber.addObserver((exit) => {
    const failed = Exit.isFailure(exit) && !Exit.isInterrupted(exit)
    if (failed) process.stderr.write(`serving failed: ${String(Exit.isFailure(exit) ? exit.cause : "")}\n`)
    const took = signalledAt === undefined ? -1 : Math.round(performance.now() - signalledAt)
    process.stdout.write(`stopped ${took}\n`, () => process.exit(failed ? 1 : 0))
  })
}

// ---------------------------------------------------------------------------
// the test side
// ---------------------------------------------------------------------------

/**
 * One memory sample of the child, after a forced GC.
 *
 * @since 0.1.0
 */
export interface MemorySample {
  readonly atMs: number
  readonly rss: number
  readonly heapUsed: number
  readonly external: number
  readonly [counter: string]: number
}

/**
 * How the child ended after {@link ServerChild.stop}.
 *
 * @since 0.1.0
 */
export interface ChildExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  /** Milliseconds from SIGTERM until the server and store were closed (the child's own measure); -1 if never stopped. */
  readonly stoppedMs: number
  readonly stderr: string
}

/**
 * A server running in a child process.
 *
 * @since 0.1.0
 */
export interface ServerChild {
  readonly url: string
  readonly pid: number
  readonly sample: Effect.Effect<MemorySample>
  /** Sends SIGTERM and waits for the child to exit. */
  readonly stop: Effect.Effect<ChildExit>
}

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url))

/**
 * @since 0.1.0
 */
export interface SpawnOptions {
  readonly packageDir: string
  readonly script: string
  readonly args?: ReadonlyArray<string> | undefined
  /** How long to wait for `listening` (default 60 s: the first transform of the sources is slow on a busy machine). */
  readonly startTimeoutMs?: number | undefined
}

/**
 * Starts `script` (a TypeScript file calling {@link runServerChild}) under
 * vite-node with the vitest config of `packageDir` (so `@nixfx/…` imports
 * resolve to sources, as in tests) and `--expose-gc`; waits until it
 * listens. The child is killed when the scope closes if still running.
 *
 * @since 0.1.0
 */
export const spawnServerChild = (options: SpawnOptions): Effect.Effect<ServerChild, Error, Scope.Scope> =>
  Effect.map(Effect.acquireRelease(startChild(options), ({ kill }) => Effect.sync(kill)), ({ child }) => child)

const startChild = (options: SpawnOptions) =>
  Effect.async<{ readonly child: ServerChild; readonly kill: () => void }, Error>((resume) => {
    const viteNode = path.join(repoRoot, "node_modules/vite-node/vite-node.mjs")
    const proc: ChildProcess = spawn(
      process.execPath,
      [
        "--expose-gc",
        viteNode,
        "--root",
        options.packageDir,
        "--config",
        path.join(options.packageDir, "vitest.config.ts"),
        options.script,
        ...(options.args ?? [])
      ],
      { cwd: options.packageDir, stdio: ["pipe", "pipe", "pipe"] }
    )
    const startedAt = performance.now()
    let stderr = ""
    let stoppedMs = -1
    let listening = false
    const sampleWaiters: Array<(s: MemorySample) => void> = []
    const exitWaiters: Array<(e: ChildExit) => void> = []
    let exited: ChildExit | undefined
    proc.stderr!.on("data", (c: Buffer) => {
      stderr += c.toString()
      if (stderr.length > 64 * 1024) stderr = stderr.slice(-32 * 1024)
    })
    const timer = setTimeout(() => {
      if (listening) return
      proc.kill("SIGKILL")
      resume(Effect.fail(new Error(`the server child did not start listening in time: ${stderr}`)))
    }, options.startTimeoutMs ?? 60_000)
    readline.createInterface({ input: proc.stdout! }).on("line", (line) => {
      const space = line.indexOf(" ")
      const word = space < 0 ? line : line.slice(0, space)
      const rest = space < 0 ? "" : line.slice(space + 1)
      if (word === "listening" && !listening) {
        listening = true
        clearTimeout(timer)
        const kill = () => {
          if (exited === undefined) proc.kill("SIGKILL")
        }
        resume(Effect.succeed({ child: child(rest), kill }))
      } else if (word === "sample") {
        const s = { atMs: performance.now() - startedAt, ...JSON.parse(rest) } as MemorySample
        sampleWaiters.shift()?.(s)
      } else if (word === "stopped") {
        stoppedMs = Number(rest)
      }
    })
    proc.on("exit", (code, signal) => {
      clearTimeout(timer)
      exited = { code, signal, stoppedMs, stderr }
      for (const w of exitWaiters.splice(0)) w(exited)
      if (!listening) resume(Effect.fail(new Error(`the server child exited (${code ?? signal}) before listening: ${stderr}`)))
    })
    proc.on("error", (e) => {
      if (!listening) resume(Effect.fail(e))
    })
    const waitExit = Effect.async<ChildExit>((resumeExit) => {
      if (exited !== undefined) return resumeExit(Effect.succeed(exited))
      exitWaiters.push((e) => resumeExit(Effect.succeed(e)))
    })
    const child = (url: string): ServerChild => ({
      url,
      pid: proc.pid!,
      sample: Effect.async<MemorySample>((resumeSample) => {
        sampleWaiters.push((s) => resumeSample(Effect.succeed(s)))
        proc.stdin!.write("sample\n")
      }),
      stop: Effect.suspend(() => {
        if (exited === undefined) proc.kill("SIGTERM")
        return waitExit
      })
    })
    return Effect.sync(() => proc.kill("SIGKILL"))
  })

// ---------------------------------------------------------------------------
// running the load
// ---------------------------------------------------------------------------

/**
 * What one operation came to: done (`ok`), or refused on purpose by a bound
 * (`busy`: a 503 with Retry-After, counted apart from errors). A wrong
 * answer is a failure of the operation's effect.
 *
 * @since 0.1.0
 */
export type Outcome = "ok" | "busy"

/**
 * A kind of operation and how often it is picked.
 *
 * @since 0.1.0
 */
export interface Operation<C> {
  readonly name: string
  readonly weight: number
  readonly run: (client: C) => Effect.Effect<Outcome, unknown>
}

/**
 * @since 0.1.0
 */
export interface KindStats {
  readonly name: string
  readonly ok: number
  readonly busy: number
  readonly errors: number
  readonly p50Ms: number
  readonly p99Ms: number
}

/**
 * @since 0.1.0
 */
export interface LoadReport {
  readonly clients: number
  readonly durationMs: number
  /** Operations finished (ok, busy or failed). */
  readonly requests: number
  readonly ok: number
  readonly busy: number
  readonly errors: number
  /** The first few failures, as text. */
  readonly firstErrors: ReadonlyArray<string>
  readonly p50Ms: number
  readonly p99Ms: number
  readonly kinds: ReadonlyArray<KindStats>
  readonly samples: ReadonlyArray<MemorySample>
  /** Memory taken before the load began. */
  readonly before: MemorySample | undefined
}

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]

const describeError = (e: unknown): string =>
  e instanceof Error ? `${e.name}: ${e.message}` : typeof e === "object" && e !== null && "_tag" in e
  ? `${String((e as { _tag: unknown })._tag)}: ${String((e as { message?: unknown }).message ?? JSON.stringify(e))}`
  : String(e)

/**
 * Runs `clients` clients (each made once by `makeClient`, in its own scope)
 * for `durationMs`: each picks an operation by weight (client `i` starts
 * with operation `i` modulo their number), runs it, and starts the next
 * until time is up. Meanwhile `sample` (the child's memory) is
 * taken every `sampleEveryMs`.
 *
 * @since 0.1.0
 */
export const runLoad = <C, E>(options: {
  readonly clients: number
  readonly durationMs: number
  readonly makeClient: (index: number) => Effect.Effect<C, E, Scope.Scope>
  readonly operations: ReadonlyArray<Operation<C>>
  readonly sample?: Effect.Effect<MemorySample> | undefined
  readonly sampleEveryMs?: number | undefined
}): Effect.Effect<LoadReport, E> =>
  Effect.gen(function*() {
    const totalWeight = options.operations.reduce((n, o) => n + o.weight, 0)
    const pick = (): Operation<C> => {
      let r = Math.random() * totalWeight
      for (const o of options.operations) {
        r -= o.weight
        if (r < 0) return o
      }
      return options.operations[options.operations.length - 1]
    }
    const latencies = new Map<string, Array<number>>(options.operations.map((o) => [o.name, []]))
    const counts = new Map(options.operations.map((o) => [o.name, { ok: 0, busy: 0, errors: 0 }]))
    const firstErrors: Array<string> = []
    const samples: Array<MemorySample> = []
    const before = options.sample === undefined ? undefined : yield* options.sample

    const sampler = options.sample === undefined ? undefined : yield* Effect.fork(
      Effect.forever(Effect.zipRight(Effect.sleep(options.sampleEveryMs ?? 500), Effect.tap(options.sample, (s) => {
        samples.push(s)
      })))
    )
    const started = performance.now()
    const deadline = started + options.durationMs
    const client = (index: number) =>
      Effect.scoped(Effect.gen(function*() {
        const c = yield* options.makeClient(index)
        // the first operations go round the list, so that each kind runs however slow the machine is
        for (let n = 0; performance.now() < deadline; n++) {
          const op = n === 0 ? options.operations[index % options.operations.length] : pick()
          const t0 = performance.now()
          const result = yield* Effect.either(Effect.suspend(() => op.run(c)))
          const took = performance.now() - t0
          const count = counts.get(op.name)!
          if (result._tag === "Left") {
            count.errors++
            if (firstErrors.length < 10) firstErrors.push(`${op.name}: ${describeError(result.left)}`)
          } else {
            count[result.right]++
            latencies.get(op.name)!.push(took)
          }
        }
      }))
    yield* Effect.forEach(Array.from({ length: options.clients }, (_, i) => i), client, {
      concurrency: "unbounded",
      discard: true
    })
    const durationMs = performance.now() - started
    if (sampler !== undefined) yield* Fiber.interrupt(sampler)
    if (options.sample !== undefined) samples.push(yield* options.sample)

    const all = Array.from(latencies.values()).flat().sort((a, b) => a - b)
    const kinds = options.operations.map((o): KindStats => {
      const sorted = latencies.get(o.name)!.sort((a, b) => a - b)
      const c = counts.get(o.name)!
      return { name: o.name, ...c, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99) }
    })
    const sum = (f: (k: KindStats) => number) => kinds.reduce((n, k) => n + f(k), 0)
    return {
      clients: options.clients,
      durationMs,
      requests: sum((k) => k.ok + k.busy + k.errors),
      ok: sum((k) => k.ok),
      busy: sum((k) => k.busy),
      errors: sum((k) => k.errors),
      firstErrors,
      p50Ms: percentile(all, 0.5),
      p99Ms: percentile(all, 0.99),
      kinds,
      samples,
      before
    }
  })

/**
 * How stopping a server in the middle of writes went.
 *
 * @since 0.1.0
 */
export interface StopReport<A> {
  readonly clients: number
  /** What the server acknowledged, in order. */
  readonly acknowledged: ReadonlyArray<A>
  /** How many were acknowledged when SIGTERM was sent. */
  readonly beforeSignal: number
  /** How the clients' last writes failed, by kind (see `classify`), with counts. */
  readonly refusals: ReadonlyMap<string, number>
  readonly exit: ChildExit
}

/**
 * Stops the server in the middle of writes: `clients` clients each write
 * (with the function `makeWriter` gives them) until their first failure;
 * once `signalAfter` writes (default one per client) were acknowledged, the
 * server gets SIGTERM. Each client's failure is named by `classify`. Check
 * afterwards that every acknowledged write is in the store.
 *
 * @since 0.1.0
 */
export const stopMidWrites = <A, E, EM>(options: {
  readonly server: ServerChild
  readonly clients: number
  readonly makeWriter: (index: number) => Effect.Effect<Effect.Effect<A, E>, EM, Scope.Scope>
  readonly classify: (error: E) => string
  readonly signalAfter?: number | undefined
}): Effect.Effect<StopReport<A>, Error | EM> =>
  Effect.gen(function*() {
    const acknowledged: Array<A> = []
    const refusals = new Map<string, number>()
    const client = (index: number) =>
      Effect.scoped(Effect.gen(function*() {
        const write = yield* options.makeWriter(index)
        for (;;) {
          const r = yield* Effect.either(write)
          if (r._tag === "Right") {
            acknowledged.push(r.right)
            continue
          }
          const kind = options.classify(r.left)
          refusals.set(kind, (refusals.get(kind) ?? 0) + 1)
          return
        }
      }))
    const writing = yield* Effect.fork(
      Effect.forEach(Array.from({ length: options.clients }, (_, i) => i), client, {
        concurrency: "unbounded",
        discard: true
      })
    )
    const signalAfter = options.signalAfter ?? options.clients
    yield* Effect.sleep(50).pipe(
      Effect.repeat({ until: () => acknowledged.length >= signalAfter }),
      Effect.timeoutFail({
        duration: "60 seconds",
        onTimeout: () => new Error(`only ${acknowledged.length} writes were acknowledged in 60 s`)
      })
    )
    const beforeSignal = acknowledged.length
    const exit = yield* options.server.stop
    yield* Fiber.join(writing)
    return { clients: options.clients, acknowledged, beforeSignal, refusals, exit }
  })

/**
 * Opens the store at `url` as the next process would and names the
 * PathInfos it lacks or holds otherwise, and those for which `check` (say,
 * that a blob is there) answers false.
 *
 * @since 0.1.0
 */
export const missingFromStore = <E = never>(
  url: string,
  pathInfos: ReadonlyArray<PathInfo.PathInfo>,
  check?: (store: StoreComposition.Store, pathInfo: PathInfo.PathInfo) => Effect.Effect<boolean, E>
): Effect.Effect<Array<string>, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    const store = yield* StoreComposition.build(url)
    const missing: Array<string> = []
    for (const p of pathInfos) {
      const found = yield* store.pathInfoService.get(p.storePath.digest)
      const whole = Option.isSome(found) && PathInfo.equals(found.value, p) &&
        (check === undefined || (yield* check(store, p)))
      if (!whole) missing.push(p.basename)
    }
    return missing
  }))

/**
 * A stop as one line of text.
 *
 * @since 0.1.0
 */
export const formatStop = <A>(title: string, report: StopReport<A>, missing: number): string =>
  `== ${title}: ${report.clients} clients writing; SIGTERM after ${report.beforeSignal} acknowledged writes; ` +
  `${report.acknowledged.length} acknowledged in all (${
    report.acknowledged.length - report.beforeSignal
  } after SIGTERM was sent); ${missing} missing after reopening the store; the clients' last writes: ${
    JSON.stringify(Object.fromEntries(report.refusals))
  }; the server stopped in ${report.exit.stoppedMs} ms, exit code ${report.exit.code}`

/**
 * Memory growth over the run: the median of the samples of the second half
 * minus the median of the first half (bytes), for RSS and the heap after GC.
 *
 * @since 0.1.0
 */
export const memoryGrowth = (report: LoadReport): { readonly rss: number; readonly heapUsed: number } => {
  const s = report.samples
  if (s.length < 2) return { rss: 0, heapUsed: 0 }
  const mid = s[0].atMs + (s[s.length - 1].atMs - s[0].atMs) / 2
  const first = s.filter((x) => x.atMs <= mid)
  const second = s.filter((x) => x.atMs > mid)
  const median = (xs: ReadonlyArray<MemorySample>, f: (x: MemorySample) => number) =>
    percentile(xs.map(f).sort((a, b) => a - b), 0.5)
  return {
    rss: median(second, (x) => x.rss) - median(first, (x) => x.rss),
    heapUsed: median(second, (x) => x.heapUsed) - median(first, (x) => x.heapUsed)
  }
}

/**
 * What is wrong with a run, as sentences (none when it held): errors, an
 * operation that never succeeded, too few memory samples, RSS or heap (after
 * GC) growing by `maxGrowthBytes` or more between the halves of the run.
 *
 * @since 0.1.0
 */
export const loadProblems = (
  report: LoadReport,
  limits: { readonly maxGrowthBytes: number; readonly minSamples?: number | undefined }
): Array<string> => {
  const problems: Array<string> = []
  if (report.errors > 0) problems.push(`${report.errors} errors, the first: ${report.firstErrors.join("; ")}`)
  for (const k of report.kinds) if (k.ok === 0) problems.push(`${k.name} never succeeded`)
  const minSamples = limits.minSamples ?? 3
  if (report.samples.length < minSamples) {
    problems.push(`only ${report.samples.length} memory samples (at least ${minSamples} wanted)`)
  }
  const growth = memoryGrowth(report)
  if (growth.rss >= limits.maxGrowthBytes) problems.push(`the server's RSS grew by ${mb(growth.rss)}`)
  if (growth.heapUsed >= limits.maxGrowthBytes) problems.push(`the server's heap (after GC) grew by ${mb(growth.heapUsed)}`)
  return problems
}

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`
const ms = (n: number): string => `${n.toFixed(1)} ms`

/**
 * The figures as text: totals, rate, latency percentiles, per-operation
 * lines, memory at the start and end and the growth.
 *
 * @since 0.1.0
 */
export const formatReport = (title: string, report: LoadReport): string => {
  const seconds = report.durationMs / 1000
  const growth = memoryGrowth(report)
  const last = report.samples[report.samples.length - 1]
  const lines = [
    `== ${title}`,
    `${report.clients} clients for ${seconds.toFixed(1)} s: ${report.requests} requests (${
      (report.requests / seconds).toFixed(0)
    }/s), ${report.ok} ok, ${report.busy} busy (503 + Retry-After), ${report.errors} errors; latency p50 ${
      ms(report.p50Ms)
    }, p99 ${ms(report.p99Ms)}`,
    ...report.kinds.map((k) =>
      `  ${k.name.padEnd(24)} ${String(k.ok).padStart(7)} ok ${String(k.busy).padStart(5)} busy ${
        String(k.errors).padStart(3)
      } errors  p50 ${ms(k.p50Ms).padStart(9)}  p99 ${ms(k.p99Ms).padStart(9)}`
    )
  ]
  if (report.before !== undefined && last !== undefined) {
    lines.push(
      `server RSS ${mb(report.before.rss)} before, ${mb(last.rss)} at the end (peak ${
        mb(Math.max(...report.samples.map((s) => s.rss)))
      }); heap after GC ${mb(report.before.heapUsed)} → ${mb(last.heapUsed)}; growth second half vs first: RSS ${
        mb(growth.rss)
      }, heap ${mb(growth.heapUsed)} (${report.samples.length} samples)`
    )
  }
  for (const e of report.firstErrors) lines.push(`  error: ${e}`)
  return lines.join("\n")
}
