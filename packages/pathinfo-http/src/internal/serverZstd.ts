/**
 * Streaming zstd compression for NAR responses (`Content-Encoding: zstd`
 * and `.nar.zst`), run synchronously piece by piece on the calling thread
 * with libzstd's streaming API (`zstd-napi`'s binding). Output is handed on
 * in buffers of libzstd's recommended output size, so memory stays bounded
 * by the compressor's window and one output buffer.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Channel from "effect/Channel"
import * as Data from "effect/Data"
import * as Stream from "effect/Stream"
import { loadZstdBinding } from "./native.js"

/** libzstd refused input or parameters (a bug or an out-of-memory condition, not bad data). */
export class ZstdCompressionError extends Data.TaggedError("ZstdCompressionError")<{
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `zstd compression failed: ${this.detail}`
  }
}

const describe = (e: unknown): string =>
  e !== null && typeof e === "object" && "message" in e ? String(e.message) : String(e)

/**
 * A synchronous compressor: `push` compresses a chunk and returns the output
 * buffers it filled; `finish` ends the frame and returns the rest.
 */
class ZstdCompressor {
  private readonly binding = loadZstdBinding()
  private readonly cctx = new this.binding.CCtx()
  private readonly outSize = this.binding.cStreamOutSize()
  private out: Buffer
  private filled = 0

  constructor(level: number) {
    this.cctx.setParameter(this.binding.CParameter.compressionLevel, level)
    this.out = Buffer.allocUnsafe(this.outSize)
  }

  private run(input: Uint8Array, end: boolean, into: Array<Uint8Array>): void {
    const directive = end ? this.binding.EndDirective.end : this.binding.EndDirective.continue
    let rest = input
    for (;;) {
      const [remaining, produced, consumed] = this.cctx.compressStream2(this.out.subarray(this.filled), rest, directive)
      this.filled += produced
      rest = rest.subarray(consumed)
      if (this.filled === this.out.length) {
        into.push(this.out)
        this.out = Buffer.allocUnsafe(this.outSize)
        this.filled = 0
      }
      if (rest.length === 0 && (!end || remaining === 0)) break
    }
    if (end && this.filled > 0) {
      into.push(this.out.subarray(0, this.filled))
      this.filled = 0
    }
  }

  push(input: Uint8Array): Array<Uint8Array> {
    const out: Array<Uint8Array> = []
    if (input.length > 0) this.run(input, false, out)
    return out
  }

  finish(): Array<Uint8Array> {
    const out: Array<Uint8Array> = []
    this.run(new Uint8Array(0), true, out)
    return out
  }
}

/** Compresses a byte stream into one zstd frame at `level`. */
export const compress = (level: number) =>
<E, R>(self: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, E | ZstdCompressionError, R> =>
  Stream.suspend(() => {
    let compressor: ZstdCompressor
    try {
      compressor = new ZstdCompressor(level)
    } catch (e) {
      return Stream.fail(new ZstdCompressionError({ detail: describe(e), cause: e }))
    }
    type Out = Channel.Channel<Chunk.Chunk<Uint8Array>, Chunk.Chunk<Uint8Array>, E | ZstdCompressionError, E, unknown, unknown>
    const emit = (f: () => Array<Uint8Array>, then: () => Out): Out =>
      Channel.suspend(() => {
        let produced: Array<Uint8Array>
        try {
          produced = f()
        } catch (e) {
          return Channel.fail(new ZstdCompressionError({ detail: describe(e), cause: e }))
        }
        return produced.length === 0
          ? then()
          : Channel.flatMap(Channel.write(Chunk.unsafeFromArray(produced)), then)
      })
    const read: Out = Channel.readWithCause({
      onInput: (input: Chunk.Chunk<Uint8Array>) =>
        emit(() => {
          const out: Array<Uint8Array> = []
          for (const c of input) for (const o of compressor.push(c)) out.push(o)
          return out
        }, () => read),
      onFailure: Channel.failCause,
      onDone: () => emit(() => compressor.finish(), () => Channel.void)
    })
    return Stream.pipeThroughChannelOrFail(self, read)
  })
