import { Args, Flags } from '@oclif/core';
import { init, type InitResult } from '../src/ops/init.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';

export default class Init extends RepoCommand {
  static override summary = 'create an empty image repository';
  static override description = `Creates DIR/.viva (an LMDB environment holding objects, refs, reflogs and indexes). HEAD starts on the unborn branch 'main'.\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> init /srv/images', '<%= config.bin %> init .'];
  static override args = { dir: Args.string({ description: 'directory to create the repository in', default: '.' }) };
  static override flags = { 'initial-branch': Flags.string({ char: 'b', summary: 'name of the first branch', default: 'main' }) };

  async run(): Promise<InitResult> {
    const { args, flags } = await this.parse(Init);
    const r = await init(args.dir, { defaultBranch: flags['initial-branch'] });
    this.log(`Initialized empty viva repository in ${r.dataDir}`);
    return r;
  }
}
