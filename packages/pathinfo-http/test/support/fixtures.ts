/**
 * The repository's binary cache fixtures (`fixtures/`) and their manifest.
 */
import type * as Node from "@nixfx/castore-nodes/Node"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as Nixbase32 from "@nixfx/nix-compat/Nixbase32"
import { nodeFromManifest } from "@nixfx/pathinfo/testing"
import * as Either from "effect/Either"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export const fixturesDir = fileURLToPath(new URL("../../../../fixtures/", import.meta.url))

export interface ManifestPath {
  readonly storePath: string
  readonly hashPart: string
  readonly name: string
  readonly narinfo: string
  readonly url: string
  readonly compression: string
  readonly fileSize: number
  readonly narHash: string
  readonly narHashSRI: string
  readonly narSize: number
  readonly references: ReadonlyArray<string>
  readonly selfReference: boolean
  readonly deriver: string | null
  readonly ca: string | null
  readonly signatures: ReadonlyArray<string>
  readonly castore: Parameters<typeof nodeFromManifest>[0]
}

export interface ManifestCache {
  readonly dir: string
  readonly compression: string
  readonly signedBy: ReadonlyArray<string>
  readonly paths: ReadonlyArray<ManifestPath>
}

export interface Manifest {
  readonly keys: Record<string, { readonly public: string }>
  readonly franken: {
    readonly depStorePath: string
    readonly appStorePath: string
    readonly narHashA: string
    readonly narHashB: string
  }
  readonly caches: Record<string, ManifestCache>
}

export const manifest: Manifest = JSON.parse(fs.readFileSync(path.join(fixturesDir, "manifest.json"), "utf8"))

export const cacheDir = (name: string): string => path.join(fixturesDir, manifest.caches[name].dir)

export const publicKey = (name: "test-cache-1" | "test-cache-2"): Keys.PublicKey =>
  Either.getOrThrow(Keys.parsePublicKey(manifest.keys[name].public))

export const basename = (storePath: string): string => path.basename(storePath)

/** The root node of every fixture path by basename (the same in every cache). */
export const nodes: ReadonlyMap<string, Node.Node> = (() => {
  const out = new Map<string, Node.Node>()
  for (const cache of Object.values(manifest.caches)) {
    for (const p of cache.paths) {
      // franken-a and franken-b hold different content under one path: keep franken-a's
      if (cache.dir.endsWith("franken-b")) continue
      out.set(basename(p.storePath), nodeFromManifest(p.castore))
    }
  }
  return out
})()

export const pathByName = (cache: string, name: string): ManifestPath => {
  const p = manifest.caches[cache].paths.find((q) => q.name === name)
  if (p === undefined) throw new Error(`no ${name} in cache ${cache}`)
  return p
}

/** The 20-byte digest of a fixture path. */
export const digestOf = (p: ManifestPath): Uint8Array => Either.getOrThrow(Nixbase32.decode(p.hashPart, 20))

export const readFixture = (relative: string): Buffer => fs.readFileSync(path.join(fixturesDir, relative))
