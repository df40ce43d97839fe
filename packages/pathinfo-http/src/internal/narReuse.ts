/**
 * Never downloading the same NAR twice: before a NAR is fetched, the resolve
 * store's `NarIndex` is asked for the castore root that NAR became when it was
 * imported before (under another store path, or under this one before its
 * PathInfo was lost); when the root's whole content is still in castore, that
 * root is used and nothing is downloaded. After an import the mapping is
 * recorded. Within one reader, two paths with the same NAR fetched at the same
 * time share one download.
 *
 * @internal
 */
import type * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import type * as Node from "@nixfx/castore-nodes/Node"
import type * as NarInfo from "@nixfx/nix-compat/NarInfo"
import type * as NarIndex from "@nixfx/pathinfo/NarIndex"
import type { StorageError } from "@nixfx/pathinfo/PathInfoError"
import type * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

/** Blob presence checks at once (a stat each on the filesystem store). */
const BLOB_CHECK_CONCURRENCY = 16

export interface NarReuse {
  /**
   * Runs `import` for the NAR of `narInfo` unless the index knows its root
   * and castore still holds that root's content (then `reused` is true).
   * Concurrent calls for the same NAR share one import.
   */
  readonly once: <E>(
    narInfo: NarInfo.NarInfo,
    importNar: Effect.Effect<Node.Node, E>
  ) => Effect.Effect<{ readonly node: Node.Node; readonly reused: boolean }, E | StorageError>
}

/** Whether castore holds everything under `node` (directories and blobs); errors count as "no". */
const contentPresent = (store: StoreComposition.Store, node: Node.Node): Effect.Effect<boolean> => {
  switch (node._tag) {
    case "Symlink":
      return Effect.succeed(true)
    case "File":
      return Effect.orElseSucceed(store.blobService.has(node.digest), () => false)
    case "Directory": {
      const blobs: Array<B3Digest.B3Digest> = []
      const seen = new Set<string>()
      return Stream.runForEach(store.directoryService.getRecursive(node.digest), (directory) =>
        Effect.sync(() => {
          for (const entry of directory.entries) {
            if (entry.node._tag !== "File") continue
            const key = Buffer.from(entry.node.digest).toString("latin1")
            if (seen.has(key)) continue
            seen.add(key)
            blobs.push(entry.node.digest)
          }
        })).pipe(
          Effect.zipRight(
            Effect.forEach(blobs, (digest) => store.blobService.has(digest), { concurrency: BLOB_CHECK_CONCURRENCY })
          ),
          Effect.map((found) => found.every((x) => x)),
          Effect.tapError((e) => Effect.logDebug(`NAR index: content of a known root is not readable: ${e.message}`)),
          Effect.orElseSucceed(() => false)
        )
    }
  }
}

export const makeNarReuse = (store: StoreComposition.Store, narIndex: NarIndex.NarIndexShape): NarReuse => {
  const inFlight = new Map<string, Deferred.Deferred<void>>()

  const known = (narInfo: NarInfo.NarInfo): Effect.Effect<Option.Option<Node.Node>, StorageError> =>
    Effect.flatMap(narIndex.get(narInfo.narHash.digest), (entry) => {
      if (Option.isNone(entry) || entry.value.narSize !== narInfo.narSize) return Effect.succeedNone
      const node = entry.value.node
      return Effect.map(contentPresent(store, node), (present) => (present ? Option.some(node) : Option.none()))
    })

  const importAndRecord = <E>(narInfo: NarInfo.NarInfo, importNar: Effect.Effect<Node.Node, E>) =>
    Effect.flatMap(known(narInfo), (hit) =>
      Option.isSome(hit)
        ? Effect.succeed({ node: hit.value, reused: true })
        : Effect.flatMap(importNar, (node) =>
          Effect.as(
            narIndex.put({ narSha256: narInfo.narHash.digest, narSize: narInfo.narSize, node }),
            { node, reused: false }
          )))

  return {
    once: (narInfo, importNar) =>
      Effect.suspend(() => {
        const key = Buffer.from(narInfo.narHash.digest).toString("latin1")
        const running = inFlight.get(key)
        // Another path is importing this NAR: once it is done the index knows the root (or, if it failed, we try).
        if (running !== undefined) return Effect.zipRight(Deferred.await(running), importAndRecord(narInfo, importNar))
        const done = Deferred.unsafeMake<void>(FiberId.none)
        inFlight.set(key, done)
        return Effect.ensuring(
          importAndRecord(narInfo, importNar),
          Effect.zipRight(Effect.sync(() => inFlight.delete(key)), Deferred.succeed(done, undefined))
        )
      })
  }
}
