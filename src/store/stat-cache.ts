/**
 * commit's stat cache: source file identity → blob id, so that an unchanged file is not read again (git's index,
 * restic's parent snapshot). Compact, because every committed source path keeps an entry:
 * key = first 16 bytes of sha256(source key); value = blob id (32) + first 8 bytes of sha256(signature) + uint size
 * + uint hole count + (uint offset, uint length)*.
 *
 * It also holds the tree cache (git's cache-tree): source directory → the tree a commit built for it, so that a
 * directory whose entries all look as they did is taken whole, unread. key = the same 16 bytes of sha256(directory
 * key) + 't' (17 bytes, so the two kinds never meet); value = tree id (32) + first 16 bytes of the directory's
 * signature + uint files + uint dirs + uint bytes (the subtree's totals, for the commit's counts).
 */
import fs from 'node:fs';
import type { Database, RootDatabase } from 'lmdb';
import { crypto } from '../lazy.js';
import { Decoder, Encoder } from '../model/codec.js';
import { OID_BYTES, bytesToOid, oidToBytes, type Oid } from '../model/oid.js';
import type { Hole } from '../model/tree.js';
import { WriteError } from '../errors.js';
import { checkLmdbFile } from './lmdb-header.js';
import { lmdbDamageReason, openEnvironment, reasonOf } from './lmdb-store.js';
import { processesUsing } from './compact.js';

export interface StatCacheRecord {
  oid: Oid;
  size: number;
  holes: Hole[];
}

function digest(s: string, n: number): Buffer {
  // One-shot hash: no Hash object per call (two calls per file on every commit).
  return (crypto().hash('sha256', Buffer.from(s, 'latin1'), 'buffer') as Buffer).subarray(0, n);
}

/** A directory's tree as the tree cache recorded it, with the totals of everything below it. */
export interface TreeCacheRecord {
  oid: Oid;
  files: number;
  dirs: number;
  bytes: number;
}

/** This host's stat cache (`repo.statCache`): source file identity → blob id, and source directory → tree id. */
export interface StatCache {
  /** The cached blob for `key` if it was recorded with the same `signature`. */
  read(key: string, signature: string): StatCacheRecord | undefined;
  /** Records entries in one transaction. */
  write(entries: Array<{ key: string; signature: string } & StatCacheRecord>): void;
  /** The recorded tree of directory `key` if it was recorded with the same `signature`. */
  readTree(key: string, signature: Uint8Array): TreeCacheRecord | undefined;
  /** Records directories' trees in one transaction. */
  writeTrees(entries: Array<{ key: string; signature: Uint8Array } & TreeCacheRecord>): void;
  /**
   * Removes entries whose blob or tree `keep` rejects (gc: objects it deletes), in a transaction of its own: before
   * the objects go, so that no record outlives its object even when gc is interrupted (a lookup checks the object
   * exists anyway).
   */
  prune(keep: (oid: Oid, kind: 'blob' | 'tree') => boolean): number;
  /** Closes the cache (Repository.close). */
  close(): Promise<void>;
}

/** The stat cache's file, beside the repository's `data.mdb`. */
export const STAT_CACHE_FILE = 'cache.mdb';
/** Address space reserved for the stat cache (a reservation, not disk use). */
const STAT_CACHE_MAP_SIZE = 2 ** 36;

/**
 * The stat cache in an LMDB environment of its own (`cache.mdb`, beside `data.mdb`), as git keeps its index apart
 * from the object store and borg and restic keep their file caches apart from the repository. It is this host's, and
 * rewritten by every commit: in `data.mdb` its records, and the pages each commit's random inserts copy and leave
 * free, made up 4 % of the repository (18 MB of 422 after the four trees of `npm run bench`), which push, clone and
 * backups would carry.
 *
 * Only ever a saving: a record is used only when its object exists (the callers check), and nothing here fails a
 * command but a write that the disk refuses (WriteError naming `cache.mdb`; commit reports it as a warning). A cache
 * this user may not write is read only; one that cannot be opened, or is damaged, is not used; one whose header is
 * damaged is replaced when no other process has it open. Losing it costs one commit that reads every file.
 */
export class LmdbStatCache implements StatCache {
  private env?: RootDatabase;
  /** The database once opened; null when there is none to use (see open()). */
  private db?: Database<Buffer, Buffer> | null;
  /** Opened read-only although the repository is writable (this user may not write the cache): writes are skipped. */
  private readOnlyFallback = false;
  private closed = false;
  /** LMDB's lock file of the cache. */
  private readonly lock: string;

  /**
   * `file`: the cache's path; `dataFile`: the repository's `data.mdb` (a new cache takes its mode and, for root, its
   * owner, as a shared repository's files must); `readOnly`: a repository opened for reading (nothing is created nor
   * written); `dropLegacy`: removes the stat cache an earlier version kept in `data.mdb` (prune, that is gc, calls it).
   */
  constructor(readonly file: string, private readonly dataFile: string, private readonly readOnly: boolean, private readonly dropLegacy?: () => number) {
    this.lock = `${file}-lock`;
  }

  /** The database, or null when there is none to use: closed, read-only and none yet, or it cannot be opened. */
  private open(): Database<Buffer, Buffer> | null {
    if (this.db !== undefined) return this.db;
    this.db = null;
    if (this.closed) return null;
    try {
      const existed = fs.existsSync(this.file);
      if (this.readOnly && !existed) return null;
      // An empty file is one LMDB is creating in another process this instant: it initialises it itself.
      if (existed && fs.statSync(this.file).size > 0 && !checkLmdbFile(this.file).ok) {
        // A cache: one whose header is damaged is dropped, not repaired — unless another process has it open.
        if (!this.removeFiles()) return null;
      }
      const created = !fs.existsSync(this.file);
      try {
        this.env = openEnvironment({ path: this.file, mapSize: STAT_CACHE_MAP_SIZE, maxDbs: 2, readOnly: this.readOnly });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (this.readOnly || !existed || (code !== 'EACCES' && code !== 'EROFS' && code !== 'EPERM')) throw e;
        this.env = openEnvironment({ path: this.file, mapSize: STAT_CACHE_MAP_SIZE, maxDbs: 2, readOnly: true });
        this.readOnlyFallback = true;
      }
      if (created) this.likeDataFile([this.file, this.lock]);
      this.db = this.env.openDB<Buffer, Buffer>({ name: 'statcache', keyEncoding: 'binary', encoding: 'binary', ...(this.readOnlyFallback ? { create: false } : {}) }) ?? null;
    } catch (e) {
      this.damaged(e);
    }
    return this.db;
  }

  /** Gives new files the mode of `data.mdb`, and for root its owner (as compaction does for its copy). */
  private likeDataFile(files: string[]): void {
    try {
      const st = fs.statSync(this.dataFile);
      for (const f of files) {
        fs.chmodSync(f, st.mode & 0o7777);
        if (process.getuid?.() === 0) fs.chownSync(f, st.uid, st.gid);
      }
    } catch { /* the cache works all the same for this user */ }
  }

  /** Stops using the cache for this handle (an error reading or opening it). */
  private drop(): void {
    const env = this.env;
    this.env = undefined;
    this.db = null;
    void env?.close().catch(() => undefined);
  }

  /** A damage error from LMDB: the cache is not used again by this handle, and replaced by the next one. */
  private damaged(e: unknown): void {
    this.drop();
    if (lmdbDamageReason(e)) this.removeFiles();
  }

  /**
   * Removes the cache's files (a damaged cache), unless the repository is open for reading or another process has
   * them open; false when they stay.
   */
  private removeFiles(): boolean {
    if (this.readOnly || processesUsing([this.file, this.lock]).length > 0) return false;
    try {
      for (const f of [this.file, this.lock]) fs.rmSync(f, { force: true });
      return true;
    } catch {
      return false; // left for a user who may remove them
    }
  }

  /** A write transaction of the cache; nothing when there is no cache this user may write. */
  private transaction(fn: (db: Database<Buffer, Buffer>) => void): void {
    if (this.readOnly) return;
    const db = this.open();
    if (!db || this.readOnlyFallback) return;
    try {
      this.env!.transactionSync(() => fn(db));
    } catch (e) {
      if (lmdbDamageReason(e)) { this.damaged(e); return; }
      throw new WriteError(this.file, reasonOf(e), { cause: e });
    }
  }

  /** The value of `key`, undefined when there is none or the cache cannot be read. */
  private get(key: Buffer): Buffer | undefined {
    const db = this.open();
    if (!db) return undefined;
    try {
      return db.getBinaryFast(key) ?? undefined;
    } catch (e) {
      this.damaged(e);
      return undefined;
    }
  }

  read(key: string, signature: string): StatCacheRecord | undefined {
    const v = this.get(digest(key, 16));
    if (!v || v.length < OID_BYTES + 8) return undefined;
    if (!v.subarray(OID_BYTES, OID_BYTES + 8).equals(digest(signature, 8))) return undefined;
    try {
      const d = new Decoder(v);
      const oid = bytesToOid(d.raw(OID_BYTES));
      d.raw(8);
      const size = d.uint();
      const holes: Hole[] = [];
      for (let n = d.uint(); n > 0; n--) holes.push({ offset: d.uint(), length: d.uint() });
      return { oid, size, holes };
    } catch {
      return undefined;
    }
  }

  write(entries: Array<{ key: string; signature: string } & StatCacheRecord>): void {
    if (!entries.length) return;
    this.transaction((db) => {
      for (const e of entries) {
        const enc = new Encoder().raw(oidToBytes(e.oid)).raw(digest(e.signature, 8)).uint(e.size).uint(e.holes.length);
        for (const h of e.holes) enc.uint(h.offset).uint(h.length);
        db.putSync(digest(e.key, 16), enc.finish());
      }
    });
  }

  readTree(key: string, signature: Uint8Array): TreeCacheRecord | undefined {
    const v = this.get(treeKey(key));
    if (!v || v.length < OID_BYTES + TREE_SIGNATURE_BYTES) return undefined;
    if (!v.subarray(OID_BYTES, OID_BYTES + TREE_SIGNATURE_BYTES).equals(signature.subarray(0, TREE_SIGNATURE_BYTES))) return undefined;
    try {
      const d = new Decoder(v);
      const oid = bytesToOid(d.raw(OID_BYTES));
      d.raw(TREE_SIGNATURE_BYTES);
      return { oid, files: d.uint(), dirs: d.uint(), bytes: d.uint() };
    } catch {
      return undefined;
    }
  }

  writeTrees(entries: Array<{ key: string; signature: Uint8Array } & TreeCacheRecord>): void {
    if (!entries.length) return;
    this.transaction((db) => {
      for (const e of entries) {
        const value = new Encoder().raw(oidToBytes(e.oid)).raw(e.signature.subarray(0, TREE_SIGNATURE_BYTES)).uint(e.files).uint(e.dirs).uint(e.bytes).finish();
        db.putSync(treeKey(e.key), value);
      }
    });
  }

  /**
   * Never fails gc: a record that outlives its object is not used anyway (the callers check that it exists), so a
   * cache that cannot be read or written here is left as it is.
   */
  prune(keep: (oid: Oid, kind: 'blob' | 'tree') => boolean): number {
    if (this.readOnly) return 0;
    const legacy = this.dropLegacy?.() ?? 0;
    if (!fs.existsSync(this.file)) return legacy;
    try {
      const db = this.open();
      if (!db || this.readOnlyFallback) return legacy;
      const stale: Buffer[] = [];
      for (const { key, value } of db.getRange({})) {
        const v = value as Buffer;
        const kind = (key as Buffer).length === 17 ? 'tree' : 'blob';
        if (v.length < OID_BYTES || !keep(bytesToOid(v.subarray(0, OID_BYTES)), kind)) stale.push(Buffer.from(key as Buffer));
      }
      if (stale.length) this.transaction((d) => { for (const k of stale) d.removeSync(k); });
      return legacy + stale.length;
    } catch (e) {
      this.damaged(e);
      return legacy;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const env = this.env;
    this.env = undefined;
    this.db = null;
    await env?.close();
  }
}

/** Bytes of a directory's signature the tree cache compares (128 bits of sha256: a collision is out of reach). */
const TREE_SIGNATURE_BYTES = 16;
const TREE_MARK = Buffer.from('t');

function treeKey(key: string): Buffer {
  return Buffer.concat([digest(key, 16), TREE_MARK]);
}
