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
import { crypto } from '../lazy.js';
import { Decoder, Encoder } from '../model/codec.js';
import { OID_BYTES, bytesToOid, oidToBytes, type Oid } from '../model/oid.js';
import type { Hole } from '../model/tree.js';
import type { LmdbStore } from './lmdb-store.js';

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
  /** Removes entries whose blob or tree `keep` rejects (gc: objects it deletes); LMDB: call inside a write transaction. */
  prune(keep: (oid: Oid, kind: 'blob' | 'tree') => boolean): number;
}

/** The `statcache` database of an LmdbStore as a StatCache. */
export class LmdbStatCache implements StatCache {
  constructor(private readonly store: LmdbStore) {}

  read(key: string, signature: string): StatCacheRecord | undefined {
    return readStatCache(this.store, key, signature);
  }

  write(entries: Array<{ key: string; signature: string } & StatCacheRecord>): void {
    writeStatCache(this.store, entries);
  }

  readTree(key: string, signature: Uint8Array): TreeCacheRecord | undefined {
    const v = this.store.statCache.getBinaryFast(treeKey(key));
    if (!v || v.length < OID_BYTES + TREE_SIGNATURE_BYTES) return undefined;
    if (!v.subarray(OID_BYTES, OID_BYTES + TREE_SIGNATURE_BYTES).equals(signature.subarray(0, TREE_SIGNATURE_BYTES))) return undefined;
    const d = new Decoder(v);
    const oid = bytesToOid(d.raw(OID_BYTES));
    d.raw(TREE_SIGNATURE_BYTES);
    return { oid, files: d.uint(), dirs: d.uint(), bytes: d.uint() };
  }

  writeTrees(entries: Array<{ key: string; signature: Uint8Array } & TreeCacheRecord>): void {
    if (!entries.length) return;
    this.store.writeTransaction(() => {
      for (const e of entries) {
        const value = new Encoder().raw(oidToBytes(e.oid)).raw(e.signature.subarray(0, TREE_SIGNATURE_BYTES)).uint(e.files).uint(e.dirs).uint(e.bytes).finish();
        this.store.statCache.putSync(treeKey(e.key), value);
      }
    });
  }

  prune(keep: (oid: Oid, kind: 'blob' | 'tree') => boolean): number {
    return pruneStatCache(this.store, keep);
  }
}

/** Bytes of a directory's signature the tree cache compares (128 bits of sha256: a collision is out of reach). */
const TREE_SIGNATURE_BYTES = 16;
const TREE_MARK = Buffer.from('t');

function treeKey(key: string): Buffer {
  return Buffer.concat([digest(key, 16), TREE_MARK]);
}

/** The cached blob for `key` if it was recorded with the same `signature`. */
export function readStatCache(store: LmdbStore, key: string, signature: string): StatCacheRecord | undefined {
  const v = store.statCache.getBinaryFast(digest(key, 16));
  if (!v || v.length < OID_BYTES + 8) return undefined;
  if (!v.subarray(OID_BYTES, OID_BYTES + 8).equals(digest(signature, 8))) return undefined;
  const d = new Decoder(v);
  const oid = bytesToOid(d.raw(OID_BYTES));
  d.raw(8);
  const size = d.uint();
  const holes: Hole[] = [];
  for (let n = d.uint(); n > 0; n--) holes.push({ offset: d.uint(), length: d.uint() });
  return { oid, size, holes };
}

/** Records entries in one transaction. */
export function writeStatCache(store: LmdbStore, entries: Array<{ key: string; signature: string } & StatCacheRecord>): void {
  store.writeTransaction(() => {
    for (const e of entries) {
      const enc = new Encoder().raw(oidToBytes(e.oid)).raw(digest(e.signature, 8)).uint(e.size).uint(e.holes.length);
      for (const h of e.holes) enc.uint(h.offset).uint(h.length);
      store.statCache.putSync(digest(e.key, 16), enc.finish());
    }
  });
}

/** Removes entries whose blob (or tree, for the tree cache's) `keep` rejects (gc: objects it deletes). Call inside a write transaction. */
export function pruneStatCache(store: LmdbStore, keep: (oid: Oid, kind: 'blob' | 'tree') => boolean): number {
  const stale: Buffer[] = [];
  for (const { key, value } of store.statCache.getRange({})) {
    const v = value as Buffer;
    const kind = (key as Buffer).length === 17 ? 'tree' : 'blob';
    if (v.length < OID_BYTES || !keep(bytesToOid(v.subarray(0, OID_BYTES)), kind)) stale.push(Buffer.from(key as Buffer));
  }
  for (const k of stale) store.statCache.removeSync(k);
  return stale.length;
}
