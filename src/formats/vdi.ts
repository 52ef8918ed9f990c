/**
 * VirtualBox VDI images (header version 1.1, as VirtualBox and qemu write them) as random-access BlockSources over
 * the guest's disk: static (every block allocated) and dynamic (a block map; 0xffffffff = unallocated and
 * 0xfffffffe = discarded read as zeros). Undo and differencing images are refused. Every offset taken from the
 * image is checked against the file size before use; the block map is read once (bounded by the disk size), blocks
 * on demand. All fields are little-endian.
 */
import { readUnits, u64, unitExtents } from './virtual-disk.js';
import { CorruptInputError, UnsupportedInputError } from '../errors.js';
import type { BlockSource } from './ext4.js';
import { openFile } from './qcow2.js';

const SIGNATURE = 0xbeda107f;
const SIGNATURE_AT = 0x40;
const HEADER_BYTES = 0x190;
const TYPE_DYNAMIC = 1;
const TYPE_STATIC = 2;
const UNALLOCATED = 0xffffffff;
const DISCARDED = 0xfffffffe;
const MAX_SIZE = 2 ** 50;
const MAX_BLOCK = 2 ** 28;
const MAX_MAP_BYTES = 256 * 1024 * 1024;

/** A VDI opened by openVdi. */
export type VdiSource = BlockSource & {
  kind: 'static' | 'dynamic';
  /** Ranges that may hold data, in increasing order. */
  extents(): AsyncIterable<{ offset: number; length: number }>;
  close(): Promise<void>;
};

/** True when `head` (a file's first bytes, at least 0x44) holds the VDI signature 0xbeda107f at offset 0x40. */
export function isVdi(head: Buffer): boolean {
  return head.length >= SIGNATURE_AT + 4 && head.readUInt32LE(SIGNATURE_AT) === SIGNATURE;
}

/**
 * Opens a static or dynamic VDI read-only. Throws CorruptInputError (bad signature, header fields, block map or
 * blocks outside the file), UnsupportedInputError (other versions, undo/differencing images) and SourceReadError
 * (I/O). Call `close()`.
 */
export async function openVdi(file: string): Promise<VdiSource> {
  const r = await openFile(file);
  try {
    const bad = (field: string, off: number, reason: string) => new CorruptInputError(file, `header.${field} (offset ${off})`, reason);
    if (r.fileSize < HEADER_BYTES) throw new CorruptInputError(file, 'header', `file too short for a VDI header (${r.fileSize} bytes)`);
    const h = await r.read(0, HEADER_BYTES, 'header');
    if (!isVdi(h)) throw bad('signature', SIGNATURE_AT, 'not a VDI image (signature is not 0xbeda107f)');
    const version = h.readUInt32LE(0x44);
    if (version !== 0x00010001) throw new UnsupportedInputError(file, `VDI header version ${version >>> 16}.${version & 0xffff} (only 1.1 is supported)`);
    const headerSize = h.readUInt32LE(0x48);
    if (headerSize < HEADER_BYTES - 0x48 || headerSize > r.fileSize) throw bad('header_size', 0x48, `header size ${headerSize} is invalid`);
    const type = h.readUInt32LE(0x4c);
    if (type === 3 || type === 4) throw new UnsupportedInputError(file, `VDI ${type === 3 ? 'undo' : 'differencing'} image (type ${type}) is not supported`);
    if (type !== TYPE_DYNAMIC && type !== TYPE_STATIC) throw bad('image_type', 0x4c, `image type ${type} is neither dynamic (1) nor static (2)`);
    const mapAt = h.readUInt32LE(0x154);
    const dataAt = h.readUInt32LE(0x158);
    const sectorSize = h.readUInt32LE(0x168);
    if (sectorSize !== 512) throw bad('sector_size', 0x168, `sector size ${sectorSize} is not 512`);
    const size = u64(h, 0x170);
    if (size > MAX_SIZE) throw bad('disk_size', 0x170, `disk size ${h.readBigUInt64LE(0x170)} is absurd (more than 2^50 bytes)`);
    const blockSize = h.readUInt32LE(0x178);
    if (blockSize < 512 || blockSize > MAX_BLOCK || blockSize % 512 !== 0) throw bad('block_size', 0x178, `block size ${blockSize} is not a multiple of 512 up to 256 MiB`);
    const extra = h.readUInt32LE(0x17c);
    if (extra !== 0) throw new UnsupportedInputError(file, `VDI blocks with ${extra} extra bytes are not supported`);
    const blocks = h.readUInt32LE(0x180);
    const needed = Math.ceil(size / blockSize);
    if (blocks < needed) throw bad('blocks_in_image', 0x180, `${blocks} blocks are too few for a ${size}-byte disk of ${blockSize}-byte blocks (needs ${needed})`);
    if (needed * 4 > MAX_MAP_BYTES) throw bad('blocks_in_image', 0x180, `a block map of ${needed} entries is absurdly large`);
    if (mapAt < HEADER_BYTES || mapAt + needed * 4 > r.fileSize) {
      throw bad('offset_bmap', 0x154, `block map at ${mapAt} (${needed * 4} bytes) lies inside the header or past the end of the ${r.fileSize}-byte file`);
    }
    const map = await r.read(mapAt, needed * 4, 'block map');
    // Every entry checked now: a block that does not fit in the file is an error at open, not mid-commit.
    for (let i = 0; i < needed; i++) {
      const e = map.readUInt32LE(i * 4);
      if (e === UNALLOCATED || e === DISCARDED) continue;
      const at = dataAt + e * blockSize;
      if (e >= blocks || at + Math.min(blockSize, size - i * blockSize) > r.fileSize) {
        throw new CorruptInputError(file, `block map entry ${i} (offset ${mapAt + i * 4})`, `block ${e} (byte ${at}) lies outside the image's ${blocks} blocks or past the end of the ${r.fileSize}-byte file`);
      }
    }
    return {
      kind: type === TYPE_STATIC ? 'static' : 'dynamic',
      size,
      read: (offset, length) => readUnits(file, size, blockSize, offset, length, async (b, inUnit, n, out, outAt) => {
        const e = map.readUInt32LE(b * 4);
        if (e !== UNALLOCATED && e !== DISCARDED) await r.readInto(dataAt + e * blockSize + inUnit, n, out, outAt, `block ${b}`);
      }),
      extents: () => unitExtents((function* () {
        for (let b = 0; b < needed; b++) {
          const e = map.readUInt32LE(b * 4);
          if (e !== UNALLOCATED && e !== DISCARDED) yield b;
        }
      })(), blockSize, size),
      close: () => r.fh.close(),
    };
  } catch (e) {
    await r.fh.close().catch(() => {});
    throw e;
  }
}
