/**
 * Builds a FAT file system (an EFI system partition) from a tree: `mkfs.vfat`, then mtools copies the files in from a
 * checkout of the tree (`mcopy -s -m`, which keeps mtimes, directories' too) and `mattrib` sets the read-only, hidden,
 * system and archive bits kept in the xattr `user.fat.attributes` (see ./fat.ts). The result is read back with
 * viva's own FAT reader, so that whatever mtools wrote differently from the plan is reported, never silent.
 *
 * FAT holds names (VFAT long names), sizes below 4 GiB, contents, mtimes (local time in 2-second steps, written as
 * UTC as Linux's vfat does by default: an odd second or a fraction is rounded down) and those four attribute bits. It
 * has no owners, modes, symbolic links, device nodes, fifos, sockets, hardlinks or other xattrs, and refuses some
 * names: {@link planFat} lists what is dropped, one warning per kind with a count and the first path.
 *
 * Why mtools: it writes FAT without a mount (no root, no kernel module) and is what distributions build ESP images
 * with; dosfstools' mkfs.vfat is the reference for the layout.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AbortedError } from '../errors.js';
import { FAT_ATTRIBUTES_XATTR, openFat } from './fat.js';
import { fileBlockSource } from './ext4.js';
import { runTool } from './fs-tools.js';
import type { EntryType, WriterWarning, Xattr } from './types.js';

/** The largest file FAT holds (its size field is 32 bits). */
export const FAT_MAX_FILE = 2 ** 32 - 1;
/** mtools settings: no check of the boot sector's geometry (an image file, not a floppy), code page 437 for 8.3 names as Linux and viva's reader use. */
const MTOOLS_RC = 'MTOOLS_SKIP_CHECK=1\nDEFAULT_CODEPAGE=437\n';
/** Characters Linux's vfat refuses in a long name (besides control characters): fs/fat/namei_vfat.c vfat_bad_char. */
const BAD_CHARS = /[\x00-\x1f"*/:<>?\\|\x7f]/;
/** The mtimes FAT can hold (its date field counts years from 1980 in 7 bits), as UTC ns: [1980-01-01, 2108-01-01). */
const FAT_MIN_NS = BigInt(Date.UTC(1980, 0, 1)) * 1_000_000n;
const FAT_END_NS = BigInt(Date.UTC(2108, 0, 1)) * 1_000_000n;
/** mtools commands take this many paths at a time (well below the kernel's argument limit). */
const BATCH = 500;

/** What {@link planFat} needs of a tree entry. */
export interface FatSourceEntry {
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: bigint;
  xattrs: Xattr[];
  hardlink?: Buffer;
}

/** mkfs.vfat parameters a rebuild takes from a committed FAT file system (`--layout-from`), or a new disk's. */
export interface FatParams {
  /** 12, 16 or 32; default: what mkfs.vfat picks for the size. */
  fatBits?: number;
  label?: string;
  /** 'ABCD-1234', as blkid prints it. */
  volumeId?: string;
  bytesPerSector?: number;
  sectorsPerCluster?: number;
  reservedSectors?: number;
  fatCount?: number;
  rootEntries?: number;
  mediaDescriptor?: number;
  /** Sectors before the file system on its disk (the partition's start). */
  hiddenSectors?: number;
}

/** The plan of a FAT population: what to copy, which attribute bits to set, and what FAT cannot hold. */
export interface FatPlan {
  /** Directories to create, parents first (image paths). */
  dirs: Buffer[];
  /** Files to copy (image paths, every name of a hardlink group). */
  files: Buffer[];
  /** Attribute byte (read-only 0x01, hidden 0x02, system 0x04, archive 0x20) → the paths that get exactly those bits. */
  attributes: Map<number, Buffer[]>;
  /** One per kind of loss, with a count and the first path. */
  warnings: WriterWarning[];
}

const showPath = (p: Buffer) => p.toString('utf8');

/** Whether FAT (and mtools) can hold `name` as it is: valid UTF-8, no character vfat refuses, no trailing dot or space, ≤ 255 UTF-16 units. */
export function fatNameProblem(name: Buffer): string | undefined {
  const s = name.toString('utf8');
  if (!Buffer.from(s, 'utf8').equals(name)) return 'not UTF-8';
  if (BAD_CHARS.test(s)) return 'a character FAT refuses';
  if (/[. ]$/.test(s)) return 'a trailing dot or space';
  if (s.length > 255) return 'longer than 255 characters';
  return undefined;
}

/**
 * Decides, for the entries of a tree in walk order (parents first), what a FAT file system gets: every directory
 * and regular file whose name FAT holds (case-insensitively unique in its directory: the first in byte order wins)
 * and which is below 4 GiB; the attribute bits of `user.fat.attributes` (none when the xattr is absent). Everything
 * else becomes a counted warning, git-style: owners other than 0:0, modes other than FAT's (0755 directories, 0644
 * files, 0444 read-only ones), symbolic links, device nodes, fifos and sockets, hardlinks (written as separate
 * copies), other xattrs, names FAT refuses (with what is below them), files too large, mtimes before 1980 or after
 * 2107.
 */
export function planFat(entries: Iterable<{ path: Buffer; entry: FatSourceEntry }>): FatPlan {
  const plan: FatPlan = { dirs: [], files: [], attributes: new Map(), warnings: [] };
  const kinds = new Map<string, { first: Buffer; count: number }>();
  const lose = (kind: string, p: Buffer) => {
    const k = kinds.get(kind);
    if (k) k.count++;
    else kinds.set(kind, { first: p, count: 1 });
  };
  /** Directories whose subtree is not written (a refused name), as 'path/' prefixes. */
  const dropped: string[] = [];
  /** Upper-cased names seen per directory. */
  const seen = new Map<string, Set<string>>();
  for (const { path: p, entry: e } of entries) {
    const key = p.toString('latin1');
    if (dropped.some((d) => key.startsWith(d))) continue;
    const slash = p.lastIndexOf(0x2f);
    const parent = slash < 0 ? '' : p.subarray(0, slash).toString('latin1');
    const name = slash < 0 ? p : p.subarray(slash + 1);
    if (e.type !== 'file' && e.type !== 'dir') {
      lose(e.type === 'symlink' ? 'symlink' : e.type === 'fifo' || e.type === 'socket' ? e.type : 'device', p);
      continue;
    }
    const problem = fatNameProblem(name);
    const names = seen.get(parent) ?? new Set<string>();
    seen.set(parent, names);
    const upper = name.toString('utf8').toUpperCase();
    if (problem || names.has(upper)) {
      lose(problem ? 'name' : 'case', p);
      if (e.type === 'dir') dropped.push(`${key}/`);
      continue;
    }
    if (e.type === 'file' && e.size > FAT_MAX_FILE) { lose('large', p); continue; }
    names.add(upper);
    if (e.type === 'dir') plan.dirs.push(p);
    else plan.files.push(p);
    if (e.uid !== 0 || e.gid !== 0) lose('owner', p);
    const fat = e.xattrs.find((x) => x.name === FAT_ATTRIBUTES_XATTR);
    const bits = fat && fat.value.length === 1 ? fat.value[0]! & 0x27 : 0;
    const mode = e.type === 'dir' ? 0o755 : bits & 0x01 ? 0o444 : 0o644;
    if ((e.mode & 0o7777) !== mode) lose('mode', p);
    if (e.xattrs.some((x) => x.name !== FAT_ATTRIBUTES_XATTR)) lose('xattr', p);
    if (e.type === 'file' && e.hardlink) lose('hardlink', p);
    if (e.mtimeNs < FAT_MIN_NS || e.mtimeNs >= FAT_END_NS) lose('time', p);
    const list = plan.attributes.get(bits) ?? [];
    list.push(p);
    plan.attributes.set(bits, list);
  }
  const WHY: Record<string, (n: number) => string> = {
    owner: (n) => `owner not kept: FAT has no owners${more(n, 'entry', 'entries')}`,
    mode: (n) => `mode not kept: FAT has no permission bits, only read-only${more(n, 'entry', 'entries')}`,
    symlink: (n) => `symbolic link not written: FAT has none${more(n, 'symbolic link', 'symbolic links')}`,
    device: (n) => `device node not written: FAT has none${more(n, 'device node', 'device nodes')}`,
    fifo: (n) => `fifo not written: FAT has none${more(n, 'fifo', 'fifos')}`,
    socket: (n) => `socket not written: FAT has none${more(n, 'socket', 'sockets')}`,
    hardlink: (n) => `hardlink written as a separate copy: FAT has no hardlinks${more(n, 'name', 'names')}`,
    xattr: (n) => `xattrs not kept: FAT has none besides its attribute bits${more(n, 'entry', 'entries')}`,
    name: (n) => `not written: FAT cannot hold this name (not UTF-8, a character such as ':' or '*', a trailing dot or space, or too long)${more(n, 'name', 'names')}`,
    case: (n) => `not written: FAT names are case-insensitive and another name in its directory differs only in case${more(n, 'name', 'names')}`,
    large: (n) => `not written: FAT holds files below 4 GiB${more(n, 'file', 'files')}`,
    time: (n) => `mtime not kept: FAT holds 1980 to 2107 only${more(n, 'entry', 'entries')}`,
  };
  for (const [kind, { first, count }] of kinds) {
    plan.warnings.push({ ...pathFields(first), message: WHY[kind]!(count), ...(count > 1 ? { count } : {}) });
  }
  return plan;
}

function more(n: number, one: string, many: string): string {
  return n > 1 ? ` (and ${n - 1} more ${n - 1 === 1 ? one : many})` : '';
}

function pathFields(p: Buffer): { path: string; pathHex?: string } {
  const s = showPath(p);
  return Buffer.from(s, 'utf8').equals(p) ? { path: s } : { path: s, pathHex: p.toString('hex') };
}

/** mkfs.vfat arguments (before the image name) for `params`. */
export function mkfsVfatArgs(params: FatParams): string[] {
  const args: string[] = [];
  if (params.fatBits) args.push('-F', String(params.fatBits));
  if (params.label) args.push('-n', params.label);
  if (params.volumeId) args.push('-i', params.volumeId.replace('-', ''));
  if (params.bytesPerSector) args.push('-S', String(params.bytesPerSector));
  if (params.sectorsPerCluster) args.push('-s', String(params.sectorsPerCluster));
  if (params.reservedSectors) args.push('-R', String(params.reservedSectors));
  if (params.fatCount) args.push('-f', String(params.fatCount));
  if (params.rootEntries && params.fatBits !== 32) args.push('-r', String(params.rootEntries));
  if (params.mediaDescriptor) args.push('-M', `0x${params.mediaDescriptor.toString(16)}`);
  if (params.hiddenSectors !== undefined) args.push('-h', String(params.hiddenSectors));
  return args;
}

/**
 * The mkfs.vfat parameters of a committed FAT file system, from its stored parameters (the FatInfo fields of
 * ./fat.ts as key → value).
 */
export function fatParamsOf(fsType: string, params: Record<string, unknown>): FatParams {
  const num = (k: string) => (typeof params[k] === 'number' ? { [k]: params[k] as number } : {});
  const str = (k: string) => (typeof params[k] === 'string' && params[k] !== '' ? { [k]: params[k] as string } : {});
  return {
    fatBits: fsType === 'fat12' ? 12 : fsType === 'fat16' ? 16 : 32,
    ...str('label'), ...str('volumeId'), ...num('bytesPerSector'), ...num('sectorsPerCluster'), ...num('reservedSectors'),
    ...num('fatCount'), ...num('rootEntries'), ...num('mediaDescriptor'), ...num('hiddenSectors'),
  };
}

/** `::/a/b` for mtools. */
function mpath(p: Buffer): string {
  return `::/${p.toString('utf8')}`;
}

/**
 * Fills the fresh FAT file system `image` with `plan`, taking content and mtimes from `treeDir` (a checkout of the
 * same tree): a staging directory of hardlinks holds exactly the planned entries, `mcopy -s -m` copies it, `mattrib`
 * sets the attribute bits. Then reads the image back with viva's FAT reader and returns a warning for every planned
 * entry that did not come back with its name, type, size and attribute bits (mtools changes some short names it
 * cannot encode). Throws CheckoutError(dest) when a tool fails (a full file system: "Disk full").
 */
export async function populateFat(image: string, treeDir: string, plan: FatPlan, mtimes: Map<string, bigint>, scratch: string, dest: string, signal?: AbortSignal): Promise<WriterWarning[]> {
  const rc = path.join(scratch, 'mtoolsrc');
  await fs.promises.writeFile(rc, MTOOLS_RC);
  const env = { ...process.env, MTOOLSRC: rc, LC_ALL: 'C.UTF-8', TZ: 'UTC' };
  const stage = path.join(scratch, 'fat');
  await fs.promises.mkdir(stage);
  const at = (p: Buffer) => Buffer.concat([Buffer.from(`${stage}/`), p]);
  for (const d of plan.dirs) await fs.promises.mkdir(at(d));
  for (const f of plan.files) {
    const from = Buffer.concat([Buffer.from(`${treeDir}/`), f]);
    try {
      await fs.promises.link(from, at(f));
    } catch {
      await fs.promises.copyFile(from, at(f));
    }
  }
  // Directories last and deepest first: filling one changed its mtime.
  for (const d of [...plan.dirs].reverse()) {
    const ns = mtimes.get(d.toString('latin1')) ?? 0n;
    const t = Number(ns / 1_000_000n) / 1000;
    await fs.promises.utimes(at(d), t, t);
  }
  if (signal?.aborted) throw new AbortedError();
  const top = (await fs.promises.readdir(stage, { encoding: 'buffer' })).map((n) => Buffer.concat([Buffer.from(`${stage}/`), n]).toString('utf8'));
  for (let i = 0; i < top.length; i += BATCH) {
    await runTool('mcopy', ['-s', '-m', '-Q', '-i', image, ...top.slice(i, i + BATCH), '::/'], 'copy the files into the FAT file system', dest, { env });
  }
  // Only names mtools wrote as they are can be named to mattrib; the others are reported below.
  const written = await readFat(image);
  for (const [bits, all] of plan.attributes) {
    const paths = all.filter((p) => written.has(p.toString('latin1')));
    const flags = [[0x01, 'r'], [0x02, 'h'], [0x04, 's'], [0x20, 'a']].map(([b, c]) => `${bits & (b as number) ? '+' : '-'}${c as string}`);
    for (let i = 0; i < paths.length; i += BATCH) {
      await runTool('mattrib', ['-i', image, ...flags, ...paths.slice(i, i + BATCH).map(mpath)], 'set FAT attributes', dest, { env });
    }
  }
  if (signal?.aborted) throw new AbortedError();
  return verifyFat(image, plan);
}

/** Every entry of the FAT file system `image` (path as latin1 of its bytes → directory?, attribute bits), read by viva's FAT reader. */
async function readFat(image: string): Promise<Map<string, { dir: boolean; bits: number; path: Buffer }>> {
  const out = new Map<string, { dir: boolean; bits: number; path: Buffer }>();
  const src = await fileBlockSource(image);
  try {
    const { reader } = await openFat(src, image);
    for await (const e of reader.entries()) {
      if (e.path.length === 0) continue;
      const bits = e.xattrs.find((x) => x.name === FAT_ATTRIBUTES_XATTR)?.value[0] ?? 0;
      out.set(e.path.toString('latin1'), { dir: e.type === 'dir', bits, path: Buffer.from(e.path) });
    }
  } finally {
    await src.close();
  }
  return out;
}

/** Reads `image` back and compares it with `plan` (see populateFat). */
async function verifyFat(image: string, plan: FatPlan): Promise<WriterWarning[]> {
  const want = new Map<string, { dir: boolean; bits: number }>();
  for (const [bits, paths] of plan.attributes) for (const p of paths) want.set(p.toString('latin1'), { dir: false, bits });
  for (const d of plan.dirs) want.get(d.toString('latin1'))!.dir = true;
  const differs: Buffer[] = [];
  for (const [key, got] of await readFat(image)) {
    const w = want.get(key);
    if (!w) continue; // the other name of an entry below (mtools changed it)
    if (w.dir !== got.dir || w.bits !== got.bits) differs.push(got.path);
    want.delete(key);
  }
  const missing = [...want.keys()].map((k) => Buffer.from(k, 'latin1'));
  const out: WriterWarning[] = [];
  const warn = (paths: Buffer[], message: string) => {
    if (paths.length) out.push({ ...pathFields(paths[0]!), message: `${message}${more(paths.length, 'name', 'names')}`, ...(paths.length > 1 ? { count: paths.length } : {}) });
  };
  warn(missing, 'written under another name: the FAT tools could not keep it');
  warn(differs, 'written with other FAT attributes than its user.fat.attributes');
  return out;
}
