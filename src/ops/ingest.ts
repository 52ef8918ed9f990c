/** The entry loop commit runs for every reader (a directory, a tar, each file system of a disk): content → blobs → mtree. */
import { AbortedError, CorruptInputError } from '../errors.js';
import { type FileContent, type ImageEntry, type ImageReader, type StoredDir, RACY_WINDOW_NS } from '../formats/types.js';
import type { Oid } from '../model/oid.js';
import type { Hole } from '../model/tree.js';
import type { ObjectReader, ObjectWriter } from '../store/object-store.js';
import type { StatCache } from '../store/stat-cache.js';
import { type MNode, MutableTree, showPath, type StoredContent } from '../tree/mutable-tree.js';
import { openImage } from '../formats/index.js';
import type { Repository } from '../store/repository.js';
import { ContentError, storeContent } from '../store/store-content.js';

export { RACY_WINDOW_NS };

/** What a long op reports as it goes; `files` counts files, or objects for the ops that move objects (sync, gc, fsck). */
export interface ProgressEvent {
  phase: string;
  files: number;
  bytes: number;
  path?: string;
  /** The bytes `bytes` will reach, when known (a tar's size, a checkout's content, a disk): progress shows a percentage. */
  totalBytes?: number;
  /** The count `files` will reach, when known and no byte total is (the objects of a transfer, of fsck). */
  totalFiles?: number;
}

/** State one commit shares across the readers it ingests. */
export interface IngestContext {
  store: ObjectReader;
  /** The stat cache read when `useCache` (unchanged files' blob ids). */
  statCache: StatCache;
  writer: ObjectWriter;
  useCache: boolean;
  /** When the commit started (ns since the epoch), for the racy-clean test. */
  startNs: bigint;
  cacheUpdates: Parameters<StatCache['write']>[0];
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  /** What `bytes` will about reach (an uncompressed tar's size), for a percentage; undefined when unknown. */
  totalBytes?: number;
  files: number;
  bytes: number;
  cachedFiles: number;
  /** Directories the reader gave a tree cache key (see `ImageEntry.treeCache`), to record once their trees are written. */
  treeRecords?: Array<{ path: Buffer; key: string; signature: Buffer }>;
  /** Directories taken whole from the tree cache, counting everything below them. */
  cachedDirs?: number;
  /** Totals of the trees taken whole from the tree cache, by tree id. */
  storedTrees?: Map<Oid, StoredDir>;
}

export interface IngestHooks {
  /** Replaces a file's content before it is read (the disk committer watches where the bytes come from). */
  wrap?(entry: ImageEntry, content: FileContent): FileContent;
  /**
   * Content already stored, found without reading the file (the disk committer's reuse of a base commit's blob):
   * when it answers, `wrap` is not called and nothing is read.
   */
  known?(entry: ImageEntry, content: FileContent): Promise<StoredContent | undefined>;
  /** After a file entry went into the builder. */
  added?(entry: ImageEntry): void;
}

/** Reads every entry of `reader` into `builder`, storing file content through `ctx.writer`. */
export async function ingestEntries(ctx: IngestContext, reader: ImageReader, builder: MutableTree, sourceName: string, hooks: IngestHooks = {}): Promise<void> {
  for await (const entry of reader.entries(ctx.signal)) {
    if (ctx.signal?.aborted) throw new AbortedError();
    if (entry.type === 'dir' && entry.stored) {
      // The tree cache's: this directory and all below it look as when this tree was built.
      builder.addStored(entry, entry.stored.oid);
      (ctx.storedTrees ??= new Map()).set(entry.stored.oid, entry.stored);
      ctx.files += entry.stored.files;
      ctx.cachedFiles += entry.stored.files;
      ctx.cachedDirs = (ctx.cachedDirs ?? 0) + entry.stored.dirs;
      ctx.bytes += entry.stored.bytes;
      continue;
    }
    if (entry.type === 'dir' && entry.treeCache) (ctx.treeRecords ??= []).push({ path: entry.path, ...entry.treeCache });
    if (entry.type !== 'file' || !entry.content) {
      builder.add(entry);
      continue;
    }
    const c = entry.content;
    let stored: { oid: Oid; size: number; holes: Hole[] } | undefined;
    if (ctx.useCache && c.cache) {
      const rec = ctx.statCache.read(c.cache.key, c.cache.signature);
      if (rec && ctx.store.hasObject('blob', rec.oid)) {
        stored = rec;
        ctx.cachedFiles++;
      }
    }
    if (!stored && hooks.known) {
      stored = await hooks.known(entry, c);
      if (stored) ctx.cachedFiles++;
    }
    if (!stored) {
      try {
        stored = await storeContent(ctx.writer, hooks.wrap ? hooks.wrap(entry, c) : c, ctx.signal);
      } catch (e) {
        if (e instanceof ContentError) throw new CorruptInputError(sourceName, `'${showPath(entry.path)}'`, e.message);
        throw e;
      }
      if (ctx.useCache && c.cache && !racy(c.cache.signature, ctx.startNs)) {
        ctx.cacheUpdates.push({ key: c.cache.key, signature: c.cache.signature, oid: stored.oid, size: stored.size, holes: stored.holes });
      }
    }
    builder.add(entry, stored);
    hooks.added?.(entry);
    ctx.files++;
    ctx.bytes += stored.size;
    ctx.onProgress?.({ phase: 'commit', files: ctx.files, bytes: ctx.bytes, path: showPath(entry.path), ...(ctx.totalBytes ? { totalBytes: ctx.totalBytes } : {}) });
  }
}

/** Totals of a tree: files (hardlinks count as files), directories (itself included) and file bytes. */
export interface TreeTotals {
  files: number;
  dirs: number;
  bytes: number;
}

/**
 * After `builder.write()`: the totals of the whole tree (counting the trees taken from the tree cache by their
 * records), and the tree cache records of the directories the reader asked for (`ctx.treeRecords`).
 */
export function treeTotals(ctx: IngestContext, builder: MutableTree): { totals: TreeTotals; records: Parameters<StatCache['writeTrees']>[0] } {
  const wanted = new Map((ctx.treeRecords ?? []).map((r) => [r.path.toString('latin1'), r]));
  const records: Parameters<StatCache['writeTrees']>[0] = [];
  const visit = (node: MNode, path: string): TreeTotals => {
    // A tree taken whole (or one equal to it: the same tree has the same totals).
    const s = node.oid ? ctx.storedTrees?.get(node.oid) : undefined;
    let t: TreeTotals;
    if (s) {
      t = { files: s.files, dirs: s.dirs, bytes: s.bytes };
    } else {
      if (!node.children) throw new Error(`tree totals: directory '${path}' was neither built nor taken from the tree cache`);
      t = { files: 0, dirs: 1, bytes: 0 };
      for (const [name, c] of node.children) {
        if (c.type === 'dir') {
          const sub = visit(c, path ? `${path}/${name}` : name);
          t.files += sub.files; t.dirs += sub.dirs; t.bytes += sub.bytes;
        } else if (c.type === 'file') {
          t.files++;
          t.bytes += c.size;
        }
      }
    }
    const r = wanted.get(path);
    if (r && node.oid) records.push({ key: r.key, signature: r.signature, oid: node.oid, ...t });
    return t;
  };
  return { totals: visit(builder.root, ''), records };
}

function racy(signature: string, startNs: bigint): boolean {
  const parts = signature.split(':');
  const mtime = BigInt(parts[3] ?? '0');
  const ctime = BigInt(parts[4] ?? '0');
  return mtime + RACY_WINDOW_NS > startNs || ctime + RACY_WINDOW_NS > startNs;
}

/**
 * A directory or tar on the host read into a tree as commit reads it (the repository's own `.viva` left out), its
 * content stored through `writer`; `useCache` takes unchanged files' ids from the stat cache. Returns the built tree
 * (for its root metadata), its written id and the ingest's counts and cache updates.
 */
export async function ingestHostTree(repo: Repository, source: string, writer: ObjectWriter,
  options: { useCache?: boolean; signal?: AbortSignal; onProgress?: (e: ProgressEvent) => void } = {}): Promise<{ tree: MutableTree; oid: Oid; ctx: IngestContext }> {
  const reader = openImage(source, { exclude: [repo.dataDir] });
  const tree = new MutableTree(undefined, { sourceName: source });
  const ctx: IngestContext = {
    store: repo.objects, statCache: repo.statCache, writer, useCache: options.useCache ?? false, startNs: options.useCache ? BigInt(Date.now()) * 1_000_000n : 0n, cacheUpdates: [],
    files: 0, bytes: 0, cachedFiles: 0, ...(options.signal ? { signal: options.signal } : {}), ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  };
  await ingestEntries(ctx, reader, tree, source);
  return { tree, oid: tree.write(writer).oid, ctx };
}
