export * as Cli from "./Cli.js"
export * as NarinfoVerify from "./NarinfoVerify.js"
export * as NarIngest from "./NarIngest.js"
export * as PathInfoCommand from "./PathInfoCommand.js"
