/**
 * Demand fetch for disks read in a partial clone (`clone --filter manifests`): before a range of a disk is read, the
 * blob records and chunks it comes from that are not local are fetched from the promisor remote — whole chunks, with
 * read-ahead over the next runs of the disk, in one request per kind — and stored (verified, as every received
 * object), so the next read of the same bytes, in this session or the next, needs no network.
 *
 * The disk's region maps (and an overlay's patch) are fetched whole when the disk is opened: the run table is built
 * from them. File blobs, a region's packed metadata blob and their chunks come one range at a time: a blob's record
 * first (kept beside the object store until its content is complete, see putPromisedRecords), then the chunks the
 * range needs.
 */
import type { Oid } from '../model/oid.js';
import { diskReferences, type Disk } from '../model/disk.js';
import type { Repository } from '../store/repository.js';
import { readDisk } from '../store/typed.js';
import { decodeBlob } from '../model/blob.js';
import { RemoteError } from '../errors.js';
import { decodeStored } from '../store/object-store.js';
import { fetchObjects, missingContent, hasBlobRecord, partialConfig, putPromisedRecords, tryReadPromisedRecord } from '../sync/partial.js';
import type { DiskReader } from './disk-reader.js';

/**
 * Bytes of the disk past a read whose missing chunks are fetched with it. A guest reads a file system in short
 * sequential bursts (the kernel's own read-ahead is 128 KiB): fetching a little further saves a round trip per burst
 * without fetching much the guest never reads.
 */
export const DEFAULT_FETCH_AHEAD = 256 << 10;

/** What a {@link DiskFetcher} fetched so far. */
export interface DiskFetchStats {
  /** Requests to the remote (records and chunks are separate requests). */
  requests: number;
  /** Stored bytes received. */
  bytes: number;
  /** Chunks received. */
  chunks: number;
}

/**
 * Fetches the map blobs of a disk (and of the disks under an overlay) that a partial clone lacks: the run table is
 * built from them. Resolves with the bytes received; 0 outside a partial clone.
 * Throws RemoteError when the promisor remote cannot be reached.
 */
export async function fetchDiskMaps(repo: Repository, disk: Oid): Promise<number> {
  if (!partialConfig(repo)) return 0;
  const blobs: Oid[] = [];
  const disks = [disk];
  while (disks.length) {
    const d: Disk = readDisk(repo.objects, disks.pop()!);
    const maps = new Set<Oid>();
    for (const r of d.regions) {
      maps.add(r.content.map);
      if (r.content.kind === 'lvm') for (const v of r.content.volumes) maps.add(v.content.map);
    }
    if (d.overlay) { maps.add(d.overlay.patch); disks.push(d.overlay.base); }
    for (const ref of diskReferences(d)) if (ref.kind === 'blob' && maps.has(ref.oid)) blobs.push(ref.oid);
  }
  return fetchObjects(repo, missingContent(repo, blobs), { withContent: true });
}

/**
 * Makes ranges of one disk readable in a partial clone (see the module comment). Fetches run one at a time, in the
 * order asked: two readers of the same missing bytes fetch them once.
 */
export class DiskFetcher {
  /** Requests made, bytes and chunks fetched so far. */
  readonly stats: DiskFetchStats = { requests: 0, bytes: 0, chunks: 0 };
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly repo: Repository, private readonly reader: DiskReader, private readonly ahead = DEFAULT_FETCH_AHEAD) {
    reader.blobs.promised ??= (oid) => tryReadPromisedRecord(repo, oid);
  }

  /**
   * Resolves when bytes [offset, offset + length) of the disk can be read without the network.
   * Throws RemoteError (the remote is unreachable or lacks an object), RangeError outside the disk.
   */
  ensure(offset: number, length: number): Promise<void> {
    const p = this.queue.then(() => this.fetchFor(offset, length));
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async fetchFor(offset: number, length: number): Promise<void> {
    const store = this.repo.objects;
    const reader = this.reader;
    const need = reader.spans(offset, length);
    const missing = (n: { blob: Oid }) => !hasBlobRecord(this.repo, n.blob);
    const chunksMissing = (spans: typeof need) => {
      const out = new Map<Oid, number>();
      for (const s of spans) {
        for (const c of reader.blobs.chunksOf(s.blob, s.from, s.length)) {
          if (!out.has(c.oid) && !store.hasObject('chunk', c.oid)) out.set(c.oid, c.length);
        }
      }
      return out;
    };
    // Everything local (the common case once warm): no read-ahead either, nothing to ask.
    if (!need.some(missing) && !chunksMissing(need).size) return;
    const all = reader.spans(offset, Math.min(reader.disk.size - offset, length + this.ahead));
    const records = [...new Set(all.filter(missing).map((s) => s.blob))];
    if (records.length) await this.fetchRecords(records);
    const chunks = chunksMissing(all);
    if (chunks.size) {
      await this.fetch([...chunks.keys()].map((oid) => ({ kind: 'chunk' as const, oid })));
      this.stats.chunks += chunks.size;
    }
  }

  private async fetchRecords(oids: Oid[]): Promise<void> {
    this.stats.requests++;
    // The transport is loaded only when a partial clone fetches: serving a full repository never needs it.
    const { readPromisorObjects } = await import('./sync.js');
    const got = await readPromisorObjects(this.repo, oids.map((oid) => ({ kind: 'blob' as const, oid })));
    const url = partialConfig(this.repo)!.remote;
    const records: Array<{ oid: Oid; raw: Buffer }> = [];
    for (const o of got) {
      this.stats.bytes += o.stored.length;
      let raw: Buffer;
      try {
        raw = decodeStored(o.stored);
        decodeBlob(raw);
      } catch (e) {
        throw new RemoteError(url, `blob '${o.oid}' cannot be decoded: ${(e as Error).message} (the remote sent bad data)`);
      }
      records.push({ oid: o.oid, raw });
    }
    const lacking = oids.filter((oid) => !records.some((r) => r.oid === oid));
    if (lacking.length) throw new RemoteError(url, `blob '${lacking[0]}' is not on the remote`);
    putPromisedRecords(this.repo, records);
  }

  private async fetch(ids: Array<{ kind: 'blob' | 'chunk'; oid: Oid }>): Promise<void> {
    this.stats.requests++;
    this.stats.bytes += await fetchObjects(this.repo, ids);
  }
}
