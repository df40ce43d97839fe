/**
 * Every NAR of the hostile corpus meets the NAR reader (whole, byte by byte
 * split, and through the Stream adapter) and castore's NAR import into memory
 * and into filesystem services (blobs on disk, directories in SQLite): the
 * expected typed error, no defect, and no directory of a failed import
 * reachable afterwards.
 */
import { SqliteClient } from "@effect/sql-sqlite-node"
import { assert, describe, it, layer } from "@effect/vitest"
import { BlobService, DirectoryService, FilesystemBlobService, NarImport, SqlDirectoryService } from "@nixfx/castore"
import type * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Nar from "@nixfx/nix-compat/Nar"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll } from "vitest"
import { bytesOf, casesOf, type NarCase } from "./support/corpus.js"

const narCases = casesOf("nar")
const rejected = narCases.filter((c): c is NarCase & { expect: { tag: "NarError" } } => "tag" in c.expect)
const accepted = narCases.filter((c) => "valid" in c.expect)

const split = (bytes: Uint8Array, size: number): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  for (let p = 0; p < bytes.length; p += size) out.push(bytes.subarray(p, Math.min(p + size, bytes.length)))
  return out
}

const expectNarError = (result: Either.Either<unknown, Nar.NarError>, c: NarCase, how: string): Nar.NarError => {
  if (Either.isRight(result)) return assert.fail(`${c.id} (${how}): accepted, expected a NarError`)
  assert.strictEqual(result.left._tag, "NarError")
  assert.strictEqual(result.left.reason, (c.expect as { reason: string }).reason, `${c.id} (${how}): ${result.left.message}`)
  return result.left
}

describe("Nar reader: every hostile NAR", () => {
  it("the corpus has the cases the issue lists", () => {
    const reasons = new Set(rejected.map((c) => (c.expect as { reason: string }).reason))
    for (
      const r of ["InvalidName", "UnsortedEntries", "DuplicateEntry", "FileTooLarge", "TooDeep", "NonZeroPadding", "TrailingData", "Truncated", "BadMagic", "UnexpectedToken"]
    ) assert.isTrue(reasons.has(r), r)
    assert.isAtLeast(narCases.filter((c) => c.id.startsWith("nar/truncated/at-token-")).length, 50)
    assert.isTrue(narCases.some((c) => c.id === "nar/deep-nesting-10000"))
  })

  for (const c of rejected) {
    it(`${c.id}: NarError ${(c.expect as { reason: string }).reason} — ${c.description}`, async () => {
      const bytes = await bytesOf(c)
      const whole = expectNarError(Nar.decodeTree(bytes), c, "whole")
      // The split does not change the verdict (nor where it is found).
      const pieces = bytes.length <= 4096 ? split(bytes, 1) : split(bytes, 4093)
      const bySplit = expectNarError(Nar.decodeTree(pieces), c, "split")
      assert.strictEqual(bySplit.offset, whole.offset)
      if (c.truncatedAt !== undefined) assert.isAtMost(whole.offset, c.truncatedAt)
      if (c.id.startsWith("nar/truncated/at-token-")) assert.strictEqual(whole.offset, c.truncatedAt)
      const streamed = await Effect.runPromise(Effect.either(Stream.runDrain(Nar.events(Stream.fromIterable(split(bytes, 500))))))
      expectNarError(streamed, c, "stream")
    })
  }

  for (const c of accepted) {
    it(`${c.id}: accepted — ${c.description}`, async () => {
      const bytes = await bytesOf(c)
      const tree = Either.getOrThrow(Nar.decodeTree(bytes))
      assert.deepStrictEqual(Either.getOrThrow(Nar.encodeTree(tree)), bytes)
    })
  }

  it("10,000 nested directories under a limit that allows them: read without exhausting the stack", async () => {
    const deep = narCases.find((c) => c.id === "nar/deep-nesting-10000")!
    const tree = Nar.decodeTree(await bytesOf(deep), { maxDepth: 20_000 })
    assert.isTrue(Either.isRight(tree))
  })
})

// ---------------------------------------------------------------------------
// castore import
// ---------------------------------------------------------------------------

/**
 * A DirectoryService that records the digest of every directory handed to it
 * (through `put` or a putter), so a test can check none of them became
 * reachable after a failed import.
 */
class Handed extends Context.Tag("test/Handed")<Handed, Array<B3Digest.B3Digest>>() {}
const recording = Layer.effect(
  DirectoryService.DirectoryService,
  Effect.gen(function*() {
    const real = yield* DirectoryService.DirectoryService
    const handed = yield* Handed
    return DirectoryService.DirectoryService.of({
      ...real,
      put: (d) => Effect.zipRight(Effect.sync(() => handed.push(d.digest)), real.put(d)),
      putter: Effect.map(real.putter, (p) => ({
        ...p,
        put: (d) => Effect.zipRight(Effect.sync(() => handed.push(d.digest)), p.put(d))
      }))
    })
  })
)
const handedLayer = Layer.sync(Handed, () => [])

const tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "nixfx-hostile-nar-"))
afterAll(() => Fs.rmSync(tmp, { recursive: true, force: true }))

const backends: ReadonlyArray<readonly [string, Layer.Layer<BlobService.BlobService | DirectoryService.DirectoryService>]> = [
  ["memory", Layer.merge(BlobService.layerMemory, DirectoryService.layerMemory)],
  [
    "filesystem (blobs on disk, directories in SQLite)",
    Layer.merge(
      FilesystemBlobService.layer({ directory: Path.join(tmp, "blobs") }),
      SqlDirectoryService.layer().pipe(Layer.provide(SqliteClient.layer({ filename: Path.join(tmp, "directories.db") })))
    ).pipe(Layer.orDie)
  ]
]

for (const [name, services] of backends) {
  const stack = recording.pipe(Layer.provideMerge(Layer.merge(services, handedLayer)))
  layer(stack, { timeout: "120 seconds" })(`castore NarImport (${name}): every hostile NAR`, (it) => {
    // Rejected NARs first: the store is still empty, so any directory found
    // afterwards can only come from a failed import.
    for (const c of rejected) {
      it.effect(`${c.id}: NarImportError InvalidNar/${(c.expect as { reason: string }).reason}, nothing reachable`, () =>
        Effect.gen(function*() {
          const bytes = yield* Effect.promise(() => bytesOf(c))
          const handed = yield* Handed
          handed.length = 0
          const exit = yield* Effect.exit(NarImport.ingest(Stream.fromIterable(split(bytes, 1000))))
          if (Exit.isSuccess(exit)) return assert.fail(`${c.id}: imported, expected a failure`)
          const failure = Cause.failureOption(exit.cause)
          if (Option.isNone(failure)) return assert.fail(`${c.id}: not a typed failure: ${Cause.pretty(exit.cause)}`)
          const err = failure.value
          assert.strictEqual(err._tag, "NarImportError")
          assert.strictEqual(err.reason, "InvalidNar", err.message)
          assert.isTrue(Nar.isNarError(err.cause))
          assert.strictEqual((err.cause as Nar.NarError).reason, (c.expect as { reason: string }).reason, err.message)
          const directories = yield* DirectoryService.DirectoryService
          for (const digest of handed) {
            assert.isTrue(Option.isNone(yield* directories.get(digest)), `${c.id}: a directory of the failed import is reachable`)
          }
        }))
    }

    it.effect("some failed imports had complete directories that were never made reachable", () =>
      Effect.gen(function*() {
        // The sample cut before its last token: its subdirectories are complete.
        const c = rejected.filter((x) => x.id.startsWith("nar/truncated/at-token-")).at(-1)!
        const handed = yield* Handed
        handed.length = 0
        yield* Effect.flip(NarImport.ingest(Stream.make(yield* Effect.promise(() => bytesOf(c)))))
        assert.isAbove(handed.length, 0, "the spy saw the directories put before the failure")
        const directories = yield* DirectoryService.DirectoryService
        for (const digest of handed) assert.isTrue(Option.isNone(yield* directories.get(digest)))
      }))

    for (const c of accepted) {
      const expect = c.expect as { valid: true; import?: string }
      it.effect(`${c.id}: ${expect.import === undefined ? "imported" : `NarImportError ${expect.import}`}`, () =>
        Effect.gen(function*() {
          const bytes = yield* Effect.promise(() => bytesOf(c))
          const result = yield* Effect.either(NarImport.ingest(Stream.fromIterable(split(bytes, 7))))
          if (expect.import === undefined) {
            assert.isTrue(Either.isRight(result))
            if (Either.isRight(result)) assert.strictEqual(result.right.narSize, bytes.length)
          } else {
            assert.isTrue(Either.isLeft(result))
            if (Either.isLeft(result)) assert.strictEqual(result.left.reason, expect.import)
          }
        }))
    }

    it.effect("10,000 nested directories under a limit that allows them: imported without exhausting the stack", () =>
      Effect.gen(function*() {
        const deep = narCases.find((c) => c.id === "nar/deep-nesting-10000")!
        const bytes = yield* Effect.promise(() => bytesOf(deep))
        const result = yield* NarImport.ingest(Stream.fromIterable(split(bytes, 65536)), { maxDepth: 20_000 })
        assert.strictEqual(result.root._tag, "Directory")
      }))
  })
}
