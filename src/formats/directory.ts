/** Directory trees as images: a lossless reader (lstat, xattrs, hardlinks, devices, holes) and a writer that never follows a symlink. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { hexIfNotUtf8 } from '../model/quote.js';
import path from 'node:path';
import util from 'node:util';
import type { ExcludeTest } from './exclude.js';
import { type DataPiece, type FileContent, type ImageEntry, type ImageReader, type ImageWriter, type SourceDescription, type StoredDir, type WriterWarning, type Xattr, RACY_WINDOW_NS, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFMT, S_IFREG, typeOfMode } from './types.js';
import { EMPTY, throwIfAborted } from './depth-first.js';
import { forEachSubdir, native, scanRecords, splitNs } from '../native/index.js';
import {
  CheckoutError, DestinationNotEmptyError, SourceChangedError, SourceReadError, UnsafeInputError,
  UnsupportedInputError, VivaError,
} from '../errors.js';

/**
 * Largest piece a file's `read()` yields. Pieces are read into a reused buffer (see `FileContent.read`): a fresh
 * buffer per piece cost page faults and GC, about half the time of reading a tree from the page cache.
 */
export const DEFAULT_READ_SIZE = 1 << 20;

/**
 * Read buffers of one reader, reused across pieces and files. Each `read()` takes its own (so contents read
 * concurrently never share one) and gives it back when it ends.
 */
class BufferPool {
  private readonly free: Buffer[] = [];

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(DEFAULT_READ_SIZE);
  }

  give(b: Buffer): void {
    // More than two are only ever needed by callers that read several contents at once; don't hoard for them.
    if (this.free.length < 2) this.free.push(b);
  }
}

export interface OpenDirectoryOptions {
  signal?: AbortSignal;
  /** Absolute paths left out of the walk (commit leaves out the repository's own `.viva` when it lies inside the source). */
  exclude?: string[];
  /** Image paths left out (commit's --exclude): an excluded directory is not walked. */
  skip?: ExcludeTest;
  /**
   * Called for a file the process may not read or a directory it may not list (EACCES, EPERM), which is then left
   * out (a directory: kept, empty) instead of failing the walk. Without it, that is a SourceReadError.
   */
  onUnreadable?: (path: Buffer, reason: string) => void;
  /** Take unchanged directories' trees from a commit's tree cache instead of walking them (see {@link DirectoryTreeCache}). */
  treeCache?: DirectoryTreeCache;
}

/**
 * git's cache-tree for directory sources. Before the walk, every directory is scanned (names and lstat of its
 * entries, one native call each) and given a signature: sha256 of its entries' names and every lstat field but atime
 * (type, mode, owner, size, inode, device, link count, mtime and ctime: a changed file, xattr, mode, owner or link
 * count changes ctime; a replaced entry its inode). A directory whose signature is the one recorded with a tree, and
 * whose subdirectories are all such directories too, is yielded with that tree (`ImageEntry.stored`) and not walked.
 * The directories holding the names of a file with several links are taken all or walked all (so the group gets the
 * canonical name a full walk gives it). Never taken from the cache, nor recorded: a directory with an entry that
 * cannot be looked at or read; not recorded: one with an entry changed within RACY_SECONDS of `racyAfterNs` (git's
 * racy-clean rule: a change in the same clock tick would not show).
 */
export interface DirectoryTreeCache {
  /** The tree recorded for directory `key` with this signature, if any (and still stored). */
  lookup(key: string, signature: Buffer): StoredDir | undefined;
  /** The commit's start (ns since the epoch). */
  racyAfterNs: bigint;
}

/** A change this close to the commit's start (or later) makes a directory's record unsafe: the stat cache's window. */
const RACY_SECONDS = Number(RACY_WINDOW_NS / 1_000_000_000n);

/** Whether the mode bits let this process read a file (root reads everything; ACLs are not consulted). */
function mayRead(st: { mode: number | bigint; uid: number | bigint; gid: number | bigint }): boolean {
  const euid = process.geteuid?.() ?? 0;
  if (euid === 0) return true;
  const mode = Number(st.mode);
  if (Number(st.uid) === euid) return (mode & 0o400) !== 0;
  const groups = [process.getegid?.() ?? -1, ...(process.getgroups?.() ?? [])];
  if (groups.includes(Number(st.gid))) return (mode & 0o040) !== 0;
  return (mode & 0o004) !== 0;
}

function isDenied(e: unknown): boolean {
  const c = errCode(e);
  return c === 'EACCES' || c === 'EPERM';
}

export interface DirectoryWriterOptions {
  /** Throw CheckoutError instead of collecting a warning when an owner, a device or a privileged xattr cannot be set. */
  strict?: boolean;
}

const SLASH = Buffer.from('/');
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/** Error codes that mean "not allowed here" (non-root, no CAP_MKNOD, no xattr support) rather than a broken checkout. */
const PRIVILEGE_CODES = new Set(['EPERM', 'EACCES', 'ENOTSUP', 'EOPNOTSUPP']);
/** setxattr failures that mean "this file system cannot hold it here" (or not as this user), not a broken destination. */
const XATTR_FS_CODES = new Set([...PRIVILEGE_CODES, 'ENOSPC', 'E2BIG', 'ERANGE']);

function errCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return undefined;
}

const SYSTEM_ERRORS = util.getSystemErrorMap();

/** 'permission denied (EACCES)' for a system error, the message otherwise: the path is already in the error's own text. */
function reasonOf(e: unknown): string {
  const code = errCode(e);
  const errno = typeof e === 'object' && e !== null ? (e as { errno?: unknown }).errno : undefined;
  const known = typeof errno === 'number' ? SYSTEM_ERRORS.get(errno) : undefined;
  if (known) return `${known[1].toLowerCase()} (${known[0]})`;
  if (code !== undefined) return code;
  return e instanceof Error ? e.message : String(e);
}

/** Human form of a path for messages (non-UTF-8 bytes become U+FFFD; the data itself is never decoded). */
/** The absolute path with every symlink resolved; a path that cannot be resolved (missing) stays as given, resolved lexically. */
function realPath(p: string): string {
  try {
    return fs.realpathSync.native(p);
  } catch {
    return path.resolve(p);
  }
}

/** lchown errors that mean "not allowed here" (EINVAL: an id this user namespace does not map). */
const OWNER_CODES = new Set([...PRIVILEGE_CODES, 'EINVAL']);

/** A writer warning for `abs`, with the exact bytes when the path is not UTF-8. */
function warning(abs: Buffer, message: string): WriterWarning {
  const hex = hexIfNotUtf8(abs);
  return { path: show(abs), ...(hex ? { pathHex: hex } : {}), message };
}

function show(p: Buffer): string {
  return p.toString('utf8');
}

/** `base/rel` for an absolute base, or base itself for the root ('' rel). */
function join(base: Buffer, rel: Buffer): Buffer {
  return rel.length ? Buffer.concat([base, SLASH, rel]) : base;
}

/** The relative path of `name` inside the directory at relative path `dir`. */
function child(dir: Buffer, name: Buffer): Buffer {
  return dir.length ? Buffer.concat([dir, SLASH, name]) : name;
}

/** Splits a Linux dev_t (glibc's `gnu_dev_major`/`gnu_dev_minor` layout: 32-bit major and minor, interleaved). */
export function splitDev(dev: bigint): { major: number; minor: number } {
  const major = ((dev & 0x00000000000fff00n) >> 8n) | ((dev & 0xfffff00000000000n) >> 32n);
  const minor = (dev & 0x00000000000000ffn) | ((dev & 0x00000ffffff00000n) >> 12n);
  return { major: Number(major), minor: Number(minor) };
}

function readXattrs(abs: Buffer): Xattr[] {
  let names: Buffer[];
  try {
    names = native().llistxattr(abs);
  } catch (e) {
    if (errCode(e) === 'ENOTSUP') return [];
    throw new SourceReadError(show(abs), `cannot list xattrs: ${reasonOf(e)}`, { cause: e });
  }
  const out: Xattr[] = [];
  for (const name of names.map((n) => n.toString()).sort()) {
    try {
      out.push({ name, value: native().lgetxattr(abs, name) });
    } catch (e) {
      // Removed between list and get: the file simply no longer has it.
      if (errCode(e) === 'ENODATA') continue;
      throw new SourceReadError(show(abs), `cannot read xattr '${name}': ${reasonOf(e)}`, { cause: e });
    }
  }
  return out;
}

function sameContent(a: fs.BigIntStats, b: fs.BigIntStats): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

/**
 * A file's stat cache key (its real path) and signature (inode, size, times): what commit's stat cache records for
 * it, and what checkout records for the files it writes.
 */
export function statCacheIdentity(abs: Buffer, st: fs.BigIntStats): { key: string; signature: string } {
  return { key: `dir:${abs.toString('latin1')}`, signature: `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}` };
}

function fileContent(abs: Buffer, st: fs.BigIntStats, outer: AbortSignal | undefined, pool: BufferPool): FileContent {
  const size = Number(st.size);
  const where = show(abs);
  return {
    size,
    cache: statCacheIdentity(abs, st),
    async *read(signal?: AbortSignal): AsyncGenerator<DataPiece> {
      throwIfAborted(outer, signal);
      let fd: number;
      try {
        fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      } catch (e) {
        // ELOOP: the file was replaced by a symlink after lstat.
        if (errCode(e) === 'ELOOP') throw new SourceChangedError(where);
        throw new SourceReadError(where, reasonOf(e), { cause: e });
      }
      let buf: Buffer | undefined;
      try {
        // The size and cache signature handed out came from lstat: the inode read must be that very one.
        const before = fs.fstatSync(fd, { bigint: true });
        if (before.dev !== st.dev || before.ino !== st.ino || !sameContent(before, st)) throw new SourceChangedError(where);
        let extents: number[];
        try {
          extents = native().dataExtents(fd, size);
        } catch (e) {
          throw new SourceReadError(where, reasonOf(e), { cause: e });
        }
        for (let i = 0; i < extents.length; i += 2) {
          const end = extents[i] + extents[i + 1];
          for (let offset = extents[i]; offset < end;) {
            throwIfAborted(outer, signal);
            // One buffer for all pieces of this read: a piece is valid until the consumer asks for the next one.
            buf ??= pool.take();
            const length = Math.min(end - offset, DEFAULT_READ_SIZE);
            let filled = 0;
            while (filled < length) {
              let n: number;
              try {
                n = fs.readSync(fd, buf, filled, length - filled, offset + filled);
              } catch (e) {
                throw new SourceReadError(where, reasonOf(e), { cause: e });
              }
              if (n === 0) throw new SourceChangedError(where); // truncated under us
              filled += n;
            }
            yield { offset, data: length === buf.length ? buf : buf.subarray(0, length) };
            offset += length;
          }
        }
        const after = fs.fstatSync(fd, { bigint: true });
        if (!sameContent(after, st)) throw new SourceChangedError(where);
      } finally {
        fs.closeSync(fd);
        if (buf) pool.give(buf);
      }
    },
  };
}

/** A directory's verdict from the tree cache's pre-scan. */
interface DirScan {
  /** Its tree cache key (scope and real path). */
  key: string;
  signature: Buffer;
  /** Its tree may be recorded once built. */
  recordable: boolean;
  /** Its recorded tree, taken whole. */
  stored?: StoredDir;
}

/** Bytes of directory records {@link prescan} holds at most (about 270 000 entries); the rest are scanned as walked. */
const PRESCAN_MAX_BYTES = 32 * 1024 * 1024;
/** Directories given to one scanDirs call. */
const PRESCAN_BATCH = 512;

/**
 * Every directory of the tree at `base` that `descend` (given a directory's relative path) lets the walk into,
 * scanned (native scanDirs, PRESCAN_BATCH directories at a time, breadth first, on every processor), by relative path
 * (latin1): the records, or the errno that stopped the scan. Stops when the records reach PRESCAN_MAX_BYTES (scanDirs
 * starts no directory past it); the walk scans the rest itself.
 */
function prescan(base: Buffer, descend: (childRel: Buffer) => boolean): Map<string, Buffer | number> {
  const out = new Map<string, Buffer | number>();
  let held = 0;
  let queue: Buffer[] = [EMPTY];
  let at = 0;
  while (at < queue.length && held < PRESCAN_MAX_BYTES) {
    const batch = queue.slice(at, at + PRESCAN_BATCH);
    at += batch.length;
    const results = native().scanDirs(batch.map((rel) => join(base, rel)), PRESCAN_MAX_BYTES - held);
    for (let i = 0; i < batch.length; i++) {
      const rel = batch[i]!;
      const buf = results[i]!;
      if (buf === null) continue;
      out.set(rel.toString('latin1'), buf);
      if (typeof buf === 'number') continue;
      held += buf.length;
      forEachSubdir(buf, (name) => {
        const childRel = child(rel, name);
        if (descend(childRel)) queue.push(childRel);
      });
    }
    if (at >= PRESCAN_BATCH * 64) { queue = queue.slice(at); at = 0; }
  }
  return out;
}

/**
 * The tree cache's pre-scan of the tree at `base` (see {@link DirectoryTreeCache}): the verdict of every directory the
 * walk will reach, by relative path (latin1). A directory that cannot be scanned gets none (the walk reports it).
 */
function scanForTreeCache(base: Buffer, cache: DirectoryTreeCache, scope: string, excluded: Set<string>, options: OpenDirectoryOptions): Map<string, DirScan> {
  // Racy: changed after racyAfterNs - RACY_SECONDS, compared as (seconds, nanoseconds) to stay exact.
  const racySec = Number(cache.racyAfterNs / 1_000_000_000n) - RACY_SECONDS;
  const racyNsec = Number(cache.racyAfterNs % 1_000_000_000n);
  const racy = (sec: number, nsec: number) => sec > racySec || (sec === racySec && nsec > racyNsec);
  // Every directory in post-order (children before their parent), with what decides whether its tree is taken.
  const dirs: Array<DirScan & { rel: Buffer; parent: number; usable: boolean }> = [];
  /** Directories holding a name of each inode with several links (by device and inode). */
  const groups = new Map<string, number[]>();
  // Files this user may not read are left out by the walk (with a warning): their directories are walked.
  const checkReadable = options.onUnreadable !== undefined && (process.geteuid?.() ?? 0) !== 0;
  /** Whether the walk takes an entry (lstat `err` and `mode`, at `childRel`) at all: not excluded by path or pattern. */
  const taken = (childRel: Buffer, err: number, mode: number) => !(excluded.size && excluded.has(join(base, childRel).toString('latin1')))
    && (err !== 0 || !options.skip?.(childRel, (mode & S_IFMT) === S_IFDIR));
  const scanned = prescan(base, (childRel) => taken(childRel, 0, S_IFDIR));
  const filtering = excluded.size > 0 || options.skip !== undefined;
  const scan = (abs: Buffer, rel: Buffer): number => {
    const me: (typeof dirs)[number] = { key: `tree:${scope}:${abs.toString('latin1')}`, rel, parent: -1, signature: EMPTY, usable: true, recordable: true };
    const relKey = rel.toString('latin1');
    let buf = scanned.get(relKey);
    scanned.delete(relKey);
    if (buf === undefined) {
      try {
        buf = native().scanDir(abs);
      } catch {
        buf = -1;
      }
    }
    if (typeof buf === 'number') {
      me.usable = me.recordable = false;
      dirs.push(me);
      return dirs.length - 1;
    }
    const subdirs: Buffer[] = [];
    const links: string[] = [];
    // The signature hashes the records of the entries taken, in order: records lie end to end in `buf`, so it hashes
    // runs of them (usually one), not each record (16 677 calls for base).
    const runs: Buffer[] = [];
    let runStart = -1;
    const endRun = (at: number) => {
      if (runStart >= 0) runs.push(buf.subarray(runStart, at));
      runStart = -1;
    };
    let first = true;
    for (const r of scanRecords(buf)) {
      if (first) { first = false; continue; }
      const start = r.bytes.byteOffset - buf.byteOffset;
      const type = r.mode & S_IFMT;
      // Its path only when something asks for it: a pattern or an excluded path, or a directory to go into.
      const childRel = filtering || (r.err === 0 && type === S_IFDIR) ? child(rel, r.name) : EMPTY;
      if (filtering && !taken(childRel, r.err, r.mode)) { endRun(start); continue; }
      if (r.err !== 0) { me.usable = me.recordable = false; endRun(start); continue; }
      if (runStart < 0) runStart = start;
      if (checkReadable && type === S_IFREG && !mayRead(r)) me.usable = me.recordable = false;
      if (racy(r.mtimeSec, r.mtimeNsec) || racy(r.ctimeSec, r.ctimeNsec)) me.recordable = false;
      if (type === S_IFDIR) subdirs.push(childRel);
      else if (r.nlink > 1) links.push(r.bytes.toString('latin1', 24, 40)); // inode and device
    }
    endRun(buf.length);
    if (runs.length === 1) me.signature = crypto.hash('sha256', runs[0]!, 'buffer') as unknown as Buffer;
    else {
      const hash = crypto.createHash('sha256');
      for (const run of runs) hash.update(run);
      me.signature = hash.digest();
    }
    const kids = subdirs.map((r) => scan(join(base, r), r));
    dirs.push(me);
    const index = dirs.length - 1;
    for (const k of kids) {
      dirs[k]!.parent = index;
      if (!dirs[k]!.stored) me.usable = false;
    }
    for (const l of links) {
      const members = groups.get(l);
      if (members) members.push(index);
      else groups.set(l, [index]);
    }
    if (me.usable) {
      const stored = cache.lookup(me.key, me.signature);
      if (stored) me.stored = stored;
    }
    return index;
  };
  scan(base, EMPTY);
  // A hardlink group is taken whole or walked whole: were some of its names walked and others not, the walk could
  // not name the group as a walk of everything does (its canonical name is its smallest path).
  const drop = (i: number) => {
    for (let d = i; d >= 0 && dirs[d]!.stored; d = dirs[d]!.parent) delete dirs[d]!.stored;
  };
  for (let changed = true; changed;) {
    changed = false;
    for (const members of groups.values()) {
      if (members.every((i) => dirs[i]!.stored) || members.every((i) => !dirs[i]!.stored)) continue;
      for (const i of members) drop(i);
      changed = true;
    }
  }
  const verdicts = new Map<string, DirScan>();
  for (const d of dirs) verdicts.set(d.rel.toString('latin1'), { key: d.key, signature: d.signature, recordable: d.recordable, ...(d.stored ? { stored: d.stored } : {}) });
  return verdicts;
}

/**
 * Reads the directory tree at `root` as an image, losslessly: types, 12 mode bits, owners, ns mtimes, xattrs of every
 * namespace, symlink targets, device numbers, hardlinks and file holes. Symlinks are never followed (only `root`
 * itself may be one); mount points are crossed, as git and tar do. Paths are bytes, so non-UTF-8 names survive.
 *
 * Order: `''` (the root) first, then depth-first with each directory before its children, siblings sorted by name
 * bytes. A second name of an inode is yielded as a `hardlink` entry pointing at the first.
 *
 * File data: `content.read()` yields pieces of at most DEFAULT_READ_SIZE bytes, all read into one buffer that is
 * reused (for the next piece, and for other files once the read ends): a piece's `data` is valid only until the next
 * piece is asked for (see `FileContent.read`). Copy what must outlive that.
 *
 * Throws (from `entries()` and `content.read()`): SourceReadError when `root` is not a directory or a path cannot
 * be read or vanished; SourceChangedError when a file changed while it was read; AbortedError.
 *
 * @example
 * for await (const e of openDirectory('/srv/rootfs').entries()) console.log(e.path.toString(), e.type);
 */
export function openDirectory(root: string, options: OpenDirectoryOptions = {}): ImageReader {
  const description: SourceDescription = { format: 'dir', name: root };
  // The root is followed when it is a symlink (as tar, rsync and restic follow their arguments); symlinks inside the
  // tree stay symlinks. Exclusions are compared by real path for the same reason.
  const base = Buffer.from(realPath(root));
  const outer = options.signal;
  const excluded = new Set((options.exclude ?? []).map((p) => Buffer.from(realPath(p)).toString('latin1')));
  const pool = new BufferPool();
  // What decides a directory's tree besides its entries: what is left out, and what this user may read.
  const scope = crypto.hash('sha256', JSON.stringify([process.geteuid?.() ?? 0, options.onUnreadable ? 1 : 0, options.skip?.key ?? (options.skip ? String(Math.random()) : ''), [...excluded].sort()]), 'hex').slice(0, 16);

  const lstat = (abs: Buffer): fs.BigIntStats => {
    try {
      return fs.lstatSync(abs, { bigint: true });
    } catch (e) {
      const reason = errCode(e) === 'ENOENT' ? 'vanished while the tree was being read' : reasonOf(e);
      throw new SourceReadError(show(abs), reason, { cause: e });
    }
  };

  const list = (abs: Buffer, st: fs.BigIntStats, rel?: Buffer): Buffer[] => {
    let names: Buffer[];
    try {
      names = fs.readdirSync(abs, { encoding: 'buffer' });
    } catch (e) {
      // The root must be readable; below it, a directory that may not be listed is kept, empty, when asked.
      if (rel && options.onUnreadable && isDenied(e)) {
        options.onUnreadable(rel, `cannot list: ${reasonOf(e)}`);
        return [];
      }
      throw new SourceReadError(show(abs), reasonOf(e), { cause: e });
    }
    // readdir follows symlinks: make sure the directory was not swapped for one (or another directory) meanwhile.
    const now = lstat(abs);
    if (now.dev !== st.dev || now.ino !== st.ino) throw new SourceChangedError(show(abs));
    return names.sort(Buffer.compare);
  };

  return {
    description,
    async *entries(signal?: AbortSignal): AsyncGenerator<ImageEntry> {
      throwIfAborted(outer, signal);
      let rootStat: fs.BigIntStats;
      try {
        rootStat = fs.statSync(base, { bigint: true });
      } catch (e) {
        throw new SourceReadError(root, reasonOf(e), { cause: e });
      }
      if (!rootStat.isDirectory()) throw new SourceReadError(root, 'not a directory');

      const firstNames = new Map<string, Buffer>();
      let total = 0;
      const entryOf = (rel: Buffer, abs: Buffer, st: fs.BigIntStats): ImageEntry => {
        const modeBits = Number(st.mode);
        const type = typeOfMode(modeBits);
        if (type === undefined) throw new UnsupportedInputError(show(abs), `unknown file type ${(modeBits & S_IFMT).toString(8)}`);
        const entry: ImageEntry = {
          path: rel, type, mode: modeBits & 0o7777, uid: Number(st.uid), gid: Number(st.gid), mtimeNs: st.mtimeNs,
          xattrs: readXattrs(abs),
        };
        if (type !== 'dir' && st.nlink > 1n) {
          const key = `${st.dev}:${st.ino}`;
          const first = firstNames.get(key);
          if (first !== undefined) {
            // Every name counts, as in the commit's byte total (and a tree taken from the tree cache).
            total += Number(st.size);
            return { ...entry, type: 'hardlink', linkTarget: first };
          }
          firstNames.set(key, rel);
        }
        switch (type) {
          case 'file':
            entry.content = fileContent(abs, st, outer, pool);
            total += entry.content.size;
            break;
          case 'symlink':
            try {
              entry.linkTarget = fs.readlinkSync(abs, { encoding: 'buffer' });
            } catch (e) {
              throw new SourceReadError(show(abs), reasonOf(e), { cause: e });
            }
            break;
          case 'chr':
          case 'blk':
            entry.rdev = splitDev(st.rdev);
            break;
          default:
            break;
        }
        return entry;
      };

      const verdicts = options.treeCache ? scanForTreeCache(base, options.treeCache, scope, excluded, options) : undefined;
      /** A directory entry with its tree cache verdict: true when its stored tree stands for it (do not walk it). */
      const cached = (entry: ImageEntry): boolean => {
        const v = verdicts?.get(entry.path.toString('latin1'));
        if (v?.stored) {
          entry.stored = v.stored;
          total += v.stored.bytes;
          return true;
        }
        if (v?.recordable) entry.treeCache = { key: v.key, signature: v.signature };
        return false;
      };

      const rootEntry = entryOf(EMPTY, base, rootStat);
      if (cached(rootEntry)) {
        yield rootEntry;
        description.size = total;
        return;
      }
      yield rootEntry;
      const stack: Array<{ rel: Buffer; names: Buffer[]; next: number }> = [{ rel: EMPTY, names: list(base, rootStat), next: 0 }];
      while (stack.length > 0) {
        throwIfAborted(outer, signal);
        const top = stack[stack.length - 1];
        if (top.next >= top.names.length) {
          stack.pop();
          continue;
        }
        const rel = child(top.rel, top.names[top.next++]);
        const abs = join(base, rel);
        if (excluded.size && excluded.has(abs.toString('latin1'))) continue;
        let st: fs.BigIntStats;
        try {
          st = fs.lstatSync(abs, { bigint: true });
        } catch (e) {
          // A directory that may be listed but not searched (r without x): its entries cannot be looked at.
          if (options.onUnreadable && isDenied(e)) {
            options.onUnreadable(rel, reasonOf(e));
            continue;
          }
          st = lstat(abs);
        }
        if (options.skip?.(rel, st.isDirectory())) continue;
        if (options.onUnreadable && st.isFile() && !mayRead(st)) {
          options.onUnreadable(rel, 'permission denied');
          continue;
        }
        const entry = entryOf(rel, abs, st);
        const whole = entry.type === 'dir' && cached(entry);
        yield entry;
        if (entry.type === 'dir' && !whole) stack.push({ rel, names: list(abs, st, rel), next: 0 });
      }
      description.size = total;
    },
  };
}

/** Why `p` is not a safe relative image path, or undefined when it is. */
function unsafeReason(p: Buffer): string | undefined {
  if (p.includes(0)) return 'path contains a NUL byte';
  let start = 0;
  for (;;) {
    const end = p.indexOf(0x2f, start);
    const part = p.subarray(start, end < 0 ? p.length : end);
    if (part.length === 0) return 'path has an empty component';
    if (part.equals(DOT) || part.equals(DOTDOT)) return `path has a '${part.toString()}' component`;
    if (end < 0) return undefined;
    start = end + 1;
  }
}

function parentOf(p: Buffer): Buffer {
  const i = p.lastIndexOf(0x2f);
  return i < 0 ? EMPTY : p.subarray(0, i);
}

interface PendingDir {
  abs: Buffer;
  mode: number;
  mtimeNs: bigint;
  /** Applied last, so that the writer's own children do not inherit ACLs the source children did not have. */
  defaultAcl: Xattr[];
}

const DEFAULT_ACL = 'system.posix_acl_default';

/**
 * `mkdir -p`, one level at a time: fs.mkdirSync's recursive mode loops forever where mkdir fails with ENOENT below
 * an existing directory (/proc/x), so this throws the first failure instead.
 */
function makeDirectories(dir: string, mode: number): void {
  const missing: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      fs.statSync(d);
      break;
    } catch (e) {
      if ((errCode(e) !== 'ENOENT' && errCode(e) !== 'ENOTDIR') || path.dirname(d) === d) throw e;
      missing.push(d);
    }
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d, { mode });
    } catch (e) {
      if (errCode(e) !== 'EEXIST' || !fs.statSync(d).isDirectory()) throw e;
    }
  }
}

/**
 * Writes entries into the directory `dest`, which must be missing (it is created) or empty. Every parent of an entry
 * must be a directory this writer created, so a symlink in the image is never followed; files are created with
 * O_EXCL|O_NOFOLLOW. Holes stay holes. Metadata order: owner → xattrs → mode → times (chown clears setuid and file
 * capabilities); directory modes and times are set in `finish()`, deepest first.
 *
 * Owners, devices and trusted./security. xattrs that the process may not set (non-root, no CAP_MKNOD, no xattr
 * support) become warnings returned by `finish()`, or CheckoutError when `strict`.
 *
 * Throws: DestinationNotEmptyError (at once) when `dest` exists and is not an empty directory; from `add()`,
 * UnsafeInputError for a bad path, a parent that is not a created directory or a bad hardlink target, and
 * CheckoutError for any other failure.
 *
 * @example
 * const w = createDirectoryWriter('/tmp/out');
 * for await (const e of openDirectory('/srv/rootfs').entries()) await w.add(e);
 * const { warnings } = await w.finish();
 */
export function createDirectoryWriter(dest: string, options: DirectoryWriterOptions = {}): ImageWriter {
  const destAbs = path.resolve(dest);
  const base = Buffer.from(destAbs);
  let createdDest = false;
  try {
    const st = fs.lstatSync(base);
    if (!st.isDirectory() || fs.readdirSync(base).length > 0) throw new DestinationNotEmptyError(dest);
  } catch (e) {
    if (e instanceof VivaError) throw e;
    if (errCode(e) !== 'ENOENT') throw new CheckoutError(dest, reasonOf(e), { cause: e });
    try {
      makeDirectories(destAbs, 0o700);
    } catch (e2) {
      throw new CheckoutError(dest, reasonOf(e2), { cause: e2 });
    }
    createdDest = true;
  }

  const strict = options.strict === true;
  const warnings: WriterWarning[] = [];
  /** Relative paths (latin1 keys) of what this writer created: true for directories. */
  const created = new Map<string, boolean>([['', true]]);
  /** Non-directories that could not be created (warnings), so that their hardlinks are skipped too. */
  const skipped = new Set<string>();
  const dirs: PendingDir[] = [];
  let rootSeen = false;

  const key = (p: Buffer) => p.toString('latin1');
  const fail = (abs: Buffer, e: unknown): VivaError =>
    e instanceof VivaError ? e : new CheckoutError(show(abs), reasonOf(e), { cause: e });

  /**
   * Owners that could not be set, one summary warning per error code: a checkout by a user who is not root fails
   * on every entry of a root-owned image, and one line per entry says nothing more than the first (tar, too, ends
   * with one summary). The warning stays at the place of the first failure, naming that entry; `count` grows.
   */
  const ownerSummaries = new Map<string, { warning: WriterWarning; first: string }>();
  const summarize = (abs: Buffer, message: string, code: string) => {
    const s = ownerSummaries.get(code);
    if (!s) {
      const w = warning(abs, message);
      ownerSummaries.set(code, { warning: w, first: message });
      warnings.push(w);
      return;
    }
    const count = (s.warning.count ?? 1) + 1;
    s.warning.count = count;
    s.warning.message = `${s.first}, nor the owner${count === 2 ? '' : 's'} of ${count - 1} more entr${count === 2 ? 'y' : 'ies'}`;
  };

  /**
   * Runs a privileged step; a permission failure becomes a warning (with `summary`: counted into one per error code),
   * or CheckoutError if strict. Returns success.
   */
  const privileged = (abs: Buffer, what: string, op: () => void, codes = PRIVILEGE_CODES, summary = false): boolean => {
    try {
      op();
      return true;
    } catch (e) {
      const code = errCode(e);
      if (code === undefined || !codes.has(code)) throw fail(abs, e);
      const message = `cannot ${what} (${code})`;
      if (strict) throw new CheckoutError(show(abs), message, { cause: e });
      if (summary) summarize(abs, message, code);
      else warnings.push(warning(abs, message));
      return false;
    }
  };

  const run = <T>(abs: Buffer, op: () => T): T => {
    try {
      return op();
    } catch (e) {
      throw fail(abs, e);
    }
  };

  const setOwner = (abs: Buffer, entry: ImageEntry) => {
    privileged(abs, `set owner ${entry.uid}:${entry.gid}`, () => fs.lchownSync(abs, entry.uid, entry.gid),
      OWNER_CODES, true);
  };

  const setXattrs = (abs: Buffer, xattrs: Xattr[]) => {
    for (const x of xattrs) {
      const value = Buffer.from(x.value.buffer, x.value.byteOffset, x.value.byteLength);
      // Besides privileges, the destination file system may refuse what the image's could hold: values too large
      // for it (ENOSPC, E2BIG), user.* on a symlink (EPERM), unknown namespaces (EOPNOTSUPP) — warnings, as owners are.
      privileged(abs, `set xattr '${x.name}'`, () => native().lsetxattr(abs, x.name, value), XATTR_FS_CODES);
    }
  };

  const setTimes = (abs: Buffer, mtimeNs: bigint) => {
    const [sec, nsec] = splitNs(mtimeNs);
    run(abs, () => native().utimens(abs, sec, nsec, sec, nsec));
  };

  const writeFile = async (abs: Buffer, entry: ImageEntry) => {
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
    const fd = run(abs, () => fs.openSync(abs, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600));
    try {
      const content = entry.content;
      const size = content?.size ?? 0;
      if (content) {
        let end = 0;
        for await (const piece of content.read()) {
          const { offset, data } = piece;
          if (offset < end || offset + data.byteLength > size) {
            throw new CheckoutError(show(abs), `data piece at offset ${offset} is out of order or beyond size ${size}`);
          }
          // Holes are never written: only the pieces, at their offsets; ftruncate below sets the length.
          for (let done = 0; done < data.byteLength;) {
            done += run(abs, () => fs.writeSync(fd, data, done, data.byteLength - done, offset + done));
          }
          end = offset + data.byteLength;
        }
      }
      run(abs, () => fs.ftruncateSync(fd, size));
    } finally {
      fs.closeSync(fd);
    }
  };

  const addHardlink = (abs: Buffer, entry: ImageEntry) => {
    const target = entry.linkTarget;
    if (!target) throw new UnsafeInputError(destAbs, show(entry.path), 'hardlink without a target');
    const reason = target.length === 0 ? 'hardlink target is empty' : unsafeReason(target);
    if (reason) throw new UnsafeInputError(destAbs, show(entry.path), `hardlink target '${show(target)}': ${reason}`);
    if (skipped.has(key(target))) {
      const message = `cannot link to '${show(target)}', which was not created`;
      if (strict) throw new CheckoutError(show(abs), message);
      warnings.push(warning(abs, message));
      skipped.add(key(entry.path));
      return false;
    }
    if (created.get(key(target)) !== false) {
      throw new UnsafeInputError(destAbs, show(entry.path), `hardlink target '${show(target)}' is not a non-directory written earlier`);
    }
    run(abs, () => fs.linkSync(join(base, target), abs));
    return true;
  };

  return {
    async add(entry: ImageEntry): Promise<void> {
      const rel = entry.path;
      const mode = entry.mode & 0o7777;
      if (rel.length === 0) {
        if (entry.type !== 'dir') throw new UnsafeInputError(destAbs, "''", 'the root entry is not a directory');
        if (rootSeen) throw new UnsafeInputError(destAbs, "''", 'duplicate entry');
        rootSeen = true;
        setOwner(base, entry);
        setXattrs(base, entry.xattrs.filter((x) => x.name !== DEFAULT_ACL));
        dirs.push({ abs: base, mode, mtimeNs: entry.mtimeNs, defaultAcl: entry.xattrs.filter((x) => x.name === DEFAULT_ACL) });
        return;
      }
      const reason = unsafeReason(rel);
      if (reason) throw new UnsafeInputError(destAbs, show(rel), reason);
      if (created.has(key(rel)) || skipped.has(key(rel))) throw new UnsafeInputError(destAbs, show(rel), 'duplicate entry');
      if (created.get(key(parentOf(rel))) !== true) throw new UnsafeInputError(destAbs, show(rel), 'parent is not a directory');
      const abs = join(base, rel);

      switch (entry.type) {
        case 'dir':
          // 0o700 until finish(): children still have to be written, and nobody else should enter meanwhile.
          run(abs, () => fs.mkdirSync(abs, { mode: 0o700 }));
          created.set(key(rel), true);
          setOwner(abs, entry);
          setXattrs(abs, entry.xattrs.filter((x) => x.name !== DEFAULT_ACL));
          dirs.push({ abs, mode, mtimeNs: entry.mtimeNs, defaultAcl: entry.xattrs.filter((x) => x.name === DEFAULT_ACL) });
          return;
        case 'hardlink':
          if (addHardlink(abs, entry)) created.set(key(rel), false);
          return; // the inode already carries its metadata
        case 'file':
          await writeFile(abs, entry);
          break;
        case 'symlink':
          if (!entry.linkTarget || entry.linkTarget.length === 0) throw new CheckoutError(show(abs), 'symlink without a target');
          run(abs, () => fs.symlinkSync(entry.linkTarget as Buffer, abs));
          break;
        case 'chr':
        case 'blk': {
          const { major, minor } = entry.rdev ?? { major: 0, minor: 0 };
          const type = entry.type === 'chr' ? S_IFCHR : S_IFBLK;
          const what = `create ${entry.type === 'chr' ? 'character' : 'block'} device ${major}:${minor}`;
          // Created 0o600 (chmod follows) so that no world-writable device node exists even for a moment.
          if (!privileged(abs, what, () => native().mknod(abs, type | 0o600, major, minor))) {
            skipped.add(key(rel));
            return;
          }
          break;
        }
        case 'fifo':
          run(abs, () => native().mknod(abs, S_IFIFO | 0o600, 0, 0));
          break;
        case 'socket':
          run(abs, () => native().mksocket(abs));
          break;
        default:
          throw new CheckoutError(show(abs), `unknown entry type '${String(entry.type)}'`);
      }
      created.set(key(rel), false);
      setOwner(abs, entry);
      setXattrs(abs, entry.xattrs);
      if (entry.type !== 'symlink') run(abs, () => fs.chmodSync(abs, mode));
      setTimes(abs, entry.mtimeNs);
    },

    async finish(): Promise<{ warnings: WriterWarning[] }> {
      // Entries came parents-first, so the reverse is children-first: a read-only parent never blocks a child,
      // and a child's metadata changes cannot disturb a parent's mtime afterwards.
      for (let i = dirs.length - 1; i >= 0; i--) {
        const d = dirs[i];
        setXattrs(d.abs, d.defaultAcl);
        run(d.abs, () => fs.chmodSync(d.abs, d.mode));
        setTimes(d.abs, d.mtimeNs);
      }
      dirs.length = 0;
      return { warnings: [...warnings] };
    },

    async abort(): Promise<void> {
      if (createdDest) fs.rmSync(base, { recursive: true, force: true });
      // A destination that existed was empty: empty it again (its own mode may have been set, like a finished one).
      else for (const name of fs.readdirSync(base, { encoding: 'buffer' })) fs.rmSync(Buffer.concat([base, Buffer.from('/'), name]), { recursive: true, force: true });
    },
  };
}

/**
 * One host file as an image entry (path '', with its mode, owner, ns mtime, xattrs and content), for adding a single
 * file to an image. A symlink given here is followed, as commit follows its SOURCE. Throws SourceReadError when the
 * path cannot be read or is not a regular file.
 *
 * @example
 * const e = readHostFile('motd'); // e.content.read() streams its bytes
 */
export function readHostFile(file: string): ImageEntry {
  let abs: Buffer;
  let st: fs.BigIntStats;
  try {
    abs = Buffer.from(fs.realpathSync.native(file));
    st = fs.statSync(abs, { bigint: true });
  } catch (e) {
    throw new SourceReadError(file, reasonOf(e), { cause: e });
  }
  if (!st.isFile()) throw new SourceReadError(file, 'not a regular file');
  return {
    path: EMPTY, type: 'file', mode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid), mtimeNs: st.mtimeNs,
    xattrs: readXattrs(abs), content: fileContent(abs, st, undefined, new BufferPool()),
  };
}
