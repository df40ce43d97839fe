/**
 * `nixfx nar ingest`: a NAR into castore, printing its root node, size and hash.
 */
import { Args, Command } from "@effect/cli"
import { NarImport } from "@nixfx/castore"
import { Node } from "@nixfx/castore-nodes"
import { NixHash } from "@nixfx/nix-compat"
import { Console, Effect } from "effect"
import { inputBytes } from "./internal/input.js"
import { storeLayer, storeOption } from "./internal/store.js"

/** The JSON printed on stdout. */
export interface Output {
  readonly narSize: number
  /** SRI form, `sha256-…`. */
  readonly narHash: string
  readonly root: Node.NodeJson
}

export const toOutput = (result: NarImport.Result): Output => ({
  narSize: result.narSize,
  narHash: NixHash.toSri(NixHash.unsafeMake("sha256", result.narSha256)),
  root: Node.toJson(result.root)
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
      Effect.flatMap((output) => Console.log(JSON.stringify(output))),
      Effect.provide(storeLayer(store))
    )
).pipe(Command.withDescription("Import a NAR (FILE or stdin) into a store's castore; prints {narSize, narHash, root} as JSON"))
