/**
 * XFS file systems as ImageReaders: a read-only parser of the on-disk format described in "XFS Algorithms & Data
 * Structures" and the Linux tree's fs/xfs/libxfs/xfs_format.h, xfs_da_format.h and xfs_attr_leaf.h, that
 * bounds-checks every structure it reads against the region and verifies the v5 (CRC) checksums — crc32c of the
 * superblock, inodes, extent btree blocks, directory data blocks, attribute leaf/node/remote blocks and remote
 * symlink blocks — together with their owner, block number and file-system uuid stamps.
 *
 * Why our own reader: there is no JavaScript XFS library, and xfsprogs has no library interface; the parts a
 * faithful import needs (superblock, inode lookup by number, the three fork formats, five directory forms, three
 * attribute forms) are small.
 *
 * Read: v5 (crc=1) and v4 (with version-2 directories) file systems; v3 inodes with bigtime timestamps and nrext64
 * extent counts; data forks in local, extents and btree (bmbt) form; short-form, block, leaf, node and btree
 * directories (entries come from their data blocks; the hash/leaf/free-index blocks only serve lookups and are only
 * checked: magic, and checksum, owner and address on v5); ftype;
 * inline and remote symlinks; sparse files (holes and unwritten extents read as gaps); reflinked files (two inodes
 * mapping the same blocks: each file yields its bytes, the disk committer keeps one claim); hardlinks; device files,
 * fifos and sockets; xattrs in short-form, leaf and node form with local or remote values, in the user, trusted
 * (root) and security namespaces. XFS keeps POSIX ACLs as the root-namespace attributes SGI_ACL_FILE and
 * SGI_ACL_DEFAULT in its own big-endian layout; they come out as `system.posix_acl_access` / `system.posix_acl_default`
 * in the xattr form the kernel's getxattr gives (version 2, little-endian), as the ext4 reader does. Parent pointers
 * (the parent feature's internal attributes) are left out.
 *
 * Not read: realtime files (UnsupportedInputError), the metadir feature, a log that needs recovery (as far as the
 * superblock says: log_incompat bits, needsrepair). Directory hash and free-index entries are not checked against
 * the data blocks' entries.
 */
import { inodeTreeWalk, showPath, throwIfAborted, walkEntries } from './depth-first.js';
import { type DataPiece, type EntryType, type FileContent, type ImageEntry, type ImageReader, type SourceDescription, type Xattr, DIRENT_TYPE_CODES, S_IFMT, typeOfMode } from './types.js';
import { crc32c, crc32cZeros, formatUuid, hex, type BlockSource } from './ext4.js';
import { CorruptInputError, UnsupportedInputError } from '../errors.js';

// ---------------------------------------------------------------------------------------------------------------
// On-disk constants (names as in the kernel's fs/xfs/libxfs)

const SB_MAGIC = 0x58465342; // 'XFSB'
const SB_CRC_OFF = 224;
const DINODE_MAGIC = 0x494e; // 'IN'
const DINODE_CRC_OFF = 100;
const DINODE_V3_SIZE = 176;
const DINODE_V2_SIZE = 100;

const FMT_DEV = 0;
const FMT_LOCAL = 1;
const FMT_EXTENTS = 2;
const FMT_BTREE = 3;

const BMAP_MAGIC = 0x424d4150; // 'BMAP'
const BMAP_CRC_MAGIC = 0x424d4133; // 'BMA3'
const LBLOCK_HDR_V4 = 24;
const LBLOCK_HDR_V5 = 72;
const LBLOCK_CRC_OFF = 64;
/** XFS_BM_MAXLEVELS is at most 9 for any geometry; deeper is a loop or garbage. */
const BMBT_MAX_LEVELS = 9;

const DIR2_BLOCK_MAGIC = 0x58443242; // 'XD2B'
const DIR3_BLOCK_MAGIC = 0x58444233; // 'XDB3'
const DIR2_DATA_MAGIC = 0x58443244; // 'XD2D'
const DIR3_DATA_MAGIC = 0x58444433; // 'XDD3'
const DIR3_DATA_CRC_OFF = 4;
const DIR2_DATA_HDR_V4 = 16;
const DIR3_DATA_HDR_V5 = 64;
const DATA_FREE_TAG = 0xffff;
/** Directory data lives below XFS_DIR2_LEAF_OFFSET (32 GiB); leaf and free-index blocks above it. */
const DIR2_LEAF_OFFSET_BYTES = 2 ** 35;

const DIR2_LEAF1_MAGIC = 0xd2f1;
const DIR3_LEAF1_MAGIC = 0x3df1;
const DIR2_LEAFN_MAGIC = 0xd2ff;
const DIR3_LEAFN_MAGIC = 0x3dff;
const DIR2_FREE_MAGIC = 0x58443246; // 'XD2F'
const DIR3_FREE_MAGIC = 0x58444633; // 'XDF3'
const DA_NODE_MAGIC = 0xfebe;
const DA3_NODE_MAGIC = 0x3ebe;
const ATTR_LEAF_MAGIC = 0xfbee;
const ATTR3_LEAF_MAGIC = 0x3bee;
const DA3_CRC_OFF = 12;
const DA_BLKINFO_V4 = 12;
const DA_BLKINFO_V5 = 56;
const DA_NODE_MAXDEPTH = 5;
const ATTR3_RMT_MAGIC = 0x5841524d; // 'XARM'
const ATTR3_RMT_HDR = 56;
const SYMLINK_MAGIC = 0x58534c4d; // 'XSLM'
const SYMLINK_HDR = 56;
const SYMLINK_MAXLEN = 1024;
const RMT_CRC_OFF = 12;
const XATTR_SIZE_MAX = 1 << 16;

const ATTR_LOCAL = 0x01;
const ATTR_ROOT = 0x02;
const ATTR_SECURE = 0x04;
const ATTR_PARENT = 0x08;
const ATTR_INCOMPLETE = 0x80;

const DIFLAG_REALTIME = 0x1;
const DIFLAG2_BIGTIME = 0x8;
const DIFLAG2_NREXT64 = 0x10;

/** XFS_DIR3_FT_* → the entry type an inode of that mode has. */
const FTYPES: Record<number, EntryType> = Object.fromEntries(Object.entries(DIRENT_TYPE_CODES).map(([type, code]) => [code, type as EntryType]));

const INCOMPAT = { ftype: 0x1, sparse: 0x2, meta_uuid: 0x4, bigtime: 0x8, needsrepair: 0x10, nrext64: 0x20, exchange: 0x40, parent: 0x80 };
const RO_COMPAT = { finobt: 0x1, rmapbt: 0x2, reflink: 0x4, inobtcount: 0x8 };
const V4_BITS: Array<[number, string]> = [
  [0x10, 'attr'], [0x20, 'nlink'], [0x40, 'quota'], [0x80, 'align'], [0x100, 'dalign'], [0x400, 'logv2'], [0x800, 'sector'],
  [0x1000, 'extflg'], [0x2000, 'dirv2'], [0x4000, 'asciici'], [0x8000, 'morebits'],
];
const FEATURES2: Array<[number, string]> = [[0x2, 'lazycount'], [0x8, 'attr2'], [0x80, 'projid32bit'], [0x100, 'crc'], [0x200, 'ftype']];

/** Largest piece a file's `read()` yields. */
export const XFS_PIECE_SIZE = 1 << 20;
/** Bytes of inode blocks kept in memory (inodes of one directory are usually neighbours). */
const INODE_CACHE_BLOCKS = 1024;

const SGI_ACL_FILE = 'SGI_ACL_FILE';
const SGI_ACL_DEFAULT = 'SGI_ACL_DEFAULT';
const ACL_ACCESS_XATTR = 'system.posix_acl_access';
const ACL_DEFAULT_XATTR = 'system.posix_acl_default';

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

// ---------------------------------------------------------------------------------------------------------------
// Public types

/** What {@link openXfs} reports about an XFS file system (its superblock). */
export interface XfsInfo {
  type: 'xfs';
  /** Superblock version: 5 (metadata CRCs) or 4. */
  version: 4 | 5;
  uuid: string;
  /** The metadata uuid stamped into every v5 block (equal to uuid unless `xfs_admin -U` changed it). */
  metaUuid: string;
  label: string;
  blockSize: number;
  sectorSize: number;
  inodeSize: number;
  /** Directory block size (`mkfs.xfs -n size=`). */
  dirBlockSize: number;
  agCount: number;
  agBlocks: number;
  dataBlocks: number;
  freeBlocks: number;
  inodeCount: number;
  freeInodes: number;
  /** Internal log: its first block and length in blocks (logStart 0: external log). */
  logStart: number;
  logBlocks: number;
  realtimeBlocks: number;
  stripeUnit: number;
  stripeWidth: number;
  rootInode: number;
  /** Feature names as xfs_info and mkfs.xfs spell them. */
  features: { compat: string[]; incompat: string[]; roCompat: string[] };
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** A big-endian u64 as a number; undefined past 2^53 (no valid block or inode number gets there). */
function u64(b: Buffer, at: number): number | undefined {
  const v = b.readUInt32BE(at) * 2 ** 32 + b.readUInt32BE(at + 4);
  return Number.isSafeInteger(v) ? v : undefined;
}

/**
 * The CRC XFS stores little-endian at `off` of a metadata buffer: CRC-32C (seed ~0, final inversion) of `buf[0, len)`
 * with the checksum field taken as zero (xfs_start_cksum_safe / xfs_end_cksum).
 */
export function xfsChecksum(buf: Buffer, off: number, len = buf.length): number {
  let c = crc32c(0xffffffff, buf, 0, off);
  c = crc32cZeros(c, 4);
  c = crc32c(c, buf, off + 4, len);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Whether `b` (at least 512 bytes) starts with a plausible XFS superblock: the magic, a version 4 or 5, power-of-two
 * block and sector sizes and non-zero geometry. CRC and the rest are checked by {@link openXfs}; a bare 'XFSB' with
 * nothing sane behind it is not taken for a file system.
 */
export function isXfsSuperblock(b: Buffer): boolean {
  if (b.length < 512 || b.readUInt32BE(0) !== SB_MAGIC) return false;
  const pow2 = (n: number, lo: number, hi: number) => n >= lo && n <= hi && (n & (n - 1)) === 0;
  const version = b.readUInt16BE(100) & 0xf;
  return (version === 4 || version === 5) && pow2(b.readUInt32BE(4), 512, 65536) && pow2(b.readUInt16BE(102), 512, 32768)
    && pow2(b.readUInt16BE(104), 256, 2048) && b.readUInt32BE(84) > 0 && b.readUInt32BE(88) > 0;
}

/**
 * Converts an ACL from XFS's on-disk form (be32 count, then 12-byte entries: be32 tag, be32 id, be16 perm, be16 pad)
 * to the xattr form the VFS gives getfattr (le32 version 2, then 8-byte entries: le16 tag, le16 perm, le32 id, id
 * 0xffffffff for entries that have none). Undefined when malformed or empty (the kernel then reports no ACL).
 */
export function aclFromXfs(v: Buffer): Buffer | undefined {
  if (v.length < 4) return undefined;
  const count = v.readUInt32BE(0);
  if (count === 0 || v.length !== 4 + count * 12) return undefined;
  const out = Buffer.alloc(4 + count * 8);
  out.writeUInt32LE(2, 0);
  for (let i = 0; i < count; i++) {
    const o = 4 + i * 12;
    const tag = v.readUInt32BE(o);
    if (![0x01, 0x02, 0x04, 0x08, 0x10, 0x20].includes(tag)) return undefined;
    out.writeUInt16LE(tag, 4 + i * 8);
    out.writeUInt16LE(v.readUInt16BE(o + 8), 6 + i * 8);
    out.writeUInt32LE(tag === 0x02 || tag === 0x08 ? v.readUInt32BE(o + 4) : 0xffffffff, 8 + i * 8);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Internal structures

interface Inode {
  ino: number;
  mode: number;
  version: number;
  format: number;
  aformat: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  nblocks: number;
  nextents: number;
  anextents: number;
  flags: number;
  mtimeNs: bigint;
  dataFork: Buffer;
  /** Undefined when the inode has no attribute fork (di_forkoff 0). */
  attrFork: Buffer | undefined;
}

/** One mapping of the bmbt: `len` blocks from logical block `off` at file-system block `fsb`. */
interface Extent {
  off: number;
  fsb: number;
  len: number;
  unwritten: boolean;
}

interface DirChild {
  name: Buffer;
  ino: number;
  /** XFS_DIR3_FT_* of the entry (0 without ftype). */
  ftype: number;
  /** Where the entry was found, for messages. */
  at: string;
}

interface RawAttr {
  flags: number;
  name: Buffer;
  value: Buffer;
}

// ---------------------------------------------------------------------------------------------------------------
// The volume

class XfsVolume {
  readonly info: XfsInfo;
  readonly blockSize: number;
  private readonly v5: boolean;
  private readonly ftype: boolean;
  private readonly agBlkLog: number;
  private readonly inopbLog: number;
  private readonly agBlocks: number;
  private readonly agCount: number;
  private readonly inodeSize: number;
  private readonly dirBlockSize: number;
  private readonly dirBlockFsbs: number;
  private readonly metaUuid: Buffer;
  /** Bytes of the data device the file system covers (dblocks × block size), never past the region. */
  private readonly fsBytes: number;
  private readonly inodeBlocks = new Map<number, Buffer>();

  constructor(readonly source: BlockSource, readonly name: string, sb: Buffer) {
    const bad = (reason: string) => this.corrupt('superblock', reason);
    if (sb.readUInt32BE(0) !== SB_MAGIC) throw bad(`bad magic ${hex(sb.readUInt32BE(0))}, expected ${hex(SB_MAGIC)} ('XFSB')`);
    const versionnum = sb.readUInt16BE(100);
    const version = versionnum & 0xf;
    if (version === 0 || version > 5) throw bad(`version ${version} is invalid`);
    if (version < 4) throw new UnsupportedInputError(name, `XFS superblock version ${version} (viva reads versions 4 and 5)`);
    this.v5 = version === 5;
    if (this.v5) {
      const stored = sb.readUInt32LE(SB_CRC_OFF);
      const computed = xfsChecksum(sb, SB_CRC_OFF);
      if (stored !== computed) throw bad(`checksum mismatch (stored ${hex(stored)}, computed ${hex(computed)})`);
    }
    const bs = sb.readUInt32BE(4);
    const blockLog = sb[120]!;
    const sectSize = sb.readUInt16BE(102);
    const inodeSize = sb.readUInt16BE(104);
    const inopblock = sb.readUInt16BE(106);
    const inopbLog = sb[123]!;
    const agBlocks = sb.readUInt32BE(84);
    const agCount = sb.readUInt32BE(88);
    const agBlkLog = sb[124]!;
    const dblocks = u64(sb, 8);
    const dirBlkLog = sb[192]!;
    if (bs < 512 || bs > 65536 || 1 << blockLog !== bs) throw bad(`block size ${bs} does not match its log ${blockLog}`);
    if (sectSize < 512 || sectSize > bs || (sectSize & (sectSize - 1)) !== 0) throw bad(`sector size ${sectSize} is invalid`);
    if (inodeSize < 256 || inodeSize > 2048 || 1 << sb[122]! !== inodeSize || inodeSize > bs) throw bad(`inode size ${inodeSize} is invalid`);
    if (inopblock !== bs / inodeSize || 1 << inopbLog !== inopblock) throw bad(`${inopblock} inodes per block do not match the block and inode sizes`);
    if (agCount === 0 || agBlocks < 64) throw bad(`${agCount} allocation groups of ${agBlocks} blocks`);
    if (agBlkLog > 31 || 2 ** agBlkLog < agBlocks || 2 ** (agBlkLog - 1) >= agBlocks) throw bad(`AG block log ${agBlkLog} does not fit ${agBlocks} blocks per AG`);
    if (dblocks === undefined || dblocks === 0 || dblocks > agCount * agBlocks || dblocks <= (agCount - 1) * agBlocks) {
      throw bad(`${dblocks ?? 'an absurd number of'} data blocks do not fit ${agCount} AGs of ${agBlocks} blocks`);
    }
    if (dblocks * bs > source.size) throw bad(`${dblocks} blocks of ${bs} bytes exceed the ${source.size}-byte image (truncated?)`);
    if (dirBlkLog > 6 || (bs << dirBlkLog) > 65536) throw bad(`directory block log ${dirBlkLog} is invalid`);
    if (sb[126] !== 0) throw new UnsupportedInputError(name, 'the XFS file system is still being made (sb_inprogress is set)');
    const features2 = sb.readUInt32BE(200);
    const compat = this.v5 ? sb.readUInt32BE(208) : 0;
    const roCompat = this.v5 ? sb.readUInt32BE(212) : 0;
    const incompat = this.v5 ? sb.readUInt32BE(216) : 0;
    const logIncompat = this.v5 ? sb.readUInt32BE(220) : 0;
    if (!this.v5 && !(versionnum & 0x2000)) throw new UnsupportedInputError(name, 'XFS v4 file system with version-1 directories');
    if (!this.v5 && versionnum & 0x0200) throw new UnsupportedInputError(name, 'XFS v4 file system with the shared bit set');
    const known = Object.values(INCOMPAT).reduce((a, b) => a | b, 0);
    if (incompat & ~known) throw new UnsupportedInputError(name, `XFS incompatible features ${hex(incompat & ~known)} (viva knows ${hex(known)})`);
    if (incompat & INCOMPAT.needsrepair) throw new UnsupportedInputError(name, 'the XFS file system needs repair (run xfs_repair)');
    if (logIncompat) throw new UnsupportedInputError(name, `the XFS log holds items of incompatible log features ${hex(logIncompat)}: it needs recovery (mount and unmount it, or run xfs_repair)`);
    this.blockSize = bs;
    this.agBlkLog = agBlkLog;
    this.inopbLog = inopbLog;
    this.agBlocks = agBlocks;
    this.agCount = agCount;
    this.inodeSize = inodeSize;
    this.dirBlockSize = bs << dirBlkLog;
    this.dirBlockFsbs = 1 << dirBlkLog;
    this.ftype = this.v5 ? !!(incompat & INCOMPAT.ftype) : !!(versionnum & 0x8000 && features2 & 0x200);
    const uuid = sb.subarray(32, 48);
    this.metaUuid = Buffer.from(this.v5 && incompat & INCOMPAT.meta_uuid ? sb.subarray(248, 264) : uuid);
    this.fsBytes = dblocks * bs;
    const names = (bits: number, table: Record<string, number>) => Object.entries(table).filter(([, b]) => bits & b).map(([n]) => n);
    const unknown = (bits: number, table: Record<string, number>) => {
      const rest = bits & ~Object.values(table).reduce((a, b) => a | b, 0);
      return rest ? [`FEATURE_${hex(rest)}`] : [];
    };
    const label = sb.subarray(108, 120);
    const end = label.indexOf(0);
    const rootIno = u64(sb, 56);
    if (rootIno === undefined) throw bad('root inode number is absurd');
    this.info = {
      type: 'xfs', version: this.v5 ? 5 : 4, uuid: formatUuid(uuid), metaUuid: formatUuid(this.metaUuid),
      label: label.subarray(0, end < 0 ? 12 : end).toString('utf8'), blockSize: bs, sectorSize: sectSize, inodeSize,
      dirBlockSize: this.dirBlockSize, agCount, agBlocks, dataBlocks: dblocks, freeBlocks: u64(sb, 144) ?? 0,
      inodeCount: u64(sb, 128) ?? 0, freeInodes: u64(sb, 136) ?? 0, logStart: u64(sb, 48) ?? 0, logBlocks: sb.readUInt32BE(96),
      realtimeBlocks: u64(sb, 16) ?? 0, stripeUnit: sb.readUInt32BE(184), stripeWidth: sb.readUInt32BE(188), rootInode: rootIno,
      features: this.v5
        ? { compat: unknown(compat, {}), incompat: [...names(incompat, INCOMPAT), ...unknown(incompat, INCOMPAT)], roCompat: [...names(roCompat, RO_COMPAT), ...unknown(roCompat, RO_COMPAT)] }
        : { compat: [...V4_BITS.filter(([b]) => versionnum & b).map(([, n]) => n), ...FEATURES2.filter(([b]) => features2 & b).map(([, n]) => n)], incompat: [], roCompat: [] },
    };
  }

  corrupt(where: string, reason: string): CorruptInputError {
    return new CorruptInputError(this.name, where, reason);
  }

  /** Bytes [at, at + n) of the source, checked against the file system's extent first. */
  async read(at: number, n: number, where: string): Promise<Buffer> {
    if (!Number.isSafeInteger(at) || at < 0 || at + n > this.fsBytes) {
      throw this.corrupt(where, `${n} bytes at offset ${at} lie outside the ${this.fsBytes}-byte file system`);
    }
    return this.source.read(at, n);
  }

  /** Byte offset of `len` blocks at file-system block `fsb` (agno << agblklog | agbno), checked to lie inside one AG. */
  fsbOffset(fsb: number, len: number, where: string): number {
    const agno = Math.floor(fsb / 2 ** this.agBlkLog);
    const agbno = fsb - agno * 2 ** this.agBlkLog;
    if (agno >= this.agCount || agbno + len > this.agBlocks) {
      throw this.corrupt(where, `block ${fsb} (AG ${agno}, block ${agbno}) +${len} lies outside the file system`);
    }
    const at = (agno * this.agBlocks + agbno) * this.blockSize;
    if (at + len * this.blockSize > this.fsBytes) throw this.corrupt(where, `block ${fsb} +${len} lies past the end of the file system (offset ${at})`);
    return at;
  }

  /** Checks a v5 block's CRC, and that it names the expected disk address, owner and file system. */
  private checkV5(buf: Buffer, crcOff: number, blknoOff: number, uuidOff: number, ownerOff: number, at: number, owner: number, where: string, what: string): void {
    const stored = buf.readUInt32LE(crcOff);
    const computed = xfsChecksum(buf, crcOff);
    if (stored !== computed) throw this.corrupt(where, `${what} at offset ${at}: checksum mismatch (stored ${hex(stored)}, computed ${hex(computed)})`);
    if (u64(buf, blknoOff) !== at / 512) throw this.corrupt(where, `${what} at offset ${at}: it says it is at sector ${u64(buf, blknoOff)}`);
    if (!buf.subarray(uuidOff, uuidOff + 16).equals(this.metaUuid)) throw this.corrupt(where, `${what} at offset ${at}: belongs to another file system (uuid)`);
    if (u64(buf, ownerOff) !== owner) throw this.corrupt(where, `${what} at offset ${at}: owned by inode ${u64(buf, ownerOff)}, not ${owner}`);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Inodes

  async readInode(ino: number, path?: Buffer): Promise<Inode> {
    const where = `inode ${ino}${path ? ` ('${showPath(path)}')` : ''}`;
    const agno = Math.floor(ino / 2 ** (this.agBlkLog + this.inopbLog));
    const agino = ino - agno * 2 ** (this.agBlkLog + this.inopbLog);
    const agbno = Math.floor(agino / 2 ** this.inopbLog);
    if (!Number.isSafeInteger(ino) || ino <= 0 || agno >= this.agCount || agbno >= this.agBlocks) {
      throw this.corrupt(where, `inode number lies outside the file system's ${this.agCount} AGs`);
    }
    const blockAt = this.fsbOffset(agno * 2 ** this.agBlkLog + agbno, 1, where);
    let block = this.inodeBlocks.get(blockAt);
    if (!block) {
      if (this.inodeBlocks.size >= INODE_CACHE_BLOCKS) this.inodeBlocks.clear();
      block = Buffer.from(await this.read(blockAt, this.blockSize, where));
      this.inodeBlocks.set(blockAt, block);
    }
    const off = (agino % 2 ** this.inopbLog) * this.inodeSize;
    const raw = block.subarray(off, off + this.inodeSize);
    const at = blockAt + off;
    if (raw.readUInt16BE(0) !== DINODE_MAGIC) throw this.corrupt(where, `bad inode magic ${hex(raw.readUInt16BE(0), 4)} at offset ${at}`);
    const version = raw[4]!;
    if (this.v5 ? version !== 3 : version !== 1 && version !== 2) throw this.corrupt(where, `inode version ${version} at offset ${at} in a v${this.v5 ? 5 : 4} file system`);
    if (version === 3) {
      const stored = raw.readUInt32LE(DINODE_CRC_OFF);
      const computed = xfsChecksum(raw, DINODE_CRC_OFF);
      if (stored !== computed) throw this.corrupt(where, `checksum mismatch at offset ${at} (stored ${hex(stored)}, computed ${hex(computed)})`);
      if (u64(raw, 152) !== ino) throw this.corrupt(where, `the inode at offset ${at} says it is inode ${u64(raw, 152)}`);
      if (!raw.subarray(160, 176).equals(this.metaUuid)) throw this.corrupt(where, `the inode at offset ${at} belongs to another file system (uuid)`);
    }
    const core = version === 3 ? DINODE_V3_SIZE : DINODE_V2_SIZE;
    const mode = raw.readUInt16BE(2);
    const flags2 = version === 3 ? u64(raw, 120) ?? 0 : 0;
    const nrext64 = !!(flags2 & DIFLAG2_NREXT64);
    const ts = (o: number): bigint => (flags2 & DIFLAG2_BIGTIME
      ? raw.readBigUInt64BE(o) - 2_147_483_648_000_000_000n
      : BigInt(raw.readInt32BE(o)) * 1_000_000_000n + BigInt(raw.readUInt32BE(o + 4)));
    const forkoff = raw[82]! * 8;
    const literal = this.inodeSize - core;
    if (forkoff >= literal) throw this.corrupt(where, `attribute fork offset ${forkoff} lies past the ${literal}-byte literal area`);
    const size = u64(raw, 56);
    const nblocks = u64(raw, 64);
    if (size === undefined || nblocks === undefined) throw this.corrupt(where, 'absurd size or block count');
    return {
      ino, mode, version, format: raw[5]!, aformat: raw[83]!,
      uid: raw.readUInt32BE(8), gid: raw.readUInt32BE(12), nlink: version === 1 ? raw.readUInt16BE(6) : raw.readUInt32BE(16),
      size, nblocks,
      nextents: nrext64 ? u64(raw, 24) ?? Infinity : raw.readUInt32BE(76),
      anextents: nrext64 ? raw.readUInt32BE(76) : raw.readUInt16BE(80),
      flags: raw.readUInt16BE(90), mtimeNs: ts(40),
      dataFork: raw.subarray(core, forkoff ? core + forkoff : this.inodeSize),
      attrFork: forkoff ? raw.subarray(core + forkoff) : undefined,
    };
  }

  /** The entry type of an inode, its fork formats checked against it. */
  checkInode(inode: Inode, path: Buffer): EntryType {
    const where = `inode ${inode.ino} ('${showPath(path)}')`;
    const type = typeOfMode(inode.mode);
    if (!type) throw this.corrupt(where, `unknown file type in mode ${(inode.mode).toString(8)}`);
    if (inode.nlink === 0) throw this.corrupt(where, 'a linked inode has a link count of 0 (unlinked)');
    if (inode.flags & DIFLAG_REALTIME) throw new UnsupportedInputError(this.name, `${where}: a realtime file (viva reads the data device only)`);
    const ok = type === 'file' ? [FMT_EXTENTS, FMT_BTREE]
      : type === 'dir' || type === 'symlink' ? [FMT_LOCAL, FMT_EXTENTS, FMT_BTREE] : [FMT_DEV];
    if (!ok.includes(inode.format)) throw this.corrupt(where, `data fork format ${inode.format} is invalid for a ${type}`);
    if (inode.attrFork && ![FMT_LOCAL, FMT_EXTENTS, FMT_BTREE].includes(inode.aformat)) throw this.corrupt(where, `attribute fork format ${inode.aformat} is invalid`);
    return type;
  }

  rdevOf(inode: Inode): { major: number; minor: number } {
    const dev = inode.dataFork.readUInt32BE(0);
    return { major: (dev >>> 18) & 0x1ff, minor: dev & 0x3ffff };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Block maps

  private decodeRecords(buf: Buffer, at: number, n: number, out: Extent[], where: string): void {
    for (let i = 0; i < n; i++) {
      const o = at + i * 16;
      const w0 = buf.readUInt32BE(o);
      const w1 = buf.readUInt32BE(o + 4);
      const w2 = buf.readUInt32BE(o + 8);
      const w3 = buf.readUInt32BE(o + 12);
      const off = (w0 & 0x7fffffff) * 2 ** 23 + (w1 >>> 9);
      const fsb = (w1 & 0x1ff) * 2 ** 43 + w2 * 2 ** 11 + (w3 >>> 21);
      const len = w3 & 0x1fffff;
      if (len === 0) throw this.corrupt(where, `extent record ${out.length} has length 0`);
      if (!Number.isSafeInteger(off) || !Number.isSafeInteger(fsb)) throw this.corrupt(where, `extent record ${out.length} is absurd`);
      out.push({ off, fsb, len, unwritten: w0 >>> 31 === 1 });
    }
  }

  /**
   * The extents of a fork in extents or btree form, in logical order, each checked to lie inside the file system and
   * not to overlap the one before. A btree block visited twice, one that is not where its parent says, or a tree
   * deeper than XFS allows is corrupt.
   */
  async extents(inode: Inode, fork: 'data' | 'attr', path: Buffer, signal?: AbortSignal): Promise<Extent[]> {
    const where = `inode ${inode.ino} ('${showPath(path)}')${fork === 'attr' ? ' attribute fork' : ''}`;
    const buf = fork === 'data' ? inode.dataFork : inode.attrFork!;
    const format = fork === 'data' ? inode.format : inode.aformat;
    const count = fork === 'data' ? inode.nextents : inode.anextents;
    const out: Extent[] = [];
    if (format === FMT_EXTENTS) {
      if (count * 16 > buf.length) throw this.corrupt(where, `${count} extents do not fit the ${buf.length}-byte fork`);
      this.decodeRecords(buf, 0, count, out, where);
    } else if (format === FMT_BTREE) {
      if (buf.length < 4) throw this.corrupt(where, 'btree root does not fit the fork');
      const level = buf.readUInt16BE(0);
      const numrecs = buf.readUInt16BE(2);
      const maxrecs = Math.floor((buf.length - 4) / 16);
      if (level === 0 || level >= BMBT_MAX_LEVELS) throw this.corrupt(where, `btree root has level ${level}`);
      if (numrecs === 0 || numrecs > maxrecs) throw this.corrupt(where, `btree root has ${numrecs} records (at most ${maxrecs} fit)`);
      const visited = new Set<number>();
      const limit = Math.min(count, inode.nblocks + 1);
      for (let i = 0; i < numrecs; i++) {
        const ptr = u64(buf, 4 + maxrecs * 8 + i * 8);
        if (ptr === undefined) throw this.corrupt(where, `btree root pointer ${i} is absurd`);
        await this.walkBmbt(inode, ptr, level - 1, visited, out, limit, where, signal);
      }
    } else {
      throw this.corrupt(where, `fork format ${format} has no extents`);
    }
    if (out.length !== count) throw this.corrupt(where, `${out.length} extents found, the inode says ${count}`);
    for (let i = 0; i < out.length; i++) {
      const e = out[i]!;
      this.fsbOffset(e.fsb, e.len, where);
      const prev = out[i - 1];
      if (prev && prev.off + prev.len > e.off) throw this.corrupt(where, `extent at logical block ${e.off} overlaps the one before or is out of order`);
    }
    return out;
  }

  private async walkBmbt(inode: Inode, fsb: number, level: number, visited: Set<number>, out: Extent[], limit: number, where: string, signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    if (visited.has(fsb)) throw this.corrupt(where, `btree block ${fsb} is visited twice (a loop)`);
    visited.add(fsb);
    const at = this.fsbOffset(fsb, 1, where);
    const buf = await this.read(at, this.blockSize, where);
    const magic = buf.readUInt32BE(0);
    if (magic !== (this.v5 ? BMAP_CRC_MAGIC : BMAP_MAGIC)) throw this.corrupt(where, `btree block at offset ${at}: bad magic ${hex(magic)}`);
    if (this.v5) this.checkV5(buf, LBLOCK_CRC_OFF, 24, 40, 56, at, inode.ino, where, 'btree block');
    const hdr = this.v5 ? LBLOCK_HDR_V5 : LBLOCK_HDR_V4;
    if (buf.readUInt16BE(4) !== level) throw this.corrupt(where, `btree block at offset ${at} has level ${buf.readUInt16BE(4)}, expected ${level}`);
    const numrecs = buf.readUInt16BE(6);
    if (level === 0) {
      const max = Math.floor((this.blockSize - hdr) / 16);
      if (numrecs === 0 || numrecs > max) throw this.corrupt(where, `btree leaf at offset ${at} has ${numrecs} records (at most ${max} fit)`);
      if (out.length + numrecs > limit) throw this.corrupt(where, `btree holds more extents than the inode's ${limit}`);
      this.decodeRecords(buf, hdr, numrecs, out, where);
      return;
    }
    const max = Math.floor((this.blockSize - hdr) / 16);
    if (numrecs === 0 || numrecs > max) throw this.corrupt(where, `btree node at offset ${at} has ${numrecs} records (at most ${max} fit)`);
    for (let i = 0; i < numrecs; i++) {
      const ptr = u64(buf, hdr + max * 8 + i * 8);
      if (ptr === undefined) throw this.corrupt(where, `btree node at offset ${at}: pointer ${i} is absurd`);
      await this.walkBmbt(inode, ptr, level - 1, visited, out, limit, where, signal);
    }
  }

  /** The byte offset of logical block `lblk` of a fork (undefined in a hole), from extents sorted by offset. */
  private lookup(extents: Extent[], lblk: number): Extent | undefined {
    let lo = 0;
    let hi = extents.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const e = extents[mid]!;
      if (lblk < e.off) hi = mid - 1;
      else if (lblk >= e.off + e.len) lo = mid + 1;
      else return e;
    }
    return undefined;
  }

  /**
   * Reads `count` logical blocks from `lblk` of a fork (all mapped and written, else corrupt); `claimed` collects the
   * physical offsets read so that a block read twice in one walk is found. Returns the bytes and the first block's
   * disk offset.
   */
  private async readLogical(extents: Extent[], lblk: number, count: number, where: string, what: string, claimed?: Set<number>): Promise<{ buf: Buffer; at: number }> {
    const parts: Buffer[] = [];
    let first = -1;
    for (let b = lblk; b < lblk + count;) {
      const e = this.lookup(extents, b);
      if (!e || e.unwritten) throw this.corrupt(where, `${what}: logical block ${b} is not mapped`);
      const n = Math.min(e.off + e.len - b, lblk + count - b);
      const at = this.fsbOffset(e.fsb + (b - e.off), n, where);
      if (claimed) {
        for (let i = 0; i < n; i++) {
          const k = at + i * this.blockSize;
          if (claimed.has(k)) throw this.corrupt(where, `${what}: block at offset ${k} is visited twice (a loop)`);
          claimed.add(k);
        }
      }
      if (first < 0) first = at;
      parts.push(await this.read(at, n * this.blockSize, where));
      b += n;
    }
    return { buf: parts.length === 1 ? parts[0]! : Buffer.concat(parts), at: first };
  }

  async *dataPieces(inode: Inode, extents: Extent[], size: number, signal?: AbortSignal): AsyncGenerator<DataPiece> {
    const bs = this.blockSize;
    const where = `inode ${inode.ino}`;
    for (const e of extents) {
      if (e.unwritten) continue;
      const start = e.off * bs;
      if (start >= size) break;
      const end = Math.min(size, (e.off + e.len) * bs);
      const base = this.fsbOffset(e.fsb, e.len, where);
      for (let o = start; o < end; o += XFS_PIECE_SIZE) {
        throwIfAborted(signal);
        const n = Math.min(XFS_PIECE_SIZE, end - o);
        const src = base + (o - start);
        yield { offset: o, data: await this.read(src, n, where), source: src };
      }
    }
  }

  /**
   * Where {@link dataPieces} finds a file's bytes, without reading them (FileContent.layout): one run per written
   * extent inside the file's size, runs that continue one another on both sides merged.
   */
  dataLayout(inode: Inode, extents: Extent[], size: number): Array<{ offset: number; length: number; source: number }> {
    const bs = this.blockSize;
    const out: Array<{ offset: number; length: number; source: number }> = [];
    for (const e of extents) {
      if (e.unwritten) continue;
      const start = e.off * bs;
      if (start >= size) break;
      const length = Math.min(size, (e.off + e.len) * bs) - start;
      const source = this.fsbOffset(e.fsb, e.len, `inode ${inode.ino}`);
      const last = out[out.length - 1];
      if (last && last.offset + last.length === start && last.source + last.length === source) last.length += length;
      else out.push({ offset: start, length, source });
    }
    return out;
  }

  fileContent(inode: Inode, path: Buffer, outer?: AbortSignal): Promise<FileContent> {
    return this.extents(inode, 'data', path, outer).then((extents) => ({
      size: inode.size,
      read: (s?: AbortSignal): AsyncIterable<DataPiece> => {
        throwIfAborted(outer, s);
        return this.dataPieces(inode, extents, inode.size, outer && s ? AbortSignal.any([outer, s]) : outer ?? s);
      },
      layout: async (s?: AbortSignal) => {
        throwIfAborted(outer, s);
        return this.dataLayout(inode, extents, inode.size);
      },
    }));
  }

  // -------------------------------------------------------------------------------------------------------------
  // Symlinks

  async symlinkTarget(inode: Inode, path: Buffer, signal?: AbortSignal): Promise<Buffer> {
    const where = `inode ${inode.ino} ('${showPath(path)}')`;
    const size = inode.size;
    if (size === 0 || size > SYMLINK_MAXLEN) throw this.corrupt(where, `symlink target of ${size} bytes`);
    if (inode.format === FMT_LOCAL) {
      if (size > inode.dataFork.length) throw this.corrupt(where, `inline symlink of ${size} bytes exceeds the ${inode.dataFork.length}-byte fork`);
      return Buffer.from(inode.dataFork.subarray(0, size));
    }
    const extents = await this.extents(inode, 'data', path, signal);
    const parts: Buffer[] = [];
    let got = 0;
    for (const e of extents) {
      for (let i = 0; i < e.len && got < size; i++) {
        const at = this.fsbOffset(e.fsb + i, 1, where);
        const buf = await this.read(at, this.blockSize, where);
        if (this.v5) {
          if (buf.readUInt32BE(0) !== SYMLINK_MAGIC) throw this.corrupt(where, `symlink block at offset ${at}: bad magic ${hex(buf.readUInt32BE(0))}`);
          this.checkV5(buf, RMT_CRC_OFF, 40, 16, 32, at, inode.ino, where, 'symlink block');
          const off = buf.readUInt32BE(4);
          const bytes = buf.readUInt32BE(8);
          if (off !== got || bytes === 0 || SYMLINK_HDR + bytes > this.blockSize || got + bytes > size) {
            throw this.corrupt(where, `symlink block at offset ${at} holds bytes ${off}+${bytes} of ${size}, expected from ${got}`);
          }
          parts.push(buf.subarray(SYMLINK_HDR, SYMLINK_HDR + bytes));
          got += bytes;
        } else {
          const n = Math.min(this.blockSize, size - got);
          parts.push(buf.subarray(0, n));
          got += n;
        }
      }
    }
    if (got !== size) throw this.corrupt(where, `symlink blocks hold ${got} of its ${size} bytes`);
    return Buffer.concat(parts);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Directories

  /** Children of a directory, '.' and '..' left out, sorted by name bytes; duplicate names are corrupt. */
  async listDir(inode: Inode, path: Buffer, signal?: AbortSignal): Promise<DirChild[]> {
    const where = `inode ${inode.ino} ('${showPath(path)}')`;
    const out: DirChild[] = [];
    if (inode.format === FMT_LOCAL) this.parseShortDir(inode, where, out);
    else await this.readDirBlocks(inode, path, where, out, signal);
    out.sort((a, b) => Buffer.compare(a.name, b.name));
    for (let i = 1; i < out.length; i++) {
      if (out[i]!.name.equals(out[i - 1]!.name)) throw this.corrupt(where, `two entries named '${out[i]!.name.toString('utf8')}'`);
    }
    return out;
  }

  private parseShortDir(inode: Inode, where: string, out: DirChild[]): void {
    const b = inode.dataFork;
    const size = inode.size;
    if (size < 6 || size > b.length) throw this.corrupt(where, `short-form directory of ${size} bytes in a ${b.length}-byte fork`);
    const count = b[0]!;
    const i8 = b[1]! !== 0;
    const inoLen = i8 ? 8 : 4;
    let o = 2 + inoLen;
    for (let i = 0; i < count; i++) {
      const at = `short-form entry ${i}`;
      if (o + 3 > size) throw this.corrupt(where, `${at} runs past the ${size}-byte directory`);
      const len = b[o]!;
      const end = o + 3 + len + (this.ftype ? 1 : 0) + inoLen;
      if (len === 0 || end > size) throw this.corrupt(where, `${at} (name of ${len} bytes) runs past the ${size}-byte directory`);
      const name = Buffer.from(b.subarray(o + 3, o + 3 + len));
      const ftype = this.ftype ? b[o + 3 + len]! : 0;
      const p = o + 3 + len + (this.ftype ? 1 : 0);
      const ino = i8 ? u64(b, p) : b.readUInt32BE(p);
      if (ino === undefined) throw this.corrupt(where, `${at}: absurd inode number`);
      this.addChild(name, ino, ftype, `${where} ${at}`, out);
      o = end;
    }
  }

  private addChild(name: Buffer, ino: number, ftype: number, at: string, out: DirChild[]): void {
    if (name.includes(0x2f) || name.includes(0)) throw this.corrupt(at, `invalid name '${name.toString('utf8')}'`);
    if (name.equals(DOT) || name.equals(DOTDOT)) return;
    if (this.ftype && !FTYPES[ftype]) throw this.corrupt(at, `entry '${name.toString('utf8')}' has file type ${ftype}`);
    out.push({ name, ino, ftype, at });
  }

  private async readDirBlocks(inode: Inode, path: Buffer, where: string, out: DirChild[], signal?: AbortSignal): Promise<void> {
    const extents = await this.extents(inode, 'data', path, signal);
    const leafFsb = DIR2_LEAF_OFFSET_BYTES / this.blockSize;
    const per = this.dirBlockFsbs;
    const starts: number[] = [];
    for (const e of extents) {
      if (e.off >= leafFsb) break;
      const end = Math.min(e.off + e.len, leafFsb);
      for (let b = Math.floor(e.off / per) * per; b < end; b += per) if (starts[starts.length - 1] !== b) starts.push(b);
    }
    if (starts.length === 0) throw this.corrupt(where, 'directory has no data blocks');
    if (starts.length * this.dirBlockSize > inode.size) throw this.corrupt(where, `${starts.length} directory blocks exceed the directory's size ${inode.size}`);
    const claimed = new Set<number>();
    const single = starts.length === 1 && starts[0] === 0;
    for (const lblk of starts) {
      throwIfAborted(signal);
      const what = `directory block ${lblk / per}`;
      const { buf, at } = await this.readLogical(extents, lblk, per, where, what, claimed);
      const magic = buf.readUInt32BE(0);
      const block = magic === DIR3_BLOCK_MAGIC || magic === DIR2_BLOCK_MAGIC;
      const want = this.v5 ? [DIR3_DATA_MAGIC, ...(single ? [DIR3_BLOCK_MAGIC] : [])] : [DIR2_DATA_MAGIC, ...(single ? [DIR2_BLOCK_MAGIC] : [])];
      if (!want.includes(magic)) throw this.corrupt(where, `${what} at offset ${at}: bad magic ${hex(magic)}`);
      if (this.v5) this.checkV5(buf, DIR3_DATA_CRC_OFF, 8, 24, 40, at, inode.ino, where, what);
      let end = buf.length;
      if (block) {
        const count = buf.readUInt32BE(buf.length - 8);
        end = buf.length - 8 - count * 8;
        const hdr = this.v5 ? DIR3_DATA_HDR_V5 : DIR2_DATA_HDR_V4;
        if (end < hdr) throw this.corrupt(where, `${what} at offset ${at}: ${count} leaf entries do not fit`);
      }
      this.parseDataBlock(buf, end, `${where} ${what} at offset ${at}`, out);
    }
    // The hash (leaf, node) and free-index blocks only serve lookups; they are checked, not read for entries.
    const index: number[] = [];
    for (const e of extents) {
      if (e.off + e.len <= leafFsb) continue;
      for (let b = Math.floor(Math.max(e.off, leafFsb) / per) * per; b < e.off + e.len; b += per) if (index[index.length - 1] !== b) index.push(b);
    }
    for (const lblk of index) {
      throwIfAborted(signal);
      const what = `directory index block ${lblk / per}`;
      const { buf, at } = await this.readLogical(extents, lblk, per, where, what, claimed);
      if (buf.readUInt32BE(0) === (this.v5 ? DIR3_FREE_MAGIC : DIR2_FREE_MAGIC)) {
        if (this.v5) this.checkV5(buf, DIR3_DATA_CRC_OFF, 8, 24, 40, at, inode.ino, where, what);
        continue;
      }
      const magic = buf.readUInt16BE(8);
      const ok = this.v5 ? [DIR3_LEAF1_MAGIC, DIR3_LEAFN_MAGIC, DA3_NODE_MAGIC] : [DIR2_LEAF1_MAGIC, DIR2_LEAFN_MAGIC, DA_NODE_MAGIC];
      if (!ok.includes(magic)) throw this.corrupt(where, `${what} at offset ${at}: bad magic ${hex(buf.readUInt32BE(0))}/${hex(magic, 4)}`);
      if (this.v5) this.checkV5(buf, DA3_CRC_OFF, 16, 32, 48, at, inode.ino, where, what);
    }
  }

  private parseDataBlock(buf: Buffer, end: number, at: string, out: DirChild[]): void {
    let o = this.v5 ? DIR3_DATA_HDR_V5 : DIR2_DATA_HDR_V4;
    while (o < end) {
      if (o + 8 > end) throw this.corrupt(at, `entry at ${o} runs past the data area (${end})`);
      if (buf.readUInt16BE(o) === DATA_FREE_TAG) {
        const len = buf.readUInt16BE(o + 2);
        if (len < 8 || len % 8 !== 0 || o + len > end) throw this.corrupt(at, `free space at ${o} has invalid length ${len}`);
        if (buf.readUInt16BE(o + len - 2) !== o) throw this.corrupt(at, `free space at ${o}: tag ${buf.readUInt16BE(o + len - 2)} does not point back`);
        o += len;
        continue;
      }
      const ino = u64(buf, o);
      const len = buf[o + 8]!;
      const size = Math.ceil((8 + 1 + len + (this.ftype ? 1 : 0) + 2) / 8) * 8;
      if (len === 0 || o + size > end) throw this.corrupt(at, `entry at ${o} (name of ${len} bytes) runs past the data area (${end})`);
      if (buf.readUInt16BE(o + size - 2) !== o) throw this.corrupt(at, `entry at ${o}: tag ${buf.readUInt16BE(o + size - 2)} does not point back`);
      if (ino === undefined) throw this.corrupt(at, `entry at ${o}: absurd inode number`);
      const name = Buffer.from(buf.subarray(o + 9, o + 9 + len));
      this.addChild(name, ino, this.ftype ? buf[o + 9 + len]! : 0, `${at} entry at ${o}`, out);
      o += size;
    }
  }

  checkFtype(child: DirChild, type: EntryType): void {
    if (this.ftype && FTYPES[child.ftype] !== type) {
      throw this.corrupt(child.at, `entry '${child.name.toString('utf8')}' says ${FTYPES[child.ftype]}, inode ${child.ino} is a ${type}`);
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Extended attributes

  async rawAttrs(inode: Inode, path: Buffer, signal?: AbortSignal): Promise<RawAttr[]> {
    if (!inode.attrFork) return [];
    const where = `inode ${inode.ino} ('${showPath(path)}') attribute fork`;
    const out: RawAttr[] = [];
    if (inode.aformat === FMT_LOCAL) {
      const b = inode.attrFork;
      if (b.length < 4) throw this.corrupt(where, 'short-form header does not fit');
      const total = b.readUInt16BE(0);
      const count = b[2]!;
      if (total < 4 || total > b.length) throw this.corrupt(where, `short-form attributes of ${total} bytes in a ${b.length}-byte fork`);
      let o = 4;
      for (let i = 0; i < count; i++) {
        if (o + 3 > total) throw this.corrupt(where, `short-form attribute ${i} runs past ${total} bytes`);
        const nlen = b[o]!;
        const vlen = b[o + 1]!;
        const flags = b[o + 2]!;
        if (nlen === 0 || o + 3 + nlen + vlen > total) throw this.corrupt(where, `short-form attribute ${i} runs past ${total} bytes`);
        out.push({ flags, name: Buffer.from(b.subarray(o + 3, o + 3 + nlen)), value: Buffer.from(b.subarray(o + 3 + nlen, o + 3 + nlen + vlen)) });
        o += 3 + nlen + vlen;
      }
      return out;
    }
    const extents = await this.extents(inode, 'attr', path, signal);
    if (extents.length === 0) return out;
    const claimed = new Set<number>();
    await this.walkAttrBlock(inode, extents, 0, 0, claimed, out, where, signal);
    return out;
  }

  private async walkAttrBlock(inode: Inode, extents: Extent[], lblk: number, depth: number, claimed: Set<number>, out: RawAttr[], where: string, signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    if (depth > DA_NODE_MAXDEPTH) throw this.corrupt(where, `attribute tree deeper than ${DA_NODE_MAXDEPTH} levels`);
    const what = `attribute block ${lblk}`;
    const { buf, at } = await this.readLogical(extents, lblk, 1, where, what, claimed);
    const magic = buf.readUInt16BE(8);
    const node = this.v5 ? DA3_NODE_MAGIC : DA_NODE_MAGIC;
    const leaf = this.v5 ? ATTR3_LEAF_MAGIC : ATTR_LEAF_MAGIC;
    if (magic !== node && magic !== leaf) throw this.corrupt(where, `${what} at offset ${at}: bad magic ${hex(magic, 4)}`);
    if (this.v5) this.checkV5(buf, DA3_CRC_OFF, 16, 32, 48, at, inode.ino, where, what);
    const blkinfo = this.v5 ? DA_BLKINFO_V5 : DA_BLKINFO_V4;
    if (magic === node) {
      const count = buf.readUInt16BE(blkinfo);
      const hdr = this.v5 ? 64 : 16;
      if (count === 0 || hdr + count * 8 > buf.length) throw this.corrupt(where, `${what} at offset ${at}: node of ${count} entries`);
      for (let i = 0; i < count; i++) {
        const child = buf.readUInt32BE(hdr + i * 8 + 4);
        await this.walkAttrBlock(inode, extents, child, depth + 1, claimed, out, where, signal);
      }
      return;
    }
    const count = buf.readUInt16BE(blkinfo);
    const hdr = this.v5 ? 80 : 32;
    if (hdr + count * 8 > buf.length) throw this.corrupt(where, `${what} at offset ${at}: leaf of ${count} entries`);
    for (let i = 0; i < count; i++) {
      const e = hdr + i * 8;
      const idx = buf.readUInt16BE(e + 4);
      const flags = buf[e + 6]!;
      if (flags & ATTR_INCOMPLETE) continue;
      const bad = (why: string) => this.corrupt(where, `${what} at offset ${at}: entry ${i} ${why}`);
      if (idx < hdr + count * 8 || idx >= buf.length) throw bad(`name index ${idx} lies outside the block`);
      if (flags & ATTR_LOCAL) {
        if (idx + 3 > buf.length) throw bad('runs past the block');
        const vlen = buf.readUInt16BE(idx);
        const nlen = buf[idx + 2]!;
        if (nlen === 0 || idx + 3 + nlen + vlen > buf.length) throw bad(`(name ${nlen}, value ${vlen} bytes) runs past the block`);
        out.push({ flags, name: Buffer.from(buf.subarray(idx + 3, idx + 3 + nlen)), value: Buffer.from(buf.subarray(idx + 3 + nlen, idx + 3 + nlen + vlen)) });
      } else {
        if (idx + 9 > buf.length) throw bad('runs past the block');
        const vblk = buf.readUInt32BE(idx);
        const vlen = buf.readUInt32BE(idx + 4);
        const nlen = buf[idx + 8]!;
        if (nlen === 0 || idx + 9 + nlen > buf.length) throw bad(`(name ${nlen} bytes) runs past the block`);
        if (vlen > XATTR_SIZE_MAX) throw bad(`has a ${vlen}-byte value (at most ${XATTR_SIZE_MAX})`);
        out.push({ flags, name: Buffer.from(buf.subarray(idx + 9, idx + 9 + nlen)), value: await this.remoteValue(inode, extents, vblk, vlen, claimed, where) });
      }
    }
  }

  private async remoteValue(inode: Inode, extents: Extent[], lblk: number, size: number, claimed: Set<number>, where: string): Promise<Buffer> {
    const per = this.v5 ? this.blockSize - ATTR3_RMT_HDR : this.blockSize;
    const blocks = Math.max(1, Math.ceil(size / per));
    const parts: Buffer[] = [];
    let got = 0;
    for (let i = 0; i < blocks; i++) {
      const what = `attribute value block ${lblk + i}`;
      const { buf, at } = await this.readLogical(extents, lblk + i, 1, where, what, claimed);
      const n = Math.min(per, size - got);
      if (this.v5) {
        if (buf.readUInt32BE(0) !== ATTR3_RMT_MAGIC) throw this.corrupt(where, `${what} at offset ${at}: bad magic ${hex(buf.readUInt32BE(0))}`);
        this.checkV5(buf, RMT_CRC_OFF, 40, 16, 32, at, inode.ino, where, what);
        if (buf.readUInt32BE(4) !== got || buf.readUInt32BE(8) !== n) throw this.corrupt(where, `${what} at offset ${at}: holds bytes ${buf.readUInt32BE(4)}+${buf.readUInt32BE(8)}, expected ${got}+${n}`);
        parts.push(buf.subarray(ATTR3_RMT_HDR, ATTR3_RMT_HDR + n));
      } else {
        parts.push(buf.subarray(0, n));
      }
      got += n;
    }
    return Buffer.concat(parts);
  }

  /** The VFS view of raw attributes: namespaced names, ACLs in xattr form, parent pointers left out; sorted. */
  publicXattrs(inode: Inode, raw: RawAttr[]): Xattr[] {
    const where = `inode ${inode.ino}`;
    const out: Xattr[] = [];
    for (const a of raw) {
      if (a.flags & ATTR_PARENT) continue;
      const base = a.name.toString('utf8');
      let name: string;
      let value: Uint8Array = a.value;
      if (a.flags & ATTR_ROOT && (base === SGI_ACL_FILE || base === SGI_ACL_DEFAULT)) {
        name = base === SGI_ACL_FILE ? ACL_ACCESS_XATTR : ACL_DEFAULT_XATTR;
        const acl = aclFromXfs(a.value);
        if (acl === undefined) {
          if (a.value.length === 4 && a.value.readUInt32BE(0) === 0) continue; // an empty ACL: no ACL
          throw this.corrupt(where, `attribute ${base}: malformed ACL`);
        }
        value = acl;
      } else {
        name = (a.flags & ATTR_ROOT ? 'trusted.' : a.flags & ATTR_SECURE ? 'security.' : 'user.') + base;
      }
      if (out.some((y) => y.name === name)) throw this.corrupt(where, `xattr ${name} is stored twice`);
      out.push({ name, value });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}

/**
 * Opens the XFS file system in `source` read-only. `name` is the file named in errors.
 *
 * `reader.entries()` yields the whole tree: the root ('') first, then depth-first with each directory before its
 * children, names sorted by bytes. Entries carry type, the 12 mode bits, 32-bit uid/gid, mtime in ns (bigtime
 * included), xattrs (user., trusted., security.; ACLs as system.posix_acl_access/default in getfattr's form),
 * symlink targets, device numbers, the inode number and hardlinks (second and later names of an inode are
 * 'hardlink' entries naming the first path yielded). A file's `content.read()` yields pieces of at most 1 MiB for
 * written extents only (holes and unwritten extents are gaps), each with `source`, its byte offset in `source`.
 *
 * Throws CorruptInputError naming the file and the structure ('superblock', "inode 131 ('etc/passwd')", "directory
 * block 3 at offset …") for anything malformed — checksum mismatches, structures outside the file system or the
 * region, btree or directory blocks visited twice, trees deeper than XFS allows — and UnsupportedInputError for
 * superblock versions other than 4 and 5, unknown incompatible features, a log that needs recovery, realtime files.
 * `entries()` and `content.read()` throw the same, plus AbortedError.
 *
 * @example
 * const src = await fileBlockSource('rootfs.xfs');
 * const { info, reader } = await openXfs(src, 'rootfs.xfs');
 * for await (const e of reader.entries()) console.log(e.path.toString(), e.type);
 * await src.close();
 */
export async function openXfs(source: BlockSource, name: string, options: { signal?: AbortSignal } = {}): Promise<{ info: XfsInfo; reader: ImageReader }> {
  if (source.size < 512) throw new CorruptInputError(name, 'superblock', `image of ${source.size} bytes is too small for an XFS superblock`);
  const head = Buffer.from(await source.read(0, 512));
  const sectSize = head.readUInt32BE(0) === SB_MAGIC ? head.readUInt16BE(102) : 512;
  const sb = sectSize > 512 && sectSize <= 32768 && sectSize <= source.size ? Buffer.from(await source.read(0, sectSize)) : head;
  const vol = new XfsVolume(source, name, sb);
  const outer = options.signal;
  const description: SourceDescription = { format: 'xfs', name, size: source.size };
  const rootIno = vol.info.rootInode;

  async function entryOf(path: Buffer, ino: number, firstNames: Map<number, Buffer>, signal?: AbortSignal, child?: DirChild): Promise<{ entry: ImageEntry; inode: Inode }> {
    const inode = await vol.readInode(ino, path);
    const type = vol.checkInode(inode, path);
    if (child) vol.checkFtype(child, type);
    const entry: ImageEntry = {
      path, type, mode: inode.mode & 0o7777, uid: inode.uid, gid: inode.gid, mtimeNs: inode.mtimeNs,
      xattrs: vol.publicXattrs(inode, await vol.rawAttrs(inode, path, signal)), inode: ino,
    };
    if (type !== 'dir' && inode.nlink > 1) {
      const first = firstNames.get(ino);
      if (first !== undefined) return { entry: { ...entry, type: 'hardlink', linkTarget: first }, inode };
      firstNames.set(ino, path);
    }
    switch (type) {
      case 'file':
        entry.content = await vol.fileContent(inode, path, outer);
        break;
      case 'symlink':
        entry.linkTarget = await vol.symlinkTarget(inode, path, signal);
        break;
      case 'chr':
      case 'blk':
        entry.rdev = vol.rdevOf(inode);
        break;
      default:
        break;
    }
    return { entry, inode };
  }

  const reader: ImageReader = {
    description,
    async *entries(signal?: AbortSignal): AsyncGenerator<ImageEntry> {
      yield* walkEntries<DirChild>(outer, signal, (sig) => {
        const firstNames = new Map<number, Buffer>();
        return inodeTreeWalk(rootIno, (path, ino, child?: DirChild) => entryOf(path, ino, firstNames, sig, child),
          ({ inode }, path) => vol.listDir(inode, path, sig), (where, reason) => vol.corrupt(where, reason));
      });
    },
  };
  return { info: vol.info, reader };
}
