/**
 * Disk images as sources: a raw disk file, a qcow2 image (with its backing chain), a VHD (fixed or dynamic), a
 * VirtualBox VDI or a VMDK sparse extent (monolithicSparse, streamOptimized), seen as one random-access
 * virtual disk, plus what lies on it: a partition table (MBR or GPT) and per partition (or for a bare file system,
 * the whole disk) a file system viva can read (ext2/3/4) or raw bytes. Nothing is mounted or booted.
 */
import fs from 'node:fs';
import { CorruptInputError, SourceReadError, UnsupportedInputError } from '../errors.js';
import { native } from '../native/index.js';
import { type BlockSource, fileBlockSource } from './ext4.js';
import { type Partition, type PartitionTable, gaps, readPartitionTable } from './partitions.js';
import { allocatedExtents, isQcow2, openQcow2 } from './qcow2.js';
import { isVdi, openVdi } from './vdi.js';
import { isVhdFooter, openVhd } from './vhd.js';
import { isVmdk, isVmdkDescriptor, openVmdk } from './vmdk.js';

export interface Extent {
  offset: number;
  length: number;
}

/** The container formats a disk image is read from. */
export type DiskSourceFormat = 'raw' | 'qcow2' | 'vhd' | 'vdi' | 'vmdk';

/** A virtual disk to read: random access, plus the ranges that may hold non-zero bytes. */
export interface DiskSource extends BlockSource {
  format: DiskSourceFormat;
  /** The file as the user named it. */
  name: string;
  /** Bytes of the image file itself. */
  fileSize: number;
  /** qcow2: backing files, nearest first. */
  backing: string[];
  /** Ranges that may hold data, in increasing order; everything else reads as zeros. */
  extents(): AsyncIterable<Extent>;
  close(): Promise<void>;
}

const EXT_MAGIC_OFFSET = 1024 + 56;

/** Magic of an ext2/3/4 superblock at `offset` of `src`. */
export async function hasExtMagic(src: BlockSource, offset = 0, size = src.size): Promise<boolean> {
  if (size < 2048) return false;
  const b = await src.read(offset + EXT_MAGIC_OFFSET, 2);
  return b[0] === 0x53 && b[1] === 0xef;
}

/**
 * What the first bytes of a file say it is, for commit's choice of reader: a qcow2 image, a raw disk (an MBR/GPT
 * partition table, or a bare ext2/3/4 file system), or neither (a tar, or garbage the tar reader reports).
 */
export async function sniffDisk(file: string): Promise<DiskSourceFormat | undefined> {
  let fh: fs.promises.FileHandle;
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
    if (!st.isFile() && !st.isBlockDevice()) return undefined;
    fh = await fs.promises.open(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const head = Buffer.alloc(2048);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    if (bytesRead >= 4 && isQcow2(head)) return 'qcow2';
    if (bytesRead >= 4 && isVmdk(head)) return 'vmdk';
    if (isVmdkDescriptor(head.subarray(0, bytesRead))) return 'vmdk';
    if (bytesRead < 512) return undefined;
    if (isVhdFooter(head)) return 'vhd';
    if (isVdi(head)) return 'vdi';
    // A fixed VHD: the disk's bytes (often with an MBR), then the footer in the last sector.
    if (st.isFile()) {
      const tail = Buffer.alloc(512);
      const t = await fh.read(tail, 0, 512, st.size - 512);
      if (t.bytesRead === 512 && isVhdFooter(tail)) return 'vhd';
    }
    if (head.toString('latin1', 257, 262) === 'ustar') return undefined;
    if (head[510] === 0x55 && head[511] === 0xaa) return 'raw';
    const sb = Buffer.alloc(2);
    const r = await fh.read(sb, 0, 2, EXT_MAGIC_OFFSET);
    if (r.bytesRead === 2 && sb[0] === 0x53 && sb[1] === 0xef) return 'raw';
    return undefined;
  } finally {
    await fh.close();
  }
}

/** Opens a raw disk file, a qcow2 image, a VHD, a VDI or a VMDK (detected by content) as a DiskSource. */
export async function openDiskSource(file: string): Promise<DiskSource> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch (e) {
    throw new SourceReadError(file, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message);
  }
  const kind = await sniffDisk(file);
  if (kind === 'qcow2') {
    const q = await openQcow2(file);
    return {
      format: 'qcow2', name: file, fileSize: st.size, backing: q.info.backingChain, size: q.size,
      read: (o, n) => q.read(o, n),
      extents: () => allocatedExtents(q),
      close: () => q.close(),
    };
  }
  if (kind === 'vhd') {
    const v = await openVhd(file);
    return { format: kind, name: file, fileSize: st.size, backing: [], size: v.size, read: (o, n) => v.read(o, n), extents: () => v.extents(), close: () => v.close() };
  }
  if (kind === 'vdi' || kind === 'vmdk') {
    const v = kind === 'vdi' ? await openVdi(file) : await openVmdk(file);
    return { format: kind, name: file, fileSize: st.size, backing: [], size: v.size, read: (o, n) => v.read(o, n), extents: () => v.extents(), close: () => v.close() };
  }
  const src = await fileBlockSource(file);
  return {
    format: 'raw', name: file, fileSize: st.size, backing: [], size: src.size,
    read: (o, n) => src.read(o, n),
    async *extents(): AsyncIterable<Extent> {
      if (!st.isFile()) {
        yield { offset: 0, length: src.size };
        return;
      }
      const fd = fs.openSync(file, 'r');
      let flat: number[];
      try {
        flat = native().dataExtents(fd, src.size);
      } finally {
        fs.closeSync(fd);
      }
      for (let i = 0; i < flat.length; i += 2) yield { offset: flat[i]!, length: flat[i + 1]! };
    },
    close: () => src.close(),
  };
}

/** A BlockSource over bytes [offset, offset + size) of another. */
export function subSource(src: BlockSource, offset: number, size: number): BlockSource {
  if (offset < 0 || size < 0 || offset + size > src.size) throw new RangeError(`sub-range ${offset}+${size} outside a ${src.size}-byte source`);
  return {
    size,
    read(at: number, n: number): Promise<Buffer> {
      if (at < 0 || n < 0 || at + n > size) {
        return Promise.reject(new SourceReadError('<region>', `read of ${n} bytes at ${at} lies outside the ${size}-byte region`));
      }
      return src.read(offset + at, n);
    },
  };
}

export interface PlannedRegion {
  offset: number;
  size: number;
  partition?: Partition;
  /** 'ext' when an ext2/3/4 superblock is there (the reader decides whether it can read it). */
  fs?: 'ext';
  /** A partition whose type says "Linux file system" but that holds no ext superblock: why (for a warning). */
  rawReason?: string;
}

/**
 * Partition types that say "a Linux file system is here": MBR 0x83, GPT Linux data and the discoverable-partitions
 * root, /usr, /home, /srv and /var types. Such a partition without a readable ext superblock is worth a warning;
 * others (swap, EFI/vfat, BIOS boot, LVM, unknown) are raw bytes by design.
 */
const LINUX_FS_TYPES = new Set([
  '0x83',
  '0fc63daf-8483-4772-8e79-3d69d8477de4', '4f68bce3-e8cd-4db1-96e7-fbcaf984b709', 'b921b045-1df0-41c3-af44-4c6f280d3fae',
  '44479540-f297-41b2-9af7-d131d5f0458a', '69dad710-2ce4-4e3c-b16c-21a1d49abed3', '8484680c-9521-48c6-9c11-b0720656f69e',
  'b0e01050-ee5f-4390-949a-9101b17104e9', '933ac7e1-2eb4-4f13-b844-0e14e2aef915', '3b8f8425-20e0-4f3b-907f-1a25a76f98e8',
  '4d21b016-b534-45c2-a9fb-5c16e091fd2d',
]);
const EXT_SUPER_OFFSET = 1024;

/** Signatures of what else a Linux-typed partition often holds: [offset, bytes, what, raw by design?]. */
const OTHER_SIGNATURES: Array<[number, string, string, boolean]> = [
  [4086, 'SWAPSPACE2', 'swap', true], [4086, 'SWAP-SPACE', 'swap', true], [512, 'LABELONE', 'LVM physical volume', true],
  [0, 'LUKS\xba\xbe', 'LUKS encrypted volume', true], [0, 'XFSB', 'xfs file system', false], [0x10040, '_BHRfS_M', 'btrfs file system', false],
];

/**
 * Why a Linux-typed partition without an ext superblock can only be kept as raw bytes, or undefined when there is
 * nothing to say: not a Linux type, a never-formatted partition (superblock area all zeros), swap, an LVM physical
 * volume, LUKS.
 */
async function rawReason(src: BlockSource, r: { offset: number; size: number; partition: Partition }): Promise<string | undefined> {
  if (!LINUX_FS_TYPES.has(r.partition.type.toLowerCase())) return undefined;
  for (const [at, sig, what, byDesign] of OTHER_SIGNATURES) {
    if (at + sig.length > r.size) continue;
    if ((await src.read(r.offset + at, sig.length)).toString('latin1') !== sig) continue;
    return byDesign ? undefined : `${what}: viva reads ext2/ext3/ext4 only`;
  }
  if (r.size < EXT_SUPER_OFFSET * 2) return `too small for an ext2/ext3/ext4 file system (${r.size} bytes)`;
  const sb = await src.read(r.offset + EXT_SUPER_OFFSET, EXT_SUPER_OFFSET);
  if (!sb.some((b) => b !== 0)) return undefined;
  const magic = sb.readUInt16LE(EXT_MAGIC_OFFSET - EXT_SUPER_OFFSET);
  return `ext4 superblock unreadable (bad magic 0x${magic.toString(16).padStart(4, '0')} at offset ${EXT_MAGIC_OFFSET}, expected 0xef53)`;
}

/**
 * The layout of a disk: its partition table (if any) and the regions covering it in offset order — each partition,
 * plus raw regions for the bytes no partition covers (boot code, table sectors, gaps). A disk without a table is one
 * region: a bare file system, or raw bytes.
 * Throws CorruptInputError for tables readPartitionTable refuses, UnsupportedInputError when the disk holds nothing
 * viva can read at all (no table and no known file system) and `requireKnown` is set.
 */
export async function planDisk(src: DiskSource, options: { requireKnown?: boolean } = {}): Promise<{ table?: PartitionTable; regions: PlannedRegion[] }> {
  const table = await readPartitionTable(src, src.name);
  if (table && table.diskSize > src.size) {
    throw new CorruptInputError(src.name, 'partition table', `the table describes a ${table.diskSize}-byte disk, larger than the ${src.size}-byte image`);
  }
  if (!table) {
    const ext = await hasExtMagic(src);
    if (!ext && options.requireKnown) {
      throw new UnsupportedInputError(src.name, 'no MBR/GPT partition table and no ext2/ext3/ext4 file system found');
    }
    return { regions: [{ offset: 0, size: src.size, ...(ext ? { fs: 'ext' as const } : {}) }] };
  }
  const regions: PlannedRegion[] = [];
  const extended = (p: Partition) => table.kind === 'mbr' && !p.logical && [0x05, 0x0f, 0x85].includes(Number.parseInt(p.type, 16));
  for (const p of table.partitions) {
    if (extended(p) || p.size === 0) continue;
    const ext = await hasExtMagic(src, p.start, p.size);
    const why = ext ? undefined : await rawReason(src, { offset: p.start, size: p.size, partition: p });
    regions.push({ offset: p.start, size: p.size, partition: p, ...(ext ? { fs: 'ext' as const } : {}), ...(why ? { rawReason: why } : {}) });
  }
  for (const g of gaps(table)) if (g.size > 0) regions.push({ offset: g.start, size: g.size });
  // Bytes past the table's idea of the disk (an image grown without moving the backup GPT) are kept too.
  if (src.size > table.diskSize) regions.push({ offset: table.diskSize, size: src.size - table.diskSize });
  regions.sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < regions.length; i++) {
    const a = regions[i - 1]!;
    const b = regions[i]!;
    if (a.offset + a.size > b.offset) {
      throw new CorruptInputError(src.name, `partition table: byte ${b.offset}`, 'partitions overlap');
    }
  }
  return { table, regions };
}

/** Granularity of zero detection: an all-zero block of a disk is a hole, never stored or written. */
export const ZERO_BLOCK = 4096;
const ZERO = Buffer.alloc(ZERO_BLOCK);

/**
 * The non-zero parts of `buf`, which holds the bytes at disk (or region) offset `base`, as pieces (views of `buf`);
 * zero detection works on ZERO_BLOCK-aligned blocks of that address space.
 */
export function* nonZero(buf: Buffer, base: number): Generator<{ offset: number; data: Buffer }> {
  let runStart = -1;
  let pos = 0;
  while (pos < buf.length) {
    const blockEnd = Math.min(buf.length, (Math.floor((base + pos) / ZERO_BLOCK) + 1) * ZERO_BLOCK - base);
    // Range compare: no subarray objects for the ~300k blocks of a GB (they showed up as GC time).
    const zero = ZERO.compare(buf, pos, blockEnd, 0, blockEnd - pos) === 0;
    if (zero) {
      if (runStart >= 0) { yield { offset: base + runStart, data: buf.subarray(runStart, pos) }; runStart = -1; }
    } else if (runStart < 0) {
      runStart = pos;
    }
    pos = blockEnd;
  }
  if (runStart >= 0) yield { offset: base + runStart, data: buf.subarray(runStart, buf.length) };
}
