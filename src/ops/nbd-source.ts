/**
 * A writable NBD session as a disk to commit: the base disk commit with the session's overlay (its last flushed
 * state) over it, read as one DiskSource, plus what lets the disk committer reuse the base's file blobs (the base
 * disk and the overlay's changed blocks).
 */
import { readDisk } from '../store/typed.js';
import type { DiskSource, Extent } from '../formats/disk.js';
import type { Oid } from '../model/oid.js';
import { Overlay, readSessionInfo, sessionDir, type SessionInfo } from './nbd-overlay.js';
import type { Repository } from '../store/repository.js';
import { BlobRangeReader, DiskReader } from './disk-reader.js';
import type { DiskReuse } from './commit-disk.js';

/** Decoded chunks a session source keeps (file-system metadata is read in small pieces, often the same chunk). */
const CHUNK_CACHE_BYTES = 64 << 20;

/** A session opened for committing ({@link openSessionSource}). */
export interface SessionSource {
  info: SessionInfo;
  source: DiskSource;
  reuse: DiskReuse;
  /** Overlay blocks (changed, zeroed or trimmed) at the last flush. */
  changedBlocks: number;
}

/**
 * Opens session `name` read-only at its last flushed state (a live server may go on writing: what it did not flush
 * is not seen). The source's `close()` closes the overlay.
 * Throws NbdSessionNotFoundError; ObjectNotFoundError when the base commit is gone.
 *
 * @example
 * const s = openSessionSource(repo, 'web-test');
 * await ingestDisk(ctx, s.source, { reuse: s.reuse });
 */
export function openSessionSource(repo: Repository, name: string): SessionSource {
  const dir = sessionDir(repo.dataDir, name);
  const info = readSessionInfo(dir);
  const disk = readDisk(repo.objects, info.disk as Oid);
  const base = new DiskReader(repo.objects, disk, new BlobRangeReader(repo.objects, CHUNK_CACHE_BYTES));
  const overlay = Overlay.open(dir, base, 'read');
  const source: DiskSource = {
    format: 'raw',
    name: `nbd:${name}`,
    size: info.size,
    fileSize: info.size,
    backing: [],
    composed: true,
    read: async (offset, length) => overlay.read(offset, length),
    async *extents(): AsyncIterable<Extent> {
      for (const x of overlay.extents(0, info.size)) if (!x.zero) yield { offset: x.offset, length: x.length };
    },
    close: async () => overlay.close(),
  };
  return { info, source, reuse: { objects: repo.objects, disk, changed: (o, n) => overlay.touches(o, n) }, changedBlocks: overlay.blocks };
}
