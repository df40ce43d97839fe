/**
 * What a NAR's size tells about its root node, without the NAR.
 *
 * NAR strings are a little-endian u64 length, the bytes, and zero padding to a
 * multiple of 8. A single file or symlink therefore has an exact NAR size;
 * a directory has a lower bound that grows with its (recursive) entry count.
 */
import type * as Node from "@nixfx/castore-nodes/Node"

const padded = (n: number): number => (n + 7) & ~7
/** Size of one NAR string of `n` bytes. */
const str = (n: number): number => 8 + padded(n)

// "nix-archive-1" "(" "type"
const HEADER = str(13) + str(1) + str(4)
const CLOSE = str(1)

/** NAR size of a regular file of `size` bytes. */
export const fileNarSize = (size: number, executable: boolean): number =>
  // "regular" ["executable" ""] "contents" <u64 size> <contents, padded> ")"
  HEADER + str(7) + (executable ? str(10) + str(0) : 0) + str(8) + 8 + padded(size) + CLOSE

/** NAR size of a symlink whose target is `targetBytes` long. */
export const symlinkNarSize = (targetBytes: number): number =>
  // "symlink" "target" <target> ")"
  HEADER + str(7) + str(6) + str(targetBytes) + CLOSE

/** NAR size of an empty directory. */
export const emptyDirectoryNarSize: number = HEADER + str(9) + CLOSE

/**
 * The least a directory entry can add to a NAR: "entry" "(" "name" <name ≥ 1
 * byte> "node" <the smallest node: an empty directory without the archive
 * header, "(" "type" "directory" ")"> ")".
 */
export const minimumEntryNarSize: number = str(5) + str(1) + str(4) + str(1) + str(4) +
  (str(1) + str(4) + str(9) + CLOSE) + CLOSE

const utf8Length = (s: string): number => Buffer.byteLength(s, "utf8")

/**
 * Checks a NAR size against a root node: exact for files and symlinks, a lower
 * bound for directories (`size` counts every entry below the root). Returns a
 * description of the mismatch, or `undefined` when consistent.
 */
export const checkNarSize = (narSize: number, node: Node.Node): string | undefined => {
  switch (node._tag) {
    case "File": {
      const expected = fileNarSize(node.size, node.executable)
      return narSize === expected ? undefined : `a NAR of a ${node.executable ? "executable" : "regular"} file of ${node.size} bytes is ${expected} bytes, not ${narSize}`
    }
    case "Symlink": {
      const expected = symlinkNarSize(utf8Length(node.target))
      return narSize === expected ? undefined : `a NAR of a symlink to ${JSON.stringify(node.target)} is ${expected} bytes, not ${narSize}`
    }
    case "Directory": {
      const least = emptyDirectoryNarSize + node.size * minimumEntryNarSize
      return narSize >= least ? undefined : `a NAR of a directory with ${node.size} entries (recursively) is at least ${least} bytes, not ${narSize}`
    }
  }
}
