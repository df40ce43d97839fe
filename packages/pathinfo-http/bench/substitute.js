// Substitution throughput: a closure fetched from a local binary cache (served
// by a child process) into a store, for every compression; and raw
// decompression speed per algorithm.
//
// Run built: `npx tsc -b packages/pathinfo-http && node packages/pathinfo-http/bench/substitute.js [--quick] [--store=memory|sqlite] [--only=xz,zstd]`.
//
// The corpus is synthetic but shaped like real store paths: each path holds a
// slice of the node binary (machine code), a slice of JavaScript sources
// (text) and a handful of small files; paths reference their predecessor and
// their "parent" (i → i-1, i → i/2), and the last path's closure is everything.
// narinfos are signed and the key is trusted, so verification is included.
//
// Figures: paths/s, NAR MB/s (uncompressed, 10^6 bytes) and the compressed
// MB/s that came over HTTP; CPU seconds of this process (the server is
// another process) so a loaded machine can be told from a slow pipeline.
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as Nar from "@nixfx/nix-compat/Nar"
import * as NarInfo from "@nixfx/nix-compat/NarInfo"
import * as NixHash from "@nixfx/nix-compat/NixHash"
import * as Signature from "@nixfx/nix-compat/Signature"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import { Chunk, Effect, Either, Layer, Option, Stream } from "effect"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Zlib from "node:zlib"
import { BinaryCache, Decompression } from "../dist/index.js"

const require = createRequire(import.meta.url)
const quick = process.argv.includes("--quick")
const storeKind = (process.argv.find((a) => a.startsWith("--store=")) ?? "--store=memory").slice(8)
const only = process.argv.find((a) => a.startsWith("--only="))?.slice(7).split(",")
const MB = 1e6

// ---------------------------------------------------------------------------
// corpus
// ---------------------------------------------------------------------------

const PATHS = quick ? 40 : 120
const binary = Fs.readFileSync(process.execPath)
const text = (() => {
  const dir = Path.dirname(require.resolve("effect/package.json")) + "/dist/esm/internal"
  const parts = []
  let size = 0
  for (const f of Fs.readdirSync(dir)) {
    if (!f.endsWith(".js")) continue
    const b = Fs.readFileSync(Path.join(dir, f))
    parts.push(b)
    size += b.length
    if (size > 8 * 1024 * 1024) break
  }
  return Buffer.concat(parts)
})()

const enc = new TextEncoder()
const slice = (source, seed, size) => {
  const start = (seed * 7919 * 4096) % Math.max(1, source.length - size)
  return new Uint8Array(source.subarray(start, start + size))
}

const entry = (name, node) => ({ name: enc.encode(name), node })
const file = (contents, executable = false) => ({ _tag: "File", executable, contents })
const dir = (entries) => ({
  _tag: "Directory",
  entries: entries.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))
})

const treeOf = (i) =>
  dir([
    entry("bin", dir([entry(`prog-${i}`, file(slice(binary, i, 96 * 1024 + (i % 7) * 8192), true))])),
    entry("share", dir([
      entry(`doc-${i}.js`, file(slice(text, i + 11, 128 * 1024 + (i % 5) * 16384))),
      ...Array.from({ length: 12 }, (_, k) => entry(`small-${k}.txt`, file(slice(text, i * 13 + k, 512 + k * 300))))
    ])),
    entry("lib", { _tag: "Symlink", target: enc.encode("share") })
  ])

const secret = Either.getOrThrow(Keys.generateSecretKey("bench-cache-1"))
const publicKey = secret.public

const paths = Array.from({ length: PATHS }, (_, i) => {
  const digest = new Uint8Array(Crypto.createHash("sha1").update(`bench-path-${i}`).digest())
  return Either.getOrThrow(StorePath.make(digest, `bench-${i}`))
})
const nars = paths.map((_, i) => Either.getOrThrow(Nar.encodeTree(treeOf(i))))
const refsOf = (i) => {
  const r = new Set()
  if (i > 0) r.add(i - 1)
  if (i > 1) r.add(Math.floor(i / 2))
  return [...r].map((k) => paths[k]).sort((a, b) => (StorePath.toBasename(a) < StorePath.toBasename(b) ? -1 : 1))
}
const narBytes = nars.reduce((n, b) => n + b.length, 0)

// ---------------------------------------------------------------------------
// compressors
// ---------------------------------------------------------------------------

const lzma = require("lzma-native")
const zstd = require("zstd-napi")
const haveBzip2 = ChildProcess.spawnSync("bzip2", ["--help"], { stdio: "ignore" }).status === 0

const compressors = {
  none: { ext: "", compress: async (b) => b },
  xz: { ext: ".xz", compress: (b) => lzma.compress(Buffer.from(b), { preset: 6 }) },
  bzip2: haveBzip2
    ? { ext: ".bz2", compress: async (b) => ChildProcess.execFileSync("bzip2", ["-c", "-9"], { input: b, maxBuffer: 1 << 30 }) }
    : undefined,
  zstd: { ext: ".zst", compress: async (b) => zstd.compress(b) },
  br: {
    ext: ".br",
    compress: async (b) => Zlib.brotliCompressSync(b, { params: { [Zlib.constants.BROTLI_PARAM_QUALITY]: 6 } })
  },
  gzip: { ext: "", compress: async (b) => Zlib.gzipSync(b) }
}

const root = Fs.mkdtempSync(Path.join(process.env.BENCH_DIR ?? Os.tmpdir(), "nixfx-substitute-bench-"))

const writeCache = async (name, c) => {
  const cacheDir = Path.join(root, "caches", name)
  Fs.mkdirSync(Path.join(cacheDir, "nar"), { recursive: true })
  Fs.writeFileSync(Path.join(cacheDir, "nix-cache-info"), "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n")
  let fileBytes = 0
  for (let i = 0; i < PATHS; i++) {
    const compressed = await c.compress(nars[i])
    fileBytes += compressed.length
    const fileHash = NixHash.unsafeMake("sha256", new Uint8Array(Crypto.createHash("sha256").update(compressed).digest()))
    const url = `nar/${NixHash.toNixbase32String(fileHash).slice(7)}.nar${c.ext}`
    Fs.writeFileSync(Path.join(cacheDir, url), compressed)
    const narHash = NixHash.unsafeMake("sha256", new Uint8Array(Crypto.createHash("sha256").update(nars[i]).digest()))
    const ni = new NarInfo.NarInfo({
      storePath: paths[i],
      url,
      compression: name,
      fileHash: Option.some(fileHash),
      fileSize: Option.some(compressed.length),
      narHash,
      narSize: nars[i].length,
      references: refsOf(i),
      deriver: Option.none(),
      system: Option.none(),
      signatures: [],
      ca: Option.none()
    })
    Fs.writeFileSync(Path.join(cacheDir, `${paths[i].hashPart}.narinfo`), NarInfo.render(Signature.sign(ni, secret)))
  }
  return { cacheDir, fileBytes }
}

// ---------------------------------------------------------------------------
// the server: a child process serving `root/caches`
// ---------------------------------------------------------------------------

const serverSource = `
const http = require("node:http"), fs = require("node:fs"), path = require("node:path")
const root = process.argv[1]
const server = http.createServer((req, res) => {
  const p = path.join(root, decodeURIComponent(new URL(req.url, "http://x").pathname))
  fs.readFile(p, (err, data) => {
    if (err) { res.writeHead(404, { "content-length": 0 }); res.end(); return }
    res.writeHead(200, { "content-length": data.length }); res.end(data)
  })
})
server.keepAliveTimeout = 5000
server.listen(0, "127.0.0.1", () => process.send(server.address().port))
`

const startServer = () =>
  new Promise((resolve, reject) => {
    const child = ChildProcess.fork("-e", [], { execArgv: ["-e", serverSource, Path.join(root, "caches")], stdio: "inherit" })
    child.once("message", (port) => resolve({ child, url: `http://127.0.0.1:${port}` }))
    child.once("error", reject)
  })

// ---------------------------------------------------------------------------
// measurements
// ---------------------------------------------------------------------------

let storeCount = 0
const openStore = () =>
  storeKind === "sqlite"
    ? StoreComposition.build(`sqlite://${Path.join(root, "stores", String(storeCount++))}`)
    : StoreComposition.build("memory://")

const substitute = (baseUrl, name, concurrency) =>
  Effect.scoped(Effect.gen(function*() {
    const store = yield* openStore()
    const client = yield* Layer.build(NodeHttpClient.layerUndici)
    let started = 0
    const cache = yield* BinaryCache.make(
      { url: `${baseUrl}/${name}`, trustedPublicKeys: [publicKey], concurrency, onEvent: (e) => e._tag === "PathStarted" && started++ },
      store
    ).pipe(Effect.provide(client))
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const got = yield* cache.fetch(paths[PATHS - 1].digest)
    const seconds = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    if (Option.isNone(got) || started !== PATHS) throw new Error(`${name}: fetched ${started} of ${PATHS} paths`)
    return { seconds, cpu: (cpu.user + cpu.system) / 1e6 }
  }))

const rawDecompression = async (name, compressed, outBytes) => {
  const chunks = []
  for (let i = 0; i < compressed.length; i += 64 * 1024) chunks.push(compressed.subarray(i, i + 64 * 1024))
  const run = () =>
    Effect.runPromise(
      Stream.runFold(Stream.mapChunks(Decompression.decompress(name)(Stream.fromIterable(chunks)), (c) => Chunk.of(c)), 0, (n, c) => {
        for (const b of c) n += b.length
        return n
      })
    )
  await run() // warm up
  return best(async () => {
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const n = await run()
    const seconds = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    if (n !== outBytes) throw new Error(`${name}: decompressed ${n} bytes, expected ${outBytes}`)
    return { seconds, cpu: (cpu.user + cpu.system) / 1e6 }
  })
}

const fmt = (x, w = 7, d = 1) => x.toFixed(d).padStart(w)

/** The fastest of RUNS runs: on a shared machine the minimum is the least disturbed figure. */
const RUNS = quick ? 3 : 5
const best = async (run) => {
  let out
  for (let i = 0; i < RUNS; i++) {
    const r = await run()
    if (out === undefined || r.seconds < out.seconds) out = r
  }
  return out
}

try {
  console.log(
    `corpus: ${PATHS} paths, ${(narBytes / MB).toFixed(1)} MB of NAR; store: ${storeKind}; cpus: ${Os.cpus().length}; load: ${
      Os.loadavg()[0].toFixed(1)
    }`
  )
  const caches = {}
  for (const [name, c] of Object.entries(compressors)) {
    if (only !== undefined && !only.includes(name)) continue
    if (c === undefined) {
      console.log(`${name}: skipped (no bzip2 program to make the cache)`)
      continue
    }
    caches[name] = await writeCache(name, c)
  }
  const { child, url } = await startServer()
  try {
    console.log(`\nclosure fetch (whole closure of the last path, concurrency 8; best of ${RUNS} runs)`)
    for (const [name, { fileBytes }] of Object.entries(caches)) {
      await Effect.runPromise(substitute(url, name, 8)) // warm up (and a first store)
      const r = await best(() => Effect.runPromise(substitute(url, name, 8)))
      console.log(
        `  ${name.padEnd(5)} ${fmt(PATHS / r.seconds, 7, 0)} paths/s ${fmt(narBytes / MB / r.seconds)} MB/s NAR ${
          fmt(fileBytes / MB / r.seconds)
        } MB/s compressed  (ratio ${(narBytes / fileBytes).toFixed(2)}, ${r.seconds.toFixed(2)} s, cpu ${r.cpu.toFixed(2)} s)`
      )
    }
    if (caches.zstd !== undefined) {
      console.log("\nconcurrency (zstd)")
      for (const c of [1, 2, 4, 8, 16]) {
        const r = await best(() => Effect.runPromise(substitute(url, "zstd", c)))
        console.log(`  ${String(c).padStart(2)}    ${fmt(PATHS / r.seconds, 7, 0)} paths/s ${fmt(narBytes / MB / r.seconds)} MB/s NAR`)
      }
    }
  } finally {
    child.kill()
  }

  console.log("\nraw decompression (the whole corpus as one stream, 64 KiB input chunks; MB/s of output)")
  const all = Buffer.concat(nars)
  for (const [name, c] of Object.entries(compressors)) {
    if (name === "none" || c === undefined || (only !== undefined && !only.includes(name))) continue
    const compressed = await c.compress(all)
    const r = await rawDecompression(name, compressed, all.length)
    console.log(
      `  ${name.padEnd(5)} ${fmt(all.length / MB / r.seconds)} MB/s  (cpu ${fmt(all.length / MB / r.cpu)} MB/s per cpu-second)`
    )
    if (name === "bzip2") {
      // the pure-JS decoder this package used to depend on, for comparison
      const unbzip2 = require("unbzip2-stream")
      const t0 = performance.now()
      const n = await new Promise((resolve, reject) => {
        let n = 0
        const s = unbzip2()
        s.on("data", (d) => (n += d.length))
        s.on("end", () => resolve(n))
        s.on("error", reject)
        s.end(compressed)
      })
      const seconds = (performance.now() - t0) / 1000
      if (n !== all.length) throw new Error("unbzip2-stream: wrong size")
      console.log(`  (unbzip2-stream ${fmt(all.length / MB / seconds)} MB/s)`)
    }
  }
} finally {
  Fs.rmSync(root, { recursive: true, force: true })
}
