/**
 * GET requests against a binary cache over `@effect/platform`'s HttpClient:
 * status mapping, retries of transient failures as Nix does them, resumed
 * downloads, time limits, body size limits. Every failure is an `HttpError`
 * (or, for refused credentials, an `AccessDenied`) naming the URL.
 *
 * Retries: 408, 429, 5xx except 501/505/511 (Nix's choice), no response
 * (refused, reset, DNS), a body cut short and timeouts; never 401, 403, 404,
 * 410 or other 4xx. The wait before attempt n+1 is `retryDelay ·
 * 2^(n-1+U(0,0.5))` (Nix's jittered exponential backoff), or what
 * `Retry-After` asks when that is longer; every wait is capped at
 * `maxRetryDelay`.
 *
 * A download cut in the middle resumes: the next attempt asks for
 * `Range: bytes=<received>-` (with `If-Range` when the first answer had a
 * strong `ETag`), and accepts a `206` whose `Content-Range` starts there, or
 * a `200` with the whole file again, whose first bytes are skipped — after
 * checking they are the bytes already passed on (their hash), when the
 * download is hashed. An `ETag` or length that changed between attempts is
 * `Changed`: the parts of two different files are never joined.
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
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as crypto from "node:crypto"
import { AccessDenied, HttpError } from "../BinaryCacheError.js"

/** What a `403` on a narinfo or `nix-cache-info` means: "not here" (S3 answers 403 for missing keys) or an error. */
export type ForbiddenPolicy = "miss" | "error"

export interface HttpOptions {
  readonly client: HttpClient.HttpClient
  /** Attempts after the first of a request that failed transiently. */
  readonly retries: number
  /** Base of the exponential backoff. */
  readonly retryDelay: Duration.Duration
  /** Longest single wait between attempts (backoff and `Retry-After` alike). */
  readonly maxRetryDelay: Duration.Duration
  /** Time to wait for the response headers (connecting included). */
  readonly responseTimeout: Duration.Duration
  /** Longest gap between two body chunks while the consumer waits. */
  readonly idleTimeout: Duration.Duration
  readonly forbidden: ForbiddenPolicy
}

export type GetError = HttpError | AccessDenied

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

/** Nix's transient statuses: 408, 429 and 5xx except 501, 505, 511. */
const transientStatus = (status: number): boolean =>
  status === 408 || status === 429 || (status >= 500 && status < 600 && status !== 501 && status !== 505 && status !== 511)

const isTransient = (e: GetError): boolean =>
  e._tag === "HttpError" && (
    e.reason === "Transport" || e.reason === "Body" || e.reason === "Timeout" ||
    (e.reason === "Status" && e.status !== undefined && transientStatus(e.status))
  )

/** `Retry-After`: delay-seconds or an HTTP-date; none when absent or unreadable. */
export const parseRetryAfter = (value: string | undefined, now: number): number | undefined => {
  if (value === undefined) return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  // an HTTP-date names its weekday or month ("-5" would parse as a year)
  const date = /[a-z]/i.test(text) ? Date.parse(text) : NaN
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

const statusError = (url: string, response: HttpClientResponse.HttpClientResponse, what: string): GetError => {
  const status = response.status
  if (status === 401 || status === 403 || status === 407) {
    return new AccessDenied({
      url,
      status,
      detail: status === 407
        ? `the proxy refused ${what} (proxy credentials missing or refused)`
        : `the cache refused ${what} (credentials missing or refused)`
    })
  }
  const retryAfterMillis = parseRetryAfter(response.headers["retry-after"], Date.now())
  return new HttpError({
    url,
    reason: "Status",
    status,
    ...(retryAfterMillis === undefined ? {} : { retryAfterMillis }),
    detail: `unexpected status for ${what}`
  })
}

/** The wait before attempt `failed + 1`: jittered exponential backoff, or a longer `Retry-After`; capped. */
const retryWait = (options: HttpOptions, failed: number, e: GetError): Effect.Effect<number> =>
  Effect.map(Random.next, (u) => {
    const base = Duration.toMillis(options.retryDelay)
    const cap = Duration.toMillis(options.maxRetryDelay)
    const backoff = base * Math.pow(2, failed - 1 + u * 0.5)
    const asked = e._tag === "HttpError" && e.retryAfterMillis !== undefined ? e.retryAfterMillis : 0
    return Math.round(Math.min(cap, Math.max(backoff, asked)))
  })

/**
 * When `e` after attempt `failed` (1-based) is worth another attempt: logs
 * why and waits; otherwise none.
 */
const retryAfter = (
  options: HttpOptions,
  url: string,
  failed: number,
  e: GetError
): Option.Option<Effect.Effect<void>> =>
  failed > options.retries || !isTransient(e) ? Option.none() : Option.some(
    Effect.flatMap(retryWait(options, failed, e), (ms) =>
      Effect.logWarning(`${e.message}; retrying in ${ms} ms (attempt ${failed + 1} of ${options.retries + 1})`).pipe(
        Effect.annotateLogs({ url, attempt: failed + 1, delayMs: ms, reason: e._tag === "HttpError" ? e.reason : e._tag }),
        Effect.zipRight(Effect.sleep(Duration.millis(ms)))
      ))
  )

/** Runs `attempt(1)`, `attempt(2)`, … while it fails transiently and retries are left. */
const retrying = <A, R>(
  options: HttpOptions,
  url: string,
  attempt: (n: number) => Effect.Effect<A, GetError, R>
): Effect.Effect<A, GetError, R> => {
  const loop = (n: number): Effect.Effect<A, GetError, R> =>
    Effect.catchAll(
      attempt(n),
      (e) => Option.match(retryAfter(options, url, n, e), { onNone: () => Effect.fail(e), onSome: Effect.zipRight(loop(n + 1)) })
    )
  return loop(1)
}

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
 * One request: the response once its headers arrived (within
 * `responseTimeout`), and its body as a stream that fails with `Timeout`
 * when no chunk arrives for `idleTimeout` while the consumer waits. The
 * request is aborted when the Scope closes, or when the idle limit is hit.
 */
const request = (
  options: HttpOptions,
  url: string,
  attempt: number,
  headers: Record<string, string> = {}
): Effect.Effect<
  { readonly response: HttpClientResponse.HttpClientResponse; readonly body: Stream.Stream<Uint8Array, HttpError> },
  HttpError,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    const runtime = yield* Effect.runtime<never>()
    const response = yield* HttpClient.withScope(options.client).get(url, { headers }).pipe(
      Effect.mapError(fromClientError(url)),
      Effect.timeoutFail({
        duration: options.responseTimeout,
        onTimeout: () =>
          new HttpError({ url, reason: "Timeout", detail: `no response within ${Duration.format(options.responseTimeout)}` })
      }),
      Scope.extend(scope),
      Effect.tap((r) => Effect.annotateCurrentSpan("http.status", r.status)),
      Effect.withSpan("BinaryCache.request", {
        kind: "client",
        attributes: { "http.url": url, "http.attempt": attempt, ...(headers.range === undefined ? {} : { "http.range": headers.range }) }
      })
    )
    const ms = Duration.toMillis(options.idleTimeout)
    let timer: ReturnType<typeof setTimeout> | undefined
    let timedOut = false
    const timeout = () =>
      new HttpError({ url, reason: "Timeout", detail: `no body bytes for ${Duration.format(options.idleTimeout)}` })
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
 * A small file (narinfo, nix-cache-info): its bytes, or none on 404/410 (and
 * 403 with the `miss` policy). Fails with `TooLarge` past `maxBytes` without
 * reading further. A body cut short is retried from the start.
 */
export const getSmall = (
  options: HttpOptions,
  url: string,
  maxBytes: number
): Effect.Effect<Option.Option<Uint8Array>, GetError> =>
  retrying(options, url, (attempt) =>
    Effect.scoped(Effect.gen(function*() {
      const { body, response } = yield* request(options, url, attempt)
      const status = response.status
      if (status === 404 || status === 410 || (status === 403 && options.forbidden === "miss")) {
        return Option.none<Uint8Array>()
      }
      if (status < 200 || status >= 300) return yield* Effect.fail(statusError(url, response, "a metadata file"))
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
    })))

/** A download in progress: its body, and what has been passed on so far. */
export interface Download {
  /** The file's bytes, once, however many requests that takes. */
  readonly body: Stream.Stream<Uint8Array, GetError>
  /** Bytes passed on so far. */
  readonly received: () => number
  /** The hash of the bytes passed on; call it once the body ended (it finishes the hash). None when not hashing. */
  readonly digest: () => Option.Option<Uint8Array>
}

/** What the first answer of a download said about the file. */
interface FileIdentity {
  /** A strong ETag (weak ones cannot validate a range). */
  readonly etag: string | undefined
  readonly length: number | undefined
  readonly ranges: boolean
}

const contentLength = (response: HttpClientResponse.HttpClientResponse): number | undefined => {
  const text = response.headers["content-length"]
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined
}

const strongEtag = (response: HttpClientResponse.HttpClientResponse): string | undefined => {
  const etag = response.headers.etag
  return etag !== undefined && etag.startsWith("\"") ? etag : undefined
}

/** `bytes <first>-<last>/<length or *>` */
const parseContentRange = (text: string | undefined) => {
  const m = text === undefined ? null : /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(text.trim())
  return m === null ? undefined : { first: Number(m[1]), length: m[3] === "*" ? undefined : Number(m[3]) }
}

/** Drops the first `n` bytes of a chunk. */
const dropBytes = (chunk: Chunk.Chunk<Uint8Array>, n: number): Chunk.Chunk<Uint8Array> => {
  const out: Array<Uint8Array> = []
  for (const c of chunk) {
    if (n >= c.length) {
      n -= c.length
      continue
    }
    out.push(n === 0 ? c : c.subarray(n))
    n = 0
  }
  return Chunk.unsafeFromArray(out)
}

/**
 * The body of `GET url` as a stream (a NAR file): any status but 2xx is an
 * error (a narinfo pointing at a missing NAR is not "not found"; 401, 403
 * and 407 are `AccessDenied`). Transient failures are retried, and a body
 * cut in the middle resumes (see the module documentation). With
 * `algorithm` (`sha256`, …), the bytes passed on are hashed as they go.
 * The request is aborted when the stream ends early or fails.
 */
export const download = (options: HttpOptions, url: string, algorithm: string | undefined): Download => {
  let received = 0
  const hasher = algorithm === undefined ? undefined : crypto.createHash(algorithm)
  let digest: Uint8Array | undefined
  let identity: FileIdentity | undefined

  const changed = (detail: string) =>
    new HttpError({ url, reason: "Changed", detail: `the file changed between attempts: ${detail}` })

  const passOn = (chunk: Chunk.Chunk<Uint8Array>): Chunk.Chunk<Uint8Array> => {
    for (const c of chunk) {
      received += c.length
      hasher?.update(c)
    }
    return chunk
  }

  /** The whole file again: skip the `offset` bytes passed on already, checking they are the same when hashing. */
  const skipping = (body: Stream.Stream<Uint8Array, HttpError>, offset: number) => {
    const expected = hasher?.copy().digest()
    const prefix = algorithm === undefined ? undefined : crypto.createHash(algorithm)
    let skipped = 0
    return body.pipe(
      Stream.mapChunksEffect((chunk) => {
        if (skipped >= offset) return Effect.succeed(chunk)
        let drop = 0
        for (const c of chunk) {
          const n = Math.min(offset - skipped, c.length)
          if (n === 0) break
          prefix?.update(n === c.length ? c : c.subarray(0, n))
          skipped += n
          drop += n
        }
        if (skipped === offset && prefix !== undefined && !prefix.digest().equals(expected!)) {
          return Effect.fail(changed(`its first ${offset} bytes differ from those received before`))
        }
        return Effect.succeed(dropBytes(chunk, drop))
      }),
      Stream.concat(Stream.execute(Effect.suspend(() =>
        skipped < offset ? Effect.fail(changed(`it is now ${skipped} bytes long, ${offset} were received before`)) : Effect.void
      )))
    )
  }

  const attempt = (n: number): Stream.Stream<Uint8Array, GetError> =>
    Stream.unwrapScoped(Effect.gen(function*() {
      const offset = received
      const resuming = identity !== undefined && offset > 0
      const headers: Record<string, string> = {}
      if (resuming && identity!.ranges) {
        headers.range = `bytes=${offset}-`
        if (identity!.etag !== undefined) headers["if-range"] = identity!.etag
      }
      const { body, response } = yield* request(options, url, n, headers)
      const status = response.status
      if (status < 200 || status >= 300) return yield* Effect.fail(statusError(url, response, "a NAR file"))
      if (!resuming || identity === undefined) {
        identity = {
          etag: strongEtag(response),
          length: contentLength(response),
          ranges: response.headers["accept-ranges"] !== "none"
        }
        return body
      }
      const etag = strongEtag(response)
      if (etag !== undefined && identity.etag !== undefined && etag !== identity.etag) {
        return yield* Effect.fail(changed(`ETag ${identity.etag}, now ${etag}`))
      }
      if (status === 206) {
        const range = parseContentRange(response.headers["content-range"])
        if (range === undefined || range.first !== offset) {
          return yield* Effect.fail(
            new HttpError({
              url,
              reason: "Range",
              status,
              detail: `asked for bytes ${offset}-, got Content-Range ${response.headers["content-range"] ?? "(none)"}`
            })
          )
        }
        if (range.length !== undefined && identity.length !== undefined && range.length !== identity.length) {
          return yield* Effect.fail(changed(`${identity.length} bytes long, now ${range.length}`))
        }
        yield* Effect.logDebug(`resuming ${url} at byte ${offset}`)
        return body
      }
      const length = contentLength(response)
      if (length !== undefined && identity.length !== undefined && length !== identity.length) {
        return yield* Effect.fail(changed(`${identity.length} bytes long, now ${length}`))
      }
      yield* Effect.logDebug(`${url}: no range answered, skipping the first ${offset} bytes of the whole file`)
      return skipping(body, offset)
    })).pipe(
      Stream.mapChunks(passOn),
      Stream.catchAll((e) =>
        Option.match(retryAfter(options, url, n, e), {
          onNone: () => Stream.fail(e),
          onSome: (wait) => Stream.concat(Stream.execute(wait), attempt(n + 1))
        })
      )
    )

  return {
    body: attempt(1),
    received: () => received,
    digest: () => {
      if (hasher === undefined) return Option.none()
      digest ??= hasher.digest()
      return Option.some(digest)
    }
  }
}
