import { Args } from '@oclif/core';
import { pull, type PullResult } from '../src/index.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';

export default class Pull extends RepoCommand {
  static override summary = 'fetch a branch from a remote and fast-forward the local one';
  static override description = `Without BRANCH, the branch HEAD points at. A local branch that has diverged from the remote's is refused (exit 12): pull only fast-forwards until merge exists.\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> pull', '<%= config.bin %> pull library debian/12/base'];
  static override args = {
    remote: Args.string({ description: 'remote name', default: 'origin' }),
    branch: Args.string({ description: 'branch (default: HEAD\'s)' }),
  };

  async run(): Promise<PullResult> {
    const { args, flags } = await this.parse(Pull);
    const r = await this.withRepo('write', flags.repo, (repo) => pull(repo, args.remote, args.branch));
    this.log(r.fastForward ? `${r.branch}: fast-forward ${r.from ? r.from.slice(0, 12) : '(new)'}..${r.to.slice(0, 12)}` : `${r.branch}: already up to date`);
    return r;
  }
}
