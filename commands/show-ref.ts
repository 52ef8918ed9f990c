import { Flags } from '../src/cli/flags.js';
import { type Oid } from '../src/model/oid.js';
import { showRef } from '../src/ops/show-ref.js';
import { EXIT, EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';

export default class ShowRef extends RepoCommand {
  static override summary = 'list refs with their commit ids';
  static override description = `One line per ref, '<id> refs/heads/x', in name order, as git show-ref: branches, tags and remote-tracking branches (HEAD is symbolic and not listed). --heads and --tags limit it to branches or tags (both: both). A PATTERN matches a ref whose full name is PATTERN or ends with '/PATTERN' ('main' matches refs/heads/main and refs/remotes/origin/main; 'acme/web' matches refs/heads/customers/acme/web). Exits 1 when nothing is listed, as git.

${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> show-ref', '<%= config.bin %> show-ref --heads', '<%= config.bin %> show-ref --tags v1.0', '<%= config.bin %> show-ref main'];
  static override strict = false;
  static override flags = {
    heads: Flags.boolean({ summary: 'only branches (refs/heads/)' }),
    tags: Flags.boolean({ summary: 'only tags (refs/tags/)' }),
  };

  async run(): Promise<Array<{ ref: string; oid: Oid }>> {
    const { flags, argv } = await this.parse(ShowRef);
    const refs = await this.withRepo('read', flags.repo, (repo) => showRef(repo, { heads: flags.heads, tags: flags.tags, patterns: argv as string[] }));
    if (refs.length) this.log(refs.map((r) => `${r.oid} ${r.ref}`).join('\n'));
    else process.exitCode = EXIT.FAILURE;
    return refs;
  }
}
