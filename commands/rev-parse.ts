import { Flags } from '../src/cli/flags.js';
import { UsageError } from '../src/errors.js';
import { revParse, type RevParseLine } from '../src/ops/rev-parse.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';

export default class RevParse extends RepoCommand {
  static override summary = 'print the full commit ids (or ref names) that revisions stand for';
  static override description = `Each REV is any revision (see 'Revisions' in docs/cli.md: HEAD, @, a branch, tag or remote-tracking branch, an id prefix, REV~N, REV^N, REF@{N}, @{-N}, @{upstream}), ^REV, a range A..B (printed as B and ^A) or A...B (A, B and ^ each merge base), or REV:path (the id of that entry's object). One line per revision, as git rev-parse.

--abbrev-ref prints the short name of the ref a revision names (HEAD → the branch it is on, @{-1} → the branch before, @{u} → origin/x), --symbolic-full-name its full name (refs/heads/x); a revision that names no ref (a commit id, main~1, main@{2}) prints nothing. --short prints abbreviated ids. --verify takes exactly one revision that is not a range.

A revision that does not exist exits 3 (git exits 128), an ambiguous id prefix 2.

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> rev-parse HEAD',
    '<%= config.bin %> rev-parse --abbrev-ref HEAD',
    '<%= config.bin %> rev-parse --symbolic-full-name @{-1}',
    '<%= config.bin %> rev-parse --abbrev-ref @{upstream}',
    '<%= config.bin %> rev-parse --verify --short debian/12/base@{1}',
    '<%= config.bin %> rev-parse main..feature',
  ];
  static override strict = false;
  static override flags = {
    verify: Flags.boolean({ summary: 'exactly one revision, not a range' }),
    'abbrev-ref': Flags.boolean({ summary: 'print the short name of the ref each revision names' }),
    'symbolic-full-name': Flags.boolean({ summary: 'print the full name of the ref each revision names' }),
    short: Flags.boolean({ summary: 'print abbreviated ids' }),
  };

  async run(): Promise<RevParseLine[]> {
    const { flags, argv } = await this.parse(RevParse);
    const revs = argv as string[];
    if (!revs.length) throw new UsageError('give one or more revisions');
    const lines = await this.withRepo('read', flags.repo, (repo) => revParse(repo, revs, {
      verify: flags.verify, abbrevRef: flags['abbrev-ref'], symbolicFullName: flags['symbolic-full-name'], short: flags.short,
    }));
    const out = lines.flatMap((l) => (l.text === undefined ? [] : [l.text]));
    if (out.length) this.log(out.join('\n'));
    return lines;
  }
}
