/**
 * Checking a whole store: every PathInfo's content is there and is what the
 * PathInfo says it is.
 *
 * For each PathInfo (`list`), the check walks the castore tree of its root
 * node and reports, as typed findings:
 *
 * - a directory the tree reaches that the DirectoryService lacks, holds in a
 *   form that does not decode to its digest, or whose size differs from the
 *   size its parent records;
 * - a blob the BlobService lacks, whose bytes do not hash to its BLAKE3
 *   digest, or whose length differs from its FileNode;
 * - a NAR size or SHA-256, rendered from castore, that differs from the
 *   PathInfo's (checked once the tree is whole);
 * - a reference the store lacks, or whose recorded node differs from the
 *   node of the reference's own PathInfo.
 *
 * Each blob is read and hashed once per run, however many paths share it
 * (the NAR render then reads it again per path, for the SHA-256). Paths are
 * checked a few at a time (`concurrency`), and so are the blobs of one path.
 * A store that fails (I/O, database) fails the run: a finding is a fact about
 * the data, never about a failed read.
 *
 * @since 0.1.0
 */
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import type * as Directory from "@nixfx/castore-nodes/Directory"
import * as Node from "@nixfx/castore-nodes/Node"
import * as BlobService from "@nixfx/castore/BlobService"
import type { BlobServiceError, DirectoryServiceError } from "@nixfx/castore/CastoreError"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as NarRender from "@nixfx/castore/NarRender"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as Chunk from "effect/Chunk"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { nodeToString, sha256ToString } from "./internal/show.js"
import type * as PathInfo from "./PathInfo.js"
import type { PathInfoServiceError } from "./PathInfoError.js"
import * as PathInfoService from "./PathInfoService.js"
import type { Store } from "./StoreComposition.js"

// ---------------------------------------------------------------------------
// findings
// ---------------------------------------------------------------------------

/**
 * A directory the tree reaches is not in the DirectoryService. `path` is
 * where it sits inside the store path (`/` for the root).
 *
 * @since 0.1.0
 * @category findings
 */
export class MissingDirectory extends Data.TaggedClass("MissingDirectory")<{
  readonly storePath: string
  readonly path: string
  readonly digest: string
}> {
  get message(): string {
    return `${this.storePath}: directory ${this.digest} at ${this.path} is missing`
  }
}

/**
 * A directory is stored, but its stored form does not decode to a valid
 * directory with that digest.
 *
 * @since 0.1.0
 * @category findings
 */
export class CorruptDirectory extends Data.TaggedClass("CorruptDirectory")<{
  readonly storePath: string
  readonly path: string
  readonly digest: string
  readonly detail: string
}> {
  get message(): string {
    return `${this.storePath}: directory ${this.digest} at ${this.path} is corrupt: ${this.detail}`
  }
}

/**
 * A directory's size (its entries, recursively) differs from the size its
 * parent (or the root node) records for it.
 *
 * @since 0.1.0
 * @category findings
 */
export class DirectorySizeMismatch extends Data.TaggedClass("DirectorySizeMismatch")<{
  readonly storePath: string
  readonly path: string
  readonly digest: string
  readonly recorded: number
  readonly actual: number
}> {
  get message(): string {
    return `${this.storePath}: directory ${this.digest} at ${this.path} has size ${this.actual}, recorded as ${this.recorded}`
  }
}

/**
 * A blob a FileNode names is not in the BlobService.
 *
 * @since 0.1.0
 * @category findings
 */
export class MissingBlob extends Data.TaggedClass("MissingBlob")<{
  readonly storePath: string
  readonly path: string
  readonly digest: string
}> {
  get message(): string {
    return `${this.storePath}: blob ${this.digest} at ${this.path} is missing`
  }
}

/**
 * A blob's bytes do not hash to the digest they are stored under.
 *
 * @since 0.1.0
 * @category findings
 */
export class CorruptBlob extends Data.TaggedClass("CorruptBlob")<{
  readonly storePath: string
  readonly path: string
  readonly digest: string
  /** BLAKE3 of the bytes the store returned (hex). */
  readonly actualDigest: string
  /** How many bytes the store returned. */
  readonly actualSize: number
}> {
  get message(): string {
    return `${this.storePath}: blob ${this.digest} at ${this.path} is corrupt: its ${this.actualSize} bytes hash to ${this.actualDigest}`
  }
}

/**
 * A blob is intact but its length differs from its FileNode's size.
 *
 * @since 0.1.0
 * @category findings
 */
export class BlobSizeMismatch extends Data.TaggedClass("BlobSizeMismatch")<{
  readonly storePath: string
  readonly path: string
  readonly digest: string
  readonly recorded: number
  readonly actual: number
}> {
  get message(): string {
    return `${this.storePath}: blob ${this.digest} at ${this.path} has ${this.actual} bytes, the file node says ${this.recorded}`
  }
}

/**
 * The NAR rendered from castore differs in size or SHA-256 from the
 * PathInfo's NarSize/NarHash.
 *
 * @since 0.1.0
 * @category findings
 */
export class NarHashMismatch extends Data.TaggedClass("NarHashMismatch")<{
  readonly storePath: string
  /** The PathInfo's NAR hash, `sha256:<nixbase32>`. */
  readonly digest: string
  readonly narSize: number
  readonly actualDigest: string
  readonly actualNarSize: number
}> {
  get message(): string {
    return `${this.storePath}: the NAR rendered from the store is ${this.actualNarSize} bytes, ${this.actualDigest}; ` +
      `the PathInfo records ${this.narSize} bytes, ${this.digest}`
  }
}

/**
 * The tree cannot be rendered as a NAR for a reason the walk did not see
 * (the render's error says which).
 *
 * @since 0.1.0
 * @category findings
 */
export class NarRenderFailed extends Data.TaggedClass("NarRenderFailed")<{
  readonly storePath: string
  readonly digest: string
  readonly detail: string
}> {
  get message(): string {
    return `${this.storePath}: ${this.detail}`
  }
}

/**
 * A reference of the PathInfo is not in the store.
 *
 * @since 0.1.0
 * @category findings
 */
export class MissingReference extends Data.TaggedClass("MissingReference")<{
  readonly storePath: string
  readonly reference: string
}> {
  get message(): string {
    return `${this.storePath}: reference ${this.reference} is missing`
  }
}

/**
 * The node the PathInfo records for a reference differs from the node of the
 * reference's own PathInfo in the store.
 *
 * @since 0.1.0
 * @category findings
 */
export class ReferenceNodeMismatch extends Data.TaggedClass("ReferenceNodeMismatch")<{
  readonly storePath: string
  readonly reference: string
  /** The recorded node, as JSON (`b3:` base64 digests). */
  readonly recorded: string
  /** The node the store holds for the reference, as JSON. */
  readonly actual: string
}> {
  get message(): string {
    return `${this.storePath}: reference ${this.reference} is recorded with node ${this.recorded}, the store holds ${this.actual}`
  }
}

/**
 * Something wrong with one store path's data.
 *
 * @since 0.1.0
 * @category findings
 */
export type Finding =
  | MissingDirectory
  | CorruptDirectory
  | DirectorySizeMismatch
  | MissingBlob
  | CorruptBlob
  | BlobSizeMismatch
  | NarHashMismatch
  | NarRenderFailed
  | MissingReference
  | ReferenceNodeMismatch

/**
 * A store failed while being checked (not a finding: the data could not be
 * read at all).
 *
 * @since 0.1.0
 * @category errors
 */
export type StoreVerifyError = PathInfoServiceError | BlobServiceError | DirectoryServiceError

// ---------------------------------------------------------------------------
// options and results
// ---------------------------------------------------------------------------

/**
 * How far a run has got.
 *
 * @since 0.1.0
 * @category models
 */
export interface Counts {
  /** PathInfos checked. */
  readonly paths: number
  /** Directories read (a directory shared by several paths counts for each). */
  readonly directories: number
  /** Distinct blobs hashed. */
  readonly blobs: number
  /** Bytes of those blobs. */
  readonly blobBytes: number
  /** Findings so far. */
  readonly findings: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Paths checked at once, and blobs hashed at once within a path (default 4). */
  readonly concurrency?: number | undefined
  /** Called after every path, and once more at the end, with the counts so far. */
  readonly onProgress?: ((counts: Counts) => void) | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Report {
  readonly counts: Counts
  readonly findings: ReadonlyArray<Finding>
}

// ---------------------------------------------------------------------------
// the check
// ---------------------------------------------------------------------------

type BlobVerdict =
  | { readonly _tag: "Intact"; readonly size: number }
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Corrupt"; readonly actualDigest: string; readonly size: number }

/** A FileNode of the tree, with the first place it appears. */
interface FileAt {
  readonly node: Node.FileNode
  readonly path: string
}

const childPath = (parent: string, name: string): string => (parent === "/" ? "/" + name : parent + "/" + name)

/**
 * Results by key for one run: a result once known (kept small, as a run over
 * a large store remembers one per blob), and the computations under way.
 */
interface Memo<A, E> {
  readonly known: Map<string, A>
  readonly pending: Map<string, Deferred.Deferred<A, E>>
}

const memo = <A, E>(): Memo<A, E> => ({ known: new Map(), pending: new Map() })

/**
 * Runs `compute` once per key for the whole run; concurrent callers with the
 * same key wait for the first one's result.
 */
const once = <A, E>(memo: Memo<A, E>, key: string, compute: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.suspend(() => {
    const known = memo.known.get(key)
    if (known !== undefined) return Effect.succeed(known)
    const pending = memo.pending.get(key)
    if (pending !== undefined) return Deferred.await(pending)
    const deferred = Deferred.unsafeMake<A, E>(FiberId.none)
    memo.pending.set(key, deferred)
    return compute.pipe(
      Effect.tap((a) => Effect.sync(() => memo.known.set(key, a))),
      Effect.ensuring(Effect.sync(() => memo.pending.delete(key))),
      Effect.intoDeferred(deferred),
      Effect.zipRight(Deferred.await(deferred))
    )
  })

/**
 * Every finding of every PathInfo in `store`, as they are found.
 *
 * @since 0.1.0
 * @category verify
 */
export const stream = (store: Store, options: Options = {}): Stream.Stream<Finding, StoreVerifyError> =>
  Stream.suspend(() => {
    const concurrency = Math.max(1, options.concurrency ?? 4)
    const counts = { paths: 0, directories: 0, blobs: 0, blobBytes: 0, findings: 0 }
    const report = () => options.onProgress?.({ ...counts })
    const blobVerdicts = memo<BlobVerdict, BlobServiceError>()
    const referenceNodes = memo<Option.Option<Node.Node>, PathInfoServiceError>()

    const hashBlob = (digest: B3Digest.B3Digest): Effect.Effect<BlobVerdict, BlobServiceError> =>
      Effect.flatMap(store.blobService.read(digest), (bytes) => {
        if (Option.isNone(bytes)) return Effect.succeed<BlobVerdict>({ _tag: "Missing" })
        const hasher = B3Digest.hasher()
        let size = 0
        return Stream.runForEachChunk(bytes.value, (chunk) =>
          Effect.sync(() => {
            for (const piece of chunk) {
              hasher.update(piece)
              size += piece.length
            }
          })).pipe(
            Effect.map((): BlobVerdict => {
              counts.blobs++
              counts.blobBytes += size
              const actual = hasher.digest()
              return B3Digest.equals(actual, digest)
                ? { _tag: "Intact", size }
                : { _tag: "Corrupt", actualDigest: B3Digest.toHex(actual), size }
            })
          )
      })

    const checkBlobs = (storePath: string, files: ReadonlyArray<FileAt>) =>
      Effect.forEach(files, ({ node, path }) =>
        Effect.map(
          once(blobVerdicts, B3Digest.toHex(node.digest), hashBlob(node.digest)),
          (verdict): ReadonlyArray<Finding> => {
            const digest = B3Digest.toHex(node.digest)
            switch (verdict._tag) {
              case "Missing":
                return [new MissingBlob({ storePath, path, digest })]
              case "Corrupt":
                return [
                  new CorruptBlob({ storePath, path, digest, actualDigest: verdict.actualDigest, actualSize: verdict.size })
                ]
              case "Intact":
                return verdict.size === node.size
                  ? []
                  : [new BlobSizeMismatch({ storePath, path, digest, recorded: node.size, actual: verdict.size })]
            }
          }
        ), { concurrency }).pipe(Effect.map((lists) => lists.flat()))

    /** The directory at `digest`, or the finding that says why there is none. */
    const readDirectory = (
      storePath: string,
      path: string,
      digest: B3Digest.B3Digest
    ): Effect.Effect<Directory.Directory | Finding, DirectoryServiceError> =>
      store.directoryService.get(digest).pipe(
        Effect.map((found): Directory.Directory | Finding =>
          Option.isSome(found)
            ? found.value
            : new MissingDirectory({ storePath, path, digest: B3Digest.toHex(digest) })
        ),
        Effect.catchIf(
          (e) => e.reason === "Corrupt" || e.reason === "NotFound",
          (e) =>
            Effect.succeed<Finding>(
              e.reason === "NotFound"
                ? new MissingDirectory({ storePath, path, digest: B3Digest.toHex(digest) })
                : new CorruptDirectory({ storePath, path, digest: B3Digest.toHex(digest), detail: e.description })
            )
        ),
        Effect.tap(() => Effect.sync(() => counts.directories++))
      )

    /**
     * Walks the tree below `root` breadth first: its files (each digest
     * once, at its first place) and the findings about its directories.
     */
    const walk = (storePath: string, root: Node.Node) =>
      Effect.gen(function*() {
        const files = new Map<string, FileAt>()
        const findings: Array<Finding> = []
        if (root._tag === "File") files.set(B3Digest.toHex(root.digest), { node: root, path: "/" })
        if (root._tag !== "Directory") return { files: Array.from(files.values()), findings }
        const seen = new Set<string>([B3Digest.toHex(root.digest)])
        let level: Array<{ readonly node: Node.DirectoryNode; readonly path: string }> = [{ node: root, path: "/" }]
        while (level.length > 0) {
          const read = yield* Effect.forEach(level, ({ node, path }) => readDirectory(storePath, path, node.digest), {
            concurrency
          })
          const next: typeof level = []
          for (let i = 0; i < level.length; i++) {
            const { node, path } = level[i]
            const directory = read[i]
            if (!("entries" in directory)) {
              findings.push(directory)
              continue
            }
            if (directory.size !== node.size) {
              findings.push(
                new DirectorySizeMismatch({
                  storePath,
                  path,
                  digest: B3Digest.toHex(node.digest),
                  recorded: node.size,
                  actual: directory.size
                })
              )
            }
            for (const entry of directory.entries) {
              const child = entry.node
              if (child._tag === "Symlink") continue
              const key = B3Digest.toHex(child.digest)
              if (child._tag === "File") {
                if (!files.has(key)) files.set(key, { node: child, path: childPath(path, entry.name) })
              } else if (!seen.has(key)) {
                seen.add(key)
                next.push({ node: child, path: childPath(path, entry.name) })
              }
            }
          }
          level = next
        }
        return { files: Array.from(files.values()), findings }
      })

    const checkNar = (storePath: string, pathInfo: PathInfo.PathInfo) =>
      NarRender.calculate(pathInfo.node).pipe(
        Effect.provideService(BlobService.BlobService, store.blobService),
        Effect.provideService(DirectoryService.DirectoryService, store.directoryService),
        Effect.map((nar): ReadonlyArray<Finding> => {
          const recorded = sha256ToString(pathInfo.narSha256)
          const actual = sha256ToString(nar.narSha256)
          return nar.narSize === pathInfo.narSize && actual === recorded ? [] : [
            new NarHashMismatch({
              storePath,
              digest: recorded,
              narSize: pathInfo.narSize,
              actualDigest: actual,
              actualNarSize: nar.narSize
            })
          ]
        }),
        Effect.catchAll((e): Effect.Effect<ReadonlyArray<Finding>, BlobServiceError | DirectoryServiceError> =>
          // The store failing is the run's error; anything else is about the data.
          (e.reason === "BlobService" || e.reason === "DirectoryService") && e.cause !== undefined
            ? Effect.fail(e.cause as BlobServiceError | DirectoryServiceError)
            : Effect.succeed([
              new NarRenderFailed({ storePath, digest: sha256ToString(pathInfo.narSha256), detail: e.message })
            ])
        )
      )

    const referenceNode = (reference: StorePath.StorePath) =>
      once(
        referenceNodes,
        StorePath.toBasename(reference),
        Effect.map(
          PathInfoService.getStorePath(store.pathInfoService, reference),
          Option.map((p) => p.node)
        )
      )

    const checkReferences = (storePath: string, pathInfo: PathInfo.PathInfo) =>
      Effect.forEach(
        pathInfo.references.filter((r) => !StorePath.equals(r.storePath, pathInfo.storePath)),
        (ref) =>
          Effect.map(referenceNode(ref.storePath), (actual): ReadonlyArray<Finding> => {
            const reference = StorePath.toAbsolutePath(ref.storePath)
            if (Option.isNone(actual)) return [new MissingReference({ storePath, reference })]
            if (Option.isSome(ref.node) && !Node.equals(ref.node.value, actual.value)) {
              return [
                new ReferenceNodeMismatch({
                  storePath,
                  reference,
                  recorded: nodeToString(ref.node.value),
                  actual: nodeToString(actual.value)
                })
              ]
            }
            return []
          }),
        { concurrency }
      ).pipe(Effect.map((lists) => lists.flat()))

    const checkPath = (pathInfo: PathInfo.PathInfo): Effect.Effect<ReadonlyArray<Finding>, StoreVerifyError> =>
      Effect.gen(function*() {
        const storePath = StorePath.toAbsolutePath(pathInfo.storePath)
        const tree = yield* walk(storePath, pathInfo.node)
        const content = [...tree.findings, ...(yield* checkBlobs(storePath, tree.files))]
        // A NAR can only be rendered from a whole, intact tree.
        const nar = content.length === 0 ? yield* checkNar(storePath, pathInfo) : []
        const references = yield* checkReferences(storePath, pathInfo)
        const findings = [...content, ...nar, ...references]
        counts.paths++
        counts.findings += findings.length
        report()
        return findings
      })

    return store.pathInfoService.list.pipe(
      Stream.mapEffect(checkPath, { concurrency }),
      Stream.flatMap((findings) => Stream.fromIterable(findings)),
      Stream.ensuring(Effect.sync(report))
    )
  })

/**
 * Checks every PathInfo in `store` and collects the findings.
 *
 * @since 0.1.0
 * @category verify
 */
export const run = (store: Store, options: Options = {}): Effect.Effect<Report, StoreVerifyError> =>
  Effect.suspend(() => {
    let counts: Counts = { paths: 0, directories: 0, blobs: 0, blobBytes: 0, findings: 0 }
    return Effect.map(
      Stream.runCollect(
        stream(store, {
          ...options,
          onProgress: (c) => {
            counts = c
            options.onProgress?.(c)
          }
        })
      ),
      (findings): Report => ({ counts, findings: Chunk.toReadonlyArray(findings) })
    )
  })
