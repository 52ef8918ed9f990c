import { Flags } from '../src/cli/flags.js';
import { compact, type CompactResult } from '../src/ops/compact.js';
import { gc, type GcResult } from '../src/ops/gc.js';
import { gcBucket, type BucketGcResult } from '../src/ops/gc-bucket.js';
import { UsageError } from '../src/errors.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand, formatBytes, plural, quietFlag } from '../src/cli/repo-command.js';

export default class Gc extends RepoCommand {
  static override summary = 'remove objects that no ref, HEAD or reflog entry of a ref reaches';
  static override description = `Runs as one exclusive LMDB transaction: it refuses (exit 11) while a commit is running, and commits started meanwhile wait for it, so it never removes what a concurrent commit writes. Leftovers of an interrupted commit (and of an interrupted compaction) are removed.

The space of removed objects becomes free pages inside .viva/data.mdb, reused by later commits: LMDB files never shrink by themselves. --compact then writes a compacted copy of the file and renames it over the old one, returning the free pages to the file system. It is crash-safe (a kill at any moment leaves the old or the new file, both complete) and needs the repository to itself: it refuses (exit 11) while a commit runs or any other process (a reader, a serve) has the repository open; readers that start during the copy read the old file, whose content is the same. It needs free disk space for the copy (up to the size of the data in use).

A repository in a bucket (s3://…) is collected with delayed deletion, and writers keep running meanwhile (docs/s3.md, "gc with several writers"). One gc runs at a time (a second one exits 11). A run deletes what an earlier run marked, once the mark is older than the grace period (gc.graceSeconds in config.json, 1 hour by default; VIVA_GC_GRACE=SECONDS overrides it) and every writer that was running when it was marked has ended. Then it marks what no ref, reflog entry or built disk reaches now. Space therefore comes back after two runs at least the grace period apart. With --wait, one run marks, waits for those writers and the grace period (polling every second), and deletes. Packs of interrupted uploads are deleted once older than the grace period. --compact compacts this host's cache; objects deleted from the bucket may stay in the cache, where they do no harm.

--json prints {removed, removedBytes, kept, dryRun}; for a bucket also bucket: {graceSeconds, marked, markedBytes, swept: {marks, objects, packs, bytes, repacked, repackedBytes}, orphans: {packs, bytes}, segmentsMerged, pendingMarks}.\n\n${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> gc',
    '<%= config.bin %> gc --dry-run',
    '<%= config.bin %> gc --compact',
    '<%= config.bin %> -C s3://images/fleet gc',
    'VIVA_GC_GRACE=0 <%= config.bin %> -C s3://images/fleet gc --wait',
  ];
  static override flags = {
    quiet: quietFlag,
    'dry-run': Flags.boolean({ char: 'n', summary: 'only report what would be removed (in a bucket: marked)' }),
    compact: Flags.boolean({ summary: 'then shrink .viva/data.mdb (in a bucket: the cache) to the pages in use (copy and rename)', exclusive: ['dry-run'] }),
    wait: Flags.boolean({ summary: 'in a bucket: wait for the writers and the grace period, then delete what this run marked' }),
  };

  async run(): Promise<(GcResult | BucketGcResult) & { compacted?: CompactResult }> {
    const { flags } = await this.parse(Gc);
    return this.withRepo('write', flags.repo, async (repo) => {
      const bucket = repo.bucketGc();
      let r: GcResult | BucketGcResult;
      if (bucket) {
        const grace = process.env.VIVA_GC_GRACE;
        if (grace !== undefined && !/^\d+$/.test(grace)) throw new UsageError(`VIVA_GC_GRACE must be a number of seconds, not '${grace}'`);
        const b = await gcBucket(repo, bucket, { dryRun: flags['dry-run'], wait: flags.wait, graceSeconds: grace === undefined ? undefined : Number(grace), onProgress: this.progress() });
        this.endProgress();
        this.renderBucket(b, flags.wait);
        r = b;
        if (b.dryRun) return b;
      } else {
        if (flags.wait) throw new UsageError(`--wait applies to a repository in a bucket only`);
        r = await gc(repo, { dryRun: flags['dry-run'], onProgress: this.progress() });
        this.endProgress();
        if (r.dryRun) {
          this.log(`would remove ${plural(r.removed, 'object')} (${formatBytes(r.removedBytes)} stored), kept ${r.kept}`);
          return r;
        }
        // The space is not returned to the file system: say where it went.
        const freed = r.removed === 0 ? '' : `: ${formatBytes(r.removedBytes)} stored now free for reuse inside the repository file`
          + (flags.compact ? '' : ` (it does not shrink; 'viva gc --compact' returns free space to the file system)`);
        this.log(`removed ${plural(r.removed, 'object')}, kept ${r.kept}${freed}`);
      }
      if (!flags.compact) return r;
      const c = await compact(repo);
      this.log(`compacted '${repo.dataFile}': ${formatBytes(c.before)} -> ${formatBytes(c.after)} (${formatBytes(c.reclaimed)} returned to the file system)`);
      return { ...r, compacted: c };
    });
  }

  private renderBucket(r: BucketGcResult, wait: boolean): void {
    const b = r.bucket;
    if (r.dryRun) {
      this.log(`would mark ${plural(b.marked, 'object')} (${formatBytes(b.markedBytes)} stored) for deletion, kept ${r.kept}`);
      return;
    }
    this.log(`removed ${plural(r.removed, 'object')} (${formatBytes(r.removedBytes)} deleted from the bucket), kept ${r.kept}`);
    if (b.swept.repacked) this.log(`repacked ${plural(b.swept.repacked, 'object')} still in use (${formatBytes(b.swept.repackedBytes)}) from ${plural(b.swept.packs, 'deleted pack')}`);
    if (b.orphans.packs) this.log(`deleted ${plural(b.orphans.packs, 'pack')} of interrupted writes (${formatBytes(b.orphans.bytes)})`);
    if (b.segmentsMerged) this.log(`merged ${plural(b.segmentsMerged, 'index segment')} into one`);
    if (b.marked && !wait) {
      this.log(`marked ${plural(b.marked, 'object')} (${formatBytes(b.markedBytes)} stored) for deletion: a gc at least ${b.graceSeconds} s from now, once the writers running now have ended, deletes them ('viva gc --wait' waits and deletes)`);
    }
  }
}
