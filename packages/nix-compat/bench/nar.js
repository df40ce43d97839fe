// NAR reader/writer throughput.
//
// Builds a NAR of about 240 MB in memory (many small files in nested
// directories, a few large files), then measures:
//   - read:   the synchronous push parser over 64 KiB input chunks, events
//             consumed by a no-op handler, contents discarded;
//   - read+collect: the same with Nar.EventCollector (event objects, as the
//             Stream adapter produces them);
//   - read via Nar.events (Effect Stream, one batch of events per chunk);
//   - write:  the same events into Nar.makeWriter, output discarded.
// Usage: node packages/nix-compat/bench/nar.js [targetMB]
import { Chunk, Effect, Stream } from "effect"
import { performance } from "node:perf_hooks"
import { Nar } from "../dist/index.js"

const targetMB = Number(process.argv[2] ?? 240)
const INPUT_CHUNK = 64 * 1024
const RUNS = 3

// Deterministic pseudo-random pool that file contents are cut from.
const pool = new Uint8Array(16 * 1024 * 1024)
{
  let x = 0x12345678
  const words = new Uint32Array(pool.buffer)
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    words[i] = x >>> 0
  }
}

const enc = new TextEncoder()
const names = Array.from({ length: 1000 }, (_, i) => enc.encode(`f${String(i).padStart(4, "0")}`))
const dirNames = Array.from({ length: 100 }, (_, i) => enc.encode(`d${String(i).padStart(3, "0")}`))
const bigNames = Array.from({ length: 100 }, (_, i) => enc.encode(`large-${String(i).padStart(3, "0")}`))

/**
 * Drives `h` with the events of the benchmark archive:
 * /large-NNN (8 MiB each, fed in 1 MiB chunks) and /dNNN/dNNN/fNNNN small files
 * (0 to 4 KiB, some executable, some symlinks).
 */
const drive = (h, totalBytes, largeShare = 0.5) => {
  const largeCount = largeShare === 0 ? 0 : Math.max(1, Math.round((totalBytes * largeShare) / (8 << 20)))
  const smallBudget = totalBytes * (1 - largeShare)
  let produced = 0
  let seed = 1
  const rnd = (n) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % n
  }
  h.directoryStart()
  // "dNNN" sorts before "large-NNN"
  outer: for (let a = 0; a < dirNames.length; a++) {
    h.entry(dirNames[a])
    h.directoryStart()
    for (let b = 0; b < 10; b++) {
      h.entry(dirNames[b])
      h.directoryStart()
      for (let f = 0; f < 100; f++) {
        h.entry(names[f])
        if (f % 50 === 49) {
          h.symlink(enc.encode(`../../d${a}/target-${f}`))
          continue
        }
        const size = rnd(4096)
        const off = rnd(pool.length - size)
        h.fileStart(f % 7 === 0, size)
        if (size > 0) h.fileChunk(pool.subarray(off, off + size))
        h.fileEnd()
        produced += size + 200
      }
      h.directoryEnd()
      if (produced >= smallBudget) {
        h.directoryEnd()
        break outer
      }
    }
    h.directoryEnd()
  }
  for (let i = 0; i < largeCount; i++) {
    h.entry(bigNames[i])
    const size = 8 << 20
    h.fileStart(false, size)
    for (let p = 0; p < size; p += 1 << 20) h.fileChunk(pool.subarray(p, p + (1 << 20)))
    h.fileEnd()
  }
  h.directoryEnd()
}

// Build the archive.
const parts = []
{
  const w = Nar.makeWriter((c) => parts.push(c))
  drive(w, targetMB * 1e6)
  w.end()
}
const narSize = parts.reduce((n, c) => n + c.length, 0)
const nar = new Uint8Array(narSize)
{
  let p = 0
  for (const c of parts) {
    nar.set(c, p)
    p += c.length
  }
  parts.length = 0
}
const inputChunks = []
for (let p = 0; p < nar.length; p += INPUT_CHUNK) inputChunks.push(nar.subarray(p, p + INPUT_CHUNK))

const counter = () => {
  const c = { events: 0, files: 0, bytes: 0 }
  return {
    c,
    directoryStart() {
      c.events++
    },
    entry() {
      c.events++
    },
    directoryEnd() {
      c.events++
    },
    fileStart() {
      c.events++
      c.files++
    },
    fileChunk(chunk) {
      c.events++
      c.bytes += chunk.length
    },
    fileEnd() {
      c.events++
    },
    symlink() {
      c.events++
    }
  }
}

const mbps = (bytes, ms) => (bytes / 1e6 / (ms / 1000)).toFixed(0)
const best = (label, fn) => {
  let bestMs = Infinity
  let info
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now()
    info = fn()
    const ms = performance.now() - t0
    if (ms < bestMs) bestMs = ms
  }
  console.log(`${label.padEnd(34)} ${mbps(narSize, bestMs).padStart(6)} MB/s  (${bestMs.toFixed(0)} ms${info ? `, ${info}` : ""})`)
  return bestMs
}
const bestAsync = async (label, fn) => {
  let bestMs = Infinity
  let info
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now()
    info = await fn()
    const ms = performance.now() - t0
    if (ms < bestMs) bestMs = ms
  }
  console.log(`${label.padEnd(34)} ${mbps(narSize, bestMs).padStart(6)} MB/s  (${bestMs.toFixed(0)} ms${info ? `, ${info}` : ""})`)
}

console.log(`NAR of ${(narSize / 1e6).toFixed(1)} MB in ${inputChunks.length} chunks of ${INPUT_CHUNK / 1024} KiB`)

best("read (push parser, no-op handler)", () => {
  const h = counter()
  const p = Nar.makeParser(h)
  for (const c of inputChunks) p.push(c)
  p.end()
  return `${h.c.files} files, ${h.c.events} events`
})

best("read (push parser, EventCollector)", () => {
  const col = new Nar.EventCollector()
  const p = Nar.makeParser(col)
  let n = 0
  for (const c of inputChunks) {
    p.push(c)
    n += col.take().length
  }
  p.end()
  return `${n} events`
})

await bestAsync("read (Nar.events Stream)", () =>
  Effect.runPromise(
    Stream.runFold(
      Stream.chunks(Nar.events(Stream.fromIterable(inputChunks))),
      0,
      (n, chunk) => n + Chunk.size(chunk)
    )
  ).then((n) => `${n} events`))

best("write (writer, output discarded)", () => {
  let out = 0
  const w = Nar.makeWriter((c) => {
    out += c.length
  })
  drive(w, targetMB * 1e6)
  w.end()
  if (out !== narSize) throw new Error(`wrote ${out} bytes, expected ${narSize}`)
})

best("read -> write (re-encode)", () => {
  let out = 0
  const w = Nar.makeWriter((c) => {
    out += c.length
  })
  const p = Nar.makeParser(w)
  for (const c of inputChunks) p.push(c)
  p.end()
  w.end()
  if (out !== narSize) throw new Error(`wrote ${out} bytes, expected ${narSize}`)
})

// Small files only: the per-entry cost of the parser.
{
  const small = []
  const w = Nar.makeWriter((c) => small.push(c))
  drive(w, 100e6, 0)
  w.end()
  const total = small.reduce((n, c) => n + c.length, 0)
  const buf = new Uint8Array(total)
  let p = 0
  for (const c of small) {
    buf.set(c, p)
    p += c.length
  }
  const chunks = []
  for (let q = 0; q < buf.length; q += INPUT_CHUNK) chunks.push(buf.subarray(q, q + INPUT_CHUNK))
  let bestMs = Infinity
  let files = 0
  for (let i = 0; i < RUNS; i++) {
    const h = counter()
    const t0 = performance.now()
    const parser = Nar.makeParser(h)
    for (const c of chunks) parser.push(c)
    parser.end()
    bestMs = Math.min(bestMs, performance.now() - t0)
    files = h.c.files
  }
  console.log(
    `${"read, small files only".padEnd(34)} ${(total / 1e6 / (bestMs / 1000)).toFixed(0).padStart(6)} MB/s  (${
      (total / 1e6).toFixed(0)
    } MB, ${files} files, ${((files / bestMs) * 1000 / 1e6).toFixed(2)} M files/s)`
  )
}
