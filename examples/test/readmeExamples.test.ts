// Every package README's runnable example (its ```js blocks), run as the README
// says — with node, from the repository root, on the built packages — so a
// README cannot fall behind the API.
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../", import.meta.url))
// inside the repository, so that @nixfx/* and effect resolve from its node_modules
const scratch = join(root, "examples", "dist", "readme")
const packages = ["nix-compat", "castore-nodes", "castore", "pathinfo", "pathinfo-grpc", "pathinfo-http"]

const jsBlocks = (markdown: string): Array<string> =>
  [...markdown.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((match) => match[1])

describe("package README examples", () => {
  mkdirSync(scratch, { recursive: true })
  for (const name of packages) {
    const blocks = jsBlocks(readFileSync(join(root, "packages", name, "README.md"), "utf8"))
    it(`${name}: the README has a runnable example`, () => {
      expect(blocks.length).toBeGreaterThan(0)
    })
    blocks.forEach((code, i) => {
      it(`${name}: README example ${i + 1} runs`, () => {
        const file = join(scratch, `${name}-${i + 1}.mjs`)
        writeFileSync(file, code)
        const run = spawnSync(process.execPath, [file], { cwd: root, encoding: "utf8", timeout: 90_000 })
        expect(run.stderr).toBe("")
        expect(run.status).toBe(0)
        expect(run.stdout.length).toBeGreaterThan(0)
      }, 120_000)
    })
  }
})
