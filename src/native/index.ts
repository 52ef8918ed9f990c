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
