import { describe, expect, it } from "@effect/vitest"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fixturesDir, runCli } from "./runCli.js"

const key = (name: string) => readFileSync(join(fixturesDir, "keys", `${name}.public`), "utf8").trim()
const cacheNarinfos = (cache: string): string =>
  readdirSync(join(fixturesDir, "caches", cache))
    .filter((file) => file.endsWith(".narinfo"))
    .sort()
    .map((file) => readFileSync(join(fixturesDir, "caches", cache, file), "utf8"))
    .join("\n")

describe("nixfx narinfo verify", () => {
  it("verifies every narinfo of a cache signed by the trusted key (stdin)", async () => {
    const result = await runCli(["narinfo", "verify", "--trusted-public-keys", key("test-cache-1")], {
      stdin: cacheNarinfos("zstd")
    })
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toEqual({ total: 27, verified: 27, unsigned: 0, badSignature: 0, invalid: 0 })
    expect(result.stderr).toBe("")
  })

  it("reads FILE and counts narinfos signed by another key as unsigned, naming each with --verbose", async () => {
    const result = await runCli([
      "narinfo",
      "verify",
      "--verbose",
      "--trusted-public-keys",
      key("test-cache-2"),
      join(fixturesDir, "caches", "none", "0agbny3dndpf121dd8yvkyg60rparzcx.narinfo")
    ])
    expect(result.code).toBe(1)
    expect(JSON.parse(result.stdout)).toEqual({ total: 1, verified: 0, unsigned: 1, badSignature: 0, invalid: 0 })
    expect(result.stderr).toContain("/nix/store/0agbny3dndpf121dd8yvkyg60rparzcx-fx-symlink-to-store: no signature by a trusted key")
    expect(result.stderr).toContain("1 of 1 narinfos")
  })

  it("separates bad signatures, unsigned and invalid narinfos", async () => {
    const signed = readFileSync(join(fixturesDir, "caches", "none", "0agbny3dndpf121dd8yvkyg60rparzcx.narinfo"), "utf8")
    const tampered = signed.replace("NarSize: 176", "NarSize: 177")
    const unsigned = readFileSync(join(fixturesDir, "caches", "unsigned", "0agbny3dndpf121dd8yvkyg60rparzcx.narinfo"), "utf8")
    const invalid = "StorePath: /nix/store/0agbny3dndpf121dd8yvkyg60rparzcx-fx-symlink-to-store\nURL: nar/x.nar\n"
    const result = await runCli(
      ["narinfo", "verify", "--verbose", "--trusted-public-keys", `${key("test-cache-1")} ${key("test-cache-2")}`],
      { stdin: [signed, tampered, unsigned, invalid].join("\n\n\n") }
    )
    expect(result.code).toBe(1)
    expect(JSON.parse(result.stdout)).toEqual({ total: 4, verified: 1, unsigned: 1, badSignature: 1, invalid: 1 })
    expect(result.stderr).toContain("signature by test-cache-1 does not verify")
    expect(result.stderr).toMatch(/NarHash/)
    expect(result.stderr.trim().split("\n")).toHaveLength(4)
  })

  it("rejects a malformed key with a usage exit code and one line", async () => {
    const result = await runCli(["narinfo", "verify", "--trusted-public-keys", "no-colon-here"], { stdin: "" })
    expect(result.code).toBe(2)
    expect(result.stdout).toBe("")
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
    expect(result.stderr).toContain("--trusted-public-keys")
  })

  it("fails on a missing FILE without a stack trace", async () => {
    const result = await runCli(["narinfo", "verify", "--trusted-public-keys", key("test-cache-1"), "/nonexistent/narinfos"])
    expect(result.code).not.toBe(0)
    expect(result.stderr).toContain("/nonexistent/narinfos")
    expect(result.stderr).not.toMatch(/at .*\.js:\d+/)
  })

  it("prints help", async () => {
    const result = await runCli(["narinfo", "verify", "--help"])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain("--trusted-public-keys")
  })
})
