/**
 * MBR (incl. extended/logical partitions) and GPT partition-table reader.
 *
 * Our own parser rather than an npm package: it is small, and a bit-exact rebuild of a disk needs the exact on-disk
 * fields (boot code, disk signature, EBR chains, GPT GUIDs/attributes/names, first/last usable LBA) plus the list of
 * byte ranges no partition covers, which `gaps()` hands to the disk writer to store raw.
 */
import zlib from 'node:zlib';
import { hex, type BlockSource } from './ext4.js';
import { CorruptInputError } from '../errors.js';

export interface Partition {
  /** 1-based: MBR primaries 1..4, logicals from 5; GPT: position in the entry array + 1. */
  index: number;
  /** Bytes from the start of the disk. */
  start: number;
  /** Bytes. */
  size: number;
  /** MBR: '0x83'; GPT: type GUID, lowercase. */
  type: string;
  /** GPT: UTF-16LE name, up to the first NUL. */
  name?: string;
  /** GPT: unique partition GUID, lowercase. */
  guid?: string;
  /** GPT: 64-bit attribute field as '0x' + 16 hex digits. */
  attributes?: string;
  /** MBR: boot indicator 0x80. */
  bootable?: boolean;
  /** MBR: a logical partition inside the extended one. */
  logical?: boolean;
}

export interface PartitionTable {
  kind: 'mbr' | 'gpt';
  sectorSize: number;
  /** Bytes. */
  diskSize: number;
  /** GPT disk GUID, lowercase. */
  diskGuid?: string;
  /** 32-bit disk signature at byte 440 of the MBR, as '0x%08x'. */
  diskSignature?: string;
  partitions: Partition[];
  /** The first 440 bytes of sector 0. */
  bootCode: Buffer;
  /** GPT: bytes. */
  firstUsable?: number;
  /** GPT: bytes, exclusive end (lastUsableLBA + 1 sectors). */
  lastUsable?: number;
  /** GPT: false when the primary header (or its partition array) was damaged and the backup was used. */
  headerCrcOk?: boolean;
}

const EXTENDED_TYPES = new Set([0x05, 0x0f, 0x85]);
const MAX_LOGICALS = 128;
const MAX_GPT_ARRAY = 128 * 1024;

/** A GUID in the mixed-endian text form sgdisk/sfdisk print (first three groups little-endian), lowercase. */
export function guidToString(b: Buffer, off = 0): string {
  const h = (from: number, to: number, rev: boolean): string => {
    const bytes = [...b.subarray(off + from, off + to)];
    if (rev) bytes.reverse();
    return bytes.map((x) => x.toString(16).padStart(2, '0')).join('');
  };
  return `${h(0, 4, true)}-${h(4, 6, true)}-${h(6, 8, true)}-${h(8, 10, false)}-${h(10, 16, false)}`;
}

function isZero(b: Buffer): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

interface MbrEntry { boot: number; type: number; lba: number; count: number }

function mbrEntries(sector: Buffer): MbrEntry[] {
  const out: MbrEntry[] = [];
  for (let i = 0; i < 4; i++) {
    const o = 446 + 16 * i;
    out.push({ boot: sector[o]!, type: sector[o + 4]!, lba: sector.readUInt32LE(o + 8), count: sector.readUInt32LE(o + 12) });
  }
  return out;
}

function hasSignature(sector: Buffer): boolean {
  return sector[510] === 0x55 && sector[511] === 0xaa;
}

/**
 * Reads the partition table of a whole disk. Returns undefined when sector 0 carries no 0x55AA signature (or its
 * entries are not a partition table, as on a FAT/NTFS boot sector), i.e. for a bare file system.
 * Throws CorruptInputError for tables that cannot describe a sane disk (partitions past the end, overlaps, EBR loops,
 * absurd GPT arrays, both GPT headers damaged).
 */
export async function readPartitionTable(src: BlockSource, name: string, options: { sectorSize?: 512 | 4096 } = {}): Promise<PartitionTable | undefined> {
  if (src.size < 512) return undefined;
  const mbr = await src.read(0, 512);
  if (!hasSignature(mbr)) return undefined;
  const entries = mbrEntries(mbr);
  // A VBR (FAT, NTFS) also ends in 0x55AA; its "entries" are code/data whose boot indicators are rarely 0x00/0x80.
  if (entries.some((e) => e.boot !== 0 && e.boot !== 0x80)) return undefined;
  const bootCode = Buffer.from(mbr.subarray(0, 440));
  const diskSignature = hex(mbr.readUInt32LE(440), 8);
  if (entries.some((e) => e.type === 0xee)) {
    return readGpt(src, name, options.sectorSize, bootCode, diskSignature);
  }
  return readMbr(src, name, options.sectorSize ?? 512, entries, bootCode, diskSignature);
}

async function readMbr(src: BlockSource, name: string, ss: number, entries: MbrEntry[], bootCode: Buffer, diskSignature: string): Promise<PartitionTable> {
  const diskSize = src.size;
  const partitions: Partition[] = [];
  let extended: Partition | undefined;
  entries.forEach((e, i) => {
    if (e.type === 0 || e.count === 0) return;
    const p: Partition = { index: i + 1, start: e.lba * ss, size: e.count * ss, type: hex(e.type, 2), bootable: e.boot === 0x80 };
    checkInside(name, p, 0, diskSize, 'the disk');
    if (EXTENDED_TYPES.has(e.type)) {
      if (extended) throw new CorruptInputError(name, `partition ${i + 1}`, 'a second extended partition');
      extended = p;
    }
    partitions.push(p);
  });
  if (partitions.some((p) => p.start === 0)) {
    throw new CorruptInputError(name, `partition ${partitions.find((p) => p.start === 0)!.index}`, 'starts at sector 0, over the MBR');
  }
  checkOverlaps(name, partitions);

  if (extended) {
    const extLba = extended.start / ss;
    const logicals: Partition[] = [];
    const seen = new Set<number>();
    let ebrLba = extLba;
    for (;;) {
      const where = `EBR at offset ${ebrLba * ss}`;
      if (seen.has(ebrLba)) throw new CorruptInputError(name, where, 'the EBR chain loops');
      seen.add(ebrLba);
      if (logicals.length >= MAX_LOGICALS) throw new CorruptInputError(name, where, `more than ${MAX_LOGICALS} logical partitions`);
      if (ebrLba * ss + 512 > extended.start + extended.size) throw new CorruptInputError(name, where, 'lies outside the extended partition');
      const ebr = await src.read(ebrLba * ss, 512);
      if (!hasSignature(ebr)) throw new CorruptInputError(name, where, 'no 0x55AA signature');
      const [cur, next] = mbrEntries(ebr) as [MbrEntry, MbrEntry, MbrEntry, MbrEntry];
      if (cur.type !== 0 && cur.count !== 0) {
        const p: Partition = {
          index: 5 + logicals.length, start: (ebrLba + cur.lba) * ss, size: cur.count * ss, type: hex(cur.type, 2),
          bootable: cur.boot === 0x80, logical: true,
        };
        if (cur.lba === 0) throw new CorruptInputError(name, `partition ${p.index}`, 'starts on its own EBR');
        checkInside(name, p, extended.start, extended.start + extended.size, 'the extended partition');
        logicals.push(p);
      }
      if (next.type === 0 || next.count === 0) break;
      ebrLba = extLba + next.lba;
    }
    checkOverlaps(name, logicals);
    partitions.push(...logicals);
  }
  return { kind: 'mbr', sectorSize: ss, diskSize, diskSignature, partitions, bootCode };
}

function checkInside(name: string, p: Partition, lo: number, hi: number, what: string): void {
  if (p.start < lo || p.start + p.size > hi) {
    throw new CorruptInputError(name, `partition ${p.index}`, `bytes ${p.start}+${p.size} lie outside ${what} (${lo}..${hi})`);
  }
}

function checkOverlaps(name: string, parts: Partition[]): void {
  const sorted = [...parts].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!, b = sorted[i]!;
    if (b.start < a.start + a.size) {
      throw new CorruptInputError(name, `partition ${b.index}`, `overlaps partition ${a.index}`);
    }
  }
}

interface GptHeader {
  diskGuid: string; firstUsable: number; lastUsable: number; entryLba: number; count: number; entrySize: number; array: Buffer;
}

function u64(b: Buffer, off: number): number {
  const v = b.readBigUInt64LE(off);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/** Parses and verifies the GPT header at `lba` and its partition array; returns the reason it is unusable otherwise. */
async function tryGptHeader(src: BlockSource, ss: number, lba: number): Promise<GptHeader | string> {
  const lbas = Math.floor(src.size / ss);
  if (lba < 1 || lba >= lbas) return 'lies outside the disk';
  const h = await src.read(lba * ss, ss);
  if (h.toString('latin1', 0, 8) !== 'EFI PART') return "no 'EFI PART' signature";
  const headerSize = h.readUInt32LE(12);
  if (headerSize < 92 || headerSize > ss) return `header size ${headerSize}`;
  const copy = Buffer.from(h.subarray(0, headerSize));
  copy.writeUInt32LE(0, 16);
  const crc = zlib.crc32(copy);
  if (crc !== h.readUInt32LE(16)) return `header CRC32 ${hex(h.readUInt32LE(16), 8)} != computed ${hex(crc, 8)}`;
  if (u64(h, 24) !== lba) return `header claims to be at LBA ${u64(h, 24)}`;
  const firstUsable = u64(h, 40), lastUsable = u64(h, 48), entryLba = u64(h, 72);
  const count = h.readUInt32LE(80), entrySize = h.readUInt32LE(84);
  if (entrySize < 128 || entrySize % 128 !== 0) return `partition entry size ${entrySize}`;
  if (count * entrySize > MAX_GPT_ARRAY) return `partition array of ${count} x ${entrySize} bytes exceeds ${MAX_GPT_ARRAY}`;
  if (firstUsable > lastUsable + 1 || lastUsable >= lbas) return `usable LBAs ${firstUsable}..${lastUsable} outside a ${lbas}-sector disk`;
  const arrayBytes = count * entrySize;
  if (entryLba < 1 || entryLba * ss + arrayBytes > src.size) return `partition array at LBA ${entryLba} lies outside the disk`;
  const array = Buffer.from(await src.read(entryLba * ss, arrayBytes));
  const acrc = zlib.crc32(array);
  if (acrc !== h.readUInt32LE(88)) return `partition array CRC32 ${hex(h.readUInt32LE(88), 8)} != computed ${hex(acrc, 8)}`;
  return { diskGuid: guidToString(h, 56), firstUsable, lastUsable, entryLba, count, entrySize, array };
}

async function readGpt(src: BlockSource, name: string, sectorSize: number | undefined, bootCode: Buffer, diskSignature: string): Promise<PartitionTable> {
  let ss = sectorSize ?? 512;
  if (sectorSize === undefined && src.size >= 8192) {
    // Probe: 4Kn disks keep the header at byte 4096.
    const at512 = (await src.read(512, 8)).toString('latin1');
    const at4096 = (await src.read(4096, 8)).toString('latin1');
    if (at512 !== 'EFI PART' && at4096 === 'EFI PART') ss = 4096;
  }
  const lastLba = Math.floor(src.size / ss) - 1;
  let header = await tryGptHeader(src, ss, 1);
  let headerCrcOk = true;
  if (typeof header === 'string') {
    const primaryReason = header;
    headerCrcOk = false;
    header = await tryGptHeader(src, ss, lastLba);
    if (typeof header === 'string') {
      throw new CorruptInputError(name, `GPT header at offset ${ss}`, `${primaryReason}; backup at offset ${lastLba * ss}: ${header}`);
    }
  }
  const { array, entrySize, count } = header;
  const partitions: Partition[] = [];
  for (let i = 0; i < count; i++) {
    const e = array.subarray(i * entrySize, (i + 1) * entrySize);
    if (isZero(e.subarray(0, 16))) continue;
    const first = u64(e, 32), last = u64(e, 40);
    if (last < first) throw new CorruptInputError(name, `partition ${i + 1}`, `last LBA ${last} before first LBA ${first}`);
    let nameBytes = e.subarray(56, entrySize);
    let end = 0;
    while (end + 1 < nameBytes.length && (nameBytes[end] !== 0 || nameBytes[end + 1] !== 0)) end += 2;
    nameBytes = nameBytes.subarray(0, end);
    const p: Partition = {
      index: i + 1, start: first * ss, size: (last - first + 1) * ss, type: guidToString(e, 0), name: nameBytes.toString('utf16le'),
      guid: guidToString(e, 16), attributes: `0x${e.readBigUInt64LE(48).toString(16).padStart(16, '0')}`,
    };
    checkInside(name, p, 0, src.size, 'the disk');
    checkInside(name, p, header.firstUsable * ss, (header.lastUsable + 1) * ss, 'the usable LBAs');
    partitions.push(p);
  }
  checkOverlaps(name, partitions);
  return {
    kind: 'gpt', sectorSize: ss, diskSize: src.size, diskGuid: header.diskGuid, diskSignature, partitions, bootCode,
    firstUsable: header.firstUsable * ss, lastUsable: (header.lastUsable + 1) * ss, headerCrcOk,
  };
}

/**
 * Byte ranges of the disk no (data) partition covers, in order: the MBR and boot code, GPT headers and arrays,
 * alignment gaps, EBRs and the slack of an extended partition, the tail of the disk. A disk writer stores them raw.
 * The extended partition itself counts as uncovered (only its logical partitions are data).
 */
export function gaps(table: PartitionTable): Array<{ start: number; size: number }> {
  const covered = table.partitions
    .filter((p) => !(table.kind === 'mbr' && !p.logical && EXTENDED_TYPES.has(Number.parseInt(p.type, 16))))
    .map((p) => [p.start, p.start + p.size] as const)
    .sort((a, b) => a[0] - b[0]);
  const out: Array<{ start: number; size: number }> = [];
  let pos = 0;
  for (const [s, e] of covered) {
    if (s > pos) out.push({ start: pos, size: s - pos });
    pos = Math.max(pos, e);
  }
  if (table.diskSize > pos) out.push({ start: pos, size: table.diskSize - pos });
  return out;
}
