/** ext2/3/4 images built at test time (`mke2fs -d` from a source tree made as root), and readers' output as snapshot lines. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { fileBlockSource, openExt4, type Ext4Info } from '../../src/formats/ext4.js';
import type { ImageEntry, ImageReader } from '../../src/formats/types.js';

const MiB = 1 << 20;
const ZEROS = Buffer.alloc(MiB);

export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * MiB }).toString();
}

/** Deterministic bytes (so failures reproduce). */
export function bytes(n: number, seed: string): Buffer {
  const out = Buffer.alloc(n);
  let block = crypto.createHash('sha256').update(seed).digest();
  for (let o = 0; o < n; o += block.length) {
    block.copy(out, o);
    block = crypto.createHash('sha256').update(block).digest();
  }
  return out;
}

function writeAt(file: string, offset: number, data: Buffer): void {
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o644);
  try {
    fs.writeSync(fd, data, 0, data.length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

/** Names of the interesting members of the source tree, for tests that poke at them. */
export const TREE = {
  bigDir: 'big',
  bigDirEntries: 3000,
  sparse: 'sparse',
  /** Past 64.3 MiB, so that 1 KiB-block maps need the triple-indirect block. */
  sparseSize: 66 * MiB,
  /** Data ranges of the sparse file (the rest is holes). */
  sparseData: [[0, 8192], [10 * MiB, 12288], [65 * MiB, 5000], [66 * MiB - 1, 1]] as Array<[number, number]>,
  frag: 'frag',
  fragRegions: 1500,
  random: 'random',
  randomSize: 5 * MiB + 123,
  longLink: 'links/long',
  longTarget: `${'long-target/'.repeat(10)}end`,
};

/**
 * Builds the source tree (run as root: owners, devices, trusted xattrs, capabilities). It holds every kind of entry
 * and the shapes that exercise the reader: an empty, a small, a multi-MiB and a sparse file, a file of 1500
 * fragments (a depth-2 extent tree at 4 KiB), a 3000-entry directory (htree), a 40-level path, short and long
 * symlinks, hardlinks across directories, old- and new-encoding devices, a fifo, a socket, user/trusted xattrs, a
 * big xattr (xattr block), access and default ACLs, a capability, setuid/sticky modes, 32-bit owners and a
 * non-UTF-8 name. mtimes are whole seconds (mke2fs -d drops ns).
 */
export function makeSourceTree(root: string): void {
  fs.mkdirSync(root, { recursive: true });
  const p = (rel: string) => path.join(root, rel);
  fs.writeFileSync(p('empty'), '');
  fs.writeFileSync(p('small'), 'hello ext4\n');
  fs.writeFileSync(p(TREE.random), bytes(TREE.randomSize, 'random'));
  fs.writeFileSync(p('exactly-60'), 'x'.repeat(60));
  fs.writeFileSync(p('block-sized'), bytes(4096, 'block'));
  fs.writeFileSync(p(TREE.sparse), '');
  for (const [o, n] of TREE.sparseData) writeAt(p(TREE.sparse), o, bytes(n, `sparse${o}`));
  fs.truncateSync(p(TREE.sparse), TREE.sparseSize);
  // One 4 KiB region every 12 KiB: 1500 extents need two index levels (4 in the inode, 340 per leaf).
  fs.writeFileSync(p(TREE.frag), '');
  for (let i = 0; i < TREE.fragRegions; i++) writeAt(p(TREE.frag), i * 12288, bytes(4096, `frag${i}`));
  fs.mkdirSync(p(TREE.bigDir));
  for (let i = 0; i < TREE.bigDirEntries; i++) fs.writeFileSync(p(`${TREE.bigDir}/entry-with-a-longish-name-${String(i).padStart(5, '0')}`), i % 100 === 0 ? `n${i}` : '');
  let deep = p('deep');
  for (let i = 0; i < 40; i++) deep = path.join(deep, `level${i}`);
  fs.mkdirSync(deep, { recursive: true });
  fs.writeFileSync(path.join(deep, 'bottom'), 'deep\n');
  fs.mkdirSync(p('links'));
  fs.symlinkSync('../small', p('links/short'));
  fs.symlinkSync(TREE.longTarget, p(TREE.longLink));
  fs.symlinkSync('x'.repeat(59), p('links/fast-59'));
  fs.symlinkSync('y'.repeat(60), p('links/slow-60'));
  fs.mkdirSync(p('hl/a'), { recursive: true });
  fs.mkdirSync(p('hl/b'));
  fs.writeFileSync(p('hl/a/one'), 'linked\n');
  fs.linkSync(p('hl/a/one'), p('hl/b/two'));
  fs.linkSync(p('hl/a/one'), p('hl/three'));
  fs.mkdirSync(p('dev'));
  run('mknod', [p('dev/null'), 'c', '1', '3']);
  run('mknod', [p('dev/loop0'), 'b', '7', '0']);
  run('mknod', [p('dev/big'), 'c', '300', '70000']);
  run('mknod', [p('dev/bigblk'), 'b', '4095', '1048575']);
  run('mkfifo', [p('dev/fifo')]);
  run('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(p('dev/sock'))})`]);
  fs.writeFileSync(p('xattr-file'), 'x\n');
  run('setfattr', ['-n', 'user.comment', '-v', 'some value', p('xattr-file')]);
  run('setfattr', ['-n', 'trusted.t', '-v', '0x00ff01', p('xattr-file')]);
  run('setfattr', ['-n', 'user.empty', p('xattr-file')]);
  fs.writeFileSync(p('xattr-big'), 'big xattr\n');
  run('setfattr', ['-n', 'user.big', '-v', `0x${bytes(800, 'xattr').toString('hex')}`, p('xattr-big')]);
  fs.mkdirSync(p('xattr-dir'));
  run('setfattr', ['-n', 'user.d', '-v', 'dir value', p('xattr-dir')]);
  fs.writeFileSync(p('acl-file'), 'acl\n');
  run('setfacl', ['-m', 'u:1234:rw,g:5678:r,m::rw', p('acl-file')]);
  fs.mkdirSync(p('acl-dir'));
  run('setfacl', ['-d', '-m', 'g:5678:rx', p('acl-dir')]);
  run('setfacl', ['-m', 'u:42:rwx', p('acl-dir')]);
  fs.copyFileSync('/bin/true', p('capped'));
  run('setcap', ['cap_net_raw+ep', p('capped')]);
  fs.writeFileSync(p('suid'), '#!/bin/sh\n');
  fs.chmodSync(p('suid'), 0o4755);
  fs.mkdirSync(p('sticky'));
  fs.chmodSync(p('sticky'), 0o1777);
  fs.writeFileSync(p('private'), 'secret\n');
  fs.chmodSync(p('private'), 0o600);
  fs.writeFileSync(p('owned'), 'owned\n');
  fs.chownSync(p('owned'), 1234, 5678);
  fs.writeFileSync(p('owned-32bit'), 'big ids\n');
  fs.chownSync(p('owned-32bit'), 100000, 70001);
  fs.writeFileSync(Buffer.from(p('non-utf8-\xff\xfe'), 'latin1'), 'x');
  fs.writeFileSync(p('old'), 'old\n');
  fs.utimesSync(p('old'), 1, 1);
}

export interface ReadFile {
  size: number;
  sha256: string;
  /** Merged [offset, length] data ranges as the reader reported them. */
  data: Array<[number, number]>;
  pieces: number;
  maxPiece: number;
}

export interface ReadImage {
  info: Ext4Info;
  entries: ImageEntry[];
  files: Map<string, ReadFile>;
}

/** Reads a whole image: every entry, and every file's content hashed (holes as zeros). */
export async function readImage(file: string): Promise<ReadImage> {
  const src = await fileBlockSource(file);
  try {
    const { info, reader } = await openExt4(src, file);
    return { info, ...(await readEntries(reader)) };
  } finally {
    await src.close();
  }
}

/** Every entry of `reader`, and every file's content hashed (holes as zeros), with where its data pieces lie. */
export async function readEntries(reader: ImageReader): Promise<{ entries: ImageEntry[]; files: Map<string, ReadFile> }> {
  const entries: ImageEntry[] = [];
  const files = new Map<string, ReadFile>();
  for await (const e of reader.entries()) {
    entries.push(e);
    if (!e.content) continue;
    const h = crypto.createHash('sha256');
    const data: Array<[number, number]> = [];
    let pos = 0;
    let pieces = 0;
    let maxPiece = 0;
    const zeros = (n: number) => {
      for (; n > 0; n -= Math.min(n, MiB)) h.update(ZEROS.subarray(0, Math.min(n, MiB)));
    };
    for await (const piece of e.content.read()) {
      if (piece.offset < pos) throw new Error(`${e.path}: piece at ${piece.offset} before ${pos}`);
      zeros(piece.offset - pos);
      h.update(piece.data);
      pieces++;
      maxPiece = Math.max(maxPiece, piece.data.length);
      const last = data[data.length - 1];
      if (last && last[0] + last[1] === piece.offset) last[1] += piece.data.length;
      else data.push([piece.offset, piece.data.length]);
      pos = piece.offset + piece.data.length;
    }
    if (pos > e.content.size) throw new Error(`${e.path}: data past the size`);
    zeros(e.content.size - pos);
    files.set(e.path.toString('latin1'), { size: e.content.size, sha256: h.digest('hex'), data, pieces, maxPiece });
  }
  return { entries, files };
}

/** Linux dev_t as st_rdev shows it (glibc makedev). */
export function makedev(major: number, minor: number): bigint {
  const M = BigInt(major);
  const m = BigInt(minor);
  return ((M & 0xfffff000n) << 32n) | ((M & 0xfffn) << 8n) | ((m & 0xffffff00n) << 12n) | (m & 0xffn);
}

/**
 * The reader's entries as snapshotTree() (test/helpers/snapshot.ts) describes a directory: one line per path, in
 * path order, so the two compare line by line.
 */
export function snapshotOf(img: ReadImage, opts: { mtime?: boolean } = {}): string[] {
  const showName = (b: Buffer) => (/^[\x21-\x7e]*$/.test(b.toString('latin1')) ? b.toString('latin1') : `hex:${b.toString('hex')}`);
  const byPath = new Map(img.entries.map((e) => [e.path.toString('latin1'), e]));
  const linked = new Set(img.entries.filter((e) => e.type === 'hardlink').map((e) => e.linkTarget!.toString('latin1')));
  const lines: Array<[Buffer, string]> = [];
  for (const e of img.entries) {
    const key = e.path.toString('latin1');
    const target = e.type === 'hardlink' ? byPath.get(e.linkTarget!.toString('latin1'))! : e;
    const parts = [showName(e.path.length ? e.path : Buffer.from('.')), target.type, (target.mode & 0o7777).toString(8), `${target.uid}:${target.gid}`];
    if (opts.mtime) parts.push(`mtime=${target.mtimeNs}`);
    for (const x of target.xattrs) parts.push(`xattr:${x.name}=${Buffer.from(x.value).toString('hex')}`);
    if (target.type === 'file') {
      const f = img.files.get(target.path.toString('latin1'))!;
      parts.push(`size=${f.size}`, `sha256=${f.sha256}`);
    }
    if (target.type === 'symlink') parts.push(`target=${showName(target.linkTarget!)}`);
    if (target.type === 'chr' || target.type === 'blk') parts.push(`rdev=${makedev(target.rdev!.major, target.rdev!.minor)}`);
    if (e.type === 'hardlink') parts.push(`link=${showName(e.linkTarget!)}`);
    else if (linked.has(key)) parts.push(`link=${showName(e.path)}`);
    lines.push([e.path, parts.join(' ')]);
  }
  return lines.sort((a, b) => Buffer.compare(a[0], b[0])).map(([, l]) => l);
}

/** `mke2fs -q -F -t type -d src ...args img size`. */
export function mkfs(img: string, src: string | undefined, type: string, args: string[], size: string): void {
  run('mke2fs', ['-q', '-F', '-t', type, ...(src ? ['-d', src] : []), '-E', 'root_owner=0:0', ...args, img, size]);
}

/** Runs one debugfs request (`-w` when `write`); returns its output. */
export function debugfs(img: string, request: string, write = false): string {
  return run('debugfs', [...(write ? ['-w'] : []), '-R', request, img]);
}

/** Byte offset of an inode in the image, from `debugfs imap`. */
export function inodeOffset(img: string, spec: string, blockSize: number): number {
  const out = debugfs(img, `imap ${spec}`);
  const m = /located at block (\d+), offset 0x([0-9a-f]+)/.exec(out);
  if (!m) throw new Error(`cannot parse imap output: ${out}`);
  return Number(m[1]) * blockSize + parseInt(m[2], 16);
}

/**
 * The e2fsprogs test images (damaged ext file systems): $VIVA_EXT_CORPUS, else ../shared/corpus/ext-images next to
 * the project, else /work/shared/corpus/ext-images. `.ci/run` extracts them from Debian's e2fsprogs source package
 * when the machine has no copy.
 */
export const EXT_CORPUS = [
  process.env.VIVA_EXT_CORPUS,
  path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../shared/corpus/ext-images'),
  '/work/shared/corpus/ext-images',
].find((p): p is string => p !== undefined && fs.existsSync(p)) ?? '/work/shared/corpus/ext-images';

/** True when this process can loop-mount a file system (root with loop devices); probed once with a tiny image. */
export function canLoopMount(): boolean {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-loop-probe-'));
  try {
    const img = path.join(dir, 'fs.img');
    const mnt = path.join(dir, 'mnt');
    fs.mkdirSync(mnt);
    execFileSync('truncate', ['-s', '8M', img]);
    execFileSync('mke2fs', ['-q', '-F', img], { stdio: 'ignore' });
    execFileSync('mount', ['-o', 'loop,ro', img, mnt], { stdio: 'ignore' });
    execFileSync('umount', [mnt], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
