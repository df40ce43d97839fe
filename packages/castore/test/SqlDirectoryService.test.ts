import { LibsqlClient } from "@effect/sql-libsql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as SqlClient from "@effect/sql/SqlClient"
import { afterAll, assert, describe, it } from "@effect/vitest"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Directory from "@nixfx/castore-nodes/Directory"
import * as Node from "@nixfx/castore-nodes/Node"
import * as PathComponent from "@nixfx/castore-nodes/PathComponent"
import { DirectoryService, SqlDirectoryService } from "@nixfx/castore"
import { directoryServiceSuite } from "@nixfx/castore/testing"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "nixfx-castore-sql-"))
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))

const sqliteNode = (file: string) => SqliteClient.layer({ filename: Path.join(root, file) })
const libsql = (file: string) => LibsqlClient.layer({ url: `file:${Path.join(root, file)}` })

directoryServiceSuite("SQL on sqlite-node", SqlDirectoryService.layer().pipe(Layer.provide(sqliteNode("suite.db"))))
directoryServiceSuite(
  "SQL on sqlite-node, in memory, with a table prefix",
  SqlDirectoryService.layer({ tablePrefix: "other_" }).pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })))
)
directoryServiceSuite("SQL on libsql", SqlDirectoryService.layer().pipe(Layer.provide(libsql("suite-libsql.db"))))

const hexOf = (digest: Uint8Array) => Buffer.from(digest).toString("hex")

const leaf = (): Directory.Directory =>
  Either.getOrThrow(Directory.make([{
    name: Either.getOrThrow(PathComponent.validate("file")),
    node: new Node.FileNode({ digest: B3Digest.hash(Crypto.randomBytes(8)), size: 1, executable: true })
  }]))

const parentOf = (...children: ReadonlyArray<Directory.Directory>): Directory.Directory =>
  Either.getOrThrow(Directory.make(children.map((child, i) => ({
    name: Either.getOrThrow(PathComponent.validate(`d${String(i).padStart(4, "0")}`)),
    node: new Node.DirectoryNode({ digest: child.digest, size: child.size })
  }))))

for (const [driver, client] of [["sqlite-node", sqliteNode], ["libsql", libsql]] as const) {
  describe(`SqlDirectoryService on ${driver}`, () => {
    it.effect("keeps directories across layer builds, in a table named by the prefix", () =>
      Effect.gen(function*() {
        const clientLayer = client(`persist-${driver}.db`)
        const directory = leaf()
        yield* DirectoryService.putClosure([directory]).pipe(
          Effect.provide(SqlDirectoryService.layer({ tablePrefix: "p_" }).pipe(Layer.provide(clientLayer)))
        )
        const found = yield* Effect.flatMap(DirectoryService.DirectoryService, (s) => s.get(directory.digest)).pipe(
          Effect.provide(SqlDirectoryService.layer({ tablePrefix: "p_" }).pipe(Layer.provide(clientLayer)))
        )
        assert.strictEqual(hexOf(Option.getOrThrow(found).digest), hexOf(directory.digest))
        const tables = yield* Effect.flatMap(
          SqlClient.SqlClient,
          (sql) => sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
        ).pipe(Effect.provide(clientLayer))
        assert.includeMembers(tables.map((t) => t.name), ["p_directories", "p_migrations"])
      }))

    it.effect("a closure whose transaction fails halfway leaves nothing", () =>
      Effect.gen(function*() {
        const clientLayer = client(`atomic-${driver}.db`)
        const a = leaf()
        const b = leaf()
        const top = parentOf(a, b)
        const layer = SqlDirectoryService.layer().pipe(Layer.provideMerge(clientLayer))
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          // Make the insert of `b` fail inside the putter's transaction, after `a` was inserted.
          yield* sql.unsafe(
            `CREATE TRIGGER refuse_b BEFORE INSERT ON castore_directories
             WHEN NEW.digest = X'${hexOf(b.digest)}' BEGIN SELECT RAISE(ABORT, 'refused by test'); END`
          )
          const error = yield* Effect.flip(DirectoryService.putClosure([a, b, top]))
          assert.strictEqual(error.reason, "Storage")
          assert.include(error.message, hexOf(top.digest))
          const service = yield* DirectoryService.DirectoryService
          for (const directory of [a, b, top]) {
            assert.isTrue(Option.isNone(yield* service.get(directory.digest)))
          }
          // Batching: a closure larger than one INSERT statement still lands whole.
          const many = Array.from({ length: 900 }, () => leaf())
          const wide = parentOf(...many)
          yield* DirectoryService.putClosure([...many, wide])
          assert.isTrue(Option.isSome(yield* service.get(many[850].digest)))
        }).pipe(Effect.provide(layer))
      }))

    it.effect("a row whose bytes are not the directory of its key is Corrupt", () =>
      Effect.gen(function*() {
        const clientLayer = client(`corrupt-${driver}.db`)
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const service = yield* DirectoryService.DirectoryService
          const a = leaf()
          const b = leaf()
          yield* service.put(a)
          // Store b's key with a's bytes, and a key with bytes that are not protobuf.
          yield* sql.unsafe(
            `INSERT INTO castore_directories (digest, data) VALUES (X'${hexOf(b.digest)}', X'${
              hexOf(Directory.encode(a))
            }')`
          )
          const wrong = yield* Effect.flip(service.get(b.digest))
          assert.strictEqual(wrong.reason, "Corrupt")
          assert.strictEqual(wrong.digest, hexOf(b.digest))
          assert.include(wrong.message, hexOf(a.digest))
          const garbageKey = B3Digest.hash(Crypto.randomBytes(8))
          yield* sql.unsafe(
            `INSERT INTO castore_directories (digest, data) VALUES (X'${hexOf(garbageKey)}', X'ff')`
          )
          const garbage = yield* Effect.flip(service.get(garbageKey))
          assert.strictEqual(garbage.reason, "Corrupt")
          assert.include(garbage.message, "do not decode")
        }).pipe(Effect.provide(SqlDirectoryService.layer().pipe(Layer.provideMerge(clientLayer))))
      }))
  })
}
