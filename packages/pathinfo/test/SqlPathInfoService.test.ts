import { LibsqlClient } from "@effect/sql-libsql"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, it } from "@effect/vitest"
import * as SqlPathInfoService from "@nixfx/pathinfo/SqlPathInfoService"
import { pathInfoServiceSuite } from "@nixfx/pathinfo/testing"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nixfx-pathinfo-sql-"))

pathInfoServiceSuite(
  "SqlPathInfoService on SQLite (libsql)",
  SqlPathInfoService.layer().pipe(Layer.provide(LibsqlClient.layer({ url: "file:" + path.join(tmp, "libsql.sqlite") })))
)

pathInfoServiceSuite(
  "SqlPathInfoService on SQLite (better-sqlite3)",
  SqlPathInfoService.layer({ tablePrefix: "custom_" }).pipe(
    Layer.provide(SqliteClient.layer({ filename: path.join(tmp, "better-sqlite3.sqlite") }))
  )
)

const pgUrl = process.env.NIXFX_TEST_PG_URL
if (pgUrl !== undefined && pgUrl !== "") {
  // A fresh table prefix per run keeps runs apart in a shared database.
  const prefix = `t${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}_`
  pathInfoServiceSuite(
    "SqlPathInfoService on PostgreSQL",
    SqlPathInfoService.layer({ tablePrefix: prefix }).pipe(
      Layer.provide(PgClient.layer({ url: Redacted.make(pgUrl) }))
    )
  )
} else {
  describe("SqlPathInfoService on PostgreSQL", () => {
    it.skip("SKIPPED: NIXFX_TEST_PG_URL is not set (start one with: export NIXFX_TEST_PG_URL=$(bash scripts/postgres-test-server.sh))", () => {})
  })
}
