/**
 * The NAR (Nix ARchive) wire format: a streaming reader and a streaming writer.
 *
 * The core is synchronous and allocation-light:
 *
 * - {@link Parser} is a push parser: feed it byte chunks with `push`, finish
 *   with `end`; it calls a {@link Handler} for every event, validating the
 *   archive as it goes (magic, token structure, zero padding, declared
 *   lengths, entry names and their order, nesting depth, trailing data,
 *   truncation). File contents are passed on as subarrays of the input chunks,
 *   never buffered.
 * - {@link Writer} is a {@link Handler}: give it events and it emits NAR
 *   bytes in chunks, validating the event sequence the same way.
 *
 * Around them, {@link events} turns a byte `Stream` into a `Stream` of
 * {@link Event}s (one output `Chunk` of events per input chunk, so an
 * effectful consumer can process a whole batch with one `Effect`), and
 * {@link encode} turns events back into bytes. {@link encodeTree} and
 * {@link decodeTree} convert small in-memory archives.
 *
 * @since 0.1.0
 */
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import { NarError } from "./internal/narError.js"
import { ParserImpl } from "./internal/narParser.js"
import { DEFAULT_MAX_DEPTH, MAX_NAME_LENGTH, MAX_TARGET_LENGTH } from "./internal/narWire.js"
import { WriterImpl } from "./internal/narWriter.js"

/**
 * `NarError`: a NAR could not be read, or an event sequence could not be
 * written. `reason` ({@link NarErrorReason}) says which rule was broken,
 * `offset` is the byte offset (in the input for the reader, in the output for
 * the writer), `detail` describes it; `message` is
 * `"NAR offset <offset>: <detail>"`.
 *
 * @since 0.1.0
 * @category errors
 */
export { isNarError, NarError, type NarErrorReason } from "./internal/narError.js"

/**
 * Limits: `MAX_NAME_LENGTH` (255 bytes per entry name), `MAX_TARGET_LENGTH`
 * (4095 bytes per symlink target), `DEFAULT_MAX_DEPTH` (256 nested directories).
 *
 * @since 0.1.0
 */
export { DEFAULT_MAX_DEPTH, MAX_NAME_LENGTH, MAX_TARGET_LENGTH }

/**
 * Receives the events of a NAR, in archive order:
 *
 * - the root node, then for a directory `directoryStart`, for each entry
 *   `entry(name)` followed by the events of the entry's node, then
 *   `directoryEnd`;
 * - a regular file is `fileStart(executable, size)`, zero or more
 *   `fileChunk(bytes)` whose lengths add up to `size`, then `fileEnd`;
 * - a symlink is one `symlink(target)` event.
 *
 * Names and targets are fresh copies the handler may keep. File chunks are
 * views into the parser's input: valid as long as the caller of `push` does not
 * reuse the input buffer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Handler {
  directoryStart(): void
  entry(name: Uint8Array): void
  directoryEnd(): void
  fileStart(executable: boolean, size: number): void
  fileChunk(chunk: Uint8Array): void
  fileEnd(): void
  symlink(target: Uint8Array): void
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ParserOptions {
  /** Most directories that may be nested (the root directory counts as 1). Default 256. */
  readonly maxDepth?: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface WriterOptions {
  /** Size of the output chunks the writer assembles (at least 8 KiB). Default 64 KiB. */
  readonly chunkSize?: number
  /** Most directories that may be nested (the root directory counts as 1). Default 256. */
  readonly maxDepth?: number
}

/**
 * Synchronous NAR push parser.
 *
 * `push(chunk)` consumes a chunk (any size, any split) and calls the handler
 * for every event it completes; `end()` declares the input finished. Both throw
 * {@link NarError} when the archive is invalid (also `end()` when it is
 * incomplete) and rethrow whatever the handler throws. After a throw the parser
 * is spent: every further call throws the same error.
 *
 * @since 0.1.0
 * @category parsing
 */
export interface Parser {
  push(chunk: Uint8Array): void
  end(): void
  /** Bytes consumed so far. */
  readonly offset: number
  /** Whether the root node is complete (more input would be trailing data). */
  readonly done: boolean
}

/**
 * @since 0.1.0
 * @category parsing
 */
export const makeParser = (handler: Handler, options?: ParserOptions): Parser => new ParserImpl(handler, options)

/**
 * Streaming NAR writer: a {@link Handler} that emits NAR bytes through `emit`.
 *
 * Framing is collected into chunks of about `chunkSize` bytes; file chunks of at
 * least a quarter of that are emitted as they are (not copied). Emitted chunks
 * belong to the receiver. Each event method throws {@link NarError} when the
 * event is not allowed (wrong order, invalid or unsorted name, contents longer
 * or shorter than announced, …). `end()` checks the archive is complete and
 * emits the buffered rest.
 *
 * @since 0.1.0
 * @category writing
 */
export interface Writer extends Handler {
  /** Emits the buffered bytes now. */
  flush(): void
  end(): void
  /** Bytes written so far (emitted or buffered). */
  readonly offset: number
  /** Whether the root node is complete. */
  readonly done: boolean
}

/**
 * @since 0.1.0
 * @category writing
 */
export const makeWriter = (emit: (chunk: Uint8Array) => void, options?: WriterOptions): Writer =>
  new WriterImpl(emit, options)

// ---------------------------------------------------------------------------
// Events as values
// ---------------------------------------------------------------------------

/**
 * The {@link Handler} calls as values.
 *
 * @since 0.1.0
 * @category models
 */
export type Event =
  | DirectoryStart
  | Entry
  | DirectoryEnd
  | FileStart
  | FileChunk
  | FileEnd
  | Symlink

/** @since 0.1.0 @category models */
export interface DirectoryStart {
  readonly _tag: "DirectoryStart"
}
/** @since 0.1.0 @category models */
export interface Entry {
  readonly _tag: "Entry"
  readonly name: Uint8Array
}
/** @since 0.1.0 @category models */
export interface DirectoryEnd {
  readonly _tag: "DirectoryEnd"
}
/** @since 0.1.0 @category models */
export interface FileStart {
  readonly _tag: "FileStart"
  readonly executable: boolean
  readonly size: number
}
/** @since 0.1.0 @category models */
export interface FileChunk {
  readonly _tag: "FileChunk"
  readonly chunk: Uint8Array
}
/** @since 0.1.0 @category models */
export interface FileEnd {
  readonly _tag: "FileEnd"
}
/** @since 0.1.0 @category models */
export interface Symlink {
  readonly _tag: "Symlink"
  readonly target: Uint8Array
}

/** @since 0.1.0 @category constructors */
export const directoryStart: DirectoryStart = Object.freeze({ _tag: "DirectoryStart" })
/** @since 0.1.0 @category constructors */
export const directoryEnd: DirectoryEnd = Object.freeze({ _tag: "DirectoryEnd" })
/** @since 0.1.0 @category constructors */
export const fileEnd: FileEnd = Object.freeze({ _tag: "FileEnd" })
/** @since 0.1.0 @category constructors */
export const entry = (name: Uint8Array): Entry => ({ _tag: "Entry", name })
/** @since 0.1.0 @category constructors */
export const fileStart = (executable: boolean, size: number): FileStart => ({ _tag: "FileStart", executable, size })
/** @since 0.1.0 @category constructors */
export const fileChunk = (chunk: Uint8Array): FileChunk => ({ _tag: "FileChunk", chunk })
/** @since 0.1.0 @category constructors */
export const symlink = (target: Uint8Array): Symlink => ({ _tag: "Symlink", target })

/**
 * Calls the handler method that corresponds to an event.
 *
 * @since 0.1.0
 * @category utils
 */
export const dispatch = (event: Event, handler: Handler): void => {
  switch (event._tag) {
    case "DirectoryStart":
      return handler.directoryStart()
    case "Entry":
      return handler.entry(event.name)
    case "DirectoryEnd":
      return handler.directoryEnd()
    case "FileStart":
      return handler.fileStart(event.executable, event.size)
    case "FileChunk":
      return handler.fileChunk(event.chunk)
    case "FileEnd":
      return handler.fileEnd()
    case "Symlink":
      return handler.symlink(event.target)
  }
}

/**
 * A handler that records events into an array; `take()` returns and clears it.
 *
 * @since 0.1.0
 * @category utils
 */
export class EventCollector implements Handler {
  private events: Array<Event> = []
  take(): Array<Event> {
    const out = this.events
    this.events = []
    return out
  }
  directoryStart(): void {
    this.events.push(directoryStart)
  }
  entry(name: Uint8Array): void {
    this.events.push({ _tag: "Entry", name })
  }
  directoryEnd(): void {
    this.events.push(directoryEnd)
  }
  fileStart(executable: boolean, size: number): void {
    this.events.push({ _tag: "FileStart", executable, size })
  }
  fileChunk(chunk: Uint8Array): void {
    this.events.push({ _tag: "FileChunk", chunk })
  }
  fileEnd(): void {
    this.events.push(fileEnd)
  }
  symlink(target: Uint8Array): void {
    this.events.push({ _tag: "Symlink", target })
  }
}

// ---------------------------------------------------------------------------
// Stream adapters
// ---------------------------------------------------------------------------

const rethrowUnlessNarError = (e: unknown): NarError => {
  if (e instanceof NarError) return e
  throw e
}

/**
 * Reads a NAR byte stream into a stream of events. Each input `Chunk` yields
 * one output `Chunk` holding every event it completed, so consumers that run
 * an `Effect` per batch (`Stream.runForEachChunk`, `Stream.mapChunksEffect`)
 * pay that cost per input chunk, not per event. Fails with {@link NarError}
 * when the archive is invalid or incomplete.
 *
 * @since 0.1.0
 * @category parsing
 */
export const events = <E, R>(
  bytes: Stream.Stream<Uint8Array, E, R>,
  options?: ParserOptions
): Stream.Stream<Event, E | NarError, R> =>
  Stream.suspend(() => {
    const collector = new EventCollector()
    const parser = new ParserImpl(collector, options)
    const loop: Channel.Channel<
      Chunk.Chunk<Event>,
      Chunk.Chunk<Uint8Array>,
      E | NarError,
      E,
      unknown,
      unknown
    > = Channel.readWithCause({
      onInput: (input: Chunk.Chunk<Uint8Array>) => {
        try {
          for (const c of input) parser.push(c)
        } catch (e) {
          const err = rethrowUnlessNarError(e)
          const partial = collector.take()
          return partial.length === 0
            ? Channel.fail(err)
            : Channel.zipRight(Channel.write(Chunk.unsafeFromArray(partial)), Channel.fail(err))
        }
        const out = collector.take()
        return out.length === 0 ? loop : Channel.zipRight(Channel.write(Chunk.unsafeFromArray(out)), loop)
      },
      onFailure: (cause) => Channel.failCause(cause),
      onDone: () => {
        try {
          parser.end()
        } catch (e) {
          return Channel.fail(rethrowUnlessNarError(e))
        }
        return Channel.void
      }
    })
    return Stream.pipeThroughChannel(bytes, loop)
  })

/**
 * Writes a stream of events as NAR bytes, in chunks of about
 * `options.chunkSize` (large file chunks pass through uncopied). Fails with
 * {@link NarError} when the events do not form a valid archive.
 *
 * @since 0.1.0
 * @category writing
 */
export const encode = <E, R>(
  events: Stream.Stream<Event, E, R>,
  options?: WriterOptions
): Stream.Stream<Uint8Array, E | NarError, R> =>
  Stream.suspend(() => {
    let out: Array<Uint8Array> = []
    const writer = new WriterImpl((c) => out.push(c), options)
    const take = (): Array<Uint8Array> => {
      const o = out
      out = []
      return o
    }
    const loop: Channel.Channel<
      Chunk.Chunk<Uint8Array>,
      Chunk.Chunk<Event>,
      E | NarError,
      E,
      unknown,
      unknown
    > = Channel.readWithCause({
      onInput: (input: Chunk.Chunk<Event>) => {
        try {
          for (const ev of input) dispatch(ev, writer)
        } catch (e) {
          return Channel.fail(rethrowUnlessNarError(e))
        }
        const o = take()
        return o.length === 0 ? loop : Channel.zipRight(Channel.write(Chunk.unsafeFromArray(o)), loop)
      },
      onFailure: (cause) => Channel.failCause(cause),
      onDone: () => {
        try {
          writer.end()
        } catch (e) {
          return Channel.fail(rethrowUnlessNarError(e))
        }
        const o = take()
        return o.length === 0 ? Channel.void : Channel.write(Chunk.unsafeFromArray(o))
      }
    })
    return Stream.pipeThroughChannel(events, loop)
  })

// ---------------------------------------------------------------------------
// In-memory trees
// ---------------------------------------------------------------------------

/**
 * A whole archive in memory, for small NARs and tests.
 *
 * @since 0.1.0
 * @category models
 */
export type Tree = TreeDirectory | TreeFile | TreeSymlink

/** @since 0.1.0 @category models */
export interface TreeDirectory {
  readonly _tag: "Directory"
  /** Sorted by name bytes, unique. */
  readonly entries: ReadonlyArray<TreeEntry>
}
/** @since 0.1.0 @category models */
export interface TreeEntry {
  readonly name: Uint8Array
  readonly node: Tree
}
/** @since 0.1.0 @category models */
export interface TreeFile {
  readonly _tag: "File"
  readonly executable: boolean
  readonly contents: Uint8Array
}
/** @since 0.1.0 @category models */
export interface TreeSymlink {
  readonly _tag: "Symlink"
  readonly target: Uint8Array
}

/**
 * Replays a tree as handler events (depth first, in entry order).
 *
 * @since 0.1.0
 * @category utils
 */
export const walkTree = (tree: Tree, handler: Handler): void => {
  switch (tree._tag) {
    case "File":
      handler.fileStart(tree.executable, tree.contents.length)
      if (tree.contents.length > 0) handler.fileChunk(tree.contents)
      return handler.fileEnd()
    case "Symlink":
      return handler.symlink(tree.target)
    case "Directory":
      handler.directoryStart()
      for (const e of tree.entries) {
        handler.entry(e.name)
        walkTree(e.node, handler)
      }
      return handler.directoryEnd()
  }
}

const concat = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => {
  let total = 0
  for (const c of chunks) total += c.length
  const out = new Uint8Array(total)
  let p = 0
  for (const c of chunks) {
    out.set(c, p)
    p += c.length
  }
  return out
}

/**
 * Encodes a tree as one NAR byte array. Fails when a name or target is invalid
 * or entries are not sorted.
 *
 * @since 0.1.0
 * @category writing
 */
export const encodeTree = (tree: Tree, options?: WriterOptions): Either.Either<Uint8Array, NarError> => {
  const chunks: Array<Uint8Array> = []
  const writer = new WriterImpl((c) => chunks.push(c), options)
  try {
    walkTree(tree, writer)
    writer.end()
  } catch (e) {
    return Either.left(rethrowUnlessNarError(e))
  }
  return Either.right(concat(chunks))
}

class TreeBuilder implements Handler {
  root: Tree | undefined = undefined
  private readonly stack: Array<{ entries: Array<TreeEntry>; name: Uint8Array | undefined }> = []
  private name: Uint8Array | undefined = undefined
  private executable = false
  private chunks: Array<Uint8Array> = []

  private place(node: Tree): void {
    const top = this.stack[this.stack.length - 1]
    if (top === undefined) {
      this.root = node
    } else {
      top.entries.push({ name: this.name!, node })
    }
  }
  directoryStart(): void {
    this.stack.push({ entries: [], name: this.name })
  }
  entry(name: Uint8Array): void {
    this.name = name
  }
  directoryEnd(): void {
    const dir = this.stack.pop()!
    this.name = dir.name
    this.place({ _tag: "Directory", entries: dir.entries })
  }
  fileStart(executable: boolean): void {
    this.executable = executable
    this.chunks = []
  }
  fileChunk(chunk: Uint8Array): void {
    this.chunks.push(chunk)
  }
  fileEnd(): void {
    this.place({ _tag: "File", executable: this.executable, contents: concat(this.chunks) })
  }
  symlink(target: Uint8Array): void {
    this.place({ _tag: "Symlink", target })
  }
}

/**
 * Decodes a whole NAR held in memory (or given as a sequence of chunks) into
 * a tree. File contents are copied.
 *
 * @since 0.1.0
 * @category parsing
 */
export const decodeTree = (
  nar: Uint8Array | Iterable<Uint8Array>,
  options?: ParserOptions
): Either.Either<Tree, NarError> => {
  const builder = new TreeBuilder()
  const parser = new ParserImpl(builder, options)
  try {
    if (nar instanceof Uint8Array) {
      parser.push(nar)
    } else {
      for (const c of nar) parser.push(c)
    }
    parser.end()
  } catch (e) {
    return Either.left(rethrowUnlessNarError(e))
  }
  return Either.right(builder.root!)
}
