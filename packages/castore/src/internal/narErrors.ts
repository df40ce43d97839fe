/**
 * Error types of NAR import and render.
 *
 * @internal
 */
import type * as Directory from "@nixfx/castore-nodes/Directory"
import type * as PathComponent from "@nixfx/castore-nodes/PathComponent"
import type * as SymlinkTarget from "@nixfx/castore-nodes/SymlinkTarget"
import type * as Nar from "@nixfx/nix-compat/Nar"
import * as Data from "effect/Data"
import type { BlobServiceError, DirectoryServiceError } from "../CastoreError.js"

/**
 * Why a NAR import failed:
 *
 * - `InvalidNar`: the bytes are not a valid NAR (`cause` is the `NarError`,
 *   with reason and byte offset).
 * - `UnsupportedName` / `UnsupportedTarget`: a valid NAR entry name or symlink
 *   target that castore cannot hold (not UTF-8).
 * - `BlobService`: storing file contents failed.
 * - `DirectoryService`: storing a directory failed.
 * - `InvalidDirectory`: a directory could not be built (should not happen for
 *   a valid NAR; kept typed for defence in depth).
 * - `BlobSizeMismatch`: the blob service reported another size than the bytes
 *   written (a broken blob service).
 */
export type NarImportErrorReason =
  | "InvalidNar"
  | "UnsupportedName"
  | "UnsupportedTarget"
  | "BlobService"
  | "DirectoryService"
  | "InvalidDirectory"
  | "BlobSizeMismatch"

export type NarImportErrorCause =
  | Nar.NarError
  | BlobServiceError
  | DirectoryServiceError
  | PathComponent.InvalidPathComponent
  | SymlinkTarget.InvalidSymlinkTarget
  | Directory.InvalidDirectory

/**
 * A NAR could not be imported. `path` is the path inside the NAR that was
 * being imported (`/` for the root node), `cause` the underlying error.
 */
export class NarImportError extends Data.TaggedError("NarImportError")<{
  readonly reason: NarImportErrorReason
  readonly path: string
  readonly description: string
  readonly cause?: NarImportErrorCause
}> {
  override get message(): string {
    return `NAR import failed at ${this.path}: ${this.description}`
  }
}

/**
 * Why rendering a NAR failed:
 *
 * - `MissingBlob` / `MissingDirectory`: the store does not hold a blob or
 *   directory the tree refers to (`digest` names it).
 * - `BlobSizeMismatch`: the blob holds more or fewer bytes than its FileNode
 *   says.
 * - `BlobService` / `DirectoryService`: the store failed.
 * - `InvalidNode`: the tree holds something a NAR cannot express (the
 *   `NarError` from the writer is the cause).
 */
export type NarRenderErrorReason =
  | "MissingBlob"
  | "MissingDirectory"
  | "BlobSizeMismatch"
  | "BlobService"
  | "DirectoryService"
  | "InvalidNode"

export type NarRenderErrorCause = Nar.NarError | BlobServiceError | DirectoryServiceError

/**
 * A NAR could not be rendered from castore. `path` is the path inside the NAR
 * (`/` for the root), `digest` (hex) the blob or directory concerned.
 */
export class NarRenderError extends Data.TaggedError("NarRenderError")<{
  readonly reason: NarRenderErrorReason
  readonly path: string
  readonly digest?: string
  readonly description: string
  readonly cause?: NarRenderErrorCause
}> {
  override get message(): string {
    return `NAR render failed at ${this.path}${this.digest === undefined ? "" : ` (${this.digest})`}: ${this.description}`
  }
}
