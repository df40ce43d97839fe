/**
 * The binary cache server under load: 64 HTTP clients (a keep-alive
 * connection each) on loopback for a bounded time against a server (in a
 * child process, so its memory is its own) over a SQLite + filesystem store
 * holding every fixture path, with uploads on. Every answer is checked
 * (narinfos byte for byte, NAR bodies against Nix's NARs); the server's
 * memory must not keep growing; the NAR-stream bound answers 503 with
 * Retry-After instead of queueing without limit; and stopping the server
 * (SIGTERM) while 64 clients upload loses no upload it acknowledged.
 */
import { assert, describe, it } from "@effect/vitest"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Node from "@nixfx/castore-nodes/Node"
import * as Nar from "@nixfx/nix-compat/Nar"
import * as NarInfo from "@nixfx/nix-compat/NarInfo"
import * as Nixbase32 from "@nixfx/nix-compat/Nixbase32"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import {
  fillStore,
  fixtureNars,
  formatReport,
  formatStop,
  loadProblems,
  missingFromStore,
  type Operation,
  type Outcome,
  runLoad,
  spawnServerChild,
  stopMidWrites
} from "@nixfx/pathinfo/loadTesting"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import { loadFixturePathInfos, makeTestPathInfo } from "@nixfx/pathinfo/testing"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as BinaryCacheServer from "../src/BinaryCacheServer.js"
import { fixturesDir } from "./support/fixtures.js"

const packageDir = fileURLToPath(new URL("..", import.meta.url))
const serverScript = fileURLToPath(new URL("./support/load-server.ts", import.meta.url))

const CLIENTS = 64
const LOAD_MS = 10_000
/** NAR bodies in flight at once (the default), fewer than the clients that may ask. */
const NAR_STREAMS = 16
/** How long a NAR request waits for a stream before its 503. */
const NAR_STREAM_WAIT_MS = 250
const TOKEN = "load-test-token-0123456789"
const MB = 1024 * 1024

// ---------------------------------------------------------------------------
// the store served
// ---------------------------------------------------------------------------

const fixtures = loadFixturePathInfos(fixturesDir)
const nars = fixtureNars(fixturesDir)

/** A PathInfo for a NAR holding one regular file, and the NAR. */
const fileNar = (contents: Uint8Array, name: string) => {
  const nar = Either.getOrThrow(Nar.encodeTree({ _tag: "File", executable: false, contents }))
  const pathInfo = makeTestPathInfo({
    name,
    node: new Node.FileNode({ digest: B3Digest.hash(contents), size: contents.length, executable: false }),
    narSize: nar.length,
    narSha256: new Uint8Array(crypto.createHash("sha256").update(nar).digest())
  })
  return { pathInfo, nar }
}

/** A NAR too large to sit in the socket buffers: a client that stops reading it holds its stream. */
const big = fileNar(new Uint8Array(crypto.randomBytes(8 * MB)), "big")

const freshStoreDir = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `nixfx-http-${name}-`))

const filledStore = (dir: string) =>
  Effect.scoped(Effect.flatMap(
    StoreComposition.build(`sqlite://${dir}`),
    (store) => fillStore(store, [...fixtures, big.pathInfo], new Map([...nars, [big.pathInfo.basename, big.nar]]))
  ))

const serveChild = (dir: string, narStreamWaitMs: number) =>
  spawnServerChild({
    packageDir,
    script: serverScript,
    args: [dir, String(NAR_STREAMS), String(narStreamWaitMs), TOKEN]
  })

// ---------------------------------------------------------------------------
// a client: one keep-alive connection
// ---------------------------------------------------------------------------

interface Reply {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly body: Buffer
}

interface Opened {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  /** Reads the rest of the body (the response is paused until then). */
  readonly body: Effect.Effect<Buffer, Error>
}

/** Sends a request and answers once the headers are in; the body waits until asked for. */
const open = (
  agent: http.Agent,
  base: string,
  method: string,
  target: string,
  options: { readonly headers?: Record<string, string>; readonly body?: Uint8Array | string } = {}
): Effect.Effect<Opened, Error> =>
  Effect.async<Opened, Error>((resume) => {
    const url = new URL(base)
    const req = http.request({ host: url.hostname, port: url.port, method, path: target, headers: options.headers, agent }, (res) => {
      res.pause()
      resume(Effect.succeed({
        status: res.statusCode ?? 0,
        headers: res.headers,
        body: Effect.async<Buffer, Error>((resumeBody) => {
          const chunks: Array<Buffer> = []
          res.on("data", (c: Buffer) => chunks.push(c))
          res.on("end", () => resumeBody(Effect.succeed(Buffer.concat(chunks))))
          res.on("error", (e) => resumeBody(Effect.fail(e)))
          res.on("aborted", () => resumeBody(Effect.fail(new Error(`${method} ${target}: the response was cut`))))
          res.resume()
          return Effect.sync(() => res.destroy())
        })
      }))
    })
    req.on("error", (e) => resume(Effect.fail(e)))
    req.end(options.body)
    return Effect.sync(() => req.destroy())
  })

const request = (...args: Parameters<typeof open>): Effect.Effect<Reply, Error> =>
  Effect.flatMap(open(...args), (o) => Effect.map(o.body, (body) => ({ status: o.status, headers: o.headers, body })))

const sha256 = (bytes: Uint8Array): string => crypto.createHash("sha256").update(bytes).digest("hex")
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex")

const fail = (what: string) => Effect.fail(new Error(what))

const expectStatus = (r: Reply, status: number, what: string): Effect.Effect<void, Error> =>
  r.status === status ? Effect.void : fail(`${what}: status ${r.status}, expected ${status}: ${r.body.toString().slice(0, 200)}`)

/**
 * A 503 from the NAR-stream bound, with Retry-After: expected under the load
 * and counted apart. (A 503 because the server is stopping is not this.)
 */
const busy = (r: Reply, what: string): Effect.Effect<Outcome, Error> =>
  r.body.toString().startsWith("too many NAR transfers in flight")
    ? r.headers["retry-after"] === undefined ? fail(`${what}: a 503 without Retry-After`) : Effect.succeed("busy")
    : fail(`${what}: status 503: ${r.body.toString().slice(0, 200)}`)

const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(Math.random() * xs.length)]

interface LoadClient {
  readonly agent: http.Agent
  readonly base: string
  /** Paths this client uploaded (the latest few), with their NARs. */
  readonly own: Array<{ readonly pathInfo: PathInfo.PathInfo; readonly nar: Uint8Array }>
}

const hashOf = (p: PathInfo.PathInfo) => Nixbase32.encode(p.storePath.digest)
const narinfoOf = (p: PathInfo.PathInfo) => `/${hashOf(p)}.narinfo`
const narOf = (p: PathInfo.PathInfo) => "/" + BinaryCacheServer.narUrl(p)
const bearer = { authorization: `Bearer ${TOKEN}` }

/** A fixture path with its NAR, or one of the client's own uploads. */
const served = (c: LoadClient) => {
  if (c.own.length > 0 && Math.random() < 0.3) return pick(c.own)
  const pathInfo = pick(fixtures)
  return { pathInfo, nar: nars.get(pathInfo.basename)! }
}

/** Uploads a fresh path: its NAR, then its narinfo; `busy` when the NAR upload found no free stream. */
const upload = (c: LoadClient, name: string) =>
  Effect.gen(function*() {
    const size = 1 + crypto.randomInt(Math.random() < 0.1 ? MB : 64 * 1024)
    const { nar, pathInfo } = fileNar(new Uint8Array(crypto.randomBytes(size)), name)
    const file = `nar/${Nixbase32.encode(pathInfo.narSha256)}.nar`
    const narinfo = NarInfo.render(PathInfo.toNarInfo(pathInfo, {
      url: file,
      compression: "none",
      fileHash: PathInfo.narHash(pathInfo),
      fileSize: nar.length
    }))
    const putNar = yield* request(c.agent, c.base, "PUT", "/" + file, { headers: bearer, body: nar })
    if (putNar.status === 503) return { outcome: yield* busy(putNar, `PUT ${file}`), pathInfo, nar }
    yield* expectStatus(putNar, 204, `PUT ${file}`)
    const putInfo = yield* request(c.agent, c.base, "PUT", narinfoOf(pathInfo), { headers: bearer, body: narinfo })
    yield* expectStatus(putInfo, 204, `PUT ${narinfoOf(pathInfo)}`)
    return { outcome: "ok" as Outcome, pathInfo, nar }
  })

const operations: ReadonlyArray<Operation<LoadClient>> = [
  {
    name: "narinfo GET (hit)",
    weight: 22,
    run: (c) =>
      Effect.gen(function*() {
        const { pathInfo } = served(c)
        const r = yield* request(c.agent, c.base, "GET", narinfoOf(pathInfo))
        yield* expectStatus(r, 200, `GET ${narinfoOf(pathInfo)}`)
        if (r.body.toString() !== BinaryCacheServer.renderNarInfo(pathInfo)) {
          return yield* fail(`${narinfoOf(pathInfo)}: another narinfo came back:\n${r.body.toString()}`)
        }
        return "ok" as const
      })
  },
  {
    name: "narinfo GET (miss)",
    weight: 5,
    run: (c) =>
      Effect.gen(function*() {
        const target = `/${Nixbase32.encode(crypto.randomBytes(20))}.narinfo`
        const r = yield* request(c.agent, c.base, "GET", target)
        yield* expectStatus(r, 404, `GET ${target}`)
        return "ok" as const
      })
  },
  {
    name: "narinfo HEAD",
    weight: 5,
    run: (c) =>
      Effect.gen(function*() {
        const { pathInfo } = served(c)
        const r = yield* request(c.agent, c.base, "HEAD", narinfoOf(pathInfo))
        yield* expectStatus(r, 200, `HEAD ${narinfoOf(pathInfo)}`)
        if (r.body.length !== 0) return yield* fail(`HEAD ${narinfoOf(pathInfo)} sent a body`)
        return "ok" as const
      })
  },
  {
    name: "nix-cache-info GET",
    weight: 5,
    run: (c) =>
      Effect.gen(function*() {
        const r = yield* request(c.agent, c.base, "GET", "/nix-cache-info")
        yield* expectStatus(r, 200, "GET /nix-cache-info")
        if (r.body.toString() !== "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n") {
          return yield* fail(`another nix-cache-info: ${r.body.toString()}`)
        }
        return "ok" as const
      })
  },
  {
    name: "NAR GET (whole)",
    weight: 18,
    run: (c) =>
      Effect.gen(function*() {
        const { pathInfo } = served(c)
        const r = yield* request(c.agent, c.base, "GET", narOf(pathInfo))
        if (r.status === 503) return yield* busy(r, `GET ${narOf(pathInfo)}`)
        yield* expectStatus(r, 200, `GET ${narOf(pathInfo)}`)
        if (r.body.length !== pathInfo.narSize || sha256(r.body) !== hex(pathInfo.narSha256)) {
          return yield* fail(`${narOf(pathInfo)}: the body does not hash to the NarHash`)
        }
        return "ok" as const
      })
  },
  {
    name: "NAR GET (range)",
    weight: 10,
    run: (c) =>
      Effect.gen(function*() {
        const { nar, pathInfo } = served(c)
        const start = crypto.randomInt(pathInfo.narSize)
        const end = start + 1 + crypto.randomInt(pathInfo.narSize - start)
        const r = yield* request(c.agent, c.base, "GET", narOf(pathInfo), { headers: { range: `bytes=${start}-${end - 1}` } })
        if (r.status === 503) return yield* busy(r, `GET ${narOf(pathInfo)} (range)`)
        yield* expectStatus(r, 206, `GET ${narOf(pathInfo)} bytes=${start}-${end - 1}`)
        if (r.headers["content-range"] !== `bytes ${start}-${end - 1}/${pathInfo.narSize}`) {
          return yield* fail(`${narOf(pathInfo)}: Content-Range ${r.headers["content-range"]}`)
        }
        if (!r.body.equals(Buffer.from(nar.subarray(start, end)))) {
          return yield* fail(`${narOf(pathInfo)} bytes=${start}-${end - 1}: other bytes than Nix's NAR`)
        }
        return "ok" as const
      })
  },
  {
    name: "upload (NAR + narinfo)",
    weight: 12,
    run: (c) =>
      Effect.gen(function*() {
        const u = yield* upload(c, "load-upload")
        if (u.outcome === "busy") return u.outcome
        c.own.push({ pathInfo: u.pathInfo, nar: u.nar })
        if (c.own.length > 20) c.own.shift()
        return "ok" as const
      })
  }
]

describe("BinaryCacheServer under load", () => {
  it.live(`${CLIENTS} clients for ${LOAD_MS / 1000} s: every answer right, memory flat, the NAR-stream bound answers 503`, () =>
    Effect.gen(function*() {
      const dir = freshStoreDir("load")
      yield* filledStore(dir)
      const server = yield* serveChild(dir, NAR_STREAM_WAIT_MS)
      const report = yield* runLoad({
        clients: CLIENTS,
        durationMs: LOAD_MS,
        makeClient: () =>
          Effect.acquireRelease(
            Effect.sync((): LoadClient => ({
              agent: new http.Agent({ keepAlive: true, maxSockets: 1 }),
              base: server.url,
              own: []
            })),
            (c) => Effect.sync(() => c.agent.destroy())
          ),
        operations,
        sample: server.sample
      })
      console.log(formatReport(
        `HTTP binary cache server (SQLite + filesystem store, ${NAR_STREAMS} NAR streams, ${NAR_STREAM_WAIT_MS} ms wait, uploads on)`,
        report
      ))
      assert.deepStrictEqual(loadProblems(report, { maxGrowthBytes: 50 * MB }), [])

      // The bound, deterministically: clients that stop reading hold all the
      // streams; more NAR requests get a 503 with Retry-After after the wait
      // (not an unbounded queue), other requests are served meanwhile, and
      // the held bodies complete once read.
      const agents = Array.from({ length: NAR_STREAMS + 4 }, () => new http.Agent({ keepAlive: false }))
      yield* Effect.addFinalizer(() => Effect.sync(() => agents.forEach((a) => a.destroy())))
      const held = yield* Effect.forEach(
        agents.slice(0, NAR_STREAMS),
        (agent) => open(agent, server.url, "GET", narOf(big.pathInfo)),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(held.map((h) => h.status), held.map(() => 200), "the first streams are served")
      const t0 = performance.now()
      const refused = yield* Effect.forEach(
        agents.slice(NAR_STREAMS),
        (agent) => request(agent, server.url, "GET", narOf(fixtures[0])),
        { concurrency: "unbounded" }
      )
      const waited = performance.now() - t0
      for (const r of refused) {
        assert.strictEqual(r.status, 503, "a NAR request past the bound is refused")
        assert.strictEqual(r.headers["retry-after"], "1")
      }
      assert.isAtLeast(waited, NAR_STREAM_WAIT_MS - 20, "refused after waiting narStreamWait")
      const info = yield* request(new http.Agent(), server.url, "GET", narinfoOf(big.pathInfo))
      assert.strictEqual(info.status, 200, "narinfos are served while the NAR streams are taken")
      const bodies = yield* Effect.forEach(held, (h) => h.body, { concurrency: "unbounded" })
      for (const b of bodies) assert.strictEqual(sha256(b), hex(big.pathInfo.narSha256), "a held NAR completes whole")
      console.log(
        `  bound: ${NAR_STREAMS} NAR streams held by clients not reading; ${refused.length} more NAR requests got 503 + Retry-After ` +
          `after ${waited.toFixed(0)} ms; a narinfo was served meanwhile; the held ${bodies.length} NARs (8 MiB each) then completed`
      )

      const exit = yield* server.stop
      assert.strictEqual(exit.code, 0, exit.stderr)
      fs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.scoped), 180_000)

  it.live(`SIGTERM while ${CLIENTS} clients upload: every acknowledged upload is stored, the rest fail cleanly`, () =>
    Effect.gen(function*() {
      const dir = freshStoreDir("shutdown")
      const server = yield* serveChild(dir, 30_000)
      const stop = yield* stopMidWrites({
        server,
        clients: CLIENTS,
        makeWriter: (index) =>
          Effect.map(
            Effect.acquireRelease(
              Effect.sync(() => new http.Agent({ keepAlive: true, maxSockets: 1 })),
              (agent) => Effect.sync(() => agent.destroy())
            ),
            (agent) =>
              Effect.flatMap(
                upload({ agent, base: server.url, own: [] }, `shutdown-${index}`),
                (u) => u.outcome === "ok" ? Effect.succeed(u.pathInfo) : fail("503: no NAR stream free in 30 s")
              )
          ),
        classify: (e) => {
          const code = (e as NodeJS.ErrnoException).code
          return code === "ECONNREFUSED"
            ? "connection refused"
            : code === "ECONNRESET" || e.message === "socket hang up"
            ? "connection closed"
            : /status 503\b.*: the server is shutting down/.test(e.message)
            ? "503 shutting down"
            : `error: ${e.message}`
        }
      })

      // each PathInfo, and the blob its NAR's file went to
      const missing = yield* missingFromStore(`sqlite://${dir}`, stop.acknowledged, (store, p) =>
        p.node._tag === "File"
          ? Effect.map(store.blobService.size(p.node.digest), Option.contains(p.node.size))
          : Effect.succeed(false))
      console.log(formatStop("HTTP graceful shutdown (upload: PUT NAR, PUT narinfo)", stop, missing.length))
      assert.strictEqual(stop.exit.code, 0, stop.exit.stderr)
      assert.deepStrictEqual(missing, [], "every acknowledged upload is in the store, its blob too")
      const clean = ["connection refused", "connection closed", "503 shutting down"]
      for (const [kind] of stop.refusals) assert.include(clean, kind, "uploads fail only by being refused by the stopping server")
      assert.strictEqual(Array.from(stop.refusals.values()).reduce((a, b) => a + b, 0), CLIENTS)
      fs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.scoped), 180_000)
})
