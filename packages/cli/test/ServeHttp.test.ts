import { describe, expect, it } from "@effect/vitest"
import { execFileSync, spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fixturesDir, runCli, startCli } from "./runCli.js"

const key = (name: string) => readFileSync(join(fixturesDir, "keys", `${name}.public`), "utf8").trim()
const app = "/nix/store/nyiw7bjzqq5k276s660r6xya32zqjdf0-fx-app-1.0"
const hasNix = spawnSync("nix", ["--version"]).status === 0
if (!hasNix) console.warn("nixfx serve http: real-Nix checks skipped: `nix` is not installed (Debian: nix-bin)")

const nixEnv = {
  ...process.env,
  NIX_CONFIG: "experimental-features = nix-command\nsandbox = false\nbuild-users-group =\nsubstituters ="
}

/** `nix copy --from URL --to local?root=…` as Debian's Nix runs it; returns the root. */
const nixCopy = (url: string, trusted: string, paths: ReadonlyArray<string>) => {
  const root = mkdtempSync(join(tmpdir(), "nixfx-nix-root-"))
  execFileSync("nix", [
    "copy",
    "--from",
    url,
    "--to",
    `local?root=${root}`,
    "--option",
    "trusted-public-keys",
    trusted,
    "--option",
    "narinfo-cache-positive-ttl",
    "0",
    "--option",
    "narinfo-cache-negative-ttl",
    "0",
    ...paths
  ], { env: nixEnv, stdio: ["ignore", "pipe", "pipe"] })
  return root
}

describe("nixfx serve http", () => {
  it("serves a store filled by nixfx copy; real nix copy --from accepts it; SIGINT stops it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nixfx-cli-serve-http-"))
    try {
      const store = `sqlite://${dir}`
      const filled = await runCli([
        "copy",
        "--from",
        `file://${join(fixturesDir, "caches", "xz")}?trusted-public-keys=${key("test-cache-1")}`,
        "--to",
        store,
        app
      ])
      expect(filled.code).toBe(0)
      const server = startCli(["serve", "http", "--store", store, "--listen", "127.0.0.1:0"])
      const url = await server.firstLine
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      const info = await fetch(`${url}/nix-cache-info`)
      expect(info.status).toBe(200)
      expect(await info.text()).toContain("StoreDir: /nix/store")
      const narinfo = await fetch(`${url}/${app.slice(11, 43)}.narinfo`)
      expect(narinfo.status).toBe(200)
      expect(await narinfo.text()).toContain(`StorePath: ${app}`)
      if (hasNix) {
        const root = nixCopy(url, key("test-cache-1"), [app])
        rmSync(root, { recursive: true, force: true })
      }
      server.child.kill("SIGINT")
      expect(await server.exited).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("--sign-key-file signs narinfos of a store whose paths carry no signature", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nixfx-cli-serve-http-sign-"))
    try {
      const store = `sqlite://${dir}`
      const filled = await runCli(["copy", "--from", `file://${join(fixturesDir, "caches", "unsigned")}`, "--to", store, app])
      expect(filled.code).toBe(0)
      const server = startCli([
        "serve",
        "http",
        "--store",
        store,
        "--listen",
        "127.0.0.1:0",
        "--sign-key-file",
        join(fixturesDir, "keys", "test-cache-2.secret")
      ])
      const url = await server.firstLine
      const narinfo = await (await fetch(`${url}/${app.slice(11, 43)}.narinfo`)).text()
      expect(narinfo).toMatch(/^Sig: test-cache-2:/m)
      if (hasNix) {
        const root = nixCopy(url, key("test-cache-2"), [app])
        rmSync(root, { recursive: true, force: true })
      }
      server.child.kill("SIGTERM")
      expect(await server.exited).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("rejects a bad --listen and a bad key file with one line", async () => {
    const listen = await runCli(["serve", "http", "--store", "memory://", "--listen", "nowhere"])
    expect(listen.code).toBe(2)
    expect(listen.stderr).toContain("--listen")
    const keyFile = await runCli([
      "serve",
      "http",
      "--store",
      "memory://",
      "--sign-key-file",
      join(fixturesDir, "keys", "test-cache-1.public")
    ])
    expect(keyFile.code).not.toBe(0)
    expect(keyFile.stderr.trim().split("\n")).toHaveLength(1)
  })
})
