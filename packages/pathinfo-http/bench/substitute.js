// Substitution throughput: a generated closure of ≥ 500 MB of NAR (many
// paths and one large one) fetched from local zstd and xz binary caches,
// served over HTTP on 127.0.0.1 by scripts/serve-directory.js, into an
// SQLite + filesystem store on /dev/shm — beside `nix copy --from` the same
// cache into a chroot store on /dev/shm, in the same run. Then the same NARs
// under other store paths: every NAR is already in the store (its NarIndex
// knows the root), so nothing is downloaded.
//
// Run built: `npm run bench -- substitute` or
// `node packages/pathinfo-http/bench/substitute.js [--quick] [--rounds=N] [--only=zstd,xz] [--no-nix]`.
//
// The corpus: each small path holds a machine-code file (from the node
// binary), a JavaScript text file and twelve small text files; the large one
// holds eight files of machine code. Every file starts with bytes unique to
// its path, so no two paths share a NAR or a blob. Making a 500 MB xz cache
// with liblzma takes minutes, so a cache file is written as concatenated
// streams (frames for zstd): the bytes unique to a path are compressed per
// path, the file contents after them are made of 768 KiB blocks compressed
// once each and reused. Both decoders (ours and Nix's) read concatenated
// streams; every NAR byte is still decompressed, hashed and written.
//
// Figures: wall time and NAR MB/s (10^6 bytes, uncompressed) of each run,
// CPU seconds of this process (the server is another process), and our
// speed-up over Nix per round. The machine may be shared: compare within a
// round, not across runs of the script.
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Keys from "@nixfx/nix-compat/Keys"
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
import { BinaryCache, Decompression } from "../dist/index.js"

const require = createRequire(import.meta.url)
const quick = process.argv.includes("--quick")
const withNix = !process.argv.includes("--no-nix")
const only = process.argv.find((a) => a.startsWith("--only="))?.slice(7).split(",")
const ROUNDS = Number(process.argv.find((a) => a.startsWith("--rounds="))?.slice(9) ?? (quick ? 1 : 2))
const MB = 1e6
const repoRoot = new URL("../../../", import.meta.url).pathname

// ---------------------------------------------------------------------------
// corpus: NARs as segments — unique bytes, or a reference to a shared block
// ---------------------------------------------------------------------------

const SMALL_PATHS = quick ? 40 : 360
const LARGE_FILES = quick ? 2 : 8
const BLOCKS_PER_LARGE_FILE = 24
const BLOCK = 768 * 1024
const TEXT_BLOCK = 192 * 1024

const binary = Fs.readFileSync(process.execPath)
const text = (() => {
  const dir = Path.dirname(require.resolve("effect/package.json")) + "/dist/esm/internal"
  const parts = []
  let size = 0
  for (const f of Fs.readdirSync(dir).sort()) {
    if (!f.endsWith(".js")) continue
    parts.push(Fs.readFileSync(Path.join(dir, f)))
    size += parts[parts.length - 1].length
    if (size > 4 * 1024 * 1024) break
  }
  return Buffer.concat(parts)
})()
const blockAt = (source, i, size) => {
  const start = (i * 7919 * 4096) % (source.length - size)
  return new Uint8Array(source.subarray(start, start + size))
}
/** Shared blocks: id → bytes. */
const blocks = [
  ...Array.from({ length: 16 }, (_, i) => blockAt(binary, i + 1, BLOCK)),
  ...Array.from({ length: 8 }, (_, i) => blockAt(text, i + 3, TEXT_BLOCK))
]
const textBlock = (i) => 16 + (i % 8)

const enc = new TextEncoder()
const u64 = (n) => {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true)
  return b
}
const pad = (n) => new Uint8Array((8 - (n % 8)) % 8)
const str = (s) => {
  const b = typeof s === "string" ? enc.encode(s) : s
  return [u64(b.length), b, pad(b.length)]
}

/** A file's contents: unique bytes followed by shared blocks. */
const contents = (unique, blockIds = []) => ({ unique: enc.encode(unique), blockIds })
const file = (c, executable = false) => ({ kind: "file", c, executable })
const dir = (entries) => ({ kind: "dir", entries: entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)) })
const symlink = (target) => ({ kind: "symlink", target })

/** NAR serialisation as a list of Uint8Array (unique) and numbers (block ids). */
const narSegments = (root) => {
  const out = []
  const node = (n) => {
    out.push(...str("("), ...str("type"))
    if (n.kind === "file") {
      out.push(...str("regular"))
      if (n.executable) out.push(...str("executable"), ...str(""))
      const size = n.c.unique.length + n.c.blockIds.reduce((s, id) => s + blocks[id].length, 0)
      out.push(...str("contents"), u64(size), n.c.unique, ...n.c.blockIds, pad(size))
    } else if (n.kind === "symlink") {
      out.push(...str("symlink"), ...str("target"), ...str(n.target))
    } else {
      out.push(...str("directory"))
      for (const [name, child] of n.entries) {
        out.push(...str("entry"), ...str("("), ...str("name"), ...str(name), ...str("node"))
        node(child)
        out.push(...str(")"))
      }
    }
    out.push(...str(")"))
  }
  out.push(...str("nix-archive-1"))
  node(root)
  // merge neighbouring unique pieces
  const merged = []
  let run = []
  for (const s of out) {
    if (typeof s === "number") {
      if (run.length > 0) merged.push(Buffer.concat(run))
      run = []
      merged.push(s)
    } else run.push(s)
  }
  if (run.length > 0) merged.push(Buffer.concat(run))
  return merged
}

const smallTree = (tag, i) =>
  dir([
    ["bin", dir([[`prog-${i}`, file(contents(`#!${tag} path ${i}\n`, [i % 16]), true)]])],
    ["share", dir([
      [`doc-${i}.js`, file(contents(`// ${tag} path ${i}\n`, [textBlock(i)]))],
      ...Array.from({ length: 12 }, (_, k) => [
        `small-${k}.txt`,
        file(contents(`${tag} ${i} ${k}\n` + text.subarray((i * 12 + k) * 997 % 1_000_000, (i * 12 + k) * 997 % 1_000_000 + 400 + k * 300)))
      ])
    ])],
    ["lib", symlink("share")]
  ])

const largeTree = (tag) =>
  dir([["lib", dir(Array.from({ length: LARGE_FILES }, (_, f) => [
    `libbig-${f}.so`,
    file(contents(`\x7fELF ${tag} large ${f}\n`, Array.from({ length: BLOCKS_PER_LARGE_FILE }, (_, m) => (f * 5 + m * 3) % 16)), true)
  ]))]])

const nars = [...Array.from({ length: SMALL_PATHS }, (_, i) => narSegments(smallTree("nixfx-bench", i))), narSegments(largeTree("nixfx-bench"))]
const LARGE = SMALL_PATHS
const segmentBytes = (s) => (typeof s === "number" ? blocks[s] : s)
const narSize = (segments) => segments.reduce((n, s) => n + segmentBytes(s).length, 0)
const narHash = (segments) => {
  const h = Crypto.createHash("sha256")
  for (const s of segments) h.update(segmentBytes(s))
  return NixHash.unsafeMake("sha256", new Uint8Array(h.digest()))
}
const sizes = nars.map(narSize)
const hashes = nars.map(narHash)
const narBytes = sizes.reduce((a, b) => a + b, 0)

/** Closure `tag`: store paths for every NAR; small i → i-1, i/2; the last small path (the root) → the large one. */
const closure = (tag) => {
  const paths = nars.map((_, i) =>
    Either.getOrThrow(StorePath.make(
      new Uint8Array(Crypto.createHash("sha1").update(`${tag}-${i}`).digest()),
      i === LARGE ? `${tag}-large` : `${tag}-${i}`
    ))
  )
  const refsOf = (i) => {
    const r = new Set()
    if (i !== LARGE && i > 0) r.add(i - 1)
    if (i !== LARGE && i > 1) r.add(Math.floor(i / 2))
    if (i === SMALL_PATHS - 1) r.add(LARGE)
    return [...r].map((k) => paths[k]).sort((a, b) => (StorePath.toBasename(a) < StorePath.toBasename(b) ? -1 : 1))
  }
  return { paths, refsOf, root: paths[SMALL_PATHS - 1] }
}
const first = closure("bench")
const second = closure("again")

// ---------------------------------------------------------------------------
// caches
// ---------------------------------------------------------------------------

const lzma = require("lzma-native")
const zstd = require("zstd-napi")
const compressors = {
  zstd: { ext: ".zst", compress: async (b) => zstd.compress(b, { compressionLevel: 3 }) },
  xz: { ext: ".xz", compress: (b) => lzma.compress(Buffer.from(b), { preset: 6 }) }
}

const secret = Either.getOrThrow(Keys.generateSecretKey("nixfx-bench-1"))
const root = Fs.mkdtempSync(Path.join(process.env.BENCH_DIR ?? "/dev/shm", "nixfx-substitute-bench-"))

const writeCache = async (name) => {
  const c = compressors[name]
  const cacheDir = Path.join(root, "caches", name)
  Fs.mkdirSync(Path.join(cacheDir, "nar"), { recursive: true })
  Fs.writeFileSync(Path.join(cacheDir, "nix-cache-info"), "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n")
  const compressedBlocks = []
  for (const b of blocks) compressedBlocks.push(await c.compress(b))
  let fileBytes = 0
  const urls = []
  for (let i = 0; i < nars.length; i++) {
    const parts = []
    for (const s of nars[i]) parts.push(typeof s === "number" ? compressedBlocks[s] : await c.compress(s))
    const compressed = Buffer.concat(parts)
    fileBytes += compressed.length
    const fileHash = NixHash.unsafeMake("sha256", new Uint8Array(Crypto.createHash("sha256").update(compressed).digest()))
    const url = `nar/${NixHash.toNixbase32String(fileHash).slice(7)}.nar${c.ext}`
    Fs.writeFileSync(Path.join(cacheDir, url), compressed)
    urls.push({ url, fileHash, fileSize: compressed.length })
  }
  for (const { paths, refsOf } of [first, second]) {
    for (let i = 0; i < nars.length; i++) {
      const ni = new NarInfo.NarInfo({
        storePath: paths[i],
        url: urls[i].url,
        compression: name,
        fileHash: Option.some(urls[i].fileHash),
        fileSize: Option.some(urls[i].fileSize),
        narHash: hashes[i],
        narSize: sizes[i],
        references: refsOf(i),
        deriver: Option.none(),
        system: Option.none(),
        signatures: [],
        ca: Option.none()
      })
      Fs.writeFileSync(Path.join(cacheDir, `${paths[i].hashPart}.narinfo`), NarInfo.render(Signature.sign(ni, secret)))
    }
  }
  return { cacheDir, fileBytes }
}

const startServer = () =>
  new Promise((resolve, reject) => {
    const child = ChildProcess.spawn(process.execPath, [Path.join(repoRoot, "scripts/serve-directory.js"), Path.join(root, "caches"), "0"], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    child.stdout.once("data", (d) => {
      const m = / at (http:\/\/127\.0\.0\.1:\d+)/.exec(String(d))
      if (m === null) reject(new Error(`serve-directory said: ${d}`))
      else resolve({ child, url: m[1] })
    })
    child.once("error", reject)
  })

// ---------------------------------------------------------------------------
// measurements
// ---------------------------------------------------------------------------

let storeCount = 0

/** Fetches the closure of `roots` (in order) into a new SQLite + filesystem store; timings per root. */
const ours = (url, roots, expectedDownloads) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const dir = Path.join(root, "stores", `ours-${storeCount++}`)
    const store = yield* StoreComposition.build(`sqlite://${dir}`)
    const client = yield* Layer.build(NodeHttpClient.layerUndici)
    let downloaded = 0
    let reused = 0
    let planned = 0
    const cache = yield* BinaryCache.make({
      url,
      trustedPublicKeys: [secret.public],
      onEvent: (e) => {
        if (e._tag === "PathFinished") e.reused ? reused++ : downloaded++
        else if (e._tag === "ClosurePlanned") planned = performance.now()
      }
    }, store).pipe(Effect.provide(client))
    const out = []
    for (let k = 0; k < roots.length; k++) {
      downloaded = reused = 0
      const cpu0 = process.cpuUsage()
      const t0 = performance.now()
      const got = yield* cache.fetch(roots[k].digest)
      const seconds = (performance.now() - t0) / 1000
      const cpu = process.cpuUsage(cpu0)
      if (Option.isNone(got)) throw new Error("not fetched")
      if (downloaded + reused !== nars.length || downloaded !== expectedDownloads[k]) {
        throw new Error(`fetch ${k}: ${downloaded} downloaded, ${reused} reused, expected ${expectedDownloads[k]} downloads`)
      }
      out.push({ seconds, plan: (planned - t0) / 1000, cpu: (cpu.user + cpu.system) / 1e6 })
    }
    yield* Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    return out
  })))

const nixEnv = {
  ...process.env,
  XDG_CACHE_HOME: Path.join(root, "nix-cache"),
  NIX_CONFIG: ["experimental-features = nix-command", "sandbox = false", "build-users-group =", "substituters ="].join("\n")
}
const haveNix = withNix && ChildProcess.spawnSync("nix", ["--version"], { env: nixEnv, stdio: "ignore" }).status === 0

const nix = (url) => {
  const store = Path.join(root, "stores", `nix-${storeCount++}`)
  const t0 = performance.now()
  const before = childCpu()
  const r = ChildProcess.spawnSync("nix", [
    "copy",
    "--from",
    url,
    "--to",
    `local?root=${store}`,
    "--option",
    "narinfo-cache-positive-ttl",
    "0",
    "--option",
    "narinfo-cache-negative-ttl",
    "0",
    "--option",
    "trusted-public-keys",
    Keys.formatPublicKey(secret.public),
    StorePath.toAbsolutePath(first.root)
  ], { env: nixEnv, encoding: "utf8" })
  const seconds = (performance.now() - t0) / 1000
  const cpu = childCpu() - before
  if (r.status !== 0) throw new Error(`nix copy failed (${r.status}): ${r.stderr}`)
  const copied = Fs.readdirSync(Path.join(store, "nix", "store")).filter((n) => n.includes("-bench-")).length
  if (copied !== nars.length) throw new Error(`nix copy: ${copied} paths in the store, expected ${nars.length}`)
  Fs.rmSync(store, { recursive: true, force: true })
  return { seconds, cpu }
}

/** CPU seconds of this process's waited-for children (Linux: /proc/self/stat cutime + cstime). */
const childCpu = () => {
  const fields = Fs.readFileSync("/proc/self/stat", "utf8").replace(/^.*\) /, "").split(" ")
  return (Number(fields[13]) + Number(fields[14])) / 100
}

const fmt = (x, w = 7, d = 1) => x.toFixed(d).padStart(w)

const rawDecompression = async (name, compressed) => {
  const chunks = []
  for (let i = 0; i < compressed.length; i += 64 * 1024) chunks.push(compressed.subarray(i, i + 64 * 1024))
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const n = await Effect.runPromise(
    Stream.runFold(Stream.mapChunks(Decompression.decompress(name)(Stream.fromIterable(chunks)), (c) => Chunk.of(c)), 0, (n, c) => {
      for (const b of c) n += b.length
      return n
    })
  )
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  if (n !== sizes[LARGE]) throw new Error(`${name}: decompressed ${n} bytes, expected ${sizes[LARGE]}`)
  return { seconds, cpu: (cpu.user + cpu.system) / 1e6 }
}

try {
  console.log(
    `corpus: ${nars.length} paths, ${(narBytes / MB).toFixed(1)} MB of NAR (largest ${(sizes[LARGE] / MB).toFixed(1)} MB); ` +
      `store: SQLite + files on ${root}; cpus: ${Os.cpus().length}; load: ${Os.loadavg()[0].toFixed(1)}`
  )
  const caches = {}
  for (const name of Object.keys(compressors)) {
    if (only !== undefined && !only.includes(name)) continue
    const t0 = performance.now()
    caches[name] = await writeCache(name)
    console.log(
      `  ${name} cache: ${(caches[name].fileBytes / MB).toFixed(1)} MB (written in ${((performance.now() - t0) / 1000).toFixed(1)} s)`
    )
  }
  if (!haveNix) console.log(withNix ? "nix: not found (nix-bin), comparison skipped" : "nix: skipped (--no-nix)")
  const { child, url } = await startServer()
  try {
    for (const name of Object.keys(caches)) {
      console.log(`\n${name}: closure of ${nars.length} paths (concurrency 8), ${ROUNDS} round(s); load ${Os.loadavg()[0].toFixed(1)}`)
      for (let round = 1; round <= ROUNDS; round++) {
        const [fetched, again] = await ours(`${url}/${name}`, [first.root, second.root], [nars.length, 0])
        const line = `  round ${round}: nixfx ${fmt(fetched.seconds, 6, 2)} s ${fmt(narBytes / MB / fetched.seconds)} MB/s (cpu ${
          fetched.cpu.toFixed(2)
        } s; narinfos planned after ${fetched.plan.toFixed(2)} s)`
        if (haveNix) {
          const n = nix(`${url}/${name}`)
          console.log(
            `${line} | nix copy ${fmt(n.seconds, 6, 2)} s ${fmt(narBytes / MB / n.seconds)} MB/s (cpu ${n.cpu.toFixed(2)} s) | nixfx ${
              (n.seconds / fetched.seconds).toFixed(2)
            }× as fast`
          )
        } else {
          console.log(line)
        }
        console.log(
          `           same NARs under other paths (NarIndex hits, no NAR downloaded): ${fmt(again.seconds, 6, 2)} s (cpu ${
            again.cpu.toFixed(2)
          } s; narinfos planned after ${again.plan.toFixed(2)} s)`
        )
      }
    }
  } finally {
    child.kill()
  }

  console.log("\nraw decompression of the largest NAR's file (64 KiB input chunks; MB/s of output)")
  for (const name of Object.keys(caches)) {
    const large = Fs.readdirSync(Path.join(caches[name].cacheDir, "nar"))
      .map((f) => Path.join(caches[name].cacheDir, "nar", f))
      .reduce((a, b) => (Fs.statSync(a).size >= Fs.statSync(b).size ? a : b))
    const r = await rawDecompression(name, Fs.readFileSync(large))
    console.log(`  ${name.padEnd(5)} ${fmt(sizes[LARGE] / MB / r.seconds)} MB/s  (${fmt(sizes[LARGE] / MB / r.cpu)} MB per cpu-second)`)
  }
} finally {
  Fs.rmSync(root, { recursive: true, force: true })
}
