/**
 * SHA-256 of a NAR stream, computed off the main thread when the stream is
 * large.
 *
 * Importing a NAR hashes every byte twice (BLAKE3 per blob in the blob
 * service, SHA-256 of the whole NAR here), and SHA-256 is the most expensive
 * step of an import into memory. Bytes are copied into 1 MiB batches. Until
 * the first batch fills, nothing else happens, so a small NAR (the common
 * case) is hashed on the main thread at `digest` and never pays for a worker
 * or a message. Once a batch fills, a shared worker thread takes over: each
 * full batch is transferred to it, hashed there in parallel with parsing and
 * blob hashing, and its buffer comes back for reuse. At most a few batches
 * are in flight; when all are, `update` waits for one to return
 * (backpressure).
 *
 * If no worker can be started, hashing stays on the main thread.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Crypto from "node:crypto"
import { Worker } from "node:worker_threads"

const BATCH = 1024 * 1024
const FIRST_CAPACITY = 64 * 1024
const IN_FLIGHT = 6

const workerSource = `
const { parentPort } = require("node:worker_threads")
const { createHash } = require("node:crypto")
const sessions = new Map()
parentPort.on("message", (m) => {
  if (m.op === "update") {
    let h = sessions.get(m.id)
    if (h === undefined) { h = createHash("sha256"); sessions.set(m.id, h) }
    h.update(new Uint8Array(m.buf, 0, m.len))
    parentPort.postMessage({ op: "free", buf: m.buf, pooled: m.pooled }, [m.buf])
  } else if (m.op === "digest") {
    const h = sessions.get(m.id) ?? createHash("sha256")
    sessions.delete(m.id)
    if (m.len > 0) h.update(new Uint8Array(m.buf, 0, m.len))
    parentPort.postMessage({ op: "digest", id: m.id, digest: new Uint8Array(h.digest()), buf: m.buf, pooled: m.pooled }, [m.buf])
  } else if (m.op === "drop") {
    sessions.delete(m.id)
  }
})
`

// Buffers change identity when transferred, so each message says whether its
// buffer belongs to the pool (`pooled`) or is a session's first batch.
type Message =
  | { readonly op: "free"; readonly buf: ArrayBuffer; readonly pooled: boolean }
  | {
    readonly op: "digest"
    readonly id: number
    readonly digest: Uint8Array
    readonly buf: ArrayBuffer
    readonly pooled: boolean
  }

/** The shared hashing thread: started on first use, referenced only while a session uses it. */
class HashThread {
  private readonly worker: Worker
  private readonly free: Array<ArrayBuffer> = []
  private allocated = 0
  private readonly bufferWaiters = new Set<() => void>()
  private readonly digestWaiters = new Map<number, (digest: Uint8Array | Error) => void>()
  private nextId = 1
  private active = 0
  broken: Error | undefined = undefined

  constructor() {
    this.worker = new Worker(workerSource, { eval: true })
    this.worker.unref()
    this.worker.on("message", (m: Message) => {
      this.release(m.buf, m.pooled)
      if (m.op === "digest") {
        const waiter = this.digestWaiters.get(m.id)
        this.digestWaiters.delete(m.id)
        waiter?.(m.digest)
      }
    })
    this.worker.on("error", (e) => this.fail(e))
    this.worker.on("exit", (code) => this.fail(new Error(`the SHA-256 worker thread exited with code ${code}`)))
  }

  private fail(e: Error): void {
    if (this.broken === undefined) this.broken = e
    if (shared === this) shared = undefined
    for (const w of this.digestWaiters.values()) w(e)
    this.digestWaiters.clear()
    for (const w of this.bufferWaiters) w()
    this.bufferWaiters.clear()
  }

  open(): number {
    if (this.active++ === 0) this.worker.ref()
    return this.nextId++
  }

  close(id: number, drop: boolean): void {
    if (drop && this.broken === undefined) this.worker.postMessage({ op: "drop", id })
    if (--this.active === 0) this.worker.unref()
  }

  /** A free batch buffer, or `undefined` when all are in flight. */
  take(): ArrayBuffer | undefined {
    const buf = this.free.pop()
    if (buf !== undefined) return buf
    if (this.allocated < IN_FLIGHT) {
      this.allocated++
      return new ArrayBuffer(BATCH)
    }
    return undefined
  }

  /** Waits until a buffer comes back (or the worker broke). */
  readonly awaitBuffer: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.free.length > 0 || this.allocated < IN_FLIGHT || this.broken !== undefined) {
      return resume(Effect.void)
    }
    const waiter = () => resume(Effect.void)
    this.bufferWaiters.add(waiter)
    return Effect.sync(() => this.bufferWaiters.delete(waiter))
  })

  private release(buf: ArrayBuffer, pooled: boolean): void {
    if (!pooled) {
      // A session's first batch: adopt it while the pool has room.
      if (this.allocated >= IN_FLIGHT || buf.byteLength !== BATCH) return
      this.allocated++
    }
    this.free.push(buf)
    const next = this.bufferWaiters.values().next()
    if (!next.done) {
      this.bufferWaiters.delete(next.value)
      next.value()
    }
  }

  send(id: number, buf: ArrayBuffer, len: number, pooled: boolean): void {
    this.worker.postMessage({ op: "update", id, buf, len, pooled }, [buf])
  }

  digest(id: number, buf: ArrayBuffer, len: number, pooled: boolean): Effect.Effect<Uint8Array | Error> {
    return Effect.async<Uint8Array | Error>((resume) => {
      if (this.broken !== undefined) return resume(Effect.succeed(this.broken))
      this.digestWaiters.set(id, (d) => resume(Effect.succeed(d)))
      this.worker.postMessage({ op: "digest", id, buf, len, pooled }, [buf])
      return Effect.sync(() => this.digestWaiters.delete(id))
    })
  }
}

let shared: HashThread | undefined = undefined
let unavailable = false

const sharedThread = (): HashThread | undefined => {
  if (shared !== undefined || unavailable) return shared
  try {
    shared = new HashThread()
  } catch {
    unavailable = true
  }
  return shared
}

const brokenDefect = (e: Error) => Effect.die(new Error(`NAR SHA-256: ${e.message}`, { cause: e }))

/** SHA-256 over a sequence of byte chunks. */
export class NarSha256 {
  /** Main-thread hash, when no worker could be used. */
  private inline: Crypto.Hash | undefined = undefined
  private thread: HashThread | undefined = undefined
  private id = 0
  private sentAny = false
  private view: Uint8Array | undefined = new Uint8Array(FIRST_CAPACITY)
  /** Whether `view`'s buffer came from the pool (the first batch's does not). */
  private pooled = false
  private fill = 0

  /**
   * Adds bytes. Returns an Effect only when it has to wait for a batch buffer
   * to come back from the worker; `undefined` otherwise (the common case).
   */
  update(bytes: Uint8Array): Effect.Effect<void> | undefined {
    if (this.inline !== undefined) {
      this.inline.update(bytes)
      return undefined
    }
    let p = 0
    const len = bytes.length
    while (p < len) {
      let view = this.view
      if (view === undefined) {
        const t = this.thread!
        if (t.broken !== undefined) return brokenDefect(t.broken)
        const next = t.take()
        if (next === undefined) {
          const rest = bytes.subarray(p)
          return Effect.flatMap(t.awaitBuffer, () => this.update(rest) ?? Effect.void)
        }
        view = this.view = new Uint8Array(next)
        this.pooled = true
        this.fill = 0
      } else if (view.length < BATCH && this.fill + (len - p) > view.length) {
        // The first batch grows as needed, so a small NAR never allocates a full batch.
        let capacity = view.length * 2
        while (capacity < BATCH && capacity < this.fill + (len - p)) capacity *= 2
        const grown = new Uint8Array(Math.min(capacity, BATCH))
        grown.set(view.subarray(0, this.fill))
        view = this.view = grown
      }
      const n = Math.min(view.length - this.fill, len - p)
      view.set(p === 0 && n === len ? bytes : bytes.subarray(p, p + n), this.fill)
      this.fill += n
      p += n
      if (this.fill === BATCH) {
        const fallback = this.sendBatch()
        if (fallback !== undefined) {
          fallback.update(bytes.subarray(p))
          return undefined
        }
      }
    }
    return undefined
  }

  /**
   * Hands a full batch to the worker, starting a session on the first one.
   * Without a worker, switches to hashing on the main thread and returns that hash.
   */
  private sendBatch(): Crypto.Hash | undefined {
    const view = this.view!
    if (this.thread === undefined) {
      const t = sharedThread()
      if (t === undefined || t.broken !== undefined) {
        this.inline = Crypto.createHash("sha256").update(view)
        this.view = undefined
        return this.inline
      }
      this.thread = t
      this.id = t.open()
    }
    this.thread.send(this.id, view.buffer as ArrayBuffer, this.fill, this.pooled)
    this.sentAny = true
    this.view = undefined
    this.fill = 0
    return undefined
  }

  /** The digest of everything added. */
  readonly digest: Effect.Effect<Uint8Array> = Effect.suspend(() => {
    if (this.inline !== undefined) return Effect.succeed(new Uint8Array(this.inline.digest()))
    const t = this.thread
    if (t === undefined) {
      const h = Crypto.createHash("sha256").update(this.view!.subarray(0, this.fill))
      return Effect.succeed(new Uint8Array(h.digest()))
    }
    const finish = (buf: ArrayBuffer, len: number, pooled: boolean) =>
      Effect.flatMap(t.digest(this.id, buf, len, pooled), (d) => {
        t.close(this.id, false)
        this.thread = undefined
        return d instanceof Error ? brokenDefect(d) : Effect.succeed(d)
      })
    if (this.view !== undefined) return finish(this.view.buffer as ArrayBuffer, this.fill, this.pooled)
    const spare = t.take()
    if (spare !== undefined) return finish(spare, 0, true)
    return Effect.flatMap(t.awaitBuffer, () => {
      const buf = t.take()
      return buf === undefined ? brokenDefect(t.broken ?? new Error("no batch buffer came back")) : finish(buf, 0, true)
    })
  })

  /** Ends the worker session of a hash abandoned before its digest arrived (no-op after). */
  dispose(): void {
    if (this.thread !== undefined) {
      this.thread.close(this.id, this.sentAny)
      this.thread = undefined
    }
  }
}
