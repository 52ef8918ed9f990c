/**
 * Bit-exact export of a disk commit: the virtual disk's bytes, composed region by region from the disk object (raw
 * blobs; for a file system its rest blob with every file's bytes written back where the file map says), streamed in
 * increasing offset order to a raw or qcow2 writer. Memory: one window plus a few chunks, whatever the disk size.
 */
import { nonZero } from '../formats/disk.js';
import type { DiskWriter } from '../formats/disk-writer.js';
import type { Disk, DiskRegion, Extent, LvmVolumeContent } from '../model/disk.js';
import type { Oid } from '../model/oid.js';
import { RepositoryCorruptError, AbortedError } from '../errors.js';
import type { ObjectReader } from '../store/object-store.js';
import { readBlobPieces, readDisk, readDiskPatch, readRegionMap } from '../store/typed.js';
import { ChunkDecoder, type ChunkSource } from '../store/chunk-decoder.js';
import { BlobRangeReader, DiskReader, type DiskRun, treeFiles } from './disk-reader.js';

export { BlobRangeReader, treeFiles };

/** Bytes composed at a time. */
const WINDOW = 1 << 20;

/** The packed data blob's bytes placed at their extents (region offsets), in order. */
function* packedPieces(objects: ObjectReader, oid: Oid, extents: Extent[], where: string): Generator<{ offset: number; data: Buffer }> {
  let ei = 0;
  let used = 0; // bytes of extents[ei] already placed
  for (const p of readBlobPieces(objects, oid)) {
    const data = p.data ?? Buffer.alloc(p.zeros ?? 0);
    let pos = 0;
    while (pos < data.length) {
      const x = extents[ei];
      if (!x) throw new RepositoryCorruptError(where, 'packed data is longer than its extents');
      const n = Math.min(x.length - used, data.length - pos);
      yield { offset: x.at + used, data: data.subarray(pos, pos + n) };
      pos += n;
      used += n;
      if (used === x.length) { ei++; used = 0; }
    }
  }
  if (ei < extents.length) throw new RepositoryCorruptError(where, 'packed data is shorter than its extents');
}

/** What composes a byte space: a packed `data` blob with its `map`, and for a file system the tree whose files the map's runs name. */
type Composed = { data: Oid; map: Oid; tree?: Oid };

/**
 * The non-zero bytes of a composed byte space of `size` bytes within [lo, hi) (offsets in that space), in order: packed
 * data and mapped file bytes composed per window.
 */
function* contentPieces(objects: ObjectReader, c: Composed, size: number, reader: BlobRangeReader, where: string, lo = 0, hi = size): Generator<{ offset: number; data: Buffer }> {
  const { packed, runs: map } = readRegionMap(objects, c.map);
  const files = c.tree !== undefined ? treeFiles(objects, c.tree) : [];
  for (const m of map) {
    if (m.at + m.length > size || m.file >= files.length || !files[m.file]) {
      throw new RepositoryCorruptError(where, `file map run at ${m.at} names file ${m.file} or lies outside the region`);
    }
  }
  for (const x of packed) if (x.at + x.length > size) throw new RepositoryCorruptError(where, `packed extent at ${x.at} lies outside the region`);
  const rest = packedPieces(objects, c.data, packed, where)[Symbol.iterator]();
  let piece = rest.next();
  let mi = 0;
  const buf = Buffer.alloc(WINDOW);
  let w = lo;
  for (;;) {
    while (!piece.done && piece.value.offset + piece.value.data.length <= w) piece = rest.next();
    const nextRest = piece.done ? Infinity : Math.max(piece.value.offset, w);
    const nextMap = mi < map.length ? Math.max(map[mi]!.at, w) : Infinity;
    const next = Math.min(nextRest, nextMap);
    if (next >= hi) break;
    // Windows with neither rest data nor file bytes are skipped: they stay holes.
    if (next >= w + WINDOW) w = Math.floor(next / WINDOW) * WINDOW;
    const len = Math.min(WINDOW, hi - w);
    const view = buf.subarray(0, len);
    view.fill(0);
    while (!piece.done && piece.value.offset < w + len) {
      const p = piece.value;
      const end = p.offset + p.data.length;
      const a = Math.max(p.offset, w);
      const b = Math.min(end, w + len);
      if (a < b) p.data.copy(view, a - w, a - p.offset, b - p.offset);
      if (end > w + len) break;
      piece = rest.next();
    }
    while (mi < map.length && map[mi]!.at < w + len) {
      const m = map[mi]!;
      const a = Math.max(m.at, w);
      const b = Math.min(m.at + m.length, w + len);
      if (a < b) reader.read(files[m.file]!, m.fileOffset + (a - m.at), b - a, view, a - w);
      if (m.at + m.length > w + len) break;
      mi++;
    }
    yield* nonZero(view, w);
    w += len;
  }
}

/** A composed space's pieces moved by `shift` (to disk offsets). */
function* shifted(pieces: Iterable<{ offset: number; data: Buffer }>, shift: number): Generator<{ offset: number; data: Buffer }> {
  for (const p of pieces) yield { offset: p.offset + shift, data: p.data };
}

/** The byte size of an LVM volume (its segments one after another). */
function volumeSize(v: LvmVolumeContent): number {
  return v.segments.reduce((n, x) => n + x.length, 0);
}

/**
 * The non-zero bytes of one region (disk offsets), in order: packed data and mapped file bytes composed per window.
 * An LVM region: its own packed bytes and, per logical volume segment, the volume's bytes of that segment, merged in
 * disk order (they are disjoint: the segments are left out of the region's packed bytes).
 */
export function* regionPieces(objects: ObjectReader, r: DiskRegion, reader: BlobRangeReader): Generator<{ offset: number; data: Buffer }> {
  const where = `disk region at ${r.offset}`;
  const c = r.content;
  if (c.kind !== 'lvm') {
    yield* shifted(contentPieces(objects, { data: c.data, map: c.map, ...(c.kind === 'fs' ? { tree: c.tree } : {}) }, r.size, reader, where), r.offset);
    return;
  }
  const sources: Array<Iterator<{ offset: number; data: Buffer }>> = [shifted(contentPieces(objects, c, r.size, reader, where), r.offset)];
  for (const v of c.volumes) {
    const size = volumeSize(v);
    let lvAt = 0;
    for (const x of v.segments) {
      const vw = `${where}: logical volume '${c.vg}/${v.name}'`;
      sources.push(shifted(contentPieces(objects, v.content, size, reader, vw, lvAt, lvAt + x.length), r.offset + x.at - lvAt));
      lvAt += x.length;
    }
  }
  const heads = sources.map((s) => s.next());
  let end = 0;
  for (;;) {
    let best = -1;
    heads.forEach((h, i) => {
      if (!h.done && (best < 0 || h.value.offset < (heads[best]!.value as { offset: number }).offset)) best = i;
    });
    if (best < 0) return;
    const p = heads[best]!.value as { offset: number; data: Buffer };
    if (p.offset < end) throw new RepositoryCorruptError(where, `bytes at ${p.offset} are claimed twice (a logical volume segment and the region's own data)`);
    end = p.offset + p.data.length;
    yield p;
    heads[best] = sources[best]!.next();
  }
}

/** The non-zero bytes of a disk (disk offsets, increasing, disjoint): its regions, or its base with its patch over it. */
export function* diskPieces(objects: ObjectReader, disk: Disk, reader = new BlobRangeReader(objects)): Generator<{ offset: number; data: Buffer }> {
  if (!disk.overlay) {
    for (const r of disk.regions) {
      for (const p of regionPieces(objects, r, reader)) {
        if (p.offset + p.data.length > r.offset + r.size) throw new RepositoryCorruptError(`disk region at ${r.offset}`, 'content runs past the region');
        yield p;
      }
    }
    return;
  }
  const patch = readDiskPatch(objects, disk.overlay.patch);
  let pi = 0;
  let done = 0; // everything below has been yielded
  for (const p of diskPieces(objects, readDisk(objects, disk.overlay.base), reader)) {
    // The patch ranges that start before this piece ends, and the parts of the piece no range covers.
    const end = p.offset + p.data.length;
    let at = Math.max(p.offset, done);
    while (at < end) {
      const r = patch[pi];
      if (r && r.offset <= at) {
        yield r;
        at = Math.max(at, r.offset + r.data.length);
        done = at;
        pi++;
        continue;
      }
      const stop = r ? Math.min(end, r.offset) : end;
      yield { offset: at, data: p.data.subarray(at - p.offset, stop - p.offset) };
      done = at = stop;
    }
  }
  for (; pi < patch.length; pi++) yield patch[pi]!;
}

/** Where an export's chunks came from. */
export interface ExportStats {
  /** Chunks read (decoded and verified) on the main thread: those not decoded ahead, or that failed there. */
  chunksRead: number;
  /** Chunks decoded and verified ahead on the thread pool. */
  chunksAhead: number;
  /** The most chunk bytes asked of the thread pool and not yet arrived, at any time. */
  peakAheadBytes: number;
}

/** Chunk cache of an export: the window being composed, the chunks decoded ahead, and those used since (LRU). */
const EXPORT_CACHE_BYTES = 32 << 20;
/** Bytes of file data past the write position whose chunks are decoded ahead on the thread pool. */
const DECODE_AHEAD = 12 << 20;
/** Bytes of file data past the write position that must be decoded before composing goes on: two windows. */
const DECODE_NEED = 2 * WINDOW;

/** File data asked for at a time: a long run (a large file in one extent) is planned a piece at a time. */
const SLICE = WINDOW;

/**
 * Keeps the chunks of the file data ahead of an export decoded on the thread pool: before composing goes on from
 * disk offset `pos`, the chunks of the next {@link DECODE_NEED} bytes of mapped file data are ready, and those of
 * the next {@link DECODE_AHEAD} asked for, never more (a slice of a run at a time). Planned on the disk's run table
 * (disk offset → blob range), in the order the export composes; packed data blobs are left out (the export streams
 * them whole). A hint only: whatever it cannot plan (a run table or record that does not read) it stops planning,
 * and the export reads and reports it.
 */
class ReadAhead {
  private readonly runs: DiskRun[];
  /** acc[i]: bytes of the runs before run i. */
  private readonly acc: number[];
  /** The run containing the write position. */
  private cur = 0;
  /** The next bytes to ask for: run `askRun`, from `askOff` on. */
  private askRun = 0;
  private askOff = 0;
  /** Slices asked for and not yet written past: [start, end) in run bytes and their chunks, oldest first. */
  private slices: Array<{ start: number; end: number; oids: Oid[] }> = [];
  private failed = false;

  constructor(private readonly reader: BlobRangeReader, private readonly source: ChunkSource, objects: ObjectReader, disk: Disk) {
    const packed = new Set<Oid>();
    const collect = (d: Disk): void => {
      if (d.overlay) { collect(readDisk(objects, d.overlay.base)); return; }
      for (const r of d.regions) {
        packed.add(r.content.data);
        if (r.content.kind === 'lvm') for (const v of r.content.volumes) packed.add(v.content.data);
      }
    };
    collect(disk);
    this.runs = new DiskReader(objects, disk, reader).index().filter((r) => typeof r.source === 'string' && !packed.has(r.source));
    this.acc = [0];
    for (const r of this.runs) this.acc.push(this.acc.at(-1)! + r.length);
  }

  /** Resolves when the chunks composing needs next, from disk offset `pos` on, are decoded (or failed). */
  async ready(pos: number): Promise<void> {
    const runs = this.runs;
    while (this.cur < runs.length && runs[this.cur]!.start + runs[this.cur]!.length <= pos) this.cur++;
    // Run bytes before `pos`: what the export has written.
    const base = this.cur < runs.length ? this.acc[this.cur]! + Math.max(0, pos - runs[this.cur]!.start) : this.acc[this.cur]!;
    let drop = 0;
    while (drop < this.slices.length && this.slices[drop]!.end <= base) drop++;
    if (drop) this.slices = this.slices.slice(drop);
    if (this.failed) return;
    try {
      while (this.askRun < runs.length && this.acc[this.askRun]! + this.askOff - base < DECODE_AHEAD) {
        const r = runs[this.askRun]!;
        const n = Math.min(SLICE, r.length - this.askOff);
        const start = this.acc[this.askRun]! + this.askOff;
        const oids = this.reader.chunksOf(r.source as Oid, r.at + this.askOff, n).map((c) => c.oid);
        this.slices.push({ start, end: start + n, oids });
        this.source.request(oids);
        this.askOff += n;
        if (this.askOff === r.length) { this.askRun++; this.askOff = 0; }
      }
    } catch {
      // A record that does not read: composing reaches it and reports it.
      this.failed = true;
      return;
    }
    const need: Oid[] = [];
    for (const sl of this.slices) {
      if (sl.start - base >= DECODE_NEED) break;
      for (const o of sl.oids) need.push(o);
    }
    await this.source.wait(need);
  }
}

/**
 * Writes the disk of a disk commit to `out`, bit-identical to the image committed (a derived disk: its base with its
 * patch over it). Throws RepositoryCorruptError when an object is missing or inconsistent, AbortedError on `signal`.
 * Chunks of file data are decoded and verified ahead on the thread pool when the object reader allows it.
 */
export async function exportDisk(objects: ObjectReader, disk: Disk, out: DiskWriter, options: { signal?: AbortSignal; onBytes?: (n: number) => void } = {}): Promise<ExportStats> {
  // Chunks are copied into the composed windows, never handed out: their buffers can be recycled.
  const reader = new BlobRangeReader(objects, EXPORT_CACHE_BYTES, { recycle: true });
  let ahead: ReadAhead | undefined;
  try {
    if (reader.startDecoder()) ahead = new ReadAhead(reader, reader.prefetcher!, objects, disk);
  } catch {
    // A disk whose run table does not build: composing reports what is wrong with it.
  }
  try {
    await ahead?.ready(0);
    for (const p of diskPieces(objects, disk, reader)) {
      if (options.signal?.aborted) throw new AbortedError();
      await out.write(p.offset, p.data);
      options.onBytes?.(p.data.length);
      await ahead?.ready(p.offset + p.data.length);
    }
    const decoder = reader.prefetcher;
    return { chunksRead: reader.chunkReads, chunksAhead: reader.chunksAhead, peakAheadBytes: decoder instanceof ChunkDecoder ? decoder.peakBytes : 0 };
  } finally {
    await reader.close();
  }
}
