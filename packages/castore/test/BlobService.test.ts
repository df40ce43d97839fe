import { assert, describe, it } from "@effect/vitest"
import { BlobService } from "@nixfx/castore"
import { blobServiceSuite } from "@nixfx/castore/testing"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

blobServiceSuite("memory", BlobService.layerMemory)

describe("BlobService memory", () => {
  it.effect("each layer build is a separate store", () =>
    Effect.gen(function*() {
      const content = new TextEncoder().encode("only in the first store")
      const { digest } = yield* BlobService.putBytes(content).pipe(Effect.provide(BlobService.layerMemory))
      const found = yield* BlobService.readAll(digest).pipe(Effect.provide(BlobService.layerMemory))
      assert.isTrue(Option.isNone(found))
    }))
})
