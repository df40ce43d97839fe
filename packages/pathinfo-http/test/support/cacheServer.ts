/**
 * A binary cache over HTTP for tests: serves one or more directories (the
 * first that has a file wins, so `[franken-b, franken-a]` merges two caches)
 * plus in-memory files on 127.0.0.1 with a free port, and injects faults per
 * path: a status (with headers, e.g. `Retry-After`), a connection reset
 * before any answer, no answer at all, a body cut short, a body longer than
 * the file (also an endless one), a changed byte, a replaced body, a slow or
 * stalling body. With `ranges`, it answers `Range: bytes=N-` as a web server
 * does (`Accept-Ranges`, a strong `ETag` of the content, `If-Range`, `206`
 * with `Content-Range`); faults then apply to the part sent. It records every
 * request (with its headers) and counts bytes sent and requests in flight.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"

export type Fault =
  /** Answer with this status, these headers and an empty body. */
  | { readonly _tag: "Status"; readonly status: number; readonly headers?: Record<string, string> }
  /** Destroy the connection without answering (the client sees a reset). */
  | { readonly _tag: "Reset" }
  /** Never answer (the connection stays open). */
  | { readonly _tag: "NoResponse" }
  /** Answer a range request with `206` and the range starting `shift` bytes later than asked (a broken server). */
  | { readonly _tag: "ShiftRange"; readonly shift: number }
  /** Announce the whole file, send `bytes` of it, then cut the connection. */
  | { readonly _tag: "CutAfter"; readonly bytes: number }
  /** Serve `body` instead of the file (with a matching Content-Length). */
  | { readonly _tag: "Replace"; readonly body: Uint8Array | string }
  /** Serve the file with the byte at `offset` changed. */
  | { readonly _tag: "FlipByte"; readonly offset: number }
  /** Serve the file followed by `bytes` more (0xff); chunked, written lazily with back-pressure. */
  | { readonly _tag: "Append"; readonly bytes: number }
  /** Serve the file in pieces of `chunkBytes` every `delayMs`. */
  | { readonly _tag: "Slow"; readonly chunkBytes: number; readonly delayMs: number }
  /** Send the headers and `bytes` of the body, then nothing more (the connection stays open). */
  | { readonly _tag: "Stall"; readonly bytes: number }

export interface FaultRule {
  readonly match: string | RegExp
  readonly fault: Fault
  /** Apply to this many matching requests only (default: all). */
  times?: number
}

export interface CacheServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly addFault: (match: string | RegExp, fault: Fault, times?: number) => void
  readonly clearFaults: () => void
  /** Files served from memory, by URL path (`/abc.narinfo`); they win over the directories. */
  readonly files: Map<string, Uint8Array | string>
  /** Paths requested, in order. */
  readonly requests: Array<string>
  /** Every request with its headers, in order. */
  readonly log: Array<{ readonly path: string; readonly headers: http.IncomingHttpHeaders }>
  /** Body bytes written per path. */
  readonly bytesSent: Map<string, number>
  /** Most requests in flight at once, per kind (`nar` or `narinfo`). */
  readonly maxInFlight: { nar: number; narinfo: number }
  /** Connections that ended before their response was complete. */
  readonly aborted: Array<string>
}

const kindOf = (p: string): "nar" | "narinfo" | undefined =>
  p.startsWith("/nar/") ? "nar" : p.endsWith(".narinfo") ? "narinfo" : undefined

export interface ServeOptions {
  /** Answer `Range: bytes=N-` requests (with `ETag`s and `If-Range`). Default false: always the whole file. */
  readonly ranges?: boolean
}

/** A strong ETag of a body: changed content, changed ETag. */
const etagOf = (body: Uint8Array): string => `"${crypto.createHash("sha256").update(body).digest("hex").slice(0, 32)}"`

/** Serves `roots` (directories) until the Scope closes. */
export const serveCache = (
  roots: ReadonlyArray<string>,
  serveOptions: ServeOptions = {}
): Effect.Effect<CacheServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: http.Server; state: CacheServer }>((resume) => {
      const rules: Array<FaultRule> = []
      const files = new Map<string, Uint8Array | string>()
      const requests: Array<string> = []
      const log: Array<{ readonly path: string; readonly headers: http.IncomingHttpHeaders }> = []
      const bytesSent = new Map<string, number>()
      const inFlight = { nar: 0, narinfo: 0 }
      const maxInFlight = { nar: 0, narinfo: 0 }
      const aborted: Array<string> = []

      const find = (urlPath: string): Uint8Array | undefined => {
        const mem = files.get(urlPath)
        if (mem !== undefined) return typeof mem === "string" ? Buffer.from(mem) : mem
        const rel = decodeURIComponent(urlPath).replace(/^\/+/, "")
        if (rel.split("/").includes("..")) return undefined
        for (const root of roots) {
          const file = path.join(root, rel)
          if (fs.existsSync(file) && fs.statSync(file).isFile()) return fs.readFileSync(file)
        }
        return undefined
      }

      const takeFault = (urlPath: string): Fault | undefined => {
        for (const rule of rules) {
          const hit = typeof rule.match === "string" ? urlPath === rule.match : rule.match.test(urlPath)
          if (!hit) continue
          if (rule.times !== undefined) {
            if (rule.times <= 0) continue
            rule.times--
          }
          return rule.fault
        }
        return undefined
      }

      const server = http.createServer((req, res) => {
        const urlPath = new URL(req.url ?? "/", "http://x").pathname
        requests.push(urlPath)
        log.push({ path: urlPath, headers: req.headers })
        const kind = kindOf(urlPath)
        if (kind !== undefined) {
          inFlight[kind]++
          if (inFlight[kind] > maxInFlight[kind]) maxInFlight[kind] = inFlight[kind]
        }
        let finished = false
        res.on("finish", () => (finished = true))
        res.on("close", () => {
          if (kind !== undefined) inFlight[kind]--
          if (!finished) aborted.push(urlPath)
        })
        const sent = (n: number) => bytesSent.set(urlPath, (bytesSent.get(urlPath) ?? 0) + n)
        const fault = takeFault(urlPath)
        if (fault?._tag === "Status") {
          res.writeHead(fault.status, { "content-length": 0, ...fault.headers })
          res.end()
          return
        }
        if (fault?._tag === "Reset") {
          req.socket.destroy()
          return
        }
        if (fault?._tag === "NoResponse") return
        let file = find(urlPath)
        if (fault?._tag === "Replace") file = typeof fault.body === "string" ? Buffer.from(fault.body) : fault.body
        if (file === undefined) {
          res.writeHead(404, { "content-length": 0 })
          res.end()
          return
        }
        // the whole file, or with `ranges` the part a `Range: bytes=N-` asks for
        let status = 200
        let body: Uint8Array = file
        const headers: Record<string, string | number> = {}
        if (serveOptions.ranges === true) {
          const etag = etagOf(file)
          headers["accept-ranges"] = "bytes"
          headers.etag = etag
          const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "")
          const ifRange = req.headers["if-range"]
          if (range !== null && (ifRange === undefined || ifRange === etag)) {
            const first = Number(range[1]) + (fault?._tag === "ShiftRange" ? fault.shift : 0)
            if (first >= file.length) {
              res.writeHead(416, { "content-length": 0, "content-range": `bytes */${file.length}` })
              res.end()
              return
            }
            status = 206
            body = file.subarray(first)
            headers["content-range"] = `bytes ${first}-${file.length - 1}/${file.length}`
          }
        }
        if (fault === undefined || fault._tag === "Replace" || fault._tag === "ShiftRange") {
          res.writeHead(status, { ...headers, "content-length": body.length })
          sent(body.length)
          res.end(body)
          return
        }
        switch (fault._tag) {
          case "FlipByte": {
            const copy = Buffer.from(body)
            copy[fault.offset] ^= 0xff
            res.writeHead(status, { ...headers, "content-length": copy.length })
            sent(copy.length)
            res.end(copy)
            return
          }
          case "CutAfter": {
            res.writeHead(status, { ...headers, "content-length": body.length })
            const part = body.subarray(0, fault.bytes)
            sent(part.length)
            res.write(part, () => setTimeout(() => res.destroy(), 10))
            return
          }
          case "Stall": {
            res.writeHead(status, { ...headers, "content-length": body.length })
            const part = body.subarray(0, fault.bytes)
            sent(part.length)
            res.write(part)
            return
          }
          case "Append": {
            res.writeHead(status, headers) // chunked
            sent(body.length)
            res.write(body)
            let left = fault.bytes
            const filler = Buffer.alloc(64 * 1024, 0xff)
            const pump = () => {
              while (left > 0 && !res.destroyed) {
                const n = Math.min(left, filler.length)
                left -= n
                sent(n)
                if (!res.write(n === filler.length ? filler : filler.subarray(0, n))) {
                  res.once("drain", pump)
                  return
                }
              }
              if (!res.destroyed) res.end()
            }
            pump()
            return
          }
          case "Slow": {
            res.writeHead(status, { ...headers, "content-length": body.length })
            let offset = 0
            const step = () => {
              if (res.destroyed) return
              const part = body.subarray(offset, offset + fault.chunkBytes)
              offset += part.length
              sent(part.length)
              if (offset >= body.length) res.end(part)
              else {
                res.write(part)
                setTimeout(step, fault.delayMs)
              }
            }
            step()
            return
          }
        }
      })
      server.keepAliveTimeout = 1000
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({
          server,
          state: {
            url: `http://127.0.0.1:${port}`,
            addFault: (match, fault, times) => {
              rules.push(times === undefined ? { match, fault } : { match, fault, times })
            },
            clearFaults: () => {
              rules.length = 0
            },
            files,
            requests,
            log,
            bytesSent,
            maxInFlight,
            aborted
          }
        }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ state }) => state))
