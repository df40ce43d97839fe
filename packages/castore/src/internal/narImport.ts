/**
 * NAR → castore, in one streaming pass.
 *
 * The synchronous NAR parser turns each input buffer into a batch of events
 * (the recorder below). The batch is then applied in order by `Builder.step`:
 * plain events (names, symlinks, opening a directory) are handled in a plain
 * loop; only the events that touch a store (a blob writer opened, written or
 * closed; a directory put) leave the loop for an Effect and come back to it
 * after. Directories are built bottom-up as they close, so they reach the
 * putter leaves first and the root last.
 *
 * @internal
 */
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Directory from "@nixfx/castore-nodes/Directory"
import * as Node from "@nixfx/castore-nodes/Node"
import * as PathComponent from "@nixfx/castore-nodes/PathComponent"
import * as SymlinkTarget from "@nixfx/castore-nodes/SymlinkTarget"
import * as Nar from "@nixfx/nix-compat/Nar"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Crypto from "node:crypto"
import type { BlobInfo, BlobWriter, Service as BlobServiceShape } from "../BlobService.js"
import type { BlobServiceError, DirectoryServiceError } from "../CastoreError.js"
import type { DirectoryPutter, Service as DirectoryServiceShape } from "../DirectoryService.js"
import { NarImportError } from "./narErrors.js"

export interface ImportOptions {
  readonly maxDepth?: number
}

export interface ImportResult {
  readonly root: Node.Node
  readonly narSize: number
  readonly narSha256: Uint8Array
}

const lossy = new TextDecoder("utf-8", { fatal: false })

const EMPTY = new Uint8Array(0)

/** Files up to this size that span input buffers are collected and stored whole (no writer, no Scope). */
const COLLECT_BELOW = 256 * 1024

/**
 * The parser's handler: records events for the builder and keeps the raw path
 * of the node being parsed, for error messages about the NAR itself.
 */
class Recorder implements Nar.Handler {
  events: Array<Nar.Event> = []
  private readonly names: Array<Uint8Array> = []
  private dirs = 0

  take(): Array<Nar.Event> {
    const out = this.events
    this.events = []
    return out
  }

  path(): string {
    return "/" + this.names.map((n) => lossy.decode(n)).join("/")
  }

  private nodeDone(): void {
    if (this.dirs > 0) this.names.pop()
  }

  directoryStart(): void {
    this.dirs++
    this.events.push(Nar.directoryStart)
  }
  entry(name: Uint8Array): void {
    this.names.push(name)
    this.events.push({ _tag: "Entry", name })
  }
  directoryEnd(): void {
    this.dirs--
    this.nodeDone()
    this.events.push(Nar.directoryEnd)
  }
  fileStart(executable: boolean, size: number): void {
    this.events.push({ _tag: "FileStart", executable, size })
  }
  fileChunk(chunk: Uint8Array): void {
    this.events.push({ _tag: "FileChunk", chunk })
  }
  fileEnd(): void {
    this.nodeDone()
    this.events.push(Nar.fileEnd)
  }
  symlink(target: Uint8Array): void {
    this.nodeDone()
    this.events.push({ _tag: "Symlink", target })
  }
}

/** Applies events to the stores and builds the castore tree bottom-up. */
class Builder {
  root: Node.Node | undefined = undefined
  putter: DirectoryPutter | undefined = undefined

  /** Open directories, innermost last. */
  private readonly stack: Array<Array<Directory.DirectoryEntry>> = []
  /** Names from the root to the node being built. */
  private readonly names: Array<PathComponent.PathComponent> = []

  // The file being written: collected in memory (small) or through a writer (large).
  private collected: Uint8Array | undefined = undefined
  private collectedFill = 0
  private writer: BlobWriter | undefined = undefined
  private fileScope: Scope.CloseableScope | undefined = undefined
  private executable = false
  private fileSize = 0

  constructor(
    private readonly blobs: BlobServiceShape,
    private readonly directories: DirectoryServiceShape,
    private readonly scope: Scope.Scope
  ) {}

  path(): string {
    return "/" + this.names.join("/")
  }

  /** Applies `events[i..]`. */
  step(events: ReadonlyArray<Nar.Event>, i: number): Effect.Effect<void, NarImportError> {
    const n = events.length
    while (i < n) {
      const ev = events[i++]
      switch (ev._tag) {
        case "Entry": {
          const name = PathComponent.fromUtf8(ev.name)
          if (Either.isLeft(name)) {
            return Effect.fail(
              new NarImportError({
                reason: "UnsupportedName",
                path: this.path(),
                description: `entry name ${name.left.component}: ${name.left.message}`,
                cause: name.left
              })
            )
          }
          this.names.push(name.right)
          break
        }
        case "DirectoryStart":
          this.stack.push([])
          break
        case "Symlink": {
          const target = SymlinkTarget.fromUtf8(ev.target)
          if (Either.isLeft(target)) {
            return Effect.fail(
              new NarImportError({
                reason: "UnsupportedTarget",
                path: this.path(),
                description: `symlink target: ${target.left.message}`,
                cause: target.left
              })
            )
          }
          this.place(new Node.SymlinkNode({ target: target.right }))
          break
        }
        case "FileStart": {
          this.executable = ev.executable
          this.fileSize = ev.size
          // A file whose contents and end are in this batch (one input buffer, so at most
          // one FileChunk) is stored with a single putBytes call, without a writer.
          const whole = events[i]?._tag === "FileEnd"
            ? EMPTY
            : events[i]?._tag === "FileChunk" && events[i + 1]?._tag === "FileEnd"
            ? (events[i] as Nar.FileChunk).chunk
            : undefined
          if (whole !== undefined) {
            const next = whole === EMPTY ? i + 1 : i + 2
            return this.putWhole(whole, events, next)
          }
          // A small file that continues in the next input buffer is collected here
          // and stored whole; only large files go through a (scoped) blob writer.
          if (ev.size <= COLLECT_BELOW) {
            this.collected = new Uint8Array(ev.size)
            this.collectedFill = 0
            break
          }
          return Effect.flatMap(this.openFile(), () => this.step(events, i))
        }
        case "FileChunk":
          if (this.collected !== undefined) {
            this.collected.set(ev.chunk, this.collectedFill)
            this.collectedFill += ev.chunk.length
            break
          }
          return Effect.matchEffect(this.writer!.write(ev.chunk), {
            onFailure: (e) => Effect.fail(this.blobError(e)),
            onSuccess: () => this.step(events, i)
          })
        case "FileEnd":
          if (this.collected !== undefined) {
            const bytes = this.collected
            this.collected = undefined
            return this.putWhole(bytes, events, i)
          }
          return Effect.flatMap(this.closeFile(), () => this.step(events, i))
        case "DirectoryEnd":
          return Effect.flatMap(this.closeDirectory(), () => this.step(events, i))
      }
    }
    return Effect.void
  }

  /** Stores a whole file's contents in one call, then goes on with `events[next..]`. */
  private putWhole(
    bytes: Uint8Array,
    events: ReadonlyArray<Nar.Event>,
    next: number
  ): Effect.Effect<void, NarImportError> {
    return Effect.matchEffect(this.blobs.putBytes(bytes), {
      onFailure: (e) => Effect.fail(this.blobError(e)),
      onSuccess: (info) => this.fileStored(info) ?? this.step(events, next)
    })
  }

  private place(node: Node.Node): void {
    const top = this.stack[this.stack.length - 1]
    if (top === undefined) {
      this.root = node
    } else {
      top.push({ name: this.names.pop()!, node })
    }
  }

  private blobError(e: BlobServiceError): NarImportError {
    return new NarImportError({
      reason: "BlobService",
      path: this.path(),
      description: `storing file contents: ${e.message}`,
      cause: e
    })
  }

  private directoryError(e: DirectoryServiceError): NarImportError {
    return new NarImportError({
      reason: "DirectoryService",
      path: this.path(),
      description: `storing directory: ${e.message}`,
      cause: e
    })
  }

  private openFile(): Effect.Effect<void, NarImportError> {
    return Effect.flatMap(Scope.fork(this.scope, ExecutionStrategy.sequential), (scope) =>
      Effect.map(Effect.mapError(Scope.extend(this.blobs.writer, scope), (e) => this.blobError(e)), (writer) => {
        this.fileScope = scope
        this.writer = writer
      }))
  }

  private closeFile(): Effect.Effect<void, NarImportError> {
    const writer = this.writer!
    const scope = this.fileScope!
    this.writer = undefined
    this.fileScope = undefined
    return Effect.flatMap(
      Effect.mapError(writer.close, (e) => this.blobError(e)),
      (info) => this.fileStored(info) ?? Scope.close(scope, Exit.void)
    )
  }

  /** Records a stored file in its directory; a failure when the store disagrees about its size. */
  private fileStored(info: BlobInfo): Effect.Effect<never, NarImportError> | undefined {
    if (info.size !== this.fileSize) {
      return Effect.fail(
        new NarImportError({
          reason: "BlobSizeMismatch",
          path: this.path(),
          description:
            `the blob service stored ${info.size} bytes as ${B3Digest.toHex(info.digest)}, the NAR file has ${this.fileSize}`
        })
      )
    }
    this.place(new Node.FileNode({ digest: info.digest, size: info.size, executable: this.executable }))
    return undefined
  }

  private closeDirectory(): Effect.Effect<void, NarImportError> {
    const entries = this.stack.pop()!
    const made = Directory.make(entries)
    if (Either.isLeft(made)) {
      return Effect.fail(
        new NarImportError({
          reason: "InvalidDirectory",
          path: this.path(),
          description: made.left.message,
          cause: made.left
        })
      )
    }
    const dir = made.right
    const put = (putter: DirectoryPutter) =>
      Effect.map(Effect.mapError(putter.put(dir), (e) => this.directoryError(e)), () => {
        this.place(new Node.DirectoryNode({ digest: dir.digest, size: dir.size }))
      })
    if (this.putter !== undefined) return put(this.putter)
    return Effect.flatMap(
      Effect.mapError(Scope.extend(this.directories.putter, this.scope), (e) => this.directoryError(e)),
      (putter) => {
        this.putter = putter
        return put(putter)
      }
    )
  }
}

/** One import: feed it the NAR's bytes with `consume`, then run `finish`. */
export class ImportRun {
  private readonly recorder = new Recorder()
  private readonly parser: Nar.Parser
  private readonly builder: Builder
  private readonly sha256 = Crypto.createHash("sha256")
  private narSize = 0

  constructor(
    blobs: BlobServiceShape,
    directories: DirectoryServiceShape,
    scope: Scope.Scope,
    options: ImportOptions | undefined
  ) {
    this.parser = Nar.makeParser(this.recorder, options)
    this.builder = new Builder(blobs, directories, scope)
  }

  private invalid(e: Nar.NarError): NarImportError {
    return new NarImportError({
      reason: "InvalidNar",
      path: this.recorder.path(),
      description: e.message,
      cause: e
    })
  }

  readonly consume = (bytes: Uint8Array): Effect.Effect<void, NarImportError> => {
    this.sha256.update(bytes)
    this.narSize += bytes.length
    try {
      this.parser.push(bytes)
    } catch (e) {
      if (Nar.isNarError(e)) return Effect.fail(this.invalid(e))
      throw e
    }
    const events = this.recorder.take()
    return events.length === 0 ? Effect.void : this.builder.step(events, 0)
  }

  readonly finish: Effect.Effect<ImportResult, NarImportError> = Effect.suspend(() => {
    try {
      this.parser.end()
    } catch (e) {
      if (Nar.isNarError(e)) return Effect.fail(this.invalid(e))
      throw e
    }
    const root = this.builder.root!
    const putter = this.builder.putter
    const done = Effect.sync((): ImportResult => ({
      root,
      narSize: this.narSize,
      narSha256: new Uint8Array(this.sha256.digest())
    }))
    if (root._tag !== "Directory" || putter === undefined) return done
    return Effect.flatMap(
      Effect.mapError(putter.close, (e) =>
        new NarImportError({
          reason: "DirectoryService",
          path: "/",
          description: `storing the directory closure: ${e.message}`,
          cause: e
        })),
      (digest) =>
        B3Digest.equals(digest, root.digest)
          ? done
          : Effect.die(
            new Error(
              `directory putter returned root ${B3Digest.toHex(digest)}, expected ${B3Digest.toHex(root.digest)}`
            )
          )
    )
  })
}
