import { Flags } from '../src/cli/flags.js';
import { UsageError } from '../src/errors.js';
import { parseSize } from '../src/cli/argv.js';
import { derivedFrom } from '../src/ops/derivations.js';
import { addLogPatches, log, parseApproxDate, type LogEntry } from '../src/ops/log.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';
import { renderLog } from '../src/cli/render.js';

export default class Log extends RepoCommand {
  static override summary = 'show the history of an image branch';
  static override pager = true;
  static override description = `Lists commits reachable from the revisions given (default HEAD; --all: every branch, tag and remote-tracking branch, and HEAD), newest first, as git log does. ^REV leaves out what REV reaches, A..B is ^A B (what B has that A lacks), A...B what either has and the other lacks.

Limiting: paths after -- keep the commits that changed what is at one of those image paths (the entry itself, or anything below a directory), found by comparing tree entries along the path only: no file content is read. As git's default history simplification, a merge that kept one parent's entry is not shown and only that parent is followed. --follow (one path) goes on under the path's old name across a rename (the same content under a new name, as diff finds renames). --grep and --author take regular expressions (JavaScript syntax, which reads as git's -E extended ones: | + ? () without backslashes), matched per line; -i ignores case, -F takes them as fixed strings, several of one kind match when any does (--all-match: all). --since/--after and --until/--before take an ISO date (2024-01-31, "2024-01-31 12:00", 2024-01-31T12:00:00+01:00; local time without a zone), @SECONDS, "N UNITs ago" or N.UNITs.ago (second, minute, hour, day, week, month, year), now, today or yesterday. --diff-filter keeps commits with changes of those kinds (A added, D deleted, M modified, T type changed, R renamed; lower case letters exclude).

Output: --graph draws the commit graph at the left as git does (* a commit, | a line of history, \\ a merge's second parent, / lines joining) in topological order; a derived commit's edge to the base it was made from (viva derive, install, ...) is drawn with : instead of | when the base is shown (log --all, or both given), and the text names it on a 'Derived:' line. --stat, --name-status and -p show per commit what changed against its first parent (a root commit: everything added; merges: nothing, unless --first-parent), limited to the paths given, in diff's formats. --decorate names the refs at each commit, '(HEAD -> main, tag: v1, origin/main)'; the default is on a terminal only, as git's auto.

--derived-from REV lists instead every commit derived from REV or from any earlier commit of its history, and through chains what was derived from those (a clone of a clone), newest first, from the derivation index written with each derived commit.

--json: an array of commits; "refs" and "head" (decorations), "derivedFrom" (derivation bases that are not parents), "graphParents" (--graph), "path" (--follow: the name in that commit), "changes" (--stat, --name-status, -p: diff entries) and "patches" (-p).

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> log',
    '<%= config.bin %> log debian/12/base -n 5 --oneline',
    '<%= config.bin %> log --all --graph --oneline',
    '<%= config.bin %> log -- etc/ssh/sshd_config',
    '<%= config.bin %> log --follow --stat -- etc/app.conf',
    '<%= config.bin %> log --grep "ssh|sshd" -i --since "2 weeks ago"',
    '<%= config.bin %> log --author alice --until 2024-06-30 -p',
    '<%= config.bin %> log --diff-filter=A --oneline -- etc/motd',
    '<%= config.bin %> log --decorate --oneline main web',
    '<%= config.bin %> log origin/main..main --oneline',
    '<%= config.bin %> log feature ^main',
    '<%= config.bin %> log --json',
    '<%= config.bin %> log --derived-from debian/12/base --oneline',
  ];
  static override strict = false;
  static override args = {};
  static override usage = 'log [REV...] [-- PATH...]';
  static override flags = {
    'max-count': Flags.integer({ char: 'n', summary: 'show at most this many commits', min: 0 }),
    oneline: Flags.boolean({ summary: 'one line per commit' }),
    all: Flags.boolean({ summary: 'start from every ref (branches, tags, remote-tracking branches) and HEAD' }),
    'first-parent': Flags.boolean({ summary: 'follow only the first parent of merges (and show their changes against it)' }),
    follow: Flags.boolean({ summary: 'with one path: go on under its old name across renames' }),
    grep: Flags.string({ summary: 'commits whose message matches PATTERN (a regular expression; repeatable: any)', helpValue: 'PATTERN', multiple: true, multipleNonGreedy: true }),
    author: Flags.string({ summary: 'commits whose author ("Name <email>") matches PATTERN (repeatable: any)', helpValue: 'PATTERN', multiple: true, multipleNonGreedy: true }),
    'all-match': Flags.boolean({ summary: 'every --grep and --author pattern must match' }),
    'invert-grep': Flags.boolean({ summary: 'commits whose message matches no --grep pattern' }),
    'regexp-ignore-case': Flags.boolean({ char: 'i', summary: 'patterns match regardless of case' }),
    'extended-regexp': Flags.boolean({ char: 'E', summary: 'patterns are extended regular expressions (the default; for git\'s habit)' }),
    'fixed-strings': Flags.boolean({ char: 'F', summary: 'patterns are fixed strings' }),
    since: Flags.string({ summary: 'commits made at or after DATE', helpValue: 'DATE', aliases: ['after'] }),
    until: Flags.string({ summary: 'commits made at or before DATE', helpValue: 'DATE', aliases: ['before'] }),
    graph: Flags.boolean({ summary: 'draw the commit graph (branches, merges, and derivations as :) at the left' }),
    patch: Flags.boolean({ char: 'p', summary: 'text patches of what each commit changed' }),
    stat: Flags.boolean({ summary: 'per commit: the changed entries with sizes, and a summary line' }),
    'name-status': Flags.boolean({ summary: 'per commit: the changed entries, one A/D/M/T/R line each' }),
    'diff-filter': Flags.string({ summary: 'only commits with changes of these kinds (A, D, M, T, R; lower case excludes)', helpValue: 'ADMTR' }),
    'max-patch-size': Flags.string({ summary: 'largest file -p shows a patch for', default: '1M' }),
    'derived-from': Flags.string({ summary: 'list the commits derived from this revision (or its history), through chains', helpValue: 'REV' }),
    decorate: Flags.boolean({ summary: "show the refs pointing at each commit, as '(HEAD -> main, tag: v1)' (default: when stdout is a terminal, as git)", allowNo: true }),
  };

  async run(): Promise<LogEntry[]> {
    const { flags, argv } = await this.parse(Log);
    const dd = this.argv.indexOf('--');
    const paths = dd >= 0 ? this.argv.slice(dd + 1) : [];
    // oclif hands back the words after -- as arguments too (they end argv): the revisions are what comes before.
    const revs = (argv as string[]).slice(0, (argv as string[]).length - paths.length);
    const from = flags['derived-from'];
    if (from !== undefined && revs.length) throw new UsageError('give either REV or --derived-from REV, not both');
    const changes = flags.patch || flags.stat || flags['name-status'];
    const entries = await this.withRepo('read', flags.repo, async (repo) => {
      if (from !== undefined) {
        const all = derivedFrom(repo, from);
        return flags['max-count'] === undefined ? all : all.slice(0, flags['max-count']);
      }
      const result = log(repo, {
        revs, all: flags.all, maxCount: flags['max-count'], firstParent: flags['first-parent'], paths, follow: flags.follow,
        grep: flags.grep, author: flags.author, allMatch: flags['all-match'], invertGrep: flags['invert-grep'],
        ignoreCase: flags['regexp-ignore-case'], fixedStrings: flags['fixed-strings'],
        since: flags.since === undefined ? undefined : parseApproxDate(flags.since),
        until: flags.until === undefined ? undefined : parseApproxDate(flags.until),
        graph: flags.graph, changes, diffFilter: flags['diff-filter'],
      });
      if (flags.patch) await addLogPatches(repo, result, { maxBytes: parseSize(flags['max-patch-size']) });
      return result;
    });
    const decorate = flags.decorate ?? Boolean(process.stdout.isTTY);
    if (!this.jsonEnabled()) {
      const render = { oneline: flags.oneline, decorate, graph: flags.graph, stat: flags.stat, nameStatus: flags['name-status'], patch: flags.patch };
      for (const text of renderLog(entries, render)) this.log(text);
    }
    return entries;
  }
}
