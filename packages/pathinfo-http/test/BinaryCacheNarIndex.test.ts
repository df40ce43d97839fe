/**
 * Never downloading the same NAR twice: the resolve store's NarIndex (NAR
 * sha256 → castore root) is asked before every NAR download.
 *
 * The fixtures hold no two paths with the same NAR, so these tests make a
 * cache of their own: fixture NARs under new store paths (narinfos rendered
 * and signed here), each narinfo pointing at its own copy of the NAR file, so
 * every NAR request is visible in the test server's log.
 */
import { assert, describe, it } from "@effect/vitest"
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as NarRender from "@nixfx/castore/NarRender"
import * as Node from "@nixfx/castore-nodes/Node"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as NarInfo from "@nixfx/nix-compat/NarInfo"
import * as Signature from "@nixfx/nix-compat/Signature"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import * as StoreComposition from "@nixfx/pathinfo/StoreComposition"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as BinaryCache from "../src/BinaryCache.js"
import { type CacheServer, serveCache } from "./support/cacheServer.js"
import { pathByName, readFixture } from "./support/fixtures.js"
import { narinfoText, open, some } from "./support/helpers.js"

const secret = Either.getOrThrow(Keys.generateSecretKey("nar-index-test-1"))

const storePath = (name: string): StorePath.StorePath =>
  Either.getOrThrow(StorePath.make(new Uint8Array(crypto.randomBytes(20)), name))

/** A fixture path's NAR (zstd) under a new store path, at its own URL. */
const republish = (
  server: CacheServer,
  fixture: string,
  name: string,
  references: ReadonlyArray<StorePath.StorePath> = []
): NarInfo.NarInfo => {
  const p = pathByName("zstd", fixture)
  const original = Either.getOrThrow(NarInfo.parse(narinfoText(p)))
  const sp = storePath(name)
  const url = `nar/${sp.hashPart}.nar.zst`
  server.files.set("/" + url, readFixture(path.join(path.dirname(p.narinfo), p.url)))
  const ni = Signature.sign(
    new NarInfo.NarInfo({
      ...original,
      storePath: sp,
      url,
      references: [...references].sort((a, b) => (StorePath.toBasename(a) < StorePath.toBasename(b) ? -1 : 1)),
      deriver: Option.none(),
      ca: Option.none(),
      signatures: []
    }),
    secret
  )
  server.files.set(`/${sp.hashPart}.narinfo`, NarInfo.render(ni))
  return ni
}

/** Fetches `ni` (and its closure) into `store` with a new reader trusting the test key. */
const fetchInto = (
  server: CacheServer,
  store: StoreComposition.Store,
  ni: NarInfo.NarInfo,
  events?: Array<BinaryCache.Event>
) =>
  Effect.flatMap(
    open(server, store, { trustedPublicKeys: [secret.public], onEvent: events === undefined ? undefined : (e) => events.push(e) }),
    (bc) => Effect.map(bc.fetch(ni.storePath.digest), (got) => some(got, ni.storePath.name))
  )

const narRequests = (server: CacheServer) => server.requests.filter((r) => r.startsWith("/nar/"))

const serve = Effect.map(serveCache([]), (server) => {
  server.files.set("/nix-cache-info", "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n")
  return server
})

/** The store holds the path, and castore renders its NAR back (hash and size). */
const expectRenders = (store: StoreComposition.Store, ni: NarInfo.NarInfo) =>
  Effect.gen(function*() {
    const stored = some(yield* store.pathInfoService.get(ni.storePath.digest), `the store holds ${ni.storePath.name}`)
    const rendered = yield* NarRender.calculate(stored.node).pipe(
      Effect.provideService(BlobService.BlobService, store.blobService),
      Effect.provideService(DirectoryService.DirectoryService, store.directoryService)
    )
    assert.strictEqual(rendered.narSize, ni.narSize)
    assert.deepStrictEqual(Buffer.from(rendered.narSha256), Buffer.from(ni.narHash.digest))
    return stored
  })

const finished = (events: ReadonlyArray<BinaryCache.Event>) =>
  events.filter(BinaryCache.Event.$is("PathFinished")).map((e) => [e.storePath.slice(33), e.reused] as const)

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nixfx-nar-index-"))
const stores = [
  ["memory", () => "memory://"],
  ["sqlite", () => `sqlite://${fs.mkdtempSync(path.join(tmp, "store-"))}`]
] as const

describe("BinaryCache: no NAR is downloaded twice", () => {
  for (const [kind, url] of stores) {
    it.live(`${kind}: a second path with the same NAR is satisfied from castore, without a NAR request`, () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* serve
        const a = republish(server, "fx-tree", "tree-a")
        const b = republish(server, "fx-tree", "tree-b")
        const store = yield* StoreComposition.build(url())
        const events: Array<BinaryCache.Event> = []
        const gotA = yield* fetchInto(server, store, a, events)
        assert.deepStrictEqual(narRequests(server), [`/${a.url}`])
        const gotB = yield* fetchInto(server, store, b, events)
        assert.deepStrictEqual(narRequests(server), [`/${a.url}`], "no request for tree-b's NAR")
        assert.isTrue(Node.equals(gotA.node, gotB.node))
        assert.strictEqual(gotB.basename, StorePath.toBasename(b.storePath))
        assert.deepStrictEqual(finished(events), [["tree-a", false], ["tree-b", true]])
        yield* expectRenders(store, b)
      })), 30_000)
  }

  it.live("a path whose PathInfo the store lost, castore kept: no NAR download", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serve
      const a = republish(server, "fx-tree", "tree-a")
      const store = yield* StoreComposition.build("memory://")
      yield* fetchInto(server, store, a)
      assert.strictEqual(narRequests(server).length, 1)
      // Same castore and index, the PathInfos gone; a new reader.
      const lost: StoreComposition.Store = { ...store, pathInfoService: yield* PathInfoService.makeMemory }
      yield* fetchInto(server, lost, a)
      assert.strictEqual(narRequests(server).length, 1, "the NAR was not requested again")
      yield* expectRenders(lost, a)
    })), 30_000)

  it.live("a PathInfo with the same NarHash in a SQL store answers, even without an index entry", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serve
      const a = republish(server, "fx-tree", "tree-a")
      const b = republish(server, "fx-tree", "tree-b")
      const dir = fs.mkdtempSync(path.join(tmp, "store-"))
      // tree-a arrives through a reader whose store has no index of its own (so nothing is recorded in SQL).
      const sqlite = yield* StoreComposition.build(`sqlite://${dir}`)
      const withoutIndex: StoreComposition.Store = { ...sqlite, narIndex: undefined }
      yield* fetchInto(server, withoutIndex, a)
      const recorded = yield* sqlite.narIndex!.get(a.narHash.digest)
      assert.isTrue(Option.isSome(recorded), "tree-a's stored PathInfo answers for its NarHash")
      yield* fetchInto(server, sqlite, b)
      assert.deepStrictEqual(narRequests(server), [`/${a.url}`])
      yield* expectRenders(sqlite, b)
    })), 30_000)

  it.live("a known root whose castore content is gone (all of it, or one blob) is downloaded again", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serve
      const a = republish(server, "fx-tree", "tree-a")
      const store = yield* StoreComposition.build("memory://")
      yield* fetchInto(server, store, a)
      assert.strictEqual(narRequests(server).length, 1)

      // Everything gone but the index.
      const empty: StoreComposition.Store = {
        ...(yield* StoreComposition.build("memory://")),
        narIndex: store.narIndex
      }
      const events: Array<BinaryCache.Event> = []
      yield* fetchInto(server, empty, a, events)
      assert.strictEqual(narRequests(server).length, 2, "downloaded again")
      assert.deepStrictEqual(finished(events), [["tree-a", false]])
      yield* expectRenders(empty, a)

      // Directories kept, blobs gone: the directories alone do not count as the content.
      const noBlobs: StoreComposition.Store = {
        ...store,
        pathInfoService: yield* PathInfoService.makeMemory,
        blobService: yield* BlobService.makeMemory
      }
      yield* fetchInto(server, noBlobs, a)
      assert.strictEqual(narRequests(server).length, 3, "downloaded again")
      yield* expectRenders(noBlobs, a)
    })), 30_000)

  it.live("two paths with the same NAR in one closure share one download", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serve
      const a = republish(server, "fx-tree", "tree-a")
      const b = republish(server, "fx-tree", "tree-b")
      const root = republish(server, "fx-text.txt", "root", [a.storePath, b.storePath])
      const store = yield* StoreComposition.build("memory://")
      const events: Array<BinaryCache.Event> = []
      const got = yield* fetchInto(server, store, root, events)
      const treeRequests = narRequests(server).filter((r) => r === `/${a.url}` || r === `/${b.url}`)
      assert.strictEqual(treeRequests.length, 1, `one of the two tree NARs, got ${treeRequests.join(", ")}`)
      assert.strictEqual(narRequests(server).length, 2)
      assert.deepStrictEqual(
        finished(events).filter(([name]) => name !== "root").map(([, reused]) => reused).sort(),
        [false, true]
      )
      const [refA, refB] = got.references
      assert.isTrue(Node.equals(some(refA.node, "node of a"), some(refB.node, "node of b")))
      yield* expectRenders(store, a)
      yield* expectRenders(store, b)
    })), 30_000)
})
