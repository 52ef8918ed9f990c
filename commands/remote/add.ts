import { Args } from '@oclif/core';
import { addRemote, type RemoteConfig } from '../../src/index.js';
import { EXIT_STATUS_HELP } from '../../src/cli/exit-codes.js';
import { RepoCommand } from '../../src/cli/repo-command.js';

export default class RemoteAdd extends RepoCommand {
  static override summary = 'add a remote repository by name';
  static override description = `URL is a path to another repository (stored absolute). Its branches are fetched into refs/remotes/NAME/.\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> remote add library /srv/images'];
  static override args = {
    name: Args.string({ required: true, description: 'remote name (one component)' }),
    url: Args.string({ required: true, description: 'path of the remote repository' }),
  };

  async run(): Promise<RemoteConfig> {
    const { args, flags } = await this.parse(RemoteAdd);
    const r = await this.withRepo('write', flags.repo, (repo) => addRemote(repo, args.name, args.url));
    this.log(`remote ${r.name}: ${r.url}`);
    return r;
  }
}
