/**
 * The tvix/snix castore data model.
 *
 * @since 0.1.0
 */

/** BLAKE3 digests (32 bytes), one-shot and incremental hashing. */
export * as B3Digest from "./B3Digest.js"

/** The validated strict Directory, its canonical protobuf encoding and digest. */
export * as Directory from "./Directory.js"

/** Directory, File and Symlink nodes; the named `Node` message; the JSON form. */
export * as Node from "./Node.js"

/** Names inside a Directory. */
export * as PathComponent from "./PathComponent.js"

/** Symlink targets. */
export * as SymlinkTarget from "./SymlinkTarget.js"
