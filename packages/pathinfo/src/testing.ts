/**
 * The conformance suite every `PathInfoService` layer runs, and helpers to
 * build PathInfos in tests. Imports vitest: load it from test files only
 * (`@nixfx/pathinfo/testing`; `index.ts` does not reach it).
 *
 * ```ts
 * import { pathInfoServiceSuite } from "@nixfx/pathinfo/testing"
 * pathInfoServiceSuite("my store", myPathInfoServiceLayer)
 * ```
 *
 * The suite builds the layer once and runs every test against that one
 * instance, using fresh random store paths per test, so it also runs against
 * persistent or shared stores (the fixture paths are put idempotently).
 *
 * @since 0.1.0
 */
import { assert, describe, it, layer as vitestLayer } from "@effect/vitest"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Node from "@nixfx/castore-nodes/Node"
import type * as SymlinkTarget from "@nixfx/castore-nodes/SymlinkTarget"
import * as CAHash from "@nixfx/nix-compat/CAHash"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as NarInfo from "@nixfx/nix-compat/NarInfo"
import * as NixHash from "@nixfx/nix-compat/NixHash"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { emptyDirectoryNarSize } from "./internal/narSize.js"
import * as NarIndex from "./NarIndex.js"
import * as PathInfo from "./PathInfo.js"
import * as PathInfoService from "./PathInfoService.js"

export {
  /** @since 0.1.0 */
  makeTestPathInfo,
  /** @since 0.1.0 */
  narSizeFor,
  /** @since 0.1.0 */
  randomNode,
  /** @since 0.1.0 */
  randomSignature,
  /** @since 0.1.0 */
  randomStorePath,
  /** @since 0.1.0 */
  sortReferences
} from "./internal/testBuilders.js"
import {
  makeTestPathInfo,
  narSizeFor,
  randomNode,
  randomSignature,
  randomStorePath,
  sortReferences
} from "./internal/testBuilders.js"

const randomBytes = (n: number): Uint8Array => new Uint8Array(crypto.randomBytes(n))

// ---------------------------------------------------------------------------
// fixtures
// ---------------------------------------------------------------------------

/**
 * Where the repository keeps its fixtures (`fixtures/` at the root), seen
 * from this module in `src/` or `dist/`.
 *
 * @since 0.1.0
 */
export const defaultFixturesDir: string = fileURLToPath(new URL("../../../fixtures/", import.meta.url))

interface ManifestPath {
  readonly storePath: string
  readonly name: string
  readonly narinfo: string
  readonly castore:
    | { readonly type: "file"; readonly digest: string; readonly size: number; readonly executable: boolean }
    | { readonly type: "directory"; readonly digest: string; readonly size: number }
    | { readonly type: "symlink"; readonly target: string }
}

interface Manifest {
  readonly caches: Record<string, { readonly paths: ReadonlyArray<ManifestPath> }>
}

/**
 * A castore node from the manifest's `castore` form (hex digests).
 *
 * @since 0.1.0
 */
export const nodeFromManifest = (c: ManifestPath["castore"]): Node.Node => {
  switch (c.type) {
    case "file":
      return new Node.FileNode({
        digest: Either.getOrThrow(B3Digest.fromHex(c.digest)),
        size: c.size,
        executable: c.executable
      })
    case "directory":
      return new Node.DirectoryNode({ digest: Either.getOrThrow(B3Digest.fromHex(c.digest)), size: c.size })
    case "symlink":
      return new Node.SymlinkNode({ target: c.target as SymlinkTarget.SymlinkTarget })
  }
}

/**
 * One PathInfo per fixture store path: the narinfo of `caches/none` (of `xz`
 * for `fx-large`, which `none` lacks), the root node from `manifest.json`, and
 * for every reference the node the manifest gives it. Ordered leaves first.
 *
 * @since 0.1.0
 */
export const loadFixturePathInfos = (fixturesDir: string = defaultFixturesDir): Array<PathInfo.PathInfo> => {
  const manifest = JSON.parse(fs.readFileSync(path.join(fixturesDir, "manifest.json"), "utf8")) as Manifest
  const nodes = new Map<string, Node.Node>()
  for (const cache of ["xz", "none"]) {
    for (const p of manifest.caches[cache].paths) nodes.set(path.basename(p.storePath), nodeFromManifest(p.castore))
  }
  const chosen = new Map<string, ManifestPath>()
  for (const p of manifest.caches.none.paths) chosen.set(p.storePath, p)
  for (const p of manifest.caches.xz.paths) if (!chosen.has(p.storePath)) chosen.set(p.storePath, p)
  const infos: Array<PathInfo.PathInfo> = []
  for (const p of chosen.values()) {
    const text = fs.readFileSync(path.join(fixturesDir, p.narinfo), "utf8")
    const narInfo = Either.getOrThrow(NarInfo.parse(text))
    const refNodes = new Map<string, Node.Node>()
    for (const r of narInfo.references) {
      const basename = StorePath.toBasename(r)
      const n = nodes.get(basename)
      if (n !== undefined) refNodes.set(basename, n)
    }
    const built = PathInfo.fromNarInfo(narInfo, nodeFromManifest(p.castore), refNodes)
    if (Either.isLeft(built)) throw new Error(`fixture ${p.storePath}: ${built.left.message}`)
    infos.push(built.right)
  }
  // leaves first: a path after everything it references
  const byBasename = new Map(infos.map((i) => [i.basename, i]))
  const ordered: Array<PathInfo.PathInfo> = []
  const done = new Set<string>()
  const visit = (i: PathInfo.PathInfo) => {
    if (done.has(i.basename)) return
    done.add(i.basename)
    for (const r of i.references) {
      const dep = byBasename.get(StorePath.toBasename(r.storePath))
      if (dep !== undefined) visit(dep)
    }
    ordered.push(i)
  }
  for (const i of infos) visit(i)
  return ordered
}

// ---------------------------------------------------------------------------
// invalid PathInfos
// ---------------------------------------------------------------------------

/**
 * PathInfo fields that break one rule each, with the field the error must
 * name. Used by the suite; handy for other decoders' tests too.
 *
 * @since 0.1.0
 */
export const invalidPathInfoCases = (): ReadonlyArray<{
  readonly rule: string
  readonly field: string
  readonly fields: PathInfo.PathInfoFields
}> => {
  const base = makeTestPathInfo({ name: "invalid-case" })
  const fields: PathInfo.PathInfoFields = { ...base }
  const [a, b] = [randomStorePath("ref-a"), randomStorePath("ref-b")].sort((x, y) =>
    StorePath.toBasename(x) < StorePath.toBasename(y) ? -1 : 1
  )
  const none = Option.none<Node.Node>()
  const dir = new Node.DirectoryNode({ digest: B3Digest.unsafeMake(randomBytes(32)), size: 3 })
  const textCa = new CAHash.Text({ hash: NixHash.unsafeMake("sha256", randomBytes(32)) })
  return [
    {
      rule: "references ascend by basename",
      field: "references[1]",
      fields: { ...fields, references: [{ storePath: b, node: none }, { storePath: a, node: none }] }
    },
    {
      rule: "no duplicate reference",
      field: "references[1]",
      fields: { ...fields, references: [{ storePath: a, node: none }, { storePath: a, node: none }] }
    },
    {
      rule: "a digest names one store path",
      field: "references[1]",
      fields: {
        ...fields,
        references: [
          { storePath: a, node: none },
          { storePath: Either.getOrThrow(StorePath.make(a.digest, a.name + "-other")), node: none }
        ]
      }
    },
    {
      rule: "a self-reference has the path's own name",
      field: "references[0]",
      fields: {
        ...fields,
        references: [{ storePath: Either.getOrThrow(StorePath.make(base.storePath.digest, "other-name")), node: none }]
      }
    },
    {
      rule: "a self-reference records the root node",
      field: "references[0].node",
      fields: { ...fields, references: [{ storePath: base.storePath, node: Option.some(randomNode("symlink")) }] }
    },
    {
      rule: "narSize matches a file node",
      field: "narSize",
      fields: { ...fields, narSize: base.narSize + 8 }
    },
    {
      rule: "narSize is at least a directory's smallest NAR",
      field: "narSize",
      fields: { ...fields, node: dir, narSize: emptyDirectoryNarSize }
    },
    {
      rule: "narSize is a non-negative integer",
      field: "narSize",
      fields: { ...fields, narSize: -1 }
    },
    {
      rule: "narSha256 is 32 bytes",
      field: "narSha256",
      fields: { ...fields, narSha256: randomBytes(31) }
    },
    {
      rule: "the deriver is a .drv",
      field: "deriver",
      fields: { ...fields, deriver: Option.some(randomStorePath("not-a-derivation")) }
    },
    {
      rule: "no duplicate signature",
      field: "signatures[1]",
      fields: (() => {
        const sig = randomSignature("k")
        return { ...fields, signatures: [sig, new Keys.Signature({ keyName: "k", bytes: sig.bytes })] }
      })()
    },
    {
      rule: "fixed:r:sha256 is the NAR hash",
      field: "ca",
      fields: { ...fields, ca: Option.some(new CAHash.Nar({ hash: NixHash.unsafeMake("sha256", randomBytes(32)) })) }
    },
    {
      rule: "a flat CA addresses a single non-executable file",
      field: "ca",
      fields: {
        ...fields,
        node: dir,
        narSize: narSizeFor(dir),
        ca: Option.some(new CAHash.Flat({ hash: NixHash.unsafeMake("sha1", randomBytes(20)) }))
      }
    },
    {
      rule: "a text-addressed path does not reference itself",
      field: "ca",
      fields: { ...fields, ca: Option.some(textCa), references: [{ storePath: base.storePath, node: none }] }
    }
  ]
}

// ---------------------------------------------------------------------------
// the suite
// ---------------------------------------------------------------------------

/**
 * @since 0.1.0
 */
export interface SuiteOptions {
  /**
   * The layer adds signatures on `put` (a signing layer): results are compared
   * allowing signatures the input did not have.
   */
  readonly addsSignatures?: boolean | undefined
  /** `list` is supported (default true); when false the suite expects `NotSupported`. */
  readonly supportsList?: boolean | undefined
  /** The repository's `fixtures/` directory (default: found relative to this module). */
  readonly fixturesDir?: string | undefined
  /** Per-test timeout in milliseconds (default 30 s). */
  readonly timeout?: number | undefined
}

/**
 * Registers the conformance tests for a PathInfoService layer in a
 * `describe(name)` block.
 *
 * @since 0.1.0
 */
export const pathInfoServiceSuite = <E>(
  name: string,
  layer: Layer.Layer<PathInfoService.PathInfoService, E>,
  options: SuiteOptions = {}
): void => {
  const addsSignatures = options.addsSignatures ?? false
  const supportsList = options.supportsList ?? true
  const timeout = options.timeout ?? 30_000
  const fixturesDir = options.fixturesDir ?? defaultFixturesDir

  const same = (actual: PathInfo.PathInfo, expected: PathInfo.PathInfo, what: string): void => {
    const ok = addsSignatures
      ? PathInfo.equalsIgnoringAddedSignatures(expected, actual)
      : PathInfo.equals(expected, actual)
    if (!ok) {
      assert.fail(
        `${what}: PathInfo differs\nexpected: ${JSON.stringify(PathInfo.toJson(expected))}\nactual:   ${
          JSON.stringify(PathInfo.toJson(actual))
        }`
      )
    }
  }

  const service = PathInfoService.PathInfoService

  const getSome = (digest: Uint8Array) =>
    Effect.flatMap(service, (s) => s.get(digest)).pipe(
      Effect.map((o) => {
        if (Option.isNone(o)) return assert.fail(`expected a PathInfo for ${Buffer.from(digest).toString("hex")}`)
        return o.value
      })
    )

  const put = (p: PathInfo.PathInfo) => Effect.flatMap(service, (s) => s.put(p))

  const getNone = (p: PathInfo.PathInfo) =>
    Effect.flatMap(service, (s) => s.get(p.storePath.digest)).pipe(
      Effect.map((o) => assert.isTrue(Option.isNone(o), `${p.basename} must not be stored`))
    )

  describe(name, () => {
    describe("construction", () => {
      for (const c of invalidPathInfoCases()) {
        it(`rejects an invalid PathInfo: ${c.rule}`, () => {
          const r = PathInfo.make(c.fields)
          if (Either.isRight(r)) return assert.fail(`${c.rule}: PathInfo.make accepted it`)
          assert.strictEqual(r.left._tag, "InvalidPathInfo")
          assert.strictEqual(r.left.field, c.field, r.left.message)
          assert.throws(() => new PathInfo.PathInfo(c.fields))
        })
      }
    })

    vitestLayer(layer, { excludeTestServices: true, timeout: 60_000 })((it) => {
      it.effect("get of an unknown digest is none", () =>
        Effect.gen(function*() {
          const s = yield* service
          const r = yield* s.get(randomBytes(20))
          assert.isTrue(Option.isNone(r))
        }), timeout)

      it.effect("get of a digest that is not 20 bytes fails with InvalidPathInfo", () =>
        Effect.gen(function*() {
          const s = yield* service
          const e = yield* Effect.flip(s.get(randomBytes(19)))
          assert.strictEqual(e._tag, "InvalidPathInfo")
          if (e._tag === "InvalidPathInfo") assert.strictEqual(e.field, "digest")
        }), timeout)

      it.effect("put then get round-trips every field", () =>
        Effect.gen(function*() {
          const p = makeTestPathInfo({
            name: "thing",
            node: randomNode("file"),
            references: [{ storePath: randomStorePath("dep"), node: Option.some(randomNode("directory")) }],
            signatures: [randomSignature("cache-a"), randomSignature("cache-b")],
            deriver: Option.some(randomStorePath("thing.drv")),
            ca: Option.some(new CAHash.Flat({ hash: NixHash.unsafeMake("sha512", randomBytes(64)) }))
          })
          same(yield* put(p), p, "put's result")
          same(yield* getSome(p.storePath.digest), p, "get after put")
        }), timeout)

      it.effect("put is idempotent", () =>
        Effect.gen(function*() {
          const p = makeTestPathInfo({ signatures: [randomSignature("k1")] })
          const first = yield* put(p)
          const second = yield* put(p)
          same(first, p, "first put")
          same(second, p, "second put")
          assert.isTrue(PathInfo.equals(first, second), "both puts return the same PathInfo")
          same(yield* getSome(p.storePath.digest), p, "get")
        }), timeout)

      it.effect("a second put of a path merges signatures and fills in deriver, CA and reference nodes", () =>
        Effect.gen(function*() {
          const ref = randomStorePath("dep")
          const refNode = randomNode("directory")
          const node = randomNode("file")
          const p = makeTestPathInfo({
            node,
            references: [{ storePath: ref, node: Option.none() }],
            signatures: [randomSignature("k1")]
          })
          yield* put(p)
          const drv = randomStorePath("thing.drv")
          const ca = new CAHash.Flat({ hash: NixHash.unsafeMake("sha256", randomBytes(32)) })
          const q = new PathInfo.PathInfo({
            ...p,
            references: [{ storePath: ref, node: Option.some(refNode) }],
            signatures: [randomSignature("k2")],
            deriver: Option.some(drv),
            ca: Option.some(ca)
          })
          const merged = yield* put(q)
          const expected = new PathInfo.PathInfo({ ...q, signatures: [...p.signatures, ...q.signatures] })
          same(merged, expected, "merged")
          same(yield* getSome(p.storePath.digest), expected, "get after merge")
          // an older, poorer PathInfo changes nothing
          same(yield* put(p), expected, "re-put of the first version")
        }), timeout)

      it.effect("a put contradicting the stored PathInfo fails with PathInfoConflict", () =>
        Effect.gen(function*() {
          const p = makeTestPathInfo()
          yield* put(p)
          const symlink = randomNode("symlink")
          const cases: ReadonlyArray<readonly [string, PathInfo.PathInfo]> = [
            ["node", new PathInfo.PathInfo({ ...p, node: symlink, narSize: narSizeFor(symlink) })],
            ["narSha256", new PathInfo.PathInfo({ ...p, narSha256: randomBytes(32) })],
            ["references", new PathInfo.PathInfo({ ...p, references: [{ storePath: randomStorePath(), node: Option.none() }] })]
          ]
          for (const [field, q] of cases) {
            const e = yield* Effect.flip(put(q))
            assert.strictEqual(e._tag, "PathInfoConflict", e.message)
            if (e._tag === "PathInfoConflict") {
              assert.strictEqual(e.field, field)
              assert.strictEqual(e.storePath, p.basename)
            }
          }
          same(yield* getSome(p.storePath.digest), p, "the stored PathInfo is unchanged")
        }), timeout)

      it.effect("list streams every stored PathInfo", () =>
        Effect.gen(function*() {
          const s = yield* service
          const ps = Array.from({ length: 25 }, (_, i) => makeTestPathInfo({ name: `listed-${i}` }))
          for (const p of ps) yield* s.put(p)
          if (!supportsList) {
            const e = yield* Effect.flip(Stream.runDrain(s.list))
            assert.strictEqual(e._tag, "NotSupported")
            return
          }
          const all = Chunk.toReadonlyArray(yield* Stream.runCollect(s.list))
          const byBasename = new Map<string, PathInfo.PathInfo>()
          for (const p of all) {
            assert.isFalse(byBasename.has(p.basename), `list returned ${p.basename} twice`)
            byBasename.set(p.basename, p)
          }
          for (const p of ps) {
            const listed = byBasename.get(p.basename)
            if (listed === undefined) return assert.fail(`list lacks ${p.basename}`)
            same(listed, p, "listed")
          }
        }), timeout)

      it.effect("concurrent puts of the same path all succeed and store it once", () =>
        Effect.gen(function*() {
          const p = makeTestPathInfo({ references: [{ storePath: randomStorePath(), node: Option.some(randomNode()) }] })
          const results = yield* Effect.all(Array.from({ length: 12 }, () => put(p)), { concurrency: "unbounded" })
          for (const r of results) same(r, p, "concurrent put")
          same(yield* getSome(p.storePath.digest), p, "get")
        }), timeout)

      it.effect("concurrent puts of the same path with different signatures keep every signature", () =>
        Effect.gen(function*() {
          const p = makeTestPathInfo()
          const sigs = Array.from({ length: 8 }, (_, i) => randomSignature(`key-${i}`))
          yield* Effect.all(sigs.map((sig) => put(new PathInfo.PathInfo({ ...p, signatures: [sig] }))), {
            concurrency: "unbounded"
          })
          const stored = yield* getSome(p.storePath.digest)
          for (const sig of sigs) {
            assert.isTrue(
              stored.signatures.some((s) => PathInfo.signatureEquals(s, sig)),
              `signature ${Keys.formatSignature(sig)} was lost`
            )
          }
        }), timeout)

      it.effect("concurrent puts of different paths are all stored", () =>
        Effect.gen(function*() {
          const shared = randomStorePath("shared-dep")
          const sharedNode = randomNode("directory")
          const ps = Array.from({ length: 40 }, (_, i) =>
            makeTestPathInfo({
              name: `concurrent-${i}`,
              references: [{ storePath: shared, node: Option.some(sharedNode) }]
            }))
          yield* Effect.all(ps.map(put), { concurrency: "unbounded" })
          for (const p of ps) same(yield* getSome(p.storePath.digest), p, "get")
        }), timeout)

      it.effect("references by content are kept exactly", () =>
        Effect.gen(function*() {
          const node = randomNode("directory")
          const self = randomStorePath("self-referencing")
          const p = new PathInfo.PathInfo({
            ...makeTestPathInfo({ node }),
            storePath: self,
            references: sortReferences([
              { storePath: self, node: Option.some(node) },
              { storePath: randomStorePath("dir-dep"), node: Option.some(randomNode("directory")) },
              { storePath: randomStorePath("file-dep"), node: Option.some(randomNode("executable")) },
              { storePath: randomStorePath("link-dep"), node: Option.some(randomNode("symlink")) },
              { storePath: randomStorePath("unknown-dep"), node: Option.none() }
            ])
          })
          same(yield* put(p), p, "put")
          const got = yield* getSome(p.storePath.digest)
          same(got, p, "get")
          for (const r of p.references) {
            const n = got.referenceNode(r.storePath)
            assert.strictEqual(Option.isSome(n), Option.isSome(r.node))
            if (Option.isSome(n) && Option.isSome(r.node)) assert.isTrue(Node.equals(n.value, r.node.value))
          }
        }), timeout)

      it.effect("a referrer recording another node than the stored reference is refused", () =>
        Effect.gen(function*() {
          const reference = makeTestPathInfo({ name: "reference", node: randomNode("directory") })
          yield* put(reference)
          const recorded = randomNode("directory")
          const referrer = makeTestPathInfo({
            name: "referrer",
            references: [{ storePath: reference.storePath, node: Option.some(recorded) }]
          })
          const e = yield* Effect.flip(put(referrer))
          assert.strictEqual(e._tag, "ReferenceConflict", e.message)
          if (e._tag === "ReferenceConflict") {
            assert.strictEqual(e.putSide, "referrer")
            assert.strictEqual(e.referrer, referrer.basename)
            assert.strictEqual(e.reference, reference.basename)
            assert.isTrue(Node.equals(e.recordedNode, recorded))
            assert.isTrue(Node.equals(e.actualNode, reference.node))
          }
          yield* getNone(referrer)
          // the same referrer recording the right node is fine
          const good = new PathInfo.PathInfo({
            ...referrer,
            references: [{ storePath: reference.storePath, node: Option.some(reference.node) }]
          })
          same(yield* put(good), good, "consistent referrer")
        }), timeout)

      it.effect("a reference whose node differs from what a stored referrer recorded is refused", () =>
        Effect.gen(function*() {
          const referenceStorePath = randomStorePath("reference")
          const recorded = randomNode("directory")
          const referrer = makeTestPathInfo({
            name: "referrer",
            references: [{ storePath: referenceStorePath, node: Option.some(recorded) }]
          })
          yield* put(referrer)
          const actual = randomNode("directory")
          const reference = new PathInfo.PathInfo({
            ...makeTestPathInfo({ node: actual }),
            storePath: referenceStorePath
          })
          const e = yield* Effect.flip(put(reference))
          assert.strictEqual(e._tag, "ReferenceConflict", e.message)
          if (e._tag === "ReferenceConflict") {
            assert.strictEqual(e.putSide, "reference")
            assert.strictEqual(e.referrer, referrer.basename)
            assert.strictEqual(e.reference, reference.basename)
            assert.isTrue(Node.equals(e.recordedNode, recorded))
            assert.isTrue(Node.equals(e.actualNode, actual))
          }
          yield* getNone(reference)
          const good = new PathInfo.PathInfo({
            ...makeTestPathInfo({ node: recorded }),
            storePath: referenceStorePath
          })
          same(yield* put(good), good, "the reference with the recorded node")
        }), timeout)

      it.effect("filling in a reference node that contradicts the stored reference is refused", () =>
        Effect.gen(function*() {
          const reference = makeTestPathInfo({ name: "reference" })
          yield* put(reference)
          const referrer = makeTestPathInfo({
            name: "referrer",
            references: [{ storePath: reference.storePath, node: Option.none() }]
          })
          yield* put(referrer)
          const wrong = new PathInfo.PathInfo({
            ...referrer,
            references: [{ storePath: reference.storePath, node: Option.some(randomNode()) }]
          })
          const e = yield* Effect.flip(put(wrong))
          assert.strictEqual(e._tag, "ReferenceConflict", e.message)
          same(yield* getSome(referrer.storePath.digest), referrer, "the stored referrer is unchanged")
        }), timeout)

      it.effect("every fixture path round-trips unchanged", () =>
        Effect.gen(function*() {
          if (!fs.existsSync(path.join(fixturesDir, "manifest.json"))) {
            return assert.fail(`fixtures not found in ${fixturesDir}: pass options.fixturesDir`)
          }
          const fixtures = loadFixturePathInfos(fixturesDir)
          assert.strictEqual(fixtures.length, 27)
          for (const p of fixtures) same(yield* put(p), p, `put ${p.basename}`)
          for (const p of fixtures) same(yield* getSome(p.storePath.digest), p, `get ${p.basename}`)
          // a second round (e.g. another run against a persistent store) changes nothing
          for (const p of fixtures) same(yield* put(p), p, `re-put ${p.basename}`)
          if (supportsList) {
            const listed = new Map(
              Chunk.toReadonlyArray(yield* Stream.runCollect((yield* service).list)).map((p) => [p.basename, p])
            )
            for (const p of fixtures) {
              const l = listed.get(p.basename)
              if (l === undefined) return assert.fail(`list lacks ${p.basename}`)
              same(l, p, `listed ${p.basename}`)
            }
          }
        }), timeout)
    })
  })
}

/**
 * @since 0.1.0
 * @category conformance
 */
export interface NarIndexSuiteOptions {
  /** The index answers for the NarHash of every PathInfo in the layer's PathInfoService (SQL stores). */
  readonly pathInfosAnswer: boolean
  /** Per-test timeout in milliseconds (default 30 s). */
  readonly timeout?: number | undefined
}

/**
 * Registers the conformance tests of a `NarIndex` layer, built once and used
 * by every test with fresh random hashes (so persistent stores work too). The
 * layer also provides the PathInfoService the index sits beside.
 *
 * @since 0.1.0
 * @category conformance
 */
export const narIndexSuite = <E>(
  name: string,
  layer: Layer.Layer<NarIndex.NarIndex | PathInfoService.PathInfoService, E>,
  options: NarIndexSuiteOptions
): void => {
  const timeout = options.timeout ?? 30_000
  const index = NarIndex.NarIndex

  const expectEntry = (got: Option.Option<NarIndex.Entry>, narSha256: Uint8Array, narSize: number, node: Node.Node) => {
    if (Option.isNone(got)) return assert.fail("expected an entry")
    assert.deepStrictEqual(Buffer.from(got.value.narSha256), Buffer.from(narSha256))
    assert.strictEqual(got.value.narSize, narSize)
    assert.isTrue(Node.equals(got.value.node, node), "the recorded node")
  }

  describe(name, () => {
    vitestLayer(layer, { excludeTestServices: true, timeout: 60_000 })((it) => {
      it.effect("get of an unknown NAR is none", () =>
        Effect.gen(function*() {
          assert.isTrue(Option.isNone(yield* (yield* index).get(randomBytes(32))))
        }), timeout)

      it.effect("put then get returns the entry, for every kind of node", () =>
        Effect.gen(function*() {
          const narIndex = yield* index
          for (const kind of ["file", "executable", "directory", "symlink"] as const) {
            const node = randomNode(kind)
            const narSha256 = randomBytes(32)
            yield* narIndex.put({ narSha256, narSize: narSizeFor(node), node })
            expectEntry(yield* narIndex.get(narSha256), narSha256, narSizeFor(node), node)
          }
        }), timeout)

      it.effect("a second put of the same NAR replaces the entry", () =>
        Effect.gen(function*() {
          const narIndex = yield* index
          const narSha256 = randomBytes(32)
          yield* narIndex.put({ narSha256, narSize: 7, node: randomNode("file") })
          const node = randomNode("directory")
          yield* narIndex.put({ narSha256, narSize: 2 ** 40, node })
          expectEntry(yield* narIndex.get(narSha256), narSha256, 2 ** 40, node)
        }), timeout)

      it.effect("entries do not depend on PathInfos", () =>
        Effect.gen(function*() {
          const narIndex = yield* index
          const node = randomNode("directory")
          const narSha256 = randomBytes(32)
          yield* narIndex.put({ narSha256, narSize: 1234, node })
          // A PathInfo with another NAR changes nothing.
          yield* (yield* PathInfoService.PathInfoService).put(makeTestPathInfo({ node: randomNode("directory") }))
          expectEntry(yield* narIndex.get(narSha256), narSha256, 1234, node)
        }), timeout)

      if (options.pathInfosAnswer) {
        it.effect("a stored PathInfo answers for its NarHash", () =>
          Effect.gen(function*() {
            const p = makeTestPathInfo({ node: randomNode("directory") })
            yield* (yield* PathInfoService.PathInfoService).put(p)
            expectEntry(yield* (yield* index).get(p.narSha256), p.narSha256, p.narSize, p.node)
          }), timeout)
      }
    })
  })
}
