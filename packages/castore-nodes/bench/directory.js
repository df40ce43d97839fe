// Throughput of Directory encoding + digest and of BLAKE3 hashing.
// Runs against the built package: `npx tsc -b packages/castore-nodes && node packages/castore-nodes/bench/directory.js`
import { B3Digest, Directory, Node } from "../dist/index.js"

const now = () => Number(process.hrtime.bigint()) / 1e3 // µs

/** Best mean µs/op over several rounds (robust against a busy machine). */
const measure = (f, { minRounds = 15, roundMicros = 20_000 } = {}) => {
  for (let i = 0; i < 3; i++) f()
  // calibrate: iterations per round
  let n = 1
  for (;;) {
    const t = now()
    for (let i = 0; i < n; i++) f()
    const dt = now() - t
    if (dt > roundMicros / 4 || n > 1e7) break
    n *= 2
  }
  let best = Infinity
  for (let r = 0; r < minRounds; r++) {
    const t = now()
    for (let i = 0; i < n; i++) f()
    best = Math.min(best, (now() - t) / n)
  }
  return best
}

const fmt = (x, d = 2) => x.toFixed(d).padStart(10)

// --- Directories -----------------------------------------------------------
const digest = B3Digest.hash(new Uint8Array([42]))
const entriesOf = (n) => {
  const names = Array.from({ length: n }, (_, i) => `entry-${String(i).padStart(6, "0")}${i % 7 === 0 ? "-ünï" : ""}.txt`)
  names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  return names.map((name, i) => ({
    name,
    node:
      i % 3 === 0
        ? new Node.DirectoryNode({ digest, size: i })
        : i % 3 === 1
        ? new Node.FileNode({ digest, size: i * 1000, executable: i % 2 === 0 })
        : new Node.SymlinkNode({ target: `../target/of/${name}` })
  }))
}

console.log("Directory: make = validate + canonical encode + blake3; decode = parse + validate + blake3 (canonical input kept, not re-encoded)")
console.log("entries".padStart(8), "bytes".padStart(9), "make µs".padStart(10), "entries/s".padStart(12), "decode µs".padStart(10), "MB/s dec".padStart(10))
for (const n of [0, 1, 10, 100, 1000, 10000]) {
  const entries = entriesOf(n)
  const dir = Directory.make(entries)
  if (dir._tag !== "Right") throw new Error(dir.left.message)
  const bytes = Directory.encode(dir.right)
  const make = measure(() => Directory.make(entries))
  const decode = measure(() => Directory.decode(bytes))
  console.log(
    String(n).padStart(8),
    String(bytes.length).padStart(9),
    fmt(make),
    fmt(n === 0 ? 0 : (n / make) * 1e6, 0).padStart(12),
    fmt(decode),
    fmt(bytes.length / decode, 1)
  )
}

// --- BLAKE3 ----------------------------------------------------------------
console.log("\nBLAKE3 via B3Digest")
const kib = new Uint8Array(1024).fill(7)
const tiny = new Uint8Array(16).fill(7)
for (const [label, buf] of [["16 B", tiny], ["1 KiB", kib]]) {
  const oneShot = measure(() => B3Digest.hash(buf))
  const incremental = measure(() => {
    const h = B3Digest.hasher()
    h.update(buf)
    h.digest()
  })
  console.log(`${label.padEnd(6)} hash():   ${fmt(oneShot)} µs/op ${fmt(buf.length / oneShot, 1)} MB/s`)
  console.log(`${label.padEnd(6)} hasher(): ${fmt(incremental)} µs/op ${fmt(buf.length / incremental, 1)} MB/s`)
}

const big = new Uint8Array(64 * 1024 * 1024)
for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff
const bigOpts = { minRounds: 5, roundMicros: 1 }
const bigOne = measure(() => B3Digest.hash(big), bigOpts)
console.log(`64 MiB hash():                 ${fmt(bigOne / 1000)} ms ${fmt(big.length / bigOne / 1000, 2)} GB/s`)
for (const chunk of [64 * 1024, 1024 * 1024]) {
  const t = measure(() => {
    const h = B3Digest.hasher()
    for (let off = 0; off < big.length; off += chunk) h.update(big.subarray(off, off + chunk))
    h.digest()
  }, bigOpts)
  console.log(`64 MiB hasher() ${String(chunk / 1024).padStart(5)} KiB chunks: ${fmt(t / 1000)} ms ${fmt(big.length / t / 1000, 2)} GB/s`)
}
