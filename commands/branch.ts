import { Flags } from '../src/cli/flags.js';
import { RefCommand, refArgs, refCommandDescription, refFlags } from '../src/cli/ref-command.js';
import { UsageError } from '../src/errors.js';
import { type RefInfo } from '../src/ops/branch.js';
import { setUpstreamTo, trackingMessage, unsetUpstream, type UpstreamResult } from '../src/ops/upstream.js';

export default class Branch extends RefCommand {
  static override summary = 'list, create, delete or rename image branches; set their upstreams';
  static override description = refCommandDescription('branch').replace('\n\nEXIT STATUS', `
-r lists the remote-tracking branches (origin/x), -a the local ones and then those (remotes/origin/x). -v adds each commit's subject and, for a branch with an upstream, how many commits it is ahead of and behind it ([ahead 1, behind 2]); -vv names the upstream too ([origin/x: ahead 1], [origin/x] when even, [origin/x: gone] when its ref is gone).

-u UPSTREAM [NAME] (--set-upstream-to) makes NAME (default: HEAD's branch) track UPSTREAM, a remote-tracking branch (origin/x) or a local branch; --unset-upstream [NAME] removes that. 'viva clone', 'viva switch REMOTE-BRANCH' and 'viva push -u' set it too. The upstream is what @{upstream} (@{u}) names, what 'viva push REMOTE' without a refspec pushes to, and what -v compares with. It is kept per branch in the repository's meta database (key 'branches': remote and merge, as git's branch.NAME.remote and branch.NAME.merge), goes with a renamed branch and is dropped with a deleted one.

EXIT STATUS`);
  static override examples = [
    '<%= config.bin %> branch',
    '<%= config.bin %> branch --list debian/',
    '<%= config.bin %> branch customers/acme/web debian/12/base',
    '<%= config.bin %> branch -m customers/acme/web customers/acme/www',
    '<%= config.bin %> branch -d customers/acme/www',
    '<%= config.bin %> branch -a',
    '<%= config.bin %> branch -vv',
    '<%= config.bin %> branch -u origin/team/img team/img',
    '<%= config.bin %> branch --unset-upstream',
  ];
  static override args = refArgs;
  static override flags = {
    ...refFlags,
    remotes: Flags.boolean({ char: 'r', summary: 'list the remote-tracking branches', exclusive: ['all'] }),
    all: Flags.boolean({ char: 'a', summary: 'list local and remote-tracking branches' }),
    verbose: Flags.boolean({ char: 'v', summary: 'show subjects and ahead/behind counts (-vv: with the upstream\'s name)' }),
    'set-upstream-to': Flags.string({ char: 'u', summary: 'make NAME (default: HEAD\'s branch) track this upstream', helpValue: 'UPSTREAM' }),
    'unset-upstream': Flags.boolean({ summary: 'remove the upstream of NAME (default: HEAD\'s branch)' }),
  };
  protected kind = 'branch' as const;

  async run(): Promise<RefInfo[] | UpstreamResult> {
    // -vv is -v given twice (oclif has no counted flags).
    const raw = this.argv;
    const vv = raw.includes('-vv') || raw.filter((a) => a === '-v' || a === '--verbose').length > 1;
    const argv = raw.flatMap((a) => (a === '-vv' ? ['-v'] : [a])).filter((a, i, all) => !((a === '-v' || a === '--verbose') && all.slice(0, i).some((b) => b === '-v' || b === '--verbose')));
    const { args, flags } = await this.parse(Branch, argv);
    const upstream = flags['set-upstream-to'];
    if (upstream !== undefined || flags['unset-upstream']) {
      if (upstream !== undefined && flags['unset-upstream']) throw new UsageError('give either --set-upstream-to or --unset-upstream');
      if (args.target !== undefined) throw new UsageError(`too many arguments: '${args.target}'`);
      const r = await this.withRepo('write', flags.repo, (repo) => (upstream !== undefined ? setUpstreamTo(repo, upstream, args.name) : unsetUpstream(repo, args.name)));
      if (r.upstream) this.log(trackingMessage(r));
      return r;
    }
    return this.runRef(args, flags, { ...(flags.remotes ? { remotes: 'only' as const } : flags.all ? { remotes: 'also' as const } : {}), verbosity: vv ? 2 : flags.verbose ? 1 : 0 });
  }
}
