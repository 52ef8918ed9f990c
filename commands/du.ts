import { Args, Flags } from '../src/cli/flags.js';
import { quoteResultPath } from '../src/model/quote.js';
import { du, type DuEntry } from '../src/ops/stats.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand, formatBytes } from '../src/cli/repo-command.js';

export default class Du extends RepoCommand {
  static override summary = 'logical size of an image directory and its subdirectories';
  static override pager = true;
  static override description = `Like du --apparent-size: file sizes (holes included) summed per directory, from the manifest. --depth N lists subdirectories N levels down (default 1; 0: the total only), largest last.

${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> du debian/12/base', '<%= config.bin %> du debian/12/base:usr --depth 2 -b'];
  static override args = { spec: Args.string({ description: 'REV or REV:path', default: 'HEAD' }) };
  static override flags = {
    depth: Flags.integer({ char: 'd', summary: 'levels of subdirectories to list', default: 1, min: 0 }),
    bytes: Flags.boolean({ char: 'b', summary: 'exact byte counts' }),
  };

  async run(): Promise<DuEntry[]> {
    const { args, flags } = await this.parse(Du);
    const out = await this.withRepo('read', flags.repo, (repo) => du(repo, args.spec, flags.depth));
    this.log(out.map((e) => `${(flags.bytes ? String(e.bytes) : formatBytes(e.bytes)).padStart(flags.bytes ? 14 : 10)}  ${e.path === '.' ? '.' : quoteResultPath(e.path, e.pathHex)}`).join('\n'));
    return out;
  }
}
