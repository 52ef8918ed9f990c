/**
 * Builds a fresh disk image from a tree: for a directory commit, or a disk commit checked out with a new layout.
 * Each file system is made by the reference tools of its type:
 * - ext2/3/4: `mke2fs -d` from a temporary checkout, then a generated `debugfs` script that sets what `mke2fs -d`
 *   does not keep (ns mtimes, and owners/modes as a non-root checkout could not set them) by inode number, which
 *   viva's own ext reader finds in the new file system (so any name works, even non-UTF-8 ones);
 * - xfs: `mkfs.xfs`, then the tree written through a loop mount (../formats/xfs-build.ts; needs root);
 * - vfat (an EFI system partition): `mkfs.vfat`, then mtools (../formats/fat-build.ts); what FAT cannot hold is
 *   returned as warnings.
 * The partition table comes from `sfdisk` on a sparse scratch file, or from another disk commit (`--layout-from`),
 * whose regions that are not rebuilt (boot code, gaps, other partitions) are copied bit-exact. The result is streamed
 * in disk order to the raw or qcow2 writer.
 *
 * Why not write the file systems ourselves: the tools are the reference implementations, installed wherever the file
 * systems are used, and what they write passes `e2fsck -fn`, `xfs_repair -n` and `fsck.vfat -n` by construction.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CheckoutError, UsageError, VivaError, systemReason } from '../errors.js';
import { fileBlockSource, mke2fsArgs, openExt4, type Ext4Info } from '../formats/ext4.js';
import { nonZero } from '../formats/disk.js';
import { fatParamsOf, mkfsVfatArgs, planFat, populateFat } from '../formats/fat-build.js';
import { runTool } from '../formats/fs-tools.js';
import { MODE_TYPE_BITS, type WriterWarning } from '../formats/types.js';
import { XFS_MAX_MAJOR, XFS_MAX_MINOR, XFS_MIN_BYTES, assertCanLoopMount, mkfsXfsArgs, withLoopMount, xfsParamsOf, type XfsParams } from '../formats/xfs-build.js';
import { readPartitionTable } from '../formats/partitions.js';
import type { DiskWriter } from '../formats/disk-writer.js';
import { native } from '../native/index.js';
import type { Commit, RootMeta } from '../model/commit.js';
import type { Disk, DiskRegion, FsContent } from '../model/disk.js';
import type { Oid } from '../model/oid.js';
import type { TreeEntry } from '../model/tree.js';
import { splitNs } from '../native/index.js';
import type { Repository } from '../store/repository.js';
import { readDisk, readTree } from '../store/typed.js';
import { walkTree } from '../tree/walk.js';
import { showPath } from '../tree/mutable-tree.js';
import { BlobRangeReader, regionPieces } from './export-disk.js';

const run = promisify(execFile);
const MiB = 1 << 20;
const LINUX_GPT_TYPE = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
/** The EFI system partition: what a new disk's partition gets with --fs vfat (GPT type GUID, MBR type 0xef). */
const ESP_GPT_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
/**
 * The smallest --size worth trying: a table puts the partition at 1 MiB (and GPT keeps a backup at the end), and
 * mke2fs needs a few hundred KiB for its own metadata. Below this sfdisk fails with "Numerical result out of range".
 */
export const MIN_TABLE_DISK_BYTES = 2 * MiB;
export const MIN_FS_BYTES = 256 * 1024;
/**
 * What mke2fs, mkfs.xfs, mkfs.vfat and mcopy say when the files do not fit or the file system cannot be made that
 * small.
 */
const TOO_SMALL = /could not allocate|no space left|too small|not enough space|must be larger than|too few clusters|disk full|too many clusters/i;

/** The file systems a rebuilt disk can hold: `checkout --fs`. */
export type RebuildFsType = 'ext2' | 'ext3' | 'ext4' | 'xfs' | 'vfat';
/** Every value of RebuildFsType, for flag parsing and messages. */
export const REBUILD_FS_TYPES: readonly RebuildFsType[] = ['ext4', 'ext3', 'ext2', 'xfs', 'vfat'];

/** What {@link buildDisk} made: the virtual size, and what a file system could not hold (vfat: owners, symlinks, ...). */
export interface BuildDiskResult {
  size: number;
  warnings: WriterWarning[];
}

/** The partition table a disk checkout writes: GPT, MBR, or none (a bare file system). */
export type PartitionScheme = 'gpt' | 'mbr' | 'none';

/**
 * How a tree is laid out as a disk image on checkout (`viva checkout --size`, `--fs`, `--partition`, `--layout-from`).
 */
export interface BuildDiskOptions {
  /** Virtual size in bytes (required without layoutFrom). */
  size?: number;
  /** The file system of a new layout (default ext4); with layoutFrom each file system keeps the type it has there. */
  fs?: RebuildFsType;
  label?: string;
  partition?: PartitionScheme;
  /** A disk commit whose partition table, file-system parameters and other regions are reused. */
  layoutFrom?: { rev: string; commit: Commit };
  /** Fail (CheckoutError) instead of returning warnings when a file system cannot hold everything (vfat). */
  strict?: boolean;
  signal?: AbortSignal;
  onBytes?: (n: number) => void;
}

/**
 * Writes a tree of `rev` (with its root metadata) into the new directory `dir`: checkout's directory writer, passed in
 * by checkout so that this module, which checkout calls, does not import it back.
 */
export type MaterializeTree = (rev: string, tree: Oid, rootMeta: RootMeta, dir: string, signal?: AbortSignal) => Promise<{ warnings: WriterWarning[] }>;


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

/** A file system's files: a tree and the metadata of its root directory. */
interface FsTree {
  tree: Oid;
  rootMeta: RootMeta;
}

/** Where the files of the commit being rebuilt go: one tree (into the root file system), or one per partition index. */
type SourceTrees = { single: FsTree } | { parts: Map<number, FsTree> };

/** How a file system of the new disk is made. */
type FsKind = 'ext' | 'xfs' | 'vfat';

/** One file system of the new disk: where it goes, how it is made, what it holds. */
interface Target {
  offset: number;
  size: number;
  kind: FsKind;
  /** The --layout-from region it replaces. */
  region?: DiskRegion;
  /** mkfs arguments (before the image name; mke2fs's after -q -F). */
  args: string[];
  files: FsTree;
  /** 'p2/' when the disk has several rebuilt file systems: prefixes the paths of its warnings. */
  prefix: string;
}

const DEFAULT_ROOT_META: RootMeta = { mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [] };

function kindOfFsType(fsType: string): FsKind | undefined {
  if (fsType.startsWith('ext')) return 'ext';
  if (fsType.startsWith('fat')) return 'vfat';
  if (fsType === 'xfs') return 'xfs';
  return undefined;
}

/**
 * The files a rebuild puts on the new disk. A directory commit is one tree, except with --layout-from when its top
 * level is exactly pN/ directories of file systems of the layout (what a directory checkout of a partitioned disk
 * gives back): then each pN/ goes into partition N. A disk commit with one file system is that file system's tree;
 * with several and --layout-from, each goes into the partition of the same number.
 */
function sourceTrees(repo: Repository, c: Commit, layoutParts: Set<number> | undefined): SourceTrees {
  if (c.rootKind === 'tree') {
    const single = { tree: c.root, rootMeta: c.rootMeta ?? DEFAULT_ROOT_META };
    if (!layoutParts) return { single };
    const parts = new Map<number, FsTree>();
    for (const e of readTree(repo.objects, c.root).entries) {
      const m = /^p([1-9]\d*)$/.exec(e.name.toString('latin1'));
      if (!m || e.type !== 'dir' || !e.oid || !layoutParts.has(Number(m[1]))) return { single };
      parts.set(Number(m[1]), { tree: e.oid, rootMeta: { mode: e.mode, uid: e.uid, gid: e.gid, mtimeNs: e.mtimeNs, xattrs: e.xattrs } });
    }
    return parts.size ? { parts } : { single };
  }
  const d = readDisk(repo.objects, c.root);
  const fileSystems = d.regions.filter((r) => r.content.kind === 'fs' && kindOfFsType(r.content.fsType));
  if (layoutParts && fileSystems.length > 1 && fileSystems.every((r) => r.partition)) {
    return { parts: new Map(fileSystems.map((r) => [r.partition!.index, filesOf(r)])) };
  }
  // The root file system: the first ext or xfs one (a FAT boot partition before it is not the root), else the first.
  const root = fileSystems.find((r) => kindOfFsType((r.content as FsContent).fsType) !== 'vfat') ?? fileSystems[0];
  if (!root) throw new UsageError('the disk has no file system to rebuild from');
  return { single: filesOf(root) };
}

function filesOf(r: DiskRegion): FsTree {
  const content = r.content as FsContent;
  return { tree: content.tree, rootMeta: content.rootMeta };
}

function paramsOf(c: FsContent): Record<string, unknown> {
  return Object.fromEntries(c.params.map(([k, v]) => [k, JSON.parse(v) as unknown]));
}

function ext4InfoOf(c: FsContent): Ext4Info {
  return { ...paramsOf(c), type: c.fsType } as unknown as Ext4Info;
}

/** 'mtime' low 32 bits (signed) and 'mtime_extra' (ns << 2 | epoch bits) of an ns timestamp, as ext4 stores them. */
export function ext4Time(ns: bigint): { lo: bigint; extra: bigint } {
  const [sec, nsec] = splitNs(ns);
  const epoch = (sec + 2n ** 31n) >> 32n; // floor division for the era the 32-bit seconds belong to
  const lo = sec - epoch * 2n ** 32n;
  return { lo, extra: (nsec << 2n) | (epoch & 3n) };
}

/**
 * Writes `c`'s tree as a new disk through `makeWriter(size)`: a new layout (`size`, `partition`, `fs`, `label`), or
 * the layout of the disk commit `layoutFrom`, each of whose ext, xfs and vfat file systems that receives files is
 * rebuilt with its type and parameters (see sourceTrees for which files go where) while every other region is
 * copied bit-exact. Returns the virtual size and what a file system could not hold (vfat: owners, modes, symlinks,
 * ...; one warning per kind).
 *
 * Locking: none (reads the repository only). Throws UsageError for bad options (a --size too small for the files, a
 * layout without a file system for them), CheckoutError when a tool fails or is missing, when xfs is asked for
 * without root or loop devices, and with `strict` when a file system cannot hold everything.
 *
 * @example
 * const { size, warnings } = await buildDisk(repo, 'esp', commit, 'esp.raw', (n) => createDiskWriter('esp.raw', 'raw', n), materialize, { size: 64 << 20, fs: 'vfat' });
 */
export async function buildDisk(repo: Repository, rev: string, c: Commit, dest: string, makeWriter: (size: number) => Promise<DiskWriter>, materialize: MaterializeTree, options: BuildDiskOptions): Promise<BuildDiskResult> {
  if (options.layoutFrom && options.fs) {
    throw new UsageError(`--fs cannot be combined with --layout-from: each file system keeps the type it has in '${options.layoutFrom.rev}'`);
  }
  const layout = options.layoutFrom ? readLayout(repo, options.layoutFrom) : undefined;
  const src = sourceTrees(repo, c, layout ? new Set(layout.fileSystems.flatMap((f) => (f.region.partition ? [f.region.partition.index] : []))) : undefined);
  const size = layout ? layout.disk.size : options.size;
  if (!size) throw new UsageError(`${dest}: a new disk needs --size (e.g. --size 4G) or --layout-from REV`);
  const scheme = options.partition ?? 'gpt';
  const fsType = options.fs ?? 'ext4';
  const minimum = !layout && scheme !== 'none' ? MIN_TABLE_DISK_BYTES : MIN_FS_BYTES;
  if (!layout && size < minimum) {
    throw new UsageError(`${dest}: --size ${size} bytes is too small: a disk ${scheme === 'none' ? 'without a partition table' : `with a ${scheme.toUpperCase()} table`} needs at least ${minimum} bytes`);
  }
  if (!layout && fsType === 'xfs' && size < XFS_MIN_BYTES + (scheme === 'none' ? 0 : 2 * MiB)) {
    throw new UsageError(`${dest}: --size ${size} bytes is too small: mkfs.xfs makes file systems of 300 MiB or more`);
  }
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'viva-build-'));
  let out: DiskWriter | undefined;
  try {
    // 1. Where each file system goes, and how it is made.
    let targets: Target[];
    let tableFile: string | undefined;
    if (layout) {
      targets = layoutTargets(layout, src, options);
    } else {
      let fsOffset = 0;
      let fsSize = size;
      if (scheme !== 'none') {
        tableFile = path.join(tmp, 'table.img');
        await fs.promises.writeFile(tableFile, '');
        await fs.promises.truncate(tableFile, size);
        const type = fsType === 'vfat' ? (scheme === 'gpt' ? ESP_GPT_TYPE : 'ef') : scheme === 'gpt' ? LINUX_GPT_TYPE : '83';
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
      const kind: FsKind = fsType === 'xfs' || fsType === 'vfat' ? fsType : 'ext';
      const args = kind === 'ext' ? ['-t', fsType] : kind === 'vfat' ? mkfsVfatArgs({ hiddenSectors: fsOffset / 512 }) : [];
      if (!('single' in src)) throw new UsageError(`${dest}: the files of '${rev}' belong to several file systems: name a layout with --layout-from`);
      targets = [{ offset: fsOffset, size: fsSize, kind, args: [...args, ...labelArgs(kind, options.label)], files: src.single, prefix: '' }];
    }
    // An xfs file system is filled through a loop mount: check that it can be before any work.
    if (targets.some((t) => t.kind === 'xfs')) assertCanLoopMount(dest);
    // 2. The file systems, each in its own scratch image.
    const warnings: WriterWarning[] = layout ? keptPartitions(repo, rev, c, layout, targets) : [];
    const images = new Map<Target, string>();
    for (const [i, t] of targets.entries()) {
      const work = path.join(tmp, `fs${i}`);
      await fs.promises.mkdir(work);
      const image = path.join(work, 'fs.img');
      await fs.promises.writeFile(image, '');
      await fs.promises.truncate(image, t.size);
      try {
        const lost = await buildFileSystem(repo, rev, t, image, work, dest, materialize, options.signal);
        warnings.push(...lost.map((w) => prefixed(w, t.prefix)));
      } catch (e) {
        // Too small a --size is the user's to change (exit 2), not a failure to write the destination.
        if (e instanceof CheckoutError && !layout && TOO_SMALL.test(String(e.data.reason))) {
          throw new UsageError(`${dest}: --size ${size} bytes is too small for the files of '${rev}' (${String(e.data.reason)})`);
        }
        throw e;
      }
      images.set(t, image);
    }
    if (options.strict && warnings.length) {
      const w = warnings[0]!;
      throw new CheckoutError(dest, `'${w.path}': ${w.message} (--strict)`);
    }
    // 3. Stream the disk in order.
    out = await makeWriter(size);
    if (layout) {
      const reader = new BlobRangeReader(repo.objects);
      for (const r of layout.disk.regions) {
        const t = targets.find((x) => x.region === r);
        const pieces = t ? filePieces(images.get(t)!, r.offset) : regionPieces(repo.objects, r, reader);
        for await (const p of pieces) { await out.write(p.offset, p.data); options.onBytes?.(p.data.length); }
      }
    } else {
      const t = targets[0]!;
      const fsPieces = filePieces(images.get(t)!, t.offset);
      const parts = tableFile
        ? [rangePieces(tableFile, 0, t.offset), fsPieces, rangePieces(tableFile, t.offset + t.size, size)]
        : [fsPieces];
      for (const pieces of parts) for await (const p of pieces) { await out.write(p.offset, p.data); options.onBytes?.(p.data.length); }
    }
    await out.finish();
    return { size, warnings };
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

function labelArgs(kind: FsKind, label: string | undefined): string[] {
  if (!label) return [];
  return [kind === 'vfat' ? '-n' : '-L', label];
}

function prefixed(w: WriterWarning, prefix: string): WriterWarning {
  if (!prefix) return w;
  return { ...w, path: `${prefix}${w.path}`, ...(w.pathHex ? { pathHex: Buffer.from(prefix).toString('hex') + w.pathHex } : {}) };
}

/**
 * Makes target `t`'s file system in the scratch image `image` (sized already) and fills it with its files; `work` is
 * a scratch directory for the checkout the tools read. Returns what the file system could not hold.
 */
async function buildFileSystem(repo: Repository, rev: string, t: Target, image: string, work: string, dest: string, materialize: MaterializeTree, signal?: AbortSignal): Promise<WriterWarning[]> {
  const { tree, rootMeta } = t.files;
  if (t.kind === 'xfs') {
    // Linux's XFS refuses device numbers past 511:262143 (see XFS_MAX_MAJOR): such a device is refused before any
    // work rather than failing half-way.
    walkTree(repo.objects, tree, (p, e) => {
      if ((e.type === 'chr' || e.type === 'blk') && e.rdev && (e.rdev.major >= XFS_MAX_MAJOR || e.rdev.minor >= XFS_MAX_MINOR)) {
        throw new UsageError(`${dest}: '${showPath(Buffer.concat([Buffer.from(t.prefix), p]))}' is device ${e.rdev.major}:${e.rdev.minor}, which xfs cannot store (major below ${XFS_MAX_MAJOR}, minor below ${XFS_MAX_MINOR}): use --fs ext4`);
      }
    }, signal ? { signal } : {});
    await runTool('mkfs.xfs', ['-q', '-f', ...t.args, image], 'make the xfs file system', dest);
    const mnt = path.join(work, 'mnt');
    await fs.promises.mkdir(mnt);
    // Run as root (checked): everything is written as it is, so the writer has nothing to warn about.
    const r = await withLoopMount(image, mnt, dest, (dir) => materialize(rev, tree, rootMeta, dir, signal));
    return r.warnings;
  }
  // ext and vfat are filled from a checkout of the tree.
  const treeDir = path.join(work, 'tree');
  await materialize(rev, tree, rootMeta, treeDir, signal);
  if (t.kind === 'ext') {
    await tool('mke2fs', ['-q', '-F', ...t.args, '-d', treeDir, image], 'make the file system', dest);
    // What mke2fs -d does not keep, by inode number.
    await fixInodes(repo, tree, rootMeta, image, path.join(work, 'debugfs.cmd'), dest);
    return [];
  }
  await runTool('mkfs.vfat', [...t.args, image], 'make the FAT file system', dest);
  const entries: Array<{ path: Buffer; entry: TreeEntry }> = [];
  const mtimes = new Map<string, bigint>();
  walkTree(repo.objects, tree, (p, e) => {
    entries.push({ path: p, entry: e });
    mtimes.set(p.toString('latin1'), e.mtimeNs);
  }, signal ? { signal } : {});
  const plan = planFat(entries);
  const changed = await populateFat(image, treeDir, plan, mtimes, work, dest, signal);
  return [...plan.warnings, ...changed];
}

/** A --layout-from disk: its regions, and the file systems among them a rebuild can make again (with mkfs arguments). */
interface Layout {
  rev: string;
  disk: Disk;
  fileSystems: Array<{ region: DiskRegion; kind: FsKind; args: string[] }>;
}

/**
 * The disk of `from` and its file systems: ext and FAT ones as committed (type and parameters), and xfs ones —
 * committed as raw bytes where viva does not read xfs — found by their superblock, whose block, sector and inode
 * sizes, AG count, uuid and label the rebuild keeps.
 */
function readLayout(repo: Repository, from: { rev: string; commit: Commit }): Layout {
  if (from.commit.rootKind !== 'disk') throw new UsageError(`--layout-from ${from.rev}: not a disk commit`);
  const disk = readDisk(repo.objects, from.commit.root);
  const fileSystems: Layout['fileSystems'] = [];
  for (const r of disk.regions) {
    const c = r.content;
    const kind = c.kind === 'fs' ? kindOfFsType(c.fsType) : undefined;
    if (c.kind === 'fs' && kind === 'ext') {
      fileSystems.push({ region: r, kind, args: mke2fsArgs(ext4InfoOf(c)) });
    } else if (c.kind === 'fs' && kind === 'vfat') {
      fileSystems.push({ region: r, kind, args: mkfsVfatArgs(fatParamsOf(c.fsType, paramsOf(c))) });
    } else if (kind === 'xfs' || (c.kind === 'raw' && r.partition)) {
      // Read or not, an xfs file system is known by its superblock, which holds the parameters to keep.
      const sb = xfsSuperblock(repo, r);
      if (sb) fileSystems.push({ region: r, kind: 'xfs', args: mkfsXfsArgs(sb) });
    }
  }
  if (!fileSystems.length) throw new UsageError(`--layout-from ${from.rev}: the disk has no file system to replace`);
  return { rev: from.rev, disk, fileSystems };
}

/** The parameters in the XFS superblock at the start of region `r`, if there is one. */
function xfsSuperblock(repo: Repository, r: DiskRegion): XfsParams | undefined {
  const head = Buffer.alloc(512);
  for (const p of regionPieces(repo.objects, r, new BlobRangeReader(repo.objects))) {
    if (p.offset >= r.offset + head.length) break;
    const at = p.offset - r.offset;
    p.data.copy(head, at, 0, Math.min(p.data.length, head.length - at));
  }
  return xfsParamsOf(head);
}

/**
 * Warnings for the partitions a disk commit `c` holds as raw bytes (content viva does not read file by file: an
 * unread file system, swap, ...) where the layout's partition of the same number, which the new disk keeps, holds
 * other bytes: the commit's own bytes there are not carried over, and that is said, not left silent.
 */
function keptPartitions(repo: Repository, rev: string, c: Commit, layout: Layout, targets: Target[]): WriterWarning[] {
  if (c.rootKind !== 'disk') return [];
  const out: WriterWarning[] = [];
  for (const r of readDisk(repo.objects, c.root).regions) {
    if (!r.partition || r.content.kind !== 'raw') continue;
    const n = r.partition.index;
    const there = layout.disk.regions.find((x) => x.partition?.index === n);
    if (!there || targets.some((t) => t.region === there)) continue;
    if (there.content.kind === 'raw' && there.content.data === r.content.data && there.content.map === r.content.map && there.size === r.size) continue;
    out.push({ path: `p${n}`, message: `not carried over: '${rev}' holds this partition as raw bytes, not files, so the one of '${layout.rev}' is kept` });
  }
  return out;
}

/**
 * The file systems a --layout-from rebuild makes: with one tree, the layout's root file system (the first ext or
 * xfs one, else the first FAT one); with pN/ trees, the file system of each partition N (a UsageError when the
 * layout has none there). `options.label` relabels the root file system.
 */
function layoutTargets(layout: Layout, src: SourceTrees, options: BuildDiskOptions): Target[] {
  const target = (f: Layout['fileSystems'][number], files: FsTree, prefix: string, label?: string): Target => ({
    offset: f.region.offset, size: f.region.size, kind: f.kind, region: f.region, args: [...f.args, ...labelArgs(f.kind, label)], files, prefix,
  });
  const rootOf = (list: Layout['fileSystems']) => list.find((f) => f.kind !== 'vfat') ?? list[0];
  if ('single' in src) return [target(rootOf(layout.fileSystems)!, src.single, '', options.label)];
  const chosen: Layout['fileSystems'] = [];
  for (const n of [...src.parts.keys()].sort((a, b) => a - b)) {
    const f = layout.fileSystems.find((x) => x.region.partition?.index === n);
    if (!f) throw new UsageError(`--layout-from ${layout.rev}: partition ${n} of the disk holds no file system to put the files of p${n} into`);
    chosen.push(f);
  }
  const root = rootOf(chosen);
  return chosen.map((f) => target(f, src.parts.get(f.region.partition!.index)!, `p${f.region.partition!.index}/`, f === root ? options.label : undefined));
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
  walkTree(repo.objects, tree, (p, e) => { wanted.set(p.toString('latin1'), e); });
  const src = await fileBlockSource(fsFile);
  try {
    const { reader } = await openExt4(src, fsFile);
    for await (const e of reader.entries()) {
      if (e.inode === undefined || e.type === 'hardlink') continue;
      const key = e.path.toString('latin1');
      const m = key === '' ? rootMeta : wanted.get(key);
      if (!m) continue; // lost+found, which mke2fs adds
      set(e.inode, m, MODE_TYPE_BITS[e.type]);
    }
  } finally {
    await src.close();
  }
  await fs.promises.writeFile(script, `${lines.join('\n')}\n`);
  await tool('debugfs', ['-w', '-f', script, fsFile], 'set timestamps and owners', dest);
}
