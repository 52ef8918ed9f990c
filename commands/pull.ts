import { Args, Flags } from '../src/cli/flags.js';
import { pull, type PullResult } from '../src/ops/sync.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand, quietFlag } from '../src/cli/repo-command.js';
import { renderMerge } from '../src/cli/render.js';

export default class Pull extends RepoCommand {
  static override summary = "fetch a branch from a remote and bring the local one up to it (fast-forward, else merge)";
  static override description = `Without BRANCH, the branch HEAD points at. Without REMOTE, the branch's upstream (set by branch -u, push -u or a tracking checkout) says where from — its remote and branch, or a local branch —, else origin and the branch's own name. When the local branch is behind, it fast-forwards; when both moved, the remote's branch is merged into it as viva merge does (a merge commit; on conflicts nothing moves, they are listed and the exit status is 1: merge by hand with viva merge BRANCH REMOTE/BRANCH --checkout DIR). --ff-only refuses a diverged branch instead (exit 12).\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> pull', '<%= config.bin %> pull library debian/12/base', '<%= config.bin %> branch -u origin/team/base && <%= config.bin %> pull'];
  static override args = {
    remote: Args.string({ description: 'remote name (default: the branch\'s upstream remote, else origin)' }),
    branch: Args.string({ description: 'branch (default: HEAD\'s)' }),
  };
  static override flags = {
    quiet: quietFlag,
    'ff-only': Flags.boolean({ summary: 'only fast-forward: refuse a diverged branch (exit 12)' }),
  };

  async run(): Promise<PullResult> {
    const { args, flags } = await this.parse(Pull);
    const r = await this.withRepo('write', flags.repo, (repo) => pull(repo, args.remote, args.branch, { ffOnly: flags['ff-only'], onProgress: this.progress('receiving') }));
    this.endProgress();
    if (r.merge) {
      this.log(renderMerge(r.merge));
      if (r.merge.status === 'conflicts') process.exitCode = 1;
    } else {
      this.log(r.fastForward ? `${r.branch}: fast-forward ${r.from ? r.from.slice(0, 12) : '(new)'}..${r.to.slice(0, 12)}` : `${r.branch}: already up to date`);
    }
    return r;
  }
}
