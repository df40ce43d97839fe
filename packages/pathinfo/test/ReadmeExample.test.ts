// The README's "run the conformance suite against your own layer" example, verbatim.
import { PathInfoService } from "@nixfx/pathinfo"
import { pathInfoServiceSuite } from "@nixfx/pathinfo/testing"
import { Effect, Layer } from "effect"

// Your backend. Here: the in-memory service behind a wrapper that counts puts.
let puts = 0
const myLayer = Layer.effect(
  PathInfoService.PathInfoService,
  Effect.map(PathInfoService.makeMemory, (inner) =>
    PathInfoService.make({
      get: (digest) => inner.get(digest),
      put: (pathInfo) => Effect.tap(inner.put(pathInfo), () => void puts++),
      list: inner.list
    }))
)

pathInfoServiceSuite("my PathInfoService", myLayer, {
  // Outside the nixfx repository, point at a checkout's fixtures/ directory:
  // fixturesDir: "/path/to/nixfx/fixtures",
  // A layer that signs what it stores: compare allowing added signatures.
  addsSignatures: false
})
