/**
 * Disk image writers: a sparse raw file, a qcow2 image or a VMDK streamOptimized image, each written in one streaming
 * pass (no raw temp file). All take
 * the virtual disk's non-zero bytes as pieces in increasing offset order; bytes never written read as zeros. Output
 * goes to a temporary file next to the destination, renamed into place by finish(), so a failure leaves nothing.
 *
 * Why our own qcow2 writer: no npm package writes qcow2, and the layout a sequential writer needs is small (qemu's
 * docs/interop/qcow2.txt): header, data clusters as they come, each L2 table once its 512 MiB span is complete, then
 * the L1 table and the refcount structures, then the header again with their offsets. The VMDK streamOptimized layout
 * (VMware's "Virtual Disk Format 5.0") is made for exactly this: deflated grains behind markers as they come, each
 * grain table once its span is complete, the grain directory, then a footer holding the header with its offset.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { promisify } from 'node:util';

export type DiskFormat = 'raw' | 'qcow2' | 'vmdk';

export interface DiskWriter {
  /** Non-overlapping pieces in increasing offset order, inside the virtual size. `data` may be reused after the promise resolves. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Completes the image and moves it to its destination. */
  finish(): Promise<void>;
  /** Removes the partial output. */
  abort(): Promise<void>;
}

/** The disk format a destination name implies: .qcow2 → qcow2; .vmdk → vmdk; .raw, .img → raw; anything else: undefined. */
export function diskFormatForName(dest: string): DiskFormat | undefined {
  const n = dest.toLowerCase();
  if (n.endsWith('.qcow2')) return 'qcow2';
  if (n.endsWith('.vmdk')) return 'vmdk';
  if (n.endsWith('.raw') || n.endsWith('.img')) return 'raw';
  return undefined;
}

function tempName(dest: string): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}.viva-${process.pid}.tmp`);
}

/**
 * Sequential appends to a file, coalesced into large writes. Double-buffered: a full buffer is written by the thread
 * pool while the caller fills the other one, so composing the next bytes overlaps the write of the last ones.
 */
class Appender {
  private buf = Buffer.allocUnsafe(4 << 20);
  private spare = Buffer.allocUnsafe(4 << 20);
  private len = 0;
  /** File offset of buf[0]. */
  private at: number;
  /** The write in flight (of the other buffer), if any. */
  private pending: Promise<void> | undefined;

  constructor(private readonly fh: fs.promises.FileHandle, start: number) {
    this.at = start;
  }

  get position(): number {
    return this.at + this.len;
  }

  async append(data: Uint8Array): Promise<void> {
    if (this.len + data.length > this.buf.length) await this.flush();
    if (data.length > this.buf.length) {
      await this.settle();
      await writeAll(this.fh, data, this.at);
      this.at += data.length;
      return;
    }
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  /** Moves to `offset` (≥ position); a gap up to `fill` bytes is written as zeros (fewer, larger writes), a longer one stays a hole. */
  async seek(offset: number, fill = 0): Promise<void> {
    const gap = offset - this.position;
    if (gap === 0) return;
    if (gap <= fill && this.len + gap <= this.buf.length) {
      this.buf.fill(0, this.len, this.len + gap);
      this.len += gap;
      return;
    }
    await this.flush();
    this.at = offset;
  }

  /** Starts writing what is buffered (after the previous write finished) and switches buffers. */
  async flush(): Promise<void> {
    await this.settle();
    if (this.len === 0) return;
    const full = this.buf;
    const n = this.len;
    const at = this.at;
    this.pending = writeAll(this.fh, full.subarray(0, n), at);
    this.buf = this.spare;
    this.spare = full;
    this.at += n;
    this.len = 0;
  }

  /** Waits for the write in flight. */
  async settle(): Promise<void> {
    const p = this.pending;
    this.pending = undefined;
    await p;
  }

  /** Writes everything and waits for it. */
  async close(): Promise<void> {
    await this.flush();
    await this.settle();
  }
}

async function writeAll(fh: fs.promises.FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

abstract class FileDiskWriter implements DiskWriter {
  protected last = 0;

  protected constructor(protected readonly dest: string, protected readonly tmp: string, protected readonly fh: fs.promises.FileHandle, protected readonly size: number) {}

  protected check(offset: number, data: Uint8Array): void {
    if (offset < this.last || offset + data.length > this.size) {
      throw new RangeError(`disk write of ${data.length} bytes at ${offset} is out of order or beyond the ${this.size}-byte disk`);
    }
    this.last = offset + data.length;
  }

  abstract write(offset: number, data: Uint8Array): Promise<void>;
  protected abstract complete(): Promise<void>;

  async finish(): Promise<void> {
    await this.complete();
    await this.fh.close();
    await fs.promises.rename(this.tmp, this.dest);
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await fs.promises.rm(this.tmp, { force: true });
  }
}

class RawWriter extends FileDiskWriter {
  private readonly out: Appender;

  constructor(dest: string, tmp: string, fh: fs.promises.FileHandle, size: number) {
    super(dest, tmp, fh, size);
    this.out = new Appender(fh, 0);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.check(offset, data);
    // Holes below 64 KiB are not worth a separate write (the file is still sparse where it matters).
    await this.out.seek(offset, 64 * 1024);
    await this.out.append(data);
  }

  protected async complete(): Promise<void> {
    await this.out.close();
    await this.fh.truncate(this.size);
  }
}

const CLUSTER_BITS = 16;
const CLUSTER = 1 << CLUSTER_BITS;
const L2_ENTRIES = CLUSTER / 8;
/** 16-bit refcounts (refcount_order 4): entries per refcount block. */
const REFS_PER_BLOCK = CLUSTER / 2;
const COPIED = 2n ** 63n;
const ZERO_CLUSTER = Buffer.alloc(CLUSTER);

class Qcow2Writer extends FileDiskWriter {
  private readonly out: Appender;
  /** Next free host cluster (0 is the header). */
  private nextCluster = 1;
  private cur = -1;
  private readonly cluster = Buffer.alloc(CLUSTER);
  private dirty = false;
  private l2Index = -1;
  private l2: Float64Array | undefined;
  /** Host offset of each L2 table (0: none). */
  private readonly l1: Float64Array;

  constructor(dest: string, tmp: string, fh: fs.promises.FileHandle, size: number, private readonly backing?: QcowBacking) {
    super(dest, tmp, fh, size);
    this.out = new Appender(fh, CLUSTER);
    this.l1 = new Float64Array(Math.max(1, Math.ceil(Math.ceil(size / CLUSTER) / L2_ENTRIES)));
  }

  private alloc(clusters = 1): number {
    const at = this.nextCluster * CLUSTER;
    this.nextCluster += clusters;
    return at;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.check(offset, data);
    let pos = 0;
    while (pos < data.length) {
      const g = Math.floor((offset + pos) / CLUSTER);
      if (g !== this.cur) {
        await this.endCluster();
        this.cur = g;
      }
      const within = (offset + pos) % CLUSTER;
      const n = Math.min(CLUSTER - within, data.length - pos);
      this.cluster.set(data.subarray(pos, pos + n), within);
      this.dirty = true;
      pos += n;
    }
  }

  private async endCluster(): Promise<void> {
    if (this.cur < 0 || !this.dirty) return;
    this.dirty = false;
    const g = this.cur;
    // Over a backing file a written cluster of zeros hides the backing's bytes, so it is kept.
    if (this.backing || !this.cluster.equals(ZERO_CLUSTER)) {
      const t = Math.floor(g / L2_ENTRIES);
      if (t !== this.l2Index) {
        await this.endL2();
        this.l2Index = t;
        this.l2 = new Float64Array(L2_ENTRIES);
      }
      const host = this.alloc();
      await this.out.append(this.cluster);
      this.l2![g % L2_ENTRIES] = host;
    }
    this.cluster.fill(0);
  }

  private async endL2(): Promise<void> {
    if (!this.l2) return;
    const table = Buffer.alloc(CLUSTER);
    for (let i = 0; i < L2_ENTRIES; i++) if (this.l2[i]) table.writeBigUInt64BE(BigInt(this.l2[i]!) | COPIED, i * 8);
    const host = this.alloc();
    await this.out.append(table);
    this.l1[this.l2Index] = host;
    this.l2 = undefined;
  }

  protected async complete(): Promise<void> {
    await this.endCluster();
    await this.endL2();
    // L1 table.
    const l1Bytes = this.l1.length * 8;
    const l1Clusters = Math.ceil(l1Bytes / CLUSTER);
    const l1Offset = this.alloc(l1Clusters);
    const l1 = Buffer.alloc(l1Clusters * CLUSTER);
    for (let i = 0; i < this.l1.length; i++) if (this.l1[i]) l1.writeBigUInt64BE(BigInt(this.l1[i]!) | COPIED, i * 8);
    await this.out.append(l1);
    // Refcount table and blocks: every cluster of the file, themselves included, has refcount 1.
    const used = this.nextCluster;
    let total = used;
    let blocks = 0;
    let tableClusters = 0;
    for (;;) {
      blocks = Math.ceil(total / REFS_PER_BLOCK);
      tableClusters = Math.ceil((blocks * 8) / CLUSTER);
      const next = used + blocks + tableClusters;
      if (next === total) break;
      total = next;
    }
    const tableOffset = this.alloc(tableClusters);
    const firstBlock = this.nextCluster;
    this.alloc(blocks);
    const table = Buffer.alloc(tableClusters * CLUSTER);
    for (let b = 0; b < blocks; b++) table.writeBigUInt64BE(BigInt((firstBlock + b) * CLUSTER), b * 8);
    await this.out.append(table);
    const block = Buffer.alloc(CLUSTER);
    for (let b = 0; b < blocks; b++) {
      block.fill(0);
      const n = Math.min(REFS_PER_BLOCK, total - b * REFS_PER_BLOCK);
      for (let i = 0; i < n; i++) block.writeUInt16BE(1, i * 2);
      await this.out.append(block);
    }
    await this.out.close();
    // Header (version 3, no extensions but the end marker).
    const h = Buffer.alloc(CLUSTER);
    h.writeUInt32BE(0x514649fb, 0);
    h.writeUInt32BE(3, 4);
    h.writeUInt32BE(CLUSTER_BITS, 20);
    h.writeBigUInt64BE(BigInt(this.size), 24);
    h.writeUInt32BE(this.l1.length, 36);
    h.writeBigUInt64BE(BigInt(l1Offset), 40);
    h.writeBigUInt64BE(BigInt(tableOffset), 48);
    h.writeUInt32BE(tableClusters, 56);
    h.writeUInt32BE(4, 96);
    h.writeUInt32BE(104, 100);
    if (this.backing) {
      // The backing file's format as a header extension (0xe2792aca), the end marker, then the backing file's name.
      const fmt = Buffer.from(this.backing.format);
      let at = 104;
      h.writeUInt32BE(0xe2792aca, at);
      h.writeUInt32BE(fmt.length, at + 4);
      fmt.copy(h, at + 8);
      at += 8 + Math.ceil(fmt.length / 8) * 8;
      at += 8; // end of extensions: type 0, length 0
      const name = Buffer.from(this.backing.file);
      if (at + name.length > CLUSTER) throw new RangeError(`backing file name of ${name.length} bytes does not fit in the qcow2 header`);
      name.copy(h, at);
      h.writeBigUInt64BE(BigInt(at), 8);
      h.writeUInt32BE(name.length, 16);
    }
    await writeAll(this.fh, h, 0);
  }
}

const SECTOR = 512;
/** 64 KiB grains (128 sectors) and 512-entry grain tables, as VMware and qemu write them: a table spans 32 MiB. */
const GRAIN = 64 * 1024;
const GT_ENTRIES = 512;
const GT_SPAN = GRAIN * GT_ENTRIES;
const VMDK_MAGIC = 0x564d444b;
/** Flags: valid newline test (bit 0), compressed grains (bit 16), markers (bit 17). */
const VMDK_FLAGS = 1 | (1 << 16) | (1 << 17);
const DESCRIPTOR_SECTORS = 20;
/** Sectors before the first grain: header, descriptor, padding to 64 KiB. */
const OVERHEAD_SECTORS = 128;
const MARKER_EOS = 0;
const MARKER_GT = 1;
const MARKER_GD = 2;
const MARKER_FOOTER = 3;
/** Grains deflated at once (in the thread pool) while the file is written in order. */
const DEFLATE_AHEAD = 8;
const ZERO_GRAIN = Buffer.alloc(GRAIN);
const deflate = promisify(zlib.deflate);

/**
 * A VMDK streamOptimized image (the disk format inside OVA files), written front to back: header (grain directory
 * "at the end"), embedded descriptor, then per non-zero 64 KiB grain a grain marker (guest sector, length) and its
 * deflated bytes, each grain table behind a metadata marker once its 32 MiB span is done, the grain directory, and a
 * footer (the header again, now with the directory's offset) and the end-of-stream marker. All-zero grains are not
 * stored. Memory: one grain, the grains being deflated, the grain directory.
 */
class VmdkStreamWriter extends FileDiskWriter {
  private readonly out: Appender;
  private cur = -1;
  private readonly grain = Buffer.alloc(GRAIN);
  private dirty = false;
  /** Deflated grains not yet written, in order. */
  private readonly queue: Array<{ g: number; data: Promise<Buffer> }> = [];
  private gtIndex = -1;
  private gt: Uint32Array | undefined;
  /** Sector of each grain table (0: none). */
  private readonly gd: Uint32Array;
  /** The descriptor's content id: a running mix of what was written, so that the same disk gives the same file. */
  private cid = 0x2a;

  constructor(dest: string, tmp: string, fh: fs.promises.FileHandle, size: number) {
    super(dest, tmp, fh, size);
    if (size % SECTOR !== 0) throw new RangeError(`a VMDK holds whole 512-byte sectors: a ${size}-byte disk is not one`);
    this.out = new Appender(fh, OVERHEAD_SECTORS * SECTOR);
    this.gd = new Uint32Array(Math.max(1, Math.ceil(size / GT_SPAN)));
  }

  private header(gdSector: number | 'end'): Buffer {
    const h = Buffer.alloc(SECTOR);
    h.writeUInt32LE(VMDK_MAGIC, 0);
    h.writeUInt32LE(3, 4);
    h.writeUInt32LE(VMDK_FLAGS, 8);
    h.writeBigUInt64LE(BigInt(this.size / SECTOR), 12);
    h.writeBigUInt64LE(BigInt(GRAIN / SECTOR), 20);
    h.writeBigUInt64LE(1n, 28);
    h.writeBigUInt64LE(BigInt(DESCRIPTOR_SECTORS), 36);
    h.writeUInt32LE(GT_ENTRIES, 44);
    h.writeBigUInt64LE(0n, 48);
    h.writeBigUInt64LE(gdSector === 'end' ? 0xffffffffffffffffn : BigInt(gdSector), 56);
    h.writeBigUInt64LE(BigInt(OVERHEAD_SECTORS), 64);
    h[72] = 0;
    h.write('\n \r\n', 73, 'latin1');
    h.writeUInt16LE(1, 77);
    return h;
  }

  /** The embedded descriptor: one SPARSE extent, this file. */
  private descriptor(): Buffer {
    const sectors = this.size / SECTOR;
    const cylinders = Math.min(16383, Math.ceil(sectors / (16 * 63)));
    const cid = this.cid.toString(16).padStart(8, '0');
    const text = [
      '# Disk DescriptorFile', 'version=1', `CID=${cid}`, 'parentCID=ffffffff', 'createType="streamOptimized"', '',
      '# Extent description', `RW ${sectors} SPARSE "${path.basename(this.dest).replace(/"/g, '_')}"`, '',
      '# The Disk Data Base', '#DDB', '', 'ddb.virtualHWVersion = "4"', `ddb.geometry.cylinders = "${cylinders}"`,
      'ddb.geometry.heads = "16"', 'ddb.geometry.sectors = "63"', 'ddb.adapterType = "ide"', 'ddb.toolsVersion = "2147483647"', '',
    ].join('\n');
    const buf = Buffer.alloc(DESCRIPTOR_SECTORS * SECTOR);
    if (Buffer.byteLength(text) > buf.length) throw new RangeError('VMDK descriptor does not fit in its sectors');
    buf.write(text, 0, 'utf8');
    return buf;
  }

  /** A metadata marker: `sectors` of metadata of `type` follow. */
  private static marker(sectors: number, type: number): Buffer {
    const m = Buffer.alloc(SECTOR);
    m.writeBigUInt64LE(BigInt(sectors), 0);
    m.writeUInt32LE(type, 12);
    return m;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.check(offset, data);
    let pos = 0;
    while (pos < data.length) {
      const g = Math.floor((offset + pos) / GRAIN);
      if (g !== this.cur) {
        await this.endGrain();
        this.cur = g;
      }
      const within = (offset + pos) % GRAIN;
      const n = Math.min(GRAIN - within, data.length - pos);
      this.grain.set(data.subarray(pos, pos + n), within);
      this.dirty = true;
      pos += n;
    }
  }

  private async endGrain(): Promise<void> {
    if (this.cur < 0 || !this.dirty) return;
    this.dirty = false;
    const g = this.cur;
    // A whole grain is deflated, also the last one of a disk that is not a multiple of 64 KiB (zeros past its end),
    // as readers expect a grain to inflate to its full size.
    if (!this.grain.equals(ZERO_GRAIN)) {
      // One output chunk per grain: node's default 16 KiB chunks add a callback and a copy each.
      this.queue.push({ g, data: deflate(Buffer.from(this.grain), { chunkSize: 2 * GRAIN }) });
      if (this.queue.length >= DEFLATE_AHEAD) await this.drain(1);
    }
    this.grain.fill(0);
  }

  /** Writes the oldest `keep`-exceeding deflated grains (all with keep 0) with their markers. */
  private async drain(keep: number): Promise<void> {
    while (this.queue.length > keep) {
      const { g, data } = this.queue.shift()!;
      const z = await data;
      const t = Math.floor(g / GT_ENTRIES);
      if (t !== this.gtIndex) {
        await this.endGt();
        this.gtIndex = t;
        this.gt = new Uint32Array(GT_ENTRIES);
      }
      const at = this.out.position;
      const marker = Buffer.alloc(12);
      marker.writeBigUInt64LE(BigInt((g * GRAIN) / SECTOR), 0);
      marker.writeUInt32LE(z.length, 8);
      await this.out.append(marker);
      await this.out.append(z);
      await this.out.seek(this.out.position + ((SECTOR - ((12 + z.length) % SECTOR)) % SECTOR), SECTOR);
      this.gt![g % GT_ENTRIES] = at / SECTOR;
      this.cid = (Math.imul(this.cid, 31) + g + z.length) >>> 0;
    }
  }

  private async endGt(): Promise<void> {
    if (!this.gt) return;
    const table = Buffer.alloc(GT_ENTRIES * 4);
    for (let i = 0; i < GT_ENTRIES; i++) table.writeUInt32LE(this.gt[i]!, i * 4);
    await this.out.append(VmdkStreamWriter.marker(table.length / SECTOR, MARKER_GT));
    this.gd[this.gtIndex] = this.out.position / SECTOR;
    await this.out.append(table);
    this.gt = undefined;
  }

  protected async complete(): Promise<void> {
    await this.endGrain();
    await this.drain(0);
    await this.endGt();
    const gdBytes = Math.ceil((this.gd.length * 4) / SECTOR) * SECTOR;
    const gd = Buffer.alloc(gdBytes);
    for (let i = 0; i < this.gd.length; i++) gd.writeUInt32LE(this.gd[i]!, i * 4);
    await this.out.append(VmdkStreamWriter.marker(gdBytes / SECTOR, MARKER_GD));
    const gdSector = this.out.position / SECTOR;
    await this.out.append(gd);
    await this.out.append(VmdkStreamWriter.marker(1, MARKER_FOOTER));
    await this.out.append(this.header(gdSector));
    await this.out.append(VmdkStreamWriter.marker(0, MARKER_EOS));
    await this.out.close();
    await writeAll(this.fh, Buffer.concat([this.header('end'), this.descriptor()]), 0);
  }

  override async abort(): Promise<void> {
    // Deflates still running finish into nothing; their rejections must not go unhandled.
    for (const q of this.queue.splice(0)) q.data.catch(() => undefined);
    await super.abort();
  }
}

/** A qcow2 overlay's backing file: its name as written in the header (relative to the overlay's directory, or absolute) and format. */
export interface QcowBacking {
  file: string;
  format: 'qcow2' | 'raw';
}

/**
 * A writer for a `size`-byte virtual disk at `dest` in `format`. An existing `dest` is refused unless `force`
 * (then replaced when the new image is complete). `backing` (qcow2 only): an overlay, whose clusters not written read
 * from the backing file — write exactly the clusters that differ from it.
 */
export async function createDiskWriter(dest: string, format: DiskFormat, size: number, options: { backing?: QcowBacking } = {}): Promise<DiskWriter> {
  if (options.backing && format !== 'qcow2') throw new RangeError('only a qcow2 image can have a backing file');
  const tmp = tempName(dest);
  const fh = await fs.promises.open(tmp, 'w');
  try {
    if (format === 'qcow2') return new Qcow2Writer(dest, tmp, fh, size, options.backing);
    if (format === 'vmdk') return new VmdkStreamWriter(dest, tmp, fh, size);
    return new RawWriter(dest, tmp, fh, size);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
}
