/**
 * Schema properties of the castore values (the wire encodings have their own
 * properties in Node.test.ts and Directory.test.ts): decode ∘ encode = id for
 * any valid value, and decoding any input gives a value or a ParseError.
 */
import { Directory, Node, PathComponent, SymlinkTarget } from "@nixfx/castore-nodes"
import { assert, describe, it } from "@effect/vitest"
import { Either, Equal, FastCheck as fc, ParseResult, Schema } from "effect"
import { directory, node, pathComponent, symlinkTarget } from "./arbitraries.js"

const decodesOrFailsTyped = <A, I>(schema: Schema.Schema<A, I>, input: unknown): Either.Either<A, ParseResult.ParseError> => {
  const r = Schema.decodeUnknownEither(schema)(input)
  if (Either.isLeft(r)) assert.isTrue(ParseResult.isParseError(r.left))
  return r
}

describe("castore Schemas round trip", () => {
  it.prop("PathComponent: decode ∘ encode = id, and validate agrees", [pathComponent], ([name]) => {
    const encoded = Schema.encodeSync(PathComponent.PathComponent)(name)
    assert.strictEqual(Schema.decodeSync(PathComponent.PathComponent)(encoded), name)
    assert.strictEqual(Either.getOrThrow(PathComponent.validate(encoded)), name)
    assert.strictEqual(Either.getOrThrow(PathComponent.fromUtf8(new TextEncoder().encode(name))), name)
  }, { fastCheck: { numRuns: 500 } })

  it.prop("SymlinkTarget: decode ∘ encode = id", [symlinkTarget], ([target]) => {
    const encoded = Schema.encodeSync(SymlinkTarget.SymlinkTarget)(target)
    assert.strictEqual(Schema.decodeSync(SymlinkTarget.SymlinkTarget)(encoded), target)
  }, { fastCheck: { numRuns: 300 } })

  it.prop("Node (JSON): decode ∘ encode = id, and the JSON survives JSON text", [node()], ([n]) => {
    const json = Schema.encodeSync(Node.NodeFromJson)(n)
    assert.deepStrictEqual(json, Node.toJson(n))
    const back = Schema.decodeUnknownSync(Node.NodeFromJson)(JSON.parse(JSON.stringify(json)))
    assert.isTrue(Node.equals(back, n))
  }, { fastCheck: { numRuns: 500 } })

  it.prop("Directory (protobuf bytes): decode ∘ encode = id", [directory], ([dir]) => {
    const bytes = Schema.encodeSync(Directory.DirectoryFromBytes)(dir)
    assert.deepStrictEqual(bytes, Directory.encode(dir))
    assert.isTrue(Equal.equals(Schema.decodeSync(Directory.DirectoryFromBytes)(bytes), dir))
  }, { fastCheck: { numRuns: 200 } })
})

describe("castore Schemas on arbitrary input: a value or a ParseError", () => {
  it.prop("PathComponent from any string", [fc.string({ unit: "binary", maxLength: 300 })], ([s]) => {
    const r = decodesOrFailsTyped(PathComponent.PathComponent, s)
    assert.strictEqual(Either.isRight(r), Either.isRight(PathComponent.validate(s)))
  }, { fastCheck: { numRuns: 500 } })

  it.prop("Node from any JSON", [fc.jsonValue()], ([j]) => {
    decodesOrFailsTyped(Node.NodeFromJson, j)
  }, { fastCheck: { numRuns: 500 } })

  it.prop("Node JSON with one field replaced by noise", [node(), fc.constantFrom("type", "digest", "size", "executable", "target"), fc.jsonValue()], ([n, field, noise]) => {
    const json: Record<string, unknown> = { ...Node.toJson(n), [field]: noise }
    const r = decodesOrFailsTyped(Node.NodeFromJson, json)
    // (keys a kind does not have are ignored; the ones it has come back as given)
    if (Either.isRight(r)) for (const [k, v] of Object.entries(Node.toJson(r.right))) assert.deepStrictEqual(v, json[k], k)
  }, { fastCheck: { numRuns: 500 } })

  it.prop("Directory from any bytes", [fc.uint8Array({ maxLength: 200 })], ([bytes]) => {
    const r = decodesOrFailsTyped(Directory.DirectoryFromBytes, bytes)
    // (unknown fields are skipped, as protobuf decoders do: the canonical re-encoding decodes to the same Directory)
    if (Either.isRight(r)) assert.isTrue(Equal.equals(Schema.decodeSync(Directory.DirectoryFromBytes)(Directory.encode(r.right)), r.right))
  }, { fastCheck: { numRuns: 500 } })
})
