/**
 * Interop with gRPC peers that are not ours (grpc-js + @grpc/proto-loader,
 * protobufjs encoding): a foreign client against the nixfx server, and the
 * nixfx client against a foreign server; invalid messages either way.
 */
import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Directory from "@nixfx/castore-nodes/Directory"
import * as Node from "@nixfx/castore-nodes/Node"
import * as PathComponent from "@nixfx/castore-nodes/PathComponent"
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as GrpcClient from "@nixfx/pathinfo-grpc/GrpcClient"
import { GrpcStatusError, Status } from "@nixfx/pathinfo-grpc/GrpcError"
import * as GrpcServer from "@nixfx/pathinfo-grpc/GrpcServer"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import { makeTestPathInfo, randomNode, randomSignature, randomStorePath } from "@nixfx/pathinfo/testing"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as crypto from "node:crypto"
import {
  callClientStream,
  callServerStream,
  callUnary,
  type Loaded,
  loadPackage,
  plainNode,
  plainPathInfo,
  startServer,
  stopServer
} from "./peers.js"
import { memoryBacking } from "./support.js"

const randomBytes = (n: number) => new Uint8Array(crypto.randomBytes(n))

/** A PathInfo with every field set, references by content included. */
const richPathInfo = () =>
  makeTestPathInfo({
    name: "interop",
    node: randomNode("directory"),
    references: [
      { storePath: randomStorePath("dep-a"), node: Option.some(randomNode("file")) },
      { storePath: randomStorePath("dep-b"), node: Option.none() }
    ],
    signatures: [randomSignature("cache-1")],
    deriver: Option.some(randomStorePath("interop.drv"))
  })

/** Runs `f` against a nixfx server on memory services. */
const withNixfxServer = <A, E>(
  f: (server: GrpcServer.GrpcServer) => Effect.Effect<A, E, PathInfoService.PathInfoService | BlobService.BlobService | DirectoryService.DirectoryService>
) =>
  Effect.scoped(
    Effect.gen(function*() {
      const server = yield* GrpcServer.serve({ address: "127.0.0.1:0" })
      return yield* f(server)
    })
  ).pipe(Effect.provide(memoryBacking))

const statusOf = (e: unknown) => e as grpc.ServiceError

const rejected = (promise: Promise<unknown>) =>
  Effect.promise(() => promise.then(() => assert.fail("the call succeeded"), (e) => statusOf(e)))

// ---------------------------------------------------------------------------
// a foreign client against the nixfx server
// ---------------------------------------------------------------------------

for (const pkg of ["tvix", "snix"] as const) {
  const rootField = pkg === "tvix" ? "node" : "entry"

  describe(`a grpc-js + proto-loader client (${pkg}) against the nixfx server`, () => {
    it.live("puts, gets and lists PathInfos, references by content included", () =>
      withNixfxServer((server) =>
        Effect.gen(function*() {
          const loaded = loadPackage(pkg, { extensions: true })
          const client = new loaded.store.v1.PathInfoService(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure())
          const p = richPathInfo()
          const put = yield* Effect.promise(() => callUnary(client, "Put", plainPathInfo(p, { rootField, extensions: true })))
          assert.strictEqual(put.narinfo.reference_names.length, 2)
          // what the nixfx service holds is exactly p
          const stored = yield* (yield* PathInfoService.PathInfoService).get(p.storePath.digest)
          assert.isTrue(Option.isSome(stored) && PathInfo.equals(stored.value, p))
          // get answers with the same message, reference nodes included
          const got = yield* Effect.promise(() => callUnary(client, "Get", { by_output_hash: Buffer.from(p.storePath.digest) }))
          assert.deepStrictEqual(got, put)
          assert.strictEqual(got[rootField][rootField], "directory")
          assert.strictEqual(Buffer.from(got[rootField].directory.name).toString(), p.basename)
          assert.strictEqual(got.nixfx_reference_nodes.length, 1)
          const known = p.references.find((r) => Option.isSome(r.node))!
          assert.strictEqual(Buffer.from(got.nixfx_reference_nodes[0].file.name).toString(), StorePath.toBasename(known.storePath))
          assert.strictEqual(got.narinfo.deriver.name, p.deriver.pipe(Option.getOrThrow).name.replace(/\.drv$/, ""))
          const listed = yield* Effect.promise(() => callServerStream(client, "List", {}))
          assert.isTrue(listed.some((m) => Buffer.from(m.references[0] ?? []).equals(Buffer.from(p.references[0].storePath.digest))))
          const missing = yield* rejected(callUnary(client, "Get", { by_output_hash: Buffer.from(randomBytes(20)) }))
          assert.strictEqual(missing.code, Status.NOT_FOUND)
          client.close()
        })
      ))

    it.live("a peer that does not know the extension fields (as tvix/snix) still works", () =>
      withNixfxServer((server) =>
        Effect.gen(function*() {
          const loaded = loadPackage(pkg, { extensions: false })
          const client = new loaded.store.v1.PathInfoService(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure())
          // the nixfx side stores references by content ...
          const p = richPathInfo()
          yield* (yield* PathInfoService.PathInfoService).put(p)
          // ... which the tvix-like peer skips as unknown fields
          const got = yield* Effect.promise(() => callUnary(client, "Get", { by_output_hash: Buffer.from(p.storePath.digest) }))
          assert.isUndefined(got.nixfx_reference_nodes)
          assert.deepStrictEqual(got.narinfo.reference_names, p.references.map((r) => StorePath.toBasename(r.storePath)))
          // and what it puts (no reference nodes) is stored with unknown nodes
          const q = makeTestPathInfo({ references: [{ storePath: randomStorePath("dep"), node: Option.none() }] })
          yield* Effect.promise(() => callUnary(client, "Put", plainPathInfo(q, { rootField, extensions: false })))
          const stored = yield* (yield* PathInfoService.PathInfoService).get(q.storePath.digest)
          assert.isTrue(Option.isSome(stored) && PathInfo.equals(stored.value, q))
          client.close()
        })
      ))

    it.live("uploads and reads blobs and directories", () =>
      withNixfxServer((server) =>
        Effect.gen(function*() {
          const loaded = loadPackage(pkg, { extensions: false })
          const address = `127.0.0.1:${server.port}`
          const blobs = new loaded.castore.v1.BlobService(address, grpc.credentials.createInsecure())
          const directories = new loaded.castore.v1.DirectoryService(address, grpc.credentials.createInsecure())
          const content = randomBytes(700_000)
          const put = yield* Effect.promise(() =>
            callClientStream(blobs, "Put", [0, 1, 2].map((i) => ({ data: Buffer.from(content.subarray(i * 300_000, (i + 1) * 300_000)) })))
          )
          assert.strictEqual(Buffer.from(put.digest).toString("hex"), Buffer.from(B3Digest.hash(content)).toString("hex"))
          const stat = yield* Effect.promise(() => callUnary(blobs, "Stat", { digest: put.digest }))
          assert.deepStrictEqual(stat.chunks, [])
          const chunks = yield* Effect.promise(() => callServerStream(blobs, "Read", { digest: put.digest }))
          assert.isTrue(Buffer.concat(chunks.map((c) => c.data)).equals(content))
          const absent = yield* rejected(callUnary(blobs, "Stat", { digest: Buffer.from(randomBytes(32)) }))
          assert.strictEqual(absent.code, Status.NOT_FOUND)

          const fileNode = new Node.FileNode({ digest: B3Digest.hash(content), size: content.length, executable: false })
          const leaf = Either.getOrThrow(Directory.make([{ name: name("data"), node: fileNode }]))
          const root = Either.getOrThrow(
            Directory.make([{ name: name("sub"), node: new Node.DirectoryNode({ digest: leaf.digest, size: leaf.size }) }])
          )
          const plainDirectory = (d: Directory.Directory) => {
            const entries = d.entries
            const of = (tag: string) => entries.filter((e) => e.node._tag === tag).map((e) => Object.values(plainNode(e.node, e.name))[0])
            return { directories: of("Directory"), files: of("File"), symlinks: of("Symlink") }
          }
          const response = yield* Effect.promise(() => callClientStream(directories, "Put", [plainDirectory(leaf), plainDirectory(root)]))
          assert.strictEqual(Buffer.from(response.root_digest).toString("hex"), Buffer.from(root.digest).toString("hex"))
          const closure = yield* Effect.promise(() => callServerStream(directories, "Get", { digest: Buffer.from(root.digest), recursive: true }))
          assert.strictEqual(closure.length, 2)
          assert.strictEqual(Buffer.from(closure[0].directories[0].name).toString(), "sub")
          assert.strictEqual(Buffer.from(closure[1].files[0].name).toString(), "data")
          // a parent before its child is refused
          const refused = yield* rejected(callClientStream(directories, "Put", [plainDirectory(root)]))
          assert.strictEqual(refused.code, Status.INVALID_ARGUMENT)
          assert.include(refused.details, "was not uploaded before its parent")
          blobs.close()
          directories.close()
        })
      ))

    it.live("invalid PathInfos are answered with INVALID_ARGUMENT and the reason", () =>
      withNixfxServer((server) =>
        Effect.gen(function*() {
          const loaded = loadPackage(pkg, { extensions: true })
          const client = new loaded.store.v1.PathInfoService(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure())
          const base = () => {
            const p = makeTestPathInfo({
              references: [0, 1, 2].map((i) => ({ storePath: randomStorePath(`ref-${i}`), node: Option.none() }))
            })
            return { p, message: plainPathInfo(p, { rootField, extensions: true }) }
          }
          const cases: Array<readonly [string, (m: Loaded) => void, string]> = [
            ["a reference digest of 19 bytes", (m) => {
              m.references[2] = m.references[2].subarray(1)
            }, "references[2]: digest must be 20 bytes, got 19"],
            ["no node", (m) => {
              delete m[rootField]
            }, `${"node"}: missing (a node is required)`],
            ["a node with nothing set", (m) => {
              m[rootField] = {}
            }, "node: no node set (expected one of directory, file, symlink)"],
            ["a root node named other than by a basename", (m) => {
              m[rootField].file.name = Buffer.from("not-a-store-path")
            }, "node.file.name: invalid store path \"not-a-store-path\": expected a 32-character nixbase32 digest, '-' and a name, got 16 characters"],
            ["a file digest of 31 bytes", (m) => {
              m[rootField].file.digest = m[rootField].file.digest.subarray(1)
            }, "node.file.digest: digest must be 32 bytes, got 31"],
            ["fewer reference names than references", (m) => {
              m.narinfo.reference_names.pop()
            }, "narinfo.reference_names: 2 reference names for 3 references (one name per entry of references, in the same order)"],
            ["a reference name with another digest than its reference", (m) => {
              const [a, b] = m.narinfo.reference_names
              m.narinfo.reference_names[0] = b
              m.narinfo.reference_names[1] = a
            }, "narinfo.reference_names[0]: "],
            ["a NAR sha256 of 31 bytes", (m) => {
              m.narinfo.nar_sha256 = m.narinfo.nar_sha256.subarray(1)
            }, "narinfo.nar_sha256: must be 32 bytes, got 31"],
            ["no narinfo", (m) => {
              delete m.narinfo
            }, "narinfo: missing (the NAR size, hash and reference names are required)"],
            ["a reference node for something that is not a reference", (m) => {
              m.nixfx_reference_nodes = [plainNode(randomNode("file"), StorePath.toBasename(randomStorePath("stranger")))]
            }, "nixfx_reference_nodes[0].file.name: "],
            ["a signature of 63 bytes", (m) => {
              m.narinfo.signatures = [{ name: "k", data: Buffer.alloc(63) }]
            }, "narinfo.signatures[0].data: a signature is 64 bytes, got 63"]
          ]
          for (const [what, spoil, reason] of cases) {
            const { message } = base()
            spoil(message)
            const e = yield* rejected(callUnary(client, "Put", message))
            assert.strictEqual(e.code, Status.INVALID_ARGUMENT, what)
            if (reason.endsWith(": ")) assert.isTrue(e.details.startsWith(`invalid PathInfo: ${reason}`), `${what}: ${e.details}`)
            else assert.strictEqual(e.details, `invalid PathInfo: ${reason}`, what)
          }
          const shortDigest = yield* rejected(callUnary(client, "Get", { by_output_hash: Buffer.alloc(19) }))
          assert.strictEqual(shortDigest.code, Status.INVALID_ARGUMENT)
          assert.strictEqual(shortDigest.details, "by_output_hash: digest must be 20 bytes, got 19")
          client.close()
        })
      ))
  })
}

const name = (s: string) => Either.getOrThrow(PathComponent.validate(s))


// ---------------------------------------------------------------------------
// the nixfx client against a foreign server
// ---------------------------------------------------------------------------

/** A tvix-like PathInfoService in grpc-js: a map of proto-loader messages, no extension fields. */
const foreignPathInfoServer = (pkg: "tvix" | "snix", options: {
  readonly answers?: Map<string, Loaded>
  readonly delayMs?: number
  readonly failFirst?: { count: number; readonly code: number }
} = {}) => {
  const loaded = loadPackage(pkg, { extensions: false })
  const rootField = pkg === "tvix" ? "node" : "entry"
  const stored = new Map<string, Loaded>()
  let calls = 0
  const maybeFail = (callback: (e: Partial<grpc.StatusObject> | null) => void): boolean => {
    calls++
    if (options.failFirst !== undefined && options.failFirst.count > 0) {
      options.failFirst.count--
      callback({ code: options.failFirst.code, details: "try again" })
      return true
    }
    return false
  }
  const implementation: grpc.UntypedServiceImplementation = {
    Get: (call: grpc.ServerUnaryCall<Loaded, Loaded>, callback: grpc.sendUnaryData<Loaded>) => {
      if (maybeFail(callback)) return
      const key = Buffer.from(call.request.by_output_hash).toString("hex")
      const answer = () => {
        const found = options.answers?.get(key) ?? stored.get(key)
        if (found === undefined) callback({ code: Status.NOT_FOUND, details: "PathInfo not found" })
        else callback(null, found)
      }
      if (options.delayMs === undefined) answer()
      else setTimeout(answer, options.delayMs)
    },
    Put: (call: grpc.ServerUnaryCall<Loaded, Loaded>, callback: grpc.sendUnaryData<Loaded>) => {
      if (maybeFail(callback)) return
      const m = call.request
      const basename = Buffer.from(m[rootField][m[rootField][rootField]].name).toString()
      const digest = Either.getOrThrow(StorePath.parseBasename(basename)).digest
      stored.set(Buffer.from(digest).toString("hex"), m)
      callback(null, m)
    },
    CalculateNAR: (_call: unknown, callback: grpc.sendUnaryData<Loaded>) => callback({ code: Status.UNIMPLEMENTED, details: "no" }),
    List: (call: grpc.ServerWritableStream<Loaded, Loaded>) => {
      for (const m of stored.values()) call.write(m)
      call.end()
    }
  }
  return { service: loaded.store.v1.PathInfoService.service as grpc.ServiceDefinition, implementation, calls: () => calls }
}

const withForeignServer = <A, E, R>(
  services: ReadonlyArray<readonly [grpc.ServiceDefinition, grpc.UntypedServiceImplementation]>,
  f: (url: string) => Effect.Effect<A, E, R>
) =>
  Effect.acquireUseRelease(
    Effect.promise(() => startServer(services)),
    ({ port }) => f(`grpc+http://127.0.0.1:${port}`),
    ({ server }) => Effect.promise(() => stopServer(server))
  )

describe("the nixfx client against a grpc-js + proto-loader server (a tvix-like peer)", () => {
  for (const pkg of ["tvix", "snix"] as const) {
    it.live(`puts, gets and lists (${pkg}); reference nodes are not kept by such a peer`, () => {
      const foreign = foreignPathInfoServer(pkg)
      return withForeignServer([[foreign.service, foreign.implementation]], (url) =>
        Effect.gen(function*() {
          const service = yield* PathInfoService.PathInfoService
          const p = richPathInfo()
          const put = yield* service.put(p)
          const withoutNodes = new PathInfo.PathInfo({ ...p, references: p.references.map((r) => ({ ...r, node: Option.none() })) })
          assert.isTrue(PathInfo.equals(put, withoutNodes), "the peer drops the extension field")
          const got = yield* service.get(p.storePath.digest)
          assert.isTrue(Option.isSome(got) && PathInfo.equals(got.value, withoutNodes))
          assert.isTrue(Option.isNone(yield* service.get(randomBytes(20))))
          const listed = Chunk.toReadonlyArray(yield* Stream.runCollect(service.list))
          assert.strictEqual(listed.length, 1)
          assert.isTrue(PathInfo.equals(listed[0], withoutNodes))
        }).pipe(Effect.provide(GrpcClient.layerPathInfoService(url, { package: pkg })))
      )
    })
  }

  it.live("invalid PathInfos from the peer are rejected with InvalidPathInfo naming the field", () => {
    const answers = new Map<string, Loaded>()
    const foreign = foreignPathInfoServer("tvix", { answers })
    const cases: Array<readonly [string, (m: Loaded) => void, string, string]> = [
      ["a reference digest of 19 bytes", (m) => {
        m.references[2] = m.references[2].subarray(1)
      }, "references[2]", "digest must be 20 bytes, got 19"],
      ["no node", (m) => {
        delete m.node
      }, "node", "missing (a node is required)"],
      ["a root node not named by a basename", (m) => {
        m.node.file.name = Buffer.from("x")
      }, "node.file.name", "invalid store path \"x\": expected a 32-character nixbase32 digest, '-' and a name, got 1 characters"],
      ["a directory digest of 33 bytes", (m) => {
        m.node = plainNode(randomNode("directory"), Buffer.from(m.node.file.name).toString())
        m.node.directory.digest = Buffer.concat([m.node.directory.digest, Buffer.alloc(1)])
      }, "node.directory.digest", "digest must be 32 bytes, got 33"],
      ["more reference names than references", (m) => {
        m.narinfo.reference_names.push(m.narinfo.reference_names[0])
      }, "narinfo.reference_names", "4 reference names for 3 references (one name per entry of references, in the same order)"],
      ["a NAR sha256 of 20 bytes", (m) => {
        m.narinfo.nar_sha256 = Buffer.alloc(20)
      }, "narinfo.nar_sha256", "must be 32 bytes, got 20"]
    ]
    const digests: Array<Uint8Array> = []
    for (const [, spoil] of cases) {
      const p = makeTestPathInfo({
        references: [0, 1, 2].map((i) => ({ storePath: randomStorePath(`ref-${i}`), node: Option.none() }))
      })
      const m = plainPathInfo(p, { rootField: "node", extensions: false })
      spoil(m)
      answers.set(Buffer.from(p.storePath.digest).toString("hex"), m)
      digests.push(p.storePath.digest)
    }
    return withForeignServer([[foreign.service, foreign.implementation]], (url) =>
      Effect.gen(function*() {
        const service = yield* PathInfoService.PathInfoService
        for (let i = 0; i < cases.length; i++) {
          const [what, , field, detail] = cases[i]
          const e = yield* Effect.flip(service.get(digests[i]))
          assert.strictEqual(e._tag, "InvalidPathInfo", what)
          if (e._tag === "InvalidPathInfo") {
            assert.strictEqual(e.field, field, what)
            assert.strictEqual(e.detail, detail, what)
            assert.strictEqual(e.message, `invalid PathInfo: ${field}: ${detail}`)
          }
        }
      }).pipe(Effect.provide(GrpcClient.layerPathInfoService(url)))
    )
  })

  it.live("invalid directories and blobs from the peer are rejected", () => {
    const loaded = loadPackage("tvix", { extensions: false })
    const shortDigest = { directories: [], files: [{ name: Buffer.from("f"), digest: Buffer.alloc(31), size: 1, executable: false }], symlinks: [] }
    const badName = { directories: [], files: [], symlinks: [{ name: Buffer.from("a/b"), target: Buffer.from("x") }] }
    const directories: grpc.UntypedServiceImplementation = {
      Get: (call: grpc.ServerWritableStream<Loaded, Loaded>) => {
        call.write(call.request.recursive ? badName : shortDigest)
        call.end()
      },
      Put: (_call: unknown, callback: grpc.sendUnaryData<Loaded>) => callback({ code: Status.UNIMPLEMENTED, details: "read-only" })
    }
    const content = randomBytes(1000)
    const blobs: grpc.UntypedServiceImplementation = {
      // no nixfx_size and no chunk list, as a tvix server answers
      Stat: (_call: unknown, callback: grpc.sendUnaryData<Loaded>) => callback(null, { chunks: [] }),
      // ignores the (unknown) range fields, sends everything
      Read: (call: grpc.ServerWritableStream<Loaded, Loaded>) => {
        for (let i = 0; i < content.length; i += 300) call.write({ data: Buffer.from(content.subarray(i, i + 300)) })
        call.end()
      },
      Put: (_call: unknown, callback: grpc.sendUnaryData<Loaded>) => callback(null, { digest: Buffer.alloc(32) })
    }
    return withForeignServer(
      [[loaded.castore.v1.DirectoryService.service, directories], [loaded.castore.v1.BlobService.service, blobs]],
      (url) =>
        Effect.gen(function*() {
          const directoryService = yield* DirectoryService.DirectoryService
          const digest = B3Digest.hash(randomBytes(8))
          const e1 = yield* Effect.flip(directoryService.get(digest))
          assert.strictEqual(e1.reason, "Corrupt")
          assert.include(e1.message, "the server sent an invalid Directory: files[0].digest: digest must be 32 bytes, got 31")
          const e2 = yield* Effect.flip(Stream.runDrain(directoryService.getRecursive(digest)))
          assert.strictEqual(e2.reason, "Corrupt")
          assert.include(e2.message, "symlinks[0].name")

          const blobService = yield* BlobService.BlobService
          const d = B3Digest.hash(content)
          // the size is counted by reading; ranges are cut on this side
          assert.deepStrictEqual(yield* blobService.size(d), Option.some(1000))
          const part = yield* BlobService.readAll(d, { offset: 250, length: 400 })
          assert.isTrue(Buffer.from(Option.getOrThrow(part)).equals(Buffer.from(content.subarray(250, 650))))
          const past = yield* Effect.flip(blobService.read(d, { offset: 1001 }))
          assert.strictEqual(past.reason, "InvalidRange")
          assert.include(past.message, "range offset 1001 is past the end of the blob (1000 bytes)")
          // a server claiming another digest than the bytes sent is caught
          const e3 = yield* Effect.flip(blobService.putBytes(content))
          assert.strictEqual(e3.reason, "Storage")
          assert.include(e3.message, `the server stored the blob as ${"00".repeat(32)}`)
        }).pipe(Effect.provide(Layer.merge(GrpcClient.layerDirectoryService(url), GrpcClient.layerBlobService(url))))
    )
  })

  it.live("a call past its deadline fails with DEADLINE_EXCEEDED as the cause", () => {
    const foreign = foreignPathInfoServer("tvix", { delayMs: 1000 })
    return withForeignServer([[foreign.service, foreign.implementation]], (url) =>
      Effect.gen(function*() {
        const service = yield* PathInfoService.PathInfoService
        const started = Date.now()
        const e = yield* Effect.flip(service.get(randomBytes(20)))
        const elapsed = Date.now() - started
        assert.strictEqual(e._tag, "StorageError")
        if (e._tag === "StorageError") {
          assert.instanceOf(e.cause, GrpcStatusError)
          assert.strictEqual((e.cause as GrpcStatusError).code, Status.DEADLINE_EXCEEDED)
          assert.strictEqual((e.cause as GrpcStatusError).codeName, "DEADLINE_EXCEEDED")
          assert.strictEqual(e.operation, "get")
        }
        assert.isBelow(elapsed, 900, "gave up at the deadline")
      }).pipe(Effect.provide(GrpcClient.layerPathInfoService(url, { timeout: "150 millis" })))
    )
  })

  it.live("idempotent calls are retried on UNAVAILABLE, as configured", () =>
    Effect.gen(function*() {
      const p = makeTestPathInfo()
      // two failures, three retries allowed: succeeds on the third call
      const retried = foreignPathInfoServer("tvix", { failFirst: { count: 2, code: Status.UNAVAILABLE } })
      yield* withForeignServer([[retried.service, retried.implementation]], (url) =>
        Effect.gen(function*() {
          const service = yield* PathInfoService.PathInfoService
          yield* service.put(p)
          assert.strictEqual(retried.calls(), 3)
        }).pipe(Effect.provide(GrpcClient.layerPathInfoService(url, { retry: { times: 3, initialDelay: "10 millis" } }))))
      // no retries: the first failure is the answer
      const strict = foreignPathInfoServer("tvix", { failFirst: { count: 1, code: Status.UNAVAILABLE } })
      yield* withForeignServer([[strict.service, strict.implementation]], (url) =>
        Effect.gen(function*() {
          const e = yield* Effect.flip((yield* PathInfoService.PathInfoService).put(p))
          assert.strictEqual(e._tag, "StorageError")
          assert.include(e.message, "UNAVAILABLE: try again")
          assert.strictEqual(strict.calls(), 1)
        }).pipe(Effect.provide(GrpcClient.layerPathInfoService(url, { retry: false }))))
      // other codes are not retried
      const internal = foreignPathInfoServer("tvix", { failFirst: { count: 1, code: Status.INTERNAL } })
      yield* withForeignServer([[internal.service, internal.implementation]], (url) =>
        Effect.gen(function*() {
          yield* Effect.flip((yield* PathInfoService.PathInfoService).put(p))
          assert.strictEqual(internal.calls(), 1)
        }).pipe(Effect.provide(GrpcClient.layerPathInfoService(url, { retry: { times: 3, initialDelay: "10 millis" } }))))
    }))
})
