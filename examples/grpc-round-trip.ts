/**
 * A store served over gRPC and read back through the gRPC client layer: a
 * memory store is filled from a binary cache, served with the tvix/snix gRPC
 * API on a free port, and a program that only knows the PathInfoService,
 * BlobService and DirectoryService tags reads it back through
 * `GrpcClient.layer` — then copies the closure into a store of its own.
 *
 * Run from the repository root: `npm run build && node examples/dist/grpc-round-trip.js`
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { BlobService, DirectoryService } from "@nixfx/castore"
import { Keys, StorePath } from "@nixfx/nix-compat"
import { PathInfo, PathInfoService, StoreComposition, StoreCopy } from "@nixfx/pathinfo"
import { GrpcClient, GrpcServer } from "@nixfx/pathinfo-grpc"
import { BinaryCache, FileHttpClient } from "@nixfx/pathinfo-http"
import { Console, Effect, Either, Option, Stream } from "effect"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const trustedPublicKeys = Either.getOrThrow(
  Keys.parsePublicKeys("test-cache-1:AShArwCxa9//pz8J8ygDvdfdSz5el6lutUUGAKprce4=")
)
const app = Either.getOrThrow(StorePath.parseAbsolutePath("/nix/store/nyiw7bjzqq5k276s660r6xya32zqjdf0-fx-app-1.0"))

/** Client code: plain services, unaware of gRPC. */
const readBack = Effect.gen(function*() {
  const pathInfos = yield* PathInfoService.PathInfoService
  const directories = yield* DirectoryService.DirectoryService
  const blobs = yield* BlobService.BlobService
  const info = Option.getOrThrow(yield* pathInfos.get(app.digest))
  if (info.node._tag !== "Directory") return yield* Effect.dieMessage("fx-app-1.0 is a directory")
  // the whole directory tree of the path, and the size of every file in it
  const tree = yield* Stream.runCollect(directories.getRecursive(info.node.digest))
  let fileBytes = 0
  for (const directory of tree) {
    for (const entry of directory.entries) {
      if (entry.node._tag !== "File") continue
      const content = Option.getOrThrow(yield* blobs.read(entry.node.digest))
      fileBytes += yield* Stream.runFold(content, 0, (n, chunk) => n + chunk.length)
    }
  }
  return { info, directories: tree.length, fileBytes }
})

export const program = (cacheDir: string) =>
  Effect.gen(function*() {
    // the server's store, filled from the binary cache
    const served = yield* StoreComposition.build("memory://")
    const cache = yield* BinaryCache.make({ url: `file://${cacheDir}`, trustedPublicKeys }, served)
    const original = Option.getOrThrow(yield* cache.fetch(app.digest))
    const server = yield* GrpcServer.make(served, { address: "127.0.0.1:0" })
    yield* Console.log(`serving at ${server.url}`)

    const read = yield* readBack.pipe(Effect.provide(GrpcClient.layer(server.url)))
    yield* Console.log(
      `read back ${read.info.basename}: ${read.directories} directories, ${read.fileBytes} bytes of files, ` +
        `same PathInfo: ${PathInfo.equals(read.info, original)}`
    )

    // a store URL works too: copy the closure over gRPC into a store of our own
    const remote = yield* StoreComposition.build(server.url, GrpcClient.registry)
    const local = yield* StoreComposition.build("memory://")
    const copy = yield* StoreCopy.copy(remote, local, [app])
    yield* Console.log(`copied ${copy.copied} paths over gRPC`)
    return { url: server.url, original, read, copied: copy.copied, copiedRoot: copy.roots[0] }
  }).pipe(Effect.scoped, Effect.provide(FileHttpClient.layer(NodeHttpClient.layerUndici)))

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  NodeRuntime.runMain(program(path.resolve("fixtures/caches/zstd")))
}
