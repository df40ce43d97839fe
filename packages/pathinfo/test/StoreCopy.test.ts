import { assert, describe, it } from "@effect/vitest"
import { BlobService, DirectoryService, NarImport, NarRender } from "@nixfx/castore"
import { StorePath } from "@nixfx/nix-compat"
import { Effect, Either, Layer, Option, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as zlib from "node:zlib"
import * as PathInfo from "../src/PathInfo.js"
import * as StoreComposition from "../src/StoreComposition.js"
import * as StoreCopy from "../src/StoreCopy.js"
import { defaultFixturesDir, loadFixturePathInfos } from "../src/testing.js"

interface ManifestPath {
  readonly storePath: string
  readonly url: string
}
const manifest = JSON.parse(fs.readFileSync(path.join(defaultFixturesDir, "manifest.json"), "utf8")) as {
  readonly caches: Record<string, { readonly paths: ReadonlyArray<ManifestPath> }>
}

/** The uncompressed NAR of a fixture path (`none` cache, or `br` for fx-large). */
const fixtureNar = (storePath: string): Uint8Array => {
  const plain = manifest.caches["none"]!.paths.find((p) => p.storePath === storePath)
  if (plain !== undefined) return fs.readFileSync(path.join(defaultFixturesDir, "caches", "none", plain.url))
  const br = manifest.caches["br"]!.paths.find((p) => p.storePath === storePath)!
  return zlib.brotliDecompressSync(fs.readFileSync(path.join(defaultFixturesDir, "caches", "br", br.url)))
}

const infos = loadFixturePathInfos()
const byName = (name: string) => infos.find((info) => info.storePath.name === name)!

/** A memory store holding every fixture path with its content. */
const filledSource = Effect.gen(function*() {
  const store = yield* StoreComposition.build("memory://")
  const services = Layer.mergeAll(
    Layer.succeed(BlobService.BlobService, store.blobService),
    Layer.succeed(DirectoryService.DirectoryService, store.directoryService)
  )
  for (const info of infos) {
    const nar = fixtureNar(StorePath.toAbsolutePath(info.storePath))
    yield* NarImport.ingest(Stream.make(nar)).pipe(Effect.provide(services))
    yield* store.pathInfoService.put(info)
  }
  return store
})

const renderedNarSize = (store: StoreComposition.Store, info: PathInfo.PathInfo) =>
  NarRender.calculate(info.node).pipe(
    Effect.provideService(BlobService.BlobService, store.blobService),
    Effect.provideService(DirectoryService.DirectoryService, store.directoryService)
  )

describe("StoreCopy", () => {
  it.scoped("copies a closure with its content into a SQLite store, leaves first", () =>
    Effect.gen(function*() {
      const source = yield* filledSource
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nixfx-copy-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      const target = yield* StoreComposition.build(`sqlite://${dir}`)
      const app = byName("fx-app-1.0")
      const events: Array<StoreCopy.Event> = []
      const result = yield* StoreCopy.copy(source, target, [app.storePath], { onEvent: (e) => events.push(e) })
      assert.strictEqual(result.copied, 3) // fx-app, fx-lib, fx-base
      assert.strictEqual(events[0]._tag, "Planned")
      const copiedOrder = events.filter((e) => e._tag === "Copied").map((e) => e.storePath)
      assert.deepStrictEqual(copiedOrder.map((p) => p.split("-").slice(1).join("-")), [
        "fx-base-1.0",
        "fx-lib-1.0",
        "fx-app-1.0"
      ])
      for (const name of ["fx-app-1.0", "fx-lib-1.0", "fx-base-1.0"]) {
        const original = byName(name)
        const held = yield* target.pathInfoService.get(original.storePath.digest)
        assert.isTrue(Option.isSome(held), name)
        assert.isTrue(PathInfo.equals(Option.getOrThrow(held), original), name)
        const rendered = yield* renderedNarSize(target, original)
        assert.strictEqual(rendered.narSize, original.narSize, name)
        assert.deepStrictEqual(rendered.narSha256, original.narSha256, name)
      }
      // a second copy finds everything present
      const again = yield* StoreCopy.copy(source, target, [app.storePath])
      assert.strictEqual(again.copied, 0)
      assert.strictEqual(again.present, 3)
    }))

  it.scoped("copies every fixture path (directories, files, symlinks, the large one)", () =>
    Effect.gen(function*() {
      const source = yield* filledSource
      const target = yield* StoreComposition.build("memory://")
      const result = yield* StoreCopy.copy(source, target, infos.map((info) => info.storePath))
      assert.strictEqual(result.copied, infos.length)
      for (const info of infos) {
        const rendered = yield* renderedNarSize(target, info)
        assert.strictEqual(rendered.narSize, info.narSize, info.basename)
      }
    }))

  it.scoped("fills in reference nodes the source does not know from the destination", () =>
    Effect.gen(function*() {
      const source = yield* filledSource
      const target = yield* StoreComposition.build("memory://")
      const lib = byName("fx-lib-1.0")
      const base = byName("fx-base-1.0")
      yield* StoreCopy.copy(source, target, [base.storePath])
      // a source that knows lib's references only by name, as a narinfo or a tvix peer would
      const legacy = yield* StoreComposition.build("memory://")
      const anonymous = Either.getOrThrow(PathInfo.make({
        ...lib,
        references: lib.references.map((r) =>
          r.storePath.basename === lib.basename ? r : { storePath: r.storePath, node: Option.none() }
        )
      }))
      yield* legacy.pathInfoService.put(anonymous)
      const mixed: StoreComposition.Store = { ...source, pathInfoService: legacy.pathInfoService }
      yield* legacy.pathInfoService.put(base)
      yield* StoreCopy.copy(mixed, target, [lib.storePath])
      const held = Option.getOrThrow(yield* target.pathInfoService.get(lib.storePath.digest))
      assert.isTrue(PathInfo.equals(held, lib))
    }))

  it.scoped("names a missing reference and who refers to it", () =>
    Effect.gen(function*() {
      const source = yield* StoreComposition.build("memory://")
      const app = byName("fx-app-1.0")
      yield* source.pathInfoService.put(app)
      const target = yield* StoreComposition.build("memory://")
      const error = yield* Effect.flip(StoreCopy.copy(source, target, [app.storePath]))
      assert.strictEqual(error._tag, "CopyError")
      if (error._tag !== "CopyError") return
      assert.strictEqual(error.reason, "MissingPath")
      assert.include(error.message, "fx-lib-1.0")
      assert.include(error.message, `a reference of ${StorePath.toAbsolutePath(app.storePath)}`)
      // nothing of the closure was written
      assert.isTrue(Option.isNone(yield* target.pathInfoService.get(app.storePath.digest)))
    }))

  it.scoped("fails with MissingBlob when the source lacks content, and puts no PathInfo", () =>
    Effect.gen(function*() {
      const source = yield* StoreComposition.build("memory://")
      const file = byName("fx-regular-file")
      yield* source.pathInfoService.put(file)
      const target = yield* StoreComposition.build("memory://")
      const error = yield* Effect.flip(StoreCopy.copy(source, target, [file.storePath]))
      assert.strictEqual(error._tag, "CopyError")
      if (error._tag === "CopyError") assert.strictEqual(error.reason, "MissingBlob")
      assert.isTrue(Option.isNone(yield* target.pathInfoService.get(file.storePath.digest)))
    }))
})
