/**
 * A generated store path written into a store the way a copy writes it
 * (blobs, then directories leaves first, then the PathInfo), for tests that
 * kill a writer part-way and then check the store. No vitest here: child
 * processes of tests run it from `dist`.
 */
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Directory from "@nixfx/castore-nodes/Directory"
import * as Node from "@nixfx/castore-nodes/Node"
import type * as PathComponent from "@nixfx/castore-nodes/PathComponent"
import type * as SymlinkTarget from "@nixfx/castore-nodes/SymlinkTarget"
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as NarRender from "@nixfx/castore/NarRender"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as crypto from "node:crypto"
import * as PathInfo from "../PathInfo.js"
import type { Store } from "../StoreComposition.js"
import { sortReferences } from "./testBuilders.js"

/** Where a writer is; a test kills it inside one of these. */
export type Phase = "large-blob" | "blob" | "directories" | "pathinfo"

export interface WorkloadOptions {
  /** Names the path (`fault-<index>`). */
  readonly index: number
  /** Size of the one large file (streamed in 64 KiB chunks). */
  readonly largeBytes: number
  /** PathInfos already in the store; the new path refers to up to `maxReferences` of them. */
  readonly existing: ReadonlyArray<PathInfo.PathInfo>
  readonly maxReferences: number
  /** Called as each phase begins and ends (`ms` on end). */
  readonly onPhase: (event: "begin" | "end", phase: Phase, ms: number) => void
}

/** The same bytes in every generated path: a blob shared by all of them. */
export const sharedContent: Uint8Array = new Uint8Array(100_000).map((_, i) => (i * 7919) % 251)

const chunkBytes = 64 * 1024

const name = (s: string) => s as PathComponent.PathComponent

const file = (bytes: Uint8Array, executable = false) =>
  new Node.FileNode({ digest: B3Digest.hash(bytes), size: bytes.length, executable })

const directory = (entries: ReadonlyArray<Directory.DirectoryEntry>): Directory.Directory =>
  Either.getOrThrow(Directory.make([...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))))

const dirNode = (d: Directory.Directory) => new Node.DirectoryNode({ digest: d.digest, size: d.size })

const random = (n: number): Uint8Array => new Uint8Array(crypto.randomBytes(n))

/** Writes one generated path into `store` and returns its PathInfo as stored. */
export const writeGeneratedPath = (store: Store, options: WorkloadOptions) =>
  Effect.gen(function*() {
    const large = random(options.largeBytes)
    const blobs = [large, sharedContent, random(10), random(3000), random(40_000), random(700), random(5)]
    const nested = directory([{ name: name("b"), node: file(blobs[5]) }])
    const sub = directory([
      { name: name("a"), node: file(blobs[4]) },
      { name: name("link"), node: new Node.SymlinkNode({ target: "../large" as SymlinkTarget.SymlinkTarget }) },
      { name: name("nested"), node: dirNode(nested) }
    ])
    const root = directory([
      { name: name("large"), node: file(large) },
      { name: name("shared"), node: file(sharedContent) },
      { name: name("exe"), node: file(blobs[2], true) },
      { name: name("small"), node: file(blobs[3]) },
      { name: name("empty"), node: file(blobs[6]) },
      { name: name("sub"), node: dirNode(sub) }
    ])
    const rootNode = dirNode(root)

    // The NAR hash, from an in-memory copy of the tree.
    const memoryBlobs = yield* BlobService.makeMemory
    const memoryDirectories = yield* DirectoryService.makeMemory
    for (const bytes of blobs) yield* memoryBlobs.putBytes(bytes)
    for (const d of [nested, sub, root]) yield* memoryDirectories.put(d)
    const nar = yield* NarRender.calculate(rootNode).pipe(
      Effect.provideService(BlobService.BlobService, memoryBlobs),
      Effect.provideService(DirectoryService.DirectoryService, memoryDirectories)
    )

    const timed = <A, E>(phase: Phase, effect: Effect.Effect<A, E>) =>
      Effect.suspend(() => {
        const started = performance.now()
        options.onPhase("begin", phase, 0)
        return Effect.tap(effect, () => Effect.sync(() => options.onPhase("end", phase, performance.now() - started)))
      })

    for (const bytes of blobs) {
      yield* timed(
        bytes === large ? "large-blob" : "blob",
        Effect.scoped(Effect.gen(function*() {
          const writer = yield* store.blobService.writer
          for (let offset = 0; offset < bytes.length; offset += chunkBytes) {
            yield* writer.write(bytes.subarray(offset, offset + chunkBytes))
          }
          return yield* writer.close
        }))
      )
    }
    yield* timed(
      "directories",
      Effect.scoped(Effect.gen(function*() {
        const putter = yield* store.directoryService.putter
        for (const d of [nested, sub, root]) yield* putter.put(d)
        return yield* putter.close
      }))
    )

    const picked = [...options.existing].sort(() => Math.random() - 0.5).slice(0, options.maxReferences)
    const pathInfo = new PathInfo.PathInfo({
      storePath: Either.getOrThrow(StorePath.make(random(20), `fault-${options.index}`)),
      node: rootNode,
      references: sortReferences(picked.map((p) => ({ storePath: p.storePath, node: Option.some(p.node) }))),
      narSize: nar.narSize,
      narSha256: nar.narSha256,
      signatures: [],
      deriver: Option.none(),
      ca: Option.none()
    })
    return yield* timed("pathinfo", store.pathInfoService.put(pathInfo))
  })
