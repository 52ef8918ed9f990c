/** Tar archives as images: a streaming reader (ustar, GNU, pax, every GNU sparse flavour; gzip/zstd/xz/bzip2 by content, lzma on request) and a pax writer. */
//
// The parser and serializer are written here rather than taken from tar-stream: tar-stream has no GNU or pax sparse
// support, and it decodes pax records and names as UTF-8, which loses non-UTF-8 names and binary xattr values.
// Everything below keeps names and pax values as raw bytes and never holds a whole member or archive in memory.
import fs from 'node:fs';
import { hexIfNotUtf8 } from '../model/quote.js';
import { SBIG_MAX, SBIG_MIN } from '../model/codec.js';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { spawn, type ChildProcess } from 'node:child_process';
import { finished, pipeline } from 'node:stream/promises';
import { Writable, type Readable } from 'node:stream';
import { CompressStream, DecompressStream } from 'zstd-napi';
import type { DataPiece, EntryType, FileContent, ImageEntry, ImageReader, ImageWriter, SourceDescription, WriterWarning, Xattr } from './types.js';
import {
  AbortedError, CheckoutError, CorruptInputError, SourceReadError, UnsafeInputError, UnsupportedInputError, VivaError, systemReason,
} from '../errors.js';

/** Tar's unit: headers and member data are padded to whole blocks. */
const BLOCK = 512;
/** GNU tar pads whole archives to its default record (blocking factor 20); readers expect nothing more. */
const RECORD_SIZE = 10240;
/** Largest data piece `content.read()` yields. */
export const DEFAULT_PIECE_SIZE = 1 << 20;
/** Read size for uncompressed archives. */
const FILE_CHUNK = 1 << 20;
/** Pax and GNU long-name members are metadata held in memory; anything larger is refused as corrupt. */
const MAX_META_SIZE = 64 << 20;
/**
 * The writer must know a file's hole map before its header, but pieces arrive as a stream: it holds up to this many
 * data bytes in memory, and spools the rest of a larger file to a temporary file next to the output.
 */
export const DEFAULT_SPOOL_THRESHOLD = 4 << 20;

type Compression = TarReadCompression;
/** What the writer produces. */
export type TarCompression = 'none' | 'gzip' | 'zstd' | 'xz' | 'bzip2';
/**
 * What the reader takes: the writer's set plus lzma (xz's legacy "lzma alone" format, which .deb members may still
 * use). lzma has no reliable magic number, so it is only read when the caller names it (`OpenTarOptions.compression`).
 */
export type TarReadCompression = TarCompression | 'lzma';

/** The destination name that means standard output (as `tar -cf -`). */
export const STDOUT_DEST = '-';

const FORMAT_NAMES: Record<Compression, string> = {
  none: 'tar', gzip: 'tar+gzip', zstd: 'tar+zstd', xz: 'tar+xz', bzip2: 'tar+bzip2', lzma: 'tar+lzma',
};

/** Decompressor programs run as children, with their arguments (xz reads lzma-alone streams too). */
const CHILD_DECOMPRESSORS: Partial<Record<Compression, { program: string; args: string[] }>> = {
  xz: { program: 'xz', args: ['-dc'] },
  bzip2: { program: 'bzip2', args: ['-dc'] },
  lzma: { program: 'xz', args: ['--format=lzma', '-dc'] },
};

/** A byte range of a file: an archive embedded in another one (a .deb member). */
export interface ByteRange {
  offset: number;
  length: number;
}

function errCode(e: unknown): string | undefined {
  const c = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof c === 'string' ? c : undefined;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Human form of raw name bytes for messages: UTF-8 where valid, control characters escaped. */
function show(p: Buffer): string {
  // eslint-disable-next-line no-control-regex
  return p.toString('utf8').replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32BE(0) === 0x28b52ffd) return 'zstd';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 3 && head.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  return 'none';
}

// ---------------------------------------------------------------------------------------------------------------
// Byte sources: the decompressed archive as a sequence of chunks, and a reader that takes exact byte counts from it.

interface ChunkSource {
  /** Next chunk, or null at the end. Errors are raw (mapped by ByteReader). */
  read(): Promise<Buffer | null>;
  /** Skips up to n bytes without reading them, when the source can seek; returns how many were skipped. */
  skip?(n: number): Promise<number>;
  close(): Promise<void>;
}

/** An uncompressed regular file (or device): positional reads, and skipping by seeking when the size is known. */
class FileChunkSource implements ChunkSource {
  private pos = 0;
  /** `size` bytes from `base` (a range of the file), or the file to its end when the size is unknown. */
  constructor(private readonly fh: fsp.FileHandle, private readonly size: number | undefined, private readonly base = 0) {}
  async read(): Promise<Buffer | null> {
    const want = this.size === undefined ? FILE_CHUNK : Math.min(FILE_CHUNK, this.size - this.pos);
    if (want <= 0) return null;
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await this.fh.read(buf, 0, want, this.base + this.pos);
    if (bytesRead === 0) return null;
    this.pos += bytesRead;
    return buf.subarray(0, bytesRead);
  }
  get skip(): ((n: number) => Promise<number>) | undefined {
    if (this.size === undefined) return undefined;
    const size = this.size;
    return async (n: number) => {
      const k = Math.max(0, Math.min(n, size - this.pos));
      this.pos += k;
      return k;
    };
  }
  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}

/** A Node readable (a decompressor fed by the file). */
class StreamChunkSource implements ChunkSource {
  private readonly it: AsyncIterator<Buffer>;
  constructor(private readonly streams: Array<Readable | Writable>, out: Readable) {
    this.it = out[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }
  async read(): Promise<Buffer | null> {
    const r = await this.it.next();
    return r.done ? null : r.value;
  }
  async close(): Promise<void> {
    for (const s of this.streams) s.destroy();
    await this.it.return?.().catch(() => undefined);
  }
}

/** Raised by ChildChunkSource when the decompressor program fails; mapped to CorruptInputError with the offset. */
class ChildFailure extends Error {}

/**
 * A decompressor program (xz, bzip2) reading the file on stdin (its descriptor, or a stream of a byte range); its
 * exit status is checked at the end of output.
 */
class ChildChunkSource implements ChunkSource {
  private readonly child: ChildProcess;
  private readonly it: AsyncIterator<Buffer>;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>;
  private stderr = '';
  private input: Readable | undefined;
  constructor(private readonly file: string, private readonly program: string, args: string[], input: number | Readable) {
    this.child = spawn(program, args, { stdio: [typeof input === 'number' ? input : 'pipe', 'pipe', 'pipe'] });
    if (typeof input !== 'number') {
      this.input = input;
      // A child that stops reading early (corrupt data, or closed by us) makes the pipe fail: its exit status says why.
      this.child.stdin!.on('error', () => undefined);
      input.on('error', () => this.child.stdin!.destroy());
      input.pipe(this.child.stdin!);
    }
    this.exited = new Promise((resolve) => {
      this.child.once('error', (error) => resolve({ code: null, signal: null, error }));
      this.child.once('close', (code, signal) => resolve({ code, signal }));
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      if (this.stderr.length < 4096) this.stderr += d.toString('utf8');
    });
    // Listen for 'readable' at once: a child that exits before the first read() would otherwise have its unread
    // stdout resumed and dropped by node (child_process flushStdio), and a small archive would read as empty.
    this.child.stdout!.on('readable', () => undefined);
    this.it = this.child.stdout![Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }
  async read(): Promise<Buffer | null> {
    const r = await this.it.next().catch(() => ({ done: true as const, value: undefined }));
    if (!r.done) return r.value;
    const st = await this.exited;
    if (st.error) {
      if (errCode(st.error) === 'ENOENT') {
        throw new UnsupportedInputError(this.file, `reading ${this.program}-compressed archives needs '${this.program}', which is not installed`);
      }
      throw new ChildFailure(`${this.program}: ${st.error.message}`);
    }
    if (st.code !== 0) {
      const detail = this.stderr.trim().split('\n')[0]!.trim().replace(/[;.]$/, '');
      throw new ChildFailure(detail || `${this.program} exited with ${st.code ?? st.signal}`);
    }
    return null;
  }
  async close(): Promise<void> {
    this.input?.destroy();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill();
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
  }
}

/** Takes exact byte counts from a ChunkSource, tracking the offset in the (decompressed) archive for messages. */
class ByteReader {
  private bufs: Buffer[] = [];
  private buffered = 0;
  private eof = false;
  /** Bytes of the archive consumed so far. */
  offset = 0;

  constructor(private readonly src: ChunkSource, private readonly mapError: (e: unknown, offset: number) => Error) {}

  private async next(): Promise<Buffer | null> {
    try {
      return await this.src.read();
    } catch (e) {
      throw this.mapError(e, this.offset + this.buffered);
    }
  }

  private async fill(n: number): Promise<void> {
    while (this.buffered < n && !this.eof) {
      const c = await this.next();
      if (c === null) {
        this.eof = true;
        break;
      }
      if (c.length) {
        this.bufs.push(c);
        this.buffered += c.length;
      }
    }
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.bufs[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.bufs.shift();
      else this.bufs[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const b = this.bufs[0]!;
        const k = Math.min(b.length, n - at);
        b.copy(out, at, 0, k);
        at += k;
        if (k === b.length) this.bufs.shift();
        else this.bufs[0] = b.subarray(k);
      }
    }
    this.buffered -= n;
    this.offset += n;
    return out;
  }

  /** Exactly n bytes, or fewer only at the end of the archive. */
  async readExact(n: number): Promise<Buffer> {
    await this.fill(n);
    return this.take(Math.min(n, this.buffered));
  }

  /** The next n bytes (fewer only at the end of the archive), left unread. */
  async peek(n: number): Promise<Buffer> {
    await this.fill(n);
    const k = Math.min(n, this.buffered);
    const first = this.bufs[0];
    if (first && first.length >= k) return first.subarray(0, k);
    return Buffer.concat(this.bufs).subarray(0, k);
  }

  /** Between 1 and max bytes (empty only at the end), without copying when the bytes sit in one chunk. */
  async readSome(max: number): Promise<Buffer> {
    if (this.buffered === 0) await this.fill(1);
    if (this.buffered === 0) return Buffer.alloc(0);
    return this.take(Math.min(max, this.bufs[0]!.length));
  }

  /** Skips n bytes; returns how many there were (fewer only at the end of the archive). */
  async skip(n: number): Promise<number> {
    let done = 0;
    while (done < n && this.bufs.length) {
      const k = Math.min(n - done, this.bufs[0]!.length);
      this.take(k);
      done += k;
    }
    if (done < n && this.src.skip && !this.eof) {
      let k: number;
      try {
        k = await this.src.skip(n - done);
      } catch (e) {
        throw this.mapError(e, this.offset);
      }
      this.offset += k;
      done += k;
    }
    while (done < n) {
      const c = await this.readSome(Math.min(n - done, FILE_CHUNK));
      if (c.length === 0) break;
      done += c.length;
    }
    return done;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Header fields.

/** The bytes of a NUL-terminated field, copied (never a view into a chunk that would keep it alive). */
function cstring(b: Buffer, off: number, len: number): Buffer {
  const f = b.subarray(off, off + len);
  const nul = f.indexOf(0);
  return Buffer.from(nul < 0 ? f : f.subarray(0, nul));
}

/** Octal (space/NUL padded) or base-256 (GNU/star: high bit set, two's complement) numeric field; undefined if invalid. */
function parseNumeric(b: Buffer, off: number, len: number): bigint | undefined {
  const b0 = b[off]!;
  if (b0 & 0x80) {
    let v = BigInt(b0 & 0x7f);
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(b[off + i]!);
    if (b0 & 0x40) v -= 1n << BigInt(8 * len - 1);
    return v;
  }
  let i = off;
  const end = off + len;
  while (i < end && (b[i] === 0x20 || b[i] === 0)) {
    if (b[i] === 0) {
      // A field that is all NULs (or starts with one) is zero.
      let rest = true;
      for (let j = i; j < end; j++) if (b[j] !== 0 && b[j] !== 0x20) rest = false;
      if (rest) return 0n;
    }
    i++;
  }
  let v = 0n;
  let digits = 0;
  while (i < end && b[i]! >= 0x30 && b[i]! <= 0x37) {
    v = v * 8n + BigInt(b[i]! - 0x30);
    i++;
    digits++;
  }
  while (i < end && (b[i] === 0x20 || b[i] === 0)) i++;
  if (i !== end) return undefined;
  return digits ? v : 0n;
}

function checksumOk(b: Buffer): boolean {
  const want = parseNumeric(b, 148, 8);
  if (want === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  return BigInt(unsigned) === want || BigInt(signed) === want;
}

function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

interface Header {
  name: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: bigint;
  typeflag: string;
  linkname: Buffer;
  devmajor: number;
  devminor: number;
  gnu: boolean;
}

// ---------------------------------------------------------------------------------------------------------------
// Pax records.

type PaxRecord = [key: string, value: Buffer];

/** Parses "%d %s=%s\n" records; keys are latin1 strings (byte-exact), values raw bytes. */
function parsePax(data: Buffer, fail: (reason: string) => never): PaxRecord[] {
  const out: PaxRecord[] = [];
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // NUL padding after the last record
    let sp = pos;
    while (sp < data.length && data[sp]! >= 0x30 && data[sp]! <= 0x39) sp++;
    if (sp === pos || data[sp] !== 0x20) fail(`malformed pax record at byte ${pos}`);
    const len = Number(data.toString('latin1', pos, sp));
    const end = pos + len;
    if (!Number.isSafeInteger(len) || len < sp - pos + 3 || end > data.length || data[end - 1] !== 0x0a) {
      fail(`malformed pax record at byte ${pos}`);
    }
    const eq = data.indexOf(0x3d, sp + 1);
    if (eq < 0 || eq >= end) fail(`malformed pax record at byte ${pos}`);
    out.push([data.toString('latin1', sp + 1, eq), Buffer.from(data.subarray(eq + 1, end - 1))]);
    pos = end;
  }
  return out;
}

function parseDecimal(v: Buffer, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const s = v.toString('latin1');
  if (!/^\d{1,16}$/.test(s)) return undefined;
  const n = Number(s);
  return n <= max ? n : undefined;
}

/** A pax time ('1234.5', '-1.25') as exact nanoseconds: the decimal string is split, never parsed as a float. */
function parsePaxTime(v: Buffer): bigint | undefined {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(v.toString('latin1'));
  if (!m) return undefined;
  const frac = (m[3] ?? '').slice(0, 9).padEnd(9, '0');
  const ns = BigInt(m[2]!) * 1_000_000_000n + BigInt(frac);
  return m[1] ? -ns : ns;
}

const XATTR_SCHILY = 'SCHILY.xattr.';
const XATTR_LIBARCHIVE = 'LIBARCHIVE.xattr.';

/** What the pax records in force (global, then per member) say about the next member. */
interface PaxInfo {
  path?: Buffer;
  linkpath?: Buffer;
  size?: number;
  uid?: number;
  gid?: number;
  mtimeNs?: bigint;
  devmajor?: number;
  devminor?: number;
  xattrs: Map<string, Buffer>;
  libarchiveXattrs: Map<string, Buffer>;
  aclAccess?: Buffer;
  aclDefault?: Buffer;
  sparseMajor?: number;
  sparseMinor?: number;
  sparseName?: Buffer;
  sparseRealsize?: number;
  sparseMap?: Buffer;
  /** GNU.sparse.offset / numbytes pairs of format 0.0, in order. */
  sparsePairs: number[];
  sparseOld: boolean;
}

function applyPax(records: Iterable<PaxRecord>, fail: (reason: string) => never): PaxInfo {
  const p: PaxInfo = { xattrs: new Map(), libarchiveXattrs: new Map(), sparsePairs: [], sparseOld: false };
  const num = (k: string, v: Buffer, max?: number): number => {
    const n = parseDecimal(v, max);
    if (n === undefined) fail(`invalid pax value for '${k}'`);
    return n;
  };
  for (const [k, v] of records) {
    if (k.startsWith(XATTR_SCHILY)) {
      p.xattrs.set(Buffer.from(k.slice(XATTR_SCHILY.length), 'latin1').toString('utf8'), v);
      continue;
    }
    if (k.startsWith(XATTR_LIBARCHIVE)) {
      let name: string;
      try {
        name = decodeURIComponent(Buffer.from(k.slice(XATTR_LIBARCHIVE.length), 'latin1').toString('utf8'));
      } catch {
        fail(`invalid pax key '${k}'`);
      }
      p.libarchiveXattrs.set(name, Buffer.from(v.toString('latin1'), 'base64'));
      continue;
    }
    // An empty value removes the field: the header's own value applies again.
    const empty = v.length === 0;
    switch (k) {
      case 'path': p.path = empty ? undefined : v; break;
      case 'linkpath': p.linkpath = empty ? undefined : v; break;
      case 'size': p.size = empty ? undefined : num(k, v); break;
      case 'uid': p.uid = empty ? undefined : num(k, v, 0xffffffff); break;
      case 'gid': p.gid = empty ? undefined : num(k, v, 0xffffffff); break;
      case 'mtime': {
        if (empty) { p.mtimeNs = undefined; break; }
        const t = parsePaxTime(v);
        if (t === undefined) fail(`invalid pax value for 'mtime'`);
        p.mtimeNs = t;
        break;
      }
      case 'SCHILY.devmajor': p.devmajor = empty ? undefined : num(k, v, 0xffffffff); break;
      case 'SCHILY.devminor': p.devminor = empty ? undefined : num(k, v, 0xffffffff); break;
      case 'SCHILY.acl.access': p.aclAccess = empty ? undefined : v; break;
      case 'SCHILY.acl.default': p.aclDefault = empty ? undefined : v; break;
      case 'GNU.sparse.major': p.sparseMajor = num(k, v); break;
      case 'GNU.sparse.minor': p.sparseMinor = num(k, v); break;
      case 'GNU.sparse.name': p.sparseName = v; break;
      case 'GNU.sparse.realsize':
      case 'GNU.sparse.size': p.sparseRealsize = num(k, v); break;
      case 'GNU.sparse.map': p.sparseMap = v; break;
      case 'GNU.sparse.numblocks': p.sparseOld = true; num(k, v); break;
      case 'GNU.sparse.offset':
        if (p.sparsePairs.length % 2 !== 0) fail(`GNU.sparse.offset without GNU.sparse.numbytes`);
        p.sparsePairs.push(num(k, v));
        p.sparseOld = true;
        break;
      case 'GNU.sparse.numbytes':
        if (p.sparsePairs.length % 2 !== 1) fail(`GNU.sparse.numbytes without GNU.sparse.offset`);
        p.sparsePairs.push(num(k, v));
        break;
      default:
        break; // atime, ctime, comment, charset, hdrcharset, uname, gname, SCHILY.* we do not keep, vendor keys
    }
  }
  return p;
}

// ---------------------------------------------------------------------------------------------------------------
// POSIX ACLs: the system.posix_acl_* xattr value and the text form GNU tar writes as SCHILY.acl.*.

const ACL_TAGS: Array<[tag: number, text: string]> = [
  [0x01, 'user'], [0x02, 'user'], [0x04, 'group'], [0x08, 'group'], [0x10, 'mask'], [0x20, 'other'],
];
const ACL_UNDEFINED_ID = 0xffffffff;

function permText(p: number): string {
  return `${p & 4 ? 'r' : '-'}${p & 2 ? 'w' : '-'}${p & 1 ? 'x' : '-'}`;
}

/** The text form (numeric ids) GNU tar's `--acls` reads, from an xattr value; undefined if it is not a valid ACL. */
function aclToText(value: Uint8Array): string | undefined {
  const b = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (b.length < 4 || (b.length - 4) % 8 !== 0 || b.readUInt32LE(0) !== 2) return undefined;
  let out = '';
  for (let i = 4; i < b.length; i += 8) {
    const tag = b.readUInt16LE(i);
    const perm = b.readUInt16LE(i + 2);
    const id = b.readUInt32LE(i + 4);
    const t = ACL_TAGS.find(([x]) => x === tag);
    if (!t) return undefined;
    const qualifier = tag === 0x02 || tag === 0x08 ? String(id) : '';
    out += `${t[1]}:${qualifier}:${permText(perm)}\n`;
  }
  return out;
}

let idTables: { users: Map<string, number>; groups: Map<string, number> } | undefined;

function lookupId(kind: 'users' | 'groups', name: string): number | undefined {
  if (!idTables) {
    const read = (f: string) => {
      const m = new Map<string, number>();
      try {
        for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
          const parts = line.split(':');
          if (parts.length >= 3 && /^\d+$/.test(parts[2]!)) m.set(parts[0]!, Number(parts[2]));
        }
      } catch {
        // no table: only numeric ids resolve
      }
      return m;
    };
    idTables = { users: read('/etc/passwd'), groups: read('/etc/group') };
  }
  return idTables[kind].get(name);
}

/**
 * The xattr value for an ACL in GNU tar's text form, or undefined for an ACL the mode bits already express.
 * Names resolve as GNU tar's extraction would (numeric, then this host's passwd/group); `fail` is called otherwise.
 */
function aclFromText(text: string, isDefault: boolean, fail: (reason: string) => never): Buffer | undefined {
  const entries: Array<[tag: number, perm: number, id: number]> = [];
  for (let line of text.split(/[\n,]/)) {
    const hash = line.indexOf('#');
    if (hash >= 0) line = line.slice(0, hash);
    line = line.trim();
    if (!line) continue;
    const parts = line.split(':');
    if (parts.length !== 3) fail(`invalid ACL entry '${line}'`);
    const [kindText, qualifier, perms] = parts as [string, string, string];
    const kind = ({ u: 'user', user: 'user', g: 'group', group: 'group', m: 'mask', mask: 'mask', o: 'other', other: 'other' } as Record<string, string>)[kindText];
    if (!kind || !/^[rwx-]{1,3}$/.test(perms)) fail(`invalid ACL entry '${line}'`);
    const perm = (perms.includes('r') ? 4 : 0) | (perms.includes('w') ? 2 : 0) | (perms.includes('x') ? 1 : 0);
    let tag: number;
    let id = ACL_UNDEFINED_ID;
    if (kind === 'user' || kind === 'group') {
      if (qualifier === '') {
        tag = kind === 'user' ? 0x01 : 0x04;
      } else {
        tag = kind === 'user' ? 0x02 : 0x08;
        const n = /^\d+$/.test(qualifier) ? Number(qualifier) : lookupId(kind === 'user' ? 'users' : 'groups', qualifier);
        if (n === undefined || n > 0xfffffffe) fail(`ACL names unknown ${kind} '${qualifier}'`);
        id = n;
      }
    } else {
      tag = kind === 'mask' ? 0x10 : 0x20;
    }
    entries.push([tag, perm, id]);
  }
  if (entries.length === 0) return undefined;
  // A minimal access ACL (owner, group, other only) is just the mode: the file has no xattr for it.
  if (!isDefault && entries.length <= 3 && entries.every(([t]) => t === 0x01 || t === 0x04 || t === 0x20)) return undefined;
  entries.sort((a, b) => a[0] - b[0] || a[2] - b[2]);
  const out = Buffer.alloc(4 + 8 * entries.length);
  out.writeUInt32LE(2, 0);
  entries.forEach(([tag, perm, id], i) => {
    out.writeUInt16LE(tag, 4 + 8 * i);
    out.writeUInt16LE(perm, 6 + 8 * i);
    out.writeUInt32LE(id, 8 + 8 * i);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Member paths.

const DOT = 0x2e;
const SLASH = 0x2f;

type PathCheck = { ok: true; path: Buffer } | { ok: false; unsafe: boolean; reason: string };

/** Strips './' and trailing '/', maps '.' to the root (''); refuses absolute names, '..' and empty components. */
function normalizeMemberPath(raw: Buffer): PathCheck {
  if (raw.length === 0) return { ok: false, unsafe: false, reason: 'empty member name' };
  if (raw.includes(0)) return { ok: false, unsafe: false, reason: 'NUL byte in member name' };
  if (raw[0] === SLASH) return { ok: false, unsafe: true, reason: 'absolute member name' };
  let p = raw;
  while (p.length >= 2 && p[0] === DOT && p[1] === SLASH) {
    p = p.subarray(2);
    while (p.length && p[0] === SLASH) p = p.subarray(1); // './/x'
  }
  while (p.length && p[p.length - 1] === SLASH) p = p.subarray(0, p.length - 1);
  if (p.length === 1 && p[0] === DOT) p = p.subarray(1);
  if (p.length === 0) return { ok: true, path: Buffer.alloc(0) };
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i < p.length && p[i] !== SLASH) continue;
    const c = p.subarray(start, i);
    start = i + 1;
    if (c.length === 0) return { ok: false, unsafe: true, reason: 'empty path component' };
    if (c.length === 2 && c[0] === DOT && c[1] === DOT) return { ok: false, unsafe: true, reason: "'..' in member name" };
    if (c.length === 1 && c[0] === DOT) continue; // 'a/./b' is 'a/b'
    parts.push(c);
  }
  const joined: Buffer[] = [];
  parts.forEach((c, i) => {
    if (i) joined.push(Buffer.from('/'));
    joined.push(c);
  });
  return { ok: true, path: Buffer.concat(joined) };
}

/** Proper ancestors of a normalized path, outermost first. */
function ancestors(p: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < p.length; i++) if (p[i] === SLASH) out.push(p.subarray(0, i));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Reader.

type Region = [offset: number, length: number];

/**
 * The first `n` bytes of a stream (fewer if it ends first), put back with `unshift` so that reading starts at the
 * beginning again.
 */
async function peekHead(input: Readable, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let have = 0;
  let ended = false;
  const onEnd = () => { ended = true; };
  input.once('end', onEnd);
  try {
    while (have < n && !ended) {
      const chunk = input.read() as Buffer | null;
      if (chunk) {
        parts.push(chunk);
        have += chunk.length;
        continue;
      }
      if (input.readableEnded) break;
      await new Promise<void>((resolve, reject) => {
        const done = () => { input.off('readable', done); input.off('end', done); input.off('error', fail); resolve(); };
        const fail = (e: Error) => { input.off('readable', done); input.off('end', done); reject(e); };
        input.once('readable', done);
        input.once('end', done);
        input.once('error', fail);
      });
    }
  } finally {
    input.off('end', onEnd);
  }
  const all = Buffer.concat(parts);
  if (all.length && !input.readableEnded) input.unshift(all);
  return all.subarray(0, n);
}

class TarReader implements ImageReader {
  readonly description: SourceDescription;

  /** Prefix of `where` in errors: the embedded archive's name and a space, or ''. */
  private readonly pre: string;

  constructor(
    private readonly file: string,
    private compression: Compression,
    private readonly openError: unknown,
    size: number | undefined,
    private readonly range: ByteRange | undefined,
    member: string | undefined,
    private readonly stream?: Readable,
  ) {
    this.description = { format: FORMAT_NAMES[compression], size, name: file };
    this.pre = member ? `${member} ` : '';
  }

  entries(signal?: AbortSignal): AsyncIterable<ImageEntry> {
    return this.parse(signal);
  }

  private async open(): Promise<ChunkSource> {
    const file = this.file;
    if (this.stream) return this.openStream(this.stream);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(file, 'r');
    } catch (e) {
      throw new SourceReadError(file, errCode(e) === 'ENOENT' ? 'no such file or directory' : messageOf(e), { cause: e });
    }
    try {
      const st = await fh.stat();
      const range = this.range;
      // A range is read as a stream of exactly its bytes (createReadStream's `end` is inclusive); an empty range is
      // an empty archive whatever its compression.
      const rangeStream = (): Readable => fh.createReadStream({ highWaterMark: FILE_CHUNK, start: range!.offset, end: range!.offset + range!.length - 1 });
      if (range && (range.length === 0 || this.compression === 'none')) return new FileChunkSource(fh, range.length, range.offset);
      switch (this.compression) {
        case 'none':
          return new FileChunkSource(fh, st.isFile() ? st.size : undefined);
        case 'gzip':
        case 'zstd': {
          // The stream owns the handle from here on: destroying the stream closes it (autoClose would not stop that).
          const input = range ? rangeStream() : fh.createReadStream({ highWaterMark: FILE_CHUNK });
          const dec = this.compression === 'gzip' ? zlib.createGunzip({ chunkSize: 256 << 10 }) : new DecompressStream();
          pipeline(input, dec).catch(() => undefined); // errors surface through the iteration of `dec`
          return new StreamChunkSource([input, dec], dec);
        }
        case 'xz':
        case 'bzip2':
        case 'lzma': {
          const { program, args } = CHILD_DECOMPRESSORS[this.compression]!;
          if (range) return new ChildChunkSource(file, program, args, rangeStream());
          const src = new ChildChunkSource(file, program, args, fh.fd);
          // The child has its own copy of the descriptor now.
          await fh.close();
          return src;
        }
      }
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
  }

  /** A stream (a pipe): its first bytes say the compression, and are put back before the archive is read. */
  private async openStream(input: Readable): Promise<ChunkSource> {
    const head = await peekHead(input, 8);
    this.compression = detectCompression(head);
    this.description.format = FORMAT_NAMES[this.compression];
    switch (this.compression) {
      case 'none':
        return new StreamChunkSource([input], input);
      case 'gzip':
      case 'zstd': {
        const dec = this.compression === 'gzip' ? zlib.createGunzip({ chunkSize: 256 << 10 }) : new DecompressStream();
        pipeline(input, dec).catch(() => undefined); // errors surface through the iteration of `dec`
        return new StreamChunkSource([input, dec], dec);
      }
      default: {
        const { program, args } = CHILD_DECOMPRESSORS[this.compression]!;
        return new ChildChunkSource(this.file, program, args, input);
      }
    }
  }

  private mapSourceError(e: unknown, offset: number): Error {
    if (e instanceof VivaError) return e;
    const where = `${this.pre}offset ${offset}`;
    if (e instanceof ChildFailure) return new CorruptInputError(this.file, where, `corrupt ${this.compression} data: ${e.message}`);
    if (typeof e === 'object' && e !== null && 'syscall' in e) return new SourceReadError(this.file, messageOf(e), { cause: e });
    const detail = messageOf(e);
    const truncated = /unexpected end|ended in middle|truncated/i.test(detail);
    return new CorruptInputError(this.file, where,
      `${truncated ? 'truncated' : 'corrupt'} ${this.compression} data (${detail.toLowerCase().replace(/\.$/, '')})`);
  }

  /** Whether the next block is a valid header or a zero block (the end of the archive). */
  private async headerFollows(r: ByteReader): Promise<boolean> {
    const next = await r.peek(BLOCK);
    return next.length === BLOCK && (isZeroBlock(next) || checksumOk(next));
  }

  private async *parse(signal?: AbortSignal): AsyncGenerator<ImageEntry> {
    const file = this.file;
    if (this.openError !== undefined) {
      const e = this.openError;
      throw e instanceof VivaError ? e : new SourceReadError(file, errCode(e) === 'ENOENT' ? 'no such file or directory' : messageOf(e), { cause: e });
    }
    const src = await this.open();
    const r = new ByteReader(src, (e, off) => this.mapSourceError(e, off));
    const pre = this.pre;
    const corrupt = (where: string, reason: string): never => {
      throw new CorruptInputError(file, where, reason);
    };
    const truncated = (): never => corrupt(`${pre}offset ${r.offset}`, 'unexpected end of archive');

    /** Reads a metadata member (pax, long name) whole, with its padding. */
    const readMeta = async (size: number, where: string): Promise<Buffer> => {
      if (size > MAX_META_SIZE) corrupt(where, `metadata member of ${size} bytes is too large`);
      const data = await r.readExact(size);
      if (data.length < size) truncated();
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if ((await r.skip(pad)) < pad) truncated();
      return Buffer.from(data);
    };
    const skipData = async (n: number): Promise<void> => {
      if ((await r.skip(n)) < n) truncated();
    };

    /** Resolved type of every path seen so far (a hardlink has its target's type): for symlink and hardlink checks. */
    const seen = new Map<string, EntryType>();
    const globalPax = new Map<string, Buffer>();
    let localPax: PaxRecord[] | undefined;
    let longName: Buffer | undefined;
    let longLink: Buffer | undefined;
    let first = true;

    try {
      for (;;) {
        if (signal?.aborted) throw new AbortedError();
        const hdrOffset = r.offset;
        const atRaw = `offset ${hdrOffset}`;
        const at = `${pre}${atRaw}`;
        const block = await r.readExact(BLOCK);
        if (block.length === 0) {
          if (first) corrupt(at, 'not a tar archive (empty)');
          if (localPax || longName || longLink) truncated();
          return; // EOF right after a member: GNU tar accepts a missing end-of-archive marker
        }
        if (block.length < BLOCK) {
          if (first) corrupt(at, 'not a tar archive');
          truncated();
        }
        if (isZeroBlock(block)) {
          if (localPax || longName || longLink) corrupt(at, 'extended header without a member');
          // A lone zero block followed by a valid header (a writer's bug): GNU tar stops there with a warning and
          // loses the members after it; they are read instead (as `tar --ignore-zeros` does).
          const next = await r.peek(BLOCK);
          if (next.length === BLOCK && !isZeroBlock(next) && checksumOk(next)) continue;
          // End-of-archive marker (GNU tar stops at the first zero block too). A compressed stream is still read to
          // its end, so that its checksum, a truncation or the decompressor's exit status is checked.
          if (this.compression !== 'none') await r.skip(Number.MAX_SAFE_INTEGER);
          return;
        }
        if (!checksumOk(block)) corrupt(at, first ? 'not a tar archive' : 'header checksum mismatch');
        first = false;
        const h = parseHeader(block, (reason) => corrupt(at, reason));
        const metaFail = (reason: string): never => corrupt(at, reason);
        switch (h.typeflag) {
          case 'x':
            localPax = [...(localPax ?? []), ...parsePax(await readMeta(h.size, at), metaFail)];
            continue;
          case 'g':
            for (const [k, v] of parsePax(await readMeta(h.size, at), metaFail)) {
              if (v.length) globalPax.set(k, v);
              else globalPax.delete(k);
            }
            continue;
          case 'L':
            longName = cstring(await readMeta(h.size, at), 0, h.size);
            continue;
          case 'K':
            longLink = cstring(await readMeta(h.size, at), 0, h.size);
            continue;
          case 'V': // volume label: not a file
            await skipData(padded(h.size));
            localPax = undefined;
            longName = longLink = undefined;
            continue;
          default:
            break;
        }

        const pax = applyPax([...globalPax, ...(localPax ?? [])], metaFail);
        localPax = undefined;
        const rawName = pax.sparseName ?? pax.path ?? longName ?? h.name;
        const rawLink = pax.linkpath ?? longLink ?? h.linkname;
        longName = longLink = undefined;
        const where = `${pre}member '${show(rawName)}'`;

        let type: ImageEntry['type'];
        const trailingSlash = rawName.length > 0 && rawName[rawName.length - 1] === SLASH;
        switch (h.typeflag) {
          case '0': case '\0': case '7': case 'S':
            type = trailingSlash && h.typeflag !== 'S' ? 'dir' : 'file';
            break;
          case '1': type = 'hardlink'; break;
          case '2': type = 'symlink'; break;
          case '3': type = 'chr'; break;
          case '4': type = 'blk'; break;
          case '5': case 'D': type = 'dir'; break; // 'D': GNU incremental dump directory; its data is a file list
          case '6': type = 'fifo'; break;
          default:
            throw new UnsupportedInputError(file, `${where} at ${atRaw}: unsupported tar entry type '${show(Buffer.from(h.typeflag, 'latin1'))}'`);
        }

        // Sizes: stored bytes of the data area, and the file's logical size. GNU tar never skips the data of a
        // directory member: a header's size there is often the directory's size on disk with nothing stored. When
        // the next block is a header (or the end of the archive), there is no data; otherwise the data is skipped,
        // as GNU tar does by looking for the next header.
        let stored = pax.size ?? h.size;
        if (type === 'dir' && stored > 0 && await this.headerFollows(r)) stored = 0;
        let dataLeft = stored;
        let regions: Region[] = stored > 0 ? [[0, stored]] : [];
        let blockPadded = false;
        let realsize = stored;
        if (type === 'file') {
          if (h.typeflag === 'S') {
            const sp = await readOldSparse(block, r, (reason) => corrupt(`${where} at ${atRaw}`, reason), truncated);
            regions = sp.regions;
            realsize = sp.realsize;
          } else if (pax.sparseMajor === 1) {
            if (pax.sparseMinor !== 0) throw new UnsupportedInputError(file, `${where}: GNU sparse format 1.${pax.sparseMinor} is not supported`);
            const m = await readSparseMap10(r, stored, (reason) => corrupt(`${where} at ${atRaw}`, reason), truncated);
            regions = m.regions;
            dataLeft = stored - m.mapBytes;
            realsize = pax.sparseRealsize ?? corrupt(`${where} at ${atRaw}`, 'GNU sparse 1.0 member without GNU.sparse.realsize');
          } else if (pax.sparseMap !== undefined || pax.sparseOld) {
            const nums = pax.sparseMap !== undefined ? parseSparseMap01(pax.sparseMap) : pax.sparsePairs;
            if (!nums || nums.length % 2 !== 0) corrupt(`${where} at ${atRaw}`, 'invalid GNU sparse map');
            regions = [];
            for (let i = 0; i < nums!.length; i += 2) regions.push([nums![i]!, nums![i + 1]!]);
            realsize = pax.sparseRealsize ?? corrupt(`${where} at ${atRaw}`, 'GNU sparse member without GNU.sparse.size');
          }
          if (h.typeflag === 'S' || pax.sparseMajor !== undefined || pax.sparseMap !== undefined || pax.sparseOld) {
            ({ regions, blockPadded } = checkSparseMap(regions, realsize, dataLeft, (reason) => corrupt(`${where} at ${atRaw}`, reason)));
          }
        }

        // Path, its safety, and the hardlink target.
        const norm = normalizeMemberPath(rawName);
        if (!norm.ok) {
          if (norm.unsafe) throw new UnsafeInputError(file, where, norm.reason);
          corrupt(`${where} at ${atRaw}`, norm.reason);
        }
        const memberPath = (norm as { path: Buffer }).path;
        for (const a of ancestors(memberPath)) {
          if (seen.get(a.toString('latin1')) === 'symlink') {
            throw new UnsafeInputError(file, where, `path goes through the symlink '${show(a)}'`);
          }
        }
        if (memberPath.length === 0 && type !== 'dir') throw new UnsafeInputError(file, where, 'the root must be a directory');

        let linkTarget: Buffer | undefined;
        let resolvedType: EntryType;
        if (type === 'hardlink') {
          const t = normalizeMemberPath(rawLink);
          if (!t.ok) throw new UnsafeInputError(file, where, `hardlink target '${show(rawLink)}': ${t.reason}`);
          linkTarget = t.path;
          const key = linkTarget.toString('latin1');
          const targetType = seen.get(key);
          if (targetType === undefined || linkTarget.length === 0) {
            corrupt(where, `hardlink target '${show(rawLink)}' is not an earlier member`);
          }
          for (const a of ancestors(linkTarget)) {
            const at2 = seen.get(a.toString('latin1'));
            if (at2 === 'symlink') throw new UnsafeInputError(file, where, `hardlink target goes through the symlink '${show(a)}'`);
            if (at2 !== undefined && at2 !== 'dir') corrupt(where, `hardlink target '${show(rawLink)}' is not an earlier member`);
          }
          if (targetType === 'dir') throw new UnsafeInputError(file, where, `hardlink to the directory '${show(rawLink)}'`);
          if (key === memberPath.toString('latin1')) corrupt(where, 'hardlink to itself');
          resolvedType = targetType!;
        } else {
          resolvedType = type;
          if (type === 'symlink') {
            if (rawLink.length === 0 || rawLink.includes(0)) corrupt(where, 'empty symlink target or NUL byte in it');
            linkTarget = rawLink;
          }
        }
        seen.set(memberPath.toString('latin1'), resolvedType);

        // Metadata.
        const xattrs = new Map<string, Buffer>(pax.libarchiveXattrs);
        for (const [k, v] of pax.xattrs) xattrs.set(k, v);
        const aclFail = (reason: string): never => { throw new UnsupportedInputError(file, `${where}: ${reason}`); };
        if (pax.aclAccess && !xattrs.has('system.posix_acl_access')) {
          const v = aclFromText(pax.aclAccess.toString('utf8'), false, aclFail);
          if (v) xattrs.set('system.posix_acl_access', v);
        }
        if (pax.aclDefault && !xattrs.has('system.posix_acl_default')) {
          const v = aclFromText(pax.aclDefault.toString('utf8'), true, aclFail);
          if (v) xattrs.set('system.posix_acl_default', v);
        }
        const entry: ImageEntry = {
          path: memberPath,
          type,
          mode: h.mode & 0o7777,
          uid: pax.uid ?? h.uid,
          gid: pax.gid ?? h.gid,
          mtimeNs: clampTime(pax.mtimeNs ?? h.mtime * 1_000_000_000n),
          xattrs: [...xattrs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, value]): Xattr => ({ name, value })),
        };
        if (linkTarget !== undefined) entry.linkTarget = linkTarget;
        if (type === 'chr' || type === 'blk') entry.rdev = { major: pax.devmajor ?? h.devmajor, minor: pax.devminor ?? h.devminor };

        // Content: read lazily by the consumer, straight from the archive stream; what it leaves is skipped.
        const state = { active: true, used: false, left: dataLeft };
        if (type === 'file') {
          const regionsForRead = regions;
          entry.content = {
            size: realsize,
            read: (readSignal?: AbortSignal): AsyncIterable<DataPiece> => {
              if (state.used) throw new Error(`tar: content of ${where} can only be read once`);
              if (!state.active) throw new Error(`tar: content of ${where} read after the reader moved on`);
              state.used = true;
              return readRegions(r, regionsForRead, blockPadded, state, [signal, readSignal], truncated);
            },
          } satisfies FileContent;
        }

        yield entry;

        state.active = false;
        await skipData(state.left + ((BLOCK - (stored % BLOCK)) % BLOCK));
      }
    } finally {
      await src.close();
    }
  }
}

/**
 * A member's time limited to what a tree stores (about ±300 million years): a base-256 or overflowing octal mtime
 * is kept as the nearest storable time, never lost with the member (GNU tar extracts such members too).
 */
function clampTime(ns: bigint): bigint {
  return ns > SBIG_MAX ? SBIG_MAX : ns < SBIG_MIN ? SBIG_MIN : ns;
}

function padded(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

function parseHeader(b: Buffer, fail: (reason: string) => never): Header {
  const field = (name: string, off: number, len: number, max = Number.MAX_SAFE_INTEGER): number => {
    const v = parseNumeric(b, off, len);
    if (v === undefined || v < 0n || v > BigInt(max)) fail(`invalid ${name} field in header`);
    return Number(v);
  };
  const magic = b.toString('latin1', 257, 263);
  const version = b.toString('latin1', 263, 265);
  const gnu = magic === 'ustar ' && version === ' \0';
  const ustar = magic === 'ustar\0';
  let name = cstring(b, 0, 100);
  if (ustar) {
    const prefix = cstring(b, 345, 155);
    if (prefix.length) name = Buffer.concat([prefix, Buffer.from('/'), name]);
  }
  const mtime = parseNumeric(b, 136, 12);
  if (mtime === undefined) fail('invalid mtime field in header');
  const tf = b[156]!;
  const hasDev = ustar || gnu;
  return {
    name,
    mode: field('mode', 100, 8, 0xffffffff),
    uid: field('uid', 108, 8, 0xffffffff),
    gid: field('gid', 116, 8, 0xffffffff),
    size: field('size', 124, 12),
    mtime: mtime!,
    typeflag: String.fromCharCode(tf),
    linkname: cstring(b, 157, 100),
    devmajor: hasDev ? field('devmajor', 329, 8, 0xffffffff) : 0,
    devminor: hasDev ? field('devminor', 337, 8, 0xffffffff) : 0,
    gnu,
  };
}

/** Old GNU sparse ('S'): 4 map entries in the header, 21 per extension block after it, real size at offset 483. */
async function readOldSparse(
  block: Buffer, r: ByteReader, fail: (reason: string) => never, truncated: () => never,
): Promise<{ regions: Region[]; realsize: number }> {
  const regions: Region[] = [];
  const entries = (b: Buffer, off: number, count: number): void => {
    for (let i = 0; i < count; i++) {
      const o = off + i * 24;
      if (b[o] === 0) return;
      const offset = parseNumeric(b, o, 12);
      const len = parseNumeric(b, o + 12, 12);
      if (offset === undefined || len === undefined || offset < 0n || len < 0n
        || offset > BigInt(Number.MAX_SAFE_INTEGER) || len > BigInt(Number.MAX_SAFE_INTEGER)) fail('invalid sparse map entry');
      regions.push([Number(offset), Number(len)]);
    }
  };
  entries(block, 386, 4);
  const realsize = parseNumeric(block, 483, 12);
  if (realsize === undefined || realsize < 0n || realsize > BigInt(Number.MAX_SAFE_INTEGER)) fail('invalid sparse real size');
  let extended = block[482] !== 0;
  while (extended) {
    const ext = await r.readExact(BLOCK);
    if (ext.length < BLOCK) truncated();
    entries(ext, 0, 21);
    extended = ext[504] !== 0;
  }
  return { regions, realsize: Number(realsize) };
}

/** GNU sparse 1.0: decimal numbers, one per line (count, then offset/length pairs), at the start of the data, block-padded. */
async function readSparseMap10(
  r: ByteReader, stored: number, fail: (reason: string) => never, truncated: () => never,
): Promise<{ regions: Region[]; mapBytes: number }> {
  const nums: number[] = [];
  let count: number | undefined;
  let digits = '';
  let mapBytes = 0;
  while (count === undefined || nums.length < 2 * count) {
    if (mapBytes + BLOCK > stored) fail('GNU sparse map runs past the member data');
    const b = await r.readExact(BLOCK);
    if (b.length < BLOCK) truncated();
    mapBytes += BLOCK;
    for (let i = 0; i < BLOCK && (count === undefined || nums.length < 2 * count); i++) {
      const c = b[i]!;
      if (c >= 0x30 && c <= 0x39) {
        digits += String.fromCharCode(c);
        if (digits.length > 16) fail('invalid GNU sparse map');
      } else if (c === 0x0a) {
        if (!digits) fail('invalid GNU sparse map');
        const n = Number(digits);
        digits = '';
        if (count === undefined) count = n;
        else nums.push(n);
      } else {
        fail('invalid GNU sparse map');
      }
    }
  }
  const regions: Region[] = [];
  for (let i = 0; i < nums.length; i += 2) regions.push([nums[i]!, nums[i + 1]!]);
  return { regions, mapBytes };
}

/** GNU sparse 0.1: 'offset,length,offset,length,...'. */
function parseSparseMap01(v: Buffer): number[] | undefined {
  const s = v.toString('latin1');
  if (!/^\d+(,\d+)*$/.test(s)) return undefined;
  const nums = s.split(',').map(Number);
  return nums.every(Number.isSafeInteger) ? nums : undefined;
}

/**
 * Checks a map is ordered, inside the file and matches the stored data; drops empty regions. Most readers take the
 * regions' data as contiguous, while GNU tar starts each region on a block boundary; the two agree for the
 * block-aligned maps GNU tar (and our writer) produce. Otherwise the stored size tells which layout was written.
 */
function checkSparseMap(
  regions: Region[], realsize: number, stored: number, fail: (reason: string) => never,
): { regions: Region[]; blockPadded: boolean } {
  let end = 0;
  let total = 0;
  let paddedTotal = 0;
  const out: Region[] = [];
  for (const [off, len] of regions) {
    if (off < end || off + len > realsize) fail('invalid GNU sparse map (regions overlap or exceed the file size)');
    if (len === 0) continue;
    end = off + len;
    total += len;
    paddedTotal += padded(len);
    out.push([off, len]);
  }
  if (total === stored) return { regions: out, blockPadded: false };
  const lastLen = out.length ? out[out.length - 1]![1] : 0;
  if (stored === paddedTotal || stored === paddedTotal - padded(lastLen) + lastLen) return { regions: out, blockPadded: true };
  fail(`GNU sparse map covers ${total} bytes but the member stores ${stored}`);
}

async function* readRegions(
  r: ByteReader, regions: Region[], blockPadded: boolean, state: { active: boolean; left: number },
  signals: Array<AbortSignal | undefined>, truncated: () => never,
): AsyncGenerator<DataPiece> {
  for (const [off, len] of regions) {
    let pos = 0;
    while (pos < len) {
      if (!state.active) throw new Error('tar: content read after the reader moved on');
      for (const s of signals) if (s?.aborted) throw new AbortedError();
      let data = await r.readSome(Math.min(len - pos, DEFAULT_PIECE_SIZE));
      if (data.length === 0) truncated();
      state.left -= data.length;
      // A small view into a big chunk would keep the whole chunk alive in a consumer that holds on to pieces.
      if (data.length * 2 < data.buffer.byteLength) data = Buffer.from(data);
      yield { offset: off + pos, data };
      pos += data.length;
    }
    if (blockPadded) {
      // GNU tar's layout: each region's data ends with padding to a whole block.
      const gap = Math.min((BLOCK - (len % BLOCK)) % BLOCK, state.left);
      if (gap > 0) {
        if ((await r.skip(gap)) < gap) truncated();
        state.left -= gap;
      }
    }
  }
}

/**
 * Opens a tar archive, plain or gzip/zstd/xz/bzip2-compressed (recognised by its first bytes, not its name).
 * Never throws: a file that cannot be opened or is not a tar archive fails in `entries()`.
 *
 * `entries()` streams the archive once per call and yields members in archive order; a later member with the same
 * path replaces the earlier one (GNU tar semantics, left to the consumer), and parent directories missing from
 * the archive are not synthesized. A file's `content` must be read before the iterator advances; unread data is
 * skipped. Sparse members (old GNU, pax 0.0/0.1/1.0) yield only their data regions.
 *
 * Throws (from `entries()`): SourceReadError when the file cannot be read; CorruptInputError (file, offset or
 * member) for a malformed or truncated archive or compressed stream; UnsafeInputError for absolute names, '..',
 * paths through an earlier symlink, hardlinks to directories; UnsupportedInputError for unknown entry types.
 *
 * With `options.range` only those bytes of the file are the archive (a member of a .deb): they are read in place,
 * never copied out, and errors name `file` with `options.member` before the offset or member, e.g.
 * `pkg.deb: data.tar.xz member '../x': '..' in member name`; offsets count from the start of the range.
 *
 * @example
 * for await (const e of openTar('rootfs.tar.zst').entries()) if (e.content) for await (const p of e.content.read()) use(p);
 */
export function openTar(file: string, options: OpenTarOptions = {}): ImageReader {
  let compression: Compression = options.compression ?? 'none';
  let size: number | undefined;
  let openError: unknown;
  const range = options.range;
  try {
    if (options.stream) return new TarReader(file, 'none', undefined, undefined, undefined, options.member, options.stream);
    if (range && (!Number.isSafeInteger(range.offset) || !Number.isSafeInteger(range.length) || range.offset < 0 || range.length < 0)) {
      throw new RangeError(`invalid byte range ${range.offset}+${range.length}`);
    }
    const fd = fs.openSync(file, 'r');
    try {
      const st = fs.fstatSync(fd);
      size = range ? range.length : st.isFile() ? st.size : undefined;
      if (!options.compression) {
        const head = Buffer.alloc(range ? Math.min(8, range.length) : 8);
        const n = fs.readSync(fd, head, 0, head.length, range ? range.offset : 0);
        compression = detectCompression(head.subarray(0, n));
      }
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    openError = e;
  }
  return new TarReader(file, compression, openError, size, range, options.member);
}

export interface OpenTarOptions {
  /** Only these bytes of the file are the archive (an archive inside another, such as a .deb member). */
  range?: ByteRange;
  /** The compression, instead of recognising it by the first bytes (needed for lzma, which has no magic number). */
  compression?: TarReadCompression;
  /** Name of the embedded archive, put before the offset or member in error messages (`data.tar.xz`). */
  member?: string;
  /**
   * Read the archive from this stream (standard input through a pipe) instead of opening `file`, which then only
   * names it in messages ('-'); the compression is recognised from the first bytes as they arrive.
   */
  stream?: Readable;
}

// ---------------------------------------------------------------------------------------------------------------
// Writer.

/**
 * Tar names by the compression they ask for: GNU tar's --auto-compress suffixes (src/suffix.c: tgz, taz, z, tbz,
 * tbz2, tz2, txz, tzst, ...) that viva writes, plus the spelled-out ones (.tar.gzip, .tar.bzip2, .tar.zstd) and
 * .tb2. Matched without regard to case, except that `.Z` is compress(1), which viva does not write.
 */
const TAR_SUFFIXES: Array<[TarCompression, string[]]> = [
  ['none', ['.tar']],
  ['gzip', ['.tar.gz', '.tar.gzip', '.tar.z', '.tgz', '.taz']],
  ['zstd', ['.tar.zst', '.tar.zstd', '.tzst']],
  ['xz', ['.tar.xz', '.txz']],
  ['bzip2', ['.tar.bz2', '.tar.bzip2', '.tbz', '.tbz2', '.tb2', '.tz2']],
];

/** The compression a tar output name asks for, or undefined when the name is not a tar name viva writes. */
export function tarCompressionForName(name: string): TarCompression | undefined {
  if (/\.(ta)?Z$/.test(name)) return undefined;
  const n = name.toLowerCase();
  for (const [compression, suffixes] of TAR_SUFFIXES) if (suffixes.some((x) => n.endsWith(x))) return compression;
  return undefined;
}

export interface TarWriterOptions {
  /** Default: from the name (tarCompressionForName), else 'none'. */
  compression?: TarCompression;
}

/** Writes a numeric field: octal when it fits, else base-256 (GNU tar and libarchive read both). */
function writeNumeric(b: Buffer, off: number, len: number, value: bigint | number): void {
  const v = BigInt(value);
  if (v >= 0n && v < 8n ** BigInt(len - 1)) {
    b.write(v.toString(8).padStart(len - 1, '0'), off, len - 1, 'latin1');
    b[off + len - 1] = 0;
    return;
  }
  let x = v < 0n ? (1n << BigInt(8 * len)) + v : v;
  for (let i = len - 1; i >= 1; i--) {
    b[off + i] = Number(x & 0xffn);
    x >>= 8n;
  }
  b[off] = v < 0n ? 0xff : 0x80;
}

function isPortable(p: Buffer): boolean {
  for (const c of p) if (c === 0 || c >= 0x80) return false;
  return true;
}

interface HeaderFields {
  name: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeSec: bigint;
  typeflag: string;
  linkname?: Buffer;
  devmajor?: number;
  devminor?: number;
  prefix?: Buffer;
}

function buildHeader(f: HeaderFields): Buffer {
  const b = Buffer.alloc(BLOCK);
  f.name.copy(b, 0, 0, Math.min(100, f.name.length));
  writeNumeric(b, 100, 8, f.mode);
  writeNumeric(b, 108, 8, f.uid);
  writeNumeric(b, 116, 8, f.gid);
  writeNumeric(b, 124, 12, f.size);
  writeNumeric(b, 136, 12, f.mtimeSec);
  b.write(f.typeflag, 156, 1, 'latin1');
  if (f.linkname) f.linkname.copy(b, 157, 0, Math.min(100, f.linkname.length));
  b.write('ustar\u000000', 257, 8, 'latin1');
  writeNumeric(b, 329, 8, f.devmajor ?? 0);
  writeNumeric(b, 337, 8, f.devminor ?? 0);
  if (f.prefix) f.prefix.copy(b, 345, 0, Math.min(155, f.prefix.length));
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += c;
  b.write(sum.toString(8).padStart(6, '0'), 148, 6, 'latin1');
  b[154] = 0;
  b[155] = 0x20;
  return b;
}

/** One pax record; its length prefix counts itself. */
function paxRecord(key: string, value: Buffer | string): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const k = Buffer.from(key, 'utf8');
  const base = k.length + v.length + 3;
  let len = base + String(base).length;
  if (String(len).length !== String(base).length) len = base + String(len).length;
  return Buffer.concat([Buffer.from(`${len} `), k, Buffer.from('='), v, Buffer.from('\n')]);
}

/** Seconds with the nanoseconds as a trimmed decimal fraction ('1234.5'), exact for any bigint. */
function formatPaxTime(ns: bigint): string {
  const neg = ns < 0n;
  const a = neg ? -ns : ns;
  const sec = a / 1_000_000_000n;
  const frac = (a % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${sec}${frac ? `.${frac}` : ''}`;
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** Splits an ASCII path into ustar prefix + name, or undefined when it does not fit. */
function splitUstar(p: Buffer): { prefix?: Buffer; name: Buffer } | undefined {
  if (p.length <= 100) return { name: p };
  if (p.length > 256) return undefined;
  for (let i = p.length - 1; i > 0; i--) {
    if (p[i] !== SLASH) continue;
    if (i <= 155 && p.length - i - 1 <= 100 && p.length - i - 1 > 0) return { prefix: p.subarray(0, i), name: p.subarray(i + 1) };
    if (i < p.length - 101) break;
  }
  return undefined;
}

/** A header-safe stand-in for a name that only the pax record carries. */
function fallbackName(p: Buffer, max: number): Buffer {
  const b = Buffer.from(p.subarray(0, max));
  for (let i = 0; i < b.length; i++) if (b[i]! >= 0x80 || b[i] === 0) b[i] = 0x5f;
  return b;
}

/** Output: the archive bytes go through an optional compressor into the file, with backpressure. */
interface Sink {
  write(b: Buffer): Promise<void>;
  end(): Promise<void>;
  /** Stops writing; resolves once nothing holds the output file open any more. */
  destroy(): Promise<void>;
}

function waitDrain(s: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      s.off('drain', onDrain);
      s.off('error', onError);
      s.off('close', onClose);
    };
    const onDrain = () => { cleanup(); resolve(); };
    const onError = (e: Error) => { cleanup(); reject(e); };
    const onClose = () => { cleanup(); reject(new Error('output closed')); };
    s.on('drain', onDrain);
    s.on('error', onError);
    s.on('close', onClose);
  });
}

function whenClosed(s: Writable): Promise<void> {
  return s.closed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve()));
}

function streamSink(head: Writable, done: Promise<void>, onDestroy: () => Promise<void>): Sink {
  let error: unknown;
  const settled = done.catch((e: unknown) => { error ??= e; });
  head.on('error', (e) => { error ??= e; });
  return {
    async write(b) {
      if (error !== undefined) throw error;
      if (!head.write(b)) await waitDrain(head);
      if (error !== undefined) throw error;
    },
    async end() {
      if (error !== undefined) throw error;
      head.end();
      await settled;
      if (error !== undefined) throw error;
    },
    async destroy() {
      head.destroy();
      await onDestroy();
    },
  };
}

/**
 * Compressor programs, as the reader uses their decompressors. npm has bzip2 decoders (unbzip2-stream, seek-bzip)
 * but no maintained streaming encoder: compressjs is pure JS and long unmaintained, bzip-deflate compresses a
 * whole buffer at once, libbzip2-wasm is barely used. xz-utils and bzip2 are installed wherever such archives are
 * made, and a child process compresses on the other core while we build the archive.
 */
const COMPRESSOR_PROGRAMS: Partial<Record<TarCompression, { program: string; args: string[]; suffix: string }>> = {
  xz: { program: 'xz', args: ['-T1', '-6', '-c'], suffix: '.tar.xz' },
  bzip2: { program: 'bzip2', args: ['-9', '-c'], suffix: '.tar.bz2' },
};

/**
 * Standard output as a stream of its own: fd 1 written directly (process.stdout would report a write error as an
 * 'error' event that oclif rethrows, and a write stream on fd 1 closes it when destroyed). Ending or destroying this
 * stream leaves fd 1 open; every error (ENOSPC, EPIPE) fails the archive.
 */
function stdoutWritable(): Writable {
  const writeAll = async (chunk: Buffer): Promise<void> => {
    for (let off = 0; off < chunk.length;) {
      try {
        off += await new Promise<number>((resolve, reject) => fs.write(1, chunk, off, chunk.length - off, null, (e, n) => (e ? reject(e) : resolve(n))));
      } catch (e) {
        // A non-blocking pipe that is full: wait for the reader.
        if (errCode(e) !== 'EAGAIN') throw e;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  };
  return new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) { writeAll(chunk).then(() => cb(), cb); },
    destroy(err, cb) { cb(err); },
  });
}

async function openSink(file: string, compression: TarCompression): Promise<Sink> {
  const toStdout = file === STDOUT_DEST;
  const prog = COMPRESSOR_PROGRAMS[compression];
  if (prog) {
    const fh = toStdout ? undefined : await fsp.open(file, 'w');
    const child = spawn(prog.program, prog.args, { stdio: ['pipe', fh?.fd ?? 1, 'pipe'] });
    await fh?.close();
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { if (stderr.length < 4096) stderr += d.toString('utf8'); });
    const done = new Promise<void>((resolve, reject) => {
      child.once('error', (e) => reject(errCode(e) === 'ENOENT' ? new Error(`writing ${prog.suffix} needs '${prog.program}', which is not installed`) : e));
      child.once('close', (code, signal) => {
        if (code === 0) resolve();
        else reject(new Error(`${prog.program} failed (${code ?? signal}): ${stderr.trim()}`));
      });
    });
    const exited = done.catch(() => undefined);
    return streamSink(child.stdin!, done, async () => {
      child.kill();
      await exited;
    });
  }
  const ws = toStdout ? stdoutWritable() : fs.createWriteStream(file, { highWaterMark: 1 << 20 });
  // A write stream destroyed before it opened still creates the file: wait for its close before any unlink.
  const closeFile = async () => {
    ws.destroy();
    await whenClosed(ws);
  };
  if (compression === 'none') return streamSink(ws, finished(ws), closeFile);
  const comp = compression === 'gzip' ? zlib.createGzip() : new CompressStream();
  return streamSink(comp, pipeline(comp, ws), closeFile);
}

function alignUp(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

/**
 * Turns a file's pieces into the stored bytes of a sparse member: regions start on a block boundary and end on one
 * (or at the end of the file), zero-filled around the data. GNU tar reads each region from a block boundary while
 * other readers take the data as contiguous; with aligned regions both layouts are the same bytes.
 */
class SparseLayout {
  readonly regions: Region[] = [];
  /** Logical end of the bytes emitted so far. */
  private cur = 0;
  private lastEnd = 0;

  constructor(private readonly size: number, private readonly emit: (b: Buffer) => Promise<void>) {}

  private async zeros(n: number): Promise<void> {
    if (n > 0) await this.emit(Buffer.alloc(n));
  }

  async add(off: number, data: Buffer): Promise<void> {
    const len = data.length;
    if (!Number.isSafeInteger(off) || off < this.lastEnd || off + len > this.size) {
      throw new Error(`tar writer: content pieces must be ordered, non-overlapping and inside the file (piece at ${off}+${len}, size ${this.size})`);
    }
    const last = this.regions[this.regions.length - 1];
    if (last && off <= alignUp(this.cur)) {
      await this.zeros(off - this.cur);
      last[1] += off - this.cur + len;
    } else {
      await this.finish();
      const start = off - (off % BLOCK);
      this.regions.push([start, off - start + len]);
      await this.zeros(off - start);
    }
    await this.emit(data);
    this.cur = this.lastEnd = off + len;
  }

  /** Pads the open region to its block end (or the end of the file). */
  async finish(): Promise<void> {
    const last = this.regions[this.regions.length - 1];
    if (!last) return;
    const end = Math.min(alignUp(this.cur), this.size);
    await this.zeros(end - this.cur);
    last[1] += end - this.cur;
    this.cur = end;
  }
}

function hexField(p: Buffer): { pathHex?: string } {
  const hex = hexIfNotUtf8(p);
  return hex ? { pathHex: hex } : {};
}

class TarWriter implements ImageWriter {
  private sink: Sink | undefined;
  private opening: Promise<Sink> | undefined;
  private written = 0;
  private readonly warnings: WriterWarning[] = [];
  private readonly skipped = new Set<string>();
  private readonly spools = new Set<string>();
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  /**
   * Where the bytes go: the destination itself, or, when a regular file is already there (checkout --force), a
   * temporary file beside it renamed over it by finish(), so a failed checkout keeps the old file.
   */
  private readonly target: string;

  constructor(private readonly file: string, private readonly compression: TarCompression) {
    let existing = false;
    try {
      existing = file !== STDOUT_DEST && fs.lstatSync(file).isFile();
    } catch {
      existing = false;
    }
    this.target = existing ? path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`) : file;
  }

  private fail(e: unknown): never {
    if (e instanceof VivaError) throw e;
    throw new CheckoutError(this.file, systemReason(e), { cause: e });
  }

  private async out(b: Buffer): Promise<void> {
    if (!this.sink) {
      this.opening ??= openSink(this.target, this.compression);
      this.sink = await this.opening;
    }
    this.written += b.length;
    await this.sink.write(b);
  }

  add(entry: ImageEntry): Promise<void> {
    const run = this.queue.then(() => this.addOne(entry));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async addOne(e: ImageEntry): Promise<void> {
    if (this.closed) throw new Error('tar writer: add() after finish() or abort()');
    try {
      await this.writeEntry(e);
    } catch (err) {
      this.fail(err);
    }
  }

  private async writeEntry(e: ImageEntry): Promise<void> {
    const key = e.path.toString('latin1');
    if (e.type === 'socket') {
      this.skipped.add(key);
      this.warnings.push({ path: e.path.toString('utf8'), ...hexField(e.path), message: 'sockets cannot be stored in a tar archive: skipped' });
      return;
    }
    if (e.type === 'hardlink' && e.linkTarget && this.skipped.has(e.linkTarget.toString('latin1'))) {
      this.skipped.add(key);
      this.warnings.push({ path: e.path.toString('utf8'), ...hexField(e.path), message: 'hardlink to a socket: skipped' });
      return;
    }
    const records: Buffer[] = [];
    let name = e.path.length === 0 ? Buffer.from('./') : e.type === 'dir' ? Buffer.concat([e.path, Buffer.from('/')]) : e.path;
    let prefix: Buffer | undefined;

    const typeflag = ({ file: '0', hardlink: '1', symlink: '2', chr: '3', blk: '4', dir: '5', fifo: '6' } as const)[e.type];
    let linkname: Buffer | undefined;
    if (e.type === 'symlink' || e.type === 'hardlink') {
      linkname = e.linkTarget ?? Buffer.alloc(0);
      if (linkname.length > 100 || !isPortable(linkname)) {
        records.push(paxRecord('linkpath', linkname));
        linkname = fallbackName(linkname, 100);
      }
    }

    // Owner, time, devices.
    const OCTAL7 = 0o7777777;
    if (e.uid > OCTAL7) records.push(paxRecord('uid', String(e.uid)));
    if (e.gid > OCTAL7) records.push(paxRecord('gid', String(e.gid)));
    const mtimeSec = floorDiv(e.mtimeNs, 1_000_000_000n);
    if (e.mtimeNs % 1_000_000_000n !== 0n || mtimeSec < 0n || mtimeSec >= 8n ** 11n) {
      records.push(paxRecord('mtime', formatPaxTime(e.mtimeNs)));
    }
    const dev = e.type === 'chr' || e.type === 'blk' ? e.rdev ?? { major: 0, minor: 0 } : undefined;
    if (dev && dev.major > OCTAL7) records.push(paxRecord('SCHILY.devmajor', String(dev.major)));
    if (dev && dev.minor > OCTAL7) records.push(paxRecord('SCHILY.devminor', String(dev.minor)));

    // Xattrs. GNU tar's --acls restores ACLs from their text form (and resets them without it), so ACLs get both.
    for (const x of e.xattrs) {
      if (x.name === 'system.posix_acl_access' || x.name === 'system.posix_acl_default') {
        const text = aclToText(x.value);
        if (text !== undefined) records.push(paxRecord(x.name === 'system.posix_acl_access' ? 'SCHILY.acl.access' : 'SCHILY.acl.default', text));
      }
      records.push(paxRecord(`${XATTR_SCHILY}${x.name}`, Buffer.from(x.value.buffer, x.value.byteOffset, x.value.byteLength)));
    }

    if (e.type !== 'file') {
      if (name.length > 100 || !isPortable(name)) ({ name, prefix } = this.placeName(name, records));
      await this.writeMember(records, { name, prefix, mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, size: 0, mtimeSec, typeflag, linkname, devmajor: dev?.major, devminor: dev?.minor });
      return;
    }
    await this.writeFile(e, name, records, mtimeSec);
  }

  /** A name that does not fit the header goes to a pax 'path' record (or the ustar prefix when plain ASCII). */
  private placeName(name: Buffer, records: Buffer[]): { name: Buffer; prefix?: Buffer } {
    if (isPortable(name)) {
      const s = splitUstar(name);
      if (s) return s;
    }
    records.push(paxRecord('path', name));
    return { name: fallbackName(name, 100) };
  }

  private async writeMember(records: Buffer[], f: HeaderFields): Promise<void> {
    if (records.length) {
      const data = Buffer.concat(records);
      const base = f.name.subarray(f.name.lastIndexOf(SLASH, f.name.length - 2) + 1);
      await this.out(buildHeader({
        name: Buffer.concat([Buffer.from('PaxHeaders/'), fallbackName(base, 89)]),
        mode: 0o644, uid: 0, gid: 0, size: data.length, mtimeSec: f.mtimeSec < 0n ? 0n : f.mtimeSec, typeflag: 'x',
      }));
      await this.out(data);
      await this.pad(data.length);
    }
    await this.out(buildHeader(f));
  }

  private async pad(n: number): Promise<void> {
    const p = (BLOCK - (n % BLOCK)) % BLOCK;
    if (p) await this.out(Buffer.alloc(p));
  }

  private async writeFile(e: ImageEntry, name: Buffer, records: Buffer[], mtimeSec: bigint): Promise<void> {
    const size = e.content?.size ?? 0;
    const held: Buffer[] = [];
    let heldBytes = 0;
    let spool: { fh: fsp.FileHandle; path: string; bytes: number } | undefined;
    // The stored bytes are collected (in memory, then in a spool file) until the hole map is known.
    const store = async (data: Buffer): Promise<void> => {
      if (!spool && heldBytes + data.length <= DEFAULT_SPOOL_THRESHOLD) {
        held.push(Buffer.from(data)); // pieces are borrowed: copy what is kept past the next one
        heldBytes += data.length;
        return;
      }
      if (!spool) {
        const dir = this.file === STDOUT_DEST ? os.tmpdir() : path.dirname(this.file);
        const p = path.join(dir, `.${this.file === STDOUT_DEST ? 'stdout' : path.basename(this.file)}.spool-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
        this.spools.add(p);
        spool = { fh: await fsp.open(p, 'w+', 0o600), path: p, bytes: 0 };
      }
      await spool.fh.write(data, 0, data.length, spool.bytes);
      spool.bytes += data.length;
    };
    const layout = new SparseLayout(size, store);
    try {
      if (e.content) {
        for await (const piece of e.content.read()) {
          if (piece.data.byteLength === 0) continue;
          await layout.add(piece.offset, Buffer.from(piece.data.buffer, piece.data.byteOffset, piece.data.byteLength));
        }
        await layout.finish();
      }
      const regions = layout.regions;
      const stored = heldBytes + (spool?.bytes ?? 0);
      const dense = stored === size;
      let mapBlock: Buffer | undefined;
      if (!dense) {
        // GNU sparse 1.0: the map leads the data, the real name and size are pax records.
        const map = [...regions];
        const last = map[map.length - 1];
        if (!last || last[0] + last[1] < size) map.push([size, 0]);
        const text = `${map.length}\n${map.map(([o, l]) => `${o}\n${l}\n`).join('')}`;
        mapBlock = Buffer.alloc(padded(text.length));
        mapBlock.write(text, 'latin1');
        records.push(paxRecord('GNU.sparse.major', '1'), paxRecord('GNU.sparse.minor', '0'),
          paxRecord('GNU.sparse.name', name), paxRecord('GNU.sparse.realsize', String(size)));
        const slash = name.lastIndexOf(SLASH);
        name = Buffer.concat([slash >= 0 ? name.subarray(0, slash + 1) : Buffer.alloc(0), Buffer.from('GNUSparseFile.0/'), name.subarray(slash + 1)]);
        if (name.length > 100 || !isPortable(name)) name = fallbackName(Buffer.concat([Buffer.from('GNUSparseFile.0/'), e.path.subarray(slash + 1)]), 100);
      }
      const memberSize = (mapBlock?.length ?? 0) + stored;
      if (memberSize >= 8 ** 11) records.push(paxRecord('size', String(memberSize)));
      let prefix: Buffer | undefined;
      if (dense && (name.length > 100 || !isPortable(name))) ({ name, prefix } = this.placeName(name, records));
      await this.writeMember(records, { name, prefix, mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, size: memberSize, mtimeSec, typeflag: '0' });
      if (mapBlock) await this.out(mapBlock);
      for (const b of held) await this.out(b);
      if (spool) {
        let pos = 0;
        while (pos < spool.bytes) {
          const buf = Buffer.allocUnsafe(Math.min(FILE_CHUNK, spool.bytes - pos));
          const { bytesRead } = await spool.fh.read(buf, 0, buf.length, pos);
          if (bytesRead === 0) throw new Error('spool file shrank');
          await this.out(buf.subarray(0, bytesRead));
          pos += bytesRead;
        }
      }
      await this.pad(memberSize);
    } finally {
      if (spool) {
        await spool.fh.close().catch(() => undefined);
        await fsp.unlink(spool.path).catch(() => undefined);
        this.spools.delete(spool.path);
      }
    }
  }

  async finish(): Promise<{ warnings: WriterWarning[] }> {
    await this.queue;
    if (this.closed) throw new Error('tar writer: finish() after finish() or abort()');
    this.closed = true;
    try {
      await this.out(Buffer.alloc(2 * BLOCK));
      const rest = (RECORD_SIZE - (this.written % RECORD_SIZE)) % RECORD_SIZE;
      if (rest) await this.out(Buffer.alloc(rest));
      await this.sink!.end();
      if (this.target !== this.file) await fsp.rename(this.target, this.file);
    } catch (e) {
      if (this.target !== this.file) await fsp.unlink(this.target).catch(() => undefined);
      this.fail(e);
    }
    return { warnings: [...this.warnings] };
  }

  async abort(): Promise<void> {
    this.closed = true;
    await this.queue.catch(() => undefined);
    const sink = this.sink ?? (this.opening ? await this.opening.catch(() => undefined) : undefined);
    await sink?.destroy();
    for (const p of this.spools) await fsp.unlink(p).catch(() => undefined);
    if (this.file !== STDOUT_DEST) await fsp.unlink(this.target).catch(() => undefined);
  }
}

/**
 * Creates a POSIX pax tar writer that GNU tar extracts losslessly (`tar --xattrs --xattrs-include='*' --acls
 * --numeric-owner -xpf`): pax records for long or non-ASCII names, ns mtimes, large ids, every xattr
 * (SCHILY.xattr.*, plus SCHILY.acl.* text for ACLs), hardlinks, devices, fifos, the root as './', and
 * GNU sparse 1.0 members for files with holes. Sockets cannot be stored: they are skipped with a warning.
 * The file is created on the first write; `abort()` deletes it. A regular file already there is replaced only by
 * `finish()` (written beside it, then renamed over it), so an aborted write keeps it. The name `-` (STDOUT_DEST) writes to standard output.
 *
 * Throws (from `add`/`finish`): CheckoutError when the output cannot be written or the compressor fails.
 *
 * @example
 * const w = createTarWriter('out.tar.zst', { compression: 'zstd' });
 * for await (const e of reader.entries()) await w.add(e);
 * const { warnings } = await w.finish();
 */
export function createTarWriter(file: string, options: TarWriterOptions = {}): ImageWriter {
  return new TarWriter(file, options.compression ?? tarCompressionForName(file) ?? 'none');
}
