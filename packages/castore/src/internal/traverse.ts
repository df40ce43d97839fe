/**
 * Root-first, breadth-first reading of a directory closure, shared by every
 * DirectoryService backend's `getRecursive`.
 *
 * @internal
 */
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import type * as Directory from "@nixfx/castore-nodes/Directory"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { DirectoryServiceError } from "../CastoreError.js"

interface Pending {
  readonly digest: B3Digest.B3Digest
  /** How the parent refers to it (absent for the root). */
  readonly parent?: { readonly digest: string; readonly name: string; readonly size: number }
}

/**
 * Streams the closure of `root`, root first, one breadth-first level per
 * chunk, every directory once. `fetch` looks up a level at once and answers
 * in the order asked, `undefined` for a directory the store does not hold.
 */
export const traverse = (
  root: B3Digest.B3Digest,
  fetch: (
    digests: ReadonlyArray<B3Digest.B3Digest>
  ) => Effect.Effect<ReadonlyArray<Directory.Directory | undefined>, DirectoryServiceError>
): Stream.Stream<Directory.Directory, DirectoryServiceError> =>
  Stream.suspend(() => {
    // The size each directory was first recorded with, by digest.
    const visited = new Map<string, { readonly size: number; readonly parent: string; readonly name: string }>()
    return Stream.paginateChunkEffect<ReadonlyArray<Pending>, Directory.Directory, DirectoryServiceError, never>(
      [{ digest: root }],
      (level) =>
        Effect.flatMap(fetch(level.map((pending) => pending.digest)), (found) => {
          const next: Array<Pending> = []
          for (let i = 0; i < level.length; i++) {
            const { digest, parent } = level[i]
            const directory = found[i]
            if (directory === undefined) {
              return Effect.fail(
                new DirectoryServiceError({
                  reason: "NotFound",
                  digest: B3Digest.toHex(digest),
                  description: parent === undefined
                    ? "not found"
                    : `not found (child '${parent.name}' of ${parent.digest})`
                })
              )
            }
            if (parent !== undefined && parent.size !== directory.size) {
              return Effect.fail(
                new DirectoryServiceError({
                  reason: "ChildSizeMismatch",
                  digest: parent.digest,
                  description: `child '${parent.name}' (${B3Digest.toHex(digest)}) is recorded with size ${parent.size}, ` +
                    `but that directory has size ${directory.size}`
                })
              )
            }
            const key = B3Digest.toHex(digest)
            for (const { name, node } of directory.entries) {
              if (node._tag !== "Directory") continue
              const childKey = B3Digest.toHex(node.digest)
              const first = visited.get(childKey)
              if (first !== undefined) {
                if (first.size === node.size) continue
                return Effect.fail(
                  new DirectoryServiceError({
                    reason: "ChildSizeMismatch",
                    digest: key,
                    description: `child '${name}' (${childKey}) is recorded with size ${node.size}, ` +
                      `but child '${first.name}' of ${first.parent} records it with size ${first.size}`
                  })
                )
              }
              visited.set(childKey, { size: node.size, parent: key, name })
              next.push({ digest: node.digest, parent: { digest: key, name, size: node.size } })
            }
          }
          return Effect.succeed(
            [
              Chunk.unsafeFromArray(found as ReadonlyArray<Directory.Directory>),
              next.length === 0 ? Option.none() : Option.some(next)
            ] as const
          )
        })
    )
  })
