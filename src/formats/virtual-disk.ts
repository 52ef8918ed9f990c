/**
 * What the block-table disk formats (VHD, VHDX, VDI, VMDK) share: a read of the virtual disk split at the table's unit
 * (block, grain), and the allocated units as merged extents.
 */
import { SourceReadError } from '../errors.js';

/**
 * The little-endian unsigned 64-bit field at `at` of `buf` as a number; Infinity when it is 2^53 or more, so that a
 * later bounds check against the file or disk size refuses it rather than a rounded value passing.
 */
export function u64(buf: Buffer, at: number): number {
  const hi = buf.readUInt32LE(at + 4);
  return hi >= 0x200000 ? Number.POSITIVE_INFINITY : hi * 2 ** 32 + buf.readUInt32LE(at);
}

/** Throws SourceReadError unless `length` bytes at `offset` (safe integers) lie inside the `size`-byte virtual disk. */
export function checkRead(file: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new SourceReadError(file, `read of ${length} bytes at ${offset} lies outside the ${size}-byte virtual disk`);
  }
}

/**
 * Reads `length` bytes at `offset` of a virtual disk of `size` bytes, unit by unit: `fill(unit, inUnit, n, outAt)`
 * puts the `n` bytes at `inUnit` of `unit` into `out` at `outAt` (leaving zeros for an unallocated unit). Throws
 * SourceReadError for a read outside the disk.
 */
export async function readUnits(file: string, size: number, unitSize: number, offset: number, length: number,
  fill: (unit: number, inUnit: number, n: number, out: Buffer, outAt: number) => Promise<void>): Promise<Buffer> {
  checkRead(file, size, offset, length);
  const out = Buffer.alloc(length);
  for (let pos = offset; pos < offset + length;) {
    const u = Math.floor(pos / unitSize);
    const stop = Math.min(offset + length, (u + 1) * unitSize);
    await fill(u, pos - u * unitSize, stop - pos, out, pos - offset);
    pos = stop;
  }
  return out;
}

/** The allocated units (in increasing order) as extents of the disk, adjacent ones merged, the last cut at `size`. */
export async function* unitExtents(units: Iterable<number> | AsyncIterable<number>, unitSize: number, size: number): AsyncGenerator<{ offset: number; length: number }> {
  let cur: { offset: number; length: number } | undefined;
  for await (const u of units) {
    const offset = u * unitSize;
    const length = Math.min(size, offset + unitSize) - offset;
    if (cur && cur.offset + cur.length === offset) cur.length += length;
    else {
      if (cur) yield cur;
      cur = { offset, length };
    }
  }
  if (cur) yield cur;
}
