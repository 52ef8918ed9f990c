/** The ls and cat ops: entries of an image directory with their metadata, and one file's content. */
import { RepositoryCorruptError, UsageError } from '../errors.js';
import type { Oid } from '../model/oid.js';
import type { TreeEntry } from '../model/tree.js';
import type { Repository } from '../store/repository.js';
import { readDisk } from '../store/typed.js';
import { type DiskInfo, describeDisk } from './disk-info.js';
import { filePieces } from './checkout.js';
import { showPath } from '../tree/mutable-tree.js';
import { walkTree } from '../tree/walk.js';
import { ensureContent } from '../sync/partial.js';
import { resolveRevision, resolveSpec } from './resolve.js';

/** One entry of an image listing ({@link ls}): path, type, mode, owner, size, mtime and content id. */
export interface LsEntry {
  /** Path relative to the image root (as UTF-8 text; `pathHex` holds the exact bytes when they are not UTF-8). */
  path: string;
  pathHex?: string;
  type: TreeEntry['type'];
  mode: string;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: string;
  oid?: Oid;
  linkTarget?: string;
  rdev?: { major: number; minor: number };
  xattrs?: Record<string, string>;
  hardlink?: string;
  holes?: number;
}

/** The options of {@link ls}: `REV[:path]`, and whether to list below directories. */
export interface LsOptions {
  /** `REV[:path]`. */
  spec: string;
  recursive?: boolean;
}

function isUtf8(b: Buffer): boolean {
  return Buffer.from(b.toString('utf8'), 'utf8').equals(b);
}

/** Plain data for a tree entry at `path` (the shape {@link ls} returns). */
export function describeEntry(path: Buffer, e: TreeEntry): LsEntry {
  const out: LsEntry = {
    path: path.toString('utf8'), type: e.type, mode: e.mode.toString(8).padStart(4, '0'), uid: e.uid, gid: e.gid,
    size: e.size, mtimeNs: e.mtimeNs.toString(),
  };
  if (!isUtf8(path)) out.pathHex = path.toString('hex');
  if (e.oid) out.oid = e.oid;
  if (e.linkTarget) out.linkTarget = e.linkTarget.toString('utf8');
  if (e.rdev) out.rdev = e.rdev;
  if (e.xattrs.length) out.xattrs = Object.fromEntries(e.xattrs.map((x) => [x.name, Buffer.from(x.value).toString('base64')]));
  if (e.hardlink) out.hardlink = e.hardlink.toString('utf8');
  if (e.holes?.length) out.holes = e.holes.length;
  return out;
}

/**
 * Lists a directory of an image (or the single entry a path names), recursively with `recursive`.
 * Locking: none. Throws RevisionNotFoundError, PathNotFoundError.
 */
export function ls(repo: Repository, options: LsOptions): LsEntry[] {
  const r = resolveSpec(repo, options.spec);
  const out: LsEntry[] = [];
  const recursive = options.recursive === true;
  if (r.entry.type === 'dir' && r.entry.oid) walkTree(repo.objects, r.entry.oid, (p, e) => { out.push(describeEntry(p, e)); return recursive; }, { path: r.path });
  else out.push(describeEntry(r.path, r.entry));
  return out;
}

/**
 * Streams the content of the file `REV:path` (holes as zeros). Symlinks yield their target.
 * Throws UsageError for directories and special files.
 */
export async function* cat(repo: Repository, spec: string): AsyncIterable<Uint8Array> {
  yield* contentOf(repo, spec, resolveSpec(repo, spec));
}

async function* contentOf(repo: Repository, spec: string, r: ReturnType<typeof resolveSpec>): AsyncIterable<Uint8Array> {
  if (r.entry.type === 'symlink') {
    yield r.entry.linkTarget ?? Buffer.alloc(0);
    return;
  }
  if (r.entry.type !== 'file') throw new UsageError(`'${spec}' is a ${r.entry.type}, not a file`);
  if (r.entry.oid) await ensureContent(repo, [r.entry.oid]);
  let pos = 0;
  try {
    for await (const p of filePieces(repo.objects, { ...r.entry, holes: undefined }, showPath(r.path))) {
      if (p.offset > pos) yield Buffer.alloc(p.offset - pos);
      yield p.data;
      pos = p.offset + p.data.length;
    }
  } catch (e) {
    // The content is checked as it streams: what was already handed out cannot be taken back, so say it.
    if (pos > 0 && e instanceof RepositoryCorruptError && (e.data.reason === 'does not match its id' || e.data.reason === 'cannot be read')) {
      throw new RepositoryCorruptError(e.data.what as string, e.data.reason, `${e.message}; the ${pos} bytes already written are not the file's content`, e.data);
    }
    throw e;
  }
  if (pos < r.entry.size) yield Buffer.alloc(r.entry.size - pos);
}

/** The largest content `cat --json` puts into one JSON document (it is held in memory, and base64 adds a third). */
export const MAX_CAT_JSON_BYTES = 64 << 20;

/** An entry's metadata with its whole content ({@link catJson}). */
export interface CatResult extends LsEntry {
  /** How `content` is written: the text itself when it is valid UTF-8, else base64 of the bytes. */
  encoding: 'utf8' | 'base64';
  content: string;
}

/**
 * `cat --json`: the entry's metadata (as `ls --json`) plus its whole content. Throws UsageError for directories and
 * special files, and for content above `maxBytes` (stream it with `cat` instead).
 */
export async function catJson(repo: Repository, spec: string, maxBytes = MAX_CAT_JSON_BYTES): Promise<CatResult> {
  const r = resolveSpec(repo, spec);
  const size = r.entry.type === 'symlink' ? (r.entry.linkTarget?.length ?? 0) : r.entry.size;
  if (r.entry.type === 'file' && size > maxBytes) throw new UsageError(`'${spec}' is ${size} bytes, more than cat --json holds (${maxBytes}): use cat without --json`);
  const parts: Uint8Array[] = [];
  for await (const p of contentOf(repo, spec, r)) parts.push(p);
  const data = Buffer.concat(parts);
  const utf8 = isUtf8(data);
  return { ...describeEntry(r.path, r.entry), encoding: utf8 ? 'utf8' : 'base64', content: data.toString(utf8 ? 'utf8' : 'base64') };
}

/** The disk layout of `REV` when it is a disk commit (what `ls REV` prints above the root listing), else undefined. */
export function diskLayout(repo: Repository, rev: string): DiskInfo | undefined {
  const r = resolveRevision(repo, rev);
  return r.commit.rootKind === 'disk' ? describeDisk(r.commit.root, readDisk(repo.objects, r.commit.root)) : undefined;
}
