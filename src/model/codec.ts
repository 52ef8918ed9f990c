/** Canonical binary encoding primitives shared by every object type: LEB128 varints, zigzag, length-prefixed bytes. */

/** Largest value `Encoder.sbig` stores (what `Decoder.sbig` reads back: 12 bytes of 7 bits, zigzag). */
export const SBIG_MAX = (1n << 83n) - 1n;
/** Smallest value `Encoder.sbig` stores. */
export const SBIG_MIN = -(1n << 83n);

/** An ArrayBuffer that grows in place (ES2024; in V8 since 11.1, Node 20), as far as the address space it reserved. */
interface ResizableArrayBuffer extends ArrayBuffer {
  readonly resizable: boolean;
  readonly maxByteLength: number;
  resize(byteLength: number): void;
}
const ResizableArrayBuffer = ArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => ResizableArrayBuffer;
/**
 * From this size on, an Encoder grows in place: in a resizable ArrayBuffer that reserves address space ahead (at least
 * RESIZABLE_RESERVE), not by copying into a buffer twice the size. The copies left behind were garbage the collector
 * took its time with: a 10 GiB file's blob record is 6 MB, and its doublings left as much again.
 */
const RESIZABLE_FROM = 64 * 1024;
const RESIZABLE_RESERVE = 64 * 1024 * 1024;

/** Grows as it is written; `finish()` returns the exact bytes. */
export class Encoder {
  private buf: Buffer;
  private len = 0;

  /** `capacity`: the bytes the first buffer holds (it doubles whenever more are written). */
  constructor(capacity = 256) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = Math.max(this.buf.length, 1) * 2;
    while (size < this.len + n) size *= 2;
    const ab = this.buf.buffer as ResizableArrayBuffer;
    if (ab.resizable && size <= ab.maxByteLength) {
      ab.resize(size);
      this.buf = Buffer.from(ab, 0, size);
      return;
    }
    const next = size < RESIZABLE_FROM
      ? Buffer.allocUnsafe(size)
      : Buffer.from(new ResizableArrayBuffer(size, { maxByteLength: Math.max(RESIZABLE_RESERVE, 8 * size) }));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf[this.len++] = v;
    return this;
  }

  /** Unsigned LEB128 of a non-negative safe integer. */
  uint(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`cannot encode ${v} as an unsigned varint`);
    this.ensure(10);
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
    return this;
  }

  /** Zigzag + LEB128 of a signed bigint (used for ns timestamps, which exceed 2^53), in [SBIG_MIN, SBIG_MAX]. */
  sbig(v: bigint): this {
    if (v < SBIG_MIN || v > SBIG_MAX) throw new RangeError(`cannot encode ${v} as a signed varint`);
    let z = v >= 0n ? v << 1n : ((-v) << 1n) - 1n;
    this.ensure(20);
    while (z >= 0x80n) {
      this.buf[this.len++] = Number(z & 0x7fn) | 0x80;
      z >>= 7n;
    }
    this.buf[this.len++] = Number(z);
    return this;
  }

  raw(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  /** The bytes a hex string spells (an object id), written in place: no Buffer of their own. */
  hex(h: string): this {
    const n = h.length >>> 1;
    this.ensure(n);
    if (this.buf.write(h, this.len, n, 'hex') !== n) throw new RangeError(`not ${n} bytes of hex: '${h}'`);
    this.len += n;
    return this;
  }

  /** Bytes written so far. */
  get length(): number {
    return this.len;
  }

  /** `n` bytes left as they are (room to fill in later, through `view()`). */
  skip(n: number): this {
    this.ensure(n);
    this.len += n;
    return this;
  }

  /** Length-prefixed bytes. */
  bytes(b: Uint8Array): this {
    return this.uint(b.length).raw(b);
  }

  str(s: string): this {
    return this.bytes(Buffer.from(s, 'utf8'));
  }

  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }

  /** The bytes written so far, not copied: valid until the next write. */
  view(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

export class DecodeError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} at offset ${offset}`);
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Reads what Encoder wrote; every read is bounds-checked and throws DecodeError on malformed input. */
export class Decoder {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  u8(): number {
    if (this.pos >= this.buf.length) throw new DecodeError('unexpected end', this.pos);
    return this.buf[this.pos++]!;
  }

  uint(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      v += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(v)) break;
        if (i > 0 && b === 0) throw new DecodeError('non-canonical varint', this.pos - 1);
        return v;
      }
      mul *= 0x80;
    }
    throw new DecodeError('varint out of range', this.pos);
  }

  sbig(): bigint {
    let z = 0n;
    let shift = 0n;
    for (let i = 0; i < 12; i++) {
      const b = this.u8();
      z |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) throw new DecodeError('non-canonical varint', this.pos - 1);
        return z & 1n ? -((z + 1n) >> 1n) : z >> 1n;
      }
      shift += 7n;
    }
    throw new DecodeError('varint out of range', this.pos);
  }

  /** Steps over an sbig, checking it as sbig() does, without building the bigint. */
  skipSbig(): void {
    for (let i = 0; i < 12; i++) {
      const b = this.u8();
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) throw new DecodeError('non-canonical varint', this.pos - 1);
        return;
      }
    }
    throw new DecodeError('varint out of range', this.pos);
  }

  /** Whether the next bytes are `ascii` and a NUL (an object's header tag); steps over them if so. Throws when fewer bytes are left. */
  takeTag(ascii: string): boolean {
    const n = ascii.length;
    if (this.pos + n + 1 > this.buf.length) throw new DecodeError(`truncated (need ${n + 1} bytes)`, this.pos);
    if (this.buf[this.pos + n] !== 0) return false;
    for (let i = 0; i < n; i++) if (this.buf[this.pos + i] !== ascii.charCodeAt(i)) return false;
    this.pos += n + 1;
    return true;
  }

  /** Steps over `n` bytes (raw() without the view). */
  skip(n: number): void {
    if (n < 0 || this.pos + n > this.buf.length) throw new DecodeError(`truncated (need ${n} bytes)`, this.pos);
    this.pos += n;
  }

  /** Steps over a length-prefixed byte string; returns its length. */
  skipBytes(): number {
    const n = this.uint();
    this.skip(n);
    return n;
  }

  raw(n: number): Buffer {
    if (n < 0 || this.pos + n > this.buf.length) throw new DecodeError(`truncated (need ${n} bytes)`, this.pos);
    const out = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, n);
    this.pos += n;
    return out;
  }

  bytes(): Buffer {
    return this.raw(this.uint());
  }

  /** Length-prefixed UTF-8; invalid UTF-8 is refused, since decoding it lossily would re-encode to other bytes. */
  str(): string {
    const at = this.pos;
    const b = this.bytes();
    try {
      return UTF8.decode(b);
    } catch {
      throw new DecodeError('invalid UTF-8 string', at);
    }
  }

  expectEnd(): void {
    if (!this.done) throw new DecodeError('trailing bytes', this.pos);
  }
}

/** Writes the `kind\0version` header every encoded object starts with (as git's `tree <len>\0`). */
export function encodeHeader(e: Encoder, kind: string, version: number): Encoder {
  return e.raw(Buffer.from(kind + '\0', 'latin1')).u8(version);
}

/** Reads one byte and maps it back through a frozen code table (`{ tree: 1, disk: 2 }`); DecodeError naming `what` when unknown. */
export function decodeCode<K extends string>(d: Decoder, codes: Readonly<Record<K, number>>, what: string): K {
  const c = d.u8();
  const k = (Object.keys(codes) as K[]).find((x) => codes[x] === c);
  if (k === undefined) throw new DecodeError(`unknown ${what} ${c}`, d.pos - 1);
  return k;
}

export function decodeHeader(d: Decoder, kind: string, maxVersion: number): number {
  if (!d.takeTag(kind)) throw new DecodeError(`not a ${kind} object`, 0);
  const version = d.u8();
  if (version < 1 || version > maxVersion) throw new DecodeError(`unsupported ${kind} version ${version}`, kind.length + 1);
  return version;
}

/** An extended attribute as objects store it: UTF-8 name, raw value. */
export interface XattrValue {
  name: string;
  value: Uint8Array;
}

/** Writes xattrs as count + (str name, bytes value)*; they must be sorted by name bytes and unique. */
export function encodeXattrs(e: Encoder, xattrs: readonly XattrValue[]): Encoder {
  e.uint(xattrs.length);
  let prev: Buffer | undefined;
  for (const x of xattrs) {
    const n = Buffer.from(x.name, 'utf8');
    if (prev && Buffer.compare(prev, n) >= 0) throw new Error('cannot encode: xattrs not sorted or duplicated');
    prev = n;
    e.bytes(n).bytes(x.value);
  }
  return e;
}

/** Reads what encodeXattrs wrote, refusing unsorted or duplicate names (they would re-encode differently). */
export function decodeXattrs(d: Decoder): XattrValue[] {
  const n = d.uint();
  const out: XattrValue[] = [];
  let prev: Buffer | undefined;
  for (let i = 0; i < n; i++) {
    const at = d.pos;
    const name = d.str();
    const nb = Buffer.from(name, 'utf8');
    if (prev && Buffer.compare(prev, nb) >= 0) throw new DecodeError('xattrs not sorted or duplicated', at);
    prev = nb;
    out.push({ name, value: Buffer.from(d.bytes()) });
  }
  return out;
}

/** Two xattr lists are the same: names and values equal, in order (lists as trees keep them: sorted by name). */
export function sameXattrs(a: readonly XattrValue[], b: readonly XattrValue[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.name !== y.name || Buffer.compare(x.value, y.value) !== 0) return false;
  }
  return true;
}

/** A directory's own metadata (a tree entry's or a commit's rootMeta) is the same on both sides. */
export function sameMeta(a: { mode: number; uid: number; gid: number; mtimeNs: bigint; xattrs: readonly XattrValue[] }, b: typeof a): boolean {
  return a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.mtimeNs === b.mtimeNs && sameXattrs(a.xattrs, b.xattrs);
}

export function sortXattrs<T extends XattrValue>(xattrs: readonly T[]): T[] {
  return [...xattrs].sort((a, b) => Buffer.compare(Buffer.from(a.name, 'utf8'), Buffer.from(b.name, 'utf8')));
}
