/** Types of scripts/generate-hostile-corpus.js, for the tests that import it. */
export interface GeneratedCase {
  readonly id: string
  readonly kind: "nar" | "narinfo" | "proto" | "compressed"
  readonly ext: string
  readonly bytes: Uint8Array
  readonly description: string
  readonly expect: Readonly<Record<string, unknown>>
  readonly atTestTime?: boolean
  readonly [extra: string]: unknown
}
export declare const buildCases: (options?: { readonly bombs?: boolean }) => Promise<Array<GeneratedCase>>
export declare const manifestEntry: (c: GeneratedCase) => Record<string, unknown>
export declare const trustedPublicKey: string
export declare const writeCorpus: (outDir: string) => Promise<Array<GeneratedCase>>
