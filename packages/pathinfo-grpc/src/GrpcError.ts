/**
 * gRPC-level errors: a call that ended with a non-OK status, and a server that
 * could not start. The client maps statuses into each service's own error
 * family (`PathInfoServiceError`, `BlobServiceError`,
 * `DirectoryServiceError`); a `GrpcStatusError` is then the `cause` of that
 * error, so the status code stays inspectable.
 *
 * What the server answers:
 *
 * | error | status |
 * |---|---|
 * | an invalid request (`ProtoDecodeError`, `InvalidPathInfo`) | INVALID_ARGUMENT |
 * | `get`/`Stat`/`Read`/directory `Get` of something not stored | NOT_FOUND |
 * | `PathInfoConflict` | ALREADY_EXISTS |
 * | `ReferenceConflict` | FAILED_PRECONDITION |
 * | `NotSupported` | UNIMPLEMENTED |
 * | `BlobServiceError` `InvalidRange` / `WriterClosed` / `Storage` | OUT_OF_RANGE / FAILED_PRECONDITION / INTERNAL |
 * | `DirectoryServiceError` `NotFound` / an invalid closure / `Corrupt` / `PutterClosed` / `Storage` | NOT_FOUND / INVALID_ARGUMENT / DATA_LOSS / FAILED_PRECONDITION / INTERNAL |
 * | `NarRenderError` `MissingBlob`, `MissingDirectory` / `BlobSizeMismatch` / `InvalidNode` / other | NOT_FOUND / DATA_LOSS / FAILED_PRECONDITION / INTERNAL |
 * | `StorageError`, a defect | INTERNAL |
 * | a message over the size limit | RESOURCE_EXHAUSTED |
 *
 * and sends the typed error itself in the trailer `nixfx-error-bin` (JSON,
 * without its `cause`), so a nixfx client gets back exactly the error the
 * server's service raised — every field of a `ReferenceConflict`, say.
 *
 * What the client makes of a status without that trailer (a tvix or snix
 * server, a proxy):
 *
 * | status | PathInfoService | BlobService | DirectoryService |
 * |---|---|---|---|
 * | NOT_FOUND | `get` → `Option.none()` | `has` false, `size`/`read` none | `get` none; `getRecursive` `NotFound` |
 * | INVALID_ARGUMENT | `InvalidPathInfo` | `Storage` | `Storage` |
 * | OUT_OF_RANGE | `StorageError` | `InvalidRange` | `Storage` |
 * | UNIMPLEMENTED | `NotSupported` | `Storage` | `Storage` |
 * | DATA_LOSS | `StorageError` | `Storage` | `Corrupt` |
 * | anything else | `StorageError` | `Storage` | `Storage` |
 *
 * `CalculateNAR` fails with the `NarRenderError` from the trailer, or else
 * with the `GrpcStatusError` itself.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The gRPC status codes.
 *
 * @since 0.1.0
 * @category models
 */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16
} as const

/**
 * @since 0.1.0
 * @category models
 */
export type StatusName = keyof typeof Status

/**
 * The name of a status code (`"NOT_FOUND"`), or `"CODE_<n>"` for an unknown one.
 *
 * @since 0.1.0
 * @category models
 */
export const statusName = (code: number): string => {
  for (const [name, value] of Object.entries(Status)) if (value === code) return name
  return `CODE_${code}`
}

/**
 * A call ended with a non-OK status. `method` is the full method path
 * (`/tvix.store.v1.PathInfoService/Get`), `target` the server address,
 * `details` the status message.
 *
 * @since 0.1.0
 * @category errors
 */
export class GrpcStatusError extends Schema.TaggedError<GrpcStatusError>("@nixfx/pathinfo-grpc/GrpcStatusError")(
  "GrpcStatusError",
  {
    method: Schema.String,
    target: Schema.String,
    code: Schema.Number,
    details: Schema.String
  }
) {
  /** `NOT_FOUND`, `DEADLINE_EXCEEDED`, … */
  get codeName(): string {
    return statusName(this.code)
  }

  override get message(): string {
    return `${this.method} on ${this.target}: ${this.codeName}${this.details === "" ? "" : `: ${this.details}`}`
  }
}

/**
 * The server could not start: the address is malformed, in use, or not
 * allowed.
 *
 * @since 0.1.0
 * @category errors
 */
export class GrpcServerError extends Schema.TaggedError<GrpcServerError>("@nixfx/pathinfo-grpc/GrpcServerError")(
  "GrpcServerError",
  {
    address: Schema.String,
    detail: Schema.String,
    cause: Schema.optional(Schema.Defect)
  }
) {
  override get message(): string {
    return `cannot serve gRPC on ${this.address}: ${this.detail}`
  }
}
