import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"

/**
 * Serves files from `roots` (the first that has the file wins) on
 * 127.0.0.1, as a web server in front of a `file://` binary cache would.
 */
export const serveDirectories = async (roots: ReadonlyArray<string>): Promise<{ url: string; close: () => Promise<void> }> => {
  const server = http.createServer((request, response) => {
    const name = decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname).replace(/^\/+/, "")
    if (name.split("/").includes("..")) {
      response.writeHead(400).end()
      return
    }
    for (const root of roots) {
      const file = path.join(root, name)
      if (fs.existsSync(file) && fs.statSync(file).isFile()) {
        response.writeHead(200, { "content-length": fs.statSync(file).size })
        fs.createReadStream(file).pipe(response)
        return
      }
    }
    response.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve()))
  }
}
