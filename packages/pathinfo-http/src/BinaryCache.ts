/**
 * A Nix HTTP binary cache (cache.nixos.org, Cachix, attic, harmonia, a
 * `file://` cache behind any web server) as a `PathInfoService`.
 *
 * Every `get(digest)` fetches `<hash>.narinfo` (404, 410 and, by default,
 * 403 mean "not here"), checks its signatures against the trusted keys,
 * downloads the NAR (retrying and resuming as Nix does: see `HttpSettings`),
 * decompresses it as `Compression:` says, imports it into castore in one
 * streaming pass (stopping as soon as more bytes arrive than `NarSize:` or
 * `FileSize:` says) and compares NarHash and NarSize, FileHash and FileSize.
 * The result is a strict `PathInfo`
 * whose references are kept **by content**: each reference is looked up in
 * the store the cache resolves against (`resolveIn`); a present one has its
 * castore node recorded, an absent one is fetched from the same cache first
 * (recursively, with bounded concurrency), so a whole closure arrives and
 * is put leaves first. The fetched path is put into `resolveIn` too, last.
 * No NAR is downloaded twice: `resolveIn`'s `NarIndex` (NAR sha256 → the
 * castore root it became) is asked first, and a root whose content castore
 * still holds is used as it is.
 *
 * The cache does not resolve references through itself: `resolveIn` is an
 * explicit dependency (a parameter of `make`, the `ResolveStore` tag for the
 * layers), usually the near side of the read-through cache this one sits
 * behind — `cache(near: sqlite, far: binaryCache(resolveIn: that sqlite))`,
 * which `layerCached` builds.
 *
 * Frankenbuild detection (off by default): a reference already held in
 * `resolveIn` has its narinfo fetched from this cache, and a different
 * NarHash means the cache serves another build of the reference than the one
 * the store holds; `"fail"` refuses the referrer with `FrankenbuildDetected`
 * before anything of it is downloaded or stored; `"warn"` logs it, reports a
 * `FrankenbuildWarning` event, remembers it (`frankenbuilds`) and records the
 * local node.
 *
 * `put` and `list` fail with `NotSupported`. Errors of `get` are
 * `BinaryCacheError`s wrapped in a `StorageError` (`fetch` returns them
 * unwrapped).
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as Keys from "@nixfx/nix-compat/Keys"
import type * as NarInfo from "@nixfx/nix-compat/NarInfo"
import * as Nixbase32 from "@nixfx/nix-compat/Nixbase32"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as NarIndex from "@nixfx/pathinfo/NarIndex"
import type * as PathInfo from "@nixfx/pathinfo/PathInfo"
import * as PathInfoCombinators from "@nixfx/pathinfo/PathInfoCombinators"
import { NotSupported, type PathInfoServiceError, StorageError } from "@nixfx/pathinfo/PathInfoError"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { type BinaryCacheError, type FrankenbuildDetected, isBinaryCacheError } from "./BinaryCacheError.js"
import * as FileHttpClient from "./FileHttpClient.js"
import { type CacheInfo, makeFetcher } from "./internal/fetcher.js"

export {
  /**
   * What `nix-cache-info` says: `storeDir`, `priority` (lower is preferred,
   * as in Nix), `wantMassQuery`, and every field as read.
   *
   * @since 0.1.0
   * @category models
   */
  type CacheInfo
} from "./internal/fetcher.js"

// ---------------------------------------------------------------------------
// options and events
// ---------------------------------------------------------------------------

/**
 * `off` (default): references present locally are trusted as they are;
 * `fail`: a reference the cache serves with another NarHash than the local
 * one fails the fetch with `FrankenbuildDetected`; `warn`: logs, reports and
 * remembers it, and goes on.
 *
 * @since 0.1.0
 * @category models
 */
export const FrankenbuildDetection = Schema.Literal("off", "fail", "warn")

/**
 * @since 0.1.0
 * @category models
 */
export type FrankenbuildDetection = typeof FrankenbuildDetection.Type

/**
 * One path of a planned closure fetch.
 *
 * @since 0.1.0
 * @category events
 */
export interface PlannedPath {
  /** Basename `<hash>-<name>`. */
  readonly storePath: string
  readonly narSize: number
  /** Size of the compressed file, when the narinfo says. */
  readonly fileSize: number | undefined
}

/**
 * Progress of `get`/`fetch`, for progress bars (the CLI's) and logs:
 *
 * - `ClosurePlanned`: every narinfo was read; `paths` will be downloaded
 *   (leaves first, the requested path last), `present` are references the
 *   local store already holds; `narBytes` is the sum of their NarSizes.
 * - `PathStarted` / `PathProgress` (NAR bytes so far, per chunk) /
 *   `PathFinished`: one NAR's download and import. A path whose NAR the
 *   store imported before (its `NarIndex` knows the root, and castore still
 *   holds it) only has `PathFinished`, with `reused: true`: nothing is
 *   downloaded.
 * - `FrankenbuildWarning`: detection in `warn` mode found one.
 *
 * Store paths are basenames.
 *
 * @since 0.1.0
 * @category events
 */
export type Event = Data.TaggedEnum<{
  ClosurePlanned: {
    readonly root: string
    readonly paths: ReadonlyArray<PlannedPath>
    readonly present: ReadonlyArray<string>
    readonly narBytes: number
  }
  PathStarted: { readonly storePath: string; readonly narSize: number; readonly compression: string; readonly url: string }
  PathProgress: { readonly storePath: string; readonly narBytes: number; readonly narSize: number }
  PathFinished: { readonly storePath: string; readonly narSize: number; readonly reused: boolean }
  FrankenbuildWarning: { readonly error: FrankenbuildDetected }
}>

/**
 * Constructors and matchers of `Event`.
 *
 * @since 0.1.0
 * @category events
 */
export const Event = Data.taggedEnum<Event>()

/**
 * How to read a cache.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends HttpSettings {
  /**
   * The cache: `http(s)://host/path` or `nix+http(s)://host/path` (without a
   * query: use `fromUrl` to read one).
   */
  readonly url: string
  /** Keys whose signature makes a narinfo trusted; none (default) means no signature check. */
  readonly trustedPublicKeys?: ReadonlyArray<Keys.PublicKey> | undefined
  /** Default `"off"`. */
  readonly frankenbuildDetection?: FrankenbuildDetection | undefined
  /** Requests (narinfos, NAR downloads with their import) at once. Default 8. */
  readonly concurrency?: number | undefined
  /** The store directory the cache must be for (its `nix-cache-info` `StoreDir`). Default `/nix/store`. */
  readonly storeDir?: string | undefined
  /** Receives progress events, synchronously (keep it cheap). */
  readonly onEvent?: ((event: Event) => void) | undefined
}

/** Default `concurrency`. */
export const defaultConcurrency = 8

/**
 * What a `403` on a narinfo (or `nix-cache-info`) means: `miss` (default)
 * "not here", as Nix reads it (S3 buckets answer 403 for keys that do not
 * exist, when listing is not allowed); `error`: an `AccessDenied`. `401` and
 * `407` are always `AccessDenied`, and so is a 403 on a NAR.
 *
 * @since 0.1.0
 * @category models
 */
export const ForbiddenPolicy = Schema.Literal("miss", "error")

/**
 * @since 0.1.0
 * @category models
 */
export type ForbiddenPolicy = typeof ForbiddenPolicy.Type

/** Default `retries` (five attempts, as Nix's `download-attempts`). */
const defaultRetries = 4

// ---------------------------------------------------------------------------
// the service
// ---------------------------------------------------------------------------

/**
 * A binary cache being read.
 *
 * @since 0.1.0
 * @category models
 */
export interface BinaryCacheShape {
  /** The base URL requests go to, `http(s)://host/path`. */
  readonly url: string
  /** The PathInfoService view: `get` fetches (errors wrapped in `StorageError`), `put`/`list` are `NotSupported`. */
  readonly pathInfoService: PathInfoService.PathInfoServiceShape
  /**
   * Fetches the path with this digest and its closure into the resolve store
   * and returns what that store now holds for it; none when the cache does
   * not have it. Errors as they are.
   */
  readonly fetch: (
    digest: Uint8Array
  ) => Effect.Effect<Option.Option<PathInfo.PathInfo>, BinaryCacheError | PathInfoServiceError>
  /** The narinfo of a path (by hash part, or by store path to check the name too), parsed and signature-checked. */
  readonly narInfo: (
    path: string | StorePath.StorePath
  ) => Effect.Effect<Option.Option<NarInfo.NarInfo>, BinaryCacheError>
  /** `nix-cache-info`, read once; fails when `StoreDir` is not the configured store directory. */
  readonly cacheInfo: Effect.Effect<CacheInfo, BinaryCacheError>
  /** Frankenbuilds found in `warn` mode so far, oldest first. */
  readonly frankenbuilds: Effect.Effect<ReadonlyArray<FrankenbuildDetected>>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class BinaryCache extends Context.Tag("@nixfx/pathinfo-http/BinaryCache")<BinaryCache, BinaryCacheShape>() {}

/**
 * The store a binary cache resolves references in and persists into: its
 * PathInfoService, and the castore services NARs are imported into.
 *
 * @since 0.1.0
 * @category tags
 */
export class ResolveStore extends Context.Tag("@nixfx/pathinfo-http/BinaryCache/ResolveStore")<
  ResolveStore,
  StoreComposition.Store
>() {}

// ---------------------------------------------------------------------------
// construction
// ---------------------------------------------------------------------------

const configError = (input: string, part: StoreComposition.ConfigPart, detail: string) =>
  new StoreComposition.StoreConfigError({ input, part, detail })

/**
 * The base URL (`http(s)://host/path`, no trailing slash) of a cache URL.
 *
 * @since 0.1.0
 * @category parsing
 */
export const baseUrl = (raw: string): Either.Either<string, StoreComposition.StoreConfigError> => {
  const m = /^(?:nix\+)?(https?|file):\/\//i.exec(raw)
  if (m === null) {
    return Either.left(
      configError(raw, "scheme", "a binary cache URL starts with http://, https://, nix+http://, nix+https:// or file://")
    )
  }
  let url: URL
  try {
    url = new URL(m[1].toLowerCase() + raw.slice(m[0].length - 3))
  } catch (e) {
    return Either.left(configError(raw, "url", `not a URL: ${String(e)}`))
  }
  if (url.protocol === "file:") {
    if (url.host !== "") return Either.left(configError(raw, "host", "a file:// cache URL has no host: file:///abs/dir"))
  } else if (url.host === "") {
    return Either.left(configError(raw, "host", "a binary cache URL needs a host"))
  }
  if (url.search !== "") {
    return Either.left(configError(raw, "query", "options go in Options (or use fromUrl to read them from the query)"))
  }
  if (url.hash !== "") return Either.left(configError(raw, "url", `no #fragment allowed, got ${url.hash}`))
  return Either.right(url.href.replace(/\/+$/, ""))
}

/**
 * Reads a binary cache: `resolveIn` is where references are looked up and
 * where fetched paths (and their closures) are put; NARs are imported into
 * its castore services.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options,
  resolveIn: StoreComposition.Store
): Effect.Effect<BinaryCacheShape, StoreComposition.StoreConfigError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const url = yield* baseUrl(options.url)
    const concurrency = options.concurrency ?? defaultConcurrency
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
      return yield* Effect.fail(configError(options.url, "field", `concurrency must be a positive integer, got ${concurrency}`))
    }
    const retries = options.retries ?? defaultRetries
    if (!Number.isSafeInteger(retries) || retries < 0) {
      return yield* Effect.fail(configError(options.url, "field", `retries must be a non-negative integer, got ${retries}`))
    }
    const timeout = Duration.decode(options.timeout ?? "60 seconds")
    // Requests still get spans; trace headers are not sent to the cache.
    const client = HttpClient.withTracerPropagation(yield* HttpClient.HttpClient, false)
    const onEvent = options.onEvent
    const emit = onEvent === undefined ? undefined : (e: Event) => onEvent(e)
    const frankenbuilds: Array<FrankenbuildDetected> = []
    const fetcher = yield* makeFetcher({
      url,
      http: {
        client,
        retries,
        retryDelay: Duration.decode(options.retryDelay ?? "250 millis"),
        maxRetryDelay: Duration.decode(options.maxRetryDelay ?? "60 seconds"),
        responseTimeout: Duration.decode(options.responseTimeout ?? timeout),
        idleTimeout: Duration.decode(options.idleTimeout ?? timeout),
        forbidden: options.forbidden ?? "miss"
      },
      trustedPublicKeys: options.trustedPublicKeys ?? [],
      detection: options.frankenbuildDetection ?? "off",
      concurrency,
      storeDir: options.storeDir ?? StorePath.defaultStoreDir,
      resolveIn,
      reporter: {
        closurePlanned: (root, paths, present) => {
          if (emit === undefined) return
          let narBytes = 0
          for (const p of paths) narBytes += p.narSize
          emit(Event.ClosurePlanned({ root, paths, present, narBytes }))
        },
        pathStarted: (storePath, narSize, compression, url) =>
          emit?.(Event.PathStarted({ storePath, narSize, compression, url })),
        pathProgress: (storePath, narBytes, narSize) => emit?.(Event.PathProgress({ storePath, narBytes, narSize })),
        pathFinished: (storePath, narSize, reused) => emit?.(Event.PathFinished({ storePath, narSize, reused })),
        frankenbuild: (error) => {
          frankenbuilds.push(error)
          emit?.(Event.FrankenbuildWarning({ error }))
        }
      }
    })

    const backend = `binary cache ${url}`
    const pathInfoService = PathInfoService.make({
      get: (digest) =>
        Effect.catchIf(
          fetcher.fetch(digest),
          isBinaryCacheError,
          (e) =>
            Effect.fail(
              new StorageError({ backend, operation: `get ${Nixbase32.encode(digest)}`, detail: e.message, cause: e })
            )
        ),
      put: () => Effect.fail(new NotSupported({ backend, operation: "put" })),
      list: Stream.fail(new NotSupported({ backend, operation: "list" }))
    })

    return {
      url,
      pathInfoService,
      fetch: fetcher.fetch,
      narInfo: (path) =>
        typeof path === "string" ? fetcher.narInfo(path) : fetcher.narInfo(path.hashPart, path),
      cacheInfo: fetcher.cacheInfo,
      frankenbuilds: Effect.sync(() => frankenbuilds.slice())
    } satisfies BinaryCacheShape
  })

// ---------------------------------------------------------------------------
// layers
// ---------------------------------------------------------------------------

/**
 * The `ResolveStore` made of the PathInfoService, BlobService and
 * DirectoryService in context (e.g. a `StoreComposition.layer(…)`), and the
 * `NarIndex` if there is one (without, the reader keeps one in memory).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerResolveStore: Layer.Layer<
  ResolveStore,
  never,
  PathInfoService.PathInfoService | BlobService.BlobService | DirectoryService.DirectoryService
> = Layer.effect(
  ResolveStore,
  Effect.all({
    pathInfoService: PathInfoService.PathInfoService,
    blobService: BlobService.BlobService,
    directoryService: DirectoryService.DirectoryService,
    narIndex: Effect.map(Effect.serviceOption(NarIndex.NarIndex), Option.getOrUndefined)
  })
)

/**
 * The cache alone: `PathInfoService` is the cache (every `get` fetches),
 * with `BinaryCache` for its other operations.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<
  PathInfoService.PathInfoService | BinaryCache,
  StoreComposition.StoreConfigError,
  ResolveStore | HttpClient.HttpClient
> =>
  Layer.effectContext(Effect.gen(function*() {
    const binaryCache = yield* make(options, yield* ResolveStore)
    return Context.make(BinaryCache, binaryCache).pipe(
      Context.add(PathInfoService.PathInfoService, binaryCache.pathInfoService)
    )
  }))

/**
 * The substituter shape: `cache(near: resolve store, far: this cache
 * resolving in that same store)`. `get` answers from the resolve store and
 * fetches (the closure) from the cache only what it lacks; `BlobService` and
 * `DirectoryService` are the resolve store's, where the NARs were imported.
 * `put` and `list` go to the far side (the cache) and are `NotSupported`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCached = (
  options: Options
): Layer.Layer<
  PathInfoService.PathInfoService | BlobService.BlobService | DirectoryService.DirectoryService | BinaryCache,
  StoreComposition.StoreConfigError,
  ResolveStore | HttpClient.HttpClient
> =>
  Layer.effectContext(Effect.gen(function*() {
    const near = yield* ResolveStore
    const binaryCache = yield* make(options, near)
    return Context.make(BinaryCache, binaryCache).pipe(
      Context.add(
        PathInfoService.PathInfoService,
        PathInfoCombinators.cache(near.pathInfoService, binaryCache.pathInfoService)
      ),
      Context.add(BlobService.BlobService, near.blobService),
      Context.add(DirectoryService.DirectoryService, near.directoryService)
    )
  }))

// ---------------------------------------------------------------------------
// URLs and store composition
// ---------------------------------------------------------------------------

/**
 * What a `nix+http(s)://` URL configures.
 *
 * @since 0.1.0
 * @category parsing
 */
export interface UrlOptions extends HttpSettings {
  readonly url: string
  readonly trustedPublicKeys: ReadonlyArray<Keys.PublicKey>
  readonly frankenbuildDetection: FrankenbuildDetection
  readonly concurrency: number
}

/**
 * How a cache is read over HTTP (part of `Options`, and what a URL query or
 * a composition entry can set); absent ones take the defaults below.
 *
 * @since 0.1.0
 * @category parsing
 */
export interface HttpSettings {
  /**
   * Attempts after the first of a request that failed transiently (no
   * response, connection reset or refused, a body cut short, a timeout, 408,
   * 429, 5xx except 501/505/511). Never for 401, 403, 404, 410. Default 4:
   * five attempts, as Nix's `download-attempts`.
   */
  readonly retries?: number | undefined
  /**
   * Base of the jittered exponential backoff: the wait before attempt n+1 is
   * `retryDelay · 2^(n-1+U(0,0.5))` (Nix's formula), or what `Retry-After`
   * asks when that is longer. Default 250 ms (Nix's).
   */
  readonly retryDelay?: Duration.DurationInput | undefined
  /** Longest single wait between two attempts; caps `Retry-After` too. Default 60 seconds. */
  readonly maxRetryDelay?: Duration.DurationInput | undefined
  /** Default of `responseTimeout` and `idleTimeout`. Default 60 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Longest wait for a response's headers (connecting included). Default `timeout`. */
  readonly responseTimeout?: Duration.DurationInput | undefined
  /** Longest gap between two body chunks while the importer waits for one. Default `timeout`. */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /** What a 403 on a narinfo or `nix-cache-info` means. Default `"miss"`. */
  readonly forbidden?: ForbiddenPolicy | undefined
}

/** Query parameter → `HttpSettings` field, for the durations. */
const durationParameters = {
  "retry-delay": "retryDelay",
  "max-retry-delay": "maxRetryDelay",
  "timeout": "timeout",
  "response-timeout": "responseTimeout",
  "idle-timeout": "idleTimeout"
} as const

type DurationParameter = keyof typeof durationParameters

const httpParameters = ["retries", "forbidden", ...Object.keys(durationParameters) as Array<DurationParameter>] as const

const urlParameters = ["trusted-public-keys", "frankenbuild-detection", "concurrency", ...httpParameters] as const

/** `250ms`, `1.5s`. */
const parseDurationText = (name: string, s: string, input: string, part: StoreComposition.ConfigPart) => {
  const m = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(s)
  return m === null
    ? Either.left(configError(input, part, `${name} must be a duration like 250ms or 30s, got ${JSON.stringify(s)}`))
    : Either.right(Duration.millis(Number(m[1]) * (m[2] === "s" ? 1000 : 1)))
}

/** `HttpSettings` from parameters by their query names (values as text); errors name entry fields in camelCase. */
const parseHttpSettings = (
  get: (name: (typeof httpParameters)[number]) => string | undefined,
  input: string,
  part: StoreComposition.ConfigPart
): Either.Either<HttpSettings, StoreComposition.StoreConfigError> =>
  Either.gen(function*() {
    const out: { -readonly [K in keyof HttpSettings]: HttpSettings[K] } = {}
    const retries = get("retries")
    if (retries !== undefined) {
      if (!/^\d+$/.test(retries) || !Number.isSafeInteger(Number(retries))) {
        return yield* Either.left(configError(input, part, `retries must be a non-negative integer, got ${JSON.stringify(retries)}`))
      }
      out.retries = Number(retries)
    }
    const forbidden = get("forbidden")
    if (forbidden !== undefined) {
      if (!Schema.is(ForbiddenPolicy)(forbidden)) {
        return yield* Either.left(configError(input, part, `forbidden must be miss or error, got ${JSON.stringify(forbidden)}`))
      }
      out.forbidden = forbidden
    }
    for (const [name, field] of Object.entries(durationParameters) as Array<[DurationParameter, (typeof durationParameters)[DurationParameter]]>) {
      const text = get(name)
      if (text !== undefined) out[field] = yield* parseDurationText(part === "field" ? field : name, text, input, part)
    }
    return out
  })

const parseConcurrency = (s: string, input: string, part: StoreComposition.ConfigPart) => {
  const n = Number(s)
  return /^\d+$/.test(s) && Number.isSafeInteger(n) && n >= 1
    ? Either.right(n)
    : Either.left(configError(input, part, `concurrency must be a positive integer, got ${JSON.stringify(s)}`))
}

const parseKeys = (s: string, input: string, part: StoreComposition.ConfigPart) =>
  Either.mapLeft(Keys.parsePublicKeys(s), (e) => configError(input, part, `trusted-public-keys: ${e.message}`))

/**
 * Reads `nix+http(s)://host/path?trusted-public-keys=name:key%20name:key&frankenbuild-detection=warn&concurrency=16`
 * (also `http(s)://…`). Keys are separated by spaces (`%20` or `+`). The
 * HTTP behaviour: `retries=4`, `retry-delay=250ms`, `max-retry-delay=60s`,
 * `timeout=60s`, `response-timeout=…`, `idle-timeout=…` (durations in `ms`
 * or `s`), `forbidden=miss|error` (see `Options`).
 *
 * @since 0.1.0
 * @category parsing
 */
export const fromUrl = (raw: string): Either.Either<UrlOptions, StoreComposition.StoreConfigError> =>
  Either.gen(function*() {
    const q = raw.indexOf("?")
    const url = yield* baseUrl(q < 0 ? raw : raw.slice(0, q))
    let parsed: URL
    try {
      parsed = new URL(raw.replace(/^nix\+/i, ""))
    } catch (e) {
      return yield* Either.left(configError(raw, "url", `not a URL: ${String(e)}`))
    }
    const query = yield* StoreComposition.queryParams(parsed, raw, urlParameters)
    const keys = query.get("trusted-public-keys")
    const detection = query.get("frankenbuild-detection")
    if (detection !== undefined && !Schema.is(FrankenbuildDetection)(detection)) {
      return yield* Either.left(
        configError(raw, "query", `frankenbuild-detection must be off, fail or warn, got ${JSON.stringify(detection)}`)
      )
    }
    const concurrency = query.get("concurrency")
    const http = yield* parseHttpSettings((name) => query.get(name), raw, "query")
    return {
      ...http,
      url,
      trustedPublicKeys: keys === undefined ? [] : yield* parseKeys(keys, raw, "query"),
      frankenbuildDetection: detection ?? "off",
      concurrency: concurrency === undefined ? defaultConcurrency : yield* parseConcurrency(concurrency, raw, "query")
    }
  })

/** `HttpSettings` as `Entry` fields (durations as `<ms>ms`). */
const entryHttpSettings = (settings: HttpSettings): Record<string, string | number> => {
  const out: Record<string, string | number> = {}
  if (settings.retries !== undefined) out.retries = settings.retries
  if (settings.forbidden !== undefined) out.forbidden = settings.forbidden
  for (const field of Object.values(durationParameters)) {
    const d = settings[field]
    if (d !== undefined) out[field] = `${Duration.toMillis(d)}ms`
  }
  return out
}

const StoreReference = Schema.Union(Schema.String, Schema.Record({ key: Schema.String, value: Schema.Unknown }))

/**
 * A composition document entry of type `binary-cache`:
 * `{ "type": "binary-cache", "url": "https://cache.example", "trustedPublicKeys": ["name:key"],
 * "frankenbuildDetection": "warn", "concurrency": 8, "resolveIn": "local" }`. `resolveIn` names
 * (or is, inline or as a URL) the store references resolve in; without it,
 * a private in-memory store.
 *
 * @since 0.1.0
 * @category store composition
 */
export const Entry = Schema.Struct({
  type: Schema.Literal("binary-cache"),
  url: Schema.String,
  trustedPublicKeys: Schema.optional(Schema.Union(Schema.String, Schema.Array(Schema.String))),
  frankenbuildDetection: Schema.optional(FrankenbuildDetection),
  concurrency: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive())),
  /** HTTP behaviour, as in the URL query (durations as `250ms`, `30s`). */
  retries: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.nonNegative())),
  retryDelay: Schema.optional(Schema.String),
  maxRetryDelay: Schema.optional(Schema.String),
  timeout: Schema.optional(Schema.String),
  responseTimeout: Schema.optional(Schema.String),
  idleTimeout: Schema.optional(Schema.String),
  forbidden: Schema.optional(ForbiddenPolicy),
  resolveIn: Schema.optional(StoreReference)
})

const memoryStore: Effect.Effect<StoreComposition.Store> = Effect.all({
  pathInfoService: PathInfoService.makeMemory,
  blobService: BlobService.makeMemory,
  directoryService: DirectoryService.makeMemory,
  narIndex: NarIndex.makeMemory
})

/**
 * The `binary-cache` backend for `StoreComposition`, for the URL schemes
 * `nix+http` and `nix+https`, with HTTP requests made by `client`.
 *
 * A store built from it has the cache as its PathInfoService and the
 * resolve store's castore services. For the substituter shape write a
 * document: `{"root": {"type": "cache", "near": "local", "far": "remote"},
 * "local": "sqlite:///var/lib/nixfx", "remote": {"type": "binary-cache",
 * "url": "https://cache.nixos.org", "resolveIn": "local"}}`.
 *
 * @since 0.1.0
 * @category store composition
 */
export const makeBackend = <E>(client: Layer.Layer<HttpClient.HttpClient, E>): StoreComposition.Backend => ({
  type: "binary-cache",
  schemes: ["nix+http", "nix+https", "file"],
  fromUrl: (_url, input) =>
    Either.map(fromUrl(input), (o) => ({
      ...entryHttpSettings(o),
      type: "binary-cache",
      url: o.url,
      trustedPublicKeys: o.trustedPublicKeys.map(Keys.formatPublicKey),
      frankenbuildDetection: o.frankenbuildDetection,
      concurrency: o.concurrency
    })),
  build: (entry, context) =>
    Effect.gen(function*() {
      const config = yield* StoreComposition.decodeEntry(Entry, entry, context.label)
      const keyText = typeof config.trustedPublicKeys === "string"
        ? config.trustedPublicKeys
        : (config.trustedPublicKeys ?? []).join(" ")
      const trustedPublicKeys = yield* parseKeys(keyText, context.label, "field")
      const http = yield* parseHttpSettings((name) => {
        const value = config[name === "retries" || name === "forbidden" ? name : durationParameters[name]]
        return value === undefined ? undefined : String(value)
      }, context.label, "field")
      const resolveIn = config.resolveIn === undefined
        ? yield* memoryStore
        : yield* context.resolve(config.resolveIn, "resolveIn")
      const httpClient = yield* Layer.build(client).pipe(
        Effect.map(Context.get(HttpClient.HttpClient)),
        Effect.mapError((cause) =>
          new StoreComposition.StoreOpenError({ store: context.label, detail: "cannot create an HTTP client", cause })
        )
      )
      const binaryCache = yield* make({
        ...http,
        url: config.url,
        trustedPublicKeys,
        frankenbuildDetection: config.frankenbuildDetection,
        concurrency: config.concurrency
      }, resolveIn).pipe(
        Effect.provideService(HttpClient.HttpClient, httpClient),
        Effect.mapError((e) => new StoreComposition.StoreConfigError({ input: context.label, part: e.part, detail: e.detail }))
      )
      return {
        pathInfoService: binaryCache.pathInfoService,
        blobService: resolveIn.blobService,
        directoryService: resolveIn.directoryService,
        narIndex: resolveIn.narIndex
      }
    })
})

/**
 * The `binary-cache` backend with Node's HTTP client (undici).
 *
 * @since 0.1.0
 * @category store composition
 */
export const backend: StoreComposition.Backend = makeBackend(FileHttpClient.layer(NodeHttpClient.layerUndici))

/**
 * The built-in backends plus `binary-cache` (`nix+http://`, `nix+https://`).
 *
 * @since 0.1.0
 * @category store composition
 */
export const registry: StoreComposition.Registry = StoreComposition.register(StoreComposition.defaultRegistry, backend)

/**
 * Makes `StoreComposition.layer(…)` (and anything reading
 * `StoreComposition.CurrentRegistry`) know `nix+http(s)://` URLs:
 * `StoreComposition.layer("nix+https://cache.nixos.org").pipe(Layer.provide(BinaryCache.layerRegistry))`.
 *
 * @since 0.1.0
 * @category store composition
 */
export const layerRegistry: Layer.Layer<StoreComposition.CurrentRegistry> = Layer.succeed(
  StoreComposition.CurrentRegistry,
  registry
)
