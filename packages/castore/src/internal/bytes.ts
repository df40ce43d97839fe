/**
 * Small byte helpers on the hot paths of the blob stores.
 *
 * @internal
 */

/** A Node Buffer view over the same memory (no copy). */
export const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)

/** One array holding the chunks in order; the sole chunk itself when there is exactly one. */
export const concatChunks = (chunks: ReadonlyArray<Uint8Array>, total?: number): Uint8Array => {
  if (chunks.length === 1) return chunks[0]
  return copyChunks(chunks, total)
}

/** A fresh array holding the chunks in order, never sharing memory with them. */
export const copyChunks = (chunks: ReadonlyArray<Uint8Array>, total?: number): Uint8Array => {
  let size = total
  if (size === undefined) {
    size = 0
    for (const chunk of chunks) size += chunk.length
  }
  const out = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}
