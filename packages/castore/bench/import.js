// NAR import throughput and peak memory.
//
// Streams a generated NAR (default ~520 MB: ~50,000 small files in 500
// directories, ~220 MB, plus 6 MiB files for the rest; generated chunk by chunk
// in fresh 64 KiB buffers, never held whole) through NarImport.ingest into
//   - memory:     BlobService.layerMemory + DirectoryService.layerMemory
//   - filesystem: FilesystemBlobService (temp dir under /dev/shm when it has
//                 room, else the OS temp dir) + DirectoryService.layerMemory
// Each target runs in its own child process so peak RSS figures do not mix,
// and imports twice: "cold" includes the first touch of the memory the import
// fills (the memory store's blobs, or tmpfs pages), "warm" reuses memory the
// first run released. Also reported: reading the NAR source alone (the floor
// any import pays here).
//
// The NAR source (default): written to a file first (tmpfs when it has room)
// and read back 256 KiB at a time, as `nixfx nar ingest FILE` reads it.
// --inline: the generator in the importing thread; --pipe: a producer process.
//
// Usage: node packages/castore/bench/import.js [targetMB] [--inline|--pipe] [--cpu-prof]
import { NodeStream } from "@effect/platform-node"
import { Effect, Layer, Stream } from "effect"
import { spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { BlobService, DirectoryService, FilesystemBlobService, NarImport } from "../dist/index.js"

const CHUNK = 64 * 1024

const enc = new TextEncoder()
/** NAR wire form of strings: 64-bit little-endian length, bytes, zero padding to 8. */
const wire = (...parts) => {
  const raw = parts.map((p) => (typeof p === "string" ? enc.encode(p) : p))
  const out = new Uint8Array(raw.reduce((n, b) => n + 8 + Math.ceil(b.length / 8) * 8, 0))
  let o = 0
  for (const b of raw) {
    new DataView(out.buffer).setBigUint64(o, BigInt(b.length), true)
    out.set(b, o + 8)
    o += 8 + Math.ceil(b.length / 8) * 8
  }
  return out
}
const u64 = (n) => {
  const out = new Uint8Array(8)
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true)
  return out
}
const TOK = {
  start: wire("nix-archive-1", "(", "type"),
  directory: wire("directory"),
  close: wire(")"),
  regular: wire("regular", "contents"),
  executable: wire("regular", "executable", "", "contents"),
  symlink: wire("symlink", "target")
}
const entryTokens = (name) => wire("entry", "(", "name", name, "node", "(", "type")
const ZEROS = new Uint8Array(8)

/**
 * A deterministic NAR of about `targetBytes`, as an iterator of fresh 64 KiB
 * chunks (as a file or socket read would give): framing written directly,
 * contents copied once from a pseudo-random pool. Layout: /aNNNN/bN/file-NNN
 * (100 files or symlinks per directory, 0 to 8 KiB each; as many
 * directories as needed for ~220 MB) and /large-NNNNN (6 MiB each, as many
 * as the rest of the size needs).
 */
function* generate(targetBytes) {
  const pool = new Uint8Array(16 << 20)
  {
    let x = 0x9e3779b9 | 0
    const words = new Int32Array(pool.buffer)
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      words[i] = x
    }
  }
  let out = new Uint8Array(CHUNK)
  let fill = 0
  const ready = []
  const put = (bytes) => {
    let p = 0
    while (p < bytes.length) {
      const n = Math.min(CHUNK - fill, bytes.length - p)
      out.set(n === bytes.length ? bytes : bytes.subarray(p, p + n), fill)
      fill += n
      p += n
      if (fill === CHUNK) {
        ready.push(out)
        out = new Uint8Array(CHUNK)
        fill = 0
      }
    }
  }
  const file = (executable, contents) => {
    put(executable ? TOK.executable : TOK.regular)
    put(u64(contents.length))
    put(contents)
    if (contents.length % 8 !== 0) put(ZEROS.subarray(0, 8 - (contents.length % 8)))
    put(TOK.close)
  }
  const fileNames = Array.from({ length: 100 }, (_, f) => entryTokens(`file-${String(f).padStart(3, "0")}`))
  let seed = 7
  const rnd = (n) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return seed % n
  }
  // About 220 MB of small files (~50,000); everything beyond goes into 6 MiB files,
  // so a larger NAR has more large files, not more entries.
  const largeSize = 6 << 20
  const largeCount = Math.max(1, Math.round((targetBytes - 220e6) / largeSize))
  const smallBudget = targetBytes - largeCount * largeSize
  let produced = 0
  put(TOK.start)
  put(TOK.directory)
  for (let a = 0; a < 10000 && produced < smallBudget; a++) {
    put(entryTokens(`a${String(a).padStart(4, "0")}`))
    put(TOK.directory)
    for (let b = 0; b < 10 && produced < smallBudget; b++) {
      put(entryTokens(`b${b}`))
      put(TOK.directory)
      for (let f = 0; f < 100; f++) {
        put(fileNames[f])
        if (f % 25 === 24) {
          put(TOK.symlink)
          put(wire(`../b0/file-${String(f - 1).padStart(3, "0")}`))
          put(TOK.close)
        } else {
          const size = rnd(8192)
          const off = rnd(pool.length - size)
          file(f % 9 === 0, pool.subarray(off, off + size))
          produced += size
        }
        put(TOK.close) // entry
      }
      put(TOK.close) // directory b
      put(TOK.close) // entry b
      while (ready.length > 0) yield ready.shift()
    }
    put(TOK.close) // directory a
    put(TOK.close) // entry a
  }
  for (let i = 0; i < largeCount; i++) {
    put(entryTokens(`large-${String(i).padStart(5, "0")}`))
    put(TOK.regular)
    put(u64(largeSize))
    const off = rnd(pool.length - largeSize)
    for (let p = 0; p < largeSize; p += 1 << 20) {
      put(pool.subarray(off + p, off + p + (1 << 20)))
      while (ready.length > 0) yield ready.shift()
    }
    put(TOK.close) // file
    put(TOK.close) // entry
  }
  put(TOK.close) // root directory
  while (ready.length > 0) yield ready.shift()
  if (fill > 0) yield out.subarray(0, fill)
}

/**
 * The NAR bytes: from a file written beforehand (as `nixfx nar ingest FILE`
 * reads one, 256 KiB at a time), from the generator in this thread, or from a
 * producer process through a pipe.
 */
const narStream = (targetBytes, source) => {
  if (source === "inline") return Stream.fromIteratorSucceed(generate(targetBytes), 1)
  if (source.startsWith("file:")) {
    const file = source.slice("file:".length)
    return NodeStream.fromReadable(() => Fs.createReadStream(file, { highWaterMark: 256 * 1024 }), (e) => e, {
      chunkSize: 256 * 1024
    })
  }
  return Stream.suspend(() => {
    const producer = spawn(process.execPath, [fileURLToPath(import.meta.url), "--produce", String(targetBytes)], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    // As the CLI reads stdin (`nixfx nar ingest`).
    return NodeStream.fromReadable(() => producer.stdout, (e) => e, { chunkSize: 64 * 1024 })
  })
}

/** Producer process: writes the NAR to stdout, waiting whenever the pipe is full. */
const produce = async (targetBytes) => {
  const out = process.stdout
  for (const chunk of generate(targetBytes)) {
    if (!out.write(chunk)) await new Promise((resolve) => out.once("drain", resolve))
  }
}

/**
 * CPU time (ms) of this process's main thread: on a busy machine wall-clock
 * time mostly measures the other processes; this does not. Linux only (falls
 * back to the whole process's CPU time).
 */
const mainThreadCpuMs = () => {
  try {
    const fields = Fs.readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8").split(") ")[1].split(" ")
    const ticks = Number(fields[11]) + Number(fields[12]) // utime + stime, in 1/100 s
    return ticks * 10
  } catch {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1000
  }
}

const child = async (target, targetBytes, source) => {
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
  const runs = []
  try {
    // Run twice: the first run also pays for the first touch of the memory it
    // fills (on a VM whose host backs guest RAM lazily this dominates); the
    // second reuses memory the first released.
    for (let run = 0; run < (target === "generate" ? 1 : 2); run++) {
      if (where !== undefined) Fs.rmSync(Path.join(where, "blobs"), { recursive: true, force: true })
      const t0 = performance.now()
      const cpu0 = mainThreadCpuMs()
      let narSize = 0
      let root
      if (target === "generate") {
        await Effect.runPromise(
          Stream.runForEachChunk(narStream(targetBytes, source), (c) =>
            Effect.sync(() => {
              for (const b of c) narSize += b.length
            }))
        )
      } else {
        const result = await Effect.runPromise(
          NarImport.ingest(narStream(targetBytes, source)).pipe(Effect.provide(layer))
        )
        narSize = result.narSize
        root = result.root
      }
      const ms = performance.now() - t0
      const cpuMs = mainThreadCpuMs() - cpu0
      let files = 0
      if (target === "filesystem") {
        for (const d of Fs.readdirSync(Path.join(where, "blobs"))) files += Fs.readdirSync(Path.join(where, "blobs", d)).length
      }
      runs.push({ narSize, ms, cpuMs, maxRssMB: process.resourceUsage().maxRSS / 1024, blobFiles: files || undefined, root: root && { type: root._tag, size: root.size } })
    }
    console.log(JSON.stringify({ target, where, runs, maxRssMB: process.resourceUsage().maxRSS / 1024 }))
  } finally {
    if (where !== undefined) Fs.rmSync(where, { recursive: true, force: true })
  }
}

const args = process.argv.slice(2)
if (args[0] === "--produce") {
  await produce(Number(args[1]))
} else if (args[0] === "--child") {
  await child(args[1], Number(args[2]), args[3])
} else {
  const targetMB = Number(args.find((a) => !a.startsWith("--")) ?? 520)
  const prof = args.includes("--cpu-prof")
  const self = fileURLToPath(import.meta.url)
  // Default: the NAR is written to a file first (tmpfs when it has room) and
  // read back as `nixfx nar ingest FILE` does, so the import is measured
  // without the generator's own CPU time. --inline / --pipe: see narStream.
  let source = args.includes("--pipe") ? "pipe" : args.includes("--inline") ? "inline" : "file"
  let narFile
  if (source === "file") {
    const shm = (() => {
      try {
        const st = Fs.statfsSync("/dev/shm")
        return st.bavail * st.bsize > 3 * targetMB * 1e6 ? "/dev/shm" : Os.tmpdir()
      } catch {
        return Os.tmpdir()
      }
    })()
    narFile = Path.join(Fs.mkdtempSync(Path.join(shm, "nixfx-bench-nar-")), "bench.nar")
    const fd = Fs.openSync(narFile, "w")
    for (const chunk of generate(targetMB * 1e6)) Fs.writeSync(fd, chunk)
    Fs.closeSync(fd)
    source = "file:" + narFile
  }
  console.log(
    source === "pipe"
      ? "NAR source: a producer process writing to a pipe (like `nix-store --dump | nixfx nar ingest`)"
      : source === "inline"
      ? "NAR source: the generator in the importing thread"
      : `NAR source: a file read 256 KiB at a time (${narFile}), as \`nixfx nar ingest FILE\` reads it`
  )
  process.on("exit", () => {
    if (narFile !== undefined) Fs.rmSync(Path.dirname(narFile), { recursive: true, force: true })
  })
  for (const target of ["generate", "memory", "filesystem"]) {
    const r = spawnSync(
      process.execPath,
      [
        ...(prof && target !== "generate" ? ["--cpu-prof", `--cpu-prof-name=import-${target}.cpuprofile`] : []),
        self,
        "--child",
        target,
        String(targetMB * 1e6),
        source
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 20 }
    )
    if (r.status !== 0) {
      console.error(`${target}: child failed with status ${r.status}`)
      process.exitCode = 1
      continue
    }
    const res = JSON.parse(r.stdout.trim().split("\n").pop())
    const figures = res.runs.map((run, i) => {
      const mbps = run.narSize / 1e6 / (run.ms / 1000)
      const cpuMbps = run.narSize / 1e6 / (run.cpuMs / 1000)
      const label = res.runs.length === 1 ? "" : i === 0 ? "cold " : "warm "
      return `${label}${(run.ms / 1000).toFixed(2)} s = ${mbps.toFixed(0)} MB/s (main thread CPU ${
        (run.cpuMs / 1000).toFixed(2)
      } s = ${cpuMbps.toFixed(0)} MB/s of CPU; peak RSS so far ${run.maxRssMB.toFixed(0)} MB)`
    })
    const first = res.runs[0]
    console.log(
      `${(target === "generate" ? "source only" : target).padEnd(11)} ${(first.narSize / 1e6).toFixed(0)} MB: ${figures.join(", ")}` +
        (res.where ? `; blobs in ${Path.dirname(res.where)} (${first.blobFiles} blob files)` : "") +
        (first.root ? `; root directory size ${first.root.size}` : "")
    )
  }
}
