/**
 * What both sides of the wire share: method paths for both package names,
 * the BlobChunk codec (the per-chunk hot path, hand-written), the nixfx
 * headers, and the typed-error trailer.
 *
 * @internal
 */
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire"
import * as CastoreError from "@nixfx/castore/CastoreError"
import * as NarRender from "@nixfx/castore/NarRender"
import * as PathInfoError from "@nixfx/pathinfo/PathInfoError"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { ProtoDecodeError } from "../ProtoConversion.js"
import { varintLength, writeVarint } from "./pathInfoWire.js"

// ---------------------------------------------------------------------------
// methods
// ---------------------------------------------------------------------------

/** The proto package families a peer may speak. */
export type PackageName = "tvix" | "snix"

export const packageNames: ReadonlyArray<PackageName> = ["tvix", "snix"]

export interface Paths {
  readonly pathInfoGet: string
  readonly pathInfoPut: string
  readonly pathInfoCalculateNar: string
  readonly pathInfoList: string
  readonly blobStat: string
  readonly blobRead: string
  readonly blobPut: string
  readonly directoryGet: string
  readonly directoryPut: string
}

export const pathsFor = (pkg: PackageName): Paths => ({
  pathInfoGet: `/${pkg}.store.v1.PathInfoService/Get`,
  pathInfoPut: `/${pkg}.store.v1.PathInfoService/Put`,
  pathInfoCalculateNar: `/${pkg}.store.v1.PathInfoService/CalculateNAR`,
  pathInfoList: `/${pkg}.store.v1.PathInfoService/List`,
  blobStat: `/${pkg}.castore.v1.BlobService/Stat`,
  blobRead: `/${pkg}.castore.v1.BlobService/Read`,
  blobPut: `/${pkg}.castore.v1.BlobService/Put`,
  directoryGet: `/${pkg}.castore.v1.DirectoryService/Get`,
  directoryPut: `/${pkg}.castore.v1.DirectoryService/Put`
})

/** Messages travel as their encoded bytes; decoding happens in the handlers, where failures are typed. */
export const toBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

export const identity = (buffer: Buffer): Buffer => buffer

// ---------------------------------------------------------------------------
// nixfx headers (metadata); tvix and snix ignore them
// ---------------------------------------------------------------------------

/** Response header of a Read that honoured `nixfx_offset`/`nixfx_length`. */
export const readRangeHeader = "nixfx-read-range"
export const readRangeHonoured = "honoured"

/** Request header of a DirectoryService.Put that stores each directory on its own. */
export const directoryPutHeader = "nixfx-directory-put"
export const directoryPutUnchecked = "unchecked"

/**
 * Request header of a DirectoryService.Put announcing how many directories
 * the stream holds: the server stores nothing unless it received exactly that
 * many (an upload cut short by a cancellation has fewer).
 */
export const directoryCountHeader = "nixfx-directory-count"

/**
 * Request header of a BlobService.Put whose stream ends with an empty
 * BlobChunk on purpose: the server stores the blob only after that terminator
 * (an upload cut short by a cancellation lacks it). tvix and snix write the
 * empty chunk as zero bytes.
 */
export const blobPutHeader = "nixfx-blob-put"
export const blobPutTerminated = "terminated"

/** Trailer carrying the typed error (JSON) next to the status. */
export const errorTrailer = "nixfx-error-bin"

// ---------------------------------------------------------------------------
// BlobChunk { bytes data = 1; }
// ---------------------------------------------------------------------------

/** The encoded `BlobChunk` holding `data` (empty data → the empty message). */
export const encodeBlobChunk = (data: Uint8Array): Buffer => {
  if (data.length === 0) return Buffer.alloc(0)
  const out = Buffer.allocUnsafe(1 + varintLength(data.length) + data.length)
  out[0] = 0x0a
  out.set(data, writeVarint(out, 1, data.length))
  return out
}

/** The data of an encoded `BlobChunk` (a view into `bytes`); unknown fields are skipped. */
export const decodeBlobChunk = (bytes: Uint8Array): Either.Either<Uint8Array, ProtoDecodeError> => {
  // Fast path: exactly one data field, as every encoder writes it.
  if (bytes.length > 1 && bytes[0] === 0x0a) {
    let pos = 1
    let len = 0
    let shift = 1
    while (pos < bytes.length && pos < 6) {
      const b = bytes[pos++]
      len += (b & 0x7f) * shift
      if (b < 0x80) {
        if (pos + len === bytes.length) return Either.right(bytes.subarray(pos))
        break
      }
      shift *= 128
    }
  }
  try {
    const reader = new BinaryReader(bytes)
    let data: Uint8Array = new Uint8Array(0)
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag()
      if (field === 1 && wireType === WireType.LengthDelimited) data = reader.bytes()
      else reader.skip(wireType, field)
    }
    return Either.right(data)
  } catch (e) {
    return Either.left(
      new ProtoDecodeError({
        messageType: "tvix.castore.v1.BlobChunk",
        field: "",
        detail: `malformed protobuf: ${e instanceof Error ? e.message : String(e)}`
      })
    )
  }
}

// ---------------------------------------------------------------------------
// typed errors in a trailer
// ---------------------------------------------------------------------------

const NarRenderErrorWire = Schema.Struct({
  _tag: Schema.Literal("NarRenderError"),
  reason: Schema.Literal("MissingBlob", "MissingDirectory", "BlobSizeMismatch", "BlobService", "DirectoryService", "InvalidNode"),
  path: Schema.String,
  digest: Schema.optional(Schema.String),
  description: Schema.String
})

/** Every error a nixfx server sends in the trailer. */
const WireError = Schema.Union(
  PathInfoError.PathInfoServiceError,
  CastoreError.BlobServiceError,
  CastoreError.DirectoryServiceError,
  ProtoDecodeError
)

export type WireError = typeof WireError.Type

const encodeWireError = Schema.encodeEither(WireError)

/** The trailer value for a typed error (its `cause` stays on the server), or undefined. */
export const encodeErrorTrailer = (error: unknown): Buffer | undefined => {
  if (error instanceof NarRender.NarRenderError) {
    const { _tag, description, path, reason } = error
    return Buffer.from(JSON.stringify({ _tag, reason, path, digest: error.digest, description }))
  }
  const encoded = encodeWireError(error as WireError)
  if (Either.isLeft(encoded)) return undefined
  const { cause: _cause, ...rest } = encoded.right as { readonly cause?: unknown }
  return Buffer.from(JSON.stringify(rest))
}

const decodeJson = (value: unknown): unknown => {
  if (!Buffer.isBuffer(value)) return undefined
  try {
    return JSON.parse(value.toString("utf8"))
  } catch {
    return undefined
  }
}

/** Decodes the trailer with `schema`; undefined when absent or not of that family. */
export const decodeErrorTrailer = <A, I>(schema: Schema.Schema<A, I>, value: unknown): A | undefined => {
  const json = decodeJson(value)
  if (json === undefined) return undefined
  const decoded = Schema.decodeUnknownEither(schema)(json)
  return Either.isRight(decoded) ? decoded.right : undefined
}

/** A NarRenderError from the trailer, rebuilt. */
export const decodeNarRenderErrorTrailer = (value: unknown): NarRender.NarRenderError | undefined => {
  const wire = decodeErrorTrailer(NarRenderErrorWire, value)
  if (wire === undefined) return undefined
  return new NarRender.NarRenderError({
    reason: wire.reason,
    path: wire.path,
    description: wire.description,
    ...(wire.digest === undefined ? {} : { digest: wire.digest })
  })
}
