/**
 * Conformance suites for {@link BlobService.BlobService} and
 * {@link DirectoryService.DirectoryService} implementations: each registers
 * `@effect/vitest` tests against the layer it is given. Every backend's test
 * file calls them; a third-party backend can too.
 *
 * This module imports vitest: import it from `@nixfx/castore/testing` in
 * tests only (the package index does not load it).
 *
 * The tests share one instance of the layer and run concurrently, using
 * random content so they never see each other's blobs or directories.
 *
 * @since 0.1.0
 */
import { assert, layer } from "@effect/vitest"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Directory from "@nixfx/castore-nodes/Directory"
import * as Node from "@nixfx/castore-nodes/Node"
import * as PathComponent from "@nixfx/castore-nodes/PathComponent"
import * as SymlinkTarget from "@nixfx/castore-nodes/SymlinkTarget"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Crypto from "node:crypto"
import { BlobService, type BlobServiceError, put, putBytes, readAll, readMany } from "./BlobService.js"
import { DirectoryService, type DirectoryServiceError, putClosure } from "./DirectoryService.js"

const randomBytes = (n: number): Uint8Array => new Uint8Array(Crypto.randomBytes(n))

const hexOf = (digest: Uint8Array): string => Buffer.from(digest).toString("hex")

/** Splits `bytes` into chunks of the given sizes, cycling through them. */
const split = (bytes: Uint8Array, sizes: ReadonlyArray<number>): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  let offset = 0
  for (let i = 0; offset < bytes.length; i++) {
    const size = sizes[i % sizes.length]
    out.push(bytes.subarray(offset, offset + size))
    offset += size
  }
  return out
}

const collectBytes = (stream: Stream.Stream<Uint8Array, BlobServiceError>) =>
  Effect.map(Stream.runCollect(stream), (chunks) => Buffer.concat(Chunk.toReadonlyArray(chunks)))

const writeChunks = (chunks: ReadonlyArray<Uint8Array>) =>
  Effect.scoped(
    Effect.flatMap(BlobService, (service) =>
      Effect.flatMap(service.writer, (writer) =>
        Effect.zipRight(Effect.forEach(chunks, writer.write, { discard: true }), writer.close)))
  )

/** The BLAKE3 digest of the empty string. */
const emptyDigestHex = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"

/**
 * Registers the BlobService conformance tests for `layer`.
 *
 * @since 0.1.0
 * @category suites
 */
export const blobServiceSuite = (name: string, blobLayer: Layer.Layer<BlobService, unknown>): void => {
  layer(blobLayer, { timeout: "60 seconds" })(`BlobService conformance: ${name}`, (it) => {
    it.effect("a missing blob is absent: has false, size none, read none", () =>
      Effect.gen(function*() {
        const service = yield* BlobService
        const digest = B3Digest.hash(randomBytes(64))
        assert.isFalse(yield* service.has(digest))
        assert.isTrue(Option.isNone(yield* service.size(digest)))
        assert.isTrue(Option.isNone(yield* service.read(digest)))
        assert.isTrue(Option.isNone(yield* service.read(digest, { offset: 0, length: 1 })))
      }))

    it.effect("a written blob reads back whole", () =>
      Effect.gen(function*() {
        const service = yield* BlobService
        const content = randomBytes(3000)
        const info = yield* writeChunks(split(content, [1, 999, 2000]))
        assert.strictEqual(info.size, 3000)
        assert.isTrue(yield* service.has(info.digest))
        assert.deepStrictEqual(yield* service.size(info.digest), Option.some(3000))
        const stream = yield* service.read(info.digest)
        assert.isTrue(Option.isSome(stream))
        const back = yield* collectBytes(Option.getOrThrow(stream))
        assert.strictEqual(hexOf(back), hexOf(content))
      }))

    it.effect("the digest is the BLAKE3 of the content, whatever the chunking", () =>
      Effect.gen(function*() {
        const hello = yield* putBytes(new TextEncoder().encode("hello"))
        assert.strictEqual(
          hexOf(hello.digest),
          "ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"
        )
        const empty = yield* writeChunks([])
        assert.strictEqual(hexOf(empty.digest), emptyDigestHex)
        assert.strictEqual(empty.size, 0)
        assert.deepStrictEqual(yield* readAll(empty.digest), Option.some(new Uint8Array(0)))
        const content = randomBytes(10_000)
        const whole = yield* putBytes(content)
        const chunked = yield* writeChunks(split(content, [7, 0, 4096, 13]))
        assert.strictEqual(hexOf(whole.digest), hexOf(B3Digest.hash(content)))
        assert.strictEqual(hexOf(chunked.digest), hexOf(whole.digest))
      }))

    it.effect("ranged reads: offset, offset + length, cut at the end, empty at the end", () =>
      Effect.gen(function*() {
        const content = randomBytes(1000)
        const { digest } = yield* putBytes(content)
        const read = (offset: number, length?: number) =>
          Effect.map(
            readAll(digest, length === undefined ? { offset } : { offset, length }),
            (bytes) => hexOf(Option.getOrThrow(bytes))
          )
        assert.strictEqual(yield* read(0), hexOf(content))
        assert.strictEqual(yield* read(100), hexOf(content.subarray(100)))
        assert.strictEqual(yield* read(100, 50), hexOf(content.subarray(100, 150)))
        assert.strictEqual(yield* read(990, 50), hexOf(content.subarray(990)))
        assert.strictEqual(yield* read(500, 0), "")
        assert.strictEqual(yield* read(1000), "")
        assert.strictEqual(yield* read(1000, 10), "")
      }))

    it.effect("ranged reads across the boundaries of the chunks a blob was written in", () =>
      Effect.gen(function*() {
        const content = randomBytes(120_000)
        const { digest } = yield* writeChunks(split(content, [40_000]))
        const cases: ReadonlyArray<readonly [number, number]> = [
          [0, 40_000],
          [40_000, 40_000],
          [39_999, 2],
          [79_999, 40_001],
          [1, 119_998],
          [119_999, 5]
        ]
        for (const [offset, length] of cases) {
          const bytes = Option.getOrThrow(yield* readAll(digest, { offset, length }))
          assert.strictEqual(hexOf(bytes), hexOf(content.subarray(offset, offset + length)), `${offset}+${length}`)
        }
      }))

    it.effect("putBytes stores small and large blobs like a writer does", () =>
      Effect.gen(function*() {
        const service = yield* BlobService
        for (const size of [1, 5000, 700 * 1024]) {
          const content = randomBytes(size)
          const info = yield* service.putBytes(content)
          assert.strictEqual(hexOf(info.digest), hexOf(B3Digest.hash(content)))
          assert.strictEqual(info.size, size)
          assert.deepStrictEqual(yield* service.size(info.digest), Option.some(size))
          assert.strictEqual(hexOf(Option.getOrThrow(yield* readAll(info.digest))), hexOf(content))
        }
      }))

    it.effect("ranged reads: an offset past the end or a malformed range is InvalidRange", () =>
      Effect.gen(function*() {
        const service = yield* BlobService
        const { digest } = yield* putBytes(randomBytes(100))
        const past = yield* Effect.flip(service.read(digest, { offset: 101 }))
        assert.strictEqual(past._tag, "BlobServiceError")
        assert.strictEqual(past.reason, "InvalidRange")
        assert.strictEqual(past.digest, hexOf(digest))
        assert.include(past.message, hexOf(digest))
        assert.include(past.message, "101")
        for (const range of [{ offset: -1 }, { offset: 1.5 }, { offset: 0, length: -3 }, { offset: Number.NaN }]) {
          const error = yield* Effect.flip(service.read(digest, range))
          assert.strictEqual(error.reason, "InvalidRange")
        }
      }))

    it.effect("readMany: whole blobs and ranges in order, none for a missing blob, InvalidRange past the end", () =>
      Effect.gen(function*() {
        const service = yield* BlobService
        const a = randomBytes(5000)
        const b = randomBytes(300 * 1024)
        const { digest: da } = yield* putBytes(a)
        const { digest: db } = yield* putBytes(b)
        const missing = B3Digest.hash(randomBytes(64))
        const got = yield* readMany(service, [
          { digest: da },
          { digest: missing, range: { offset: 0, length: 10 } },
          { digest: db, range: { offset: 1000, length: 70_000 } },
          { digest: da, range: { offset: 4990, length: 100 } },
          { digest: db },
          { digest: da, range: { offset: 5000, length: 1 } }
        ])
        assert.strictEqual(got.length, 6)
        assert.strictEqual(hexOf(Option.getOrThrow(got[0])), hexOf(a))
        assert.isTrue(Option.isNone(got[1]))
        assert.strictEqual(hexOf(Option.getOrThrow(got[2])), hexOf(b.subarray(1000, 71_000)))
        assert.strictEqual(hexOf(Option.getOrThrow(got[3])), hexOf(a.subarray(4990)), "cut at the end")
        assert.strictEqual(hexOf(Option.getOrThrow(got[4])), hexOf(b))
        assert.strictEqual(Option.getOrThrow(got[5]).length, 0)
        for (const range of [{ offset: 5001, length: 1 }, { offset: 5001 }, { offset: 0, length: -1 }]) {
          const error = yield* Effect.flip(readMany(service, [{ digest: db }, { digest: da, range }]))
          assert.strictEqual(error.reason, "InvalidRange", JSON.stringify(range))
          assert.strictEqual(error.digest, hexOf(da))
        }
      }))

    it.effect("a writer abandoned before close stores nothing", () =>
      Effect.gen(function*() {
        const service = yield* BlobService
        const small = randomBytes(100)
        const large = randomBytes(3 * 1024 * 1024)
        for (const content of [small, large]) {
          const scope = yield* Scope.make()
          const writer = yield* Scope.extend(service.writer, scope)
          for (const chunk of split(content, [65536])) yield* writer.write(chunk)
          yield* Scope.close(scope, Exit.void)
          assert.isFalse(yield* service.has(B3Digest.hash(content)))
          const late = yield* Effect.flip(writer.write(small))
          assert.strictEqual(late.reason, "WriterClosed")
        }
      }))

    it.effect("a closed writer refuses more writes and a second close", () =>
      Effect.scoped(Effect.gen(function*() {
        const service = yield* BlobService
        const writer = yield* service.writer
        yield* writer.write(randomBytes(10))
        yield* writer.close
        assert.strictEqual((yield* Effect.flip(writer.write(randomBytes(1)))).reason, "WriterClosed")
        assert.strictEqual((yield* Effect.flip(writer.close)).reason, "WriterClosed")
      })))

    it.effect("concurrent writes of the same blob all succeed with one digest", () =>
      Effect.gen(function*() {
        const sizes = [1000, 300 * 1024]
        for (const size of sizes) {
          const content = randomBytes(size)
          const chunks = split(content, [4096])
          const results = yield* Effect.all(
            Array.from({ length: 8 }, () =>
              Effect.scoped(Effect.gen(function*() {
                const writer = yield* (yield* BlobService).writer
                for (const chunk of chunks) {
                  yield* writer.write(chunk)
                  yield* Effect.yieldNow()
                }
                return yield* writer.close
              }))),
            { concurrency: "unbounded" }
          )
          for (const result of results) {
            assert.strictEqual(hexOf(result.digest), hexOf(B3Digest.hash(content)))
            assert.strictEqual(result.size, size)
          }
          const back = yield* readAll(results[0].digest)
          assert.strictEqual(hexOf(Option.getOrThrow(back)), hexOf(content))
        }
      }))

    it.effect("a large blob in many chunks: digest, size, whole and ranged reads", () =>
      Effect.gen(function*() {
        const service = yield* BlobService
        const size = 6 * 1024 * 1024 + 12345
        const content = randomBytes(size)
        const info = yield* writeChunks(split(content, [65536, 1, 100_000, 7]))
        assert.strictEqual(info.size, size)
        assert.strictEqual(hexOf(info.digest), hexOf(B3Digest.hash(content)))
        assert.deepStrictEqual(yield* service.size(info.digest), Option.some(size))
        const whole = yield* readAll(info.digest)
        assert.isTrue(Buffer.from(Option.getOrThrow(whole)).equals(content))
        const start = 1_234_567
        const length = 2 * 1024 * 1024 + 3
        const middle = yield* readAll(info.digest, { offset: start, length })
        assert.isTrue(Buffer.from(Option.getOrThrow(middle)).equals(content.subarray(start, start + length)))
        const tail = yield* readAll(info.digest, { offset: size - 10, length: 1000 })
        assert.isTrue(Buffer.from(Option.getOrThrow(tail)).equals(content.subarray(size - 10)))
      }))

    it.effect("put streams a whole Stream into one blob", () =>
      Effect.gen(function*() {
        const content = randomBytes(50_000)
        const info = yield* put(Stream.fromIterable(split(content, [1000])))
        assert.strictEqual(hexOf(info.digest), hexOf(B3Digest.hash(content)))
        assert.strictEqual(hexOf(Option.getOrThrow(yield* readAll(info.digest))), hexOf(content))
      }))

    it.effect("digests of the wrong length are impossible by type", () =>
      Effect.gen(function*() {
        const service = yield* BlobService
        const short = new Uint8Array(31)
        // @ts-expect-error a plain Uint8Array is not a B3Digest: it has to pass B3Digest.fromBytes first
        const unchecked = () => service.has(short)
        assert.isFunction(unchecked)
        const checked = B3Digest.fromBytes(short)
        assert.isTrue(Either.isLeft(checked))
        assert.include(Either.flip(checked).pipe(Either.getOrThrow).message, "got 31")
      }))
  })
}

// ---------------------------------------------------------------------------
// directories
// ---------------------------------------------------------------------------

const name = (s: string): PathComponent.PathComponent => Either.getOrThrow(PathComponent.validate(s))

/** A Directory from unsorted `[name, node]` pairs. */
const makeDirectory = (entries: ReadonlyArray<readonly [string, Node.Node]>): Directory.Directory =>
  Either.getOrThrow(
    Directory.make(
      entries
        .map(([n, node]) => ({ name: name(n), node }))
        .sort((a, b) => PathComponent.compare(a.name, b.name))
    )
  )

const fileNode = (size = 10) =>
  new Node.FileNode({ digest: B3Digest.hash(randomBytes(16)), size, executable: false })

const dirNode = (directory: Directory.Directory, size = directory.size) =>
  new Node.DirectoryNode({ digest: directory.digest, size })

/** A leaf Directory no other test can produce (it names a random file digest). */
const uniqueLeaf = (): Directory.Directory =>
  makeDirectory([
    ["file", fileNode()],
    ["link", new Node.SymlinkNode({ target: Either.getOrThrow(SymlinkTarget.validate("../file")) })]
  ])

/**
 * A diamond: root → {left, right} → shared, plus a file at every level.
 * Leaves first: [shared, left, right, root].
 */
const diamond = () => {
  const shared = uniqueLeaf()
  const left = makeDirectory([["shared", dirNode(shared)], ["l", fileNode()]])
  const right = makeDirectory([["shared", dirNode(shared)], ["r", fileNode(3)]])
  const root = makeDirectory([["left", dirNode(left)], ["right", dirNode(right)], ["top", fileNode()]])
  return { shared, left, right, root, leavesFirst: [shared, left, right, root] }
}

const closureOf = (root: B3Digest.B3Digest) =>
  Effect.flatMap(DirectoryService, (service) =>
    Effect.map(Stream.runCollect(service.getRecursive(root)), Chunk.toReadonlyArray))

const assertAbsent = (directories: ReadonlyArray<Directory.Directory>) =>
  Effect.flatMap(DirectoryService, (service) =>
    Effect.forEach(directories, (directory) =>
      Effect.map(service.get(directory.digest), (found) =>
        assert.isTrue(Option.isNone(found), `directory ${hexOf(directory.digest)} should not be stored`))))

/** Runs `f` with a putter in its own Scope, returning how it ended. */
const withPutter = <A, E>(
  f: (putter: {
    readonly put: (d: Directory.Directory) => Effect.Effect<void, DirectoryServiceError>
    readonly close: Effect.Effect<B3Digest.B3Digest, DirectoryServiceError>
  }) => Effect.Effect<A, E>
): Effect.Effect<A, E | DirectoryServiceError, DirectoryService> => Effect.scoped(Effect.flatMap(Effect.flatMap(DirectoryService, (service) => service.putter), f))

/**
 * Registers the DirectoryService conformance tests for `layer`.
 *
 * @since 0.1.0
 * @category suites
 */
export const directoryServiceSuite = (
  name: string,
  directoryLayer: Layer.Layer<DirectoryService, unknown>
): void => {
  layer(directoryLayer, { timeout: "60 seconds" })(`DirectoryService conformance: ${name}`, (it) => {
    it.effect("get of an unknown digest is none", () =>
      Effect.gen(function*() {
        const service = yield* DirectoryService
        assert.isTrue(Option.isNone(yield* service.get(uniqueLeaf().digest)))
      }))

    it.effect("put then get returns the same directory", () =>
      Effect.gen(function*() {
        const service = yield* DirectoryService
        for (const directory of [uniqueLeaf(), Directory.empty]) {
          const digest = yield* service.put(directory)
          assert.strictEqual(hexOf(digest), hexOf(directory.digest))
          const found = Option.getOrThrow(yield* service.get(digest))
          assert.strictEqual(hexOf(found.digest), hexOf(directory.digest))
          assert.strictEqual(found.size, directory.size)
          assert.deepStrictEqual(found.entries.map((e) => e.name), directory.entries.map((e) => e.name))
          assert.strictEqual(hexOf(Directory.encode(found)), hexOf(Directory.encode(directory)))
        }
        assert.strictEqual(hexOf(Directory.empty.digest), emptyDigestHex)
        // Storing again is harmless.
        yield* service.put(Directory.empty)
      }))

    it.effect("a putter stores a closure; getRecursive returns it root first, each directory once", () =>
      Effect.gen(function*() {
        const { leavesFirst, left, right, root, shared } = diamond()
        const rootDigest = yield* putClosure(leavesFirst)
        assert.strictEqual(hexOf(rootDigest), hexOf(root.digest))
        const closure = yield* closureOf(root.digest)
        const order = closure.map((d) => hexOf(d.digest))
        assert.strictEqual(order.length, 4)
        assert.strictEqual(new Set(order).size, 4)
        assert.strictEqual(order[0], hexOf(root.digest))
        assert.sameMembers(order.slice(1, 3), [hexOf(left.digest), hexOf(right.digest)])
        assert.strictEqual(order[3], hexOf(shared.digest))
        for (const directory of leavesFirst) {
          assert.isTrue(Option.isSome(yield* (yield* DirectoryService).get(directory.digest)))
        }
        // A subtree reads on its own too.
        const sub = yield* closureOf(left.digest)
        assert.deepStrictEqual(sub.map((d) => hexOf(d.digest)), [hexOf(left.digest), hexOf(shared.digest)])
      }))

    it.effect("getRecursive of a leaf is the leaf alone", () =>
      Effect.gen(function*() {
        const leaf = uniqueLeaf()
        yield* putClosure([leaf])
        const closure = yield* closureOf(leaf.digest)
        assert.deepStrictEqual(closure.map((d) => hexOf(d.digest)), [hexOf(leaf.digest)])
      }))

    it.effect("a wide and deep closure (over a thousand directories) round-trips", () =>
      Effect.gen(function*() {
        const leaves = Array.from({ length: 1000 }, () => uniqueLeaf())
        let chain = uniqueLeaf()
        const chainDirs = [chain]
        for (let i = 0; i < 50; i++) {
          chain = makeDirectory([["next", dirNode(chain)], [`f${i}`, fileNode()]])
          chainDirs.push(chain)
        }
        const root = makeDirectory([
          ...leaves.map((leaf, i) => [`d${i}`, dirNode(leaf)] as const),
          ["chain", dirNode(chain)]
        ])
        yield* putClosure([...leaves, ...chainDirs, root])
        const closure = yield* closureOf(root.digest)
        assert.strictEqual(closure.length, 1 + 1000 + 51)
        assert.strictEqual(hexOf(closure[0].digest), hexOf(root.digest))
        assert.strictEqual(new Set(closure.map((d) => hexOf(d.digest))).size, closure.length)
        assert.strictEqual(hexOf(closure[closure.length - 1].digest), hexOf(chainDirs[0].digest))
      }))

    it.effect("getRecursive fails with NotFound for an unknown root or a missing child", () =>
      Effect.gen(function*() {
        const service = yield* DirectoryService
        const unknown = uniqueLeaf()
        const error = yield* Effect.flip(closureOf(unknown.digest))
        assert.strictEqual(error.reason, "NotFound")
        assert.strictEqual(error.digest, hexOf(unknown.digest))
        // A parent stored on its own (put does not check children).
        const child = uniqueLeaf()
        const parent = makeDirectory([["child", dirNode(child)]])
        yield* service.put(parent)
        const missing = yield* Effect.flip(closureOf(parent.digest))
        assert.strictEqual(missing.reason, "NotFound")
        assert.strictEqual(missing.digest, hexOf(child.digest))
        assert.include(missing.message, "'child'")
        assert.include(missing.message, hexOf(parent.digest))
      }))

    it.effect("a putter rejects a parent before its child, and then stores nothing", () =>
      Effect.gen(function*() {
        const { left, root, shared } = diamond()
        const exit = yield* withPutter((putter) =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(putter.put(left))
            assert.strictEqual(error._tag, "DirectoryServiceError")
            assert.strictEqual(error.reason, "MissingChild")
            assert.strictEqual(error.digest, hexOf(left.digest))
            assert.include(error.message, `directory ${hexOf(left.digest)}`)
            assert.include(error.message, `'shared' (${hexOf(shared.digest)})`)
            assert.include(error.message, "was not uploaded before its parent")
            // The putter is spent: putting the child now, or closing, fails.
            assert.strictEqual((yield* Effect.flip(putter.put(shared))).reason, "PutterClosed")
            return yield* Effect.exit(putter.close)
          })
        )
        assert.isTrue(Exit.isFailure(exit))
        yield* assertAbsent([left, root, shared])
      }))

    it.effect("a putter rejects a child recorded with the wrong size", () =>
      Effect.gen(function*() {
        const child = makeDirectory([["a", fileNode()], ["b", fileNode()]])
        const parent = makeDirectory([["child", dirNode(child, child.size + 1)]])
        const error = yield* Effect.flip(withPutter((putter) =>
          Effect.zipRight(putter.put(child), putter.put(parent))
        ))
        assert.strictEqual(error.reason, "ChildSizeMismatch")
        assert.strictEqual(error.digest, hexOf(parent.digest))
        assert.include(error.message, `size ${child.size + 1}`)
        assert.include(error.message, `size ${child.size}`)
        yield* assertAbsent([child, parent])
      }))

    it.effect("a putter rejects an unconnected closure at close, and stores nothing", () =>
      Effect.gen(function*() {
        const { left, shared } = diamond()
        const stray = uniqueLeaf()
        const error = yield* Effect.flip(withPutter((putter) =>
          Effect.gen(function*() {
            yield* putter.put(shared)
            yield* putter.put(stray)
            yield* putter.put(left)
            return yield* putter.close
          })
        ))
        assert.strictEqual(error.reason, "Unconnected")
        assert.strictEqual(error.digest, hexOf(stray.digest))
        assert.include(error.message, hexOf(left.digest))
        yield* assertAbsent([shared, stray, left])
      }))

    it.effect("a putter rejects an empty close", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(withPutter((putter) => putter.close))
        assert.strictEqual(error.reason, "EmptyClosure")
      }))

    it.effect("an abandoned putter stores nothing", () =>
      Effect.gen(function*() {
        const { leavesFirst } = diamond()
        yield* withPutter((putter) => Effect.forEach(leavesFirst, putter.put, { discard: true }))
        yield* assertAbsent(leavesFirst)
      }))

    it.effect("a putter accepts the same directory twice, and refuses use after close", () =>
      Effect.gen(function*() {
        const { leavesFirst, root, shared } = diamond()
        const digest = yield* withPutter((putter) =>
          Effect.gen(function*() {
            yield* putter.put(shared)
            for (const directory of leavesFirst) yield* putter.put(directory)
            const digest = yield* putter.close
            assert.strictEqual((yield* Effect.flip(putter.put(shared))).reason, "PutterClosed")
            assert.strictEqual((yield* Effect.flip(putter.close)).reason, "PutterClosed")
            return digest
          })
        )
        assert.strictEqual(hexOf(digest), hexOf(root.digest))
        assert.strictEqual((yield* closureOf(root.digest)).length, 4)
      }))

    it.effect("concurrent putters of overlapping closures all succeed", () =>
      Effect.gen(function*() {
        const { leavesFirst, root } = diamond()
        const digests = yield* Effect.all(
          Array.from({ length: 6 }, () => putClosure(leavesFirst)),
          { concurrency: "unbounded" }
        )
        for (const digest of digests) assert.strictEqual(hexOf(digest), hexOf(root.digest))
        assert.strictEqual((yield* closureOf(root.digest)).length, 4)
      }))

    it.effect("digests of the wrong length are impossible by type", () =>
      Effect.gen(function*() {
        const service = yield* DirectoryService
        const long = new Uint8Array(33)
        // @ts-expect-error a plain Uint8Array is not a B3Digest: it has to pass B3Digest.fromBytes first
        const unchecked = () => service.get(long)
        assert.isFunction(unchecked)
        assert.isTrue(Either.isLeft(B3Digest.fromBytes(long)))
      }))
  })
}
