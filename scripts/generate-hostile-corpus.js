#!/usr/bin/env node
/**
 * Generates the hostile-input corpus under test/hostile/ (issue 9): NARs,
 * narinfos, tvix PathInfo protobuf messages and compressed NARs that every
 * decoder and service must refuse with a typed error (or, for the few
 * `valid` controls, accept). test/hostile/manifest.json names each case, its
 * kind, file, SHA-256 and the expected error.
 *
 *   node scripts/generate-hostile-corpus.js [OUT_DIR]    (default test/hostile)
 *
 * Deterministic: the same bytes on every run (no randomness, no clock; the
 * signing key comes from a fixed seed; compressors run at fixed settings).
 * The compression bombs take a minute or so (1 GiB through xz, zstd and
 * brotli); test/Corpus.test.ts regenerates everything else with
 * `buildCases({ bombs: false })` and compares it with the committed files.
 *
 * Cases too large to commit (`atTestTime: true` in the manifest) have no file:
 * tests build them with `buildCases`.
 */
import { create, toBinary } from "@bufbuild/protobuf"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Zlib from "node:zlib"
import { NodeSchema } from "@nixfx/pathinfo-grpc/gen/tvix/castore/protos/castore_pb"
import {
  NARInfo_CA_Hash,
  NARInfo_CASchema,
  NARInfo_SignatureSchema,
  NARInfoSchema,
  PathInfoSchema,
  StorePathSchema
} from "@nixfx/pathinfo-grpc/gen/tvix/store/protos/pathinfo_pb"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")
const require = createRequire(Path.join(root, "package.json"))

const utf8 = new TextEncoder()
const GiB = 1024 * 1024 * 1024
const MiB = 1024 * 1024

// ---------------------------------------------------------------------------
// deterministic material
// ---------------------------------------------------------------------------

/** `n` bytes derived from `label` (SHA-256 in counter mode). */
const bytesOf = (label, n) => {
  const out = new Uint8Array(n)
  for (let i = 0, block = 0; i < n; block++) {
    const d = Crypto.createHash("sha256").update(`${label}/${block}`).digest()
    out.set(d.subarray(0, Math.min(32, n - i)), i)
    i += 32
  }
  return out
}

const nixbase32Alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
/** Nix's base32 (least significant 5 bits last), written here independently of @nixfx/nix-compat. */
const nixbase32 = (bytes) => {
  const len = Math.ceil((bytes.length * 8) / 5)
  let s = ""
  for (let n = len - 1; n >= 0; n--) {
    const b = n * 5
    const i = b >> 3
    const j = b & 7
    const c = (bytes[i] >> j) | (i + 1 < bytes.length ? bytes[i + 1] << (8 - j) : 0)
    s += nixbase32Alphabet[c & 0x1f]
  }
  return s
}

const storeHash = (label) => nixbase32(bytesOf(`store-path/${label}`, 20))
const sha256Of = (bytes) => new Uint8Array(Crypto.createHash("sha256").update(bytes).digest())

/** An ed25519 key pair from a fixed seed, in Nix's text forms. */
const keyPair = (name, seedLabel) => {
  const seed = bytesOf(`key/${seedLabel}`, 32)
  const privateKey = Crypto.createPrivateKey({
    key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]),
    format: "der",
    type: "pkcs8"
  })
  const publicRaw = Crypto.createPublicKey(privateKey).export({ format: "der", type: "spki" }).subarray(-32)
  return {
    name,
    publicKey: `${name}:${Buffer.from(publicRaw).toString("base64")}`,
    sign: (message) => new Uint8Array(Crypto.sign(null, Buffer.from(message), privateKey))
  }
}

const trustedKey = keyPair("hostile-test-1", "trusted")
const otherKey = keyPair("hostile-test-1", "impostor") // same name, another key
const untrustedKey = keyPair("someone-else-1", "untrusted")

// ---------------------------------------------------------------------------
// NAR wire format
// ---------------------------------------------------------------------------

const u64 = (n) => {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true)
  return b
}

const concat = (parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let p = 0
  for (const part of parts) {
    out.set(part, p)
    p += part.length
  }
  return out
}

/**
 * A token: a string (length, bytes, zero padding to 8). `{ raw }` goes as
 * is; `{ u64 }` is a bare 64-bit length; `{ str, pad }` pads with `pad`.
 */
const token = (part) => {
  if (part instanceof Uint8Array || typeof part === "string") {
    const b = typeof part === "string" ? utf8.encode(part) : part
    return concat([u64(b.length), b, new Uint8Array((8 - (b.length % 8)) % 8)])
  }
  if ("raw" in part) return part.raw
  if ("u64" in part) return u64(part.u64)
  const b = typeof part.str === "string" ? utf8.encode(part.str) : part.str
  return concat([u64(b.length), b, new Uint8Array((8 - (b.length % 8)) % 8).fill(part.pad)])
}
const wire = (parts) => concat(parts.map(token))

const file = (contents, executable = false) => [
  "(",
  "type",
  "regular",
  ...(executable ? ["executable", ""] : []),
  "contents",
  contents,
  ")"
]
const dir = (...entries) => [
  "(",
  "type",
  "directory",
  ...entries.flatMap(([name, node]) => ["entry", "(", "name", name, "node", ...node, ")"]),
  ")"
]
const link = (target) => ["(", "type", "symlink", "target", target, ")"]
const nar = (...parts) => ["nix-archive-1", ...parts]

/** A valid NAR touching every node kind: the base of the truncation cases. */
const sampleParts = nar(
  ...dir(
    ["a", file("hello\n")],
    ["bin", dir(["run", file("#!/bin/sh\necho hi\n", true)], ["sh", link("../a")])],
    ["empty", file("")],
    ["z", dir()]
  )
)

const narCases = () => {
  const cases = []
  const add = (name, parts, expect, description, extra = {}) =>
    cases.push({ id: `nar/${name}`, kind: "nar", ext: "nar", bytes: parts instanceof Uint8Array ? parts : wire(parts), expect, description, ...extra })
  const reject = (reason) => ({ tag: "NarError", reason })
  const inDir = (name, node = file("x")) => nar(...dir(["-", file("")], [name, node]))

  add("valid-sample", sampleParts, { valid: true }, "control: a valid NAR with files, an executable, a symlink and directories")
  add("valid-single-file", nar(...file("just a file")), { valid: true }, "control: a NAR whose root is a file")

  // names
  add("name-dotdot", inDir(".."), reject("InvalidName"), "entry named ..")
  add("name-dot", inDir("."), reject("InvalidName"), "entry named .")
  add("name-slash", inDir("/"), reject("InvalidName"), "entry named /")
  add("name-with-slash", inDir("a/b"), reject("InvalidName"), "entry named a/b")
  add("name-dotdot-slash-escape", inDir("../../etc"), reject("InvalidName"), "entry named ../../etc")
  add("name-nul", inDir("p\0q"), reject("InvalidName"), "entry name containing NUL")
  add("name-only-nul", inDir("\0"), reject("InvalidName"), "entry name that is one NUL byte")
  add("name-empty", nar(...dir(["", file("x")])), reject("InvalidName"), "empty entry name")
  add("name-too-long", inDir("n".repeat(256)), reject("NameTooLong"), "entry name of 256 bytes (limit 255)")
  add(
    "name-length-2^63",
    nar("(", "type", "directory", "entry", "(", "name", { u64: 2n ** 63n }),
    reject("NameTooLong"),
    "entry name declaring 2^63 bytes"
  )
  add("unsorted-entries", nar(...dir(["b", file("")], ["a", file("")])), reject("UnsortedEntries"), "entries b then a")
  add(
    "unsorted-entries-bytewise",
    nar(...dir(["a", file("")], ["B", file("")])),
    reject("UnsortedEntries"),
    "entries a then B ('B' 0x42 sorts before 'a' 0x61)"
  )
  add("duplicate-entries", nar(...dir(["a", file("")], ["a", file("")])), reject("DuplicateEntry"), "entry a twice")
  add(
    "duplicate-entries-nested",
    nar(...dir(["d", dir(["x", file("1")], ["x", link("t")])])),
    reject("DuplicateEntry"),
    "entry x twice in a subdirectory (file and symlink)"
  )

  // sizes
  add(
    "file-size-2^63",
    nar("(", "type", "regular", "contents", { u64: 2n ** 63n }, { raw: new Uint8Array(64) }),
    reject("FileTooLarge"),
    "a file declaring 2^63 bytes"
  )
  add(
    "file-size-2^64-1",
    nar("(", "type", "regular", "contents", { u64: 2n ** 64n - 1n }),
    reject("FileTooLarge"),
    "a file declaring 2^64-1 bytes"
  )
  add(
    "file-size-2^53",
    nar("(", "type", "regular", "contents", { u64: 2n ** 53n }),
    reject("FileTooLarge"),
    "a file declaring 2^53 bytes (one more than a JavaScript number counts exactly)"
  )
  add(
    "file-size-huge-truncated",
    nar("(", "type", "regular", "contents", { u64: 2n ** 40n }, { raw: new Uint8Array(4096) }),
    reject("Truncated"),
    "a file declaring 1 TiB, followed by 4 KiB"
  )
  add(
    "file-size-larger-than-rest",
    nar(...dir(["a", ["(", "type", "regular", "contents", { u64: 1000 }, { raw: new Uint8Array(16) }, ")"]])),
    reject("Truncated"),
    "a file declaring more bytes than the archive holds"
  )
  add(
    "magic-length-2^63",
    [{ u64: 2n ** 63n }, { raw: utf8.encode("nix-archive-1\0\0\0") }],
    reject("BadMagic"),
    "the magic string declaring 2^63 bytes"
  )
  add(
    "token-length-2^63",
    nar("(", { u64: 2n ** 63n }),
    reject("UnexpectedToken"),
    "a token where 'type' belongs declaring 2^63 bytes"
  )
  add("symlink-target-empty", inDir("l", link("")), reject("InvalidTarget"), "symlink with an empty target")
  add("symlink-target-nul", inDir("l", link("a\0b")), reject("InvalidTarget"), "symlink target containing NUL")
  add("symlink-target-too-long", inDir("l", link("t".repeat(4096))), reject("TargetTooLong"), "symlink target of 4096 bytes (limit 4095)")
  add(
    "symlink-target-length-2^63",
    nar("(", "type", "symlink", "target", { u64: 2n ** 63n }),
    reject("TargetTooLong"),
    "symlink target declaring 2^63 bytes"
  )

  // nesting
  add("deep-nesting-300", deepNesting(300), reject("TooDeep"), "300 nested directories (limit 256)")
  add("deep-nesting-10000", deepNesting(10_000), reject("TooDeep"), "10,000 nested directories (1.6 MB, built at test time)", {
    atTestTime: true
  })

  // padding
  add(
    "nonzero-padding-name",
    nar(...dir([{ str: "abc", pad: 1 }, file("")])),
    reject("NonZeroPadding"),
    "entry name 'abc' padded with 0x01 bytes"
  )
  add(
    "nonzero-padding-contents",
    nar("(", "type", "regular", "contents", { str: "hello", pad: 0xff }, ")"),
    reject("NonZeroPadding"),
    "file contents padded with 0xff bytes"
  )
  add(
    "nonzero-padding-magic",
    [{ str: "nix-archive-1", pad: 0x20 }, ...file("")],
    reject("NonZeroPadding"),
    "the magic padded with spaces"
  )
  add(
    "nonzero-padding-target",
    nar("(", "type", "symlink", "target", { str: "x", pad: 0x80 }, ")"),
    reject("NonZeroPadding"),
    "symlink target padded with 0x80 bytes"
  )

  // trailing data
  add("trailing-zero-word", concat([wire(sampleParts), new Uint8Array(8)]), reject("TrailingData"), "8 zero bytes after the archive")
  add("trailing-one-byte", concat([wire(sampleParts), new Uint8Array([0x0a])]), reject("TrailingData"), "a newline after the archive")
  add("trailing-second-nar", concat([wire(sampleParts), wire(sampleParts)]), reject("TrailingData"), "two archives back to back")
  add("trailing-garbage", concat([wire(nar(...file("x"))), utf8.encode("GARBAGE!garbage!")]), reject("TrailingData"), "text after a single-file archive")

  // magic and structure
  add("empty-file", new Uint8Array(0), reject("Truncated"), "zero bytes")
  add("wrong-magic", ["nix-archive-2", ...file("")], reject("BadMagic"), "magic nix-archive-2")
  add("wrong-magic-case", ["NIX-ARCHIVE-1", ...file("")], reject("BadMagic"), "magic in upper case")
  add("magic-unpadded", [{ raw: u64(13) }, { raw: utf8.encode("nix-archive-1") }, ...file("")], reject("NonZeroPadding"), "magic without its padding")
  add("not-a-nar", utf8.encode("<html><body>404 Not Found</body></html>\n"), reject("BadMagic"), "an HTML error page")
  add("type-socket", nar("(", "type", "socket", ")"), reject("UnexpectedToken"), "node type 'socket'")
  add("type-capitalised", nar("(", "type", "Regular", "contents", "", ")"), reject("UnexpectedToken"), "node type 'Regular'")
  add("type-missing", nar("(", "contents", "x", ")"), reject("UnexpectedToken"), "'contents' where 'type' belongs")
  add("open-bracket-wrong", nar("[", "type", "regular", "contents", "", ")"), reject("UnexpectedToken"), "'[' instead of '('")
  add(
    "executable-with-value",
    nar("(", "type", "regular", "executable", "yes", "contents", "", ")"),
    reject("UnexpectedToken"),
    "'executable' followed by a non-empty string"
  )
  add(
    "executable-twice",
    nar("(", "type", "regular", "executable", "", "executable", "", "contents", "", ")"),
    reject("UnexpectedToken"),
    "'executable' twice"
  )
  add("contents-missing", nar("(", "type", "regular", ")"), reject("UnexpectedToken"), "a regular file without 'contents'")
  add(
    "entry-node-before-name",
    nar("(", "type", "directory", "entry", "(", "node", ...file(""), "name", "a", ")", ")"),
    reject("UnexpectedToken"),
    "'node' before 'name' in an entry"
  )
  add(
    "symlink-extra-field",
    nar("(", "type", "symlink", "target", "t", "contents", "x", ")"),
    reject("UnexpectedToken"),
    "a symlink with a 'contents' field"
  )
  add(
    "entry-not-closed",
    nar("(", "type", "directory", "entry", "(", "name", "a", "node", ...file(""), "entry", ")"),
    reject("UnexpectedToken"),
    "a second 'entry' before the first is closed"
  )

  // valid NARs that castore cannot hold
  add("name-not-utf8", nar(...dir([new Uint8Array([0x61, 0xff]), file("")])), { valid: true, import: "UnsupportedName" }, "entry name 0x61 0xff: a valid NAR, not UTF-8")
  add("target-not-utf8", nar(...dir(["l", link(new Uint8Array([0xc3]))])), { valid: true, import: "UnsupportedTarget" }, "symlink target 0xc3: a valid NAR, not UTF-8")

  // truncation at every token boundary of the sample
  const sample = wire(sampleParts)
  let offset = 0
  sampleParts.forEach((part, i) => {
    add(`truncated/at-token-${String(i).padStart(3, "0")}`, sample.subarray(0, offset), reject("Truncated"), `the sample cut at byte ${offset}, before token ${i} (${JSON.stringify(part)})`, { truncatedAt: offset })
    offset += token(part).length
  })
  // and inside tokens: in a length word, in a string, in the padding, in file contents
  for (const cut of [3, 12, 29, 85, 131]) {
    add(`truncated/inside-${String(cut).padStart(3, "0")}`, sample.subarray(0, cut), reject("Truncated"), `the sample cut at byte ${cut}, inside a token`, { truncatedAt: cut })
  }
  return cases
}

/** `depth` nested directories named "d" holding an empty file at the bottom. */
const deepNesting = (depth) => {
  const open = wire(["(", "type", "directory", "entry", "(", "name", "d", "node"])
  const close = wire([")", ")"])
  const parts = [wire(["nix-archive-1"])]
  for (let i = 0; i < depth; i++) parts.push(open)
  parts.push(wire(file("")))
  for (let i = 0; i < depth; i++) parts.push(close)
  return concat(parts)
}

// ---------------------------------------------------------------------------
// narinfo
// ---------------------------------------------------------------------------

const storeDir = "/nix/store"
const base = {
  storePath: `${storeDir}/${storeHash("hello")}-hello-2.12.1`,
  narHash: bytesOf("narinfo/nar", 32),
  narSize: 226560,
  references: [`${storeHash("glibc")}-glibc-2.37-8`, `${storeHash("hello")}-hello-2.12.1`].sort(),
  deriver: `${storeHash("hello.drv")}-hello-2.12.1.drv`
}
const fingerprint = (ni) =>
  `1;${ni.storePath};sha256:${nixbase32(ni.narHash)};${ni.narSize};${[...ni.references].sort().map((r) => `${storeDir}/${r}`).join(",")}`
const signature = (key, ni) => `${key.name}:${Buffer.from(key.sign(fingerprint(ni))).toString("base64")}`

/** The lines of a valid, signed narinfo, as [key, value]. */
const baseLines = () => [
  ["StorePath", base.storePath],
  ["URL", `nar/${nixbase32(bytesOf("narinfo/file", 32))}.nar.xz`],
  ["Compression", "xz"],
  ["FileHash", `sha256:${nixbase32(bytesOf("narinfo/file", 32))}`],
  ["FileSize", "50264"],
  ["NarHash", `sha256:${nixbase32(base.narHash)}`],
  ["NarSize", String(base.narSize)],
  ["References", base.references.join(" ")],
  ["Deriver", base.deriver],
  ["Sig", signature(trustedKey, base)]
]
const text = (lines) => lines.map(([k, v]) => (v === undefined ? k : `${k}: ${v}`)).join("\n") + "\n"
const without = (key) => baseLines().filter(([k]) => k !== key)
const replace = (key, value) => baseLines().map(([k, v]) => [k, k === key ? value : v])
const twice = (key, value) => baseLines().flatMap(([k, v]) => (k === key ? [[k, v], [k, value ?? v]] : [[k, v]]))

const narinfoCases = () => {
  const cases = []
  const add = (name, body, expect, description) =>
    cases.push({ id: `narinfo/${name}`, kind: "narinfo", ext: "narinfo", bytes: typeof body === "string" ? utf8.encode(body) : body, expect, description })
  const reject = (reason, field) => ({ tag: "NarInfoParseError", reason, field })
  const untrusted = { tag: "Untrusted" }
  const h52 = nixbase32(base.narHash)

  add("valid", text(baseLines()), { valid: true }, "control: a valid narinfo signed by the trusted key")

  for (const key of ["StorePath", "URL", "NarHash", "NarSize"]) {
    add(`missing-${key}`, text(without(key)), reject("MissingField", key), `no ${key} line`)
  }
  add("empty", "", reject("MissingField", "StorePath"), "an empty file")
  for (const key of ["StorePath", "NarHash", "NarSize", "URL", "References", "Deriver"]) {
    add(`duplicate-${key}`, text(twice(key)), reject("DuplicateField", key), `${key} twice`)
  }
  add("duplicate-NarSize-different", text(twice("NarSize", "1")), reject("DuplicateField", "NarSize"), "NarSize twice with different values")

  // overlong fields
  add(
    "overlong-storepath-name",
    text(replace("StorePath", `${storeDir}/${storeHash("hello")}-${"n".repeat(212)}`)),
    reject("InvalidStorePath", "StorePath"),
    "a store path name of 212 characters (limit 211)"
  )
  add("overlong-narhash", text(replace("NarHash", `sha256:${h52}${h52}`)), reject("InvalidHash", "NarHash"), "a NarHash of 104 base32 characters")
  add("overlong-narsize", text(replace("NarSize", "9".repeat(400))), reject("InvalidSize", "NarSize"), "a 400-digit NarSize")
  add(
    "overlong-sig",
    text(replace("Sig", `${trustedKey.name}:${Buffer.from(bytesOf("long-sig", 4096)).toString("base64")}`)),
    reject("InvalidSignature", "Sig"),
    "a 4096-byte signature"
  )
  add(
    "overlong-reference",
    text(replace("References", `${storeHash("x")}-${"r".repeat(300)}`)),
    reject("InvalidReference", "References"),
    "a reference name of 300 characters"
  )
  add("overlong-line-key", `${"K".repeat(10_000)}\n${text(baseLines())}`, reject("InvalidLine", "line"), "a 10,000-character line without ': '")

  // bad hashes
  add("narhash-short", text(replace("NarHash", `sha256:${h52.slice(1)}`)), reject("InvalidHash", "NarHash"), "a NarHash of 51 base32 characters")
  add("narhash-bad-base32", text(replace("NarHash", `sha256:${"e" + h52.slice(1)}`)), reject("InvalidHash", "NarHash"), "a NarHash with 'e' (not in Nix's base32 alphabet)")
  add("narhash-wrong-algo", text(replace("NarHash", `sha1:${nixbase32(bytesOf("sha1", 20))}`)), reject("InvalidHash", "NarHash"), "a sha1 NarHash")
  add("narhash-unknown-algo", text(replace("NarHash", `sha3:${h52}`)), reject("InvalidHash", "NarHash"), "hash algorithm sha3")
  add("narhash-no-algo", text(replace("NarHash", h52)), reject("InvalidHash", "NarHash"), "a NarHash without algorithm")
  add("narhash-bad-sri", text(replace("NarHash", "sha256-!!!!")), reject("InvalidHash", "NarHash"), "an SRI NarHash with invalid base64")
  add("narhash-hex-wrong-length", text(replace("NarHash", `sha256:${"ab".repeat(31)}`)), reject("InvalidHash", "NarHash"), "62 hex digits")
  add("filehash-bad", text(replace("FileHash", "sha256:xyz")), reject("InvalidHash", "FileHash"), "a FileHash of 3 characters")

  // bad signatures
  add("sig-no-colon", text(replace("Sig", "hostile-test-1")), reject("InvalidSignature", "Sig"), "a signature without ':'")
  add("sig-bad-base64", text(replace("Sig", `${trustedKey.name}:${"*".repeat(88)}`)), reject("InvalidSignature", "Sig"), "a signature of 88 '*' characters")
  add("sig-short", text(replace("Sig", `${trustedKey.name}:${Buffer.from(bytesOf("short", 63)).toString("base64")}`)), reject("InvalidSignature", "Sig"), "a 63-byte signature")
  add("sig-empty-name", text(replace("Sig", `:${Buffer.from(bytesOf("sig", 64)).toString("base64")}`)), reject("InvalidSignature", "Sig"), "a signature with an empty key name")
  add("sig-wrong-key", text(replace("Sig", signature(otherKey, base))), untrusted, "signed by another key under the trusted key's name")
  add("sig-untrusted-key", text(replace("Sig", signature(untrustedKey, base))), untrusted, "signed only by a key that is not trusted")
  add("sig-missing", text(without("Sig")), untrusted, "no signature at all")
  add(
    "sig-over-other-narsize",
    text(replace("NarSize", String(base.narSize + 8))),
    untrusted,
    "NarSize changed after signing (the signature no longer matches the fingerprint)"
  )
  add(
    "sig-over-other-references",
    text(replace("References", base.references[1])),
    untrusted,
    "a reference dropped after signing"
  )
  add("sig-random-bytes", text(replace("Sig", `${trustedKey.name}:${Buffer.from(bytesOf("random-sig", 64)).toString("base64")}`)), untrusted, "64 random bytes under the trusted key's name")

  // absurd NarSize
  for (const [name, value, description] of [
    ["negative", "-1", "NarSize -1"],
    ["zero", "0", "NarSize 0"],
    ["2^53", "9007199254740992", "NarSize 2^53 (not exactly representable)"],
    ["2^64", "18446744073709551616", "NarSize 2^64"],
    ["non-numeric", "12abc", "NarSize 12abc"],
    ["exponent", "1e9", "NarSize 1e9"],
    ["hex", "0x10", "NarSize 0x10"],
    ["leading-zero", "0123", "NarSize with a leading zero"],
    ["space", "1 2", "NarSize with a space inside"],
    ["empty", "", "an empty NarSize"]
  ]) {
    add(`narsize-${name}`, text(replace("NarSize", value)), reject("InvalidSize", "NarSize"), description)
  }
  add("filesize-negative", text(replace("FileSize", "-50264")), reject("InvalidSize", "FileSize"), "FileSize -50264")

  // bad store paths
  add("storepath-other-store-dir", text(replace("StorePath", base.storePath.replace("/nix/store", "/gnu/store"))), reject("InvalidStorePath", "StorePath"), "a store path under /gnu/store")
  add("storepath-relative", text(replace("StorePath", base.storePath.slice(storeDir.length + 1))), reject("InvalidStorePath", "StorePath"), "a basename instead of an absolute path")
  add("storepath-short-hash", text(replace("StorePath", `${storeDir}/${storeHash("hello").slice(1)}-hello`)), reject("InvalidStorePath", "StorePath"), "a hash part of 31 characters")
  add("storepath-bad-hash-char", text(replace("StorePath", `${storeDir}/${"e".repeat(32)}-hello`)), reject("InvalidStorePath", "StorePath"), "a hash part with 'e'")
  add("storepath-empty-name", text(replace("StorePath", `${storeDir}/${storeHash("hello")}-`)), reject("InvalidStorePath", "StorePath"), "an empty name")
  add("storepath-name-slash", text(replace("StorePath", `${storeDir}/${storeHash("hello")}-a/../../etc`)), reject("InvalidStorePath", "StorePath"), "a name with '/' and '..'")
  add("storepath-name-bad-char", text(replace("StorePath", `${storeDir}/${storeHash("hello")}-hel@lo`)), reject("InvalidStorePath", "StorePath"), "a name with '@'")

  // references and deriver
  add("reference-bad-hash", text(replace("References", `xyz-foo ${base.references[1]}`)), reject("InvalidReference", "References"), "a reference with a 3-character hash")
  add("reference-empty-name", text(replace("References", `${storeHash("x")}-`)), reject("InvalidReference", "References"), "a reference with an empty name")
  add("reference-bad-char", text(replace("References", `${storeHash("x")}-fo$o`)), reject("InvalidReference", "References"), "a reference with '$'")
  add("reference-absolute", text(replace("References", `${storeDir}/${base.references[0]}`)), reject("InvalidReference", "References"), "an absolute path where a basename belongs")
  add("reference-nul", text(replace("References", `${storeHash("x")}-a\0b`)), reject("InvalidReference", "References"), "a reference with NUL")
  add("deriver-bad", text(replace("Deriver", "not-a-store-path.drv")), reject("InvalidDeriver", "Deriver"), "a deriver that is no store path")
  add("ca-bad", text([...baseLines(), ["CA", "fixed:r:sha256:xyz"]]), reject("InvalidCA", "CA"), "a CA with a 3-character hash")
  add("ca-unknown-method", text([...baseLines(), ["CA", `magic:sha256:${h52}`]]), reject("InvalidCA", "CA"), "a CA with method 'magic'")

  // lines
  add("line-no-separator", text([...baseLines(), ["NoSeparatorHere", undefined]]), reject("InvalidLine", "line"), "a line without ': '")
  // (no ':' in the noise, so the first line is one without a key)
  add("binary-garbage", bytesOf("garbage", 512).map((b) => (b === 0x3a ? 0x3b : b)), reject("InvalidLine", "line"), "512 bytes of noise")
  add("nul-in-storepath", text(replace("StorePath", `${base.storePath}\0x`)), reject("InvalidStorePath", "StorePath"), "a store path with NUL")
  return cases
}

// ---------------------------------------------------------------------------
// tvix.store.v1.PathInfo messages
// ---------------------------------------------------------------------------

const protoBase = () => {
  const refs = [`${storeHash("glibc")}-glibc-2.37-8`, `${storeHash("zlib")}-zlib-1.3`]
  const digestOfBasename = (b) => decodeNixbase32(b.slice(0, 32))
  const narSha256 = bytesOf("proto/nar", 32)
  return {
    node: create(NodeSchema, {
      node: {
        case: "directory",
        value: { name: rootName(), digest: bytesOf("proto/dir", 32), size: 3n }
      }
    }),
    references: refs.map(digestOfBasename),
    narinfo: create(NARInfoSchema, {
      narSize: 4096n,
      narSha256,
      signatures: [create(NARInfo_SignatureSchema, { name: "hostile-test-1", data: bytesOf("proto/sig", 64) })],
      referenceNames: refs,
      deriver: create(StorePathSchema, { name: "app-1.0", digest: bytesOf("proto/drv", 20) }),
      ca: create(NARInfo_CASchema, { type: NARInfo_CA_Hash.NAR_SHA256, digest: narSha256 })
    }),
    nixfxReferenceNodes: [
      create(NodeSchema, { node: { case: "file", value: { name: utf8.encode(refs[1]), digest: bytesOf("proto/ref", 32), size: 10n } } })
    ]
  }
}

const decodeNixbase32 = (s) => {
  const out = new Uint8Array(Math.floor((s.length * 5) / 8))
  for (let n = 0; n < s.length; n++) {
    const c = nixbase32Alphabet.indexOf(s[s.length - n - 1])
    const b = n * 5
    const i = b >> 3
    const j = b & 7
    out[i] |= (c << j) & 0xff
    if (i + 1 < out.length) out[i + 1] |= c >> (8 - j)
  }
  return out
}

const protoCases = () => {
  const cases = []
  const add = (name, mutate, field, description) => {
    const message = protoBase()
    mutate(message)
    const bytes = toBinary(PathInfoSchema, create(PathInfoSchema, message))
    cases.push({ id: `proto/${name}`, kind: "proto", ext: "pb", bytes, expect: field === null ? { valid: true } : { tag: "ProtoDecodeError", field }, description })
  }
  const rawCase = (name, bytes, description) =>
    cases.push({ id: `proto/${name}`, kind: "proto", ext: "pb", bytes, expect: { tag: "ProtoDecodeError", field: "" }, description })
  const dirValue = (m) => m.node.node.value

  add("valid", () => {}, null, "control: a valid PathInfo with references, a reference node, a signature, a deriver and a CA")

  add("narinfo-missing", (m) => delete m.narinfo, "narinfo", "no narinfo")
  add("node-missing", (m) => delete m.node, "node", "no root node")
  add("node-empty-oneof", (m) => (m.node = create(NodeSchema, {})), "node", "a root node with none of directory/file/symlink set")
  add("node-name-empty", (m) => (dirValue(m).name = new Uint8Array(0)), "node.directory.name", "root node without a name")
  add("node-name-not-basename", (m) => (dirValue(m).name = utf8.encode("app-1.0")), "node.directory.name", "root node named app-1.0 (no hash part)")
  add("node-name-slash", (m) => (dirValue(m).name = utf8.encode(`${storeHash("proto-root")}-a/b`)), "node.directory.name", "root node name with '/'")
  add("node-name-not-utf8", (m) => (dirValue(m).name = new Uint8Array([0xff, 0xfe])), "node.directory.name", "root node name 0xff 0xfe")
  add("node-digest-31", (m) => (dirValue(m).digest = bytesOf("d31", 31)), "node.directory.digest", "root directory digest of 31 bytes")
  add("node-digest-33", (m) => (dirValue(m).digest = bytesOf("d33", 33)), "node.directory.digest", "root directory digest of 33 bytes")
  add("node-digest-empty", (m) => (dirValue(m).digest = new Uint8Array(0)), "node.directory.digest", "root directory digest of 0 bytes")
  add("node-size-2^63", (m) => (dirValue(m).size = 2n ** 63n), "node.directory.size", "root directory size 2^63")
  add(
    "node-file-digest-20",
    (m) => (m.node = create(NodeSchema, { node: { case: "file", value: { name: rootName(), digest: bytesOf("f20", 20), size: 1n } } })),
    "node.file.digest",
    "root file digest of 20 bytes"
  )
  add(
    "node-symlink-target-empty",
    (m) => (m.node = create(NodeSchema, { node: { case: "symlink", value: { name: rootName(), target: new Uint8Array(0) } } })),
    "node.symlink.target",
    "root symlink with an empty target"
  )
  add(
    "node-symlink-target-nul",
    (m) => (m.node = create(NodeSchema, { node: { case: "symlink", value: { name: rootName(), target: utf8.encode("a\0b") } } })),
    "node.symlink.target",
    "root symlink target with NUL"
  )

  add("reference-digest-19", (m) => (m.references[0] = m.references[0].subarray(0, 19)), "references[0]", "references[0] of 19 bytes")
  add("reference-digest-32", (m) => (m.references[1] = bytesOf("r32", 32)), "references[1]", "references[1] of 32 bytes")
  add("reference-names-fewer", (m) => m.narinfo.referenceNames.pop(), "narinfo.reference_names", "one reference name for two references")
  add("reference-names-more", (m) => m.narinfo.referenceNames.push(`${storeHash("extra")}-extra`), "narinfo.reference_names", "three reference names for two references")
  add("reference-name-invalid", (m) => (m.narinfo.referenceNames[0] = "not a store path"), "narinfo.reference_names[0]", "reference name 'not a store path'")
  add(
    "reference-name-bad-char",
    (m) => (m.narinfo.referenceNames[0] = `${m.narinfo.referenceNames[0].slice(0, 33)}gl@bc`),
    "narinfo.reference_names[0]",
    "reference name with '@'"
  )
  add(
    "reference-name-digest-mismatch",
    (m) => ([m.narinfo.referenceNames[0], m.narinfo.referenceNames[1]] = [m.narinfo.referenceNames[1], m.narinfo.referenceNames[0]]),
    "narinfo.reference_names[0]",
    "reference names swapped: their digests disagree with references"
  )
  add(
    "reference-duplicate",
    (m) => {
      m.references[1] = m.references[0]
      m.narinfo.referenceNames[1] = m.narinfo.referenceNames[0]
      m.nixfxReferenceNodes = []
    },
    "references[1]",
    "the same reference twice"
  )
  add("reference-node-unknown-name", (m) => (m.nixfxReferenceNodes[0].node.value.name = utf8.encode(`${storeHash("stranger")}-stranger`)), "nixfx_reference_nodes[0].file.name", "a reference node for no listed reference")
  add("reference-node-twice", (m) => m.nixfxReferenceNodes.push(m.nixfxReferenceNodes[0]), "nixfx_reference_nodes[1].file.name", "two nodes for the same reference")
  add("reference-node-digest-1", (m) => (m.nixfxReferenceNodes[0].node.value.digest = new Uint8Array(1)), "nixfx_reference_nodes[0].file.digest", "a reference node digest of 1 byte")

  add("nar-size-2^63", (m) => (m.narinfo.narSize = 2n ** 63n), "narinfo.nar_size", "nar_size 2^63")
  add("nar-size-2^64-1", (m) => (m.narinfo.narSize = 2n ** 64n - 1n), "narinfo.nar_size", "nar_size 2^64-1")
  add("nar-sha256-31", (m) => (m.narinfo.narSha256 = bytesOf("n31", 31)), "narinfo.nar_sha256", "nar_sha256 of 31 bytes")
  add("nar-sha256-20", (m) => (m.narinfo.narSha256 = bytesOf("n20", 20)), "narinfo.nar_sha256", "nar_sha256 of 20 bytes (a sha1)")
  add("nar-sha256-empty", (m) => (m.narinfo.narSha256 = new Uint8Array(0)), "narinfo.nar_sha256", "nar_sha256 missing")
  add("nar-sha256-64", (m) => (m.narinfo.narSha256 = bytesOf("n64", 64)), "narinfo.nar_sha256", "nar_sha256 of 64 bytes")

  add("signature-name-empty", (m) => (m.narinfo.signatures[0].name = ""), "narinfo.signatures[0].name", "a signature with an empty key name")
  add("signature-name-space", (m) => (m.narinfo.signatures[0].name = "cache key"), "narinfo.signatures[0].name", "a key name with a space")
  add("signature-name-colon", (m) => (m.narinfo.signatures[0].name = "cache:1"), "narinfo.signatures[0].name", "a key name with ':'")
  add("signature-data-63", (m) => (m.narinfo.signatures[0].data = bytesOf("s63", 63)), "narinfo.signatures[0].data", "a 63-byte signature")
  add("signature-data-empty", (m) => (m.narinfo.signatures[0].data = new Uint8Array(0)), "narinfo.signatures[0].data", "an empty signature")
  add(
    "signature-second-bad",
    (m) => m.narinfo.signatures.push(create(NARInfo_SignatureSchema, { name: "k2", data: bytesOf("s65", 65) })),
    "narinfo.signatures[1].data",
    "a good signature then a 65-byte one"
  )

  add("deriver-digest-19", (m) => (m.narinfo.deriver.digest = bytesOf("drv19", 19)), "narinfo.deriver.digest", "deriver digest of 19 bytes")
  add("deriver-name-slash", (m) => (m.narinfo.deriver.name = "a/b"), "narinfo.deriver.name", "deriver name with '/'")
  add("deriver-name-empty", (m) => (m.narinfo.deriver.name = ""), "narinfo.deriver.name", "deriver name empty ('.drv' alone)")

  add("ca-type-unknown", (m) => (m.narinfo.ca.type = 99), "narinfo.ca.type", "CA hash type 99")
  add("ca-digest-short", (m) => (m.narinfo.ca.digest = bytesOf("ca20", 20)), "narinfo.ca.digest", "a NAR_SHA256 CA with a 20-byte digest")
  add("ca-other-than-nar-hash", (m) => (m.narinfo.ca.digest = bytesOf("proto/ca", 32)), "narinfo.ca", "a NAR_SHA256 CA that is not the NAR's sha256")
  add(
    "ca-digest-md5-long",
    (m) => (m.narinfo.ca = create(NARInfo_CASchema, { type: NARInfo_CA_Hash.FLAT_MD5, digest: bytesOf("ca32", 32) })),
    "narinfo.ca.digest",
    "a FLAT_MD5 CA with a 32-byte digest"
  )

  const valid = toBinary(PathInfoSchema, create(PathInfoSchema, protoBase()))
  rawCase("malformed-truncated", valid.subarray(0, valid.length - 7), "the valid message cut 7 bytes short")
  rawCase("malformed-bad-wire-type", concat([new Uint8Array([0x0f]), valid]), "a field with wire type 7")
  rawCase("malformed-length-overflow", new Uint8Array([0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]), "narinfo declaring 4 GiB")
  rawCase("malformed-varint-11-bytes", new Uint8Array([0x08, ...new Array(10).fill(0xff), 0x01]), "a varint of 11 bytes")
  return cases
}
const rootName = () => utf8.encode(`${storeHash("proto-root")}-app-1.0`)

// ---------------------------------------------------------------------------
// compressed NARs
// ---------------------------------------------------------------------------

/** The framing of a NAR holding one regular file of `size` zero bytes, without the zeros. */
const zeroFileNar = (size) => ({
  head: wire(nar("(", "type", "regular", "contents", { u64: size })),
  tail: wire([")"])
})

/** Feeds `total` bytes (head, zeros, tail) through a Node transform and collects its output. */
const compressStream = (transform, head, zeros, tail) =>
  new Promise((resolve, reject) => {
    const out = []
    transform.on("data", (d) => out.push(d))
    transform.on("error", reject)
    transform.on("end", () => resolve(new Uint8Array(Buffer.concat(out))))
    const chunk = Buffer.alloc(MiB)
    let left = zeros
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length)
        left -= n
        if (!transform.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          transform.once("drain", pump)
          return
        }
      }
      transform.end(tail)
    }
    transform.write(head)
    pump()
  })

const compressedCases = async ({ bombs }) => {
  const cases = []
  const small = wire(sampleParts)
  const lzma = require("lzma-native")
  const zstd = require("zstd-napi")
  const xz = (bytes) => lzma.compress(Buffer.from(bytes), { preset: 6, threads: 1 })
  const add = (name, ext, bytes, compression, narSize, expect, description, extra = {}) =>
    cases.push({ id: `compressed/${name}`, kind: "compressed", ext, bytes, compression, narSize, expect, description, ...extra })

  const xzSmall = new Uint8Array(await xz(small))
  add("xz-truncated", "nar.xz", xzSmall.subarray(0, xzSmall.length - 20), "xz", small.length, { tag: "NarDecompressionError" }, "a valid NAR's xz file cut 20 bytes short")
  const corrupted = xzSmall.slice()
  corrupted[Math.floor(corrupted.length / 2)] ^= 0x55
  add("xz-corrupt", "nar.xz", corrupted, "xz", small.length, { tag: "NarDecompressionError" }, "a valid NAR's xz file with a byte flipped in the middle")
  add("zstd-garbage", "nar.zst", bytesOf("zstd-garbage", 256), "zstd", small.length, { tag: "NarDecompressionError" }, "256 bytes of noise served as zstd")
  add("gzip-garbage", "nar.gz", bytesOf("gzip-garbage", 256), "gzip", small.length, { tag: "NarDecompressionError" }, "256 bytes of noise served as gzip")
  const zstdSmall = new Uint8Array(zstd.compress(Buffer.from(small), { compressionLevel: 3 }))
  add("zstd-truncated", "nar.zst", zstdSmall.subarray(0, zstdSmall.length - 5), "zstd", small.length, { tag: "NarDecompressionError" }, "a valid NAR's zstd file cut 5 bytes short")
  add(
    "xz-longer-than-narsize",
    "nar.xz",
    xzSmall,
    "xz",
    small.length - 8,
    { tag: "NarSizeMismatch", atLeast: true },
    "a valid NAR, NarSize claims 8 bytes fewer"
  )

  if (bombs) {
    // A NAR of one file of 1 GiB of zeros, claimed to be 1 MiB.
    const { head, tail } = zeroFileNar(GiB)
    const expandsTo = head.length + GiB + tail.length
    const bomb = { narSize: MiB, expandsTo }
    const xzBomb = await compressStream(lzma.createCompressor({ preset: 6, threads: 1 }), head, GiB, tail)
    add("bomb-xz-1GiB", "nar.xz", xzBomb, "xz", bomb.narSize, { tag: "NarSizeMismatch", atLeast: true }, "1 GiB of NAR in xz, NarSize 1 MiB", { expandsTo })
    const zstdBomb = await compressStream(new zstd.CompressStream({ compressionLevel: 19 }), head, GiB, tail)
    add("bomb-zstd-1GiB", "nar.zst", zstdBomb, "zstd", bomb.narSize, { tag: "NarSizeMismatch", atLeast: true }, "1 GiB of NAR in zstd, NarSize 1 MiB", { expandsTo })
    const brBomb = await compressStream(
      Zlib.createBrotliCompress({ params: { [Zlib.constants.BROTLI_PARAM_QUALITY]: 5, [Zlib.constants.BROTLI_PARAM_LGWIN]: 24 } }),
      head,
      GiB,
      tail
    )
    add("bomb-br-1GiB", "nar.br", brBomb, "br", bomb.narSize, { tag: "NarSizeMismatch", atLeast: true }, "1 GiB of NAR in brotli, NarSize 1 MiB", { expandsTo })
    // gzip tops out near 1:1000, so a smaller one keeps the corpus small.
    const gzExpands = head.length + 64 * MiB + tail.length
    const { head: gzHead, tail: gzTail } = zeroFileNar(64 * MiB)
    const gzBomb = await compressStream(Zlib.createGzip({ level: 9 }), gzHead, 64 * MiB, gzTail)
    add("bomb-gzip-64MiB", "nar.gz", gzBomb, "gzip", bomb.narSize, { tag: "NarSizeMismatch", atLeast: true }, "64 MiB of NAR in gzip, NarSize 1 MiB", { expandsTo: gzExpands })
  }
  return cases
}

// ---------------------------------------------------------------------------
// the corpus
// ---------------------------------------------------------------------------

/**
 * Every case, in manifest order, with its bytes. `bombs: false` leaves out the
 * compression bombs (slow to build).
 */
export const buildCases = async ({ bombs = true } = {}) => [
  ...narCases(),
  ...narinfoCases(),
  ...protoCases(),
  ...(await compressedCases({ bombs }))
]

/** The manifest entry of a case (what test/hostile/manifest.json holds). */
export const manifestEntry = (c) => {
  const { bytes, ext, ...rest } = c
  return {
    ...rest,
    file: c.atTestTime ? null : `${c.id}.${ext}`,
    size: bytes.length,
    sha256: Buffer.from(sha256Of(bytes)).toString("hex")
  }
}

export const trustedPublicKey = trustedKey.publicKey

export const writeCorpus = async (outDir) => {
  const cases = await buildCases({ bombs: true })
  Fs.rmSync(outDir, { recursive: true, force: true })
  for (const c of cases) {
    if (c.atTestTime) continue
    const file = Path.join(outDir, `${c.id}.${c.ext}`)
    Fs.mkdirSync(Path.dirname(file), { recursive: true })
    Fs.writeFileSync(file, c.bytes)
  }
  const manifest = {
    description: "Hostile inputs for nixfx decoders and services; generated by scripts/generate-hostile-corpus.js (do not edit by hand).",
    trustedPublicKey,
    storeDir,
    cases: cases.map(manifestEntry)
  }
  Fs.writeFileSync(Path.join(outDir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n")
  return cases
}

if (process.argv[1] !== undefined && Path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = Path.resolve(process.argv[2] ?? Path.join(root, "test/hostile"))
  const cases = await writeCorpus(outDir)
  const byKind = {}
  let bytes = 0
  for (const c of cases) {
    byKind[c.kind] = (byKind[c.kind] ?? 0) + 1
    if (!c.atTestTime) bytes += c.bytes.length
  }
  console.log(`${cases.length} cases in ${outDir} (${bytes} bytes committed):`, byKind)
}
