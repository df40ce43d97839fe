/**
 * Client calls on grpc-js as Effects: unary calls, server streams read with
 * backpressure, client streams written with backpressure. Messages are the
 * encoded bytes; a non-OK status is a `CallFailed` holding the
 * `GrpcStatusError` and the typed-error trailer (if the server sent one).
 * Interrupting a call cancels it.
 *
 * @internal
 */
import * as grpc from "@grpc/grpc-js"
import * as Chunk from "effect/Chunk"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { GrpcStatusError, Status } from "../GrpcError.js"
import * as wire from "./wire.js"

/** A call ended with a non-OK status. `trailer` is the raw `nixfx-error-bin` value, if any. */
export class CallFailed extends Data.TaggedError("CallFailed")<{
  readonly status: GrpcStatusError
  readonly trailer: unknown
}> {}

export interface RetryPolicy {
  readonly times: number
  readonly initialDelay: Duration.Duration
  readonly maxDelay: Duration.Duration
  readonly codes: ReadonlyArray<number>
}

export interface CallContext {
  readonly client: grpc.Client
  readonly target: string
  /** Deadline of unary calls, in ms (undefined: none). */
  readonly unaryTimeout: number | undefined
  /** Deadline of streaming calls, in ms (undefined: none). */
  readonly streamTimeout: number | undefined
  readonly retry: RetryPolicy | undefined
}

/**
 * Cancels a call from a later turn of the event loop. grpc-js (1.14) loses a
 * cancellation issued in the same turn as the call was created (or in a
 * microtask after it): the client reports the call cancelled, but the server
 * never hears of it and keeps the call open until the connection closes.
 * Deferring to `setImmediate` lets the call start on the transport first.
 */
const cancelSoon = (call: { cancel(): void }): void => {
  setImmediate(() => call.cancel())
}

const deadlineOf = (timeout: number | undefined): grpc.CallOptions =>
  timeout === undefined ? {} : { deadline: Date.now() + timeout }

const failedFrom = (context: CallContext, method: string, error: unknown): CallFailed => {
  const e = error as Partial<grpc.ServiceError>
  const code = typeof e?.code === "number" ? e.code : Status.UNKNOWN
  const details = typeof e?.details === "string" ? e.details : error instanceof Error ? error.message : String(error)
  const trailer = e?.metadata instanceof grpc.Metadata ? e.metadata.get(wire.errorTrailer)[0] : undefined
  return new CallFailed({
    status: new GrpcStatusError({ method, target: context.target, code, details }),
    trailer
  })
}

/**
 * Retries an idempotent call on the policy's status codes (UNAVAILABLE by
 * default): exponential backoff from `initialDelay`, doubling, with jitter
 * (×0.8–1.2), at most `maxDelay`. Nothing is set up until a call fails, so a
 * call that succeeds costs no more than without retries.
 */
export const retrying = <A, R>(
  context: CallContext,
  effect: Effect.Effect<A, CallFailed, R>
): Effect.Effect<A, CallFailed, R> => {
  const policy = context.retry
  if (policy === undefined || policy.times <= 0) return effect
  const initial = Duration.toMillis(policy.initialDelay)
  const max = Duration.toMillis(policy.maxDelay)
  const attempt = (n: number): Effect.Effect<A, CallFailed, R> =>
    Effect.catchIf(
      effect,
      (e) => n < policy.times && policy.codes.includes(e.status.code),
      () => {
        const delay = Math.min(max, initial * 2 ** n) * (0.8 + 0.4 * Math.random())
        return Effect.zipRight(Effect.sleep(Duration.millis(delay)), attempt(n + 1))
      }
    )
  return attempt(0)
}

/** One unary call. */
export const unary = (
  context: CallContext,
  method: string,
  request: Uint8Array,
  metadata?: grpc.Metadata
): Effect.Effect<Buffer, CallFailed> =>
  Effect.async<Buffer, CallFailed>((resume) => {
    const call = context.client.makeUnaryRequest(
      method,
      wire.identity,
      wire.identity,
      wire.toBuffer(request),
      metadata ?? new grpc.Metadata(),
      deadlineOf(context.unaryTimeout),
      (error, value) => {
        if (error !== null && error !== undefined) resume(Effect.fail(failedFrom(context, method, error)))
        else resume(Effect.succeed(value ?? Buffer.alloc(0)))
      }
    )
    return Effect.sync(() => cancelSoon(call))
  })

/** An open server stream: its response headers (once known) and pulls of the messages. */
export interface ServerStream {
  readonly headers: () => grpc.Metadata | undefined
  /** The next message, or none at the end. */
  readonly next: Effect.Effect<Option.Option<Buffer>, CallFailed>
  /** Every message buffered now (at least one), or none at the end. */
  readonly nextChunk: Effect.Effect<Option.Option<Chunk.Chunk<Buffer>>, CallFailed>
}

/**
 * Reads a grpc-js server stream in paused mode: each pull takes every message
 * the stream has buffered (one Effect step per batch, not per message), and
 * waits for `readable` only when there is none. HTTP/2 flow control applies
 * while nothing is pulled.
 */
class PausedReader {
  private ended = false
  private failure: CallFailed | undefined = undefined
  private readonly buffered: Array<Buffer> = []
  private waiter: (() => void) | undefined = undefined

  constructor(
    private readonly call: grpc.ClientReadableStream<Buffer>,
    failed: (e: unknown) => CallFailed
  ) {
    call.on("readable", () => this.wake())
    call.on("end", () => {
      this.ended = true
      this.wake()
    })
    call.on("error", (e) => {
      this.failure = failed(e)
      this.wake()
    })
  }

  private wake(): void {
    const w = this.waiter
    this.waiter = undefined
    w?.()
  }

  private drain(): void {
    let m: Buffer | null
    while ((m = this.call.read() as Buffer | null) !== null) this.buffered.push(m)
  }

  /** Waits until a message, the end or a failure is there. */
  private ready: Effect.Effect<void> = Effect.async<void>((resume) => {
    this.drain()
    if (this.buffered.length > 0 || this.ended || this.failure !== undefined) return resume(Effect.void)
    const waiter = () => {
      this.drain()
      if (this.buffered.length > 0 || this.ended || this.failure !== undefined) resume(Effect.void)
      else this.waiter = waiter
    }
    this.waiter = waiter
    return Effect.sync(() => {
      if (this.waiter === waiter) this.waiter = undefined
    })
  })

  readonly next: Effect.Effect<Option.Option<Buffer>, CallFailed> = Effect.suspend(() =>
    Effect.flatMap(this.ready, () => {
      const m = this.buffered.shift()
      if (m !== undefined) return Effect.succeed(Option.some(m))
      return this.failure !== undefined ? Effect.fail(this.failure) : Effect.succeed(Option.none())
    })
  )

  readonly nextChunk: Effect.Effect<Option.Option<Chunk.Chunk<Buffer>>, CallFailed> = Effect.suspend(() =>
    Effect.flatMap(this.ready, () => {
      if (this.buffered.length > 0) return Effect.succeed(Option.some(Chunk.unsafeFromArray(this.buffered.splice(0))))
      return this.failure !== undefined ? Effect.fail(this.failure) : Effect.succeed(Option.none())
    })
  )
}

/** Opens a server-streaming call; it is cancelled when the Scope closes (a no-op once it ended). */
export const openServerStream = (
  context: CallContext,
  method: string,
  request: Uint8Array,
  metadata?: grpc.Metadata
): Effect.Effect<ServerStream, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => {
        const call = context.client.makeServerStreamRequest(
          method,
          wire.identity,
          wire.identity,
          wire.toBuffer(request),
          metadata ?? new grpc.Metadata(),
          deadlineOf(context.streamTimeout)
        )
        let headers: grpc.Metadata | undefined
        call.on("metadata", (m: grpc.Metadata) => {
          headers = m
        })
        const reader = new PausedReader(call, (e) => failedFrom(context, method, e))
        return { call, reader, headers: () => headers }
      }),
      ({ call }) => Effect.sync(() => cancelSoon(call))
    ),
    ({ headers, reader }): ServerStream => ({ headers, next: reader.next, nextChunk: reader.nextChunk })
  )

/** The remaining messages of an open server stream, in the batches they arrive in. */
export const rest = (stream: ServerStream): Stream.Stream<Buffer, CallFailed> =>
  Stream.repeatEffectChunkOption(
    Effect.flatMap(
      Effect.mapError(stream.nextChunk, Option.some),
      Option.match({ onNone: () => Effect.fail(Option.none()), onSome: Effect.succeed })
    )
  )

/** An open client-streaming call. */
export interface ClientStream {
  /** Sends one message, waiting while the call's buffer is full; fails once the call ended. */
  readonly write: (bytes: Uint8Array) => Effect.Effect<void, CallFailed>
  /** Half-closes and waits for the response. */
  readonly finish: Effect.Effect<Buffer, CallFailed>
}

/** Opens a client-streaming call; it is cancelled when the Scope closes unless it completed. */
export const openClientStream = (
  context: CallContext,
  method: string,
  metadata?: grpc.Metadata
): Effect.Effect<ClientStream, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => {
        const state: {
          result: { readonly ok: true; readonly value: Buffer } | { readonly ok: false; readonly error: CallFailed } | undefined
          readonly waiters: Set<() => void>
        } = { result: undefined, waiters: new Set() }
        const call = context.client.makeClientStreamRequest(
          method,
          wire.identity,
          wire.identity,
          metadata ?? new grpc.Metadata(),
          deadlineOf(context.streamTimeout),
          (error, value) => {
            state.result = error !== null && error !== undefined
              ? { ok: false, error: failedFrom(context, method, error) }
              : { ok: true, value: value ?? Buffer.alloc(0) }
            for (const w of Array.from(state.waiters)) w()
          }
        )
        return { call, state }
      }),
      ({ call, state }) => Effect.sync(() => {
        if (state.result === undefined) cancelSoon(call)
      })
    ),
    ({ call, state }): ClientStream => {
      const ended = (): Effect.Effect<never, CallFailed> => {
        const r = state.result!
        return Effect.fail(
          r.ok
            ? new CallFailed({
              status: new GrpcStatusError({
                method,
                target: context.target,
                code: Status.INTERNAL,
                details: "the server answered before the request stream ended"
              }),
              trailer: undefined
            })
            : r.error
        )
      }
      const awaitResult = Effect.async<Buffer, CallFailed>((resume) => {
        const done = () => {
          state.waiters.delete(done)
          const r = state.result!
          resume(r.ok ? Effect.succeed(r.value) : Effect.fail(r.error))
        }
        if (state.result !== undefined) return done()
        state.waiters.add(done)
        return Effect.sync(() => state.waiters.delete(done))
      })
      return {
        write: (bytes) =>
          Effect.suspend(() => {
            if (state.result !== undefined) return ended()
            if (call.write(wire.toBuffer(bytes))) return Effect.void
            return Effect.async<void, CallFailed>((resume) => {
              const cleanup = () => {
                call.removeListener("drain", drained)
                state.waiters.delete(finished)
              }
              const drained = () => {
                cleanup()
                resume(Effect.void)
              }
              const finished = () => {
                cleanup()
                resume(ended())
              }
              call.once("drain", drained)
              state.waiters.add(finished)
              return Effect.sync(cleanup)
            })
          }),
        finish: Effect.suspend(() => {
          if (state.result === undefined) call.end()
          return awaitResult
        })
      }
    }
  )
