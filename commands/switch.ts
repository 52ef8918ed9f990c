import { Args, Flags } from '../src/cli/flags.js';
import { UsageError } from '../src/errors.js';
import { switchBranch, type SwitchResult } from '../src/ops/switch.js';
import { trackingMessage } from '../src/ops/upstream.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';

export default class Switch extends RepoCommand {
  static override summary = 'point HEAD at another branch (nothing is checked out)';
  static override description = `Moves HEAD, as git switch does: to BRANCH; to a new branch (-c NEW [START], START default HEAD; --force-create NEW resets NEW if it exists: git's -C, which names the repository in viva); to the branch checked out before ('-' or @{-N}); or, with --detach REV, to a commit without a branch. HEAD is what log, show, diff, grep, ls, commit (without -b), push and pull use when no revision or branch is named.

Nothing is materialized: viva images are not checked out into a work tree, so switch changes only HEAD. Use 'viva checkout REV DEST' to write an image out.

Each move is recorded in HEAD's reflog ('viva reflog') as 'checkout: moving from A to B'; @{-1} names the branch checked out before the current one.

A BRANCH that does not exist here but exists on exactly one remote (origin/BRANCH after a clone or fetch) is created from that remote-tracking branch and tracks it: "branch 'x' set up to track 'origin/x'" (--no-guess turns this off). A new branch whose START is a remote-tracking branch tracks it too. A missing branch is "invalid reference" (exit 3); a tag, remote-tracking branch or commit given without --detach is refused (exit 2, "a branch is expected"); -c of an existing branch exits 12.

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> switch debian/12/base',
    '<%= config.bin %> switch -c customers/acme/web debian/12/base',
    '<%= config.bin %> switch team/img',
    '<%= config.bin %> switch -',
    '<%= config.bin %> switch --detach v1.0',
  ];
  static override args = {
    branch: Args.string({ description: 'branch to switch to; with -c/--force-create the start point, with --detach the revision' }),
  };
  static override flags = {
    create: Flags.string({ char: 'c', summary: 'create this branch at BRANCH (default HEAD) and switch to it', helpValue: 'NEW', exclusive: ['force-create', 'detach'] }),
    // Not -C as in git: -C names the repository in every viva command.
    'force-create': Flags.string({ summary: 'as -c, resetting the branch if it exists (git\'s -C)', helpValue: 'NEW', exclusive: ['detach'] }),
    detach: Flags.boolean({ summary: 'detach HEAD at the revision BRANCH (default HEAD)' }),
    guess: Flags.boolean({ summary: 'create a missing BRANCH from the one remote that has it (default on)', allowNo: true, default: true }),
  };

  async run(): Promise<SwitchResult> {
    const { args, flags } = await this.parse(Switch);
    const create = flags.create ?? flags['force-create'];
    if (create === undefined && !flags.detach && args.branch === undefined) throw new UsageError('name the branch to switch to (or -c NEW to create one)');
    const result = await this.withRepo('write', flags.repo, (repo) => switchBranch(repo, {
      ...(create !== undefined ? { create, start: args.branch, forceCreate: flags['force-create'] !== undefined } : { branch: args.branch }),
      detach: flags.detach, guess: flags.guess,
    }));
    if (result.tracking) this.log(trackingMessage(result.tracking));
    const name = result.branch?.replace(/^refs\/heads\//, '');
    if (result.detached) this.log(`HEAD is now at ${result.oid!.slice(0, 12)} ${result.subject ?? ''}`.trimEnd());
    else if (result.alreadyOn) this.log(`Already on '${name}'`);
    else if (result.created) this.log(`Switched to a new branch '${name}'`);
    else this.log(`Switched to branch '${name}'`);
    return result;
  }
}
