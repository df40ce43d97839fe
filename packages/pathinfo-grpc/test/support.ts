/**
 * Test support: a nixfx server over backing services, and client layers to it.
 */
import { LibsqlClient } from "@effect/sql-libsql"
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as GrpcClient from "@nixfx/pathinfo-grpc/GrpcClient"
import * as GrpcServer from "@nixfx/pathinfo-grpc/GrpcServer"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import * as SqlPathInfoService from "@nixfx/pathinfo/SqlPathInfoService"
import * as SqlDirectoryService from "@nixfx/castore/SqlDirectoryService"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export type Backing = PathInfoService.PathInfoService | BlobService.BlobService | DirectoryService.DirectoryService

/** Everything in memory. */
export const memoryBacking: Layer.Layer<Backing> = Layer.mergeAll(
  PathInfoService.layerMemory,
  BlobService.layerMemory,
  DirectoryService.layerMemory
)

/** PathInfos and directories in a fresh SQLite file (libsql), blobs in memory. */
export const sqliteBacking = (): Layer.Layer<Backing, unknown> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nixfx-grpc-sqlite-"))
  return Layer.mergeAll(
    SqlPathInfoService.layer(),
    SqlDirectoryService.layer(),
    BlobService.layerMemory
  ).pipe(Layer.provide(LibsqlClient.layer({ url: "file:" + path.join(dir, "store.sqlite") })))
}

/** A temp directory for unix sockets. */
export const socketPath = (name: string): string =>
  path.join(fs.mkdtempSync(path.join(os.tmpdir(), "nixfx-grpc-sock-")), name)

/**
 * A client layer talking to a fresh nixfx server backed by `backing`. The
 * server listens on 127.0.0.1 (port chosen by the OS) or on `address`.
 */
export const clientOverServer = (
  backing: Layer.Layer<Backing, unknown>,
  options: {
    readonly package?: "tvix" | "snix"
    readonly address?: string
    readonly server?: Partial<GrpcServer.Options>
    readonly client?: GrpcClient.Options
  } = {}
) =>
  Layer.unwrapScoped(
    Effect.gen(function*() {
      const services = yield* Layer.build(backing)
      const server = yield* GrpcServer.serve({ address: options.address ?? "127.0.0.1:0", ...options.server }).pipe(
        Effect.provide(services)
      )
      return GrpcClient.layer(server.url, { ...options.client, package: options.package ?? "tvix" })
    })
  )
