/**
 * `viva status DIR`: what changed in a directory since `viva checkout` wrote it. A checkout to a directory records
 * what it came from (meta `checkout:<real path>`); status compares that image with the directory as it is now, read
 * as commit reads it (diff-source.ts), and keeps the stat cache up to date so that the next status (or a commit of
 * the directory) reads only what changed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { NotACheckoutError, WriteError } from '../errors.js';
import type { Oid } from '../model/oid.js';
import type { TreeEntry } from '../model/tree.js';
import type { Repository } from '../store/repository.js';
import type { StatCacheRecord } from '../store/stat-cache.js';
import { statCacheIdentity } from '../formats/directory.js';
import { walkTree } from '../tree/walk.js';
import { RACY_WINDOW_NS } from './ingest.js';
import { resolveSpec } from './resolve.js';
import { type DiffEntry, diff } from './diff.js';
import type { ProgressEvent } from './ingest.js';
import { readHostSide } from './diff-source.js';

/** What a checkout to a directory recorded. */
export interface CheckoutRecord {
  /** The commit checked out and the revision as given. */
  commit: Oid;
  rev: string;
  /** The image path written as the directory's root (`checkout REV:path`; '' for the whole image). */
  path: string;
  /** `--path` selections, if any (only those were written). */
  paths: string[];
  /** When (seconds), and the directory's identity then (a directory made anew at the same place is another). */
  time: number;
  dev: number;
  ino: number;
  /** Its birth time (ms; 0 where the file system has none): an inode number is soon reused for a new directory. */
  birth: number;
}

/**
 * Records that `dir` was just checked out from `commit` (`rev` as given, `subPath` for `REV:path`, `paths` for
 * --path), and the files it wrote in the stat cache. `files` are those files as checkout's `onFile` reported them;
 * without them the checked-out tree is walked to find them. Locking: one small write transaction.
 */
export function recordCheckout(repo: Repository, dir: string, r: {
  commit: Oid; rev: string; subPath?: string; paths?: string[]; files?: Iterable<{ path: Buffer; entry: TreeEntry }>;
}): void {
  const st = fs.statSync(dir);
  const rec: CheckoutRecord = { commit: r.commit, rev: r.rev, path: r.subPath ?? '', paths: r.paths ?? [], time: Math.floor(Date.now() / 1000), dev: st.dev, ino: st.ino, birth: st.birthtimeMs };
  const root = fs.realpathSync(dir);
  const cache = checkoutCacheEntries(root, r.files ?? checkedOutFiles(repo, rec));
  repo.meta.put(`checkout:${root}`, JSON.stringify(rec));
  if (cache.length) repo.statCache.write(cache);
}

/** The files of the tree `rec` checked out, with their paths below its root. */
function checkedOutFiles(repo: Repository, rec: CheckoutRecord): Array<{ path: Buffer; entry: TreeEntry }> {
  const { entry } = resolveSpec(repo, `${rec.commit}:${rec.path}`);
  if (entry.type !== 'dir' || !entry.oid) return [];
  const out: Array<{ path: Buffer; entry: TreeEntry }> = [];
  walkTree(repo.objects, entry.oid, (p, e) => {
    if (e.type === 'file') out.push({ path: p, entry: e });
  });
  return out;
}

/**
 * Stat cache entries for the `files` a checkout to `root` (a real path) just wrote, so that status and commit of
 * the directory need not read them: each file whose size and mtime are still the image's. Only files whose image
 * mtime is older than the racy window: writing a file sets its mtime to the present, so a later change of content
 * cannot keep the recorded signature — unless the recorded mtime is itself the present (then it is left to be read).
 */
function checkoutCacheEntries(root: string, files: Iterable<{ path: Buffer; entry: TreeEntry }>): Array<{ key: string; signature: string } & StatCacheRecord> {
  const old = BigInt(Date.now()) * 1_000_000n - RACY_WINDOW_NS;
  const out: Array<{ key: string; signature: string } & StatCacheRecord> = [];
  for (const { path: p, entry: e } of files) {
    if (e.type !== 'file' || !e.oid || e.mtimeNs >= old) continue;
    const abs = Buffer.concat([Buffer.from(root), Buffer.from('/'), p]);
    let st: fs.BigIntStats;
    try {
      st = fs.lstatSync(abs, { bigint: true });
    } catch {
      continue; // not written (--path), or gone already
    }
    if (!st.isFile() || Number(st.size) !== e.size || st.mtimeNs !== e.mtimeNs) continue;
    out.push({ ...statCacheIdentity(abs, st), oid: e.oid, size: e.size, holes: e.holes ?? [] });
  }
  return out;
}

/** The checkout record of `dir` or of the nearest directory above it that has one, with the path of `dir` below it. */
export function findCheckout(repo: Repository, dir: string): { root: string; below: string; record: CheckoutRecord } | undefined {
  let at = fs.realpathSync(dir);
  const start = at;
  for (;;) {
    const raw = repo.meta.get(`checkout:${at}`) as string | undefined;
    if (raw) {
      const record = JSON.parse(raw) as CheckoutRecord;
      const st = fs.statSync(at);
      // Replaced by another directory since: not this checkout.
      if (st.dev === record.dev && st.ino === record.ino && (record.birth ?? 0) === st.birthtimeMs) return { root: at, below: path.relative(at, start), record };
    }
    const up = path.dirname(at);
    if (up === at) return undefined;
    at = up;
  }
}

/** The options of {@link status}. */
export interface StatusOptions {
  /** The checked-out directory (or a directory inside it). */
  dir: string;
  /** Report files whose only change is their mtime (ignored by default). */
  mtime?: boolean;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

/** How a checked-out directory differs from the image it was checked out from ({@link status}). */
export interface StatusResult {
  /** The checked-out directory, the image it came from and where in it. */
  dir: string;
  commit: Oid;
  rev: string;
  path: string;
  checkedOut: number;
  /** Changes since the checkout (mtime-only changes left out unless asked for), as `viva diff` reports them. */
  entries: DiffEntry[];
  /** Files read (their content hashed) and files known unchanged from the stat cache without reading. */
  read: number;
  cached: number;
}

/**
 * Compares directory `dir` (or the checkout it lies in) with the image it was checked out from. Throws
 * NotACheckoutError when no checkout of this repository wrote it (or it was replaced since), and what commit throws
 * for an unreadable directory. Locking: reads; then one write of the stat cache (skipped when the repository is
 * opened read-only).
 *
 * @example
 * const s = await status(repo, { dir: '/srv/web' }); // s.entries: [{ status: 'M', path: 'etc/hostname', … }]
 */
export async function status(repo: Repository, options: StatusOptions): Promise<StatusResult> {
  const found = findCheckout(repo, options.dir);
  if (!found) throw new NotACheckoutError(options.dir);
  const { root, below, record } = found;
  const host = await readHostSide(repo, root, { ...(options.signal ? { signal: options.signal } : {}), ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
  const spec = `${record.commit}:${record.path}`;
  // Inside the checkout: only what lies below the directory asked about; a --path checkout: only what it wrote.
  const limits = below ? [below.split(path.sep).join('/')] : record.paths;
  const d = diff(repo, { a: spec, b: root, hosts: { b: host }, ignoreMtime: !options.mtime, paths: limits });
  if (repo.mode === 'write' && host.cacheUpdates.length) {
    // Housekeeping: the status is computed; a cache the disk refuses to grow only means reading these files again.
    try {
      repo.statCache.write(host.cacheUpdates);
    } catch (e) {
      if (!(e instanceof WriteError)) throw e;
      repo.warnings.push(`cannot update the stat cache (the next status reads these files again): ${e.message}`);
    }
  }
  return {
    dir: root, commit: record.commit, rev: record.rev, path: record.path, checkedOut: record.time,
    entries: d.entries, read: host.files - host.cachedFiles, cached: host.cachedFiles,
  };
}
