/** The commit op: image → chunks and blobs → trees → commit object → compare-and-swap of the branch. */
import os from 'node:os';
import { AbortedError, CorruptInputError, UsageError } from '../errors.js';
import { openImage } from '../formats/index.js';
import type { ImageReader } from '../formats/types.js';
import { encodeCommit, hashCommit, parseAuthor, type Commit } from '../model/commit.js';
import type { Oid } from '../model/oid.js';
import { HEAD, branchRef } from '../model/ref.js';
import type { Hole } from '../model/tree.js';
import { readRef, resolveRef, setSymbolicRef, updateRefs } from '../store/refs.js';
import type { Repository } from '../store/repository.js';
import { TreeBuilder, showPath } from './build-tree.js';
import { ContentError, storeContent } from './store-content.js';
import { BackgroundWriter } from '../store/background-writer.js';
import { readStatCache, writeStatCache } from '../store/stat-cache.js';
import type { ObjectWriter } from '../store/object-store.js';

/** A cached file must be older than this when recorded, so a same-tick rewrite cannot hide behind an equal mtime (git's "racy clean"). */
export const RACY_WINDOW_NS = 2_000_000_000n;

export interface ProgressEvent {
  phase: string;
  files: number;
  bytes: number;
  path?: string;
}

export interface CommitOptions {
  /** Path of a directory or tar file (ignored when `reader` is given). */
  source?: string;
  reader?: ImageReader;
  /** Branch name (`debian/12/base`) or full ref; default: the branch HEAD points at. */
  branch?: string;
  message: string;
  labels?: Array<[string, string]>;
  /** "Name <email>"; default VIVA_AUTHOR or the user@host. */
  author?: string;
  /** Seconds since the epoch; default VIVA_DATE or now. */
  time?: number;
  /** Use the stat cache for directory sources (default true). */
  statCache?: boolean;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

export interface CommitResult {
  commit: Oid;
  tree: Oid;
  branch: string;
  parent: Oid | null;
  files: number;
  dirs: number;
  /** Logical bytes of all files. */
  bytes: number;
  /** Bytes of new stored objects (after dedup and compression). */
  storedBytes: number;
  /** Files whose content came from the stat cache without being read. */
  cachedFiles: number;
  source: { format: string; size?: number; name?: string };
}

export function defaultAuthor(): string {
  if (process.env.VIVA_AUTHOR) return process.env.VIVA_AUTHOR;
  const user = os.userInfo().username || 'viva';
  return `${user} <${user}@${os.hostname()}>`;
}

export function parseLabel(s: string): [string, string] {
  const i = s.indexOf('=');
  if (i <= 0) throw new UsageError(`label '${s}' is not of the form key=value`);
  return [s.slice(0, i), s.slice(i + 1)];
}


/**
 * Records the image at `source` as a new commit on `branch` (created if missing; otherwise the new commit's parent
 * is its head), and points HEAD at that branch.
 *
 * Locking: registers a writer session for its whole run (gc refuses to sweep meanwhile); the ref moves in one
 * compare-and-swap transaction after every object is durable, so a crash leaves the branch old or new, never torn.
 * Throws: CorruptInputError/UnsafeInputError/SourceReadError/SourceChangedError for bad sources (the repository
 * is unchanged: objects written so far are unreferenced and gc removes them), RefConflictError if the branch moved.
 *
 * @example
 * const r = await commit(repo, { source: 'rootfs/', branch: 'debian/12/base', message: 'base image' });
 */
export async function commit(repo: Repository, options: CommitOptions): Promise<CommitResult> {
  const author = options.author ?? defaultAuthor();
  if (!parseAuthor(author)) throw new UsageError(`author '${author}' is not of the form 'Name <email>'`);
  const store = repo.store;
  const ref = options.branch ? branchRef(options.branch) : repo.headBranch();
  const parent = resolveRef(store, ref) ?? null;
  // The repository's own data never becomes part of an image (as git ignores .git).
  const reader = options.reader ?? openImage(options.source ?? '.', { exclude: [repo.dataDir] });
  const sourceName = reader.description.name ?? options.source ?? '';
  const labels = options.labels ?? [];
  const seen = new Set<string>();
  for (const [k] of labels) {
    if (seen.has(k)) throw new UsageError(`label '${k}' given twice`);
    seen.add(k);
  }

  repo.beginSession('commit');
  const background = BackgroundWriter.available() ? new BackgroundWriter(store) : undefined;
  const writer: ObjectWriter = background ?? store;
  const before = { ...store.written };
  const builder = new TreeBuilder(sourceName);
  const useCache = options.statCache ?? true;
  const startNs = BigInt(Date.now()) * 1_000_000n;
  const cacheUpdates: Parameters<typeof writeStatCache>[1] = [];
  let files = 0;
  let bytes = 0;
  let storedBytes = 0;
  let cachedFiles = 0;
  try {
    for await (const entry of reader.entries(options.signal)) {
      if (options.signal?.aborted) throw new AbortedError();
      if (entry.type !== 'file' || !entry.content) {
        builder.add(entry);
        continue;
      }
      const c = entry.content;
      let stored: { oid: Oid; size: number; holes: Hole[] } | undefined;
      if (useCache && c.cache) {
        const rec = readStatCache(store, c.cache.key, c.cache.signature);
        if (rec && store.hasObject('blob', rec.oid)) {
          stored = rec;
          cachedFiles++;
        }
      }
      if (!stored) {
        try {
          stored = await storeContent(writer, c, options.signal);
        } catch (e) {
          if (e instanceof ContentError) throw new CorruptInputError(sourceName, `'${showPath(entry.path)}'`, e.message);
          throw e;
        }
        if (useCache && c.cache && !racy(c.cache.signature, startNs)) {
          cacheUpdates.push({ key: c.cache.key, signature: c.cache.signature, oid: stored.oid, size: stored.size, holes: stored.holes });
        }
      }
      builder.add(entry, stored);
      files++;
      bytes += stored.size;
      options.onProgress?.({ phase: 'commit', files, bytes, path: showPath(entry.path) });
    }
    const written = builder.write(writer);
    const root = builder.rootMeta();
    const c: Commit = {
      rootKind: 'tree',
      root: written.oid,
      parents: parent ? [parent] : [],
      author,
      time: options.time ?? (process.env.VIVA_DATE ? Number(process.env.VIVA_DATE) : Math.floor(Date.now() / 1000)),
      tzOffset: -new Date().getTimezoneOffset(),
      message: options.message,
      labels,
      source: reader.description,
      rootMeta: { mode: root.mode, uid: root.uid, gid: root.gid, mtimeNs: root.mtimeNs, xattrs: root.xattrs },
    };
    const enc = encodeCommit(c);
    const oid = hashCommit(enc);
    writer.writeObject('commit', oid, enc);
    // Objects first (durable), then the ref in its own transaction.
    await writer.flush();
    storedBytes = background ? background.written.bytes : store.written.bytes - before.bytes;
    updateRefs(store, [{ ref, newOid: oid, expectedOld: parent, message: `commit${parent ? '' : ' (initial)'}: ${firstLine(options.message)}` }], author);
    if (readRef(store, HEAD)?.symref !== ref) setSymbolicRef(store, HEAD, ref);
    if (cacheUpdates.length) writeStatCache(store, cacheUpdates);
    return {
      commit: oid, tree: written.oid, branch: ref, parent, files: written.files, dirs: written.dirs, bytes: written.bytes,
      storedBytes, cachedFiles, source: reader.description,
    };
  } catch (e) {
    // Queued objects are dropped; objects of earlier batches stay unreferenced until gc.
    store.discardPending();
    throw e;
  } finally {
    await background?.close();
    repo.endSession();
  }
}

function racy(signature: string, startNs: bigint): boolean {
  const parts = signature.split(':');
  const mtime = BigInt(parts[3] ?? '0');
  const ctime = BigInt(parts[4] ?? '0');
  return mtime + RACY_WINDOW_NS > startNs || ctime + RACY_WINDOW_NS > startNs;
}

export function firstLine(s: string): string {
  return s.split('\n', 1)[0] ?? '';
}

