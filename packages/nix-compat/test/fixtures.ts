/**
 * Reads the committed Nix 2.8 binary cache fixtures (`/fixtures` at the repo root).
 */
import * as fs from "node:fs"

export const fixturesDir = new URL("../../../fixtures/", import.meta.url)

export const readFixture = (path: string): string => fs.readFileSync(new URL(path, fixturesDir), "utf8")

export interface ManifestPath {
  readonly storePath: string
  readonly hashPart: string
  readonly name: string
  readonly narinfo: string
  readonly url: string
  readonly compression: string
  readonly fileHash: string
  readonly fileSize: number
  readonly narHash: string
  readonly narHashSRI: string
  readonly narSize: number
  readonly references: ReadonlyArray<string>
  readonly deriver: string | null
  readonly ca: string | null
  readonly fingerprint: string
  readonly signatures: ReadonlyArray<string>
  readonly signedBy: ReadonlyArray<string>
}

export interface ManifestCache {
  readonly dir: string
  readonly compression: string
  readonly signedBy: ReadonlyArray<string>
  readonly paths: ReadonlyArray<ManifestPath>
}

export interface Manifest {
  readonly storeDir: string
  readonly keys: Record<string, { readonly public: string; readonly publicFile: string; readonly secretFile: string }>
  readonly caches: Record<string, ManifestCache>
}

export const manifest: Manifest = JSON.parse(readFixture("manifest.json"))

/** Every narinfo file under fixtures/caches/<cache>/, as [cache, file name, text]. */
export const allNarinfoFiles = (): Array<readonly [string, string, string]> => {
  const out: Array<readonly [string, string, string]> = []
  const caches = new URL("caches/", fixturesDir)
  for (const cache of fs.readdirSync(caches).sort()) {
    const dir = new URL(`${cache}/`, caches)
    for (const f of fs.readdirSync(dir).sort()) {
      if (f.endsWith(".narinfo")) out.push([cache, f, fs.readFileSync(new URL(f, dir), "utf8")] as const)
    }
  }
  return out
}
