/**
 * In-place patches of an ext2/ext3/ext4 file system: a derived disk is its base disk with a few files changed, and
 * checking it out rewrites only the blocks those changes touch (data, inodes, directory blocks, bitmaps, group
 * descriptors, the superblock), with every metadata_csum checksum kept valid, so that `e2fsck -fn` stays clean.
 *
 * Why hand-written: no TypeScript or JavaScript library writes ext4 (balena's ext2fs WASM build fails on real
 * images, see ext4.ts), and e2fsprogs' debugfs needs the whole image as a file, which a copy-on-write view of a
 * repository disk (its bytes read by range, the output only the changed blocks, e.g. a qcow2 overlay) is not. The
 * patcher reads only the structures a change reaches and never the whole file system; it works on a block cache and
 * writes nothing to the device until every change has applied, so a failing change leaves the device as it was.
 *
 * Layout references: the Linux tree's Documentation/filesystems/ext4/ and fs/ext4/ (ext4.h, ialloc.c, balloc.c,
 * namei.c, xattr.c), and e2fsprogs' e2fsck (what it checks).
 */
import { Ext4PatchError } from '../errors.js';
import { showPath } from './depth-first.js';
import {
  crc16, crc32c, crc32cU32, featureNames, groupDescChecksum, groupHasSuper, inodeChecksum, xattrBlockChecksum,
} from './ext4.js';
import { DIRENT_TYPE_CODES, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, typeOfMode } from './types.js';

// ---------------------------------------------------------------------------------------------------------------
// Devices

/** Synchronous random access to the bytes of a file system, as the patcher needs it. */
export interface PatchDevice {
  readonly size: number;
  /** Exactly `length` bytes at `offset`; the patcher copies what it keeps. */
  read(offset: number, length: number): Buffer;
  write(offset: number, data: Buffer): void;
}

/** Granularity of a CowDevice unless told otherwise (a qcow2 cluster is 64 KiB; 4 KiB keeps overlays small). */
export const DEFAULT_COW_BLOCK_SIZE = 4096;

/**
 * A copy-on-write view of base bytes: reads see the blocks written so far, everything else comes from `readBase`;
 * the base is never written. `changedBlocks()` is the output (e.g. the clusters of a qcow2 overlay).
 *
 * @example
 * const dev = new CowDevice(size, (offset, length) => readRange(offset, length));
 * patchExt4(dev, changes);
 * for (const { offset, data } of dev.changedBlocks()) overlay.write(offset, data);
 */
export class CowDevice implements PatchDevice {
  private readonly blocks = new Map<number, Buffer>();

  constructor(
    readonly size: number,
    private readonly readBase: (offset: number, length: number) => Buffer,
    readonly blockSize = DEFAULT_COW_BLOCK_SIZE,
  ) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`invalid device size ${size}`);
    if (!Number.isSafeInteger(blockSize) || blockSize < 512 || (blockSize & (blockSize - 1)) !== 0) {
      throw new RangeError(`invalid block size ${blockSize}`);
    }
  }

  private check(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`range ${offset}+${length} lies outside the ${this.size}-byte device`);
    }
  }

  read(offset: number, length: number): Buffer {
    this.check(offset, length);
    const bs = this.blockSize;
    const end = offset + length;
    const out = Buffer.alloc(length);
    let o = offset;
    while (o < end) {
      const b = Math.floor(o / bs);
      const written = this.blocks.get(b);
      if (written) {
        const n = Math.min((b + 1) * bs, end) - o;
        written.copy(out, o - offset, o - b * bs, o - b * bs + n);
        o += n;
        continue;
      }
      // A run of unwritten blocks is one base read.
      let e = o;
      while (e < end && !this.blocks.has(Math.floor(e / bs))) e = Math.min((Math.floor(e / bs) + 1) * bs, end);
      const got = this.readBase(o, e - o);
      if (got.length !== e - o) throw new RangeError(`short base read: ${got.length} of ${e - o} bytes at ${o}`);
      got.copy(out, o - offset);
      o = e;
    }
    return out;
  }

  write(offset: number, data: Buffer): void {
    this.check(offset, data.length);
    const bs = this.blockSize;
    let o = offset;
    const end = offset + data.length;
    while (o < end) {
      const b = Math.floor(o / bs);
      const start = b * bs;
      let block = this.blocks.get(b);
      if (!block) {
        const len = Math.min(bs, this.size - start);
        // A whole-block write needs no base read.
        block = o === start && end >= start + len ? Buffer.alloc(len) : Buffer.from(this.readBase(start, len));
        this.blocks.set(b, block);
      }
      const n = Math.min(start + block.length, end) - o;
      data.copy(block, o - start, o - offset, o - offset + n);
      o += n;
    }
  }

  /** The written blocks in offset order (the last one shorter when the size is not a multiple); the device's own buffers. */
  changedBlocks(): Array<{ offset: number; data: Buffer }> {
    return [...this.blocks.keys()].sort((a, b) => a - b).map((b) => ({ offset: b * this.blockSize, data: this.blocks.get(b)! }));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Public types

export interface Ext4Xattr {
  /** Full name: 'user.x', 'trusted.x', 'security.x', 'system.posix_acl_access' (value in the getfattr form). */
  name: string;
  value: Buffer;
}

/**
 * One change. Paths are relative to the root, '/'-separated bytes without '.', '..' or empty components; parents
 * must exist when the change applies (changes apply in order). Times are ns since the epoch.
 */
export type Ext4Change =
  /**
   * Create a regular file, or replace one: in place when it has one link (old blocks freed), else the name gets a
   * new inode (other hardlinks keep the old content). A symlink, device, ... at the path is replaced; a directory
   * is refused. `xattrs` given: exactly these; omitted: none for a new file, kept for a replaced one.
   */
  | { op: 'write'; path: Buffer; data: Buffer; mode: number; uid: number; gid: number; mtimeNs: bigint; xattrs?: Ext4Xattr[] }
  /** Remove a file, symlink, device, or a directory with everything below it; an inode is freed when its last link goes. */
  | { op: 'remove'; path: Buffer }
  /** Create a directory; on an existing directory, set its mode, owner and mtime. */
  | { op: 'mkdir'; path: Buffer; mode: number; uid: number; gid: number; mtimeNs: bigint }
  /** Create a symlink (replacing a non-directory): in the inode below 60 bytes, else in one data block. */
  | { op: 'symlink'; path: Buffer; target: Buffer; uid: number; gid: number; mtimeNs: bigint }
  /** Change metadata; `mode` sets the 12 permission bits, `xattrs` replaces all xattrs. */
  | { op: 'setattr'; path: Buffer; mode?: number; uid?: number; gid?: number; mtimeNs?: bigint; xattrs?: Ext4Xattr[] };

export interface Ext4PatchOptions {
  /**
   * ctime of the inodes changed (and dtime of the freed ones, mtime/ctime of directories a remove changes). Default:
   * the change's own mtime, and for a remove the times are left alone, so that a patch is reproducible.
   */
  now?: bigint;
}

export interface Ext4PatchResult {
  blockSize: number;
  inodesAllocated: number;
  inodesFreed: number;
  blocksAllocated: number;
  blocksFreed: number;
  /** Directory blocks written (entries added or removed, new blocks, htree nodes turned linear). */
  dirBlocksChanged: number;
  /** File-system block numbers written to the device, ascending. */
  changedBlocks: number[];
}

// ---------------------------------------------------------------------------------------------------------------
// On-disk constants (fs/ext4/ext4.h)

const SUPERBLOCK_OFFSET = 1024;
const SUPER_MAGIC = 0xef53;
const ROOT_INO = 2;
const GOOD_OLD_INODE_SIZE = 128;
const EXTENT_MAGIC = 0xf30a;
const EXT_INIT_MAX_LEN = 32768;
const XATTR_MAGIC = 0xea020000;
const LINK_MAX = 65000;

const INCOMPAT_FILETYPE = 0x2;
const INCOMPAT_EXTENTS = 0x40;
const INCOMPAT_64BIT = 0x80;
const INCOMPAT_FLEX_BG = 0x200;
const INCOMPAT_CSUM_SEED = 0x2000;
const INCOMPAT_LARGEDIR = 0x4000;
/** Incompatible features the patcher handles; anything else (needs_recovery, meta_bg, inline_data, ...) is refused. */
const INCOMPAT_OK = INCOMPAT_FILETYPE | INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_FLEX_BG | INCOMPAT_CSUM_SEED | INCOMPAT_LARGEDIR;
const RO_COMPAT_LARGE_FILE = 0x2;
const RO_COMPAT_HUGE_FILE = 0x8;
const RO_COMPAT_GDT_CSUM = 0x10;
const RO_COMPAT_DIR_NLINK = 0x20;
const RO_COMPAT_METADATA_CSUM = 0x400;
/** sparse_super, large_file, btree_dir, huge_file, uninit_bg, dir_nlink, extra_isize, metadata_csum, project, verity. */
const RO_COMPAT_OK = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x40 | 0x400 | 0x2000 | 0x8000;

const BG_INODE_UNINIT = 0x1;
const BG_BLOCK_UNINIT = 0x2;

const EXT4_INDEX_FL = 0x1000;
const EXT4_HUGE_FILE_FL = 0x40000;
const EXT4_EXTENTS_FL = 0x80000;
const EXT4_EA_INODE_FL = 0x200000;
const EXT4_INLINE_DATA_FL = 0x10000000;
/** Flags of inodes the patcher will not rewrite: compressed, encrypted, fs-verity, EA inode, inline data, casefold. */
const UNTOUCHABLE_FL = 0x4 | 0x800 | 0x100000 | EXT4_EA_INODE_FL | EXT4_INLINE_DATA_FL | 0x40000000;


const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

// ---------------------------------------------------------------------------------------------------------------
// Helpers

function align4(n: number): number {
  return (n + 3) & ~3;
}

function u64(b: Buffer, lo: number, hi: number | undefined): number {
  return b.readUInt32LE(lo) + (hi === undefined ? 0 : b.readUInt32LE(hi) * 2 ** 32);
}

function setU64(b: Buffer, lo: number, hi: number | undefined, v: number): void {
  b.writeUInt32LE(v % 2 ** 32, lo);
  if (hi !== undefined) b.writeUInt32LE(Math.floor(v / 2 ** 32), hi);
}

/** A count split into a u16 at `lo` and, in 64-byte descriptors, a u16 at `hi`. */
function get16x2(d: Buffer, lo: number, hi: number): number {
  return d.readUInt16LE(lo) + (d.length >= 64 ? d.readUInt16LE(hi) * 0x10000 : 0);
}

function set16x2(d: Buffer, lo: number, hi: number, v: number): void {
  d.writeUInt16LE(v & 0xffff, lo);
  if (d.length >= 64) d.writeUInt16LE(v >>> 16, hi);
}

/** The xattr-entry hash e2fsck checks (ext2fs_ext_attr_hash_entry). */
function xattrHash(name: Buffer, value: Buffer): number {
  let h = 0;
  for (const c of name) h = ((h << 5) ^ (h >>> 27) ^ c) >>> 0;
  if (value.length) {
    const padded = Buffer.alloc(align4(value.length));
    value.copy(padded);
    for (let i = 0; i < padded.length; i += 4) h = ((h << 16) ^ (h >>> 16) ^ padded.readUInt32LE(i)) >>> 0;
  }
  return h;
}

/** Name prefix → e_name_index; ACL names are whole names. */
const XATTR_INDEXES: Array<[string, number, boolean]> = [
  ['system.posix_acl_access', 2, true], ['system.posix_acl_default', 3, true], ['user.', 1, false],
  ['trusted.', 4, false], ['security.', 6, false], ['gnu.', 10, false],
];

/** An ACL from the xattr form (version 2, 8-byte entries) to ext4's disk form (version 1, short entries without ids). */
function aclToDisk(v: Buffer): Buffer | undefined {
  if (v.length < 4 || v.readUInt32LE(0) !== 2 || (v.length - 4) % 8 !== 0) return undefined;
  const parts: Buffer[] = [Buffer.from([1, 0, 0, 0])];
  for (let o = 4; o < v.length; o += 8) {
    const tag = v.readUInt16LE(o);
    const e = Buffer.alloc(tag === 0x02 || tag === 0x08 ? 8 : 4);
    if (![0x01, 0x02, 0x04, 0x08, 0x10, 0x20].includes(tag)) return undefined;
    e.writeUInt16LE(tag, 0);
    e.writeUInt16LE(v.readUInt16LE(o + 2), 2);
    if (e.length === 8) e.writeUInt32LE(v.readUInt32LE(o + 4), 4);
    parts.push(e);
  }
  return Buffer.concat(parts);
}

/** Signed 32-bit seconds plus the *_extra word (2 epoch bits, 30 bits of ns), as the kernel's ext4_encode_extra_time(). */
function encodeTime(ns: bigint): { lo: number; extra: number } {
  let sec = ns / 1_000_000_000n;
  let rem = ns % 1_000_000_000n;
  if (rem < 0n) {
    rem += 1_000_000_000n;
    sec -= 1n;
  }
  const lo = BigInt.asIntN(32, sec);
  const epoch = Number(((sec - lo) >> 32n) & 3n);
  return { lo: Number(lo), extra: ((Number(rem) << 2) | epoch) >>> 0 };
}

interface Extent {
  lblk: number;
  pblk: number;
  len: number;
  uninit: boolean;
}

interface Mapping {
  extents: Extent[];
  /** Extent-tree and indirect blocks. */
  meta: number[];
}

interface Dirent {
  off: number;
  ino: number;
  recLen: number;
  name: Buffer;
  fileType: number;
}

interface Group {
  nr: number;
  /** The descriptor: a view into its cached descriptor block. */
  desc: Buffer;
  gdtBlock: number;
  blockBitmap: number;
  inodeBitmap: number;
  inodeTable: number;
}

// ---------------------------------------------------------------------------------------------------------------
// The patcher

class Patcher {
  readonly bs: number;
  private readonly sbBlock: number;
  private readonly sbOff: number;
  private readonly blocksCount: number;
  private readonly firstDataBlock: number;
  private readonly bpg: number;
  private readonly ipg: number;
  private readonly inodeSize: number;
  private readonly firstIno: number;
  private readonly descSize: number;
  private readonly groupCount: number;
  private readonly incompat: number;
  private readonly roCompat: number;
  private readonly csum: boolean;
  private readonly gdtCsum: boolean;
  private readonly csumSeed: number;
  private readonly crc16Seed: number;
  private readonly extents: boolean;
  private readonly filetype: boolean;
  private readonly wantExtraIsize: number;

  private readonly cache = new Map<number, Buffer>();
  private readonly dirty = new Set<number>();
  private readonly groups = new Map<number, Group>();
  private readonly dirtyGroups = new Set<number>();
  private readonly touchedInodes = new Set<number>();
  /** Directory leaf blocks (block → inode seed) whose tail checksum is due; extent blocks likewise. */
  private readonly dirBlocks = new Map<number, number>();
  private readonly extentBlocks = new Map<number, number>();
  /** Directory blocks changed, for the result (the checksum map only exists with metadata_csum). */
  private readonly dirChanged = new Set<number>();

  readonly stats = { inodesAllocated: 0, inodesFreed: 0, blocksAllocated: 0, blocksFreed: 0 };
  /** Path of the change being applied, for errors. */
  private at = '/';

  constructor(private readonly dev: PatchDevice) {
    if (dev.size < SUPERBLOCK_OFFSET + 1024) throw this.fail('the device is too small for an ext2/3/4 superblock', 'corrupt');
    const head = dev.read(SUPERBLOCK_OFFSET, 1024);
    if (head.readUInt16LE(0x38) !== SUPER_MAGIC) throw this.fail('not an ext2/ext3/ext4 file system', 'corrupt');
    const logBlock = head.readUInt32LE(0x18);
    if (logBlock > 6) throw this.fail(`block size 2^${logBlock + 10} is out of range`, 'corrupt');
    this.bs = 1024 << logBlock;
    this.sbBlock = Math.floor(SUPERBLOCK_OFFSET / this.bs);
    this.sbOff = SUPERBLOCK_OFFSET % this.bs;
    this.cache.set(this.sbBlock, Buffer.from(dev.read(this.sbBlock * this.bs, this.bs)));
    const sb = this.sb;
    const revision = sb.readUInt32LE(0x4c);
    if (revision > 1) throw this.fail(`revision ${revision} is not supported`);
    this.incompat = sb.readUInt32LE(0x60);
    this.roCompat = sb.readUInt32LE(0x64);
    const badIncompat = this.incompat & ~INCOMPAT_OK;
    if (badIncompat) throw this.fail(`feature ${featureNames('incompat', badIncompat).join(', ')} is not supported`);
    const badRo = this.roCompat & ~RO_COMPAT_OK;
    if (badRo) throw this.fail(`feature ${featureNames('roCompat', badRo).join(', ')} is not supported`);
    this.csum = (this.roCompat & RO_COMPAT_METADATA_CSUM) !== 0;
    this.gdtCsum = !this.csum && (this.roCompat & RO_COMPAT_GDT_CSUM) !== 0;
    if (this.csum) {
      if (sb[0x175] !== 1) throw this.fail(`checksum type ${sb[0x175]} is not supported`);
      if (sb.readUInt32LE(0x3fc) !== crc32c(0xffffffff, sb, 0, 0x3fc)) throw this.fail('superblock checksum mismatch', 'corrupt');
    }
    this.inodeSize = revision === 0 ? GOOD_OLD_INODE_SIZE : sb.readUInt16LE(0x58);
    this.firstIno = revision === 0 ? 11 : sb.readUInt32LE(0x54);
    const is64 = (this.incompat & INCOMPAT_64BIT) !== 0;
    this.descSize = is64 ? sb.readUInt16LE(0xfe) : 32;
    this.blocksCount = u64(sb, 0x4, is64 ? 0x150 : undefined);
    this.firstDataBlock = sb.readUInt32LE(0x14);
    this.bpg = sb.readUInt32LE(0x20);
    this.ipg = sb.readUInt32LE(0x28);
    if (sb.readUInt32LE(0x1c) !== logBlock) throw this.fail('bigalloc is not supported');
    const isz = this.inodeSize;
    if (isz < GOOD_OLD_INODE_SIZE || isz > this.bs || (isz & (isz - 1)) !== 0) throw this.fail(`inode size ${isz} is invalid`, 'corrupt');
    if (is64 && (this.descSize < 64 || (this.descSize & (this.descSize - 1)) !== 0 || this.descSize > this.bs)) {
      throw this.fail(`group descriptor size ${this.descSize} is invalid`, 'corrupt');
    }
    if (this.bpg === 0 || this.bpg > 8 * this.bs || this.bpg % 8 !== 0 || this.ipg === 0 || this.ipg > 8 * this.bs || this.ipg % 8 !== 0) {
      throw this.fail('blocks or inodes per group are invalid', 'corrupt');
    }
    if (this.blocksCount * this.bs > dev.size) throw this.fail(`the file system is larger than the ${dev.size}-byte device`, 'corrupt');
    this.groupCount = Math.ceil((this.blocksCount - this.firstDataBlock) / this.bpg);
    if (this.groupCount * this.ipg !== sb.readUInt32LE(0)) throw this.fail('inode count does not match the groups', 'corrupt');
    this.csumSeed = !this.csum ? 0 : this.incompat & INCOMPAT_CSUM_SEED ? sb.readUInt32LE(0x270) : crc32c(0xffffffff, sb, 0x68, 0x78);
    this.crc16Seed = crc16(0xffff, sb.subarray(0x68, 0x78));
    this.extents = (this.incompat & INCOMPAT_EXTENTS) !== 0;
    this.filetype = (this.incompat & INCOMPAT_FILETYPE) !== 0;
    const want = sb.readUInt16LE(0x15e);
    this.wantExtraIsize = isz <= GOOD_OLD_INODE_SIZE ? 0 : Math.min(Math.max(want, 32), isz - GOOD_OLD_INODE_SIZE);
  }

  /** The superblock: a view into its cached block. */
  private get sb(): Buffer {
    return this.block(this.sbBlock).subarray(this.sbOff, this.sbOff + 1024);
  }

  fail(reason: string, kind: Ext4PatchError['kind'] = 'unsupported'): Ext4PatchError {
    return new Ext4PatchError(this.at, reason, kind);
  }

  setPath(p: Buffer): void {
    this.at = showPath(p);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Block cache: everything is read once and written at the end

  block(n: number): Buffer {
    let b = this.cache.get(n);
    if (!b) {
      if (!(n >= 0 && n < this.blocksCount)) throw this.fail(`block ${n} is outside the file system`, 'corrupt');
      b = Buffer.from(this.dev.read(n * this.bs, this.bs));
      this.cache.set(n, b);
    }
    return b;
  }

  private markDirty(n: number): void {
    this.dirty.add(n);
  }

  /** Sets a block's whole content (a new block: nothing read). */
  put(n: number, data: Buffer): void {
    this.cache.set(n, data);
    this.dirty.add(n);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Groups and bitmaps

  group(g: number): Group {
    let grp = this.groups.get(g);
    if (grp) return grp;
    const perBlock = this.bs / this.descSize;
    const gdtBlock = this.sbBlock + 1 + Math.floor(g / perBlock);
    const off = (g % perBlock) * this.descSize;
    const desc = this.block(gdtBlock).subarray(off, off + this.descSize);
    if (this.csum || this.gdtCsum) {
      const c = this.csum ? groupDescChecksum(desc, g, 'crc32c', this.csumSeed) : groupDescChecksum(desc, g, 'crc16', this.crc16Seed);
      if (c !== desc.readUInt16LE(0x1e)) throw this.fail(`group descriptor ${g} checksum mismatch`, 'corrupt');
    }
    const wide = this.descSize >= 64;
    grp = {
      nr: g, desc, gdtBlock,
      blockBitmap: u64(desc, 0x0, wide ? 0x20 : undefined),
      inodeBitmap: u64(desc, 0x4, wide ? 0x24 : undefined),
      inodeTable: u64(desc, 0x8, wide ? 0x28 : undefined),
    };
    this.groups.set(g, grp);
    return grp;
  }

  private flags(g: Group): number {
    return this.csum || this.gdtCsum ? g.desc.readUInt16LE(0x12) : 0;
  }

  private groupStart(g: number): number {
    return this.firstDataBlock + g * this.bpg;
  }

  private blocksInGroup(g: number): number {
    return Math.min(this.bpg, this.blocksCount - this.groupStart(g));
  }

  private adjustFreeBlocks(g: Group, delta: number): void {
    set16x2(g.desc, 0xc, 0x2c, get16x2(g.desc, 0xc, 0x2c) + delta);
    const is64 = (this.incompat & INCOMPAT_64BIT) !== 0;
    setU64(this.sb, 0xc, is64 ? 0x158 : undefined, u64(this.sb, 0xc, is64 ? 0x158 : undefined) + delta);
    this.dirtyGroups.add(g.nr);
  }

  private adjustFreeInodes(g: Group, delta: number): void {
    set16x2(g.desc, 0xe, 0x2e, get16x2(g.desc, 0xe, 0x2e) + delta);
    this.sb.writeUInt32LE(this.sb.readUInt32LE(0x10) + delta, 0x10);
    this.dirtyGroups.add(g.nr);
  }

  private adjustUsedDirs(g: Group, delta: number): void {
    set16x2(g.desc, 0x10, 0x30, get16x2(g.desc, 0x10, 0x30) + delta);
    this.dirtyGroups.add(g.nr);
  }

  /**
   * The block bitmap of a group, initialised first when the group is BLOCK_UNINIT (as the kernel's
   * ext4_init_block_bitmap(): superblock backup and descriptor blocks, the group's own bitmaps and inode table, and
   * the bits past the group's end), checked against the descriptor's free count.
   */
  private blockBitmap(g: Group): Buffer {
    if (!(this.flags(g) & BG_BLOCK_UNINIT)) return this.block(g.blockBitmap);
    const bits = Buffer.alloc(this.bs);
    const start = this.groupStart(g.nr);
    const n = this.blocksInGroup(g.nr);
    const set = (b: number) => {
      if (b >= start && b < start + n) bits[(b - start) >> 3] |= 1 << ((b - start) & 7);
    };
    if (groupHasSuper(g.nr, this.sb)) {
      const gdtBlocks = Math.ceil(this.groupCount / (this.bs / this.descSize));
      const overhead = 1 + gdtBlocks + this.sb.readUInt16LE(0xce);
      for (let i = 0; i < overhead; i++) set(start + i);
    }
    set(g.blockBitmap);
    set(g.inodeBitmap);
    const itBlocks = Math.ceil((this.ipg * this.inodeSize) / this.bs);
    for (let i = 0; i < itBlocks; i++) set(g.inodeTable + i);
    for (let i = n; i < this.bs * 8; i++) bits[i >> 3] |= 1 << (i & 7);
    let free = 0;
    for (let i = 0; i < n; i++) if (!(bits[i >> 3] & (1 << (i & 7)))) free++;
    if (free !== get16x2(g.desc, 0xc, 0x2c)) {
      throw this.fail(`cannot initialise the block bitmap of group ${g.nr}: ${free} free blocks computed, ${get16x2(g.desc, 0xc, 0x2c)} recorded`);
    }
    this.put(g.blockBitmap, bits);
    g.desc.writeUInt16LE(g.desc.readUInt16LE(0x12) & ~BG_BLOCK_UNINIT, 0x12);
    this.dirtyGroups.add(g.nr);
    return bits;
  }

  /** The inode bitmap of a group, initialised (all free, padding set) when the group is INODE_UNINIT. */
  private inodeBitmap(g: Group): Buffer {
    if (!(this.flags(g) & BG_INODE_UNINIT)) return this.block(g.inodeBitmap);
    const bits = Buffer.alloc(this.bs);
    for (let i = this.ipg; i < this.bs * 8; i++) bits[i >> 3] |= 1 << (i & 7);
    this.put(g.inodeBitmap, bits);
    g.desc.writeUInt16LE(g.desc.readUInt16LE(0x12) & ~BG_INODE_UNINIT, 0x12);
    this.dirtyGroups.add(g.nr);
    return bits;
  }

  private freeBlocksTotal(): number {
    return u64(this.sb, 0xc, this.incompat & INCOMPAT_64BIT ? 0x158 : undefined);
  }

  /**
   * `n` blocks, first fit, preferring group `goal`: the first free run of `n` blocks in one group if there is one,
   * else the first free runs in group order. Throws 'no-space' when the file system has fewer free blocks.
   */
  allocBlocks(n: number, goal: number): Array<{ pblk: number; len: number }> {
    if (n === 0) return [];
    if (this.freeBlocksTotal() < n) throw this.fail(`no space left: ${n} blocks needed, ${this.freeBlocksTotal()} free`, 'no-space');
    const out: Array<{ pblk: number; len: number }> = [];
    const take = (g: Group, bits: Buffer, first: number, len: number) => {
      for (let i = first; i < first + len; i++) bits[i >> 3] |= 1 << (i & 7);
      this.markDirty(g.blockBitmap);
      this.adjustFreeBlocks(g, -len);
      const pblk = this.groupStart(g.nr) + first;
      const last = out[out.length - 1];
      if (last && last.pblk + last.len === pblk) last.len += len;
      else out.push({ pblk, len });
      this.stats.blocksAllocated += len;
    };
    for (const pass of ['whole', 'pieces'] as const) {
      let left = n;
      for (let k = 0; k < this.groupCount && left > 0; k++) {
        const g = this.group((goal + k) % this.groupCount);
        const free = get16x2(g.desc, 0xc, 0x2c);
        if (free === 0 || (pass === 'whole' && free < n)) continue;
        const bits = this.blockBitmap(g);
        const end = this.blocksInGroup(g.nr);
        let i = 0;
        while (i < end && left > 0) {
          if (bits[i >> 3] === 0xff && (i & 7) === 0) {
            i += 8;
            continue;
          }
          if (bits[i >> 3] & (1 << (i & 7))) {
            i++;
            continue;
          }
          let j = i;
          while (j < end && j - i < left && !(bits[j >> 3] & (1 << (j & 7)))) j++;
          if (pass === 'pieces' || j - i === n) {
            take(g, bits, i, j - i);
            left -= j - i;
          }
          i = j;
        }
      }
      if (left === 0) return out;
      if (pass === 'whole' && out.length) throw new Error('ext4-patch: partial allocation in the first pass');
    }
    throw this.fail(`no space left: the bitmaps have fewer than ${n} free blocks`, 'no-space');
  }

  freeBlocks(pblk: number, len: number): void {
    let b = pblk;
    const end = pblk + len;
    while (b < end) {
      const gnr = Math.floor((b - this.firstDataBlock) / this.bpg);
      const g = this.group(gnr);
      const start = this.groupStart(gnr);
      const stop = Math.min(end, start + this.bpg);
      const bits = this.blockBitmap(g);
      for (let x = b; x < stop; x++) {
        const i = x - start;
        if (!(bits[i >> 3] & (1 << (i & 7)))) throw this.fail(`block ${x} is freed twice (already free in the bitmap)`, 'corrupt');
        bits[i >> 3] &= ~(1 << (i & 7));
      }
      this.markDirty(g.blockBitmap);
      this.adjustFreeBlocks(g, stop - b);
      this.stats.blocksFreed += stop - b;
      b = stop;
    }
    // A freed block's cached content is moot: do not write it, nor checksum it.
    const drop = (x: number) => {
      this.dirty.delete(x);
      this.cache.delete(x);
      this.dirBlocks.delete(x);
      this.extentBlocks.delete(x);
      this.dirChanged.delete(x);
    };
    if (len < this.cache.size) {
      for (let x = pblk; x < end; x++) drop(x);
    } else {
      for (const x of [...this.cache.keys()]) if (x >= pblk && x < end) drop(x);
    }
  }

  /** A free inode, first fit from group `goal` (as the kernel, never below s_first_ino). */
  allocInode(goal: number, isDir: boolean): number {
    for (let k = 0; k < this.groupCount; k++) {
      const g = this.group((goal + k) % this.groupCount);
      if (get16x2(g.desc, 0xe, 0x2e) === 0) continue;
      const bits = this.inodeBitmap(g);
      const from = g.nr === 0 ? this.firstIno - 1 : 0;
      for (let i = from; i < this.ipg; i++) {
        if (bits[i >> 3] & (1 << (i & 7))) continue;
        bits[i >> 3] |= 1 << (i & 7);
        this.markDirty(g.inodeBitmap);
        this.adjustFreeInodes(g, -1);
        if (isDir) this.adjustUsedDirs(g, 1);
        if (this.csum || this.gdtCsum) {
          const unused = get16x2(g.desc, 0x1c, 0x32);
          if (i >= this.ipg - unused) set16x2(g.desc, 0x1c, 0x32, this.ipg - i - 1);
        }
        this.stats.inodesAllocated++;
        return g.nr * this.ipg + i + 1;
      }
    }
    throw this.fail('no space left: no free inode', 'no-space');
  }

  private freeInodeBit(ino: number, isDir: boolean): void {
    const g = this.group(Math.floor((ino - 1) / this.ipg));
    const i = (ino - 1) % this.ipg;
    const bits = this.inodeBitmap(g);
    if (!(bits[i >> 3] & (1 << (i & 7)))) throw this.fail(`inode ${ino} is freed twice (already free in the bitmap)`, 'corrupt');
    bits[i >> 3] &= ~(1 << (i & 7));
    this.markDirty(g.inodeBitmap);
    this.adjustFreeInodes(g, 1);
    if (isDir) this.adjustUsedDirs(g, -1);
    this.stats.inodesFreed++;
  }

  groupOfInode(ino: number): number {
    return Math.floor((ino - 1) / this.ipg);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Inodes

  private inodeLoc(ino: number): { block: number; off: number } {
    if (!(ino >= 1 && ino <= this.groupCount * this.ipg)) throw this.fail(`inode ${ino} is out of range`, 'corrupt');
    const g = this.group(this.groupOfInode(ino));
    const byte = ((ino - 1) % this.ipg) * this.inodeSize;
    return { block: g.inodeTable + Math.floor(byte / this.bs), off: byte % this.bs };
  }

  /** The inode record of an inode in use (a view into its cached table block), its checksum verified once. */
  inode(ino: number): Buffer {
    const { block, off } = this.inodeLoc(ino);
    const raw = this.block(block).subarray(off, off + this.inodeSize);
    if (this.csum && !this.touchedInodes.has(ino)) {
      const extra = this.inodeSize > GOOD_OLD_INODE_SIZE ? raw.readUInt16LE(0x80) : 0;
      const stored = raw.readUInt16LE(0x7c) + (this.inodeSize > GOOD_OLD_INODE_SIZE && extra >= 4 ? raw.readUInt16LE(0x82) * 0x10000 : 0);
      if (stored !== inodeChecksum(raw, this.inodeSeed(ino, raw), this.inodeSize)) throw this.fail(`inode ${ino} checksum mismatch`, 'corrupt');
    }
    return raw;
  }

  /** Marks an inode changed: its block is written and its checksum recomputed at the end. */
  touch(ino: number): void {
    this.markDirty(this.inodeLoc(ino).block);
    this.touchedInodes.add(ino);
  }

  inodeSeed(ino: number, raw: Buffer): number {
    return crc32cU32(crc32cU32(this.csumSeed, ino), raw.readUInt32LE(0x64));
  }

  private extraIsize(raw: Buffer): number {
    return this.inodeSize > GOOD_OLD_INODE_SIZE ? raw.readUInt16LE(0x80) : 0;
  }

  setTime(raw: Buffer, which: 'atime' | 'ctime' | 'mtime' | 'crtime', ns: bigint): void {
    const [lo, extraOff] = { atime: [0x8, 0x8c], ctime: [0xc, 0x84], mtime: [0x10, 0x88], crtime: [0x90, 0x94] }[which];
    const fits = (end: number) => GOOD_OLD_INODE_SIZE + this.extraIsize(raw) >= end;
    const t = encodeTime(ns);
    if (which === 'crtime' && !fits(0x98)) return;
    raw.writeInt32LE(t.lo, lo);
    if (fits(extraOff + 4)) raw.writeUInt32LE(t.extra, extraOff);
  }

  getMtime(raw: Buffer): bigint {
    let sec = BigInt(raw.readInt32LE(0x10));
    let ns = 0n;
    if (GOOD_OLD_INODE_SIZE + this.extraIsize(raw) >= 0x8c) {
      const extra = raw.readUInt32LE(0x88);
      sec += BigInt(extra & 3) << 32n;
      ns = BigInt(extra >>> 2);
    }
    return sec * 1_000_000_000n + ns;
  }

  private getBlocks512(raw: Buffer): number {
    const huge = (this.roCompat & RO_COMPAT_HUGE_FILE) !== 0;
    const v = raw.readUInt32LE(0x1c) + (huge ? raw.readUInt16LE(0x74) * 2 ** 32 : 0);
    return huge && raw.readUInt32LE(0x20) & EXT4_HUGE_FILE_FL ? v * (this.bs / 512) : v;
  }

  private setBlocks512(raw: Buffer, n: number): void {
    if (n >= 2 ** 32 && !(this.roCompat & RO_COMPAT_HUGE_FILE)) throw this.fail('the file needs more blocks than i_blocks can count without huge_file');
    if (n >= 2 ** 48) throw this.fail('the file is too large');
    raw.writeUInt32LE(n % 2 ** 32, 0x1c);
    if (this.roCompat & RO_COMPAT_HUGE_FILE) raw.writeUInt16LE(Math.floor(n / 2 ** 32), 0x74);
    raw.writeUInt32LE(raw.readUInt32LE(0x20) & ~EXT4_HUGE_FILE_FL, 0x20);
  }

  private addBlocks(raw: Buffer, blocks: number): void {
    this.setBlocks512(raw, this.getBlocks512(raw) + blocks * (this.bs / 512));
  }

  getSize(raw: Buffer): number {
    return raw.readUInt32LE(0x4) + ((raw.readUInt16LE(0) & S_IFMT) === S_IFREG || this.incompat & INCOMPAT_LARGEDIR ? raw.readUInt32LE(0x6c) * 2 ** 32 : 0);
  }

  setSize(raw: Buffer, size: number): void {
    raw.writeUInt32LE(size % 2 ** 32, 0x4);
    raw.writeUInt32LE(Math.floor(size / 2 ** 32), 0x6c);
    if (size >= 2 ** 31 && !(this.roCompat & RO_COMPAT_LARGE_FILE)) {
      this.sb.writeUInt32LE(this.sb.readUInt32LE(0x64) | RO_COMPAT_LARGE_FILE, 0x64);
    }
  }

  private fileAcl(raw: Buffer): number {
    return raw.readUInt32LE(0x68) + (this.incompat & INCOMPAT_64BIT ? raw.readUInt16LE(0x76) * 2 ** 32 : 0);
  }

  setOwner(raw: Buffer, uid: number, gid: number): void {
    raw.writeUInt16LE(uid & 0xffff, 0x2);
    raw.writeUInt16LE(gid & 0xffff, 0x18);
    if (this.inodeSize >= GOOD_OLD_INODE_SIZE) {
      // The Linux osd2 high halves; ext2 revision 0 keeps them too.
      raw.writeUInt16LE(uid >>> 16, 0x78);
      raw.writeUInt16LE(gid >>> 16, 0x7a);
    }
  }

  /** A fresh record for a newly allocated inode: zeroed, the next generation of the slot, extra fields sized. */
  initInode(ino: number, mode: number, uid: number, gid: number, mtime: bigint, ctime: bigint): Buffer {
    const { block, off } = this.inodeLoc(ino);
    const raw = this.block(block).subarray(off, off + this.inodeSize);
    const generation = (raw.readUInt32LE(0x64) + 1) >>> 0;
    raw.fill(0);
    raw.writeUInt16LE(mode, 0);
    raw.writeUInt32LE(generation, 0x64);
    if (this.inodeSize > GOOD_OLD_INODE_SIZE) raw.writeUInt16LE(this.wantExtraIsize, 0x80);
    this.setOwner(raw, uid, gid);
    this.setTime(raw, 'mtime', mtime);
    this.setTime(raw, 'atime', mtime);
    this.setTime(raw, 'ctime', ctime);
    this.setTime(raw, 'crtime', ctime);
    this.touch(ino);
    return raw;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Block mappings

  /** Whether an inode's i_block holds a block mapping (not a fast symlink's target or a device number). */
  private hasMapping(raw: Buffer): boolean {
    const type = raw.readUInt16LE(0) & S_IFMT;
    if (type === S_IFREG || type === S_IFDIR) return true;
    if (type !== S_IFLNK) return false;
    const ea = this.fileAcl(raw) ? this.bs / 512 : 0;
    return this.getBlocks512(raw) - ea > 0;
  }

  /** Every mapped extent (unwritten included) and every mapping block of an inode. */
  mapping(ino: number, raw: Buffer): Mapping {
    const out: Mapping = { extents: [], meta: [] };
    if (!this.hasMapping(raw)) return out;
    const flags = raw.readUInt32LE(0x20);
    if (flags & UNTOUCHABLE_FL) throw this.fail(`inode ${ino} is inline, encrypted, compressed or fs-verity`);
    if (flags & EXT4_EXTENTS_FL) {
      this.extentNode(ino, raw.subarray(0x28, 0x64), -1, out, 0);
      return out;
    }
    const per = this.bs / 4;
    const push = (lblk: number, pblk: number) => {
      const last = out.extents[out.extents.length - 1];
      if (last && last.lblk + last.len === lblk && last.pblk + last.len === pblk) last.len++;
      else out.extents.push({ lblk, pblk, len: 1, uninit: false });
    };
    const walk = (blk: number, level: number, base: number) => {
      this.checkBlock(ino, blk);
      out.meta.push(blk);
      const buf = this.block(blk);
      const span = per ** (level - 1);
      for (let i = 0; i < per; i++) {
        const b = buf.readUInt32LE(i * 4);
        if (!b) continue;
        if (level === 1) {
          this.checkBlock(ino, b);
          push(base + i, b);
        } else {
          walk(b, level - 1, base + i * span);
        }
      }
    };
    for (let i = 0; i < 12; i++) {
      const b = raw.readUInt32LE(0x28 + i * 4);
      if (b) {
        this.checkBlock(ino, b);
        push(i, b);
      }
    }
    let base = 12;
    for (let level = 1; level <= 3; level++) {
      const b = raw.readUInt32LE(0x28 + (11 + level) * 4);
      if (b) walk(b, level, base);
      base += per ** level;
    }
    return out;
  }

  private checkBlock(ino: number, b: number, len = 1): void {
    if (!(b > this.firstDataBlock && b + len <= this.blocksCount)) throw this.fail(`inode ${ino} maps block ${b} outside the file system`, 'corrupt');
  }

  private extentNode(ino: number, node: Buffer, expectDepth: number, out: Mapping, level: number): void {
    if (node.readUInt16LE(0) !== EXTENT_MAGIC) throw this.fail(`inode ${ino}: bad extent header`, 'corrupt');
    const entries = node.readUInt16LE(2);
    const depth = node.readUInt16LE(6);
    if ((expectDepth >= 0 && depth !== expectDepth) || depth > 5 || level > 5) throw this.fail(`inode ${ino}: bad extent tree depth`, 'corrupt');
    if (12 + entries * 12 > node.length) throw this.fail(`inode ${ino}: bad extent entry count`, 'corrupt');
    for (let i = 0; i < entries; i++) {
      const o = 12 + i * 12;
      if (depth === 0) {
        const raw = node.readUInt16LE(o + 4);
        const uninit = raw > EXT_INIT_MAX_LEN;
        const e = { lblk: node.readUInt32LE(o), len: uninit ? raw - EXT_INIT_MAX_LEN : raw, pblk: node.readUInt16LE(o + 6) * 2 ** 32 + node.readUInt32LE(o + 8), uninit };
        this.checkBlock(ino, e.pblk, e.len);
        out.extents.push(e);
      } else {
        const child = node.readUInt32LE(o + 4) + node.readUInt16LE(o + 8) * 2 ** 32;
        this.checkBlock(ino, child);
        out.meta.push(child);
        this.extentNode(ino, this.block(child), depth - 1, out, level + 1);
      }
    }
  }

  /** Frees every block an inode maps (data and mapping blocks) and empties i_block and i_blocks (xattr block excepted). */
  truncate(ino: number, raw: Buffer): void {
    const m = this.mapping(ino, raw);
    for (const e of m.extents) this.freeBlocks(e.pblk, e.len);
    for (const b of m.meta) this.freeBlocks(b, 1);
    if (this.hasMapping(raw)) {
      raw.fill(0, 0x28, 0x64);
      // An extent inode keeps an empty tree, as the kernel leaves it: e2fsck judges a block of inodes with bad
      // extent headers to be garbage, freed ones included.
      if (raw.readUInt32LE(0x20) & EXT4_EXTENTS_FL) {
        raw.writeUInt16LE(EXTENT_MAGIC, 0x28);
        raw.writeUInt16LE(4, 0x2c);
      }
      this.setBlocks512(raw, this.fileAcl(raw) ? this.bs / 512 : 0);
    }
    this.setSize(raw, 0);
    this.touch(ino);
  }

  /** A new block of zeros with an extent header (or a plain zero block for indirect blocks). */
  private newExtentBlock(ino: number, raw: Buffer, blk: number, depth: number): Buffer {
    const buf = Buffer.alloc(this.bs);
    buf.writeUInt16LE(EXTENT_MAGIC, 0);
    buf.writeUInt16LE(Math.floor((this.bs - 12) / 12), 4);
    buf.writeUInt16LE(depth, 6);
    this.put(blk, buf);
    if (this.csum) this.extentBlocks.set(blk, this.inodeSeed(ino, raw));
    return buf;
  }

  private static writeLeaf(node: Buffer, i: number, e: { lblk: number; pblk: number; len: number }): void {
    const o = 12 + i * 12;
    node.writeUInt32LE(e.lblk, o);
    node.writeUInt16LE(e.len, o + 4);
    node.writeUInt16LE(Math.floor(e.pblk / 2 ** 32), o + 6);
    node.writeUInt32LE(e.pblk % 2 ** 32, o + 8);
  }

  private static writeIndex(node: Buffer, i: number, lblk: number, child: number): void {
    const o = 12 + i * 12;
    node.writeUInt32LE(lblk, o);
    node.writeUInt32LE(child % 2 ** 32, o + 4);
    node.writeUInt16LE(Math.floor(child / 2 ** 32), o + 8);
    node.writeUInt16LE(0, o + 10);
  }

  /**
   * Maps `runs` (ascending, from logical block 0) into an empty inode: an extent tree built bottom-up (in the inode
   * up to 4 extents, else leaves of (bs-12)/12 extents and index levels as needed), or direct and indirect blocks.
   * Mapping blocks are allocated here; i_blocks counts data and mapping blocks.
   */
  mapRuns(ino: number, raw: Buffer, runs: Array<{ pblk: number; len: number }>, goal: number): void {
    const dataBlocks = runs.reduce((s, r) => s + r.len, 0);
    const iblock = raw.subarray(0x28, 0x64);
    iblock.fill(0);
    let metaCount = 0;
    if (this.extents) {
      raw.writeUInt32LE(raw.readUInt32LE(0x20) | EXT4_EXTENTS_FL, 0x20);
      const leaves: Array<{ lblk: number; pblk: number; len: number }> = [];
      let lblk = 0;
      for (const r of runs) {
        for (let i = 0; i < r.len; i += EXT_INIT_MAX_LEN) {
          const len = Math.min(EXT_INIT_MAX_LEN, r.len - i);
          leaves.push({ lblk, pblk: r.pblk + i, len });
          lblk += len;
        }
      }
      iblock.writeUInt16LE(EXTENT_MAGIC, 0);
      iblock.writeUInt16LE(4, 4);
      if (leaves.length <= 4) {
        iblock.writeUInt16LE(leaves.length, 2);
        leaves.forEach((e, i) => Patcher.writeLeaf(iblock, i, e));
      } else {
        const per = Math.floor((this.bs - 12) / 12);
        // Count the tree's blocks first, so that they are allocated in one go.
        let levelNodes = Math.ceil(leaves.length / per);
        let total = levelNodes;
        let depth = 1;
        while (levelNodes > 4) {
          levelNodes = Math.ceil(levelNodes / per);
          total += levelNodes;
          depth++;
        }
        const metaBlocks = this.allocBlocks(total, goal).flatMap((r) => Array.from({ length: r.len }, (_, i) => r.pblk + i));
        metaCount = total;
        let next = 0;
        let nodes: Array<{ lblk: number; blk: number }> = [];
        for (let i = 0; i < leaves.length; i += per) {
          const blk = metaBlocks[next++];
          const buf = this.newExtentBlock(ino, raw, blk, 0);
          const chunk = leaves.slice(i, i + per);
          buf.writeUInt16LE(chunk.length, 2);
          chunk.forEach((e, k) => Patcher.writeLeaf(buf, k, e));
          nodes.push({ lblk: chunk[0].lblk, blk });
        }
        for (let d = 1; nodes.length > 4; d++) {
          const upper: Array<{ lblk: number; blk: number }> = [];
          for (let i = 0; i < nodes.length; i += per) {
            const blk = metaBlocks[next++];
            const buf = this.newExtentBlock(ino, raw, blk, d);
            const chunk = nodes.slice(i, i + per);
            buf.writeUInt16LE(chunk.length, 2);
            chunk.forEach((c, k) => Patcher.writeIndex(buf, k, c.lblk, c.blk));
            upper.push({ lblk: chunk[0].lblk, blk });
          }
          nodes = upper;
        }
        iblock.writeUInt16LE(nodes.length, 2);
        iblock.writeUInt16LE(depth, 6);
        nodes.forEach((c, k) => Patcher.writeIndex(iblock, k, c.lblk, c.blk));
      }
    } else {
      raw.writeUInt32LE(raw.readUInt32LE(0x20) & ~EXT4_EXTENTS_FL, 0x20);
      const per = this.bs / 4;
      if (dataBlocks > 12 + per + per ** 2 + per ** 3) throw this.fail('the file is too large for a block map');
      const pblks: number[] = [];
      for (const r of runs) for (let i = 0; i < r.len; i++) pblks.push(r.pblk + i);
      const build = (takeMeta: () => number, store: boolean): void => {
        let idx = 0;
        const ind = (level: number): number => {
          const blk = takeMeta();
          const buf = store ? Buffer.alloc(this.bs) : undefined;
          for (let i = 0; i < per && idx < pblks.length; i++) {
            const v = level === 1 ? pblks[idx++] : ind(level - 1);
            buf?.writeUInt32LE(v, i * 4);
          }
          if (buf) this.put(blk, buf);
          return blk;
        };
        for (; idx < 12 && idx < pblks.length; idx++) if (store) iblock.writeUInt32LE(pblks[idx], idx * 4);
        for (let level = 1; level <= 3 && idx < pblks.length; level++) {
          const blk = ind(level);
          if (store) iblock.writeUInt32LE(blk, (11 + level) * 4);
        }
      };
      build(() => ++metaCount, false);
      const metaBlocks = this.allocBlocks(metaCount, goal).flatMap((r) => Array.from({ length: r.len }, (_, i) => r.pblk + i));
      let next = 0;
      build(() => metaBlocks[next++], true);
    }
    this.setBlocks512(raw, (dataBlocks + metaCount) * (this.bs / 512) + (this.fileAcl(raw) ? this.bs / 512 : 0));
    this.touch(ino);
  }

  /**
   * Maps one more block at logical block `lblk` (past the last mapped one) of a directory: extends the last extent
   * or adds one (growing the tree by a level when the inode's four slots are full, or adding a leaf when the last
   * leaf is full and its parent has room); with block maps sets the slot, allocating indirect blocks as needed.
   */
  private appendBlock(ino: number, raw: Buffer, lblk: number, pblk: number, goal: number): void {
    if (raw.readUInt32LE(0x20) & EXT4_EXTENTS_FL) {
      const path: Array<{ node: Buffer; blk?: number }> = [{ node: raw.subarray(0x28, 0x64) }];
      while (path[path.length - 1].node.readUInt16LE(6) > 0) {
        const node = path[path.length - 1].node;
        const n = node.readUInt16LE(2);
        const o = 12 + (n - 1) * 12;
        const child = node.readUInt32LE(o + 4) + node.readUInt16LE(o + 8) * 2 ** 32;
        path.push({ node: this.block(child), blk: child });
      }
      const leaf = path[path.length - 1];
      const dirtyNode = (p: { blk?: number }) => {
        if (p.blk === undefined) return;
        this.markDirty(p.blk);
        if (this.csum) this.extentBlocks.set(p.blk, this.inodeSeed(ino, raw));
      };
      const n = leaf.node.readUInt16LE(2);
      const max = leaf.node.readUInt16LE(4);
      if (n > 0) {
        const o = 12 + (n - 1) * 12;
        const len = leaf.node.readUInt16LE(o + 4);
        const start = leaf.node.readUInt16LE(o + 6) * 2 ** 32 + leaf.node.readUInt32LE(o + 8);
        if (len < EXT_INIT_MAX_LEN && leaf.node.readUInt32LE(o) + len === lblk && start + len === pblk) {
          leaf.node.writeUInt16LE(len + 1, o + 4);
          dirtyNode(leaf);
          this.touch(ino);
          return;
        }
      }
      const ext = { lblk, pblk, len: 1 };
      if (n < max) {
        Patcher.writeLeaf(leaf.node, n, ext);
        leaf.node.writeUInt16LE(n + 1, 2);
        dirtyNode(leaf);
        this.touch(ino);
        return;
      }
      const [nb] = this.allocBlocks(1, goal);
      this.addBlocks(raw, 1);
      if (path.length === 1) {
        // The inode's root is a full leaf: move its extents into a new leaf block, the root becomes an index.
        const root = leaf.node;
        const buf = this.newExtentBlock(ino, raw, nb.pblk, 0);
        root.copy(buf, 12, 12, 12 + n * 12);
        Patcher.writeLeaf(buf, n, ext);
        buf.writeUInt16LE(n + 1, 2);
        root.fill(0, 12);
        root.writeUInt16LE(1, 2);
        root.writeUInt16LE(1, 6);
        Patcher.writeIndex(root, 0, buf.readUInt32LE(12), nb.pblk);
        this.touch(ino);
        return;
      }
      const parent = path[path.length - 2];
      const pn = parent.node.readUInt16LE(2);
      if (pn >= parent.node.readUInt16LE(4)) throw this.fail(`the extent tree of directory inode ${ino} is full`);
      const buf = this.newExtentBlock(ino, raw, nb.pblk, 0);
      Patcher.writeLeaf(buf, 0, ext);
      buf.writeUInt16LE(1, 2);
      Patcher.writeIndex(parent.node, pn, lblk, nb.pblk);
      parent.node.writeUInt16LE(pn + 1, 2);
      dirtyNode(parent);
      this.touch(ino);
      return;
    }
    const per = this.bs / 4;
    const iblock = raw.subarray(0x28, 0x64);
    if (lblk < 12) {
      iblock.writeUInt32LE(pblk, lblk * 4);
      this.touch(ino);
      return;
    }
    let l = lblk - 12;
    let level = 1;
    while (l >= per ** level) {
      l -= per ** level;
      level++;
      if (level > 3) throw this.fail(`directory inode ${ino} is too large for a block map`);
    }
    const newMeta = (): number => {
      const [r] = this.allocBlocks(1, goal);
      this.put(r.pblk, Buffer.alloc(this.bs));
      this.addBlocks(raw, 1);
      return r.pblk;
    };
    // Walk down from the i_block slot of this level; `holder` is the indirect block holding the current slot.
    let holder: number | undefined;
    let slotBuf = iblock;
    let slot = 11 + level;
    for (let d = level; d >= 1; d--) {
      let b = slotBuf.readUInt32LE(slot * 4);
      if (!b) {
        b = newMeta();
        slotBuf.writeUInt32LE(b, slot * 4);
        if (holder !== undefined) this.markDirty(holder);
      }
      holder = b;
      slotBuf = this.block(b);
      slot = Math.floor(l / per ** (d - 1)) % per;
    }
    slotBuf.writeUInt32LE(pblk, slot * 4);
    this.markDirty(holder!);
    this.touch(ino);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Extended attributes

  /** Drops the inode's xattr block: one reference less, freed with the last. */
  private dropXattrBlock(ino: number, raw: Buffer): void {
    const blk = this.fileAcl(raw);
    if (!blk) return;
    this.checkBlock(ino, blk);
    const buf = this.block(blk);
    if (buf.readUInt32LE(0) !== XATTR_MAGIC) throw this.fail(`inode ${ino}: xattr block ${blk} has a bad magic`, 'corrupt');
    const refs = buf.readUInt32LE(4);
    if (refs <= 1) {
      this.freeBlocks(blk, 1);
    } else {
      buf.writeUInt32LE(refs - 1, 4);
      if (this.csum) buf.writeUInt32LE(xattrBlockChecksum(buf, blk, this.csumSeed), 0x10);
      this.markDirty(blk);
    }
    raw.writeUInt32LE(0, 0x68);
    if (this.incompat & INCOMPAT_64BIT) raw.writeUInt16LE(0, 0x76);
    this.setBlocks512(raw, Math.max(0, this.getBlocks512(raw) - this.bs / 512));
    this.touch(ino);
  }

  /** Replaces all xattrs of an inode by `xattrs`, stored in the inode's extra space (refused when they do not fit). */
  setXattrs(ino: number, raw: Buffer, xattrs: Ext4Xattr[]): void {
    const entries = xattrs.map((x) => {
      const found = XATTR_INDEXES.find(([prefix, , whole]) => (whole ? x.name === prefix : x.name.startsWith(prefix) && x.name.length > prefix.length));
      if (!found) throw this.fail(`xattr '${x.name}' has a namespace ext4 does not store this way`);
      const [prefix, index, whole] = found;
      let value: Buffer = Buffer.from(x.value);
      if (whole) {
        const disk = aclToDisk(value);
        if (!disk) throw this.fail(`xattr '${x.name}' is not a valid ACL`);
        value = disk;
      }
      const name = Buffer.from(whole ? '' : x.name.slice(prefix.length), 'utf8');
      if (name.length > 255) throw this.fail(`xattr name '${x.name}' is too long`);
      return { index, name, value };
    });
    this.dropXattrBlock(ino, raw);
    if (this.inodeSize <= GOOD_OLD_INODE_SIZE) {
      if (entries.length) throw this.fail(`xattrs do not fit: ${this.inodeSize}-byte inodes have no room for them`);
      return;
    }
    if (this.extraIsize(raw) === 0) {
      raw.fill(0, GOOD_OLD_INODE_SIZE, GOOD_OLD_INODE_SIZE + this.wantExtraIsize);
      raw.writeUInt16LE(this.wantExtraIsize, 0x80);
    }
    const start = GOOD_OLD_INODE_SIZE + this.extraIsize(raw);
    raw.fill(0, start);
    if (entries.length === 0) {
      this.touch(ino);
      return;
    }
    const need = 4 + entries.reduce((s, e) => s + align4(16 + e.name.length) + align4(e.value.length), 0) + 4;
    if (need > this.inodeSize - start) {
      throw this.fail(`xattrs do not fit in the inode (${need} bytes needed, ${this.inodeSize - start} available; xattr blocks are not written)`);
    }
    raw.writeUInt32LE(XATTR_MAGIC, start);
    const first = start + 4;
    let o = first;
    let valueEnd = this.inodeSize;
    for (const e of entries) {
      let offs = 0;
      if (e.value.length) {
        valueEnd -= align4(e.value.length);
        e.value.copy(raw, valueEnd);
        offs = valueEnd - first;
      }
      raw[o] = e.name.length;
      raw[o + 1] = e.index;
      raw.writeUInt16LE(offs, o + 2);
      raw.writeUInt32LE(0, o + 4);
      raw.writeUInt32LE(e.value.length, o + 8);
      raw.writeUInt32LE(xattrHash(e.name, e.value), o + 12);
      e.name.copy(raw, o + 16);
      o += align4(16 + e.name.length);
    }
    this.touch(ino);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Directories

  private limit(): number {
    return this.csum ? this.bs - 12 : this.bs;
  }

  private recLen(buf: Buffer, o: number): number {
    const v = buf.readUInt16LE(o + 4);
    if (this.bs < 65536) return v;
    return v === 65535 || v === 0 ? this.bs : (v & 65532) | ((v & 3) << 16);
  }

  private setRecLen(buf: Buffer, o: number, len: number): void {
    buf.writeUInt16LE(len < 65536 ? len : len === 65536 ? 65535 : (len & 65532) | ((len >> 16) & 3), o + 4);
  }

  /** Entries of a directory block (empty ones included), from offset 0 to `end`. */
  private dirents(ino: number, buf: Buffer, end: number): Dirent[] {
    const out: Dirent[] = [];
    let o = 0;
    while (o < end) {
      const recLen = this.recLen(buf, o);
      const nameLen = buf[o + 6];
      if (o + 8 > end || recLen < 12 || recLen % 4 !== 0 || o + recLen > end || 8 + nameLen > recLen) {
        throw this.fail(`directory inode ${ino} has a bad entry at offset ${o}`, 'corrupt');
      }
      out.push({ off: o, ino: buf.readUInt32LE(o), recLen, name: buf.subarray(o + 8, o + 8 + nameLen), fileType: buf[o + 7] });
      o += recLen;
    }
    return out;
  }

  /** The directory's data blocks as [logical, physical] pairs below its size. */
  private dirBlockList(ino: number, raw: Buffer): Array<[number, number]> {
    const nblocks = Math.ceil(this.getSize(raw) / this.bs);
    const out: Array<[number, number]> = [];
    for (const e of this.mapping(ino, raw).extents) {
      if (e.uninit) continue;
      for (let i = 0; i < e.len && e.lblk + i < nblocks; i++) out.push([e.lblk + i, e.pblk + i]);
    }
    return out.sort((a, b) => a[0] - b[0]);
  }

  private checkDir(ino: number, raw: Buffer): void {
    if ((raw.readUInt16LE(0) & S_IFMT) !== S_IFDIR) throw this.fail(`inode ${ino} is not a directory`, 'invalid');
    if (raw.readUInt32LE(0x20) & UNTOUCHABLE_FL) throw this.fail(`directory inode ${ino} is inline, encrypted or casefolded`);
  }

  /** The entry `name` of directory `dir`, or undefined. */
  lookup(dir: number, name: Buffer): { ino: number } | undefined {
    const raw = this.inode(dir);
    this.checkDir(dir, raw);
    for (const [, pblk] of this.dirBlockList(dir, raw)) {
      for (const d of this.dirents(dir, this.block(pblk), this.bs)) {
        if (d.ino !== 0 && d.name.equals(name)) return { ino: d.ino };
      }
    }
    return undefined;
  }

  /** Children of a directory other than '.' and '..'. */
  private children(dir: number, raw: Buffer): Array<{ name: Buffer; ino: number }> {
    const out: Array<{ name: Buffer; ino: number }> = [];
    for (const [, pblk] of this.dirBlockList(dir, raw)) {
      for (const d of this.dirents(dir, this.block(pblk), this.bs)) {
        if (d.ino !== 0 && !d.name.equals(DOT) && !d.name.equals(DOTDOT)) out.push({ name: Buffer.from(d.name), ino: d.ino });
      }
    }
    return out;
  }

  private dirBlockChanged(dir: number, raw: Buffer, blk: number): void {
    this.markDirty(blk);
    this.dirChanged.add(blk);
    if (this.csum) this.dirBlocks.set(blk, this.inodeSeed(dir, raw));
  }

  private writeTail(buf: Buffer): void {
    if (!this.csum) return;
    const t = this.bs - 12;
    buf.fill(0, t);
    buf.writeUInt16LE(12, t + 4);
    buf[t + 7] = 0xde;
  }

  /**
   * Turns an htree directory into a linear one before it changes: clears EXT4_INDEX_FL and rewrites the dx root
   * (block 0: '.' and '..' then free space) and the dx nodes (a block-long empty entry) as valid empty leaf blocks.
   * Leaf blocks keep their entries, so lookups by a linear scan find everything.
   */
  private unindex(dir: number, raw: Buffer): void {
    if (!(raw.readUInt32LE(0x20) & EXT4_INDEX_FL)) return;
    const limit = this.limit();
    for (const [lblk, pblk] of this.dirBlockList(dir, raw)) {
      const buf = this.block(pblk);
      const next = Buffer.alloc(this.bs);
      if (lblk === 0) {
        if (!buf.subarray(8, 9).equals(DOT) || this.recLen(buf, 0) !== 12 || !buf.subarray(20, 22).equals(DOTDOT)) {
          throw this.fail(`htree root of directory inode ${dir} has no '.' and '..'`, 'corrupt');
        }
        buf.copy(next, 0, 0, 12 + 8 + 2);
        this.setRecLen(next, 12, limit - 12);
      } else if (buf.readUInt32LE(0) === 0 && this.recLen(buf, 0) === this.bs) {
        this.setRecLen(next, 0, limit);
      } else {
        continue;
      }
      this.writeTail(next);
      if (!next.equals(buf)) {
        next.copy(buf);
        this.dirBlockChanged(dir, raw, pblk);
      }
    }
    raw.writeUInt32LE(raw.readUInt32LE(0x20) & ~EXT4_INDEX_FL, 0x20);
    this.touch(dir);
  }

  /**
   * A leaf block of a linear directory about to change: with metadata_csum it must end in a checksum tail whose
   * checksum verifies (unless this patch changed it already), as the tail's room is not for entries.
   */
  private leafBlock(dir: number, raw: Buffer, pblk: number): Buffer {
    const buf = this.block(pblk);
    if (!this.csum || this.dirBlocks.has(pblk)) return buf;
    const t = this.bs - 12;
    if (buf.readUInt32LE(t) !== 0 || buf.readUInt16LE(t + 4) !== 12 || buf[t + 6] !== 0 || buf[t + 7] !== 0xde) {
      throw this.fail(`directory inode ${dir}: block ${pblk} has no checksum tail`, 'corrupt');
    }
    if (buf.readUInt32LE(t + 8) !== crc32c(this.inodeSeed(dir, raw), buf, 0, t)) {
      throw this.fail(`directory inode ${dir}: block ${pblk} checksum mismatch`, 'corrupt');
    }
    return buf;
  }

  /** Adds `name` → `ino` to a directory: into the first block with room, else a new block at its end. */
  addEntry(dir: number, name: Buffer, ino: number, mode: number): void {
    const raw = this.inode(dir);
    this.checkDir(dir, raw);
    this.unindex(dir, raw);
    const need = align4(8 + name.length);
    const limit = this.limit();
    const fill = (buf: Buffer, o: number, recLen: number) => {
      buf.writeUInt32LE(ino, o);
      this.setRecLen(buf, o, recLen);
      buf[o + 6] = name.length;
      const type = this.filetype ? typeOfMode(mode) : undefined;
      buf[o + 7] = type ? DIRENT_TYPE_CODES[type] : 0;
      name.copy(buf, o + 8);
    };
    const blocks = this.dirBlockList(dir, raw);
    for (const [, pblk] of blocks) {
      const buf = this.leafBlock(dir, raw, pblk);
      for (const d of this.dirents(dir, buf, limit)) {
        const used = d.ino === 0 ? 0 : align4(8 + d.name.length);
        if (d.recLen - used < need) continue;
        if (used === 0) {
          fill(buf, d.off, d.recLen);
        } else {
          this.setRecLen(buf, d.off, used);
          fill(buf, d.off + used, d.recLen - used);
        }
        this.dirBlockChanged(dir, raw, pblk);
        return;
      }
    }
    const lblk = Math.ceil(this.getSize(raw) / this.bs);
    const goal = blocks.length ? Math.floor((blocks[blocks.length - 1][1] - this.firstDataBlock) / this.bpg) : this.groupOfInode(dir);
    const [r] = this.allocBlocks(1, goal);
    const buf = Buffer.alloc(this.bs);
    fill(buf, 0, limit);
    this.writeTail(buf);
    this.put(r.pblk, buf);
    this.dirBlockChanged(dir, raw, r.pblk);
    this.addBlocks(raw, 1);
    this.appendBlock(dir, raw, lblk, r.pblk, goal);
    this.setSize(raw, (lblk + 1) * this.bs);
    this.touch(dir);
  }

  /** Removes the entry `name` from a directory (merged into the previous entry, or emptied when first in its block). */
  removeEntry(dir: number, name: Buffer): void {
    const raw = this.inode(dir);
    this.checkDir(dir, raw);
    this.unindex(dir, raw);
    for (const [, pblk] of this.dirBlockList(dir, raw)) {
      const buf = this.leafBlock(dir, raw, pblk);
      const ents = this.dirents(dir, buf, this.limit());
      for (let i = 0; i < ents.length; i++) {
        const d = ents[i];
        if (d.ino === 0 || !d.name.equals(name)) continue;
        if (i > 0) {
          const prev = ents[i - 1];
          this.setRecLen(buf, prev.off, prev.recLen + d.recLen);
          buf.fill(0, d.off, d.off + 8 + d.name.length);
        } else {
          buf.writeUInt32LE(0, d.off);
        }
        this.dirBlockChanged(dir, raw, pblk);
        return;
      }
    }
    throw this.fail(`directory inode ${dir} has no entry '${name.toString('utf8')}'`, 'not-found');
  }

  /** Adds `delta` to a directory's link count, as dir_nlink wants it (1 means "too many to count"). */
  linkDir(dir: number, delta: number): void {
    const raw = this.inode(dir);
    const links = raw.readUInt16LE(0x1a);
    if (links === 1 && this.roCompat & RO_COMPAT_DIR_NLINK) return;
    let next = links + delta;
    if (next >= LINK_MAX) {
      if (!(this.roCompat & RO_COMPAT_DIR_NLINK)) throw this.fail(`directory inode ${dir} has too many subdirectories`, 'no-space');
      next = 1;
    }
    raw.writeUInt16LE(next, 0x1a);
    this.touch(dir);
  }

  /** Writes a new directory's first block ('.' and '..'); returns nothing, the inode is mapped and sized. */
  initDir(ino: number, raw: Buffer, parent: number, goal: number): void {
    const [r] = this.allocBlocks(1, goal);
    const buf = Buffer.alloc(this.bs);
    const limit = this.limit();
    buf.writeUInt32LE(ino, 0);
    this.setRecLen(buf, 0, 12);
    buf[6] = 1;
    buf[7] = this.filetype ? 2 : 0;
    buf[8] = 0x2e;
    buf.writeUInt32LE(parent, 12);
    this.setRecLen(buf, 12, limit - 12);
    buf[18] = 2;
    buf[19] = this.filetype ? 2 : 0;
    buf[20] = 0x2e;
    buf[21] = 0x2e;
    this.writeTail(buf);
    this.put(r.pblk, buf);
    this.mapRuns(ino, raw, [r], goal);
    this.dirBlockChanged(ino, raw, r.pblk);
    this.setSize(raw, this.bs);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Unlinking

  /**
   * Drops one link to `ino` (whose entry is already gone): a directory goes with everything below it, any other
   * inode when its link count reaches 0 (blocks, xattr block and inode freed); else only its ctime changes.
   */
  dropLink(ino: number, parentDir: number | undefined, now: bigint | undefined): void {
    const raw = this.inode(ino);
    if (raw.readUInt32LE(0x20) & (UNTOUCHABLE_FL & ~EXT4_INLINE_DATA_FL)) throw this.fail(`inode ${ino} is encrypted, compressed or fs-verity`);
    if (raw.readUInt32LE(0x20) & EXT4_INLINE_DATA_FL) throw this.fail(`inode ${ino} has inline data`);
    const isDir = (raw.readUInt16LE(0) & S_IFMT) === S_IFDIR;
    if (isDir) {
      for (const c of this.children(ino, raw)) this.dropLink(c.ino, undefined, now);
      if (parentDir !== undefined) this.linkDir(parentDir, -1);
    } else {
      const links = raw.readUInt16LE(0x1a);
      if (links > 1) {
        raw.writeUInt16LE(links - 1, 0x1a);
        if (now !== undefined) this.setTime(raw, 'ctime', now);
        this.touch(ino);
        return;
      }
    }
    this.truncate(ino, raw);
    this.dropXattrBlock(ino, raw);
    const dtime = now !== undefined ? now / 1_000_000_000n : BigInt(raw.readInt32LE(0xc));
    raw.writeUInt16LE(0, 0x1a);
    raw.writeUInt32LE(Number(BigInt.asUintN(32, dtime)) || 1, 0x14);
    this.touch(ino);
    this.freeInodeBit(ino, isDir);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Finishing

  /** Checksums everything changed and writes the dirty blocks; returns their numbers. */
  flush(): number[] {
    if (this.csum) {
      for (const ino of this.touchedInodes) {
        const { block, off } = this.inodeLoc(ino);
        const raw = this.block(block).subarray(off, off + this.inodeSize);
        const c = inodeChecksum(raw, this.inodeSeed(ino, raw), this.inodeSize);
        raw.writeUInt16LE(c & 0xffff, 0x7c);
        if (this.inodeSize > GOOD_OLD_INODE_SIZE && this.extraIsize(raw) >= 4) raw.writeUInt16LE(c >>> 16, 0x82);
      }
      for (const [blk, seed] of this.dirBlocks) {
        const buf = this.block(blk);
        buf.writeUInt32LE(crc32c(seed, buf, 0, this.bs - 12), this.bs - 4);
      }
      for (const [blk, seed] of this.extentBlocks) {
        const buf = this.block(blk);
        const tail = 12 + 12 * buf.readUInt16LE(4);
        buf.writeUInt32LE(crc32c(seed, buf, 0, tail), tail);
      }
    }
    for (const nr of this.dirtyGroups) {
      const g = this.group(nr);
      if (this.csum) {
        const bb = crc32c(this.csumSeed, this.block(g.blockBitmap), 0, this.bpg / 8);
        const ib = crc32c(this.csumSeed, this.block(g.inodeBitmap), 0, this.ipg / 8);
        if (!(this.flags(g) & BG_BLOCK_UNINIT)) {
          g.desc.writeUInt16LE(bb & 0xffff, 0x18);
          if (this.descSize >= 64) g.desc.writeUInt16LE(bb >>> 16, 0x38);
        }
        if (!(this.flags(g) & BG_INODE_UNINIT)) {
          g.desc.writeUInt16LE(ib & 0xffff, 0x1a);
          if (this.descSize >= 64) g.desc.writeUInt16LE(ib >>> 16, 0x3a);
        }
        g.desc.writeUInt16LE(groupDescChecksum(g.desc, nr, 'crc32c', this.csumSeed), 0x1e);
      } else if (this.gdtCsum) {
        g.desc.writeUInt16LE(groupDescChecksum(g.desc, nr, 'crc16', this.crc16Seed), 0x1e);
      }
      this.markDirty(g.gdtBlock);
    }
    this.markDirty(this.sbBlock);
    if (this.csum) this.sb.writeUInt32LE(crc32c(0xffffffff, this.sb, 0, 0x3fc), 0x3fc);
    const blocks = [...this.dirty].sort((a, b) => a - b);
    for (const b of blocks) this.dev.write(b * this.bs, this.block(b));
    return blocks;
  }

  get dirBlocksChanged(): number {
    return this.dirChanged.size;
  }

  /** Refuses file systems whose journal needs replaying before anything may change. */
  checkState(): void {
    if (this.sb.readUInt32LE(0x60) & 0x4) throw this.fail('the journal needs recovery (run e2fsck first)');
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Changes

function splitPath(p: Buffer, fail: (reason: string) => Error): Buffer[] {
  if (p.length === 0) return [];
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i < p.length && p[i] !== 0x2f) continue;
    const c = p.subarray(start, i);
    if (c.length === 0 || c.equals(DOT) || c.equals(DOTDOT)) throw fail('the path has an empty, . or .. component');
    if (c.includes(0)) throw fail('the path contains a NUL byte');
    if (c.length > 255) throw fail('a name is longer than 255 bytes');
    parts.push(c);
    start = i + 1;
  }
  return parts;
}

/** The directory holding `path` and its last name (root: none), failing when a parent is missing or not a directory. */
function resolveParent(fs: Patcher, path: Buffer): { dir: number; name: Buffer | undefined } {
  const parts = splitPath(path, (r) => fs.fail(r, 'invalid'));
  let dir = ROOT_INO;
  for (let i = 0; i < parts.length - 1; i++) {
    const hit = fs.lookup(dir, parts[i]);
    const sofar = parts.slice(0, i + 1).map((b) => b.toString('utf8')).join('/');
    if (!hit) throw fs.fail(`parent directory '${sofar}' does not exist`, 'not-found');
    if ((fs.inode(hit.ino).readUInt16LE(0) & S_IFMT) !== S_IFDIR) throw fs.fail(`'${sofar}' is not a directory`, 'invalid');
    dir = hit.ino;
  }
  return { dir, name: parts[parts.length - 1] };
}

function modeType(raw: Buffer): number {
  return raw.readUInt16LE(0) & S_IFMT;
}

/** Creates a new inode named `name` in `dir`: allocated near the directory, linked, the directory's times set. */
function createInode(fs: Patcher, dir: number, name: Buffer, mode: number, uid: number, gid: number, mtime: bigint, ctime: bigint): { ino: number; raw: Buffer } {
  const isDir = (mode & S_IFMT) === S_IFDIR;
  const ino = fs.allocInode(fs.groupOfInode(dir), isDir);
  const raw = fs.initInode(ino, mode, uid, gid, mtime, ctime);
  raw.writeUInt16LE(isDir ? 2 : 1, 0x1a);
  fs.addEntry(dir, name, ino, mode);
  if (isDir) fs.linkDir(dir, 1);
  touchDir(fs, dir, mtime);
  return { ino, raw };
}

function touchDir(fs: Patcher, dir: number, t: bigint | undefined): void {
  if (t === undefined) return;
  const raw = fs.inode(dir);
  fs.setTime(raw, 'mtime', t);
  fs.setTime(raw, 'ctime', t);
  fs.touch(dir);
}

/** Removes a non-directory at `name` in `dir` before something else takes its name; refuses a directory. */
function replaceable(fs: Patcher, dir: number, name: Buffer, now: bigint | undefined): void {
  const hit = fs.lookup(dir, name);
  if (!hit) return;
  if (modeType(fs.inode(hit.ino)) === S_IFDIR) throw fs.fail('a directory is in the way', 'invalid');
  fs.removeEntry(dir, name);
  fs.dropLink(hit.ino, undefined, now);
}

function writeData(fs: Patcher, ino: number, raw: Buffer, data: Buffer, goal: number): void {
  const bs = fs.bs;
  const n = Math.ceil(data.length / bs);
  const runs = fs.allocBlocks(n, goal);
  let lblk = 0;
  for (const r of runs) {
    for (let i = 0; i < r.len; i++, lblk++) {
      const piece = data.subarray(lblk * bs, (lblk + 1) * bs);
      const buf = piece.length === bs ? Buffer.from(piece) : Buffer.concat([piece, Buffer.alloc(bs - piece.length)]);
      fs.put(r.pblk + i, buf);
    }
  }
  fs.mapRuns(ino, raw, runs, goal);
}

function applyChange(fs: Patcher, c: Ext4Change, now: bigint | undefined): void {
  fs.setPath(c.path);
  const { dir, name } = resolveParent(fs, c.path);
  switch (c.op) {
    case 'write': {
      if (!name) throw fs.fail('the root is a directory', 'invalid');
      const ctime = now ?? c.mtimeNs;
      const mode = S_IFREG | (c.mode & 0o7777);
      const hit = fs.lookup(dir, name);
      let ino: number;
      let raw: Buffer;
      if (hit && modeType(fs.inode(hit.ino)) === S_IFREG && fs.inode(hit.ino).readUInt16LE(0x1a) === 1) {
        ino = hit.ino;
        raw = fs.inode(ino);
        if (raw.readUInt32LE(0x20) & UNTOUCHABLE_FL) throw fs.fail(`inode ${ino} is inline, encrypted, compressed or fs-verity`);
        fs.truncate(ino, raw);
        raw.writeUInt16LE(mode, 0);
        fs.setOwner(raw, c.uid, c.gid);
        fs.setTime(raw, 'mtime', c.mtimeNs);
        fs.setTime(raw, 'atime', c.mtimeNs);
        fs.setTime(raw, 'ctime', ctime);
      } else {
        replaceable(fs, dir, name, now);
        ({ ino, raw } = createInode(fs, dir, name, mode, c.uid, c.gid, c.mtimeNs, ctime));
      }
      if (c.xattrs) fs.setXattrs(ino, raw, c.xattrs);
      writeData(fs, ino, raw, c.data, fs.groupOfInode(ino));
      fs.setSize(raw, c.data.length);
      fs.touch(ino);
      return;
    }
    case 'mkdir': {
      if (!name) {
        setattr(fs, ROOT_INO, { mode: c.mode, uid: c.uid, gid: c.gid, mtimeNs: c.mtimeNs }, now);
        return;
      }
      const hit = fs.lookup(dir, name);
      if (hit) {
        if (modeType(fs.inode(hit.ino)) !== S_IFDIR) throw fs.fail('something other than a directory is in the way', 'invalid');
        setattr(fs, hit.ino, { mode: c.mode, uid: c.uid, gid: c.gid, mtimeNs: c.mtimeNs }, now);
        return;
      }
      const { ino, raw } = createInode(fs, dir, name, S_IFDIR | (c.mode & 0o7777), c.uid, c.gid, c.mtimeNs, now ?? c.mtimeNs);
      fs.initDir(ino, raw, dir, fs.groupOfInode(ino));
      return;
    }
    case 'symlink': {
      if (!name) throw fs.fail('the root is a directory', 'invalid');
      if (c.target.length === 0 || c.target.includes(0)) throw fs.fail('a symlink target must be non-empty and without NUL bytes', 'invalid');
      if (c.target.length >= fs.bs) throw fs.fail(`a symlink target of ${c.target.length} bytes does not fit in a ${fs.bs}-byte block`, 'invalid');
      replaceable(fs, dir, name, now);
      const { ino, raw } = createInode(fs, dir, name, S_IFLNK | 0o777, c.uid, c.gid, c.mtimeNs, now ?? c.mtimeNs);
      if (c.target.length < 60) {
        c.target.copy(raw, 0x28);
      } else {
        writeData(fs, ino, raw, c.target, fs.groupOfInode(ino));
      }
      fs.setSize(raw, c.target.length);
      fs.touch(ino);
      return;
    }
    case 'remove': {
      if (!name) throw fs.fail('the root cannot be removed', 'invalid');
      const hit = fs.lookup(dir, name);
      if (!hit) throw fs.fail('no such file or directory', 'not-found');
      fs.removeEntry(dir, name);
      fs.dropLink(hit.ino, dir, now);
      touchDir(fs, dir, now);
      return;
    }
    case 'setattr': {
      let ino = ROOT_INO;
      if (name) {
        const hit = fs.lookup(dir, name);
        if (!hit) throw fs.fail('no such file or directory', 'not-found');
        ino = hit.ino;
      }
      setattr(fs, ino, c, now);
      return;
    }
    default:
      throw fs.fail(`unknown change '${(c as { op: string }).op}'`, 'invalid');
  }
}

function setattr(fs: Patcher, ino: number, c: { mode?: number; uid?: number; gid?: number; mtimeNs?: bigint; xattrs?: Ext4Xattr[] }, now: bigint | undefined): void {
  const raw = fs.inode(ino);
  if (raw.readUInt32LE(0x20) & UNTOUCHABLE_FL & ~0x40000000) throw fs.fail(`inode ${ino} is inline, encrypted, compressed or fs-verity`);
  if (c.mode !== undefined) raw.writeUInt16LE((raw.readUInt16LE(0) & S_IFMT) | (c.mode & 0o7777), 0);
  if (c.uid !== undefined || c.gid !== undefined) {
    const uid = c.uid ?? raw.readUInt16LE(0x2) + raw.readUInt16LE(0x78) * 0x10000;
    const gid = c.gid ?? raw.readUInt16LE(0x18) + raw.readUInt16LE(0x7a) * 0x10000;
    fs.setOwner(raw, uid, gid);
  }
  if (c.mtimeNs !== undefined) fs.setTime(raw, 'mtime', c.mtimeNs);
  if (c.xattrs) fs.setXattrs(ino, raw, c.xattrs);
  const ctime = now ?? c.mtimeNs;
  if (ctime !== undefined) fs.setTime(raw, 'ctime', ctime);
  fs.touch(ino);
}

/**
 * Applies `changes` in order to the ext2/ext3/ext4 file system on `dev`, in place: only the blocks the changes
 * touch are read and written, and nothing is written unless every change applies. New inodes and blocks are taken
 * first-fit from the group of their directory (file data in as few extents as the free space allows; a partial last
 * block zero-filled); htree directories that change become linear (their index blocks turned into empty leaves).
 *
 * Supported: ext2/ext3/ext4 as Debian's mke2fs makes them (extents or block maps, 64bit, flex_bg, metadata_csum with
 * or without metadata_csum_seed, uninit_bg, huge_file, dir_nlink, extra_isize, a clean journal left alone),
 * uninitialised groups (initialised when allocated from). xattrs are written in the inode's extra space only.
 *
 * Throws Ext4PatchError (`kind`): 'no-space' (no free inode or block), 'unsupported' (a feature such as
 * needs_recovery, meta_bg, inline_data, bigalloc, quota, or xattrs that do not fit in the inode), 'not-found' (a
 * parent or the removed path), 'invalid' (a directory in the way, a bad path), 'corrupt' (a checksum or structure
 * that does not verify). The device is then unchanged.
 *
 * @example
 * const dev = new CowDevice(size, (o, n) => readBase(o, n));
 * const result = patchExt4(dev, [{ op: 'write', path: Buffer.from('etc/hostname'), data: Buffer.from('web1\n'),
 *   mode: 0o644, uid: 0, gid: 0, mtimeNs: 1700000000000000000n }]);
 */
export function patchExt4(dev: PatchDevice, changes: Ext4Change[], options: Ext4PatchOptions = {}): Ext4PatchResult {
  const fs = new Patcher(dev);
  fs.checkState();
  for (const c of changes) applyChange(fs, c, options.now);
  fs.setPath(Buffer.alloc(0));
  const changedBlocks = fs.flush();
  return { blockSize: fs.bs, ...fs.stats, dirBlocksChanged: fs.dirBlocksChanged, changedBlocks };
}
