/**
 * Fetching a store path and its closure from a binary cache.
 *
 * `fetch(digest)` runs in three phases:
 *
 * 1. plan: fetch the path's narinfo, then walk its references: each one is
 *    looked up in the store references resolve in (present → its node will be
 *    recorded; with Frankenbuild detection its narinfo is fetched from the
 *    cache and the NarHashes compared), or its narinfo is fetched from the
 *    cache and walked in turn. Every narinfo is parsed and its signatures
 *    checked. Nothing is downloaded or stored yet, so a Frankenbuild, an
 *    untrusted narinfo or a missing reference fails before anything persists.
 * 2. order: the paths to fetch, leaves first (a cycle in the cache's
 *    narinfos is an error).
 * 3. ingest: every NAR is downloaded, decompressed and imported into castore
 *    (at most `concurrency` at once), its size and hash checked — unless the
 *    store's NarIndex knows the root that NAR became and castore still holds
 *    it (`narReuse.ts`): then nothing is downloaded; a path's
 *    PathInfo is put into the store only after every reference's PathInfo
 *    is, so the store never holds a path without its closure.
 *
 * @internal
 */
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as NarImport from "@nixfx/castore/NarImport"
import type * as Node from "@nixfx/castore-nodes/Node"
import type * as Keys from "@nixfx/nix-compat/Keys"
import * as NarInfo from "@nixfx/nix-compat/NarInfo"
import * as Nixbase32 from "@nixfx/nix-compat/Nixbase32"
import * as NixHash from "@nixfx/nix-compat/NixHash"
import * as Signature from "@nixfx/nix-compat/Signature"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as NarIndex from "@nixfx/pathinfo/NarIndex"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import type { PathInfoServiceError } from "@nixfx/pathinfo/PathInfoError"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import type * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import {
  type BinaryCacheError,
  CacheInfoError,
  FileHashMismatch,
  FileSizeMismatch,
  FrankenbuildDetected,
  InvalidNarInfo,
  MissingReference,
  NarDecompressionError,
  NarHashMismatch,
  NarIngestError,
  NarSizeMismatch,
  ReferenceCycle,
  UntrustedNarInfo
} from "../BinaryCacheError.js"
import * as Decompression from "../Decompression.js"
import { download, getSmall, type HttpOptions } from "./http.js"
import { makeNarReuse } from "./narReuse.js"

export type FrankenbuildDetection = "off" | "fail" | "warn"

/** What the fetcher reports while it works (the public `Event`, built by the caller). */
export interface Reporter {
  readonly closurePlanned: (
    root: string,
    fetch: ReadonlyArray<{ readonly storePath: string; readonly narSize: number; readonly fileSize: number | undefined }>,
    present: ReadonlyArray<string>
  ) => void
  readonly pathStarted: (storePath: string, narSize: number, compression: string, url: string) => void
  readonly pathProgress: (storePath: string, narBytes: number, narSize: number) => void
  /** `reused`: the NAR was not downloaded, its root was already in castore (the NarIndex knew it). */
  readonly pathFinished: (storePath: string, narSize: number, reused: boolean) => void
  readonly frankenbuild: (error: FrankenbuildDetected) => void
}

export interface CacheInfo {
  readonly storeDir: Option.Option<string>
  readonly priority: Option.Option<number>
  readonly wantMassQuery: Option.Option<boolean>
  readonly fields: ReadonlyMap<string, string>
}

export interface FetcherOptions {
  /** The cache's base URL, `http(s)://host/path` without a trailing slash. */
  readonly url: string
  readonly trustedPublicKeys: ReadonlyArray<Keys.PublicKey>
  readonly detection: FrankenbuildDetection
  readonly concurrency: number
  readonly storeDir: string
  /** The HTTP client and its retry, time limit and 403 policies. */
  readonly http: HttpOptions
  readonly resolveIn: StoreComposition.Store
  readonly reporter: Reporter
}

/** Largest narinfo or nix-cache-info body read (real ones are well under 10 KiB). */
const MAX_METADATA_BYTES = 1024 * 1024

const utf8 = new TextDecoder("utf-8", { fatal: false })

const sha256String = (digest: Uint8Array): string => "sha256:" + Nixbase32.encode(digest)

/** Parses `nix-cache-info`: `Key: value` lines. */
export const parseCacheInfo = (text: string, url: string): Either.Either<CacheInfo, CacheInfoError> => {
  const fields = new Map<string, string>()
  const lines = text.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, "")
    if (line.trim() === "") continue
    const colon = line.indexOf(":")
    if (colon <= 0) {
      return Either.left(
        new CacheInfoError({ url, reason: "Invalid", detail: `line ${i + 1}: expected "Key: value", got ${JSON.stringify(line)}` })
      )
    }
    fields.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim())
  }
  const priorityText = fields.get("Priority")
  let priority = Option.none<number>()
  if (priorityText !== undefined) {
    const n = Number(priorityText)
    if (!/^-?\d+$/.test(priorityText) || !Number.isSafeInteger(n)) {
      return Either.left(
        new CacheInfoError({ url, reason: "Invalid", detail: `Priority must be an integer, got ${JSON.stringify(priorityText)}` })
      )
    }
    priority = Option.some(n)
  }
  const massQuery = fields.get("WantMassQuery")
  return Either.right({
    storeDir: Option.fromNullable(fields.get("StoreDir")),
    priority,
    wantMassQuery: massQuery === undefined ? Option.none() : Option.some(massQuery === "1" || massQuery === "true"),
    fields
  })
}

/** A narinfo URL field, relative to the cache (as Nix writes it) or absolute. */
const resolveNarUrl = (base: string, url: string): string =>
  /^https?:\/\//i.test(url) ? url : base + "/" + url.replace(/^\/+/, "")

interface Planned {
  readonly narInfo: NarInfo.NarInfo
  readonly basename: string
  readonly compression: Decompression.Compression
  readonly url: string
}

export interface Fetcher {
  readonly cacheInfo: Effect.Effect<CacheInfo, BinaryCacheError>
  readonly narInfo: (
    hashPart: string,
    expected?: StorePath.StorePath
  ) => Effect.Effect<Option.Option<NarInfo.NarInfo>, BinaryCacheError>
  readonly fetch: (digest: Uint8Array) => Effect.Effect<Option.Option<PathInfo.PathInfo>, BinaryCacheError | PathInfoServiceError>
}

export const makeFetcher = (options: FetcherOptions): Effect.Effect<Fetcher> =>
  Effect.gen(function*() {
    const { reporter, resolveIn, url: base } = options
    const http = options.http
    const permits = yield* Effect.makeSemaphore(options.concurrency)
    const keyNames = options.trustedPublicKeys.map((k) => k.name)
    // A store without its own index still gets one for this reader's lifetime.
    const reuse = makeNarReuse(resolveIn, resolveIn.narIndex ?? (yield* NarIndex.makeMemory))

    // -- nix-cache-info, read once (a failure is not remembered) -------------
    const cacheInfoUrl = base + "/nix-cache-info"
    let knownInfo: CacheInfo | undefined
    const infoLock = yield* Effect.makeSemaphore(1)
    const cacheInfo: Effect.Effect<CacheInfo, BinaryCacheError> = Effect.suspend(() =>
      knownInfo !== undefined ? Effect.succeed(knownInfo) : infoLock.withPermits(1)(Effect.suspend(() => {
        if (knownInfo !== undefined) return Effect.succeed(knownInfo)
        return getSmall(http, cacheInfoUrl, MAX_METADATA_BYTES).pipe(
          Effect.flatMap(Option.match({
            onNone: () =>
              Effect.fail(
                new CacheInfoError({
                  url: cacheInfoUrl,
                  reason: "Missing",
                  detail: "no nix-cache-info: this does not look like a binary cache"
                })
              ),
            onSome: (bytes) => parseCacheInfo(utf8.decode(bytes), cacheInfoUrl)
          })),
          Effect.flatMap((info) =>
            Option.isSome(info.storeDir) && info.storeDir.value !== options.storeDir
              ? Effect.fail(
                new CacheInfoError({
                  url: cacheInfoUrl,
                  reason: "StoreDirMismatch",
                  detail: `the cache is for store directory ${info.storeDir.value}, not ${options.storeDir}`
                })
              )
              : Effect.succeed(info)
          ),
          Effect.tap((info) => Effect.sync(() => (knownInfo = info)))
        )
      }))
    )

    // -- narinfos ------------------------------------------------------------
    const narInfo = (
      hashPart: string,
      expected?: StorePath.StorePath
    ): Effect.Effect<Option.Option<NarInfo.NarInfo>, BinaryCacheError> => {
      const url = `${base}/${hashPart}.narinfo`
      const what = expected === undefined ? hashPart : StorePath.toBasename(expected)
      return Effect.zipRight(
        cacheInfo,
        permits.withPermits(1)(getSmall(http, url, MAX_METADATA_BYTES)).pipe(
          Effect.flatMap(Option.match({
            onNone: () => Effect.succeedNone,
            onSome: (bytes) =>
              Effect.suspend((): Effect.Effect<Option.Option<NarInfo.NarInfo>, BinaryCacheError> => {
                const parsed = NarInfo.parse(utf8.decode(bytes), { storeDir: options.storeDir })
                if (Either.isLeft(parsed)) {
                  return Effect.fail(
                    new InvalidNarInfo({ url, storePath: what, reason: "Parse", detail: parsed.left.message })
                  )
                }
                const ni = parsed.right
                const got = StorePath.toBasename(ni.storePath)
                if (
                  got.slice(0, StorePath.hashPartLength) !== hashPart ||
                  (expected !== undefined && ni.storePath.name !== expected.name)
                ) {
                  return Effect.fail(
                    new InvalidNarInfo({
                      url,
                      storePath: what,
                      reason: "WrongStorePath",
                      detail: `asked for ${what}, the narinfo describes ${got}`
                    })
                  )
                }
                if (
                  options.trustedPublicKeys.length > 0 &&
                  Option.isNone(Signature.verify(ni, options.trustedPublicKeys, { storeDir: options.storeDir }))
                ) {
                  return Effect.fail(
                    new UntrustedNarInfo({
                      url,
                      storePath: StorePath.toAbsolutePath(ni.storePath, options.storeDir),
                      keysTried: keyNames,
                      signedBy: ni.signatures.map((s) => s.keyName)
                    })
                  )
                }
                return Effect.succeed(Option.some(ni))
              })
          }))
        )
      ).pipe(
        Effect.withSpan("BinaryCache.narInfo", { attributes: { "nix.store_path": what, "http.url": url } }),
        Effect.annotateLogs({ storePath: what })
      )
    }

    const plan = (ni: NarInfo.NarInfo): Either.Either<Planned, InvalidNarInfo> => {
      const basename = StorePath.toBasename(ni.storePath)
      const url = resolveNarUrl(base, ni.url)
      return Either.map(
        Either.mapLeft(Decompression.parse(ni.compression), (e) =>
          new InvalidNarInfo({
            url: `${base}/${ni.storePath.hashPart}.narinfo`,
            storePath: basename,
            reason: "UnsupportedCompression",
            detail: e.message
          })),
        (compression) => ({ narInfo: ni, basename, compression, url })
      )
    }

    // -- phase 1: plan ---------------------------------------------------------
    interface Plan {
      readonly root: Planned
      readonly fetch: Map<string, Planned>
      readonly present: Map<string, PathInfo.PathInfo>
    }

    const discover = (root: NarInfo.NarInfo): Effect.Effect<Plan, BinaryCacheError | PathInfoServiceError> =>
      Effect.gen(function*() {
        const rootPlanned = yield* plan(root)
        const fetch = new Map<string, Planned>([[rootPlanned.basename, rootPlanned]])
        const present = new Map<string, PathInfo.PathInfo>()
        const seen = new Set<string>([rootPlanned.basename])

        const check = (referrer: string, reference: StorePath.StorePath, local: PathInfo.PathInfo) =>
          Effect.flatMap(narInfo(reference.hashPart, reference), (remote) => {
            // A cache that does not serve the reference cannot contradict the local copy.
            if (Option.isNone(remote)) return Effect.void
            if (Buffer.from(remote.value.narHash.digest).equals(local.narSha256)) return Effect.void
            const error = new FrankenbuildDetected({
              url: base,
              referrer,
              reference: local.basename,
              localNarHash: sha256String(local.narSha256),
              cacheNarHash: NixHash.toNixbase32String(remote.value.narHash)
            })
            if (options.detection === "fail") return Effect.fail(error)
            return Effect.zipRight(
              Effect.sync(() => reporter.frankenbuild(error)),
              Effect.logWarning(error.message)
            )
          })

        const visit = (p: Planned): Effect.Effect<void, BinaryCacheError | PathInfoServiceError> =>
          Effect.forEach(
            p.narInfo.references,
            (reference) => {
              const b = StorePath.toBasename(reference)
              if (seen.has(b)) return Effect.void
              seen.add(b)
              return Effect.flatMap(PathInfoService.getStorePath(resolveIn.pathInfoService, reference), (local) => {
                if (Option.isSome(local)) {
                  present.set(b, local.value)
                  return options.detection === "off" ? Effect.void : check(p.basename, reference, local.value)
                }
                return narInfo(reference.hashPart, reference).pipe(
                  Effect.flatMap((found): Effect.Effect<Planned, BinaryCacheError> =>
                    Option.isNone(found)
                      ? Effect.fail(new MissingReference({ url: base, referrer: p.basename, reference: b }))
                      : plan(found.value)
                  ),
                  Effect.flatMap((q) => {
                    fetch.set(b, q)
                    return visit(q)
                  })
                )
              })
            },
            { concurrency: "unbounded", discard: true }
          )

        yield* visit(rootPlanned)
        yield* Effect.annotateCurrentSpan({ "nix.paths_to_fetch": fetch.size, "nix.paths_present": present.size })
        return { root: rootPlanned, fetch, present }
      }).pipe(
        Effect.withSpan("BinaryCache.plan", { attributes: { "nix.store_path": StorePath.toBasename(root.storePath) } }),
        Effect.annotateLogs({ storePath: StorePath.toBasename(root.storePath) })
      )

    // -- phase 2: order --------------------------------------------------------
    /** Paths to fetch, each after its references; a cycle is an error. */
    const order = (p: Plan): Either.Either<Array<Planned>, ReferenceCycle> => {
      const out: Array<Planned> = []
      const state = new Map<string, 1 | 2>() // 1: on the path, 2: done
      const stack: Array<string> = []
      const walk = (q: Planned): ReferenceCycle | undefined => {
        state.set(q.basename, 1)
        stack.push(q.basename)
        for (const r of q.narInfo.references) {
          const b = StorePath.toBasename(r)
          if (b === q.basename) continue
          const next = p.fetch.get(b)
          if (next === undefined) continue
          const s = state.get(b)
          if (s === 2) continue
          if (s === 1) return new ReferenceCycle({ url: base, cycle: [...stack.slice(stack.indexOf(b)), b] })
          const e = walk(next)
          if (e !== undefined) return e
        }
        stack.pop()
        state.set(q.basename, 2)
        out.push(q)
        return undefined
      }
      for (const q of p.fetch.values()) {
        if (state.has(q.basename)) continue
        const e = walk(q)
        if (e !== undefined) return Either.left(e)
      }
      return Either.right(out)
    }

    // -- phase 3: ingest -------------------------------------------------------
    const ingestNar = (p: Planned): Effect.Effect<Node.Node, BinaryCacheError> =>
      Effect.suspend(() => {
        const { narInfo: ni, basename, url } = p
        const expected = ni.narSize
        reporter.pathStarted(basename, expected, p.compression, url)
        let received = 0
        // Uncompressed, the file is the NAR: a FileSize/FileHash equal to the NarSize/NarHash is left to those checks.
        const fileIsNar = p.compression === "none"
        const fileSize = Option.getOrUndefined(
          Option.filter(ni.fileSize, (size) => !(fileIsNar && size === expected))
        )
        const fileHash = Option.getOrUndefined(ni.fileHash)
        const hashFile = fileHash !== undefined && !(fileIsNar && NixHash.equals(fileHash, ni.narHash))
        const file = download(http, url, hashFile ? fileHash.algorithm : undefined)
        // Checked once the decoder has read the whole file, before the NarSize check and the importer's end.
        const checkFile = Effect.suspend((): Effect.Effect<void, FileSizeMismatch | FileHashMismatch> => {
          const actual = file.received()
          if (fileSize !== undefined && actual !== fileSize) {
            return Effect.fail(new FileSizeMismatch({ url, storePath: basename, expected: fileSize, actual, atLeast: false }))
          }
          const digest = file.digest()
          if (hashFile && Option.isSome(digest) && !Buffer.from(digest.value).equals(fileHash.digest)) {
            return Effect.fail(
              new FileHashMismatch({
                url,
                storePath: basename,
                expected: NixHash.toNixbase32String(fileHash),
                actual: NixHash.toNixbase32String(NixHash.unsafeMake(fileHash.algorithm, digest.value))
              })
            )
          }
          return Effect.void
        })
        const nar = file.body.pipe(
          Stream.withSpan("BinaryCache.downloadNar", {
            attributes: { "nix.store_path": basename, "http.url": url, "nix.file_size": fileSize ?? -1 }
          }),
          Stream.mapChunksEffect((chunk) =>
            fileSize !== undefined && file.received() > fileSize
              ? Effect.fail(
                new FileSizeMismatch({ url, storePath: basename, expected: fileSize, actual: file.received(), atLeast: true })
              )
              : Effect.succeed(chunk)
          ),
          Decompression.decompress(p.compression),
          Stream.mapError((e) =>
            e._tag === "DecompressionError"
              ? new NarDecompressionError({
                url,
                storePath: basename,
                compression: e.compression,
                detail: `${e.detail} (after ${e.offset} compressed bytes)`,
                cause: e
              })
              : e
          ),
          Stream.mapChunksEffect((chunk) => {
            for (const c of chunk) received += c.length
            if (received > expected) {
              return Effect.fail(
                new NarSizeMismatch({ url, storePath: basename, expected, actual: received, atLeast: true })
              )
            }
            reporter.pathProgress(basename, received, expected)
            return Effect.succeed(chunk)
          }),
          Stream.concat(Stream.execute(checkFile)),
          // Checked before the importer finishes, so a short NAR stores no directory.
          Stream.concat(Stream.execute(Effect.suspend(() =>
            received === expected
              ? Effect.void
              : Effect.fail(new NarSizeMismatch({ url, storePath: basename, expected, actual: received, atLeast: false }))
          )))
        )
        return NarImport.ingest(nar).pipe(
          Effect.provideService(BlobService.BlobService, resolveIn.blobService),
          Effect.provideService(DirectoryService.DirectoryService, resolveIn.directoryService),
          Effect.catchTag("NarImportError", (e) =>
            Effect.fail(
              new NarIngestError({ url, storePath: basename, reason: e.reason, path: e.path, detail: e.description, cause: e })
            )),
          Effect.flatMap((result) => {
            if (!Buffer.from(result.narSha256).equals(ni.narHash.digest)) {
              return Effect.fail(
                new NarHashMismatch({
                  url,
                  storePath: basename,
                  expected: NixHash.toNixbase32String(ni.narHash),
                  actual: sha256String(result.narSha256)
                })
              )
            }
            return Effect.succeed(result.root)
          }),
          Effect.withSpan("BinaryCache.importNar", {
            attributes: {
              "nix.store_path": basename,
              "http.url": url,
              "nix.compression": p.compression,
              "nix.nar_size": expected,
              "nix.file_size": Option.getOrElse(ni.fileSize, () => -1)
            }
          }),
          Effect.annotateLogs({ storePath: basename })
        )
      })

    const ingest = (p: Plan, ordered: ReadonlyArray<Planned>) =>
      Effect.gen(function*() {
        const done = new Map<string, Deferred.Deferred<PathInfo.PathInfo, never>>()
        for (const q of ordered) done.set(q.basename, yield* Deferred.make<PathInfo.PathInfo>())
        const one = (q: Planned) =>
          Effect.gen(function*() {
            const { node, reused } = yield* reuse.once(q.narInfo, permits.withPermits(1)(ingestNar(q)))
            reporter.pathFinished(q.basename, q.narInfo.narSize, reused)
            const referenceNodes = new Map<string, Node.Node>()
            for (const r of q.narInfo.references) {
              const b = StorePath.toBasename(r)
              if (b === q.basename) continue
              const local = p.present.get(b)
              if (local !== undefined) {
                referenceNodes.set(b, local.node)
                continue
              }
              const stored = yield* Deferred.await(done.get(b)!)
              referenceNodes.set(b, stored.node)
            }
            const pathInfo = yield* Either.mapLeft(
              PathInfo.fromNarInfo(q.narInfo, node, referenceNodes),
              (e) =>
                new InvalidNarInfo({
                  url: `${base}/${q.narInfo.storePath.hashPart}.narinfo`,
                  storePath: q.basename,
                  reason: "InvalidPathInfo",
                  detail: e.message
                })
            )
            const stored = yield* resolveIn.pathInfoService.put(pathInfo).pipe(
              Effect.withSpan("BinaryCache.put", { attributes: { "nix.store_path": q.basename } })
            )
            yield* Deferred.succeed(done.get(q.basename)!, stored)
            return stored
          })
        yield* Effect.forEach(ordered, one, { concurrency: "unbounded", discard: true })
        return yield* Deferred.await(done.get(p.root.basename)!)
      })

    const fetch = (digest: Uint8Array) =>
      Effect.gen(function*() {
        yield* PathInfoService.checkDigest(digest)
        const found = yield* narInfo(Nixbase32.encode(digest))
        if (Option.isNone(found)) return Option.none<PathInfo.PathInfo>()
        const p = yield* discover(found.value)
        const ordered = yield* order(p)
        reporter.closurePlanned(
          p.root.basename,
          ordered.map((q) => ({
            storePath: q.basename,
            narSize: q.narInfo.narSize,
            fileSize: Option.getOrUndefined(q.narInfo.fileSize)
          })),
          Array.from(p.present.keys())
        )
        return Option.some(yield* ingest(p, ordered))
      }).pipe(Effect.withSpan("BinaryCache.fetch", { attributes: { "nix.store_path_hash": Nixbase32.encode(digest) } }))

    return { cacheInfo, narInfo, fetch } satisfies Fetcher
  })
