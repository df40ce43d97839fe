/**
 * Combinators over PathInfoServices. Each is a function on service values and
 * a layer that decorates the `PathInfoService` already in context:
 *
 * ```ts
 * // an LRU in front of SQLite, signing what is put
 * PathInfoCombinators.layerSigning(secretKey).pipe(
 *   Layer.provide(PathInfoCombinators.layerLru(10_000)),
 *   Layer.provide(SqlPathInfoService.layer()),
 *   Layer.provide(LibsqlClient.layer({ url: "file:/var/lib/nixfx/pathinfo.sqlite" }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import type * as Keys from "@nixfx/nix-compat/Keys"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PathInfo from "./PathInfo.js"
import * as PathInfoService from "./PathInfoService.js"

type Shape = PathInfoService.PathInfoServiceShape

// ---------------------------------------------------------------------------
// cache
// ---------------------------------------------------------------------------

/**
 * A read-through cache: `near` (small, fast, local) in front of `far`
 * (complete, slow, remote).
 *
 * - `get`: from `near`; when absent there, from `far`, and what `far` returns
 *   is put into `near` (the result of that put is returned, so a
 *   `ReferenceConflict` between what `far` serves and what `near` holds
 *   surfaces instead of being hidden). No negative caching.
 * - `put`: into `far` first (the authority), then what `far` stored into
 *   `near`; returns `near`'s result. If `near` refuses, `far` keeps the path
 *   and the error is returned.
 * - `list`: `far`'s listing — `near` holds only what was asked for or put
 *   through this cache, `far` holds everything (a `far` that cannot list,
 *   e.g. a binary cache, fails with `NotSupported`).
 *
 * @since 0.1.0
 * @category combinators
 */
export const cache = (near: Shape, far: Shape): Shape =>
  PathInfoService.make({
    get: (digest) =>
      Effect.flatMap(near.get(digest), (found) =>
        Option.isSome(found)
          ? Effect.succeed(found)
          : Effect.flatMap(far.get(digest), (remote) =>
            Option.isNone(remote) ? Effect.succeedNone : Effect.asSome(near.put(remote.value)))),
    put: (pathInfo) => Effect.flatMap(far.put(pathInfo), near.put),
    list: far.list
  })

/**
 * Decorates the PathInfoService in context (the far side) with a `near` one
 * built from `near` (its own instance: both sides have the same Tag).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCache = <E, R>(
  near: Layer.Layer<PathInfoService.PathInfoService, E, R>
): Layer.Layer<PathInfoService.PathInfoService, E, PathInfoService.PathInfoService | R> =>
  Layer.scoped(
    PathInfoService.PathInfoService,
    Effect.gen(function*() {
      const far = yield* PathInfoService.PathInfoService
      const nearContext = yield* Layer.build(near)
      return cache(Context.get(nearContext, PathInfoService.PathInfoService), far)
    })
  )

// ---------------------------------------------------------------------------
// lru
// ---------------------------------------------------------------------------

const keyOf = (digest: Uint8Array): string =>
  Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString("latin1")

/**
 * An in-memory LRU of `get` results (found PathInfos only) in front of
 * `service`, holding at most `capacity` entries.
 *
 * `put` goes to `service` and then drops the cached entry (the next `get`
 * reads what the store merged); a `get` that was already reading when a `put`
 * of the same path finished does not cache its (possibly older) result. Writes
 * that bypass this instance (another process on the same database) are not
 * seen until the entry is evicted. `list` is passed through.
 *
 * @since 0.1.0
 * @category combinators
 */
export const lru = (service: Shape, capacity: number): Shape => {
  if (!Number.isSafeInteger(capacity) || capacity < 1) {
    throw new RangeError(`lru: capacity must be a positive integer, got ${capacity}`)
  }
  const entries = new Map<string, PathInfo.PathInfo>()
  /** gets reading from `service` right now, per key; a finished put marks them stale */
  const reading = new Map<string, Set<{ stale: boolean }>>()

  const remember = (key: string, value: PathInfo.PathInfo) => {
    entries.delete(key)
    entries.set(key, value)
    if (entries.size > capacity) {
      const oldest = entries.keys().next()
      if (!oldest.done) entries.delete(oldest.value)
    }
  }

  return PathInfoService.make({
    get: (digest) =>
      Effect.suspend(() => {
        const key = keyOf(digest)
        const hit = entries.get(key)
        if (hit !== undefined) {
          entries.delete(key)
          entries.set(key, hit)
          return Effect.succeed(Option.some(hit))
        }
        const token = { stale: false }
        let set = reading.get(key)
        if (set === undefined) reading.set(key, set = new Set())
        set.add(token)
        return service.get(digest).pipe(
          Effect.tap((found) => {
            if (Option.isSome(found) && !token.stale) remember(key, found.value)
          }),
          Effect.ensuring(Effect.sync(() => {
            const s = reading.get(key)
            if (s !== undefined) {
              s.delete(token)
              if (s.size === 0) reading.delete(key)
            }
          }))
        )
      }),
    put: (pathInfo) =>
      Effect.ensuring(
        service.put(pathInfo),
        Effect.sync(() => {
          const key = keyOf(pathInfo.storePath.digest)
          entries.delete(key)
          const s = reading.get(key)
          if (s !== undefined) for (const token of s) token.stale = true
        })
      ),
    list: service.list
  })
}

/**
 * Decorates the PathInfoService in context with an LRU of `capacity` entries.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLru = (
  capacity: number
): Layer.Layer<PathInfoService.PathInfoService, never, PathInfoService.PathInfoService> =>
  Layer.effect(
    PathInfoService.PathInfoService,
    Effect.map(PathInfoService.PathInfoService, (service) => lru(service, capacity))
  )

// ---------------------------------------------------------------------------
// signing
// ---------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface SigningOptions {
  /** The store directory the fingerprint names paths in (default `/nix/store`). */
  readonly storeDir?: string | undefined
}

/**
 * Signs every PathInfo put through it with `secretKey` (the narinfo
 * fingerprint, as Nix signs), adding the signature unless it is already
 * there. `get` and `list` are passed through: what was put before, or by
 * others, is not signed after the fact.
 *
 * @since 0.1.0
 * @category combinators
 */
export const signing = (service: Shape, secretKey: Keys.SecretKey, options?: SigningOptions): Shape => {
  const storeDir = options?.storeDir ?? StorePath.defaultStoreDir
  return PathInfoService.make({
    get: service.get,
    put: (pathInfo) => Effect.suspend(() => service.put(PathInfo.sign(pathInfo, secretKey, storeDir))),
    list: service.list
  })
}

/**
 * Decorates the PathInfoService in context with signing.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSigning = (
  secretKey: Keys.SecretKey,
  options?: SigningOptions
): Layer.Layer<PathInfoService.PathInfoService, never, PathInfoService.PathInfoService> =>
  Layer.effect(
    PathInfoService.PathInfoService,
    Effect.map(PathInfoService.PathInfoService, (service) => signing(service, secretKey, options))
  )
