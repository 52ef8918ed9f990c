/**
 * Random access to the bytes of a disk commit without materializing it: a per-disk run table (disk offset → the blob
 * and offset its bytes come from; gaps read as zeros), built once on first use, plus ranged reads of blobs chunk by
 * chunk through a small LRU of verified chunks. The NBD server reads through it; derive reads the blocks it patches.
 *
 * The run table: for a plain disk, every region's packed extents (→ the region's data blob, at the packed offset)
 * and file map runs (→ the file's blob, at the file offset), merged in disk order; for a derived (overlay) disk, its
 * base's table with the patch ranges cut in (→ the patch bytes in memory). A read is one binary search and a walk
 * over the runs it overlaps, whatever the size of the disk.
 */
import type { BlobRecord } from '../model/blob.js';
import type { Disk } from '../model/disk.js';
import type { TreeEntry } from '../model/tree.js';
import { type Oid, hashBytes } from '../model/oid.js';
import { ObjectNotFoundError, RepositoryCorruptError } from '../errors.js';
import type { ObjectReader, ObjectStore } from '../store/object-store.js';
import { ChunkDecoder, type ChunkSource } from '../store/chunk-decoder.js';
import { readBlobRecord, readDisk, readDiskPatch, readRegionMap } from '../store/typed.js';
import { walkTree } from '../tree/walk.js';

/** Bytes of decoded chunks a {@link BlobRangeReader} keeps by default (least recently used go first). */
export const DEFAULT_CHUNK_CACHE_BYTES = 16 << 20;
/**
 * Bytes past a read whose chunks {@link DiskReader.prepare} has decoded on the worker thread meanwhile: a sequential
 * reader's next request or two (qemu-img asks for up to 2 MiB at a time).
 */
export const DEFAULT_DECODE_AHEAD = 4 << 20;
/** Capacity classes of recycled chunk buffers (bytes), and spare buffers kept per class. */
const SPARE_CLASS = 64 << 10;
const SPARE_PER_CLASS = 64;
/** Blob records a {@link BlobRangeReader} keeps: more than the files of a read-ahead window of small files, so that a record read (and an inline one hashed) for prepare is still there for the read. */
const RECORD_CACHE = 4096;

/** Random-access reads of blob content: records and chunks cached (LRU), each chunk verified against its id when read. */
export class BlobRangeReader {
  private readonly records = new Map<Oid, { rec: BlobRecord; starts?: number[] }>();
  private readonly chunks = new Map<Oid, Buffer>();
  private cached = 0;
  /** Chunks read from the store (not from the cache): what a server reports. */
  chunkReads = 0;
  /** Chunks that arrived decoded and verified from the prefetcher or decoder. */
  chunksAhead = 0;
  /**
   * Where records not in the object store are looked up (a partial clone's records received without their
   * content); chunks read through them are verified against their own ids as always.
   */
  promised: ((oid: Oid) => BlobRecord | undefined) | undefined;

  /** Decodes chunks ahead on worker threads ({@link startPrefetch}) or the thread pool ({@link startDecoder}). */
  prefetcher: ChunkSource | undefined;

  /**
   * With `recycle`, chunks are decoded into buffers of those the cache evicted (no allocation per chunk, nor garbage
   * collection of them): only for a reader that copies what it reads ({@link read}) and keeps no view of a chunk
   * ({@link readParts} views would change under their holder).
   */
  constructor(private readonly objects: ObjectReader, private readonly cacheBytes = DEFAULT_CHUNK_CACHE_BYTES, options: { recycle?: boolean } = {}) {
    this.spare = options.recycle && objects.tryReadObjectInto ? new Map() : undefined;
  }

  /** Evicted chunk buffers by capacity, when recycling. */
  private readonly spare: Map<number, Buffer[]> | undefined;

  /** A buffer of `size` bytes for a chunk: a spare one of its capacity class, or a new one. */
  private readonly alloc = (size: number): Buffer => {
    const cap = Math.ceil(size / SPARE_CLASS) * SPARE_CLASS;
    const b = this.spare!.get(cap)?.pop() ?? Buffer.allocUnsafeSlow(cap);
    return b.subarray(0, size);
  };

  /** Starts the worker thread that decodes and verifies chunks ahead of reads ({@link DiskReader.prepare}). */
  startPrefetch(store: ObjectStore): void {
    this.prefetcher ??= store.chunkPrefetcher(this.arrived);
  }

  /**
   * Decodes and verifies chunks ahead of reads on libuv's thread pool into this reader's recycled buffers (see
   * chunk-decoder.ts), when it recycles and its object reader offers stored views; false when it cannot.
   */
  startDecoder(): boolean {
    const objects = this.objects;
    if (!this.spare || !objects.storedView) return false;
    this.prefetcher ??= new ChunkDecoder((oid) => objects.storedView!('chunk', oid), this.alloc, this.arrived);
    return true;
  }

  /** A chunk from the prefetcher or decoder, verified (undefined: it could not be; a read reports why). */
  private readonly arrived = (oid: Oid, data: Buffer | undefined): void => {
    if (!data || this.chunks.has(oid)) return;
    this.chunksAhead++;
    this.remember(oid, data);
  };

  /** Stops the worker thread, if any. */
  async close(): Promise<void> {
    await this.prefetcher?.close();
    this.prefetcher = undefined;
  }

  private record(oid: Oid): { rec: BlobRecord; starts?: number[] } {
    let r = this.records.get(oid);
    if (r) {
      this.records.delete(oid);
      this.records.set(oid, r);
      return r;
    }
    const rec = (!this.objects.hasObject('blob', oid) ? this.promised?.(oid) : undefined) ?? readBlobRecord(this.objects, oid);
    // Reads here are ranges, not whole blobs, so the content hash cannot be checked: inline content is checked
    // whole, chunks by their own ids (readObject), and the record's lengths against its size by decodeBlob.
    if (rec.form === 'inline' && hashBytes(rec.data) !== oid) throw RepositoryCorruptError.mismatch('blob', oid);
    r = { rec };
    if (rec.form === 'chunked') {
      const starts: number[] = [];
      let off = 0;
      for (const s of rec.segments) { starts.push(off); off += s.length; }
      r.starts = starts;
    }
    this.records.set(oid, r);
    if (this.records.size > RECORD_CACHE) this.records.delete(this.records.keys().next().value!);
    return r;
  }

  private chunk(oid: Oid, length: number): Buffer {
    let c = this.chunks.get(oid);
    if (c) {
      this.chunks.delete(oid);
      this.chunks.set(oid, c);
    } else {
      c = this.spare ? this.objects.tryReadObjectInto!('chunk', oid, this.alloc) : this.objects.readObject('chunk', oid);
      if (!c) throw new ObjectNotFoundError('chunk', oid);
      this.chunkReads++;
      this.remember(oid, c);
    }
    if (c.length !== length) throw new RepositoryCorruptError(`chunk ${oid}`, `length ${c.length}, expected ${length}`);
    return c;
  }

  /** Puts a decoded, verified chunk in the LRU. */
  private remember(oid: Oid, c: Buffer): void {
    this.chunks.set(oid, c);
    this.cached += c.length;
    while (this.cached > this.cacheBytes && this.chunks.size > 1) {
      const [k, v] = this.chunks.entries().next().value!;
      this.chunks.delete(k);
      this.cached -= v.length;
      if (this.spare && v.buffer.byteLength % SPARE_CLASS === 0 && v.byteOffset === 0) {
        const cap = v.buffer.byteLength;
        const list = this.spare.get(cap) ?? [];
        if (list.length < SPARE_PER_CLASS) list.push(Buffer.from(v.buffer));
        this.spare.set(cap, list);
      }
    }
  }

  /**
   * The chunks holding blob bytes [offset, offset + length) and, after them, up to `ahead` bytes more of the blob's
   * chunks (read-ahead): what a demand fetch asks for. Reads the blob's record (throws ObjectNotFoundError when absent).
   */
  chunksOf(oid: Oid, offset: number, length: number, ahead = 0): Array<{ oid: Oid; length: number }> {
    const { rec, starts } = this.record(oid);
    if (rec.form === 'inline') return [];
    const out: Array<{ oid: Oid; length: number }> = [];
    const end = Math.min(rec.size, offset + length + ahead);
    for (let i = segmentAt(starts!, offset); i < rec.segments.length && starts![i]! < end; i++) {
      const s = rec.segments[i]!;
      if (s.kind === 'chunk' && !this.chunks.has(s.oid)) out.push({ oid: s.oid, length: s.length });
    }
    return out;
  }

  /**
   * Blob bytes [offset, offset + length) as views of the cached chunks (no copy), appended to `out` in order; holes
   * as views of a shared zero buffer.
   */
  readParts(oid: Oid, offset: number, length: number, out: Buffer[]): void {
    this.eachPart(oid, offset, length, (b) => { out.push(b); });
  }

  /**
   * Copies blob bytes [offset, offset + length) into `target` at `at`: each part as soon as it is read, so that a
   * recycled chunk buffer is never read after a later chunk of the same range was decoded into it.
   */
  read(oid: Oid, offset: number, length: number, target: Buffer, at: number): void {
    this.eachPart(oid, offset, length, (b) => { at += b.copy(target, at); });
  }

  /** The views of {@link readParts}, in order, each handed to `part` before the next chunk is read. */
  private eachPart(oid: Oid, offset: number, length: number, part: (b: Buffer) => void): void {
    const { rec, starts } = this.record(oid);
    if (offset + length > rec.size) throw new RepositoryCorruptError(`blob ${oid}`, `a file map reads bytes ${offset}+${length} of a ${rec.size}-byte blob`);
    if (rec.form === 'inline') {
      part(rec.data.subarray(offset, offset + length));
      return;
    }
    let done = 0;
    for (let i = segmentAt(starts!, offset); done < length; i++) {
      const s = rec.segments[i]!;
      const from = offset + done - starts![i]!;
      const n = Math.min(s.length - from, length - done);
      if (s.kind === 'chunk') part(this.chunk(s.oid, s.length).subarray(from, from + n));
      else zeroParts(n, part);
      done += n;
    }
  }
}

/** Zeros shared by every {@link BlobRangeReader.readParts} and {@link DiskReader.readParts}. */
const ZEROS = Buffer.alloc(1 << 20);

/** `n` zero bytes as views of {@link ZEROS}, each handed to `part`. */
function zeroParts(n: number, part: (b: Buffer) => void): void {
  for (; n > 0; n -= ZEROS.length) part(ZEROS.subarray(0, Math.min(n, ZEROS.length)));
}

/** Appends a stretch of `n` bytes at `o` to `out`, merged with the last one when it is of the same kind and adjacent. */
export function pushExtent(out: DiskExtent[], o: number, n: number, zero: boolean): void {
  if (n <= 0) return;
  const last = out[out.length - 1];
  if (last && last.zero === zero && last.offset + last.length === o) last.length += n;
  else out.push({ offset: o, length: n, zero });
}

/** Binary search: the index of the segment (by start offsets) holding `offset`. */
function segmentAt(starts: number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** A regular file of a file-system tree, as a disk's file map and the reuse of a session's commit need it. */
export interface TreeFile {
  /** The image path, as latin1 text (every byte kept). */
  path: string;
  entry: TreeEntry;
}

/** The last few file lists walked, per object reader: a session's commit asks for the base tree's twice. */
const fileLists = new WeakMap<ObjectReader, Map<Oid, TreeFile[]>>();

/**
 * A tree's regular files in walk order (depth first, entries in tree order): the order file maps index them by.
 * Remembered for the last 4 trees of each object reader (trees are immutable, so a remembered list is never stale).
 */
export function treeFileList(objects: ObjectReader, tree: Oid): TreeFile[] {
  let lists = fileLists.get(objects);
  if (!lists) fileLists.set(objects, lists = new Map());
  const known = lists.get(tree);
  if (known) return known;
  const out: TreeFile[] = [];
  walkTree(objects, tree, (p, e) => { if (e.type === 'file') out.push({ path: p.toString('latin1'), entry: e }); });
  lists.set(tree, out);
  if (lists.size > 4) lists.delete(lists.keys().next().value!);
  return out;
}

/** The blob ids of a tree's regular files in walk order (depth first, entries in tree order): what file maps index. */
export function treeFiles(objects: ObjectReader, tree: Oid): Oid[] {
  return treeFileList(objects, tree).map((f) => f.entry.oid ?? '');
}

/** One run of the table: `length` disk bytes at `start` are bytes [at, at + length) of a blob, or of patch bytes. */
export interface DiskRun {
  start: number;
  length: number;
  source: Oid | Buffer;
  at: number;
}

/** A stretch of the disk that holds data (some run covers it) or reads as zeros. */
export interface DiskExtent {
  offset: number;
  length: number;
  zero: boolean;
}

/**
 * The run table of a disk (sorted by `start`, disjoint; see the module comment). Reads the region maps, the file
 * lists of the file-system trees and, for an overlay, the base disk and the patch. Throws RepositoryCorruptError when
 * a map points outside its region or at a file the tree does not have.
 */
export function buildDiskIndex(objects: ObjectReader, disk: Disk): DiskRun[] {
  if (disk.overlay) {
    const base = readDisk(objects, disk.overlay.base);
    if (base.size !== disk.size) throw new RepositoryCorruptError(`disk ${disk.overlay.base}`, `base of ${base.size} bytes under an overlay of ${disk.size}`);
    return cutIn(buildDiskIndex(objects, base), readDiskPatch(objects, disk.overlay.patch).map((p) => ({ start: p.offset, length: p.data.length, source: p.data, at: 0 })));
  }
  const out: DiskRun[] = [];
  for (const r of disk.regions) {
    const where = `disk region at ${r.offset}`;
    const c = r.content;
    const own = composedRuns(objects, { data: c.data, map: c.map, ...(c.kind === 'fs' ? { tree: c.tree } : {}) }, r.size, where);
    if (c.kind !== 'lvm') {
      for (const x of own) out.push({ ...x, start: r.offset + x.start });
      continue;
    }
    // An LVM region: its own bytes (label, metadata, free extents, volumes not read) and each volume read, whose
    // composed byte space is laid over the region through its segments.
    const all: DiskRun[] = own.map((x) => ({ ...x, start: r.offset + x.start }));
    for (const v of c.volumes) {
      const size = v.segments.reduce((n, seg) => n + seg.length, 0);
      const lvRuns = composedRuns(objects, v.content, size, `${where}: logical volume '${c.vg}/${v.name}'`);
      let lvAt = 0;
      for (const seg of v.segments) {
        if (seg.at + seg.length > r.size) throw new RepositoryCorruptError(where, `segment of logical volume '${c.vg}/${v.name}' at ${seg.at} lies outside the region`);
        for (const x of lvRuns) {
          const a = Math.max(x.start, lvAt);
          const b = Math.min(x.start + x.length, lvAt + seg.length);
          if (a < b) all.push({ start: r.offset + seg.at + (a - lvAt), length: b - a, source: x.source, at: x.at + (a - x.start) });
        }
        lvAt += seg.length;
      }
    }
    all.sort((a, b) => a.start - b.start);
    for (const x of all) out.push(x);
  }
  return out;
}

/**
 * The runs of one composed byte space of `size` bytes (a region, or a logical volume's own space) at offsets within
 * it: its packed extents (→ its data blob) with the file map's runs (→ each file's blob) cut in.
 */
function composedRuns(objects: ObjectReader, c: { data: Oid; map: Oid; tree?: Oid }, size: number, where: string): DiskRun[] {
  const { packed, runs } = readRegionMap(objects, c.map);
  const files = c.tree !== undefined ? treeFiles(objects, c.tree) : [];
  const packedRuns: DiskRun[] = [];
  let at = 0;
  for (const x of packed) {
    if (x.at + x.length > size) throw new RepositoryCorruptError(where, `packed extent at ${x.at} lies outside the region`);
    packedRuns.push({ start: x.at, length: x.length, source: c.data, at });
    at += x.length;
  }
  const fileRuns: DiskRun[] = [];
  for (const m of runs) {
    const file = files[m.file];
    if (m.at + m.length > size || !file) throw new RepositoryCorruptError(where, `file map run at ${m.at} names file ${m.file} or lies outside the region`);
    fileRuns.push({ start: m.at, length: m.length, source: file, at: m.fileOffset });
  }
  // Both lists are sorted and disjoint (the map's encoding makes them so), but a packed extent may span a small
  // file's run (extents are coalesced over it): the file's bytes win there, as in a sequential export.
  return cutIn(packedRuns, fileRuns);
}

/** `base` (sorted, disjoint) with `over` (sorted, disjoint) written over it: the parts of base runs no `over` run covers, and `over`. */
function cutIn(base: DiskRun[], over: DiskRun[]): DiskRun[] {
  const out: DiskRun[] = [];
  let oi = 0;
  const emit = (b: DiskRun, from: number, to: number) => {
    if (from < to) out.push({ start: from, length: to - from, source: b.source, at: b.at + (from - b.start) });
  };
  for (const b of base) {
    let pos = b.start;
    const end = b.start + b.length;
    while (pos < end) {
      const o = over[oi];
      if (o && o.start <= pos) {
        if (o.start + o.length <= pos) { out.push(o); oi++; continue; }
        // o covers pos: skip base bytes under it.
        pos = Math.min(end, o.start + o.length);
        if (o.start + o.length <= end) { out.push(o); oi++; }
        continue;
      }
      const stop = o ? Math.min(end, o.start) : end;
      emit(b, pos, stop);
      pos = stop;
    }
  }
  for (; oi < over.length; oi++) out.push(over[oi]!);
  // Patch runs pushed while base runs were still open can land before base pieces that follow them: sort once.
  out.sort((a, b) => a.start - b.start);
  return out;
}

/**
 * Random-access reads of a disk commit's bytes: what `checkout REV out.raw` writes, byte for byte, one range at a
 * time. The run table is built on the first read (or extent query) and kept.
 */
export class DiskReader {
  private runs: DiskRun[] | undefined;
  /** The ranged blob reader (and its chunk cache) the reads go through; shared when given to the constructor. */
  readonly blobs: BlobRangeReader;

  constructor(private readonly objects: ObjectReader, readonly disk: Disk, blobs?: BlobRangeReader) {
    this.blobs = blobs ?? new BlobRangeReader(objects);
  }

  /** The run table (built now if not yet). */
  index(): DiskRun[] {
    this.runs ??= buildDiskIndex(this.objects, this.disk);
    return this.runs;
  }

  /** The index of the first run that ends after `offset`. */
  private first(offset: number): number {
    const runs = this.index();
    let lo = 0;
    let hi = runs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const r = runs[mid]!;
      if (r.start + r.length <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private check(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.disk.size) {
      throw new RangeError(`read of ${length} bytes at ${offset} beyond the ${this.disk.size}-byte disk`);
    }
  }

  /**
   * With a prefetcher ({@link BlobRangeReader.startPrefetch}): resolves when the chunks of [offset, offset + length)
   * are decoded, having asked for the next `ahead` bytes' chunks too, so that they are decoded on the worker while
   * this range is sent. Without one: resolves at once. A chunk the worker could not read is read (and its error
   * reported) by {@link read}.
   */
  async prepare(offset: number, length: number, ahead = DEFAULT_DECODE_AHEAD): Promise<void> {
    const p = this.blobs.prefetcher;
    if (!p) return;
    const wanted = (from: number, n: number, ahead: boolean) => this.spans(from, n).flatMap((s) => {
      try {
        return this.blobs.chunksOf(s.blob, s.from, s.length).map((c) => c.oid);
      } catch (e) {
        // Ahead of the read, a blob a partial clone has not fetched yet is skipped (read() reports real damage).
        if (ahead && e instanceof ObjectNotFoundError) return [];
        throw e;
      }
    });
    const need = wanted(offset, length, false);
    const end = Math.min(this.disk.size, offset + length + ahead);
    const later = end > offset + length ? wanted(offset + length, end - offset - length, true) : [];
    p.request([...need, ...later]);
    await p.wait(need);
  }

  /**
   * Asks the prefetcher (if any) to decode the chunks of these ranges, in this order, without waiting: a read
   * profile's blocks at start (see read-profile.ts). A hint only: ranges past the end are clipped, and blobs whose
   * records cannot be read here (a partial clone's absent ones, damage that the read itself will report) are skipped.
   */
  prefetch(ranges: ReadonlyArray<{ offset: number; length: number }>): void {
    const p = this.blobs.prefetcher;
    if (!p) return;
    const oids: Oid[] = [];
    for (const r of ranges) {
      const n = Math.min(r.length, this.disk.size - r.offset);
      if (r.offset < 0 || n <= 0) continue;
      for (const s of this.spans(r.offset, n)) {
        try {
          for (const c of this.blobs.chunksOf(s.blob, s.from, s.length)) oids.push(c.oid);
        } catch {
          // Not readable here: the read that needs it reports why.
        }
      }
    }
    p.request(oids);
  }

  /**
   * Bytes [offset, offset + length) of the disk as a list of views (of cached chunks, patch bytes and shared zeros),
   * in order: what a server writes to a socket without copying. Throws as {@link read}.
   */
  readParts(offset: number, length: number): Buffer[] {
    this.check(offset, length);
    const out: Buffer[] = [];
    const push = (b: Buffer) => { out.push(b); };
    const runs = this.index();
    const end = offset + length;
    let pos = offset;
    for (let i = this.first(offset); i < runs.length; i++) {
      const r = runs[i]!;
      if (r.start >= end) break;
      if (r.start > pos) zeroParts(r.start - pos, push);
      const a = Math.max(r.start, offset);
      const b = Math.min(r.start + r.length, end);
      const from = r.at + (a - r.start);
      if (typeof r.source === 'string') this.blobs.readParts(r.source, from, b - a, out);
      else out.push(r.source.subarray(from, from + (b - a)));
      pos = b;
    }
    if (pos < end) zeroParts(end - pos, push);
    return out;
  }

  /** Bytes [offset, offset + length) of the disk. Throws RangeError outside the disk, RepositoryCorruptError for damaged objects. */
  read(offset: number, length: number): Buffer {
    // Not zero-filled: the views of readParts cover every byte.
    const out = Buffer.allocUnsafe(length);
    let at = 0;
    for (const p of this.readParts(offset, length)) at += p.copy(out, at);
    return out;
  }

  /**
   * The blob ranges bytes [offset, offset + length) come from, in disk order (patch bytes, already in memory, left
   * out): what must be present to read them.
   */
  spans(offset: number, length: number): Array<{ blob: Oid; from: number; length: number }> {
    this.check(offset, length);
    const out: Array<{ blob: Oid; from: number; length: number }> = [];
    const runs = this.index();
    const end = offset + length;
    for (let i = this.first(offset); i < runs.length; i++) {
      const r = runs[i]!;
      if (r.start >= end) break;
      if (typeof r.source !== 'string') continue;
      const a = Math.max(r.start, offset);
      const b = Math.min(r.start + r.length, end);
      out.push({ blob: r.source, from: r.at + (a - r.start), length: b - a });
    }
    return out;
  }

  /**
   * The data and zero stretches of [offset, offset + length), in order, adjacent ones of a kind merged. A data
   * stretch may still hold zeros (a file's bytes, a hole inside a blob); a zero stretch holds nothing but zeros.
   */
  extents(offset: number, length: number): DiskExtent[] {
    this.check(offset, length);
    const out: DiskExtent[] = [];
    const add = (o: number, n: number, zero: boolean) => pushExtent(out, o, n, zero);
    const runs = this.index();
    const end = offset + length;
    let pos = offset;
    for (let i = this.first(offset); i < runs.length && pos < end; i++) {
      const r = runs[i]!;
      if (r.start >= end) break;
      add(pos, Math.min(r.start, end) - pos, true);
      const a = Math.max(r.start, pos);
      const b = Math.min(r.start + r.length, end);
      add(a, b - a, false);
      pos = b;
    }
    add(pos, end - pos, true);
    return out;
  }
}
