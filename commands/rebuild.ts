import { Args, Flags } from '../src/cli/flags.js';
import { UsageError } from '../src/errors.js';
import { rebuild, type RebuildResult } from '../src/ops/rebuild.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';
import { renderRebuild } from '../src/cli/render.js';

export default class Rebuild extends RepoCommand {
  static override summary = 'replay derivation recipes on a newer base (build avoidance: unchanged inputs do no work)';
  static override description = `viva rebuild REV --onto NEWBASE [-b BRANCH] replays the recipe of the derived commit REV on NEWBASE, as a new commit on BRANCH (default: REV when it is a branch; its head becomes the parent).

viva rebuild --derived-from BRANCH rebuilds every branch whose head was derived from an older commit of BRANCH, and the branches derived from those (a clone of a clone), in dependency order: each gets a new commit (parent: its old head) made by replaying its recipe on the new head of its base branch. All branches move in one transaction at the end.

Build avoidance: a step's result is memoized by (base tree id, recipe id). A branch whose base tree did not change is 'unchanged' (no work, no commit); a step made before is reused without applying an edit. A recipe that no longer applies (the file it removes is gone, a parent became a symlink, a disk's file system has no room) fails that branch with the reason; it stays where it was, the branches derived from it are skipped, the others go on, and the exit status is 1. A branch with commits of its own on top of its derived commit is skipped with the reason (replaying the recipe would drop them; rebuild that commit with --onto and reapply them).

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> rebuild --derived-from debian/12/base',
    '<%= config.bin %> rebuild web/01 --onto debian/12/base',
    '<%= config.bin %> rebuild web/01 --onto debian/13/base -b web/01-trixie --json',
  ];
  static override args = { rev: Args.string({ description: 'derived commit whose recipe is replayed (with --onto)' }) };
  static override flags = {
    onto: Flags.string({ summary: 'the new base to replay REV\'s recipe on', helpValue: 'NEWBASE' }),
    branch: Flags.string({ char: 'b', summary: 'branch for the result (default: REV when it is a branch)' }),
    'derived-from': Flags.string({ summary: 'rebuild every branch derived (transitively) from an older commit of this branch', helpValue: 'BRANCH' }),
    author: Flags.string({ summary: "author as 'Name <email>' (default: $VIVA_AUTHOR or user@host)" }),
    'dry-run': Flags.boolean({ char: 'n', summary: 'say what would be rebuilt; write nothing' }),
  };

  async run(): Promise<RebuildResult> {
    const { args, flags } = await this.parse(Rebuild);
    const from = flags['derived-from'];
    if (from !== undefined && (args.rev !== undefined || flags.onto !== undefined || flags.branch !== undefined)) throw new UsageError('--derived-from rebuilds every derived branch: give it alone, or REV --onto NEWBASE');
    if (from === undefined && (args.rev === undefined || flags.onto === undefined)) throw new UsageError('give REV --onto NEWBASE, or --derived-from BRANCH');
    const result = await this.withRepo('write', flags.repo, (repo) =>
      rebuild(repo, {
        ...(from !== undefined ? { derivedFrom: from } : { rev: args.rev!, onto: flags.onto!, ...(flags.branch ? { branch: flags.branch } : {}) }),
        ...(flags.author ? { author: flags.author } : {}), dryRun: flags['dry-run'],
      }));
    this.log(renderRebuild(result));
    if (result.failed + result.skipped > 0) process.exitCode = 1;
    return result;
  }
}
