/**
 * Builds a fresh disk image from a tree: for a directory commit, or a disk commit checked out with a new layout.
 * The file system is made by e2fsprogs — `mke2fs -d` from a temporary checkout, then a generated `debugfs` script
 * that sets what `mke2fs -d` does not keep (ns mtimes, and owners/modes as a non-root checkout could not set them) by
 * inode number, which viva's own ext reader finds in the new file system (so any name works, even non-UTF-8 ones).
 * The partition table comes from `sfdisk` on a sparse scratch file, or from another disk commit (`--layout-from`),
 * whose other regions (boot code, gaps, other partitions) are copied bit-exact. The result is streamed in disk order
 * to the raw or qcow2 writer.
 *
 * Why not write ext4 ourselves: e2fsprogs is the reference implementation, installed wherever ext4 is used, and
 * what it writes passes `e2fsck -fn` by construction; the issue allows exactly this.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CheckoutError, UsageError, VivaError, systemReason } from '../errors.js';
import { fileBlockSource, mke2fsArgs, openExt4, type Ext4Info } from '../formats/ext4.js';
import { nonZero } from '../formats/disk.js';
import { readPartitionTable } from '../formats/partitions.js';
import type { DiskWriter } from '../formats/disk-writer.js';
import { native } from '../native/index.js';
import type { Commit, RootMeta } from '../model/commit.js';
import type { Disk, DiskRegion, FsContent } from '../model/disk.js';
import type { Oid } from '../model/oid.js';
import { splitNs } from '../native/index.js';
import type { Repository } from '../store/repository.js';
import { readDisk } from '../store/typed.js';
import { walkTree } from '../tree/walk.js';
import { BlobRangeReader, regionPieces } from './export-disk.js';

const run = promisify(execFile);
const MiB = 1 << 20;
const LINUX_GPT_TYPE = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
/**
 * The smallest --size worth trying: a table puts the partition at 1 MiB (and GPT keeps a backup at the end), and
 * mke2fs needs a few hundred KiB for its own metadata. Below this sfdisk fails with "Numerical result out of range".
 */
export const MIN_TABLE_DISK_BYTES = 2 * MiB;
export const MIN_FS_BYTES = 256 * 1024;
/** What mke2fs says when the files do not fit (-d population) or the file system cannot be made that small. */
const TOO_SMALL = /could not allocate|no space left|too small|not enough space/i;

/** The partition table a disk checkout writes: GPT, MBR, or none (a bare file system). */
export type PartitionScheme = 'gpt' | 'mbr' | 'none';

/**
 * How a tree is laid out as a disk image on checkout (`viva checkout --size`, `--fs`, `--partition`, `--layout-from`).
 */
export interface BuildDiskOptions {
  /** Virtual size in bytes (required without layoutFrom). */
  size?: number;
  fs?: 'ext2' | 'ext3' | 'ext4';
  label?: string;
  partition?: PartitionScheme;
  /** A disk commit whose partition table, file-system parameters and other regions are reused. */
  layoutFrom?: { rev: string; commit: Commit };
  signal?: AbortSignal;
  onBytes?: (n: number) => void;
}

/**
 * Writes a tree of `rev` (with its root metadata) into the new directory `dir`: checkout's directory writer, passed in
 * by checkout so that this module, which checkout calls, does not import it back.
 */
export type MaterializeTree = (rev: string, tree: Oid, rootMeta: RootMeta, dir: string, signal?: AbortSignal) => Promise<unknown>;

/** Parses `4G`, `512M`, `100000K`, `1T` or a byte count (binary units). */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?$/i.exec(s.trim());
  if (!m) throw new UsageError(`size '${s}' is not a number of bytes with an optional K, M, G or T suffix`);
  const unit = (m[2] ?? 'B').toUpperCase()[0]!;
  const mult = { B: 1, K: 1024, M: MiB, G: 1024 * MiB, T: 1024 * 1024 * MiB }[unit as 'B'] ?? 1;
  const n = Math.floor(Number(m[1]) * mult);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`size '${s}' is out of range`);
  return n;
}

async function tool(cmd: string, args: string[], what: string, dest: string): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { maxBuffer: 64 * MiB });
    return stdout;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new CheckoutError(dest, `${cmd} is not installed (needed to ${what}; apt-get install e2fsprogs fdisk)`);
    const detail = (err.stderr ?? err.message).trim().split('\n').filter(Boolean).pop() ?? err.message;
    throw new CheckoutError(dest, `${cmd} failed to ${what}: ${detail}`);
  }
}

/** The tree and root metadata a rebuild puts into its file system: the commit's tree, or its disk's first file system. */
function sourceTree(repo: Repository, c: Commit): { tree: Oid; rootMeta: RootMeta } {
  if (c.rootKind === 'tree') return { tree: c.root, rootMeta: c.rootMeta ?? { mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [] } };
  const d = readDisk(repo.store, c.root);
  // The first ext file system (a FAT boot partition before it is kept as it is).
  const fsr = d.regions.find((r) => r.content.kind === 'fs' && r.content.fsType.startsWith('ext'));
  if (!fsr) throw new UsageError('the disk has no file system to rebuild from');
  const content = fsr.content as FsContent;
  return { tree: content.tree, rootMeta: content.rootMeta };
}

function ext4InfoOf(c: FsContent): Ext4Info {
  return { ...Object.fromEntries(c.params.map(([k, v]) => [k, JSON.parse(v) as unknown])), type: c.fsType } as unknown as Ext4Info;
}

/** 'mtime' low 32 bits (signed) and 'mtime_extra' (ns << 2 | epoch bits) of an ns timestamp, as ext4 stores them. */
export function ext4Time(ns: bigint): { lo: bigint; extra: bigint } {
  const [sec, nsec] = splitNs(ns);
  const epoch = (sec + 2n ** 31n) >> 32n; // floor division for the era the 32-bit seconds belong to
  const lo = sec - epoch * 2n ** 32n;
  return { lo, extra: (nsec << 2n) | (epoch & 3n) };
}

/**
 * Writes `c`'s tree as a new disk to `out` (a writer sized `size`). Returns the virtual size.
 * Throws UsageError for bad options, CheckoutError when e2fsprogs/sfdisk fail (e.g. the tree does not fit).
 */
export async function buildDisk(repo: Repository, rev: string, c: Commit, dest: string, makeWriter: (size: number) => Promise<DiskWriter>, materialize: MaterializeTree, options: BuildDiskOptions): Promise<number> {
  const src = sourceTree(repo, c);
  const layout = options.layoutFrom ? readLayout(repo, options.layoutFrom) : undefined;
  const size = layout ? layout.disk.size : options.size;
  if (!size) throw new UsageError(`${dest}: a new disk needs --size (e.g. --size 4G) or --layout-from REV`);
  const scheme = options.partition ?? 'gpt';
  const minimum = !layout && scheme !== 'none' ? MIN_TABLE_DISK_BYTES : MIN_FS_BYTES;
  if (!layout && size < minimum) {
    throw new UsageError(`${dest}: --size ${size} bytes is too small: a disk ${scheme === 'none' ? 'without a partition table' : `with a ${scheme.toUpperCase()} table`} needs at least ${minimum} bytes`);
  }
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'viva-build-'));
  let out: DiskWriter | undefined;
  try {
    // 1. The files, as a directory mke2fs can read.
    const treeDir = path.join(tmp, 'tree');
    await materialize(rev, src.tree, src.rootMeta, treeDir, options.signal);
    // 2. Where the file system goes.
    let fsOffset = 0;
    let fsSize = size;
    let tableFile: string | undefined;
    if (layout) {
      fsOffset = layout.region.offset;
      fsSize = layout.region.size;
    } else if (scheme !== 'none') {
      tableFile = path.join(tmp, 'table.img');
      await fs.promises.writeFile(tableFile, '');
      await fs.promises.truncate(tableFile, size);
      const type = scheme === 'gpt' ? LINUX_GPT_TYPE : '83';
      await toolWithInput('sfdisk', ['-q', '--label', scheme === 'gpt' ? 'gpt' : 'dos', tableFile], `start=2048, type=${type}\n`, 'write the partition table', dest);
      const fh = await fileBlockSource(tableFile);
      try {
        const table = await readPartitionTable(fh, tableFile);
        const p = table?.partitions[0];
        if (!p) throw new CheckoutError(dest, 'sfdisk wrote no partition');
        fsOffset = p.start;
        fsSize = p.size;
      } finally {
        await fh.close();
      }
    }
    // 3. The file system.
    const fsFile = path.join(tmp, 'fs.img');
    await fs.promises.writeFile(fsFile, '');
    await fs.promises.truncate(fsFile, fsSize);
    const args = layout
      ? [...mke2fsArgs(ext4InfoOf(layout.region.content as FsContent))]
      : ['-t', options.fs ?? 'ext4', ...(options.label ? ['-L', options.label] : [])];
    if (options.label && layout) args.push('-L', options.label);
    try {
      await tool('mke2fs', ['-q', '-F', ...args, '-d', treeDir, fsFile], 'make the file system', dest);
    } catch (e) {
      // Too small a --size is the user's to change (exit 2), not a failure to write the destination.
      if (e instanceof CheckoutError && !layout && TOO_SMALL.test(String(e.data.reason))) {
        throw new UsageError(`${dest}: --size ${size} bytes is too small for the files of '${rev}' (${String(e.data.reason)})`);
      }
      throw e;
    }
    // 4. What mke2fs -d does not keep, by inode number.
    await fixInodes(repo, src.tree, src.rootMeta, fsFile, path.join(tmp, 'debugfs.cmd'), dest);
    // 5. Stream the disk in order.
    out = await makeWriter(size);
    const fsPieces = filePieces(fsFile, fsOffset);
    if (layout) {
      const reader = new BlobRangeReader(repo.store);
      for (const r of layout.disk.regions) {
        const pieces = r === layout.region ? fsPieces : regionPieces(repo.store, r, reader);
        for await (const p of pieces) { await out.write(p.offset, p.data); options.onBytes?.(p.data.length); }
      }
    } else {
      const parts = tableFile
        ? [rangePieces(tableFile, 0, fsOffset), fsPieces, rangePieces(tableFile, fsOffset + fsSize, size)]
        : [fsPieces];
      for (const pieces of parts) for await (const p of pieces) { await out.write(p.offset, p.data); options.onBytes?.(p.data.length); }
    }
    await out.finish();
    return size;
  } catch (e) {
    await out?.abort().catch(() => undefined);
    // A failed system call (a full disk, an I/O error) is a failure to write the destination (exit 16), named;
    // one on a scratch file under the temporary directory names that file too.
    const err = e as NodeJS.ErrnoException;
    if (e instanceof Error && !(e instanceof VivaError) && typeof err.syscall === 'string') {
      const where = typeof err.path === 'string' && err.path !== dest ? ` (writing '${err.path}')` : '';
      throw new CheckoutError(dest, `${systemReason(e)}${where}`, { cause: e });
    }
    throw e;
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
}

function readLayout(repo: Repository, from: { rev: string; commit: Commit }): { disk: Disk; region: DiskRegion } {
  if (from.commit.rootKind !== 'disk') throw new UsageError(`--layout-from ${from.rev}: not a disk commit`);
  const disk = readDisk(repo.store, from.commit.root);
  const region = disk.regions.find((r) => r.content.kind === 'fs' && r.content.fsType.startsWith('ext'));
  if (!region) throw new UsageError(`--layout-from ${from.rev}: the disk has no file system to replace`);
  return { disk, region };
}

async function toolWithInput(cmd: string, args: string[], input: string, what: string, dest: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = execFile(cmd, args, (e, _stdout, stderr) => {
      if (!e) { resolve(); return; }
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ENOENT') reject(new CheckoutError(dest, `${cmd} is not installed (needed to ${what})`));
      else reject(new CheckoutError(dest, `${cmd} failed to ${what}: ${String(stderr).trim().split('\n').pop()}`));
    });
    child.stdin?.end(input);
  });
}

/** Non-zero pieces of a file's data extents, shifted by `base`. */
async function* filePieces(file: string, base: number): AsyncGenerator<{ offset: number; data: Buffer }> {
  const st = await fs.promises.stat(file);
  yield* rangePieces(file, 0, st.size, base);
}

/** Non-zero pieces of bytes [from, to) of a file, at their offset (+ shift). */
async function* rangePieces(file: string, from: number, to: number, shift = 0): AsyncGenerator<{ offset: number; data: Buffer }> {
  const fd = fs.openSync(file, 'r');
  try {
    const flat = native().dataExtents(fd, fs.fstatSync(fd).size);
    const buf = Buffer.alloc(MiB);
    for (let i = 0; i < flat.length; i += 2) {
      let a = Math.max(from, flat[i]!);
      const b = Math.min(to, flat[i]! + flat[i + 1]!);
      while (a < b) {
        const n = Math.min(MiB, b - a);
        const got = fs.readSync(fd, buf, 0, n, a);
        if (got <= 0) break;
        for (const p of nonZero(buf.subarray(0, got), a)) yield { offset: p.offset + shift, data: p.data };
        a += got;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Sets, with one debugfs script, every inode's mtime (with ns), owner and mode to the tree's values: mke2fs -d keeps
 * whole seconds only, and a non-root checkout could not set owners.
 */
async function fixInodes(repo: Repository, tree: Oid, rootMeta: RootMeta, fsFile: string, script: string, dest: string): Promise<void> {
  const lines: string[] = [];
  const set = (ino: number, m: { mode: number; uid: number; gid: number; mtimeNs: bigint }, typeBits: number) => {
    const t = ext4Time(m.mtimeNs);
    lines.push(
      `sif <${ino}> mode 0${(typeBits | (m.mode & 0o7777)).toString(8)}`,
      `sif <${ino}> uid ${m.uid}`, `sif <${ino}> gid ${m.gid}`,
      `sif <${ino}> mtime @${t.lo}`, `sif <${ino}> mtime_extra ${t.extra}`,
    );
  };
  // The tree's entries by path, to match the new file system's inodes.
  const wanted = new Map<string, { mode: number; uid: number; gid: number; mtimeNs: bigint }>();
  walkTree(repo.store, tree, (p, e) => { wanted.set(p.toString('latin1'), e); });
  const TYPE_BITS: Record<string, number> = { file: 0o100000, dir: 0o040000, symlink: 0o120000, chr: 0o020000, blk: 0o060000, fifo: 0o010000, socket: 0o140000 };
  const src = await fileBlockSource(fsFile);
  try {
    const { reader } = await openExt4(src, fsFile);
    for await (const e of reader.entries()) {
      if (e.inode === undefined || e.type === 'hardlink') continue;
      const key = e.path.toString('latin1');
      const m = key === '' ? rootMeta : wanted.get(key);
      if (!m) continue; // lost+found, which mke2fs adds
      set(e.inode, m, TYPE_BITS[e.type] ?? 0);
    }
  } finally {
    await src.close();
  }
  await fs.promises.writeFile(script, `${lines.join('\n')}\n`);
  await tool('debugfs', ['-w', '-f', script, fsFile], 'set timestamps and owners', dest);
}
