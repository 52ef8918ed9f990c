/**
 * Disk image writers: a sparse raw file, or a qcow2 image written in one streaming pass (no raw temp file). Both take
 * the virtual disk's non-zero bytes as pieces in increasing offset order; bytes never written read as zeros. Output
 * goes to a temporary file next to the destination, renamed into place by finish(), so a failure leaves nothing.
 *
 * Why our own qcow2 writer: no npm package writes qcow2, and the layout a sequential writer needs is small (qemu's
 * docs/interop/qcow2.txt): header, data clusters as they come, each L2 table once its 512 MiB span is complete, then
 * the L1 table and the refcount structures, then the header again with their offsets.
 */
import fs from 'node:fs';
import path from 'node:path';

export type DiskFormat = 'raw' | 'qcow2';

export interface DiskWriter {
  /** Non-overlapping pieces in increasing offset order, inside the virtual size. `data` may be reused after the promise resolves. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Completes the image and moves it to its destination. */
  finish(): Promise<void>;
  /** Removes the partial output. */
  abort(): Promise<void>;
}

/** The disk format a destination name implies: .qcow2 → qcow2; .raw, .img → raw; anything else: undefined. */
export function diskFormatForName(dest: string): DiskFormat | undefined {
  const n = dest.toLowerCase();
  if (n.endsWith('.qcow2')) return 'qcow2';
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
  return format === 'qcow2' ? new Qcow2Writer(dest, tmp, fh, size, options.backing) : new RawWriter(dest, tmp, fh, size);
}
