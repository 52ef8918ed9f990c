import { Args, Flags } from '@oclif/core';
import { log, type LogEntry } from '../src/index.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';
import { renderLogEntry } from '../src/cli/render.js';

export default class Log extends RepoCommand {
  static override summary = 'show the history of an image branch';
  static override description = `Lists commits reachable from REV (default HEAD), newest first.\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> log', '<%= config.bin %> log debian/12/base -n 5 --oneline', '<%= config.bin %> log --decorate --oneline', '<%= config.bin %> log --json'];
  static override args = { rev: Args.string({ description: 'revision to start from', default: 'HEAD' }) };
  static override flags = {
    'max-count': Flags.integer({ char: 'n', summary: 'show at most this many commits', min: 0 }),
    oneline: Flags.boolean({ summary: 'one line per commit' }),
    'first-parent': Flags.boolean({ summary: 'follow only the first parent of merges' }),
    decorate: Flags.boolean({ summary: "show the refs pointing at each commit, as '(main, tag: v1)' (default: when stdout is a terminal, as git)", allowNo: true }),
  };

  async run(): Promise<LogEntry[]> {
    const { args, flags } = await this.parse(Log);
    const entries = await this.withRepo('read', flags.repo, (repo) =>
      log(repo, { rev: args.rev, maxCount: flags['max-count'], firstParent: flags['first-parent'] }));
    const decorate = flags.decorate ?? Boolean(process.stdout.isTTY);
    for (const e of entries) this.log(renderLogEntry(e, flags.oneline, decorate ? e.refs : []));
    return entries;
  }
}
