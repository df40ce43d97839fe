/**
 * The `nixfx` command tree. Each command is a thin shell over the libraries.
 */
import { Command } from "@effect/cli"
import * as Copy from "./Copy.js"
import * as NarinfoVerify from "./NarinfoVerify.js"
import * as NarIngest from "./NarIngest.js"
import * as PathInfoCommand from "./PathInfoCommand.js"
import * as ServeGrpc from "./ServeGrpc.js"
import * as ServeHttp from "./ServeHttp.js"
import * as Verify from "./Verify.js"

const narinfo = Command.make("narinfo").pipe(
  Command.withDescription("Work with .narinfo files"),
  Command.withSubcommands([NarinfoVerify.command])
)

const nar = Command.make("nar").pipe(
  Command.withDescription("Work with NAR files"),
  Command.withSubcommands([NarIngest.command])
)

const serve = Command.make("serve").pipe(
  Command.withDescription("Serve a store to other programs"),
  Command.withSubcommands([ServeGrpc.command, ServeHttp.command])
)

export const root = Command.make("nixfx").pipe(
  Command.withDescription("Nix store metadata and content: castore, PathInfo, binary caches, gRPC"),
  Command.withSubcommands([Copy.command, nar, narinfo, PathInfoCommand.command, serve, Verify.command])
)

export const version = "0.1.0"

/** Runs the CLI on `process.argv`-style arguments. */
export const run = Command.run(root, { name: "nixfx", version })
