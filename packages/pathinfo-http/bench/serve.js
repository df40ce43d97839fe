// Serving a closure as a binary cache: our server (an SQLite + filesystem
// store, NARs rendered from castore while sent) against nginx (Debian's
// package, sendfile) serving the same closure as a `compression=none` file
// cache, in the same run.
//
// The closure (~520 MB of NAR, 160 paths; scripts/bench-nar-generator.js):
//   - bench-large:     one 200 MB file
//   - bench-many-N:    8 paths of ~25 MB of small files each (~6,000 files and
//                      symlinks of 0–8 KiB per path, ~48,000 in all)
//   - bench-lib-N:     150 paths of 1–4 files of 16–656 KiB
//   - bench-app:       references all of them (its closure is the whole set)
// Each NAR is generated once: written to the file cache (nar/<narhash>.nar and
// a narinfo like the ones `nix copy --to file://…?compression=none` writes)
// and ingested into the store on the way. Everything lives on /dev/shm (the
// OS temp dir when /dev/shm lacks room) and is removed at the end.
//
// Measured, for each server, best of --runs (default 3), alternating servers:
//   - every NAR downloaded whole with curl over one keep-alive connection
//     (sequential), and over 16 connections (curl --parallel);
//   - `nix copy --from http://127.0.0.1:PORT --to local?root=…` of bench-app's
//     closure (signatures checked against the bench key).
// Wall time, MB/s (10^6 bytes of NAR) and the server's CPU seconds
// (/proc/PID/stat: on a shared machine the CPU a server spends is steadier
// than wall time), and the ratio ours/nginx.
//
// Usage: npm run bench -- serve   (or, built: node packages/pathinfo-http/bench/serve.js
//        [--quick] [--runs=N] [--cpu-prof] [--no-access-log])
//   --quick          a ~100 MB closure
//   --cpu-prof       our server runs under `node --cpu-prof` (profile in the cwd)
//   --no-access-log  neither server writes an access log (default: both write one to a file)
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as NarImport from "@nixfx/castore/NarImport"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as NarInfo from "@nixfx/nix-compat/NarInfo"
import * as Nixbase32 from "@nixfx/nix-compat/Nixbase32"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import { Effect, Either, Option, Stream } from "effect"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { generateNar } from "../../../scripts/bench-nar-generator.js"
import { BinaryCacheServer } from "../dist/index.js"

const MB = 1e6
const args = process.argv.slice(2)
const self = fileURLToPath(import.meta.url)

// ---------------------------------------------------------------------------
// the closure
// ---------------------------------------------------------------------------

function closureSpec(scale) {
  const specs = []
  let seed = 1000
  specs.push({ name: "bench-large", smallBytes: 0, largeSizes: [Math.round(200 * MB * scale)], seed: seed++ })
  for (let i = 0; i < 8; i++) specs.push({ name: `bench-many-${i}`, smallBytes: 25 * MB * scale, largeSizes: [], seed: seed++ })
  const libs = Math.round(150 * scale)
  for (let i = 0; i < libs; i++) {
    const files = 1 + (i % 4)
    const largeSizes = Array.from({ length: files }, (_, k) => 16 * 1024 + ((i * 7919 + k * 104729) % (640 * 1024)))
    specs.push({ name: `bench-lib-${i}`, smallBytes: 0, largeSizes, seed: seed++ })
  }
  return specs
}

const storePathOf = (name) =>
  Either.getOrThrow(StorePath.make(new Uint8Array(Crypto.createHash("sha1").update(`nixfx-serve-bench-${name}`).digest()), name))

/**
 * Generates every NAR once: the file cache gets it as `nar/<narhash>.nar`
 * (written while the store ingests the same chunks) and a narinfo; the store
 * gets the castore tree and a signed PathInfo.
 */
const fillClosure = (specs, storeDir, cacheDir, secret) =>
  Effect.scoped(Effect.gen(function*() {
    const store = yield* StoreComposition.build(`sqlite://${storeDir}`)
    Fs.mkdirSync(Path.join(cacheDir, "nar"), { recursive: true })
    Fs.writeFileSync(Path.join(cacheDir, "nix-cache-info"), "StoreDir: /nix/store\n")
    const done = [] // { storePath, node, pathInfo }
    const put = (spec, references) =>
      Effect.gen(function*() {
        const tmp = Path.join(cacheDir, "nar", ".incoming")
        const fd = Fs.openSync(tmp, "w")
        const sha = Crypto.createHash("sha256")
        const chunks = Stream.fromIteratorSucceed((function*() {
          for (const chunk of generateNar(spec)) {
            Fs.writeSync(fd, chunk)
            sha.update(chunk)
            yield chunk
          }
        })(), 1)
        const result = yield* NarImport.ingest(chunks).pipe(
          Effect.provideService(BlobService.BlobService, store.blobService),
          Effect.provideService(DirectoryService.DirectoryService, store.directoryService)
        )
        Fs.closeSync(fd)
        const narSha256 = new Uint8Array(sha.digest())
        if (Buffer.compare(narSha256, result.narSha256) !== 0) throw new Error(`${spec.name}: ingest hashed another NAR`)
        const storePath = storePathOf(spec.name)
        const pathInfo = PathInfo.sign(
          Either.getOrThrow(PathInfo.make({
            storePath,
            node: result.root,
            references: references
              .map((r) => ({ storePath: r.storePath, node: Option.some(r.node) }))
              .sort((a, b) => (StorePath.toBasename(a.storePath) < StorePath.toBasename(b.storePath) ? -1 : 1)),
            narSize: result.narSize,
            narSha256,
            signatures: [],
            deriver: Option.none(),
            ca: Option.none()
          })),
          secret
        )
        yield* store.pathInfoService.put(pathInfo)
        const narHash = PathInfo.narHash(pathInfo)
        const url = `nar/${Nixbase32.encode(narSha256)}.nar`
        Fs.renameSync(tmp, Path.join(cacheDir, url))
        Fs.writeFileSync(
          Path.join(cacheDir, `${storePath.hashPart}.narinfo`),
          NarInfo.render(PathInfo.toNarInfo(pathInfo, { url, compression: "none", fileHash: narHash, fileSize: result.narSize }))
        )
        const entry = { spec, storePath, node: result.root, pathInfo, nginxUrl: url, ourUrl: BinaryCacheServer.narUrl(pathInfo) }
        done.push(entry)
        return entry
      })
    for (const spec of specs) yield* put(spec, [])
    // the top of the closure: references everything else
    const app = yield* put({ name: "bench-app", smallBytes: 0, largeSizes: [64 * 1024], seed: 1 }, [...done])
    return { paths: done, app }
  }))

// ---------------------------------------------------------------------------
// servers
// ---------------------------------------------------------------------------

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = Net.createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const port = s.address().port
      s.close(() => resolve(port))
    })
  })

const waitForPort = async (port, child) => {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`)
    const ok = await new Promise((resolve) => {
      const socket = Net.connect(port, "127.0.0.1", () => {
        socket.destroy()
        resolve(true)
      })
      socket.once("error", () => resolve(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`nothing listens on port ${port}`)
}

const startOurs = (storeDir, logFile, { cpuProf, accessLog }) =>
  new Promise((resolve, reject) => {
    const log = Fs.openSync(logFile, "a")
    const child = ChildProcess.fork(self, ["--serve", storeDir, accessLog ? "log" : "quiet"], {
      execArgv: cpuProf ? ["--cpu-prof", "--cpu-prof-name=serve-ours.cpuprofile"] : [],
      stdio: ["ignore", log, "inherit", "ipc"]
    })
    Fs.closeSync(log)
    child.once("message", (url) => resolve({ child, url }))
    child.once("exit", (code) => reject(new Error(`our server exited with ${code}`)))
  })

const nginxBinary = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((p) => Fs.existsSync(p))

const startNginx = async (dir, cacheDir, { accessLog }) => {
  const port = await freePort()
  const temp = (name) => {
    const p = Path.join(dir, name)
    Fs.mkdirSync(p, { recursive: true })
    return p
  }
  // One worker process (our server is one Node process), sendfile, keep-alive for the whole run.
  const conf = `
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log ${accessLog ? `${dir}/access.log` : "off"};
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  client_body_temp_path ${temp("client_body")};
  proxy_temp_path ${temp("proxy")};
  fastcgi_temp_path ${temp("fastcgi")};
  uwsgi_temp_path ${temp("uwsgi")};
  scgi_temp_path ${temp("scgi")};
  types {
    application/x-nix-nar nar;
    text/x-nix-narinfo narinfo;
    text/x-nix-cache-info nix-cache-info;
  }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${cacheDir};
  }
}
`
  const confFile = Path.join(dir, "nginx.conf")
  Fs.writeFileSync(confFile, conf)
  const child = ChildProcess.spawn(nginxBinary, ["-p", dir, "-c", confFile, "-e", `${dir}/error.log`], {
    stdio: ["ignore", "inherit", "inherit"]
  })
  await waitForPort(port, child)
  return { child, url: `http://127.0.0.1:${port}` }
}

/** CPU seconds (user + system, all threads) a process has used. */
const cpuSeconds = (pid) => {
  const fields = Fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}

// ---------------------------------------------------------------------------
// measurements
// ---------------------------------------------------------------------------

const haveTool = (cmd, args) => ChildProcess.spawnSync(cmd, args, { stdio: "ignore" }).status === 0

/** Runs `run` (a child process, synchronously): wall seconds and the server's CPU seconds meanwhile. */
const measured = (server, run) => {
  const cpu0 = cpuSeconds(server.child.pid)
  const t0 = performance.now()
  const result = run()
  return { result, seconds: (performance.now() - t0) / 1000, cpu: cpuSeconds(server.child.pid) - cpu0 }
}

/** Downloads every NAR with curl over `connections` connections; checks status and size of each. */
const download = (server, urls, sizes, connections, dir) => {
  const config = Path.join(dir, "curl.conf")
  Fs.writeFileSync(config, urls.map((u) => `url = "${server.url}/${u}"\noutput = "/dev/null"\n`).join(""))
  const { cpu, result: r, seconds } = measured(server, () =>
    ChildProcess.spawnSync(
      "curl",
      [
        "--silent",
        "--show-error",
        ...(connections > 1 ? ["--parallel", "--parallel-immediate", "--parallel-max", String(connections)] : []),
        "--write-out",
        "%{url_effective} %{http_code} %{size_download} %{num_connects}\\n",
        "--config",
        config
      ],
      { encoding: "utf8", maxBuffer: 64 << 20 }
    )
  )
  if (r.status !== 0) throw new Error(`curl failed (${r.status}): ${r.stderr}`)
  const lines = r.stdout.trim().split("\n")
  if (lines.length !== urls.length) throw new Error(`curl reported ${lines.length} of ${urls.length} transfers`)
  let bytes = 0
  let connects = 0
  for (const line of lines) {
    const [url, code, size, n] = line.split(" ")
    const expected = sizes.get(url.slice(server.url.length + 1))
    if (code !== "200" || Number(size) !== expected) throw new Error(`${url}: HTTP ${code}, ${size} bytes, expected ${expected}`)
    bytes += Number(size)
    connects += Number(n)
  }
  return { seconds, cpu, bytes, connects }
}

const nixEnv = {
  ...process.env,
  NIX_CONFIG: ["experimental-features = nix-command", "sandbox = false", "build-users-group =", "substituters ="].join("\n")
}

const removeTree = (dir) => {
  if (!Fs.existsSync(dir)) return
  ChildProcess.spawnSync("chmod", ["-R", "u+w", dir])
  Fs.rmSync(dir, { recursive: true, force: true })
}

const nixCopy = (server, app, publicKey, dest) => {
  removeTree(dest)
  const { cpu, result: r, seconds } = measured(server, () =>
    ChildProcess.spawnSync(
      "nix",
      [
        "copy",
        "--from",
        server.url,
        "--to",
        `local?root=${dest}`,
        "--option",
        "narinfo-cache-positive-ttl",
        "0",
        "--option",
        "narinfo-cache-negative-ttl",
        "0",
        "--option",
        "trusted-public-keys",
        publicKey,
        `/nix/store/${StorePath.toBasename(app.storePath)}`
      ],
      { env: nixEnv, encoding: "utf8" }
    )
  )
  if (r.status !== 0) throw new Error(`nix copy --from ${server.url} failed (${r.status}):\n${r.stderr}`)
  removeTree(dest)
  return { seconds, cpu }
}

const best = (runs) => runs.reduce((a, b) => (b.seconds < a.seconds ? b : a))

async function main() {
  const quick = args.includes("--quick")
  const runs = Number(args.find((a) => a.startsWith("--runs="))?.slice(7) ?? 3)
  const cpuProf = args.includes("--cpu-prof")
  const accessLog = !args.includes("--no-access-log")
  const specs = closureSpec(quick ? 0.2 : 1)
  const base = (() => {
    try {
      const s = Fs.statfsSync("/dev/shm")
      return s.bavail * s.bsize > 3e9 * (quick ? 0.2 : 1) ? "/dev/shm" : Os.tmpdir()
    } catch {
      return Os.tmpdir()
    }
  })()
  const root = Fs.mkdtempSync(Path.join(base, "nixfx-bench-serve-"))
  const storeDir = Path.join(root, "store")
  const cacheDir = Path.join(root, "cache")
  const children = []
  const cleanUp = () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL")
    removeTree(root)
  }
  process.on("exit", cleanUp)
  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(130))
  try {
    const secret = Either.getOrThrow(Keys.generateSecretKey("nixfx-serve-bench-1"))
    const publicKey = Keys.formatPublicKey(secret.public)
    const t0 = performance.now()
    const { paths, app } = await Effect.runPromise(fillClosure(specs, storeDir, cacheDir, secret))
    const all = [...paths]
    const narBytes = all.reduce((n, p) => n + p.pathInfo.narSize, 0)
    const files = (p) => (p.spec.smallBytes > 0 ? "small files" : p.spec.largeSizes.length === 1 ? "1 file" : "files")
    console.log(
      `closure: ${all.length} paths, ${(narBytes / MB).toFixed(0)} MB of NAR (largest ${
        (Math.max(...all.map((p) => p.pathInfo.narSize)) / MB).toFixed(0)
      } MB; ${all.filter((p) => files(p) === "small files").length} paths of small files); filled in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s under ${base}; cpus: ${Os.cpus().length}; load: ${Os.loadavg()[0].toFixed(1)}`
    )

    const servers = []
    const ours = await startOurs(storeDir, Path.join(root, "ours.log"), { cpuProf, accessLog })
    children.push(ours.child)
    servers.push({
      name: "ours",
      ...ours,
      urls: all.map((p) => p.ourUrl),
      sizes: new Map(all.map((p) => [p.ourUrl, p.pathInfo.narSize]))
    })
    if (nginxBinary === undefined) {
      console.log("nginx: not installed (looked for /usr/sbin/nginx, /usr/bin/nginx) — SKIPPING the comparison")
    } else {
      const nginx = await startNginx(Path.join(root, "nginx"), cacheDir, { accessLog })
      children.push(nginx.child)
      servers.push({
        name: "nginx",
        ...nginx,
        urls: all.map((p) => p.nginxUrl),
        sizes: new Map(all.map((p) => [p.nginxUrl, p.pathInfo.narSize]))
      })
    }
    // where the time goes: the paths of each kind over one connection
    const kinds = [
      ["the 200 MB file", (p) => p.spec.name === "bench-large"],
      ["small files", (p) => p.spec.smallBytes > 0],
      ["16–656 KiB files", (p) => p.spec.name.startsWith("bench-lib-") || p.spec.name === "bench-app"]
    ].map(([label, test]) => ({ label, paths: all.filter(test) }))
    const results = new Map(servers.map((s) => [s.name, { one: [], many: [], nix: [], kinds: kinds.map(() => []) }]))
    if (!haveTool("curl", ["--version"])) {
      console.log("curl: not installed — SKIPPING the downloads")
    } else {
      for (let run = 0; run < runs; run++) {
        for (const s of servers) results.get(s.name).one.push(download(s, s.urls, s.sizes, 1, root))
        for (const s of servers) results.get(s.name).many.push(download(s, s.urls, s.sizes, 16, root))
        kinds.forEach((kind, k) => {
          for (const s of servers) {
            const urls = kind.paths.map((p) => (s.name === "ours" ? p.ourUrl : p.nginxUrl))
            results.get(s.name).kinds[k].push(download(s, urls, s.sizes, 1, root))
          }
        })
      }
    }
    const haveNix = haveTool("nix", ["--version"])
    if (!haveNix) {
      console.log("nix: not installed — SKIPPING nix copy --from")
    } else {
      for (let run = 0; run < runs; run++) {
        for (const s of servers) results.get(s.name).nix.push(nixCopy(s, app, publicKey, Path.join(root, "nix-dest")))
      }
    }
    for (const s of servers) {
      s.child.kill("SIGINT")
      await new Promise((resolve) => s.child.exitCode !== null ? resolve() : s.child.once("exit", resolve))
    }

    const cell = (r, bytes = narBytes) =>
      r === undefined
        ? "—".padEnd(30)
        : `${r.seconds.toFixed(2).padStart(6)} s ${(bytes / MB / r.seconds).toFixed(0).padStart(5)} MB/s cpu ${
          r.cpu.toFixed(2).padStart(5)
        } s`
    const ratio = (kind) => {
      const a = results.get("ours")?.[kind]
      const b = results.get("nginx")?.[kind]
      if (!a?.length || !b?.length) return "—"
      return `${(best(a).seconds / best(b).seconds).toFixed(2)}× (cpu ${(best(a).cpu / best(b).cpu).toFixed(1)}×)`
    }
    console.log(`\nbest of ${runs} runs; MB/s of NAR; cpu = the server's CPU seconds during the run`)
    console.log(`${"".padEnd(18)} ${"ours (sqlite + filesystem)".padEnd(31)} ${"nginx (file cache, sendfile)".padEnd(31)} ours/nginx`)
    for (const [kind, label] of [["one", "1 connection"], ["many", "16 connections"], ["nix", "nix copy --from"]]) {
      const row = servers.map((s) => cell(results.get(s.name)[kind].length ? best(results.get(s.name)[kind]) : undefined))
      while (row.length < 2) row.push("—".padEnd(30))
      console.log(`${label.padEnd(18)} ${row[0].padEnd(31)} ${row[1].padEnd(31)} ${ratio(kind)}`)
    }
    console.log(`\none connection, by kind of path (best of ${runs}; MB/s of those paths' NAR)`)
    kinds.forEach((kind, k) => {
      const bytes = kind.paths.reduce((n, p) => n + p.pathInfo.narSize, 0)
      const row = servers.map((s) => {
        const r = results.get(s.name).kinds[k]
        return cell(r.length ? best(r) : undefined, bytes)
      })
      while (row.length < 2) row.push("—".padEnd(30))
      const ours = results.get("ours").kinds[k]
      const nginx = results.get("nginx")?.kinds[k]
      const ratio = ours.length && nginx?.length ? `${(best(ours).seconds / best(nginx).seconds).toFixed(2)}×` : "—"
      console.log(
        `${`${kind.label} (${kind.paths.length}, ${(bytes / MB).toFixed(0)} MB)`.padEnd(34)} ${row[0].padEnd(31)} ${
          row[1].padEnd(31)
        } ${ratio}`
      )
    })
    if (cpuProf) console.log("\nour server's CPU profile: serve-ours.cpuprofile (in the working directory)")
  } finally {
    cleanUp()
  }
}

// ---------------------------------------------------------------------------
// entry: the benchmark, or (child mode) our server over the store in a directory
// ---------------------------------------------------------------------------

if (args[0] === "--serve") {
  const [, storeDir, accessLog] = args
  const program = Effect.scoped(Effect.gen(function*() {
    const store = yield* StoreComposition.build(`sqlite://${storeDir}`)
    const running = yield* BinaryCacheServer.serve({ port: 0, accessLog: accessLog === "log" }).pipe(
      Effect.provideService(PathInfoService.PathInfoService, store.pathInfoService),
      Effect.provideService(BlobService.BlobService, store.blobService),
      Effect.provideService(DirectoryService.DirectoryService, store.directoryService)
    )
    process.send(running.url)
    return yield* Effect.never
  }))
  // SIGINT interrupts the program and exits normally (so --cpu-prof writes its profile).
  NodeRuntime.runMain(program, { disableErrorReporting: false })
} else {
  await main()
}
