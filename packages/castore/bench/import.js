// NAR import throughput and peak memory.
//
// Streams a generated NAR (default ~520 MB: ~50,000 small files in 500
// directories plus 50 files of 6 MiB; generated chunk by chunk in fresh 64 KiB
// buffers, never held whole) through NarImport.ingest into
//   - memory:     BlobService.layerMemory + DirectoryService.layerMemory
//   - filesystem: FilesystemBlobService (temp dir under /dev/shm when it has
//                 room, else the OS temp dir) + DirectoryService.layerMemory
// Each target runs in its own child process so peak RSS figures do not mix.
// Also reported: the generator alone (the floor any import pays here).
//
// Usage: node packages/castore/bench/import.js [targetMB] [--cpu-prof]
import { Effect, Layer, Stream } from "effect"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { BlobService, DirectoryService, FilesystemBlobService, NarImport } from "../dist/index.js"
import { Nar } from "@nixfx/nix-compat"

const CHUNK = 64 * 1024

/** A deterministic NAR of about `targetBytes`, as an iterator of fresh 64 KiB chunks. */
function* generate(targetBytes) {
  const pool = new Uint8Array(16 << 20)
  {
    let x = 0x9e3779b9
    const words = new Uint32Array(pool.buffer)
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      words[i] = x >>> 0
    }
  }
  let out = new Uint8Array(CHUNK)
  let fill = 0
  const ready = []
  const writer = Nar.makeWriter((c) => {
    let p = 0
    while (p < c.length) {
      const n = Math.min(CHUNK - fill, c.length - p)
      out.set(c.subarray(p, p + n), fill)
      fill += n
      p += n
      if (fill === CHUNK) {
        ready.push(out)
        out = new Uint8Array(CHUNK)
        fill = 0
      }
    }
  })
  const enc = new TextEncoder()
  let seed = 7
  const rnd = (n) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return seed % n
  }
  const largeCount = 50
  const largeSize = 6 << 20
  const smallBudget = targetBytes - largeCount * largeSize
  let produced = 0
  writer.directoryStart()
  for (let a = 0; a < 50 && produced < smallBudget; a++) {
    writer.entry(enc.encode(`a${String(a).padStart(2, "0")}`))
    writer.directoryStart()
    for (let b = 0; b < 10 && produced < smallBudget; b++) {
      writer.entry(enc.encode(`b${b}`))
      writer.directoryStart()
      for (let f = 0; f < 100; f++) {
        writer.entry(enc.encode(`file-${String(f).padStart(3, "0")}`))
        if (f % 25 === 24) {
          writer.symlink(enc.encode(`../b0/file-${String(f - 1).padStart(3, "0")}`))
          continue
        }
        const size = rnd(8192)
        const off = rnd(pool.length - size)
        writer.fileStart(f % 9 === 0, size)
        if (size > 0) writer.fileChunk(pool.subarray(off, off + size))
        writer.fileEnd()
        produced += size
      }
      writer.directoryEnd()
      while (ready.length > 0) yield ready.shift()
    }
    writer.directoryEnd()
  }
  for (let i = 0; i < largeCount; i++) {
    writer.entry(enc.encode(`large-${String(i).padStart(2, "0")}`))
    writer.fileStart(false, largeSize)
    const off = rnd(pool.length - largeSize)
    for (let p = 0; p < largeSize; p += 1 << 20) {
      writer.fileChunk(pool.subarray(off + p, off + p + (1 << 20)))
      while (ready.length > 0) yield ready.shift()
    }
    writer.fileEnd()
  }
  writer.directoryEnd()
  writer.end()
  while (ready.length > 0) yield ready.shift()
  if (fill > 0) yield out.subarray(0, fill)
}

const narStream = (targetBytes) => Stream.fromIteratorSucceed(generate(targetBytes), 1)

const child = async (target, targetBytes) => {
  let layer
  let where
  if (target === "memory") {
    layer = Layer.merge(BlobService.layerMemory, DirectoryService.layerMemory)
  } else if (target === "filesystem") {
    const shmFree = (() => {
      try {
        const s = Fs.statfsSync("/dev/shm")
        return s.bavail * s.bsize
      } catch {
        return 0
      }
    })()
    const base = shmFree > 2 * targetBytes ? "/dev/shm" : Os.tmpdir()
    where = Fs.mkdtempSync(Path.join(base, "nixfx-bench-import-"))
    layer = Layer.merge(FilesystemBlobService.layer({ directory: where }), DirectoryService.layerMemory)
  }
  try {
    const t0 = performance.now()
    let narSize = 0
    let files = 0
    let root
    if (target === "generate") {
      for (const c of generate(targetBytes)) narSize += c.length
    } else {
      const result = await Effect.runPromise(NarImport.ingest(narStream(targetBytes)).pipe(Effect.provide(layer)))
      narSize = result.narSize
      root = result.root
    }
    const ms = performance.now() - t0
    if (target === "filesystem") {
      for (const d of Fs.readdirSync(Path.join(where, "blobs"))) files += Fs.readdirSync(Path.join(where, "blobs", d)).length
    }
    console.log(JSON.stringify({
      target,
      narSize,
      ms,
      maxRssMB: process.resourceUsage().maxRSS / 1024,
      where,
      blobFiles: files || undefined,
      root: root && { type: root._tag, size: root.size }
    }))
  } finally {
    if (where !== undefined) Fs.rmSync(where, { recursive: true, force: true })
  }
}

const args = process.argv.slice(2)
if (args[0] === "--child") {
  await child(args[1], Number(args[2]))
} else {
  const targetMB = Number(args.find((a) => !a.startsWith("--")) ?? 520)
  const prof = args.includes("--cpu-prof")
  const self = fileURLToPath(import.meta.url)
  for (const target of ["generate", "memory", "filesystem"]) {
    const r = spawnSync(
      process.execPath,
      [
        ...(prof && target !== "generate" ? ["--cpu-prof", `--cpu-prof-name=import-${target}.cpuprofile`] : []),
        self,
        "--child",
        target,
        String(targetMB * 1e6)
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }
    )
    if (r.status !== 0) {
      console.error(`${target}: child failed with status ${r.status}`)
      process.exitCode = 1
      continue
    }
    const res = JSON.parse(r.stdout.trim().split("\n").pop())
    const mbps = res.narSize / 1e6 / (res.ms / 1000)
    console.log(
      `${target.padEnd(11)} ${(res.narSize / 1e6).toFixed(0)} MB in ${(res.ms / 1000).toFixed(2)} s = ${mbps.toFixed(0).padStart(5)} MB/s, ` +
        `peak RSS ${res.maxRssMB.toFixed(0)} MB` +
        (res.where ? `, blobs in ${Path.dirname(res.where)} (${res.blobFiles} blob files)` : "") +
        (res.root ? `, root directory size ${res.root.size}` : "")
    )
  }
}
