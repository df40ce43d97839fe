import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fixturesDir, runCli } from "./runCli.js"
import { serveDirectories } from "./staticServer.js"

const manifest = JSON.parse(readFileSync(join(fixturesDir, "manifest.json"), "utf8"))
const pathNamed = (name: string): string =>
  manifest.caches.xz.paths.find((p: { name: string }) => p.name === name).storePath
const key = (name: string) => readFileSync(join(fixturesDir, "keys", `${name}.public`), "utf8").trim()

describe("nixfx copy", () => {
  const servers: Array<{ url: string; close: () => Promise<void> }> = []
  let dir = ""
  let zstdCache = ""
  let franken = ""
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "nixfx-cli-copy-"))
    const zstd = await serveDirectories([join(fixturesDir, "caches", "zstd")])
    // franken-b's dep shadows franken-a's: the app as built against v1, the dep as rebuilt (v2)
    const merged = await serveDirectories([join(fixturesDir, "caches", "franken-b"), join(fixturesDir, "caches", "franken-a")])
    servers.push(zstd, merged)
    zstdCache = `nix+${zstd.url}?trusted-public-keys=${encodeURIComponent(key("test-cache-1"))}`
    franken = `nix+${merged.url}?trusted-public-keys=${encodeURIComponent(key("test-cache-1"))}`
  })
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()))
    rmSync(dir, { recursive: true, force: true })
  })

  it("copies a closure from a binary cache into a SQLite store, then between stores", async () => {
    const app = pathNamed("fx-app-1.0")
    const store = `sqlite://${join(dir, "a")}`
    const result = await runCli(["copy", "--json", "--from", zstdCache, "--to", store, app])
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toEqual({ copied: 3, present: 0, paths: [app] })

    const info = await runCli(["path-info", "--json", "--store", store, app])
    const [json] = JSON.parse(info.stdout)
    expect(json.references).toHaveLength(2)
    expect(Object.values(json.referenceNodes).every((n) => n !== null)).toBe(true)

    const again = await runCli(["copy", "--json", "--from", zstdCache, "--to", store, app])
    expect(JSON.parse(again.stdout)).toMatchObject({ copied: 0, present: 1 })

    const onward = `sqlite://${join(dir, "b")}`
    const copied = await runCli(["copy", "--json", "--from", store, "--to", onward, app])
    expect(copied.code).toBe(0)
    expect(JSON.parse(copied.stdout)).toMatchObject({ copied: 3, present: 0 })
    const there = await runCli(["path-info", "--json", "--store", onward, app])
    expect(JSON.parse(there.stdout)).toEqual(JSON.parse(info.stdout))
  })

  it("refuses narinfos not signed by a trusted key, naming the path and the key", async () => {
    const app = pathNamed("fx-app-1.0")
    const result = await runCli([
      "copy",
      "--from",
      zstdCache.replace(encodeURIComponent(key("test-cache-1")), encodeURIComponent(key("test-cache-2"))),
      "--to",
      "memory://",
      app
    ])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain("test-cache-2")
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
  })

  it("names a path the cache does not have", async () => {
    const missing = "/nix/store/00000000000000000000000000000000-nowhere"
    const result = await runCli(["copy", "--from", zstdCache, "--to", "memory://", missing])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(missing)
  })

  it("--check-references detects a Frankenbuild: same dep path, other NarHash", async () => {
    const store = `sqlite://${join(dir, "franken")}`
    // first the dep as franken-a built it (v1), through a cache that only has franken-a
    const a = await serveDirectories([join(fixturesDir, "caches", "franken-a")])
    servers.push(a)
    const fromA = `nix+${a.url}?trusted-public-keys=${encodeURIComponent(key("test-cache-1"))}`
    const dep = await runCli(["copy", "--from", fromA, "--to", store, manifest.franken.depStorePath])
    expect(dep.code).toBe(0)
    // then the app from a cache that serves the other build of the dep
    const checked = await runCli(["copy", "--check-references", "--from", franken, "--to", store, manifest.franken.appStorePath])
    expect(checked.code).toBe(1)
    expect(checked.stderr).toContain(manifest.franken.depStorePath.slice("/nix/store/".length, "/nix/store/".length + 32))
    expect(checked.stderr).toContain(manifest.franken.appStorePath.slice("/nix/store/".length, "/nix/store/".length + 32))
    // without the check it is accepted (the store records its own dep's node)
    const unchecked = await runCli(["copy", "--json", "--from", franken, "--to", store, manifest.franken.appStorePath])
    expect(unchecked.code).toBe(0)
  })

  it("copies from a file:// cache into the embedded default store (the README's first command)", async () => {
    const app = pathNamed("fx-app-1.0")
    const xdg = join(dir, "xdg")
    const from = `file://${join(fixturesDir, "caches", "zstd")}?trusted-public-keys=${key("test-cache-1")}`
    const result = await runCli(["copy", "--from", from, app], { env: { XDG_DATA_HOME: xdg } })
    expect(result.code).toBe(0)
    expect(result.stderr).toContain(`copied 3 paths (0 already present) to sqlite://${join(xdg, "nixfx")}`)
    const info = await runCli(["path-info", app], { env: { XDG_DATA_HOME: xdg } })
    expect(info.code).toBe(0)
    expect(info.stdout).toBe(app + "\n")
  })

  it("names the wrong part of a bad --to URL", async () => {
    const result = await runCli(["copy", "--from", "memory://", "--to", "sqlite://relative/dir", pathNamed("fx-app-1.0")])
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/path|absolute/)
  })
})
