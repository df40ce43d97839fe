/**
 * Composing a store — a `PathInfoService` with the castore `BlobService` and
 * `DirectoryService` its PathInfos point into — from one URL or a composition
 * document.
 *
 * URLs (built in; other packages register more, see `Backend`):
 *
 * - `memory://` — everything in memory, gone with the layer;
 * - `sqlite:///abs/dir` — the embedded default: PathInfos and directories in
 *   `<dir>/store.sqlite`, blobs as files under `<dir>/blobs`
 *   (`?driver=better-sqlite3`, the default, or `?driver=libsql`);
 * - `postgres://user@host:port/db?blobs=/abs/dir` — PathInfos and directories
 *   in PostgreSQL, blobs under the given directory (`table-prefix=` optional;
 *   `sslmode=` passed on).
 *
 * A document names stores and lets them refer to each other by name (or
 * inline, or by URL); the one named `root` is the result:
 *
 * ```json
 * { "stores": {
 *     "root":   { "type": "lru", "inner": "cached", "capacity": 10000 },
 *     "cached": { "type": "cache", "near": "local", "far": "remote" },
 *     "local":  { "type": "sqlite", "path": "/var/lib/nixfx" },
 *     "remote": "postgres://nixfx@db.example/nixfx?blobs=/mnt/blobs" } }
 * ```
 *
 * Types: `memory`, `sqlite {path, driver?}`, `postgres {url, blobs,
 * tablePrefix?}`, `cache {near, far}` (PathInfos read through, castore reads
 * near then far, writes near), `lru {inner, capacity}`, `signing {inner,
 * keyFile, storeDir?}`. A store referred to twice is built once.
 *
 * Mistakes fail with a `StoreConfigError` naming the part: the scheme, a
 * host that should not be there, a relative path, an unknown query
 * parameter, an unknown type or field, a reference to an unknown store, a
 * cycle.
 *
 * @since 0.1.0
 */
import { LibsqlClient } from "@effect/sql-libsql"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as SqlClient from "@effect/sql/SqlClient"
import * as BlobService from "@nixfx/castore/BlobService"
import * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as FilesystemBlobService from "@nixfx/castore/FilesystemBlobService"
import * as SqlDirectoryService from "@nixfx/castore/SqlDirectoryService"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"
import { blobCache, directoryCache } from "./internal/castoreCache.js"
import * as PathInfoCombinators from "./PathInfoCombinators.js"
import * as NarIndex from "./NarIndex.js"
import * as PathInfoService from "./PathInfoService.js"
import * as SqlNarIndex from "./SqlNarIndex.js"
import * as SqlPathInfoService from "./SqlPathInfoService.js"

// ---------------------------------------------------------------------------
// models and errors
// ---------------------------------------------------------------------------

/**
 * The three services of a store, and its `NarIndex` when it keeps one
 * (memory, SQLite and PostgreSQL stores do; a binary cache reader importing
 * into the store uses it so that no NAR is downloaded twice).
 *
 * @since 0.1.0
 * @category models
 */
export interface Store {
  readonly pathInfoService: PathInfoService.PathInfoServiceShape
  readonly blobService: BlobService.Service
  readonly directoryService: DirectoryService.Service
  readonly narIndex?: NarIndex.NarIndexShape | undefined
}

/**
 * One store's configuration: `type` names the backend, the other fields are
 * the backend's.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry {
  readonly type: string
  readonly [field: string]: unknown
}

/**
 * A composition document: named stores; `root` is the one built.
 *
 * @since 0.1.0
 * @category models
 */
export interface Document {
  readonly stores: { readonly [name: string]: Entry | string }
}

/**
 * Which part of a store URL or document is wrong.
 *
 * @since 0.1.0
 * @category errors
 */
export const ConfigPart = Schema.Literal(
  "url",
  "scheme",
  "host",
  "path",
  "query",
  "document",
  "entry",
  "type",
  "field",
  "reference",
  "cycle"
)

/**
 * @since 0.1.0
 * @category errors
 */
export type ConfigPart = typeof ConfigPart.Type

/**
 * A store URL or composition document is wrong. `input` is the URL (password
 * hidden) or `stores.<name>`; `part` says what is wrong with it.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreConfigError extends Schema.TaggedError<StoreConfigError>("@nixfx/pathinfo/StoreConfigError")(
  "StoreConfigError",
  {
    input: Schema.String,
    part: ConfigPart,
    detail: Schema.String
  }
) {
  override get message(): string {
    return `invalid store ${this.input}: ${this.part}: ${this.detail}`
  }
}

/**
 * A well-formed store could not be opened (a directory not writable, a
 * database not reachable, a key file not readable).
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreOpenError extends Schema.TaggedError<StoreOpenError>("@nixfx/pathinfo/StoreOpenError")(
  "StoreOpenError",
  {
    store: Schema.String,
    detail: Schema.String,
    cause: Schema.optional(Schema.Defect)
  }
) {
  override get message(): string {
    return `could not open store ${this.store}: ${this.detail}`
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export type StoreError = StoreConfigError | StoreOpenError

// ---------------------------------------------------------------------------
// the registry
// ---------------------------------------------------------------------------

/**
 * What a backend's `build` gets besides its entry.
 *
 * @since 0.1.0
 * @category models
 */
export interface BuildContext {
  /** How this entry is named in messages: `stores.<name>`, a URL, or `stores.<name>.<field>`. */
  readonly label: string
  /**
   * Builds another store this one refers to: a name in the document, a URL,
   * or an inline entry. Each name or URL is built once per composition.
   * `field` names the referring field in messages.
   */
  readonly resolve: (reference: unknown, field: string) => Effect.Effect<Store, StoreError, Scope.Scope>
}

/**
 * A kind of store. Register it in a `Registry` to make its `type` usable in
 * documents and its `schemes` in URLs.
 *
 * @since 0.1.0
 * @category models
 */
export interface Backend {
  /** The `type` of document entries it builds. */
  readonly type: string
  /** URL schemes (without `:`) it handles, e.g. `["nix+http", "nix+https"]`. */
  readonly schemes: ReadonlyArray<string>
  /**
   * The entry a URL stands for. `input` is the URL for messages (password
   * hidden). Only called for this backend's schemes.
   */
  readonly fromUrl?: ((url: URL, input: string) => Either.Either<Entry, StoreConfigError>) | undefined
  /** Opens the store of an entry; resources live as long as the Scope. */
  readonly build: (entry: Entry, context: BuildContext) => Effect.Effect<Store, StoreError, Scope.Scope>
}

/**
 * Backends by type and by scheme.
 *
 * @since 0.1.0
 * @category models
 */
export interface Registry {
  readonly byType: ReadonlyMap<string, Backend>
  readonly byScheme: ReadonlyMap<string, Backend>
}

/**
 * A registry of these backends; later ones replace earlier ones of the same
 * type or scheme.
 *
 * @since 0.1.0
 * @category registry
 */
export const makeRegistry = (backends: Iterable<Backend>): Registry => {
  const byType = new Map<string, Backend>()
  const byScheme = new Map<string, Backend>()
  for (const b of backends) {
    byType.set(b.type, b)
    for (const s of b.schemes) byScheme.set(s.toLowerCase(), b)
  }
  return { byType, byScheme }
}

/**
 * `registry` plus `backends` (e.g. the gRPC client and the HTTP binary cache
 * packages each export a `Backend`).
 *
 * @since 0.1.0
 * @category registry
 */
export const register = (registry: Registry, ...backends: ReadonlyArray<Backend>): Registry =>
  makeRegistry([...registry.byType.values(), ...backends])

/**
 * The registry the layers use; provide another to add backends:
 * `Layer.provide(Layer.succeed(StoreComposition.CurrentRegistry, register(defaultRegistry, myBackend)))`.
 *
 * @since 0.1.0
 * @category registry
 */
export class CurrentRegistry extends Context.Reference<CurrentRegistry>()("@nixfx/pathinfo/StoreComposition/CurrentRegistry", {
  defaultValue: (): Registry => defaultRegistry
}) {}

// ---------------------------------------------------------------------------
// helpers for backends
// ---------------------------------------------------------------------------

/** Hides the password of a URL for messages. */
const redactUrl = (raw: string): string => raw.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*:)[^/@]*@/i, "$1***@")

const formatPath = (p: ReadonlyArray<PropertyKey>): string =>
  p.map((k, i) => (typeof k === "number" ? `[${k}]` : i === 0 ? String(k) : "." + String(k))).join("")

/**
 * Decodes an entry with `schema` (unknown fields are errors), naming the
 * offending field.
 *
 * @since 0.1.0
 * @category backend helpers
 */
export const decodeEntry = <A, I>(
  schema: Schema.Schema<A, I>,
  entry: Entry,
  label: string
): Either.Either<A, StoreConfigError> =>
  Either.mapLeft(
    Schema.decodeUnknownEither(schema, { onExcessProperty: "error", errors: "first" })(entry),
    (e) => {
      const issue = ParseResult.ArrayFormatter.formatErrorSync(e)[0]
      const field = issue === undefined ? "" : formatPath(issue.path)
      const detail = issue === undefined
        ? e.message
        : issue._tag === "Unexpected"
        ? `unknown field ${JSON.stringify(field)} for type ${JSON.stringify(entry.type)}`
        : `${field === "" ? "" : field + ": "}${issue.message}`
      return new StoreConfigError({ input: label, part: "field", detail })
    }
  )

/**
 * Reads a URL's query: only `allowed` parameters, each at most once.
 *
 * @since 0.1.0
 * @category backend helpers
 */
export const queryParams = (
  url: URL,
  input: string,
  allowed: ReadonlyArray<string>
): Either.Either<Map<string, string>, StoreConfigError> => {
  const out = new Map<string, string>()
  for (const [key, value] of url.searchParams) {
    if (!allowed.includes(key)) {
      return Either.left(
        new StoreConfigError({
          input,
          part: "query",
          detail: `unknown query parameter ${JSON.stringify(key)}${
            allowed.length === 0 ? " (none are accepted)" : `; accepted: ${allowed.join(", ")}`
          }`
        })
      )
    }
    if (out.has(key)) {
      return Either.left(new StoreConfigError({ input, part: "query", detail: `query parameter ${JSON.stringify(key)} given twice` }))
    }
    out.set(key, value)
  }
  return Either.right(out)
}

/** Fails when the URL has a host (user, port) although the scheme takes none. */
const noHost = (url: URL, input: string, example: string): Either.Either<void, StoreConfigError> =>
  url.host === "" && url.username === "" && url.password === ""
    ? Either.void
    : Either.left(
      new StoreConfigError({
        input,
        part: "host",
        detail: `${url.protocol.slice(0, -1)} URLs take no host, got ${JSON.stringify(url.host)} (write ${example})`
      })
    )

/** An absolute, non-root directory path (percent-decoded). */
const absoluteDirectory = (raw: string, input: string, what: string): Either.Either<string, StoreConfigError> => {
  let p: string
  try {
    p = decodeURIComponent(raw)
  } catch {
    return Either.left(new StoreConfigError({ input, part: "path", detail: `${what} is not valid percent-encoding: ${raw}` }))
  }
  if (!path.isAbsolute(p)) {
    return Either.left(new StoreConfigError({ input, part: "path", detail: `${what} must be absolute, got ${JSON.stringify(p)}` }))
  }
  const normal = path.resolve(p)
  if (normal === path.parse(normal).root) {
    return Either.left(new StoreConfigError({ input, part: "path", detail: `${what} must not be the root directory` }))
  }
  return Either.right(normal)
}

const AbsolutePath = Schema.String.pipe(
  Schema.filter((s) => (path.isAbsolute(s) && path.resolve(s) !== path.parse(path.resolve(s)).root) ||
    `must be an absolute path other than the root directory, got ${JSON.stringify(s)}`)
)

const openError = (store: string, detail: string) => (cause: unknown): StoreOpenError =>
  new StoreOpenError({
    store,
    detail: `${detail}: ${cause !== null && typeof cause === "object" && "message" in cause ? String(cause.message) : String(cause)}`,
    cause
  })

const contextOf = (layer: Layer.Layer<SqlClient.SqlClient, unknown>, label: string, what: string) =>
  Effect.map(Effect.mapError(Layer.build(layer), openError(label, what)), (ctx) => Context.get(ctx, SqlClient.SqlClient))

// ---------------------------------------------------------------------------
// built-in backends
// ---------------------------------------------------------------------------

const memoryBackend: Backend = {
  type: "memory",
  schemes: ["memory"],
  fromUrl: (url, input) =>
    Either.gen(function*() {
      yield* noHost(url, input, "memory://")
      if (url.pathname !== "" && url.pathname !== "/") {
        return yield* Either.left(
          new StoreConfigError({ input, part: "path", detail: `memory URLs take no path, got ${JSON.stringify(url.pathname)}` })
        )
      }
      yield* queryParams(url, input, [])
      return { type: "memory" }
    }),
  build: (entry, context) =>
    Effect.gen(function*() {
      yield* decodeEntry(Schema.Struct({ type: Schema.Literal("memory") }), entry, context.label)
      return {
        pathInfoService: yield* PathInfoService.makeMemory,
        blobService: yield* BlobService.makeMemory,
        directoryService: yield* DirectoryService.makeMemory,
        narIndex: yield* NarIndex.makeMemory
      }
    })
}

/**
 * The SQLite drivers the `sqlite` type can use.
 *
 * - `better-sqlite3` (the default): one connection, transactions on it.
 *   Compiles a native module at install (about 1.5 minutes).
 * - `libsql`: a prebuilt binary (installs in seconds), but `@libsql/client`
 *   opens a new connection for every transaction and leaves it open until
 *   garbage collection: two file descriptors per `put` (WAL mode) pile up
 *   between collections (measured: 1,000 open after 500 transactions; a
 *   10,000-put benchmark died with EMFILE at `ulimit -n` 20000), and puts are
 *   several times slower. Fine for short-lived tools only.
 *
 * @since 0.1.0
 * @category backends
 */
export const SqliteDriver = Schema.Literal("libsql", "better-sqlite3")

/**
 * @since 0.1.0
 * @category backends
 */
export type SqliteDriver = typeof SqliteDriver.Type

/**
 * The default SQLite driver.
 *
 * @since 0.1.0
 * @category backends
 */
export const defaultSqliteDriver: SqliteDriver = "better-sqlite3"

/** The SQLite database file of a `sqlite` store in `dir`. */
export const sqliteDatabaseFile = (dir: string): string => path.join(dir, "store.sqlite")

/** Where a `sqlite` store in `dir` keeps its blobs. */
export const sqliteBlobsDirectory = (dir: string): string => path.join(dir, "blobs")

/**
 * A `SqlClient` layer for a SQLite file with the given driver (WAL journal,
 * 5 s busy timeout for other processes' writes).
 *
 * @since 0.1.0
 * @category backends
 */
export const sqliteClientLayer = (file: string, driver: SqliteDriver = defaultSqliteDriver): Layer.Layer<SqlClient.SqlClient> =>
  driver === "libsql"
    ? Layer.effectDiscard(
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.orDie(Effect.zipRight(sql`PRAGMA journal_mode = WAL`, sql`PRAGMA busy_timeout = 5000`)))
    ).pipe(Layer.provideMerge(LibsqlClient.layer({ url: "file:" + file })))
    : Layer.orDie(SqliteClient.layer({ filename: file }))

const SqliteEntry = Schema.Struct({
  type: Schema.Literal("sqlite"),
  path: AbsolutePath,
  driver: Schema.optional(SqliteDriver)
})

const sqliteBackend: Backend = {
  type: "sqlite",
  schemes: ["sqlite"],
  fromUrl: (url, input) =>
    Either.gen(function*() {
      yield* noHost(url, input, "sqlite:///absolute/dir")
      if (url.pathname === "") {
        return yield* Either.left(new StoreConfigError({ input, part: "path", detail: "a directory is required: sqlite:///absolute/dir" }))
      }
      const dir = yield* absoluteDirectory(url.pathname, input, "the directory")
      const query = yield* queryParams(url, input, ["driver"])
      const driver = query.get("driver")
      if (driver !== undefined && !Schema.is(SqliteDriver)(driver)) {
        return yield* Either.left(
          new StoreConfigError({ input, part: "query", detail: `driver must be "libsql" or "better-sqlite3", got ${JSON.stringify(driver)}` })
        )
      }
      return driver === undefined ? { type: "sqlite", path: dir } : { type: "sqlite", path: dir, driver }
    }),
  build: (entry, context) =>
    Effect.gen(function*() {
      const config = yield* decodeEntry(SqliteEntry, entry, context.label)
      const dir = path.resolve(config.path)
      yield* Effect.try({
        try: () => fs.mkdirSync(dir, { recursive: true }),
        catch: openError(context.label, `cannot create ${dir}`)
      })
      const sql = yield* contextOf(
        sqliteClientLayer(sqliteDatabaseFile(dir), config.driver ?? defaultSqliteDriver),
        context.label,
        `cannot open ${sqliteDatabaseFile(dir)}`
      )
      return yield* openSqlStore(sql, sqliteBlobsDirectory(dir), undefined, context.label)
    })
}

const openSqlStore = (sql: SqlClient.SqlClient, blobs: string, tablePrefix: string | undefined, label: string) =>
  Effect.gen(function*() {
    const pathInfoService = yield* SqlPathInfoService.make(tablePrefix === undefined ? {} : { tablePrefix }).pipe(
      Effect.provideService(SqlClient.SqlClient, sql),
      Effect.mapError(openError(label, "cannot set up the PathInfo tables"))
    )
    const directoryService = yield* SqlDirectoryService.make(
      tablePrefix === undefined ? {} : { tablePrefix: tablePrefix + "castore_" }
    ).pipe(
      Effect.provideService(SqlClient.SqlClient, sql),
      Effect.mapError(openError(label, "cannot set up the directory tables"))
    )
    const narIndex = yield* SqlNarIndex.make(tablePrefix === undefined ? {} : { tablePrefix }).pipe(
      Effect.provideService(SqlClient.SqlClient, sql),
      Effect.mapError(openError(label, "cannot set up the NAR index table"))
    )
    const blobService = yield* FilesystemBlobService.make({ directory: blobs }).pipe(
      Effect.mapError(openError(label, `cannot open the blob directory ${blobs}`))
    )
    return { pathInfoService, blobService, directoryService, narIndex } satisfies Store
  })

const PostgresEntry = Schema.Struct({
  type: Schema.Literal("postgres"),
  url: Schema.String.pipe(Schema.filter((s) => /^postgres(ql)?:\/\//.test(s) || "must be a postgres:// URL")),
  blobs: AbsolutePath,
  tablePrefix: Schema.optional(
    Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: () => "letters, digits and _ only" }))
  )
})

const postgresBackend: Backend = {
  type: "postgres",
  schemes: ["postgres", "postgresql"],
  fromUrl: (url, input) =>
    Either.gen(function*() {
      const query = yield* queryParams(url, input, ["blobs", "table-prefix", "sslmode"])
      const blobs = query.get("blobs")
      if (blobs === undefined) {
        return yield* Either.left(
          new StoreConfigError({ input, part: "query", detail: "blobs=/absolute/dir is required (where blobs are kept)" })
        )
      }
      const blobsDir = yield* Either.mapLeft(
        absoluteDirectory(encodeURIComponent(blobs), input, "blobs"),
        (e) => new StoreConfigError({ input, part: "query", detail: e.detail })
      )
      const pgUrl = new URL(url.href)
      pgUrl.search = ""
      const sslmode = query.get("sslmode")
      if (sslmode !== undefined) pgUrl.searchParams.set("sslmode", sslmode)
      const prefix = query.get("table-prefix")
      return {
        type: "postgres",
        url: pgUrl.href,
        blobs: blobsDir,
        ...(prefix === undefined ? {} : { tablePrefix: prefix })
      }
    }),
  build: (entry, context) =>
    Effect.gen(function*() {
      const config = yield* decodeEntry(PostgresEntry, entry, context.label)
      const sql = yield* contextOf(
        PgClient.layer({ url: Redacted.make(config.url) }),
        context.label,
        `cannot connect to ${redactUrl(config.url)}`
      )
      return yield* openSqlStore(sql, config.blobs, config.tablePrefix, context.label)
    })
}

const Reference = Schema.Union(Schema.String, Schema.Record({ key: Schema.String, value: Schema.Unknown }))

const CacheEntry = Schema.Struct({ type: Schema.Literal("cache"), near: Reference, far: Reference })

const cacheBackend: Backend = {
  type: "cache",
  schemes: [],
  build: (entry, context) =>
    Effect.gen(function*() {
      const config = yield* decodeEntry(CacheEntry, entry, context.label)
      const near = yield* context.resolve(config.near, "near")
      const far = yield* context.resolve(config.far, "far")
      return {
        pathInfoService: PathInfoCombinators.cache(near.pathInfoService, far.pathInfoService),
        blobService: blobCache(near.blobService, far.blobService),
        directoryService: directoryCache(near.directoryService, far.directoryService),
        // What is imported lands near, so near's index is the one that knows.
        narIndex: near.narIndex
      }
    })
}

const LruEntry = Schema.Struct({
  type: Schema.Literal("lru"),
  inner: Reference,
  capacity: Schema.Number.pipe(Schema.int(), Schema.positive())
})

const lruBackend: Backend = {
  type: "lru",
  schemes: [],
  build: (entry, context) =>
    Effect.gen(function*() {
      const config = yield* decodeEntry(LruEntry, entry, context.label)
      const inner = yield* context.resolve(config.inner, "inner")
      return { ...inner, pathInfoService: PathInfoCombinators.lru(inner.pathInfoService, config.capacity) }
    })
}

const SigningEntry = Schema.Struct({
  type: Schema.Literal("signing"),
  inner: Reference,
  keyFile: AbsolutePath,
  storeDir: Schema.optional(AbsolutePath)
})

const signingBackend: Backend = {
  type: "signing",
  schemes: [],
  build: (entry, context) =>
    Effect.gen(function*() {
      const config = yield* decodeEntry(SigningEntry, entry, context.label)
      const inner = yield* context.resolve(config.inner, "inner")
      const text = yield* Effect.try({
        try: () => fs.readFileSync(config.keyFile, "utf8"),
        catch: openError(context.label, `cannot read the key file ${config.keyFile}`)
      })
      const key = yield* Either.mapLeft(
        Keys.parseSecretKey(text),
        (e) => new StoreOpenError({ store: context.label, detail: `${config.keyFile}: ${e.message}` })
      )
      return {
        ...inner,
        pathInfoService: PathInfoCombinators.signing(inner.pathInfoService, key, { storeDir: config.storeDir })
      }
    })
}

/**
 * The built-in backends: `memory`, `sqlite`, `postgres`, `cache`, `lru`,
 * `signing`.
 *
 * @since 0.1.0
 * @category registry
 */
export const builtinBackends: ReadonlyArray<Backend> = [
  memoryBackend,
  sqliteBackend,
  postgresBackend,
  cacheBackend,
  lruBackend,
  signingBackend
]

/**
 * @since 0.1.0
 * @category registry
 */
export const defaultRegistry: Registry = makeRegistry(builtinBackends)

// ---------------------------------------------------------------------------
// parsing
// ---------------------------------------------------------------------------

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/

/**
 * The entry a store URL stands for.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseUrl = (raw: string, registry: Registry = defaultRegistry): Either.Either<Entry, StoreConfigError> => {
  const input = redactUrl(raw)
  const scheme = SCHEME.exec(raw)?.[1]?.toLowerCase()
  if (scheme === undefined) {
    return Either.left(new StoreConfigError({ input, part: "scheme", detail: `expected <scheme>://…, known schemes: ${knownSchemes(registry)}` }))
  }
  const backend = registry.byScheme.get(scheme)
  if (backend === undefined || backend.fromUrl === undefined) {
    return Either.left(
      new StoreConfigError({ input, part: "scheme", detail: `unknown scheme ${JSON.stringify(scheme)}; known: ${knownSchemes(registry)}` })
    )
  }
  let url: URL
  try {
    url = new URL(raw)
  } catch (e) {
    return Either.left(new StoreConfigError({ input, part: "url", detail: `not a URL: ${String(e)}` }))
  }
  if (url.hash !== "") {
    return Either.left(new StoreConfigError({ input, part: "url", detail: `store URLs take no #fragment, got ${url.hash}` }))
  }
  return backend.fromUrl(url, input)
}

const knownSchemes = (registry: Registry): string =>
  Array.from(registry.byScheme.entries()).filter(([, b]) => b.fromUrl !== undefined).map(([s]) => s + "://").sort().join(", ")

const isUrl = (s: string): boolean => SCHEME.test(s)

/**
 * Reads a store specification: a URL, or a composition document as JSON text
 * (starting with `{`) or as a value.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (spec: string | Document): Either.Either<Document, StoreConfigError> => {
  if (typeof spec !== "string") return checkDocument(spec, "document")
  const trimmed = spec.trim()
  if (!trimmed.startsWith("{")) return Either.right({ stores: { root: trimmed } })
  let json: unknown
  try {
    json = JSON.parse(trimmed)
  } catch (e) {
    return Either.left(new StoreConfigError({ input: "document", part: "document", detail: `not JSON: ${String(e)}` }))
  }
  return checkDocument(json, "document")
}

const checkDocument = (u: unknown, input: string): Either.Either<Document, StoreConfigError> => {
  const fail = (detail: string) => Either.left(new StoreConfigError({ input, part: "document", detail }))
  if (u === null || typeof u !== "object" || Array.isArray(u)) return fail("expected an object { \"stores\": { … } }")
  const keys = Object.keys(u)
  const extra = keys.find((k) => k !== "stores")
  if (extra !== undefined) return fail(`unknown top-level key ${JSON.stringify(extra)}; expected only "stores"`)
  const stores = (u as { stores?: unknown }).stores
  if (stores === null || typeof stores !== "object" || Array.isArray(stores)) {
    return fail("\"stores\" must be an object of named stores")
  }
  if (!Object.prototype.hasOwnProperty.call(stores, "root")) {
    return fail(`no store named "root" (the one that is built); names given: ${Object.keys(stores).join(", ") || "none"}`)
  }
  for (const [name, entry] of Object.entries(stores)) {
    if (name === "" || name.includes(":")) {
      return Either.left(
        new StoreConfigError({ input: `stores.${name}`, part: "document", detail: "a store name is non-empty and has no ':'" })
      )
    }
    if (typeof entry === "string") continue
    const e = checkEntry(entry, `stores.${name}`)
    if (Either.isLeft(e)) return Either.left(e.left)
  }
  return Either.right(u as Document)
}

const checkEntry = (u: unknown, label: string): Either.Either<Entry, StoreConfigError> => {
  if (u === null || typeof u !== "object" || Array.isArray(u)) {
    return Either.left(new StoreConfigError({ input: label, part: "entry", detail: "expected an object with a \"type\", or a URL string" }))
  }
  const type = (u as { type?: unknown }).type
  if (typeof type !== "string") {
    return Either.left(new StoreConfigError({ input: label, part: "entry", detail: "missing \"type\"" }))
  }
  return Either.right(u as Entry)
}

// ---------------------------------------------------------------------------
// building
// ---------------------------------------------------------------------------

/**
 * Builds the `root` store of a specification (URL, JSON text or document)
 * with `registry`. Resources close with the Scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const build = (
  spec: string | Document,
  registry: Registry = defaultRegistry
): Effect.Effect<Store, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const document = yield* parse(spec)
    const built = new Map<string, Store>()
    const building: Array<string> = []

    const buildEntry = (entry: Entry, label: string): Effect.Effect<Store, StoreError, Scope.Scope> => {
      const backend = registry.byType.get(entry.type)
      if (backend === undefined) {
        return Effect.fail(
          new StoreConfigError({
            input: label,
            part: "type",
            detail: `unknown type ${JSON.stringify(entry.type)}; known: ${Array.from(registry.byType.keys()).sort().join(", ")}`
          })
        )
      }
      return backend.build(entry, { label, resolve: (reference, field) => resolve(reference, `${label}.${field}`) })
    }

    const resolveName = (name: string, from: string): Effect.Effect<Store, StoreError, Scope.Scope> =>
      Effect.suspend(() => {
        const done = built.get(name)
        if (done !== undefined) return Effect.succeed(done)
        const at = building.indexOf(name)
        if (at >= 0) {
          return Effect.fail(
            new StoreConfigError({
              input: `stores.${name}`,
              part: "cycle",
              detail: [...building.slice(at), name].join(" → ")
            })
          )
        }
        if (!Object.prototype.hasOwnProperty.call(document.stores, name)) {
          return Effect.fail(
            new StoreConfigError({
              input: from,
              part: "reference",
              detail: `no store named ${JSON.stringify(name)}; names: ${Object.keys(document.stores).join(", ")}`
            })
          )
        }
        const value = document.stores[name]
        building.push(name)
        const store = typeof value === "string"
          ? Effect.flatMap(parseUrl(value, registry), (entry) => buildEntry(entry, redactUrl(value)))
          : buildEntry(value, `stores.${name}`)
        return store.pipe(
          Effect.tap((s) => Effect.sync(() => built.set(name, s))),
          Effect.ensuring(Effect.sync(() => building.splice(building.lastIndexOf(name), 1)))
        )
      })

    const resolve = (reference: unknown, from: string): Effect.Effect<Store, StoreError, Scope.Scope> => {
      if (typeof reference === "string") {
        if (!isUrl(reference)) return resolveName(reference, from)
        const key = "url:" + reference
        const done = built.get(key)
        if (done !== undefined) return Effect.succeed(done)
        return Effect.flatMap(parseUrl(reference, registry), (entry) =>
          Effect.tap(buildEntry(entry, redactUrl(reference)), (s) => Effect.sync(() => built.set(key, s))))
      }
      return Effect.flatMap(checkEntry(reference, from), (entry) => buildEntry(entry, from))
    }

    return yield* resolveName("root", "document")
  })

/**
 * The services of the store a specification describes, with the backends of
 * `CurrentRegistry` (the built-in ones unless provided otherwise).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  spec: string | Document
): Layer.Layer<PathInfoService.PathInfoService | BlobService.BlobService | DirectoryService.DirectoryService, StoreError> =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const registry = yield* CurrentRegistry
      const store = yield* build(spec, registry)
      return Context.make(PathInfoService.PathInfoService, store.pathInfoService).pipe(
        Context.add(BlobService.BlobService, store.blobService),
        Context.add(DirectoryService.DirectoryService, store.directoryService)
      )
    })
  )

/**
 * Only the PathInfoService of a specification's store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPathInfoService = (spec: string | Document): Layer.Layer<PathInfoService.PathInfoService, StoreError> =>
  Layer.scoped(
    PathInfoService.PathInfoService,
    Effect.map(Effect.flatMap(CurrentRegistry, (registry) => build(spec, registry)), (s) => s.pathInfoService)
  )
