import { Flags } from '@oclif/core';
import { gc, type GcResult } from '../src/index.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand, formatBytes, plural } from '../src/cli/repo-command.js';

export default class Gc extends RepoCommand {
  static override summary = 'remove objects that no ref, HEAD or reflog entry reaches';
  static override description = `Runs as one exclusive LMDB transaction: it refuses (exit 11) while a commit is running, and commits started meanwhile wait for it, so it never removes what a concurrent commit writes. Leftovers of an interrupted commit are removed. Space is reused by later commits (LMDB files do not shrink).\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> gc', '<%= config.bin %> gc --dry-run'];
  static override flags = { 'dry-run': Flags.boolean({ char: 'n', summary: 'only report what would be removed' }) };

  async run(): Promise<GcResult> {
    const { flags } = await this.parse(Gc);
    const r = await this.withRepo('write', flags.repo, (repo) => gc(repo, { dryRun: flags['dry-run'] }));
    this.log(`${r.dryRun ? 'would remove' : 'removed'} ${plural(r.removed, 'object')} (${formatBytes(r.removedBytes)}), kept ${r.kept}`);
    return r;
  }
}
