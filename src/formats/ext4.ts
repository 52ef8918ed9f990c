/**
 * ext2/ext3/ext4 file-system images as ImageReaders: a read-only parser of the on-disk format described in the
 * Linux tree's Documentation/filesystems/ext4/, that bounds-checks every structure it reads and verifies the
 * metadata_csum checksums (crc32c) of the superblock, group descriptors, inodes, extent blocks, directory blocks and
 * xattr blocks.
 *
 * Why our own reader: no npm package can read real images. balena's ext2fs (e2fsprogs compiled to WASM) aborts with
 * an out-of-memory error after a few thousand inodes of a 4 KiB-block image, has no xattr API, reports every rdev as
 * 0 and times in whole seconds only (see DEPENDENCIES.md §4). The format parts a faithful import needs are small.
 */
import fs from 'node:fs';
import { EMPTY, inodeTreeWalk, showPath, throwIfAborted, walkEntries } from './depth-first.js';
import { type DataPiece, type EntryType, type FileContent, type ImageEntry, type ImageReader, type SourceDescription, type Xattr, S_IFMT, S_IFREG, typeOfMode } from './types.js';
import { CorruptInputError, SourceReadError, UnsupportedInputError } from '../errors.js';

// ---------------------------------------------------------------------------------------------------------------
// Block sources

/** Random read access to the bytes of a file system (a file, a partition inside a disk, a qcow2 view...). */
export interface BlockSource {
  /** Bytes readable, from offset 0 to `size`. */
  size: number;
  /**
   * Exactly `length` bytes at `offset` (0 ≤ offset, offset + length ≤ size), or a rejection. The reader never writes
   * into the returned buffer, so a source may hand out views of memory it keeps.
   */
  read(offset: number, length: number): Promise<Buffer>;
}

function reasonOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Reads exactly `len` bytes at file position `pos` into out[outAt..], with synchronous preads: image reads are small
 * and mostly page-cached, and a thread-pool round trip per block (thousands of small files) costs more than it
 * overlaps (the object writer has its own thread). Throws SourceReadError on I/O errors and on a short file
 * (`eofHint` is appended to that message).
 */
export function preadFully(fd: number, file: string, out: Buffer, outAt: number, len: number, pos: number, eofHint = ''): void {
  let done = 0;
  while (done < len) {
    let got: number;
    try {
      got = fs.readSync(fd, out, outAt + done, len - done, pos + done);
    } catch (e) {
      throw new SourceReadError(file, reasonOf(e), { cause: e });
    }
    if (got === 0) throw new SourceReadError(file, `unexpected end of file at ${pos + done}${eofHint}`);
    done += got;
  }
}

/** Size of a block device from sysfs (stat reports 0 for them). */
async function blockDeviceSize(rdev: number): Promise<number | undefined> {
  const major = ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
  const minor = (rdev & 0xff) | ((rdev >>> 12) & ~0xff);
  try {
    const sectors = Number((await fs.promises.readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8')).trim());
    return Number.isSafeInteger(sectors) ? sectors * 512 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A BlockSource over the bytes [offset, offset + size) of a file or block device (size defaults to the rest of it).
 * Throws SourceReadError when the file cannot be opened or the range lies outside it; `read()` throws SourceReadError
 * on I/O errors and on reads outside the range. Call `close()` when done.
 *
 * @example
 * const src = await fileBlockSource('disk.img', partition.offset, partition.size);
 * try { const { reader } = await openExt4(src, 'disk.img'); ... } finally { await src.close(); }
 */
export async function fileBlockSource(path: string, offset = 0, size?: number): Promise<BlockSource & { close(): Promise<void> }> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(path, 'r');
  } catch (e) {
    throw new SourceReadError(path, reasonOf(e), { cause: e });
  }
  try {
    const st = await fh.stat();
    const total = st.isBlockDevice() ? (await blockDeviceSize(st.rdev)) ?? 0 : st.size;
    const length = size ?? total - offset;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > total) {
      throw new SourceReadError(path, `range ${offset}+${length} lies outside the ${total}-byte file`);
    }
    return {
      size: length,
      async read(at: number, n: number): Promise<Buffer> {
        if (!Number.isSafeInteger(at) || !Number.isSafeInteger(n) || at < 0 || n < 0 || at + n > length) {
          throw new SourceReadError(path, `read of ${n} bytes at ${at} lies outside the ${length}-byte source`);
        }
        const buf = Buffer.allocUnsafe(n);
        preadFully(fh.fd, path, buf, 0, n, offset + at);
        return buf;
      },
      async close(): Promise<void> {
        await fh.close();
      },
    };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** A BlockSource over a buffer in memory (tests, small images); reads return views of `buf`. */
export function bufferBlockSource(buf: Buffer): BlockSource {
  return {
    size: buf.length,
    async read(at: number, n: number): Promise<Buffer> {
      if (!Number.isSafeInteger(at) || !Number.isSafeInteger(n) || at < 0 || n < 0 || at + n > buf.length) {
        throw new SourceReadError('<buffer>', `read of ${n} bytes at ${at} lies outside the ${buf.length}-byte buffer`);
      }
      return buf.subarray(at, at + n);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Checksums: the kernel's ext4_chksum() is a raw crc32c update (no pre- or post-inversion); gdt_csum uses crc16.

const CRC32C_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** Continues a crc32c over data[start, end) without inversions, as the kernel's crc32c_le(); `crc32c(~0, x) ^ ~0` is the usual CRC-32C. */
export function crc32c(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  let c = crc | 0;
  for (let i = start; i < end; i++) c = CRC32C_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

/** Continues a crc32c over `n` zero bytes (a checksum field taken as zero). */
export function crc32cZeros(crc: number, n: number): number {
  let c = crc | 0;
  for (let i = 0; i < n; i++) c = CRC32C_TABLE[c & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

/** Continues a crc32c over a little-endian u32. */
export function crc32cU32(crc: number, v: number): number {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(v >>> 0);
  return crc32c(crc, b);
}

const CRC16_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** The crc16 (ANSI, reflected) of gdt_csum group descriptors. */
export function crc16(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  let c = crc & 0xffff;
  for (let i = start; i < end; i++) c = (c >>> 8) ^ CRC16_TABLE[(c ^ data[i]) & 0xff];
  return c;
}

// ---------------------------------------------------------------------------------------------------------------
// On-disk constants (names as in the kernel's fs/ext4/ext4.h and e2fsprogs' lib/e2p/feature.c)

const SUPERBLOCK_OFFSET = 1024;
const SUPER_MAGIC = 0xef53;
const ROOT_INO = 2;
const GOOD_OLD_INODE_SIZE = 128;
const GOOD_OLD_FIRST_INO = 11;
const EXTENT_MAGIC = 0xf30a;
/** EXT4_MAX_EXTENT_DEPTH: deeper trees are rejected by the kernel too. */
const MAX_EXTENT_DEPTH = 5;
const EXT_INIT_MAX_LEN = 32768;
const XATTR_MAGIC = 0xea020000;
/** EXT4_XATTR_SIZE_MAX: the largest value ext4 stores (in an EA inode). */
const XATTR_SIZE_MAX = 1 << 24;
/** Largest piece a file's `read()` yields. */
export const EXT4_PIECE_SIZE = 1 << 20;
/** Bytes of inode-table blocks kept in memory (consecutive inodes share blocks). */
const INODE_CACHE_BYTES = 4 << 20;

const COMPAT_HAS_JOURNAL = 0x4;
const COMPAT_SPARSE_SUPER2 = 0x200;
const INCOMPAT_COMPRESSION = 0x1;
const INCOMPAT_FILETYPE = 0x2;
const INCOMPAT_RECOVER = 0x4;
const INCOMPAT_JOURNAL_DEV = 0x8;
const INCOMPAT_META_BG = 0x10;
const INCOMPAT_EXTENTS = 0x40;
const INCOMPAT_64BIT = 0x80;
const INCOMPAT_MMP = 0x100;
const INCOMPAT_FLEX_BG = 0x200;
const INCOMPAT_EA_INODE = 0x400;
const INCOMPAT_DIRDATA = 0x1000;
const INCOMPAT_CSUM_SEED = 0x2000;
const INCOMPAT_LARGEDIR = 0x4000;
const INCOMPAT_INLINE_DATA = 0x8000;
const INCOMPAT_ENCRYPT = 0x10000;
const INCOMPAT_CASEFOLD = 0x20000;
/** Incompatible features this reader understands (RECOVER, JOURNAL_DEV, COMPRESSION and DIRDATA are refused). */
const INCOMPAT_SUPPORTED = INCOMPAT_FILETYPE | INCOMPAT_META_BG | INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_MMP |
  INCOMPAT_FLEX_BG | INCOMPAT_EA_INODE | INCOMPAT_CSUM_SEED | INCOMPAT_LARGEDIR | INCOMPAT_INLINE_DATA |
  INCOMPAT_ENCRYPT | INCOMPAT_CASEFOLD;
const RO_COMPAT_SPARSE_SUPER = 0x1;
const RO_COMPAT_LARGE_FILE = 0x2;
const RO_COMPAT_BTREE_DIR = 0x4;
const RO_COMPAT_HUGE_FILE = 0x8;
const RO_COMPAT_GDT_CSUM = 0x10;
const RO_COMPAT_BIGALLOC = 0x200;
const RO_COMPAT_METADATA_CSUM = 0x400;
const COMPAT_DIR_INDEX = 0x20;

const FEATURE_NAMES: Record<'compat' | 'incompat' | 'roCompat', Array<[number, string]>> = {
  compat: [
    [0x1, 'dir_prealloc'], [0x2, 'imagic_inodes'], [0x4, 'has_journal'], [0x8, 'ext_attr'], [0x10, 'resize_inode'],
    [0x20, 'dir_index'], [0x40, 'lazy_bg'], [0x100, 'snapshot_bitmap'], [0x200, 'sparse_super2'],
    [0x400, 'fast_commit'], [0x800, 'stable_inodes'], [0x1000, 'orphan_file'],
  ],
  incompat: [
    [0x1, 'compression'], [0x2, 'filetype'], [0x4, 'needs_recovery'], [0x8, 'journal_dev'], [0x10, 'meta_bg'],
    [0x40, 'extent'], [0x80, '64bit'], [0x100, 'mmp'], [0x200, 'flex_bg'], [0x400, 'ea_inode'], [0x1000, 'dirdata'],
    [0x2000, 'metadata_csum_seed'], [0x4000, 'large_dir'], [0x8000, 'inline_data'], [0x10000, 'encrypt'],
    [0x20000, 'casefold'],
  ],
  roCompat: [
    [0x1, 'sparse_super'], [0x2, 'large_file'], [0x8, 'huge_file'], [0x10, 'uninit_bg'], [0x20, 'dir_nlink'],
    [0x40, 'extra_isize'], [0x100, 'quota'], [0x200, 'bigalloc'], [0x400, 'metadata_csum'], [0x800, 'replica'],
    [0x1000, 'read-only'], [0x2000, 'project'], [0x4000, 'shared_blocks'], [0x8000, 'verity'],
    [0x10000, 'orphan_present'],
  ],
};

/** Names as e2fsprogs prints them; unnamed bits as `FEATURE_C12` / `FEATURE_I20` / `FEATURE_R7`. */
export function featureNames(kind: 'compat' | 'incompat' | 'roCompat', bits: number): string[] {
  const out: string[] = [];
  const letter = kind === 'compat' ? 'C' : kind === 'incompat' ? 'I' : 'R';
  for (let bit = 0; bit < 32; bit++) {
    const mask = 2 ** bit;
    if (Math.floor(bits / mask) % 2 === 0) continue;
    out.push(FEATURE_NAMES[kind].find(([m]) => m === mask)?.[1] ?? `FEATURE_${letter}${bit}`);
  }
  return out;
}

/**
 * metadata_csum checksum of an inode record (the kernel's ext4_inode_csum()), the checksum fields taken as zero:
 * all 32 bits when i_checksum_hi fits in the extra space (i_extra_isize ≥ 4), else the low 16. `seed` is the
 * inode's own seed, crc32c(crc32c(fs seed, ino), generation).
 */
export function inodeChecksum(raw: Buffer, seed: number, inodeSize: number): number {
  const extraIsize = inodeSize > GOOD_OLD_INODE_SIZE ? raw.readUInt16LE(0x80) : 0;
  const hiFits = inodeSize > GOOD_OLD_INODE_SIZE && extraIsize >= 4;
  let c = crc32c(seed, raw, 0, 0x7c);
  c = crc32cZeros(c, 2);
  c = crc32c(c, raw, 0x7e, GOOD_OLD_INODE_SIZE);
  if (inodeSize > GOOD_OLD_INODE_SIZE) {
    c = crc32c(c, raw, GOOD_OLD_INODE_SIZE, 0x82);
    if (hiFits) {
      c = crc32cZeros(c, 2);
      c = crc32c(c, raw, 0x84, inodeSize);
    } else {
      c = crc32c(c, raw, 0x82, inodeSize);
    }
  }
  return hiFits ? c : c & 0xffff;
}

/**
 * Checksum of group descriptor `group` (`d` is its descSize bytes): the low 16 bits of crc32c(fs seed, ...) with
 * metadata_csum, else crc16 with gdt_csum (`seed` is then crc16(~0, uuid)); bg_checksum itself taken as zero.
 */
export function groupDescChecksum(d: Buffer, group: number, kind: 'crc32c' | 'crc16', seed: number): number {
  const le = Buffer.alloc(4);
  le.writeUInt32LE(group);
  if (kind === 'crc32c') {
    let c = crc32c(seed, le);
    c = crc32c(c, d, 0, 0x1e);
    c = crc32cZeros(c, 2);
    c = crc32c(c, d, 0x20, d.length);
    return c & 0xffff;
  }
  let c = crc16(seed, le);
  c = crc16(c, d, 0, 0x1e);
  if (d.length > 32) c = crc16(c, d, 0x20, d.length);
  return c;
}

/** metadata_csum checksum of an xattr block at block number `block`: crc32c(fs seed, le64 block, block with h_checksum zero). */
export function xattrBlockChecksum(buf: Buffer, block: number, fsSeed: number): number {
  const le = Buffer.alloc(8);
  le.writeUInt32LE(block % 2 ** 32, 0);
  le.writeUInt32LE(Math.floor(block / 2 ** 32), 4);
  let c = crc32c(fsSeed, le);
  c = crc32c(c, buf, 0, 0x10);
  c = crc32cZeros(c, 4);
  return crc32c(c, buf, 0x14, buf.length);
}

/** Whether group `g` holds a superblock backup (sparse_super: 0, 1 and powers of 3, 5, 7; sparse_super2: the two named groups). */
export function groupHasSuper(g: number, sb: Buffer): boolean {
  if (g === 0) return true;
  const compat = sb.readUInt32LE(0x5c);
  const roCompat = sb.readUInt32LE(0x64);
  if (compat & COMPAT_SPARSE_SUPER2) return g === sb.readUInt32LE(0x24c) || g === sb.readUInt32LE(0x250);
  if (g <= 1 || !(roCompat & RO_COMPAT_SPARSE_SUPER)) return true;
  if (!(g & 1)) return false;
  for (const base of [3, 5, 7]) {
    let p = base;
    while (p < g) p *= base;
    if (p === g) return true;
  }
  return false;
}

// Inode flags
const EXT4_COMPR_FL = 0x4;
const EXT4_ENCRYPT_FL = 0x800;
const EXT4_INDEX_FL = 0x1000;
const EXT4_HUGE_FILE_FL = 0x40000;
const EXT4_EXTENTS_FL = 0x80000;
const EXT4_VERITY_FL = 0x100000;
const EXT4_EA_INODE_FL = 0x200000;
const EXT4_INLINE_DATA_FL = 0x10000000;

/** e_name_index → name prefix (kernel fs/ext4/xattr.c, e2fsprogs lib/ext2fs/ext_attr.c). */
const XATTR_PREFIXES: Record<number, string> = {
  1: 'user.', 2: 'system.posix_acl_access', 3: 'system.posix_acl_default', 4: 'trusted.', 5: 'lustre.',
  6: 'security.', 7: 'system.', 8: 'system.richacl', 10: 'gnu.',
};
const XATTR_INDEX_SYSTEM = 7;
const XATTR_INDEX_ACL_ACCESS = 2;
const XATTR_INDEX_ACL_DEFAULT = 3;

// ---------------------------------------------------------------------------------------------------------------
// Public types

export interface Ext4Info {
  /** As blkid names it: ext4 when any feature ext3 lacks is on, ext3 with a journal, ext2 otherwise. */
  type: 'ext2' | 'ext3' | 'ext4';
  uuid: string;
  label: string;
  blockSize: number;
  /** Equal to blockSize unless bigalloc. */
  clusterSize: number;
  inodeSize: number;
  inodesCount: number;
  inodesPerGroup: number;
  blocksCount: number;
  blocksPerGroup: number;
  /** Blocks reserved for the super-user (`mke2fs -m`, `tune2fs -r`). */
  reservedBlocks: number;
  freeBlocks: number;
  freeInodes: number;
  firstDataBlock: number;
  groupCount: number;
  /** Group descriptor size (32, or s_desc_size with 64bit). */
  descSize: number;
  reservedGdtBlocks: number;
  /** Groups per flex group (`mke2fs -G`), 0 without flex_bg. */
  flexBgSize: number;
  features: { compat: string[]; incompat: string[]; roCompat: string[] };
  /** 0 (original, fixed 128-byte inodes) or 1 (dynamic). */
  revision: number;
  creatorOs: 'linux' | 'hurd' | 'masix' | 'freebsd' | 'lites' | string;
  /** Directory hash seed (`mke2fs -E hash_seed=`) and default hash ('legacy', 'half_md4', 'tea', ...). */
  hashSeed: string;
  defaultHashVersion: string;
  /** s_default_mount_opts as tune2fs names them (acl, user_xattr, ...) and s_mount_opts. */
  defaultMountOptions: string[];
  mountOptions: string;
  errorBehavior: 'continue' | 'remount-ro' | 'panic' | string;
  minExtraIsize: number;
  wantExtraIsize: number;
  /** Internal journal: its inode and size in blocks; external: the device's uuid. */
  journal?: { inode: number; blocks: number } | { deviceUuid: string; device: number };
  /** metadata_csum_seed: the stored checksum seed (`tune2fs -U` keeps it). */
  checksumSeed?: number;
  /** casefold: 'utf8-12.1' and its flags ('strict'). */
  encoding?: { name: string; flags: string[] };
  raidStride: number;
  raidStripeWidth: number;
  reservedUid: number;
  reservedGid: number;
  lastMountedOn: string;
  /** s_mkfs_time, seconds since the epoch (0 when unknown). */
  createdAt: number;
  /** s_state: 'clean', or not (mounted or crashed), and whether errors were recorded. */
  state: { clean: boolean; errors: boolean };
}

// ---------------------------------------------------------------------------------------------------------------
// Internal structures

interface GroupDesc {
  inodeTable: number;
  flags: number;
}

interface Inode {
  ino: number;
  raw: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  links: number;
  flags: number;
  /** i_blocks in 512-byte units, as the kernel's fast-symlink test needs it. */
  blocks512: number;
  /** i_blocks in file-system blocks (rounded up): the most blocks the inode's mapping may reach. */
  blocksFs: number;
  fileAcl: number;
  mtimeNs: bigint;
  iblock: Buffer;
  /** Offset of the in-inode xattr area: 128 + i_extra_isize. */
  extraEnd: number;
  /** Checksum seed of this inode (metadata_csum), for its extent, directory and dx blocks. */
  seed: number;
}

interface RawXattr {
  index: number;
  name: Buffer;
  value: Buffer;
}

/** A mapped, initialised run of blocks: logical block `lblk` at physical block `pblk`, `len` blocks. */
interface Run {
  lblk: number;
  pblk: number;
  len: number;
}

interface DirChild {
  name: Buffer;
  ino: number;
}

function u64(buf: Buffer, lo: number, hi: number | undefined): number {
  return buf.readUInt32LE(lo) + (hi === undefined ? 0 : buf.readUInt32LE(hi) * 2 ** 32);
}

/** `n` in hex for messages (`0x0000ef53`), at least `width` digits; shared by the file-system and partition readers. */
export function hex(n: number, width = 8): string {
  return `0x${n.toString(16).padStart(width, '0')}`;
}

/** A 16-byte UUID in its usual text form. */
export function formatUuid(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? b.length : end).toString('utf8');
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/** Counts the blocks one inode's mapping visits, so that a corrupt mapping cannot make a read run away. */
class BlockBudget {
  constructor(private left: number, private readonly fail: () => Error) {}

  take(n: number): void {
    this.left -= n;
    if (this.left < 0) throw this.fail();
  }
}

/**
 * Converts a POSIX ACL from ext4's on-disk form (version 1 header; 4-byte entries for USER_OBJ, GROUP_OBJ, MASK and
 * OTHER, 8-byte ones for USER and GROUP) to the xattr form the VFS gives getfattr and setfacl (version 2 header,
 * 8-byte entries, id 0xffffffff when there is none). Undefined when malformed; an empty ACL converts to undefined
 * too (the kernel then reports no ACL).
 */
function aclFromDisk(v: Buffer): Buffer | undefined {
  if (v.length < 4 || v.readUInt32LE(0) !== 1) return undefined;
  const entries: Buffer[] = [];
  let o = 4;
  while (o < v.length) {
    if (o + 4 > v.length) return undefined;
    const tag = v.readUInt16LE(o);
    const perm = v.readUInt16LE(o + 2);
    let id = 0xffffffff;
    if (tag === 0x02 || tag === 0x08) {
      if (o + 8 > v.length) return undefined;
      id = v.readUInt32LE(o + 4);
      o += 8;
    } else if (tag === 0x01 || tag === 0x04 || tag === 0x10 || tag === 0x20) {
      o += 4;
    } else {
      return undefined;
    }
    const e = Buffer.alloc(8);
    e.writeUInt16LE(tag, 0);
    e.writeUInt16LE(perm, 2);
    e.writeUInt32LE(id, 4);
    entries.push(e);
  }
  if (entries.length === 0) return undefined;
  const head = Buffer.alloc(4);
  head.writeUInt32LE(2, 0);
  return Buffer.concat([head, ...entries]);
}

// ---------------------------------------------------------------------------------------------------------------
// The volume

class Ext4Volume {
  readonly info: Ext4Info;
  readonly blockSize: number;
  private readonly sb: Buffer;
  private readonly blocksCount: number;
  private readonly firstDataBlock: number;
  private readonly blocksPerGroup: number;
  private readonly inodesPerGroup: number;
  private readonly inodesCount: number;
  private readonly inodeSize: number;
  private readonly firstIno: number;
  private readonly incompat: number;
  private readonly roCompat: number;
  private readonly compat: number;
  private readonly metadataCsum: boolean;
  private readonly csumSeed: number;
  private readonly descSize: number;
  private readonly clusterSize: number;
  /** Inodes a directory entry may not name (journal, quota, orphan file). */
  private readonly internalInodes: Set<number>;
  private groups: GroupDesc[] = [];
  private readonly cache = new Map<number, Buffer>();
  private readonly cacheMax: number;

  constructor(readonly source: BlockSource, readonly name: string, sb: Buffer) {
    this.sb = sb;
    const corrupt = (reason: string) => new CorruptInputError(name, 'superblock', reason);
    const magic = sb.readUInt16LE(0x38);
    if (magic !== SUPER_MAGIC) {
      throw new CorruptInputError(name, 'offset 0x438', `not an ext2/ext3/ext4 file system (magic ${hex(magic, 4)}, expected 0xef53)`);
    }
    this.compat = sb.readUInt32LE(0x5c);
    this.incompat = sb.readUInt32LE(0x60);
    this.roCompat = sb.readUInt32LE(0x64);
    this.metadataCsum = (this.roCompat & RO_COMPAT_METADATA_CSUM) !== 0;
    if (this.metadataCsum) {
      if (sb[0x175] !== 1) throw corrupt(`unknown checksum type ${sb[0x175]}`);
      const stored = sb.readUInt32LE(0x3fc);
      const computed = crc32c(0xffffffff, sb, 0, 0x3fc);
      if (stored !== computed) throw corrupt(`superblock checksum mismatch (stored ${hex(stored)}, computed ${hex(computed)})`);
    }
    const revision = sb.readUInt32LE(0x4c);
    if (revision > 1) throw new UnsupportedInputError(name, `ext2/3/4 revision ${revision} is not supported`);
    const logBlock = sb.readUInt32LE(0x18);
    if (logBlock > 6) throw corrupt(`block size 2^${logBlock + 10} is out of range (1 KiB to 64 KiB)`);
    this.blockSize = 1024 << logBlock;
    const bs = this.blockSize;
    const logCluster = sb.readUInt32LE(0x1c);
    if (this.roCompat & RO_COMPAT_BIGALLOC) {
      if (logCluster < logBlock || logCluster > 29) throw corrupt(`cluster size 2^${logCluster + 10} is invalid for block size ${bs}`);
      this.clusterSize = 1024 * 2 ** logCluster;
    } else {
      this.clusterSize = bs;
    }
    const creator = sb.readUInt32LE(0x48);
    if (creator === 1) throw new UnsupportedInputError(name, 'GNU/Hurd file systems (translators, 32-bit modes) are not supported');
    if (this.incompat & INCOMPAT_JOURNAL_DEV) throw new UnsupportedInputError(name, 'this is an external journal device, not a file system');
    if (this.incompat & INCOMPAT_RECOVER) {
      throw new UnsupportedInputError(name, "the journal needs recovery: run 'e2fsck -fy' on (a copy of) the image first, or mount and unmount it");
    }
    if (this.incompat & INCOMPAT_COMPRESSION) throw new UnsupportedInputError(name, 'compressed ext2 file systems are not supported');
    if (this.incompat & INCOMPAT_DIRDATA) throw new UnsupportedInputError(name, 'the dirdata feature (Lustre) is not supported');
    const unknown = this.incompat & ~INCOMPAT_SUPPORTED;
    if (unknown) throw new UnsupportedInputError(name, `unknown incompatible features ${featureNames('incompat', unknown).join(', ')}`);

    this.inodeSize = revision === 0 ? GOOD_OLD_INODE_SIZE : sb.readUInt16LE(0x58);
    this.firstIno = revision === 0 ? GOOD_OLD_FIRST_INO : sb.readUInt32LE(0x54);
    const isz = this.inodeSize;
    if (isz < GOOD_OLD_INODE_SIZE || isz > bs || (isz & (isz - 1)) !== 0) throw corrupt(`inode size ${isz} is invalid`);
    if (this.firstIno < GOOD_OLD_FIRST_INO) throw corrupt(`first inode ${this.firstIno} is below ${GOOD_OLD_FIRST_INO}`);
    const is64 = (this.incompat & INCOMPAT_64BIT) !== 0;
    this.descSize = is64 ? sb.readUInt16LE(0xfe) : 32;
    if (is64 && (this.descSize < 64 || this.descSize > 1024 || (this.descSize & (this.descSize - 1)) !== 0)) {
      throw corrupt(`group descriptor size ${this.descSize} is invalid`);
    }
    this.blocksCount = u64(sb, 0x4, is64 ? 0x150 : undefined);
    this.firstDataBlock = sb.readUInt32LE(0x14);
    this.blocksPerGroup = sb.readUInt32LE(0x20);
    this.inodesPerGroup = sb.readUInt32LE(0x28);
    this.inodesCount = sb.readUInt32LE(0x0);
    const ratio = this.clusterSize / bs;
    if (this.blocksPerGroup === 0 || this.blocksPerGroup > 8 * bs * ratio || this.blocksPerGroup % ratio !== 0) {
      throw corrupt(`blocks per group ${this.blocksPerGroup} is invalid`);
    }
    if (this.inodesPerGroup < bs / isz || this.inodesPerGroup > 8 * bs) throw corrupt(`inodes per group ${this.inodesPerGroup} is invalid`);
    if (!Number.isSafeInteger(this.blocksCount * bs) || this.blocksCount === 0) throw corrupt(`block count ${this.blocksCount} is invalid`);
    if (this.firstDataBlock >= this.blocksCount || (bs > 1024 && this.firstDataBlock !== 0)) {
      throw corrupt(`first data block ${this.firstDataBlock} is invalid`);
    }
    if (this.blocksCount * bs > source.size) {
      throw corrupt(`the file system has ${this.blocksCount} blocks of ${bs} bytes (${this.blocksCount * bs} bytes) but the image has ${source.size} bytes: truncated image`);
    }
    const groupCount = Math.ceil((this.blocksCount - this.firstDataBlock) / this.blocksPerGroup);
    if (groupCount * this.inodesPerGroup !== this.inodesCount) {
      throw corrupt(`inode count ${this.inodesCount} does not match ${groupCount} groups of ${this.inodesPerGroup} inodes`);
    }
    this.csumSeed = !this.metadataCsum ? 0 :
      this.incompat & INCOMPAT_CSUM_SEED ? sb.readUInt32LE(0x270) : crc32c(0xffffffff, sb, 0x68, 0x78);
    this.internalInodes = new Set([0xe0, 0x240, 0x244, 0x26c, 0x280].map((o) => sb.readUInt32LE(o)).filter((n) => n !== 0));
    this.cacheMax = Math.max(4, Math.floor(INODE_CACHE_BYTES / bs));
    this.info = this.describe(groupCount, revision, creator);
  }

  private describe(groupCount: number, revision: number, creator: number): Ext4Info {
    const sb = this.sb;
    const is64 = (this.incompat & INCOMPAT_64BIT) !== 0;
    const ext3Incompat = INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_META_BG;
    const ext3RoCompat = RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | RO_COMPAT_BTREE_DIR;
    const type = (this.incompat & ~ext3Incompat) || (this.roCompat & ~ext3RoCompat) ? 'ext4'
      : this.compat & COMPAT_HAS_JOURNAL ? 'ext3' : 'ext2';
    const hashes = ['legacy', 'half_md4', 'tea', 'legacy_unsigned', 'half_md4_unsigned', 'tea_unsigned', 'siphash'];
    const mountBits: Array<[number, string]> = [
      [0x1, 'debug'], [0x2, 'bsdgroups'], [0x4, 'user_xattr'], [0x8, 'acl'], [0x10, 'uid16'], [0x100, 'nobarrier'],
      [0x200, 'block_validity'], [0x400, 'discard'], [0x800, 'nodelalloc'],
    ];
    const defm = sb.readUInt32LE(0x100);
    const defaultMountOptions = mountBits.filter(([m]) => defm & m).map(([, n]) => n);
    const jmode = defm & 0x60;
    if (jmode) defaultMountOptions.push(jmode === 0x20 ? 'journal_data' : jmode === 0x40 ? 'journal_data_ordered' : 'journal_data_writeback');
    const journalInum = sb.readUInt32LE(0xe0);
    const journalUuid = sb.subarray(0xd0, 0xe0);
    let journal: Ext4Info['journal'];
    if (this.compat & COMPAT_HAS_JOURNAL) {
      if (journalInum) {
        // s_jnl_blocks[15] and [16] keep i_size_high and i_size of the journal inode (s_jnl_backup_type == 1).
        const size = sb[0xfd] === 1 ? sb.readUInt32LE(0x10c + 15 * 4) * 2 ** 32 + sb.readUInt32LE(0x10c + 16 * 4) : 0;
        journal = { inode: journalInum, blocks: Math.floor(size / this.blockSize) };
      } else if (journalUuid.some((b) => b !== 0)) {
        journal = { deviceUuid: formatUuid(journalUuid), device: sb.readUInt32LE(0xe4) };
      }
    }
    const encodingId = sb.readUInt16LE(0x27c);
    const info: Ext4Info = {
      type,
      uuid: formatUuid(sb.subarray(0x68, 0x78)),
      label: cString(sb.subarray(0x78, 0x88)),
      blockSize: this.blockSize,
      clusterSize: this.clusterSize,
      inodeSize: this.inodeSize,
      inodesCount: this.inodesCount,
      inodesPerGroup: this.inodesPerGroup,
      blocksCount: this.blocksCount,
      blocksPerGroup: this.blocksPerGroup,
      reservedBlocks: u64(sb, 0x8, is64 ? 0x154 : undefined),
      freeBlocks: u64(sb, 0xc, is64 ? 0x158 : undefined),
      freeInodes: sb.readUInt32LE(0x10),
      firstDataBlock: this.firstDataBlock,
      groupCount,
      descSize: this.descSize,
      reservedGdtBlocks: sb.readUInt16LE(0xce),
      flexBgSize: this.incompat & INCOMPAT_FLEX_BG && sb[0x174] < 31 ? 2 ** sb[0x174] : 0,
      features: {
        compat: featureNames('compat', this.compat),
        incompat: featureNames('incompat', this.incompat),
        roCompat: featureNames('roCompat', this.roCompat),
      },
      revision,
      creatorOs: ['linux', 'hurd', 'masix', 'freebsd', 'lites'][creator] ?? `os-${creator}`,
      hashSeed: formatUuid(sb.subarray(0xec, 0xfc)),
      defaultHashVersion: hashes[sb[0xfc]] ?? `hash-${sb[0xfc]}`,
      defaultMountOptions,
      mountOptions: cString(sb.subarray(0x200, 0x240)),
      errorBehavior: ['', 'continue', 'remount-ro', 'panic'][sb.readUInt16LE(0x3c)] || `errors-${sb.readUInt16LE(0x3c)}`,
      minExtraIsize: sb.readUInt16LE(0x15c),
      wantExtraIsize: sb.readUInt16LE(0x15e),
      raidStride: sb.readUInt16LE(0x164),
      raidStripeWidth: sb.readUInt32LE(0x170),
      reservedUid: sb.readUInt16LE(0x50),
      reservedGid: sb.readUInt16LE(0x52),
      lastMountedOn: cString(sb.subarray(0x88, 0xc8)),
      createdAt: sb.readUInt32LE(0x108) + sb[0x276] * 2 ** 32,
      state: { clean: (sb.readUInt16LE(0x3a) & 1) !== 0, errors: (sb.readUInt16LE(0x3a) & 2) !== 0 },
    };
    if (journal) info.journal = journal;
    if (this.incompat & INCOMPAT_CSUM_SEED) info.checksumSeed = sb.readUInt32LE(0x270);
    if (this.incompat & INCOMPAT_CASEFOLD) {
      info.encoding = { name: encodingId === 1 ? 'utf8-12.1' : `encoding-${encodingId}`, flags: sb.readUInt16LE(0x27e) & 1 ? ['strict'] : [] };
    }
    return info;
  }

  corrupt(where: string, reason: string): CorruptInputError {
    return new CorruptInputError(this.name, where, reason);
  }

  private async readBytes(offset: number, length: number, where: string): Promise<Buffer> {
    if (!(offset >= 0 && length >= 0 && offset + length <= this.source.size)) {
      throw this.corrupt(where, `bytes ${offset}..${offset + length} lie beyond the end of the ${this.source.size}-byte image`);
    }
    const b = await this.source.read(offset, length);
    if (b.length !== length) throw new SourceReadError(this.name, `short read: ${b.length} of ${length} bytes at ${offset}`);
    return b;
  }

  /** Throws unless blocks [block, block + count) are inside the file system and past the superblock. */
  checkBlocks(block: number, count: number, where: string): void {
    if (!(block > this.firstDataBlock && block + count <= this.blocksCount)) {
      throw this.corrupt(where, count === 1
        ? `block ${block} is outside the file system (${this.firstDataBlock + 1}..${this.blocksCount - 1})`
        : `blocks ${block}..${block + count - 1} are outside the file system (${this.firstDataBlock + 1}..${this.blocksCount - 1})`);
    }
  }

  async readBlocks(block: number, count: number, where: string): Promise<Buffer> {
    this.checkBlocks(block, count, where);
    return this.readBytes(block * this.blockSize, count * this.blockSize, where);
  }

  /** A block of an inode table, through a small cache (consecutive inodes share blocks). */
  private async tableBlock(block: number, where: string): Promise<Buffer> {
    const hit = this.cache.get(block);
    if (hit) {
      this.cache.delete(block);
      this.cache.set(block, hit);
      return hit;
    }
    const b = await this.readBlocks(block, 1, where);
    this.cache.set(block, b);
    if (this.cache.size > this.cacheMax) this.cache.delete(this.cache.keys().next().value as number);
    return b;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Group descriptors

  private groupHasSuper(g: number): boolean {
    return groupHasSuper(g, this.sb);
  }

  /** Block holding group-descriptor block `nr` (the kernel's descriptor_loc()). */
  private descriptorBlock(nr: number): number {
    const sbBlock = this.blockSize === 1024 ? 1 : 0;
    const firstMetaBg = this.sb.readUInt32LE(0x104);
    if (!(this.incompat & INCOMPAT_META_BG) || nr < firstMetaBg) return sbBlock + nr + 1;
    const bg = (this.blockSize / this.descSize) * nr;
    let hasSuper = this.groupHasSuper(bg) ? 1 : 0;
    if (this.blockSize === 1024 && nr === 0 && this.firstDataBlock === 0) hasSuper++;
    return hasSuper + bg * this.blocksPerGroup + this.firstDataBlock;
  }

  async loadGroups(): Promise<void> {
    const bs = this.blockSize;
    const groupCount = this.info.groupCount;
    const perBlock = bs / this.descSize;
    const gdtBlocks = Math.ceil(groupCount / perBlock);
    if (this.incompat & INCOMPAT_META_BG && this.sb.readUInt32LE(0x104) > gdtBlocks) {
      throw this.corrupt('superblock', `first meta block group ${this.sb.readUInt32LE(0x104)} is beyond the ${gdtBlocks} descriptor blocks`);
    }
    const gdtCsum = !this.metadataCsum && (this.roCompat & RO_COMPAT_GDT_CSUM) !== 0;
    const uuid = this.sb.subarray(0x68, 0x78);
    const crc16Seed = gdtCsum ? crc16(0xffff, uuid) : 0;
    const itableBlocks = Math.ceil((this.inodesPerGroup * this.inodeSize) / bs);
    const groups: GroupDesc[] = [];
    for (let nr = 0; nr < gdtBlocks; nr++) {
      const block = this.descriptorBlock(nr);
      const where = `group descriptor block ${nr}`;
      if (block >= this.blocksCount) throw this.corrupt(where, `block ${block} is outside the file system`);
      const buf = await this.readBytes(block * bs, bs, where);
      for (let i = 0; i < perBlock && groups.length < groupCount; i++) {
        const g = groups.length;
        const d = buf.subarray(i * this.descSize, (i + 1) * this.descSize);
        const gwhere = `group descriptor ${g}`;
        const stored = d.readUInt16LE(0x1e);
        if (this.metadataCsum || gdtCsum) {
          const c = this.metadataCsum ? groupDescChecksum(d, g, 'crc32c', this.csumSeed) : groupDescChecksum(d, g, 'crc16', crc16Seed);
          if (c !== stored) throw this.corrupt(gwhere, `checksum mismatch (stored ${hex(stored, 4)}, computed ${hex(c, 4)})`);
        }
        const inodeTable = u64(d, 0x8, this.descSize >= 64 ? 0x28 : undefined);
        if (!(inodeTable > this.firstDataBlock && inodeTable + itableBlocks <= this.blocksCount)) {
          throw this.corrupt(gwhere, `inode table at block ${inodeTable} (${itableBlocks} blocks) is outside the file system`);
        }
        groups.push({ inodeTable, flags: d.readUInt16LE(0x12) });
      }
    }
    this.groups = groups;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Inodes

  async readInode(ino: number, at?: Buffer): Promise<Inode> {
    const where = `inode ${ino}`;
    const ctx = at === undefined ? '' : ` (path '${showPath(at)}')`;
    if (!(ino >= 1 && ino <= this.inodesCount)) throw this.corrupt(where, `inode number out of range 1..${this.inodesCount}${ctx}`);
    const isz = this.inodeSize;
    const index = (ino - 1) % this.inodesPerGroup;
    const group = this.groups[Math.floor((ino - 1) / this.inodesPerGroup)];
    const byte = index * isz;
    const block = await this.tableBlock(group.inodeTable + Math.floor(byte / this.blockSize), where);
    const raw = block.subarray(byte % this.blockSize, byte % this.blockSize + isz);
    const extraIsize = isz > GOOD_OLD_INODE_SIZE ? raw.readUInt16LE(0x80) : 0;
    const generation = raw.readUInt32LE(0x64);
    let seed = 0;
    if (this.metadataCsum) {
      seed = crc32cU32(crc32cU32(this.csumSeed, ino), generation);
      const hiFits = isz > GOOD_OLD_INODE_SIZE && extraIsize >= 4;
      const stored = raw.readUInt16LE(0x7c) + (hiFits ? raw.readUInt16LE(0x82) * 0x10000 : 0);
      const computed = inodeChecksum(raw, seed, isz);
      if (stored !== computed) throw this.corrupt(where, `inode checksum mismatch (stored ${hex(stored)}, computed ${hex(computed)})${ctx}`);
    }
    if (isz > GOOD_OLD_INODE_SIZE && (GOOD_OLD_INODE_SIZE + extraIsize > isz || extraIsize & 3)) {
      throw this.corrupt(where, `i_extra_isize ${extraIsize} is invalid for ${isz}-byte inodes${ctx}`);
    }
    const mode = raw.readUInt16LE(0);
    const flags = raw.readUInt32LE(0x20);
    const isReg = (mode & S_IFMT) === S_IFREG;
    const sizeHigh = isReg || this.incompat & INCOMPAT_LARGEDIR ? raw.readUInt32LE(0x6c) : 0;
    const size = raw.readUInt32LE(0x4) + sizeHigh * 2 ** 32;
    // The kernel's s_maxbytes for extent files is 2^32 blocks; nothing larger can be addressed by any mapping.
    if (size > 2 ** 32 * this.blockSize) throw this.corrupt(where, `size ${size} is absurd for ${this.blockSize}-byte blocks${ctx}`);
    const huge = (this.roCompat & RO_COMPAT_HUGE_FILE) !== 0;
    const blocksRaw = raw.readUInt32LE(0x1c) + (huge ? raw.readUInt16LE(0x74) * 2 ** 32 : 0);
    const inFsBlocks = huge && (flags & EXT4_HUGE_FILE_FL) !== 0;
    const blocks512 = inFsBlocks ? blocksRaw * (this.blockSize / 512) : blocksRaw;
    const blocksFs = inFsBlocks ? blocksRaw : Math.ceil((blocksRaw * 512) / this.blockSize);
    const fileAcl = raw.readUInt32LE(0x68) + (this.incompat & INCOMPAT_64BIT ? raw.readUInt16LE(0x76) * 2 ** 32 : 0);
    // Seconds are signed 32 bits; *_extra holds 2 epoch bits (extending them to 34 bits) and 30 bits of ns.
    let seconds = BigInt(raw.readInt32LE(0x10));
    let ns = 0n;
    if (isz > GOOD_OLD_INODE_SIZE && extraIsize >= 0x88 + 4 - GOOD_OLD_INODE_SIZE) {
      const extra = raw.readUInt32LE(0x88);
      seconds += BigInt(extra & 3) << 32n;
      ns = BigInt(extra >>> 2);
    }
    return {
      ino, raw, mode, flags, size, blocks512, blocksFs, fileAcl,
      uid: raw.readUInt16LE(0x2) + raw.readUInt16LE(0x78) * 0x10000,
      gid: raw.readUInt16LE(0x18) + raw.readUInt16LE(0x7a) * 0x10000,
      links: raw.readUInt16LE(0x1a),
      mtimeNs: seconds * 1_000_000_000n + ns,
      iblock: raw.subarray(0x28, 0x64),
      extraEnd: GOOD_OLD_INODE_SIZE + extraIsize,
      seed,
    };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Block mapping

  /** Initialised runs of `inode` below logical block `end`, in increasing order; holes and unwritten extents are skipped. */
  private runs(inode: Inode, end: number, budget: BlockBudget, signal?: AbortSignal): AsyncGenerator<Run> {
    if (inode.flags & EXT4_EXTENTS_FL) {
      const state = { next: 0, visited: new Set<number>() };
      return this.extentNode(inode, inode.iblock, undefined, -1, end, state, budget, signal);
    }
    return this.blockMapRuns(inode, end, budget, signal);
  }

  private async *extentNode(
    inode: Inode, node: Buffer, block: number | undefined, expectDepth: number, end: number,
    state: { next: number; visited: Set<number> }, budget: BlockBudget, signal?: AbortSignal,
  ): AsyncGenerator<Run> {
    const where = `inode ${inode.ino}`;
    const at = block === undefined ? 'extent tree root' : `extent block ${block}`;
    const magic = node.readUInt16LE(0);
    const entries = node.readUInt16LE(2);
    const max = node.readUInt16LE(4);
    const depth = node.readUInt16LE(6);
    if (magic !== EXTENT_MAGIC) throw this.corrupt(where, `${at}: bad extent header magic ${hex(magic, 4)}`);
    if (max === 0 || max > Math.floor((node.length - 12) / 12) || entries > max) {
      throw this.corrupt(where, `${at}: invalid entry count ${entries} of ${max}`);
    }
    if (block === undefined) {
      if (depth > MAX_EXTENT_DEPTH) throw this.corrupt(where, `extent tree depth ${depth} exceeds ${MAX_EXTENT_DEPTH}`);
    } else {
      if (depth !== expectDepth) throw this.corrupt(where, `${at}: depth ${depth}, expected ${expectDepth}`);
      if (this.metadataCsum) {
        const tail = 12 + 12 * max;
        if (tail + 4 > node.length) throw this.corrupt(where, `${at}: no room for the checksum`);
        const stored = node.readUInt32LE(tail);
        const computed = crc32c(inode.seed, node, 0, tail);
        if (stored !== computed) throw this.corrupt(where, `${at}: checksum mismatch (stored ${hex(stored)}, computed ${hex(computed)})`);
      }
    }
    if (depth > 0 && entries === 0) throw this.corrupt(where, `${at}: empty index node`);
    if (depth === 0) {
      for (let i = 0; i < entries; i++) {
        const o = 12 + 12 * i;
        const lblk = node.readUInt32LE(o);
        const rawLen = node.readUInt16LE(o + 4);
        const pblk = node.readUInt16LE(o + 6) * 2 ** 32 + node.readUInt32LE(o + 8);
        const unwritten = rawLen > EXT_INIT_MAX_LEN;
        const len = unwritten ? rawLen - EXT_INIT_MAX_LEN : rawLen;
        if (len === 0) throw this.corrupt(where, `${at}: extent ${i} has length 0`);
        if (lblk < state.next) throw this.corrupt(where, `${at}: extent ${i} (logical block ${lblk}) overlaps or is out of order`);
        if (lblk + len > 2 ** 32) throw this.corrupt(where, `${at}: extent ${i} goes past logical block 2^32`);
        this.checkBlocks(pblk, len, where);
        state.next = lblk + len;
        if (!unwritten && lblk < end) yield { lblk, pblk, len: Math.min(len, end - lblk) };
      }
      return;
    }
    const children: Array<{ lblk: number; leaf: number }> = [];
    for (let i = 0; i < entries; i++) {
      const o = 12 + 12 * i;
      const lblk = node.readUInt32LE(o);
      const leaf = node.readUInt32LE(o + 4) + node.readUInt16LE(o + 8) * 2 ** 32;
      if (i > 0 && lblk <= children[i - 1].lblk) throw this.corrupt(where, `${at}: index entries out of order`);
      this.checkBlocks(leaf, 1, where);
      children.push({ lblk, leaf });
    }
    for (const c of children) {
      if (c.lblk >= end) break;
      throwIfAborted(signal);
      if (state.visited.has(c.leaf)) throw this.corrupt(where, `${at}: extent block ${c.leaf} is referenced twice (cycle)`);
      state.visited.add(c.leaf);
      budget.take(1);
      const child = await this.readBlocks(c.leaf, 1, where);
      yield* this.extentNode(inode, child, c.leaf, depth - 1, end, state, budget, signal);
    }
  }

  private async *blockMapRuns(inode: Inode, end: number, budget: BlockBudget, signal?: AbortSignal): AsyncGenerator<Run> {
    const where = `inode ${inode.ino}`;
    if (this.blocksCount > 2 ** 32) throw this.corrupt(where, 'block-mapped inode on a file system past 2^32 blocks');
    for (let i = 0; i < 12; i++) {
      const b = inode.iblock.readUInt32LE(i * 4);
      if (b) this.checkBlocks(b, 1, where);
    }
    for (let i = 0; i < 12 && i < end; i++) {
      const b = inode.iblock.readUInt32LE(i * 4);
      if (b) yield { lblk: i, pblk: b, len: 1 };
    }
    const perBlock = this.blockSize / 4;
    let base = 12;
    let span = 1;
    for (let level = 1; level <= 3 && base < end; level++) {
      span *= perBlock;
      const b = inode.iblock.readUInt32LE((11 + level) * 4);
      if (b) yield* this.indirect(inode, b, level, base, end, budget, signal);
      base += span;
    }
  }

  private async *indirect(
    inode: Inode, block: number, level: number, base: number, end: number, budget: BlockBudget, signal?: AbortSignal,
  ): AsyncGenerator<Run> {
    const where = `inode ${inode.ino}`;
    throwIfAborted(signal);
    budget.take(1);
    const buf = await this.readBlocks(block, 1, where);
    const perBlock = this.blockSize / 4;
    for (let i = 0; i < perBlock; i++) {
      const b = buf.readUInt32LE(i * 4);
      if (b && !(b > this.firstDataBlock && b < this.blocksCount)) {
        throw this.corrupt(where, `indirect block ${block} entry ${i}: block ${b} is outside the file system`);
      }
    }
    if (level === 1) {
      let run: Run | undefined;
      for (let i = 0; i < perBlock && base + i < end; i++) {
        const b = buf.readUInt32LE(i * 4);
        if (!b) continue;
        if (run && run.pblk + run.len === b && run.lblk + run.len === base + i) {
          run.len++;
        } else {
          if (run) yield run;
          run = { lblk: base + i, pblk: b, len: 1 };
        }
      }
      if (run) yield run;
      return;
    }
    const span = perBlock ** (level - 1);
    for (let i = 0; i < perBlock && base + i * span < end; i++) {
      const b = buf.readUInt32LE(i * 4);
      if (b) yield* this.indirect(inode, b, level - 1, base + i * span, end, budget, signal);
    }
  }

  /**
   * The mapped runs of `inode` below block `end`, adjacent ones (contiguous both in the file and on disk) merged, in
   * increasing order. The mapping may not visit more blocks than i_blocks counts (nor than the file system has),
   * which bounds the work a corrupt inode can cause.
   */
  private async *mergedRuns(inode: Inode, end: number, signal?: AbortSignal): AsyncGenerator<Run> {
    if (end === 0) return;
    const where = `inode ${inode.ino}`;
    const budget = new BlockBudget(Math.min(inode.blocksFs, this.blocksCount),
      () => this.corrupt(where, `the block map reaches more blocks than the inode's block count (${inode.blocksFs})`));
    let pending: Run | undefined;
    for await (const r of this.runs(inode, end, budget, signal)) {
      throwIfAborted(signal);
      budget.take(r.len);
      if (pending && pending.lblk + pending.len === r.lblk && pending.pblk + pending.len === r.pblk) {
        pending.len += r.len;
        continue;
      }
      if (pending) yield pending;
      pending = { ...r };
    }
    if (pending) yield pending;
  }

  /**
   * The mapped data of `inode` below byte `size` (whole blocks when `clip` is false), as pieces of at most
   * EXT4_PIECE_SIZE bytes in increasing offset order, bounded as {@link mergedRuns} is.
   */
  async *dataPieces(inode: Inode, size: number, clip: boolean, signal?: AbortSignal): AsyncGenerator<DataPiece> {
    const where = `inode ${inode.ino}`;
    for await (const r of this.mergedRuns(inode, Math.ceil(size / this.blockSize), signal)) {
      yield* this.readRun(r, size, clip, where, signal);
    }
  }

  /** Where {@link dataPieces} (with `clip`) finds the bytes of `inode`, without reading them (see FileContent.layout). */
  async dataLayout(inode: Inode, size: number, signal?: AbortSignal): Promise<Array<{ offset: number; length: number; source: number }>> {
    const bs = this.blockSize;
    const out: Array<{ offset: number; length: number; source: number }> = [];
    for await (const r of this.mergedRuns(inode, Math.ceil(size / bs), signal)) {
      const offset = r.lblk * bs;
      out.push({ offset, length: Math.min(r.len * bs, size - offset), source: r.pblk * bs });
    }
    return out;
  }

  private async *readRun(r: Run, size: number, clip: boolean, where: string, signal?: AbortSignal): AsyncGenerator<DataPiece> {
    const bs = this.blockSize;
    const chunk = Math.max(1, Math.floor(EXT4_PIECE_SIZE / bs));
    for (let i = 0; i < r.len; i += chunk) {
      throwIfAborted(signal);
      const n = Math.min(chunk, r.len - i);
      const buf = await this.readBlocks(r.pblk + i, n, where);
      const offset = (r.lblk + i) * bs;
      yield { offset, data: clip && offset + buf.length > size ? buf.subarray(0, size - offset) : buf, source: (r.pblk + i) * bs };
    }
  }

  /** Whole content of a small mapped inode (symlink targets, EA inode values), with holes as zeros. */
  async readSmall(inode: Inode, size: number, signal?: AbortSignal): Promise<Buffer> {
    const out = Buffer.alloc(size);
    for await (const p of this.dataPieces(inode, size, true, signal)) out.set(p.data, p.offset);
    return out;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Extended attributes

  private parseXattrs(
    inode: Inode, buf: Buffer, start: number, end: number, valueBase: number, at: string, out: Array<RawXattr & { inum: number }>,
  ): void {
    const where = `inode ${inode.ino}`;
    let o = start;
    const found: Array<{ index: number; name: Buffer; offs: number; inum: number; size: number }> = [];
    for (;;) {
      if (o + 4 > end) throw this.corrupt(where, `${at}: xattr entries run past the end`);
      if (buf.readUInt32LE(o) === 0) break;
      if (o + 16 > end) throw this.corrupt(where, `${at}: xattr entry header runs past the end`);
      const nameLen = buf[o];
      const next = o + ((16 + nameLen + 3) & ~3);
      if (next > end) throw this.corrupt(where, `${at}: xattr name runs past the end`);
      found.push({
        index: buf[o + 1], name: buf.subarray(o + 16, o + 16 + nameLen), offs: buf.readUInt16LE(o + 2),
        inum: buf.readUInt32LE(o + 4), size: buf.readUInt32LE(o + 8),
      });
      o = next;
    }
    const listEnd = o + 4;
    for (const e of found) {
      if (e.size > XATTR_SIZE_MAX) throw this.corrupt(where, `${at}: xattr value size ${e.size} is absurd`);
      if (e.inum !== 0) {
        if (!(this.incompat & INCOMPAT_EA_INODE)) throw this.corrupt(where, `${at}: xattr value in inode ${e.inum} without the ea_inode feature`);
        if (e.inum < this.firstIno || e.inum > this.inodesCount) throw this.corrupt(where, `${at}: xattr value inode ${e.inum} is invalid`);
        out.push({ index: e.index, name: e.name, value: EMPTY, inum: e.inum });
        continue;
      }
      const v = valueBase + e.offs;
      if (e.size > 0 && (v < listEnd || v + e.size > end)) throw this.corrupt(where, `${at}: xattr value lies outside its area`);
      out.push({ index: e.index, name: e.name, value: buf.subarray(v, v + e.size), inum: 0 });
    }
  }

  /** All xattrs of `inode` as stored (in-inode first, then the xattr block), EA-inode values resolved. */
  async rawXattrs(inode: Inode, signal?: AbortSignal): Promise<RawXattr[]> {
    const where = `inode ${inode.ino}`;
    const found: Array<RawXattr & { inum: number }> = [];
    const isz = this.inodeSize;
    // As the kernel: an i_extra_isize of 0 means the extra space is unused, in-inode xattrs included.
    if (inode.extraEnd > GOOD_OLD_INODE_SIZE && inode.extraEnd + 4 <= isz && inode.raw.readUInt32LE(inode.extraEnd) === XATTR_MAGIC) {
      const first = inode.extraEnd + 4;
      this.parseXattrs(inode, inode.raw, first, isz, first, 'in-inode xattrs', found);
    }
    if (inode.fileAcl !== 0) {
      const block = inode.fileAcl;
      const at = `xattr block ${block}`;
      const buf = await this.readBlocks(block, 1, where);
      if (buf.readUInt32LE(0) !== XATTR_MAGIC) throw this.corrupt(where, `${at}: bad magic ${hex(buf.readUInt32LE(0))}`);
      if (buf.readUInt32LE(8) !== 1) throw this.corrupt(where, `${at}: h_blocks is ${buf.readUInt32LE(8)}, expected 1`);
      if (this.metadataCsum) {
        const c = xattrBlockChecksum(buf, block, this.csumSeed);
        const stored = buf.readUInt32LE(0x10);
        if (stored !== c) throw this.corrupt(where, `${at}: checksum mismatch (stored ${hex(stored)}, computed ${hex(c)})`);
      }
      this.parseXattrs(inode, buf, 32, buf.length, 0, at, found);
    }
    const out: RawXattr[] = [];
    for (const x of found) {
      if (x.inum === 0) {
        out.push(x);
        continue;
      }
      const vi = await this.readInode(x.inum);
      if (!(vi.flags & EXT4_EA_INODE_FL) || (vi.mode & S_IFMT) !== S_IFREG) {
        throw this.corrupt(where, `xattr value inode ${x.inum} is not an EA inode`);
      }
      if (vi.size > XATTR_SIZE_MAX) throw this.corrupt(where, `xattr value inode ${x.inum} has absurd size ${vi.size}`);
      out.push({ index: x.index, name: x.name, value: await this.readSmall(vi, vi.size, signal) });
    }
    return out;
  }

  /** The VFS view of raw xattrs: full names, ACLs in xattr form, system.data (inline data) left out; sorted. */
  publicXattrs(inode: Inode, raw: RawXattr[]): Xattr[] {
    const where = `inode ${inode.ino}`;
    const out: Xattr[] = [];
    for (const x of raw) {
      if (x.index === XATTR_INDEX_SYSTEM && x.name.equals(Buffer.from('data'))) continue;
      const prefix = XATTR_PREFIXES[x.index];
      if (prefix === undefined) throw this.corrupt(where, `xattr name index ${x.index} is unknown`);
      const name = prefix + x.name.toString('utf8');
      let value: Uint8Array = x.value;
      if (x.index === XATTR_INDEX_ACL_ACCESS || x.index === XATTR_INDEX_ACL_DEFAULT) {
        const acl = aclFromDisk(x.value);
        if (acl === undefined) {
          if (x.value.length === 4 && x.value.readUInt32LE(0) === 1) continue; // an empty ACL: no ACL
          throw this.corrupt(where, `xattr ${name}: malformed ACL`);
        }
        value = acl;
      }
      if (out.some((y) => y.name === name)) throw this.corrupt(where, `xattr ${name} is stored twice`);
      out.push({ name, value });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Inline data (first 60 bytes in i_block, the rest in system.data), `size` bytes. */
  inlineData(inode: Inode, raw: RawXattr[], size: number): Buffer {
    const where = `inode ${inode.ino}`;
    const data = raw.find((x) => x.index === XATTR_INDEX_SYSTEM && x.name.equals(Buffer.from('data')));
    if (!data) throw this.corrupt(where, 'inline-data inode without a system.data xattr');
    if (size <= 60) return inode.iblock.subarray(0, size);
    if (size > 60 + data.value.length) throw this.corrupt(where, `inline data size ${size} exceeds the ${60 + data.value.length} bytes stored`);
    return Buffer.concat([inode.iblock, data.value.subarray(0, size - 60)]);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Directories

  private parseDirents(inode: Inode, buf: Buffer, start: number, end: number, at: string, out: DirChild[]): void {
    const where = `inode ${inode.ino}`;
    const bs = this.blockSize;
    let o = start;
    while (o < end) {
      if (o + 8 > end) throw this.corrupt(where, `${at}: directory entry at ${o - start} runs past the end`);
      const ino = buf.readUInt32LE(o);
      let recLen = buf.readUInt16LE(o + 4);
      if (bs >= 65536) recLen = recLen === 65535 || recLen === 0 ? bs : (recLen & 65532) | ((recLen & 3) << 16);
      const nameLen = buf[o + 6];
      if (recLen < 12 || recLen % 4 !== 0 || recLen < 8 + nameLen || o + recLen > end) {
        throw this.corrupt(where, `${at}: directory entry at ${o - start} has invalid length ${recLen} (name length ${nameLen})`);
      }
      if (ino !== 0) {
        if (nameLen === 0) throw this.corrupt(where, `${at}: directory entry at ${o - start} has an empty name`);
        const name = buf.subarray(o + 8, o + 8 + nameLen);
        if (!(name.equals(DOT) || name.equals(DOTDOT))) {
          if (name.includes(0x2f) || name.includes(0)) throw this.corrupt(where, `${at}: name '${name.toString('utf8')}' contains '/' or NUL`);
          if (ino > this.inodesCount || (ino < this.firstIno && ino !== ROOT_INO) || this.internalInodes.has(ino)) {
            throw this.corrupt(where, `${at}: entry '${name.toString('utf8')}' names invalid inode ${ino}`);
          }
          out.push({ name: Buffer.from(name), ino });
        }
      }
      o += recLen;
    }
  }

  private verifyDirBlock(inode: Inode, buf: Buffer, lblk: number, isDx: boolean, at: string): void {
    const where = `inode ${inode.ino}`;
    const bs = this.blockSize;
    const first = buf.readUInt16LE(4);
    const firstLen = bs >= 65536 && (first === 65535 || first === 0) ? bs : first;
    if (isDx && (lblk === 0 || (buf.readUInt32LE(0) === 0 && firstLen === bs))) {
      // An htree node: the checksum sits in a dx_tail after `limit` dx entries.
      let countOffset: number;
      if (firstLen === bs) {
        countOffset = 8;
      } else if (firstLen === 12 && buf.readUInt16LE(16) === bs - 12 && buf.readUInt32LE(24) === 0 && buf[29] === 8) {
        countOffset = 32;
      } else {
        throw this.corrupt(where, `${at}: htree node header is invalid`);
      }
      const limit = buf.readUInt16LE(countOffset);
      const count = buf.readUInt16LE(countOffset + 2);
      const tail = countOffset + limit * 8;
      if (count > limit || tail + 8 > bs) throw this.corrupt(where, `${at}: htree node count ${count} / limit ${limit} is invalid`);
      let c = crc32c(inode.seed, buf, 0, countOffset + count * 8);
      c = crc32c(c, buf, tail, tail + 4);
      c = crc32cZeros(c, 4);
      const stored = buf.readUInt32LE(tail + 4);
      if (stored !== c) throw this.corrupt(where, `${at}: htree node checksum mismatch (stored ${hex(stored)}, computed ${hex(c)})`);
      return;
    }
    const t = bs - 12;
    if (buf.readUInt32LE(t) !== 0 || buf.readUInt16LE(t + 4) !== 12 || buf[t + 6] !== 0 || buf[t + 7] !== 0xde) {
      throw this.corrupt(where, `${at}: directory block has no checksum tail`);
    }
    const stored = buf.readUInt32LE(t + 8);
    const computed = crc32c(inode.seed, buf, 0, t);
    if (stored !== computed) throw this.corrupt(where, `${at}: directory block checksum mismatch (stored ${hex(stored)}, computed ${hex(computed)})`);
  }

  /** Children of a directory (without '.' and '..'), sorted by name bytes; a linear scan (htree index nodes hold no live entries). */
  async listDir(inode: Inode, raw: RawXattr[], path: Buffer, signal?: AbortSignal): Promise<DirChild[]> {
    const where = `inode ${inode.ino}`;
    const out: DirChild[] = [];
    if (inode.flags & EXT4_INLINE_DATA_FL) {
      // i_block: the parent's inode number, then entries; system.data continues them.
      const data = raw.find((x) => x.index === XATTR_INDEX_SYSTEM && x.name.equals(Buffer.from('data')));
      if (!data) throw this.corrupt(where, 'inline directory without a system.data xattr');
      this.parseDirents(inode, inode.iblock, 4, 60, 'inline directory', out);
      if (data.value.length) this.parseDirents(inode, data.value, 0, data.value.length, 'inline directory (system.data)', out);
    } else {
      const bs = this.blockSize;
      const isDx = (this.compat & COMPAT_DIR_INDEX) !== 0 && (inode.flags & EXT4_INDEX_FL) !== 0;
      for await (const piece of this.dataPieces(inode, inode.size, false, signal)) {
        const data = piece.data as Buffer;
        for (let o = 0; o < data.length; o += bs) {
          const lblk = (piece.offset + o) / bs;
          const block = data.subarray(o, o + bs);
          const at = `directory block ${lblk}`;
          if (this.metadataCsum) this.verifyDirBlock(inode, block, lblk, isDx, at);
          this.parseDirents(inode, block, 0, bs, at, out);
        }
      }
    }
    out.sort((a, b) => Buffer.compare(a.name, b.name));
    for (let i = 1; i < out.length; i++) {
      if (out[i].name.equals(out[i - 1].name)) {
        throw this.corrupt(where, `directory '${showPath(path)}' has two entries named '${out[i].name.toString('utf8')}'`);
      }
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Entries

  /** Rejects inodes a directory entry may not lead to; returns the entry type. */
  checkInode(inode: Inode, path: Buffer): EntryType {
    const where = `inode ${inode.ino}`;
    const ctx = ` (path '${showPath(path)}')`;
    const type = typeOfMode(inode.mode);
    if (type === undefined) throw this.corrupt(where, `unknown file type ${(inode.mode & S_IFMT).toString(8)}${ctx}`);
    if (inode.links === 0) throw this.corrupt(where, `deleted inode (link count 0) is referenced${ctx}`);
    if (inode.flags & EXT4_EA_INODE_FL) throw this.corrupt(where, `an EA inode is referenced from a directory${ctx}`);
    if (inode.flags & EXT4_ENCRYPT_FL) throw new UnsupportedInputError(this.name, `inode ${inode.ino} ('${showPath(path)}') is encrypted`);
    if (inode.flags & EXT4_VERITY_FL) throw new UnsupportedInputError(this.name, `inode ${inode.ino} ('${showPath(path)}') is an fs-verity file`);
    if (inode.flags & EXT4_INLINE_DATA_FL) {
      if (!(this.incompat & INCOMPAT_INLINE_DATA)) throw this.corrupt(where, `inline-data flag without the inline_data feature${ctx}`);
      if (inode.flags & EXT4_EXTENTS_FL) throw this.corrupt(where, `both the inline-data and the extents flags are set${ctx}`);
    }
    if (inode.flags & EXT4_COMPR_FL && this.incompat & INCOMPAT_COMPRESSION) {
      throw new UnsupportedInputError(this.name, `inode ${inode.ino} ('${showPath(path)}') is compressed`);
    }
    return type;
  }

  async symlinkTarget(inode: Inode, raw: RawXattr[], path: Buffer, signal?: AbortSignal): Promise<Buffer> {
    const where = `inode ${inode.ino}`;
    const size = inode.size;
    if (size === 0 || size > Math.min(this.blockSize, 65536)) throw this.corrupt(where, `symlink '${showPath(path)}' has invalid length ${size}`);
    let target: Buffer;
    if (inode.flags & EXT4_INLINE_DATA_FL) {
      target = this.inlineData(inode, raw, size);
    } else {
      const eaBlocks = inode.fileAcl !== 0 ? this.clusterSize / 512 : 0;
      // The kernel's ext4_inode_is_fast_symlink(): no data blocks besides the xattr block.
      if (inode.blocks512 - eaBlocks === 0) {
        if (size >= 60) throw this.corrupt(where, `fast symlink '${showPath(path)}' has length ${size}`);
        target = inode.iblock.subarray(0, size);
      } else {
        target = await this.readSmall(inode, size, signal);
      }
    }
    const nul = target.indexOf(0);
    if (nul === 0) throw this.corrupt(where, `symlink '${showPath(path)}' has an empty target`);
    return Buffer.from(nul < 0 ? target : target.subarray(0, nul));
  }

  rdevOf(inode: Inode): { major: number; minor: number } {
    const old = inode.iblock.readUInt32LE(0);
    if (old !== 0) return { major: (old >>> 8) & 0xff, minor: old & 0xff };
    const dev = inode.iblock.readUInt32LE(4);
    return { major: (dev & 0xfff00) >>> 8, minor: (dev & 0xff) | ((dev >>> 12) & 0xfff00) };
  }

  fileContent(inode: Inode, raw: RawXattr[], outer?: AbortSignal): FileContent {
    const size = inode.size;
    if (inode.flags & EXT4_INLINE_DATA_FL) {
      const data = this.inlineData(inode, raw, size);
      return {
        size,
        async *read(signal?: AbortSignal): AsyncGenerator<DataPiece> {
          throwIfAborted(outer, signal);
          if (data.length) yield { offset: 0, data };
        },
      };
    }
    const vol = this;
    return {
      size,
      read(signal?: AbortSignal): AsyncIterable<DataPiece> {
        throwIfAborted(outer, signal);
        const combined = outer && signal ? AbortSignal.any([outer, signal]) : outer ?? signal;
        return vol.dataPieces(inode, size, true, combined);
      },
      layout(signal?: AbortSignal) {
        throwIfAborted(outer, signal);
        return vol.dataLayout(inode, size, outer && signal ? AbortSignal.any([outer, signal]) : outer ?? signal);
      },
    };
  }
}

/**
 * Opens the ext2/ext3/ext4 file system in `source` read-only. `name` is the file named in errors.
 *
 * `reader.entries()` yields the whole tree: the root ('') first, then depth-first with each directory before its
 * children, names sorted by bytes. Entries carry type, the 12 mode bits, 32-bit uid/gid, mtime in ns (seconds only
 * for 128-byte inodes), xattrs (in-inode, xattr block and EA inodes; ACLs converted to the getfattr form; the
 * inline-data `system.data` left out), symlink targets, device numbers and hardlinks (second and later names of an
 * inode are 'hardlink' entries naming the first path yielded). A file's `content.read()` yields pieces of at most
 * 1 MiB for mapped, initialised blocks only: holes and unwritten extents are gaps. Pieces are fresh buffers from the
 * source (or views of its memory): borrowed, per the DataPiece contract.
 *
 * Throws CorruptInputError (naming the file and the structure: 'superblock', 'group descriptor 3', 'inode 12', ...)
 * for anything malformed, including metadata_csum checksum mismatches, and UnsupportedInputError for a journal that
 * needs recovery (run e2fsck first), encrypted or fs-verity inodes, compression, dirdata, Hurd file systems.
 * `entries()` and `content.read()` throw the same, plus AbortedError.
 *
 * @example
 * const src = await fileBlockSource('rootfs.ext4');
 * const { info, reader } = await openExt4(src, 'rootfs.ext4');
 * for await (const e of reader.entries()) console.log(e.path.toString(), e.type);
 * await src.close();
 */
export async function openExt4(source: BlockSource, name: string, options: { signal?: AbortSignal } = {}): Promise<{ info: Ext4Info; reader: ImageReader }> {
  if (source.size < SUPERBLOCK_OFFSET + 1024) {
    throw new CorruptInputError(name, 'offset 0x400', `image of ${source.size} bytes is too small for an ext2/ext3/ext4 superblock`);
  }
  const sb = Buffer.from(await source.read(SUPERBLOCK_OFFSET, 1024));
  const vol = new Ext4Volume(source, name, sb);
  await vol.loadGroups();
  const outer = options.signal;
  const description: SourceDescription = { format: vol.info.type, name, size: source.size };

  async function entryOf(path: Buffer, ino: number, firstNames: Map<number, Buffer>, signal?: AbortSignal): Promise<{ entry: ImageEntry; inode: Inode; raw: RawXattr[] }> {
    const inode = await vol.readInode(ino, path);
    const type = vol.checkInode(inode, path);
    const raw = await vol.rawXattrs(inode, signal);
    const entry: ImageEntry = {
      path, type, mode: inode.mode & 0o7777, uid: inode.uid, gid: inode.gid, mtimeNs: inode.mtimeNs,
      xattrs: vol.publicXattrs(inode, raw), inode: ino,
    };
    if (type !== 'dir' && inode.links > 1) {
      const first = firstNames.get(ino);
      if (first !== undefined) return { entry: { ...entry, type: 'hardlink', linkTarget: first }, inode, raw };
      firstNames.set(ino, path);
    }
    switch (type) {
      case 'file':
        entry.content = vol.fileContent(inode, raw, outer);
        break;
      case 'symlink':
        entry.linkTarget = await vol.symlinkTarget(inode, raw, path, signal);
        break;
      case 'chr':
      case 'blk':
        entry.rdev = vol.rdevOf(inode);
        break;
      default:
        break;
    }
    return { entry, inode, raw };
  }

  const reader: ImageReader = {
    description,
    async *entries(signal?: AbortSignal): AsyncGenerator<ImageEntry> {
      yield* walkEntries<DirChild>(outer, signal, (sig) => {
        const firstNames = new Map<number, Buffer>();
        return inodeTreeWalk(ROOT_INO, (path, ino) => entryOf(path, ino, firstNames, sig),
          ({ inode, raw }, path) => vol.listDir(inode, raw, path, sig), (where, reason) => vol.corrupt(where, reason));
      });
    },
  };
  return { info: vol.info, reader };
}

/**
 * mke2fs arguments that recreate a file system shaped like `info` (same type, sizes, geometry, features, uuid, label,
 * hash seed): `mke2fs -F ...args, image` (then `-d tree` to fill it). Run-time state (free counts, mount times,
 * orphan and recovery flags) is not reproduced.
 */
export function mke2fsArgs(info: Ext4Info): string[] {
  const notSettable = new Set([
    'needs_recovery', 'orphan_present', 'journal_dev', 'snapshot_bitmap', 'lazy_bg', 'replica', 'compression', 'dirdata',
    'shared_blocks',
  ]);
  const features = [...info.features.compat, ...info.features.incompat, ...info.features.roCompat]
    .filter((f) => !notSettable.has(f) && !f.startsWith('FEATURE_'));
  const args = [
    '-t', info.type, '-b', String(info.blockSize), '-I', String(info.inodeSize), '-N', String(info.inodesCount),
    '-g', String(info.blocksPerGroup), '-O', ['none', ...features].join(','), '-U', info.uuid,
    '-r', String(info.revision),
  ];
  if (info.label) args.push('-L', info.label);
  if (['continue', 'remount-ro', 'panic'].includes(info.errorBehavior)) args.push('-e', info.errorBehavior);
  if (info.features.roCompat.includes('bigalloc')) args.push('-C', String(info.clusterSize));
  if (info.flexBgSize) args.push('-G', String(info.flexBgSize));
  if (info.journal && 'blocks' in info.journal && info.journal.blocks) args.push('-J', `size=${Math.max(1, Math.round((info.journal.blocks * info.blockSize) / (1 << 20)))}`);
  const ext = [`hash_seed=${info.hashSeed}`];
  if (info.raidStride) ext.push(`stride=${info.raidStride}`);
  if (info.raidStripeWidth) ext.push(`stripe_width=${info.raidStripeWidth}`);
  if (info.encoding) ext.push(`encoding=${info.encoding.name}`, ...(info.encoding.flags.length ? [`encoding_flags=${info.encoding.flags.join(',')}`] : []));
  args.push('-E', ext.join(','));
  // -m takes a percentage; tune2fs -r sets the exact count afterwards.
  args.push('-m', ((100 * info.reservedBlocks) / info.blocksCount).toFixed(6));
  if (info.lastMountedOn) args.push('-M', info.lastMountedOn);
  return args;
}
