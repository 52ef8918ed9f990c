/**
 * The upload step of a write to a bucket repository. Objects are first written to the host's cache like to any local
 * repository (numbered LMDB packs, durable at flush); `uploadNewObjects` then sends every object of the packs written
 * since the session began that the bucket does not hold live, re-cut into content-named bucket packs, and publishes
 * them with one index segment. Only then may a ref name them (objects first, then the ref).
 */
import { type LmdbStore, packKey } from '../lmdb-store.js';
import { RemotePackWriter, type PackTarget } from './remote-pack-writer.js';
import type { RemotePackStore } from './remote-packs.js';
import type { RemoteIndex } from './remote-index.js';
import type { Segment, SegmentPack, SegmentStore } from './segment.js';

/** What an upload sent. */
export interface UploadResult {
  /** The segment that published the new packs, or undefined when nothing was new. */
  segment?: string;
  objects: number;
  /** Stored bytes uploaded (pack headers not counted). */
  bytes: number;
  packs: number;
  /** The first local pack this upload did not look at: where the next one starts. */
  until: number;
}

/** The bucket side of an upload. */
export interface UploadTarget {
  index: RemoteIndex;
  packs: RemotePackStore;
  segments: SegmentStore;
  target: PackTarget;
  /** Called as each pack has gone up (progress). */
  onUploaded?: (pack: SegmentPack) => void;
}

/** The number the cache's next local pack will get: packs at or above it are newer than now. */
export function nextLocalPack(store: LmdbStore): number {
  return (store.meta.get('next-pack') as number | undefined) ?? 0;
}

/**
 * Uploads what the cache's packs `fromPack`… hold and the bucket lacks. An object the cache had before this write but
 * the bucket does not hold live (gc tombstoned it, or an earlier upload was cut short) is among them: the cache counts
 * it as absent, so the write stored it again in a new pack (RemoteMode). Each object goes up once, from its live copy
 * in the cache; objects the bucket already holds live (fetched into the cache, or uploaded by another writer
 * meanwhile) are skipped. The segment is ingested into the host's index before this returns.
 */
export async function uploadNewObjects(store: LmdbStore, fromPack: number, to: UploadTarget): Promise<UploadResult> {
  const writer = new RemotePackWriter(to.packs, to.target, to.onUploaded ? { onUploaded: to.onUploaded } : undefined);
  let objects = 0;
  let bytes = 0;
  const add = async (key: Buffer, stored: Buffer) => {
    await writer.add(key, stored);
    objects++;
    bytes += stored.length;
  };
  const end = nextLocalPack(store);
  for (let id = fromPack; id < end; id++) {
    const inspected = store.inspectPack(id);
    if (!inspected) continue;
    const value = store.packs.get(packKey(id));
    if (!value) continue;
    for (const [i, e] of inspected.header.entries()) {
      if (!inspected.live[i] || to.index.hasLive(e.key)) continue;
      await add(e.key, value.subarray(e.offset, e.offset + e.length));
    }
  }
  const written = await writer.finish();
  if (written.packs.length === 0) return { objects: 0, bytes: 0, packs: 0, until: end };
  const seg: Segment = { packs: written.packs, entries: written.entries, retired: [], tombstones: [] };
  const sha = await to.segments.putSegment(seg);
  to.index.ingest(sha, seg);
  return { segment: sha, objects, bytes, packs: written.packs.length, until: end };
}
