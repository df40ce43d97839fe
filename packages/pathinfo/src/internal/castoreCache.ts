/**
 * Read-through castore services for the `cache` store type: reads try `near`
 * then `far`, every write goes to `near`. Content addressing makes this always
 * correct (a digest names one content wherever it is found). Any operation the
 * castore services grow later is taken from `near` (the spread below).
 */
import type * as BlobService from "@nixfx/castore/BlobService"
import type * as DirectoryService from "@nixfx/castore/DirectoryService"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

export const blobCache = (near: BlobService.Service, far: BlobService.Service): BlobService.Service =>
  near === far ? near : {
    ...near,
    has: (digest) => Effect.flatMap(near.has(digest), (found) => (found ? Effect.succeed(true) : far.has(digest))),
    size: (digest) =>
      Effect.flatMap(near.size(digest), (size) => (Option.isSome(size) ? Effect.succeed(size) : far.size(digest))),
    read: (digest, range) =>
      Effect.flatMap(near.read(digest, range), (stream) =>
        Option.isSome(stream) ? Effect.succeed(stream) : far.read(digest, range))
  }

export const directoryCache = (
  near: DirectoryService.Service,
  far: DirectoryService.Service
): DirectoryService.Service =>
  near === far ? near : {
    ...near,
    get: (digest) =>
      Effect.flatMap(near.get(digest), (dir) => (Option.isSome(dir) ? Effect.succeed(dir) : far.get(digest))),
    // A closure is stored whole (putters validate it), so the store that
    // holds the root holds everything below it.
    getRecursive: (root) =>
      Stream.unwrap(Effect.map(near.get(root), (dir) => (Option.isSome(dir) ? near.getRecursive(root) : far.getRecursive(root))))
  }
