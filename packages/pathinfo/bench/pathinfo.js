// PathInfoService throughput: put / get / list over N PathInfos with references
// (each path references up to 8 earlier ones, recording their nodes, so every
// put runs the reference-by-content checks against stored rows).
//
//   node packages/pathinfo/bench/pathinfo.js [N]        (after `npm run build`)
//   NIXFX_TEST_PG_URL=postgres://… adds PostgreSQL.
import { PgClient } from "@effect/sql-pg"
import { B3Digest, Node } from "@nixfx/castore-nodes"
import { StorePath } from "@nixfx/nix-compat"
import { Effect, Either, Layer, Option, Redacted, Stream } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PathInfo, PathInfoService, SqlPathInfoService, StoreComposition } from "../dist/index.js"

const N = Number(process.argv[2] ?? 10_000)
const REFS = 8

const makeInfos = () => {
  const infos = []
  for (let i = 0; i < N; i++) {
    const size = 1000 + i
    const node = new Node.FileNode({ digest: B3Digest.unsafeMake(crypto.randomBytes(32)), size, executable: false })
    const refs = []
    const seen = new Set()
    for (let r = 0; r < Math.min(REFS, i); r++) {
      const j = Math.floor(Math.random() * i)
      if (seen.has(j)) continue
      seen.add(j)
      refs.push({ storePath: infos[j].storePath, node: Option.some(infos[j].node) })
    }
    refs.sort((a, b) => (a.storePath.basename < b.storePath.basename ? -1 : 1))
    infos.push(new PathInfo.PathInfo({
      storePath: Either.getOrThrow(StorePath.make(crypto.randomBytes(20), `bench-path-${i}`)),
      node,
      references: refs,
      narSize: 112 + ((size + 7) & ~7),
      narSha256: crypto.randomBytes(32),
      signatures: [],
      deriver: Option.none(),
      ca: Option.none()
    }))
  }
  return infos
}

const rate = (n, ms) => `${Math.round((n / ms) * 1000).toLocaleString("en-US").padStart(9)} /s`

const run = (label, layer, infos) =>
  Effect.catchAllCause(run1(label, layer, infos), (cause) =>
    Effect.sync(() => console.log(`${label.padEnd(28)} FAILED: ${String(cause).split("\n").slice(0, 3).join(" | ")}`)))

const run1 = (label, layer, infos) =>
  Effect.gen(function*() {
    const s = yield* PathInfoService.PathInfoService
    let t = performance.now()
    let done = 0
    yield* Effect.forEach(infos, (p) => Effect.tap(s.put(p), () => void done++), { discard: true }).pipe(
      Effect.tapErrorCause(() => Effect.sync(() => console.log(`${label}: put failed after ${done} puts`)))
    )
    const putMs = performance.now() - t
    const order = infos.map((p) => p.storePath.digest).sort(() => Math.random() - 0.5)
    t = performance.now()
    for (const d of order) {
      const r = yield* s.get(d)
      if (Option.isNone(r)) throw new Error("missing")
    }
    const getMs = performance.now() - t
    t = performance.now()
    const listed = yield* Stream.runCount(s.list)
    const listMs = performance.now() - t
    if (listed < infos.length) throw new Error(`listed ${listed} < ${infos.length}`)
    // concurrent re-puts of identical PathInfos (idempotent: read + compare inside a transaction)
    t = performance.now()
    const reput = infos.slice(0, 2000)
    yield* Effect.forEach(reput, (p) => s.put(p), { concurrency: 8, discard: true })
    const reputMs = performance.now() - t
    console.log(
      `${label.padEnd(28)} put ${rate(infos.length, putMs)}   get ${rate(infos.length, getMs)}   list ${
        rate(listed, listMs)
      }   idempotent put ×8 ${rate(reput.length, reputMs)}`
    )
  }).pipe(Effect.provide(layer))

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nixfx-pathinfo-bench-"))
const infos = makeInfos()
console.log(`${N} PathInfos, up to ${REFS} references each (references by content checked on every put)`)

// libsql runs last and on fewer paths: @libsql/client opens a new connection
// for every transaction and never closes it (2 file descriptors per put in WAL
// mode), so a long run exhausts the process's descriptors (EMFILE).
const LIBSQL_N = Math.min(N, 2000)

const program = Effect.gen(function*() {
  yield* run("memory", PathInfoService.layerMemory, infos)
  yield* run(
    "SQLite, better-sqlite3",
    SqlPathInfoService.layer().pipe(
      Layer.provide(StoreComposition.sqliteClientLayer(path.join(tmp, "better.sqlite"), "better-sqlite3"))
    ),
    infos
  )
  const pg = process.env.NIXFX_TEST_PG_URL
  if (pg) {
    const prefix = `bench${Date.now().toString(36)}_`
    yield* run(
      "PostgreSQL",
      SqlPathInfoService.layer({ tablePrefix: prefix }).pipe(Layer.provide(PgClient.layer({ url: Redacted.make(pg) }))),
      infos
    )
  } else {
    console.log("PostgreSQL: skipped (NIXFX_TEST_PG_URL is not set)")
  }
  yield* run(
    `SQLite, libsql (${LIBSQL_N} only)`,
    SqlPathInfoService.layer().pipe(
      Layer.provide(StoreComposition.sqliteClientLayer(path.join(tmp, "libsql.sqlite"), "libsql"))
    ),
    infos.slice(0, LIBSQL_N)
  )
})

Effect.runPromise(program).then(
  () => fs.rmSync(tmp, { recursive: true, force: true }),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)
