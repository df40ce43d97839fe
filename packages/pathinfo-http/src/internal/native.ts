/**
 * The native decoders, loaded on first use (importing the package does not
 * load any addon). `lzma-native` ships no types; the small part used here is
 * typed by hand.
 *
 * @internal
 */
import { createRequire } from "node:module"
import type { Transform } from "node:stream"
import type * as ZstdBinding from "zstd-napi/binding.js"

const require = createRequire(import.meta.url)

export interface LzmaModule {
  /** An `.xz` / `.lzma` auto-detecting decoder. */
  readonly createDecompressor: (options?: { readonly synchronous?: boolean; readonly bufsize?: number }) => Transform
}

let lzma: LzmaModule | undefined
let zstd: typeof ZstdBinding | undefined

export const loadLzma = (): LzmaModule => (lzma ??= require("lzma-native") as LzmaModule)

export const loadZstdBinding = (): typeof ZstdBinding => (zstd ??= require("zstd-napi/binding") as typeof ZstdBinding)
