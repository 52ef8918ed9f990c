/**
 * VMware VMDK sparse extents as random-access BlockSources over the guest's disk: monolithicSparse (a 'KDMV' header,
 * a grain directory, grain tables, grains) and streamOptimized (the format inside OVA files: deflate-compressed
 * grains behind grain markers, the real header in a footer at the end of the file), and descriptor files whose
 * extents are all FLAT or ZERO (monolithicFlat, twoGbMaxExtentFlat). Split sparse extents are refused. Every offset taken from the image is checked against the file size
 * before use; the grain directory is read once (bounded by the disk size), grain tables and grains on demand.
 * Spec: VMware's "Virtual Disk Format 5.0". All fields are little-endian.
 */
import { checkRead, readUnits, u64, unitExtents } from './virtual-disk.js';
import path from 'node:path';
import zlib from 'node:zlib';
import { CorruptInputError, UnsupportedInputError } from '../errors.js';
import type { BlockSource } from './ext4.js';
import { type FileReader, openFile } from './qcow2.js';

const MAGIC = 0x564d444b; // 'KDMV'
const HEADER = 512;
const FLAG_COMPRESSED = 1 << 16;
const FLAG_MARKERS = 1 << 17;
const GD_AT_END = 0xffffffff;
const ZEROED = 1;
const MAX_SIZE = 2 ** 50;
const MAX_GD_BYTES = 64 * 1024 * 1024;
const GT_CACHE = 64;
const GRAIN_CACHE = 8;
/** Compressed grain buffers kept for reuse, and the least size one is made with. */
const SPARE_KEEP = 2;
const SPARE_MIN = 64 * 1024;

/** A VMDK opened by openVmdk. */
export type VmdkSource = BlockSource & {
  kind: 'monolithicSparse' | 'streamOptimized' | 'flat';
  /** Ranges that may hold data, in increasing order. */
  extents(): AsyncIterable<{ offset: number; length: number }>;
  close(): Promise<void>;
};

/** True when `head` (a file's first bytes) starts with the VMDK sparse extent magic 'KDMV'. */
export function isVmdk(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32LE(0) === MAGIC;
}

interface Header {
  at: number;
  flags: number;
  capacity: number;
  grainBytes: number;
  gtEntries: number;
  gdSector: number;
  compressAlgorithm: number;
}

function parseHeader(r: FileReader, h: Buffer, at: number): Header {
  const bad = (field: string, off: number, reason: string) => new CorruptInputError(r.file, `header.${field} (offset ${at + off})`, reason);
  if (!isVmdk(h)) throw bad('magic', 0, "not a VMDK sparse extent (magic is not 'KDMV')");
  const version = h.readUInt32LE(4);
  if (version < 1 || version > 3) throw new UnsupportedInputError(r.file, `VMDK sparse extent version ${version} (only 1 to 3 are supported)`);
  const flags = h.readUInt32LE(8);
  const capacity = u64(h, 12) * 512;
  if (!(capacity <= MAX_SIZE)) throw bad('capacity', 12, `capacity of ${h.readBigUInt64LE(12)} sectors is absurd`);
  const grain = u64(h, 20);
  if (!(grain >= 8 && grain <= 2 ** 15) || (grain & (grain - 1)) !== 0) throw bad('grainSize', 20, `grain of ${h.readBigUInt64LE(20)} sectors is not a power of two from 8 to 32768`);
  const gtEntries = h.readUInt32LE(44);
  if (gtEntries < 1 || gtEntries > 2 ** 16) throw bad('numGTEsPerGT', 44, `${gtEntries} entries per grain table is out of range`);
  const gdHi = h.readUInt32LE(60);
  const gdLo = h.readUInt32LE(56);
  const gdSector = gdHi === GD_AT_END && gdLo === GD_AT_END ? GD_AT_END : u64(h, 56);
  const compressAlgorithm = h.readUInt16LE(77);
  if (flags & FLAG_COMPRESSED && compressAlgorithm !== 1) throw new UnsupportedInputError(r.file, `VMDK compression algorithm ${compressAlgorithm} (only deflate, 1, is supported)`);
  if (flags & FLAG_COMPRESSED && !(flags & FLAG_MARKERS)) throw new UnsupportedInputError(r.file, 'compressed VMDK grains without markers are not supported');
  return { at, flags, capacity, grainBytes: grain * 512, gtEntries, gdSector, compressAlgorithm };
}

const DESCRIPTOR = '# Disk DescriptorFile';
const MAX_DESCRIPTOR = 64 * 1024;

/** True when `head` starts a VMDK text descriptor ('# Disk DescriptorFile'). */
export function isVmdkDescriptor(head: Buffer): boolean {
  return head.length >= DESCRIPTOR.length && head.toString('latin1', 0, DESCRIPTOR.length) === DESCRIPTOR;
}

/**
 * Opens a monolithicSparse, streamOptimized or flat (descriptor file) VMDK read-only. Throws CorruptInputError (bad magic, header fields,
 * directories, tables or grains outside the file, grains that do not inflate), UnsupportedInputError (other
 * versions and compressions) and SourceReadError (I/O); `read()` may throw the same on a bad table or grain.
 */
export async function openVmdk(file: string): Promise<VmdkSource> {
  const r = await openFile(file);
  try {
    const head = await r.read(0, Math.min(r.fileSize, MAX_DESCRIPTOR), 'descriptor');
    if (isVmdkDescriptor(head)) {
      if (r.fileSize > MAX_DESCRIPTOR) throw new CorruptInputError(file, 'descriptor', `a ${r.fileSize}-byte descriptor file is larger than ${MAX_DESCRIPTOR} bytes`);
      await r.fh.close();
      return await openFlat(file, head);
    }
    if (r.fileSize < HEADER) throw new CorruptInputError(file, 'header', `file too short for a VMDK header (${r.fileSize} bytes)`);
    let h = parseHeader(r, await r.read(0, HEADER, 'header'), 0);
    if (h.gdSector === GD_AT_END) {
      // streamOptimized: footer marker, footer (the real header), end-of-stream marker: the last 1536 bytes.
      if (r.fileSize < 4 * HEADER) throw new CorruptInputError(file, 'footer', `file too short for a VMDK footer (${r.fileSize} bytes)`);
      h = parseHeader(r, await r.read(r.fileSize - 2 * HEADER, HEADER, 'footer'), r.fileSize - 2 * HEADER);
      if (h.gdSector === GD_AT_END) throw new CorruptInputError(file, `footer.gdOffset (offset ${h.at + 56})`, 'the footer does not say where the grain directory is');
    }
    return await openSparse(r, h);
  } catch (e) {
    await r.fh.close().catch(() => {});
    throw e;
  }
}

async function openSparse(r: FileReader, h: Header): Promise<VmdkSource> {
  const file = r.file;
  const size = h.capacity;
  const gb = h.grainBytes;
  const span = gb * h.gtEntries;
  const gdCount = Math.ceil(size / span);
  const gdAt = h.gdSector * 512;
  if (gdCount * 4 > MAX_GD_BYTES) throw new CorruptInputError(file, `header.capacity (offset ${h.at + 12})`, `a grain directory of ${gdCount} entries is absurdly large`);
  if (!Number.isSafeInteger(gdAt) || gdAt + gdCount * 4 > r.fileSize) {
    throw new CorruptInputError(file, `header.gdOffset (offset ${h.at + 56})`, `grain directory at ${gdAt} (${gdCount * 4} bytes) lies past the end of the ${r.fileSize}-byte file`);
  }
  const gd = await r.read(gdAt, gdCount * 4, 'grain directory');
  const gtBytes = h.gtEntries * 4;
  for (let i = 0; i < gdCount; i++) {
    const s = gd.readUInt32LE(i * 4);
    if (s !== 0 && s * 512 + gtBytes > r.fileSize) {
      throw new CorruptInputError(file, `grain directory entry ${i} (offset ${gdAt + i * 4})`, `grain table at sector ${s} lies past the end of the ${r.fileSize}-byte file`);
    }
  }
  const compressed = (h.flags & FLAG_COMPRESSED) !== 0;
  const gts = new Map<number, Promise<Buffer>>();
  const table = (i: number): Promise<Buffer> | undefined => {
    const s = gd.readUInt32LE(i * 4);
    if (s === 0) return undefined;
    let p = gts.get(s);
    if (p) return p;
    p = r.read(s * 512, gtBytes, `grain table ${i}`);
    p.catch(() => gts.delete(s));
    gts.set(s, p);
    if (gts.size > GT_CACHE) gts.delete(gts.keys().next().value!);
    return p;
  };
  /** Sector of grain `g` (0: unallocated, 1: zeroed), validated. */
  const grainSector = async (g: number): Promise<number> => {
    const i = Math.floor(g / h.gtEntries);
    const t = table(i);
    if (!t) return 0;
    const j = g % h.gtEntries;
    const s = (await t).readUInt32LE(j * 4);
    if (s > ZEROED && s * 512 >= r.fileSize) {
      const where = `grain table ${i} entry ${j} (offset ${gd.readUInt32LE(i * 4) * 512 + j * 4})`;
      throw new CorruptInputError(file, where, `grain at sector ${s} lies past the end of the ${r.fileSize}-byte file`);
    }
    return s;
  };
  const grains = new Map<number, Promise<Buffer>>();
  /** The largest compressed grain accepted. */
  const maxRaw = gb + gb / 8 + 1024;
  /**
   * Buffers compressed grains are read into, reused (at most SPARE_KEEP kept): a new buffer for each of 12 461 grains,
   * with zlib's own, set off 117 full garbage collections in one commit (external memory); 87 with them.
   */
  const spare: Buffer[] = [];
  const inflated = (g: number, s: number): Promise<Buffer> => {
    let p = grains.get(s);
    if (p) return p;
    p = (async () => {
      const at = s * 512;
      const where = `grain marker at offset ${at} (guest offset ${g * gb})`;
      if (at + 12 > r.fileSize) throw new CorruptInputError(file, where, 'grain marker cut short by the end of the file');
      const m = await r.read(at, 12, 'grain marker');
      const len = m.readUInt32LE(8);
      // deflate never grows a grain by more than a few bytes per 16 KiB: a larger size is damage (and bounds memory).
      if (len > maxRaw) throw new CorruptInputError(file, where, `compressed grain of ${len} bytes is larger than a ${gb}-byte grain can deflate to`);
      if (len === 0 || at + 12 + len > r.fileSize) throw new CorruptInputError(file, where, `compressed grain of ${len} bytes lies past the end of the ${r.fileSize}-byte file`);
      let buf = spare.pop();
      if (!buf || buf.length < len) buf = Buffer.allocUnsafeSlow(Math.min(maxRaw, Math.max(len, SPARE_MIN)));
      try {
        await r.readInto(at + 12, len, buf, 0, 'compressed grain');
        return inflateGrain(buf.subarray(0, len), where);
      } finally {
        if (spare.length < SPARE_KEEP) spare.push(buf);
      }
    })();
    p.catch(() => grains.delete(s));
    grains.set(s, p);
    if (grains.size > GRAIN_CACHE) grains.delete(grains.keys().next().value!);
    return p;
  };
  /** A grain's deflate stream, inflated to the grain's size (zeros after a short one). */
  const inflateGrain = (raw: Buffer, where: string): Buffer => {
    let out: Buffer;
    try {
      // One output buffer (a byte more than a grain: one of exactly its size, once full, is followed by a second,
      // empty one), not zlib's default 16 KiB pieces joined by a copy: the 12 461 grains of the benchmark's base
      // inflate in 1.23–1.34 s instead of 1.41–1.48 s. (Inflating ahead on libuv's thread pool was tried: the commit
      // became slower, 9.1–9.9 s against 7.4–8.7 s.)
      out = zlib.inflateSync(raw, { maxOutputLength: gb, chunkSize: gb + 1 });
    } catch (e) {
      throw new CorruptInputError(file, where, `cannot inflate: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (out.length === gb) return out;
    const full = Buffer.alloc(gb);
    out.copy(full);
    return full;
  };
  return {
    kind: compressed ? 'streamOptimized' : 'monolithicSparse',
    size,
    read: (offset, length) => readUnits(file, size, gb, offset, length, async (g, inG, n, out, outAt) => {
      const s = await grainSector(g);
      if (s <= ZEROED) return;
      if (compressed) (await inflated(g, s)).copy(out, outAt, inG, inG + n);
      else await r.readInto(s * 512 + inG, n, out, outAt, `grain ${g}`);
    }),
    extents: () => unitExtents((async function* () {
      for (let i = 0; i < gdCount; i++) {
        if (gd.readUInt32LE(i * 4) === 0) continue;
        for (let g = i * h.gtEntries; g < (i + 1) * h.gtEntries && g * gb < size; g++) if ((await grainSector(g)) > ZEROED) yield g;
      }
    })(), gb, size),
    close: () => {
      spare.length = 0;
      return r.fh.close();
    },
  };
}

interface FlatExtent {
  start: number;
  size: number;
  /** undefined: a ZERO extent. */
  r?: FileReader;
  offset: number;
}

/** A descriptor file's FLAT and ZERO extents, laid end to end; the flat files are named relative to the descriptor. */
async function openFlat(file: string, text: Buffer): Promise<VmdkSource> {
  const extents: FlatExtent[] = [];
  const close = async () => {
    for (const e of extents) await e.r?.fh.close().catch(() => {});
  };
  try {
    let at = 0;
    let size = 0;
    for (const line of text.toString('latin1').split('\n')) {
      const where = `descriptor line at offset ${at}`;
      at += line.length + 1;
      const m = /^\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\w+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?\s*$/.exec(line);
      if (!m) continue;
      const sectors = Number(m[2]);
      const kind = m[3]!;
      if (!Number.isSafeInteger(sectors * 512) || size + sectors * 512 > MAX_SIZE) throw new CorruptInputError(file, where, `extent of ${m[2]} sectors is absurd`);
      if (kind === 'ZERO') extents.push({ start: size, size: sectors * 512, offset: 0 });
      else if (kind === 'FLAT' && m[4]) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(m[4])) throw new UnsupportedInputError(file, `extent file '${m[4]}' uses a protocol name`);
        const r = await openFile(path.resolve(path.dirname(file), m[4]));
        const offset = Number(m[5] ?? 0) * 512;
        extents.push({ start: size, size: sectors * 512, r, offset });
        if (!Number.isSafeInteger(offset) || offset + sectors * 512 > r.fileSize) {
          throw new CorruptInputError(file, where, `extent '${m[4]}' of ${sectors * 512} bytes at ${offset} lies past the end of the ${r.fileSize}-byte file`);
        }
      } else throw new UnsupportedInputError(file, `VMDK ${kind} extents in a descriptor file are not supported (only FLAT and ZERO)`);
      size += sectors * 512;
    }
    if (extents.length === 0) throw new CorruptInputError(file, 'descriptor', 'no extent lines');
    return {
      kind: 'flat',
      size,
      async read(offset, length) {
        checkRead(file, size, offset, length);
        const out = Buffer.alloc(length);
        for (const e of extents) {
          const a = Math.max(offset, e.start);
          const b = Math.min(offset + length, e.start + e.size);
          if (a < b && e.r) await e.r.readInto(e.offset + (a - e.start), b - a, out, a - offset, 'flat extent');
        }
        return out;
      },
      async *extents() {
        for (const e of extents) if (e.r && e.size > 0) yield { offset: e.start, length: e.size };
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
