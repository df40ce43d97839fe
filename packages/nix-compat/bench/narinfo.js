// narinfo parse throughput over every fixture narinfo (all caches), repeated.
// Run built: `npx tsc -b packages/nix-compat && node packages/nix-compat/bench/narinfo.js [seconds]`.
// Prints narinfos/s and MB/s for: parse only, parse + fingerprint, and (for
// scale) parse + fingerprint + ed25519 verification.
import { readdirSync, readFileSync } from "node:fs"
import { NarInfo, Signature } from "../dist/index.js"

const fixtures = new URL("../../../fixtures/", import.meta.url)
const caches = new URL("caches/", fixtures)
const texts = []
for (const cache of readdirSync(caches).sort()) {
  const dir = new URL(`${cache}/`, caches)
  for (const f of readdirSync(dir).sort()) {
    if (f.endsWith(".narinfo")) texts.push(readFileSync(new URL(f, dir), "utf8"))
  }
}
const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0)
const seconds = Number(process.argv[2] ?? 2)
const keys = ["test-cache-1", "test-cache-2"].map((k) => {
  const r = Signature.parsePublicKey(readFileSync(new URL(`keys/${k}.public`, fixtures), "utf8"))
  if (r._tag === "Left") throw r.left
  return r.right
})

// sanity: everything parses before we time it
for (const t of texts) NarInfo.parseOrThrow(t)

let sink = 0
const run = (label, body, budget = seconds) => {
  // warm up
  for (let i = 0; i < 20; i++) for (const t of texts) sink += body(t)
  let rounds = 0
  const start = process.hrtime.bigint()
  let elapsed = 0
  while (elapsed < budget) {
    for (let i = 0; i < 10; i++) for (const t of texts) sink += body(t)
    rounds += 10
    elapsed = Number(process.hrtime.bigint() - start) / 1e9
  }
  const n = rounds * texts.length
  const perSec = n / elapsed
  const mbPerSec = (rounds * bytes) / elapsed / 1e6
  console.log(
    `${label.padEnd(34)} ${Math.round(perSec).toLocaleString("en-US").padStart(10)} narinfos/s  ${
      mbPerSec.toFixed(1).padStart(6)
    } MB/s  (${n.toLocaleString("en-US")} narinfos in ${elapsed.toFixed(2)} s)`
  )
  return perSec
}

console.log(`${texts.length} fixture narinfos, ${bytes} bytes (avg ${Math.round(bytes / texts.length)} B)`)
const parse = run("parse", (t) => NarInfo.parseOrThrow(t).narSize)
run("parse + fingerprint", (t) => NarInfo.fingerprint(NarInfo.parseOrThrow(t)).length)
run("parse (Either API)", (t) => (NarInfo.parse(t)._tag === "Right" ? 1 : 0))
run("parse + render", (t) => NarInfo.render(NarInfo.parseOrThrow(t)).length)
run(
  "parse + fingerprint + verify",
  (t) => (Signature.verify(NarInfo.parseOrThrow(t), keys)._tag === "Some" ? 1 : 0),
  Math.min(seconds, 1)
)
const target = 50_000
console.log(`target ${target.toLocaleString("en-US")} narinfos/s (parse): ${parse >= target ? "met" : "NOT met"}`)
if (sink === 0) console.log("(unreachable)")
