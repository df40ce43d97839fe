// Blob write throughput of the memory and filesystem BlobService layers.
// Run built: `npx tsc -b packages/castore && node packages/castore/bench/blobs.js [memory|fs] [--quick]`.
// Prints one line per case: MB/s (10^6 bytes), µs per blob, and the process RSS.
import { Effect } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { BlobService, FilesystemBlobService } from "../dist/index.js"

const MiB = 1024 * 1024
const quick = process.argv.includes("--quick")
const only = process.argv.slice(2).find((a) => !a.startsWith("--"))

/** One blob through a writer, in `chunkSize` writes. */
const viaWriter = (service, data, chunkSize) =>
  Effect.scoped(Effect.flatMap(service.writer, (writer) => {
    const writes = []
    for (let offset = 0; offset < data.length; offset += chunkSize) {
      writes.push(writer.write(data.subarray(offset, offset + chunkSize)))
    }
    return Effect.zipRight(Effect.all(writes, { discard: true }), writer.close)
  }))

const measure = async (label, makeService, how, count, size) => {
  // Distinct random blobs, made before timing; a few extra to warm up.
  const blobs = Array.from({ length: count }, () => new Uint8Array(Crypto.randomBytes(size)))
  const warm = Array.from({ length: Math.min(200, count) }, () => new Uint8Array(Crypto.randomBytes(Math.min(size, 64 * 1024))))
  const service = await Effect.runPromise(makeService())
  const put = (data) => how === "putBytes" ? service.putBytes(data) : viaWriter(service, data, 64 * 1024)
  await Effect.runPromise(Effect.forEach(warm, put, { discard: true }))
  const start = performance.now()
  await Effect.runPromise(Effect.forEach(blobs, put, { discard: true }))
  const seconds = (performance.now() - start) / 1000
  console.log(
    `${label.padEnd(6)} ${how.padEnd(8)} ${String(count).padStart(6)} × ${String(size).padStart(8)} B: ` +
      `${(count * size / 1e6 / seconds).toFixed(0).padStart(5)} MB/s, ${(seconds * 1e6 / count).toFixed(1).padStart(8)} µs/blob, ` +
      `rss ${(process.memoryUsage().rss / MiB).toFixed(0)} MiB`
  )
}

const root = Fs.mkdtempSync(Path.join(process.env.BENCH_DIR ?? Os.tmpdir(), "nixfx-castore-bench-"))
let n = 0
const layers = {
  memory: () => BlobService.makeMemory,
  fs: () => FilesystemBlobService.make({ directory: Path.join(root, String(n++)) })
}
const cases = [
  [quick ? 5_000 : 50_000, 1024],
  [quick ? 1_000 : 5_000, 16 * 1024],
  [quick ? 1 : 4, 64 * MiB]
]
try {
  for (const [label, make] of Object.entries(layers)) {
    if (only !== undefined && only !== label) continue
    for (const [count, size] of cases) {
      for (const how of ["writer", "putBytes"]) await measure(label, make, how, count, size)
    }
  }
} finally {
  Fs.rmSync(root, { recursive: true, force: true })
}
