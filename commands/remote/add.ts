import { Args, Flags } from '../../src/cli/flags.js';
import { addRemote, type RemoteConfig } from '../../src/ops/sync.js';
import { EXIT_STATUS_HELP } from '../../src/cli/exit-codes.js';
import { RepoCommand } from '../../src/cli/repo-command.js';

export default class RemoteAdd extends RepoCommand {
  static override summary = 'add a remote repository by name';
  static override description = `URL is a path to another repository (stored absolute) or the http(s):// URL of a 'viva serve'. Its branches are fetched into refs/remotes/NAME/. --token-file names the file the push token is read from (VIVA_TOKEN overrides it).\n\n${EXIT_STATUS_HELP}`;
  static override flags = { 'token-file': Flags.string({ summary: 'file holding the token for pushes to this remote' }) };
  static override examples = ['<%= config.bin %> remote add library /srv/images', '<%= config.bin %> remote add central https://images.example.com:8443/ --token-file ~/.viva-token'];
  static override args = {
    name: Args.string({ required: true, description: 'remote name (one component)' }),
    url: Args.string({ required: true, description: 'path or http(s):// URL of the remote repository' }),
  };

  async run(): Promise<RemoteConfig> {
    const { args, flags } = await this.parse(RemoteAdd);
    const r = await this.withRepo('write', flags.repo, (repo) => addRemote(repo, args.name, args.url, flags['token-file'] ? { tokenFile: flags['token-file'] } : {}));
    this.log(`remote ${r.name}: ${r.url}`);
    return r;
  }
}
