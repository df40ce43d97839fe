/**
 * A PathInfoService over the generic `SqlClient` of `@effect/sql`: the same
 * schema runs on SQLite (`@effect/sql-libsql`, `@effect/sql-sqlite-node`) and
 * PostgreSQL (`@effect/sql-pg`). Pick the database by providing that client's
 * layer.
 *
 * Tables (names prefixed with `tablePrefix`, default `nixfx_`):
 *
 * - `pathinfo`: one row per store path (digest primary key);
 * - `pathinfo_reference`: one row per reference, keyed by (referrer, position),
 *   indexed by the referenced digest for the reverse check;
 * - `pathinfo_write_lock`: one row, written first by every `put` on SQLite so
 *   the transaction holds the write lock before it reads (no other process can
 *   slip a contradicting write between the checks and the insert);
 * - `nar_index`: the `SqlNarIndex` (NAR sha256 → castore root and size);
 * - `pathinfo_migrations`: the Migrator's bookkeeping.
 *
 * Every `put` is one transaction: the merge with a stored PathInfo, both
 * reference-by-content checks and all writes commit together or not at all.
 * On PostgreSQL the transaction first takes transaction-scoped advisory locks
 * on the path and its references (in ascending order, so two puts cannot
 * deadlock), which serialises exactly the puts that could contradict each
 * other.
 *
 * @since 0.1.0
 */
import * as Migrator from "@effect/sql/Migrator"
import * as Node from "@nixfx/castore-nodes/Node"
import * as CAHash from "@nixfx/nix-compat/CAHash"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Chunk from "effect/Chunk"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { forwardConflict, merge, reverseConflict } from "./internal/consistency.js"
import {
  decodePathInfo,
  decodeRows,
  encodeNode,
  encodePath,
  encodeReference,
  encodeSignatures,
  type JoinedRow,
  type PathColumns,
  type ReferenceColumns,
  toBuffer,
  toBytes,
  toNumber
} from "./internal/sqlRow.js"
import type * as PathInfo from "./PathInfo.js"
import { InvalidPathInfo, type PathInfoServiceError, StorageError } from "./PathInfoError.js"
import * as PathInfoService from "./PathInfoService.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Prefix of every table name (default `nixfx_`). */
  readonly tablePrefix?: string | undefined
  /** PathInfos per page when listing (default 256). */
  readonly listPageSize?: number | undefined
}

const BACKEND = "sql"

const storageError = (operation: string) => (cause: SqlError | Migrator.MigrationError): StorageError =>
  new StorageError({ backend: BACKEND, operation, detail: cause.message, cause })

/** Rows per multi-row INSERT / digests per IN list: well under SQLite's and PostgreSQL's parameter limits. */
const CHUNK = 500

const chunks = <A>(as: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < as.length; i += size) out.push(as.slice(i, i + size))
  return out
}

const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** A signed 64-bit advisory-lock key from the first 8 bytes of a digest. */
const lockKey = (digest: Uint8Array): bigint =>
  Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).readBigInt64BE(0)

/**
 * The migrations, by id. Exposed so that applications bundling their own
 * migrations can see what this layer creates.
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrations = (tablePrefix: string): Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> => ({
  "1_create_pathinfo": Effect.gen(function*() {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const bytes = sql.onDialectOrElse({ pg: () => sql.literal("BYTEA"), orElse: () => sql.literal("BLOB") })
    const withoutRowid = sql.onDialectOrElse({ sqlite: () => sql.literal(" WITHOUT ROWID"), orElse: () => sql.literal("") })
    const pathinfo = sql(`${tablePrefix}pathinfo`)
    const reference = sql(`${tablePrefix}pathinfo_reference`)
    yield* sql`CREATE TABLE ${pathinfo} (
      digest ${bytes} NOT NULL PRIMARY KEY,
      name TEXT NOT NULL,
      node ${bytes} NOT NULL,
      nar_size BIGINT NOT NULL,
      nar_sha256 ${bytes} NOT NULL,
      signatures TEXT NOT NULL,
      deriver TEXT,
      ca TEXT,
      reference_count INTEGER NOT NULL
    )${withoutRowid}`
    yield* sql`CREATE TABLE ${reference} (
      referrer ${bytes} NOT NULL,
      position INTEGER NOT NULL,
      reference ${bytes} NOT NULL,
      name TEXT NOT NULL,
      node ${bytes},
      PRIMARY KEY (referrer, position)
    )${withoutRowid}`
    yield* sql`CREATE INDEX ${sql(`${tablePrefix}pathinfo_reference_by_reference`)} ON ${reference} (reference)`
    yield* sql`CREATE TABLE ${sql(`${tablePrefix}pathinfo_write_lock`)} (id INTEGER NOT NULL PRIMARY KEY, n BIGINT NOT NULL)`
    yield* sql`INSERT INTO ${sql(`${tablePrefix}pathinfo_write_lock`)} (id, n) VALUES (1, 0)`
  }),
  // The NarIndex (SqlNarIndex): NAR sha256 → castore root of NARs imported
  // without (or before losing) a PathInfo; stored PathInfos answer by their
  // nar_sha256, hence its index.
  "2_create_nar_index": Effect.gen(function*() {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const bytes = sql.onDialectOrElse({ pg: () => sql.literal("BYTEA"), orElse: () => sql.literal("BLOB") })
    const withoutRowid = sql.onDialectOrElse({ sqlite: () => sql.literal(" WITHOUT ROWID"), orElse: () => sql.literal("") })
    yield* sql`CREATE TABLE ${sql(`${tablePrefix}nar_index`)} (
      nar_sha256 ${bytes} NOT NULL PRIMARY KEY,
      nar_size BIGINT NOT NULL,
      node ${bytes} NOT NULL
    )${withoutRowid}`
    yield* sql`CREATE INDEX ${sql(`${tablePrefix}pathinfo_by_nar_sha256`)} ON ${sql(`${tablePrefix}pathinfo`)} (nar_sha256)`
  })
})

/**
 * Runs the migrations (`make` and `SqlNarIndex.make` do; idempotent).
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrate = (tablePrefix: string): Effect.Effect<void, StorageError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (client) =>
    Migrator.make({})({
      loader: Migrator.fromRecord(migrations(tablePrefix)),
      table: `${tablePrefix}pathinfo_migrations`
    }).pipe(
      Effect.provideService(SqlClient.SqlClient, client.withoutTransforms()),
      Effect.mapError(storageError("migrate")),
      Effect.asVoid
    ))

/** Statement spans cost more than the queries themselves; callers' own spans remain. */
const untraced = Effect.withTracerEnabled(false)

const SELECT_COLUMNS = `p.digest, p.name, p.node, p.nar_size, p.nar_sha256, p.signatures, p.deriver, p.ca,
  p.reference_count, r.position, r.reference AS ref_digest, r.name AS ref_name, r.node AS ref_node`

/**
 * Runs the migrations and returns the service. Needs a `SqlClient`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: Options
): Effect.Effect<PathInfoService.PathInfoServiceShape, StorageError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const prefix = options?.tablePrefix ?? "nixfx_"
    const pageSize = Math.max(1, options?.listPageSize ?? 256)
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    yield* migrate(prefix)
    const pathinfo = `${prefix}pathinfo`
    const reference = `${prefix}pathinfo_reference`
    const writeLock = `${prefix}pathinfo_write_lock`
    const isPg = sql.onDialectOrElse({ pg: () => true, orElse: () => false })

    const q = (name: string) => sql(name)

    const getRows = (digest: Uint8Array) =>
      sql<JoinedRow>`SELECT ${sql.literal(SELECT_COLUMNS)}
        FROM ${q(pathinfo)} p LEFT JOIN ${q(reference)} r ON r.referrer = p.digest
        WHERE p.digest = ${toBuffer(digest)}
        ORDER BY r.position`

    const decodeOne = (rows: ReadonlyArray<JoinedRow>): Effect.Effect<Option.Option<PathInfo.PathInfo>, InvalidPathInfo> => {
      if (rows.length === 0) return Effect.succeedNone
      const r = decodeRows(rows, 0, rows.length)
      return Either.isRight(r) ? Effect.succeed(Option.some(r.right)) : Effect.fail(r.left)
    }

    const get = (digest: Uint8Array): Effect.Effect<Option.Option<PathInfo.PathInfo>, PathInfoServiceError> =>
      getRows(digest).pipe(Effect.mapError(storageError("get")), Effect.flatMap(decodeOne))

    // -- put ---------------------------------------------------------------

    const lock = (p: PathInfo.PathInfo) =>
      isPg
        ? Effect.suspend(() => {
          const keys = new Set<bigint>([lockKey(p.storePath.digest)])
          for (const ref of p.references) keys.add(lockKey(ref.storePath.digest))
          const sorted = Array.from(keys).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
          // The keys are integers computed here, not input text: safe to inline.
          return sql.unsafe(
            `SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest(ARRAY[${sorted.join(",")}]::bigint[]) AS k ORDER BY k) AS keys`
          )
        })
        : sql`UPDATE ${q(writeLock)} SET n = n + 1 WHERE id = 1`

    /** Stored nodes of the references `p` records a node for (other than itself). */
    const storedNodesOf = (p: PathInfo.PathInfo) =>
      Effect.gen(function*() {
        const wanted = p.references.filter((r) =>
          Option.isSome(r.node) && !bytesEqual(r.storePath.digest, p.storePath.digest)
        )
        const found = new Map<string, Uint8Array>()
        for (const chunk of chunks(wanted, CHUNK)) {
          const rows = yield* sql<{ digest: unknown; node: unknown }>`SELECT digest, node FROM ${q(pathinfo)}
            WHERE ${sql.in("digest", chunk.map((r) => toBuffer(r.storePath.digest)))}`
          for (const row of rows) {
            const d = toBytes(row.digest)
            const n = toBytes(row.node)
            if (d !== undefined && n !== undefined) found.set(Buffer.from(d).toString("latin1"), n)
          }
        }
        return found
      })

    const forward = (p: PathInfo.PathInfo) =>
      Effect.flatMap(storedNodesOf(p), (found): Effect.Effect<void, PathInfoServiceError> => {
        if (found.size === 0) return Effect.void
        let corrupt: InvalidPathInfo | undefined
        const conflict = forwardConflict(p, (ref) => {
          const bytes = found.get(Buffer.from(ref.digest).toString("latin1"))
          if (bytes === undefined) return undefined
          const decoded = Node.decodeNamed(bytes)
          if (Either.isLeft(decoded)) {
            corrupt ??= new InvalidPathInfo({
              storePath: StorePath.toBasename(ref),
              field: "node",
              detail: "stored row: " + decoded.left.message
            })
            return undefined
          }
          return decoded.right.node
        })
        return conflict !== undefined ? Effect.fail(conflict) : corrupt !== undefined ? Effect.fail(corrupt) : Effect.void
      })

    const reverse = (p: PathInfo.PathInfo) =>
      Effect.flatMap(
        sql<{ referrer: unknown; name: unknown; node: unknown }>`SELECT r.referrer, p.name, r.node
          FROM ${q(reference)} r JOIN ${q(pathinfo)} p ON p.digest = r.referrer
          WHERE r.reference = ${toBuffer(p.storePath.digest)} AND r.node IS NOT NULL AND r.node <> ${encodeNode(p.node)}
            AND r.referrer <> ${toBuffer(p.storePath.digest)}
          LIMIT 1`,
        (rows): Effect.Effect<void, PathInfoServiceError> => {
          if (rows.length === 0) return Effect.void
          const row = rows[0]
          const digest = toBytes(row.referrer)
          const nodeBytes = toBytes(row.node)
          const decoded = nodeBytes === undefined ? undefined : Node.decodeNamed(nodeBytes)
          const referrer = digest !== undefined && digest.length === 20 && typeof row.name === "string"
            ? StorePath.toBasename(StorePath.unsafeMake(new Uint8Array(digest), row.name))
            : "(unreadable referrer)"
          if (decoded === undefined || Either.isLeft(decoded)) {
            return Effect.fail(
              new InvalidPathInfo({ storePath: referrer, field: `node of reference ${p.basename}`, detail: "stored row is not a node" })
            )
          }
          return Effect.fail(reverseConflict(p, referrer, decoded.right.node))
        }
      )

    const insertReferences = (p: PathInfo.PathInfo) => {
      const referrer = toBuffer(p.storePath.digest)
      const rows = p.references.map((ref, i) => encodeReference(referrer, i, ref))
      return Effect.forEach(
        chunks(rows, CHUNK),
        (chunk) => sql`INSERT INTO ${q(reference)} ${sql.insert(chunk as unknown as Array<Record<string, unknown>>)}`,
        { discard: true }
      )
    }

    const insert = (p: PathInfo.PathInfo) =>
      Effect.zipRight(
        sql`INSERT INTO ${q(pathinfo)} ${sql.insert(encodePath(p) as unknown as Record<string, unknown>)}`,
        insertReferences(p)
      )

    /** Writes what a merge can change: signatures, deriver, CA, reference nodes that became known. */
    const update = (stored: PathInfo.PathInfo, next: PathInfo.PathInfo) =>
      Effect.gen(function*() {
        const digest = toBuffer(next.storePath.digest)
        yield* sql`UPDATE ${q(pathinfo)} SET
            signatures = ${encodeSignatures(next.signatures)},
            deriver = ${Option.isSome(next.deriver) ? StorePath.toBasename(next.deriver.value) : null},
            ca = ${Option.isSome(next.ca) ? CAHash.render(next.ca.value) : null}
          WHERE digest = ${digest}`
        for (let i = 0; i < next.references.length; i++) {
          const ref = next.references[i]
          if (Option.isSome(ref.node) && Option.isNone(stored.references[i].node)) {
            yield* sql`UPDATE ${q(reference)} SET node = ${encodeNode(ref.node.value)}
              WHERE referrer = ${digest} AND position = ${i}`
          }
        }
      })

    const putTransaction = (p: PathInfo.PathInfo): Effect.Effect<PathInfo.PathInfo, PathInfoServiceError | SqlError> =>
      Effect.gen(function*() {
        yield* lock(p)
        const stored = yield* Effect.flatMap(getRows(p.storePath.digest), decodeOne)
        if (Option.isSome(stored)) {
          const merged = merge(stored.value, p)
          if (Either.isLeft(merged)) return yield* merged.left
          if (merged.right === stored.value) return stored.value
          yield* forward(merged.right)
          yield* update(stored.value, merged.right)
          return merged.right
        }
        yield* forward(p)
        yield* reverse(p)
        yield* insert(p)
        return p
      })

    const put = (p: PathInfo.PathInfo): Effect.Effect<PathInfo.PathInfo, PathInfoServiceError> =>
      sql.withTransaction(putTransaction(p)).pipe(
        Effect.catchTag("SqlError", (e) => Effect.fail(storageError("put")(e)))
      )

    // -- list --------------------------------------------------------------

    // Two statements per page rather than a join: the join repeats every
    // path column on each reference row, and the drivers allocate a Buffer per
    // BLOB cell. Reference rows are read by referrer range; rows of paths that
    // appeared between the two statements are skipped (they are not in the page).
    const pathPage = (after: Uint8Array | undefined) =>
      sql<PathColumns>`SELECT digest, name, node, nar_size, nar_sha256, signatures, deriver, ca, reference_count
        FROM ${q(pathinfo)}
        ${after === undefined ? sql.literal("") : sql`WHERE digest > ${toBuffer(after)}`}
        ORDER BY digest LIMIT ${pageSize}`

    const referencePage = (first: unknown, last: unknown) =>
      sql<ReferenceColumns & { readonly referrer: unknown }>`SELECT referrer, position,
          reference AS ref_digest, name AS ref_name, node AS ref_node
        FROM ${q(reference)}
        WHERE referrer >= ${first} AND referrer <= ${last}
        ORDER BY referrer, position`

    const page = (after: Uint8Array | undefined) =>
      Effect.flatMap(pathPage(after), (paths) => {
        if (paths.length === 0) return Effect.succeed([paths, []] as const)
        if (!paths.some((p) => toNumber(p.reference_count) > 0)) return Effect.succeed([paths, []] as const)
        return Effect.map(
          referencePage(paths[0].digest, paths[paths.length - 1].digest),
          (refs) => [paths, refs] as const
        )
      })

    const decodePage = (
      paths: ReadonlyArray<PathColumns>,
      refs: ReadonlyArray<ReferenceColumns & { readonly referrer: unknown }>
    ): Either.Either<Array<PathInfo.PathInfo>, InvalidPathInfo> => {
      const out: Array<PathInfo.PathInfo> = []
      let i = 0
      for (const path of paths) {
        const digest = toBytes(path.digest)!
        while (i < refs.length && Buffer.compare(toBytes(refs[i].referrer)!, digest) < 0) i++
        const start = i
        while (i < refs.length && Buffer.compare(toBytes(refs[i].referrer)!, digest) === 0) i++
        const r = decodePathInfo(path, refs, start, i)
        if (Either.isLeft(r)) return Either.left(r.left)
        out.push(r.right)
      }
      return Either.right(out)
    }

    const list: Stream.Stream<PathInfo.PathInfo, PathInfoServiceError> = Stream.paginateChunkEffect(
      undefined as Uint8Array | undefined,
      (after) =>
        untraced(page(after)).pipe(
          Effect.mapError(storageError("list")),
          Effect.flatMap(([paths, refs]) => {
            const decoded = decodePage(paths, refs)
            if (Either.isLeft(decoded)) return Effect.fail(decoded.left)
            const items = decoded.right
            const next = items.length < pageSize ? Option.none() : Option.some(items[items.length - 1].storePath.digest)
            return Effect.succeed([Chunk.unsafeFromArray(items), next] as const)
          })
        )
    )

    return PathInfoService.make({
      get: (digest) => untraced(get(digest)),
      put: (p) => untraced(put(p)),
      list
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<PathInfoService.PathInfoService, StorageError, SqlClient.SqlClient> =>
  Layer.effect(PathInfoService.PathInfoService, make(options))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<PathInfoService.PathInfoService, StorageError | ConfigError.ConfigError, SqlClient.SqlClient> =>
  Layer.effect(PathInfoService.PathInfoService, Effect.flatMap(Config.unwrap(config), make))
