/**
 * The URL space of the binary cache server, parsed strictly: a request path
 * is one of the forms below or it is refused, so nothing but store data can
 * be named (no `..`, no percent-encoding, no empty segments, no file system
 * behind any of it).
 *
 * | path | meaning |
 * | --- | --- |
 * | `/nix-cache-info` | the cache description |
 * | `/<hash>.narinfo` | the narinfo of the store path with this 32-character nixbase32 digest |
 * | `/nar/<hash>-<narhash>.nar[.zst]` | a NAR this server renders: the store path digest and the 52-character nixbase32 sha256 of the NAR |
 * | `/nar/<name>.nar[.xz\|.bz2\|.zst\|.br]` | (uploads) a NAR file a client uploads under a name of its choosing (Nix: its file hash) |
 *
 * Anything under `/nar/` or ending in `.narinfo` that does not fit is
 * malformed (400); any other path is simply not there (404).
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as Nixbase32 from "@nixfx/nix-compat/Nixbase32"

/** A NAR file suffix a client may upload, and the compression it means. */
export const uploadSuffixes: ReadonlyArray<readonly [suffix: string, compression: UploadCompression]> = [
  [".nar", "none"],
  [".nar.xz", "xz"],
  [".nar.bz2", "bzip2"],
  [".nar.zst", "zstd"],
  [".nar.br", "br"]
]

/**
 * How an uploaded NAR file is compressed. `none` also covers gzip, which Nix
 * writes without a suffix (it is recognised by its magic bytes).
 */
export type UploadCompression = "none" | "xz" | "bzip2" | "zstd" | "br"

export type Route =
  | { readonly _tag: "CacheInfo" }
  | { readonly _tag: "NarInfo"; readonly hash: string; readonly digest: Uint8Array }
  | {
    readonly _tag: "Nar"
    readonly hash: string
    readonly digest: Uint8Array
    readonly narHash: string
    readonly narSha256: Uint8Array
    readonly zstd: boolean
  }
  | { readonly _tag: "UploadedNar"; readonly key: string; readonly compression: UploadCompression }
  | { readonly _tag: "NotFound" }
  | { readonly _tag: "Malformed"; readonly detail: string }

const HASH_LENGTH = 32
/** Longest name accepted for an uploaded NAR file (Nix uses 52 characters). */
const MAX_UPLOAD_NAME = 128

const SAFE_PATH = /^\/[A-Za-z0-9._\-/]*$/
const UPLOAD_NAME = /^[0-9a-z]+$/

const malformed = (detail: string): Route => ({ _tag: "Malformed", detail })

const decodeDigest = (s: string, bytes: number, what: string): Either.Either<Uint8Array, string> =>
  Either.mapLeft(Nixbase32.decode(s, bytes), (e) => `${what} ${JSON.stringify(s)}: ${e.message}`)

/** The path part of a request target (the query is ignored), or `undefined` when it is not origin-form. */
export const pathOf = (target: string): string | undefined => {
  if (!target.startsWith("/")) return undefined
  const q = target.indexOf("?")
  const h = target.indexOf("#")
  let end = target.length
  if (q >= 0) end = q
  if (h >= 0 && h < end) end = h
  return target.slice(0, end)
}

const show = (path: string): string => JSON.stringify(path.length > 200 ? path.slice(0, 200) + "…" : path)

/** Parses a request target into a route. */
export const parse = (target: string): Route => {
  const path = pathOf(target)
  if (path === undefined) return malformed(`the request target ${show(target)} is not an absolute path`)
  if (!SAFE_PATH.test(path)) {
    return malformed(`${show(path)} holds characters no cache path has (percent-encoding, spaces, …)`)
  }
  const segments = path.slice(1).split("/")
  for (const segment of segments) {
    if (segment === "" && segments.length > 1) return malformed(`${show(path)} has an empty path segment`)
    if (segment === "." || segment === "..") return malformed(`${show(path)} has a "${segment}" segment`)
  }
  if (path === "/nix-cache-info") return { _tag: "CacheInfo" }
  if (segments.length === 1 && segments[0].endsWith(".narinfo")) {
    const hash = segments[0].slice(0, -".narinfo".length)
    if (hash.length !== HASH_LENGTH) {
      return malformed(`a narinfo is named by a ${HASH_LENGTH}-character store path hash, got ${show(hash)}`)
    }
    return Either.match(decodeDigest(hash, 20, "store path hash"), {
      onLeft: malformed,
      onRight: (digest): Route => ({ _tag: "NarInfo", hash, digest })
    })
  }
  if (segments[0] === "nar") {
    if (segments.length !== 2) return malformed(`${show(path)}: NAR files are directly under /nar/`)
    return parseNarFile(segments[1])
  }
  return { _tag: "NotFound" }
}

const parseNarFile = (file: string): Route => {
  const served = /^([0-9a-z]{32})-([0-9a-z]{52})\.nar(\.zst)?$/.exec(file)
  if (served !== null) {
    const [, hash, narHash, zst] = served
    const digest = decodeDigest(hash, 20, "store path hash")
    if (Either.isLeft(digest)) return malformed(digest.left)
    const narSha256 = decodeDigest(narHash, 32, "NAR hash")
    if (Either.isLeft(narSha256)) return malformed(narSha256.left)
    return { _tag: "Nar", hash, digest: digest.right, narHash, narSha256: narSha256.right, zstd: zst !== undefined }
  }
  for (let i = uploadSuffixes.length - 1; i >= 0; i--) {
    const [suffix, compression] = uploadSuffixes[i]
    if (!file.endsWith(suffix)) continue
    const name = file.slice(0, -suffix.length)
    if (name.length === 0 || name.length > MAX_UPLOAD_NAME || !UPLOAD_NAME.test(name)) {
      return malformed(
        `a NAR file name is 1 to ${MAX_UPLOAD_NAME} characters of [0-9a-z] before ${suffix}, got ${JSON.stringify(name)}`
      )
    }
    return { _tag: "UploadedNar", key: "nar/" + file, compression }
  }
  return malformed(
    `${JSON.stringify(file)} is not a NAR file name (<hash>-<narhash>.nar, or <name> followed by ${
      uploadSuffixes.map(([s]) => s).join(", ")
    })`
  )
}

/** The URL (relative to the cache) of the NAR this server renders for a store path. */
export const narUrl = (hash: string, narSha256: Uint8Array, zstd: boolean): string =>
  `nar/${hash}-${Nixbase32.encode(narSha256)}.nar${zstd ? ".zst" : ""}`
