/**
 * Hand-made ustar archives for hostile-input tests: GNU tar and tar-stream refuse to write '../x', absolute names or
 * a file "through" a symlink, so the 512-byte headers (with their checksum) are written here field by field.
 */

export const BLOCK = 512;

export type UstarType = '0' | '1' | '2' | '3' | '4' | '5' | '6' | 'x' | 'g' | 'L' | 'K';

export interface UstarMember {
  name: string | Buffer;
  /** '0' file (default), '1' hardlink, '2' symlink, '5' directory, ... */
  type?: UstarType;
  data?: Buffer | string;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch. */
  mtime?: number;
  /** Size written into the header; default: the data's length (set it to lie about the size). */
  size?: number;
}

function octal(b: Buffer, off: number, len: number, value: number): void {
  // len-1 octal digits, zero-padded, then NUL (the POSIX form).
  b.write(value.toString(8).padStart(len - 1, '0') + '\0', off, len, 'latin1');
}

function field(b: Buffer, off: number, len: number, value: string | Buffer): void {
  const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  if (v.length > len) throw new Error(`ustar field of ${len} bytes cannot hold ${v.length} bytes`);
  v.copy(b, off);
}

/** The header checksum: the sum of all 512 bytes with the checksum field itself counted as eight spaces. */
export function ustarChecksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum;
}

export function ustarHeader(m: UstarMember): Buffer {
  const h = Buffer.alloc(BLOCK);
  const type = m.type ?? '0';
  const dataLen = m.data === undefined ? 0 : Buffer.byteLength(m.data);
  field(h, 0, 100, m.name);
  octal(h, 100, 8, m.mode ?? (type === '5' ? 0o755 : type === '2' ? 0o777 : 0o644));
  octal(h, 108, 8, m.uid ?? 0);
  octal(h, 116, 8, m.gid ?? 0);
  octal(h, 124, 12, m.size ?? dataLen);
  octal(h, 136, 12, m.mtime ?? 1_700_000_000);
  h.write(type, 156, 1, 'latin1');
  if (m.linkname !== undefined) field(h, 157, 100, m.linkname);
  field(h, 257, 6, 'ustar\0');
  field(h, 263, 2, '00');
  field(h, 265, 32, 'root');
  field(h, 297, 32, 'root');
  octal(h, 329, 8, 0);
  octal(h, 337, 8, 0);
  // Six octal digits, NUL, space: what GNU tar writes.
  h.write(ustarChecksum(h).toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return h;
}

/** Header, data and the padding to the next 512-byte boundary. */
export function ustarMember(m: UstarMember): Buffer {
  const data = m.data === undefined ? Buffer.alloc(0) : Buffer.from(m.data);
  const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return Buffer.concat([ustarHeader(m), data, Buffer.alloc(pad)]);
}

/** A whole archive: the members and (unless `end` is false) the two zero blocks that end it. */
export function ustarArchive(members: UstarMember[], options: { end?: boolean } = {}): Buffer {
  const parts = members.map(ustarMember);
  if (options.end ?? true) parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}
