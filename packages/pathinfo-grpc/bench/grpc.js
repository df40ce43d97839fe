// PathInfo Get (hit) and Put over gRPC on loopback: calls/s and p50/p99
// latency at 1 and 64 calls in flight, for our client and server beside a
// bare @grpc/grpc-js client and server (no Effect, no conversion; the bare
// server answers pre-encoded messages of the same size), plus the cross
// pairs that tell the client's share from the server's. Then List and blob
// streaming rates. Client and server run in this one process, so calls/s is
// bounded by the CPU both sides use per call.
//
// Run built: npm run bench -- pathinfo-grpc
//   GRPC_BENCH_CALLS  calls per measurement (default 2000)
//   GRPC_BENCH_ROUNDS interleaved rounds; each row shows the median (default 5)
//   GRPC_BENCH_ONLY   "getput" skips List and the blob rows
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Node from "@nixfx/castore-nodes/Node"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import * as SqlPathInfoService from "@nixfx/pathinfo/SqlPathInfoService"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import { create, toBinary } from "@bufbuild/protobuf"
import * as grpc from "@grpc/grpc-js"
import { Effect, Either, Layer, Option, Stream } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { GrpcClient, GrpcServer, ProtoConversion } from "../dist/index.js"
import { GetPathInfoRequestSchema } from "../dist/gen/tvix/store/protos/rpc_pathinfo_pb.js"

const CALLS = Number(process.env.GRPC_BENCH_CALLS ?? 2000)
const ROUNDS = Number(process.env.GRPC_BENCH_ROUNDS ?? 5)
const CONCURRENCIES = [1, 64]
const GET = "/tvix.store.v1.PathInfoService/Get"
const PUT = "/tvix.store.v1.PathInfoService/Put"

// ---------------------------------------------------------------------------
// data
// ---------------------------------------------------------------------------

const bytes = (n) => new Uint8Array(crypto.randomBytes(n))
const storePath = (name) => Either.getOrThrow(StorePath.make(bytes(20), name))
const directoryNode = () => new Node.DirectoryNode({ digest: B3Digest.unsafeMake(bytes(32)), size: 3 })

/** A typical PathInfo: a directory, 5 references by content, a signature, a deriver (~960 bytes encoded). */
const pathInfo = () =>
  new PathInfo.PathInfo({
    storePath: storePath("thing-1.0"),
    node: directoryNode(),
    references: Array.from({ length: 5 }, (_, i) => ({ storePath: storePath(`dep-${i}`), node: Option.some(directoryNode()) }))
      .sort((a, b) => (StorePath.toBasename(a.storePath) < StorePath.toBasename(b.storePath) ? -1 : 1)),
    narSize: 100_000,
    narSha256: bytes(32),
    signatures: [new Keys.Signature({ keyName: "cache.example-1", bytes: bytes(64) })],
    deriver: Option.some(storePath("thing-1.0.drv")),
    ca: Option.none()
  })

/** A PathInfo with its encodings: the Put request (= Get response) and the Get request. */
const sample = () => {
  const info = pathInfo()
  const encoded = Buffer.from(ProtoConversion.pathInfoToBinary(info))
  const getRequest = Buffer.from(
    toBinary(GetPathInfoRequestSchema, create(GetPathInfoRequestSchema, { byWhat: { case: "byOutputHash", value: info.storePath.digest } }))
  )
  return { info, encoded, getRequest }
}

/** The PathInfos every Get asks for (stored in every server first). */
const stored = Array.from({ length: CALLS }, sample)
/** Fresh PathInfos for each Put measurement. */
const freshForPut = () => Array.from({ length: CALLS }, sample)

// ---------------------------------------------------------------------------
// the bare server and client (plain grpc-js, pre-encoded messages)
// ---------------------------------------------------------------------------

const id = (b) => b
const unaryDefinition = (p) => ({
  path: p,
  requestStream: false,
  responseStream: false,
  requestSerialize: id,
  requestDeserialize: id,
  responseSerialize: id,
  responseDeserialize: id
})

/**
 * Get answers the pre-encoded PathInfo for the request (a Map lookup on the
 * request bytes, so our client's checks hold); Put answers its request.
 */
const startBareServer = () =>
  new Promise((resolve, reject) => {
    const answers = new Map(stored.map((s) => [s.getRequest.toString("latin1"), s.encoded]))
    const fallback = stored[0].encoded
    const server = new grpc.Server()
    server.addService({ Get: unaryDefinition(GET), Put: unaryDefinition(PUT) }, {
      Get: (call, callback) => callback(null, answers.get(call.request.toString("latin1")) ?? fallback),
      Put: (call, callback) => callback(null, call.request)
    })
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, port) =>
      e ? reject(e) : resolve({ url: `grpc+http://127.0.0.1:${port}`, address: `127.0.0.1:${port}`, close: () => server.forceShutdown() }))
  })

const bareClient = (address) => {
  const client = new grpc.Client(address, grpc.credentials.createInsecure())
  const call = (method, request) =>
    new Promise((resolve, reject) =>
      client.makeUnaryRequest(method, id, id, request, new grpc.Metadata(), {}, (e, v) => (e ? reject(e) : resolve(v))))
  return {
    get: (s) => call(GET, s.getRequest),
    put: (s) => call(PUT, s.encoded),
    close: () => client.close()
  }
}

// ---------------------------------------------------------------------------
// measuring
// ---------------------------------------------------------------------------

/** Runs `one` over `items` with `concurrency` in flight; wall time, CPU time and each call's latency. */
const measurePromises = async (items, concurrency, one) => {
  const latencies = new Float64Array(items.length)
  const cpu = process.cpuUsage()
  const start = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) {
      const i = next++
      const t = performance.now()
      await one(items[i])
      latencies[i] = performance.now() - t
    }
  }))
  const wall = performance.now() - start
  const used = process.cpuUsage(cpu)
  return { wall, cpu: (used.user + used.system) / 1000, latencies }
}

/** The same for an Effect per item, run as one Effect program (as a user of the client would). */
const measureEffects = (items, concurrency, one) => {
  const latencies = new Float64Array(items.length)
  const cpu = process.cpuUsage()
  const start = performance.now()
  const program = Effect.forEach(items, (item, i) =>
    Effect.suspend(() => {
      const t = performance.now()
      return Effect.map(one(item), () => {
        latencies[i] = performance.now() - t
      })
    }), { concurrency, discard: true })
  return Effect.runPromise(program).then(() => {
    const wall = performance.now() - start
    const used = process.cpuUsage(cpu)
    return { wall, cpu: (used.user + used.system) / 1000, latencies }
  })
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]

const summarize = ({ wall, cpu, latencies }) => {
  const sorted = Float64Array.from(latencies).sort()
  return {
    rate: latencies.length / (wall / 1000),
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    cpuPerCall: (cpu * 1000) / latencies.length
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

// ---------------------------------------------------------------------------
// the pairs
// ---------------------------------------------------------------------------

const memoryBacking = Layer.mergeAll(PathInfoService.layerMemory, BlobService.layerMemory, DirectoryService.layerMemory)
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nixfx-grpc-bench-"))
const sqliteBacking = Layer.mergeAll(SqlPathInfoService.layer(), BlobService.layerMemory, DirectoryService.layerMemory).pipe(
  Layer.provide(StoreComposition.sqliteClientLayer(path.join(tmp, "store.sqlite"), "better-sqlite3"))
)

/**
 * Starts our server on `backing` in its own runtime (as `nixfx serve grpc`
 * would run it); resolves to its URL and a close function.
 */
const startOurServer = async (backing) => {
  let release
  const released = new Promise((r) => (release = r))
  const url = await new Promise((resolve, reject) => {
    Effect.runPromise(
      Effect.gen(function*() {
        const server = yield* GrpcServer.serve({ address: "127.0.0.1:0" })
        resolve(server.url)
        yield* Effect.promise(() => released)
      }).pipe(Effect.scoped, Effect.provide(backing))
    ).catch(reject)
  })
  return { url, address: url.slice("grpc+http://".length), close: release }
}

/** Our client on its own scope; `close` ends it. */
const ourClient = async (url) => {
  let release
  const released = new Promise((r) => (release = r))
  const client = await new Promise((resolve, reject) => {
    Effect.runPromise(
      Effect.gen(function*() {
        resolve(yield* GrpcClient.make(url))
        yield* Effect.promise(() => released)
      }).pipe(Effect.scoped)
    ).catch(reject)
  })
  const service = client.pathInfoService
  return {
    effects: true,
    get: (s) => service.get(s.info.storePath.digest),
    put: (s) => service.put(s.info),
    close: release
  }
}

const measure = (client, op, items, concurrency) =>
  client.effects
    ? measureEffects(items, concurrency, client[op])
    : measurePromises(items, concurrency, client[op])

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------

const fmt = (n, digits = 0) => n.toFixed(digits)

const main = async () => {
  const servers = {
    bare: await startBareServer(),
    memory: await startOurServer(memoryBacking),
    sqlite: await startOurServer(sqliteBacking)
  }
  const clients = {
    "bare → bare": bareClient(servers.bare.address),
    "ours → ours (memory)": await ourClient(servers.memory.url),
    "ours → ours (SQLite)": await ourClient(servers.sqlite.url),
    "bare → ours (memory)": bareClient(servers.memory.address),
    "ours → bare": await ourClient(servers.bare.url)
  }
  const pairs = Object.keys(clients)
  const reference = "bare → bare"

  // every server holds the PathInfos Get asks for; each pair warms up (JIT, connection)
  for (const name of ["ours → ours (memory)", "ours → ours (SQLite)"]) {
    await measure(clients[name], "put", stored, 16)
  }
  for (const name of pairs) {
    await measure(clients[name], "get", stored, 16)
    await measure(clients[name], "put", freshForPut(), 16)
  }

  const results = new Map()
  for (const op of ["get", "put"]) {
    for (const concurrency of CONCURRENCIES) {
      // Rounds interleave the pairs, so that load from elsewhere on the machine
      // falls on all of them alike; each row shows the median round.
      const rounds = new Map(pairs.map((p) => [p, []]))
      for (let round = 0; round < ROUNDS; round++) {
        for (const name of pairs) {
          const items = op === "get" ? stored : freshForPut()
          rounds.get(name).push(summarize(await measure(clients[name], op, items, concurrency)))
        }
      }
      for (const name of pairs) {
        const rs = rounds.get(name)
        results.set(`${op} ${concurrency} ${name}`, {
          rate: median(rs.map((r) => r.rate)),
          p50: median(rs.map((r) => r.p50)),
          p99: median(rs.map((r) => r.p99)),
          cpuPerCall: median(rs.map((r) => r.cpuPerCall))
        })
      }
    }
  }

  console.log(
    `PathInfo (${stored[0].encoded.length} bytes encoded) over loopback, client and server in one process; ` +
      `${CALLS} calls per measurement, median of ${ROUNDS} interleaved rounds`
  )
  console.log(
    `${"op".padEnd(4)} ${"in flight".padStart(9)}  ${"client → server".padEnd(22)} ${"calls/s".padStart(8)} ${"p50 ms".padStart(7)} ${
      "p99 ms".padStart(7)
    } ${"CPU µs/call".padStart(11)} ${"ours / bare".padStart(11)}  within 1.5×  ${"by CPU".padStart(6)}`
  )
  let allWithin = true
  for (const op of ["get", "put"]) {
    for (const concurrency of CONCURRENCIES) {
      const bare = results.get(`${op} ${concurrency} ${reference}`)
      for (const name of pairs) {
        const r = results.get(`${op} ${concurrency} ${name}`)
        const ratio = bare.rate / r.rate
        const cpuRatio = r.cpuPerCall / bare.cpuPerCall
        const within = ratio <= 1.5
        const judged = name.startsWith("ours → ours")
        if (judged && !within) allWithin = false
        console.log(
          `${(op === "get" ? "Get" : "Put").padEnd(4)} ${String(concurrency).padStart(9)}  ${name.padEnd(22)} ${fmt(r.rate).padStart(8)} ${
            fmt(r.p50, 2).padStart(7)
          } ${fmt(r.p99, 2).padStart(7)} ${fmt(r.cpuPerCall).padStart(11)} ${
            name === reference ? "(reference)".padStart(11) : `${fmt(ratio, 2)}×`.padStart(11)
          }  ${(name === reference ? "" : within ? "yes" : "NO").padEnd(11)}  ${name === reference ? "" : `${fmt(cpuRatio, 2)}×`.padStart(6)}`
        )
      }
    }
  }
  console.log(
    `ours → ours within 1.5× of bare → bare on every row: ${allWithin ? "yes" : "NO"} ` +
      `(ours / bare = bare calls/s ÷ ours; "by CPU" = ours CPU per call ÷ bare; the cross pairs show the client's and the server's share)`
  )

  for (const c of Object.values(clients)) c.close()
  servers.bare.close()
  servers.sqlite.close()

  if (process.env.GRPC_BENCH_ONLY !== "getput") await streaming(servers.memory.url)
  servers.memory.close()
}

// ---------------------------------------------------------------------------
// streaming: List, blob upload and download
// ---------------------------------------------------------------------------

const timed = (label, count, unit, effect) =>
  Effect.gen(function*() {
    const cpu = process.cpuUsage()
    const start = performance.now()
    yield* effect
    const seconds = (performance.now() - start) / 1000
    const used = process.cpuUsage(cpu)
    console.log(
      `${label.padEnd(40)} ${fmt(count / seconds).padStart(8)} ${unit.padEnd(12)} ${
        fmt((used.user + used.system) / count, 1).padStart(8)
      } µs CPU per ${unit.split("/")[0]}`
    )
  })

const streaming = (url) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const client = yield* GrpcClient.make(url)
      const twice = (label, count, unit, make) => Effect.zipRight(make(), timed(label, count, unit, make()))
      console.log()
      const listed = yield* Stream.runCount(client.pathInfoService.list)
      yield* twice(`List (${listed} stored)`, listed, "PathInfos/s", () => Stream.runDrain(client.pathInfoService.list))
      const size = 64 * 1024 * 1024
      const blob = bytes(size)
      let digest
      yield* twice("blob upload (64 MiB in 1 MiB writes)", size / 1e6, "MB/s", () =>
        Effect.scoped(Effect.gen(function*() {
          const writer = yield* client.blobService.writer
          for (let i = 0; i < size; i += 1 << 20) yield* writer.write(blob.subarray(i, i + (1 << 20)))
          digest = (yield* writer.close).digest
        })))
      yield* twice("blob download (64 MiB)", size / 1e6, "MB/s", () =>
        Effect.flatMap(client.blobService.read(digest), (s) => Stream.runDrain(Option.getOrThrow(s))))
    }).pipe(Effect.scoped)
  )

main().then(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
  process.exit(0)
}, (e) => {
  console.error(e)
  process.exit(1)
})
