/**
 * The LMDB environment of a repository: one file holding objects, refs, reflog, config, stat cache and sessions
 * as named sub-databases, so that "write objects, then move a ref" are transactions on one environment.
 * This is the only module that imports lmdb.
 */
import { open, type Database, type RootDatabase } from 'lmdb';
import { ObjectNotFoundError, RepositoryCorruptError } from '../errors.js';
import type { Oid } from '../model/oid.js';
import {
  type ObjectKind, type ObjectStore, KIND_BY_CODE, OBJECT_KINDS, decodeStored, encodeStored, objectKey, DEFAULT_ZSTD_LEVEL,
} from './object-store.js';

export const DATA_FILE = 'data.mdb';
/** 1 TiB of address space (a reservation, not disk use); lmdb-js segfaults above 64 TiB. */
export const DEFAULT_MAP_SIZE = 2 ** 40;
/** Objects are committed in transactions of about this many stored bytes. */
export const DEFAULT_BATCH_BYTES = 16 * 1024 * 1024;

export interface LmdbStoreOptions {
  readOnly?: boolean;
  zstdLevel?: number;
}

export class LmdbStore implements ObjectStore {
  readonly env: RootDatabase;
  readonly objects: Database<Buffer, Buffer>;
  readonly refs: Database<any, string>;
  readonly reflog: Database<any, any>;
  readonly meta: Database<any, string>;
  readonly statCache: Database<any, string>;
  readonly sessions: Database<any, string>;
  private pending = new Map<string, [Buffer, Buffer]>();
  private pendingBytes = 0;
  readonly zstdLevel: number;
  /** Bytes and counts written through this handle (for stats and progress). */
  written = { objects: 0, bytes: 0 };

  constructor(readonly path: string, options: LmdbStoreOptions = {}) {
    this.zstdLevel = options.zstdLevel ?? DEFAULT_ZSTD_LEVEL;
    this.env = open({ path, mapSize: DEFAULT_MAP_SIZE, readOnly: options.readOnly ?? false, maxDbs: 16, keyEncoding: 'ordered-binary' });
    this.objects = this.env.openDB<Buffer, Buffer>({ name: 'objects', keyEncoding: 'binary', encoding: 'binary' });
    this.refs = this.env.openDB({ name: 'refs', encoding: 'msgpack' });
    this.reflog = this.env.openDB({ name: 'reflog', encoding: 'msgpack' });
    this.meta = this.env.openDB({ name: 'meta', encoding: 'msgpack' });
    this.statCache = this.env.openDB({ name: 'statcache', encoding: 'msgpack' });
    this.sessions = this.env.openDB({ name: 'sessions', encoding: 'msgpack' });
  }

  hasObject(kind: ObjectKind, oid: Oid): boolean {
    const k = objectKey(kind, oid);
    return this.pending.has(k.toString('latin1')) || this.objects.doesExist(k);
  }

  /** Stored value (codec byte + payload) without decoding; undefined when missing. */
  tryReadStored(kind: ObjectKind, oid: Oid): Buffer | undefined {
    const k = objectKey(kind, oid);
    const p = this.pending.get(k.toString('latin1'));
    if (p) return p[1];
    return this.objects.get(k);
  }

  tryReadObject(kind: ObjectKind, oid: Oid): Buffer | undefined {
    const k = objectKey(kind, oid);
    const p = this.pending.get(k.toString('latin1'));
    const stored = p ? p[1] : this.objects.getBinaryFast(k);
    if (!stored) return undefined;
    try {
      return decodeStored(stored);
    } catch (e) {
      throw new RepositoryCorruptError(`${kind} ${oid}`, `cannot decode stored value: ${(e as Error).message}`);
    }
  }

  readObject(kind: ObjectKind, oid: Oid): Buffer {
    const v = this.tryReadObject(kind, oid);
    if (!v) throw new ObjectNotFoundError(kind, oid);
    return v;
  }

  /** Queues an object; returns its stored (encoded) size. */
  writeObject(kind: ObjectKind, oid: Oid, data: Uint8Array): number {
    const stored = encodeStored(data, this.zstdLevel);
    this.writeStoredObject(kind, oid, stored);
    return stored.length;
  }

  drain(): Promise<void> {
    return Promise.resolve();
  }

  /** Queues an already encoded stored value (codec byte + payload), e.g. from another repository. */
  writeStoredObject(kind: ObjectKind, oid: Oid, stored: Uint8Array): void {
    const k = objectKey(kind, oid);
    const ks = k.toString('latin1');
    if (this.pending.has(ks)) return;
    const v = Buffer.isBuffer(stored) ? stored : Buffer.from(stored);
    this.pending.set(ks, [k, v]);
    this.pendingBytes += v.length + 64;
    if (this.pendingBytes >= DEFAULT_BATCH_BYTES) this.flush();
  }

  /** Commits queued objects in one durable transaction. */
  flush(): void {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.pendingBytes = 0;
    this.env.transactionSync(() => {
      for (const [k, v] of batch.values()) {
        if (!this.objects.doesExist(k)) {
          this.objects.putSync(k, v);
          this.written.objects++;
          this.written.bytes += v.length;
        }
      }
    });
  }

  /** Drops queued objects (after a failed commit: nothing references them). */
  discardPending(): void {
    this.pending = new Map();
    this.pendingBytes = 0;
  }

  /** Iterates object ids of a kind, optionally from a hex prefix (used by revision lookup, fsck and gc). */
  *listObjects(kind: ObjectKind, hexPrefix = ''): Iterable<Oid> {
    const code = OBJECT_KINDS[kind];
    const evenPrefix = hexPrefix.slice(0, hexPrefix.length & ~1);
    const start = Buffer.concat([Buffer.from([code]), Buffer.from(evenPrefix, 'hex')]);
    const end = Buffer.from([code + 1]);
    for (const key of this.objects.getKeys({ start, end })) {
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
    for (const { key, value } of this.objects.getRange({})) {
      const k = key as Buffer;
      const kind = KIND_BY_CODE[k[0]!];
      if (!kind || k.length !== 33) throw new RepositoryCorruptError(`object key ${k.toString('hex')}`, 'unknown kind or bad length');
      yield { kind, oid: k.subarray(1).toString('hex'), storedSize: (value as Buffer).length };
    }
  }

  close(): Promise<void> {
    return this.env.close();
  }
}

export { objectKey };
