import { describe, expect, it } from "@effect/vitest"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fixturesDir, runCli } from "./runCli.js"

interface ManifestPath {
  readonly storePath: string
  readonly url: string
  readonly narHashSRI: string
  readonly narSize: number
  readonly castore:
    | { readonly type: "directory"; readonly digest: string; readonly size: number }
    | { readonly type: "file"; readonly digest: string; readonly size: number; readonly executable: boolean }
    | { readonly type: "symlink"; readonly target: string }
}
const manifest = JSON.parse(readFileSync(join(fixturesDir, "manifest.json"), "utf8")) as {
  readonly caches: Record<string, { readonly paths: ReadonlyArray<ManifestPath> }>
}
const b3 = (hex: string) => "b3:" + Buffer.from(hex, "hex").toString("base64")
const expectedRoot = (castore: ManifestPath["castore"]) =>
  castore.type === "symlink" ? castore : { ...castore, digest: b3(castore.digest) }

describe("nixfx nar ingest", () => {
  const paths = manifest.caches["none"]!.paths

  it("prints {narSize, narHash, root} for every uncompressed fixture NAR", async () => {
    for (const entry of paths) {
      const result = await runCli(["nar", "ingest", join(fixturesDir, "caches", "none", entry.url)])
      expect(result.stderr, entry.storePath).toBe("")
      expect(result.code, entry.storePath).toBe(0)
      expect(JSON.parse(result.stdout), entry.storePath).toEqual({
        narSize: entry.narSize,
        narHash: entry.narHashSRI,
        root: expectedRoot(entry.castore)
      })
    }
  }, 180_000)

  it("reads stdin and writes into a sqlite:// store", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nixfx-cli-ingest-"))
    try {
      const entry = paths.find((p) => p.castore.type === "directory" && p.storePath.endsWith("-fx-tree"))!
      const nar = readFileSync(join(fixturesDir, "caches", "none", entry.url))
      const result = await runCli(["nar", "ingest", "--store", `sqlite://${dir}`], { stdin: nar })
      expect(result.code).toBe(0)
      expect(JSON.parse(result.stdout).root).toEqual(expectedRoot(entry.castore))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("fails with one line naming the offset on a truncated NAR", async () => {
    const entry = paths.find((p) => p.storePath.endsWith("-fx-tree"))!
    const nar = readFileSync(join(fixturesDir, "caches", "none", entry.url))
    const result = await runCli(["nar", "ingest"], { stdin: nar.subarray(0, 3000) })
    expect(result.code).toBe(1)
    expect(result.stdout).toBe("")
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
    expect(result.stderr).toContain("NAR offset 3000")
  })

  it("fails on input that is not a NAR", async () => {
    const result = await runCli(["nar", "ingest"], { stdin: "hello\n" })
    expect(result.code).toBe(1)
    expect(result.stderr).toContain("nix-archive-1")
  })

  it("names the wrong part of a bad --store URL", async () => {
    const result = await runCli(["nar", "ingest", "--store", "ftp://x"], { stdin: "" })
    expect(result.code).toBe(1)
    expect(result.stderr).toContain("scheme")
  })
})
