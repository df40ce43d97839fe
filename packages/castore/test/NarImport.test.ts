import { afterAll, assert, describe, it } from "@effect/vitest"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Directory from "@nixfx/castore-nodes/Directory"
import * as Node from "@nixfx/castore-nodes/Node"
import type * as PathComponent from "@nixfx/castore-nodes/PathComponent"
import * as Nar from "@nixfx/nix-compat/Nar"
import { BlobService, DirectoryService, FilesystemBlobService, NarImport, NarRender } from "@nixfx/castore"
import { BlobServiceError } from "@nixfx/castore/CastoreError"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { brotliDecompressSync } from "node:zlib"

const fixtures = new URL("../../../fixtures/", import.meta.url)

type CastoreJson =
  | { readonly type: "directory"; readonly digest: string; readonly size: number }
  | { readonly type: "file"; readonly digest: string; readonly size: number; readonly executable: boolean }
  | { readonly type: "symlink"; readonly target: string }
interface ManifestPath {
  readonly name: string
  readonly url: string
  readonly narHash: string
  readonly narHashSRI: string
  readonly narSize: number
  readonly castore: CastoreJson
}
interface Manifest {
  readonly caches: Record<string, { readonly dir: string; readonly paths: ReadonlyArray<ManifestPath> }>
}
const manifest: Manifest = JSON.parse(Fs.readFileSync(new URL("manifest.json", fixtures), "utf8"))
const directoriesByNarHash: Record<
  string,
  { readonly directories: ReadonlyArray<{ readonly digest: string; readonly size: number; readonly message: string }> }
> = JSON.parse(Fs.readFileSync(new URL("castore-directories.json", fixtures), "utf8"))

const fixtureNars = (() => {
  const out: Array<{ name: string; nar: Uint8Array; path: ManifestPath }> = []
  const none = manifest.caches["none"]
  for (const path of none.paths) {
    out.push({ name: path.name, nar: new Uint8Array(Fs.readFileSync(new URL(`${none.dir}/${path.url}`, fixtures))), path })
  }
  const br = manifest.caches["br"]
  const large = br.paths.find((p) => p.name === "fx-large")!
  out.push({
    name: large.name,
    nar: new Uint8Array(brotliDecompressSync(Fs.readFileSync(new URL(`${br.dir}/${large.url}`, fixtures)))),
    path: large
  })
  return out
})()
const fixture = (name: string) => fixtureNars.find((f) => f.name === name)!

const split = (bytes: Uint8Array, size: number): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  for (let p = 0; p < bytes.length; p += size) out.push(bytes.subarray(p, Math.min(p + size, bytes.length)))
  return out
}
const narStream = (bytes: Uint8Array, size = 4096) => Stream.fromIterable(split(bytes, size)).pipe(Stream.rechunk(1))
const concat = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0))
  let p = 0
  for (const c of chunks) {
    out.set(c, p)
    p += c.length
  }
  return out
}
const hex = (d: Uint8Array) => Buffer.from(d).toString("hex")

const nodeJson = (node: Node.Node): CastoreJson => {
  switch (node._tag) {
    case "Directory":
      return { type: "directory", digest: hex(node.digest), size: node.size }
    case "File":
      return { type: "file", digest: hex(node.digest), size: node.size, executable: node.executable }
    case "Symlink":
      return { type: "symlink", target: node.target }
  }
}

const memory = Layer.merge(BlobService.layerMemory, DirectoryService.layerMemory)

const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "nixfx-nar-import-"))
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))
let fsCounter = 0
const filesystem = () =>
  Layer.merge(
    FilesystemBlobService.layer({ directory: Path.join(root, `store-${fsCounter++}`) }),
    DirectoryService.layerMemory
  )

/** Every directory digest a fixture's closure holds, from castore-directories.json. */
const expectedDirectories = (narHash: string): Array<string> =>
  (directoriesByNarHash[narHash]?.directories ?? []).map((d) => d.digest)

const renderAll = (node: Node.Node) =>
  Effect.map(Stream.runCollect(NarRender.render(node)), (c) => concat(Chunk.toReadonlyArray(c)))

describe("NarImport fixtures", () => {
  it("covers the 27 store paths", () => {
    assert.strictEqual(fixtureNars.length, 27)
  })

  for (const { name, nar, path } of fixtureNars) {
    it.effect(`${name}: imports to the manifest's root node, NarHash and NarSize; renders back byte for byte`, () =>
      Effect.gen(function*() {
        const result = yield* NarImport.ingest(narStream(nar, 1000))
        assert.deepStrictEqual(nodeJson(result.root), path.castore)
        assert.strictEqual(result.narSize, path.narSize)
        assert.strictEqual(`sha256-${Buffer.from(result.narSha256).toString("base64")}`, path.narHashSRI)

        // The closure in the DirectoryService is exactly the expected one, with the expected bytes.
        if (result.root._tag === "Directory") {
          const stored = Chunk.toReadonlyArray(
            yield* Stream.runCollect((yield* DirectoryService.DirectoryService).getRecursive(result.root.digest))
          )
          const expected = directoriesByNarHash[path.narHash].directories
          assert.deepStrictEqual(
            stored.map((d) => hex(d.digest)).sort(),
            expected.map((d) => d.digest).sort()
          )
          for (const d of stored) {
            const e = expected.find((x) => x.digest === hex(d.digest))!
            assert.strictEqual(Buffer.from(Directory.encode(d)).toString("base64"), e.message)
            assert.strictEqual(d.size, e.size)
          }
        }

        const rendered = yield* renderAll(result.root)
        assert.strictEqual(rendered.length, nar.length)
        assert.deepStrictEqual(rendered, nar)

        const calc = yield* NarRender.calculate(result.root)
        assert.strictEqual(calc.narSize, path.narSize)
        assert.deepStrictEqual(calc.narSha256, result.narSha256)
      }).pipe(Effect.provide(memory)))
  }

  for (const name of ["fx-large", "fx-tree", "fx-empty-file", "fx-symlink-dangling"]) {
    it.effect(`${name}: through the filesystem blob service`, () =>
      Effect.gen(function*() {
        const { nar, path } = fixture(name)
        const result = yield* NarImport.ingest(narStream(nar, 65536))
        assert.deepStrictEqual(nodeJson(result.root), path.castore)
        assert.deepStrictEqual(yield* renderAll(result.root), nar)
      }).pipe(Effect.provide(filesystem())))
  }

  it.effect("the input split does not matter", () =>
    Effect.gen(function*() {
      const { nar, path } = fixture("fx-tree")
      for (const size of [1, 7, 64, 100_000]) {
        const result = yield* NarImport.ingest(narStream(nar, size))
        assert.deepStrictEqual(nodeJson(result.root), path.castore, `split ${size}`)
      }
      // Several buffers in one stream chunk.
      const result = yield* NarImport.ingest(Stream.fromIterable(split(nar, 333)))
      assert.deepStrictEqual(nodeJson(result.root), path.castore)
    }).pipe(Effect.provide(memory)))
})

// ---------------------------------------------------------------------------
// bad input
// ---------------------------------------------------------------------------

const utf8 = new TextEncoder()
type Part = string | Uint8Array
/** Wire form of NAR strings (length, bytes, zero padding); lets tests build NARs the writer would refuse. */
const wire = (...parts: ReadonlyArray<Part>): Uint8Array => {
  const chunks: Array<Uint8Array> = []
  for (const part of parts) {
    const b = typeof part === "string" ? utf8.encode(part) : part
    const out = new Uint8Array(8 + b.length + ((8 - (b.length % 8)) % 8))
    new DataView(out.buffer).setBigUint64(0, BigInt(b.length), true)
    out.set(b, 8)
    chunks.push(out)
  }
  return concat(chunks)
}
const file = (contents: string): Array<Part> => ["(", "type", "regular", "contents", contents, ")"]
const dir = (...entries: ReadonlyArray<[Part, Array<Part>]>): Array<Part> => [
  "(",
  "type",
  "directory",
  ...entries.flatMap(([name, node]) => ["entry", "(", "name", name, "node", ...node, ")"]),
  ")"
]

/** All directory digests the services hold that `digests` names. */
const visible = (digests: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const service = yield* DirectoryService.DirectoryService
    const found: Array<string> = []
    for (const d of digests) {
      if (Option.isSome(yield* service.get(Either.getOrThrow(B3Digest.fromHex(d))))) found.push(d)
    }
    return found
  })

describe("NarImport rejects", () => {
  it.effect("a truncated NAR, at many offsets, leaving no directory of it visible", () =>
    Effect.gen(function*() {
      const { nar, path } = fixture("fx-tree")
      const dirs = expectedDirectories(path.narHash)
      assert.isAbove(dirs.length, 5)
      for (let cut = 0; cut < nar.length; cut += 40) {
        const err = yield* Effect.flip(NarImport.ingest(narStream(nar.subarray(0, cut), 256)))
        assert.strictEqual(err._tag, "NarImportError")
        if (err._tag !== "NarImportError") continue
        assert.strictEqual(err.reason, "InvalidNar")
        assert.isTrue(Nar.isNarError(err.cause))
        assert.strictEqual((err.cause as Nar.NarError).reason, "Truncated")
        assert.match(err.message, /^NAR import failed at \/.*: NAR offset \d+: input ends/)
      }
      assert.deepStrictEqual(yield* visible(dirs), [])
      // The same services import the whole NAR fine afterwards.
      const ok = yield* NarImport.ingest(narStream(nar))
      assert.deepStrictEqual(nodeJson(ok.root), path.castore)
      assert.deepStrictEqual((yield* visible(dirs)).sort(), [...dirs].sort())
    }).pipe(Effect.provide(memory)))

  it.effect("invalid names, unsorted and duplicate entries, naming the path", () =>
    Effect.gen(function*() {
      // "/a" is a complete directory, put through the putter before the error is found in "/sub".
      const sub = (inner: Array<Part>) =>
        wire("nix-archive-1", ...dir(["a", dir(["x", file("1")])], ["ok", file("x")], ["sub", inner]))
      const cases: ReadonlyArray<[Uint8Array, Nar.NarErrorReason, string]> = [
        [sub(dir(["..", file("")])), "InvalidName", "/sub"],
        [sub(dir(["a/b", file("")])), "InvalidName", "/sub"],
        [sub(dir(["b", file("")], ["a", file("")])), "UnsortedEntries", "/sub"],
        [sub(dir(["a", file("")], ["a", file("")])), "DuplicateEntry", "/sub"]
      ]
      for (const [bytes, reason, at] of cases) {
        const err = yield* Effect.flip(NarImport.ingest(narStream(bytes, 16)))
        assert.strictEqual(err.reason, "InvalidNar")
        assert.strictEqual((err.cause as Nar.NarError).reason, reason)
        assert.strictEqual(err.path, at)
      }
      const a = Either.getOrThrow(Directory.make([{
        name: "x" as PathComponent.PathComponent,
        node: new Node.FileNode({ digest: B3Digest.hash(utf8.encode("1")), size: 1, executable: false })
      }]))
      assert.deepStrictEqual(yield* visible([hex(a.digest)]), [])
      // The same "/a" from a valid NAR is stored.
      yield* NarImport.ingest(Stream.make(wire("nix-archive-1", ...dir(["a", dir(["x", file("1")])]))))
      assert.deepStrictEqual(yield* visible([hex(a.digest)]), [hex(a.digest)])
    }).pipe(Effect.provide(memory)))

  it.effect("a name or symlink target that is not UTF-8", () =>
    Effect.gen(function*() {
      const name = yield* Effect.flip(
        NarImport.ingest(Stream.make(wire("nix-archive-1", ...dir([new Uint8Array([0x61, 0xff]), file("")]))))
      )
      assert.strictEqual(name.reason, "UnsupportedName")
      const target = yield* Effect.flip(
        NarImport.ingest(
          Stream.make(
            wire("nix-archive-1", ...dir(["l", ["(", "type", "symlink", "target", new Uint8Array([0xc3]), ")"]]))
          )
        )
      )
      assert.strictEqual(target.reason, "UnsupportedTarget")
      assert.strictEqual(target.path, "/l")
    }).pipe(Effect.provide(memory)))

  it.effect("a failing blob service: typed error with the file's path, no directory visible", () =>
    Effect.gen(function*() {
      const { nar, path } = fixture("fx-large")
      const real = yield* BlobService.BlobService
      let written = 0
      const failing = BlobService.BlobService.of({
        ...real,
        writer: Effect.map(real.writer, (w) => ({
          ...w,
          write: (chunk: Uint8Array) =>
            Effect.suspend(() => {
              written += chunk.length
              return written > 300_000
                ? Effect.fail(new BlobServiceError({ reason: "Storage", description: "disk full" }))
                : w.write(chunk)
            })
        }))
      })
      const err = yield* Effect.flip(
        NarImport.ingest(narStream(nar, 65536)).pipe(Effect.provideService(BlobService.BlobService, failing))
      )
      assert.strictEqual(err._tag, "NarImportError")
      if (err._tag !== "NarImportError") return
      assert.strictEqual(err.reason, "BlobService")
      assert.match(err.message, /^NAR import failed at \/\S+: storing file contents: blob service: disk full$/)
      assert.deepStrictEqual(yield* visible(expectedDirectories(path.narHash)), [])
    }).pipe(Effect.provide(memory)))

  it.effect("a blob service whose putBytes fails (small files): typed error, no directory visible", () =>
    Effect.gen(function*() {
      const { nar, path } = fixture("fx-tree")
      const real = yield* BlobService.BlobService
      let calls = 0
      const failing = BlobService.BlobService.of({
        ...real,
        putBytes: (bytes: Uint8Array) =>
          ++calls > 10
            ? Effect.fail(new BlobServiceError({ reason: "Storage", description: "quota exceeded" }))
            : real.putBytes(bytes)
      })
      const err = yield* Effect.flip(
        NarImport.ingest(narStream(nar, 300)).pipe(Effect.provideService(BlobService.BlobService, failing))
      )
      assert.strictEqual(err._tag, "NarImportError")
      if (err._tag !== "NarImportError") return
      assert.strictEqual(err.reason, "BlobService")
      assert.match(err.message, /^NAR import failed at \/\S.*: storing file contents: blob service: quota exceeded$/)
      assert.deepStrictEqual(yield* visible(expectedDirectories(path.narHash)), [])
    }).pipe(Effect.provide(memory)))

  it.effect("a failing input stream passes its error through, no directory visible", () =>
    Effect.gen(function*() {
      const { nar, path } = fixture("fx-tree")
      const err = yield* Effect.flip(
        NarImport.ingest(Stream.concat(narStream(nar.subarray(0, nar.length - 100)), Stream.fail("network down" as const)))
      )
      assert.strictEqual(err, "network down")
      assert.deepStrictEqual(yield* visible(expectedDirectories(path.narHash)), [])
    }).pipe(Effect.provide(memory)))
})

describe("NarRender rejects", () => {
  it.effect("a missing blob, naming digest and path", () =>
    Effect.gen(function*() {
      const { nar } = fixture("fx-tree")
      const result = yield* NarImport.ingest(narStream(nar))
      const emptyBlobs = yield* BlobService.makeMemory
      const err = yield* Effect.flip(
        Stream.runDrain(NarRender.render(result.root)).pipe(Effect.provideService(BlobService.BlobService, emptyBlobs))
      )
      assert.strictEqual(err.reason, "MissingBlob")
      assert.isDefined(err.digest)
      assert.match(err.digest!, /^[0-9a-f]{64}$/)
      assert.match(err.message, new RegExp(`^NAR render failed at /\\S.* \\(${err.digest}\\): the blob service has no blob`))
      const calc = yield* Effect.flip(
        NarRender.calculate(result.root).pipe(Effect.provideService(BlobService.BlobService, emptyBlobs))
      )
      assert.strictEqual(calc.reason, "MissingBlob")
    }).pipe(Effect.provide(memory)))

  it.effect("a missing directory", () =>
    Effect.gen(function*() {
      const { nar } = fixture("fx-tree")
      const result = yield* NarImport.ingest(narStream(nar))
      const emptyDirs = yield* DirectoryService.makeMemory
      const err = yield* Effect.flip(
        Stream.runDrain(NarRender.render(result.root)).pipe(
          Effect.provideService(DirectoryService.DirectoryService, emptyDirs)
        )
      )
      assert.strictEqual(err.reason, "MissingDirectory")
      assert.strictEqual(err.path, "/")
      assert.strictEqual(err.digest, hex((result.root as Node.DirectoryNode).digest))
    }).pipe(Effect.provide(memory)))

  it.effect("a blob whose size differs from its FileNode", () =>
    Effect.gen(function*() {
      const info = yield* BlobService.putBytes(utf8.encode("hello"))
      for (const size of [4, 6]) {
        const err = yield* Effect.flip(
          Stream.runDrain(NarRender.render(new Node.FileNode({ digest: info.digest, size, executable: false })))
        )
        assert.strictEqual(err.reason, "BlobSizeMismatch")
        assert.include(err.message, `the FileNode says ${size} bytes`)
      }
      // An "empty" file whose digest is not the empty blob's is looked up too.
      const err = yield* Effect.flip(
        Stream.runDrain(NarRender.render(new Node.FileNode({ digest: info.digest, size: 0, executable: false })))
      )
      assert.strictEqual(err.reason, "BlobSizeMismatch")
    }).pipe(Effect.provide(memory)))
})

describe("NarImport round trips", () => {
  it.effect("random trees import and render back identically", () =>
    Effect.gen(function*() {
      const rnd = Crypto.createHash("sha256")
      let seed = 0
      const bytes = (n: number) => {
        const out = new Uint8Array(n)
        for (let i = 0; i < n; i += 32) {
          out.set(rnd.copy().update(String(seed++)).digest().subarray(0, Math.min(32, n - i)), i)
        }
        return out
      }
      const tree = (depth: number): Nar.Tree => {
        const k = (seed * 7919) % 10
        seed++
        if (depth > 3 || k < 4) return { _tag: "File", executable: k % 2 === 0, contents: bytes((seed * 131) % 3000) }
        if (k < 5) return { _tag: "Symlink", target: utf8.encode(`../t${seed}`) }
        const names = [...new Set(Array.from({ length: (seed % 5) + 1 }, (_, i) => `n${(seed * (i + 3)) % 17}`))].sort()
        return { _tag: "Directory", entries: names.map((n) => ({ name: utf8.encode(n), node: tree(depth + 1) })) }
      }
      for (let i = 0; i < 30; i++) {
        const nar = Either.getOrThrow(Nar.encodeTree(tree(0)))
        const result = yield* NarImport.ingest(narStream(nar, 500))
        assert.deepStrictEqual(yield* renderAll(result.root), nar)
        assert.strictEqual(result.narSize, nar.length)
        assert.deepStrictEqual(result.narSha256, new Uint8Array(Crypto.createHash("sha256").update(nar).digest()))
      }
    }).pipe(Effect.provide(memory)))
})

describe("NarImport large input", () => {
  it.effect("a large import reports the right NarHash", () =>
    Effect.gen(function*() {
      const big = new Uint8Array(Crypto.randomBytes(9 * 1024 * 1024))
      const nar = Either.getOrThrow(Nar.encodeTree({
        _tag: "Directory",
        entries: [
          { name: utf8.encode("a"), node: { _tag: "File", executable: false, contents: big } },
          { name: utf8.encode("b"), node: { _tag: "File", executable: true, contents: big.subarray(5) } }
        ]
      }))
      const result = yield* NarImport.ingest(narStream(nar, 65536))
      assert.strictEqual(result.narSize, nar.length)
      assert.strictEqual(hex(result.narSha256), Crypto.createHash("sha256").update(nar).digest("hex"))
      assert.deepStrictEqual(yield* renderAll(result.root), nar)
    }).pipe(Effect.provide(memory)))
})
