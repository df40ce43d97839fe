/**
 * Builders of valid PathInfos with random content, for tests (no vitest here:
 * child processes of tests use them too). Re-exported by `testing.ts`.
 */
import * as B3Digest from "@nixfx/castore-nodes/B3Digest"
import * as Node from "@nixfx/castore-nodes/Node"
import type * as SymlinkTarget from "@nixfx/castore-nodes/SymlinkTarget"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as crypto from "node:crypto"
import * as PathInfo from "../PathInfo.js"
import { emptyDirectoryNarSize, fileNarSize, minimumEntryNarSize, symlinkNarSize } from "./narSize.js"


const randomBytes = (n: number): Uint8Array => new Uint8Array(crypto.randomBytes(n))

/**
 * A store path with a random digest.
 *
 * @since 0.1.0
 */
export const randomStorePath = (name: string = "test-path"): StorePath.StorePath =>
  Either.getOrThrow(StorePath.make(randomBytes(20), name))

/**
 * A random castore node of the given kind (file by default).
 *
 * @since 0.1.0
 */
export const randomNode = (kind: "file" | "executable" | "directory" | "symlink" = "file"): Node.Node => {
  switch (kind) {
    case "file":
    case "executable":
      return new Node.FileNode({
        digest: B3Digest.unsafeMake(randomBytes(32)),
        size: crypto.randomInt(0, 100_000),
        executable: kind === "executable"
      })
    case "directory":
      return new Node.DirectoryNode({ digest: B3Digest.unsafeMake(randomBytes(32)), size: crypto.randomInt(0, 50) })
    case "symlink":
      return new Node.SymlinkNode({ target: ("/nix/store/" + crypto.randomUUID()) as SymlinkTarget.SymlinkTarget })
  }
}

/**
 * The smallest NAR size consistent with `node` (exact for files and symlinks).
 *
 * @since 0.1.0
 */
export const narSizeFor = (node: Node.Node): number => {
  switch (node._tag) {
    case "File":
      return fileNarSize(node.size, node.executable)
    case "Symlink":
      return symlinkNarSize(Buffer.byteLength(node.target, "utf8"))
    case "Directory":
      return emptyDirectoryNarSize + node.size * minimumEntryNarSize
  }
}

/**
 * Sorts references by basename (what `PathInfo` requires).
 *
 * @since 0.1.0
 */
export const sortReferences = (refs: ReadonlyArray<PathInfo.Reference>): Array<PathInfo.Reference> =>
  [...refs].sort((a, b) => {
    const x = StorePath.toBasename(a.storePath)
    const y = StorePath.toBasename(b.storePath)
    return x < y ? -1 : x > y ? 1 : 0
  })

/**
 * A valid PathInfo with random content; every field can be overridden
 * (references are sorted for you).
 *
 * @since 0.1.0
 */
export const makeTestPathInfo = (
  overrides: Partial<PathInfo.PathInfoFields> & { readonly name?: string } = {}
): PathInfo.PathInfo => {
  const node = overrides.node ?? randomNode("file")
  const { name, ...rest } = overrides
  return new PathInfo.PathInfo({
    storePath: randomStorePath(name),
    narSize: narSizeFor(node),
    narSha256: randomBytes(32),
    signatures: [],
    deriver: Option.none(),
    ca: Option.none(),
    ...rest,
    node,
    references: sortReferences(overrides.references ?? [])
  })
}

/**
 * A signature with random bytes (for tests that need distinct signatures).
 *
 * @since 0.1.0
 */
export const randomSignature = (keyName: string): Keys.Signature =>
  new Keys.Signature({ keyName, bytes: randomBytes(64) })

