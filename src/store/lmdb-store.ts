/**
 * The LMDB environment of a repository: one file holding objects, refs, reflog, config and sessions as named
 * sub-databases, so that "write objects, then move a ref" are transactions on one environment. This is the only
 * module that imports lmdb's code (the stat cache's own file, stat-cache.ts, is opened through openEnvironment).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import util from 'node:util';
import type * as LmdbModule from 'lmdb';
import type { Database, RootDatabase, RootDatabaseOptionsWithPath } from 'lmdb';
import { ObjectNotFoundError, RepositoryCorruptError, RepositoryDamagedError, VivaError, WriteError, describeErrno } from '../errors.js';
import { checkLmdbFile } from './lmdb-header.js';
import type { PackId } from './interfaces.js';
import { BackgroundWriter } from './background-writer.js';
import { BlobPrefetcher, ChunkPrefetcher } from './prefetch.js';
import { faultPoint } from './faults.js';
import { KeyTable } from './key-table.js';
import { native } from '../native/index.js';
import { RemoteIndex } from './remote/remote-index.js';
import { type Oid, hashBytes } from '../model/oid.js';
import { type DerivedEntry, type IndexDb, derivKey, derivedEntries } from './content-index.js';
import {
  type BackgroundObjectWriter, type ObjectKind, type ObjectStore, type PackInspection, KIND_BY_CODE, OBJECT_KEY_BYTES, OBJECT_KINDS, decodeStored, decodeStoredInto, encodeStored, objectKey, DEFAULT_ZSTD_LEVEL,
} from './object-store.js';

// lmdb's CommonJS build (one file; the same native addon and version) loads in about 17 ms where its eleven ES
// modules take about 28: every command that opens a repository pays it at start.
const { openAsClass } = createRequire(import.meta.url)('lmdb') as typeof LmdbModule;

export const DATA_FILE = 'data.mdb';
/** 1 TiB of address space (a reservation, not disk use); lmdb-js segfaults above 64 TiB. */
export const DEFAULT_MAP_SIZE = 2 ** 40;
/** Objects are committed in transactions of about this many stored bytes. */
export const DEFAULT_BATCH_BYTES = 16 * 1024 * 1024;
/**
 * The same for commit's writer thread, whose queued values sit in a staging buffer of this size. Each transaction
 * reads B-tree pages that LMDB just wrote next to the new packs, and the kernel's fault-around maps those packs' pages
 * too; smaller transactions mapped more of them (a 4 GiB file: ≈ 55 MB RssFile with 16 MiB, ≈ 75 MB with 8, 110–150
 * MB with 4), until the writer let go of the map's pages after each one (`unmapPages`). Larger costs time (16 MiB:
 * 12–14 s instead of 9 s for the 4 GiB file, in system time) and the staging buffer's memory.
 */
export const WRITER_BATCH_BYTES = 8 * 1024 * 1024;
/** Index entries per transaction when a bulk import's deferred entries are written (see flushSync). */
export const FINAL_INDEX_ENTRIES = 16 * 1024;
/** Room in a staging buffer past its batch: one chunk (DEFAULT_CHUNK_MAX) and its codec byte. */
const STAGING_SLACK = 256 * 1024 + 1;
/**
 * Pack sizes. LMDB stores a value larger than ~2 KiB in whole 4 KiB pages (a 64 KiB chunk alone wastes 2 KiB on
 * average, a 3 KiB file record 1 KiB), so objects are packed together, as restic and git do. Packs stay small because
 * lmdb-js copies every value below 16 MiB on read: reading one object copies its whole pack. Content (chunks, blob
 * records) and metadata (trees, commits) go to separate packs, so a tree read copies at most a small pack.
 */
export const PACK_TARGET_DATA = 512 * 1024;
export const PACK_TARGET_META = 64 * 1024;
/** How many packs a store handle keeps copies of (a blob's chunks and the pack being verified, for fsck). */
const RECENT_PACKS = 4;
/** Pack header: u32 count, then per object: 33-byte key, u32 offset, u32 length (offsets within the pack value). */
export const PACK_ENTRY = 41;

export interface LmdbStoreOptions {
  readOnly?: boolean;
  zstdLevel?: number;
  /**
   * Bulk-import mode (commit's writer thread): flushes write packs only, and the index entries of all of them are
   * written by `flushSync({ final: true })` in sorted order. Interleaving random index inserts with pack writes made
   * LMDB copy index pages all over the file, and the kernel's fault-around then mapped the fresh pack pages next to
   * them (≈ 30 % of the bytes written showed up as RssFile). Packs of an interrupted import have no index entries
   * and are swept by gc.
   */
  deferIndex?: boolean;
  /** Queued stored bytes that make `writeObject` commit a transaction (default DEFAULT_BATCH_BYTES). */
  batchBytes?: number;
  /**
   * `writeObject` encodes into one staging buffer of `batchBytes` (plus room for one object), reused after each
   * transaction, instead of a new buffer per object (commit's writer thread: one object per chunk).
   */
  staging?: boolean;
  /** This environment is the host cache of a bucket repository (see `RemoteMode`). */
  remote?: RemoteMode;
}

/**
 * How the host cache of a bucket repository differs from a local repository's store. Whether an object exists is
 * the bucket's answer (a live copy in the host's index of the bucket, `RemoteIndex`), not the cache's: a writer
 * deduplicates only against what the bucket holds, so a cached object that gc tombstoned, or one an interrupted
 * upload never sent, is written again (into a new local pack, which the upload step sends). A read that misses the
 * cache calls `fetch`, which brings the object in.
 */
export interface RemoteMode {
  /** Brings the objects (33-byte keys) into this cache, blocking; keys the bucket does not have are left out. */
  fetch?: (keys: Buffer[]) => void;
  /** The same without blocking: several packs at once, for bulk readers. */
  prefetch?: (keys: Buffer[]) => Promise<void>;
  /** The first local pack of the current write session: objects in it and after were written (or fetched) now. */
  sincePack?: number;
}

/** Where an object's stored bytes live. */
export interface ObjectLocation {
  pack: number;
  offset: number;
  length: number;
}

/** The `packs` database's key of pack `id` (4 bytes, big-endian; a PackId of this store is its number). */
export function packKey(id: PackId | number): Buffer {
  const k = Buffer.allocUnsafe(4);
  k.writeUInt32BE(Number(id));
  return k;
}

/**
 * True for the object kinds that go to metadata packs (trees, commits, disks: small, read by log/diff/checkout
 * planning), false for content (chunks, blob records). `code` is an object key's first byte.
 */
export function isMetaKind(code: number): boolean {
  return code === OBJECT_KINDS.tree || code === OBJECT_KINDS.commit || code === OBJECT_KINDS.disk;
}

/**
 * Builds one pack value: header (count, key/offset/length per object) then the stored values. With `scratch` large
 * enough, the value is built in it (a view of it is returned, valid until the scratch is reused).
 */
export function encodePack(objects: Array<[Buffer, Buffer]>, scratch?: Buffer): { value: Buffer; offsets: number[] } {
  const offsets: number[] = [];
  let size = 4 + objects.length * PACK_ENTRY;
  for (const [, v] of objects) {
    offsets.push(size);
    size += v.length;
  }
  const value = scratch && scratch.length >= size ? scratch.subarray(0, size) : Buffer.allocUnsafe(size);
  writePackHeader(value, objects, offsets);
  objects.forEach(([, v], i) => v.copy(value, offsets[i]!));
  return { value, offsets };
}

/** A pack's header, at the start of `value`: the count, then each object's key, offset and length. */
function writePackHeader(value: Buffer, objects: Array<[Buffer, Buffer]>, offsets: number[]): void {
  value.writeUInt32BE(objects.length, 0);
  objects.forEach(([k, v], i) => {
    const h = 4 + i * PACK_ENTRY;
    k.copy(value, h);
    value.writeUInt32BE(offsets[i]!, h + 33);
    value.writeUInt32BE(v.length, h + 37);
  });
}

/** The header of a pack of one object: its count and its entry. */
const PACK_HEADER_ONE = 4 + PACK_ENTRY;

/**
 * The pack of one object whose value has PACK_HEADER_ONE free bytes before it in its buffer (a value given over):
 * the header is written there, and the pack is the value's own bytes.
 */
function packInPlace(object: [Buffer, Buffer]): { value: Buffer; offsets: number[] } {
  const v = object[1];
  const value = Buffer.from(v.buffer, v.byteOffset - PACK_HEADER_ONE, PACK_HEADER_ONE + v.length);
  writePackHeader(value, [object], [PACK_HEADER_ONE]);
  return { value, offsets: [PACK_HEADER_ONE] };
}

/**
 * The header of a pack value; throws RepositoryCorruptError (subject `pack ID`) when it does not fit the pack.
 * `value` is the whole pack, or only its first bytes (at least the header) when `size`, the pack's whole length, is
 * given: a remote pack's header is read with range requests.
 */
export function decodePackHeader(id: number | string, value: Buffer, size = value.length): Array<{ key: Buffer; offset: number; length: number }> {
  const bad = (why: string) => new RepositoryCorruptError(`pack ${id}`, why);
  if (value.length < 4) throw bad('truncated header');
  const n = value.readUInt32BE(0);
  if (4 + n * PACK_ENTRY > size) throw bad('header larger than the pack');
  if (4 + n * PACK_ENTRY > value.length) throw bad('truncated header');
  const out: Array<{ key: Buffer; offset: number; length: number }> = [];
  for (let i = 0; i < n; i++) {
    const h = 4 + i * PACK_ENTRY;
    const e = { key: Buffer.from(value.subarray(h, h + 33)), offset: value.readUInt32BE(h + 33), length: value.readUInt32BE(h + 37) };
    if (e.offset + e.length > size) throw bad(`object ${i} lies outside the pack`);
    out.push(e);
  }
  return out;
}

/** Room asked for a write: its bytes times this (B-tree and free-list pages), plus ROOM_MARGIN. */
const ROOM_FACTOR = 1.25;
const ROOM_MARGIN = 4 * 1024 * 1024;

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

export function reasonOf(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOSPC') return 'no space left on device';
  if (err?.code === 'EIO') return 'input/output error';
  return String(err?.message ?? e).replace(/^Error: /, '');
}

const SYSTEM_ERRORS = util.getSystemErrorMap();
/** Failures of opening the environment for writing that are the file system's, not viva's. */
const OPEN_WRITE_ERRORS = new Set(['EROFS', 'EACCES', 'EPERM', 'ENOSPC', 'EIO', 'EDQUOT']);
/** LMDB's return codes for a damaged database (lmdb.h): MDB_PAGE_NOTFOUND, MDB_CORRUPTED, MDB_BAD_TXN, MDB_INVALID. */
const LMDB_DAMAGE_CODES = new Set([-30797, -30796, -30782, -30793]);

/** The errno name of an lmdb-js error (its `code` is the positive errno), else undefined. */
function errnoName(e: unknown): string | undefined {
  const code = (e as { code?: unknown })?.code;
  if (typeof code === 'number' && code > 0) return SYSTEM_ERRORS.get(-code)?.[0];
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : undefined;
}

/**
 * The reason when `e` is LMDB reporting a damaged database (a page of the wrong type, a page not found, a
 * transaction spoiled by one), else undefined. Callers turn it into RepositoryDamagedError (exit 15).
 */
export function lmdbDamageReason(e: unknown): string | undefined {
  if (!(e instanceof Error) || e instanceof VivaError) return undefined;
  const code = (e as { code?: unknown }).code;
  if ((typeof code === 'number' && LMDB_DAMAGE_CODES.has(code)) || /MDB_CORRUPTED|MDB_PAGE_NOTFOUND|MDB_BAD_TXN|MDB_INVALID|Located page/.test(e.message)) {
    return e.message.replace(/^Error: /, '');
  }
  return undefined;
}

/**
 * A failure of a write transaction as WriteError. The library's own errors (ref conflicts, …) pass through, and so
 * do programming errors (TypeError, RangeError, …): only failures of the storage itself become WriteError.
 */
function asWriteError(path: string, e: unknown): unknown {
  if (e instanceof VivaError || e instanceof TypeError || e instanceof RangeError || e instanceof SyntaxError || e instanceof ReferenceError) return e;
  if (!(e instanceof Error)) return e;
  const damage = lmdbDamageReason(e);
  if (damage) return new RepositoryDamagedError(path, damage);
  return new WriteError(path, reasonOf(e), { cause: e });
}

export class LmdbStore implements ObjectStore {
  readonly env: RootDatabase;
  /** Object key (kind byte + 32-byte id) → 12 bytes: pack id, offset, length (u32 BE each). */
  readonly index: Database<Buffer, Buffer>;
  /** Pack id (u32 BE) → pack value. */
  readonly packs: Database<Buffer, Buffer>;
  readonly refs: Database<any, string>;
  readonly reflog: Database<any, any>;
  readonly meta: Database<any, string>;
  readonly sessions: Database<any, string>;
  /** The content index (see content-index.ts): child → parent links, and root → commit. */
  readonly ixParent: Database<Buffer, Buffer>;
  readonly ixRoot: Database<Buffer, Buffer>;
  /** Derived commits by base commit and by memo key (see content-index.ts). */
  readonly ixDeriv: Database<Buffer, Buffer>;
  /** Package inventories by the blob id of the package database file they were parsed from (JSON values). */
  readonly ixPkg: Database<Buffer, Buffer>;
  private pending = new Map<string, [Buffer, Buffer]>();
  /** Queued values whose whole ArrayBuffer is this store's (writeStoredObjectGiven): the bytes before them are free. */
  private given = new WeakSet<Buffer>();
  /** Where writePacks builds each pack value before LMDB copies it (a fresh 512 KiB buffer per pack was garbage at once). */
  private packScratch?: Buffer;
  /** Content-index entries of queued (and, in bulk-import mode, of deferred) meta objects, by object key. */
  private pendingDerived = new Map<string, DerivedEntry[]>();
  private deferredDerived: DerivedEntry[] = [];
  private pendingBytes = 0;
  readonly zstdLevel: number;
  private readonly deferIndex: boolean;
  private readonly batchBytes: number;
  /** See LmdbStoreOptions.staging: the buffer, and how much of it the queued objects use. */
  private staging?: Buffer;
  private stagingUsed = 0;
  /** Hands out the next `size` bytes of the staging buffer (a new buffer when it is full or not in use). */
  private readonly stagingAlloc = (size: number): Buffer => {
    if (!this.staging || this.stagingUsed + size > this.staging.length) return Buffer.allocUnsafe(size);
    const b = this.staging.subarray(this.stagingUsed, this.stagingUsed + size);
    this.stagingUsed += size;
    return b;
  };
  /**
   * Index entries of packs written in bulk-import mode, not yet in the index: object key → its 12-byte location. A
   * commit keeps one per chunk to its end (160 000 for a 10 GiB file): binary, outside the JavaScript heap, they cost
   * about 60 bytes each (a Map keyed by strings cost about 100, and as many again of heap that V8 kept beside it).
   */
  private deferred = new KeyTable(OBJECT_KEY_BYTES, 12);
  /** Bytes and counts written through this handle (for stats and progress). */
  written = { objects: 0, bytes: 0 };
  readonly readOnly: boolean;
  /** Set when this environment caches a bucket repository (see RemoteMode); `remoteIndex` is then the bucket's index. */
  remoteMode?: RemoteMode;
  private remoteIx?: RemoteIndex;

  /** The host's index of the bucket this environment caches (bucket repositories only). */
  get remoteIndex(): RemoteIndex {
    if (!this.remoteMode) throw new Error('not the cache of a bucket repository');
    this.remoteIx ??= new RemoteIndex(this.env);
    return this.remoteIx;
  }

  /**
   * Whether a writer may rely on the repository having the object: locally, the index; for a bucket's cache, a live
   * copy in the bucket, or a copy this write session put into the cache (uploaded before any ref names it).
   */
  private stored(k: Buffer): boolean {
    if (!this.remoteMode) return this.index.doesExist(k);
    if (this.remoteIndex.hasLive(k)) return true;
    const loc = this.index.getBinaryFast(k);
    return loc !== undefined && loc.readUInt32BE(0) >= (this.remoteMode.sincePack ?? Infinity);
  }

  /**
   * Opens the environment in the file `path`. An existing file is checked first (checkLmdbFile): a truncated or
   * garbage file throws RepositoryDamagedError instead of crashing the process when LMDB maps it. A missing file is
   * created, except in read-only mode (RepositoryDamagedError); whether a missing file may be created at all is the
   * repository's decision (Repository.open never lets it happen).
   */
  constructor(readonly path: string, options: LmdbStoreOptions = {}) {
    if (options.readOnly || fs.existsSync(path)) {
      const check = checkLmdbFile(path);
      if (!check.ok) throw new RepositoryDamagedError(path, check.reason);
    }
    this.readOnly = options.readOnly ?? false;
    this.zstdLevel = options.zstdLevel ?? DEFAULT_ZSTD_LEVEL;
    this.deferIndex = options.deferIndex ?? false;
    this.batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
    // A transaction starts once the queued bytes reach batchBytes: the last object may go past it by up to a chunk.
    if (options.staging) this.staging = Buffer.allocUnsafeSlow(this.batchBytes + STAGING_SLACK);
    this.remoteMode = options.remote;
    try {
      this.env = openEnvironment({ path, mapSize: DEFAULT_MAP_SIZE, readOnly: options.readOnly ?? false, maxDbs: 16, keyEncoding: 'ordered-binary' });
    } catch (e) {
      // Opening for writing needs the lock file and the data file writable: a read-only file system, no
      // permission, a full or failing disk is a failure to write the repository (exit 16), not an internal error.
      const name = errnoName(e);
      if (!options.readOnly && name && OPEN_WRITE_ERRORS.has(name)) {
        throw new WriteError(path, `${describeErrno(name)} (${name})`, { cause: e });
      }
      const damage = lmdbDamageReason(e);
      if (damage) throw new RepositoryDamagedError(path, damage);
      throw e;
    }
    this.index = this.env.openDB<Buffer, Buffer>({ name: 'index', keyEncoding: 'binary', encoding: 'binary' });
    this.packs = this.env.openDB<Buffer, Buffer>({ name: 'packs', keyEncoding: 'binary', encoding: 'binary' });
    this.refs = this.env.openDB({ name: 'refs', encoding: 'msgpack' });
    this.reflog = this.env.openDB({ name: 'reflog', encoding: 'msgpack' });
    this.meta = this.env.openDB({ name: 'meta', encoding: 'msgpack' });
    this.sessions = this.env.openDB({ name: 'sessions', encoding: 'msgpack' });
    this.ixParent = this.env.openDB<Buffer, Buffer>({ name: 'ix-parent', keyEncoding: 'binary', encoding: 'binary', dupSort: true });
    this.ixRoot = this.env.openDB<Buffer, Buffer>({ name: 'ix-root', keyEncoding: 'binary', encoding: 'binary', dupSort: true });
    this.ixPkg = this.env.openDB<Buffer, Buffer>({ name: 'ix-pkg', keyEncoding: 'binary', encoding: 'binary' });
    this.ixDeriv = this.env.openDB<Buffer, Buffer>({ name: 'ix-deriv', keyEncoding: 'binary', encoding: 'binary', dupSort: true });
  }

  /**
   * The derived commits `ix-deriv` lists under `prefix` + `oid` (DERIV_BASE: derived from that commit; DERIV_MEMO: made
   * by that memo key). A repository last written by a viva without this index, opened read-only, has none.
   */
  derivedCommits(prefix: number, oid: Oid): Oid[] {
    let values: Iterable<Buffer>;
    try {
      values = [...this.ixDeriv.getValues(derivKey(prefix, oid))] as Buffer[];
    } catch (e) {
      if (e instanceof TypeError && this.readOnly) return [];
      throw e;
    }
    return [...values].map((v) => v.toString('hex'));
  }

  private indexDb(db: IndexDb): Database<Buffer, Buffer> {
    return db === 'ix-parent' ? this.ixParent : db === 'ix-root' ? this.ixRoot : this.ixDeriv;
  }

  /** Writes content-index entries; call inside a write transaction. */
  putDerived(entries: DerivedEntry[]): void {
    for (const [db, k, v] of entries) this.indexDb(db).putSync(k, v);
  }

  /** Removes content-index entries; call inside a write transaction. */
  removeDerived(entries: DerivedEntry[]): void {
    for (const [db, k, v] of entries) this.indexDb(db).removeSync(k, v);
  }

  /**
   * Runs `fn` in one durable write transaction, after checking that the file system has room for about `bytes` more
   * (LMDB was seen to lose writes silently on a full tmpfs, so a full disk must be refused before writing). Every
   * write of the repository goes through here. Throws WriteError (disk full, I/O error) with nothing written;
   * errors of `fn` itself pass through.
   */
  writeTransaction<T>(fn: () => T, bytes = 0): T {
    let result: T;
    try {
      this.ensureRoom(bytes);
      faultPoint('write');
      this.writeDepth++;
      try {
        result = this.env.transactionSync(fn);
      } finally {
        this.writeDepth--;
      }
    } catch (e) {
      throw asWriteError(this.path, e);
    }
    try {
      faultPoint('flush');
    } catch (e) {
      throw asWriteError(this.path, e);
    }
    return result;
  }

  /** True while `writeTransaction` runs its function (a write made then is part of that transaction). */
  get inWriteTransaction(): boolean {
    return this.writeDepth > 0;
  }

  private writeDepth = 0;

  /** Throws WriteError when the file system has less room than `bytes` plus a margin (unused space inside the file counts). */
  private ensureRoom(bytes: number): void {
    const st = fs.statfsSync(this.path);
    const { pageSize, lastPageNumber } = this.env.getStats() as { pageSize: number; lastPageNumber: number };
    const slack = Math.max(0, fs.statSync(this.path).size - (lastPageNumber + 1) * pageSize);
    const room = st.bavail * st.bsize + slack;
    const need = Math.ceil(bytes * ROOM_FACTOR) + ROOM_MARGIN;
    if (need > room) {
      throw new WriteError(this.path, `no space left on device (${mib(need)} needed, ${mib(room)} available)`);
    }
  }

  hasObject(kind: ObjectKind, oid: Oid): boolean {
    const k = objectKey(kind, oid);
    return (this.pending.size > 0 && this.pending.has(k.toString('latin1'))) || this.stored(k);
  }

  /** True when the object is committed (not merely queued). */
  hasDurableObject(kind: ObjectKind, oid: Oid): boolean {
    return this.stored(objectKey(kind, oid));
  }

  /** Where a committed object is stored, or undefined. */
  locate(kind: ObjectKind, oid: Oid): ObjectLocation | undefined {
    const v = this.index.getBinaryFast(objectKey(kind, oid));
    if (!v) return undefined;
    if (v.length !== 12) throw new RepositoryCorruptError(`${kind} ${oid}`, 'malformed index entry');
    return { pack: v.readUInt32BE(0), offset: v.readUInt32BE(4), length: v.readUInt32BE(8) };
  }

  /**
   * The last few packs read, kept: objects written together (the chunks of a file, the trees of a commit) are read
   * together. Pack ids are never reused, so a copy cannot go stale. Each is copied out of lmdb-js's shared read buffer
   * into a buffer of this list, and the buffer of the pack that drops out is reused for the next: a reader of every
   * object (an export, a push) would otherwise allocate a new half-megabyte buffer per pack, whose external memory
   * makes V8 run a full garbage collection every few dozen packs.
   */
  private recentPacks: Array<{ id: number; value: Buffer; room: Buffer }> = [];

  private readPack(id: number): Buffer | undefined {
    const hit = this.recentPacks.find((p) => p.id === id);
    if (hit) return hit.value;
    let view: Buffer | undefined;
    try {
      faultPoint('read');
      view = this.packs.getBinaryFast(packKey(id));
    } catch (e) {
      if (e instanceof VivaError) throw e;
      const damage = lmdbDamageReason(e);
      if (damage) throw new RepositoryDamagedError(this.path, damage);
      // readStoredView names the object it was reading; the pack alone says little.
      throw new RepositoryCorruptError(`pack ${id}`, `cannot be read: ${reasonOf(e)}`, undefined, { pack: id, error: reasonOf(e) });
    }
    if (!view) return undefined;
    // lmdb-js's buffer is valid until its next get; its length property is set per value, so it is read once.
    const n = view.length;
    let room = this.recentPacks.length >= RECENT_PACKS ? this.recentPacks.pop()!.room : undefined;
    if (!room || room.length < n) room = Buffer.allocUnsafeSlow(Math.max(n, PACK_TARGET_DATA + (PACK_TARGET_DATA >> 2)));
    const value = room.subarray(0, n);
    value.set(new Uint8Array(view.buffer, view.byteOffset, n));
    this.recentPacks.unshift({ id, value, room });
    return value;
  }

  /** See ObjectReader.storedView: a view of a kept pack, valid until this store reads another pack. */
  storedView(kind: ObjectKind, oid: Oid): Buffer | undefined {
    // A queued value lives in the staging buffer, reused after the next flush: it is copied.
    const p = this.pending.size > 0 ? this.pending.get(objectKey(kind, oid).toString('latin1')) : undefined;
    return p ? Buffer.from(p[1]) : this.readStoredView(kind, oid);
  }

  /**
   * A view of the stored bytes (no copy of the object itself): of a kept pack (valid until another pack is read:
   * its buffer is reused), or of a queued value. Callers decode or copy it at once.
   */
  private readStoredView(kind: ObjectKind, oid: Oid): Buffer | undefined {
    const k = objectKey(kind, oid);
    const p = this.pending.get(k.toString('latin1'));
    if (p) return p[1];
    let loc = this.locate(kind, oid);
    if (!loc && this.remoteMode?.fetch) {
      this.remoteMode.fetch([k]);
      loc = this.locate(kind, oid);
    }
    if (!loc) return undefined;
    let pack: Buffer | undefined;
    try {
      pack = this.readPack(loc.pack);
    } catch (e) {
      if (e instanceof RepositoryCorruptError && typeof e.data.error === 'string' && e.data.pack === loc.pack) {
        throw RepositoryCorruptError.unreadable(kind, oid, e.data.error, loc.pack);
      }
      throw e;
    }
    if (!pack) throw new RepositoryCorruptError(`${kind} ${oid}`, `pack ${loc.pack} is missing`);
    if (loc.offset + loc.length > pack.length) throw new RepositoryCorruptError(`${kind} ${oid}`, `lies outside pack ${loc.pack}`);
    return pack.subarray(loc.offset, loc.offset + loc.length);
  }

  /** Stored value (codec byte + payload) without decoding; undefined when missing. */
  readStored(kind: ObjectKind, oid: Oid): Buffer | undefined {
    const v = this.readStoredView(kind, oid);
    return v && Buffer.from(v);
  }

  /**
   * Decoded bytes, checked against `oid` (chunks hash to their id, trees, commits and disks their encoding); throws
   * RepositoryCorruptError when they do not. A blob record cannot be checked alone (a blob's id is the hash of its
   * whole content): readBlobPieces checks the content it streams.
   */
  tryReadObject(kind: ObjectKind, oid: Oid): Buffer | undefined {
    return this.checked(kind, oid, this.tryReadUnverified(kind, oid));
  }

  tryReadObjectInto(kind: ObjectKind, oid: Oid, alloc: (size: number) => Buffer): Buffer | undefined {
    return this.checked(kind, oid, this.decoded(kind, oid, (stored) => decodeStoredInto(stored, alloc)));
  }

  tryReadUnverified(kind: ObjectKind, oid: Oid): Buffer | undefined {
    return this.decoded(kind, oid, decodeStored);
  }

  /** The object decoded by `decode`; a value that does not decode is damage, named by the object. */
  private decoded(kind: ObjectKind, oid: Oid, decode: (stored: Buffer) => Buffer): Buffer | undefined {
    const stored = this.readStoredView(kind, oid);
    if (!stored) return undefined;
    try {
      return decode(stored);
    } catch (e) {
      throw new RepositoryCorruptError(`${kind} ${oid}`, `cannot decode stored value: ${(e as Error).message}`);
    }
  }

  /** `data` of `kind` `oid`, checked against the id (not a blob record: see tryReadObject). */
  private checked(kind: ObjectKind, oid: Oid, data: Buffer | undefined): Buffer | undefined {
    if (data && kind !== 'blob' && hashBytes(data) !== oid) throw RepositoryCorruptError.mismatch(kind, oid);
    return data;
  }

  readObject(kind: ObjectKind, oid: Oid): Buffer {
    const v = this.tryReadObject(kind, oid);
    if (!v) throw new ObjectNotFoundError(kind, oid);
    return v;
  }

  /**
   * Drops the `statcache` database that earlier versions kept in this file (the stat cache has a file of its own
   * now, stat-cache.ts): the number of records it held, 0 when there is none. gc calls it in its transaction.
   */
  dropLegacyStatCache(): number {
    if (this.readOnly) return 0;
    let found = false;
    for (const k of this.env.getKeys({})) if (String(k) === 'statcache') { found = true; break; }
    if (!found) return 0;
    const db = this.env.openDB<Buffer, Buffer>({ name: 'statcache', keyEncoding: 'binary', encoding: 'binary' });
    const n = (db.getStats() as { entryCount: number }).entryCount;
    db.dropSync();
    return n;
  }

  /** Queues an object; returns its stored (encoded) size. */
  writeObject(kind: ObjectKind, oid: Oid, data: Uint8Array): number {
    const stored = encodeStored(data, this.zstdLevel, this.stagingAlloc);
    this.queue(kind, oid, stored, data);
    return stored.length;
  }

  drain(): Promise<void> {
    return Promise.resolve();
  }

  /** Queues an already encoded stored value (codec byte + payload), e.g. from another repository. */
  writeStoredObject(kind: ObjectKind, oid: Oid, stored: Uint8Array): void {
    this.queue(kind, oid, stored);
  }

  /**
   * writeStoredObject of a value whose whole ArrayBuffer is given over with it (commit's writer thread: a large object
   * sent alone; never a buffer of Node's shared pool). When it makes a pack of its own, the pack's header goes into
   * the room before it, if there is enough: the pack is then the value's own bytes, not a copy (6 MB for the blob
   * record of a 10 GiB file, at the very end of the commit, when every table is at its largest).
   */
  writeStoredObjectGiven(kind: ObjectKind, oid: Oid, stored: Buffer): void {
    this.given.add(stored);
    this.queue(kind, oid, stored);
  }

  private queue(kind: ObjectKind, oid: Oid, stored: Uint8Array, raw?: Uint8Array): void {
    const k = objectKey(kind, oid);
    const ks = k.toString('latin1');
    if (this.pending.has(ks)) return;
    const v = Buffer.isBuffer(stored) ? stored : Buffer.from(stored);
    if (isMetaKind(k[0]!)) {
      let derived: DerivedEntry[] = [];
      // An object that does not decode has no index entries (fsck reports the object itself).
      try { derived = derivedEntries(kind, oid, raw ?? decodeStored(v)); } catch { /* see above */ }
      if (derived.length) this.pendingDerived.set(ks, derived);
    }
    this.pending.set(ks, [k, v]);
    this.pendingBytes += v.length + 64;
    if (this.pendingBytes >= this.batchBytes) this.flushSync();
  }

  /** Writes `objects` as packs and points the index at them; call inside a write transaction. */
  private writePacks(objects: Array<[Buffer, Buffer]>): void {
    let next = (this.meta.get('next-pack') as number | undefined) ?? 0;
    const groups: Array<Array<[Buffer, Buffer]>> = [[], []];
    for (const o of objects) groups[isMetaKind(o[0][0]!) ? 1 : 0]!.push(o);
    groups.forEach((group, g) => {
      const target = g === 1 ? PACK_TARGET_META : PACK_TARGET_DATA;
      let cur: Array<[Buffer, Buffer]> = [];
      let size = 0;
      const close = () => {
        if (cur.length === 0) return;
        const id = next++;
        // putSync copies the value into the transaction's pages: one scratch buffer serves every pack.
        this.packScratch ??= Buffer.allocUnsafeSlow(2 * PACK_TARGET_DATA);
        const inPlace = cur.length === 1 && this.given.has(cur[0]![1]) && cur[0]![1].byteOffset >= PACK_HEADER_ONE;
        const { value, offsets } = inPlace ? packInPlace(cur[0]!) : encodePack(cur, this.packScratch);
        this.packs.putSync(packKey(id), value);
        cur.forEach(([k, v], i) => {
          // An object deferred before (a second copy) takes the new location, as a direct index entry would.
          const loc = this.deferIndex ? this.deferred.insert(k) ?? this.deferred.get(k)! : Buffer.allocUnsafe(12);
          loc.writeUInt32BE(id, 0);
          loc.writeUInt32BE(offsets[i]!, 4);
          loc.writeUInt32BE(v.length, 8);
          if (!this.deferIndex) this.index.putSync(k, loc);
        });
        cur = [];
        size = 0;
      };
      for (const o of group) {
        // An object as large as a pack makes one of its own.
        if (o[1].length + PACK_ENTRY >= target) close();
        cur.push(o);
        size += o[1].length + PACK_ENTRY;
        if (size >= target) close();
      }
      close();
    });
    this.meta.putSync('next-pack', next);
  }

  /**
   * Commits queued objects (as packs) in one durable transaction. In bulk-import mode, `final` also writes the
   * deferred index entries (sorted, in transactions of FINAL_INDEX_ENTRIES): only then are the objects part of the
   * repository.
   */
  flushSync(options: { final?: boolean } = {}): void {
    if (this.pending.size > 0) this.flushPacks();
    if (options.final && this.deferred.size > 0) {
      // In the index's order: each page of the index is copied once.
      const deferred = this.deferred;
      const order = deferred.sortedEntries();
      const derived = this.deferredDerived.sort((a, b) => Buffer.compare(a[1], b[1]));
      this.deferred = new KeyTable(OBJECT_KEY_BYTES, 12);
      this.deferredDerived = [];
      // In transactions of a bounded number of entries: LMDB holds every page a transaction dirties in memory until it
      // commits, and keeps them after for reuse (one transaction for the 160 000 entries of a 10 GiB file: ≈ 18 MB).
      // An object indexed before a later transaction fails is one no ref names yet, as after any failed commit: gc's.
      // Keys sort by kind: every chunk is in the index before any blob. Only chunks and blobs are split: trees,
      // commits and disks go in the last transaction with the content index, whose entries must come with theirs (an
      // object in the index is taken as indexed by content too, and never indexed again).
      const meta = order.findIndex((e) => isMetaKind(deferred.keyAt(e)[0]!));
      const dataEntries = meta < 0 ? order.length : meta;
      for (let from = 0; from < order.length;) {
        const to = from + FINAL_INDEX_ENTRIES < dataEntries ? from + FINAL_INDEX_ENTRIES : order.length;
        const slice = order.subarray(from, to);
        const last = to === order.length;
        from = to;
        this.writeTransaction(() => {
          for (const e of slice) this.index.putSync(deferred.keyAt(e), deferred.valueAt(e));
          if (last) this.putDerived(derived);
        }, slice.length * 64 + (last ? derived.length * 128 : 0));
        // Each transaction reads the index pages the one before wrote, and the kernel maps what lies around them.
        this.unmapPages();
      }
    }
  }

  private flushPacks(): void {
    const batch = this.pending;
    const derived = this.pendingDerived;
    this.pending = new Map();
    this.pendingDerived = new Map();
    const bytes = this.pendingBytes;
    this.pendingBytes = 0;
    this.writeTransaction(() => {
      const fresh: Array<[Buffer, Buffer]> = [];
      for (const [ks, [k, v]] of batch) {
        if (!this.stored(k) && !this.deferred.has(k)) {
          fresh.push([k, v]);
          this.written.objects++;
          this.written.bytes += v.length;
          const d = derived.get(ks);
          // The content index goes with the object index: now, or with the deferred entries at the final flush.
          if (d) { if (this.deferIndex) this.deferredDerived.push(...d); else this.putDerived(d); }
        }
      }
      this.writePacks(fresh);
    }, bytes);
    // The queued values are in the packs now (LMDB copied them): their staging bytes can be handed out again.
    this.stagingUsed = 0;
    if (this.deferIndex) this.unmapPages();
  }

  /**
   * Lets go of the pages of the data file this process has mapped (they stay in the page cache). A bulk import reads
   * B-tree pages that LMDB reuses between the packs it has just written, and the kernel maps the 64 KiB around each
   * page read: over a 10 GiB file, 50 MB of other packs' pages stayed mapped (RssFile). Dropped after each
   * transaction, only the pages the next one reads come back. An optimisation only: a failure changes nothing else.
   */
  private unmapPages(): void {
    try { native().unmapFilePages(this.path); } catch { /* see above */ }
  }

  /**
   * Brings objects close before they are read: for a bucket's cache, fetches the missing ones pack by pack (several
   * packs at once); for a local repository, nothing to do.
   */
  async prefetch(ids: Iterable<{ kind: ObjectKind; oid: Oid }>): Promise<void> {
    const p = this.remoteMode?.prefetch;
    if (!p) return;
    const keys: Buffer[] = [];
    for (const i of ids) {
      const k = objectKey(i.kind, i.oid);
      if (!this.index.doesExist(k)) keys.push(k);
    }
    if (keys.length) await p(keys);
  }

  /**
   * Puts objects fetched from the bucket into this cache (checked by the caller), in one durable transaction; objects
   * the cache has already are skipped. Not a write of the repository: nothing is queued or uploaded.
   */
  putCached(objects: Array<[Buffer, Buffer]>): void {
    if (objects.length === 0) return;
    const seen = new Set<string>();
    this.writeTransaction(() => {
      const fresh = objects.filter(([k]) => {
        const ks = k.toString('latin1');
        if (seen.has(ks) || this.index.doesExist(k)) return false;
        seen.add(ks);
        return true;
      });
      this.writePacks(fresh);
      // Metadata objects get their content-index entries, as when they are written here.
      for (const [k, v] of fresh) {
        if (!isMetaKind(k[0]!)) continue;
        const kind = KIND_BY_CODE[k[0]!]!;
        let derived: DerivedEntry[] = [];
        try { derived = derivedEntries(kind, k.subarray(1).toString('hex'), decodeStored(v)); } catch { /* fsck reports the object */ }
        this.putDerived(derived);
      }
    }, objects.reduce((n, [, v]) => n + v.length + 64, 0));
  }

  /** Makes everything queued durable (flushSync, for callers of the ObjectStore interface). */
  async flush(): Promise<void> {
    this.flushSync();
  }

  /** Drops queued objects and deferred index entries (after a failed commit: nothing references them). */
  discard(): void {
    this.pending = new Map();
    this.pendingDerived = new Map();
    this.pendingBytes = 0;
    this.stagingUsed = 0;
    this.deferred = new KeyTable(OBJECT_KEY_BYTES, 12);
    this.deferredDerived = [];
  }

  /**
   * Removes objects (gc). Packs left without live objects are deleted; packs with some dead objects are rewritten
   * with the live ones. Call inside a write transaction. Returns the stored bytes freed.
   */
  remove(doomed: Iterable<{ kind: ObjectKind; oid: Oid }>): number {
    const byPack = new Map<number, Set<string>>();
    for (const d of doomed) {
      const loc = this.locate(d.kind, d.oid);
      if (!loc) continue;
      const k = objectKey(d.kind, d.oid);
      if (isMetaKind(k[0]!)) {
        // Its content-index entries go with it (an undecodable object has none worth keeping).
        try { this.removeDerived(derivedEntries(d.kind, d.oid, this.readObject(d.kind, d.oid))); } catch { /* damaged */ }
      } else if (d.kind === 'blob') {
        this.ixPkg.removeSync(k.subarray(1));
      }
      this.index.removeSync(k);
      let set = byPack.get(loc.pack);
      if (!set) byPack.set(loc.pack, (set = new Set()));
      set.add(k.toString('latin1'));
    }
    let freed = 0;
    for (const id of byPack.keys()) freed += this.compactPackNumber(id);
    return freed;
  }

  /**
   * A pack's header and, per object, whether the index points at that very copy (live) or not (dead: removed, or
   * left by an interrupted import). Undefined when the pack does not exist; throws RepositoryCorruptError for a
   * header that does not fit the pack.
   */
  inspectPack(id: PackId | number): PackInspection | undefined {
    return this.inspectPackNumber(Number(id));
  }

  private inspectPackNumber(id: number): PackInspection | undefined {
    const view = this.packs.getBinaryFast(packKey(id));
    if (!view) return undefined;
    // The header is decoded (copied) before the index reads below invalidate `view`.
    const header = decodePackHeader(id, view);
    const live = header.map((e) => {
      const loc = this.index.getBinaryFast(e.key);
      return loc !== undefined && loc.readUInt32BE(0) === id && loc.readUInt32BE(4) === e.offset;
    });
    return { header, live };
  }

  /**
   * Rewrites or deletes one pack so that it holds only objects the index points at; returns bytes freed.
   * A pack whose objects are all live is left alone.
   */
  compactPack(id: PackId | number): number {
    return this.compactPackNumber(Number(id));
  }

  private compactPackNumber(id: number): number {
    const inspected = this.inspectPackNumber(id);
    if (!inspected || inspected.live.every(Boolean)) return 0;
    const { header, live: isLive } = inspected;
    const value = this.packs.get(packKey(id))!;
    const live: Array<[Buffer, Buffer]> = [];
    header.forEach((e, i) => { if (isLive[i]) live.push([e.key, Buffer.from(value.subarray(e.offset, e.offset + e.length))]); });
    this.packs.removeSync(packKey(id));
    if (live.length) this.writePacks(live);
    return value.length - live.reduce((n, [, v]) => n + v.length + PACK_ENTRY, 4);
  }

  /** Every pack id (gc sweeps packs that no index entry points into, e.g. after an interrupted repair). */
  *listPacks(): Iterable<number> {
    for (const key of this.packs.getKeys({})) yield (key as Buffer).readUInt32BE(0);
  }

  /**
   * Replaces an object's stored bytes without any check, or removes it (`stored` undefined). For repair tools and
   * the fault-injecting tests of fsck; never used by normal operation.
   */
  putStoredUnchecked(kind: ObjectKind, oid: Oid, stored: Buffer | undefined): void {
    this.writeTransaction(() => {
      if (stored) this.writePacks([[objectKey(kind, oid), stored]]);
      else this.index.removeSync(objectKey(kind, oid));
    });
  }

  /** Iterates object ids of a kind, optionally from a hex prefix (used by revision lookup, fsck and gc). */
  *listObjects(kind: ObjectKind, hexPrefix = ''): Iterable<Oid> {
    const code = OBJECT_KINDS[kind];
    const evenPrefix = hexPrefix.slice(0, hexPrefix.length & ~1);
    const start = Buffer.concat([Buffer.from([code]), Buffer.from(evenPrefix, 'hex')]);
    const end = Buffer.from([code + 1]);
    for (const key of this.index.getKeys({ start, end })) {
      const k = key as Buffer;
      if (k[0] !== code || k.length !== 33) continue;
      const oid = k.subarray(1).toString('hex');
      if (!oid.startsWith(hexPrefix)) {
        if (oid.slice(0, hexPrefix.length) > hexPrefix) return;
        continue;
      }
      yield oid;
    }
  }

  /** Every (kind, oid, stored size) in the store; for fsck, gc and stats. */
  *listAllObjects(): Iterable<{ kind: ObjectKind; oid: Oid; storedSize: number }> {
    for (const { key, value } of this.index.getRange({})) {
      const k = key as Buffer;
      const kind = KIND_BY_CODE[k[0]!];
      if (!kind || k.length !== 33) throw new RepositoryCorruptError(`object key ${k.toString('hex')}`, 'unknown kind or bad length');
      yield { kind, oid: k.subarray(1).toString('hex'), storedSize: (value as Buffer).readUInt32BE(8) };
    }
  }

  /** commit's writer thread over this environment (compression and LMDB writes), when there is a second core. */
  backgroundWriter(): BackgroundObjectWriter | undefined {
    return BackgroundWriter.available() ? new BackgroundWriter(this) : undefined;
  }

  /** A reader thread over this environment's file that reads `blobs` ahead, in order. */
  blobPrefetcher(blobs: Array<{ oid: Oid; size: number }>): BlobPrefetcher {
    return new BlobPrefetcher(this.path, blobs);
  }

  /** Reader threads over this environment's file that decode chunks ahead. */
  chunkPrefetcher(onChunk: (oid: Oid, data: Buffer | undefined) => void, workers?: number): ChunkPrefetcher {
    return new ChunkPrefetcher(this.path, onChunk, workers);
  }

  close(): Promise<void> {
    return this.env.close();
  }
}

export { objectKey };

type RootClass = new (name: null, options: RootDatabaseOptionsWithPath & { isRoot: true }) => RootDatabase;

/**
 * lmdb's open(), except that an environment whose first transaction fails is closed before the error is thrown.
 * lmdb-js opens the environment and then begins a transaction in the root database's constructor; when that throws,
 * its open() leaves the environment open, holding its share of the lock file, and every later open of the file in
 * this process gets that same environment back.
 *
 * LMDB's own race makes this matter (ITS#10095, fixed in LMDB 0.9.32, still in lmdb-js 3.5.6): the last process to
 * close an environment destroys the lock file's mutexes while it holds the file alone, and a process that opened the
 * lock file in that instant waits for its shared lock, then finds them destroyed. Every transaction it begins fails
 * with EINVAL, and so does every process that opens the file while one such process still holds it. Closed again,
 * the environment lets the next opener that is alone initialize the lock file afresh, and openEnvironment's retry opens.
 */
function openRoot(options: RootDatabaseOptionsWithPath): RootDatabase {
  // Opens the environment (an open that fails there closes it itself) and returns the class open() instantiates.
  const Root = openAsClass({ ...options }) as unknown as RootClass;
  // The root's close() and read methods need nothing of the instance but isRoot: the environment is the class's.
  const bare = Object.create(Root.prototype) as RootDatabase & { isRoot: boolean };
  bare.isRoot = true;
  try {
    // A read transaction first: on destroyed mutexes it fails cleanly with EINVAL, where lmdb-js ignores the failure
    // of a write transaction's begin and then prints "No current read transaction available" before it fails.
    bare.useReadTransaction().done();
    return new Root(null, { ...options, isRoot: true });
  } catch (e) {
    void bare.close();
    throw e;
  }
}

/** How long an open that LMDB answers with EINVAL is retried (see openEnvironment). */
const OPEN_RETRY_MS = 3000;

/**
 * Opens an LMDB environment and its root database as lmdb's open() does, again (for up to about 3 s, waits growing
 * from 25 ms, with jitter so that processes retrying together do not keep meeting) when LMDB says EINVAL. Seen in the
 * test suite when several processes or threads opened one environment at the same moment on a loaded machine: the
 * read-only open's lock set-up (`mdb_env_setup_locks`) fails while another opener is still initializing the lock
 * file, or the first transaction finds the lock file's mutexes destroyed by a process closing at that moment (see
 * openRoot). A retry cannot read wrong data: the open either succeeds whole or fails again and is reported. Every
 * store (repositories, the read and write threads, a bucket's cache) opens through here.
 */
export function openEnvironment(options: RootDatabaseOptionsWithPath): RootDatabase {
  let waited = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      return openRoot(options);
    } catch (e) {
      if ((e as { code?: unknown }).code !== 22 || waited >= OPEN_RETRY_MS) throw e;
      const ms = Math.round(Math.min(250, 25 * 2 ** attempt) * (0.5 + Math.random()));
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
      waited += ms;
    }
  }
}
