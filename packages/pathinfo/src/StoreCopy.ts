/**
 * Copying store paths with their closures from one store to another: the
 * castore content first (blobs, then directories leaves first), then the
 * PathInfos, leaves first, so the destination never holds a PathInfo whose
 * content or references it lacks.
 *
 * References are kept by content: a reference whose node the source does not
 * know (a tvix peer, a narinfo) gets the node the destination holds for it,
 * which was copied just before.
 *
 * @since 0.1.0
 */
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import type * as Directory from "@nixfx/castore-nodes/Directory"
import * as Node from "@nixfx/castore-nodes/Node"
import type { BlobServiceError, DirectoryServiceError } from "@nixfx/castore/CastoreError"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as PathInfo from "./PathInfo.js"
import type { PathInfoServiceError } from "./PathInfoError.js"
import type { PathInfoServiceShape } from "./PathInfoService.js"
import type { Store } from "./StoreComposition.js"

/**
 * The source lacks something the copy needs: a path of the closure, a
 * directory or a blob its PathInfo points at, or a blob's content differs
 * from its digest.
 *
 * @since 0.1.0
 * @category errors
 */
export class CopyError extends Data.TaggedError("CopyError")<{
  readonly reason: "MissingPath" | "MissingDirectory" | "MissingBlob" | "BlobMismatch"
  /** The store path being copied (absolute). */
  readonly storePath: string
  readonly detail: string
}> {
  override get message(): string {
    return `${this.storePath}: ${this.detail}`
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export type StoreCopyError = CopyError | PathInfoServiceError | BlobServiceError | DirectoryServiceError

/**
 * What a copy reports while it runs.
 *
 * @since 0.1.0
 * @category models
 */
export type Event = Data.TaggedEnum<{
  /** The closure is known: `paths` to consider, `narBytes` their total NAR size. */
  Planned: { readonly paths: number; readonly narBytes: number }
  /** A path is in the destination now. */
  Copied: { readonly storePath: string; readonly narSize: number }
  /** A path was in the destination already. */
  Present: { readonly storePath: string; readonly narSize: number }
}>

/**
 * @since 0.1.0
 * @category models
 */
export const Event = Data.taggedEnum<Event>()

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Blobs copied at once within a path (default 8). */
  readonly concurrency?: number
  /** Called for every event, synchronously. */
  readonly onEvent?: (event: Event) => void
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Result {
  /** The requested paths' PathInfos as the destination holds them. */
  readonly roots: ReadonlyArray<PathInfo.PathInfo>
  readonly copied: number
  readonly present: number
}

/**
 * The closure of `roots` in `source`, leaves first (every path after all of
 * its references). Fails with `MissingPath` naming the first absent path and
 * who refers to it.
 *
 * @since 0.1.0
 * @category closure
 */
export const closure = (
  source: PathInfoServiceShape,
  roots: ReadonlyArray<StorePath.StorePath>
): Effect.Effect<ReadonlyArray<PathInfo.PathInfo>, CopyError | PathInfoServiceError> =>
  Effect.gen(function*() {
    const found = new Map<string, PathInfo.PathInfo>()
    let frontier: Array<{ readonly path: StorePath.StorePath; readonly referrer: string | undefined }> = roots.map((
      path
    ) => ({ path, referrer: undefined }))
    while (frontier.length > 0) {
      const fresh = frontier.filter(({ path }, i) =>
        !found.has(path.basename) && frontier.findIndex((other) => other.path.basename === path.basename) === i
      )
      const infos = yield* Effect.forEach(fresh, ({ path }) => source.get(path.digest), { concurrency: 16 })
      const next: typeof frontier = []
      for (let i = 0; i < fresh.length; i++) {
        const { path, referrer } = fresh[i]
        const info = Option.filter(infos[i], (p) => p.storePath.name === path.name)
        if (Option.isNone(info)) {
          return yield* new CopyError({
            reason: "MissingPath",
            storePath: StorePath.toAbsolutePath(path),
            detail: referrer === undefined
              ? "not in the source store"
              : `not in the source store (a reference of ${referrer})`
          })
        }
        found.set(path.basename, info.value)
        for (const reference of info.value.references) {
          if (!found.has(reference.storePath.basename)) {
            next.push({ path: reference.storePath, referrer: StorePath.toAbsolutePath(path) })
          }
        }
      }
      frontier = next
    }
    // leaves first: depth-first post-order over references
    const ordered: Array<PathInfo.PathInfo> = []
    const state = new Map<string, "visiting" | "done">()
    const visit = (info: PathInfo.PathInfo): void => {
      if (state.has(info.basename)) return
      state.set(info.basename, "visiting")
      for (const reference of info.references) {
        const dependency = found.get(reference.storePath.basename)
        if (dependency !== undefined) visit(dependency)
      }
      state.set(info.basename, "done")
      ordered.push(info)
    }
    for (const info of found.values()) visit(info)
    yield* Effect.annotateCurrentSpan("nixfx.closure_paths", ordered.length)
    return ordered
  }).pipe(Effect.withSpan("StoreCopy.closure", { attributes: { "nixfx.roots": roots.length } }))

const copyBlob = (
  from: Store,
  to: Store,
  digest: B3Digest.B3Digest,
  storePath: string
): Effect.Effect<void, CopyError | BlobServiceError> =>
  Effect.gen(function*() {
    if (yield* to.blobService.has(digest)) return
    const content = yield* from.blobService.read(digest)
    if (Option.isNone(content)) {
      return yield* new CopyError({
        reason: "MissingBlob",
        storePath,
        detail: `blob ${B3Digest.toHex(digest)} is not in the source store`
      })
    }
    const written = yield* Effect.scoped(
      Effect.gen(function*() {
        const writer = yield* to.blobService.writer
        yield* Stream.runForEach(content.value, writer.write)
        return yield* writer.close
      })
    )
    if (!B3Digest.equals(written.digest, digest)) {
      return yield* new CopyError({
        reason: "BlobMismatch",
        storePath,
        detail: `blob ${B3Digest.toHex(digest)} arrived with content hashing to ${B3Digest.toHex(written.digest)}`
      })
    }
  })

/** Directories of a closure, children before parents, each once. */
const leavesFirst = (root: B3Digest.B3Digest, directories: ReadonlyArray<Directory.Directory>) => {
  const byDigest = new Map(directories.map((d) => [B3Digest.toHex(d.digest), d]))
  const ordered: Array<Directory.Directory> = []
  const seen = new Set<string>()
  const visit = (digest: B3Digest.B3Digest): void => {
    const key = B3Digest.toHex(digest)
    if (seen.has(key)) return
    seen.add(key)
    const directory = byDigest.get(key)
    if (directory === undefined) return
    for (const entry of directory.entries) {
      if (entry.node._tag === "Directory") visit(entry.node.digest)
    }
    ordered.push(directory)
  }
  visit(root)
  return ordered
}

/**
 * Copies the castore content under `node` from one store to another:
 * blobs first, then the directory closure through one putter.
 *
 * @since 0.1.0
 * @category copying
 */
export const copyContent = (
  from: Store,
  to: Store,
  node: Node.Node,
  storePath: string,
  options?: Pick<Options, "concurrency">
): Effect.Effect<void, CopyError | BlobServiceError | DirectoryServiceError> =>
  Effect.gen(function*() {
    const concurrency = options?.concurrency ?? 8
    switch (node._tag) {
      case "Symlink":
        return
      case "File":
        return yield* copyBlob(from, to, node.digest, storePath)
      case "Directory": {
        if (Option.isSome(yield* to.directoryService.get(node.digest))) return
        const directories = yield* Stream.runCollect(from.directoryService.getRecursive(node.digest)).pipe(
          Effect.catchIf(
            (error) => error.reason === "NotFound",
            (error) =>
              new CopyError({ reason: "MissingDirectory", storePath, detail: error.message })
          )
        )
        const ordered = leavesFirst(node.digest, Array.from(directories))
        const blobs = new Map<string, B3Digest.B3Digest>()
        for (const directory of ordered) {
          for (const entry of directory.entries) {
            if (entry.node._tag === "File") blobs.set(B3Digest.toHex(entry.node.digest), entry.node.digest)
          }
        }
        yield* Effect.annotateCurrentSpan({ "castore.directories": ordered.length, "castore.blobs": blobs.size })
        yield* Effect.forEach(blobs.values(), (digest) => copyBlob(from, to, digest, storePath), {
          concurrency,
          discard: true
        })
        yield* Effect.scoped(
          Effect.gen(function*() {
            const putter = yield* to.directoryService.putter
            for (const directory of ordered) yield* putter.put(directory)
            yield* putter.close
          })
        )
      }
    }
  }).pipe(Effect.withSpan("StoreCopy.copyContent", { attributes: { "nix.store_path": storePath, "castore.node": node._tag } }))

/** The PathInfo with every unknown reference node taken from the destination. */
const withKnownReferenceNodes = (
  to: Store,
  info: PathInfo.PathInfo
): Effect.Effect<PathInfo.PathInfo, PathInfoServiceError> =>
  Effect.gen(function*() {
    if (info.references.every((reference) => Option.isSome(reference.node))) return info
    const references = yield* Effect.forEach(info.references, (reference) =>
      Option.isSome(reference.node)
        ? Effect.succeed(reference)
        : Effect.map(to.pathInfoService.get(reference.storePath.digest), (held) => ({
          storePath: reference.storePath,
          node: Option.map(held, (p) => p.node)
        })))
    return yield* Either.match(PathInfo.make({ ...info, references }), {
      onLeft: (error) => Effect.fail(error),
      onRight: Effect.succeed
    })
  })

/**
 * Copies `paths` and their closures from `from` to `to`. Paths the
 * destination holds already are left as they are (and reported `Present`).
 *
 * @since 0.1.0
 * @category copying
 */
export const copy = (
  from: Store,
  to: Store,
  paths: ReadonlyArray<StorePath.StorePath>,
  options?: Options
): Effect.Effect<Result, StoreCopyError> =>
  Effect.gen(function*() {
    const emit = options?.onEvent ?? (() => {})
    const ordered = yield* closure(from.pathInfoService, paths)
    emit(Event.Planned({ paths: ordered.length, narBytes: ordered.reduce((sum, info) => sum + info.narSize, 0) }))
    const held = new Map<string, PathInfo.PathInfo>()
    let copied = 0
    let present = 0
    for (const info of ordered) {
      const storePath = StorePath.toAbsolutePath(info.storePath)
      yield* Effect.gen(function*() {
        const existing = yield* to.pathInfoService.get(info.storePath.digest)
        if (Option.isSome(existing) && existing.value.storePath.name === info.storePath.name) {
          held.set(info.basename, existing.value)
          present++
          yield* Effect.annotateCurrentSpan("nixfx.present", true)
          emit(Event.Present({ storePath, narSize: info.narSize }))
          return
        }
        yield* copyContent(from, to, info.node, storePath, options)
        const stored = yield* to.pathInfoService.put(yield* withKnownReferenceNodes(to, info))
        held.set(info.basename, stored)
        copied++
        yield* Effect.annotateCurrentSpan("nixfx.present", false)
        emit(Event.Copied({ storePath, narSize: info.narSize }))
      }).pipe(
        Effect.withSpan("StoreCopy.copyPath", { attributes: { "nix.store_path": storePath, "nix.nar_size": info.narSize } })
      )
    }
    yield* Effect.annotateCurrentSpan({ "nixfx.copied": copied, "nixfx.present": present })
    return { roots: paths.map((path) => held.get(path.basename)!), copied, present }
  }).pipe(
    Effect.withSpan("StoreCopy.copy", {
      attributes: { "nix.store_paths": paths.map((path) => StorePath.toAbsolutePath(path)) }
    })
  )
