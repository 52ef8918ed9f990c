/** The entry loop commit runs for every reader (a directory, a tar, each file system of a disk): content → blobs → mtree. */
import { AbortedError, CorruptInputError } from '../errors.js';
import type { FileContent, ImageEntry, ImageReader } from '../formats/types.js';
import type { Oid } from '../model/oid.js';
import type { Hole } from '../model/tree.js';
import type { ObjectReader, ObjectWriter } from '../store/object-store.js';
import type { StatCache } from '../store/stat-cache.js';
import { MutableTree, showPath, type StoredContent } from '../tree/mutable-tree.js';
import { openImage } from '../formats/index.js';
import type { Repository } from '../store/repository.js';
import { ContentError, storeContent } from '../store/store-content.js';

/** A cached file must be older than this when recorded, so a same-tick rewrite cannot hide behind an equal mtime (git's "racy clean"). */
export const RACY_WINDOW_NS = 2_000_000_000n;

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
