/**
 * @nixfx/pathinfo-http
 *
 * @since 0.1.0
 */

/** A Nix HTTP binary cache as a PathInfoService: references by content, Frankenbuild detection, store composition backend. */
export * as BinaryCache from "./BinaryCache.js"

/** The error family of reading a binary cache. */
export * as BinaryCacheError from "./BinaryCacheError.js"

/** Streaming decompression of NAR files by the narinfo `Compression:` field. */
export * as Decompression from "./Decompression.js"

/** A Nix binary cache server over any store: narinfos rendered and signed, NARs rendered from castore with ranges and zstd, optional uploads. */
export * as BinaryCacheServer from "./BinaryCacheServer.js"

/** An HttpClient that also reads `file:` URLs, for binary caches on disk (`file:///dir`). */
export * as FileHttpClient from "./FileHttpClient.js"
