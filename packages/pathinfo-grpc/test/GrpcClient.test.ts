import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import * as BlobService from "@nixfx/castore/BlobService"
import * as GrpcClient from "@nixfx/pathinfo-grpc/GrpcClient"
import * as GrpcServer from "@nixfx/pathinfo-grpc/GrpcServer"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import { makeTestPathInfo, randomNode } from "@nixfx/pathinfo/testing"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import { callUnary, loadPackage, plainPathInfo } from "./peers.js"
import { memoryBacking, socketPath } from "./support.js"

describe("GrpcClient.parseUrl", () => {
  it("reads grpc+http, grpc+https and grpc+unix URLs", () => {
    const ok = (url: string) => Either.getOrThrow(GrpcClient.parseUrl(url))
    assert.deepStrictEqual(ok("grpc+http://127.0.0.1:8000"), {
      address: "127.0.0.1:8000",
      secure: false,
      package: undefined,
      url: "grpc+http://127.0.0.1:8000"
    })
    assert.deepStrictEqual(ok("grpc+http://[::1]:8000/?package=snix").address, "[::1]:8000")
    assert.strictEqual(ok("grpc+http://[::1]:8000/?package=snix").package, "snix")
    assert.deepStrictEqual(ok("grpc+https://store.example"), {
      address: "store.example:443",
      secure: true,
      package: undefined,
      url: "grpc+https://store.example:443"
    })
    assert.deepStrictEqual(ok("grpc+unix:///run/nixfx/store.sock"), {
      address: "unix:///run/nixfx/store.sock",
      secure: false,
      package: undefined,
      url: "grpc+unix:///run/nixfx/store.sock"
    })
  })

  it("names the part that is wrong", () => {
    const cases: ReadonlyArray<readonly [string, StoreComposition.ConfigPart, string]> = [
      ["http://x:1", "scheme", "expected grpc+http://, grpc+https:// or grpc+unix://, got \"http\""],
      ["grpc+http://x", "host", "a port is required (grpc+http://x:PORT)"],
      ["grpc+http://x:1/some/path", "path", "grpc+http URLs take no path, got \"/some/path\""],
      ["grpc+http://x:1?package=nix", "query", "package must be tvix or snix, got \"nix\""],
      ["grpc+http://x:1?timeout=3", "query", "unknown query parameter \"timeout\"; accepted: package"],
      ["grpc+unix://host/sock", "host", "grpc+unix URLs take no host, got \"host\" (write grpc+unix:///abs/path)"],
      ["grpc+unix:///", "path", "expected the absolute path of a socket, got \"/\""],
      ["grpc+http://u:p@x:1", "host", "credentials in the URL are not supported"],
      ["grpc+http://x:1#f", "url", "a store URL takes no #fragment, got #f"]
    ]
    for (const [url, part, detail] of cases) {
      const e = Either.getOrThrow(Either.flip(GrpcClient.parseUrl(url)))
      assert.strictEqual(e._tag, "StoreConfigError", url)
      assert.strictEqual(e.part, part, url)
      assert.strictEqual(e.detail, detail, url)
    }
  })
})

describe("GrpcClient with StoreComposition", () => {
  it.live("grpc URLs and documents build stores once the registry has the grpc backend", () =>
    Effect.gen(function*() {
      const server = yield* GrpcServer.serve({ address: `unix:${socketPath("composition.sock")}` })
      const p = makeTestPathInfo({ node: randomNode("symlink") })
      yield* (yield* PathInfoService.PathInfoService).put(p)

      // by URL
      const viaUrl = yield* Effect.scoped(
        Effect.gen(function*() {
          const store = yield* StoreComposition.build(server.url, GrpcClient.registry)
          return yield* store.pathInfoService.get(p.storePath.digest)
        })
      )
      assert.isTrue(Option.isSome(viaUrl) && PathInfo.equals(viaUrl.value, p))

      // a document: memory near, this server far
      const document: StoreComposition.Document = {
        stores: {
          root: { type: "cache", near: "memory://", far: "remote" },
          remote: { type: "grpc", url: server.url, package: "snix", timeoutMillis: 5000, retries: 1 }
        }
      }
      const viaDocument = yield* Effect.gen(function*() {
        return yield* (yield* PathInfoService.PathInfoService).get(p.storePath.digest)
      }).pipe(Effect.provide(StoreComposition.layer(document).pipe(Layer.provide(GrpcClient.layerRegistry))))
      assert.isTrue(Option.isSome(viaDocument) && PathInfo.equals(viaDocument.value, p))

      // without the backend the scheme is unknown, and bad entries are named
      const unknown = yield* Effect.flip(Effect.scoped(StoreComposition.build(server.url)))
      const part = (e: StoreComposition.StoreError) => (e._tag === "StoreConfigError" ? e.part : e._tag)
      assert.strictEqual(part(unknown), "scheme")
      const badField = yield* Effect.flip(
        Effect.scoped(StoreComposition.build({ stores: { root: { type: "grpc", url: server.url, deadline: 3 } } }, GrpcClient.registry))
      )
      assert.strictEqual(part(badField), "field")
      assert.include(badField.message, "deadline")
      const badUrl = yield* Effect.flip(Effect.scoped(StoreComposition.build("grpc+http://nohost", GrpcClient.registry)))
      assert.strictEqual(part(badUrl), "host")
    }).pipe(Effect.scoped, Effect.provide(memoryBacking)))
})

describe("typed errors over the wire", () => {
  it.live("a nixfx server sends the typed error in the nixfx-error-bin trailer", () =>
    Effect.gen(function*() {
      const server = yield* GrpcServer.serve({ address: "127.0.0.1:0" })
      const loaded = loadPackage("tvix", { extensions: true })
      const client = new loaded.store.v1.PathInfoService(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure())
      const m = plainPathInfo(makeTestPathInfo(), { rootField: "node", extensions: true })
      m.narinfo.nar_sha256 = Buffer.alloc(3)
      const e = yield* Effect.promise(() => callUnary(client, "Put", m).then(() => assert.fail("accepted"), (e) => e as grpc.ServiceError))
      const trailer = e.metadata.get("nixfx-error-bin")[0]
      assert.instanceOf(trailer, Buffer)
      assert.deepStrictEqual(JSON.parse((trailer as Buffer).toString()), {
        _tag: "InvalidPathInfo",
        storePath: "",
        field: "narinfo.nar_sha256",
        detail: "must be 32 bytes, got 3"
      })
      client.close()
    }).pipe(Effect.scoped, Effect.provide(memoryBacking)))

  it.live("a nixfx client gets the server's own errors back: ReferenceConflict with its nodes, InvalidRange", () =>
    Effect.gen(function*() {
      const server = yield* GrpcServer.serve({ address: "127.0.0.1:0" })
      const client = yield* GrpcClient.make(server.url)
      const reference = makeTestPathInfo({ name: "reference", node: randomNode("directory") })
      yield* client.pathInfoService.put(reference)
      const recorded = randomNode("directory")
      const referrer = makeTestPathInfo({ references: [{ storePath: reference.storePath, node: Option.some(recorded) }] })
      const e = yield* Effect.flip(client.pathInfoService.put(referrer))
      assert.strictEqual(e._tag, "ReferenceConflict")
      if (e._tag === "ReferenceConflict") {
        assert.strictEqual(e.reference, reference.basename)
        assert.strictEqual(e.putSide, "referrer")
      }
      const blob = yield* client.blobService.putBytes(new Uint8Array(10))
      const range = yield* Effect.flip(client.blobService.read(blob.digest, { offset: 11 }))
      assert.strictEqual(range.reason, "InvalidRange")
      assert.include(range.message, "range offset 11 is past the end of the blob (10 bytes)")
      // the server honoured the range itself
      const part = yield* BlobService.readAll(blob.digest, { offset: 4, length: 3 }).pipe(
        Effect.provideService(BlobService.BlobService, client.blobService)
      )
      assert.strictEqual(Option.getOrThrow(part).length, 3)
      // listing still works after all that
      assert.isAtLeast((yield* Stream.runCount(client.pathInfoService.list)), 1)
    }).pipe(Effect.scoped, Effect.provide(memoryBacking)))
})

describe("TLS", () => {
  const tlsDir = new URL("./tls/", import.meta.url)
  const certChain = new Uint8Array(fs.readFileSync(new URL("cert.pem", tlsDir)))
  const privateKey = new Uint8Array(fs.readFileSync(new URL("key.pem", tlsDir)))

  it.live("grpc+https:// talks to a server with a certificate the client trusts, and refuses one it does not", () =>
    Effect.gen(function*() {
      const server = yield* GrpcServer.serve({ address: "127.0.0.1:0", tls: { certChain, privateKey } })
      assert.strictEqual(server.url, `grpc+https://127.0.0.1:${server.port}`)
      const p = makeTestPathInfo()
      yield* (yield* PathInfoService.PathInfoService).put(p)
      const trusted = yield* GrpcClient.make(server.url, { tls: { rootCerts: certChain } })
      const got = yield* trusted.pathInfoService.get(p.storePath.digest)
      assert.isTrue(Option.isSome(got) && PathInfo.equals(got.value, p))
      // the system's roots do not include this certificate
      const untrusting = yield* GrpcClient.make(server.url, { retry: false, timeout: "2 seconds" })
      const e = yield* Effect.flip(untrusting.pathInfoService.get(p.storePath.digest))
      assert.strictEqual(e._tag, "StorageError")
    }).pipe(Effect.scoped, Effect.provide(memoryBacking)))
})
