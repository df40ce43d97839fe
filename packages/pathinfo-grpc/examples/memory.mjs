// Serve an in-memory store over gRPC and use it through the client layers.
// Run from the repository root after `npx tsc -b packages/pathinfo-grpc`:
//   node packages/pathinfo-grpc/examples/memory.mjs
import { BlobService, DirectoryService } from "@nixfx/castore"
import { Directory, Node } from "@nixfx/castore-nodes"
import { NixHash, StorePath } from "@nixfx/nix-compat"
import { PathInfo, PathInfoService } from "@nixfx/pathinfo"
import { GrpcClient, GrpcServer } from "@nixfx/pathinfo-grpc"
import { Effect, Either, Layer, Option } from "effect"

// The server: any PathInfoService/BlobService/DirectoryService layers will do.
const memoryStore = Layer.mergeAll(PathInfoService.layerMemory, BlobService.layerMemory, DirectoryService.layerMemory)
const ServerLive = GrpcServer.layer({ address: "127.0.0.1:0" }).pipe(Layer.provide(memoryStore))

// The client side: plain service code, unaware of gRPC.
const useStore = Effect.gen(function*() {
  // castore content: a file and the directory holding it
  const blob = yield* BlobService.putBytes(new TextEncoder().encode("hello\n"))
  const bin = Either.getOrThrow(Directory.make([
    { name: "hello", node: new Node.FileNode({ digest: blob.digest, size: blob.size, executable: true }) }
  ]))
  const root = new Node.DirectoryNode({ digest: yield* DirectoryService.putClosure([bin]), size: bin.size })

  // the server computes the NAR hash and size from castore (CalculateNAR)
  const { narSha256, narSize } = yield* (yield* GrpcClient.GrpcClient).calculateNar(root)

  const pathInfo = new PathInfo.PathInfo({
    storePath: Either.getOrThrow(StorePath.make(new Uint8Array(20).fill(7), "hello-1.0")),
    node: root,
    references: [],
    narSize,
    narSha256,
    signatures: [],
    deriver: Option.none(),
    ca: Option.none()
  })
  const service = yield* PathInfoService.PathInfoService
  yield* service.put(pathInfo)
  const back = Option.getOrThrow(yield* service.get(pathInfo.storePath.digest))
  console.log(back.basename, narSize, NixHash.toSri(PathInfo.narHash(back)), PathInfo.equals(back, pathInfo))

  // a digest that is not 20 bytes never reaches the wire
  const e = yield* Effect.flip(service.get(new Uint8Array(19)))
  console.log(e.message)
})

const main = Effect.gen(function*() {
  const server = yield* GrpcServer.Server
  console.log("serving", server.url)
  yield* useStore.pipe(Effect.provide(GrpcClient.layer(server.url)))
}).pipe(Effect.provide(ServerLive))

Effect.runPromise(main)
