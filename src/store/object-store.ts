/** Object kinds, role interfaces for reading and writing objects (restic-style narrow interfaces), stored-value codec. */
import type { Decompressor } from 'zstd-napi';
import zstd from 'zstd-napi/binding.js';
import { zstdStreams } from '../lazy.js';
import { OID_BYTES, type Oid } from '../model/oid.js';
import type { BlobPrefetcher, ChunkPrefetcher } from './prefetch.js';

/** Frozen: the first key byte of every object in the `objects` database. */
export const OBJECT_KINDS = { chunk: 1, blob: 2, tree: 3, commit: 4, disk: 5 } as const;
export type ObjectKind = keyof typeof OBJECT_KINDS;
export const KIND_BY_CODE = Object.fromEntries(Object.entries(OBJECT_KINDS).map(([k, v]) => [v, k])) as Record<number, ObjectKind>;

/** Frozen: the first byte of every stored value. */
export const CODEC_RAW = 0;
export const CODEC_ZSTD = 1;

/** Level 4: on the Debian corpus 1 % smaller than level 3 (410 vs 414 MB for four images) for ~15 % more compression CPU. */
export const DEFAULT_ZSTD_LEVEL = 4;
/** Values below this many bytes are not worth a compression attempt. */
export const MIN_COMPRESS_SIZE = 64;

export interface ObjectReader {
  hasObject(kind: ObjectKind, oid: Oid): boolean;
  /**
   * Decoded (decompressed) bytes, checked against `oid` (except blob records: see readBlobPieces); throws
   * ObjectNotFoundError, or RepositoryCorruptError when the bytes do not match their id.
   */
  readObject(kind: ObjectKind, oid: Oid): Buffer;
  /** Decoded bytes or undefined when missing; like readObject, checked against the id. */
  tryReadObject(kind: ObjectKind, oid: Oid): Buffer | undefined;
  /**
   * Decoded bytes without the check against the id, for readers that check a larger whole themselves (a blob's
   * content hash covers its chunks: hashing each chunk as well would hash every byte twice).
   */
  tryReadUnverified(kind: ObjectKind, oid: Oid): Buffer | undefined;
  /**
   * tryReadObject decoding into a buffer from `alloc` (of the decoded size), for readers that reuse their buffers;
   * readers without it are read with tryReadObject.
   */
  tryReadObjectInto?(kind: ObjectKind, oid: Oid, alloc: (size: number) => Buffer): Buffer | undefined;
  /**
   * The stored value (codec byte + payload, not decoded, not checked), or undefined when missing: what the chunk
   * decoder (store/chunk-decoder.ts) decodes off the main thread. A view, valid until the next read from this
   * reader: copy it before reading on. Readers without it are read on the main thread.
   */
  storedView?(kind: ObjectKind, oid: Oid): Buffer | undefined;
}

export interface ObjectWriter {
  /** True when the object is stored or already queued by this writer. */
  hasObject(kind: ObjectKind, oid: Oid): boolean;
  /**
   * Queues `data` under `oid` (compressed when it helps); it becomes durable at the next `flush()`. Implementations
   * copy `data` before returning: callers pass borrowed reader buffers.
   */
  writeObject(kind: ObjectKind, oid: Oid, data: Uint8Array): void;
  /**
   * writeObject for a buffer the caller gives over with its whole ArrayBuffer, which it never touches again: a writer
   * may hand it to another thread instead of copying it (the blob record of a file of many GiB), and use the bytes
   * around `data` in it. Optional: callers use writeObject where it is missing.
   */
  writeObjectGiven?(kind: ObjectKind, oid: Oid, data: Buffer): void;
  /** Waits while too much is queued (backpressure); writers that never queue resolve at once. */
  drain(): Promise<void>;
  /** Makes everything queued durable. */
  flush(): void | Promise<void>;
}

/** A pack's header and, per object, whether the index points at that very copy (live) or not (dead). */
export interface PackInspection {
  header: Array<{ key: Buffer; offset: number; length: number }>;
  live: boolean[];
}

/** An ObjectWriter on another thread (commit's compressing writer): counts what it wrote, and must be closed. */
export interface BackgroundObjectWriter extends ObjectWriter {
  /** Objects and stored bytes newly written (known after flush). */
  readonly written: { objects: number; bytes: number };
  flush(): Promise<void>;
  /** Stops the thread; queued but unflushed objects are dropped. */
  close(): Promise<void>;
}

/**
 * The objects of a repository as the rest of viva sees them: verified synchronous reads, queued writes made durable
 * by `flush`, and the housekeeping (remove, packs, prefetch, reader and writer threads) that used to reach into LMDB.
 */
export interface ObjectStore extends ObjectReader, ObjectWriter {
  /** The stored value (codec byte + payload) without decoding or checking, a copy the caller owns; undefined when missing. */
  readStored(kind: ObjectKind, oid: Oid): Buffer | undefined;
  /** Queues an already encoded stored value (codec byte + payload), e.g. from another repository. */
  writeStoredObject(kind: ObjectKind, oid: Oid, stored: Uint8Array): void;
  /** Makes everything queued durable. */
  flush(): Promise<void>;
  /** Drops queued objects (after a failed write: nothing references them). */
  discard(): void;
  /** Objects and stored bytes written through this handle (for stats and progress). */
  readonly written: { objects: number; bytes: number };
  /**
   * Removes objects with their index entries (gc); packs left without live objects go, packs with some are rewritten.
   * LMDB: call inside `Repository.withExclusive`. Returns the stored bytes freed.
   */
  remove(doomed: Iterable<{ kind: ObjectKind; oid: Oid }>): number;
  /** A pack's header and which of its objects are live; undefined when the pack does not exist. */
  inspectPack(id: string): PackInspection | undefined;
  /** Rewrites a pack with only its live objects, or deletes it (LMDB only; inside `withExclusive`); returns bytes freed. */
  compactPack?(id: string): number;
  /** Brings these objects close (a remote store fetches their packs); resolves when reads of them will not wait. */
  prefetch(ids: Iterable<{ kind: ObjectKind; oid: Oid }>): Promise<void>;
  /** A writer that compresses and writes on another thread, or undefined when that does not pay off (one core). */
  backgroundWriter(): BackgroundObjectWriter | undefined;
  /** Reads `blobs` ahead on a worker thread, in the order given (checkout). */
  blobPrefetcher(blobs: Array<{ oid: Oid; size: number }>): BlobPrefetcher;
  /** Decodes chunks ahead on worker threads; each arrives through `onChunk` (the NBD server's read-ahead). */
  chunkPrefetcher(onChunk: (oid: Oid, data: Buffer | undefined) => void, workers?: number): ChunkPrefetcher;
}

/** An object key's length: the kind's code, then the id's 32 bytes. */
export const OBJECT_KEY_BYTES = 1 + OID_BYTES;

/** The object key of `kind` and `oid`: in `into` when given (reused by the caller), else in a new buffer. */
export function objectKey(kind: ObjectKind, oid: Oid, into: Buffer = Buffer.allocUnsafe(OBJECT_KEY_BYTES)): Buffer {
  into[0] = OBJECT_KINDS[kind];
  into.write(oid, 1, 'hex');
  return into;
}

let cctx: zstd.CCtx | undefined;
let cctxLevel = -1;
/**
 * Where encodeStored compresses to (codec byte, then the zstd frame), reused: the stored value is then copied out at
 * its exact size. zstd-napi's Compressor allocates a worst-case buffer and copies out of it: two allocations per
 * object, which the garbage collector freed late (tens of MB of a commit's peak memory).
 */
let scratch = Buffer.alloc(0);
/** Larger values (a huge file's blob record) compress into a buffer of their own, not kept. */
const SCRATCH_KEEP = 1024 * 1024;
let decompressor: Decompressor | undefined;

/** Objects at least this large are first sampled; high byte entropy means already compressed or random data. */
export const ENTROPY_SAMPLE_MIN = 8192;
/** Bits per byte above which a sample counts as incompressible (uniform random data measures ~7.95 on 4 KiB). */
export const INCOMPRESSIBLE_BITS = 7.9;
const SAMPLE_WINDOWS = 8;
const SAMPLE_WINDOW = 512;
const histogram = new Uint32Array(256);

/**
 * Shannon entropy (bits per byte) of 8 windows of 512 bytes spread over `data`: a cheap test that spares zstd the
 * work on compressed or encrypted content (.gz, .xz, .deb, media, random), which it cannot shrink anyway.
 */
export function sampleEntropy(data: Uint8Array): number {
  histogram.fill(0);
  const step = Math.floor((data.length - SAMPLE_WINDOW) / (SAMPLE_WINDOWS - 1));
  let n = 0;
  for (let w = 0; w < SAMPLE_WINDOWS; w++) {
    const start = w * step;
    for (let i = start; i < start + SAMPLE_WINDOW; i++) histogram[data[i]!]!++;
    n += SAMPLE_WINDOW;
  }
  let bits = 0;
  for (let b = 0; b < 256; b++) {
    const c = histogram[b]!;
    if (c) bits -= (c / n) * Math.log2(c / n);
  }
  return bits;
}

/**
 * codec byte + zstd payload, or codec byte + raw bytes when compression does not shrink the value. The result is a
 * buffer of its exact size from `alloc` (default: a new one). Only the raw form asks for `data.length + 1` bytes, and
 * those may be the byte before `data` and `data` itself: the value is then encoded in place.
 */
export function encodeStored(data: Uint8Array, level = DEFAULT_ZSTD_LEVEL, alloc: (size: number) => Buffer = Buffer.allocUnsafe): Buffer {
  if (data.length >= MIN_COMPRESS_SIZE && (data.length < ENTROPY_SAMPLE_MIN || sampleEntropy(data) < INCOMPRESSIBLE_BITS)) {
    if (!cctx || cctxLevel !== level) {
      cctx = new zstd.CCtx();
      cctx.setParameter(zstd.CParameter.compressionLevel, level);
      cctxLevel = level;
    }
    const bound = zstd.compressBound(data.length) + 1;
    const buf = bound <= scratch.length ? scratch : Buffer.allocUnsafeSlow(bound);
    if (bound <= SCRATCH_KEEP) scratch = buf;
    const n = cctx.compress2(buf.subarray(1, bound), data);
    if (n + 1 < data.length) {
      buf[0] = CODEC_ZSTD;
      const out = alloc(n + 1);
      buf.copy(out, 0, 0, n + 1);
      return out;
    }
  }
  const out = alloc(data.length + 1);
  out[0] = CODEC_RAW;
  out.set(data, 1);
  return out;
}

let dctx: zstd.DCtx | undefined;
/** Frames that do not say their decoded size, or say more than this, go through the streaming decompressor. */
const DECODE_INTO_MAX = 64 << 20;

/**
 * decodeStored into a buffer from `alloc` (called with the decoded size): no allocation when the caller reuses its
 * buffers. A frame that does not declare its size, or declares more than 64 MiB, is decoded by the streaming
 * decompressor into a buffer of its own. Throws as decodeStored.
 */
export function decodeStoredInto(stored: Uint8Array, alloc: (size: number) => Buffer): Buffer {
  if (stored.length === 0) throw new Error('empty stored value');
  const payload = stored.subarray(1);
  if (stored[0] === CODEC_RAW) {
    const out = alloc(payload.length);
    out.set(payload);
    return out;
  }
  if (stored[0] === CODEC_ZSTD) {
    // A frame that declares its size (every frame viva writes) is decoded in one call; the streaming decompressor
    // is for frames that do not, and costs more per object (a transform stream's machinery).
    const size = zstd.getFrameContentSize(payload);
    if (size !== null && size <= DECODE_INTO_MAX) return decodeDeclared(payload, alloc(size));
    decompressor ??= new (zstdStreams().Decompressor)();
    return decompressor.decompress(payload);
  }
  throw new Error(`unknown codec ${stored[0]}`);
}

/** The decoded size a zstd frame declares, or null when it does not say (or is not a frame). */
export function frameContentSize(payload: Uint8Array): number | null {
  try {
    return zstd.getFrameContentSize(payload);
  } catch {
    return null;
  }
}

/**
 * Inverse of encodeStored, into a new buffer; throws Error on an unknown codec, a corrupt zstd frame, or one that
 * decodes to another size than it declares.
 */
export function decodeStored(stored: Uint8Array): Buffer {
  return decodeStoredInto(stored, Buffer.allocUnsafe);
}

/** A zstd frame of declared size `out.length` decoded into `out`; throws when it decodes to another size. */
function decodeDeclared(payload: Uint8Array, out: Buffer): Buffer {
  dctx ??= new zstd.DCtx();
  const n = dctx.decompress(out, payload);
  if (n !== out.length) throw new Error(`zstd frame decoded to ${n} bytes, declared ${out.length}`);
  return out;
}
