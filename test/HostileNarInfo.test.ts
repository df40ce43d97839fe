/**
 * Every narinfo of the hostile corpus meets the narinfo parser with the
 * signature check, and a BinaryCache reading it from a test server with the
 * corpus key trusted: the expected typed error (reason and field), no defect.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as NarInfo from "@nixfx/nix-compat/NarInfo"
import * as Signature from "@nixfx/nix-compat/Signature"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import { serveCache } from "../packages/pathinfo-http/test/support/cacheServer.js"
import { memoryStore, open } from "../packages/pathinfo-http/test/support/helpers.js"
import { bytesOf, casesOf, manifest } from "./support/corpus.js"

const cases = casesOf("narinfo")
const trusted = Either.getOrThrow(Keys.parsePublicKey(manifest.trustedPublicKey))
const utf8 = new TextDecoder()

const textOf = async (c: (typeof cases)[number]) => utf8.decode(await bytesOf(c))

describe("NarInfo parser and signature check: every hostile narinfo", () => {
  it("the corpus has the cases the issue lists", () => {
    const fields = new Set(cases.flatMap((c) => ("field" in c.expect ? [`${c.expect.reason}/${c.expect.field}`] : [])))
    for (
      const f of ["MissingField/NarHash", "DuplicateField/NarHash", "InvalidHash/NarHash", "InvalidSignature/Sig", "InvalidSize/NarSize", "InvalidStorePath/StorePath", "InvalidReference/References"]
    ) assert.isTrue(fields.has(f), f)
    assert.isAtLeast(cases.filter((c) => "tag" in c.expect && c.expect.tag === "Untrusted").length, 5)
  })

  for (const c of cases) {
    const expect = c.expect
    const label = "valid" in expect ? "parsed and trusted" : expect.tag === "Untrusted" ? "parsed, not trusted" : `${expect.reason} at ${expect.field}`
    it(`${c.id}: ${label} — ${c.description}`, async () => {
      const parsed = NarInfo.parse(await textOf(c))
      if ("valid" in expect || expect.tag === "Untrusted") {
        if (Either.isLeft(parsed)) return assert.fail(`${c.id}: ${parsed.left.message}`)
        const verified = Signature.verify(parsed.right, [trusted])
        assert.strictEqual(Option.isSome(verified), "valid" in expect)
        // What parses renders and parses back to the same value.
        assert.isTrue(NarInfo.equals(NarInfo.parseOrThrow(NarInfo.render(parsed.right)), parsed.right))
        return
      }
      if (Either.isRight(parsed)) return assert.fail(`${c.id}: parsed, expected ${expect.reason}`)
      assert.strictEqual(parsed.left._tag, "NarInfoParseError")
      assert.strictEqual(parsed.left.reason, expect.reason, parsed.left.message)
      assert.strictEqual(parsed.left.field, expect.field, parsed.left.message)
      assert.isAtLeast(parsed.left.line, 1)
    })
  }
})

describe("BinaryCache.narInfo: every hostile narinfo served by a cache", () => {
  const valid = cases.find((c) => "valid" in c.expect)!
  it.live("each is refused with InvalidNarInfo or UntrustedNarInfo (or read, for the control)", () =>
    Effect.scoped(Effect.gen(function*() {
      const storePath = /^StorePath: (\S+)$/m.exec(yield* Effect.promise(() => textOf(valid)))![1]
      const hashPart = storePath.slice(manifest.storeDir.length + 1, manifest.storeDir.length + 33)
      const server = yield* serveCache([])
      server.files.set("/nix-cache-info", `StoreDir: ${manifest.storeDir}\nWantMassQuery: 1\nPriority: 40\n`)
      const store = yield* memoryStore
      for (const c of cases) {
        server.files.set(`/${hashPart}.narinfo`, yield* Effect.promise(() => bytesOf(c)))
        // A fresh cache each time: a cache remembers narinfos it has read.
        const cache = yield* open(server, store, { trustedPublicKeys: [trusted] })
        const exit = yield* Effect.exit(cache.narInfo(hashPart))
        const expect = c.expect
        if ("valid" in expect) {
          assert.isTrue(Exit.isSuccess(exit) && Option.isSome(exit.value), c.id)
          continue
        }
        if (Exit.isSuccess(exit)) return assert.fail(`${c.id}: read, expected a refusal`)
        const failure = Cause.failureOption(exit.cause)
        if (Option.isNone(failure)) return assert.fail(`${c.id}: not a typed failure: ${Cause.pretty(exit.cause)}`)
        const e = failure.value
        if (expect.tag === "Untrusted") {
          assert.strictEqual(e._tag, "UntrustedNarInfo", `${c.id}: ${e.message}`)
        } else {
          assert.strictEqual(e._tag, "InvalidNarInfo", `${c.id}: ${e.message}`)
          if (e._tag === "InvalidNarInfo") assert.strictEqual(e.reason, "Parse", `${c.id}: ${e.message}`)
        }
      }
    })))
})
