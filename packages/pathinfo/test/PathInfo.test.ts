import { assert, describe, it } from "@effect/vitest"
import * as Node from "@nixfx/castore-nodes/Node"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as NarInfo from "@nixfx/nix-compat/NarInfo"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import {
  invalidPathInfoCases,
  loadFixturePathInfos,
  makeTestPathInfo,
  nodeFromManifest,
  randomNode,
  randomSignature,
  randomStorePath
} from "@nixfx/pathinfo/testing"
import * as Either from "effect/Either"
import * as Equal from "effect/Equal"
import * as Option from "effect/Option"
import * as fs from "node:fs"

const fixtures = new URL("../../../fixtures/", import.meta.url)
const manifest = JSON.parse(fs.readFileSync(new URL("manifest.json", fixtures), "utf8"))
const publicKey = Either.getOrThrow(
  Keys.parsePublicKey(fs.readFileSync(new URL("keys/test-cache-1.public", fixtures), "utf8").trim())
)
const nonePaths: ReadonlyArray<any> = manifest.caches.none.paths

describe("PathInfo from fixture narinfos", () => {
  const infos = loadFixturePathInfos()
  const byBasename = new Map(infos.map((p) => [p.basename, p]))

  it("builds one PathInfo per fixture path, with the manifest's values", () => {
    assert.strictEqual(infos.length, 27)
    for (const m of [...nonePaths, ...manifest.caches.xz.paths]) {
      const p = byBasename.get(m.storePath.slice("/nix/store/".length))
      if (p === undefined) return assert.fail(`missing ${m.storePath}`)
      assert.strictEqual(p.narSize, m.narSize)
      assert.strictEqual("sha256:" + PathInfo.toJson(p).narSha256.slice("sha256:".length), m.narHash)
      assert.deepStrictEqual(p.references.map((r) => StorePath.toBasename(r.storePath)), m.references)
      assert.strictEqual(Option.getOrNull(Option.map(p.deriver, StorePath.toBasename)), m.deriver)
      assert.strictEqual(PathInfo.toJson(p).ca, m.ca)
      assert.isTrue(Node.equals(p.node, nodeFromManifest(m.castore)))
      assert.strictEqual(PathInfo.fingerprint(p), m.fingerprint)
      assert.strictEqual(PathInfo.verifiedSignatures(p, [publicKey]).length, 1, `${p.basename} verifies`)
    }
  })

  it("records every reference's node, the self-reference's being the root node", () => {
    const app = infos.find((p) => p.storePath.name === "fx-app-1.0")!
    assert.strictEqual(app.references.length, 2)
    for (const r of app.references) {
      assert.isTrue(Option.isSome(r.node))
      const target = byBasename.get(StorePath.toBasename(r.storePath))!
      assert.isTrue(Node.equals(Option.getOrThrow(r.node), target.node))
    }
    assert.isTrue(Node.equals(Option.getOrThrow(app.referenceNode(app.storePath)), app.node))
  })

  it("renders back to the exact narinfo text (nodes dropped, names kept)", () => {
    for (const m of nonePaths) {
      const text = fs.readFileSync(new URL(m.narinfo, fixtures), "utf8")
      const original = Either.getOrThrow(NarInfo.parse(text))
      const p = byBasename.get(m.storePath.slice("/nix/store/".length))!
      const rendered = PathInfo.toNarInfo(p, {
        url: original.url,
        compression: original.compression,
        fileHash: Option.getOrUndefined(original.fileHash),
        fileSize: Option.getOrUndefined(original.fileSize),
        system: Option.getOrUndefined(original.system)
      })
      assert.strictEqual(NarInfo.render(rendered), text, m.storePath)
    }
  })

  it("JSON form round-trips", () => {
    for (const p of infos) {
      const json = JSON.parse(JSON.stringify(PathInfo.toJson(p)))
      const back = PathInfo.fromJson(json)
      assert.isTrue(Either.isRight(back) && PathInfo.equals(back.right, p), p.basename)
      assert.isTrue(Either.isRight(back) && Equal.equals(back.right, p))
    }
  })
})

describe("fromNarInfo", () => {
  const text = fs.readFileSync(new URL(nonePaths.find((m) => m.name === "fx-app-1.0").narinfo, fixtures), "utf8")
  const narInfo = Either.getOrThrow(NarInfo.parse(text))
  const root = nodeFromManifest(nonePaths.find((m) => m.name === "fx-app-1.0").castore)

  it("leaves references other than itself without a node when none is given", () => {
    const p = Either.getOrThrow(PathInfo.fromNarInfo(narInfo, root))
    for (const r of p.references) {
      const self = StorePath.equals(r.storePath, p.storePath)
      assert.strictEqual(Option.isSome(r.node), self)
    }
  })

  it("refuses a node for a path that is not a reference", () => {
    const r = PathInfo.fromNarInfo(narInfo, root, new Map([[randomStorePath("stranger").basename, randomNode()]]))
    assert.isTrue(Either.isLeft(r) && r.left.field === "references")
  })

  it("refuses a root node the NarSize contradicts", () => {
    const r = PathInfo.fromNarInfo(narInfo, randomNode("file"))
    assert.isTrue(Either.isLeft(r) && r.left.field === "narSize", Either.isLeft(r) ? r.left.message : "")
  })

  it("sorts out-of-order references and drops duplicate signatures", () => {
    const shuffled = new NarInfo.NarInfo({
      ...narInfo,
      references: [...narInfo.references].reverse(),
      signatures: [narInfo.signatures[0], narInfo.signatures[0]]
    })
    const p = Either.getOrThrow(PathInfo.fromNarInfo(shuffled, root))
    const names = p.references.map((r) => StorePath.toBasename(r.storePath))
    assert.deepStrictEqual(names, [...names].sort())
    assert.strictEqual(p.signatures.length, 1)
  })
})

describe("validation", () => {
  it("names the broken rule's field", () => {
    for (const c of invalidPathInfoCases()) {
      const r = PathInfo.make(c.fields)
      assert.isTrue(Either.isLeft(r), c.rule)
      if (Either.isLeft(r)) {
        assert.strictEqual(r.left.field, c.field, c.rule)
        assert.include(r.left.message, r.left.storePath)
      }
    }
  })

  it("fromJson names the field of bad JSON", () => {
    const good = PathInfo.toJson(makeTestPathInfo())
    const r = PathInfo.fromJson({ ...good, references: [{ storePath: "not-a-store-path", node: null }] })
    assert.isTrue(Either.isLeft(r) && r.left.field === "references[0].storePath", Either.isLeft(r) ? r.left.message : "")
  })
})

describe("signatures", () => {
  it("mergeSignatures keeps order and drops repeats", () => {
    const [a, b, c] = [randomSignature("a"), randomSignature("b"), randomSignature("c")]
    assert.deepStrictEqual(PathInfo.mergeSignatures([a, b], [b, c, c]), [a, b, c])
    const same = [a]
    assert.strictEqual(PathInfo.mergeSignatures(same, [a]), same)
  })

  it("equalsIgnoringAddedSignatures allows added signatures only", () => {
    const p = makeTestPathInfo({ signatures: [randomSignature("a")] })
    const more = new PathInfo.PathInfo({ ...p, signatures: [...p.signatures, randomSignature("b")] })
    assert.isTrue(PathInfo.equalsIgnoringAddedSignatures(p, more))
    assert.isFalse(PathInfo.equalsIgnoringAddedSignatures(more, p))
    assert.isFalse(PathInfo.equalsIgnoringAddedSignatures(p, new PathInfo.PathInfo({ ...p, signatures: [] })))
  })
})
