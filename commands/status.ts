import { Args, Flags } from '../src/cli/flags.js';
import { status, type StatusResult } from '../src/ops/status.js';
import { EXIT, EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';
import { renderDiff } from '../src/cli/render.js';

export default class Status extends RepoCommand {
  static override summary = 'what changed in a checked-out directory since the checkout';
  static override pager = true;
  static override description = `viva checkout REV DIR records which image DIR came from. viva status DIR (default: the current directory, or the checkout it lies in) compares DIR as it is now with that image, as 'viva diff REV DIR' would, and lists what changed since, one line per entry as diff does (A added, D deleted, M modified with the attributes in brackets, T type changed, R renamed). Changes of mtime alone are left out unless --mtime. Nothing is committed: 'viva commit DIR -b BRANCH' records the changes.

Files are read (hashed) only when their size, times or inode changed since the checkout wrote them or a status or commit last read them (the stat cache, which checkout fills and status keeps current): a status right after a checkout reads nothing but files whose image mtime is in the last two seconds.

--exit-code: exit 1 when something changed. A directory no checkout of this repository wrote (or one replaced since) is exit 3.

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> checkout web/base /srv/web && <%= config.bin %> status /srv/web',
    'cd /srv/web/etc && <%= config.bin %> status',
    '<%= config.bin %> status /srv/web --json',
  ];
  static override args = { dir: Args.string({ description: 'a directory viva checkout wrote, or one inside it (default: .)', default: '.' }) };
  static override flags = {
    mtime: Flags.boolean({ summary: 'also list entries whose only change is their mtime' }),
    'exit-code': Flags.boolean({ summary: 'exit 1 if anything changed since the checkout, 0 if not' }),
  };

  async run(): Promise<StatusResult> {
    const { args, flags } = await this.parse(Status);
    const r = await this.withRepo('write', flags.repo, (repo) => status(repo, { dir: args.dir, mtime: flags.mtime, onProgress: this.progress('reading') }));
    this.endProgress();
    if (!this.jsonEnabled()) {
      this.log(`checked out from ${r.rev} (${r.commit.slice(0, 12)}) to ${r.dir}${r.path ? ` (image path ${r.path})` : ''} on ${new Date(r.checkedOut * 1000).toISOString().replace('.000Z', 'Z')}`);
      this.log(r.entries.length ? renderDiff(r.entries) : 'nothing changed since the checkout');
    }
    if (flags['exit-code'] && r.entries.length) process.exitCode = EXIT.FAILURE;
    return r;
  }
}
