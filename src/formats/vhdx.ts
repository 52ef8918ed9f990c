/**
 * VHDX images (Hyper-V, Azure; qemu's 'vhdx') as random-access BlockSources over the guest's disk: fixed and dynamic
 * disks. Layout (Microsoft's [MS-VHDX] v1): a 64 KiB file type identifier ('vhdxfile'), two headers ('head', crc32c,
 * the one with the higher sequence number wins), two copies of a region table ('regi', crc32c) naming the block
 * allocation table (BAT) and the metadata region; the metadata table ('metadata') gives the block size, the
 * virtual disk size, the sector sizes and whether the disk has a parent. The BAT has one entry per payload block, with
 * a sector bitmap entry after every chunk ratio of them; a block is zeros unless it is FULLY_PRESENT (then its bytes lie
 * at the entry's 1 MiB-aligned file offset). Differencing disks (has-parent, PARTIALLY_PRESENT blocks) are refused, and
 * so is an image whose log still holds entries to replay (it was not closed cleanly). Every checksum is verified and
 * every offset taken from the image is checked against the file size at open. All fields are little-endian.
 */
import { readUnits, u64, unitExtents } from './virtual-disk.js';
import { CorruptInputError, UnsupportedInputError } from '../errors.js';
import { crc32c } from './ext4.js';
import type { BlockSource } from './ext4.js';
import { type FileReader, openFile } from './qcow2.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const SIGNATURE = 'vhdxfile';
const HEADER_AT = [64 * KiB, 128 * KiB];
const HEADER_BYTES = 4 * KiB;
const REGION_AT = [192 * KiB, 256 * KiB];
const REGION_BYTES = 64 * KiB;
const MIN_FILE = 1 * MiB;
const MAX_REGION_ENTRIES = 2047;
const MAX_METADATA_ENTRIES = 2047;
/** [MS-VHDX] 2.2.2: a virtual disk holds at most 64 TiB. */
const MAX_SIZE = 64 * 2 ** 40;
const MAX_BAT_BYTES = 256 * MiB;

const BAT_GUID = '2dc27766-f623-4200-9d64-115e9bfd4a08';
const METADATA_GUID = '8b7ca206-4790-4b9a-b8fe-575f050f886e';
const FILE_PARAMETERS = 'caa16737-fa36-4d43-b3b6-33f0aa44e76b';
const VIRTUAL_DISK_SIZE = '2fa54224-cd1b-4876-b211-5dbed83bf4b8';
const VIRTUAL_DISK_ID = 'beca12ab-b2e6-4523-93ef-c309e000c746';
const LOGICAL_SECTOR_SIZE = '8141bf1d-a96f-4709-ba47-f233a8faab5f';
const PHYSICAL_SECTOR_SIZE = 'cda348c7-445d-4471-9cc9-e9885251c556';
const PARENT_LOCATOR = 'a8d35f2d-b30b-454d-abf7-d3d84834ab0c';
const KNOWN_METADATA = new Set([FILE_PARAMETERS, VIRTUAL_DISK_SIZE, VIRTUAL_DISK_ID, LOGICAL_SECTOR_SIZE, PHYSICAL_SECTOR_SIZE, PARENT_LOCATOR]);

/** Payload block states (BAT entry bits 0-2). */
const PAYLOAD_NOT_PRESENT = 0;
const PAYLOAD_UNDEFINED = 1;
const PAYLOAD_ZERO = 2;
const PAYLOAD_UNMAPPED = 3;
const PAYLOAD_FULLY_PRESENT = 6;
const PAYLOAD_PARTIALLY_PRESENT = 7;

/** A VHDX opened by openVhdx. */
export type VhdxSource = BlockSource & {
  /** Payload block size in bytes (1 MiB to 256 MiB). */
  blockSize: number;
  logicalSectorSize: number;
  physicalSectorSize: number;
  /** The file parameters' LeaveBlocksAllocated bit: a fixed disk (every block present). */
  fixed: boolean;
  /** Ranges that may hold data, in increasing order. */
  extents(): AsyncIterable<{ offset: number; length: number }>;
  close(): Promise<void>;
};

/** True when `head` (a file's first bytes) starts with the VHDX file type identifier 'vhdxfile'. */
export function isVhdx(head: Buffer): boolean {
  return head.length >= 8 && head.toString('latin1', 0, 8) === SIGNATURE;
}

/** A GUID as stored (first three fields little-endian), in its usual lowercase text form. */
function guid(b: Buffer, at: number): string {
  const h = (from: number, to: number) => b.toString('hex', at + from, at + to);
  const le = (from: number, n: number) => Buffer.from(b.subarray(at + from, at + from + n)).reverse().toString('hex');
  return `${le(0, 4)}-${le(4, 2)}-${le(6, 2)}-${h(8, 10)}-${h(10, 16)}`;
}

/** CRC-32C of `buf` with its 4-byte checksum field at `at` taken as zero. */
function checksum(buf: Buffer, at: number): number {
  const copy = Buffer.from(buf);
  copy.writeUInt32LE(0, at);
  return (crc32c(~0, copy) ^ ~0) >>> 0;
}

interface Header {
  at: number;
  sequence: bigint;
  logGuid: string;
  logOffset: number;
  logLength: number;
}

/** The current header: the valid one (signature 'head', crc32c) with the higher sequence number. */
async function readHeader(r: FileReader): Promise<Header> {
  const found: Header[] = [];
  const reasons: string[] = [];
  for (const at of HEADER_AT) {
    const h = await r.read(at, HEADER_BYTES, 'header');
    if (h.toString('latin1', 0, 4) !== 'head') { reasons.push(`header at offset ${at}: signature is not 'head'`); continue; }
    const sum = checksum(h, 4);
    if (h.readUInt32LE(4) !== sum) { reasons.push(`header at offset ${at}: checksum 0x${h.readUInt32LE(4).toString(16)} does not match its crc32c (0x${sum.toString(16)})`); continue; }
    const version = h.readUInt16LE(66);
    if (version !== 1) throw new UnsupportedInputError(r.file, `VHDX version ${version} (header at offset ${at}; only 1 is supported)`);
    found.push({ at, sequence: h.readBigUInt64LE(8), logGuid: guid(h, 48), logOffset: u64(h, 72), logLength: h.readUInt32LE(68) });
  }
  if (found.length === 0) throw new CorruptInputError(r.file, `header (offset ${HEADER_AT[0]})`, `no valid header: ${reasons.join('; ')}`);
  return found.reduce((a, b) => (b.sequence > a.sequence ? b : a));
}

const NO_LOG = '00000000-0000-0000-0000-000000000000';
const LOG_SLOT = 4 * KiB;
const MAX_LOG = 256 * MiB;

/**
 * The file offset of a log entry that may need replaying, or undefined when there is none: a zero log GUID means an
 * empty log ([MS-VHDX] 2.2.2); otherwise any 4 KiB slot of the log holding an entry header ('loge') with the
 * header's log GUID counts (conservative: its sequence and checksum are not followed, the image is refused).
 */
async function pendingLogEntry(r: FileReader, h: Header): Promise<number | undefined> {
  if (h.logGuid === NO_LOG) return undefined;
  const where = `header.log_offset (offset ${h.at + 72})`;
  if (!Number.isSafeInteger(h.logOffset) || h.logOffset % MiB !== 0 || h.logOffset < MIN_FILE || h.logLength % MiB !== 0 || h.logLength > MAX_LOG || h.logOffset + h.logLength > r.fileSize) {
    throw new CorruptInputError(r.file, where, `log at ${h.logOffset} (${h.logLength} bytes) is not 1 MiB-aligned past the headers or lies past the end of the ${r.fileSize}-byte file`);
  }
  for (let at = 0; at < h.logLength; at += MiB) {
    const part = await r.read(h.logOffset + at, MiB, 'log');
    for (let slot = 0; slot < MiB; slot += LOG_SLOT) {
      if (part.toString('latin1', slot, slot + 4) === 'loge' && guid(part, slot + 32) === h.logGuid) return h.logOffset + at + slot;
    }
  }
  return undefined;
}

interface Region {
  offset: number;
  length: number;
  /** File offset of the region table entry, for messages. */
  entryAt: number;
}

/** The BAT and metadata regions from the first valid region table (signature 'regi', crc32c). */
async function readRegions(r: FileReader): Promise<{ bat: Region; metadata: Region }> {
  const reasons: string[] = [];
  for (const at of REGION_AT) {
    const t = await r.read(at, REGION_BYTES, 'region table');
    if (t.toString('latin1', 0, 4) !== 'regi') { reasons.push(`region table at offset ${at}: signature is not 'regi'`); continue; }
    const sum = checksum(t, 4);
    if (t.readUInt32LE(4) !== sum) { reasons.push(`region table at offset ${at}: checksum 0x${t.readUInt32LE(4).toString(16)} does not match its crc32c (0x${sum.toString(16)})`); continue; }
    const count = t.readUInt32LE(8);
    if (count > MAX_REGION_ENTRIES) throw new CorruptInputError(r.file, `region table.entry_count (offset ${at + 8})`, `${count} entries is more than ${MAX_REGION_ENTRIES}`);
    let bat: Region | undefined;
    let metadata: Region | undefined;
    for (let i = 0; i < count; i++) {
      const e = 16 + i * 32;
      const id = guid(t, e);
      const region = { offset: u64(t, e + 16), length: t.readUInt32LE(e + 24), entryAt: at + e };
      const where = `region table entry ${i} (offset ${at + e})`;
      if (!Number.isSafeInteger(region.offset) || region.offset % MiB !== 0 || region.offset < MIN_FILE || region.offset + region.length > r.fileSize) {
        throw new CorruptInputError(r.file, where, `region at ${t.readBigUInt64LE(e + 16)} (${region.length} bytes) is not 1 MiB-aligned past the headers or lies past the end of the ${r.fileSize}-byte file`);
      }
      if (id === BAT_GUID) bat = region;
      else if (id === METADATA_GUID) metadata = region;
      else if (t.readUInt32LE(e + 28) & 1) throw new UnsupportedInputError(r.file, `VHDX region ${id} is required but unknown (${where})`);
    }
    if (!bat || !metadata) throw new CorruptInputError(r.file, `region table (offset ${at})`, `no ${bat ? 'metadata' : 'BAT'} region`);
    return { bat, metadata };
  }
  throw new CorruptInputError(r.file, `region table (offset ${REGION_AT[0]})`, `no valid region table: ${reasons.join('; ')}`);
}

interface Metadata {
  blockSize: number;
  leaveAllocated: boolean;
  size: number;
  logicalSectorSize: number;
  physicalSectorSize: number;
}

async function readMetadata(r: FileReader, region: Region): Promise<Metadata> {
  const file = r.file;
  const base = region.offset;
  if (region.length < 64 * KiB) throw new CorruptInputError(file, `region table entry (offset ${region.entryAt})`, `metadata region of ${region.length} bytes is shorter than its 64 KiB table`);
  const t = await r.read(base, 64 * KiB, 'metadata table');
  if (t.toString('latin1', 0, 8) !== 'metadata') throw new CorruptInputError(file, `metadata table (offset ${base})`, "signature is not 'metadata'");
  const count = t.readUInt16LE(10);
  if (count > MAX_METADATA_ENTRIES) throw new CorruptInputError(file, `metadata table.entry_count (offset ${base + 10})`, `${count} entries is more than ${MAX_METADATA_ENTRIES}`);
  const items = new Map<string, { buf: Buffer; at: number }>();
  for (let i = 0; i < count; i++) {
    const e = 32 + i * 32;
    const id = guid(t, e);
    const off = t.readUInt32LE(e + 16);
    const len = t.readUInt32LE(e + 20);
    const flags = t.readUInt32LE(e + 24);
    const where = `metadata entry ${i} (offset ${base + e})`;
    if (len === 0) continue;
    if (off < 64 * KiB || off + len > region.length || len > MiB) throw new CorruptInputError(file, where, `item at ${off} (${len} bytes) lies outside the ${region.length}-byte metadata region`);
    if (!KNOWN_METADATA.has(id) && flags & 4) throw new UnsupportedInputError(file, `VHDX metadata item ${id} is required but unknown (${where})`);
    items.set(id, { buf: await r.read(base + off, len, `metadata item ${id}`), at: base + off });
  }
  const item = (id: string, name: string, min: number) => {
    const it = items.get(id);
    if (!it) throw new CorruptInputError(file, `metadata table (offset ${base})`, `no ${name} item`);
    if (it.buf.length < min) throw new CorruptInputError(file, `${name} (offset ${it.at})`, `item of ${it.buf.length} bytes is shorter than ${min}`);
    return it;
  };
  const fp = item(FILE_PARAMETERS, 'file parameters', 8);
  const blockSize = fp.buf.readUInt32LE(0);
  const bits = fp.buf.readUInt32LE(4);
  if (bits & 2 || items.has(PARENT_LOCATOR)) throw new UnsupportedInputError(file, 'differencing VHDX (has a parent) is not supported; merge it into its parent first');
  if (blockSize < MiB || blockSize > 256 * MiB || (blockSize & (blockSize - 1)) !== 0) {
    throw new CorruptInputError(file, `file parameters.block_size (offset ${fp.at})`, `block size ${blockSize} is not a power of two from 1 MiB to 256 MiB`);
  }
  const ls = item(LOGICAL_SECTOR_SIZE, 'logical sector size', 4);
  const logicalSectorSize = ls.buf.readUInt32LE(0);
  if (logicalSectorSize !== 512 && logicalSectorSize !== 4096) throw new CorruptInputError(file, `logical sector size (offset ${ls.at})`, `${logicalSectorSize} is neither 512 nor 4096`);
  const ps = item(PHYSICAL_SECTOR_SIZE, 'physical sector size', 4);
  const physicalSectorSize = ps.buf.readUInt32LE(0);
  if (physicalSectorSize !== 512 && physicalSectorSize !== 4096) throw new CorruptInputError(file, `physical sector size (offset ${ps.at})`, `${physicalSectorSize} is neither 512 nor 4096`);
  const vs = item(VIRTUAL_DISK_SIZE, 'virtual disk size', 8);
  const size = u64(vs.buf, 0);
  if (!(size <= MAX_SIZE) || size % logicalSectorSize !== 0) {
    throw new CorruptInputError(file, `virtual disk size (offset ${vs.at})`, `${vs.buf.readBigUInt64LE(0)} bytes is not a multiple of the ${logicalSectorSize}-byte sector up to 64 TiB`);
  }
  return { blockSize, leaveAllocated: (bits & 1) !== 0, size, logicalSectorSize, physicalSectorSize };
}

/**
 * Opens a fixed or dynamic VHDX read-only. Throws CorruptInputError (bad signature, no valid header or region table,
 * bad metadata, BAT entries outside the file), UnsupportedInputError (other versions, differencing disks, unknown
 * required regions or metadata, a log to replay) and SourceReadError (I/O). Call `close()`.
 */
export async function openVhdx(file: string): Promise<VhdxSource> {
  const r = await openFile(file);
  try {
    if (r.fileSize < MIN_FILE) throw new CorruptInputError(file, 'file type identifier', `file too short for a VHDX image (${r.fileSize} bytes, at least 1 MiB)`);
    if (!isVhdx(await r.read(0, 8, 'file type identifier'))) throw new CorruptInputError(file, 'file type identifier (offset 0)', "not a VHDX image (signature is not 'vhdxfile')");
    const header = await readHeader(r);
    const pending = await pendingLogEntry(r, header);
    if (pending !== undefined) {
      throw new UnsupportedInputError(file, `the VHDX log holds entries to replay (log entry at offset ${pending}, header at offset ${header.at}): the image was not closed cleanly; open it once read-write (e.g. 'qemu-img check -r all') and commit again`);
    }
    const { bat: batRegion, metadata } = await readRegions(r);
    const m = await readMetadata(r, metadata);
    const { blockSize, size } = m;
    const chunkRatio = (2 ** 23 * m.logicalSectorSize) / blockSize;
    const blocks = Math.ceil(size / blockSize);
    const entries = blocks === 0 ? 0 : blocks + Math.floor((blocks - 1) / chunkRatio);
    if (entries * 8 > batRegion.length || entries * 8 > MAX_BAT_BYTES) {
      throw new CorruptInputError(file, `region table entry (offset ${batRegion.entryAt})`, `BAT region of ${batRegion.length} bytes is too small for the ${entries} entries of a ${size}-byte disk of ${blockSize}-byte blocks`);
    }
    const bat = await r.read(batRegion.offset, entries * 8, 'BAT');
    /** File offset of payload block `b`, or 0 when it reads as zeros. */
    const hostOf = (b: number): number => {
      const i = b + Math.floor(b / chunkRatio);
      const lo = bat.readUInt32LE(i * 8);
      return (lo & 7) === PAYLOAD_FULLY_PRESENT ? bat.readUInt32LE(i * 8 + 4) * 2 ** 32 + ((lo & 0xfff00000) >>> 0) : 0;
    };
    // Every entry checked now: a block that does not fit in the file is an error at open, not mid-commit.
    for (let b = 0; b < blocks; b++) {
      const i = b + Math.floor(b / chunkRatio);
      const at = batRegion.offset + i * 8;
      const lo = bat.readUInt32LE(i * 8);
      const hi = bat.readUInt32LE(i * 8 + 4);
      const state = lo & 7;
      const where = `BAT entry ${i} (offset ${at})`;
      if (state === PAYLOAD_NOT_PRESENT || state === PAYLOAD_UNDEFINED || state === PAYLOAD_ZERO || state === PAYLOAD_UNMAPPED) continue;
      if (state === PAYLOAD_PARTIALLY_PRESENT) throw new CorruptInputError(file, where, 'block partially present (state 7) in a disk without a parent');
      if (state !== PAYLOAD_FULLY_PRESENT) throw new CorruptInputError(file, where, `unknown payload block state ${state}`);
      const host = hi * 2 ** 32 + ((lo & 0xfff00000) >>> 0);
      const n = Math.min(blockSize, size - b * blockSize);
      if (host < MIN_FILE || host + n > r.fileSize) {
        throw new CorruptInputError(file, where, `block ${b} at ${host} (${n} bytes) lies inside the headers or past the end of the ${r.fileSize}-byte file`);
      }
    }
    return {
      size,
      blockSize,
      logicalSectorSize: m.logicalSectorSize,
      physicalSectorSize: m.physicalSectorSize,
      fixed: m.leaveAllocated,
      read: (offset, length) => readUnits(file, size, blockSize, offset, length, async (b, inUnit, n, out, outAt) => {
        const host = hostOf(b);
        if (host !== 0) await r.readInto(host + inUnit, n, out, outAt, `block ${b}`);
      }),
      extents: () => unitExtents((function* () {
        for (let b = 0; b < blocks; b++) if (hostOf(b) !== 0) yield b;
      })(), blockSize, size),
      close: () => r.fh.close(),
    };
  } catch (e) {
    await r.fh.close().catch(() => {});
    throw e;
  }
}
