/** The gc op: remove every object that no ref, HEAD or reflog entry reaches. */
import { RepositoryCorruptError } from '../errors.js';
import { gcBucket } from './gc-bucket.js';
import type { ObjectKind } from '../store/object-store.js';
import type { Repository } from '../store/repository.js';
import type { ProgressEvent } from './ingest.js';
import { rootCommits, walkReachable } from './reachable.js';
import { HEAD } from '../model/ref.js';
import { clearRootfsCache } from './sandbox-layer.js';
import { listTreeDisks } from './tree-disk.js';

/** The options of {@link gc}. */
export interface GcOptions {
  dryRun?: boolean;
  /** Phases `marking reachable objects`, `removing objects` and `compacting packs`, with totals where known. */
  onProgress?: (e: ProgressEvent) => void;
}

/** What {@link gc} removed (or would remove, with `dryRun`) and kept. */
export interface GcResult {
  removed: number;
  /** Stored bytes of the removed objects: their pages become free for reuse inside the file, which does not shrink. */
  removedBytes: number;
  kept: number;
  dryRun: boolean;
}

/**
 * Marks from every root, then deletes what is unmarked — all in one LMDB write transaction.
 * Locking: exclusive. It refuses with RepositoryLockedError while another live writer session (a commit) exists,
 * and commits that start meanwhile wait for its transaction, so gc never deletes what a concurrent commit
 * writes or has found by dedup. Sessions of dead processes (kill -9) are cleared.
 * Throws RepositoryCorruptError when a reachable object is missing (run fsck): deleting then could lose more.
 * A repository in a bucket is collected by `gcBucket` (gc-bucket.ts: delayed deletion, no lock on writers) instead.
 */
export async function gc(repo: Repository, options: GcOptions = {}): Promise<GcResult> {
  // The cache of a bucket repository is not the repository: the bucket's gc runs (one run, the configured grace).
  const bucket = repo.bucketGc();
  if (bucket) return gcBucket(repo, bucket, { dryRun: options.dryRun, onProgress: options.onProgress });
  const progress = options.onProgress;
  let dropping: Promise<number> | undefined;
  const removing: Array<Promise<void>> = [];
  // Listed before the exclusive transaction (the list is async): pack ids are never reused, and packs made meanwhile
  // by a finished commit are all live, so compacting them is a no-op.
  const packs: string[] = [];
  if (!options.dryRun && repo.objects.compactPack) for await (const p of repo.packs.list()) packs.push(p.id);
  const result = repo.withExclusive(() => {
    progress?.({ phase: 'marking reachable objects', files: 0, bytes: 0 });
    const { reachable, problems } = walkReachable(repo, rootCommits(repo));
    if (problems.length) throw new RepositoryCorruptError(`${problems[0]!.kind} ${problems[0]!.oid}`, `${problems[0]!.problem}; run 'viva fsck' (gc did nothing)`);
    const doomed: Array<{ kind: ObjectKind; oid: string; size: number }> = [];
    let kept = 0;
    for (const o of repo.index.listAll()) {
      if (reachable.has(`${o.kind}:${o.oid}`)) kept++;
      else doomed.push({ kind: o.kind, oid: o.oid, size: o.storedSize });
    }
    let removedBytes = 0;
    for (const d of doomed) removedBytes += d.size;
    if (!options.dryRun) {
      progress?.({ phase: 'removing objects', files: 0, bytes: 0, totalFiles: doomed.length });
      // The stat cache is a file of its own: its records of the doomed objects go first, so that an interrupted gc
      // leaves none of a removed object behind. (A lookup checks that the object exists anyway.)
      repo.statCache.prune((oid, kind) => reachable.has(`${kind}:${oid}`));
      repo.objects.remove(doomed);
      // HEAD's reflog does not keep commits (see listReflogOids): its entries for removed ones go.
      // (LMDB's RefStore writes before its promise returns, so this is part of the exclusive transaction; its
      // failure is awaited below, and marked handled here in case the transaction fails first.)
      dropping = repo.refs.dropReflogEntries(HEAD, (oid) => reachable.has(`commit:${oid}`));
      dropping.catch(() => undefined);
      // Packs no index entry points into (an interrupted repair) go too.
      packs.forEach((id, i) => {
        progress?.({ phase: 'compacting packs', files: i, bytes: 0, totalFiles: packs.length });
        repo.objects.compactPack?.(id);
      });
    }
    if (!options.dryRun) {
      // Records of disks built for directory commits that are gone now (their tree was not reachable).
      // (LMDB's shared meta writes before its promise returns: part of the exclusive transaction, as above.)
      for (const t of listTreeDisks(repo)) {
        if (!reachable.has(`disk:${t.disk}`)) { const p = repo.meta.shared.remove(t.key); removing.push(p); p.catch(() => undefined); }
      }
      // A compaction killed midway left its copy; none is running (it holds the write lock this runs under).
      repo.removeLeftovers();
      // The install sandbox's cached checkouts: made again when needed (no install runs: it holds a session).
      clearRootfsCache(repo);
    }
    return { removed: doomed.length, removedBytes, kept, dryRun: options.dryRun ?? false };
  });
  await dropping;
  await Promise.all(removing);
  return result;
}
