import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Node from "@nixfx/castore-nodes/Node"
import * as NarImport from "@nixfx/castore/NarImport"
import * as NixHash from "@nixfx/nix-compat/NixHash"
import * as GrpcClient from "@nixfx/pathinfo-grpc/GrpcClient"
import { GrpcStatusError, Status } from "@nixfx/pathinfo-grpc/GrpcError"
import * as GrpcServer from "@nixfx/pathinfo-grpc/GrpcServer"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import { makeTestPathInfo, nodeFromManifest, randomSignature } from "@nixfx/pathinfo/testing"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { callUnary, loadPackage } from "./peers.js"
import { memoryBacking } from "./support.js"

const fixturesDir = fileURLToPath(new URL("../../../fixtures/", import.meta.url))

/** A PathInfoService whose operations are slow, counting how many run at once. */
const slowPathInfoService = (options: { readonly delayMs: number; readonly listLength?: number }) => {
  let running = 0
  let maxRunning = 0
  const stored = Array.from({ length: options.listLength ?? 0 }, (_, i) => makeTestPathInfo({ name: `slow-${i}` }))
  const track = <A, E>(effect: Effect.Effect<A, E>) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        running++
        maxRunning = Math.max(maxRunning, running)
      }),
      () => effect,
      () => Effect.sync(() => running--)
    )
  const service = PathInfoService.make({
    get: () => track(Effect.as(Effect.sleep(options.delayMs), Option.none())),
    put: (p) => track(Effect.as(Effect.sleep(options.delayMs), p)),
    list: Stream.fromIterable(stored).pipe(Stream.tap(() => Effect.sleep(options.delayMs)))
  })
  return { service, stored, maxRunning: () => maxRunning }
}

describe("GrpcServer", () => {
  it.live("closing the server lets a slow List in flight finish, and refuses new calls", () =>
    Effect.gen(function*() {
      const slow = slowPathInfoService({ delayMs: 40, listLength: 15 })
      const serverScope = yield* Scope.make()
      const server = yield* Scope.extend(GrpcServer.make({ pathInfoService: slow.service }, { address: "127.0.0.1:0" }), serverScope)
      const result = yield* Effect.scoped(Effect.gen(function*() {
        const client = yield* GrpcClient.make(server.url, { retry: false })
        const firstArrived = yield* Deferred.make<void>()
        const listing = yield* Effect.fork(
          Stream.runCollect(client.pathInfoService.list.pipe(Stream.tap(() => Deferred.succeed(firstArrived, void 0))))
        )
        yield* Deferred.await(firstArrived)
        const closing = yield* Effect.fork(Scope.close(serverScope, Exit.void))
        yield* Effect.sleep(50)
        // a call started after shutdown began is refused
        const late = yield* Effect.flip(client.pathInfoService.get(crypto.randomBytes(20)))
        const listed = yield* Fiber.join(listing)
        yield* Fiber.join(closing)
        return { late, listed: Chunk.toReadonlyArray(listed) }
      }))
      assert.strictEqual(result.listed.length, 15, "the List in flight delivered everything")
      assert.deepStrictEqual(result.listed.map((p) => p.basename), slow.stored.map((p) => p.basename))
      assert.strictEqual(result.late._tag, "StorageError")
      if (result.late._tag === "StorageError") assert.strictEqual((result.late.cause as GrpcStatusError).code, Status.UNAVAILABLE)
    }))

  it.live("a call still running after shutdownTimeout is cancelled", () =>
    Effect.gen(function*() {
      const slow = slowPathInfoService({ delayMs: 1000, listLength: 100 })
      const serverScope = yield* Scope.make()
      const server = yield* Scope.extend(
        GrpcServer.make({ pathInfoService: slow.service }, { address: "127.0.0.1:0", shutdownTimeout: "200 millis" }),
        serverScope
      )
      const e = yield* Effect.scoped(Effect.gen(function*() {
        const client = yield* GrpcClient.make(server.url, { retry: false })
        const listing = yield* Effect.fork(Stream.runDrain(client.pathInfoService.list))
        yield* Effect.sleep(100)
        const started = Date.now()
        yield* Scope.close(serverScope, Exit.void)
        assert.isBelow(Date.now() - started, 900, "closing waited about shutdownTimeout, not for the call")
        return yield* Effect.flip(Fiber.join(listing))
      }))
      assert.strictEqual(e._tag, "StorageError")
    }))

  it.live("at most maxConcurrentCalls handlers run at once; the others wait", () =>
    Effect.gen(function*() {
      const slow = slowPathInfoService({ delayMs: 100 })
      const server = yield* GrpcServer.make({ pathInfoService: slow.service }, { address: "127.0.0.1:0", maxConcurrentCalls: 2 })
      const client = yield* GrpcClient.make(server.url)
      const results = yield* Effect.all(
        Array.from({ length: 8 }, () => client.pathInfoService.get(crypto.randomBytes(20))),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(results.length, 8)
      assert.isTrue(results.every(Option.isNone))
      assert.strictEqual(slow.maxRunning(), 2)
      assert.strictEqual(yield* server.activeCalls, 0)
    }).pipe(Effect.scoped))

  it.live("messages over maxMessageBytes are refused", () =>
    Effect.gen(function*() {
      const server = yield* GrpcServer.serve({ address: "127.0.0.1:0", maxMessageBytes: 2048 })
      const client = yield* GrpcClient.make(server.url)
      const big = makeTestPathInfo({ signatures: Array.from({ length: 40 }, (_, i) => randomSignature(`key-${i}`)) })
      const e = yield* Effect.flip(client.pathInfoService.put(big))
      assert.strictEqual(e._tag, "StorageError")
      if (e._tag === "StorageError") assert.strictEqual((e.cause as GrpcStatusError).code, Status.RESOURCE_EXHAUSTED)
      // a small one passes
      const small = makeTestPathInfo()
      yield* client.pathInfoService.put(small)
    }).pipe(Effect.scoped, Effect.provide(memoryBacking)))

  it.live("a service that is not served answers UNIMPLEMENTED", () =>
    Effect.gen(function*() {
      const server = yield* GrpcServer.make({ pathInfoService: yield* PathInfoService.makeMemory }, { address: "127.0.0.1:0" })
      const client = yield* GrpcClient.make(server.url)
      const e = yield* Effect.flip(client.blobService.has(B3Digest.hash(new Uint8Array(1))))
      assert.strictEqual(e.reason, "Storage")
      assert.strictEqual((e.cause as GrpcStatusError).code, Status.UNIMPLEMENTED)
      const n = yield* Effect.flip(client.calculateNar(new Node.SymlinkNode({ target: "x" as never })))
      assert.strictEqual(n._tag, "GrpcStatusError")
    }).pipe(Effect.scoped))

  it.live("a malformed or unusable address is a GrpcServerError", () =>
    Effect.gen(function*() {
      const bad = yield* Effect.flip(GrpcServer.make({}, { address: "no port" }))
      assert.strictEqual(bad._tag, "GrpcServerError")
      assert.include(bad.message, "expected host:port or unix:/abs/path")
      const relative = yield* Effect.flip(GrpcServer.make({}, { address: "unix:relative.sock" }))
      assert.include(relative.message, "must be absolute")
      const first = yield* GrpcServer.make({}, { address: "127.0.0.1:0" })
      const taken = yield* Effect.flip(GrpcServer.make({}, { address: `127.0.0.1:${first.port}` }))
      assert.strictEqual(taken._tag, "GrpcServerError")
      assert.include(taken.message, `127.0.0.1:${first.port}`)
    }).pipe(Effect.scoped))
})

// ---------------------------------------------------------------------------
// CalculateNAR over the fixture NARs
// ---------------------------------------------------------------------------

interface ManifestPath {
  readonly name: string
  readonly url: string
  readonly narSize: number
  readonly narHash: string
  readonly castore: Parameters<typeof nodeFromManifest>[0]
}

describe("CalculateNAR", () => {
  it.live("NAR size and sha256 of every fixture path, computed by the server from castore", () =>
    Effect.gen(function*() {
      const manifest = JSON.parse(fs.readFileSync(path.join(fixturesDir, "manifest.json"), "utf8")) as {
        readonly caches: { readonly none: { readonly paths: ReadonlyArray<ManifestPath> } }
      }
      const paths = manifest.caches.none.paths
      assert.strictEqual(paths.length, 26)
      const server = yield* GrpcServer.serve({ address: "127.0.0.1:0" })
      const client = yield* GrpcClient.make(server.url)
      const roots: Array<Node.Node> = []
      for (const p of paths) {
        const nar = fs.readFileSync(path.join(fixturesDir, "caches/none", p.url))
        const imported = yield* NarImport.ingest(Stream.make(new Uint8Array(nar)))
        assert.isTrue(Node.equals(imported.root, nodeFromManifest(p.castore)), p.name)
        roots.push(imported.root)
      }
      for (let i = 0; i < paths.length; i++) {
        const calculated = yield* client.calculateNar(roots[i])
        assert.strictEqual(calculated.narSize, paths[i].narSize, paths[i].name)
        assert.strictEqual(NixHash.toNixbase32String(NixHash.unsafeMake("sha256", calculated.narSha256)), paths[i].narHash, paths[i].name)
      }
      // a foreign client calls it too (snix package name)
      const loaded = loadPackage("snix", { extensions: false })
      const foreign = new loaded.store.v1.PathInfoService(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure())
      const tree = paths.findIndex((p) => p.name === "fx-tree")
      const root = roots[tree]
      if (root._tag !== "Directory") return assert.fail("fx-tree is a directory")
      const response = yield* Effect.promise(() =>
        callUnary(foreign, "CalculateNAR", { directory: { name: Buffer.alloc(0), digest: Buffer.from(root.digest), size: root.size } })
      )
      assert.strictEqual(response.nar_size, paths[tree].narSize)
      foreign.close()
      // the typed error comes back: a blob the server does not hold
      const missing = new Node.FileNode({ digest: B3Digest.hash(crypto.randomBytes(8)), size: 8, executable: false })
      const e = yield* Effect.flip(client.calculateNar(missing))
      assert.strictEqual(e._tag, "NarRenderError")
      if (e._tag === "NarRenderError") {
        assert.strictEqual(e.reason, "MissingBlob")
        assert.strictEqual(e.digest, Buffer.from(missing.digest).toString("hex"))
      }
    }).pipe(Effect.scoped, Effect.provide(memoryBacking)))
})
