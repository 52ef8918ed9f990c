/**
 * The narrow interfaces the rest of viva reaches the store through (packs, refs, object index, content and package
 * indexes, host settings, repository config), so that a repository can live in LMDB on one host or, later, in a
 * bucket shared by many hosts. Only `src/store/` knows which implementation is in use.
 *
 * Reads are synchronous (they always read the host's LMDB); writes that may leave the host are `async`.
 */
import type { Oid } from '../model/oid.js';
import type { ObjectKind } from './object-store.js';
import type { DerivedEntry } from './content-index.js';

/** The id of a pack: `"17"` for an LMDB pack (a u32 in format v1), 64 hex digits (sha256) for content-named packs. */
export type PackId = string;

/** Where an object's stored bytes lie: a byte range of one pack. */
export interface Location {
  pack: PackId;
  offset: number;
  length: number;
}

/** Immutable packs. LMDB: the `packs` database, ids "0", "1", …; content-named stores: `packs/<sha256>`. */
export interface PackStore {
  /** True when a pack's id is the sha256 of its bytes (then `put` is idempotent). */
  readonly contentNamed: boolean;
  /** Stores a pack and returns its id. */
  put(bytes: Buffer, opts?: { signal?: AbortSignal }): Promise<PackId>;
  /** The whole pack, or undefined when it does not exist. Remote stores check the sha256 (RepositoryCorruptError). */
  get(id: PackId): Promise<Buffer | undefined>;
  /** `length` bytes of a pack from `offset`. */
  getRange(id: PackId, offset: number, length: number): Promise<Buffer>;
  /** Every pack, with its size and modification time (ms since the epoch, as `Backend`; a server's LastModified for remote stores). */
  list(): AsyncIterable<{ id: PackId; size: number; mtime: number }>;
  /** Deletes packs; an id that does not exist is not an error. */
  delete(ids: PackId[]): Promise<void>;
}

/** A ref's stored value: an object id, or the name of another ref (a symbolic ref such as HEAD). */
export interface RefValue {
  oid?: Oid;
  /** Symbolic ref (HEAD → refs/heads/main). */
  symref?: string;
}

/** One entry of a ref's reflog (git's logs/refs/…). */
export interface ReflogEntry {
  old: Oid | null;
  new: Oid | null;
  who: string;
  /** Seconds since the epoch. */
  time: number;
  message: string;
}

/** One compare-and-swap move of a ref. */
export interface RefUpdate {
  ref: string;
  /** null deletes the ref. */
  newOid: Oid | null;
  /** undefined: no check; null: the ref must not exist; an oid: the ref must hold exactly it. */
  expectedOld?: Oid | null;
  message: string;
}

/** Options of {@link RefStore.update}. */
export interface RefUpdateOptions {
  /** Seconds since the epoch recorded in the reflog entries (default: now). */
  time?: number;
  /**
   * Point HEAD at this ref (full name) as part of the update, recorded in HEAD's reflog as `checkout: moving from A
   * to B` when HEAD moves (commit does this on its first commit to a branch HEAD is not on).
   */
  head?: string;
}

/**
 * Refs and reflogs. Reads are from a snapshot (LMDB: live); writes are compare-and-swap.
 *
 * Names follow git's D/F rule: `a` and `a/b` cannot both exist (creating one next to the other is a UsageError).
 */
export interface RefStore {
  /** True when {@link RefStore.update} moves several refs all or none (LMDB); otherwise each ref moves atomically. */
  readonly atomicMulti: boolean;
  /** The stored value of `ref` (symbolic refs are not followed), or undefined. */
  read(ref: string): RefValue | undefined;
  /**
   * Follows symbolic refs; returns the final ref name and its oid (no oid for an unborn branch), or undefined when
   * `ref` does not exist. Throws RepositoryCorruptError for a malformed value or a symbolic ref loop.
   */
  resolve(ref: string): { ref: string; oid?: Oid } | undefined;
  /** Refs (not symbolic ones) whose name starts with `prefix` (default `refs/`), in name order. */
  list(prefix?: string): Array<{ ref: string; oid: Oid }>;
  /** The reflog of `ref`, newest first. */
  reflog(ref: string): ReflogEntry[];
  /** Every oid a reflog names, except HEAD's own reflog (gc roots: see refs.ts). */
  reflogOids(): Iterable<Oid>;
  /**
   * Moves refs and appends their reflog entries (and HEAD's, for the branch HEAD is on). Throws RefConflictError when
   * a ref does not hold its `expectedOld`, UsageError when a new ref would break the D/F rule; when `atomicMulti`,
   * nothing changes then. Objects the refs name must be durable before this is called.
   */
  update(updates: RefUpdate[], who: string, opts?: RefUpdateOptions): Promise<void>;
  /**
   * Points HEAD at a branch (`{ symref }`) or detaches it at a commit (`{ oid }`) and records the move in HEAD's
   * reflog with `message` when HEAD then names a commit (a move to an unborn branch leaves no entry), as git does.
   */
  moveHead(target: RefValue, who: string, message: string, time?: number): Promise<void>;
  /** Makes `ref` a symbolic ref to `target` (no reflog entry). */
  setSymbolic(ref: string, target: string): Promise<void>;
  /**
   * Renames a ref with its reflog, and repoints the symbolic refs that named it. Throws RefNotFoundError (no
   * `from`), RefExistsError (`to` exists, unless `force`), UsageError (`to` breaks the D/F rule; `from` itself does
   * not count).
   */
  rename(from: string, to: string, who: string, force?: boolean): Promise<void>;
  /** Removes the entries of `ref`'s reflog whose new value `keep` refuses; returns how many went. */
  dropReflogEntries(ref: string, keep: (oid: Oid) => boolean): Promise<number>;
  /** Re-reads the refs from their source; returns the names that changed. A no-op for LMDB. */
  refresh(): Promise<{ changed: string[] }>;
}

/** Object → location, and listings of the objects stored: always the host's LMDB. */
export interface ObjectIndex {
  /** True when the object is stored (durably). */
  has(kind: ObjectKind, oid: Oid): boolean;
  /** Where the object lies, or undefined. */
  locate(kind: ObjectKind, oid: Oid): Location | undefined;
  /** The ids of the stored objects of a kind, optionally only those starting with `hexPrefix`. */
  list(kind: ObjectKind, hexPrefix?: string): Iterable<Oid>;
  /** Every stored object with the size of its stored (possibly compressed) value. */
  listAll(): Iterable<{ kind: ObjectKind; oid: Oid; storedSize: number }>;
}

/** The content indexes `ix-parent`, `ix-root`, `ix-deriv` (keys as in docs/format.md). */
export interface ContentIndex {
  /** The version of the indexes' layout, or undefined when the repository predates them. */
  version(): number | undefined;
  /** The `ix-parent` values under `key`. */
  parents(key: Buffer): Buffer[];
  /** The `ix-root` values under `key`. */
  roots(key: Buffer): Buffer[];
  /** The commits `ix-deriv` lists under `prefix` + `oid`. */
  derived(prefix: number, oid: Oid): Oid[];
  /** The `ix-parent` keys of objects of a kind whose id starts with `hexPrefix`. */
  parentKeys(kind: 'blob' | 'tree', hexPrefix: string): Iterable<Buffer>;
  /** Every `ix-parent` entry. */
  scanParents(): Iterable<{ key: Buffer; value: Buffer }>;
  /** Every entry of the three indexes. */
  entries(): Iterable<DerivedEntry>;
  /** Adds entries. */
  put(e: DerivedEntry[]): void;
  /** Replaces the contents of the three indexes with `e`. */
  replaceAll(e: DerivedEntry[]): void;
}

/** The package index `ix-pkg`: a blob (package database) → its decoded package list. */
export interface PackageIndex {
  get(blob: Oid): Buffer | undefined;
  put(e: Array<[Buffer, Buffer]>): void;
  entries(): Iterable<[Buffer, Buffer]>;
  replaceAll(e: Array<[Buffer, Buffer]>): void;
}

/**
 * This host's settings (LMDB `meta`): remotes, branches' upstreams, `checkout:*`, merge state, `debindex:*`,
 * `partial`, `promised-blob:*`. Writes are synchronous and durable when they return.
 */
export interface MetaStore {
  /** The value stored under `key`, or undefined. */
  get<T>(key: string): T | undefined;
  /** Stores `v` under `key` (one write transaction). */
  put(key: string, v: unknown): void;
  /** Stores every entry in one write (a batch: one durable transaction instead of one per key). */
  putAll(entries: Array<[string, unknown]>): void;
  /** Removes `key` (no error when it is missing). */
  remove(key: string): void;
  /** The entries whose key starts with `prefix`, in key order. */
  range(prefix: string): Iterable<[string, unknown]>;
  /** The settings every host of the repository shares (`tree-disk:*`). */
  readonly shared: SharedMeta;
}

/** Settings shared by every host of a repository (`tree-disk:*`); writes are async (remote: `meta/<key>` objects). */
export interface SharedMeta {
  get<T>(key: string): T | undefined;
  range(prefix: string): Iterable<[string, unknown]>;
  put(key: string, v: unknown): Promise<void>;
  remove(key: string): Promise<void>;
}

/** Repository-wide settings fixed at creation: LMDB meta keys locally, `config.json` in a bucket. */
export interface RepoConfig {
  format: 1;
  /** A UUID made when the repository was created. */
  id: string;
  /** Seconds since the epoch. */
  created: number;
  /** The branch HEAD pointed at when the repository was created (full ref name). */
  defaultBranch: string;
  storage: 'lmdb' | 's3' | 'memory';
  /** Target pack sizes in bytes: data (chunks, blob records) and meta (trees, commits). */
  packTarget: { data: number; meta: number };
  gc: { graceSeconds: number };
}
