import { describe, expect, it } from "@effect/vitest"
import { Node } from "@nixfx/castore-nodes"
import { Keys, NixHash, StorePath } from "@nixfx/nix-compat"
import { PathInfo, PathInfoService, StoreComposition } from "@nixfx/pathinfo"
import { loadFixturePathInfos } from "@nixfx/pathinfo/testing"
import { Effect, Option } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll } from "vitest"
import { runCli } from "./runCli.js"

const appPath = "/nix/store/knc6f1dddd793yls0vlcfp2n6j6whr2x-fx-tree"

describe("nixfx path-info", () => {
  let dir = ""
  const infos = loadFixturePathInfos()

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "nixfx-cli-pathinfo-"))
    await Effect.runPromise(
      Effect.gen(function*() {
        const service = yield* PathInfoService.PathInfoService
        for (const info of infos) yield* service.put(info)
      }).pipe(Effect.provide(StoreComposition.layer(`sqlite://${dir}`)))
    )
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it("prints the paths it finds, one per line", async () => {
    const result = await runCli(["path-info", "--store", `sqlite://${dir}`, appPath])
    expect(result.code).toBe(0)
    expect(result.stdout).toBe(appPath + "\n")
  })

  it("--json shows hash, size, root and each reference with its recorded node", async () => {
    const withRefs = infos.find((i) => i.storePath.name === "fx-app-1.0")!
    const path = `/nix/store/${withRefs.basename}`
    const result = await runCli(["path-info", "--json", "--store", `sqlite://${dir}`, path])
    expect(result.code).toBe(0)
    const [json] = JSON.parse(result.stdout)
    // the documented shape (packages/cli/README.md), field by field
    expect(Object.keys(json)).toEqual([
      "path",
      "narHash",
      "narSize",
      "references",
      "deriver",
      "ca",
      "signatures",
      "root",
      "referenceNodes"
    ])
    expect(json.path).toBe(path)
    expect(json.narSize).toBe(withRefs.narSize)
    expect(json.narHash).toBe(NixHash.toSri(PathInfo.narHash(withRefs)))
    expect(json.narHash).toMatch(/^sha256-[A-Za-z0-9+/]{43}=$/)
    expect(json.deriver).toBe(Option.getOrNull(Option.map(withRefs.deriver, (d) => StorePath.toAbsolutePath(d))))
    expect(json.deriver).toMatch(/^\/nix\/store\/.*\.drv$/)
    expect(json.ca).toBeNull()
    expect(json.signatures).toEqual(withRefs.signatures.map(Keys.formatSignature))
    expect(json.signatures.length).toBeGreaterThan(0)
    expect(json.root).toEqual(Node.toJson(withRefs.node))
    expect(json.root.type).toBe("directory")
    expect(json.references).toHaveLength(withRefs.references.length)
    expect(json.references).toContain(path) // fx-app references itself
    for (const reference of json.references) {
      expect(json.referenceNodes[reference], reference).toMatchObject({ type: expect.any(String) })
    }
    expect(json.referenceNodes[path]).toEqual(json.root)
  })

  it("--json prints an empty array when nothing is found (and still exits 1)", async () => {
    const result = await runCli(["path-info", "--json", "--store", `sqlite://${dir}`, "/nix/store/00000000000000000000000000000000-not-there"])
    expect(result.code).toBe(1)
    expect(JSON.parse(result.stdout)).toEqual([])
  })

  it("accepts basenames and exits non-zero naming a missing path", async () => {
    const missing = "/nix/store/00000000000000000000000000000000-not-there"
    const result = await runCli(["path-info", "--store", `sqlite://${dir}`, appPath.slice("/nix/store/".length), missing])
    expect(result.code).toBe(1)
    expect(result.stdout).toBe(appPath + "\n")
    expect(result.stderr).toContain(missing)
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
  })

  it("rejects something that is not a store path with a usage error", async () => {
    const result = await runCli(["path-info", "--store", "memory://", "/etc/passwd"])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("/etc/passwd")
  })
})
