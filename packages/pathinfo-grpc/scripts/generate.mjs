#!/usr/bin/env node
// Regenerates what is derived from proto/tvix (the one hand-written source):
//
// 1. proto/snix: the same files with snix's package names and message names
//    (snix renamed the castore Node messages to Entry, and PathInfo.node to
//    entry). Only names change: field numbers and types, and so the wire
//    format, are identical.
// 2. src/gen: TypeScript messages for both variants, by `buf generate` with
//    the protoc-gen-es in node_modules (buf.gen.yaml).
//
// Run with `npm run generate -w @nixfx/pathinfo-grpc`; commit the output.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const tvixDir = path.join(root, "proto", "tvix")
const snixDir = path.join(root, "proto", "snix")

const listProtos = (dir) =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listProtos(path.join(dir, e.name)) : e.name.endsWith(".proto") ? [path.join(dir, e.name)] : []
  )

/** tvix naming → snix naming; each rule must apply where expected (checked below). */
const toSnix = (text, file) => {
  const rules = [
    [/\bpackage tvix\.(castore|store)\.v1;/g, "package snix.$1.v1;"],
    [/import "tvix\//g, "import \"snix/"],
    [/\btvix\.castore\.v1\.Node node = 1;/g, "snix.castore.v1.Entry entry = 1;"],
    [/\btvix\.castore\.v1\.Node\b/g, "snix.castore.v1.Entry"],
    [/\boneof node \{/g, "oneof entry {"],
    [/\bDirectoryNode\b/g, "DirectoryEntry"],
    [/\bFileNode\b/g, "FileEntry"],
    [/\bSymlinkNode\b/g, "SymlinkEntry"],
    [/\bmessage Node\b/g, "message Entry"]
  ]
  let out = text
  for (const [pattern, replacement] of rules) out = out.replace(pattern, replacement)
  if (/\btvix\.(castore|store)\.v1\b/.test(out.replace(/^\/\/.*$/gm, ""))) {
    throw new Error(`${file}: a tvix package name survived the renaming`)
  }
  const header = `// GENERATED from proto/tvix/${path.relative(tvixDir, file)} by scripts/generate.mjs: edit that file, not this one.\n`
  return header + out
}

fs.rmSync(snixDir, { recursive: true, force: true })
for (const file of listProtos(tvixDir)) {
  const target = path.join(snixDir, path.relative(tvixDir, file))
  fs.mkdirSync(path.dirname(target), { recursive: true })
  fs.writeFileSync(target, toSnix(fs.readFileSync(file, "utf8"), file))
}

execFileSync("buf", ["generate"], { cwd: root, stdio: "inherit" })
console.log("generated proto/snix and src/gen")
