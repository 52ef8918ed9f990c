/**
 * The host's index of a bucket repository: every copy of every object the bucket's index segments name, the packs
 * they lie in (with gc's retirements), the copies gc tombstoned, and which segments were ingested. It lives in the
 * host cache's LMDB environment (sub-databases `remote-copies`, `remote-packs`, `remote-tombs`, `segments`) and can
 * always be rebuilt from the bucket (`viva index rebuild`).
 *
 * Ingesting is order-independent: copies are only ever added, and retirements and tombstones are kept apart and
 * applied when a copy is looked up, so a segment that retires a pack may be ingested before the one that filled it.
 */
import type { Database, RootDatabase } from 'lmdb';
import type { Location, PackId } from '../interfaces.js';
import type { PackClass, Segment } from './segment.js';

/** What the index knows of a pack. */
export interface RemotePackInfo { size: number; class: PackClass; retired: boolean }

const SHA = 32;

/**
 * Copies, packs, tombstones and ingested segments of one bucket repository, over sub-databases of `env`.
 *
 * @example
 * const ix = new RemoteIndex(cache.env);
 * if (!ix.ingested(sha)) ix.ingest(sha, await segments.getSegment(sha));
 * ix.locate(objectKey('tree', oid));   // { pack: '3f…', offset, length } or undefined
 */
export class RemoteIndex {
  /** Object key (33 bytes) → one value per copy: pack sha (32 bytes), offset and length (u32 BE). */
  private readonly copies: Database<Buffer, Buffer>;
  /** Pack sha (32 bytes) → RemotePackInfo. */
  private readonly packs: Database<RemotePackInfo, Buffer>;
  /** Object key + pack sha (65 bytes) → empty: copies gc marked. */
  private readonly tombs: Database<Buffer, Buffer>;
  /** Segment sha (32 bytes) → ms since the epoch of its ingestion. */
  private readonly segments: Database<number, Buffer>;

  constructor(private readonly env: RootDatabase) {
    this.copies = env.openDB<Buffer, Buffer>({ name: 'remote-copies', keyEncoding: 'binary', encoding: 'binary', dupSort: true });
    this.packs = env.openDB<RemotePackInfo, Buffer>({ name: 'remote-packs', keyEncoding: 'binary', encoding: 'msgpack' });
    this.tombs = env.openDB<Buffer, Buffer>({ name: 'remote-tombs', keyEncoding: 'binary', encoding: 'binary' });
    this.segments = env.openDB<number, Buffer>({ name: 'segments', keyEncoding: 'binary', encoding: 'msgpack' });
  }

  /** True when segment `sha` was ingested. */
  ingested(sha: string): boolean {
    return this.segments.doesExist(Buffer.from(sha, 'hex'));
  }

  /** The names of the ingested segments. */
  ingestedSegments(): string[] {
    return [...this.segments.getKeys()].map((k) => Buffer.from(k).toString('hex'));
  }

  /** Records segment `sha` in one durable write transaction (a second ingestion of the same segment changes nothing). */
  ingest(sha: string, seg: Segment): void {
    this.env.transactionSync(() => {
      const name = Buffer.from(sha, 'hex');
      if (this.segments.doesExist(name)) return;
      for (const p of seg.packs) {
        const k = Buffer.from(p.id, 'hex');
        const cur = this.packs.get(k);
        if (!cur) this.packs.putSync(k, { size: p.size, class: p.class, retired: false });
      }
      for (const e of seg.entries) this.copies.putSync(e.key, copyValue(e.pack, e.offset, e.length));
      for (const t of seg.tombstones) this.tombs.putSync(Buffer.concat([t.key, Buffer.from(t.pack, 'hex')]), Buffer.alloc(0));
      for (const id of seg.retired) {
        const k = Buffer.from(id, 'hex');
        const cur = this.packs.get(k);
        // A pack retired before the segment that filled it is known: size and class come with that segment.
        this.packs.putSync(k, { size: cur?.size ?? 0, class: cur?.class ?? 'data', retired: true });
      }
      this.segments.putSync(name, Date.now());
    });
  }

  /** Where a live copy of the object lies (a pack not retired, a copy not tombstoned), or undefined. */
  locate(key: Buffer): Location | undefined {
    return this.liveCopies(key, true)[0];
  }

  /**
   * True when a writer may rely on the bucket having the object: a live copy exists that gc has not tombstoned. An
   * object with only tombstoned copies must be uploaded again (gc may delete them once its writers have ended).
   */
  hasLive(key: Buffer): boolean {
    return this.liveCopies(key, true).length > 0;
  }

  /** Every copy of the object in a pack that is not retired, tombstoned ones included when `live` is false. */
  liveCopies(key: Buffer, live = true): Location[] {
    const out: Location[] = [];
    for (const v of this.copies.getValues(key) as Iterable<Buffer>) {
      const pack = v.subarray(0, SHA);
      const info = this.packs.get(Buffer.from(pack));
      if (!info || info.retired) continue;
      if (live && this.tombs.doesExist(Buffer.concat([key, pack]))) continue;
      out.push({ pack: pack.toString('hex'), offset: v.readUInt32BE(SHA), length: v.readUInt32BE(SHA + 4) });
      if (live) break;
    }
    return out;
  }

  /** True when gc has tombstoned the copy of the object `key` in pack `pack`. */
  tombstoned(key: Buffer, pack: PackId): boolean {
    return this.tombs.doesExist(Buffer.concat([key, Buffer.from(pack, 'hex')]));
  }

  /**
   * Every copy in a pack that is not retired, tombstoned ones included (flagged), in key order: what gc marks from
   * and what a compacted segment keeps.
   */
  *copiesInLivePacks(): Iterable<{ key: Buffer; pack: PackId; offset: number; length: number; tombstoned: boolean }> {
    for (const { key, value } of this.copies.getRange({})) {
      const k = Buffer.from(key);
      const v = value as Buffer;
      const pack = v.subarray(0, SHA);
      const info = this.packs.get(Buffer.from(pack));
      if (!info || info.retired) continue;
      yield { key: k, pack: pack.toString('hex'), offset: v.readUInt32BE(SHA), length: v.readUInt32BE(SHA + 4), tombstoned: this.tombs.doesExist(Buffer.concat([k, pack])) };
    }
  }

  /** The packs gc retired (their copies no longer count), by id. */
  *retiredPacks(): Iterable<PackId> {
    for (const { key, value } of this.packs.getRange({})) if (value.retired) yield Buffer.from(key).toString('hex');
  }

  /** What the index knows of pack `id`, or undefined. */
  pack(id: PackId): RemotePackInfo | undefined {
    return this.packs.get(Buffer.from(id, 'hex'));
  }

  /** The packs that are not retired, with what is known of them. */
  *livePacks(): Iterable<{ id: PackId } & RemotePackInfo> {
    for (const { key, value } of this.packs.getRange({})) {
      if (!value.retired) yield { id: Buffer.from(key).toString('hex'), ...value };
    }
  }

  /** Every object key with a live copy (each once), in key order. */
  *keys(): Iterable<Buffer> {
    for (const k of this.copies.getKeys()) {
      const key = Buffer.from(k);
      if (this.hasLive(key)) yield key;
    }
  }

  /** Forgets everything (before a rebuild from the bucket), in one write transaction. */
  clear(): void {
    this.env.transactionSync(() => {
      for (const db of [this.copies, this.packs, this.tombs, this.segments] as Array<Database<unknown, Buffer>>) void db.clearSync();
    });
  }
}

function copyValue(pack: PackId, offset: number, length: number): Buffer {
  const v = Buffer.allocUnsafe(SHA + 8);
  v.write(pack, 0, 'hex');
  v.writeUInt32BE(offset, SHA);
  v.writeUInt32BE(length, SHA + 4);
  return v;
}
