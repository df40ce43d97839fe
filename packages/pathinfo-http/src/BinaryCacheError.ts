/**
 * The error family of reading a Nix HTTP binary cache (`BinaryCacheError`).
 *
 * Each class names what was wrong and where: the URL, the store path, the
 * field, both values. They are `Schema.TaggedError`s, so they cross a wire
 * intact (causes as defects).
 *
 * Through the `PathInfoService` interface these errors travel inside a
 * `StorageError` (its `cause`), because that interface's error type is fixed;
 * `BinaryCache.fetch` returns them as they are.
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/**
 * Why an HTTP exchange failed:
 *
 * - `Status`: an unexpected status (5xx, 401, 404 for a NAR, …);
 * - `Transport`: no response (connection refused, reset, DNS);
 * - `Body`: the body could not be read to its end (connection cut);
 * - `Timeout`: no response, or no body bytes, within the configured time;
 * - `TooLarge`: a narinfo or `nix-cache-info` body larger than allowed;
 * - `Range`: a resumed download's `206` answer covers another range than
 *   the one asked for;
 * - `Changed`: the file changed between two attempts of one download (its
 *   `ETag`, its length or its bytes before the resume offset differ), so the
 *   parts cannot be joined.
 *
 * `Status` (408, 429, 5xx except 501, 505, 511), `Transport`, `Body` and
 * `Timeout` are transient: they are retried, and a NAR download cut in the
 * middle resumes where it stopped.
 *
 * @since 0.1.0
 * @category errors
 */
export const HttpErrorReason = Schema.Literal("Status", "Transport", "Body", "Timeout", "TooLarge", "Range", "Changed")

/**
 * @since 0.1.0
 * @category errors
 */
export type HttpErrorReason = typeof HttpErrorReason.Type

/**
 * An HTTP request to the cache failed. `status` is set for `Status`;
 * `retryAfterMillis` when the answer carried a valid `Retry-After`.
 *
 * @since 0.1.0
 * @category errors
 */
export class HttpError extends Schema.TaggedError<HttpError>("@nixfx/pathinfo-http/HttpError")("HttpError", {
  url: Schema.String,
  reason: HttpErrorReason,
  status: Schema.optional(Schema.Number),
  retryAfterMillis: Schema.optional(Schema.Number),
  detail: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `GET ${this.url}: ${this.status === undefined ? "" : `HTTP ${this.status}: `}${this.detail}`
  }
}

/**
 * The cache refused the request for want of (valid) credentials: `401`,
 * `407`, and `403` where 403 is not read as "not here" (always for NARs;
 * for narinfos with the `"error"` 403 policy). Never retried.
 *
 * @since 0.1.0
 * @category errors
 */
export class AccessDenied extends Schema.TaggedError<AccessDenied>("@nixfx/pathinfo-http/AccessDenied")("AccessDenied", {
  url: Schema.String,
  status: Schema.Number,
  detail: Schema.String
}) {
  override get message(): string {
    return `GET ${this.url}: HTTP ${this.status}: ${this.detail}`
  }
}

/**
 * The cache's `nix-cache-info` is unusable: `Missing` (404/403: as for Nix,
 * no `nix-cache-info` means no binary cache), `Invalid` (not `Key: value`
 * lines, a bad `Priority`), `StoreDirMismatch` (the cache serves another
 * store directory than the one configured).
 *
 * @since 0.1.0
 * @category errors
 */
export class CacheInfoError extends Schema.TaggedError<CacheInfoError>("@nixfx/pathinfo-http/CacheInfoError")(
  "CacheInfoError",
  {
    url: Schema.String,
    reason: Schema.Literal("Missing", "Invalid", "StoreDirMismatch"),
    detail: Schema.String
  }
) {
  override get message(): string {
    return `${this.url}: ${this.detail}`
  }
}

/**
 * A `.narinfo` could not be used: `Parse` (the text is not a valid narinfo;
 * `detail` names the line and field), `WrongStorePath` (it describes another
 * store path than the one asked for), `UnsupportedCompression`, or
 * `InvalidPathInfo` (its fields contradict the NAR's content, e.g. a
 * `fixed:r:sha256` CA that is not the NarHash).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidNarInfo extends Schema.TaggedError<InvalidNarInfo>("@nixfx/pathinfo-http/InvalidNarInfo")(
  "InvalidNarInfo",
  {
    url: Schema.String,
    storePath: Schema.String,
    reason: Schema.Literal("Parse", "WrongStorePath", "UnsupportedCompression", "InvalidPathInfo"),
    detail: Schema.String
  }
) {
  override get message(): string {
    return `${this.url} (${this.storePath}): ${this.detail}`
  }
}

/**
 * Trusted keys are configured and none of them made a valid signature on the
 * narinfo. `keysTried` are the names of the trusted keys, `signedBy` the key
 * names of the narinfo's signatures (empty when unsigned).
 *
 * @since 0.1.0
 * @category errors
 */
export class UntrustedNarInfo extends Schema.TaggedError<UntrustedNarInfo>("@nixfx/pathinfo-http/UntrustedNarInfo")(
  "UntrustedNarInfo",
  {
    url: Schema.String,
    storePath: Schema.String,
    keysTried: Schema.Array(Schema.String),
    signedBy: Schema.Array(Schema.String)
  }
) {
  override get message(): string {
    const signed = this.signedBy.length === 0
      ? "it carries no signature"
      : `it is signed by ${this.signedBy.join(", ")} (no valid signature by a trusted key)`
    return `${this.storePath} from ${this.url} is not signed by a trusted key (tried ${this.keysTried.join(", ")}): ${signed}`
  }
}

/**
 * The NAR could not be decompressed as the narinfo's `Compression:` says.
 *
 * @since 0.1.0
 * @category errors
 */
export class NarDecompressionError extends Schema.TaggedError<NarDecompressionError>(
  "@nixfx/pathinfo-http/NarDecompressionError"
)("NarDecompressionError", {
  url: Schema.String,
  storePath: Schema.String,
  compression: Schema.String,
  detail: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `NAR of ${this.storePath} (${this.url}): ${this.compression}: ${this.detail}`
  }
}

/**
 * The NAR's size differs from the narinfo's NarSize. `atLeast` is true when
 * reading stopped as soon as more than `expected` bytes arrived (so `actual`
 * is a lower bound).
 *
 * @since 0.1.0
 * @category errors
 */
export class NarSizeMismatch extends Schema.TaggedError<NarSizeMismatch>("@nixfx/pathinfo-http/NarSizeMismatch")(
  "NarSizeMismatch",
  {
    url: Schema.String,
    storePath: Schema.String,
    expected: Schema.Number,
    actual: Schema.Number,
    atLeast: Schema.Boolean
  }
) {
  override get message(): string {
    return `NAR of ${this.storePath} (${this.url}): the narinfo says NarSize ${this.expected}, the NAR has ${
      this.atLeast ? "more than that (stopped reading at " + this.actual + ")" : this.actual
    } bytes`
  }
}

/**
 * The compressed file's size differs from the narinfo's FileSize. `atLeast`
 * is true when reading stopped as soon as more than `expected` bytes arrived.
 *
 * @since 0.1.0
 * @category errors
 */
export class FileSizeMismatch extends Schema.TaggedError<FileSizeMismatch>("@nixfx/pathinfo-http/FileSizeMismatch")(
  "FileSizeMismatch",
  {
    url: Schema.String,
    storePath: Schema.String,
    expected: Schema.Number,
    actual: Schema.Number,
    atLeast: Schema.Boolean
  }
) {
  override get message(): string {
    return `file of ${this.storePath} (${this.url}): the narinfo says FileSize ${this.expected}, the file has ${
      this.atLeast ? "more than that (stopped reading at " + this.actual + ")" : this.actual
    } bytes`
  }
}

/**
 * The compressed file's hash differs from the narinfo's FileHash (both as
 * `<algo>:<nixbase32>`).
 *
 * @since 0.1.0
 * @category errors
 */
export class FileHashMismatch extends Schema.TaggedError<FileHashMismatch>("@nixfx/pathinfo-http/FileHashMismatch")(
  "FileHashMismatch",
  {
    url: Schema.String,
    storePath: Schema.String,
    expected: Schema.String,
    actual: Schema.String
  }
) {
  override get message(): string {
    return `file of ${this.storePath} (${this.url}): the narinfo says FileHash ${this.expected}, the file hashes to ${this.actual}`
  }
}

/**
 * The NAR's sha256 differs from the narinfo's NarHash (both as
 * `sha256:<nixbase32>`).
 *
 * @since 0.1.0
 * @category errors
 */
export class NarHashMismatch extends Schema.TaggedError<NarHashMismatch>("@nixfx/pathinfo-http/NarHashMismatch")(
  "NarHashMismatch",
  {
    url: Schema.String,
    storePath: Schema.String,
    expected: Schema.String,
    actual: Schema.String
  }
) {
  override get message(): string {
    return `NAR of ${this.storePath} (${this.url}): the narinfo says NarHash ${this.expected}, the NAR hashes to ${this.actual}`
  }
}

/**
 * The NAR could not be ingested into castore: it is not a valid NAR, holds
 * names castore cannot keep, or the blob/directory store failed. `reason` and
 * `path` (inside the NAR) come from castore's `NarImportError`.
 *
 * @since 0.1.0
 * @category errors
 */
export class NarIngestError extends Schema.TaggedError<NarIngestError>("@nixfx/pathinfo-http/NarIngestError")(
  "NarIngestError",
  {
    url: Schema.String,
    storePath: Schema.String,
    reason: Schema.String,
    path: Schema.String,
    detail: Schema.String,
    cause: Schema.optional(Schema.Defect)
  }
) {
  override get message(): string {
    return `NAR of ${this.storePath} (${this.url}): ${this.reason} at ${this.path}: ${this.detail}`
  }
}

/**
 * A reference of `referrer` is neither in the store references resolve in
 * nor in the cache, so the closure cannot be ingested whole.
 *
 * @since 0.1.0
 * @category errors
 */
export class MissingReference extends Schema.TaggedError<MissingReference>("@nixfx/pathinfo-http/MissingReference")(
  "MissingReference",
  {
    url: Schema.String,
    referrer: Schema.String,
    reference: Schema.String
  }
) {
  override get message(): string {
    return `${this.referrer} references ${this.reference}, which neither the local store nor ${this.url} holds`
  }
}

/**
 * The cache's narinfos reference each other in a cycle (store paths cannot:
 * a path's digest covers its references), listed in order.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReferenceCycle extends Schema.TaggedError<ReferenceCycle>("@nixfx/pathinfo-http/ReferenceCycle")(
  "ReferenceCycle",
  {
    url: Schema.String,
    cycle: Schema.Array(Schema.String)
  }
) {
  override get message(): string {
    return `the narinfos of ${this.url} reference each other in a cycle: ${this.cycle.join(" → ")}`
  }
}

/**
 * A Frankenbuild: `referrer` (being fetched) references `reference`, which
 * the local store already holds with NarHash `localNarHash`, but the cache
 * serves `reference` with NarHash `cacheNarHash`. The cache's referrer may
 * have been built against another build of the reference than the one held.
 *
 * @since 0.1.0
 * @category errors
 */
export class FrankenbuildDetected extends Schema.TaggedError<FrankenbuildDetected>(
  "@nixfx/pathinfo-http/FrankenbuildDetected"
)("FrankenbuildDetected", {
  url: Schema.String,
  referrer: Schema.String,
  reference: Schema.String,
  localNarHash: Schema.String,
  cacheNarHash: Schema.String
}) {
  override get message(): string {
    return `Frankenbuild: ${this.referrer} references ${this.reference}, held locally with NarHash ${this.localNarHash}, but ${this.url} serves it with NarHash ${this.cacheNarHash}`
  }
}

/**
 * Every error of reading a binary cache.
 *
 * @since 0.1.0
 * @category errors
 */
export type BinaryCacheError =
  | HttpError
  | AccessDenied
  | CacheInfoError
  | InvalidNarInfo
  | UntrustedNarInfo
  | NarDecompressionError
  | NarSizeMismatch
  | NarHashMismatch
  | FileSizeMismatch
  | FileHashMismatch
  | NarIngestError
  | MissingReference
  | ReferenceCycle
  | FrankenbuildDetected

/**
 * Schema of the family (for transports).
 *
 * @since 0.1.0
 * @category errors
 */
export const BinaryCacheError = Schema.Union(
  HttpError,
  AccessDenied,
  CacheInfoError,
  InvalidNarInfo,
  UntrustedNarInfo,
  NarDecompressionError,
  NarSizeMismatch,
  NarHashMismatch,
  FileSizeMismatch,
  FileHashMismatch,
  NarIngestError,
  MissingReference,
  ReferenceCycle,
  FrankenbuildDetected
)

const tags = new Set([
  "HttpError",
  "AccessDenied",
  "CacheInfoError",
  "InvalidNarInfo",
  "UntrustedNarInfo",
  "NarDecompressionError",
  "NarSizeMismatch",
  "NarHashMismatch",
  "FileSizeMismatch",
  "FileHashMismatch",
  "NarIngestError",
  "MissingReference",
  "ReferenceCycle",
  "FrankenbuildDetected"
])

/**
 * @since 0.1.0
 * @category errors
 */
export const isBinaryCacheError = (u: unknown): u is BinaryCacheError =>
  Predicate.hasProperty(u, "_tag") && typeof u._tag === "string" && tags.has(u._tag) &&
  Predicate.hasProperty(u, "message")
