#!/usr/bin/env node
// Serves a directory over HTTP on 127.0.0.1 — enough to put one of the
// fixture binary caches (fixtures/caches/*) behind a URL for the README tour:
//
//   node scripts/serve-directory.js fixtures/caches/zstd 8080
//
// GET and HEAD only; nothing outside the directory can be reached.
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"

const [dirArg, portArg = "8080"] = process.argv.slice(2)
if (dirArg === undefined) {
  console.error("usage: node scripts/serve-directory.js DIR [PORT]")
  process.exit(2)
}
const root = fs.realpathSync(dirArg)
const server = http.createServer((request, response) => {
  if (request.method !== "GET" && request.method !== "HEAD") {
    response.writeHead(405).end()
    return
  }
  let name
  try {
    name = decodeURIComponent(new URL(request.url ?? "/", "http://localhost").pathname)
  } catch {
    response.writeHead(400).end()
    return
  }
  const file = path.join(root, name)
  if (!file.startsWith(root + path.sep)) {
    response.writeHead(400).end()
    return
  }
  fs.stat(file, (error, stat) => {
    if (error !== null || !stat.isFile()) {
      response.writeHead(404).end()
      return
    }
    response.writeHead(200, { "content-length": stat.size })
    if (request.method === "HEAD") response.end()
    else fs.createReadStream(file).pipe(response)
  })
})
server.listen(Number(portArg), "127.0.0.1", () => {
  const { port } = server.address()
  console.log(`serving ${root} at http://127.0.0.1:${port}`)
})
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)))
