/**
 * Streaming decompression of NAR files as binary caches store them, by the
 * narinfo `Compression:` field.
 *
 * | compression | decoder |
 * | --- | --- |
 * | `none` (and the empty string) | bytes passed through |
 * | `xz`, `lzma` | liblzma (`lzma-native`, decoding on the libuv thread pool) |
 * | `zstd` | libzstd (`zstd-napi`), called synchronously piece by piece |
 * | `gzip` | zlib (`node:zlib`, also concatenated members) |
 * | `br` | brotli (`node:zlib`) |
 * | `bzip2` | a bzip2 decoder in TypeScript (`internal/bzip2.ts`) |
 *
 * Every decoder is incremental: memory stays bounded by a few buffers, and a
 * consumer that stops pulling (for instance because more bytes arrived than
 * the narinfo's NarSize) stops the decoder too. Truncated or corrupt input
 * fails with a {@link DecompressionError}.
 *
 * Nix can also write `lzip`, `lz4`, `compress` (and a few more through
 * libarchive); no cache in practice serves them, and {@link parse} refuses
 * them with {@link UnsupportedCompression}.
 *
 * @since 0.1.0
 */
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type { Transform } from "node:stream"
import * as zlib from "node:zlib"
import { Bzip2Decoder } from "./internal/bzip2.js"
import { loadLzma, loadZstdBinding } from "./internal/native.js"

/**
 * The compressions this module decodes.
 *
 * @since 0.1.0
 * @category models
 */
export const Compression = Schema.Literal("none", "xz", "lzma", "bzip2", "zstd", "gzip", "br")

/**
 * @since 0.1.0
 * @category models
 */
export type Compression = typeof Compression.Type

/**
 * Every supported compression, `none` first.
 *
 * @since 0.1.0
 * @category models
 */
export const supported: ReadonlyArray<Compression> = Compression.literals

/**
 * A stream could not be decompressed: corrupt or truncated input, or a
 * decoder failure. `compression` names the format, `detail` what the decoder
 * said, `offset` how many compressed bytes had been fed to it.
 *
 * @since 0.1.0
 * @category errors
 */
export class DecompressionError extends Schema.TaggedError<DecompressionError>(
  "@nixfx/pathinfo-http/DecompressionError"
)("DecompressionError", {
  compression: Schema.String,
  offset: Schema.Number,
  detail: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `${this.compression} decompression failed after ${this.offset} compressed bytes: ${this.detail}`
  }
}

/**
 * A compression this module cannot decode (e.g. `lz4`).
 *
 * @since 0.1.0
 * @category errors
 */
export class UnsupportedCompression extends Schema.TaggedError<UnsupportedCompression>(
  "@nixfx/pathinfo-http/UnsupportedCompression"
)("UnsupportedCompression", {
  compression: Schema.String
}) {
  override get message(): string {
    return `unsupported compression ${JSON.stringify(this.compression)}; supported: ${supported.join(", ")}`
  }
}

/**
 * Reads a narinfo `Compression:` value. Nix writes lower case; the empty
 * string means `none`, as in Nix.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (s: string): Either.Either<Compression, UnsupportedCompression> => {
  const c = s === "" ? "none" : s
  return (supported as ReadonlyArray<string>).includes(c)
    ? Either.right(c as Compression)
    : Either.left(new UnsupportedCompression({ compression: s }))
}

// ---------------------------------------------------------------------------
// synchronous decoders, run piece by piece in a Channel
// ---------------------------------------------------------------------------

/**
 * An incremental decoder that runs on the calling thread. `feed` hands it the
 * next compressed chunk; `next` returns the next piece of output, or
 * `undefined` when it needs more input; `end` says the input is over (it
 * throws when the input stopped in the middle of the data), after which
 * `next` returns what is left.
 */
interface SyncDecoder {
  readonly feed: (input: Uint8Array) => void
  readonly next: () => Uint8Array | undefined
  readonly end: () => void
}

const describe = (e: unknown): string =>
  e !== null && typeof e === "object" && "message" in e ? String(e.message) : String(e)

/**
 * Runs a {@link SyncDecoder} over a stream. Output pieces are written one at a
 * time, so the decoder only works as far as the consumer pulls.
 */
const throughSync = (compression: Compression, make: () => SyncDecoder) =>
<E, R>(self: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, E | DecompressionError, R> =>
  Stream.suspend(() => {
    const decoder = make()
    let offset = 0
    const fail = (e: unknown) =>
      Channel.fail(new DecompressionError({ compression, offset, detail: describe(e), cause: e }))

    type Out = Channel.Channel<Chunk.Chunk<Uint8Array>, Chunk.Chunk<Uint8Array>, DecompressionError | E, E, unknown, unknown>

    const drain = (then: () => Out): Out =>
      Channel.suspend(() => {
        let piece: Uint8Array | undefined
        try {
          piece = decoder.next()
        } catch (e) {
          return fail(e)
        }
        return piece === undefined ? then() : Channel.flatMap(Channel.write(Chunk.of(piece)), () => drain(then))
      })

    const feed = (input: Chunk.Chunk<Uint8Array>, i: number): Out =>
      Channel.suspend(() => {
        if (i >= input.length) return read()
        const bytes = Chunk.unsafeGet(input, i)
        try {
          decoder.feed(bytes)
        } catch (e) {
          return fail(e)
        }
        offset += bytes.length
        return drain(() => feed(input, i + 1))
      })

    const finish: Out = Channel.suspend(() => {
      try {
        decoder.end()
      } catch (e) {
        return fail(e)
      }
      return drain(() => Channel.void)
    })

    const read = (): Out =>
      Channel.readWithCause({
        onInput: (input: Chunk.Chunk<Uint8Array>) => feed(input, 0),
        onFailure: Channel.failCause,
        onDone: () => finish
      })

    return Stream.pipeThroughChannelOrFail(self, read())
  })

/** Output pieces below this size are copied out of the decoder's buffer. */
const COPY_BELOW = 16 * 1024

const zstdDecoder = (): SyncDecoder => {
  const binding = loadZstdBinding()
  const dctx = new binding.DCtx()
  const outSize = binding.dStreamOutSize()
  let input: Uint8Array = new Uint8Array(0)
  let more = false // the last call filled its output: there may be more without input
  let inFrame = false
  let ended = false
  return {
    feed: (bytes) => {
      input = bytes
    },
    next: () => {
      while (input.length > 0 || more) {
        const out = Buffer.allocUnsafe(outSize)
        const [ret, produced, consumed] = dctx.decompressStream(out, input)
        input = input.subarray(consumed)
        more = produced === out.length
        // A call without progress (flushing after a frame ended exactly at a
        // full buffer) reports the next frame's header size: not "in a frame".
        if (consumed > 0 || produced > 0) inFrame = ret !== 0
        if (produced > 0) {
          return produced < COPY_BELOW ? Uint8Array.prototype.slice.call(out, 0, produced) : out.subarray(0, produced)
        }
        if (consumed === 0) {
          if (input.length > 0) throw new Error(`zstd made no progress with ${input.length} bytes of input`)
          break
        }
      }
      if (ended && inFrame) throw new Error("the input ended in the middle of a zstd frame")
      return undefined
    },
    end: () => {
      ended = true
    }
  }
}

const bzip2Decoder = (): SyncDecoder => {
  const decoder = new Bzip2Decoder()
  return {
    feed: (bytes) => decoder.feed(bytes),
    next: () => decoder.next(),
    end: () => decoder.end()
  }
}

// ---------------------------------------------------------------------------
// Node transforms
// ---------------------------------------------------------------------------

/** zlib output buffer size: larger buffers mean fewer thread pool round trips. */
const ZLIB_CHUNK = 256 * 1024

/**
 * liblzma decodes a whole input chunk at once, buffering all its output: feed
 * it slices of at most 16 KiB, fewer bytes the more the input has expanded so
 * far, so that one slice yields about 1 MiB. (A fixed 16 KiB slice of an xz
 * bomb of zeros expands to ~100 MiB before the consumer can say stop.)
 */
const LZMA_SLICE = { max: 16 * 1024, min: 64, first: 1024, output: 1024 * 1024 }
type Slicing = typeof LZMA_SLICE

/** The next input slice: `output` bytes' worth at the ratio seen so far (doubling from `first` until output appears). */
const sliceLength = (slicing: Slicing, bytesIn: number, bytesOut: number): number =>
  bytesOut === 0
    ? Math.min(slicing.max, Math.max(slicing.first, bytesIn * 2))
    : Math.max(slicing.min, Math.min(slicing.max, Math.floor((slicing.output * bytesIn) / bytesOut)))

/**
 * Runs a Node `Transform` over a stream, one input chunk in flight at a
 * time: the next chunk is written only once the transform has consumed the
 * previous one, and output is read only as the consumer pulls. A consumer
 * that stops therefore stops the input too (Node's zlib also stops
 * inflating while its output is not read), which `pipeThroughDuplex` from
 * `@effect/platform-node` does not guarantee (it writes single-element
 * chunks without waiting for `drain`).
 */
const throughTransform = (compression: Compression, make: () => Transform, slicing?: Slicing) =>
<E, R>(self: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, E | DecompressionError, R> =>
  Stream.suspend(() => {
    const transform = make()
    let offset = 0
    let produced = 0
    const queue: Array<Uint8Array> = []
    let writing = false
    let inputDone = false
    let ended = false
    let failure: unknown = undefined
    let failed = false
    // Something happened (output, end, error, a write consumed). A flag as
    // well as a waiter, so an event between a check and the wait is not lost.
    let signaled = false
    let wake: (() => void) | undefined

    const notify = () => {
      signaled = true
      const w = wake
      wake = undefined
      w?.()
    }
    transform.on("readable", notify)
    transform.on("end", () => {
      ended = true
      notify()
    })
    transform.on("error", (e) => {
      if (!failed) {
        failed = true
        failure = e
      }
      notify()
    })

    const writeNext = () => {
      const head = queue[0]
      if (head === undefined) return
      let bytes = head
      const n = slicing === undefined ? head.length : sliceLength(slicing, offset, produced)
      if (head.length > n) {
        bytes = head.subarray(0, n)
        queue[0] = head.subarray(n)
      } else {
        queue.shift()
      }
      writing = true
      offset += bytes.length
      transform.write(bytes, () => {
        writing = false
        notify()
      })
    }

    const waitForEvent = Effect.async<void>((resume) => {
      if (signaled) {
        resume(Effect.void)
        return
      }
      wake = () => resume(Effect.void)
      return Effect.sync(() => {
        wake = undefined
      })
    })

    const error = () =>
      new DecompressionError({ compression, offset, detail: describe(failure), cause: failure })

    type Out = Channel.Channel<Chunk.Chunk<Uint8Array>, Chunk.Chunk<Uint8Array>, DecompressionError | E, E, unknown, unknown>

    const loop = (): Out =>
      Channel.suspend((): Out => {
        signaled = false
        if (failed) return Channel.fail(error())
        const out = transform.read() as Buffer | null
        if (out !== null) {
          produced += out.length
          return Channel.flatMap(Channel.write(Chunk.of(new Uint8Array(out.buffer, out.byteOffset, out.length))), loop)
        }
        if (ended) return Channel.void
        if (!writing && queue.length > 0) {
          writeNext()
          return loop()
        }
        if (!writing && !inputDone) {
          return Channel.readWithCause({
            onInput: (input: Chunk.Chunk<Uint8Array>) => {
              for (const bytes of input) queue.push(bytes)
              return loop()
            },
            onFailure: (cause) => Channel.failCause(cause),
            onDone: () => {
              inputDone = true
              transform.end()
              return loop()
            }
          })
        }
        return Channel.flatMap(Channel.fromEffect(waitForEvent), loop)
      })

    return Stream.pipeThroughChannelOrFail(
      self,
      Channel.ensuring(loop(), Effect.sync(() => transform.destroy()))
    )
  })

// ---------------------------------------------------------------------------
// the entry point
// ---------------------------------------------------------------------------

/**
 * Decompresses a byte stream.
 *
 * @since 0.1.0
 * @category decompression
 */
export const decompress = (
  compression: Compression
): <E, R>(self: Stream.Stream<Uint8Array, E, R>) => Stream.Stream<Uint8Array, E | DecompressionError, R> => {
  switch (compression) {
    case "none":
      return (self) => self
    case "zstd":
      return throughSync("zstd", zstdDecoder)
    case "bzip2":
      return throughSync("bzip2", bzip2Decoder)
    case "gzip":
      return throughTransform("gzip", () => zlib.createGunzip({ chunkSize: ZLIB_CHUNK }))
    case "br":
      return throughTransform("br", () => zlib.createBrotliDecompress({ chunkSize: ZLIB_CHUNK }))
    case "xz":
    case "lzma":
      return throughTransform(compression, () => loadLzma().createDecompressor(), LZMA_SLICE)
  }
}

/**
 * Decompresses a whole buffer (tests, small files).
 *
 * @since 0.1.0
 * @category decompression
 */
export const decompressBytes = (
  compression: Compression,
  bytes: Uint8Array
): Stream.Stream<Uint8Array, DecompressionError> => decompress(compression)(Stream.make(bytes))
