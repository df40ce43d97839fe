import { LibsqlClient } from "@effect/sql-libsql"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, it } from "@effect/vitest"
import * as NarIndex from "@nixfx/pathinfo/NarIndex"
import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import * as SqlNarIndex from "@nixfx/pathinfo/SqlNarIndex"
import * as SqlPathInfoService from "@nixfx/pathinfo/SqlPathInfoService"
import { narIndexSuite } from "@nixfx/pathinfo/testing"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nixfx-nar-index-"))

/** The index beside its PathInfoService, built after it (one migration run at a time). */
const sqlLayer = (options: SqlNarIndex.Options) =>
  SqlNarIndex.layer(options).pipe(Layer.provideMerge(SqlPathInfoService.layer(options)))

narIndexSuite("NarIndex in memory", Layer.merge(NarIndex.layerMemory, PathInfoService.layerMemory), {
  pathInfosAnswer: false
})

narIndexSuite(
  "SqlNarIndex on SQLite (better-sqlite3)",
  sqlLayer({}).pipe(Layer.provide(SqliteClient.layer({ filename: path.join(tmp, "better-sqlite3.sqlite") }))),
  { pathInfosAnswer: true }
)

narIndexSuite(
  "SqlNarIndex on SQLite (libsql)",
  sqlLayer({ tablePrefix: "custom_" }).pipe(Layer.provide(LibsqlClient.layer({ url: "file:" + path.join(tmp, "libsql.sqlite") }))),
  { pathInfosAnswer: true }
)

const pgUrl = process.env.NIXFX_TEST_PG_URL
if (pgUrl !== undefined && pgUrl !== "") {
  const prefix = `t${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}_`
  narIndexSuite(
    "SqlNarIndex on PostgreSQL",
    sqlLayer({ tablePrefix: prefix }).pipe(Layer.provide(PgClient.layer({ url: Redacted.make(pgUrl) }))),
    { pathInfosAnswer: true }
  )
} else {
  describe("SqlNarIndex on PostgreSQL", () => {
    it.skip("SKIPPED: NIXFX_TEST_PG_URL is not set (start one with: export NIXFX_TEST_PG_URL=$(bash scripts/postgres-test-server.sh))", () => {})
  })
}
