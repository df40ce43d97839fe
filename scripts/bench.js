#!/usr/bin/env node
// Runs every benchmark script (packages/*/bench/*.js) one after another, each in
// its own process so that peak memory and JIT state do not leak between them.
// Usage: npm run bench [-- FILTER]   (FILTER matches part of the script path)
import { spawnSync } from "node:child_process"
import { readdirSync, existsSync } from "node:fs"
import { join } from "node:path"

const root = new URL("..", import.meta.url).pathname
const filter = process.argv[2]
const scripts = []
for (const pkg of readdirSync(join(root, "packages")).sort()) {
  const dir = join(root, "packages", pkg, "bench")
  if (!existsSync(dir)) continue
  for (const file of readdirSync(dir).sort()) {
    if (file.endsWith(".js")) scripts.push(join("packages", pkg, "bench", file))
  }
}
let failed = 0
for (const script of scripts) {
  if (filter && !script.includes(filter)) continue
  console.log(`\n== ${script}`)
  const result = spawnSync(process.execPath, ["--expose-gc", script], { cwd: root, stdio: "inherit" })
  if (result.status !== 0) {
    failed++
    console.error(`!! ${script} exited with ${result.status ?? result.signal}`)
  }
}
process.exit(failed === 0 ? 0 : 1)
