/** Typed loader for the native addon (src/native/viva_native.c): the syscalls Node's fs lacks. */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export interface NativeBinding {
  llistxattr(path: Buffer | string): Buffer[];
  lgetxattr(path: Buffer | string, name: string): Buffer;
  lsetxattr(path: Buffer | string, name: string, value: Uint8Array): void;
  /** mode includes the file type bits (S_IFCHR 0o020000, S_IFBLK 0o060000, S_IFIFO 0o010000). */
  mknod(path: Buffer | string, mode: number, major: number, minor: number): void;
  /** Sets atime/mtime with nanoseconds, never following a symlink. */
  utimens(path: Buffer | string, atimeSec: bigint, atimeNsec: bigint, mtimeSec: bigint, mtimeNsec: bigint): void;
  /** Flat [offset, length, ...] list of the data regions of an open file (SEEK_DATA/SEEK_HOLE). */
  dataExtents(fd: number, size: number): number[];
  /** Creates a unix socket inode at path. */
  mksocket(path: Buffer | string): void;
  /**
   * The directory at path (opened without following a symlink) and its entries sorted by name bytes, each
   * lstat()ed, as records (see {@link scanRecords}); the first is the directory itself, with an empty name.
   */
  scanDir(path: Buffer | string): Buffer;
  /**
   * scanDir of each path, on up to four threads (one per processor): each result is the records, or the errno with
   * which scanDir would have thrown. Once the records made reach `budget` bytes, directories not yet started are left
   * unscanned (null): a batch holds at most the budget and the largest directory each thread was scanning.
   */
  scanDirs(paths: Array<Buffer | string>, budget?: number): Array<Buffer | number | null>;
  /**
   * Decodes stored values (codec byte 0 raw or 1 zstd, then the payload) into `out` (each exactly the decoded size)
   * and checks each against its SHA-256 id (`ids`: 32 bytes per object) on libuv's thread pool, then calls `done`.
   * `status[i]` is then 0 when `out[i]` holds the object, else 1 unknown codec, 2 undecodable, 3 another size, 4 not
   * matching its id. Nothing passed may be touched before `done`.
   */
  decodeVerify(stored: Buffer[], out: Buffer[], ids: Buffer, status: Int32Array, done: () => void): void;
  /** The SHA-256 of `data` as 64 lowercase hex digits. */
  sha256Hex(data: Uint8Array): string;
  /**
   * Drops this process's page-table entries for its read-only shared mappings of the file at `path` (MADV_DONTNEED;
   * the pages stay cached and come back on the next access); returns the bytes of mappings advised.
   */
  unmapFilePages(path: Buffer | string): number;
}

/** One record of a {@link NativeBinding.scanDir} result. Offsets into `bytes` are those of viva_native.c. */
export interface ScanRecord {
  /** errno of the lstat (0: the fields hold), e.g. 13 EACCES, 2 ENOENT (vanished). */
  err: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtimeSec: number;
  mtimeNsec: number;
  ctimeSec: number;
  ctimeNsec: number;
  name: Buffer;
  /** The whole record: every lstat field but atime, and the name (bytes 24..40: inode and device). */
  bytes: Buffer;
}

const SCAN_HEAD = 92;
/** Bytes of a record whose name is `nameLength` bytes: the head and the name, padded to a multiple of 8. */
const recordSize = (nameLength: number) => (SCAN_HEAD + nameLength + 7) & ~7;

/** The records of a scanDir result, the directory's own first. */
export function* scanRecords(buf: Buffer): Generator<ScanRecord> {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
  for (let at = 0; at + SCAN_HEAD <= buf.length;) {
    const len = dv.getUint32(at + 88, true);
    const size = recordSize(len);
    yield {
      err: dv.getUint32(at, true), mode: dv.getUint32(at + 4, true), uid: dv.getUint32(at + 8, true), gid: dv.getUint32(at + 12, true),
      nlink: Number(dv.getBigUint64(at + 16, true)), mtimeSec: Number(dv.getBigInt64(at + 56, true)), mtimeNsec: dv.getUint32(at + 64, true),
      ctimeSec: Number(dv.getBigInt64(at + 72, true)), ctimeNsec: dv.getUint32(at + 80, true),
      name: buf.subarray(at + SCAN_HEAD, at + SCAN_HEAD + len), bytes: buf.subarray(at, at + size),
    };
    at += size;
  }
}

/**
 * Calls `fn` with the name of each directory a scanDir result lists (lstat succeeded, S_IFDIR), in order: what a walk
 * descends into, without a record object per entry.
 */
export function forEachSubdir(buf: Buffer, fn: (name: Buffer) => void): void {
  let at = recordSize(buf.readUInt32LE(88));
  while (at + SCAN_HEAD <= buf.length) {
    const len = buf.readUInt32LE(at + 88);
    if (buf.readUInt32LE(at) === 0 && (buf.readUInt32LE(at + 4) & 0o170000) === 0o040000) fn(buf.subarray(at + SCAN_HEAD, at + SCAN_HEAD + len));
    at += recordSize(len);
  }
}

const here = path.dirname(fileURLToPath(import.meta.url));
// Works from src/native (tsx) and from dist/src/native (compiled): the addon is built into src/native/build.
const candidates = [
  path.join(here, 'build/Release/viva_native.node'),
  path.join(here, '../../../src/native/build/Release/viva_native.node'),
];

let loaded: NativeBinding | undefined;

export function native(): NativeBinding {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  let lastError: unknown;
  for (const c of candidates) {
    try {
      loaded = require(c) as NativeBinding;
      return loaded;
    } catch (e) {
      lastError = e;
    }
  }
  throw new Error(`viva's native addon is not built (run 'npm ci' or 'npm run install'): ${String(lastError)}`);
}

/** Splits a bigint ns timestamp into the (sec, nsec) pair utimensat takes (nsec always in 0..999999999). */
export function splitNs(ns: bigint): [bigint, bigint] {
  let sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  if (nsec < 0n) { nsec += 1_000_000_000n; sec -= 1n; }
  return [sec, nsec];
}
