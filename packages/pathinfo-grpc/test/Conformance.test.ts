import { blobServiceSuite, directoryServiceSuite } from "@nixfx/castore/testing"
import { pathInfoServiceSuite } from "@nixfx/pathinfo/testing"
import { clientOverServer, memoryBacking, socketPath, sqliteBacking } from "./support.js"

for (const pkg of ["tvix", "snix"] as const) {
  pathInfoServiceSuite(`gRPC client (${pkg}) → nixfx server on memory`, clientOverServer(memoryBacking, { package: pkg }))
  pathInfoServiceSuite(`gRPC client (${pkg}) → nixfx server on SQLite`, clientOverServer(sqliteBacking(), { package: pkg }))
}

pathInfoServiceSuite(
  "gRPC client over grpc+unix → nixfx server on memory",
  clientOverServer(memoryBacking, { address: `unix:${socketPath("pathinfo.sock")}` })
)

for (const pkg of ["tvix", "snix"] as const) {
  blobServiceSuite(`gRPC client (${pkg}) → nixfx server on memory`, clientOverServer(memoryBacking, { package: pkg }))
  directoryServiceSuite(`gRPC client (${pkg}) → nixfx server on memory`, clientOverServer(memoryBacking, { package: pkg }))
}
blobServiceSuite("gRPC client → nixfx server on SQLite", clientOverServer(sqliteBacking()))
directoryServiceSuite("gRPC client → nixfx server on SQLite", clientOverServer(sqliteBacking()))
