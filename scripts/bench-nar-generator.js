// Deterministic synthetic NARs for the benchmarks (castore's import bench,
// pathinfo-http's serve bench): generated chunk by chunk in fresh 64 KiB
// buffers (as a file or socket read would give them), never held whole.
// Framing is written directly; contents are copied once from a 16 MiB
// pseudo-random pool.
//
// Layout of a generated NAR (a directory):
//   /aNNNN/bN/file-NNN  small files (0 to 8 KiB; every ninth executable) and
//                       symlinks, 100 per directory, up to `smallBytes` of contents
//   /large-NNNNN        one regular file per entry of `largeSizes`

/** Size of the chunks the generator yields. */
export const CHUNK = 64 * 1024

const enc = new TextEncoder()
/** NAR wire form of strings: 64-bit little-endian length, bytes, zero padding to 8. */
const wire = (...parts) => {
  const raw = parts.map((p) => (typeof p === "string" ? enc.encode(p) : p))
  const out = new Uint8Array(raw.reduce((n, b) => n + 8 + Math.ceil(b.length / 8) * 8, 0))
  let o = 0
  for (const b of raw) {
    new DataView(out.buffer).setBigUint64(o, BigInt(b.length), true)
    out.set(b, o + 8)
    o += 8 + Math.ceil(b.length / 8) * 8
  }
  return out
}
const u64 = (n) => {
  const out = new Uint8Array(8)
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true)
  return out
}
const TOK = {
  start: wire("nix-archive-1", "(", "type"),
  directory: wire("directory"),
  close: wire(")"),
  regular: wire("regular", "contents"),
  executable: wire("regular", "executable", "", "contents"),
  symlink: wire("symlink", "target")
}
const entryTokens = (name) => wire("entry", "(", "name", name, "node", "(", "type")
const ZEROS = new Uint8Array(8)
const MiB = 1 << 20

let poolBytes
/** The 16 MiB of xorshift output file contents are cut from (made once). */
const pool = () => {
  if (poolBytes !== undefined) return poolBytes
  poolBytes = new Uint8Array(16 * MiB)
  let x = 0x9e3779b9 | 0
  const words = new Int32Array(poolBytes.buffer)
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    words[i] = x
  }
  return poolBytes
}

/**
 * A deterministic NAR (see the layout above) as an iterator of fresh 64 KiB
 * chunks. `seed` picks file sizes and the pool offsets of contents, so NARs
 * of different seeds share (almost) no file.
 */
export function* generateNar({ smallBytes = 0, largeSizes = [], seed = 7 }) {
  const bytes = pool()
  let out = new Uint8Array(CHUNK)
  let fill = 0
  const ready = []
  const put = (data) => {
    let p = 0
    while (p < data.length) {
      const n = Math.min(CHUNK - fill, data.length - p)
      out.set(n === data.length ? data : data.subarray(p, p + n), fill)
      fill += n
      p += n
      if (fill === CHUNK) {
        ready.push(out)
        out = new Uint8Array(CHUNK)
        fill = 0
      }
    }
  }
  const file = (executable, contents) => {
    put(executable ? TOK.executable : TOK.regular)
    put(u64(contents.length))
    put(contents)
    if (contents.length % 8 !== 0) put(ZEROS.subarray(0, 8 - (contents.length % 8)))
    put(TOK.close)
  }
  const fileNames = Array.from({ length: 100 }, (_, f) => entryTokens(`file-${String(f).padStart(3, "0")}`))
  let state = seed >>> 0
  const rnd = (n) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0
    return n <= 0 ? 0 : state % n
  }
  let produced = 0
  put(TOK.start)
  put(TOK.directory)
  for (let a = 0; a < 10000 && produced < smallBytes; a++) {
    put(entryTokens(`a${String(a).padStart(4, "0")}`))
    put(TOK.directory)
    for (let b = 0; b < 10 && produced < smallBytes; b++) {
      put(entryTokens(`b${b}`))
      put(TOK.directory)
      for (let f = 0; f < 100; f++) {
        put(fileNames[f])
        if (f % 25 === 24) {
          put(TOK.symlink)
          put(wire(`../b0/file-${String(f - 1).padStart(3, "0")}`))
          put(TOK.close)
        } else {
          const size = rnd(8192)
          const off = rnd(bytes.length - size)
          file(f % 9 === 0, bytes.subarray(off, off + size))
          produced += size
        }
        put(TOK.close) // entry
      }
      put(TOK.close) // directory b
      put(TOK.close) // entry b
      while (ready.length > 0) yield ready.shift()
    }
    put(TOK.close) // directory a
    put(TOK.close) // entry a
  }
  for (let i = 0; i < largeSizes.length; i++) {
    const size = largeSizes[i]
    put(entryTokens(`large-${String(i).padStart(5, "0")}`))
    put(TOK.regular)
    put(u64(size))
    // Files larger than the pool repeat it (in whole MiB steps).
    const span = Math.min(size, bytes.length)
    const off = rnd(bytes.length - span)
    for (let p = 0; p < size; p += MiB) {
      const from = off + (p % span)
      put(bytes.subarray(from, Math.min(from + MiB, off + span, from + size - p)))
      while (ready.length > 0) yield ready.shift()
    }
    if (size % 8 !== 0) put(ZEROS.subarray(0, 8 - (size % 8)))
    put(TOK.close) // file
    put(TOK.close) // entry
  }
  put(TOK.close) // root directory
  while (ready.length > 0) yield ready.shift()
  if (fill > 0) yield out.subarray(0, fill)
}
