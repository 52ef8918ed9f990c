import { Args, Flags } from '../src/cli/flags.js';
import { type FindScope } from '../src/ops/find.js';
import { search, type SearchHit } from '../src/ops/search.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';

export default class Search extends RepoCommand {
  static override summary = 'keyword search over images: ref names, messages, labels, packages, file names';
  static override pager = true;
  static override description = `Every word must match (case-insensitive substring) somewhere in an image: its ref name, commit message, labels, installed packages or file names. Hits are ranked: ref names and labels weigh most, then messages and packages, then file names; exact matches more than substrings. Scope as for find (--all, --heads, --ref).

${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> search nginx', '<%= config.bin %> search acme prod --heads'];
  static override strict = false;
  static override args = { words: Args.string({ required: true, description: 'words to look for' }) };
  static override flags = {
    heads: Flags.boolean({ summary: 'only branch heads', exclusive: ['ref'] }),
    ref: Flags.string({ summary: 'only refs whose name starts with this', exclusive: ['heads'] }),
    limit: Flags.integer({ char: 'n', summary: 'at most this many hits', default: 20, min: 1 }),
  };

  async run(): Promise<SearchHit[]> {
    const { flags, argv } = await this.parse(Search);
    const scope: FindScope = flags.heads ? { kind: 'heads' } : flags.ref !== undefined ? { kind: 'ref', prefix: flags.ref } : { kind: 'all' };
    const hits = await this.withRepo('read', flags.repo, (repo) => search(repo, argv as string[], { scope, limit: flags.limit }));
    if (hits.length) this.log(hits.map((h) => `${String(h.score).padStart(4)}  ${h.ref}  ${h.commit.slice(0, 12)}  ${h.message}\n      ${h.matches.join('; ')}`).join('\n'));
    return hits;
  }
}
