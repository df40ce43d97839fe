/**
 * Helpers shared by the binary cache tests: stores, opening a cache against
 * the test server, checking fetched PathInfos against the manifest.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { assert } from "@effect/vitest"
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as NarRender from "@nixfx/castore/NarRender"
import * as Node from "@nixfx/castore-nodes/Node"
import * as CAHash from "@nixfx/nix-compat/CAHash"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as Nixbase32 from "@nixfx/nix-compat/Nixbase32"
import * as NixHash from "@nixfx/nix-compat/NixHash"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import type * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import { nodeFromManifest } from "@nixfx/pathinfo/testing"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as BinaryCache from "../../src/BinaryCache.js"
import type { BinaryCacheError } from "../../src/BinaryCacheError.js"
import type { CacheServer } from "./cacheServer.js"
import { basename, digestOf, type ManifestPath, nodes, readFixture } from "./fixtures.js"

export const memoryStore: Effect.Effect<StoreComposition.Store> = Effect.all({
  pathInfoService: PathInfoService.makeMemory,
  blobService: BlobService.makeMemory,
  directoryService: DirectoryService.makeMemory
})

/** A memory store whose PathInfoService records the order of puts. */
export const recordingStore = Effect.map(memoryStore, (store) => {
  const puts: Array<string> = []
  return {
    puts,
    store: {
      ...store,
      pathInfoService: {
        ...store.pathInfoService,
        put: (p: PathInfo.PathInfo) => Effect.tap(store.pathInfoService.put(p), () => Effect.sync(() => puts.push(p.basename)))
      }
    } satisfies StoreComposition.Store
  }
})

export const open = (
  server: Pick<CacheServer, "url">,
  store: StoreComposition.Store,
  options: Omit<BinaryCache.Options, "url"> = {}
) =>
  Effect.flatMap(Layer.build(NodeHttpClient.layerUndici), (client) =>
    BinaryCache.make({ url: server.url, retries: 0, ...options }, store).pipe(
      Effect.provide(client),
      Effect.orDie
    ))

export const failWith = <A>(
  effect: Effect.Effect<A, BinaryCacheError | PathInfoService.PathInfoServiceError>
): Effect.Effect<BinaryCacheError | PathInfoService.PathInfoServiceError> =>
  Effect.flatMap(
    Effect.either(effect),
    Either.match({ onLeft: Effect.succeed, onRight: () => Effect.dieMessage("expected a failure, got a success") })
  )

export const expectTag = <E extends { readonly _tag: string }, T extends E["_tag"]>(
  e: E,
  tag: T
): Extract<E, { readonly _tag: T }> => {
  if (e._tag !== tag) return assert.fail(`expected ${tag}, got ${e._tag}: ${"message" in e ? String(e.message) : ""}`)
  return e as Extract<E, { readonly _tag: T }>
}

export const some = <A>(o: Option.Option<A>, what: string): A => {
  if (Option.isNone(o)) return assert.fail(`expected ${what}`)
  return o.value
}

/** Every field of a fetched PathInfo against the manifest; reference nodes against the references' root nodes. */
export const expectFixture = (info: PathInfo.PathInfo, p: ManifestPath): void => {
  const name = basename(p.storePath)
  assert.strictEqual(info.basename, name)
  assert.isTrue(Node.equals(info.node, nodeFromManifest(p.castore)), `${name}: root node`)
  assert.strictEqual(NixHash.toNixbase32String(PathInfo.narHash(info)), p.narHash, `${name}: NarHash`)
  assert.strictEqual(info.narSize, p.narSize, `${name}: NarSize`)
  assert.deepStrictEqual(info.references.map((r) => StorePath.toBasename(r.storePath)), [...p.references].sort())
  for (const r of info.references) {
    const b = StorePath.toBasename(r.storePath)
    const recorded = some(r.node, `${name} records a node for ${b}`)
    const expected = nodes.get(b)
    if (expected === undefined) return assert.fail(`no manifest node for ${b}`)
    assert.isTrue(Node.equals(recorded, expected), `${name}: node recorded for ${b} is its root node`)
  }
  assert.strictEqual(Option.getOrNull(Option.map(info.deriver, StorePath.toBasename)), p.deriver)
  assert.strictEqual(Option.getOrNull(Option.map(info.ca, CAHash.render)), p.ca)
  assert.deepStrictEqual(info.signatures.map(Keys.formatSignature), [...p.signatures])
}

/** The store holds `p` and castore renders it back to the manifest's NarHash. */
export const expectStored = (store: StoreComposition.Store, p: ManifestPath) =>
  Effect.gen(function*() {
    const stored = some(yield* store.pathInfoService.get(digestOf(p)), `the store holds ${p.name}`)
    expectFixture(stored, p)
    const rendered = yield* NarRender.calculate(stored.node).pipe(
      Effect.provideService(BlobService.BlobService, store.blobService),
      Effect.provideService(DirectoryService.DirectoryService, store.directoryService)
    )
    assert.strictEqual(rendered.narSize, p.narSize)
    assert.strictEqual("sha256:" + Nixbase32.encode(rendered.narSha256), p.narHash, `${p.name} renders back`)
  })

export const narinfoText = (p: ManifestPath): string => readFixture(p.narinfo).toString("utf8")

export const withNarinfoField = (text: string, field: string, value: string): string =>
  text.replace(new RegExp(`^${field}: .*$`, "m"), `${field}: ${value}`)

export const otherSha256 = (s: string): string => {
  const digest = Either.getOrThrow(NixHash.parse(s, "sha256")).digest.slice()
  digest[0] ^= 1
  return NixHash.toNixbase32String(NixHash.unsafeMake("sha256", digest))
}

