/**
 * The `NarIndex` of a SQL store, over the generic `SqlClient` (SQLite,
 * PostgreSQL), in the same database and with the same table prefix as its
 * `SqlPathInfoService`: recorded entries live in `<prefix>nar_index`, and
 * every PathInfo in `<prefix>pathinfo` answers for its own NarHash, so paths
 * stored before the index existed (or put by any other means) count too.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Node from "@nixfx/castore-nodes/Node"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { encodeNode, toBuffer, toBytes, toNumber } from "./internal/sqlRow.js"
import * as NarIndex from "./NarIndex.js"
import { StorageError } from "./PathInfoError.js"
import * as SqlPathInfoService from "./SqlPathInfoService.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Prefix of every table name (default `nixfx_`), as for the `SqlPathInfoService` beside it. */
  readonly tablePrefix?: string | undefined
}

const storageError = (operation: string, detail?: string) => (cause: SqlError): StorageError =>
  new StorageError({ backend: "sql", operation, detail: detail ?? cause.message, cause })

/**
 * Runs the migrations (shared with `SqlPathInfoService`) and returns the
 * index. Needs a `SqlClient`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: Options): Effect.Effect<NarIndex.NarIndexShape, StorageError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const prefix = options?.tablePrefix ?? "nixfx_"
    yield* SqlPathInfoService.migrate(prefix)
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const narIndex = sql(`${prefix}nar_index`)
    const pathinfo = sql(`${prefix}pathinfo`)

    const get = (narSha256: Uint8Array): Effect.Effect<Option.Option<NarIndex.Entry>, StorageError> =>
      Effect.gen(function*() {
        const key = toBuffer(narSha256)
        const rows = yield* sql<{ node: unknown; nar_size: unknown }>`SELECT node, nar_size FROM ${narIndex}
            WHERE nar_sha256 = ${key}
          UNION ALL
          SELECT node, nar_size FROM ${pathinfo} WHERE nar_sha256 = ${key}
          LIMIT 1`.pipe(Effect.mapError(storageError("nar index get")))
        if (rows.length === 0) return Option.none()
        const bytes = toBytes(rows[0].node)
        const decoded = bytes === undefined ? undefined : Node.decodeNamed(bytes)
        const narSize = toNumber(rows[0].nar_size)
        if (decoded === undefined || Either.isLeft(decoded) || !Number.isSafeInteger(narSize)) {
          return yield* new StorageError({
            backend: "sql",
            operation: "nar index get",
            detail: `stored row for NAR sha256 ${Buffer.from(narSha256).toString("hex")} is not a node and a size`
          })
        }
        return Option.some({ narSha256, narSize, node: decoded.right.node })
      }).pipe(Effect.withTracerEnabled(false))

    const put = (entry: NarIndex.Entry): Effect.Effect<void, StorageError> =>
      sql`INSERT INTO ${narIndex} (nar_sha256, nar_size, node)
        VALUES (${toBuffer(entry.narSha256)}, ${entry.narSize}, ${encodeNode(entry.node)})
        ON CONFLICT (nar_sha256) DO UPDATE SET nar_size = excluded.nar_size, node = excluded.node`.pipe(
        Effect.mapError(storageError("nar index put")),
        Effect.asVoid,
        Effect.withTracerEnabled(false)
      )

    return { get, put }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<NarIndex.NarIndex, StorageError, SqlClient.SqlClient> =>
  Layer.effect(NarIndex.NarIndex, make(options))
