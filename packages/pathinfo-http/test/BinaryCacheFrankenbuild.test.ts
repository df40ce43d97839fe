/**
 * Frankenbuild detection against a SQLite-backed store: `franken-a` holds
 * fx-franken-app and the first build of fx-franken-dep, `franken-b` a second
 * build of the dep (same store path and NarSize, other content and NarHash).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Node from "@nixfx/castore-nodes/Node"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as BinaryCache from "../src/BinaryCache.js"
import { serveCache } from "./support/cacheServer.js"
import { basename, cacheDir, digestOf, manifest, nodes, pathByName } from "./support/fixtures.js"
import { expectTag, failWith, open, some } from "./support/helpers.js"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nixfx-frankenbuild-"))
let stores = 0
/** A fresh SQLite store (StoreComposition `sqlite:///…`). */
const sqliteStore = Effect.suspend(() => StoreComposition.build(`sqlite://${tmp}/store-${stores++}`))

const app = pathByName("franken-a", "fx-franken-app")
const depA = pathByName("franken-a", "fx-franken-dep")
const depB = pathByName("franken-b", "fx-franken-dep")
const appName = basename(app.storePath)
const depName = basename(depA.storePath)

/** franken-a's app with franken-b's dep: the cache a Frankenbuild comes from. */
const mergedRoots = [cacheDir("franken-b"), cacheDir("franken-a")]

describe("Frankenbuild fixtures", () => {
  it("are what the tests assume", () => {
    assert.strictEqual(manifest.franken.appStorePath, app.storePath)
    assert.strictEqual(manifest.franken.depStorePath, depA.storePath)
    assert.strictEqual(depA.narHash, manifest.franken.narHashA)
    assert.strictEqual(depB.narHash, manifest.franken.narHashB)
    assert.notStrictEqual(manifest.franken.narHashA, manifest.franken.narHashB)
    assert.deepStrictEqual(app.references, [depName])
  })
})

describe("BinaryCache: Frankenbuild detection (SQLite store)", () => {
  it.live("app + dep from franken-a, then the app again from a cache serving franken-b's dep", () =>
    Effect.scoped(Effect.gen(function*() {
      const store = yield* sqliteStore
      const a = yield* serveCache([cacheDir("franken-a")])
      const fromA = yield* open(a, store)
      const first = some(yield* fromA.fetch(digestOf(app)), "the app from franken-a")
      assert.isTrue(Node.equals(some(first.referenceNode(depName), "dep node"), nodes.get(depName)!))
      const stored = some(yield* store.pathInfoService.get(digestOf(app)), "stored app")

      const merged = yield* serveCache(mergedRoots)

      // fail: refused before any NAR is downloaded, naming both hashes
      const failing = yield* open(merged, store, { frankenbuildDetection: "fail" })
      const e = expectTag(yield* failWith(failing.fetch(digestOf(app))), "FrankenbuildDetected")
      assert.strictEqual(e.referrer, appName)
      assert.strictEqual(e.reference, depName)
      assert.strictEqual(e.localNarHash, manifest.franken.narHashA)
      assert.strictEqual(e.cacheNarHash, manifest.franken.narHashB)
      assert.strictEqual(e.url, merged.url)
      for (const s of [appName, depName, manifest.franken.narHashA, manifest.franken.narHashB]) assert.include(e.message, s)
      assert.isFalse(merged.requests.some((r) => r.startsWith("/nar/")), "no NAR was downloaded")
      assert.isTrue(PathInfo.equals(some(yield* store.pathInfoService.get(digestOf(app)), "app"), stored))
      // through the PathInfoService interface: a StorageError carrying it
      const wrapped = expectTag(yield* Effect.flip(failing.pathInfoService.get(digestOf(app))), "StorageError")
      assert.strictEqual((wrapped.cause as { _tag: string })._tag, "FrankenbuildDetected")

      // off: accepted, the local dep's node is recorded
      const off = yield* open(merged, store)
      const accepted = some(yield* off.fetch(digestOf(app)), "accepted app")
      assert.isTrue(Node.equals(some(accepted.referenceNode(depName), "dep node"), nodes.get(depName)!))
      assert.deepStrictEqual(yield* off.frankenbuilds, [])

      // warn: accepted, logged, reported and remembered
      const logged: Array<string> = []
      const events: Array<BinaryCache.Event> = []
      const warning = yield* open(merged, store, { frankenbuildDetection: "warn", onEvent: (ev) => events.push(ev) })
      const warned = yield* warning.fetch(digestOf(app)).pipe(
        Effect.provide(Logger.replace(
          Logger.defaultLogger,
          Logger.make(({ logLevel, message }) => logged.push(`${logLevel.label} ${String(message)}`))
        ))
      )
      assert.isTrue(PathInfo.equals(some(warned, "warned app"), accepted))
      const found = yield* warning.frankenbuilds
      assert.strictEqual(found.length, 1)
      assert.strictEqual(found[0].localNarHash, manifest.franken.narHashA)
      assert.strictEqual(found[0].cacheNarHash, manifest.franken.narHashB)
      assert.deepStrictEqual(
        events.filter(BinaryCache.Event.$is("FrankenbuildWarning")).map((ev) => ev.error.reference),
        [depName]
      )
      assert.isTrue(logged.some((l) => l.startsWith("WARN") && l.includes(manifest.franken.narHashB)), logged.join("\n"))
    })), 60_000)

  it.live("a store holding the other build of the dep: the app is refused and not stored", () =>
    Effect.scoped(Effect.gen(function*() {
      const store = yield* sqliteStore
      const b = yield* serveCache([cacheDir("franken-b")])
      const depFromB = some(yield* (yield* open(b, store)).fetch(digestOf(depB)), "dep from franken-b")
      assert.strictEqual(depFromB.narSize, depB.narSize)

      const a = yield* serveCache([cacheDir("franken-a")])
      const e = expectTag(
        yield* failWith((yield* open(a, store, { frankenbuildDetection: "fail" })).fetch(digestOf(app))),
        "FrankenbuildDetected"
      )
      assert.strictEqual(e.localNarHash, manifest.franken.narHashB)
      assert.strictEqual(e.cacheNarHash, manifest.franken.narHashA)
      assert.isTrue(Option.isNone(yield* store.pathInfoService.get(digestOf(app))), "nothing of the app persisted")
      assert.isFalse(a.requests.includes("/" + app.url), "the app's NAR was not downloaded")

      // without detection the mismatch goes unnoticed: the app records the dep build the store holds
      const unnoticed = some(yield* (yield* open(a, store)).fetch(digestOf(app)), "app")
      assert.isTrue(Node.equals(some(unnoticed.referenceNode(depName), "dep node"), depFromB.node))
    })), 60_000)
})
