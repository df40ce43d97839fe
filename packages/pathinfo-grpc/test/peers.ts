/**
 * gRPC peers that are not ours: grpc-js with @grpc/proto-loader loading the
 * package's .proto files (protobufjs does the encoding, not protobuf-es), as
 * clients and as servers. "tvix-like" peers load the files without the nixfx
 * extension fields, as a tvix or snix peer knows them.
 */
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import * as Node from "@nixfx/castore-nodes/Node"
import * as StorePath from "@nixfx/nix-compat/StorePath"
import type * as PathInfo from "@nixfx/pathinfo/PathInfo"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export const protoRoot = fileURLToPath(new URL("../proto/", import.meta.url))

/** A copy of the proto tree without any line mentioning a nixfx extension field. */
const strippedRoot = (() => {
  let dir: string | undefined
  return (): string => {
    if (dir !== undefined) return dir
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "nixfx-grpc-protos-"))
    const copy = (from: string, to: string) => {
      for (const e of fs.readdirSync(from, { withFileTypes: true })) {
        const src = path.join(from, e.name)
        const dst = path.join(to, e.name)
        if (e.isDirectory()) {
          fs.mkdirSync(dst, { recursive: true })
          copy(src, dst)
        } else {
          const text = fs.readFileSync(src, "utf8").split("\n").filter((l) => !/nixfx_/.test(l)).join("\n")
          fs.writeFileSync(dst, text)
        }
      }
    }
    copy(protoRoot, out)
    return dir = out
  }
})()

// The loaded objects are untyped by nature (proto-loader builds them at run time).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Loaded = any

/** The three services of `pkg`, as a foreign peer loads them. */
export const loadPackage = (pkg: "tvix" | "snix", options: { readonly extensions: boolean }): Loaded => {
  const definition = protoLoader.loadSync(
    [
      `${pkg}/store/protos/rpc_pathinfo.proto`,
      `${pkg}/castore/protos/rpc_blobstore.proto`,
      `${pkg}/castore/protos/rpc_directory.proto`
    ],
    {
      includeDirs: [options.extensions ? protoRoot : strippedRoot()],
      keepCase: true,
      longs: Number,
      defaults: true,
      oneofs: true
    }
  )
  return (grpc.loadPackageDefinition(definition) as Loaded)[pkg]
}

/** A unary call on a proto-loader client, as a promise. */
export const callUnary = (client: Loaded, method: string, request: unknown, options: grpc.CallOptions = {}): Promise<Loaded> =>
  new Promise((resolve, reject) =>
    client[method](request, new grpc.Metadata(), options, (error: grpc.ServiceError | null, response: Loaded) =>
      error === null ? resolve(response) : reject(error)
    )
  )

/** All messages of a server-streaming call. */
export const callServerStream = (client: Loaded, method: string, request: unknown): Promise<Array<Loaded>> =>
  new Promise((resolve, reject) => {
    const out: Array<Loaded> = []
    const call = client[method](request)
    call.on("data", (m: Loaded) => out.push(m))
    call.on("error", reject)
    call.on("end", () => resolve(out))
  })

/** A client-streaming call sending `messages`. */
export const callClientStream = (client: Loaded, method: string, messages: ReadonlyArray<unknown>): Promise<Loaded> =>
  new Promise((resolve, reject) => {
    const call = client[method]((error: grpc.ServiceError | null, response: Loaded) =>
      error === null ? resolve(response) : reject(error)
    )
    for (const m of messages) call.write(m)
    call.end()
  })

/** Starts a grpc-js server on 127.0.0.1 (OS-chosen port) with the given services. */
export const startServer = async (
  services: ReadonlyArray<readonly [grpc.ServiceDefinition, grpc.UntypedServiceImplementation]>
): Promise<{ readonly server: grpc.Server; readonly port: number }> => {
  const server = new grpc.Server()
  for (const [definition, implementation] of services) server.addService(definition, implementation)
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e === null ? resolve(p) : reject(e)))
  )
  return { server, port }
}

export const stopServer = (server: grpc.Server): Promise<void> =>
  new Promise((resolve) => server.tryShutdown(() => resolve()))

// ---------------------------------------------------------------------------
// plain messages, written independently of ProtoConversion
// ---------------------------------------------------------------------------

const utf8 = (s: string) => Buffer.from(s, "utf8")

/** A castore node as a proto-loader object (`name` bytes). */
export const plainNode = (node: Node.Node, name: string): Loaded => {
  switch (node._tag) {
    case "Directory":
      return { directory: { name: utf8(name), digest: Buffer.from(node.digest), size: node.size } }
    case "File":
      return { file: { name: utf8(name), digest: Buffer.from(node.digest), size: node.size, executable: node.executable } }
    case "Symlink":
      return { symlink: { name: utf8(name), target: utf8(node.target) } }
  }
}

const caTypes: Record<string, number> = {
  "Nar:sha256": 0,
  "Nar:sha1": 1,
  "Nar:sha512": 2,
  "Nar:md5": 3,
  "Text:sha256": 4,
  "Flat:sha1": 5,
  "Flat:md5": 6,
  "Flat:sha256": 7,
  "Flat:sha512": 8
}

/**
 * A PathInfo as a proto-loader object. `rootField` is `node` (tvix) or
 * `entry` (snix); reference nodes go in the extension unless `extensions` is
 * false.
 */
export const plainPathInfo = (
  p: PathInfo.PathInfo,
  options: { readonly rootField: "node" | "entry"; readonly extensions: boolean }
): Loaded => {
  const refs = p.references
  const message: Loaded = {
    [options.rootField]: plainNode(p.node, StorePath.toBasename(p.storePath)),
    references: refs.map((r) => Buffer.from(r.storePath.digest)),
    narinfo: {
      nar_size: p.narSize,
      nar_sha256: Buffer.from(p.narSha256),
      signatures: p.signatures.map((s) => ({ name: s.keyName, data: Buffer.from(s.bytes) })),
      reference_names: refs.map((r) => StorePath.toBasename(r.storePath)),
      ...(Option.isSome(p.deriver)
        ? { deriver: { name: p.deriver.value.name.replace(/\.drv$/, ""), digest: Buffer.from(p.deriver.value.digest) } }
        : {}),
      ...(Option.isSome(p.ca)
        ? { ca: { type: caTypes[`${p.ca.value._tag}:${p.ca.value.hash.algorithm}`], digest: Buffer.from(p.ca.value.hash.digest) } }
        : {})
    }
  }
  if (options.extensions) {
    message.nixfx_reference_nodes = refs.flatMap((r) =>
      Option.isSome(r.node) ? [plainNode(r.node.value, StorePath.toBasename(r.storePath))] : []
    )
  }
  return message
}
