/**
 * A {@link DirectoryService.DirectoryService} in an SQL database, through the
 * generic `SqlClient` of `@effect/sql`: provide `SqliteClient.layer(…)` (or
 * another SQLite client) for an embedded store, a PostgreSQL client for a
 * shared one.
 *
 * One table, `<prefix>directories`, maps each digest (32 bytes, the primary
 * key) to the canonical protobuf bytes of its Directory. The layer creates it
 * with its own migrations (recorded in `<prefix>migrations`). A putter writes
 * its whole closure in one transaction at `close`, so a failed or abandoned
 * upload leaves nothing behind.
 *
 * @since 0.1.0
 */
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Directory from "@nixfx/castore-nodes/Directory"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { DirectoryServiceError } from "./CastoreError.js"
import type { Service } from "./DirectoryService.js"
import { DirectoryService, makePutter } from "./DirectoryService.js"
import { asBuffer } from "./internal/bytes.js"
import { traverse } from "./internal/traverse.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Prepended to the table names; default `"castore_"`. */
  readonly tablePrefix?: string | undefined
}

/** Rows per INSERT statement and digests per `IN (…)` list: well below every dialect's parameter limit. */
const batchSize = 400

const storageError = (description: string, cause: unknown): DirectoryServiceError =>
  new DirectoryServiceError({
    reason: "Storage",
    description: `${description}: ${
      typeof cause === "object" && cause !== null && "message" in cause ? String(cause.message) : String(cause)
    }`,
    cause
  })

const migrations = (table: string) =>
  Migrator.fromRecord({
    "0001_create_directories": Effect.flatMap(SqlClient.SqlClient, (client) => {
      const sql = client.withoutTransforms()
      return sql.onDialectOrElse({
        sqlite: () =>
          sql`CREATE TABLE IF NOT EXISTS ${sql(table)} (
            digest BLOB NOT NULL PRIMARY KEY,
            data BLOB NOT NULL
          ) WITHOUT ROWID`,
        pg: () =>
          sql`CREATE TABLE IF NOT EXISTS ${sql(table)} (
            digest BYTEA NOT NULL PRIMARY KEY,
            data BYTEA NOT NULL
          )`,
        orElse: () => Effect.dieMessage(`SqlDirectoryService supports SQLite and PostgreSQL only`)
      })
    })
  })

/** Bytes from a BLOB/BYTEA column, whichever way the driver returns them. */
const toBytes = (value: unknown): Uint8Array | undefined => {
  if (value instanceof Uint8Array) return value
  if (value instanceof ArrayBuffer) return new Uint8Array(value)
  return undefined
}

const chunksOf = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/**
 * Opens a directory store on the `SqlClient` in context, creating its table
 * when missing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<Service, DirectoryServiceError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const prefix = options.tablePrefix ?? "castore_"
    const table = `${prefix}directories`
    const tableSql = sql(table)

    const dialect = sql.onDialectOrElse({ sqlite: () => "sqlite", pg: () => "pg", orElse: () => "other" })
    if (dialect === "other") {
      return yield* new DirectoryServiceError({
        reason: "Storage",
        description: "SqlDirectoryService supports SQLite and PostgreSQL clients only"
      })
    }

    yield* Migrator.make({})({ loader: migrations(table), table: `${prefix}migrations` }).pipe(
      Effect.provideService(SqlClient.SqlClient, sql),
      Effect.mapError((cause) => storageError(`could not create the table ${table}`, cause))
    )

    /** Decodes a stored row, checking it is the directory it is stored under. */
    const decodeRow = (key: string, data: unknown): Either.Either<Directory.Directory, DirectoryServiceError> => {
      const bytes = toBytes(data)
      if (bytes === undefined) {
        return Either.left(
          new DirectoryServiceError({
            reason: "Corrupt",
            digest: key,
            description: `the ${table}.data column holds ${typeof data}, not bytes`
          })
        )
      }
      return Either.flatMap(
        Either.mapLeft(Directory.decode(bytes), (cause) =>
          new DirectoryServiceError({
            reason: "Corrupt",
            digest: key,
            description: `stored bytes do not decode: ${cause.message}`,
            cause
          })),
        (directory) => {
          const actual = B3Digest.toHex(directory.digest)
          return actual === key ? Either.right(directory) : Either.left(
            new DirectoryServiceError({
              reason: "Corrupt",
              digest: key,
              description: `stored bytes decode to directory ${actual}`
            })
          )
        }
      )
    }

    const selectMany = (
      digests: ReadonlyArray<B3Digest.B3Digest>
    ): Effect.Effect<ReadonlyArray<Directory.Directory | undefined>, DirectoryServiceError> =>
      Effect.gen(function*() {
        const byKey = new Map<string, Directory.Directory>()
        for (const batch of chunksOf(digests, batchSize)) {
          const rows = yield* sql<{ readonly digest: unknown; readonly data: unknown }>`
            SELECT digest, data FROM ${tableSql} WHERE digest IN ${sql.in(batch.map(asBuffer))}
          `.pipe(Effect.mapError((cause) => storageError(`could not read from ${table}`, cause)))
          for (const row of rows) {
            const digest = toBytes(row.digest)
            if (digest === undefined) continue
            const key = B3Digest.toHex(digest)
            byKey.set(key, yield* decodeRow(key, row.data))
          }
        }
        return digests.map((digest) => byKey.get(B3Digest.toHex(digest)))
      })

    const insertAll = (directories: ReadonlyArray<Directory.Directory>) =>
      Effect.forEach(
        chunksOf(directories, batchSize),
        (batch) =>
          sql`INSERT INTO ${tableSql} ${
            sql.insert(batch.map((directory) => ({
              digest: asBuffer(directory.digest),
              data: asBuffer(Directory.encode(directory))
            })))
          } ON CONFLICT (digest) DO NOTHING`,
        { discard: true }
      )

    return DirectoryService.of({
      get: (digest) =>
        Effect.flatMap(
          sql<{ readonly data: unknown }>`SELECT data FROM ${tableSql} WHERE digest = ${asBuffer(digest)}`.pipe(
            Effect.mapError((cause) => storageError(`could not read ${B3Digest.toHex(digest)} from ${table}`, cause))
          ),
          (rows) =>
            rows.length === 0
              ? Effect.succeedNone
              : Effect.map(decodeRow(B3Digest.toHex(digest), rows[0].data), Option.some)
        ),
      put: (directory) =>
        insertAll([directory]).pipe(
          Effect.mapError((cause) => storageError(`could not write ${B3Digest.toHex(directory.digest)} to ${table}`, cause)),
          Effect.as(directory.digest)
        ),
      getRecursive: (root) => traverse(root, selectMany),
      putter: makePutter(({ directories, root }) =>
        sql.withTransaction(insertAll(directories)).pipe(
          Effect.mapError((cause) =>
            storageError(
              `could not write the closure of ${B3Digest.toHex(root.digest)} (${directories.length} directories) to ${table}`,
              cause
            )
          )
        )
      )
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<DirectoryService, DirectoryServiceError, SqlClient.SqlClient> =>
  Layer.effect(DirectoryService, make(options))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config<Options>
): Layer.Layer<DirectoryService, DirectoryServiceError | ConfigError.ConfigError, SqlClient.SqlClient> =>
  Layer.effect(DirectoryService, Effect.flatMap(config, make))
