/**
 * VHD images (Virtual PC / Hyper-V / Azure, qemu's 'vpc') as random-access BlockSources over the guest's disk:
 * fixed (the disk's bytes, then a 512-byte footer) and dynamic (a footer copy at 0, a dynamic header, a block
 * allocation table, and per block a sector bitmap followed by the block's data). Differencing disks are refused.
 * Footer and dynamic header checksums are verified; every offset taken from the image is checked against the file
 * size before use; the BAT is read once (bounded by the disk size), blocks on demand. Spec: Microsoft's "Virtual
 * Hard Disk Image Format Specification" (2006). The disk size is the footer's current size.
 */
import { readUnits, unitExtents } from './virtual-disk.js';
import { CorruptInputError, UnsupportedInputError } from '../errors.js';
import { native } from '../native/index.js';
import type { BlockSource } from './ext4.js';
import { type FileReader, openFile } from './qcow2.js';
import { SourceReadError } from '../errors.js';

const FOOTER = 512;
const DYN_HEADER = 1024;
const COOKIE = 'conectix';
const DYN_COOKIE = 'cxsparse';
const TYPE_FIXED = 2;
const TYPE_DYNAMIC = 3;
const TYPE_DIFFERENCING = 4;
const UNALLOCATED = 0xffffffff;
/** VHD's own limit is 2040 GiB; a little slack for writers that round up. */
const MAX_SIZE = 2 ** 41;
const MAX_BLOCK = 2 ** 28;
const BITMAP_CACHE = 64;

/** A VHD opened by openVhd. */
export type VhdSource = BlockSource & {
  kind: 'fixed' | 'dynamic';
  /** Ranges that may hold data, in increasing order. */
  extents(): AsyncIterable<{ offset: number; length: number }>;
  close(): Promise<void>;
};

/** True when `buf` (512 bytes: a file's first sector, or its last) starts with the VHD footer cookie 'conectix'. */
export function isVhdFooter(buf: Buffer): boolean {
  return buf.length >= 8 && buf.toString('latin1', 0, 8) === COOKIE;
}

/** VHD's checksum: the one's complement of the byte sum, with the checksum field (4 bytes at `at`) counted as zero. */
function checksum(buf: Buffer, at: number): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) if (i < at || i >= at + 4) sum += buf[i]!;
  return ~sum >>> 0;
}

function u64(buf: Buffer, at: number): number {
  const hi = buf.readUInt32BE(at);
  const lo = buf.readUInt32BE(at + 4);
  return hi >= 0x200000 ? Number.POSITIVE_INFINITY : hi * 2 ** 32 + lo;
}

interface Footer {
  type: number;
  size: number;
  dataOffset: number;
}

function parseFooter(r: FileReader, f: Buffer, at: number): Footer {
  const bad = (field: string, off: number, reason: string) => new CorruptInputError(r.file, `footer.${field} (offset ${at + off})`, reason);
  if (!isVhdFooter(f)) throw bad('cookie', 0, "not a VHD image (cookie is not 'conectix')");
  const sum = checksum(f, 64);
  if (f.readUInt32BE(64) !== sum) throw bad('checksum', 64, `checksum 0x${f.readUInt32BE(64).toString(16)} does not match the footer's (0x${sum.toString(16)})`);
  const type = f.readUInt32BE(60);
  if (type === TYPE_DIFFERENCING) throw new UnsupportedInputError(r.file, 'differencing VHD (disk type 4) is not supported; merge it into its parent first');
  if (type !== TYPE_FIXED && type !== TYPE_DYNAMIC) throw bad('disk_type', 60, `disk type ${type} is neither fixed (2) nor dynamic (3)`);
  const size = u64(f, 48);
  if (size > MAX_SIZE || size % 512 !== 0) throw bad('current_size', 48, `disk size ${f.readBigUInt64BE(48)} is not a multiple of 512 up to 2 TiB`);
  return { type, size, dataOffset: u64(f, 16) };
}

/**
 * Opens a fixed or dynamic VHD read-only. Throws CorruptInputError (bad cookie or checksum, tables or blocks outside
 * the file), UnsupportedInputError (differencing disks) and SourceReadError (I/O); `read()` may throw the same when
 * it meets a bad block. Call `close()`.
 */
export async function openVhd(file: string): Promise<VhdSource> {
  const r = await openFile(file);
  try {
    if (r.fileSize < FOOTER) throw new CorruptInputError(file, 'footer', `file too short for a VHD footer (${r.fileSize} bytes)`);
    const head = await r.read(0, FOOTER, 'footer copy');
    if (isVhdFooter(head)) {
      const footer = parseFooter(r, head, 0);
      if (footer.type === TYPE_DYNAMIC) return await openDynamic(r, footer);
    }
    const footer = parseFooter(r, await r.read(r.fileSize - FOOTER, FOOTER, 'footer'), r.fileSize - FOOTER);
    if (footer.type === TYPE_DYNAMIC) return await openDynamic(r, footer);
    return openFixed(r, footer);
  } catch (e) {
    await r.fh.close().catch(() => {});
    throw e;
  }
}

function outside(file: string, size: number, offset: number, length: number): SourceReadError {
  return new SourceReadError(file, `read of ${length} bytes at ${offset} lies outside the ${size}-byte virtual disk`);
}

function openFixed(r: FileReader, footer: Footer): VhdSource {
  const size = footer.size;
  if (size > r.fileSize - FOOTER) {
    throw new CorruptInputError(r.file, `footer.current_size (offset ${r.fileSize - FOOTER + 48})`, `a ${size}-byte fixed disk does not fit in the ${r.fileSize}-byte file`);
  }
  return {
    kind: 'fixed',
    size,
    read(offset, length) {
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) return Promise.reject(outside(r.file, size, offset, length));
      return r.read(offset, length, 'data');
    },
    async *extents() {
      const flat = native().dataExtents(r.fh.fd, size);
      for (let i = 0; i < flat.length; i += 2) yield { offset: flat[i]!, length: flat[i + 1]! };
    },
    close: () => r.fh.close(),
  };
}

async function openDynamic(r: FileReader, footer: Footer): Promise<VhdSource> {
  const file = r.file;
  const hAt = footer.dataOffset;
  if (!Number.isSafeInteger(hAt) || hAt + DYN_HEADER > r.fileSize) {
    throw new CorruptInputError(file, 'footer.data_offset (offset 16)', `dynamic header at ${footer.dataOffset} lies past the end of the ${r.fileSize}-byte file`);
  }
  const h = await r.read(hAt, DYN_HEADER, 'dynamic header');
  const bad = (field: string, off: number, reason: string) => new CorruptInputError(file, `dynamic header.${field} (offset ${hAt + off})`, reason);
  if (h.toString('latin1', 0, 8) !== DYN_COOKIE) throw bad('cookie', 0, "not a dynamic VHD header (cookie is not 'cxsparse')");
  const sum = checksum(h, 36);
  if (h.readUInt32BE(36) !== sum) throw bad('checksum', 36, `checksum 0x${h.readUInt32BE(36).toString(16)} does not match the header's (0x${sum.toString(16)})`);
  const blockSize = h.readUInt32BE(32);
  if (blockSize < 512 || blockSize > MAX_BLOCK || (blockSize & (blockSize - 1)) !== 0) throw bad('block_size', 32, `block size ${blockSize} is not a power of two from 512 to 256 MiB`);
  const entries = h.readUInt32BE(28);
  const size = footer.size;
  const needed = Math.ceil(size / blockSize);
  if (entries < needed) throw bad('max_table_entries', 28, `${entries} BAT entries are too few for a ${size}-byte disk of ${blockSize}-byte blocks (needs ${needed})`);
  const batAt = u64(h, 16);
  if (!Number.isSafeInteger(batAt) || batAt + needed * 4 > r.fileSize) {
    throw bad('table_offset', 16, `BAT at ${h.readBigUInt64BE(16)} (${needed * 4} bytes) lies past the end of the ${r.fileSize}-byte file`);
  }
  const bat = await r.read(batAt, needed * 4, 'BAT');
  const bitmapBytes = Math.ceil(blockSize / 512 / 8 / 512) * 512;
  // Every entry checked now: a block that does not fit in the file is an error at open, not mid-commit.
  for (let i = 0; i < needed; i++) {
    const s = bat.readUInt32BE(i * 4);
    if (s === UNALLOCATED) continue;
    const at = s * 512;
    if (at + bitmapBytes + blockSize > r.fileSize) {
      throw new CorruptInputError(file, `BAT entry ${i} (offset ${batAt + i * 4})`, `block at sector ${s} (byte ${at}, ${bitmapBytes + blockSize} bytes) lies past the end of the ${r.fileSize}-byte file`);
    }
  }
  const bitmaps = new Map<number, Promise<Buffer>>();
  const bitmap = (b: number, at: number): Promise<Buffer> => {
    let p = bitmaps.get(b);
    if (p) return p;
    p = r.read(at, bitmapBytes, `sector bitmap of block ${b}`);
    p.catch(() => bitmaps.delete(b));
    bitmaps.set(b, p);
    if (bitmaps.size > BITMAP_CACHE) bitmaps.delete(bitmaps.keys().next().value!);
    return p;
  };
  return {
    kind: 'dynamic',
    size,
    read: (offset, length) => readUnits(file, size, blockSize, offset, length, async (b, inUnit, n, out, outAt) => {
      const s = bat.readUInt32BE(b * 4);
      if (s === UNALLOCATED) return;
      const at = s * 512;
      const map = await bitmap(b, at);
      // Runs of present sectors (bit set, most significant bit first) are read; the rest stays zero.
      const bit = (sec: number) => (map[sec >> 3]! & (0x80 >> (sec & 7))) !== 0;
      for (let p = inUnit; p < inUnit + n;) {
        const present = bit(Math.floor(p / 512));
        let q = Math.min(inUnit + n, (Math.floor(p / 512) + 1) * 512);
        while (q < inUnit + n && bit(q / 512) === present) q = Math.min(inUnit + n, q + 512);
        if (present) await r.readInto(at + bitmapBytes + p, q - p, out, outAt + (p - inUnit), `block ${b}`);
        p = q;
      }
    }),
    extents: () => unitExtents((function* () {
      for (let b = 0; b < needed; b++) if (bat.readUInt32BE(b * 4) !== UNALLOCATED) yield b;
    })(), blockSize, size),
    close: () => r.fh.close(),
  };
}
