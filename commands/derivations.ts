import { Args, Flags } from '../src/cli/flags.js';
import { derivationGraph, type DerivationGraph } from '../src/ops/derivations.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';
import { renderDerivationDot, renderDerivationGraph } from '../src/cli/render.js';

export default class Derivations extends RepoCommand {
  static override summary = 'show which branches were derived from which, and whether they are up to date';
  static override pager = true;
  static override description = `Prints the derivation graph of the local branches: for every branch whose head is a derived commit, the branch (or branches) whose history holds its base and how many commits that branch has moved on since ('up to date', or 'N behind': 'viva rebuild --derived-from BRANCH' replays them). With REF arguments, only those branches and what was derived from them, transitively. --dot prints a Graphviz digraph (dot -Tsvg).

${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> derivations', '<%= config.bin %> derivations debian/12/base', '<%= config.bin %> derivations --dot | dot -Tsvg > derivations.svg', '<%= config.bin %> derivations --json'];
  static override strict = false;
  static override args = { refs: Args.string({ description: 'branches to start from (default: all)' }) };
  static override flags = {
    dot: Flags.boolean({ summary: 'print a Graphviz digraph' }),
  };

  async run(): Promise<DerivationGraph> {
    const { argv, flags } = await this.parse(Derivations);
    const refs = (argv as string[]).map((r) => (r.startsWith('refs/') ? r : `refs/heads/${r}`));
    const g = await this.withRepo('read', flags.repo, (repo) => derivationGraph(repo, refs));
    this.log(flags.dot ? renderDerivationDot(g) : renderDerivationGraph(g));
    return g;
  }
}
