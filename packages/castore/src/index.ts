/**
 * @since 0.1.0
 */
export * as BlobService from "./BlobService.js"

/**
 * @since 0.1.0
 */
export * as CastoreError from "./CastoreError.js"

/**
 * @since 0.1.0
 */
export * as DirectoryService from "./DirectoryService.js"

/**
 * @since 0.1.0
 */
export * as FilesystemBlobService from "./FilesystemBlobService.js"

/**
 * @since 0.1.0
 */
export * as NarImport from "./NarImport.js"

/**
 * @since 0.1.0
 */
export * as NarRender from "./NarRender.js"

/**
 * @since 0.1.0
 */
export * as SqlDirectoryService from "./SqlDirectoryService.js"
