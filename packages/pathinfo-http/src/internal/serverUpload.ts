/**
 * Uploads into the served store, the way Nix writes to an HTTP binary cache
 * (`nix copy --to http://…`): first `PUT nar/<name>.nar[.xz|…]`, then
 * `PUT <hash>.narinfo` whose `URL:` names that file.
 *
 * A NAR upload is decompressed and imported into castore while it streams
 * in; its castore root, NAR size and sha256 and the size and sha256 of the
 * file as sent are remembered under its URL. Nothing is visible yet: blobs
 * and directories are content-addressed and unreachable from any PathInfo.
 * The narinfo upload is checked against what its NAR produced (NarHash,
 * NarSize, Compression, and FileHash/FileSize when given) before the
 * PathInfo is put, so no store path becomes visible with content other than
 * its narinfo claims.
 *
 * @internal
 */
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as NarImport from "@nixfx/castore/NarImport"
import type * as Node from "@nixfx/castore-nodes/Node"
import * as NarInfo from "@nixfx/nix-compat/NarInfo"
import * as Nixbase32 from "@nixfx/nix-compat/Nixbase32"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import type * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import * as crypto from "node:crypto"
import * as Decompression from "../Decompression.js"
import type { UploadCompression } from "./serverPaths.js"

/**
 * An upload was refused: `status` is the HTTP status to answer with, the
 * message says what was wrong (which field, both values).
 */
export class UploadRejected extends Data.TaggedError("UploadRejected")<{
  readonly status: 400 | 404 | 409 | 413 | 500
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return this.detail
  }
}

/** What a NAR upload produced. */
export interface UploadedNar {
  readonly key: string
  readonly compression: Decompression.Compression
  readonly root: Node.Node
  readonly narSize: number
  readonly narSha256: Uint8Array
  readonly fileSize: number
  readonly fileSha256: Uint8Array
}

/** Finished NAR uploads by URL (`nar/<file>`), the oldest forgotten first beyond `capacity`. */
export class UploadedNars {
  private readonly byKey = new Map<string, UploadedNar>()

  constructor(private readonly capacity: number) {}

  get(key: string): UploadedNar | undefined {
    return this.byKey.get(key)
  }

  add(nar: UploadedNar): void {
    this.byKey.delete(nar.key)
    this.byKey.set(nar.key, nar)
    while (this.byKey.size > this.capacity) {
      const oldest = this.byKey.keys().next()
      if (oldest.done === true) break
      this.byKey.delete(oldest.value)
    }
  }
}

const sha256 = (digest: Uint8Array): string => "sha256:" + Nixbase32.encode(digest)

const GZIP_MAGIC_0 = 0x1f
const GZIP_MAGIC_1 = 0x8b

/**
 * The body decompressed as its URL suffix says; a `.nar` body starting with
 * the gzip magic is gunzipped (Nix names gzip-compressed NARs `.nar`). The
 * returned stream must be consumed within the Scope.
 */
const decompressBody = <E>(
  body: Stream.Stream<Uint8Array, E>,
  compression: UploadCompression
): Effect.Effect<
  {
    readonly compression: Decompression.Compression
    readonly nar: Stream.Stream<Uint8Array, E | Decompression.DecompressionError>
  },
  E,
  Scope.Scope
> => {
  if (compression !== "none") {
    return Effect.succeed({ compression, nar: Decompression.decompress(compression)(body) })
  }
  return Effect.map(Stream.peel(body, Sink.head<Uint8Array>()), ([first, rest]) => {
    const whole = Option.match(first, { onNone: () => rest, onSome: (c) => Stream.concat(Stream.succeed(c), rest) })
    const gzip = Option.isSome(first) && first.value.length >= 2 && first.value[0] === GZIP_MAGIC_0 &&
      first.value[1] === GZIP_MAGIC_1
    return gzip
      ? { compression: "gzip" as const, nar: Decompression.decompress("gzip")(whole) }
      : { compression: "none" as const, nar: whole }
  })
}

/**
 * Imports an uploaded NAR file (`key` = `nar/<file>`) into castore and
 * returns what it produced.
 */
export const importNar = <E extends { readonly message: string }>(
  services: { readonly blobs: BlobService.Service; readonly directories: DirectoryService.Service },
  key: string,
  compression: UploadCompression,
  body: Stream.Stream<Uint8Array, E>
): Effect.Effect<UploadedNar, UploadRejected> =>
  Effect.suspend(() => {
    const fileHash = crypto.createHash("sha256")
    let fileSize = 0
    const counted = Stream.mapChunks(body, (chunk) => {
      for (const c of chunk) {
        fileHash.update(c)
        fileSize += c.length
      }
      return chunk
    })
    return decompressBody(counted, compression).pipe(
      Effect.flatMap(({ compression: actual, nar }) =>
        Effect.map(NarImport.ingest(nar), (result): UploadedNar => ({
          key,
          compression: actual,
          root: result.root,
          narSize: result.narSize,
          narSha256: result.narSha256,
          fileSize,
          fileSha256: new Uint8Array(fileHash.digest())
        }))
      ),
      Effect.scoped,
      Effect.provideService(BlobService.BlobService, services.blobs),
      Effect.provideService(DirectoryService.DirectoryService, services.directories),
      Effect.mapError((e): UploadRejected => {
        if (e instanceof Decompression.DecompressionError) {
          return new UploadRejected({ status: 400, detail: `${key}: ${e.message}`, cause: e })
        }
        if (e instanceof NarImport.NarImportError) {
          const invalid = e.reason === "InvalidNar"
          return new UploadRejected({
            status: invalid ? 400 : 500,
            detail: `${key}: ${invalid ? "not a valid NAR" : "storing it failed"}: ${e.message}`,
            cause: e
          })
        }
        return new UploadRejected({ status: 400, detail: `${key}: reading the upload failed: ${e.message}`, cause: e })
      })
    )
  })

const conflict = (detail: string): UploadRejected => new UploadRejected({ status: 409, detail })
const bad = (detail: string): UploadRejected => new UploadRejected({ status: 400, detail })

/**
 * Checks an uploaded narinfo (for the store path hash `hash` of its URL)
 * against its NAR and builds the PathInfo to put. Reference nodes are taken
 * from the store for every reference it holds.
 */
export const acceptNarInfo = (
  pathInfos: PathInfoService.PathInfoServiceShape,
  uploads: UploadedNars,
  hash: string,
  text: string,
  storeDir: string
): Effect.Effect<PathInfo.PathInfo, UploadRejected> =>
  Effect.gen(function*() {
    const parsed = NarInfo.parse(text, { storeDir })
    if (Either.isLeft(parsed)) return yield* bad(`${hash}.narinfo: ${parsed.left.message}`)
    const narInfo = parsed.right
    const basename = StorePath.toBasename(narInfo.storePath)
    if (!basename.startsWith(hash + "-")) {
      return yield* bad(`${hash}.narinfo describes another store path, ${basename}`)
    }
    const nar = uploads.get(narInfo.url.replace(/^\.\//, ""))
    let root: Node.Node
    if (nar === undefined) {
      // A narinfo for a path the store already holds with the same NAR (Nix
      // skips uploading a NAR file the cache says it has): only signatures
      // and missing fields can change, which `put` merges.
      const stored = yield* Effect.mapError(
        pathInfos.get(narInfo.storePath.digest),
        (e) => new UploadRejected({ status: 500, detail: `looking up ${basename}: ${e.message}`, cause: e })
      )
      if (
        Option.isNone(stored) || stored.value.narSize !== narInfo.narSize ||
        sha256(stored.value.narSha256) !== sha256(narInfo.narHash.digest)
      ) {
        return yield* conflict(`${basename}: its NAR ${narInfo.url} was not uploaded (upload the NAR file first)`)
      }
      root = stored.value.node
    } else {
      const said = Decompression.parse(narInfo.compression)
      if (Either.isLeft(said) || said.right !== nar.compression) {
        return yield* bad(
          `${basename}: Compression is ${JSON.stringify(narInfo.compression)}, but ${nar.key} was uploaded as ${nar.compression}`
        )
      }
      if (narInfo.narSize !== nar.narSize) {
        return yield* bad(`${basename}: NarSize is ${narInfo.narSize}, but ${nar.key} holds a ${nar.narSize}-byte NAR`)
      }
      if (sha256(narInfo.narHash.digest) !== sha256(nar.narSha256)) {
        return yield* bad(
          `${basename}: NarHash is ${sha256(narInfo.narHash.digest)}, but the NAR in ${nar.key} hashes to ${
            sha256(nar.narSha256)
          }`
        )
      }
      if (Option.isSome(narInfo.fileSize) && narInfo.fileSize.value !== nar.fileSize) {
        return yield* bad(`${basename}: FileSize is ${narInfo.fileSize.value}, but ${nar.key} is ${nar.fileSize} bytes`)
      }
      // Nix writes a sha256 FileHash; another algorithm cannot be checked against the upload and is ignored.
      if (Option.isSome(narInfo.fileHash) && narInfo.fileHash.value.algorithm === "sha256") {
        const said = sha256(narInfo.fileHash.value.digest)
        if (said !== sha256(nar.fileSha256)) {
          return yield* bad(`${basename}: FileHash is ${said}, but ${nar.key} hashes to ${sha256(nar.fileSha256)}`)
        }
      }
      root = nar.root
    }
    const referenceNodes = new Map<string, Node.Node>()
    for (const reference of narInfo.references) {
      if (StorePath.equals(reference, narInfo.storePath)) continue
      const found = yield* Effect.mapError(
        pathInfos.get(reference.digest),
        (e) =>
          new UploadRejected({
            status: 500,
            detail: `looking up reference ${StorePath.toBasename(reference)}: ${e.message}`,
            cause: e
          })
      )
      if (Option.isSome(found) && found.value.storePath.name === reference.name) {
        referenceNodes.set(StorePath.toBasename(reference), found.value.node)
      }
    }
    const built = PathInfo.fromNarInfo(narInfo, root, referenceNodes)
    if (Either.isLeft(built)) return yield* bad(built.left.message)
    return built.right
  })
