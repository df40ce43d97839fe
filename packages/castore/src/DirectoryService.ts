/**
 * The directory store of castore: {@link Directory.Directory} messages keyed
 * by their BLAKE3 digest.
 *
 * Closures are uploaded leaves first through a {@link DirectoryPutter}, which
 * refuses a directory whose child directories it has not received, and at
 * `close` refuses directories the root does not reach. Nothing a putter
 * received becomes visible before its `close` succeeds. Closures are read
 * root first with `getRecursive`.
 *
 * @since 0.1.0
 */
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import type * as Directory from "@nixfx/castore-nodes/Directory"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { DirectoryServiceError } from "./CastoreError.js"
import { ClosureBuilder } from "./internal/closure.js"
import { traverse } from "./internal/traverse.js"

export {
  /**
   * @since 0.1.0
   * @category errors
   */
  DirectoryServiceError,
  /**
   * @since 0.1.0
   * @category errors
   */
  DirectoryServiceErrorReason,
  /**
   * @since 0.1.0
   * @category errors
   */
  isDirectoryServiceError,
  /**
   * @since 0.1.0
   * @category errors
   */
  isInvalidClosure
} from "./CastoreError.js"

/**
 * Uploads one directory closure, leaves first.
 *
 * `put` fails with `MissingChild` for a directory one of whose child
 * directories was not put earlier through this putter, and with
 * `ChildSizeMismatch` when the size it records for a child differs from the
 * child's. `close` takes the last directory put as the root, fails with
 * `Unconnected` when some directory put is not reachable from it (or
 * `EmptyClosure` when nothing was put), and otherwise stores the whole closure
 * at once and returns the root's digest. A putter whose Scope closes without a
 * successful `close`, or one of whose `put`s failed, stores nothing.
 *
 * @since 0.1.0
 * @category models
 */
export interface DirectoryPutter {
  readonly put: (directory: Directory.Directory) => Effect.Effect<void, DirectoryServiceError>
  readonly close: Effect.Effect<B3Digest.B3Digest, DirectoryServiceError>
}

/**
 * The shape of a directory store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly get: (digest: B3Digest.B3Digest) => Effect.Effect<Option.Option<Directory.Directory>, DirectoryServiceError>
  /**
   * Stores one directory on its own, without checking that its children are
   * stored; use a putter for closures.
   */
  readonly put: (directory: Directory.Directory) => Effect.Effect<B3Digest.B3Digest, DirectoryServiceError>
  /**
   * The closure of `root`: root first, then breadth first, each directory
   * once. Fails with `NotFound` when the root or a directory it reaches is
   * missing.
   */
  readonly getRecursive: (root: B3Digest.B3Digest) => Stream.Stream<Directory.Directory, DirectoryServiceError>
  readonly putter: Effect.Effect<DirectoryPutter, DirectoryServiceError, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class DirectoryService extends Context.Tag("@nixfx/castore/DirectoryService")<DirectoryService, Service>() {}

/**
 * Uploads a closure given leaves first (the root last) through one putter
 * and returns the root's digest.
 *
 * @since 0.1.0
 * @category combinators
 */
export const putClosure = (
  directories: Iterable<Directory.Directory>
): Effect.Effect<B3Digest.B3Digest, DirectoryServiceError, DirectoryService> =>
  Effect.scoped(
    Effect.flatMap(DirectoryService, (service) =>
      Effect.flatMap(service.putter, (putter) =>
        Effect.zipRight(
          Effect.forEach(directories, putter.put, { discard: true }),
          putter.close
        )))
  )

/**
 * Builds a putter from a function that stores a validated closure (given
 * leaves first) in one step. Backends use it so every putter validates
 * alike.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makePutter = (
  store: (closure: {
    readonly root: Directory.Directory
    readonly directories: ReadonlyArray<Directory.Directory>
  }) => Effect.Effect<void, DirectoryServiceError>
): Effect.Effect<DirectoryPutter, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => new ClosureBuilder()),
      (builder) => Effect.sync(() => builder.abandon())
    ),
    (builder): DirectoryPutter => ({
      put: (directory) =>
        Effect.suspend(() => {
          const failed = builder.add(directory)
          return failed === undefined ? Effect.void : Effect.fail(failed)
        }),
      close: Effect.suspend(() =>
        Either.match(builder.finish(), {
          onLeft: Effect.fail,
          onRight: (closure) => Effect.as(store(closure), closure.root.digest)
        })
      )
    })
  )

/**
 * A directory store held in a `Map` in memory, for tests and short-lived
 * tools.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<Service> = Effect.sync(() => {
  const directories = new Map<string, Directory.Directory>()
  const lookup = (digest: B3Digest.B3Digest) => directories.get(B3Digest.toHex(digest))
  const insert = (directory: Directory.Directory) => {
    const key = B3Digest.toHex(directory.digest)
    if (!directories.has(key)) directories.set(key, directory)
  }
  return DirectoryService.of({
    get: (digest) => Effect.sync(() => Option.fromNullable(lookup(digest))),
    put: (directory) =>
      Effect.sync(() => {
        insert(directory)
        return directory.digest
      }),
    getRecursive: (root) => traverse(root, (digests) => Effect.sync(() => digests.map(lookup))),
    putter: makePutter(({ directories }) => Effect.sync(() => directories.forEach(insert)))
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<DirectoryService> = Layer.effect(DirectoryService, makeMemory)
