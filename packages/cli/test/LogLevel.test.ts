import { describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { fixturesDir, runCli, startCli } from "./runCli.js"

const manifest = JSON.parse(readFileSync(join(fixturesDir, "manifest.json"), "utf8"))
const app: string = manifest.caches.zstd.paths.find((p: { name: string }) => p.name === "fx-app-1.0").storePath
const key = readFileSync(join(fixturesDir, "keys", "test-cache-1.public"), "utf8").trim()
const fromCache = `file://${join(fixturesDir, "caches", "zstd")}?trusted-public-keys=${key}`
const copyArgs = ["copy", "--json", "--from", fromCache, "--to", "memory://", app]

/** The debug lines `copy` logs: logfmt on stderr (not a terminal), one per stored path. */
const storedLines = (stderr: string) => stderr.split("\n").filter((line) => line.includes("level=DEBUG") && line.includes("stored"))

describe("nixfx log level", () => {
  it("is quiet by default: stdout carries only the result", async () => {
    const result = await runCli(copyArgs)
    expect(result.code).toBe(0)
    expect(result.stderr).toBe("")
    expect(JSON.parse(result.stdout)).toMatchObject({ copied: 3 })
  })

  it("--log-level debug logs each stored path on stderr, leaving stdout's JSON alone", async () => {
    const result = await runCli(["--log-level", "debug", ...copyArgs])
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toEqual({ copied: 3, present: 0, paths: [app] })
    expect(storedLines(result.stderr)).toHaveLength(3)
    expect(result.stderr).toContain(app.slice("/nix/store/".length))
  })

  it("NIXFX_LOG_LEVEL sets it too; the flag wins over the variable", async () => {
    const fromEnv = await runCli(copyArgs, { env: { NIXFX_LOG_LEVEL: "DEBUG" } })
    expect(fromEnv.code).toBe(0)
    expect(storedLines(fromEnv.stderr)).toHaveLength(3)
    const flagWins = await runCli(["copy", "--log-level", "info", ...copyArgs.slice(1)], { env: { NIXFX_LOG_LEVEL: "debug" } })
    expect(flagWins.code).toBe(0)
    expect(flagWins.stderr).toBe("")
  })

  it("rejects an unknown level: a usage error naming the variable and the choices", async () => {
    const result = await runCli(["--version"], { env: { NIXFX_LOG_LEVEL: "verbose" } })
    expect(result.code).toBe(2)
    expect(result.stderr.trim().split("\n")).toEqual([expect.stringMatching(/NIXFX_LOG_LEVEL.*warning.*"verbose"/)])
    const flag = await runCli(["--log-level", "verbose", "--version"])
    expect(flag.code).toBe(2)
  })

  it("a server's access log goes to stderr at info, and is off at warning", async () => {
    const accessLog = async (env: Record<string, string>) => {
      const server = startCli(["serve", "http", "--store", "memory://", "--listen", "127.0.0.1:0"], { env })
      try {
        const url = await server.firstLine
        expect((await fetch(`${url}/nix-cache-info`)).status).toBe(200)
        // the access log line is written after the response
        await new Promise((resolve) => setTimeout(resolve, 300))
        return server.stderr().split("\n").filter((line) => line.includes("/nix-cache-info"))
      } finally {
        server.child.kill("SIGTERM")
        await server.exited
      }
    }
    const lines = await accessLog({})
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/level=INFO .*GET \/nix-cache-info 200/)
    expect(await accessLog({ NIXFX_LOG_LEVEL: "warning" })).toEqual([])
  })
})
