/**
 * GET requests against a binary cache over `@effect/platform`'s HttpClient:
 * status mapping, retries of transient failures, time limits, body size
 * limits. Every failure is an `HttpError` naming the URL.
 *
 * The body's idle time limit is a plain timer, armed while the consumer
 * waits for the next chunk and cleared when it arrives; when it fires, the
 * request is aborted (its Scope closed). `Stream.timeoutFail` would do the
 * same with a race per chunk, which measured ~80 µs a chunk, more than the
 * rest of the pipeline's per-chunk work together.
 *
 * @internal
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Channel from "effect/Channel"
import type * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { HttpError } from "../BinaryCacheError.js"

export interface HttpOptions {
  readonly client: HttpClient.HttpClient
  /** Retries of a request that failed transiently (no response, 5xx, 429, a timeout). */
  readonly retries: number
  /** Time to wait for the response headers, and at most between two body chunks. */
  readonly timeout: Duration.Duration
}

const describe = (e: unknown): string => {
  if (e !== null && typeof e === "object") {
    const cause = "cause" in e ? (e as { cause?: unknown }).cause : undefined
    const message = "message" in e ? String((e as { message?: unknown }).message) : String(e)
    if (cause !== undefined && cause !== null && typeof cause === "object" && "message" in cause) {
      const inner = String((cause as { message?: unknown }).message)
      if (inner !== "" && !message.includes(inner)) return `${message}: ${inner}`
    }
    return message
  }
  return String(e)
}

const fromClientError = (url: string) => (e: HttpClientError.HttpClientError): HttpError =>
  new HttpError({
    url,
    reason: e._tag === "RequestError" ? "Transport" : "Body",
    detail: describe(e),
    cause: e
  })

const isTransient = (e: HttpError): boolean =>
  e.reason === "Transport" || e.reason === "Timeout" ||
  (e.reason === "Status" && e.status !== undefined && (e.status === 429 || (e.status >= 500 && e.status !== 501)))

/** 404 and 403 mean "not here" for narinfos (S3 answers 403 for missing keys). */
const notFound = (status: number): boolean => status === 404 || status === 403

const statusError = (url: string, status: number, what: string): HttpError =>
  new HttpError({ url, reason: "Status", status, detail: `unexpected status for ${what}` })

/** Retries `effect` while it fails transiently (and, optionally, for more reasons). */
const retrying = <A, R>(
  options: HttpOptions,
  effect: Effect.Effect<A, HttpError, R>,
  alsoRetry: (e: HttpError) => boolean = () => false
): Effect.Effect<A, HttpError, R> =>
  options.retries <= 0 ? effect : Effect.retry(effect, {
    while: (e) => isTransient(e) || alsoRetry(e),
    schedule: Schedule.exponential("100 millis", 2).pipe(Schedule.intersect(Schedule.recurs(options.retries)))
  })

/**
 * Passes chunks through, calling `waiting` when the consumer asks for the
 * next chunk and `arrived` when one (or the end, or a failure) comes.
 */
const watchPulls = <E>(
  waiting: () => void,
  arrived: () => void
): Channel.Channel<Chunk.Chunk<Uint8Array>, Chunk.Chunk<Uint8Array>, E, E, unknown, unknown> => {
  const loop: Channel.Channel<Chunk.Chunk<Uint8Array>, Chunk.Chunk<Uint8Array>, E, E, unknown, unknown> = Channel
    .suspend(() => {
      waiting()
      return Channel.readWithCause({
        onInput: (chunk: Chunk.Chunk<Uint8Array>) => {
          arrived()
          return Channel.flatMap(Channel.write(chunk), () => loop)
        },
        onFailure: (cause) => {
          arrived()
          return Channel.failCause(cause)
        },
        onDone: (done) => {
          arrived()
          return Channel.succeed(done)
        }
      })
    })
  return loop
}

/**
 * One request: the response once its headers arrived (within `timeout`), and
 * its body as a stream that fails with `Timeout` when no chunk arrives for
 * `timeout` while the consumer waits. The request is aborted when the Scope
 * closes, or when the idle limit is hit.
 */
const request = (
  options: HttpOptions,
  url: string
): Effect.Effect<
  { readonly response: HttpClientResponse.HttpClientResponse; readonly body: Stream.Stream<Uint8Array, HttpError> },
  HttpError,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    const runtime = yield* Effect.runtime<never>()
    const response = yield* HttpClient.withScope(options.client).get(url).pipe(
      Effect.mapError(fromClientError(url)),
      Effect.timeoutFail({
        duration: options.timeout,
        onTimeout: () =>
          new HttpError({ url, reason: "Timeout", detail: `no response within ${Duration.format(options.timeout)}` })
      }),
      Scope.extend(scope)
    )
    const ms = Duration.toMillis(options.timeout)
    let timer: ReturnType<typeof setTimeout> | undefined
    let timedOut = false
    const timeout = () =>
      new HttpError({ url, reason: "Timeout", detail: `no body bytes for ${Duration.format(options.timeout)}` })
    const waiting = () => {
      timer = setTimeout(() => {
        timer = undefined
        timedOut = true
        Runtime.runFork(runtime)(Scope.close(scope, Exit.void))
      }, ms)
    }
    const arrived = () => {
      if (timer !== undefined) {
        clearTimeout(timer)
        timer = undefined
      }
    }
    const body = response.stream.pipe(
      Stream.pipeThroughChannelOrFail(watchPulls<HttpClientError.ResponseError>(waiting, arrived)),
      Stream.mapError((e) => (timedOut ? timeout() : fromClientError(url)(e))),
      // an aborted body may also just end
      Stream.concat(Stream.execute(Effect.suspend(() => (timedOut ? Effect.fail(timeout()) : Effect.void)))),
      Stream.ensuring(Effect.sync(arrived))
    )
    return { response, body }
  })

/**
 * A small file (narinfo, nix-cache-info): its bytes, or none on 404/403.
 * Fails with `TooLarge` past `maxBytes` without reading further.
 */
export const getSmall = (
  options: HttpOptions,
  url: string,
  maxBytes: number
): Effect.Effect<Option.Option<Uint8Array>, HttpError> =>
  retrying(
    options,
    Effect.scoped(Effect.gen(function*() {
      const { body, response } = yield* request(options, url)
      if (notFound(response.status)) return Option.none<Uint8Array>()
      if (response.status < 200 || response.status >= 300) {
        return yield* Effect.fail(statusError(url, response.status, "a metadata file"))
      }
      const parts: Array<Uint8Array> = []
      let size = 0
      yield* Stream.runForEachChunk(body, (chunk) => {
        for (const c of chunk) {
          size += c.length
          parts.push(c)
        }
        return size > maxBytes
          ? Effect.fail(new HttpError({ url, reason: "TooLarge", detail: `more than ${maxBytes} bytes for a metadata file` }))
          : Effect.void
      })
      return Option.some(parts.length === 1 ? parts[0] : Buffer.concat(parts, size))
    })),
    // A body cut short is worth another try too: small files are read whole before use.
    (e) => e.reason === "Body"
  )

/**
 * The body of `GET url` as a stream (a NAR): any status but 2xx is an error
 * (a narinfo pointing at a missing NAR is not "not found"). The request
 * is aborted when the stream ends early or fails.
 */
export const getStream = (options: HttpOptions, url: string): Stream.Stream<Uint8Array, HttpError> =>
  Stream.unwrapScoped(
    Effect.map(
      retrying(
        options,
        Effect.flatMap(request(options, url), (r) =>
          r.response.status >= 200 && r.response.status < 300
            ? Effect.succeed(r)
            : Effect.fail(statusError(url, r.response.status, "a NAR file")))
      ),
      (r) => r.body
    )
  )
