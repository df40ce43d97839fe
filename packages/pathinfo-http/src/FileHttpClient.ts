/**
 * An `HttpClient` that also answers `file:` URLs from the local filesystem,
 * so a binary cache written by `nix copy --to file:///dir` can be read with
 * the same code as one behind a web server (`file:///dir` as a cache URL).
 *
 * `GET`/`HEAD` of an existing regular file is 200 with its bytes streamed
 * and its `Content-Length`; a missing file is 404; a `Range: bytes=N-`
 * request is 206 from offset N (Nix-style resumption). Every other URL goes
 * to the wrapped client.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import { Readable } from "node:stream"
import { fileURLToPath } from "node:url"

const answer = (request: Parameters<typeof HttpClientResponse.fromWeb>[0], url: URL) =>
  Effect.async<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>((resume) => {
    let file: string
    try {
      file = fileURLToPath(url)
    } catch (cause) {
      resume(Effect.fail(new HttpClientError.RequestError({ request, reason: "InvalidUrl", cause })))
      return
    }
    fs.stat(file, (error, stat) => {
      if (error !== null || !stat.isFile()) {
        resume(Effect.succeed(HttpClientResponse.fromWeb(request, new Response(null, { status: 404 }))))
        return
      }
      const range = /^bytes=(\d+)-$/.exec(request.headers["range"] ?? "")
      const start = range === null ? 0 : Math.min(Number(range[1]), stat.size)
      const headers = { "content-length": String(stat.size - start) }
      const status = range === null ? 200 : 206
      const body = request.method === "HEAD" || stat.size === start
        ? null
        : (Readable.toWeb(fs.createReadStream(file, { start })) as ReadableStream<Uint8Array>)
      resume(Effect.succeed(HttpClientResponse.fromWeb(request, new Response(body, { status, headers }))))
    })
  })

/**
 * `client`, answering `file:` URLs itself.
 *
 * @since 0.1.0
 * @category constructors
 */
export const withFiles = (client: HttpClient.HttpClient): HttpClient.HttpClient =>
  HttpClient.make((request, url) => url.protocol === "file:" ? answer(request, url) : client.execute(request))

/**
 * Decorates the `HttpClient` in context so that it answers `file:` URLs.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <E, R>(
  inner: Layer.Layer<HttpClient.HttpClient, E, R>
): Layer.Layer<HttpClient.HttpClient, E, R> =>
  Layer.effect(HttpClient.HttpClient, Effect.map(HttpClient.HttpClient, withFiles)).pipe(Layer.provide(inner))
