import { LibsqlClient } from "@effect/sql-libsql"
import { PgClient } from "@effect/sql-pg"
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
import * as Redacted from "effect/Redacted"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "nixfx-castore-sql-"))
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))

const sqliteNode = (file: string) => SqliteClient.layer({ filename: Path.join(root, file) })
const libsql = (file: string) => LibsqlClient.layer({ url: `file:${Path.join(root, file)}` })

// PostgreSQL runs when NIXFX_TEST_PG_URL is set (scripts/postgres-test-server.sh starts one).
// The database is shared: a fresh table prefix per run and per test keeps them apart.
const pgUrl = process.env.NIXFX_TEST_PG_URL
const runId = `t${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`
const pg = () => PgClient.layer({ url: Redacted.make(pgUrl ?? "") })

directoryServiceSuite("SQL on sqlite-node", SqlDirectoryService.layer().pipe(Layer.provide(sqliteNode("suite.db"))))
directoryServiceSuite(
  "SQL on sqlite-node, in memory, with a table prefix",
  SqlDirectoryService.layer({ tablePrefix: "other_" }).pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })))
)
directoryServiceSuite("SQL on libsql", SqlDirectoryService.layer().pipe(Layer.provide(libsql("suite-libsql.db"))))
if (pgUrl !== undefined && pgUrl !== "") {
  directoryServiceSuite(
    "SQL on PostgreSQL",
    SqlDirectoryService.layer({ tablePrefix: `${runId}_suite_` }).pipe(Layer.provide(pg()))
  )
} else {
  describe("DirectoryService conformance: SQL on PostgreSQL", () => {
    it.skip("SKIPPED: NIXFX_TEST_PG_URL is not set (export NIXFX_TEST_PG_URL=$(bash scripts/postgres-test-server.sh))", () => {})
  })
}

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

interface Driver {
  readonly name: string
  /** A client for the test named `key`, and the table prefix it should use. */
  readonly open: (key: string) => { readonly client: Layer.Layer<SqlClient.SqlClient, unknown>; readonly prefix: string }
}

const drivers: Array<Driver> = [
  { name: "sqlite-node", open: (key) => ({ client: sqliteNode(`${key}-node.db`), prefix: "castore_" }) },
  { name: "libsql", open: (key) => ({ client: libsql(`${key}-libsql.db`), prefix: "castore_" }) }
]
if (pgUrl !== undefined && pgUrl !== "") {
  drivers.push({ name: "PostgreSQL", open: (key) => ({ client: pg(), prefix: `${runId}_${key}_` }) })
}

/** Makes inserting the row with `digest` into `table` fail (a trigger), in either dialect. */
const refuseInsertOf = (table: string, digest: Uint8Array) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.onDialectOrElse({
      pg: () =>
        Effect.zipRight(
          sql.unsafe(
            `CREATE FUNCTION ${table}_refuse() RETURNS trigger AS $$
             BEGIN
               IF NEW.digest = '\\x${hexOf(digest)}'::bytea THEN RAISE EXCEPTION 'refused by test'; END IF;
               RETURN NEW;
             END $$ LANGUAGE plpgsql`
          ),
          sql.unsafe(
            `CREATE TRIGGER ${table}_refuse BEFORE INSERT ON ${table}
             FOR EACH ROW EXECUTE FUNCTION ${table}_refuse()`
          )
        ),
      orElse: () =>
        sql.unsafe(
          `CREATE TRIGGER ${table}_refuse BEFORE INSERT ON ${table}
           WHEN NEW.digest = X'${hexOf(digest)}' BEGIN SELECT RAISE(ABORT, 'refused by test'); END`
        )
    }))

const tableNames = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.map(
    sql.onDialectOrElse({
      pg: () => sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables`,
      orElse: () => sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table'`
    }),
    (rows) => rows.map((row) => row.name)
  ))

for (const driver of drivers) {
  describe(`SqlDirectoryService on ${driver.name}`, () => {
    it.effect("keeps directories across layer builds, in tables named by the prefix", () =>
      Effect.gen(function*() {
        const { client, prefix } = driver.open("persist")
        const layer = SqlDirectoryService.layer({ tablePrefix: prefix }).pipe(Layer.provide(client))
        const directory = leaf()
        yield* DirectoryService.putClosure([directory]).pipe(Effect.provide(layer))
        const found = yield* Effect.flatMap(DirectoryService.DirectoryService, (s) => s.get(directory.digest)).pipe(
          Effect.provide(layer)
        )
        assert.strictEqual(hexOf(Option.getOrThrow(found).digest), hexOf(directory.digest))
        const tables = yield* tableNames.pipe(Effect.provide(client))
        assert.includeMembers(tables, [`${prefix}directories`, `${prefix}migrations`])
      }))

    it.effect("a closure whose transaction fails in its last INSERT leaves nothing", () =>
      Effect.gen(function*() {
        const { client, prefix } = driver.open("atomic")
        // More directories than one INSERT statement takes: the refused one
        // is in the last statement, after earlier statements succeeded.
        const leaves = Array.from({ length: 900 }, () => leaf())
        const top = parentOf(...leaves)
        yield* Effect.gen(function*() {
          yield* refuseInsertOf(`${prefix}directories`, leaves[899].digest)
          const error = yield* Effect.flip(DirectoryService.putClosure([...leaves, top]))
          assert.strictEqual(error.reason, "Storage")
          assert.include(error.message, hexOf(top.digest))
          assert.include(error.message, "901 directories")
          const service = yield* DirectoryService.DirectoryService
          for (const directory of [leaves[0], leaves[450], leaves[899], top]) {
            assert.isTrue(Option.isNone(yield* service.get(directory.digest)))
          }
          // Without the refused directory, the same kind of closure lands whole.
          const others = Array.from({ length: 900 }, () => leaf())
          yield* DirectoryService.putClosure([...others, parentOf(...others)])
          assert.isTrue(Option.isSome(yield* service.get(others[850].digest)))
        }).pipe(Effect.provide(SqlDirectoryService.layer({ tablePrefix: prefix }).pipe(Layer.provideMerge(client))))
      }))

    it.effect("a row whose bytes are not the directory of its key is Corrupt", () =>
      Effect.gen(function*() {
        const { client, prefix } = driver.open("corrupt")
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const service = yield* DirectoryService.DirectoryService
          const table = sql(`${prefix}directories`)
          const a = leaf()
          const b = leaf()
          yield* service.put(a)
          // Store b's key with a's bytes, and a key with bytes that are not protobuf.
          yield* sql`INSERT INTO ${table} (digest, data) VALUES (${Buffer.from(b.digest)}, ${
            Buffer.from(Directory.encode(a))
          })`
          const wrong = yield* Effect.flip(service.get(b.digest))
          assert.strictEqual(wrong.reason, "Corrupt")
          assert.strictEqual(wrong.digest, hexOf(b.digest))
          assert.include(wrong.message, hexOf(a.digest))
          const garbageKey = B3Digest.hash(Crypto.randomBytes(8))
          yield* sql`INSERT INTO ${table} (digest, data) VALUES (${Buffer.from(garbageKey)}, ${Buffer.from([0xff])})`
          const garbage = yield* Effect.flip(service.get(garbageKey))
          assert.strictEqual(garbage.reason, "Corrupt")
          assert.include(garbage.message, "do not decode")
        }).pipe(Effect.provide(SqlDirectoryService.layer({ tablePrefix: prefix }).pipe(Layer.provideMerge(client))))
      }))
  })
}
