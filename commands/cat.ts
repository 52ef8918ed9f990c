import { Args } from '../src/cli/flags.js';
import { once } from 'node:events';
import { cat, catJson, type CatResult } from '../src/ops/ls.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';

export default class Cat extends RepoCommand {
  static override summary = 'write the content of one image file to stdout';
  static override description = `SPEC is REV:path. Content is streamed chunk by chunk; sparse holes come out as zeros; a symlink prints its target.\n\nWith --json: one object with the entry's metadata (as ls --json: path, type, mode, uid, gid, size, mtimeNs, oid, ...) plus encoding ('utf8' when the content is valid UTF-8, else 'base64') and content; files above 64 MiB are refused (exit 2).\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> cat debian/12/base:etc/os-release', '<%= config.bin %> cat HEAD~1:etc/passwd | diff - /etc/passwd', '<%= config.bin %> cat HEAD:etc/hostname --json'];
  static override args = { spec: Args.string({ required: true, description: 'REV:path of a file' }) };
  static override enableJsonFlag = true;

  async run(): Promise<CatResult | void> {
    const { args, flags } = await this.parse(Cat);
    if (this.jsonEnabled()) return this.withRepo('read', flags.repo, (repo) => catJson(repo, args.spec));
    await this.withRepo('read', flags.repo, async (repo) => {
      for await (const piece of cat(repo, args.spec)) {
        if (!process.stdout.write(piece)) await once(process.stdout, 'drain');
      }
    });
  }
}
