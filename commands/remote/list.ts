import { listRemotes, type RemoteConfig } from '../../src/ops/sync.js';
import { EXIT_STATUS_HELP } from '../../src/cli/exit-codes.js';
import { RepoCommand } from '../../src/cli/repo-command.js';

export default class RemoteList extends RepoCommand {
  static override summary = 'list remotes';
  static override description = EXIT_STATUS_HELP;
  static override examples = ['<%= config.bin %> remote list'];

  async run(): Promise<RemoteConfig[]> {
    const { flags } = await this.parse(RemoteList);
    const list = await this.withRepo('read', flags.repo, (repo) => listRemotes(repo));
    if (list.length) this.log(list.map((r) => `${r.name}\t${r.url}`).join('\n'));
    return list;
  }
}
