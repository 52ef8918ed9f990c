/**
 * Disk images as sources: a raw disk file, a qcow2 image (with its backing chain), a VHD (fixed or dynamic), a VHDX
 * (fixed or dynamic), a VirtualBox VDI or a VMDK sparse extent (monolithicSparse, streamOptimized), seen as one random-access
 * virtual disk, plus what lies on it: a partition table (MBR or GPT) and per partition (or for a bare file system,
 * the whole disk) a file system viva can read (ext2/3/4, FAT), an LVM2 physical volume (./lvm.ts) or raw bytes.
 * Nothing is mounted or booted.
 */
import fs from 'node:fs';
import { CorruptInputError, SourceReadError, UsageError } from '../errors.js';
import { native } from '../native/index.js';
import { type BlockSource, fileBlockSource } from './ext4.js';
import { findLvmLabel } from './lvm.js';
import { type Partition, type PartitionTable, gaps, readPartitionTable } from './partitions.js';
import { allocatedExtents, isQcow2, openQcow2 } from './qcow2.js';
import { isVdi, openVdi } from './vdi.js';
import { isVhdFooter, openVhd } from './vhd.js';
import { isVhdx, openVhdx } from './vhdx.js';
import { isVmdk, isVmdkDescriptor, openVmdk } from './vmdk.js';
import { isXfsSuperblock } from './xfs.js';

export interface Extent {
  offset: number;
  length: number;
}

/** The container formats a disk image is read from. */
export type DiskSourceFormat = 'raw' | 'qcow2' | 'vhd' | 'vhdx' | 'vdi' | 'vmdk';

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
  /**
   * Bytes are composed from stored objects (a disk commit with an overlay), not read from a file: a read costs per
   * object it touches, so readers should not read across bytes they do not need to save calls.
   */
  composed?: boolean;
  close(): Promise<void>;
}

const EXT_MAGIC_OFFSET = 1024 + 56;

/** Magic of an ext2/3/4 superblock at `offset` of `src`. */
export async function hasExtMagic(src: BlockSource, offset = 0, size = src.size): Promise<boolean> {
  if (size < 2048) return false;
  const b = await src.read(offset + EXT_MAGIC_OFFSET, 2);
  return b[0] === 0x53 && b[1] === 0xef;
}

/** Signatures of content viva keeps as raw bytes: [offset, bytes, what it is]. */
const CONTENT_SIGNATURES: Array<[number, string, string]> = [
  [0, 'XFSB', 'xfs file system'], [0x10040, '_BHRfS_M', 'btrfs file system'], [0, 'LUKS\xba\xbe', 'LUKS encrypted volume'],
  [512, 'LABELONE', 'LVM2 physical volume'], [3, 'NTFS    ', 'NTFS file system'], [4086, 'SWAPSPACE2', 'swap space'],
  [4086, 'SWAP-SPACE', 'swap space'],
];

/**
 * Whether a first sector is a FAT boot sector: a jump, the 0x55AA mark, the 'FAT' type string of FAT12/16 or FAT32,
 * and a sane BIOS parameter block (so that boot code of an MBR that starts with a jump is not taken for one).
 */
function isFatBootSector(b: Buffer): boolean {
  if (b.length < 512 || b[510] !== 0x55 || b[511] !== 0xaa) return false;
  if (!(b[0] === 0xeb && b[2] === 0x90) && b[0] !== 0xe9) return false;
  if (b.toString('latin1', 54, 57) !== 'FAT' && b.toString('latin1', 82, 85) !== 'FAT') return false;
  const bytesPerSector = b.readUInt16LE(11);
  const perCluster = b[13]!;
  return [512, 1024, 2048, 4096].includes(bytesPerSector) && perCluster > 0 && (perCluster & (perCluster - 1)) === 0
    && b.readUInt16LE(14) > 0 && b[16]! > 0;
}

/** Whether a first sector is the boot sector of a file system (FAT, NTFS), not a master boot record. */
function isFsBootSector(b: Buffer): boolean {
  return isFatBootSector(b) || (b.length >= 11 && b.toString('latin1', 3, 11) === 'NTFS    ');
}

/**
 * What the bytes [offset, offset + size) of `src` hold by signature, among the contents viva keeps as raw bytes
 * ('xfs file system', 'btrfs file system', 'LUKS encrypted volume', 'LVM2 physical volume', 'NTFS file system',
 * 'swap space', 'FAT file system'), or undefined when none matches.
 */
export async function identifyContent(src: BlockSource, offset = 0, size = src.size): Promise<string | undefined> {
  if (size >= 512 && isFatBootSector(await src.read(offset, 512))) return 'FAT file system';
  for (const [at, sig, what] of CONTENT_SIGNATURES) {
    if (at + sig.length > size) continue;
    if ((await src.read(offset + at, sig.length)).toString('latin1') === sig) return what;
  }
  return undefined;
}

/** Whether a plausible XFS superblock is at `offset` of `src` (see isXfsSuperblock: a bare 'XFSB' is not one). */
export async function hasXfsSuper(src: BlockSource, offset = 0, size = src.size): Promise<boolean> {
  return size >= 4096 && isXfsSuperblock(await src.read(offset, 512));
}

/**
 * The file system at the start of a logical volume (or any byte range) that viva reads, by its magic, as a
 * PlannedRegion's `fs`: one probe per reader, tried in order.
 */
export async function detectFileSystem(src: BlockSource, offset = 0, size = src.size): Promise<NonNullable<PlannedRegion['fs']> | undefined> {
  // A new reader adds its kind to PlannedRegion['fs'] and one probe here.
  const probes: Array<[NonNullable<PlannedRegion['fs']>, (s: BlockSource, o: number, n: number) => Promise<boolean>]> = [
    ['ext', hasExtMagic], ['fat', hasFatBoot], ['xfs', hasXfsSuper],
  ];
  for (const [fs, probe] of probes) if (await probe(src, offset, size)) return fs;
  return undefined;
}

/**
 * Whether a FAT12/16/32 boot sector is at `offset` of `src`: the 0x55AA signature, a jump instruction, a valid
 * bytes-per-sector and a 'FAT' file-system type string where FAT12/16 (byte 54) or FAT32 (byte 82) keeps it.
 */
export async function hasFatBoot(src: BlockSource, offset = 0, size = src.size): Promise<boolean> {
  if (size < 4096) return false;
  const b = await src.read(offset, 512);
  if (b[510] !== 0x55 || b[511] !== 0xaa || (b[0] !== 0xeb && b[0] !== 0xe9)) return false;
  if (![512, 1024, 2048, 4096].includes(b.readUInt16LE(11))) return false;
  return b.toString('latin1', 54, 57) === 'FAT' || b.toString('latin1', 82, 87) === 'FAT32';
}

/**
 * What the first bytes of a file say it is, for commit's choice of reader: a qcow2 image, a raw disk (an MBR/GPT
 * partition table, a bare ext2/3/4 file system, or content kept as raw bytes that `identifyContent` names: xfs,
 * btrfs, LUKS, LVM2, NTFS, swap, FAT), or neither (a tar — checked first —, or garbage the tar reader reports).
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
    // A tar first: its first member's name could be anything, a magic number included.
    if (bytesRead >= 262 && head.toString('latin1', 257, 262) === 'ustar') return undefined;
    if (bytesRead >= 4 && isQcow2(head)) return 'qcow2';
    if (bytesRead >= 4 && isVmdk(head)) return 'vmdk';
    if (bytesRead >= 8 && isVhdx(head)) return 'vhdx';
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
    if (head[510] === 0x55 && head[511] === 0xaa) return 'raw';
    const sb = Buffer.alloc(2);
    const r = await fh.read(sb, 0, 2, EXT_MAGIC_OFFSET);
    if (r.bytesRead === 2 && sb[0] === 0x53 && sb[1] === 0xef) return 'raw';
    const size = (await fh.stat()).size;
    const headSource: BlockSource = {
      size,
      async read(at: number, n: number): Promise<Buffer> {
        const b = Buffer.alloc(n);
        await fh.read(b, 0, n, at);
        return b;
      },
    };
    return (await identifyContent(headSource, 0, size)) ? 'raw' : undefined;
  } finally {
    await fh.close();
  }
}

/**
 * Opens a raw disk file, a qcow2 image, a VHD, a VHDX, a VDI or a VMDK (detected by content) as a DiskSource.
 * `snapshot`: a qcow2 image's internal snapshot (id or name) instead of its active layer; UsageError for any other
 * format, or a name the image does not have.
 */
export async function openDiskSource(file: string, options: { snapshot?: string } = {}): Promise<DiskSource> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch (e) {
    throw new SourceReadError(file, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message);
  }
  const kind = await sniffDisk(file);
  if (options.snapshot !== undefined && kind !== 'qcow2') {
    throw new UsageError(`--snapshot reads a qcow2 image's internal snapshot: '${file}' is ${kind ? `a ${kind} disk image` : 'not a disk image'}`);
  }
  if (kind === 'qcow2') {
    const q = await openQcow2(file, options.snapshot !== undefined ? { snapshot: options.snapshot } : {});
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
  if (kind === 'vdi' || kind === 'vmdk' || kind === 'vhdx') {
    const v = kind === 'vdi' ? await openVdi(file) : kind === 'vmdk' ? await openVmdk(file) : await openVhdx(file);
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
  /**
   * 'ext' when an ext2/3/4 superblock is there, 'fat' for a partition that starts with a FAT boot sector (the reader
   * decides whether it can read it), 'xfs' for a plausible XFS superblock.
   */
  fs?: 'ext' | 'fat' | 'xfs';
  /** An LVM2 physical volume (a valid label): its logical volumes are read (ops/commit-disk). */
  lvm?: boolean;
  /**
   * A partition kept as raw bytes although it is not empty: why (for its warning), and whether --strict refuses it
   * (its type says "Linux file system"), and whether it may hold files that are therefore not indexed.
   */
  rawReason?: { why: string; strict: boolean; unindexed?: boolean };
  /**
   * A disk without a partition table or ext file system: what it holds by signature ('xfs file system', ...,
   * 'unknown content'); it is kept as raw bytes (for a warning).
   */
  content?: string;
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

/** GPT BIOS boot partition (GRUB's core image): boot code, raw by design and not worth a warning. */
const BIOS_BOOT_TYPE = '21686148-6449-6e6f-744e-656564454649';
/** Bytes at the start of a partition that must all be zero for it to count as never formatted. */
const UNFORMATTED_PROBE = 64 * 1024;

/**
 * Why a partition without a readable ext or FAT file system is kept as raw bytes (for its warning), or undefined when
 * there is nothing to say: a never-formatted partition (its first 64 KiB all zeros) or a BIOS boot partition.
 * `strict` is set when the partition's type says "Linux file system" (--strict refuses those); swap is named but
 * never refused, as it holds no files.
 */
async function rawReason(src: BlockSource, r: { offset: number; size: number; partition: Partition }): Promise<PlannedRegion['rawReason']> {
  const type = r.partition.type.toLowerCase();
  if (type === BIOS_BOOT_TYPE) return undefined;
  const linux = LINUX_FS_TYPES.has(type);
  const what = await identifyContent(src, r.offset, r.size);
  if (what === 'swap space') return { why: 'swap space', strict: false };
  if (what) return { why: `${what}, which viva does not read`, strict: linux, unindexed: true };
  const head = await src.read(r.offset, Math.min(r.size, UNFORMATTED_PROBE));
  if (!head.some((b) => b !== 0)) return undefined;
  if (linux && r.size >= EXT_SUPER_OFFSET * 2) {
    const sb = await src.read(r.offset + EXT_SUPER_OFFSET, EXT_SUPER_OFFSET);
    const magic = sb.readUInt16LE(EXT_MAGIC_OFFSET - EXT_SUPER_OFFSET);
    if (sb.some((b) => b !== 0)) {
      return { why: `ext4 superblock unreadable (bad magic 0x${magic.toString(16).padStart(4, '0')} at offset ${EXT_MAGIC_OFFSET}, expected 0xef53)`, strict: true };
    }
  }
  if (linux && r.size < EXT_SUPER_OFFSET * 2) return { why: `too small for an ext2/ext3/ext4 file system (${r.size} bytes)`, strict: true };
  return { why: `unknown content (partition type ${r.partition.type})`, strict: linux, unindexed: true };
}

/**
 * The layout of a disk: its partition table (if any) and the regions covering it in offset order — each partition,
 * plus raw regions for the bytes no partition covers (boot code, table sectors, gaps). A disk without a table is one
 * region: a bare file system, or raw bytes.
 * A disk that is a FAT or NTFS file system (its boot sector ends in 0x55AA like an MBR) has no table. A disk
 * holding nothing viva reads (no table, no ext file system) is one raw region whose `content` says what it is.
 * Throws CorruptInputError for tables readPartitionTable refuses.
 */
export async function planDisk(src: DiskSource): Promise<{ table?: PartitionTable; regions: PlannedRegion[] }> {
  // A disk that is a file system whose boot sector ends in 0x55AA like an MBR (FAT, NTFS) has no partition table.
  if (src.size >= 512 && isFsBootSector(await src.read(0, 512))) {
    if (await hasFatBoot(src)) return { regions: [{ offset: 0, size: src.size, fs: 'fat' }] };
    return { regions: [{ offset: 0, size: src.size, content: (await identifyContent(src)) ?? 'unknown content' }] };
  }
  let table = await readPartitionTable(src, src.name);
  // A FAT boot sector whose "partition entries" are all zero (FAT32's boot code ends before them) is no MBR.
  if (table?.kind === 'mbr' && table.partitions.length === 0 && await hasFatBoot(src)) table = undefined;
  if (table && table.diskSize > src.size) {
    throw new CorruptInputError(src.name, 'partition table', `the table describes a ${table.diskSize}-byte disk, larger than the ${src.size}-byte image`);
  }
  if (!table) {
    if (await hasExtMagic(src)) return { regions: [{ offset: 0, size: src.size, fs: 'ext' }] };
    if (await hasFatBoot(src)) return { regions: [{ offset: 0, size: src.size, fs: 'fat' }] };
    if (typeof await findLvmLabel(src) === 'number') return { regions: [{ offset: 0, size: src.size, lvm: true }] };
    if (await hasXfsSuper(src)) return { regions: [{ offset: 0, size: src.size, fs: 'xfs' }] };
    return { regions: [{ offset: 0, size: src.size, content: (await identifyContent(src)) ?? 'unknown content' }] };
  }
  const regions: PlannedRegion[] = [];
  const extended = (p: Partition) => table.kind === 'mbr' && !p.logical && [0x05, 0x0f, 0x85].includes(Number.parseInt(p.type, 16));
  for (const p of table.partitions) {
    if (extended(p) || p.size === 0) continue;
    const ext = await hasExtMagic(src, p.start, p.size);
    const fat = !ext && await hasFatBoot(src, p.start, p.size);
    const xfs = !ext && !fat && await hasXfsSuper(src, p.start, p.size);
    const label = ext || fat || xfs ? undefined : await findLvmLabel(src, p.start, p.size);
    const lvm = typeof label === 'number';
    const why = ext || fat || xfs || lvm ? undefined
      : label === 'bad' ? { why: 'LVM2 physical volume label unreadable (checksum, sector number or type does not match)', strict: true, unindexed: true }
        : await rawReason(src, { offset: p.start, size: p.size, partition: p });
    const fs = ext ? 'ext' as const : fat ? 'fat' as const : xfs ? 'xfs' as const : undefined;
    regions.push({ offset: p.start, size: p.size, partition: p, ...(fs ? { fs } : {}), ...(lvm ? { lvm } : {}), ...(why ? { rawReason: why } : {}) });
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
