/**
 * Cuts stored objects into content-named packs for a bucket repository and uploads them while more objects arrive:
 * the remote sink of a commit's write path (bucket format 1, docs/format.md).
 */
import { randomBytes } from 'node:crypto';
import type { PackId, PackStore } from '../interfaces.js';
import { PACK_ENTRY, encodePack, isMetaKind } from '../lmdb-store.js';
import type { SegmentEntry, SegmentPack } from './segment.js';

/** Random bytes at the end of every bucket pack (see close()). */
export const PACK_NONCE = 16;

/** Closed packs whose upload has not finished at most; `add` waits while this many are pending. */
export const MAX_PENDING_UPLOADS = 4;

/** The pack sizes the writer cuts at, in bytes (RepoConfig.packTarget). */
export interface PackTarget { data: number; meta: number }

/** What a `RemotePackWriter` uploaded: the packs and where each object lies in them, ready for an index segment. */
export interface WrittenPacks {
  /** The uploaded packs, in the order they were closed. */
  packs: SegmentPack[];
  /** One entry per object, grouped by pack in the order of `packs`, each pack's objects in the order they were added. */
  entries: SegmentEntry[];
}

/** Options of `RemotePackWriter`. */
export interface RemotePackWriterOptions {
  /** Closed packs waiting for their upload at most (default MAX_PENDING_UPLOADS). */
  maxPending?: number;
  /** Aborting stops uploads that have not started; `add` and `finish` then reject with AbortedError. */
  signal?: AbortSignal;
  /** Called after each pack's upload (for progress: `uploading packs`). */
  onUploaded?: (pack: SegmentPack) => void;
}

interface OpenPack { objects: Array<[Buffer, Buffer]>; size: number }
interface ClosedPack { pack: SegmentPack; objects: Array<{ key: Buffer; offset: number; length: number }> }

/**
 * Collects stored objects (`add(key, storedValue)`) into two open packs, content (chunks, blob records) and metadata
 * (trees, commits, disks: the key's kind byte decides, as for LMDB packs), in the pack format of docs/format.md
 * *Packs*. A pack closes when its stored values plus 41 bytes of header per object reach its target (so it exceeds
 * the target by less than one object); it is then uploaded through the pack store (a `RemotePackStore` names it by
 * its sha256). Memory stays bounded: at most MAX_PENDING_UPLOADS closed packs wait for their upload, plus the two
 * open ones.
 *
 * Backpressure: `add` resolves at once while fewer than MAX_PENDING_UPLOADS uploads are pending, otherwise when one
 * finishes. After an upload failed, `add` and `finish` reject with that failure (a RemoteError); objects that were
 * added once are not added again.
 *
 * @example
 * const w = new RemotePackWriter(new RemotePackStore(backend), config.packTarget);
 * for (const [key, stored] of objects) await w.add(key, stored);
 * const { packs, entries } = await w.finish();
 * await segments.putSegment({ packs, entries, retired: [], tombstones: [] });
 */
export class RemotePackWriter {
  private readonly open: [OpenPack, OpenPack] = [{ objects: [], size: 0 }, { objects: [], size: 0 }];
  private readonly seen = new Set<string>();
  private readonly pending = new Set<Promise<void>>();
  private readonly closed: ClosedPack[] = [];
  private failure: unknown;
  private finished = false;

  private readonly maxPending: number;

  constructor(private readonly store: Pick<PackStore, 'put'>, private readonly target: PackTarget,
    private readonly options: RemotePackWriterOptions = {}) {
    this.maxPending = options.maxPending ?? MAX_PENDING_UPLOADS;
    if (!(target.data > 0 && target.meta > 0)) throw new RangeError(`pack targets must be positive (data ${target.data}, meta ${target.meta})`);
  }

  /** Closed packs whose upload has not finished yet. */
  get pendingUploads(): number { return this.pending.size; }

  /**
   * Adds one object: `key` is its 33-byte object key (kind byte + id), `stored` its stored value (codec byte, then
   * raw or zstd bytes). Both are copied. An object already added is skipped. Waits while MAX_PENDING_UPLOADS uploads
   * are pending; rejects with the first upload failure.
   */
  async add(key: Buffer, stored: Uint8Array): Promise<void> {
    if (this.finished) throw new Error('RemotePackWriter.add after finish');
    if (this.failure !== undefined) throw this.failure;
    if (key.length !== 33) throw new RangeError(`an object key has 33 bytes, not ${key.length}`);
    const name = key.toString('latin1');
    if (this.seen.has(name)) return;
    this.seen.add(name);
    const cls = isMetaKind(key[0]!) ? 1 : 0;
    const open = this.open[cls];
    open.objects.push([Buffer.from(key), Buffer.from(stored)]);
    open.size += stored.length + PACK_ENTRY;
    if (open.size >= (cls === 1 ? this.target.meta : this.target.data)) this.close(cls);
    while (this.pending.size >= this.maxPending) await Promise.race(this.pending);
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * Closes the open packs, waits for every upload, and returns the packs and the objects' locations. Rejects with
   * the first upload failure (after every other upload has settled).
   */
  async finish(): Promise<WrittenPacks> {
    if (!this.finished) {
      this.finished = true;
      this.close(0);
      this.close(1);
    }
    while (this.pending.size > 0) await Promise.race(this.pending);
    if (this.failure !== undefined) throw this.failure;
    return {
      packs: this.closed.map((c) => c.pack),
      entries: this.closed.flatMap((c) => c.objects.map((o) => ({ key: o.key, pack: c.pack.id, offset: o.offset, length: o.length }))),
    };
  }

  private close(cls: 0 | 1): void {
    const open = this.open[cls];
    if (open.objects.length === 0) return;
    this.open[cls] = { objects: [], size: 0 };
    const encoded = encodePack(open.objects);
    const { offsets } = encoded;
    // 16 random bytes that no entry covers end every bucket pack, so every upload has a name of its own: a copy gc
    // tombstoned (object X in pack P) is never re-created under P's name when a writer uploads X again, which would
    // leave the new copy under the old tombstone.
    const value = Buffer.concat([encoded.value, randomBytes(PACK_NONCE)]);
    // Keep the keys and ranges only: the stored values are in `value`, which is dropped once it is uploaded.
    const slot: ClosedPack = {
      pack: { id: '', size: value.length, class: cls === 1 ? 'meta' : 'data' },
      objects: open.objects.map(([key, stored], i) => ({ key, offset: offsets[i]!, length: stored.length })),
    };
    this.closed.push(slot);
    const upload = this.store.put(value, { signal: this.options.signal }).then((id: PackId) => {
      slot.pack.id = id;
      this.options.onUploaded?.(slot.pack);
    }, (e: unknown) => {
      this.failure ??= e;
    }).finally(() => this.pending.delete(upload));
    this.pending.add(upload);
  }
}
