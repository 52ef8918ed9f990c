import { Args } from '../src/cli/flags.js';
import { reflog, type ReflogResult } from '../src/ops/reflog.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';
import { renderReflog } from '../src/cli/render.js';

export default class Reflog extends RepoCommand {
  static override summary = 'show where a ref has pointed, newest first';
  static override pager = true;
  static override description = `Every commit, branch creation, rename and reset appends an entry to the ref's reflog, printed as git does: '<id> main@{1}: commit: message', where main@{1} is the revision that names that value (see 'viva rev-parse'). Without REF, HEAD's own reflog: every move of HEAD ('checkout: moving from main to feature' by switch or commit -b, 'clone: from URL') and every update of the branch it was on; @{-1} reads its moves.\n\ngc keeps every commit the reflog of a ref names. HEAD's own reflog keeps nothing alive (every commit passes through it): gc drops its entries for the commits it removes.\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> reflog', '<%= config.bin %> reflog debian/12/base --json', '<%= config.bin %> rev-parse debian/12/base@{1}'];
  static override args = { ref: Args.string({ description: 'branch, tag or full ref (default: the branch HEAD points at)', default: 'HEAD' }) };

  async run(): Promise<ReflogResult> {
    const { args, flags } = await this.parse(Reflog);
    const r = await this.withRepo('read', flags.repo, (repo) => reflog(repo, args.ref));
    if (r.entries.length) this.log(renderReflog(r));
    return r;
  }
}
