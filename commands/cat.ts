import { Args } from '@oclif/core';
import { once } from 'node:events';
import { cat } from '../src/index.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';

export default class Cat extends RepoCommand {
  static override summary = 'write the content of one image file to stdout';
  static override description = `SPEC is REV:path. Content is streamed chunk by chunk; sparse holes come out as zeros; a symlink prints its target.\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> cat debian/12/base:etc/os-release', '<%= config.bin %> cat HEAD~1:etc/passwd | diff - /etc/passwd'];
  static override args = { spec: Args.string({ required: true, description: 'REV:path of a file' }) };
  static override enableJsonFlag = false;

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Cat);
    await this.withRepo('read', flags.repo, async (repo) => {
      for await (const piece of cat(repo, args.spec)) {
        if (!process.stdout.write(piece)) await once(process.stdout, 'drain');
      }
    });
  }
}
