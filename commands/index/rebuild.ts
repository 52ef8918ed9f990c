import { rebuildIndex, type IndexRebuildResult } from '../../src/ops/index-rebuild.js';
import { EXIT_STATUS_HELP } from '../../src/cli/exit-codes.js';
import { RepoCommand, plural } from '../../src/cli/repo-command.js';

export default class IndexRebuild extends RepoCommand {
  static override summary = 'rebuild the content index from the objects';
  static override description = `The content index (where every file content and subtree occurs, and which commit each root belongs to) is kept up to date by every commit, in the same transaction as the objects, and checked by 'viva fsck'. Rebuild it for a repository made before it existed, or after fsck reports it damaged. Takes the repository for writing; queries keep working on the old snapshot meanwhile.

${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> index rebuild'];

  async run(): Promise<IndexRebuildResult> {
    const { flags } = await this.parse(IndexRebuild);
    const r = await this.withRepo('write', flags.repo, (repo) => rebuildIndex(repo));
    this.log(`content index rebuilt: ${plural(r.entries, 'entry', 'entries')}, ${plural(r.packageDatabases, 'package database')}`);
    return r;
  }
}
