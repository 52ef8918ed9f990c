import { Args } from '../../src/cli/flags.js';
import { removeRemote } from '../../src/ops/sync.js';
import { EXIT_STATUS_HELP } from '../../src/cli/exit-codes.js';
import { RepoCommand } from '../../src/cli/repo-command.js';

export default class RemoteRemove extends RepoCommand {
  static override summary = 'remove a remote and its remote-tracking refs';
  static override description = EXIT_STATUS_HELP;
  static override examples = ['<%= config.bin %> remote remove library'];
  static override args = { name: Args.string({ required: true, description: 'remote name' }) };

  async run(): Promise<{ removed: string }> {
    const { args, flags } = await this.parse(RemoteRemove);
    await this.withRepo('write', flags.repo, (repo) => removeRemote(repo, args.name));
    this.log(`removed remote ${args.name}`);
    return { removed: args.name };
  }
}
