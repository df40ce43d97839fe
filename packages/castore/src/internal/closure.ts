/**
 * Leaves-first validation of a directory closure, shared by every
 * DirectoryService backend's putter.
 *
 * @internal
 */
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import type * as Directory from "@nixfx/castore-nodes/Directory"
import * as Either from "effect/Either"
import { DirectoryServiceError } from "../CastoreError.js"

/** A validated closure: its root and every directory once, leaves first. */
export interface Closure {
  readonly root: Directory.Directory
  readonly directories: ReadonlyArray<Directory.Directory>
}

/**
 * Collects the directories of one closure, leaves first. `add` accepts a
 * directory only when every child directory it names was added before (with
 * the size the parent records); `finish` takes the last directory added as the
 * root and requires every directory to be reachable from it. Adding the same
 * directory twice is harmless: it is kept once.
 *
 * After a failed `add`, or after `finish`, the builder refuses everything.
 */
export class ClosureBuilder {
  private readonly seen = new Map<string, Directory.Directory>()
  private last: Directory.Directory | undefined = undefined
  private state: "open" | "failed" | "finished" = "open"

  add(directory: Directory.Directory): DirectoryServiceError | undefined {
    if (this.state !== "open") return this.refusal()
    const key = B3Digest.toHex(directory.digest)
    if (!this.seen.has(key)) {
      for (const { name, node } of directory.entries) {
        if (node._tag !== "Directory") continue
        const childKey = B3Digest.toHex(node.digest)
        const child = this.seen.get(childKey)
        if (child === undefined) {
          this.state = "failed"
          return new DirectoryServiceError({
            reason: "MissingChild",
            digest: key,
            description: `child '${name}' (${childKey}) was not uploaded before its parent`
          })
        }
        if (child.size !== node.size) {
          this.state = "failed"
          return new DirectoryServiceError({
            reason: "ChildSizeMismatch",
            digest: key,
            description: `child '${name}' (${childKey}) is recorded with size ${node.size}, ` +
              `but that directory has size ${child.size}`
          })
        }
      }
      this.seen.set(key, directory)
    }
    this.last = directory
    return undefined
  }

  finish(): Either.Either<Closure, DirectoryServiceError> {
    if (this.state !== "open") return Either.left(this.refusal())
    const root = this.last
    if (root === undefined) {
      this.state = "failed"
      return Either.left(
        new DirectoryServiceError({ reason: "EmptyClosure", description: "the putter was closed without any directory" })
      )
    }
    // Every child was checked to be present when its parent was added, so
    // this walk never leaves `seen`.
    const reached = new Set<string>([B3Digest.toHex(root.digest)])
    const stack = [root]
    while (stack.length > 0) {
      for (const { node } of stack.pop()!.entries) {
        if (node._tag !== "Directory") continue
        const key = B3Digest.toHex(node.digest)
        if (reached.has(key)) continue
        reached.add(key)
        stack.push(this.seen.get(key)!)
      }
    }
    if (reached.size < this.seen.size) {
      this.state = "failed"
      const unconnected = [...this.seen.keys()].filter((key) => !reached.has(key))
      return Either.left(
        new DirectoryServiceError({
          reason: "Unconnected",
          digest: unconnected[0],
          description: `not reachable from the root ${B3Digest.toHex(root.digest)} (the last directory put); ` +
            `${unconnected.length} of ${this.seen.size} directories are unconnected`
        })
      )
    }
    this.state = "finished"
    return Either.right({ root, directories: [...this.seen.values()] })
  }

  /** Marks the builder as abandoned. */
  abandon(): void {
    if (this.state === "open") this.state = "failed"
    this.seen.clear()
  }

  private refusal(): DirectoryServiceError {
    return new DirectoryServiceError({
      reason: "PutterClosed",
      description: this.state === "finished"
        ? "the putter was already closed"
        : "the putter was abandoned after an earlier failure; nothing was stored"
    })
  }
}
