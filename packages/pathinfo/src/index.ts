/**
 * @nixfx/pathinfo
 *
 * @since 0.1.0
 */

/** The strict PathInfo: root node, references by content, NAR hash and size, signatures, deriver, CA. */
export * as PathInfo from "./PathInfo.js"

/** The error family of PathInfoService. */
export * as PathInfoError from "./PathInfoError.js"

/** The PathInfoService tag, its shape and the in-memory layer. */
export * as PathInfoService from "./PathInfoService.js"

/** PathInfoService over @effect/sql (SQLite, PostgreSQL). */
export * as SqlPathInfoService from "./SqlPathInfoService.js"

/** NAR sha256 → castore root of imported NARs, so no NAR is fetched twice; the in-memory index. */
export * as NarIndex from "./NarIndex.js"

/** The NarIndex of a SQL store, beside its PathInfos. */
export * as SqlNarIndex from "./SqlNarIndex.js"

/** Combinators: read-through cache (near/far), LRU, signing. */
export * as PathInfoCombinators from "./PathInfoCombinators.js"

/** Stores from URLs and composition documents, with a registry other packages extend. */
export * as StoreComposition from "./StoreComposition.js"

/** Copying store paths with their closures between stores, content first, leaves first. */
export * as StoreCopy from "./StoreCopy.js"

/** Checking a whole store: every PathInfo's directories, blobs, NAR hash and references. */
export * as StoreVerify from "./StoreVerify.js"
