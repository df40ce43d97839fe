/**
 * Child process of ServerLoad.test.ts: the binary cache server over a
 * SQLite + filesystem store (`sqlite:///<dir>`, as `nixfx serve http --store`
 * opens it) on 127.0.0.1 with uploads on, until SIGTERM (see
 * `runServerChild`).
 *
 * argv: <store directory> <maxConcurrentNarStreams> <narStreamWait ms> <upload token>
 */
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import { runServerChild } from "@nixfx/pathinfo/loadTesting"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as BinaryCacheServer from "../../src/BinaryCacheServer.js"

const [dir, maxConcurrentNarStreams, narStreamWaitMs, token] = process.argv.slice(2)

runServerChild(Effect.gen(function*() {
  const store = yield* StoreComposition.build(`sqlite://${dir}`)
  const running = yield* BinaryCacheServer.serve({
    port: 0,
    accessLog: false,
    maxConcurrentNarStreams: Number(maxConcurrentNarStreams),
    narStreamWait: Number(narStreamWaitMs),
    upload: { token: Redacted.make(token) },
    shutdownTimeout: "10 seconds"
  }).pipe(
    Effect.provideService(PathInfoService.PathInfoService, store.pathInfoService),
    Effect.provideService(BlobService.BlobService, store.blobService),
    Effect.provideService(DirectoryService.DirectoryService, store.directoryService)
  )
  return { url: running.url }
}))
