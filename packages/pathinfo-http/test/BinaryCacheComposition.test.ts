/**
 * `nix+http(s)://` URLs and `binary-cache` entries in StoreComposition, and
 * the layers (`layer`, `layerCached`, `layerResolveStore`).
 */
import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import * as Effect from "effect/Effect"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as BinaryCache from "../src/BinaryCache.js"
import { serveCache } from "./support/cacheServer.js"
import { cacheDir, digestOf, manifest, pathByName, publicKey } from "./support/fixtures.js"
import { expectFixture, expectStored, some } from "./support/helpers.js"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nixfx-binary-cache-composition-"))
const key1 = manifest.keys["test-cache-1"].public
const key2 = manifest.keys["test-cache-2"].public

describe("BinaryCache.fromUrl", () => {
  it("reads the cache, the keys, detection and concurrency", () => {
    const o = Either.getOrThrow(
      BinaryCache.fromUrl(
        `nix+https://cache.example.org/sub/dir/?trusted-public-keys=${encodeURIComponent(`${key1} ${key2}`)}&frankenbuild-detection=warn&concurrency=3`
      )
    )
    assert.strictEqual(o.url, "https://cache.example.org/sub/dir")
    assert.deepStrictEqual(o.trustedPublicKeys.map(Keys.formatPublicKey), [key1, key2])
    assert.strictEqual(o.frankenbuildDetection, "warn")
    assert.strictEqual(o.concurrency, 3)
    const plain = Either.getOrThrow(BinaryCache.fromUrl(`http://127.0.0.1:8080?trusted-public-keys=${key1}+${key2}`))
    assert.strictEqual(plain.url, "http://127.0.0.1:8080")
    assert.strictEqual(plain.trustedPublicKeys.length, 2)
    assert.strictEqual(plain.frankenbuildDetection, "off")
    assert.strictEqual(plain.concurrency, BinaryCache.defaultConcurrency)
    assert.isUndefined(plain.retries)
    assert.isUndefined(plain.forbidden)
  })

  it("reads the HTTP behaviour: retries, delays, timeouts (ms or s), the 403 policy", () => {
    const o = Either.getOrThrow(
      BinaryCache.fromUrl(
        "nix+https://cache.example.org?retries=7&retry-delay=100ms&max-retry-delay=2.5s&timeout=30s&response-timeout=5s&idle-timeout=1500ms&forbidden=error"
      )
    )
    assert.strictEqual(o.retries, 7)
    assert.strictEqual(Duration.toMillis(o.retryDelay!), 100)
    assert.strictEqual(Duration.toMillis(o.maxRetryDelay!), 2500)
    assert.strictEqual(Duration.toMillis(o.timeout!), 30_000)
    assert.strictEqual(Duration.toMillis(o.responseTimeout!), 5000)
    assert.strictEqual(Duration.toMillis(o.idleTimeout!), 1500)
    assert.strictEqual(o.forbidden, "error")
    // the backend's entry keeps them
    const entry = Either.getOrThrow(BinaryCache.backend.fromUrl!(new URL("https://x"), "nix+https://c.example?retries=0&idle-timeout=2s&forbidden=miss"))
    assert.deepInclude(entry, { retries: 0, idleTimeout: "2000ms", forbidden: "miss" })
  })

  const bad: ReadonlyArray<readonly [string, StoreComposition.ConfigPart, string]> = [
    ["ftp://cache.example.org", "scheme", "http://"],
    ["nix+http://cache.example.org?priority=10", "query", "unknown query parameter \"priority\""],
    ["nix+http://cache.example.org?frankenbuild-detection=maybe", "query", "off, fail or warn"],
    ["nix+http://cache.example.org?concurrency=0", "query", "positive integer"],
    ["nix+http://cache.example.org?trusted-public-keys=nocolon", "query", "trusted-public-keys"],
    ["nix+http://cache.example.org?trusted-public-keys=k:AAAA", "query", "trusted-public-keys"],
    ["nix+http://cache.example.org/#x", "url", "fragment"],
    ["nix+http://cache.example.org?retries=-1", "query", "retries must be a non-negative integer"],
    ["nix+http://cache.example.org?retry-delay=100", "query", "retry-delay must be a duration like 250ms"],
    ["nix+http://cache.example.org?idle-timeout=1m", "query", "idle-timeout must be a duration"],
    ["nix+http://cache.example.org?forbidden=deny", "query", "forbidden must be miss or error"]
  ]
  for (const [url, part, text] of bad) {
    it(`${url}: ${part}`, () => {
      const r = BinaryCache.fromUrl(url)
      if (Either.isRight(r)) return assert.fail("accepted")
      assert.strictEqual(r.left.part, part, r.left.message)
      assert.include(r.left.message, text)
    })
  }
})

describe("BinaryCache in StoreComposition", () => {
  it.live("a nix+http:// URL builds a store: the cache over a private memory store", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("zstd")])
      const url = `nix+${server.url}/?trusted-public-keys=${encodeURIComponent(key1)}`
      const store = yield* StoreComposition.build(url, BinaryCache.registry)
      const app = pathByName("zstd", "fx-app-1.0")
      expectFixture(some(yield* store.pathInfoService.get(digestOf(app)), app.name), app)
      // the store's castore services hold what was imported
      const lib = pathByName("zstd", "fx-lib-1.0")
      const libInfo = some(yield* store.pathInfoService.get(digestOf(lib)), lib.name)
      assert.strictEqual(libInfo.basename.endsWith("fx-lib-1.0"), true)
      const e = yield* Effect.flip(store.pathInfoService.put(libInfo))
      assert.strictEqual(e._tag, "NotSupported")
      // a key that did not sign: refused
      const strict = yield* StoreComposition.build(
        `nix+${server.url}?trusted-public-keys=${encodeURIComponent(key2)}`,
        BinaryCache.registry
      )
      const refused = yield* Effect.flip(strict.pathInfoService.get(digestOf(app)))
      assert.strictEqual(refused._tag, "StorageError")
      assert.include(refused.message, "test-cache-2")
    })))

  it.live("cache(near: sqlite, far: binary-cache resolving in that sqlite store)", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("bzip2")])
      const local = path.join(tmp, "near")
      const document = {
        stores: {
          root: { type: "cache", near: "local", far: "remote" },
          local: { type: "sqlite", path: local },
          remote: { type: "binary-cache", url: server.url, trustedPublicKeys: [key1], resolveIn: "local" }
        }
      }
      const store = yield* StoreComposition.build(document, BinaryCache.registry)
      const app = pathByName("bzip2", "fx-app-1.0")
      expectFixture(some(yield* store.pathInfoService.get(digestOf(app)), app.name), app)
      const fetched = server.requests.length
      assert.isAbove(fetched, 0)
      // served by the near side now, the whole closure
      for (const name of ["fx-app-1.0", "fx-lib-1.0", "fx-base-1.0"]) {
        const p = pathByName("bzip2", name)
        expectFixture(some(yield* store.pathInfoService.get(digestOf(p)), name), p)
        yield* expectStored(store, p)
      }
      assert.strictEqual(server.requests.length, fetched, "no request once the near store holds the closure")
      // the same directory opened again holds everything
      const reopened = yield* StoreComposition.build(`sqlite://${local}`)
      yield* expectStored(reopened, app)
    })))

  it.live("HTTP settings of a URL and of an entry reach the cache: forbidden=error makes a 403 an AccessDenied", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("zstd")])
      const p = pathByName("zstd", "fx-tree")
      server.addFault(`/${p.hashPart}.narinfo`, { _tag: "Status", status: 403 })
      const lenient = yield* StoreComposition.build(`nix+${server.url}`, BinaryCache.registry)
      assert.isTrue(Option.isNone(yield* lenient.pathInfoService.get(digestOf(p))))
      for (
        const input of [
          `nix+${server.url}?forbidden=error&retries=0`,
          { stores: { root: { type: "binary-cache", url: server.url, forbidden: "error", retryDelay: "5ms" } } }
        ]
      ) {
        const strict = yield* StoreComposition.build(input, BinaryCache.registry)
        const e = yield* Effect.flip(strict.pathInfoService.get(digestOf(p)))
        assert.strictEqual(e._tag, "StorageError")
        assert.strictEqual((e.cause as { _tag?: string })._tag, "AccessDenied")
      }
      const bad = yield* Effect.flip(StoreComposition.build(
        { stores: { root: { type: "binary-cache", url: server.url, idleTimeout: "soon" } } },
        BinaryCache.registry
      ))
      assert.strictEqual(bad._tag, "StoreConfigError")
      assert.include(bad.message, "idleTimeout must be a duration")
    })))

  it("an unknown field of a binary-cache entry names it", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(Effect.scoped(StoreComposition.build(
        { stores: { root: { type: "binary-cache", url: "http://127.0.0.1:1", keys: [] } } },
        BinaryCache.registry
      )))
      assert.strictEqual(e._tag, "StoreConfigError")
      assert.include(e.message, "keys")
    }))

  it.live("StoreComposition.layer knows nix+http:// with layerRegistry", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("gzip")])
      const p = pathByName("gzip", "fx-tree")
      const got = yield* Effect.flatMap(PathInfoService.PathInfoService, (s) => s.get(digestOf(p))).pipe(
        Effect.provide(StoreComposition.layer(`nix+${server.url}`).pipe(Layer.provide(BinaryCache.layerRegistry)))
      )
      expectFixture(some(got, p.name), p)
    })))
})

describe("BinaryCache layers", () => {
  it.live("layerCached over a ResolveStore built from a store layer", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("br")])
      const app = pathByName("br", "fx-app-1.0")
      const layer = BinaryCache.layerCached({ url: server.url, trustedPublicKeys: [publicKey("test-cache-1")] }).pipe(
        Layer.provide(BinaryCache.layerResolveStore),
        Layer.provide(StoreComposition.layer("memory://")),
        Layer.provide(NodeHttpClient.layerUndici)
      )
      yield* Effect.gen(function*() {
        const service = yield* PathInfoService.PathInfoService
        expectFixture(some(yield* service.get(digestOf(app)), app.name), app)
        const before = server.requests.length
        expectFixture(some(yield* service.get(digestOf(app)), app.name), app)
        assert.strictEqual(server.requests.length, before, "the second get is answered by the near store")
        const bc = yield* BinaryCache.BinaryCache
        assert.strictEqual(bc.url, server.url)
        const info = yield* bc.cacheInfo
        assert.deepStrictEqual(info.storeDir, Option.some("/nix/store"))
        assert.isTrue(Option.isNone(info.priority))
      }).pipe(Effect.provide(layer))
    })))

  it.live("layer: every get fetches", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveCache([cacheDir("xz")])
      const p = pathByName("xz", "fx-empty-dir")
      const layer = BinaryCache.layer({ url: `nix+${server.url}` }).pipe(
        Layer.provide(BinaryCache.layerResolveStore),
        Layer.provide(StoreComposition.layer("memory://")),
        Layer.provide(NodeHttpClient.layerUndici)
      )
      yield* Effect.gen(function*() {
        const service = yield* PathInfoService.PathInfoService
        expectFixture(some(yield* service.get(digestOf(p)), p.name), p)
        expectFixture(some(yield* service.get(digestOf(p)), p.name), p)
        assert.strictEqual(server.requests.filter((r) => r === `/${p.hashPart}.narinfo`).length, 2)
      }).pipe(Effect.provide(layer))
    })))
})
