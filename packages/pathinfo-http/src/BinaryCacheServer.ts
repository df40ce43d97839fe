/**
 * A Nix binary cache served from any nixfx store — memory, SQLite,
 * PostgreSQL, a gRPC remote, a read-through hierarchy over cache.nixos.org —
 * that real Nix substitutes from (`nix copy --from http://…`, `substituters
 * = http://…`), on `@effect/platform`'s HttpServer with the Node adapter.
 *
 * The store is taken from context (`PathInfoService`, `BlobService`,
 * `DirectoryService`). Routes:
 *
 * | request | answer |
 * | --- | --- |
 * | `GET /nix-cache-info` | `StoreDir`, `WantMassQuery: 1`, `Priority` |
 * | `GET`/`HEAD /<hash>.narinfo` | the narinfo rendered from the PathInfo: its stored signatures, plus one made now when a signing key is configured |
 * | `GET`/`HEAD /nar/<hash>-<narhash>.nar` | the NAR, rendered from castore while it is sent; `Content-Length` is the NarSize; byte ranges (`Range: bytes=…`, one range; several are answered with the whole body); `Content-Encoding: zstd` when the request accepts it and asks for no range |
 * | `GET`/`HEAD /nar/<hash>-<narhash>.nar.zst` | the same NAR compressed with zstd (no ranges, no `Content-Length`) |
 * | `PUT /nar/<name>.nar[.xz\|.bz2\|.zst\|.br]`, `PUT /<hash>.narinfo` | uploads (off unless `upload` is set; bearer token) |
 *
 * NAR URLs name the store path hash and the NAR's sha256 (nixbase32), so a
 * NAR request needs one PathInfo lookup and no index, and a URL names one
 * content forever (`Cache-Control: immutable`). The narinfo says
 * `Compression: none` (with `FileHash`/`FileSize` equal to NarHash/NarSize)
 * unless `compression: "zstd"` is configured, in which case it points at
 * the `.nar.zst` file.
 *
 * Malformed paths (`..`, percent-encoding, an invalid hash, an unknown NAR
 * file form) get 400; everything else that is not in the store gets 404. No
 * path reaches anything but the store.
 *
 * Seeking: the NAR layout follows from the root node and the directory
 * closure (token sizes come from names, targets and file sizes), so a range
 * skips whole subtrees and files and reads the first file it touches from an
 * offset. The same renderer serves full bodies, and checks before sending
 * headers that the layout's size is the PathInfo's NarSize (a store whose
 * castore data disagrees with its PathInfo gets a 500, not a wrong body). A
 * failure while a body is being sent (a blob vanished) cuts the connection,
 * so the client sees an incomplete transfer rather than a short body.
 *
 * At most `maxConcurrentNarStreams` NAR bodies (and NAR uploads) are in
 * flight; more requests wait up to `narStreamWait` and then get a 503 with
 * `Retry-After`. Every request is logged when its response has been sent
 * (or aborted). Closing the scope shuts down gracefully: the listener
 * closes, idle connections close, requests in flight get up to
 * `shutdownTimeout` to finish (new requests on open connections get 503),
 * then the remaining connections are cut.
 *
 * Uploads (as tvix's nar-bridge accepts them, and as Nix writes to an HTTP
 * binary cache): `PUT /nar/<name>.nar.xz` (or `.nar`, `.bz2`, `.zst`, `.br`;
 * a gzip body of a `.nar` is recognised by its magic) is decompressed and
 * imported into castore while it arrives; `PUT /<hash>.narinfo` is checked
 * against it (NarHash, NarSize, Compression, FileHash and FileSize) and only
 * then is the PathInfo put, with reference nodes taken from the store. A
 * request must carry `Authorization: Bearer <token>`, or HTTP Basic with the
 * token as password (what Nix sends from a netrc file); the token is compared
 * in constant time.
 *
 * @since 0.1.0
 */
import * as HttpServer from "@effect/platform/HttpServer"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import { NarRenderError } from "@nixfx/castore/NarRender"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as NarInfo from "@nixfx/nix-compat/NarInfo"
import * as Nixbase32 from "@nixfx/nix-compat/Nixbase32"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import type { PathInfoServiceError } from "@nixfx/pathinfo/PathInfoError"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as http from "node:http"
import {
  acceptsZstd,
  etagOf,
  ifRangeAllows,
  makeTokenCheck,
  noneMatch,
  parseRange
} from "./internal/serverHttp.js"
import { type Directories, loadDirectories, narSize as layoutSize, renderRange } from "./internal/serverNar.js"
import * as Paths from "./internal/serverPaths.js"
import { acceptNarInfo, importNar, UploadedNars, UploadRejected } from "./internal/serverUpload.js"
import * as Zstd from "./internal/serverZstd.js"

// ---------------------------------------------------------------------------
// options
// ---------------------------------------------------------------------------

/**
 * Accepting uploads.
 *
 * @since 0.1.0
 * @category models
 */
export interface UploadOptions {
  /** The bearer token every upload must carry. */
  readonly token: Redacted.Redacted<string>
  /** How many uploaded NAR files are remembered waiting for their narinfo. Default 1024. */
  readonly maxPendingNars?: number | undefined
}

/**
 * What the narinfo advertises: the plain NAR (`none`, default: ranges work,
 * `Content-Length` is known) or the `.nar.zst` file compressed on the fly.
 *
 * @since 0.1.0
 * @category models
 */
export type NarCompression = "none" | "zstd"

/**
 * One served request, reported when its response was sent (`complete`),
 * cut by the client (`aborted`) or failed while sending (`failed`).
 *
 * @since 0.1.0
 * @category models
 */
export interface AccessLogEntry {
  readonly method: string
  /** The request target as received (at most 512 characters). */
  readonly target: string
  readonly status: number
  /** Body bytes handed to the connection. */
  readonly bytes: number
  readonly durationMs: number
  readonly remoteAddress: string | undefined
  readonly outcome: "complete" | "aborted" | "failed"
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** TCP port; 0 picks a free one (see the returned address). */
  readonly port: number
  /** Interface to listen on. Default `127.0.0.1`. */
  readonly host?: string | undefined
  /** Signs every narinfo served (in addition to its stored signatures). */
  readonly signingKey?: Keys.SecretKey | undefined
  /** Accept uploads (off when absent). */
  readonly upload?: UploadOptions | undefined
  /** NAR bodies (and NAR uploads) in flight at once. Default 16. */
  readonly maxConcurrentNarStreams?: number | undefined
  /** How long a NAR request waits for a free stream before a 503. Default 30 seconds. */
  readonly narStreamWait?: Duration.DurationInput | undefined
  /** `Priority` in `nix-cache-info` (lower is preferred by Nix). Default 30. */
  readonly priority?: number | undefined
  /** The store directory of the served paths. Default `/nix/store`. */
  readonly storeDir?: string | undefined
  /** What narinfos advertise. Default `"none"`. */
  readonly compression?: NarCompression | undefined
  /** zstd level for `.nar.zst` and `Content-Encoding: zstd`. Default 3. */
  readonly zstdLevel?: number | undefined
  /** How long requests in flight may take to finish when the server shuts down. Default 10 seconds. */
  readonly shutdownTimeout?: Duration.DurationInput | undefined
  /**
   * Access log: `true` (default) logs each request at Info level through the
   * Effect logger; `false` turns it off; a function receives every entry.
   */
  readonly accessLog?: boolean | ((entry: AccessLogEntry) => void) | undefined
}

/** Default `maxConcurrentNarStreams`. */
export const defaultMaxConcurrentNarStreams = 16

/** Default `priority`. */
export const defaultPriority = 30

// ---------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------

/**
 * An option, a listen address or a signing key file is unusable; `option`
 * names it.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServerConfigError extends Schema.TaggedError<ServerConfigError>(
  "@nixfx/pathinfo-http/ServerConfigError"
)("ServerConfigError", {
  option: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `binary cache server: ${this.option}: ${this.detail}`
  }
}

/**
 * The server could not listen (address in use, permission denied, unknown host).
 *
 * @since 0.1.0
 * @category errors
 */
export class ListenError extends Schema.TaggedError<ListenError>("@nixfx/pathinfo-http/ListenError")("ListenError", {
  host: Schema.String,
  port: Schema.Number,
  detail: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `cannot listen on ${formatHostPort(this.host, this.port)}: ${this.detail}`
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export type BinaryCacheServerError = ServerConfigError | ListenError

// ---------------------------------------------------------------------------
// the running server
// ---------------------------------------------------------------------------

/**
 * A running server.
 *
 * @since 0.1.0
 * @category models
 */
export interface Running {
  /** The address bound (with the actual port when 0 was asked for). */
  readonly hostname: string
  readonly port: number
  /** `http://<host>:<port>`, what `nix copy --from` takes. */
  readonly url: string
}

/**
 * The running server a {@link layer} provides.
 *
 * @since 0.1.0
 * @category tags
 */
export class BinaryCacheServer extends Context.Tag("@nixfx/pathinfo-http/BinaryCacheServer")<
  BinaryCacheServer,
  Running
>() {}

const formatHostPort = (host: string, port: number): string => (host.includes(":") ? `[${host}]` : host) + ":" + port

// ---------------------------------------------------------------------------
// helpers for the CLI
// ---------------------------------------------------------------------------

/**
 * Parses `HOST:PORT` (`[v6]:PORT` for IPv6 literals).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseListenAddress = (
  s: string
): Either.Either<{ readonly host: string; readonly port: number }, ServerConfigError> => {
  const fail = (detail: string) => Either.left(new ServerConfigError({ option: "listen", detail }))
  const m = /^(?:\[([0-9A-Fa-f:.%a-z]+)\]|([A-Za-z0-9._-]+)):([0-9]{1,5})$/.exec(s.trim())
  if (m === null) return fail(`expected HOST:PORT (or [IPv6]:PORT), got ${JSON.stringify(s)}`)
  const port = Number(m[3])
  if (port > 65535) return fail(`port ${port} is above 65535`)
  return Either.right({ host: m[1] ?? m[2], port })
}

/**
 * Reads a Nix secret key file (`name:base64`, as `nix-store
 * --generate-binary-cache-key` writes).
 *
 * @since 0.1.0
 * @category constructors
 */
export const readSigningKeyFile = (file: string): Effect.Effect<Keys.SecretKey, ServerConfigError> =>
  Effect.flatMap(
    Effect.tryPromise({
      try: () => fs.promises.readFile(file, "utf8"),
      catch: (e) =>
        new ServerConfigError({ option: "signing key file", detail: `${file}: ${e instanceof Error ? e.message : String(e)}` })
    }),
    (text) =>
      Either.match(Keys.parseSecretKey(text), {
        onLeft: (e) => Effect.fail(new ServerConfigError({ option: "signing key file", detail: `${file}: ${e.message}` })),
        onRight: Effect.succeed
      })
  )

/**
 * The URL (relative to the cache) at which the server serves the NAR of a
 * PathInfo: `nar/<store path hash>-<nixbase32 NAR sha256>.nar` (`.nar.zst`
 * for the zstd file).
 *
 * @since 0.1.0
 * @category urls
 */
export const narUrl = (pathInfo: PathInfo.PathInfo, compression: NarCompression = "none"): string =>
  Paths.narUrl(Nixbase32.encode(pathInfo.storePath.digest), pathInfo.narSha256, compression === "zstd")

/**
 * The narinfo the server sends for a PathInfo: rendered with the NAR URL of
 * {@link narUrl}, its signatures plus (with a key) a fresh one.
 *
 * @since 0.1.0
 * @category urls
 */
export const renderNarInfo = (
  pathInfo: PathInfo.PathInfo,
  options?: {
    readonly signingKey?: Keys.SecretKey | undefined
    readonly storeDir?: string | undefined
    readonly compression?: NarCompression | undefined
  }
): string => {
  const storeDir = options?.storeDir ?? StorePath.defaultStoreDir
  const signed = options?.signingKey === undefined ? pathInfo : PathInfo.sign(pathInfo, options.signingKey, storeDir)
  const zstd = options?.compression === "zstd"
  const narInfo = PathInfo.toNarInfo(
    signed,
    zstd
      ? { url: narUrl(pathInfo, "zstd"), compression: "zstd" }
      : { url: narUrl(pathInfo), compression: "none", fileHash: PathInfo.narHash(pathInfo), fileSize: pathInfo.narSize }
  )
  return NarInfo.render(narInfo, { storeDir })
}

// ---------------------------------------------------------------------------
// the handler
// ---------------------------------------------------------------------------

interface Store {
  readonly pathInfos: PathInfoService.PathInfoServiceShape
  readonly blobs: BlobService.Service
  readonly directories: DirectoryService.Service
}

interface Config {
  readonly storeDir: string
  readonly signingKey: Keys.SecretKey | undefined
  readonly compression: NarCompression
  readonly zstdLevel: number
  readonly narStreamWait: Duration.Duration
  readonly cacheInfo: string
  readonly uploads: { readonly check: (authorization: string | undefined) => boolean; readonly nars: UploadedNars } | undefined
  readonly accessLog: ((entry: AccessLogEntry) => Effect.Effect<void>) | undefined
}

/** Requests in flight, and whether the server is shutting down. */
class Activity {
  active = 0
  draining = false
  private waiters: Array<() => void> = []

  enter(): void {
    this.active++
  }

  leave(): void {
    this.active--
    if (this.active === 0) {
      const waiters = this.waiters
      this.waiters = []
      for (const w of waiters) w()
    }
  }

  /** Completes when no request is in flight. */
  readonly idle: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.active === 0) return resume(Effect.void)
    const w = () => resume(Effect.void)
    this.waiters.push(w)
    return Effect.sync(() => {
      this.waiters = this.waiters.filter((x) => x !== w)
    })
  })
}

const NARINFO_TYPE = "text/x-nix-narinfo"
const CACHE_INFO_TYPE = "text/x-nix-cache-info"
const NAR_TYPE = "application/x-nix-nar"
const ZSTD_TYPE = "application/zstd"
const IMMUTABLE = "public, max-age=31536000, immutable"
/** narinfos can gain signatures (a put merges them): cache them briefly. */
const NARINFO_CACHE = "public, max-age=300"
const MAX_NARINFO_UPLOAD = 1024 * 1024

const plain = (status: number, text: string, headers?: Record<string, string>): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(text.endsWith("\n") ? text : text + "\n", {
    status,
    contentType: "text/plain; charset=utf-8",
    headers: { "cache-control": "no-store", ...headers }
  })

/** (Closes the connection: a refused request's body is left unread.) */
const methodNotAllowed = (allow: string): HttpServerResponse.HttpServerResponse =>
  plain(405, `method not allowed here (allowed: ${allow})`, { allow, connection: "close" })

const notFound = (what: string) => plain(404, `${what} is not in this cache`)

const storeFailure = (what: string, e: { readonly message: string }) =>
  Effect.as(Effect.logError(`binary cache server: ${what}: ${e.message}`), plain(500, `${what}: ${e.message}`))

const statusOfPutError = (e: PathInfoServiceError): 400 | 409 | 500 | 501 => {
  switch (e._tag) {
    case "InvalidPathInfo":
      return 400
    case "PathInfoConflict":
    case "ReferenceConflict":
      return 409
    case "NotSupported":
      return 501
    case "StorageError":
      return 500
  }
}

/**
 * The request body. Under the Node adapter the stream is read without
 * destroying the request when reading stops early (an upload refused
 * half-way), which would cut the connection before the answer is sent.
 */
const requestBody = (request: HttpServerRequest.HttpServerRequest): Stream.Stream<Uint8Array, Error> => {
  let incoming: http.IncomingMessage | undefined
  try {
    incoming = NodeHttpServerRequest.toIncomingMessage(request)
  } catch {
    incoming = undefined
  }
  if (!(incoming instanceof http.IncomingMessage)) return Stream.mapError(request.stream, (e) => new Error(e.message))
  const source = incoming
  return NodeStream.fromReadable<Error>(
    () => source,
    (e) => (e instanceof Error ? e : new Error(String(e))),
    { closeOnDone: false }
  )
}

/** Cuts the connection of a request whose body failed half-way (Node only; elsewhere a no-op). */
const cutConnection = (request: HttpServerRequest.HttpServerRequest): void => {
  try {
    NodeHttpServerRequest.toServerResponse(request)?.destroy()
  } catch {
    // not a Node request
  }
}

/** The NAR body: fails before any byte is produced when the layout disagrees with the NarSize. */
const narBody = (
  store: Store,
  pathInfo: PathInfo.PathInfo
): Effect.Effect<(start: number, end: number) => Stream.Stream<Uint8Array, NarRenderError>, NarRenderError> =>
  Effect.flatMap(loadDirectories(store.directories, pathInfo.node), (directories: Directories) =>
    Effect.suspend(() => {
      let size: number
      try {
        size = layoutSize(pathInfo.node, directories)
      } catch (e) {
        if (e instanceof NarRenderError) return Effect.fail(e)
        throw e
      }
      if (size !== pathInfo.narSize) {
        return Effect.fail(
          new NarRenderError({
            reason: "InvalidNode",
            path: "/",
            description: `the castore tree of ${pathInfo.basename} renders to ${size} bytes, but its NarSize is ${pathInfo.narSize}`
          })
        )
      }
      return Effect.succeed((start: number, end: number) =>
        renderRange(store.blobs, directories, pathInfo.node, start, end)
      )
    }))

const makeApp_ = (
  store: Store,
  config: Config,
  activity: Activity,
  streams: Effect.Semaphore
) => {
  /** Takes a NAR stream slot for the rest of the request, or `false` after waiting too long. */
  const takeStream: Effect.Effect<boolean, never, Scope.Scope> = Effect.uninterruptible(
    Effect.flatMap(Effect.timeoutOption(Effect.interruptible(streams.take(1)), config.narStreamWait), (taken) =>
      Option.isNone(taken)
        ? Effect.succeed(false)
        : Effect.as(Effect.addFinalizer(() => streams.release(1)), true))
  )

  const busy = plain(503, "too many NAR transfers in flight; retry shortly", { "retry-after": "1" })

  const guard = (request: HttpServerRequest.HttpServerRequest, what: string) =>
  <E extends { readonly message: string }>(stream: Stream.Stream<Uint8Array, E>): Stream.Stream<Uint8Array, E> =>
    Stream.tapErrorCause(stream, (cause) =>
      Effect.zipRight(
        Effect.logError(`binary cache server: sending ${what} failed, cutting the connection: ${Cause.pretty(cause)}`),
        Effect.sync(() => cutConnection(request))
      ))

  const cacheInfo = (method: string) =>
    method === "GET" || method === "HEAD"
      ? HttpServerResponse.text(config.cacheInfo, {
        contentType: CACHE_INFO_TYPE,
        headers: { "cache-control": "public, max-age=3600", etag: etagOf(config.cacheInfo) }
      })
      : methodNotAllowed("GET, HEAD")

  const narInfo = (request: HttpServerRequest.HttpServerRequest, route: { readonly hash: string; readonly digest: Uint8Array }) =>
    Effect.gen(function*() {
      const found = yield* Effect.either(store.pathInfos.get(route.digest))
      if (Either.isLeft(found)) return yield* storeFailure(`looking up ${route.hash}`, found.left)
      if (Option.isNone(found.right)) return notFound(`${route.hash}.narinfo`)
      const text = renderNarInfo(found.right.value, config)
      const etag = etagOf(text)
      const headers = { "cache-control": NARINFO_CACHE, etag }
      if (noneMatch(request.headers["if-none-match"], etag)) return HttpServerResponse.empty({ status: 304, headers })
      return HttpServerResponse.text(text, { contentType: NARINFO_TYPE, headers })
    })

  const nar = (
    request: HttpServerRequest.HttpServerRequest,
    route: Extract<Paths.Route, { readonly _tag: "Nar" }>
  ) =>
    Effect.gen(function*() {
      const found = yield* Effect.either(store.pathInfos.get(route.digest))
      if (Either.isLeft(found)) return yield* storeFailure(`looking up ${route.hash}`, found.left)
      const what = `nar/${route.hash}-${route.narHash}.nar${route.zstd ? ".zst" : ""}`
      if (Option.isNone(found.right)) return notFound(what)
      const pathInfo = found.right.value
      // the store holds another build of this path than the URL names
      if (Nixbase32.encode(pathInfo.narSha256) !== route.narHash) return notFound(what)

      const headers = request.headers
      const zstd = route.zstd ||
        (acceptsZstd(headers["accept-encoding"]) && headers["range"] === undefined)
      const etag = route.zstd
        ? `W/"${route.narHash}.zst"`
        : zstd
        ? `W/"${route.narHash}+zstd"`
        : `"${route.narHash}"`
      const common: Record<string, string> = { "cache-control": IMMUTABLE, etag }
      if (!route.zstd) {
        common["accept-ranges"] = "bytes"
        common["vary"] = "accept-encoding"
      } else {
        common["accept-ranges"] = "none"
      }
      if (noneMatch(headers["if-none-match"], etag)) return HttpServerResponse.empty({ status: 304, headers: common })

      const range = route.zstd || zstd || !ifRangeAllows(headers["if-range"], etag)
        ? { _tag: "Full" as const }
        : parseRange(headers["range"], pathInfo.narSize)
      if (range._tag === "Unsatisfiable") {
        return plain(416, `the NAR is ${pathInfo.narSize} bytes; the range asked for lies past its end`, {
          ...common,
          "content-range": `bytes */${pathInfo.narSize}`
        })
      }
      const start = range._tag === "Partial" ? range.start : 0
      const end = range._tag === "Partial" ? range.end : pathInfo.narSize
      const status = range._tag === "Partial" ? 206 : 200
      const rangeHeaders: Record<string, string> = range._tag === "Partial"
        ? { "content-range": `bytes ${start}-${end - 1}/${pathInfo.narSize}` }
        : {}

      if (request.method === "HEAD") {
        return zstd
          ? HttpServerResponse.empty({
            status,
            headers: { ...common, ...(route.zstd ? {} : { "content-encoding": "zstd" }), "content-type": route.zstd ? ZSTD_TYPE : NAR_TYPE }
          })
          : HttpServerResponse.empty({
            status,
            headers: { ...common, ...rangeHeaders, "content-type": NAR_TYPE, "content-length": String(end - start) }
          })
      }

      if (!(yield* takeStream)) return busy
      const body = yield* Effect.either(narBody(store, pathInfo))
      if (Either.isLeft(body)) return yield* storeFailure(`rendering ${what}`, body.left)
      const bytes = body.right(start, end)
      if (zstd) {
        return HttpServerResponse.stream(guard(request, what)(Zstd.compress(config.zstdLevel)(bytes)), {
          status,
          contentType: route.zstd ? ZSTD_TYPE : NAR_TYPE,
          headers: { ...common, ...(route.zstd ? {} : { "content-encoding": "zstd" }) }
        })
      }
      return HttpServerResponse.stream(guard(request, what)(bytes), {
        status,
        contentType: NAR_TYPE,
        contentLength: end - start,
        headers: { ...common, ...rangeHeaders }
      })
    })

  const unauthorized = plain(401, "uploads need a valid token (Authorization: Bearer <token>)", {
    "www-authenticate": `Bearer realm="nixfx binary cache", Basic realm="nixfx binary cache"`,
    connection: "close"
  })

  // The body of a refused upload may be partly unread: close the connection after answering.
  const rejected = (e: UploadRejected) =>
    e.status === 500
      ? Effect.map(storeFailure("upload", e), HttpServerResponse.setHeader("connection", "close"))
      : Effect.succeed(plain(e.status, e.detail, { connection: "close" }))

  /** The body as text, at most `limit` bytes. */
  const readText = (request: HttpServerRequest.HttpServerRequest, limit: number) =>
    Effect.suspend(() => {
      const chunks: Array<Uint8Array> = []
      let size = 0
      return Stream.runForEach(requestBody(request), (chunk) => {
        size += chunk.length
        if (size > limit) {
          return Effect.fail(new UploadRejected({ status: 413, detail: `the narinfo is larger than ${limit} bytes` }))
        }
        chunks.push(chunk)
        return Effect.void
      }).pipe(
        Effect.mapError((e) =>
          e instanceof UploadRejected ? e : new UploadRejected({ status: 400, detail: `reading the body: ${e.message}` })
        ),
        Effect.map(() => Buffer.concat(chunks).toString("utf8"))
      )
    })

  const uploadNar = (
    request: HttpServerRequest.HttpServerRequest,
    route: Extract<Paths.Route, { readonly _tag: "UploadedNar" }>,
    nars: UploadedNars
  ) =>
    Effect.gen(function*() {
      if (!(yield* takeStream)) return busy
      const result = yield* Effect.either(importNar(store, route.key, route.compression, requestBody(request)))
      if (Either.isLeft(result)) return yield* rejected(result.left)
      nars.add(result.right)
      return HttpServerResponse.empty({ status: 204 })
    })

  const uploadNarInfo = (
    request: HttpServerRequest.HttpServerRequest,
    route: { readonly hash: string },
    nars: UploadedNars
  ) =>
    Effect.gen(function*() {
      const text = yield* Effect.either(readText(request, MAX_NARINFO_UPLOAD))
      if (Either.isLeft(text)) return yield* rejected(text.left)
      const pathInfo = yield* Effect.either(acceptNarInfo(store.pathInfos, nars, route.hash, text.right, config.storeDir))
      if (Either.isLeft(pathInfo)) return yield* rejected(pathInfo.left)
      const put = yield* Effect.either(store.pathInfos.put(pathInfo.right))
      if (Either.isLeft(put)) {
        const status = statusOfPutError(put.left)
        return status === 500
          ? yield* storeFailure(`storing ${pathInfo.right.basename}`, put.left)
          : plain(status, put.left.message)
      }
      return HttpServerResponse.empty({ status: 204 })
    })

  const dispatch = (request: HttpServerRequest.HttpServerRequest) => {
    const route = Paths.parse(request.url)
    const method = request.method
    const reads = method === "GET" || method === "HEAD"
    const uploads = config.uploads
    const allow = uploads === undefined ? "GET, HEAD" : "GET, HEAD, PUT"
    switch (route._tag) {
      case "Malformed":
        return Effect.succeed(plain(400, route.detail))
      case "NotFound":
        return Effect.succeed(notFound(JSON.stringify(Paths.pathOf(request.url) ?? request.url)))
      case "CacheInfo":
        return Effect.succeed(cacheInfo(method))
      case "Nar":
        return reads ? nar(request, route) : Effect.succeed(methodNotAllowed("GET, HEAD"))
      case "NarInfo":
        if (reads) return narInfo(request, route)
        if (method !== "PUT" || uploads === undefined) return Effect.succeed(methodNotAllowed(allow))
        if (!uploads.check(request.headers["authorization"])) return Effect.succeed(unauthorized)
        return uploadNarInfo(request, route, uploads.nars)
      case "UploadedNar":
        // Uploaded files are not kept as sent: reading one is a 404, so a
        // client asking whether it exists (Nix: HEAD) uploads it again.
        if (reads) return Effect.succeed(notFound(route.key))
        if (method !== "PUT" || uploads === undefined) return Effect.succeed(methodNotAllowed(allow))
        if (!uploads.check(request.headers["authorization"])) return Effect.succeed(unauthorized)
        return uploadNar(request, route, uploads.nars)
    }
  }

  return Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const startedAt = performance.now()
    activity.enter()
    let status = 0
    let bytes = 0
    let head = false
    yield* Effect.addFinalizer((exit) => {
      activity.leave()
      if (config.accessLog === undefined) return Effect.void
      return config.accessLog({
        method: request.method,
        target: request.url.length > 512 ? request.url.slice(0, 512) : request.url,
        status,
        bytes: head ? 0 : bytes,
        durationMs: Math.round((performance.now() - startedAt) * 10) / 10,
        remoteAddress: Option.getOrUndefined(request.remoteAddress),
        outcome: Exit.isSuccess(exit) ? "complete" : Exit.isInterrupted(exit) ? "aborted" : "failed"
      })
    })
    // The platform runs handlers uninterruptibly; the work of a request may
    // be interrupted (client gone, shutdown), its finalizers still run.
    const response = activity.draining
      ? plain(503, "the server is shutting down", { connection: "close", "retry-after": "1" })
      : yield* Effect.interruptible(dispatch(request))
    status = response.status
    head = request.method === "HEAD"
    const body = response.body
    switch (body._tag) {
      case "Uint8Array":
        bytes = body.body.length
        return response
      case "Stream":
        return HttpServerResponse.setBody(
          response,
          HttpServerResponse.stream(
            Stream.mapChunks(body.stream, (chunk) => {
              for (const c of chunk) bytes += c.length
              return chunk
            }),
            { contentType: body.contentType, contentLength: body.contentLength }
          ).body
        )
      default:
        return response
    }
  })
}

const defaultAccessLog = (entry: AccessLogEntry): Effect.Effect<void> =>
  Effect.logInfo(`${entry.method} ${entry.target} ${entry.status} ${entry.bytes}B ${entry.durationMs}ms ${entry.outcome}`)
    .pipe(
      Effect.annotateLogs({
        method: entry.method,
        target: entry.target,
        status: entry.status,
        bytes: entry.bytes,
        durationMs: entry.durationMs,
        remoteAddress: entry.remoteAddress ?? "",
        outcome: entry.outcome
      })
    )

const checkOptions = (options: Options): Effect.Effect<Config, ServerConfigError> =>
  Effect.suspend(() => {
    const fail = (option: string, detail: string) => Effect.fail(new ServerConfigError({ option, detail }))
    const isCount = (n: number) => Number.isSafeInteger(n) && n >= 0
    if (!isCount(options.port) || options.port > 65535) return fail("port", `expected 0..65535, got ${options.port}`)
    const streams = options.maxConcurrentNarStreams ?? defaultMaxConcurrentNarStreams
    if (!isCount(streams) || streams < 1) return fail("maxConcurrentNarStreams", `expected at least 1, got ${streams}`)
    const priority = options.priority ?? defaultPriority
    if (!isCount(priority)) return fail("priority", `expected a non-negative integer, got ${priority}`)
    const storeDir = options.storeDir ?? StorePath.defaultStoreDir
    if (!storeDir.startsWith("/") || storeDir.includes("\n") || (storeDir.length > 1 && storeDir.endsWith("/"))) {
      return fail("storeDir", `expected an absolute path without a trailing slash, got ${JSON.stringify(storeDir)}`)
    }
    const compression = options.compression ?? "none"
    if (compression !== "none" && compression !== "zstd") {
      return fail("compression", `expected "none" or "zstd", got ${JSON.stringify(compression)}`)
    }
    const zstdLevel = options.zstdLevel ?? 3
    if (!Number.isSafeInteger(zstdLevel) || zstdLevel < -7 || zstdLevel > 22) {
      return fail("zstdLevel", `expected -7..22, got ${zstdLevel}`)
    }
    let uploads: Config["uploads"] = undefined
    if (options.upload !== undefined) {
      const token = Redacted.value(options.upload.token)
      if (token.length < 16) return fail("upload.token", "use a token of at least 16 characters")
      const pending = options.upload.maxPendingNars ?? 1024
      if (!isCount(pending) || pending < 1) return fail("upload.maxPendingNars", `expected at least 1, got ${pending}`)
      uploads = { check: makeTokenCheck(token), nars: new UploadedNars(pending) }
    }
    const log = options.accessLog ?? true
    return Effect.succeed<Config>({
      storeDir,
      signingKey: options.signingKey,
      compression,
      zstdLevel,
      narStreamWait: Duration.decode(options.narStreamWait ?? Duration.seconds(30)),
      cacheInfo: `StoreDir: ${storeDir}\nWantMassQuery: 1\nPriority: ${priority}\n`,
      uploads,
      accessLog: log === false
        ? undefined
        : log === true
        ? defaultAccessLog
        : (entry) =>
          Effect.catchAllDefect(
            Effect.sync(() => log(entry)),
            (defect) => Effect.logWarning(`binary cache server: the access log function threw: ${String(defect)}`)
          )
    })
  })

const storeFromContext = Effect.all({
  pathInfos: PathInfoService.PathInfoService,
  blobs: BlobService.BlobService,
  directories: DirectoryService.DirectoryService
})

/**
 * The server as an `HttpApp`, to mount in another `@effect/platform`
 * server. `port`, `host` and `shutdownTimeout` are not used; the hosting
 * server owns listening and shutdown. A failing NAR body cuts the connection
 * only under the Node adapter.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeApp = (
  options: Options
): Effect.Effect<
  Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest | Scope.Scope>,
  ServerConfigError,
  PathInfoService.PathInfoService | BlobService.BlobService | DirectoryService.DirectoryService
> =>
  Effect.gen(function*() {
    const config = yield* checkOptions(options)
    const store = yield* storeFromContext
    const streams = yield* Effect.makeSemaphore(options.maxConcurrentNarStreams ?? defaultMaxConcurrentNarStreams)
    return makeApp_(store, config, new Activity(), streams)
  })

/**
 * Starts the server; it runs until the Scope closes, then shuts down
 * gracefully (see the module documentation).
 *
 * @since 0.1.0
 * @category constructors
 */
export const serve = (
  options: Options
): Effect.Effect<
  Running,
  BinaryCacheServerError,
  Scope.Scope | PathInfoService.PathInfoService | BlobService.BlobService | DirectoryService.DirectoryService
> =>
  Effect.gen(function*() {
    const config = yield* checkOptions(options)
    const store = yield* storeFromContext
    const streams = yield* Effect.makeSemaphore(options.maxConcurrentNarStreams ?? defaultMaxConcurrentNarStreams)
    const activity = new Activity()
    const app = makeApp_(store, config, activity, streams)
    const host = options.host ?? "127.0.0.1"
    const shutdownTimeout = Duration.decode(options.shutdownTimeout ?? Duration.seconds(10))
    // An upload of a large NAR may take longer than Node's default request
    // timeout (300 s, for receiving the whole request); headers must still
    // arrive within `headersTimeout`.
    const node = http.createServer(options.upload === undefined ? {} : { requestTimeout: 0 })
    const server = yield* NodeHttpServer.make(() => node, { port: options.port, host }).pipe(
      Effect.mapError((e: ServeError) => {
        const cause = e.cause
        const detail = cause instanceof Error ? cause.message : String(cause)
        return new ListenError({ host, port: options.port, detail, cause })
      })
    )
    yield* HttpServer.serveEffect(app).pipe(Effect.provideService(HttpServer.HttpServer, server))
    // Runs before the request handler is removed and the platform closes the server.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        activity.draining = true
        node.close()
        node.closeIdleConnections()
        const drained = yield* Effect.timeoutOption(Effect.interruptible(activity.idle), shutdownTimeout)
        if (Option.isNone(drained)) {
          yield* Effect.logWarning(
            `binary cache server: ${activity.active} requests still running after ${
              Duration.format(shutdownTimeout)
            }; closing their connections`
          )
        }
        node.closeAllConnections()
      })
    )
    const address = server.address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("the Node HTTP server listens on a TCP port")
    const hostname = address.hostname
    return {
      hostname,
      port: address.port,
      url: `http://${formatHostPort(hostname === "0.0.0.0" ? "127.0.0.1" : hostname, address.port)}`
    }
  })

/**
 * The server as a layer: runs while the layer is alive and provides the
 * {@link Running} address.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<
  BinaryCacheServer,
  BinaryCacheServerError,
  PathInfoService.PathInfoService | BlobService.BlobService | DirectoryService.DirectoryService
> => Layer.scoped(BinaryCacheServer, serve(options))
