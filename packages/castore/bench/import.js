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
import { generateNar } from "../../../scripts/bench-nar-generator.js"
import { BlobService, DirectoryService, FilesystemBlobService, NarImport } from "../dist/index.js"

/**
 * A deterministic NAR of about `targetBytes` (scripts/bench-nar-generator.js):
 * about 220 MB of small files (~50,000 files and symlinks in 500
 * directories); everything beyond goes into 6 MiB files, so a larger NAR has
 * more large files, not more entries.
 */
const generate = (targetBytes) => {
  const largeSize = 6 << 20
  const largeCount = Math.max(1, Math.round((targetBytes - 220e6) / largeSize))
  return generateNar({ smallBytes: targetBytes - largeCount * largeSize, largeSizes: Array(largeCount).fill(largeSize) })
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
