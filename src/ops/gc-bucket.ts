/**
 * gc of a repository in a bucket: kopia's delayed deletion (docs/s3.md, "gc with several writers"). The bucket
 * mechanics (lease, marks, sweep, orphan packs, segments) are in src/store/remote/remote-gc.ts; this op walks what
 * the refs reach and runs the steps in the protocol's order, under the gc lease.
 */
import { RepositoryCorruptError } from '../errors.js';
import { KIND_BY_CODE, objectKey } from '../store/object-store.js';
import type { Repository } from '../store/repository.js';
import { GcLease, type BucketGc, type Mark, type SweepResult } from '../store/remote/remote-gc.js';
import type { ProgressEvent } from './ingest.js';
import { rootCommits, walkReachable } from './reachable.js';

/** The options of {@link gcBucket}. */
export interface BucketGcOptions {
  dryRun?: boolean;
  /** Mark, wait until this run's mark may be swept (its writers ended, its grace passed), then sweep it. */
  wait?: boolean;
  /** How long marked copies stay before a sweep (default: the repository's `gc.graceSeconds`). */
  graceSeconds?: number;
  /** How often `wait` looks again, in ms (default 1000). */
  pollMs?: number;
  /** Merge the segments when there are more than this many (default 64). */
  segmentLimit?: number;
  /** Phases `marking`, `waiting for N sessions`, `deleting packs`. */
  onProgress?: (e: ProgressEvent) => void;
}

/**
 * What {@link gcBucket} did in the bucket. `removed`/`removedBytes`/`kept` read as for a local repository: objects
 * deleted, bytes the bucket holds less, reachable objects.
 */
export interface BucketGcResult {
  removed: number;
  /** Stored bytes deleted from the bucket (packs swept and orphan packs, less what was uploaded again). */
  removedBytes: number;
  kept: number;
  dryRun: boolean;
  bucket: {
    graceSeconds: number;
    /** Copies this run tombstoned (deleted by a later sweep, at least `graceSeconds` later); with `dryRun`, would. */
    marked: number;
    markedBytes: number;
    /** What the sweeps of this run did. */
    swept: SweepResult;
    /** Packs of interrupted writes deleted. */
    orphans: { packs: number; bytes: number };
    /** Index segments merged into one. */
    segmentsMerged: number;
    /** Marks left for a later run (too young, or writers still running). */
    pendingMarks: number;
  };
}

const NO_SWEEP: SweepResult = { marks: 0, objects: 0, packs: 0, bytes: 0, repacked: 0, repackedBytes: 0 };

/**
 * Runs gc on a bucket repository: takes the lease (RepositoryLockedError, exit 11, while another gc holds one),
 * sweeps the marks whose grace has passed and whose writers have ended, marks what no ref, reflog or tree-disk
 * record reaches now, deletes orphan packs, merges segments above the limit, and releases the lease. Writers never
 * wait: one that relied on a marked copy is waited for, one that starts later uploads its own copy.
 * Throws RepositoryCorruptError when a reachable object has no copy in the bucket (gc then deletes nothing more).
 */
export async function gcBucket(repo: Repository, gcs: BucketGc, options: BucketGcOptions = {}): Promise<BucketGcResult> {
  const progress = options.onProgress;
  const graceSeconds = options.graceSeconds ?? repo.config.gc.graceSeconds;
  const graceMs = graceSeconds * 1000;
  if (options.dryRun) {
    await repo.refresh();
    const reach = reachable(repo, gcs);
    let marked = 0;
    let markedBytes = 0;
    for (const c of gcs.index.copiesInLivePacks()) if (!c.tombstoned && !reach.has(c.key)) { marked++; markedBytes += c.length; }
    return {
      removed: marked, removedBytes: markedBytes, kept: reach.size, dryRun: true,
      bucket: { graceSeconds, marked, markedBytes, swept: { ...NO_SWEEP }, orphans: { packs: 0, bytes: 0 }, segmentsMerged: 0, pendingMarks: (await gcs.listMarks()).length },
    };
  }
  const lease = await GcLease.acquire(gcs.backend);
  try {
    progress?.({ phase: 'marking', files: 0, bytes: 0 });
    let now = await lease.serverNow();
    // Which marks may go is settled before the walk: their writers have ended, so the refs they moved are read.
    const { ready } = await gcs.sweepable(await gcs.listMarks(), now, graceMs);
    await repo.refresh();
    let reach = reachable(repo, gcs);
    progress?.({ phase: 'deleting packs', files: 0, bytes: 0 });
    lease.assertHeld();
    const swept = await gcs.sweep(ready, reach.has);
    progress?.({ phase: 'marking', files: 0, bytes: 0 });
    const marked = await gcs.mark(reach.has, now);
    if (options.wait && marked.mark) {
      const mark: Mark = marked.mark;
      for (;;) {
        now = await lease.serverNow();
        const s = await gcs.sweepable([mark], now, graceMs);
        if (s.ready.length) break;
        progress?.({ phase: `waiting for ${s.waiting.size} session${s.waiting.size === 1 ? '' : 's'}`, files: 0, bytes: 0 });
        await new Promise((r) => setTimeout(r, options.pollMs ?? 1000));
      }
      await repo.refresh();
      reach = reachable(repo, gcs);
      progress?.({ phase: 'deleting packs', files: 0, bytes: 0 });
      lease.assertHeld();
      addSweep(swept, await gcs.sweep([mark], reach.has));
    }
    lease.assertHeld();
    const orphans = await gcs.deleteOrphans(now, graceMs);
    const pending = await gcs.listMarks();
    const segmentsMerged = await gcs.compactSegments(pending, options.segmentLimit);
    return {
      removed: swept.objects,
      removedBytes: Math.max(0, swept.bytes + orphans.bytes - swept.repackedBytes),
      kept: reach.size,
      dryRun: false,
      bucket: { graceSeconds, marked: marked.objects, markedBytes: marked.bytes, swept, orphans, segmentsMerged, pendingMarks: pending.length },
    };
  } finally {
    await lease.release();
  }
}

/**
 * The objects every bucket ref, its reflog (archived entries too), HEAD and the tree-disk records reach, as a set
 * of object keys. A copy an earlier run marked still counts as there. Throws RepositoryCorruptError when one is missing.
 */
function reachable(repo: Repository, gcs: BucketGc): { has: (key: Buffer) => boolean; size: number } {
  const { reachable: set, problems } = walkReachable(repo, rootCommits(repo), { exists: (kind, oid) => gcs.hasCopy(objectKey(kind, oid)) });
  if (problems.length) throw new RepositoryCorruptError(`${problems[0]!.kind} ${problems[0]!.oid}`, `${problems[0]!.problem}; run 'viva fsck' (gc deleted nothing more)`);
  return { has: (key) => set.has(`${KIND_BY_CODE[key[0]!]}:${key.toString('hex', 1)}`), size: set.size };
}

function addSweep(into: SweepResult, more: SweepResult): void {
  for (const k of Object.keys(into) as Array<keyof SweepResult>) into[k] += more[k];
}
