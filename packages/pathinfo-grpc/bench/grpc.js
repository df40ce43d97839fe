// Loopback throughput of the gRPC client against the gRPC server (memory
// services): PathInfo Get/Put calls per second (one at a time and 32 in
// flight), List rate, blob upload/download MB/s. Run built: node bench/grpc.js
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Node from "@nixfx/castore-nodes/Node"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import { Effect, Either, Layer, Option, Stream } from "effect"
import * as grpc from "@grpc/grpc-js"
import * as crypto from "node:crypto"
import { GrpcClient, GrpcServer, ProtoConversion } from "../dist/index.js"

const backing = Layer.mergeAll(PathInfoService.layerMemory, BlobService.layerMemory, DirectoryService.layerMemory)

/**
 * Prints the rate by wall-clock time and the CPU time per operation (this
 * process runs client and server; CPU time is the steadier figure on a busy
 * machine).
 */
const timed = (label, count, unit, effect) =>
  Effect.gen(function*() {
    const cpu = process.cpuUsage()
    const start = performance.now()
    yield* effect
    const seconds = (performance.now() - start) / 1000
    const used = process.cpuUsage(cpu)
    const cpuPerOp = (used.user + used.system) / count
    console.log(
      `${label.padEnd(46)} ${(count / seconds).toFixed(0).padStart(8)} ${unit.padEnd(12)} ${cpuPerOp.toFixed(1).padStart(8)} µs CPU per ${unit.split("/")[0]}`
    )
  })

/** Raw grpc-js unary calls (no Effect, no conversion) on the same machine, as a baseline. */
const rawBaseline = (count) =>
  Effect.promise(async () => {
    const id = (b) => b
    const server = new grpc.Server()
    server.addService({ Get: { path: "/bench.S/Get", requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id } }, {
      Get: (_call, cb) => cb(null, Buffer.alloc(200))
    })
    const port = await new Promise((res, rej) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => e ? rej(e) : res(p)))
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure())
    const one = () => new Promise((res) => client.makeUnaryRequest("/bench.S/Get", id, id, Buffer.alloc(22), new grpc.Metadata(), {}, () => res()))
    for (let i = 0; i < 100; i++) await one()
    return { one, close: () => { client.close(); server.forceShutdown() } }
  }).pipe(Effect.flatMap(({ one, close }) =>
    Effect.ensuring(
      Effect.zipRight(
        Effect.promise(async () => { for (let i = 0; i < count; i++) await one() }).pipe(Effect.zipRight(
          timed("raw grpc-js unary, one at a time (baseline)", count, "calls/s", Effect.promise(async () => { for (let i = 0; i < count; i++) await one() })))),
        timed("raw grpc-js unary, 32 in flight (baseline)", count, "calls/s", Effect.promise(async () => {
          let next = 0
          await Promise.all(Array.from({ length: 32 }, async () => { while (next++ < count) await one() }))
        }))
      ),
      Effect.sync(close)
    )))

const bytes = (n) => new Uint8Array(crypto.randomBytes(n))
const storePath = (name) => Either.getOrThrow(StorePath.make(bytes(20), name))
const directoryNode = () => new Node.DirectoryNode({ digest: B3Digest.unsafeMake(bytes(32)), size: 3 })

/** A typical PathInfo: a directory, 5 references by content, a signature, a deriver. */
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

const program = Effect.gen(function*() {
  const server = yield* GrpcServer.serve({ address: "127.0.0.1:0" })
  const client = yield* GrpcClient.make(server.url)
  const n = 3000
  const batch = () => Array.from({ length: n }, pathInfo)
  // Each figure is taken after a warm-up pass of the same work (JIT).
  const twice = (label, count, unit, make) =>
    Effect.zipRight(make(), timed(label, count, unit, make()))

  const pis = batch()
  const encoded = pis.map(ProtoConversion.pathInfoToBinary)
  yield* twice("encode PathInfo (5 refs by content)", n, "msg/s", () => Effect.sync(() => pis.forEach(ProtoConversion.pathInfoToBinary)))
  yield* twice("decode + check PathInfo (5 refs by content)", n, "msg/s", () => Effect.sync(() => encoded.forEach(ProtoConversion.pathInfoFromBinary)))

  yield* rawBaseline(n)
  const put = (ps, concurrency) => Effect.forEach(ps, (p) => client.pathInfoService.put(p), { discard: true, concurrency })
  const get = (ps, concurrency) => Effect.forEach(ps, (p) => client.pathInfoService.get(p.storePath.digest), { discard: true, concurrency })
  const stored = []
  const fresh = () => {
    const b = batch()
    stored.push(...b)
    return b
  }
  yield* twice("Put, one at a time", n, "calls/s", () => put(fresh(), 1))
  yield* twice("Get, one at a time", n, "calls/s", () => get(pis, 1))
  yield* twice("Put, 32 in flight", n, "calls/s", () => put(fresh(), 32))
  yield* twice("Get, 32 in flight", n, "calls/s", () => get(stored.slice(0, n), 32))
  yield* twice(`List (${4 * n} stored)`, 4 * n, "PathInfos/s", () => Stream.runDrain(client.pathInfoService.list))

  const size = 64 * 1024 * 1024
  const blob = new Uint8Array(crypto.randomBytes(size))
  let digest
  yield* twice("blob upload (64 MiB in 1 MiB writes)", size / 1e6, "MB/s", () =>
    Effect.scoped(Effect.gen(function*() {
      const writer = yield* client.blobService.writer
      for (let i = 0; i < size; i += 1 << 20) yield* writer.write(blob.subarray(i, i + (1 << 20)))
      digest = (yield* writer.close).digest
    })))
  yield* twice("blob download (64 MiB)", size / 1e6, "MB/s", () =>
    Effect.flatMap(client.blobService.read(digest), (s) => Stream.runDrain(Option.getOrThrow(s))))
}).pipe(Effect.scoped, Effect.provide(backing))

Effect.runPromise(program).then(() => process.exit(0), (e) => {
  console.error(e)
  process.exit(1)
})
