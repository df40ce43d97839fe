import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type ReceivedSpan, startOtlpReceiver } from "./otlpReceiver.js"
import { fixturesDir, runCli } from "./runCli.js"

interface FixturePath {
  readonly storePath: string
  readonly name: string
  readonly narSize: number
  readonly references: ReadonlyArray<string>
}
const manifest = JSON.parse(readFileSync(join(fixturesDir, "manifest.json"), "utf8"))
const fixturePaths: ReadonlyArray<FixturePath> = manifest.caches.zstd.paths
const byBasename = new Map(fixturePaths.map((p) => [p.storePath.slice("/nix/store/".length), p]))
const app = fixturePaths.find((p) => p.name === "fx-app-1.0")!
/** fx-app-1.0 and everything it refers to, transitively. */
const closureOf = (root: FixturePath): Array<FixturePath> => {
  const found = new Map<string, FixturePath>()
  const visit = (p: FixturePath) => {
    if (found.has(p.storePath)) return
    found.set(p.storePath, p)
    for (const reference of p.references) visit(byBasename.get(reference)!)
  }
  visit(root)
  return [...found.values()]
}
const closure = closureOf(app)
const key = readFileSync(join(fixturesDir, "keys", "test-cache-1.public"), "utf8").trim()
const fromCache = `file://${join(fixturesDir, "caches", "zstd")}?trusted-public-keys=${key}`

const named = (spans: ReadonlyArray<ReceivedSpan>, name: string) => spans.filter((s) => s.name === name)
const one = (spans: ReadonlyArray<ReceivedSpan>, name: string) => {
  const found = named(spans, name)
  expect(found.map((s) => s.name), name).toEqual([name])
  return found[0]
}
/** Whether `ancestor` is on the parent chain of `span`. */
const descendsFrom = (spans: ReadonlyArray<ReceivedSpan>, span: ReceivedSpan, ancestor: ReceivedSpan): boolean => {
  const byId = new Map(spans.map((s) => [s.spanId, s]))
  for (let at = byId.get(span.parentSpanId ?? ""); at !== undefined; at = byId.get(at.parentSpanId ?? "")) {
    if (at.spanId === ancestor.spanId) return true
  }
  return false
}

describe("nixfx tracing (OTLP over HTTP)", () => {
  let dir = ""
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "nixfx-cli-tracing-"))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it("a copy from a binary cache: the command span over one span per requested path over each NAR import", async () => {
    const receiver = await startOtlpReceiver()
    try {
      const store = `sqlite://${join(dir, "from-cache")}`
      const result = await runCli(["copy", "--json", "--from", fromCache, "--to", store, app.storePath], {
        env: {
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/custom/traces`,
          OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
          OTEL_SERVICE_NAME: "nixfx-under-test"
        }
      })
      expect(result.stderr).toBe("")
      expect(result.code).toBe(0)
      expect(JSON.parse(result.stdout)).toEqual({ copied: 3, present: 0, paths: [app.storePath] })

      expect(receiver.requests.map((r) => [r.path, r.contentType])).toContainEqual(["/custom/traces", "application/json"])
      const spans = receiver.spans()
      expect(new Set(spans.map((s) => s.serviceName))).toEqual(new Set(["nixfx-under-test"]))
      expect(new Set(spans.map((s) => s.traceId)).size).toBe(1)

      const command = one(spans, "nixfx copy")
      expect(command.parentSpanId).toBeUndefined()
      expect(command.attributes).toMatchObject({
        "nixfx.to": store,
        "nix.store_paths": [app.storePath],
        "nixfx.copied": 3,
        "nixfx.present": 0
      })
      const requested = one(spans, "nixfx copy path")
      expect(requested.parentSpanId).toBe(command.spanId)
      expect(requested.attributes["nix.store_path"]).toBe(app.storePath)

      const imports = named(spans, "NarImport.ingest")
      expect(imports.map((s) => s.attributes["nix.nar_size"]).sort()).toEqual(closure.map((p) => p.narSize).sort())
      for (const span of imports) expect(descendsFrom(spans, span, requested)).toBe(true)
      // the downloads are in the same tree
      expect(named(spans, "BinaryCache.request").length).toBeGreaterThanOrEqual(closure.length)
    } finally {
      await receiver.close()
    }
  })

  it("a copy between stores: closure walk, then one span per path with its content copy", async () => {
    const source = `sqlite://${join(dir, "source")}`
    const filled = await runCli(["copy", "--from", fromCache, "--to", source, app.storePath])
    expect(filled.code).toBe(0)
    const receiver = await startOtlpReceiver()
    try {
      const result = await runCli(["copy", "--json", "--from", source, "--to", "memory://", app.storePath], {
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/`, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }
      })
      expect(result.code).toBe(0)
      expect(receiver.requests.every((r) => r.path === "/v1/traces")).toBe(true)
      const spans = receiver.spans()
      expect(new Set(spans.map((s) => s.serviceName))).toEqual(new Set(["nixfx"]))

      const command = one(spans, "nixfx copy")
      const copy = one(spans, "StoreCopy.copy")
      expect(copy.parentSpanId).toBe(command.spanId)
      expect(copy.attributes).toMatchObject({ "nix.store_paths": [app.storePath], "nixfx.copied": 3, "nixfx.present": 0 })
      const walk = one(spans, "StoreCopy.closure")
      expect(walk.parentSpanId).toBe(copy.spanId)
      expect(walk.attributes["nixfx.closure_paths"]).toBe(closure.length)

      const perPath = named(spans, "StoreCopy.copyPath")
      expect(perPath.map((s) => s.attributes["nix.store_path"]).sort()).toEqual(closure.map((p) => p.storePath).sort())
      for (const span of perPath) {
        expect(span.parentSpanId).toBe(copy.spanId)
        expect(span.attributes["nix.nar_size"]).toBe(byBasename.get(String(span.attributes["nix.store_path"]).slice(11))!.narSize)
        const content = named(spans, "StoreCopy.copyContent").filter((c) => c.parentSpanId === span.spanId)
        expect(content.map((c) => c.attributes["nix.store_path"])).toEqual([span.attributes["nix.store_path"]])
      }
    } finally {
      await receiver.close()
    }
  })

  it("exports protobuf by default (OTEL_EXPORTER_OTLP_ENDPOINT, /v1/traces appended)", async () => {
    const receiver = await startOtlpReceiver()
    try {
      const nar = manifest.caches.none.paths.find((p: FixturePath) => p.name === app.name).url
      const result = await runCli(["nar", "ingest", join(fixturesDir, "caches", "none", nar)], {
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }
      })
      expect(result.code).toBe(0)
      expect(receiver.requests.length).toBeGreaterThan(0)
      for (const request of receiver.requests) {
        expect(request.path).toBe("/v1/traces")
        expect(request.contentType).toBe("application/x-protobuf")
      }
      const body = Buffer.concat(receiver.requests.map((r) => r.body))
      // protobuf carries strings as UTF-8 bytes: the span names and the service name are in there
      for (const text of ["nixfx nar ingest", "NarImport.ingest", "nix.nar_size", "nixfx"]) {
        expect(body.includes(Buffer.from(text)), text).toBe(true)
      }
    } finally {
      await receiver.close()
    }
  })

  it("sends nothing when tracing is disabled or no endpoint is set", async () => {
    const receiver = await startOtlpReceiver()
    try {
      const disabled = await runCli(["copy", "--from", fromCache, "--to", "memory://", app.storePath], {
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SDK_DISABLED: "true" }
      })
      expect(disabled.code).toBe(0)
      const none = await runCli(["copy", "--from", fromCache, "--to", "memory://", app.storePath], {
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_EXPORTER: "none" }
      })
      expect(none.code).toBe(0)
      expect(receiver.requests).toEqual([])
    } finally {
      await receiver.close()
    }
  })

  it("rejects an exporter configuration it cannot honour with a usage error naming the variable", async () => {
    const grpc = await runCli(["--version"], {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4317", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }
    })
    expect(grpc.code).toBe(2)
    expect(grpc.stderr.trim().split("\n")).toEqual([expect.stringContaining("OTEL_EXPORTER_OTLP_PROTOCOL")])
    const badUrl = await runCli(["--version"], { env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "localhost:4318" } })
    expect(badUrl.code).toBe(2)
    expect(badUrl.stderr).toContain("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
  })
})
