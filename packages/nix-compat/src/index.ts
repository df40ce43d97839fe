/**
 * @nixfx/nix-compat: Nix formats — nixbase32, store paths, hashes, content
 * addresses, narinfo, signing keys and signatures, and the NAR wire format.
 *
 * @since 0.1.0
 */
export * as CAHash from "./CAHash.js"
export * as Keys from "./Keys.js"
export * as Nar from "./Nar.js"
export * as NarInfo from "./NarInfo.js"
export * as Nixbase32 from "./Nixbase32.js"
export * as NixHash from "./NixHash.js"
export * as Signature from "./Signature.js"
export * as StorePath from "./StorePath.js"
