import * as Node from "@nixfx/castore-nodes/Node"
import * as CAHash from "@nixfx/nix-compat/CAHash"
import * as Keys from "@nixfx/nix-compat/Keys"
import * as Nixbase32 from "@nixfx/nix-compat/Nixbase32"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import * as Option from "effect/Option"

/** A node in its JSON form, for messages. */
export const nodeToString = (node: Node.Node): string => JSON.stringify(Node.toJson(node))

export const optionNodeToString = (node: Option.Option<Node.Node>): string =>
  Option.isSome(node) ? nodeToString(node.value) : "(unknown)"

export const sha256ToString = (digest: Uint8Array): string => "sha256:" + Nixbase32.encode(digest)

export const optionStorePathToString = (sp: Option.Option<StorePath.StorePath>): string =>
  Option.isSome(sp) ? StorePath.toBasename(sp.value) : "(none)"

export const optionCaToString = (ca: Option.Option<CAHash.CAHash>): string =>
  Option.isSome(ca) ? CAHash.render(ca.value) : "(none)"

export const signaturesToString = (sigs: ReadonlyArray<Keys.Signature>): string =>
  sigs.length === 0 ? "(none)" : sigs.map(Keys.formatSignature).join(" ")

/** Lower-case hex of bytes. */
export const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")
