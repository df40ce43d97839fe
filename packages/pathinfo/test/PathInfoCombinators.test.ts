import { assert, describe, it } from "@effect/vitest"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import * as PathInfoCombinators from "@nixfx/pathinfo/PathInfoCombinators"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import {
  loadFixturePathInfos,
  makeTestPathInfo,
  pathInfoServiceSuite,
  randomNode,
  randomSignature,
  randomStorePath
} from "@nixfx/pathinfo/testing"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"

const fixtures = new URL("../../../fixtures/", import.meta.url)
const secretKey = Either.getOrThrow(
  Keys.parseSecretKey(fs.readFileSync(new URL("keys/test-cache-1.secret", fixtures), "utf8"))
)
const publicKey = Either.getOrThrow(
  Keys.parsePublicKey(fs.readFileSync(new URL("keys/test-cache-1.public", fixtures), "utf8").trim())
)

pathInfoServiceSuite(
  "PathInfoCombinators.layerCache (memory near, memory far)",
  PathInfoCombinators.layerCache(PathInfoService.layerMemory).pipe(Layer.provide(PathInfoService.layerMemory))
)
pathInfoServiceSuite(
  "PathInfoCombinators.layerLru(3) over memory",
  PathInfoCombinators.layerLru(3).pipe(Layer.provide(PathInfoService.layerMemory))
)
pathInfoServiceSuite(
  "PathInfoCombinators.layerSigning over memory",
  PathInfoCombinators.layerSigning(secretKey).pipe(Layer.provide(PathInfoService.layerMemory)),
  { addsSignatures: true }
)

/** Counts the calls reaching a service. */
const counting = (inner: PathInfoService.PathInfoServiceShape) => {
  const calls = { get: 0, put: 0 }
  const service = PathInfoService.make({
    get: (d) => Effect.suspend(() => (calls.get++, inner.get(d))),
    put: (p) => Effect.suspend(() => (calls.put++, inner.put(p))),
    list: inner.list
  })
  return { calls, service }
}

describe("cache", () => {
  it.effect("get reads through to far and fills near; put writes both; list is far's", () =>
    Effect.gen(function*() {
      const near = yield* PathInfoService.makeMemory
      const far = yield* PathInfoService.makeMemory
      const c = PathInfoCombinators.cache(near, far)
      const p = makeTestPathInfo()
      yield* far.put(p)
      assert.isTrue(Option.isNone(yield* near.get(p.storePath.digest)))
      const got = yield* c.get(p.storePath.digest)
      assert.isTrue(Option.isSome(got) && PathInfo.equals(got.value, p))
      assert.isTrue(Option.isSome(yield* near.get(p.storePath.digest)), "near was filled")

      const q = makeTestPathInfo()
      yield* c.put(q)
      assert.isTrue(Option.isSome(yield* near.get(q.storePath.digest)))
      assert.isTrue(Option.isSome(yield* far.get(q.storePath.digest)))

      const onlyNear = makeTestPathInfo()
      yield* near.put(onlyNear)
      const listed = Chunk.toReadonlyArray(yield* Stream.runCollect(c.list)).map((x) => x.basename).sort()
      assert.deepStrictEqual(listed, [p.basename, q.basename].sort())
    }))

  it.effect("a far PathInfo contradicting near's references by content fails the get", () =>
    Effect.gen(function*() {
      const near = yield* PathInfoService.makeMemory
      const far = yield* PathInfoService.makeMemory
      const dep = randomStorePath("dep")
      const nearDep = new PathInfo.PathInfo({ ...makeTestPathInfo({ node: randomNode("directory") }), storePath: dep })
      yield* near.put(nearDep)
      const app = makeTestPathInfo({ name: "app", references: [{ storePath: dep, node: Option.some(randomNode("directory")) }] })
      yield* far.put(app)
      const e = yield* Effect.flip(PathInfoCombinators.cache(near, far).get(app.storePath.digest))
      assert.strictEqual(e._tag, "ReferenceConflict")
      if (e._tag === "ReferenceConflict") {
        assert.strictEqual(e.referrer, app.basename)
        assert.strictEqual(e.reference, nearDep.basename)
      }
    }))
})

describe("lru", () => {
  it.effect("serves hits from memory, evicts the least recently used, drops entries on put", () =>
    Effect.gen(function*() {
      const { calls, service } = counting(yield* PathInfoService.makeMemory)
      const l = PathInfoCombinators.lru(service, 2)
      const [a, b, c] = [makeTestPathInfo(), makeTestPathInfo(), makeTestPathInfo()]
      for (const p of [a, b, c]) yield* service.put(p)
      yield* l.get(a.storePath.digest)
      yield* l.get(b.storePath.digest)
      assert.strictEqual(calls.get, 2)
      yield* l.get(a.storePath.digest) // hit; a is now the most recent
      assert.strictEqual(calls.get, 2)
      yield* l.get(c.storePath.digest) // miss; evicts b
      assert.strictEqual(calls.get, 3)
      yield* l.get(a.storePath.digest)
      assert.strictEqual(calls.get, 3, "a stayed")
      yield* l.get(b.storePath.digest)
      assert.strictEqual(calls.get, 4, "b was evicted")
      // a put drops the entry, so the merged value is read back
      const signed = new PathInfo.PathInfo({ ...a, signatures: [randomSignature("k")] })
      yield* l.put(signed)
      const after = yield* l.get(a.storePath.digest)
      assert.strictEqual(calls.get, 5)
      assert.isTrue(Option.isSome(after) && after.value.signatures.length === 1)
      // unknown paths are not cached
      yield* l.get(randomStorePath().digest)
      yield* l.get(randomStorePath().digest)
      assert.strictEqual(calls.get, 7)
    }))

  it.effect("a get that read before a concurrent put finished does not cache the older value", () =>
    Effect.gen(function*() {
      const inner = yield* PathInfoService.makeMemory
      const p = makeTestPathInfo()
      yield* inner.put(p)
      const readDone = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      let blockNext = true
      const slow = PathInfoService.make({
        get: (d) =>
          Effect.flatMap(inner.get(d), (r) => {
            if (!blockNext) return Effect.succeed(r)
            blockNext = false
            return Effect.as(Effect.zipRight(Deferred.succeed(readDone, undefined), Deferred.await(release)), r)
          }),
        put: inner.put,
        list: inner.list
      })
      const l = PathInfoCombinators.lru(slow, 10)
      const fiber = yield* Effect.fork(l.get(p.storePath.digest))
      yield* Deferred.await(readDone) // the get holds the old value
      const signed = new PathInfo.PathInfo({ ...p, signatures: [randomSignature("k")] })
      yield* l.put(signed)
      yield* Deferred.succeed(release, undefined)
      const old = yield* Fiber.join(fiber)
      assert.isTrue(Option.isSome(old) && old.value.signatures.length === 0)
      const now = yield* l.get(p.storePath.digest)
      assert.isTrue(Option.isSome(now) && now.value.signatures.length === 1, "the stale read was not cached")
    }))

  it("rejects a capacity below 1", () => {
    assert.throws(() => PathInfoCombinators.lru(PathInfoService.make({ get: () => Effect.succeedNone, put: Effect.succeed, list: Stream.empty }), 0))
  })
})

describe("signing", () => {
  it.effect("reproduces the signatures Nix made with the same key, for every fixture path", () =>
    Effect.gen(function*() {
      const signed = PathInfoCombinators.signing(yield* PathInfoService.makeMemory, secretKey)
      for (const p of loadFixturePathInfos()) {
        const nixSignature = p.signatures.find((s) => s.keyName === "test-cache-1")
        if (nixSignature === undefined) return assert.fail(`${p.basename} has no test-cache-1 signature`)
        const stored = yield* signed.put(new PathInfo.PathInfo({ ...p, signatures: [] }))
        assert.strictEqual(stored.signatures.length, 1)
        assert.isTrue(PathInfo.signatureEquals(stored.signatures[0], nixSignature), p.basename)
        assert.strictEqual(PathInfo.verifiedSignatures(stored, [publicKey]).length, 1)
      }
    }))

  it.effect("does not add a signature that is already there", () =>
    Effect.gen(function*() {
      const signed = PathInfoCombinators.signing(yield* PathInfoService.makeMemory, secretKey)
      const p = PathInfo.sign(makeTestPathInfo(), secretKey)
      const stored = yield* signed.put(p)
      assert.strictEqual(stored.signatures.length, 1)
    }))
})
