import { assert, describe, it } from "@effect/vitest"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Node from "@nixfx/castore-nodes/Node"
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import { makeTestPathInfo, randomStorePath } from "@nixfx/pathinfo/internal/testBuilders"
import { writeGeneratedPath } from "@nixfx/pathinfo/internal/testWorkload"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import type { Store } from "@nixfx/pathinfo/StoreComposition"
import * as StoreVerify from "@nixfx/pathinfo/StoreVerify"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

/** A memory store holding `n` generated paths, each referring to the ones before. */
const storeWithPaths = (n: number) =>
  Effect.gen(function*() {
    const store: Store = {
      pathInfoService: yield* PathInfoService.makeMemory,
      blobService: yield* BlobService.makeMemory,
      directoryService: yield* DirectoryService.makeMemory
    }
    const paths: Array<PathInfo.PathInfo> = []
    for (let i = 0; i < n; i++) {
      paths.push(
        yield* writeGeneratedPath(store, {
          index: i,
          largeBytes: 300_000 + i,
          existing: paths,
          maxReferences: 5,
          onPhase: () => {}
        })
      )
    }
    return { store, paths }
  })

const fileDigest = (p: PathInfo.PathInfo, name: string, store: Store) =>
  Effect.gen(function*() {
    assert(p.node._tag === "Directory")
    const root = Option.getOrThrow(yield* store.directoryService.get(p.node.digest))
    const node = Option.getOrThrow(root.get(name))
    assert(node._tag !== "Symlink")
    return node.digest
  })

const tags = (report: StoreVerify.Report) => report.findings.map((f) => f._tag)

describe("StoreVerify", () => {
  it.effect("finds nothing in a consistent store, and hashes a blob shared by every path once", () =>
    Effect.gen(function*() {
      const { store } = yield* storeWithPaths(4)
      const progress: Array<number> = []
      const report = yield* StoreVerify.run(store, { concurrency: 4, onProgress: (c) => progress.push(c.paths) })
      assert.deepStrictEqual(report.findings, [])
      // 4 paths × 6 blobs of their own + the shared one
      assert.deepStrictEqual(report.counts, {
        paths: 4,
        directories: 12,
        blobs: 25,
        blobBytes: report.counts.blobBytes,
        findings: 0
      })
      assert.strictEqual(report.counts.blobBytes, 4 * (300_000 + 10 + 3000 + 40_000 + 700 + 5) + 6 + 100_000)
      assert.deepStrictEqual(progress, [1, 2, 3, 4, 4])
    }))

  it.effect("names a missing and a corrupt blob, with the path inside the store path", () =>
    Effect.gen(function*() {
      const { paths, store } = yield* storeWithPaths(2)
      const large = yield* fileDigest(paths[0], "large", store)
      const shared = yield* fileDigest(paths[0], "shared", store)
      const tampered: Store = {
        ...store,
        blobService: {
          ...store.blobService,
          read: (digest, range) =>
            B3Digest.equals(digest, large)
              ? Effect.succeedNone
              : B3Digest.equals(digest, shared)
              ? Effect.succeed(Option.some(Stream.make(new Uint8Array([1, 2, 3]))))
              : store.blobService.read(digest, range)
        }
      }
      const report = yield* StoreVerify.run(tampered)
      const first = StorePath.toAbsolutePath(paths[0].storePath)
      const second = StorePath.toAbsolutePath(paths[1].storePath)
      const byPath = (storePath: string) => report.findings.filter((f) => f.storePath === storePath)
      assert.deepStrictEqual(byPath(first).map((f) => f._tag).sort(), ["CorruptBlob", "MissingBlob"])
      const missing = byPath(first).find((f) => f._tag === "MissingBlob")!
      assert.deepInclude(missing, { path: "/large", digest: B3Digest.toHex(large) })
      const corrupt = byPath(first).find((f) => f._tag === "CorruptBlob")!
      assert.deepInclude(corrupt, {
        path: "/shared",
        digest: B3Digest.toHex(shared),
        actualDigest: B3Digest.toHex(B3Digest.hash(new Uint8Array([1, 2, 3]))),
        actualSize: 3
      })
      // the shared blob is corrupt for the second path too; its large file is fine
      assert.deepStrictEqual(byPath(second).map((f) => f._tag), ["CorruptBlob"])
      assert.strictEqual(report.counts.findings, 3)
    }))

  it.effect("names a missing directory deep in the tree, and the size a parent records wrongly", () =>
    Effect.gen(function*() {
      const { paths, store } = yield* storeWithPaths(1)
      const sub = yield* fileDigest(paths[0], "sub", store)
      const subDir = Option.getOrThrow(yield* store.directoryService.get(sub))
      const nested = Option.getOrThrow(subDir.get("nested"))
      assert(nested._tag === "Directory")
      const tampered: Store = {
        ...store,
        directoryService: {
          ...store.directoryService,
          get: (digest) =>
            B3Digest.equals(digest, nested.digest) ? Effect.succeedNone : store.directoryService.get(digest)
        }
      }
      const report = yield* StoreVerify.run(tampered)
      assert.deepStrictEqual(tags(report), ["MissingDirectory"])
      assert.deepInclude(report.findings[0], { path: "/sub/nested", digest: B3Digest.toHex(nested.digest) })

      // a PathInfo whose root node records the wrong size for its directory
      const wrongSize = makeTestPathInfo({
        node: new Node.DirectoryNode({ digest: sub, size: subDir.size + 1 }),
        narSize: 10_000
      })
      yield* store.pathInfoService.put(wrongSize)
      const second = yield* StoreVerify.run(store)
      assert.deepStrictEqual(tags(second), ["DirectorySizeMismatch"])
      assert.deepInclude(second.findings[0], { path: "/", recorded: subDir.size + 1, actual: subDir.size })
    }))

  it.effect("names a NAR hash or size that the content does not render to", () =>
    Effect.gen(function*() {
      const { paths, store } = yield* storeWithPaths(1)
      const wrongHash = makeTestPathInfo({ node: paths[0].node, narSize: paths[0].narSize })
      const wrongSize = makeTestPathInfo({ node: paths[0].node, narSize: paths[0].narSize + 8, narSha256: paths[0].narSha256 })
      yield* store.pathInfoService.put(wrongHash)
      yield* store.pathInfoService.put(wrongSize)
      const report = yield* StoreVerify.run(store)
      assert.deepStrictEqual(tags(report), ["NarHashMismatch", "NarHashMismatch"])
      const sizeFinding = report.findings.find((f) => f.storePath === StorePath.toAbsolutePath(wrongSize.storePath))!
      assert.deepInclude(sizeFinding, { narSize: paths[0].narSize + 8, actualNarSize: paths[0].narSize })
    }))

  it.effect("names a missing reference and a reference whose recorded node disagrees with the store", () =>
    Effect.gen(function*() {
      const { paths, store } = yield* storeWithPaths(2)
      const absent = randomStorePath("absent")
      const referrer = makeTestPathInfo({
        node: paths[0].node,
        narSize: paths[0].narSize,
        narSha256: paths[0].narSha256,
        references: [
          { storePath: absent, node: Option.none() },
          // records the second path's node for the first path
          { storePath: paths[0].storePath, node: Option.some(paths[1].node) },
          { storePath: paths[1].storePath, node: Option.some(paths[1].node) }
        ]
      })
      // The service refuses such a PathInfo; a store written by something
      // else could still hold one: list it alongside.
      const tampered: Store = {
        ...store,
        pathInfoService: { ...store.pathInfoService, list: Stream.concat(store.pathInfoService.list, Stream.make(referrer)) }
      }
      const report = yield* StoreVerify.run(tampered)
      assert.deepStrictEqual(tags(report).sort(), ["MissingReference", "ReferenceNodeMismatch"])
      const mismatch = report.findings.find((f) => f._tag === "ReferenceNodeMismatch")!
      assert.deepInclude(mismatch, {
        storePath: StorePath.toAbsolutePath(referrer.storePath),
        reference: StorePath.toAbsolutePath(paths[0].storePath)
      })
      assert.include(mismatch.message, "is recorded with node")
      const missing = report.findings.find((f) => f._tag === "MissingReference")!
      assert.deepInclude(missing, { reference: StorePath.toAbsolutePath(absent) })
    }))

  it.effect("fails (no finding) when a store cannot be read", () =>
    Effect.gen(function*() {
      const { store } = yield* storeWithPaths(1)
      const failing: Store = {
        ...store,
        blobService: {
          ...store.blobService,
          read: () => Effect.fail(new BlobService.BlobServiceError({ reason: "Storage", description: "disk on fire" }))
        }
      }
      const error = yield* Effect.flip(StoreVerify.run(failing))
      assert.strictEqual(error._tag, "BlobServiceError")
    }))
})
