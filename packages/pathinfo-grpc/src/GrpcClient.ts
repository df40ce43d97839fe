/**
 * A store over gRPC: `PathInfoService`, `BlobService` and `DirectoryService`
 * talking to a tvix, snix or nixfx server at a `grpc+http://host:port`,
 * `grpc+https://host[:port]` or `grpc+unix:///abs/socket` URL.
 *
 * - Every message received is checked (`ProtoConversion`); an invalid one
 *   fails the operation with the service's own error naming the field
 *   (`InvalidPathInfo` with `field: "references[2]"`, a `Corrupt` directory,
 *   …).
 * - Statuses map to each service's error family (see `GrpcError`);
 *   `NOT_FOUND` on a lookup is `Option.none()`. From a nixfx server the
 *   typed error itself comes back.
 * - Unary calls have a deadline (`timeout`, default 30 s); streaming calls
 *   have `streamTimeout` (default none). Idempotent calls (every call except
 *   a blob upload) are retried on `UNAVAILABLE` with exponential backoff
 *   (`retry`); streams are retried only until their first message arrives.
 * - References by content travel in the `nixfx_reference_nodes` extension: a
 *   nixfx server keeps them, a tvix/snix server ignores them.
 * - Blob reads of a range use the `nixfx_offset`/`nixfx_length` extension
 *   when the server honours it and cut the stream themselves otherwise; blob
 *   sizes come from the `nixfx_size` extension, or else from the chunk list,
 *   or else by reading the blob. Uploaded blobs are hashed locally as they are
 *   sent and the server's digest is checked against it.
 * - `DirectoryService.put` sends the header `nixfx-directory-put: unchecked`
 *   (a nixfx server then stores the directory alone; tvix/snix servers
 *   insist on whole closures); putters validate the closure locally, exactly
 *   as every castore backend does, and upload it at `close` in one call.
 *
 * The channel lives as long as the Scope (or layer).
 *
 * @since 0.1.0
 */
import { create, toBinary } from "@bufbuild/protobuf"
import * as grpc from "@grpc/grpc-js"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Directory from "@nixfx/castore-nodes/Directory"
import type * as Node from "@nixfx/castore-nodes/Node"
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import type * as NarRender from "@nixfx/castore/NarRender"
import * as Nixbase32 from "@nixfx/nix-compat/Nixbase32"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import type * as PathInfo from "@nixfx/pathinfo/PathInfo"
import * as PathInfoError from "@nixfx/pathinfo/PathInfoError"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import {
  PutBlobResponseSchema,
  ReadBlobRequestSchema,
  StatBlobRequestSchema,
  StatBlobResponseSchema
} from "./gen/tvix/castore/protos/rpc_blobstore_pb.js"
import { GetDirectoryRequestSchema, PutDirectoryResponseSchema } from "./gen/tvix/castore/protos/rpc_directory_pb.js"
import {
  CalculateNARResponseSchema,
  ListPathInfoRequestSchema
} from "./gen/tvix/store/protos/rpc_pathinfo_pb.js"
import type { GrpcStatusError } from "./GrpcError.js"
import { Status } from "./GrpcError.js"
import * as call from "./internal/call.js"
import * as pathInfoWire from "./internal/pathInfoWire.js"
import * as wire from "./internal/wire.js"
import * as ProtoConversion from "./ProtoConversion.js"

// ---------------------------------------------------------------------------
// options and URLs
// ---------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * Which package names to call: `tvix` (`/tvix.store.v1.PathInfoService/…`)
   * or `snix`. Default: the URL's `?package=`, else `tvix`. A nixfx server
   * answers both.
   */
  readonly package?: "tvix" | "snix" | undefined
  /** Deadline of each unary call (default 30 s). */
  readonly timeout?: Duration.DurationInput | undefined
  /** Deadline of each streaming call (List, blob Read/Put, directory Get/Put); default none. */
  readonly streamTimeout?: Duration.DurationInput | undefined
  /**
   * Retries of idempotent calls: how many (default 3), the first delay
   * (default 100 ms, doubling with jitter, at most `maxDelay`, default 2 s),
   * and on which status codes (default `[UNAVAILABLE]`). `false` turns them off.
   */
  readonly retry?:
    | false
    | {
      readonly times?: number | undefined
      readonly initialDelay?: Duration.DurationInput | undefined
      readonly maxDelay?: Duration.DurationInput | undefined
      readonly codes?: ReadonlyArray<number> | undefined
    }
    | undefined
  /** Largest message sent or received, in bytes (default 4 MiB). */
  readonly maxMessageBytes?: number | undefined
  /** Blob uploads are sent in messages of at most this many bytes (default 256 KiB). */
  readonly blobChunkBytes?: number | undefined
  /** For `grpc+https://`: PEM root certificates to trust instead of the system's. */
  readonly tls?: { readonly rootCerts?: Uint8Array | undefined } | undefined
}

/**
 * Where a URL points.
 *
 * @since 0.1.0
 * @category models
 */
export interface Target {
  /** The grpc-js target: `host:port` or `unix:///abs/path`. */
  readonly address: string
  readonly secure: boolean
  readonly package: "tvix" | "snix" | undefined
  /** The URL, normalised. */
  readonly url: string
}

const configError = (input: string, part: StoreComposition.ConfigPart, detail: string) =>
  Either.left(new StoreComposition.StoreConfigError({ input, part, detail }))

/**
 * Parses a `grpc+http://host:port`, `grpc+https://host[:port]` or
 * `grpc+unix:///abs/path` URL (optional `?package=tvix|snix`). Mistakes name
 * the part of the URL that is wrong.
 *
 * @since 0.1.0
 * @category urls
 */
export const parseUrl = (raw: string): Either.Either<Target, StoreComposition.StoreConfigError> => {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(raw)?.[1]?.toLowerCase()
  if (scheme !== "grpc+http" && scheme !== "grpc+https" && scheme !== "grpc+unix") {
    return configError(raw, "scheme", `expected grpc+http://, grpc+https:// or grpc+unix://, got ${JSON.stringify(scheme ?? raw)}`)
  }
  let url: URL
  try {
    url = new URL(raw)
  } catch (e) {
    return configError(raw, "url", `not a URL: ${String(e)}`)
  }
  if (url.hash !== "") return configError(raw, "url", `a store URL takes no #fragment, got ${url.hash}`)
  if (url.username !== "" || url.password !== "") return configError(raw, "host", "credentials in the URL are not supported")
  const query = StoreComposition.queryParams(url, raw, ["package"])
  if (Either.isLeft(query)) return Either.left(query.left)
  const pkg = query.right.get("package")
  if (pkg !== undefined && pkg !== "tvix" && pkg !== "snix") {
    return configError(raw, "query", `package must be tvix or snix, got ${JSON.stringify(pkg)}`)
  }
  if (scheme === "grpc+unix") {
    if (url.host !== "") {
      return configError(raw, "host", `grpc+unix URLs take no host, got ${JSON.stringify(url.host)} (write grpc+unix:///abs/path)`)
    }
    const path = decodeURIComponent(url.pathname)
    if (!path.startsWith("/") || path === "/") {
      return configError(raw, "path", `expected the absolute path of a socket, got ${JSON.stringify(path)}`)
    }
    return Either.right({ address: `unix://${path}`, secure: false, package: pkg, url: `grpc+unix://${path}${url.search}` })
  }
  if (url.hostname === "") return configError(raw, "host", `a host is required (${scheme}://host:port)`)
  if (url.pathname !== "" && url.pathname !== "/") {
    return configError(raw, "path", `${scheme} URLs take no path, got ${JSON.stringify(url.pathname)}`)
  }
  const secure = scheme === "grpc+https"
  if (url.port === "" && !secure) return configError(raw, "host", `a port is required (grpc+http://${url.hostname}:PORT)`)
  const port = url.port === "" ? "443" : url.port
  const address = `${url.hostname}:${port}`
  return Either.right({ address, secure, package: pkg, url: `${scheme}://${address}${url.search}` })
}

// ---------------------------------------------------------------------------
// the client
// ---------------------------------------------------------------------------

/**
 * The services of a store over gRPC, plus the NAR calculation
 * (`CalculateNAR`).
 *
 * @since 0.1.0
 * @category models
 */
export interface GrpcStore extends StoreComposition.Store {
  readonly url: string
  /**
   * Size and SHA-256 of the NAR of a castore node, computed by the server from
   * the blobs and directories it holds.
   */
  readonly calculateNar: (
    node: Node.Node
  ) => Effect.Effect<ProtoConversion.NarCalculation, NarRender.NarRenderError | GrpcStatusError | ProtoConversion.ProtoDecodeError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class GrpcClient extends Context.Tag("@nixfx/pathinfo-grpc/GrpcClient")<GrpcClient, GrpcStore>() {}

const hex = B3Digest.toHex

/** Compares views of the bytes (`Buffer.from(uint8array)` would copy both, on every Get). */
const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))

/**
 * Opens a channel to the server at `url`. Fails only for a malformed URL:
 * connecting happens with the first call (and a server that cannot be
 * reached fails that call with `UNAVAILABLE`, after the retries).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  url: string,
  options: Options = {}
): Effect.Effect<GrpcStore, StoreComposition.StoreConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const target = yield* parseUrl(url)
    const pkg = options.package ?? target.package ?? "tvix"
    const paths = wire.pathsFor(pkg)
    const maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024
    const blobChunkBytes = Math.max(1, Math.min(options.blobChunkBytes ?? 256 * 1024, maxMessageBytes - 16))
    const credentials = target.secure
      ? grpc.credentials.createSsl(options.tls?.rootCerts === undefined ? null : Buffer.from(options.tls.rootCerts))
      : grpc.credentials.createInsecure()
    const client = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new grpc.Client(target.address, credentials, {
          "grpc.max_receive_message_length": maxMessageBytes,
          "grpc.max_send_message_length": maxMessageBytes,
          // retries are ours (idempotent calls only, see `retry`)
          "grpc.enable_retries": 0,
          // call tracking for channelz costs time on every call
          "grpc.enable_channelz": 0
        })
      ),
      (c) => Effect.sync(() => c.close())
    )
    const retry = options.retry
    const context: call.CallContext = {
      client,
      target: target.url,
      unaryTimeout: Duration.toMillis(Duration.decode(options.timeout ?? "30 seconds")),
      streamTimeout: options.streamTimeout === undefined ? undefined : Duration.toMillis(Duration.decode(options.streamTimeout)),
      retry: retry === false ? undefined : {
        times: retry?.times ?? 3,
        initialDelay: Duration.decode(retry?.initialDelay ?? "100 millis"),
        maxDelay: Duration.decode(retry?.maxDelay ?? "2 seconds"),
        codes: retry?.codes ?? [Status.UNAVAILABLE]
      }
    }
    const backend = `grpc ${target.url}`

    /** A server stream retried until its first message; `first` is none for an empty stream. */
    const openWithFirst = (
      method: string,
      request: Uint8Array,
      scope: Scope.Scope,
      metadata?: grpc.Metadata
    ) =>
      call.retrying(
        context,
        Effect.flatMap(Scope.fork(scope, ExecutionStrategy.sequential), (attempt) =>
          Effect.flatMap(
            Scope.extend(call.openServerStream(context, method, request, metadata), attempt),
            (stream) =>
              Effect.map(stream.next, (first) => ({ stream, first, attempt }))
          ).pipe(Effect.tapError(() => Scope.close(attempt, Exit_void))))
      )

    // -- PathInfoService ------------------------------------------------------

    const pathInfoFailure = (operation: string) => (failed: call.CallFailed): PathInfoError.PathInfoServiceError => {
      const typed = wire.decodeErrorTrailer(PathInfoError.PathInfoServiceError, failed.trailer)
      if (typed !== undefined) return typed
      switch (failed.status.code) {
        case Status.INVALID_ARGUMENT:
          return new PathInfoError.InvalidPathInfo({
            storePath: "",
            field: "",
            detail: `the server refused the request: ${failed.status.details}`
          })
        case Status.UNIMPLEMENTED:
          return new PathInfoError.NotSupported({ backend, operation })
        default:
          return new PathInfoError.StorageError({ backend, operation, detail: failed.status.message, cause: failed.status })
      }
    }

    const decodePathInfo = (bytes: Uint8Array) =>
      Either.mapLeft(ProtoConversion.pathInfoFromBinary(bytes), (e) => ProtoConversion.toInvalidPathInfo(e))

    const pathInfoService = PathInfoService.make({
      get: (digest) =>
        call.retrying(
          context,
          call.unary(
            context,
            paths.pathInfoGet,
            pathInfoWire.encodeGetRequest(digest)
          )
        ).pipe(
          // one step per call: decode and check in a plain function
          Effect.flatMap((bytes): Either.Either<Option.Option<PathInfo.PathInfo>, PathInfoError.InvalidPathInfo> => {
            const decoded = decodePathInfo(bytes)
            if (Either.isLeft(decoded)) return Either.left(decoded.left)
            const p = decoded.right
            return bytesEqual(p.storePath.digest, digest)
              ? Either.right(Option.some(p))
              : Either.left(
                new PathInfoError.InvalidPathInfo({
                  storePath: p.basename,
                  field: "node.name",
                  detail: `asked for ${Nixbase32.encode(digest)}, the server answered with ${p.basename}`
                })
              )
          }),
          Effect.catchIf(
            (e): e is call.CallFailed => e._tag === "CallFailed",
            (failed) =>
              failed.status.code === Status.NOT_FOUND && failed.trailer === undefined
                ? Effect.succeedNone
                : Effect.fail(pathInfoFailure("get")(failed))
          )
        ),
      put: (pathInfo) =>
        call.retrying(context, call.unary(context, paths.pathInfoPut, ProtoConversion.pathInfoToBinary(pathInfo))).pipe(
          Effect.mapError(pathInfoFailure("put")),
          Effect.flatMap((bytes): Either.Either<PathInfo.PathInfo, PathInfoError.InvalidPathInfo> => {
            const decoded = decodePathInfo(bytes)
            if (Either.isLeft(decoded)) return decoded
            const stored = decoded.right
            return StorePath.equals(stored.storePath, pathInfo.storePath)
              ? decoded
              : Either.left(
                new PathInfoError.InvalidPathInfo({
                  storePath: stored.basename,
                  field: "node.name",
                  detail: `put ${pathInfo.basename}, the server answered with ${stored.basename}`
                })
              )
          })
        ),
      list: Stream.unwrapScoped(
        Effect.gen(function*() {
          const scope = yield* Effect.scope
          const { first, stream } = yield* openWithFirst(
            paths.pathInfoList,
            toBinary(ListPathInfoRequestSchema, create(ListPathInfoRequestSchema)),
            scope
          )
          return Stream.fromIterable(Option.toArray(first)).pipe(
            Stream.concat(call.rest(stream)),
            Stream.mapError(pathInfoFailure("list")),
            // a whole batch per step: messages arrive in chunks (see call.rest)
            Stream.mapChunksEffect((chunk) => {
              const out: Array<PathInfo.PathInfo> = []
              for (const bytes of chunk) {
                const decoded = decodePathInfo(bytes)
                if (Either.isLeft(decoded)) return Effect.fail(decoded.left)
                out.push(decoded.right)
              }
              return Effect.succeed(Chunk.unsafeFromArray(out))
            })
          )
        }).pipe(Effect.mapError(pathInfoFailure("list")))
      )
    })

    const calculateNar = (node: Node.Node) =>
      call.retrying(
        context,
        call.unary(
          context,
          paths.pathInfoCalculateNar,
          ProtoConversion.nodeToBinary(node)
        )
      ).pipe(
        Effect.mapError((failed) => wire.decodeNarRenderErrorTrailer(failed.trailer) ?? failed.status),
        Effect.flatMap((bytes) =>
          Either.flatMap(
            ProtoConversion.parseBinary(CalculateNARResponseSchema, bytes),
            ProtoConversion.calculateNarResponseFromProto
          )
        )
      )

    // -- BlobService ----------------------------------------------------------

    const blobFailure = (digest: Uint8Array | undefined) => (failed: call.CallFailed): BlobService.BlobServiceError => {
      const typed = wire.decodeErrorTrailer(BlobService.BlobServiceError, failed.trailer)
      if (typed !== undefined) return typed
      return new BlobService.BlobServiceError({
        reason: failed.status.code === Status.OUT_OF_RANGE ? "InvalidRange" : "Storage",
        ...(digest === undefined ? {} : { digest: hex(digest) }),
        description: failed.status.message,
        cause: failed.status
      })
    }

    const invalidBlobMessage = (digest: Uint8Array | undefined, what: string) => (e: ProtoConversion.ProtoDecodeError) =>
      new BlobService.BlobServiceError({
        reason: "Storage",
        ...(digest === undefined ? {} : { digest: hex(digest) }),
        description: `the server sent an invalid ${what}: ${e.message}`,
        cause: e
      })

    const stat = (digest: B3Digest.B3Digest) =>
      call.retrying(
        context,
        call.unary(
          context,
          paths.blobStat,
          toBinary(StatBlobRequestSchema, create(StatBlobRequestSchema, { digest, sendChunks: true }))
        )
      ).pipe(
        Effect.map((bytes): Option.Option<Buffer> => Option.some(bytes)),
        Effect.catchIf(
          (e) => e.status.code === Status.NOT_FOUND && e.trailer === undefined,
          () => Effect.succeed(Option.none<Buffer>())
        ),
        Effect.mapError(blobFailure(digest)),
        Effect.flatMap(Option.match({
          onNone: () => Effect.succeedNone,
          onSome: (bytes) =>
            Effect.map(
              Effect.mapError(ProtoConversion.parseBinary(StatBlobResponseSchema, bytes), invalidBlobMessage(digest, "StatBlobResponse")),
              Option.some
            )
        }))
      )

    const checkRange = (digest: Uint8Array, range: BlobService.ReadRange | undefined) => {
      if (range === undefined) return Effect.void
      const bad = !Number.isSafeInteger(range.offset) || range.offset < 0
        ? `range offset ${range.offset} is not a non-negative integer`
        : range.length !== undefined && (!Number.isSafeInteger(range.length) || range.length < 0)
        ? `range length ${range.length} is not a non-negative integer`
        : undefined
      return bad === undefined
        ? Effect.void
        : Effect.fail(new BlobService.BlobServiceError({ reason: "InvalidRange", digest: hex(digest), description: bad }))
    }

    /**
     * Cuts `[offset, offset + length)` out of a whole-blob stream whose first
     * chunk is `first`: skips to the offset before answering (so an offset past
     * the end fails the read itself), then limits the rest.
     */
    const cutRange = (
      digest: B3Digest.B3Digest,
      range: BlobService.ReadRange,
      stream: call.ServerStream,
      first: Option.Option<Buffer>
    ) =>
      Effect.gen(function*() {
        let skipped = 0
        let current = first
        let head: Uint8Array | undefined
        while (Option.isSome(current)) {
          const data = yield* Effect.mapError(wire.decodeBlobChunk(current.value), invalidBlobMessage(digest, "BlobChunk"))
          if (skipped + data.length > range.offset) {
            head = data.subarray(range.offset - skipped)
            skipped = range.offset
            break
          }
          skipped += data.length
          current = yield* Effect.mapError(stream.next, blobFailure(digest))
        }
        if (head === undefined && skipped < range.offset) {
          return yield* new BlobService.BlobServiceError({
            reason: "InvalidRange",
            digest: hex(digest),
            description: `range offset ${range.offset} is past the end of the blob (${skipped} bytes)`
          })
        }
        const tail = head === undefined ? Stream.empty : Stream.concat(
          Stream.make(head),
          call.rest(stream).pipe(
            Stream.mapError(blobFailure(digest)),
            Stream.mapEffect((bytes) => Effect.mapError(wire.decodeBlobChunk(bytes), invalidBlobMessage(digest, "BlobChunk")))
          )
        )
        return range.length === undefined ? tail : takeBytes(tail, range.length)
      })

    const read = (
      digest: B3Digest.B3Digest,
      range?: BlobService.ReadRange
    ): Effect.Effect<Option.Option<Stream.Stream<Uint8Array, BlobService.BlobServiceError>>, BlobService.BlobServiceError> =>
      Effect.gen(function*() {
        yield* checkRange(digest, range)
        const ranged = range !== undefined && (range.offset > 0 || range.length !== undefined)
        const request = create(ReadBlobRequestSchema, {
          digest,
          ...(ranged ? { nixfxOffset: BigInt(range.offset) } : {}),
          ...(ranged && range.length !== undefined ? { nixfxLength: BigInt(range.length) } : {})
        })
        // The call outlives this effect (the stream returned continues it), so it
        // gets a scope of its own: closed here unless a stream is handed out
        // (failure, none, interruption), and by the stream when it ends.
        const scope = yield* Scope.make()
        let handedOut = false
        return yield* Effect.gen(function*() {
          const opened = yield* Effect.either(openWithFirst(paths.blobRead, toBinary(ReadBlobRequestSchema, request), scope))
          if (Either.isLeft(opened)) {
            const failed = opened.left
            if (failed.status.code === Status.NOT_FOUND && failed.trailer === undefined) return Option.none()
            return yield* Effect.fail(blobFailure(digest)(failed))
          }
          const { first, stream } = opened.right
          const honoured = stream.headers()?.get(wire.readRangeHeader)[0] === wire.readRangeHonoured
          const body: Stream.Stream<Uint8Array, BlobService.BlobServiceError> = !ranged || honoured
            ? Stream.fromIterable(Option.toArray(first)).pipe(
              Stream.concat(call.rest(stream)),
              Stream.mapError(blobFailure(digest)),
              Stream.mapEffect((bytes) => Effect.mapError(wire.decodeBlobChunk(bytes), invalidBlobMessage(digest, "BlobChunk")))
            )
            : yield* cutRange(digest, range, stream, first)
          // No FinalizationRegistry on the returned Stream value: a stream being
          // run is not reachable from its own value, so GC would cancel live reads.
          const result = body.pipe(Stream.ensuring(Effect.suspend(() => Scope.close(scope, Exit_void))))
          handedOut = true
          return Option.some(result)
        }).pipe(Effect.onExit(() => (handedOut ? Effect.void : Scope.close(scope, Exit_void))))
      })

    const blobWriter: Effect.Effect<BlobService.BlobWriter, BlobService.BlobServiceError, Scope.Scope> = Effect.gen(
      function*() {
        const metadata = new grpc.Metadata()
        metadata.set(wire.blobPutHeader, wire.blobPutTerminated)
        const upload = yield* call.openClientStream(context, paths.blobPut, metadata)
        const hasher = B3Digest.hasher()
        let size = 0
        let state: "open" | "closed" = "open"
        const closedError = () =>
          new BlobService.BlobServiceError({ reason: "WriterClosed", description: "the writer was already closed or has failed" })
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            state = "closed"
          })
        )
        const send = (data: Uint8Array) =>
          Effect.mapError(upload.write(wire.encodeBlobChunk(data)), (failed) => {
            state = "closed"
            return blobFailure(undefined)(failed)
          })
        const writer: BlobService.BlobWriter = {
          write: (chunk) =>
            Effect.suspend(() => {
              if (state !== "open") return Effect.fail(closedError())
              if (chunk.length === 0) return Effect.void
              hasher.update(chunk)
              size += chunk.length
              if (chunk.length <= blobChunkBytes) return send(chunk)
              return Effect.forEach(
                Array.from({ length: Math.ceil(chunk.length / blobChunkBytes) }, (_, i) =>
                  chunk.subarray(i * blobChunkBytes, (i + 1) * blobChunkBytes)),
                send,
                { discard: true }
              )
            }),
          close: Effect.suspend(() => {
            if (state !== "open") return Effect.fail(closedError())
            state = "closed"
            const digest = hasher.digest()
            return upload.write(new Uint8Array(0)).pipe(
              Effect.zipRight(upload.finish),
              Effect.mapError(blobFailure(digest)),
              Effect.flatMap((bytes) =>
                Effect.mapError(ProtoConversion.parseBinary(PutBlobResponseSchema, bytes), invalidBlobMessage(digest, "PutBlobResponse"))
              ),
              Effect.flatMap((response) =>
                bytesEqual(response.digest, digest)
                  ? Effect.succeed<BlobService.BlobInfo>({ digest, size })
                  : Effect.fail(
                    new BlobService.BlobServiceError({
                      reason: "Storage",
                      digest: hex(digest),
                      description: `the server stored the blob as ${hex(response.digest)}, but the bytes sent hash to ${hex(digest)}`
                    })
                  )
              )
            )
          })
        }
        return writer
      }
    )

    const blobService: BlobService.Service = BlobService.BlobService.of({
      has: (digest) => Effect.map(stat(digest), Option.isSome),
      size: (digest) =>
        Effect.flatMap(stat(digest), (found) => {
          if (Option.isNone(found)) return Effect.succeedNone
          const response = found.value
          if (response.nixfxSize !== undefined) return Effect.succeed(Option.some(Number(response.nixfxSize)))
          if (response.chunks.length > 0) {
            return Effect.succeed(Option.some(response.chunks.reduce((n, c) => n + Number(c.size), 0)))
          }
          // A server that neither tells the size nor lists chunks: count the bytes.
          return Effect.flatMap(read(digest), Option.match({
            onNone: () => Effect.succeedNone,
            onSome: (stream) => Effect.map(Stream.runFold(stream, 0, (n, c) => n + c.length), Option.some)
          }))
        }),
      read,
      writer: blobWriter,
      putBytes: BlobService.putBytesWithWriter(blobWriter)
    })

    // -- DirectoryService -----------------------------------------------------

    const directoryFailure = (digest: Uint8Array | undefined) => (failed: call.CallFailed): DirectoryService.DirectoryServiceError => {
      const typed = wire.decodeErrorTrailer(DirectoryService.DirectoryServiceError, failed.trailer)
      if (typed !== undefined) return typed
      return new DirectoryService.DirectoryServiceError({
        reason: failed.status.code === Status.NOT_FOUND
          ? "NotFound"
          : failed.status.code === Status.DATA_LOSS
          ? "Corrupt"
          : "Storage",
        ...(digest === undefined ? {} : { digest: hex(digest) }),
        description: failed.status.message,
        cause: failed.status
      })
    }

    const corrupt = (digest: Uint8Array | undefined, description: string, cause?: unknown) =>
      new DirectoryService.DirectoryServiceError({
        reason: "Corrupt",
        ...(digest === undefined ? {} : { digest: hex(digest) }),
        description,
        ...(cause === undefined ? {} : { cause })
      })

    const decodeDirectory = (expected: Uint8Array | undefined, bytes: Uint8Array) =>
      Either.mapLeft(
        ProtoConversion.directoryFromBinary(bytes),
        (e) => corrupt(expected, `the server sent an invalid Directory: ${e.message}`, e)
      )

    const getRequest = (digest: Uint8Array, recursive: boolean) =>
      toBinary(GetDirectoryRequestSchema, create(GetDirectoryRequestSchema, { byWhat: { case: "digest", value: digest }, recursive }))

    const getDirectory = (digest: B3Digest.B3Digest) =>
      Effect.scoped(
        Effect.gen(function*() {
          const scope = yield* Effect.scope
          const opened = yield* Effect.either(openWithFirst(paths.directoryGet, getRequest(digest, false), scope))
          if (Either.isLeft(opened)) {
            if (opened.left.status.code === Status.NOT_FOUND && opened.left.trailer === undefined) return Option.none()
            return yield* Effect.fail(directoryFailure(digest)(opened.left))
          }
          const { first } = opened.right
          if (Option.isNone(first)) return yield* Effect.fail(corrupt(digest, "the server answered Get with no directory"))
          const directory = yield* decodeDirectory(digest, first.value)
          if (!B3Digest.equals(directory.digest, digest)) {
            return yield* Effect.fail(corrupt(digest, `the server answered with directory ${hex(directory.digest)}`))
          }
          return Option.some(directory)
        })
      )

    const getRecursive = (root: B3Digest.B3Digest): Stream.Stream<Directory.Directory, DirectoryService.DirectoryServiceError> =>
      Stream.unwrapScoped(
        Effect.gen(function*() {
          const scope = yield* Effect.scope
          const { first, stream } = yield* Effect.mapError(
            openWithFirst(paths.directoryGet, getRequest(root, true), scope),
            directoryFailure(root)
          )
          // Each directory must be the root or one a directory sent earlier refers
          // to; repeats (which tvix allows) are dropped.
          const expected = new Set<string>([hex(root)])
          const sent = new Set<string>()
          return Stream.fromIterable(Option.toArray(first)).pipe(
            Stream.concat(call.rest(stream)),
            Stream.mapError(directoryFailure(root)),
            Stream.mapEffect((bytes) => decodeDirectory(root, bytes)),
            Stream.filterEffect((directory) => {
              const key = hex(directory.digest)
              if (sent.has(key)) return Effect.succeed(false)
              if (!expected.has(key)) {
                return Effect.fail(corrupt(root, `the server sent directory ${key}, which no directory sent before refers to`))
              }
              sent.add(key)
              for (const { node } of directory.entries) if (node._tag === "Directory") expected.add(hex(node.digest))
              return Effect.succeed(true)
            }),
            Stream.concat(
              Stream.fromEffect(Effect.suspend(() =>
                sent.size === 0 ? Effect.fail(corrupt(root, "the server answered a recursive Get with no directory")) : Effect.void
              )).pipe(Stream.drain)
            )
          )
        })
      )

    const sendDirectories = (
      directories: ReadonlyArray<Directory.Directory>,
      root: B3Digest.B3Digest,
      unchecked: boolean
    ) => {
      const metadata = new grpc.Metadata()
      if (unchecked) metadata.set(wire.directoryPutHeader, wire.directoryPutUnchecked)
      metadata.set(wire.directoryCountHeader, String(directories.length))
      return call.retrying(
        context,
        Effect.scoped(
          Effect.flatMap(call.openClientStream(context, paths.directoryPut, metadata), (upload) =>
            Effect.zipRight(
              Effect.forEach(directories, (d) => upload.write(Directory.encode(d)), { discard: true }),
              upload.finish
            ))
        )
      ).pipe(
        Effect.mapError(directoryFailure(root)),
        Effect.flatMap((bytes) =>
          Either.mapLeft(
            ProtoConversion.parseBinary(PutDirectoryResponseSchema, bytes),
            (e) => corrupt(root, `the server sent an invalid PutDirectoryResponse: ${e.message}`, e)
          )
        ),
        Effect.flatMap((response) =>
          bytesEqual(response.rootDigest, root)
            ? Effect.succeed(root)
            : Effect.fail(corrupt(root, `the server stored the closure as root ${hex(response.rootDigest)}`))
        )
      )
    }

    const directoryService: DirectoryService.Service = DirectoryService.DirectoryService.of({
      get: getDirectory,
      put: (directory) => sendDirectories([directory], directory.digest, true),
      getRecursive,
      putter: DirectoryService.makePutter(({ directories, root }) =>
        Effect.asVoid(sendDirectories(directories, root.digest, false))
      )
    })

    return {
      url: target.url,
      pathInfoService,
      blobService,
      directoryService,
      calculateNar
    } satisfies GrpcStore
  })

const Exit_void = Exit.void

/** At most `limit` bytes of a byte stream. */
const takeBytes = <E>(stream: Stream.Stream<Uint8Array, E>, limit: number): Stream.Stream<Uint8Array, E> =>
  Stream.suspend(() => {
    let left = limit
    return stream.pipe(
      Stream.takeWhile(() => left > 0),
      Stream.map((chunk) => {
        const part = chunk.length <= left ? chunk : chunk.subarray(0, left)
        left -= part.length
        return part
      })
    )
  })

// ---------------------------------------------------------------------------
// layers
// ---------------------------------------------------------------------------

/**
 * All three services of the store at `url` (and the `GrpcClient` itself).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  url: string,
  options?: Options
): Layer.Layer<
  GrpcClient | PathInfoService.PathInfoService | BlobService.BlobService | DirectoryService.DirectoryService,
  StoreComposition.StoreConfigError
> =>
  Layer.scopedContext(
    Effect.map(make(url, options), (store) =>
      Context.make(GrpcClient, store).pipe(
        Context.add(PathInfoService.PathInfoService, store.pathInfoService),
        Context.add(BlobService.BlobService, store.blobService),
        Context.add(DirectoryService.DirectoryService, store.directoryService)
      ))
  )

/**
 * @since 0.1.0
 * @category layers
 */
export const layerPathInfoService = (
  url: string,
  options?: Options
): Layer.Layer<PathInfoService.PathInfoService, StoreComposition.StoreConfigError> =>
  Layer.scoped(PathInfoService.PathInfoService, Effect.map(make(url, options), (s) => s.pathInfoService))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerBlobService = (
  url: string,
  options?: Options
): Layer.Layer<BlobService.BlobService, StoreComposition.StoreConfigError> =>
  Layer.scoped(BlobService.BlobService, Effect.map(make(url, options), (s) => s.blobService))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerDirectoryService = (
  url: string,
  options?: Options
): Layer.Layer<DirectoryService.DirectoryService, StoreComposition.StoreConfigError> =>
  Layer.scoped(DirectoryService.DirectoryService, Effect.map(make(url, options), (s) => s.directoryService))

// ---------------------------------------------------------------------------
// store composition
// ---------------------------------------------------------------------------

const GrpcEntry = Schema.Struct({
  type: Schema.Literal("grpc"),
  url: Schema.String,
  package: Schema.optional(Schema.Literal("tvix", "snix")),
  timeoutMillis: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive())),
  retries: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.nonNegative()))
})

/**
 * The `grpc` store type for `@nixfx/pathinfo`'s `StoreComposition`: URLs
 * `grpc+http://…`, `grpc+https://…`, `grpc+unix://…`, and document entries
 * `{ "type": "grpc", "url": …, "package"?: "tvix" | "snix", "timeoutMillis"?: n, "retries"?: n }`.
 *
 * ```ts
 * StoreComposition.layer("grpc+unix:///run/nixfx.sock").pipe(Layer.provide(GrpcClient.layerRegistry))
 * ```
 *
 * @since 0.1.0
 * @category store composition
 */
export const storeBackend: StoreComposition.Backend = {
  type: "grpc",
  schemes: ["grpc+http", "grpc+https", "grpc+unix"],
  fromUrl: (url, input) =>
    Either.map(parseUrl(url.href), (): StoreComposition.Entry => ({ type: "grpc", url: input })),
  build: (entry, context) =>
    Effect.gen(function*() {
      const config = yield* StoreComposition.decodeEntry(GrpcEntry, entry, context.label)
      return yield* make(config.url, {
        package: config.package,
        ...(config.timeoutMillis === undefined ? {} : { timeout: Duration.millis(config.timeoutMillis) }),
        ...(config.retries === undefined ? {} : { retry: { times: config.retries } })
      })
    })
}

/**
 * The default registry plus the `grpc` backend.
 *
 * @since 0.1.0
 * @category store composition
 */
export const registry: StoreComposition.Registry = StoreComposition.register(StoreComposition.defaultRegistry, storeBackend)

/**
 * Provides `registry` as `StoreComposition.CurrentRegistry`, so
 * `StoreComposition.layer("grpc+http://…")` works.
 *
 * @since 0.1.0
 * @category store composition
 */
export const layerRegistry: Layer.Layer<never> = Layer.succeed(StoreComposition.CurrentRegistry, registry)
