import { Flags } from '@oclif/core';
import { compact, type CompactResult } from '../src/ops/compact.js';
import { gc, type GcResult } from '../src/ops/gc.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand, formatBytes, plural, quietFlag } from '../src/cli/repo-command.js';

export default class Gc extends RepoCommand {
  static override summary = 'remove objects that no ref, HEAD or reflog entry of a ref reaches';
  static override description = `Runs as one exclusive LMDB transaction: it refuses (exit 11) while a commit is running, and commits started meanwhile wait for it, so it never removes what a concurrent commit writes. Leftovers of an interrupted commit (and of an interrupted compaction) are removed.

The space of removed objects becomes free pages inside .viva/data.mdb, reused by later commits: LMDB files never shrink by themselves. --compact then writes a compacted copy of the file and renames it over the old one, returning the free pages to the file system. It is crash-safe (a kill at any moment leaves the old or the new file, both complete) and needs the repository to itself: it refuses (exit 11) while a commit runs or any other process (a reader, a serve) has the repository open; readers that start during the copy read the old file, whose content is the same. It needs free disk space for the copy (up to the size of the data in use).\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> gc', '<%= config.bin %> gc --dry-run', '<%= config.bin %> gc --compact'];
  static override flags = {
    quiet: quietFlag,
    'dry-run': Flags.boolean({ char: 'n', summary: 'only report what would be removed' }),
    compact: Flags.boolean({ summary: 'then shrink .viva/data.mdb to the pages in use (copy and rename)', exclusive: ['dry-run'] }),
  };

  async run(): Promise<GcResult & { compacted?: CompactResult }> {
    const { flags } = await this.parse(Gc);
    return this.withRepo('write', flags.repo, async (repo) => {
      const r = await gc(repo, { dryRun: flags['dry-run'], onProgress: this.progress() });
      this.endProgress();
      if (r.dryRun) {
        this.log(`would remove ${plural(r.removed, 'object')} (${formatBytes(r.removedBytes)} stored), kept ${r.kept}`);
        return r;
      }
      // The space is not returned to the file system: say where it went.
      const freed = r.removed === 0 ? '' : `: ${formatBytes(r.removedBytes)} stored now free for reuse inside the repository file`
        + (flags.compact ? '' : ` (it does not shrink; 'viva gc --compact' returns free space to the file system)`);
      this.log(`removed ${plural(r.removed, 'object')}, kept ${r.kept}${freed}`);
      if (!flags.compact) return r;
      const c = await compact(repo);
      this.log(`compacted '${repo.dataFile}': ${formatBytes(c.before)} -> ${formatBytes(c.after)} (${formatBytes(c.reclaimed)} returned to the file system)`);
      return { ...r, compacted: c };
    });
  }
}
