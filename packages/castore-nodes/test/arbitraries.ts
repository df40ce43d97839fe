/**
 * FastCheck arbitraries for castore values (test support, not a test file).
 *
 * Names and targets deliberately mix ASCII with characters where UTF-16 order and
 * UTF-8 byte order disagree (astral code points vs U+E000–U+FFFF) and with
 * characters near the rules (".", "..." prefixes, BOM, 255-byte limits).
 */
import { Directory, Node, type PathComponent, type SymlinkTarget } from "@nixfx/castore-nodes"
import type { B3Digest } from "@nixfx/castore-nodes/B3Digest"
import { Either, FastCheck as fc } from "effect"

const tricky = fc.constantFrom(
  "a",
  "b",
  "Z",
  ".",
  "-",
  " ",
  "é",
  "\u00ff",
  "\u0800",
  "\ud7ff",
  "\ue000",
  "\uff5e",
  "\uffff",
  "\ufeff",
  "😀",
  "\u{10000}",
  "\u{10ffff}",
  "中"
)

const utf8Length = (s: string): number => Buffer.byteLength(s, "utf8")

/** A valid name (checked with Buffer, independently of the code under test). */
export const pathComponent: fc.Arbitrary<PathComponent.PathComponent> = fc
  .oneof(
    fc.array(tricky, { minLength: 1, maxLength: 6 }).map((parts) => parts.join("")),
    fc.string({ unit: "binary", minLength: 1, maxLength: 12 }),
    fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 8 }),
    fc.integer({ min: 250, max: 255 }).map((n) => "x".repeat(n)),
    fc.integer({ min: 0, max: 63 }).map((n) => "😀".repeat(n) + "abc")
  )
  .filter((s) =>
    s !== "." && s !== ".." && !s.includes("/") && !s.includes("\0") && utf8Length(s) >= 1 && utf8Length(s) <= 255
  )
  .map((s) => s as PathComponent.PathComponent)

export const symlinkTarget: fc.Arbitrary<SymlinkTarget.SymlinkTarget> = fc
  .oneof(
    fc.array(fc.oneof(tricky, fc.constant("/"), fc.constant("..")), { minLength: 1, maxLength: 10 }).map((p) =>
      p.join("")
    ),
    fc.string({ unit: "binary", minLength: 1, maxLength: 40 }),
    fc.integer({ min: 4000, max: 4095 }).map((n) => "t".repeat(n))
  )
  .filter((s) => !s.includes("\0") && utf8Length(s) >= 1 && utf8Length(s) <= 4095)
  .map((s) => s as SymlinkTarget.SymlinkTarget)

export const digest: fc.Arbitrary<B3Digest> = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((b) => b as B3Digest)

/** Sizes exercising every varint length, 0 (omitted on the wire) included. */
export const size = (max: number): fc.Arbitrary<number> =>
  fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 0, max: max }))

export const node = (maxDirectorySize = 2 ** 40): fc.Arbitrary<Node.Node> =>
  fc.oneof(
    fc.record({ digest, size: size(maxDirectorySize) }).map((a) => new Node.DirectoryNode(a)),
    fc.record({ digest, size: size(Number.MAX_SAFE_INTEGER), executable: fc.boolean() }).map((a) =>
      new Node.FileNode(a)
    ),
    symlinkTarget.map((target) => new Node.SymlinkNode({ target }))
  )

/** Orders by UTF-8 bytes through Buffer: the oracle the tests compare against. */
export const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"))

/** Entries with unique names, sorted by UTF-8 bytes (sorted here with Buffer.compare). */
export const entries: fc.Arbitrary<ReadonlyArray<Directory.DirectoryEntry>> = fc
  .uniqueArray(fc.record({ name: pathComponent, node: node() }), { selector: (e) => e.name, maxLength: 24 })
  .map((es) => es.slice().sort((a, b) => byteOrder(a.name, b.name)))

export const directory: fc.Arbitrary<Directory.Directory> = entries.map((es) =>
  Either.getOrThrowWith(Directory.make(es), (e) => e)
)
