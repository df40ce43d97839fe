import { afterAll, assert, describe, it } from "@effect/vitest"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import { BlobService, FilesystemBlobService } from "@nixfx/castore"
import { blobServiceSuite } from "@nixfx/castore/testing"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "nixfx-castore-fs-"))
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))

blobServiceSuite("filesystem", FilesystemBlobService.layer({ directory: Path.join(root, "suite") }))
blobServiceSuite("filesystem with fsync", FilesystemBlobService.layer({ directory: Path.join(root, "fsync"), fsync: true }))

const hexOf = (digest: Uint8Array) => Buffer.from(digest).toString("hex")

describe("FilesystemBlobService", () => {
  it.effect("stores a blob as blobs/<2 hex>/<hex> and leaves no temporary file", () =>
    Effect.gen(function*() {
      const directory = Path.join(root, "layout")
      const content = new Uint8Array(Crypto.randomBytes(1000))
      const large = new Uint8Array(Crypto.randomBytes(1024 * 1024))
      const small = yield* BlobService.putBytes(content)
      const big = yield* BlobService.putBytes(large)
      for (const [info, bytes] of [[small, content], [big, large]] as const) {
        const hex = hexOf(info.digest)
        const file = Path.join(directory, "blobs", hex.slice(0, 2), hex)
        assert.isTrue(Fs.readFileSync(file).equals(bytes))
      }
      assert.deepStrictEqual(Fs.readdirSync(Path.join(directory, "tmp")), [])
    }).pipe(Effect.provide(FilesystemBlobService.layer({ directory: Path.join(root, "layout") }))))

  it.effect("abandoned and failed writers remove their temporary files", () =>
    Effect.gen(function*() {
      const directory = Path.join(root, "abandon")
      const service = yield* BlobService.BlobService
      const scope = yield* Scope.make()
      const writer = yield* Scope.extend(service.writer, scope)
      yield* writer.write(new Uint8Array(Crypto.randomBytes(2 * 1024 * 1024)))
      assert.strictEqual(Fs.readdirSync(Path.join(directory, "tmp")).length, 1)
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(Fs.readdirSync(Path.join(directory, "tmp")), [])
    }).pipe(Effect.provide(FilesystemBlobService.layer({ directory: Path.join(root, "abandon") }))))

  it.effect("an existing blob is not rewritten", () =>
    Effect.gen(function*() {
      const directory = Path.join(root, "existing")
      for (const size of [100, 600 * 1024]) {
        const content = new Uint8Array(Crypto.randomBytes(size))
        const first = yield* BlobService.putBytes(content)
        const hex = hexOf(first.digest)
        const file = Path.join(directory, "blobs", hex.slice(0, 2), hex)
        const before = Fs.statSync(file)
        const second = yield* BlobService.putBytes(content)
        assert.strictEqual(hexOf(second.digest), hex)
        const after = Fs.statSync(file)
        assert.strictEqual(after.ino, before.ino)
        assert.strictEqual(after.mtimeMs, before.mtimeMs)
      }
      assert.deepStrictEqual(Fs.readdirSync(Path.join(directory, "tmp")), [])
    }).pipe(Effect.provide(FilesystemBlobService.layer({ directory: Path.join(root, "existing") }))))

  it.effect("a half-written temporary file (as after a crash) is never visible as a blob", () =>
    Effect.gen(function*() {
      const directory = Path.join(root, "crash")
      const content = new Uint8Array(Crypto.randomBytes(4096))
      const digest = B3Digest.hash(content)
      Fs.mkdirSync(Path.join(directory, "tmp"), { recursive: true })
      Fs.writeFileSync(Path.join(directory, "tmp", "left-by-a-crash"), content.subarray(0, 100))
      const service = yield* BlobService.BlobService
      assert.isFalse(yield* service.has(digest))
      yield* BlobService.putBytes(content)
      assert.deepStrictEqual(yield* service.size(digest), Option.some(4096))
    }).pipe(Effect.provide(FilesystemBlobService.layer({ directory: Path.join(root, "crash") }))))

  it.effect("a fan-out directory removed behind the store's back is made again", () =>
    Effect.gen(function*() {
      const directory = Path.join(root, "fanout")
      const first = yield* BlobService.putBytes(new Uint8Array([1]))
      const prefix = hexOf(first.digest).slice(0, 2)
      Fs.rmSync(Path.join(directory, "blobs", prefix), { recursive: true })
      yield* BlobService.putBytes(new Uint8Array([1]))
      assert.isTrue(yield* (yield* BlobService.BlobService).has(first.digest))
    }).pipe(Effect.provide(FilesystemBlobService.layer({ directory: Path.join(root, "fanout") }))))

  it.effect("a file that shrinks under a read fails the stream with a Storage error naming the path", () =>
    Effect.gen(function*() {
      const directory = Path.join(root, "short")
      const content = new Uint8Array(Crypto.randomBytes(1024 * 1024))
      const { digest } = yield* BlobService.putBytes(content)
      const service = yield* BlobService.BlobService
      const stream = Option.getOrThrow(yield* service.read(digest))
      const hex = hexOf(digest)
      const file = Path.join(directory, "blobs", hex.slice(0, 2), hex)
      Fs.truncateSync(file, 1000)
      const error = yield* Effect.flip(Stream.runDrain(stream))
      assert.strictEqual(error.reason, "Storage")
      assert.include(error.message, file)
      assert.include(error.message, `expected ${1024 * 1024}`)
    }).pipe(Effect.provide(FilesystemBlobService.layer({ directory: Path.join(root, "short") }))))

  it.effect("an unusable directory fails the layer with a Storage error", () =>
    Effect.gen(function*() {
      const file = Path.join(root, "not-a-directory")
      Fs.writeFileSync(file, "x")
      const error = yield* Effect.flip(FilesystemBlobService.make({ directory: file }))
      assert.strictEqual(error.reason, "Storage")
      assert.include(error.message, file)
    }))
})
