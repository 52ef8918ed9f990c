/** Describes a directory tree on disk with every attribute viva must keep, for round-trip comparisons in tests. */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { native } from '../../src/native/index.js';

export interface SnapshotOptions {
  /** Leave out mtimes of these kinds (e.g. ['dir'] when comparing with a tool that does not keep them). */
  ignoreMtime?: boolean;
  /** Leave out atime always; set to also compare hole layout (data extents). */
  holes?: boolean;
}

/** The entry type name of an lstat result (unknown for anything else). */
export function kind(st: fs.BigIntStats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'chr';
  if (st.isBlockDevice()) return 'blk';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  return 'unknown';
}

function sha256File(p: Buffer): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(p, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/**
 * Returns one line per entry, sorted by path bytes, naming type, mode, owner, ns mtime, size, xattrs, link target,
 * device numbers, content sha256, hole layout and hardlink group (by first path). Names are shown hex-escaped
 * when they are not printable ASCII, so non-UTF-8 names compare exactly.
 */
export function snapshotTree(root: string, opts: SnapshotOptions = {}): string[] {
  const lines: Array<[Buffer, string]> = [];
  const inodes = new Map<string, string>();
  const show = (b: Buffer) => (/^[\x21-\x7e]*$/.test(b.toString('latin1')) ? b.toString('latin1') : `hex:${b.toString('hex')}`);
  const walk = (rel: Buffer) => {
    const abs = rel.length ? Buffer.concat([Buffer.from(root + '/'), rel]) : Buffer.from(root);
    const st = fs.lstatSync(abs, { bigint: true });
    const k = kind(st);
    const parts = [show(rel.length ? rel : Buffer.from('.')), k, (Number(st.mode) & 0o7777).toString(8), `${st.uid}:${st.gid}`];
    if (!(opts.ignoreMtime)) parts.push(`mtime=${st.mtimeNs}`);
    const names = native().llistxattr(abs).map((n) => n.toString()).sort();
    for (const n of names) parts.push(`xattr:${n}=${native().lgetxattr(abs, n).toString('hex')}`);
    if (k === 'file') {
      parts.push(`size=${st.size}`, `sha256=${sha256File(abs)}`);
      if (opts.holes) {
        const fd = fs.openSync(abs, 'r');
        try { parts.push(`data=${native().dataExtents(fd, Number(st.size)).join(',')}`); } finally { fs.closeSync(fd); }
      }
    }
    if (k === 'symlink') parts.push(`target=${show(fs.readlinkSync(abs, { encoding: 'buffer' }))}`);
    if (k === 'chr' || k === 'blk') parts.push(`rdev=${st.rdev}`);
    if (k !== 'dir' && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = inodes.get(key);
      if (first === undefined) inodes.set(key, show(rel));
      parts.push(`link=${first ?? show(rel)}`);
    }
    lines.push([rel, parts.join(' ')]);
    if (k === 'dir') {
      const children = fs.readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare);
      for (const c of children) walk(rel.length ? Buffer.concat([rel, Buffer.from('/'), c]) : c);
    }
  };
  walk(Buffer.alloc(0));
  return lines.sort((a, b) => Buffer.compare(a[0], b[0])).map(([, l]) => l);
}

/** Path of test/fixtures/mkedge.sh (a copy of ../shared/corpus/mkedge.sh, so a clean clone has it); run as root. */
export function mkedgePath(): string {
  return path.resolve(path.dirname(new URL(import.meta.url).pathname), "../fixtures/mkedge.sh");
}
