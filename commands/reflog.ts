import { Args } from '@oclif/core';
import { reflog, type ReflogResult } from '../src/index.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';
import { renderReflog } from '../src/cli/render.js';

export default class Reflog extends RepoCommand {
  static override summary = 'show where a ref has pointed, newest first';
  static override pager = true;
  static override description = `Every commit, branch creation, rename and reset appends an entry. gc keeps every commit a reflog names.\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> reflog', '<%= config.bin %> reflog debian/12/base --json'];
  static override args = { ref: Args.string({ description: 'branch, tag or full ref (default: the branch HEAD points at)', default: 'HEAD' }) };

  async run(): Promise<ReflogResult> {
    const { args, flags } = await this.parse(Reflog);
    const r = await this.withRepo('read', flags.repo, (repo) => reflog(repo, args.ref));
    if (r.entries.length) this.log(renderReflog(r));
    return r;
  }
}
