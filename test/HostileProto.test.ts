/**
 * Every PathInfo message of the hostile corpus meets ProtoConversion (plain
 * and through its Schema) and the gRPC server's PathInfoService.Put, sent as
 * raw bytes: a ProtoDecodeError naming the expected field, INVALID_ARGUMENT on
 * the wire, and nothing written to the store behind the server.
 */
import * as grpc from "@grpc/grpc-js"
import { assert, describe, it } from "@effect/vitest"
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as GrpcServer from "@nixfx/pathinfo-grpc/GrpcServer"
import * as ProtoConversion from "@nixfx/pathinfo-grpc/ProtoConversion"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { bytesOf, casesOf } from "./support/corpus.js"

const cases = casesOf("proto")

describe("ProtoConversion: every hostile PathInfo message", () => {
  it("the corpus breaks every field in turn", () => {
    const fields = new Set(cases.flatMap((c) => ("field" in c.expect ? [c.expect.field.replace(/\[\d+\]/g, "[]")] : [])))
    for (
      const f of ["narinfo", "node", "node.directory.name", "node.directory.digest", "node.directory.size", "node.file.digest", "node.symlink.target", "references[]", "narinfo.reference_names", "narinfo.reference_names[]", "narinfo.nar_size", "narinfo.nar_sha256", "narinfo.signatures[].name", "narinfo.signatures[].data", "narinfo.deriver.digest", "narinfo.deriver.name", "narinfo.ca.type", "narinfo.ca.digest", "nixfx_reference_nodes[].file.name", ""]
    ) assert.isTrue(fields.has(f), f)
  })

  for (const c of cases) {
    const expect = c.expect
    it(`${c.id}: ${"valid" in expect ? "decoded" : `ProtoDecodeError at ${JSON.stringify(expect.field)}`} — ${c.description}`, async () => {
      const bytes = await bytesOf(c)
      const decoded = ProtoConversion.pathInfoFromBinary(bytes)
      const viaSchema = Schema.decodeUnknownEither(ProtoConversion.PathInfoFromBinary)(bytes)
      if ("valid" in expect) {
        const info = Either.getOrThrow(decoded)
        assert.isTrue(Either.isRight(viaSchema))
        // and it re-encodes to a message that decodes to the same PathInfo
        const again = Either.getOrThrow(ProtoConversion.pathInfoFromBinary(ProtoConversion.pathInfoToBinary(info)))
        assert.deepStrictEqual(again, info)
        return
      }
      if (Either.isRight(decoded)) return assert.fail(`${c.id}: decoded, expected an error at ${expect.field}`)
      assert.strictEqual(decoded.left._tag, "ProtoDecodeError")
      assert.strictEqual(decoded.left.messageType, "tvix.store.v1.PathInfo")
      assert.strictEqual(decoded.left.field, expect.field, decoded.left.message)
      assert.isTrue(Either.isLeft(viaSchema))
      if (Either.isLeft(viaSchema)) assert.isTrue(ParseResult.isParseError(viaSchema.left))
    })
  }
})

describe("gRPC PathInfoService.Put: every hostile PathInfo message as raw bytes", () => {
  it.live("INVALID_ARGUMENT naming the field, nothing stored (the control is stored)", () =>
    Effect.scoped(Effect.gen(function*() {
      const backing = yield* Layer.build(Layer.mergeAll(PathInfoService.layerMemory, BlobService.layerMemory, DirectoryService.layerMemory))
      const server = yield* GrpcServer.serve({ address: "127.0.0.1:0" }).pipe(Effect.provide(backing))
      const pathInfos = yield* PathInfoService.PathInfoService.pipe(Effect.provide(backing))
      const address = server.url.replace(/^grpc\+http:\/\//, "")
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new grpc.Client(address, grpc.credentials.createInsecure())),
        (c) => Effect.sync(() => c.close())
      )
      const put = (bytes: Uint8Array) =>
        Effect.async<Buffer, grpc.ServiceError>((resume) => {
          client.makeUnaryRequest(
            "/tvix.store.v1.PathInfoService/Put",
            (b: Uint8Array) => Buffer.from(b),
            (b: Buffer) => b,
            bytes,
            (error, response) => resume(error === null ? Effect.succeed(response!) : Effect.fail(error))
          )
        })
      const stored = Effect.map(Stream.runCollect(pathInfos.list), Chunk.size)
      for (const c of cases) {
        if ("valid" in c.expect) continue
        const expectedField = c.expect.field
        const error = yield* Effect.flip(put(yield* Effect.promise(() => bytesOf(c))))
        assert.strictEqual(error.code, grpc.status.INVALID_ARGUMENT, `${c.id}: ${error.details}`)
        if (expectedField !== "") assert.include(error.details, `${expectedField}:`, c.id)
        assert.strictEqual(yield* stored, 0, `${c.id}: something was stored`)
      }
      const valid = cases.find((c) => "valid" in c.expect)!
      yield* put(yield* Effect.promise(() => bytesOf(valid)))
      assert.strictEqual(yield* stored, 1)
    })))
})
