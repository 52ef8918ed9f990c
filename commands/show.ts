import { Args } from '@oclif/core';
import { show, type ShowResult } from '../src/index.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';
import { renderShow } from '../src/cli/render.js';

export default class Show extends RepoCommand {
  static override summary = 'show one commit: metadata, labels, source and root tree';
  static override description = `--json includes "tree" (the root tree id) and the root directory's metadata.\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> show', '<%= config.bin %> show debian/12/base~1 --json'];
  static override args = { rev: Args.string({ description: 'revision', default: 'HEAD' }) };

  async run(): Promise<ShowResult> {
    const { args, flags } = await this.parse(Show);
    const r = await this.withRepo('read', flags.repo, (repo) => show(repo, args.rev));
    this.log(renderShow(r));
    return r;
  }
}
