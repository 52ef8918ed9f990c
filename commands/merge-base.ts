import { Args, Flags } from '../src/cli/flags.js';
import { type MergeBases, mergeBases } from '../src/ops/merge-base.js';
import { resolveRevision } from '../src/ops/resolve.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';

export default class MergeBase extends RepoCommand {
  static override summary = 'find the best common ancestor of two images, as a merge compares them with';
  static override description = `Prints the best common ancestor of A and B in the commit graph, as git merge-base does: a common ancestor that is not an ancestor of another common ancestor (--all prints every one, newest first). Where the histories never meet, the ancestry through derivations is searched: two clones of one base image (viva derive) meet at the base commit they were made from, which is not their parent. Exit 1 when A and B have no common ancestor either way, as git.

${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> merge-base web/01 web/02', '<%= config.bin %> merge-base team-a/img team-b/img --all --json'];
  static override args = {
    a: Args.string({ description: 'a revision', required: true }),
    b: Args.string({ description: 'another revision', required: true }),
  };
  static override flags = {
    all: Flags.boolean({ summary: 'print every best common ancestor, not only the newest' }),
  };

  async run(): Promise<MergeBases> {
    const { args, flags } = await this.parse(MergeBase);
    const r = await this.withRepo('read', flags.repo, (repo) => mergeBases(repo, resolveRevision(repo, args.a).oid, resolveRevision(repo, args.b).oid));
    for (const b of flags.all ? r.bases : r.bases.slice(0, 1)) this.log(b);
    if (r.bases.length === 0) process.exitCode = 1;
    return r;
  }
}
