/**
 * A gRPC server for any `PathInfoService`, `BlobService` and
 * `DirectoryService`: every RPC of tvix's/snix's `PathInfoService`
 * (`Get`, `Put`, `CalculateNAR`, `List`), `BlobService` (`Stat`, `Read`,
 * `Put`) and `DirectoryService` (`Get`, `Put`), under both package names
 * (`tvix.*.v1` and `snix.*.v1`) at once.
 *
 * - Requests are checked (`ProtoConversion`); an invalid one is answered
 *   with `INVALID_ARGUMENT` and the reason, e.g.
 *   `invalid PathInfo: references[2]: digest must be 20 bytes, got 19`.
 * - Service errors become statuses (see `GrpcError`) and travel typed in the
 *   `nixfx-error-bin` trailer, so a nixfx client gets the same error back.
 * - `List`, blob `Read` and directory `Get` stream with backpressure; a
 *   cancelled call (client gone, deadline passed) interrupts its handler.
 * - `CalculateNAR` renders the NAR from castore through SHA-256 without
 *   holding it (`NarRender.calculate`).
 * - At most `maxConcurrentCalls` handlers run at once (later calls wait for a
 *   slot; their deadlines keep running); messages are limited to
 *   `maxMessageBytes` each way.
 * - The server lives as long as its Scope. Closing it shuts down gracefully:
 *   no new calls are accepted, calls in flight finish; after
 *   `shutdownTimeout` the rest are cancelled.
 *
 * Handlers run on the Effect runtime captured when the server starts (its
 * services, logger and so on).
 *
 * @since 0.1.0
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf"
import * as grpc from "@grpc/grpc-js"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Directory from "@nixfx/castore-nodes/Directory"
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as NarRender from "@nixfx/castore/NarRender"
import * as Nixbase32 from "@nixfx/nix-compat/Nixbase32"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { NodeSchema as ProtoNodeSchema } from "./gen/tvix/castore/protos/castore_pb.js"
import {
  PutBlobResponseSchema,
  ReadBlobRequestSchema,
  StatBlobRequestSchema,
  StatBlobResponseSchema
} from "./gen/tvix/castore/protos/rpc_blobstore_pb.js"
import { GetDirectoryRequestSchema, PutDirectoryResponseSchema } from "./gen/tvix/castore/protos/rpc_directory_pb.js"
import { CalculateNARResponseSchema, GetPathInfoRequestSchema } from "./gen/tvix/store/protos/rpc_pathinfo_pb.js"
import { GrpcServerError, Status } from "./GrpcError.js"
import * as pathInfoWire from "./internal/pathInfoWire.js"
import * as wire from "./internal/wire.js"
import * as ProtoConversion from "./ProtoConversion.js"

// ---------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * Where to listen: `host:port` (`127.0.0.1:0` lets the OS pick the port,
   * `[::]:8000`), or `unix:/abs/path` / `unix:///abs/path`.
   */
  readonly address: string
  /** Package names to serve (default both: `tvix` and `snix`). */
  readonly packages?: ReadonlyArray<"tvix" | "snix"> | undefined
  /** Handlers running at once, across connections (default 256); later calls wait. */
  readonly maxConcurrentCalls?: number | undefined
  /** Largest message received or sent, in bytes (default 4 MiB). */
  readonly maxMessageBytes?: number | undefined
  /** How long closing waits for calls in flight before cancelling them (default 10 s). */
  readonly shutdownTimeout?: Duration.DurationInput | undefined
  /** Largest blob chunk sent by `Read` (default 256 KiB; bigger blob chunks are split). */
  readonly blobChunkBytes?: number | undefined
  /** TLS (PEM): serve `grpc+https://` instead of plaintext. */
  readonly tls?: {
    readonly certChain: Uint8Array
    readonly privateKey: Uint8Array
  } | undefined
}

/**
 * The services a server exposes; a missing one answers `UNIMPLEMENTED`
 * (`CalculateNAR` needs both castore services).
 *
 * @since 0.1.0
 * @category models
 */
export interface Services {
  readonly pathInfoService?: PathInfoService.PathInfoServiceShape | undefined
  readonly blobService?: BlobService.Service | undefined
  readonly directoryService?: DirectoryService.Service | undefined
}

/**
 * A running server.
 *
 * @since 0.1.0
 * @category models
 */
export interface GrpcServer {
  /** The bound address: `127.0.0.1:43567`, `unix:///abs/path`. */
  readonly address: string
  /** The bound TCP port (0 for a unix socket). */
  readonly port: number
  /** A store URL a client can use: `grpc+http://127.0.0.1:43567`, `grpc+unix:///abs/path`. */
  readonly url: string
  /** Calls whose handlers are running now. */
  readonly activeCalls: Effect.Effect<number>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Server extends Context.Tag("@nixfx/pathinfo-grpc/GrpcServer")<Server, GrpcServer>() {}

// ---------------------------------------------------------------------------
// statuses
// ---------------------------------------------------------------------------

/**
 * A status a handler answers with on purpose (NOT_FOUND, …). A plain value,
 * not an Error: answering "not found" should not cost a stack trace.
 */
class Reply {
  readonly _tag = "Reply"
  constructor(readonly code: number, readonly details: string) {}
}

const reply = (code: number, details: string): Effect.Effect<never, Reply> => Effect.fail(new Reply(code, details))

type Failure = unknown

const statusOfError = (error: unknown): { readonly code: number; readonly details: string } => {
  if (error instanceof Reply) return { code: error.code, details: error.details }
  const message = error instanceof Error ? error.message : String(error)
  const tag = typeof error === "object" && error !== null && "_tag" in error ? (error as { _tag: unknown })._tag : undefined
  switch (tag) {
    case "ProtoDecodeError":
    case "InvalidPathInfo":
      return { code: Status.INVALID_ARGUMENT, details: message }
    case "PathInfoConflict":
      return { code: Status.ALREADY_EXISTS, details: message }
    case "ReferenceConflict":
      return { code: Status.FAILED_PRECONDITION, details: message }
    case "NotSupported":
      return { code: Status.UNIMPLEMENTED, details: message }
    case "StorageError":
      return { code: Status.INTERNAL, details: message }
    case "BlobServiceError": {
      const e = error as BlobService.BlobServiceError
      return {
        code: e.reason === "InvalidRange"
          ? Status.OUT_OF_RANGE
          : e.reason === "WriterClosed"
          ? Status.FAILED_PRECONDITION
          : Status.INTERNAL,
        details: message
      }
    }
    case "DirectoryServiceError": {
      const e = error as DirectoryService.DirectoryServiceError
      return {
        code: e.reason === "NotFound"
          ? Status.NOT_FOUND
          : DirectoryService.isInvalidClosure(e)
          ? Status.INVALID_ARGUMENT
          : e.reason === "Corrupt"
          ? Status.DATA_LOSS
          : e.reason === "PutterClosed"
          ? Status.FAILED_PRECONDITION
          : Status.INTERNAL,
        details: message
      }
    }
    case "NarRenderError": {
      const e = error as NarRender.NarRenderError
      return {
        code: e.reason === "MissingBlob" || e.reason === "MissingDirectory"
          ? Status.NOT_FOUND
          : e.reason === "BlobSizeMismatch"
          ? Status.DATA_LOSS
          : e.reason === "InvalidNode"
          ? Status.FAILED_PRECONDITION
          : Status.INTERNAL,
        details: message
      }
    }
  }
  return { code: Status.INTERNAL, details: message }
}

const statusOfCause = (cause: Cause.Cause<Failure>): grpc.StatusObject => {
  const metadata = new grpc.Metadata()
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const { code, details } = statusOfError(failure.value)
    const trailer = wire.encodeErrorTrailer(failure.value)
    if (trailer !== undefined) metadata.set(wire.errorTrailer, trailer)
    return { code, details, metadata }
  }
  if (Cause.isInterruptedOnly(cause)) return { code: Status.CANCELLED, details: "the call was cancelled", metadata }
  const defect = Cause.squash(cause)
  return {
    code: Status.INTERNAL,
    details: `internal server error: ${defect instanceof Error ? defect.message : String(defect)}`,
    metadata
  }
}

/** The status as grpc-js takes it for a failed call. */
const serviceError = (status: grpc.StatusObject): Partial<grpc.StatusObject> => status

// ---------------------------------------------------------------------------
// request helpers
// ---------------------------------------------------------------------------

const decode = <T extends Parameters<typeof fromBinary>[0]>(schema: T, bytes: Uint8Array) =>
  Either.match(ProtoConversion.parseBinary(schema, bytes), {
    onLeft: (e) => Effect.fail(e),
    onRight: (m) => Effect.succeed(m)
  })

const digestField = (
  messageType: string,
  field: string,
  bytes: Uint8Array,
  length: number
): Effect.Effect<Uint8Array, ProtoConversion.ProtoDecodeError> =>
  bytes.length === length
    ? Effect.succeed(bytes.slice())
    : Effect.fail(
      new ProtoConversion.ProtoDecodeError({
        messageType,
        field,
        detail: `digest must be ${length} bytes, got ${bytes.length}`
      })
    )

/** The digest a `GetPathInfoRequest` asks for (a copy). */
const getRequestDigest = (request: Uint8Array): Effect.Effect<Uint8Array, ProtoConversion.ProtoDecodeError> => {
  const usual = pathInfoWire.decodeGetRequest(request)
  const byWhat = usual !== undefined
    ? Either.right({ case: "byOutputHash" as const, value: usual })
    : Either.map(ProtoConversion.parseBinary(GetPathInfoRequestSchema, request), (m) => m.byWhat)
  if (Either.isLeft(byWhat)) return Effect.fail(byWhat.left)
  if (byWhat.right.case !== "byOutputHash") {
    return Effect.fail(
      new ProtoConversion.ProtoDecodeError({
        messageType: "tvix.store.v1.GetPathInfoRequest",
        field: "by_what",
        detail: "not set (by_output_hash is the only lookup)"
      })
    )
  }
  return digestField("tvix.store.v1.GetPathInfoRequest", "by_output_hash", byWhat.right.value, 20)
}

/** Lets pending I/O events (a cancellation) be delivered before going on. */
const settle = Effect.async<void>((resume) => {
  const timer = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(timer))
})

const unimplemented = (what: string) =>
  reply(Status.UNIMPLEMENTED, `this server does not serve ${what}`)

const hex = B3Digest.toHex

const parseAddress = (address: string): Either.Either<{ readonly bind: string; readonly unix: boolean }, string> => {
  if (address.startsWith("unix:")) {
    const p = address.startsWith("unix://") ? address.slice("unix://".length) : address.slice("unix:".length)
    if (!p.startsWith("/")) return Either.left(`a unix socket path must be absolute, got ${JSON.stringify(p)}`)
    return Either.right({ bind: `unix://${p}`, unix: true })
  }
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(address)) {
    return Either.left(`expected host:port or unix:/abs/path, got ${JSON.stringify(address)}`)
  }
  return Either.right({ bind: address, unix: false })
}

// ---------------------------------------------------------------------------
// the server
// ---------------------------------------------------------------------------

type WritableCall = grpc.ServerWritableStream<Buffer, Buffer>

/** What every server call offers: cancellation. */
interface AnyCall {
  readonly cancelled: boolean
  on(event: "cancelled", listener: () => void): unknown
  removeListener(event: "cancelled", listener: () => void): unknown
}

/**
 * Starts a server for the given services; it stops when the Scope closes
 * (gracefully, see the module documentation).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (services: Services, options: Options): Effect.Effect<GrpcServer, GrpcServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const target = yield* Either.mapLeft(
      parseAddress(options.address),
      (detail) => new GrpcServerError({ address: options.address, detail })
    )
    const maxConcurrentCalls = options.maxConcurrentCalls ?? 256
    const maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024
    const blobChunkBytes = Math.max(1, Math.min(options.blobChunkBytes ?? 256 * 1024, maxMessageBytes - 16))
    const shutdownTimeout = Duration.decode(options.shutdownTimeout ?? "10 seconds")
    const packages = options.packages ?? wire.packageNames

    const runtime = yield* Effect.runtime<never>()
    const runFork = Runtime.runFork(runtime)
    const semaphore = yield* Effect.makeSemaphore(maxConcurrentCalls)
    const inflight = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
    let active = 0

    /** Runs a handler's effect for a call; `done` gets its exit. Cancelling the call interrupts it. */
    const run = <A>(
      call: AnyCall,
      effect: Effect.Effect<A, Failure>,
      done: (exit: Exit.Exit<A, Failure>) => void
    ): void => {
      const fiber = runFork(
        semaphore.withPermits(1)(
          Effect.acquireUseRelease(
            Effect.sync(() => active++),
            () => effect,
            () => Effect.sync(() => active--)
          )
        )
      )
      inflight.add(fiber)
      const cancel = () => fiber.unsafeInterruptAsFork(FiberId.none)
      call.on("cancelled", cancel)
      fiber.addObserver((exit) => {
        inflight.delete(fiber)
        call.removeListener("cancelled", cancel)
        if (Exit.isFailure(exit) && Cause.isDie(exit.cause)) {
          // a bug, not an answer: the client gets INTERNAL, the log gets the cause
          runFork(Effect.logError("gRPC handler died", exit.cause))
        }
        done(exit)
      })
    }

    const unary = (
      handler: (request: Buffer, call: grpc.ServerUnaryCall<Buffer, Buffer>) => Effect.Effect<Uint8Array, Failure>
    ): grpc.handleUnaryCall<Buffer, Buffer> =>
    (call, callback) =>
      run(call, handler(call.request, call), (exit) => {
        if (Exit.isSuccess(exit)) callback(null, wire.toBuffer(exit.value))
        else callback(serviceError(statusOfCause(exit.cause)))
      })

    const clientStream = (
      handler: (
        messages: Stream.Stream<Buffer, Reply>,
        call: grpc.ServerReadableStream<Buffer, Buffer>
      ) => Effect.Effect<Uint8Array, Failure>
    ): grpc.handleClientStreamingCall<Buffer, Buffer> =>
    (call, callback) =>
      run(
        call,
        handler(
          Stream.fromAsyncIterable(
            call as AsyncIterable<Buffer>,
            (e) => new Reply(Status.CANCELLED, `reading the request stream failed: ${String(e)}`)
          ),
          call
        ),
        (exit) => {
          if (Exit.isSuccess(exit)) callback(null, wire.toBuffer(exit.value))
          else callback(serviceError(statusOfCause(exit.cause)))
        }
      )

    /** Waits until the call's buffer has room again. */
    const drained = (call: WritableCall): Effect.Effect<void> =>
      Effect.async<void>((resume) => {
        const done = () => resume(Effect.void)
        call.once("drain", done)
        return Effect.sync(() => call.removeListener("drain", done))
      })

    /** Writes one message, waiting while the call's buffer is full. */
    const write = (call: WritableCall) => (bytes: Uint8Array): Effect.Effect<void> =>
      Effect.suspend(() => (call.write(wire.toBuffer(bytes)) ? Effect.void : drained(call)))

    /** Writes messages in order, waiting only when the call's buffer is full. */
    const writeAll = (call: WritableCall) => (messages: Iterable<Uint8Array>): Effect.Effect<void> =>
      Effect.suspend(() => {
        const it = messages[Symbol.iterator]()
        const loop = (): Effect.Effect<void> => {
          for (let r = it.next(); r.done !== true; r = it.next()) {
            if (!call.write(wire.toBuffer(r.value))) return Effect.zipRight(drained(call), Effect.suspend(loop))
          }
          return Effect.void
        }
        return loop()
      })

    const serverStream = (
      handler: (
        request: Buffer,
        write: (bytes: Uint8Array) => Effect.Effect<void>,
        call: WritableCall,
        writeMany: (messages: Iterable<Uint8Array>) => Effect.Effect<void>
      ) => Effect.Effect<void, Failure>
    ): grpc.handleServerStreamingCall<Buffer, Buffer> =>
    (call) =>
      run(call, handler(call.request, write(call), call, writeAll(call)), (exit) => {
        if (call.cancelled) return
        if (Exit.isSuccess(exit)) call.end()
        else call.emit("error", serviceError(statusOfCause(exit.cause)))
      })

    // -- PathInfoService ----------------------------------------------------

    const pathInfoService = services.pathInfoService
    const blobService = services.blobService
    const directoryService = services.directoryService

    const pathInfoHandlers: grpc.UntypedServiceImplementation = {
      Get: unary((request) =>
        Effect.gen(function*() {
          if (pathInfoService === undefined) return yield* unimplemented("PathInfoService")
          const digest = yield* getRequestDigest(request)
          const found = yield* pathInfoService.get(digest)
          if (Option.isNone(found)) {
            return yield* reply(Status.NOT_FOUND, `PathInfo ${Nixbase32.encode(digest)} not found`)
          }
          return ProtoConversion.pathInfoToBinary(found.value)
        })
      ),
      Put: unary((request) =>
        Effect.gen(function*() {
          if (pathInfoService === undefined) return yield* unimplemented("PathInfoService")
          const pathInfo = yield* Either.mapLeft(
            ProtoConversion.pathInfoFromBinary(request),
            (e) => ProtoConversion.toInvalidPathInfo(e)
          )
          return ProtoConversion.pathInfoToBinary(yield* pathInfoService.put(pathInfo))
        })
      ),
      CalculateNAR: unary((request) =>
        Effect.gen(function*() {
          if (blobService === undefined || directoryService === undefined) {
            return yield* unimplemented("CalculateNAR (it needs a BlobService and a DirectoryService)")
          }
          const message = yield* decode(ProtoNodeSchema, request)
          const node = yield* ProtoConversion.anonymousNodeFromProto(message)
          const result = yield* NarRender.calculate(node).pipe(
            Effect.provideService(BlobService.BlobService, blobService),
            Effect.provideService(DirectoryService.DirectoryService, directoryService)
          )
          return toBinary(CalculateNARResponseSchema, ProtoConversion.calculateNarResponseToProto(result))
        })
      ),
      List: serverStream((_request, _send, _call, sendAll) =>
        pathInfoService === undefined
          ? unimplemented("PathInfoService")
          : Stream.runForEachChunk(pathInfoService.list, (chunk) => sendAll(Chunk.map(chunk, ProtoConversion.pathInfoToBinary)))
      )
    }

    // -- BlobService ----------------------------------------------------------

    const blobHandlers: grpc.UntypedServiceImplementation = {
      Stat: unary((request) =>
        Effect.gen(function*() {
          if (blobService === undefined) return yield* unimplemented("BlobService")
          const message = yield* decode(StatBlobRequestSchema, request)
          const digest = yield* digestField("tvix.castore.v1.StatBlobRequest", "digest", message.digest, 32)
          const size = yield* blobService.size(digest as B3Digest.B3Digest)
          if (Option.isNone(size)) return yield* reply(Status.NOT_FOUND, `blob ${hex(digest)} not found`)
          return toBinary(StatBlobResponseSchema, create(StatBlobResponseSchema, { nixfxSize: BigInt(size.value) }))
        })
      ),
      Read: serverStream((request, send, call) =>
        Effect.gen(function*() {
          if (blobService === undefined) return yield* unimplemented("BlobService")
          const message = yield* decode(ReadBlobRequestSchema, request)
          const digest = yield* digestField("tvix.castore.v1.ReadBlobRequest", "digest", message.digest, 32)
          const ranged = message.nixfxOffset !== undefined || message.nixfxLength !== undefined
          const range: BlobService.ReadRange | undefined = ranged
            ? {
              offset: Number(message.nixfxOffset ?? 0n),
              ...(message.nixfxLength === undefined ? {} : { length: Number(message.nixfxLength) })
            }
            : undefined
          const stream = yield* blobService.read(digest as B3Digest.B3Digest, range)
          if (Option.isNone(stream)) {
            return yield* reply(Status.NOT_FOUND, `blob ${hex(digest)} not found`)
          }
          if (ranged) {
            const metadata = new grpc.Metadata()
            metadata.set(wire.readRangeHeader, wire.readRangeHonoured)
            call.sendMetadata(metadata)
          }
          yield* Stream.runForEach(stream.value, (chunk) => {
            if (chunk.length <= blobChunkBytes) return send(wire.encodeBlobChunk(chunk))
            return Effect.forEach(
              Array.from({ length: Math.ceil(chunk.length / blobChunkBytes) }, (_, i) =>
                chunk.subarray(i * blobChunkBytes, (i + 1) * blobChunkBytes)),
              (part) => send(wire.encodeBlobChunk(part)),
              { discard: true }
            )
          })
        })
      ),
      Put: clientStream((messages, call) =>
        Effect.scoped(Effect.gen(function*() {
          if (blobService === undefined) return yield* unimplemented("BlobService")
          const terminated = call.metadata.get(wire.blobPutHeader).some((v) => v === wire.blobPutTerminated)
          const writer = yield* blobService.writer
          let sawTerminator = false
          yield* Stream.runForEach(
            messages,
            (bytes): Effect.Effect<void, ProtoConversion.ProtoDecodeError | BlobService.BlobServiceError> => {
              sawTerminator = bytes.length === 0
              const data = wire.decodeBlobChunk(bytes)
              if (Either.isLeft(data)) return Effect.fail(data.left)
              return data.right.length === 0 ? Effect.void : writer.write(data.right)
            }
          )
          // grpc-js may report a client's cancellation (RST_STREAM) as the end of
          // the request stream just before it reports the cancellation: an upload
          // is only stored when it ended on purpose.
          if (terminated && !sawTerminator) {
            return yield* reply(Status.CANCELLED, "the upload ended without its terminator (cancelled)")
          }
          yield* settle
          if (call.cancelled) return yield* reply(Status.CANCELLED, "the upload was cancelled")
          const info = yield* writer.close
          return toBinary(PutBlobResponseSchema, create(PutBlobResponseSchema, { digest: info.digest }))
        }))
      )
    }

    // -- DirectoryService -----------------------------------------------------

    const directoryHandlers: grpc.UntypedServiceImplementation = {
      Get: serverStream((request, send, _call, sendAll) =>
        Effect.gen(function*() {
          if (directoryService === undefined) return yield* unimplemented("DirectoryService")
          const message = yield* decode(GetDirectoryRequestSchema, request)
          if (message.byWhat.case !== "digest") {
            return yield* new ProtoConversion.ProtoDecodeError({
              messageType: "tvix.castore.v1.GetDirectoryRequest",
              field: "by_what",
              detail: "not set (digest is the only lookup)"
            })
          }
          const digest = (yield* digestField("tvix.castore.v1.GetDirectoryRequest", "digest", message.byWhat.value, 32)) as B3Digest.B3Digest
          if (!message.recursive) {
            const found = yield* directoryService.get(digest)
            if (Option.isNone(found)) {
              return yield* reply(Status.NOT_FOUND, `directory ${hex(digest)} not found`)
            }
            return yield* send(Directory.encode(found.value))
          }
          yield* Stream.runForEachChunk(directoryService.getRecursive(digest), (chunk) => sendAll(Chunk.map(chunk, Directory.encode)))
        })
      ),
      Put: clientStream((messages, call) =>
        Effect.gen(function*() {
          if (directoryService === undefined) return yield* unimplemented("DirectoryService")
          const unchecked = call.metadata.get(wire.directoryPutHeader).some((v) => v === wire.directoryPutUnchecked)
          const announced = call.metadata.get(wire.directoryCountHeader)[0]
          const expected = typeof announced === "string" && /^\d+$/.test(announced) ? Number(announced) : undefined
          // grpc-js may report a client's cancellation as the end of the request
          // stream just before the cancellation itself: only a stream that ended
          // on purpose (all announced directories received, not cancelled) counts.
          const endedOnPurpose = Effect.zipRight(
            settle,
            Effect.suspend(() =>
              call.cancelled
                ? reply(Status.CANCELLED, "the upload was cancelled")
                : expected !== undefined && expected !== index
                ? reply(
                  Status.CANCELLED,
                  `the upload ended after ${index} of the ${expected} directories announced (cancelled)`
                )
                : Effect.void
            )
          )
          let index = 0
          const decodeNext = (bytes: Buffer) =>
            Either.mapLeft(ProtoConversion.directoryFromBinary(bytes), (e) =>
              new ProtoConversion.ProtoDecodeError({
                messageType: e.messageType,
                field: `stream[${index}]${e.field === "" ? "" : "." + e.field}`,
                detail: e.detail
              }))
          if (unchecked) {
            let last: B3Digest.B3Digest | undefined
            yield* Stream.runForEach(messages, (bytes) =>
              Effect.flatMap(decodeNext(bytes), (d) => {
                index++
                return Effect.map(directoryService.put(d), (digest) => {
                  last = digest
                })
              }))
            yield* endedOnPurpose
            if (last === undefined) {
              return yield* new ProtoConversion.ProtoDecodeError({
                messageType: "tvix.castore.v1.Directory",
                field: "stream",
                detail: "no directory was sent"
              })
            }
            return toBinary(PutDirectoryResponseSchema, create(PutDirectoryResponseSchema, { rootDigest: last }))
          }
          return yield* Effect.scoped(Effect.gen(function*() {
            const putter = yield* directoryService.putter
            yield* Stream.runForEach(messages, (bytes) =>
              Effect.flatMap(decodeNext(bytes), (d) => {
                index++
                return putter.put(d)
              }))
            yield* endedOnPurpose
            const root = yield* putter.close
            return toBinary(PutDirectoryResponseSchema, create(PutDirectoryResponseSchema, { rootDigest: root }))
          }))
        })
      )
    }

    // -- wiring ---------------------------------------------------------------

    const server = new grpc.Server({
      "grpc.max_concurrent_streams": maxConcurrentCalls,
      "grpc.max_receive_message_length": maxMessageBytes,
      "grpc.max_send_message_length": maxMessageBytes,
      // call tracking for channelz costs time on every call
      "grpc.enable_channelz": 0
    })
    for (const pkg of packages) {
      const paths = wire.pathsFor(pkg)
      const definition = (entries: ReadonlyArray<readonly [string, string, boolean, boolean]>): grpc.ServiceDefinition =>
        Object.fromEntries(entries.map(([name, path, requestStream, responseStream]) => [name, {
          path,
          requestStream,
          responseStream,
          requestSerialize: wire.identity,
          requestDeserialize: wire.identity,
          responseSerialize: wire.identity,
          responseDeserialize: wire.identity,
          originalName: name
        }]))
      server.addService(
        definition([
          ["Get", paths.pathInfoGet, false, false],
          ["Put", paths.pathInfoPut, false, false],
          ["CalculateNAR", paths.pathInfoCalculateNar, false, false],
          ["List", paths.pathInfoList, false, true]
        ]),
        pathInfoHandlers
      )
      server.addService(
        definition([
          ["Stat", paths.blobStat, false, false],
          ["Read", paths.blobRead, false, true],
          ["Put", paths.blobPut, true, false]
        ]),
        blobHandlers
      )
      server.addService(
        definition([
          ["Get", paths.directoryGet, false, true],
          ["Put", paths.directoryPut, true, false]
        ]),
        directoryHandlers
      )
    }

    const credentials = options.tls === undefined
      ? grpc.ServerCredentials.createInsecure()
      : grpc.ServerCredentials.createSsl(null, [{
        cert_chain: Buffer.from(options.tls.certChain),
        private_key: Buffer.from(options.tls.privateKey)
      }])

    const port = yield* Effect.acquireRelease(
      Effect.async<number, GrpcServerError>((resume) => {
        server.bindAsync(target.bind, credentials, (error, port) => {
          if (error !== null) {
            server.forceShutdown()
            resume(Effect.fail(
              new GrpcServerError({
                address: options.address,
                detail: `${error.message} (is the address in use, or not this machine's?)`,
                cause: error
              })
            ))
          } else {
            resume(Effect.succeed(port))
          }
        })
      }),
      () =>
        // Wall-clock time on purpose: shutting down waits for real calls, whatever
        // Clock the runtime has (a TestClock would never let the timeout pass).
        Effect.async<boolean>((resume) => {
          const timer = setTimeout(() => resume(Effect.succeed(false)), Duration.toMillis(shutdownTimeout))
          server.tryShutdown(() => {
            clearTimeout(timer)
            resume(Effect.succeed(true))
          })
          return Effect.sync(() => clearTimeout(timer))
        }).pipe(
          Effect.flatMap((graceful) =>
            graceful ? Effect.void : Effect.suspend(() => {
              server.forceShutdown()
              return Fiber.interruptAll(Array.from(inflight))
            })
          )
        )
    )

    const address = target.unix ? target.bind : options.address.replace(/:\d+$/, `:${port}`)
    return {
      address,
      port: target.unix ? 0 : port,
      url: target.unix ? `grpc+unix://${target.bind.slice("unix://".length)}` : `grpc+${options.tls === undefined ? "http" : "https"}://${address}`,
      activeCalls: Effect.sync(() => active)
    }
  })

/**
 * Serves the `PathInfoService`, `BlobService` and `DirectoryService` of the
 * context, until the Scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const serve = (
  options: Options
): Effect.Effect<
  GrpcServer,
  GrpcServerError,
  Scope.Scope | PathInfoService.PathInfoService | BlobService.BlobService | DirectoryService.DirectoryService
> =>
  Effect.gen(function*() {
    return yield* make({
      pathInfoService: yield* PathInfoService.PathInfoService,
      blobService: yield* BlobService.BlobService,
      directoryService: yield* DirectoryService.DirectoryService
    }, options)
  })

/**
 * A layer running the server for the services it is given.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<
  Server,
  GrpcServerError,
  PathInfoService.PathInfoService | BlobService.BlobService | DirectoryService.DirectoryService
> => Layer.scoped(Server, serve(options))
