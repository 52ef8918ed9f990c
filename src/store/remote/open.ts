/**
 * Where a bucket repository's parts come from: the backend for a URL (`s3://…`, or `memory://NAME` for tests and
 * programs that embed viva), the host cache's directory, and the refresh that brings the host's index up to the
 * bucket (new segments ingested, metadata packs fetched, so that log, diff and find read only the cache).
 */
import os from 'node:os';
import path from 'node:path';
import { RepositoryCorruptError, UsageError } from '../../errors.js';
import type { LmdbStore } from '../lmdb-store.js';
import type { Backend } from './backend.js';
import { MemoryBackend } from './memory-backend.js';
import type { RemoteIndex } from './remote-index.js';
import type { SegmentStore } from './segment.js';
import { RemoteFetcher } from './fetch.js';
import { forEachLimit } from './concurrency.js';


const memoryBuckets = new Map<string, MemoryBackend>();

/**
 * The backend of a bucket URL. `s3://BUCKET/PREFIX[?endpoint=…&region=…]` (flags win over the query, see
 * parseS3Url) loads the S3 client on first use; `memory://NAME` is a bucket that lives as long as this process,
 * the same object for every open of the same name. Throws UsageError for anything else.
 */
export async function backendFor(url: string, flags: { endpoint?: string; region?: string } = {}): Promise<Backend> {
  if (url.startsWith('memory://')) {
    const name = url.slice('memory://'.length);
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new UsageError(`'${url}' is not a memory:// URL (memory://NAME)`);
    let b = memoryBuckets.get(name);
    if (!b) memoryBuckets.set(name, (b = new MemoryBackend(`memory://${name}`)));
    return b;
  }
  if (url.startsWith('s3://')) {
    const { S3Backend, parseS3Url } = await import('./s3-backend.js');
    return new S3Backend(parseS3Url(url, flags));
  }
  throw new UsageError(`'${url}' is not a bucket URL (s3://BUCKET/PREFIX)`);
}

/**
 * The host cache of the repository with id `id` when none is bound to a directory: `$VIVA_CACHE_DIR/<id>`, else
 * `$XDG_CACHE_HOME/viva/<id>`, else `~/.cache/viva/<id>`. The id (config.json's) keeps two repositories that share a
 * URL over time (a bucket emptied and made again) from sharing a cache.
 */
export function defaultCacheDir(id: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.VIVA_CACHE_DIR) return path.join(path.resolve(env.VIVA_CACHE_DIR), id);
  const base = env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(base, 'viva', id);
}

/** Index segments a refresh reads at once. */
const SEGMENT_CONCURRENCY = 8;

/** What a refresh of the host's index did. */
export interface IndexRefresh { segments: number; metaPacks: number }

/**
 * Brings the host's index up to the bucket: lists `index/`, ingests the segments not seen yet, then fetches the
 * metadata packs (trees, commits, disks) the cache lacks, so that reading manifests never blocks on the bucket.
 */
export async function refreshIndex(backend: Backend, segments: SegmentStore, index: RemoteIndex, cache: LmdbStore): Promise<IndexRefresh> {
  const fresh: string[] = [];
  for await (const s of segments.listSegments()) if (!index.ingested(s.sha)) fresh.push(s.sha);
  const metaKeys: Buffer[] = [];
  const metaPackIds = new Set<string>();
  await forEachLimit(fresh, SEGMENT_CONCURRENCY, async (sha) => {
    const seg = await segments.getSegment(sha);
    // Listed, then gone: gc merged it into another segment, which the next refresh lists.
    if (!seg) return;
    index.ingest(sha, seg);
    const meta = new Set(seg.packs.filter((p) => p.class === 'meta').map((p) => p.id));
    for (const e of seg.entries) {
      if (meta.has(e.pack) && !cache.index.doesExist(e.key)) {
        metaKeys.push(e.key);
        metaPackIds.add(e.pack);
      }
    }
  });
  if (metaKeys.length) {
    try {
      await new RemoteFetcher(cache, index, backend.url).prefetch(metaKeys, backend);
    } catch (e) {
      // Fetching metadata ahead is an optimisation: a damaged pack is reported when one of its objects is read (and
      // by fsck), not by every command that opens the repository.
      if (!(e instanceof RepositoryCorruptError)) throw e;
    }
  }
  return { segments: fresh.length, metaPacks: metaPackIds.size };
}
