import { assert, describe, it } from "@effect/vitest"
import * as BlobService from "@nixfx/castore/BlobService"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import { makeTestPathInfo, pathInfoServiceSuite } from "@nixfx/pathinfo/testing"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nixfx-store-composition-"))
const keyFile = fileURLToPath(new URL("../../../fixtures/keys/test-cache-1.secret", import.meta.url))

pathInfoServiceSuite("StoreComposition memory://", StoreComposition.layerPathInfoService("memory://"))
pathInfoServiceSuite("StoreComposition sqlite:// (libsql)", StoreComposition.layerPathInfoService(`sqlite://${tmp}/libsql`))
pathInfoServiceSuite(
  "StoreComposition sqlite:// (better-sqlite3)",
  StoreComposition.layerPathInfoService(`sqlite://${tmp}/better?driver=better-sqlite3`)
)
pathInfoServiceSuite(
  "StoreComposition document: lru → signing → cache(near sqlite, far memory)",
  StoreComposition.layerPathInfoService(JSON.stringify({
    stores: {
      root: { type: "lru", inner: "signed", capacity: 100 },
      signed: { type: "signing", inner: "cached", keyFile },
      cached: { type: "cache", near: "local", far: "memory://" },
      local: { type: "sqlite", path: path.join(tmp, "composed") }
    }
  })),
  { addsSignatures: true }
)

const pgUrl = process.env.NIXFX_TEST_PG_URL
if (pgUrl !== undefined && pgUrl !== "") {
  const prefix = `s${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}_`
  const url = new URL(pgUrl)
  url.searchParams.set("blobs", path.join(tmp, "pg-blobs"))
  url.searchParams.set("table-prefix", prefix)
  pathInfoServiceSuite("StoreComposition postgres://", StoreComposition.layerPathInfoService(url.href))
} else {
  describe("StoreComposition postgres://", () => {
    it.skip("SKIPPED: NIXFX_TEST_PG_URL is not set (start one with: export NIXFX_TEST_PG_URL=$(bash scripts/postgres-test-server.sh))", () => {})
  })
}

const configError = (spec: string) =>
  Effect.scoped(Effect.flip(StoreComposition.build(spec))).pipe(
    Effect.map((e) => {
      if (e._tag !== "StoreConfigError") return assert.fail(`expected a StoreConfigError, got ${e.message}`)
      return e
    })
  )

describe("bad URLs and documents name the wrong part", () => {
  const cases: ReadonlyArray<readonly [string, StoreComposition.ConfigPart, string]> = [
    ["ftp://example.org/x", "scheme", "unknown scheme \"ftp\""],
    ["just-a-name", "scheme", "expected <scheme>://"],
    ["memory://somehost", "host", "take no host"],
    ["memory:///foo", "path", "take no path"],
    ["memory://?x=1", "query", "unknown query parameter \"x\""],
    ["sqlite://relative/dir", "host", "take no host"],
    ["sqlite://", "path", "a directory is required"],
    ["sqlite:///", "path", "must not be the root"],
    [`sqlite://${tmp}/x?mode=ro`, "query", "unknown query parameter \"mode\""],
    [`sqlite://${tmp}/x?driver=duckdb`, "query", "driver must be"],
    ["postgres://db.example/nixfx", "query", "blobs=/absolute/dir is required"],
    ["postgres://db.example/nixfx?blobs=relative/dir", "query", "must be absolute"],
    ["postgres://me:hunter2@db.example/nixfx?blobs=/b&pool=3", "query", "unknown query parameter \"pool\""],
    ["{", "document", "not JSON"],
    [`{"stores": {"a": {"type": "memory"}}}`, "document", "no store named \"root\""],
    [`{"stores": {"root": "memory://"}, "extra": 1}`, "document", "unknown top-level key \"extra\""],
    [`{"stores": {"root": {"kind": "memory"}}}`, "entry", "missing \"type\""],
    [`{"stores": {"root": {"type": "redis"}}}`, "type", "unknown type \"redis\""],
    [`{"stores": {"root": {"type": "memory", "size": 3}}}`, "field", "unknown field \"size\""],
    [`{"stores": {"root": {"type": "sqlite", "path": "rel/dir"}}}`, "field", "path: must be an absolute path"],
    [`{"stores": {"root": {"type": "lru", "inner": "memory://", "capacity": 0}}}`, "field", "capacity"],
    [`{"stores": {"root": {"type": "cache", "near": "a", "far": "b"}, "a": {"type": "memory"}}}`, "reference", "no store named \"b\""],
    [
      `{"stores": {"root": {"type": "lru", "inner": "a", "capacity": 1}, "a": {"type": "cache", "near": "b", "far": "root"}, "b": {"type": "memory"}}}`,
      "cycle",
      "root → a → root"
    ],
    [`{"stores": {"root": {"type": "cache", "near": "memory://", "far": "sqlite://rel"}}}`, "host", "take no host"]
  ]
  for (const [spec, part, detail] of cases) {
    it.effect(`${spec} → ${part}`, () =>
      Effect.gen(function*() {
        const e = yield* configError(spec)
        assert.strictEqual(e.part, part, e.message)
        assert.include(e.detail, detail)
      }))
  }

  it.effect("a password never appears in a message", () =>
    Effect.gen(function*() {
      const e = yield* configError("postgres://me:hunter2@db.example/nixfx?blobs=/b&pool=3")
      assert.notInclude(e.message, "hunter2")
      assert.include(e.message, "me:***@db.example")
    }))

  it.effect("an unreadable key file is an open error naming the store", () =>
    Effect.gen(function*() {
      const e = yield* Effect.scoped(Effect.flip(StoreComposition.build(JSON.stringify({
        stores: { root: { type: "signing", inner: "memory://", keyFile: path.join(tmp, "no-such-key") } }
      }))))
      assert.strictEqual(e._tag, "StoreOpenError")
      assert.include(e.message, "stores.root")
      assert.include(e.message, "no-such-key")
    }))
})

describe("sqlite store", () => {
  it.effect("keeps PathInfos, directories and blobs in its directory across openings", () =>
    Effect.gen(function*() {
      const dir = path.join(tmp, "persistent")
      const p = makeTestPathInfo()
      const blob = new TextEncoder().encode("hello, store")
      const put = Effect.gen(function*() {
        yield* (yield* PathInfoService.PathInfoService).put(p)
        return yield* BlobService.putBytes(blob)
      })
      const info = yield* put.pipe(Effect.provide(StoreComposition.layer(`sqlite://${dir}`)))
      assert.isTrue(fs.existsSync(path.join(dir, "store.sqlite")))
      assert.isTrue(fs.existsSync(path.join(dir, "blobs")))
      const [got, has] = yield* Effect.gen(function*() {
        const got = yield* (yield* PathInfoService.PathInfoService).get(p.storePath.digest)
        const has = yield* (yield* BlobService.BlobService).has(info.digest)
        return [got, has] as const
      }).pipe(Effect.provide(StoreComposition.layer(`sqlite://${dir}`)))
      assert.isTrue(Option.isSome(got))
      assert.isTrue(has)
    }))
})

describe("registry", () => {
  it.effect("other packages plug in URL schemes and types; a store named twice is built once", () =>
    Effect.gen(function*() {
      let built = 0
      const fake: StoreComposition.Backend = {
        type: "fake",
        schemes: ["fake+http"],
        fromUrl: (url, input) =>
          url.host === "" 
            ? Either.left(new StoreComposition.StoreConfigError({ input, part: "host", detail: "a host is required" }))
            : Either.right({ type: "fake", host: url.host }),
        build: (entry, context) =>
          Effect.gen(function*() {
            built++
            assert.strictEqual(entry.host, "cache.example")
            return yield* context.resolve("memory://", "castore")
          })
      }
      const registry = StoreComposition.register(StoreComposition.defaultRegistry, fake)
      const doc = JSON.stringify({
        stores: {
          root: { type: "cache", near: "remote", far: "remote" },
          remote: "fake+http://cache.example"
        }
      })
      const program = Effect.gen(function*() {
        const s = yield* PathInfoService.PathInfoService
        const p = makeTestPathInfo()
        yield* s.put(p)
        assert.isTrue(Option.isSome(yield* s.get(p.storePath.digest)))
      })
      yield* program.pipe(
        Effect.provide(
          StoreComposition.layer(doc).pipe(Layer.provide(Layer.succeed(StoreComposition.CurrentRegistry, registry)))
        )
      )
      assert.strictEqual(built, 1)
      const e = yield* configError("fake+http://cache.example")
      assert.strictEqual(e.part, "scheme", "the default registry does not know it")
      const missingHost = yield* Effect.scoped(Effect.flip(StoreComposition.build("fake+http:///x", registry)))
      assert.strictEqual(missingHost._tag === "StoreConfigError" && missingHost.part, "host")
    }))
})
