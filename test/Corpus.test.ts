/**
 * The committed corpus is what scripts/generate-hostile-corpus.js writes: the
 * manifest lists every file with its size and SHA-256, and the generator,
 * run again (without the slow compression bombs), builds the same cases with
 * the same bytes and expectations.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { buildCases, manifestEntry } from "../scripts/generate-hostile-corpus.js"
import { corpusDir, manifest, sha256Hex } from "./support/corpus.js"

const filesUnder = (dir: string): Array<string> =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(Path.join(dir, e.name)).map((f) => `${e.name}/${f}`) : [e.name]
  )

describe("the hostile corpus", () => {
  it("every manifest entry's file is there with its size and SHA-256, and nothing else is", () => {
    const listed = new Set<string>(["manifest.json"])
    for (const c of manifest.cases) {
      if (c.file === null) {
        assert.isTrue(c.atTestTime, c.id)
        continue
      }
      listed.add(c.file)
      const bytes = Fs.readFileSync(Path.join(corpusDir, c.file))
      assert.strictEqual(bytes.length, c.size, c.id)
      assert.strictEqual(sha256Hex(bytes), c.sha256, c.id)
    }
    assert.deepStrictEqual(filesUnder(corpusDir).sort(), [...listed].sort())
    assert.strictEqual(new Set(manifest.cases.map((c) => c.id)).size, manifest.cases.length, "ids are unique")
  })

  it("stays small: the committed files add up to less than 1 MB", () => {
    const total = manifest.cases.reduce((n, c) => n + (c.file === null ? 0 : c.size), 0)
    assert.isBelow(total, 1_000_000)
  })

  it("the generator builds the same cases, bytes and expectations again (bombs aside)", async () => {
    const built = (await buildCases({ bombs: false })).map(manifestEntry)
    const committed = manifest.cases.filter((c) => !c.id.startsWith("compressed/bomb-"))
    assert.deepStrictEqual(built, JSON.parse(JSON.stringify(committed)))
    assert.strictEqual(manifest.cases.length - committed.length, 4, "four bombs")
  })
})
