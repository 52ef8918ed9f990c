import { Args, Flags } from '../src/cli/flags.js';
import { log, type LogEntry } from '../src/ops/log.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';
import { renderWhatchanged } from '../src/cli/render.js';

export default class Whatchanged extends RepoCommand {
  static override summary = 'which commits changed an image path, and how: which one added it, which one last changed it';
  static override description = `Per commit that changed what is at PATH (in REV's history, default HEAD), newest first, one line per change: the commit, its date, the kind of change and the path, then the commit's subject:
  4d2c9a0b1e7f 2024-03-02 M etc/app.conf  raise the limit
  9a8b7c6d5e4f 2024-02-11 R etc/app.cfg -> etc/app.conf  rename the config
  0f1e2d3c4b5a 2024-01-05 A etc/app.cfg  base image
A added, D deleted, M modified (attributes that changed in brackets), T type changed, R renamed. The last line is the commit that introduced the path, the first the one that last changed it. PATH is followed across renames (as log --follow; --no-follow stops at the rename); a directory lists each entry below it that changed. Merges are compared with their first parent. The same as 'viva log --follow --name-status -- PATH' in a shorter form; --json gives those log entries, each with its "changes".

History is walked on the commit graph and PATH is compared along its own directories only: no file content is read.

${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> whatchanged etc/ssh/sshd_config', '<%= config.bin %> whatchanged etc/hostname web -n 1', '<%= config.bin %> whatchanged usr/share/doc --all --json'];
  static override args = {
    path: Args.string({ required: true, description: 'image path (a file or a directory)' }),
    rev: Args.string({ description: 'revision to start from (default HEAD)' }),
  };
  static override flags = {
    'max-count': Flags.integer({ char: 'n', summary: 'show at most this many commits', min: 0 }),
    all: Flags.boolean({ summary: 'start from every ref and HEAD' }),
    follow: Flags.boolean({ summary: 'follow PATH across renames (default; --no-follow stops at a rename)', allowNo: true, default: true }),
  };

  async run(): Promise<LogEntry[]> {
    const { args, flags } = await this.parse(Whatchanged);
    const entries = await this.withRepo('read', flags.repo, (repo) => log(repo, {
      revs: args.rev ? [args.rev] : [], all: flags.all, paths: [args.path], follow: flags.follow, maxCount: flags['max-count'], changes: true, diffMerges: true,
    }));
    const text = renderWhatchanged(entries);
    if (text) this.log(text);
    return entries;
  }
}
