import { Args, Flags } from '@oclif/core';
import { UsageError, derivedFrom, log, type LogEntry } from '../src/index.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';
import { renderLogEntry } from '../src/cli/render.js';

export default class Log extends RepoCommand {
  static override summary = 'show the history of an image branch';
  static override pager = true;
  static override description = `Lists commits reachable from REV (default HEAD), newest first. As git: several revisions list what any of them reaches, ^REV leaves out what REV reaches, A..B is ^A B (what B has that A lacks), A...B what either has and the other lacks.\n\n--derived-from REV lists instead every commit derived from REV or from any earlier commit of its history, and through chains what was derived from those (a clone of a clone), newest first, from the derivation index written with each derived commit.\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> log', '<%= config.bin %> log debian/12/base -n 5 --oneline', '<%= config.bin %> log --decorate --oneline', '<%= config.bin %> log --json', '<%= config.bin %> log --derived-from debian/12/base --oneline', '<%= config.bin %> log origin/main..main --oneline', '<%= config.bin %> log feature ^main'];
  static override args = { rev: Args.string({ description: 'revision to start from; more may follow: A..B, A...B, ^EXCLUDED', default: 'HEAD' }) };
  static override strict = false;
  static override flags = {
    'max-count': Flags.integer({ char: 'n', summary: 'show at most this many commits', min: 0 }),
    oneline: Flags.boolean({ summary: 'one line per commit' }),
    'first-parent': Flags.boolean({ summary: 'follow only the first parent of merges' }),
    'derived-from': Flags.string({ summary: 'list the commits derived from this revision (or its history), through chains', helpValue: 'REV' }),
    decorate: Flags.boolean({ summary: "show the refs pointing at each commit, as '(main, tag: v1)' (default: when stdout is a terminal, as git)", allowNo: true }),
  };

  async run(): Promise<LogEntry[]> {
    const { args, flags, argv } = await this.parse(Log);
    const from = flags['derived-from'];
    if (from !== undefined && this.argv.some((a) => !a.startsWith('-') && a === args.rev)) throw new UsageError('give either REV or --derived-from REV, not both');
    const entries = await this.withRepo('read', flags.repo, (repo) => {
      if (from === undefined) return log(repo, { revs: argv.length ? argv as string[] : [args.rev], maxCount: flags['max-count'], firstParent: flags['first-parent'] });
      const all = derivedFrom(repo, from);
      return flags['max-count'] === undefined ? all : all.slice(0, flags['max-count']);
    });
    const decorate = flags.decorate ?? Boolean(process.stdout.isTTY);
    for (const e of entries) this.log(renderLogEntry(e, flags.oneline, decorate ? e.refs : []));
    return entries;
  }
}
