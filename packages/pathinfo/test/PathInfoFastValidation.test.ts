/**
 * PathInfo's constructors accept fields through a hand-written check before
 * Schema's general validation (see `fieldsPlainlyValid`). The check must never
 * accept what the Schema rejects; on fields built from genuine instances it
 * must agree with the Schema both ways (else decoders lose the fast path).
 */
import { assert, describe, it } from "@effect/vitest"
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Node from "@nixfx/castore-nodes/Node"
import * as CAHash from "@nixfx/nix-compat/CAHash"
import * as NixHash from "@nixfx/nix-compat/NixHash"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as PathInfo from "@nixfx/pathinfo/PathInfo"
import { invalidPathInfoCases, makeTestPathInfo, randomNode, randomSignature, randomStorePath } from "@nixfx/pathinfo/testing"
import { Either, FastCheck as fc, Option } from "effect"

const { fieldsPlainlyValid, validateFields } = PathInfo.validators

const base = makeTestPathInfo({ node: randomNode("directory") })
const file = makeTestPathInfo()
const self = base.storePath
const drv = randomStorePath("thing.drv")
const paths = [self, randomStorePath("a"), randomStorePath("b"), randomStorePath("c"), StorePath.unsafeMake(self.digest, "other")]
const nodes = [base.node, file.node, randomNode("executable"), randomNode("symlink"), randomNode("directory")]
const signature = randomSignature("cache-1")
const sha = NixHash.unsafeMake("sha256", base.narSha256)

/** Anything at all: plain data, and look-alikes of the right values that are not instances. */
const junk = fc.oneof(
  fc.anything(),
  fc.constantFrom(
    StorePath.toBasename(self),
    { digest: self.digest, name: self.name },
    Node.toJson(base.node),
    { _tag: "Directory", digest: B3Digest.unsafeMake(new Uint8Array(32)), size: 1 },
    { keyName: "cache-1", bytes: new Uint8Array(64) },
    Option.some("x"),
    null,
    undefined
  )
)
const storePath = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...paths) }, { weight: 1, arbitrary: junk })
const node = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...nodes) }, { weight: 1, arbitrary: junk })
const option = <A>(value: fc.Arbitrary<A>) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant(Option.none()) },
    { weight: 3, arbitrary: value.map(Option.some) },
    { weight: 1, arbitrary: junk }
  )
const reference = fc.oneof(
  { weight: 8, arbitrary: fc.record({ storePath, node: option(node) }) },
  { weight: 1, arbitrary: junk }
)
const fields = fc.record({
  storePath: fc.oneof({ weight: 8, arbitrary: fc.constant(self) }, { weight: 1, arbitrary: storePath }),
  node,
  references: fc.oneof({ weight: 8, arbitrary: fc.array(reference, { maxLength: 4 }) }, { weight: 1, arbitrary: junk }),
  narSize: fc.oneof(
    fc.constantFrom(base.narSize, file.narSize, 0, -1, 1.5, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY),
    fc.integer(),
    junk
  ),
  narSha256: fc.oneof(
    { weight: 4, arbitrary: fc.constant(base.narSha256) },
    { weight: 2, arbitrary: fc.uint8Array({ minLength: 30, maxLength: 33 }) },
    { weight: 1, arbitrary: junk }
  ),
  signatures: fc.oneof(
    { weight: 8, arbitrary: fc.array(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(signature, randomSignature("cache-2")) }, { weight: 1, arbitrary: junk }), { maxLength: 3 }) },
    { weight: 1, arbitrary: junk }
  ),
  deriver: option(fc.oneof(fc.constant(drv), storePath)),
  ca: option(fc.oneof(
    fc.constantFrom(
      new CAHash.Nar({ hash: sha }),
      new CAHash.Nar({ hash: NixHash.unsafeMake("sha256", new Uint8Array(32)) }),
      new CAHash.Flat({ hash: sha }),
      new CAHash.Text({ hash: sha })
    ),
    junk
  ))
}, { requiredKeys: [] })

const fieldNames = ["storePath", "node", "references", "narSize", "narSha256", "signatures", "deriver", "ca"] as const
/** A valid PathInfo's fields with some of them replaced by arbitrary ones. */
const mutated = fc.tuple(fc.constantFrom(base, file), fc.subarray([...fieldNames], { maxLength: 2 }), fields).map(
  ([valid, replaced, other]) => {
    const out: Record<string, unknown> = {}
    for (const k of fieldNames) out[k] = valid[k]
    for (const k of replaced) out[k] = (other as Record<string, unknown>)[k]
    return out
  }
)
const anyFields = fc.oneof({ weight: 4, arbitrary: mutated }, { weight: 2, arbitrary: fields }, { weight: 1, arbitrary: junk })

describe("PathInfo's fast field check", () => {
  it.prop("agrees with the Schema on arbitrary fields", [anyFields], ([f]) => {
    const bySchema = Either.isRight(validateFields(f as PathInfo.PathInfoFields))
    const fast = fieldsPlainlyValid(f as PathInfo.PathInfoFields)
    // never accepts what the Schema rejects
    if (fast) assert.isTrue(bySchema)
    // and on these inputs (no structural copies of class instances) accepts all it accepts
    assert.strictEqual(fast, bySchema)
    const made = PathInfo.make(f as PathInfo.PathInfoFields)
    assert.strictEqual(Either.isRight(made), bySchema)
  }, { fastCheck: { numRuns: 3000 } })

  it("accepts valid fields and rejects each broken rule", () => {
    for (const p of [base, file]) assert.isTrue(fieldsPlainlyValid(p))
    for (const c of invalidPathInfoCases()) {
      assert.isFalse(fieldsPlainlyValid(c.fields), c.rule)
      assert.throws(() => new PathInfo.PathInfo(c.fields), undefined, undefined, c.rule)
    }
  })

  it("generates accepted inputs often enough to mean something", () => {
    const sampled = fc.sample(anyFields, { numRuns: 3000, seed: 1 })
    const accepted = sampled.filter((f) => fieldsPlainlyValid(f as PathInfo.PathInfoFields)).length
    assert.isAbove(accepted, 300, `only ${accepted} of 3000 accepted`)
  })
})
