import { assert, describe, it } from "@effect/vitest"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import * as FileHttpClient from "../src/FileHttpClient.js"

const failingInner = HttpClient.make((request) => Effect.die(`unexpected request to ${request.url}`))

describe("FileHttpClient", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nixfx-filehttp-"))
  fs.writeFileSync(path.join(dir, "a.narinfo"), "0123456789")
  const client = FileHttpClient.withFiles(failingInner)
  const url = (name: string) => pathToFileURL(path.join(dir, name)).href

  it.effect("answers GET of a file with its bytes and length", () =>
    Effect.gen(function*() {
      const response = yield* client.execute(HttpClientRequest.get(url("a.narinfo")))
      assert.strictEqual(response.status, 200)
      assert.strictEqual(response.headers["content-length"], "10")
      assert.strictEqual(yield* response.text, "0123456789")
    }))

  it.effect("answers a Range from an offset with 206 and the rest", () =>
    Effect.gen(function*() {
      const response = yield* client.execute(
        HttpClientRequest.get(url("a.narinfo")).pipe(HttpClientRequest.setHeader("range", "bytes=4-"))
      )
      assert.strictEqual(response.status, 206)
      assert.strictEqual(yield* response.text, "456789")
    }))

  it.effect("answers 404 for a missing file and for a directory", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* client.execute(HttpClientRequest.get(url("missing")))).status, 404)
      assert.strictEqual((yield* client.execute(HttpClientRequest.get(pathToFileURL(dir).href))).status, 404)
    }))

  it.effect("passes other URLs to the wrapped client", () =>
    Effect.gen(function*() {
      const echo = FileHttpClient.withFiles(HttpClient.make((request) =>
        Effect.die(`inner saw ${request.url}`)
      ))
      const exit = yield* Effect.exit(echo.execute(HttpClientRequest.get("http://127.0.0.1:1/x")))
      assert.isTrue(exit._tag === "Failure" && String(exit.cause).includes("inner saw http://127.0.0.1:1/x"))
    }))
})
