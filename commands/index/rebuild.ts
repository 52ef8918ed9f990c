import { Flags } from '../../src/cli/flags.js';
import { rebuildIndex, type IndexRebuildResult } from '../../src/ops/index-rebuild.js';
import { EXIT_STATUS_HELP } from '../../src/cli/exit-codes.js';
import { RepoCommand, plural } from '../../src/cli/repo-command.js';

export default class IndexRebuild extends RepoCommand {
  static override summary = 'rebuild the content index from the objects';
  static override description = `The content index (where every file content and subtree occurs, and which commit each root belongs to) is kept up to date by every commit, in the same transaction as the objects, and checked by 'viva fsck'. Rebuild it for a repository made before it existed, or after fsck reports it damaged. Takes the repository for writing; queries keep working on the old snapshot meanwhile.\n\nFor a repository in a bucket, this host's index of the bucket (a cache) is rebuilt first, from the bucket's index segments; with --from-packs from the packs themselves (two range requests per pack), writing one new segment, for when segments were lost.

${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> index rebuild', "<%= config.bin %> -C 's3://images/fleet?endpoint=http%3A%2F%2F127.0.0.1%3A7480' index rebuild --from-packs"];
  static override flags = {
    'from-packs': Flags.boolean({ summary: 'a repository in a bucket whose index segments are lost or damaged: read every pack\'s header and write a new segment' }),
  };

  async run(): Promise<IndexRebuildResult> {
    const { flags } = await this.parse(IndexRebuild);
    const r = await this.withRepo('write', flags.repo, (repo) => rebuildIndex(repo, { fromPacks: flags['from-packs'], onProgress: this.progress() }));
    this.endProgress();
    if (r.bucket) this.log(`bucket index rebuilt: ${plural(r.bucket.segments, 'segment')}${flags['from-packs'] ? ` (a new one from ${plural(r.bucket.packs, 'pack')})` : ''}`);
    this.log(`content index rebuilt: ${plural(r.entries, 'entry', 'entries')}, ${plural(r.packageDatabases, 'package database')}`);
    return r;
  }
}
