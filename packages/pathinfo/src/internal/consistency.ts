/**
 * The rules every PathInfoService backend applies on `put`, as plain functions:
 * merging a PathInfo into the one already stored for the same path, and
 * checking references by content in both directions.
 */
import * as Node from "@nixfx/castore-nodes/Node"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as PathInfo from "../PathInfo.js"
import { PathInfoConflict, ReferenceConflict } from "../PathInfoError.js"
import {
  nodeToString,
  optionCaToString,
  optionNodeToString,
  sha256ToString
} from "./show.js"

const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

const conflict = (stored: PathInfo.PathInfo, field: string, s: string, i: string) =>
  Either.left(new PathInfoConflict({ storePath: stored.basename, field, stored: s, incoming: i }))

/**
 * Merges `incoming` into `stored` (same store path):
 *
 * - node, NAR size and hash, and the set of references must be equal;
 * - a reference node known on one side only is taken; known on both, equal;
 * - a CA known on one side only is taken; on both, equal;
 * - the stored deriver wins (several derivations can produce one output path,
 *   e.g. fixed-output ones), an absent one is filled in;
 * - signatures: the stored ones, then the new ones.
 *
 * Returns `stored` itself when nothing changes.
 */
export const merge = (
  stored: PathInfo.PathInfo,
  incoming: PathInfo.PathInfo
): Either.Either<PathInfo.PathInfo, PathInfoConflict> => {
  if (stored === incoming) return Either.right(stored)
  if (!Node.equals(stored.node, incoming.node)) {
    return conflict(stored, "node", nodeToString(stored.node), nodeToString(incoming.node))
  }
  if (stored.narSize !== incoming.narSize) {
    return conflict(stored, "narSize", String(stored.narSize), String(incoming.narSize))
  }
  if (!bytesEqual(stored.narSha256, incoming.narSha256)) {
    return conflict(stored, "narSha256", sha256ToString(stored.narSha256), sha256ToString(incoming.narSha256))
  }
  const showRefs = (p: PathInfo.PathInfo) => "[" + p.references.map((r) => StorePath.toBasename(r.storePath)).join(" ") + "]"
  if (stored.references.length !== incoming.references.length) {
    return conflict(stored, "references", showRefs(stored), showRefs(incoming))
  }
  let changed = false
  let references: Array<PathInfo.Reference> | undefined
  for (let i = 0; i < stored.references.length; i++) {
    const s = stored.references[i]
    const n = incoming.references[i]
    if (!StorePath.equals(s.storePath, n.storePath)) {
      return conflict(stored, "references", showRefs(stored), showRefs(incoming))
    }
    if (Option.isSome(s.node)) {
      if (Option.isSome(n.node) && !Node.equals(s.node.value, n.node.value)) {
        return conflict(
          stored,
          `node of reference ${StorePath.toBasename(s.storePath)}`,
          optionNodeToString(s.node),
          optionNodeToString(n.node)
        )
      }
    } else if (Option.isSome(n.node)) {
      references ??= stored.references.slice()
      references[i] = n
      changed = true
    }
  }
  let ca = stored.ca
  if (Option.isSome(stored.ca)) {
    if (Option.isSome(incoming.ca) && !PathInfo.caEquals(stored.ca.value, incoming.ca.value)) {
      return conflict(stored, "ca", optionCaToString(stored.ca), optionCaToString(incoming.ca))
    }
  } else if (Option.isSome(incoming.ca)) {
    ca = incoming.ca
    changed = true
  }
  let deriver = stored.deriver
  if (Option.isNone(stored.deriver) && Option.isSome(incoming.deriver)) {
    deriver = incoming.deriver
    changed = true
  }
  const signatures = PathInfo.mergeSignatures(stored.signatures, incoming.signatures)
  if (signatures !== stored.signatures) changed = true
  if (!changed) return Either.right(stored)
  // Re-validate: a CA filled in from `incoming` must still agree with the rest.
  return Either.mapLeft(
    PathInfo.make({ ...stored, references: references ?? stored.references, ca, deriver, signatures }),
    (e) => new PathInfoConflict({ storePath: stored.basename, field: e.field, stored: "(merged)", incoming: e.detail })
  )
}

/**
 * The first reference of `referrer` (other than itself) whose recorded node
 * differs from the node `lookup` reports for it (`undefined`: not stored).
 */
export const forwardConflict = (
  referrer: PathInfo.PathInfo,
  lookup: (reference: StorePath.StorePath) => Node.Node | undefined
): ReferenceConflict | undefined => {
  for (const ref of referrer.references) {
    if (Option.isNone(ref.node) || StorePath.equals(ref.storePath, referrer.storePath)) continue
    const actual = lookup(ref.storePath)
    if (actual !== undefined && !Node.equals(actual, ref.node.value)) {
      return new ReferenceConflict({
        referrer: referrer.basename,
        reference: StorePath.toBasename(ref.storePath),
        recordedNode: ref.node.value,
        actualNode: actual,
        putSide: "referrer"
      })
    }
  }
  return undefined
}

/** The conflict of a new reference `pathInfo` with a stored referrer that recorded `recorded` for it. */
export const reverseConflict = (
  pathInfo: PathInfo.PathInfo,
  referrerBasename: string,
  recorded: Node.Node
): ReferenceConflict =>
  new ReferenceConflict({
    referrer: referrerBasename,
    reference: pathInfo.basename,
    recordedNode: recorded,
    actualNode: pathInfo.node,
    putSide: "reference"
  })
