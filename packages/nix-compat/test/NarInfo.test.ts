import { assert, describe, it } from "@effect/vitest"
import { Either, Equal, FastCheck, Option, Schema } from "effect"
import { CAHash, NarInfo, NixHash, Signature, StorePath } from "@nixfx/nix-compat"
import { allNarinfoFiles, manifest, readFixture } from "./fixtures.js"

const keys = {
  "test-cache-1": Either.getOrThrow(Signature.parsePublicKey(readFixture("keys/test-cache-1.public"))),
  "test-cache-2": Either.getOrThrow(Signature.parsePublicKey(readFixture("keys/test-cache-2.public")))
} as const
type KeyName = keyof typeof keys

const parseOk = (text: string): NarInfo.NarInfo => {
  const r = NarInfo.parse(text)
  if (Either.isLeft(r)) assert.fail(r.left.message)
  return r.right
}

const parseError = (text: string): NarInfo.NarInfoParseError => {
  const r = NarInfo.parse(text)
  if (Either.isRight(r)) assert.fail(`expected to be rejected:\n${text}`)
  assert.strictEqual(r.left._tag, "NarInfoParseError")
  return r.left
}

/** fx-app-1.0 from the `none` cache: references itself and fx-lib-1.0, has a Deriver. */
const app = manifest.caches.none.paths.find((p) => p.name === "fx-app-1.0")!
const appText = readFixture(app.narinfo)
const lines = (text: string) => text.slice(0, -1).split("\n")
const unlines = (ls: ReadonlyArray<string>) => ls.join("\n") + "\n"
const withLine = (text: string, key: string, value: string | undefined) =>
  unlines(lines(text).flatMap((l) => l.startsWith(key + ": ") ? value === undefined ? [] : [`${key}: ${value}`] : [l]))

describe("NarInfo", () => {
  describe("fixtures", () => {
    it("the manifest lists every fixture narinfo", () => {
      const listed = new Set(Object.values(manifest.caches).flatMap((c) => c.paths.map((p) => p.narinfo)))
      const files = allNarinfoFiles()
      assert.isAbove(files.length, 200)
      for (const [cache, file] of files) assert.isTrue(listed.has(`caches/${cache}/${file}`), `${cache}/${file}`)
      assert.strictEqual(listed.size, files.length)
    })

    for (const [cacheName, cache] of Object.entries(manifest.caches)) {
      it(`${cacheName}: every narinfo parses to the manifest's values, verifies as listed and renders back`, () => {
        assert.isAbove(cache.paths.length, 0)
        for (const p of cache.paths) {
          const text = readFixture(p.narinfo)
          const ni = parseOk(text)
          assert.strictEqual(StorePath.toAbsolutePath(ni.storePath), p.storePath)
          assert.strictEqual(ni.storePath.name, p.name)
          assert.strictEqual(ni.url, p.url)
          assert.strictEqual(ni.compression, p.compression)
          assert.strictEqual(ni.compression, cache.compression)
          assert.deepStrictEqual(Option.map(ni.fileHash, NixHash.toNixbase32String), Option.some(p.fileHash))
          assert.deepStrictEqual(ni.fileSize, Option.some(p.fileSize))
          assert.strictEqual(NixHash.toNixbase32String(ni.narHash), p.narHash)
          assert.strictEqual(NixHash.toSri(ni.narHash), p.narHashSRI)
          assert.strictEqual(ni.narSize, p.narSize)
          assert.deepStrictEqual(ni.references.map(StorePath.toBasename), p.references)
          assert.deepStrictEqual(Option.getOrNull(Option.map(ni.deriver, StorePath.toBasename)), p.deriver)
          if (Option.isSome(ni.deriver)) assert.isTrue(StorePath.isDerivation(ni.deriver.value))
          assert.deepStrictEqual(Option.getOrNull(Option.map(ni.ca, (ca) => CAHash.render(ca))), p.ca)
          assert.deepStrictEqual(ni.signatures.map(Signature.formatSignature), p.signatures)
          assert.isTrue(Option.isNone(ni.system))
          // what the fast parser builds satisfies the strict class schema
          assert.isTrue(Schema.is(NarInfo.NarInfo)(ni))
          Schema.validateSync(NarInfo.NarInfo)(ni)
          // Nix wrote these: nothing unusual to record
          assert.strictEqual(ni.quirks, NarInfo.noQuirks)

          assert.strictEqual(NarInfo.fingerprint(ni), p.fingerprint)
          assert.strictEqual(NarInfo.render(ni), text)
          assert.strictEqual(String(ni), text)

          for (const keyName of Object.keys(keys) as Array<KeyName>) {
            const v = Signature.verify(ni, [keys[keyName]])
            assert.strictEqual(Option.isSome(v), p.signedBy.includes(keyName), `${p.narinfo} with ${keyName}`)
            if (Option.isSome(v)) assert.strictEqual(v.value.key.name, keyName)
          }
          assert.deepStrictEqual(p.signedBy, cache.signedBy)
          if (cacheName === "unsigned") assert.strictEqual(ni.signatures.length, 0)
        }
      })
    }

    it("parse ∘ render is the identity on parsed fixtures, via the Schema too", () => {
      for (const [, , text] of allNarinfoFiles()) {
        const ni = Schema.decodeSync(NarInfo.FromString)(text)
        assert.strictEqual(Schema.encodeSync(NarInfo.FromString)(ni), text)
        assert.isTrue(Equal.equals(parseOk(NarInfo.render(ni)), ni))
      }
    })
  })

  describe("quirks real caches have", () => {
    it("unknown keys are ignored but kept, and rendered back", () => {
      const text = appText + "X-Custom: hello world\nWantMassQuery: 1\n"
      const ni = parseOk(text)
      assert.deepStrictEqual(ni.quirks.unknownFields, [
        { key: "X-Custom", value: "hello world" },
        { key: "WantMassQuery", value: "1" }
      ])
      assert.isTrue(Option.isNone(ni.quirks.fieldOrder))
      assert.strictEqual(NarInfo.render(ni), text)
      assert.strictEqual(NarInfo.fingerprint(ni), app.fingerprint)
    })

    it("a missing Compression means bzip2", () => {
      const text = withLine(appText, "Compression", undefined)
      const ni = parseOk(text)
      assert.strictEqual(ni.compression, "bzip2")
      assert.isTrue(ni.quirks.compressionDefault)
      assert.strictEqual(NarInfo.render(ni), text)
      // stated explicitly, it is kept
      const explicit = parseOk(withLine(appText, "Compression", "bzip2"))
      assert.isFalse(explicit.quirks.compressionDefault)
      assert.include(NarInfo.render(explicit), "Compression: bzip2\n")
    })

    it("FileHash and FileSize may be missing", () => {
      const text = withLine(withLine(appText, "FileHash", undefined), "FileSize", undefined)
      const ni = parseOk(text)
      assert.isTrue(Option.isNone(ni.fileHash))
      assert.isTrue(Option.isNone(ni.fileSize))
      assert.strictEqual(ni.quirks, NarInfo.noQuirks)
      assert.strictEqual(NarInfo.render(ni), text)
    })

    it("a missing References means none (harmonia)", () => {
      const noRefs = manifest.caches.none.paths.find((p) => p.references.length === 0)!
      const text = withLine(readFixture(noRefs.narinfo), "References", undefined)
      const ni = parseOk(text)
      assert.deepStrictEqual(ni.references, [])
      assert.isTrue(ni.quirks.referencesMissing)
      assert.strictEqual(NarInfo.render(ni), text)
      assert.strictEqual(NarInfo.fingerprint(ni), noRefs.fingerprint)
    })

    it("Deriver: unknown-deriver means no deriver", () => {
      const text = withLine(appText, "Deriver", "unknown-deriver")
      const ni = parseOk(text)
      assert.isTrue(Option.isNone(ni.deriver))
      assert.isTrue(ni.quirks.explicitUnknownDeriver)
      assert.strictEqual(NarInfo.render(ni), text)
    })

    it("a NarHash in hex, base64 or SRI form", () => {
      const h = Either.getOrThrow(NixHash.parse(app.narHash))
      for (const format of ["hex", "base64", "sri"] as const) {
        const text = withLine(appText, "NarHash", NixHash.format(h, format))
        const ni = parseOk(text)
        assert.isTrue(NixHash.equals(ni.narHash, h))
        assert.strictEqual(ni.quirks.narHashFormat, format)
        assert.strictEqual(NarInfo.render(ni), text)
        assert.strictEqual(NarInfo.fingerprint(ni), app.fingerprint)
        assert.isTrue(Option.isSome(Signature.verify(ni, [keys["test-cache-1"]])))
      }
    })

    it("a FileHash and a CA digest in other encodings", () => {
      const fh = Either.getOrThrow(NixHash.parse(app.fileHash))
      const text = withLine(appText, "FileHash", NixHash.toHexString(fh))
      const ni = parseOk(text)
      assert.strictEqual(ni.quirks.fileHashFormat, "hex")
      assert.strictEqual(NarInfo.render(ni), text)

      const caPath = manifest.caches.none.paths.find((p) => p.ca?.startsWith("fixed:sha1:"))!
      const ca = Either.getOrThrow(CAHash.parse(caPath.ca!))
      const caText = withLine(readFixture(caPath.narinfo), "CA", CAHash.render(ca, "hex"))
      const caNi = parseOk(caText)
      assert.strictEqual(caNi.quirks.caEncoding, "hex")
      assert.strictEqual(NarInfo.render(caNi), caText)
    })

    it("references out of order: kept as written, fingerprint sorted as Nix signs it", () => {
      const refs = [...app.references].reverse()
      assert.isAbove(refs.length, 1)
      const text = withLine(appText, "References", refs.join(" "))
      const ni = parseOk(text)
      assert.deepStrictEqual(ni.references.map(StorePath.toBasename), refs)
      assert.isTrue(ni.quirks.referencesOutOfOrder)
      assert.strictEqual(NarInfo.render(ni), text)
      assert.strictEqual(NarInfo.fingerprint(ni), app.fingerprint)
      assert.isTrue(Option.isSome(Signature.verify(ni, [keys["test-cache-1"]])))
      // duplicates count as out of order and collapse in the fingerprint, as in Nix's reference set
      const dup = parseOk(withLine(appText, "References", [...app.references, app.references[0]].join(" ")))
      assert.isTrue(dup.quirks.referencesOutOfOrder)
      assert.strictEqual(NarInfo.fingerprint(dup), app.fingerprint)
    })

    it("fields in another order, and no final newline", () => {
      const ls = lines(appText)
      const reordered = unlines([ls[0], ls[5], ls[1], "Extra: x", ...ls.slice(2, 5), ...ls.slice(6)])
      const ni = parseOk(reordered)
      assert.isTrue(Option.isSome(ni.quirks.fieldOrder))
      assert.strictEqual(NarInfo.render(ni), reordered)
      assert.strictEqual(NarInfo.fingerprint(ni), app.fingerprint)

      const noNewline = appText.slice(0, -1)
      const n2 = parseOk(noNewline)
      assert.isTrue(n2.quirks.missingFinalNewline)
      assert.strictEqual(NarInfo.render(n2), noNewline)
    })

    it("a value changed after parsing still renders every field", () => {
      const ls = lines(appText)
      // Sig first, then the rest
      const text = unlines([ls[ls.length - 1], ...ls.slice(0, -1), "Odd: 1"])
      const ni = parseOk(text)
      const extra = Either.getOrThrow(Signature.parseSignature(`other:${Buffer.alloc(64, 9).toString("base64")}`))
      const changed = new NarInfo.NarInfo({
        ...ni,
        signatures: [...ni.signatures, extra],
        system: Option.some("x86_64-linux"),
        quirks: { ...ni.quirks, unknownFields: [...ni.quirks.unknownFields, { key: "Odd2", value: "2" }] }
      })
      const out = NarInfo.render(changed)
      assert.strictEqual(
        out,
        // new signatures join the last Sig line, new unknown fields the last unknown one,
        // known fields the recorded order did not have go at the end
        unlines([
          ls[ls.length - 1],
          `Sig: ${Signature.formatSignature(extra)}`,
          ...ls.slice(0, -1),
          "Odd: 1",
          "Odd2: 2",
          "System: x86_64-linux"
        ])
      )
      const back = parseOk(out)
      assert.strictEqual(back.signatures.length, 2)
      assert.deepStrictEqual(back.system, Option.some("x86_64-linux"))
    })

    it("System is kept", () => {
      const text = withLine(appText, "Deriver", app.deriver!).replace(
        `Deriver: ${app.deriver}\n`,
        `Deriver: ${app.deriver}\nSystem: x86_64-linux\n`
      )
      const ni = parseOk(text)
      assert.deepStrictEqual(ni.system, Option.some("x86_64-linux"))
      assert.strictEqual(ni.quirks, NarInfo.noQuirks)
      assert.strictEqual(NarInfo.render(ni), text)
    })
  })

  describe("rejects what Nix rejects, saying the line and the field", () => {
    const cases: Array<[string, string, NarInfo.NarInfoErrorReason, string]> = [
      ["duplicate NarSize", appText + "NarSize: 5\n", "DuplicateField", "line 11: NarSize: duplicate field (first given on line 7)"],
      ["duplicate StorePath", appText.replace("URL:", `StorePath: ${app.storePath}\nURL:`), "DuplicateField", "line 2: StorePath: duplicate field (first given on line 1)"],
      ["missing StorePath", withLine(appText, "StorePath", undefined), "MissingField", "line 1: StorePath: missing required field"],
      ["missing URL", withLine(appText, "URL", undefined), "MissingField", "URL: missing required field"],
      ["missing NarHash", withLine(appText, "NarHash", undefined), "MissingField", "NarHash: missing required field"],
      ["missing NarSize", withLine(appText, "NarSize", undefined), "MissingField", "NarSize: missing required field"],
      ["NarSize 0", withLine(appText, "NarSize", "0"), "InvalidSize", "line 7: NarSize: must not be 0"],
      ["NarSize not a number", withLine(appText, "NarSize", "12a"), "InvalidSize", `line 7: NarSize: invalid size "12a"`],
      ["NarSize negative", withLine(appText, "NarSize", "-1"), "InvalidSize", "expected a non-negative decimal integer"],
      ["NarSize leading zero", withLine(appText, "NarSize", "0123"), "InvalidSize", "leading zeros"],
      ["FileSize too large", withLine(appText, "FileSize", "99999999999999999"), "InvalidSize", "line 5: FileSize: invalid size"],
      ["Deriver without .drv", withLine(appText, "Deriver", app.deriver!.slice(0, -4)), "InvalidDeriver", "line 9: Deriver: " + JSON.stringify(app.deriver!.slice(0, -4)) + " does not end in .drv"],
      ["Deriver bad store path", withLine(appText, "Deriver", "not-a-path.drv"), "InvalidDeriver", "line 9: Deriver: expected a 32-character nixbase32 digest"],
      ["NarHash bad character", withLine(appText, "NarHash", app.narHash.slice(0, -1) + "e"), "InvalidHash", "line 6: NarHash: invalid nixbase32 character 'e' at position 51"],
      ["NarHash non-canonical", withLine(appText, "NarHash", "sha256:z" + app.narHash.slice(8)), "InvalidHash", "line 6: NarHash: non-canonical nixbase32"],
      ["NarHash too short", withLine(appText, "NarHash", app.narHash.slice(0, -1)), "InvalidHash", "line 6: NarHash: a sha256 digest is 52 (nixbase32)"],
      ["NarHash sha1", withLine(appText, "NarHash", "sha1:" + "0".repeat(32)), "InvalidHash", "line 6: NarHash: must be a sha256 hash, got sha1"],
      ["NarHash without algorithm", withLine(appText, "NarHash", app.narHash.slice(7)), "InvalidHash", "line 6: NarHash: no algorithm prefix"],
      ["FileHash unknown algorithm", withLine(appText, "FileHash", "blake3:abc"), "InvalidHash", `line 4: FileHash: unknown hash algorithm "blake3"`],
      ["bad reference", withLine(appText, "References", `${app.references[0]} ${app.references[1].slice(1)}`), "InvalidReference", "line 8: References: reference #1"],
      ["empty reference (double space)", withLine(appText, "References", `${app.references[0]}  ${app.references[1]}`), "InvalidReference", "line 8: References: reference #1 \"\""],
      ["StorePath outside the store", withLine(appText, "StorePath", "/gnu/store/" + app.storePath.slice(11)), "InvalidStorePath", "line 1: StorePath: \"/gnu/store/"],
      ["StorePath bad name", withLine(appText, "StorePath", app.storePath + "/x"), "InvalidStorePath", "line 1: StorePath: name contains invalid character \"/\""],
      ["empty URL", withLine(appText, "URL", ""), "EmptyField", "line 2: URL: must not be empty"],
      ["empty System", appText + "System: \n", "EmptyField", "line 11: System: must not be empty"],
      ["bad signature", withLine(appText, "Sig", "test-cache-1:AAAA"), "InvalidSignature", "line 10: Sig: signature #0: invalid signature \"test-cache-1\": expected 88 base64 characters"],
      ["bad CA", appText + "CA: fixed:sha256:nope\n", "InvalidCA", "line 11: CA: invalid content address"],
      ["line without colon", appText.replace("NarSize", "NarSize 1\nNarSize"), "InvalidLine", "line 7: line: expected \"<Key>: <value>\""],
      ["key without space", appText.replace("URL: ", "URL:"), "InvalidLine", "line 2: URL: expected \": \" after the key"],
      ["blank line inside", appText.replace("\nNarHash", "\n\nNarHash"), "InvalidLine", "line 6: line: empty line"]
    ]
    for (const [name, text, reason, message] of cases) {
      it(name, () => {
        const e = parseError(text)
        assert.strictEqual(e.reason, reason)
        assert.include(e.message, message)
        assert.strictEqual(e.message, `line ${e.line}: ${e.field}: ${e.detail}`)
      })
    }

    it("the Schema fails with the same message", () => {
      const r = Schema.decodeUnknownEither(NarInfo.FromString)(withLine(appText, "NarSize", "0"))
      assert.isTrue(Either.isLeft(r))
      if (Either.isLeft(r)) assert.include(r.left.message, "line 7: NarSize: must not be 0")
      assert.isTrue(Either.isLeft(Schema.decodeUnknownEither(NarInfo.FromString)(42)))
    })

    it("parseOrThrow throws the typed error", () => {
      try {
        NarInfo.parseOrThrow(withLine(appText, "URL", undefined))
        assert.fail("should throw")
      } catch (e) {
        assert.instanceOf(e, NarInfo.NarInfoParseError)
        assert.strictEqual((e as NarInfo.NarInfoParseError).field, "URL")
      }
    })
  })

  describe("a custom store dir", () => {
    it("parses, renders and fingerprints under it", () => {
      const text = appText.replaceAll("/nix/store/", "/gnu/store/")
      const ni = Either.getOrThrow(NarInfo.parse(text, { storeDir: "/gnu/store" }))
      assert.strictEqual(NarInfo.render(ni, { storeDir: "/gnu/store" }), text)
      assert.strictEqual(NarInfo.fingerprint(ni, { storeDir: "/gnu/store" }), app.fingerprint.replaceAll("/nix/store/", "/gnu/store/"))
      assert.strictEqual(Schema.encodeSync(NarInfo.fromString("/gnu/store"))(ni), text)
      assert.strictEqual(parseError(text).reason, "InvalidStorePath")
    })
  })

  describe("parseMany", () => {
    it("splits on blank lines and reports per entry, with line numbers in the whole text", () => {
      const texts = manifest.caches.xz.paths.slice(0, 3).map((p) => readFixture(p.narinfo))
      const broken = withLine(texts[1], "NarSize", "0")
      const all = "\n" + texts[0] + "\n" + broken + "\n\n\n" + texts[2]
      const entries = NarInfo.parseMany(all)
      assert.strictEqual(entries.length, 3)
      assert.deepStrictEqual(entries.map((e) => e.index), [0, 1, 2])
      assert.strictEqual(entries[0].line, 2)
      assert.strictEqual(entries[0].text, texts[0])
      assert.strictEqual(entries[1].text, broken)
      assert.isTrue(Either.isRight(entries[0].result) && Either.isRight(entries[2].result))
      const e = entries[1].result
      assert.isTrue(Either.isLeft(e))
      const firstLines = texts[0].split("\n").length - 1
      assert.strictEqual(entries[1].line, 2 + firstLines + 1)
      if (Either.isLeft(e)) {
        const narSizeLine = entries[1].line + broken.split("\n").findIndex((l) => l.startsWith("NarSize"))
        assert.strictEqual(e.left.line, narSizeLine)
        assert.include(e.left.message, `line ${narSizeLine}: NarSize: must not be 0`)
      }
      assert.strictEqual(entries[2].line, entries[1].line + broken.split("\n").length - 1 + 3)
      if (Either.isRight(entries[2].result)) assert.strictEqual(NarInfo.render(entries[2].result.right), texts[2])
      assert.deepStrictEqual(NarInfo.parseMany(""), [])
      assert.deepStrictEqual(NarInfo.parseMany("\n\n"), [])
    })

    it("parses every fixture narinfo as one stream", () => {
      const files = allNarinfoFiles()
      const entries = NarInfo.parseMany(files.map(([, , t]) => t).join("\n"))
      assert.strictEqual(entries.length, files.length)
      entries.forEach((e, i) => {
        assert.isTrue(Either.isRight(e.result))
        if (Either.isRight(e.result)) assert.strictEqual(NarInfo.render(e.result.right), files[i][2])
      })
    })
  })

  describe("properties", () => {
    it.prop("parse ∘ render = id on values (no quirks)", [NarInfo.arbitrary], ([ni]) => {
      const text = NarInfo.render(ni)
      const back = parseOk(text)
      assert.isTrue(NarInfo.equals(back, ni))
      assert.isTrue(Equal.equals(back, ni))
      assert.strictEqual(NarInfo.render(back), text)
      assert.strictEqual(NarInfo.fingerprint(back), NarInfo.fingerprint(ni))
    }, { fastCheck: { numRuns: 200 } })

    it.prop("decode ∘ encode = id through the Schema", [NarInfo.FromString], ([ni]) => {
      const text = Schema.encodeSync(NarInfo.FromString)(ni)
      const back = Schema.decodeSync(NarInfo.FromString)(text)
      assert.strictEqual(Schema.encodeSync(NarInfo.FromString)(back), text)
    }, { fastCheck: { numRuns: 50 } })

    // quirky texts built from the fixtures: reordered lines, dropped optional lines,
    // unknown lines, other hash encodings, no final newline
    const fixtureTexts = manifest.caches.none.paths.map((p) => readFixture(p.narinfo))
    const quirkyText = FastCheck.record({
      base: FastCheck.constantFrom(...fixtureTexts),
      shuffle: FastCheck.array(FastCheck.nat(), { minLength: 12, maxLength: 12 }),
      drop: FastCheck.subarray(["Compression", "FileHash", "FileSize", "References", "Deriver"]),
      unknown: FastCheck.array(
        FastCheck.tuple(FastCheck.stringMatching(/^X-[A-Za-z]{1,8}$/), FastCheck.stringMatching(/^[ -~]{0,20}$/)),
        { maxLength: 3 }
      ),
      narHashFormat: FastCheck.constantFrom<NixHash.Format>("nixbase32", "hex", "base64", "sri"),
      finalNewline: FastCheck.boolean()
    }).map(({ base, drop, finalNewline, narHashFormat, shuffle, unknown }) => {
      const ls = lines(base)
        .filter((l) => !drop.some((k) => l.startsWith(k + ": ") && (k !== "References" || l === "References: ")))
        .map((l) =>
          l.startsWith("NarHash: ")
            ? "NarHash: " + NixHash.format(Either.getOrThrow(NixHash.parse(l.slice(9))), narHashFormat)
            : l
        )
      const all = [...ls, ...unknown.map(([k, v]) => `${k}: ${v}`)]
      const keyed = all.map((l, i) => [shuffle[i % shuffle.length] ?? 0, i, l] as const)
      keyed.sort((a, b) => a[0] - b[0] || a[1] - b[1])
      const text = keyed.map(([, , l]) => l).join("\n")
      return finalNewline ? text + "\n" : text
    })

    it.prop("render ∘ parse = id on quirky texts (byte for byte)", [quirkyText], ([text]) => {
      const ni = parseOk(text)
      assert.strictEqual(NarInfo.render(ni), text)
      Schema.validateSync(NarInfo.NarInfo)(ni)
      const p = manifest.caches.none.paths.find((q) => q.storePath === StorePath.toAbsolutePath(ni.storePath))!
      if (text.includes("References: ")) assert.strictEqual(NarInfo.fingerprint(ni), p.fingerprint)
    }, { fastCheck: { numRuns: 300 } })
  })
})
