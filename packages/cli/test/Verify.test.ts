import { describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import * as Effect from "effect/Effect"
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll } from "vitest"
import { fixturesDir, runCli } from "./runCli.js"

const manifest = JSON.parse(readFileSync(join(fixturesDir, "manifest.json"), "utf8"))
const pathNamed = (name: string): string =>
  manifest.caches.xz.paths.find((p: { name: string }) => p.name === name).storePath
const key = readFileSync(join(fixturesDir, "keys", "test-cache-1.public"), "utf8").trim()
const cache = `file://${join(fixturesDir, "caches", "xz")}?trusted-public-keys=${encodeURIComponent(key)}`

const app = pathNamed("fx-app-1.0")
const lib = pathNamed("fx-lib-1.0")
const tree = pathNamed("fx-tree")
const large = pathNamed("fx-large")

/** `b3:<base64>` (the CLI's JSON) → hex (the blob file names, the findings). */
const b3Hex = (b3: string): string => Buffer.from(b3.slice(3), "base64").toString("hex")

/** Runs SQL against a store's SQLite file while no CLI has it open. */
const sql = <A>(dir: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>): Promise<A> =>
  Effect.runPromise(
    Effect.scoped(Effect.flatMap(SqlClient.SqlClient, f)).pipe(
      Effect.provide(StoreComposition.sqliteClientLayer(StoreComposition.sqliteDatabaseFile(dir)))
    ) as Effect.Effect<A>
  )

const pathInfoJson = async (store: string, path: string) => {
  const result = await runCli(["path-info", "--json", "--store", store, path])
  expect(result.code).toBe(0)
  return JSON.parse(result.stdout)[0]
}

describe("nixfx verify", () => {
  let work = ""
  let clean = ""
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "nixfx-cli-verify-"))
    clean = join(work, "clean")
    const copied = await runCli(["copy", "--json", "--from", cache, "--to", `sqlite://${clean}`, app, tree, large])
    expect(copied.stderr).toBe("")
    expect(JSON.parse(copied.stdout)).toMatchObject({ copied: 5 })
  }, 120_000)
  afterAll(() => rmSync(work, { recursive: true, force: true }))

  /** A copy of the clean store to break. */
  const copyOfClean = (name: string) => {
    const dir = join(work, name)
    cpSync(clean, dir, { recursive: true })
    return dir
  }

  it("finds nothing in a store a copy wrote, and exits 0", async () => {
    const result = await runCli(["verify", "--store", `sqlite://${clean}`])
    expect(result.stdout).toBe("")
    expect(result.code).toBe(0)
    expect(result.stderr).toMatch(/^checked 5 paths, \d+ directories, \d+ blobs \(.*\): 0 findings\n$/)

    const json = await runCli(["verify", "--json", "--store", `sqlite://${clean}`])
    expect(json.code).toBe(0)
    const output = JSON.parse(json.stdout)
    expect(output).toMatchObject({ paths: 5, findings: [] })
    expect(output.blobBytes).toBeGreaterThan(1_000_000) // fx-large's file, hashed
  }, 120_000)

  it("finds a blob whose bytes were changed on disk", async () => {
    const dir = copyOfClean("corrupt-blob")
    // the biggest blob file is fx-large's large file
    const blobsDir = join(dir, "blobs")
    const files = readdirSync(blobsDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name)).sort((a, b) => statSync(b).size - statSync(a).size)
    const victim = files[0]
    const bytes = readFileSync(victim)
    bytes[bytes.length >> 1] ^= 0xff
    writeFileSync(victim, bytes)
    const digest = victim.split("/").pop()!

    const result = await runCli(["verify", "--store", `sqlite://${dir}`])
    expect(result.code).toBe(1)
    const lines = result.stdout.trim().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(new RegExp(`^${large}: blob ${digest} at /\\S+ is corrupt: its ${bytes.length} bytes hash to [0-9a-f]{64}$`))
    expect(result.stderr).toContain("nixfx: 1 findings in 5 paths")

    const json = JSON.parse((await runCli(["verify", "--json", "--store", `sqlite://${dir}`])).stdout)
    expect(json.findings).toEqual([expect.objectContaining({ type: "CorruptBlob", storePath: large, digest })])
  }, 120_000)

  it("finds a directory deleted from the SQLite table", async () => {
    const dir = copyOfClean("missing-directory")
    const node = (await pathInfoJson(`sqlite://${dir}`, tree)).root
    expect(node.type).toBe("directory")
    const digest = b3Hex(node.digest)
    const deleted = await sql(dir, (sql) =>
      Effect.zipRight(
        sql`DELETE FROM castore_directories WHERE digest = ${Buffer.from(digest, "hex")}`,
        sql<{ n: number }>`SELECT changes() AS n`
      ))
    expect(Number(deleted[0].n)).toBe(1)

    const result = await runCli(["verify", "--store", `sqlite://${dir}`])
    expect(result.code).toBe(1)
    expect(result.stdout).toBe(`${tree}: directory ${digest} at / is missing\n`)
  }, 120_000)

  it("finds a reference whose recorded node disagrees with the store", async () => {
    const dir = copyOfClean("reference-node")
    const treeNode = (await pathInfoJson(`sqlite://${dir}`, tree)).root
    // Write it directly: the service itself refuses such a PathInfo. The app
    // now records fx-tree's node for its reference fx-lib.
    const updated = await sql(dir, (sql) =>
      Effect.zipRight(
        sql`UPDATE nixfx_pathinfo_reference
            SET node = (SELECT node FROM nixfx_pathinfo WHERE name = 'fx-tree')
            WHERE name = 'fx-lib-1.0' AND referrer = (SELECT digest FROM nixfx_pathinfo WHERE name = 'fx-app-1.0')`,
        sql<{ n: number }>`SELECT changes() AS n`
      ))
    expect(Number(updated[0].n)).toBe(1)

    const result = await runCli(["verify", "--store", `sqlite://${dir}`])
    expect(result.code).toBe(1)
    const lines = result.stdout.trim().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain(`${app}: reference ${lib} is recorded with node {"type":"directory","digest":"${treeNode.digest}"`)

    const json = JSON.parse((await runCli(["verify", "--json", "--store", `sqlite://${dir}`])).stdout)
    expect(json.findings).toEqual([
      expect.objectContaining({ type: "ReferenceNodeMismatch", storePath: app, reference: lib })
    ])
  }, 120_000)

  it("fails with one line for a store it cannot open", async () => {
    const result = await runCli(["verify", "--store", "sqlite://relative/dir"])
    expect(result.code).not.toBe(0)
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
  }, 120_000)
})
