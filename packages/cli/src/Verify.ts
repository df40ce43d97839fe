/**
 * `nixfx verify`: checks that every PathInfo in a store has its directories
 * and blobs, that they hash right, that the NAR they render to is the one
 * recorded, and that its references agree with the store.
 */
import { Command, Options } from "@effect/cli"
import { StoreComposition, StoreVerify } from "@nixfx/pathinfo"
import { Console, Effect, Schema, Stream } from "effect"
import { CommandFailed, ExitCode } from "./internal/failure.js"
import { printJson } from "./internal/output.js"
import { formatBytes } from "./internal/progress.js"
import { defaultStoreUrl, storeRegistry } from "./internal/store.js"

/** One finding in the JSON output: its fields, `type` (its tag) and `message` (the line printed without `--json`). */
export const FindingJson = Schema.Struct(
  { type: Schema.String, storePath: Schema.String, message: Schema.String },
  Schema.Record({ key: Schema.String, value: Schema.Union(Schema.String, Schema.Number) })
)

/** The JSON printed with `--json` (stable: fields are only ever added). */
export const Output = Schema.Struct({
  /** PathInfos checked. */
  paths: Schema.NonNegativeInt,
  /** Directories read. */
  directories: Schema.NonNegativeInt,
  /** Distinct blobs hashed, and their bytes. */
  blobs: Schema.NonNegativeInt,
  blobBytes: Schema.NonNegativeInt,
  findings: Schema.Array(FindingJson)
})
export type Output = typeof Output.Type

const toJson = (finding: StoreVerify.Finding): typeof FindingJson.Type => {
  const { _tag, ...fields } = finding
  return { ...fields, type: _tag, message: finding.message }
}

/** A progress line on stderr when it is a terminal. */
const progressLine = (counts: StoreVerify.Counts) => {
  if (!process.stderr.isTTY) return
  process.stderr.write(
    `\r\x1b[Kverify: ${counts.paths} paths, ${counts.blobs} blobs (${formatBytes(counts.blobBytes)}), ${counts.findings} findings`
  )
}

export const command = Command.make(
  "verify",
  {
    store: Options.text("store").pipe(
      Options.withDescription("Store to check (default: the embedded store under $XDG_DATA_HOME/nixfx)"),
      Options.withDefault(defaultStoreUrl())
    ),
    json: Options.boolean("json").pipe(
      Options.withDescription("Print one JSON document {paths, directories, blobs, blobBytes, findings: [...]}")
    ),
    concurrency: Options.integer("concurrency").pipe(
      Options.withDescription("Paths checked at once (and blobs hashed at once per path)"),
      Options.withDefault(4)
    )
  },
  ({ concurrency, json, store }) =>
    Effect.scoped(
      Effect.gen(function*() {
        if (concurrency < 1) {
          return yield* new CommandFailed({ message: "--concurrency must be at least 1", exitCode: ExitCode.Usage })
        }
        const services = yield* StoreComposition.build(store, yield* storeRegistry)
        let counts: StoreVerify.Counts = { paths: 0, directories: 0, blobs: 0, blobBytes: 0, findings: 0 }
        const findings: Array<StoreVerify.Finding> = []
        yield* StoreVerify.stream(services, {
          concurrency,
          onProgress: (c) => {
            counts = c
            progressLine(c)
          }
        }).pipe(
          Stream.runForEach((finding) =>
            json ? Effect.sync(() => findings.push(finding)) : Console.log(finding.message)
          ),
          Effect.ensuring(Effect.sync(() => process.stderr.isTTY && process.stderr.write("\n")))
        )
        if (json) {
          yield* printJson(Output, {
            paths: counts.paths,
            directories: counts.directories,
            blobs: counts.blobs,
            blobBytes: counts.blobBytes,
            findings: findings.map(toJson)
          })
        } else {
          yield* Console.error(
            `checked ${counts.paths} paths, ${counts.directories} directories, ${counts.blobs} blobs (${
              formatBytes(counts.blobBytes)
            }): ${counts.findings} findings`
          )
        }
        if (counts.findings > 0) {
          return yield* new CommandFailed({
            message: `${counts.findings} findings in ${counts.paths} paths`,
            exitCode: ExitCode.Failure
          })
        }
      })
    )
).pipe(
  Command.withDescription(
    "Check every PathInfo in a store: directories and blobs present and hashing right, NAR hash and size, references by content"
  )
)
