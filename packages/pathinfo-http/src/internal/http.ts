/**
 * GET requests against a binary cache over `@effect/platform`'s HttpClient:
 * status mapping, retries of transient failures, time limits, body size
 * limits. Every failure is an `HttpError` naming the URL.
 *
 * @internal
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
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

/**
 * The response to `GET url` once its headers arrived. The request is aborted
 * when the Scope closes.
 */
const respond = (
  options: HttpOptions,
  url: string
): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpError, Scope.Scope> =>
  HttpClient.withScope(options.client).get(url).pipe(
    Effect.mapError(fromClientError(url)),
    Effect.timeoutFail({
      duration: options.timeout,
      onTimeout: () =>
        new HttpError({ url, reason: "Timeout", detail: `no response within ${Duration.format(options.timeout)}` })
    })
  )

/** Retries `effect` (in a fresh Scope each time) while it fails transiently. */
const retrying = <A, R>(
  options: HttpOptions,
  effect: Effect.Effect<A, HttpError, R>,
  alsoRetry: (e: HttpError) => boolean = () => false
): Effect.Effect<A, HttpError, R> =>
  options.retries <= 0 ? effect : Effect.retry(effect, {
    while: (e) => isTransient(e) || alsoRetry(e),
    schedule: Schedule.exponential("100 millis", 2).pipe(Schedule.intersect(Schedule.recurs(options.retries)))
  })

const statusError = (url: string, status: number, what: string): HttpError =>
  new HttpError({ url, reason: "Status", status, detail: `unexpected status for ${what}` })

const bodyStream = (
  options: HttpOptions,
  url: string,
  response: HttpClientResponse.HttpClientResponse
): Stream.Stream<Uint8Array, HttpError> =>
  response.stream.pipe(
    Stream.mapError(fromClientError(url)),
    Stream.timeoutFail(
      () =>
        new HttpError({
          url,
          reason: "Timeout",
          detail: `no body bytes for ${Duration.format(options.timeout)}`
        }),
      options.timeout
    )
  )

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
        const response = yield* respond(options, url)
        if (notFound(response.status)) return Option.none<Uint8Array>()
        if (response.status < 200 || response.status >= 300) {
          return yield* Effect.fail(statusError(url, response.status, "a metadata file"))
        }
        const parts: Array<Uint8Array> = []
        let size = 0
        yield* Stream.runForEachChunk(bodyStream(options, url, response), (chunk) => {
          for (const c of chunk) {
            size += c.length
            parts.push(c)
          }
          return size > maxBytes
            ? Effect.fail(
              new HttpError({ url, reason: "TooLarge", detail: `more than ${maxBytes} bytes for a metadata file` })
            )
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
        Effect.flatMap(respond(options, url), (response) =>
          response.status >= 200 && response.status < 300
            ? Effect.succeed(response)
            : Effect.fail(statusError(url, response.status, "a NAR file")))
      ),
      (response) => bodyStream(options, url, response)
    )
  )
