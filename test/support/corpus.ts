/**
 * The hostile-input corpus (test/hostile/, written by
 * scripts/generate-hostile-corpus.js): its manifest and each case's bytes.
 */
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { buildCases } from "../../scripts/generate-hostile-corpus.js"

export const corpusDir = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "../hostile")

interface BaseCase {
  readonly id: string
  readonly description: string
  /** Relative to test/hostile; null for cases built at test time (too large to commit). */
  readonly file: string | null
  readonly size: number
  readonly sha256: string
  readonly atTestTime?: boolean
}
/** A reader error reason or `valid` (`import`: the castore import's reason for a valid NAR it cannot hold). */
export interface NarCase extends BaseCase {
  readonly kind: "nar"
  readonly expect:
    | { readonly tag: "NarError"; readonly reason: string }
    | { readonly valid: true; readonly import?: "UnsupportedName" | "UnsupportedTarget" }
  readonly truncatedAt?: number
}
/** A parse error, `Untrusted` (parses, no signature by the trusted key verifies), or `valid`. */
export interface NarInfoCase extends BaseCase {
  readonly kind: "narinfo"
  readonly expect:
    | { readonly tag: "NarInfoParseError"; readonly reason: string; readonly field: string }
    | { readonly tag: "Untrusted" }
    | { readonly valid: true }
}
export interface ProtoCase extends BaseCase {
  readonly kind: "proto"
  readonly expect: { readonly tag: "ProtoDecodeError"; readonly field: string } | { readonly valid: true }
}
export interface CompressedCase extends BaseCase {
  readonly kind: "compressed"
  readonly compression: "xz" | "zstd" | "gzip" | "br"
  /** What the narinfo serving it claims. */
  readonly narSize: number
  /** For bombs: how many bytes the file expands to. */
  readonly expandsTo?: number
  readonly expect: { readonly tag: "NarDecompressionError" } | { readonly tag: "NarSizeMismatch"; readonly atLeast: true }
}
export type Case = NarCase | NarInfoCase | ProtoCase | CompressedCase

export interface Manifest {
  readonly trustedPublicKey: string
  readonly storeDir: string
  readonly cases: ReadonlyArray<Case>
}

export const manifest: Manifest = JSON.parse(Fs.readFileSync(Path.join(corpusDir, "manifest.json"), "utf8"))

export const casesOf = <K extends Case["kind"]>(kind: K): Array<Extract<Case, { kind: K }>> =>
  manifest.cases.filter((c): c is Extract<Case, { kind: K }> => c.kind === kind)

let built: Promise<Map<string, Uint8Array>> | undefined
/** The cases the generator builds without the bombs (the ones too large to commit among them). */
export const generated = (): Promise<Map<string, Uint8Array>> =>
  (built ??= buildCases({ bombs: false }).then((cs) => new Map(cs.map((c) => [c.id, c.bytes]))))

/** A case's bytes: its committed file, or built by the generator. */
export const bytesOf = async (c: Case): Promise<Uint8Array> => {
  if (c.file === null) {
    const bytes = (await generated()).get(c.id)
    if (bytes === undefined) throw new Error(`the generator does not build ${c.id}`)
    return bytes
  }
  return new Uint8Array(Fs.readFileSync(Path.join(corpusDir, c.file)))
}

export const sha256Hex = (bytes: Uint8Array): string => Crypto.createHash("sha256").update(bytes).digest("hex")
