/**
 * `nixfx nar ingest`: a NAR into castore, printing its root node, size and hash.
 */
import { Args, Command } from "@effect/cli"
import { NarImport } from "@nixfx/castore"
import { Node } from "@nixfx/castore-nodes"
import { NixHash } from "@nixfx/nix-compat"
import { Effect, Schema } from "effect"
import { inputBytes } from "./internal/input.js"
import { printJson } from "./internal/output.js"
import { describeStore, storeLayer, storeOption } from "./internal/store.js"

/** The JSON printed on stdout (stable: fields are only ever added). */
export const Output = Schema.Struct({
  narSize: Schema.NonNegativeInt,
  /** SRI form, `sha256-…`. */
  narHash: Schema.String,
  /** The castore root node: `{type: "directory", digest, size}`, `{type: "file", digest, size, executable}` or `{type: "symlink", target}`. */
  root: Node.NodeFromJson
})
export type Output = typeof Output.Type

export const toOutput = (result: NarImport.Result): Output => ({
  narSize: result.narSize,
  narHash: NixHash.toSri(NixHash.unsafeMake("sha256", result.narSha256)),
  root: result.root
})

export const command = Command.make(
  "ingest",
  {
    store: storeOption("memory://", "Store to put blobs and directories into (default: a temporary memory store)"),
    file: Args.file({ name: "FILE", exists: "yes" }).pipe(
      Args.withDescription("The NAR; standard input when omitted"),
      Args.optional
    )
  },
  ({ file, store }) =>
    NarImport.ingest(inputBytes(file)).pipe(
      Effect.map(toOutput),
      Effect.flatMap((output) => printJson(Output, output)),
      Effect.provide(storeLayer(store)),
      Effect.withSpan("nixfx nar ingest", { attributes: { "nixfx.store": describeStore(store) } })
    )
).pipe(Command.withDescription("Import a NAR (FILE or stdin) into a store's castore; prints {narSize, narHash, root} as JSON"))
