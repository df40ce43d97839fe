/**
 * castore → NAR bytes, streamed.
 *
 * A depth-first walk over the tree drives the NAR writer; directories are
 * fetched one at a time as the walk reaches them and blob contents are piped
 * through as the blob service streams them. The writer collects framing into
 * chunks; output is handed downstream whenever the writer has emitted
 * something, so memory stays bounded by the writer's chunk size, one blob
 * chunk and the directories on the current path.
 *
 * @internal
 */
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import type * as Directory from "@nixfx/castore-nodes/Directory"
import type * as Node from "@nixfx/castore-nodes/Node"
import * as Nar from "@nixfx/nix-compat/Nar"
import * as Cause from "effect/Cause"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { Service as BlobServiceShape } from "../BlobService.js"
import type { BlobServiceError, DirectoryServiceError } from "../CastoreError.js"
import type { Service as DirectoryServiceShape } from "../DirectoryService.js"
import { NarRenderError } from "./narErrors.js"

type Out = Channel.Channel<Chunk.Chunk<Uint8Array>, unknown, NarRenderError, unknown, void, unknown>

const utf8 = new TextEncoder()

/** BLAKE3 of no bytes: the digest every empty file must carry. */
const EMPTY_BLOB = B3Digest.hash(new Uint8Array(0))

/** A node written without store access: a symlink, or an empty file with the empty blob's digest. */
const isInline = (node: Node.Node): node is Node.SymlinkNode | Node.FileNode =>
  node._tag === "Symlink" || (node._tag === "File" && node.size === 0 && B3Digest.equals(node.digest, EMPTY_BLOB))

export class Renderer {
  private out: Array<Uint8Array> = []
  private readonly writer: Nar.Writer
  /** Names from the root to the node being rendered. */
  private readonly names: Array<string> = []

  constructor(
    private readonly blobs: BlobServiceShape,
    private readonly directories: DirectoryServiceShape
  ) {
    this.writer = Nar.makeWriter((chunk) => this.out.push(chunk))
  }

  /** The whole archive for `root`. */
  archive(root: Node.Node): Out {
    return Channel.flatMap(this.node(root), () => {
      const failed = this.guard(() => this.writer.end())
      return failed ?? this.emit()
    })
  }

  private path(): string {
    return "/" + this.names.join("/")
  }

  private emit(): Out {
    if (this.out.length === 0) return Channel.void
    const chunk = Chunk.unsafeFromArray(this.out)
    this.out = []
    return Channel.write(chunk)
  }

  /** Runs a writer call; a NarError becomes a failing channel. */
  private guard(f: () => void): Out | undefined {
    try {
      f()
      return undefined
    } catch (e) {
      if (!Nar.isNarError(e)) throw e
      return Channel.fail(
        new NarRenderError({ reason: "InvalidNode", path: this.path(), description: e.detail, cause: e })
      )
    }
  }

  private blobError(e: BlobServiceError, digest: B3Digest.B3Digest): NarRenderError {
    return new NarRenderError({
      reason: "BlobService",
      path: this.path(),
      digest: B3Digest.toHex(digest),
      description: `reading the blob: ${e.message}`,
      cause: e
    })
  }

  private directoryError(e: DirectoryServiceError, digest: B3Digest.B3Digest): NarRenderError {
    return new NarRenderError({
      reason: "DirectoryService",
      path: this.path(),
      digest: B3Digest.toHex(digest),
      description: `reading the directory: ${e.message}`,
      cause: e
    })
  }

  private node(node: Node.Node): Out {
    if (isInline(node)) return this.inline(node) ?? Channel.void
    return node._tag === "Directory" ? this.directory(node) : this.file(node)
  }

  /** Symlinks and empty files need no store access: written at once; returns a failure or `undefined`. */
  private inline(node: Node.SymlinkNode | Node.FileNode): Out | undefined {
    if (node._tag === "Symlink") return this.guard(() => this.writer.symlink(utf8.encode(node.target)))
    return this.guard(() => {
      this.writer.fileStart(node.executable, 0)
      this.writer.fileEnd()
    })
  }

  // The file whose blob is being piped through `pump`.
  private fileDigest: B3Digest.B3Digest | undefined = undefined
  private fileSize = 0
  private seen = 0

  private file(node: Node.FileNode): Out {
    const { digest, executable, size } = node
    return Channel.unwrap(Effect.match(this.blobs.read(digest), {
      onFailure: (e): Out => Channel.fail(this.blobError(e, digest)),
      onSuccess: (found): Out => {
        if (Option.isNone(found)) {
          return Channel.fail(
            new NarRenderError({
              reason: "MissingBlob",
              path: this.path(),
              digest: B3Digest.toHex(digest),
              description: `the blob service has no blob for this ${size}-byte file`
            })
          )
        }
        const started = this.guard(() => this.writer.fileStart(executable, size))
        if (started !== undefined) return started
        this.fileDigest = digest
        this.fileSize = size
        this.seen = 0
        return Channel.pipeTo(Stream.toChannel(found.value), this.pump)
      }
    }))
  }

  private mismatch(actual: string): Out {
    return Channel.fail(
      new NarRenderError({
        reason: "BlobSizeMismatch",
        path: this.path(),
        digest: B3Digest.toHex(this.fileDigest!),
        description: `the FileNode says ${this.fileSize} bytes, the blob has ${actual}`
      })
    )
  }

  /** Feeds the current blob's chunks to the writer (one channel for all files: no per-file closures). */
  private readonly pump: Channel.Channel<
    Chunk.Chunk<Uint8Array>,
    Chunk.Chunk<Uint8Array>,
    NarRenderError,
    BlobServiceError,
    void,
    unknown
  > = Channel.readWithCause({
    onInput: (input: Chunk.Chunk<Uint8Array>) => {
      for (const chunk of input) {
        if (this.seen + chunk.length > this.fileSize) return this.mismatch(`more (at least ${this.seen + chunk.length})`)
        this.seen += chunk.length
        this.writer.fileChunk(chunk)
      }
      return this.out.length === 0 ? this.pump : Channel.zipRight(this.emit(), this.pump)
    },
    onFailure: (cause) => Channel.failCause(Cause.map(cause, (e) => this.blobError(e, this.fileDigest!))),
    onDone: () => {
      if (this.seen !== this.fileSize) return this.mismatch(String(this.seen))
      return this.guard(() => this.writer.fileEnd()) ?? Channel.void
    }
  })

  private directory(node: Node.DirectoryNode): Out {
    const digest = node.digest
    return Channel.unwrap(Effect.match(this.directories.get(digest), {
      onFailure: (e): Out => Channel.fail(this.directoryError(e, digest)),
      onSuccess: (found): Out => {
        if (Option.isNone(found)) {
          return Channel.fail(
            new NarRenderError({
              reason: "MissingDirectory",
              path: this.path(),
              digest: B3Digest.toHex(digest),
              description: "the directory service has no such directory"
            })
          )
        }
        const started = this.guard(() => this.writer.directoryStart())
        return started ?? this.entries(found.value.entries, 0)
      }
    }))
  }

  /** Renders `entries[i..]`, then closes the directory. */
  private entries(entries: ReadonlyArray<Directory.DirectoryEntry>, i: number): Out {
    // Runs of symlinks and empty files are written in this loop, without a channel step each.
    while (i < entries.length) {
      const { name, node } = entries[i]
      const named = this.guard(() => this.writer.entry(utf8.encode(name)))
      if (named !== undefined) return named
      this.names.push(name)
      if (isInline(node)) {
        const failed = this.inline(node)
        if (failed !== undefined) return failed
        this.names.pop()
        i++
        continue
      }
      const next = i + 1
      return Channel.flatMap(this.node(node), () => {
        this.names.pop()
        return this.entries(entries, next)
      })
    }
    const ended = this.guard(() => this.writer.directoryEnd())
    if (ended !== undefined) return ended
    return this.out.length === 0 ? Channel.void : this.emit()
  }
}

/** The archive of `root` as a byte stream. */
export const render = (
  blobs: BlobServiceShape,
  directories: DirectoryServiceShape,
  root: Node.Node
): Stream.Stream<Uint8Array, NarRenderError> =>
  Stream.suspend(() => Stream.fromChannel(new Renderer(blobs, directories).archive(root)))
