import { Args, Flags } from '../src/cli/flags.js';
import { show, type ShowResult } from '../src/ops/show.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';
import { renderDerivation, renderShow } from '../src/cli/render.js';

export default class Show extends RepoCommand {
  static override summary = 'show one commit: metadata, labels, source, root tree and derivation';
  static override pager = true;
  static override description = `--json includes "tree" (the root tree id), the root directory's metadata and, for a derived commit, "derivation" (base commit and root, recipe id, time and every edit, tool).

--derivation prints the derivation record alone: the base, the tool, the recipe's id and each edit on its own line (added content by its blob or tree id; generated values, such as ssh host keys, by the id of what they produced — never in clear).

${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> show', '<%= config.bin %> show debian/12/base~1 --json', '<%= config.bin %> show web/01 --derivation'];
  static override args = { rev: Args.string({ description: 'revision', default: 'HEAD' }) };
  static override flags = {
    derivation: Flags.boolean({ summary: 'print the derivation record (base, recipe, edits) of a derived commit' }),
  };

  async run(): Promise<ShowResult> {
    const { args, flags } = await this.parse(Show);
    const r = await this.withRepo('read', flags.repo, (repo) => show(repo, args.rev));
    this.log(flags.derivation ? renderDerivation(r.id, r.derivation) : renderShow(r));
    return r;
  }
}
