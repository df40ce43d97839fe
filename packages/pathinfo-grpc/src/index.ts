/**
 * @nixfx/pathinfo-grpc
 *
 * @since 0.1.0
 */

/** gRPC status codes, the status error and the server start error. */
export * as GrpcError from "./GrpcError.js"

/** Proto messages ↔ strict types; `ProtoDecodeError` names the rejected field. */
export * as ProtoConversion from "./ProtoConversion.js"

/** A server for any PathInfoService, BlobService and DirectoryService, both package names. */
export * as GrpcServer from "./GrpcServer.js"

/** Client layers for PathInfoService, BlobService and DirectoryService from grpc+http(s)/grpc+unix URLs. */
export * as GrpcClient from "./GrpcClient.js"
