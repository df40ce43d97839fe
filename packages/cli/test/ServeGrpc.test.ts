import { describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { fixturesDir, runCli, startCli } from "./runCli.js"

const key = readFileSync(join(fixturesDir, "keys", "test-cache-1.public"), "utf8").trim()
const app = "/nix/store/nyiw7bjzqq5k276s660r6xya32zqjdf0-fx-app-1.0"

describe("nixfx serve grpc", () => {
  it("serves a store that path-info and copy reach with a grpc+http:// URL, and stops cleanly on SIGINT", async () => {
    // a composition document: a memory store read through to the fixture cache on disk
    const document = JSON.stringify({
      stores: {
        root: { type: "cache", near: "local", far: "remote" },
        local: "memory://",
        remote: {
          type: "binary-cache",
          url: `file://${join(fixturesDir, "caches", "xz")}`,
          trustedPublicKeys: key,
          resolveIn: "local"
        }
      }
    })
    const server = startCli(["serve", "grpc", "--store", document, "--listen", "127.0.0.1:0"])
    const url = await server.firstLine
    expect(url).toMatch(/^grpc\+http:\/\/127\.0\.0\.1:\d+$/)

    const info = await runCli(["path-info", "--json", "--store", url, app])
    expect(info.stderr).toBe("")
    expect(info.code).toBe(0)
    const [json] = JSON.parse(info.stdout)
    expect(json.path).toBe(app)
    expect(Object.values(json.referenceNodes).every((node) => node !== null)).toBe(true)

    const copied = await runCli(["copy", "--json", "--from", url, "--to", "memory://", app])
    expect(copied.code).toBe(0)
    expect(JSON.parse(copied.stdout)).toMatchObject({ copied: 3 })

    server.child.kill("SIGINT")
    expect(await server.exited).toBe(0)
  })

  it("fails with one line when the address cannot be used", async () => {
    const result = await runCli(["serve", "grpc", "--store", "memory://", "--listen", "256.0.0.1:1"])
    expect(result.code).not.toBe(0)
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
  })
})
