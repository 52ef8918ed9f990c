import { Args, Flags } from '../src/cli/flags.js';
import { diskLayout, ls, type LsEntry } from '../src/ops/ls.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';
import { renderDisk, renderLs } from '../src/cli/render.js';

export default class Ls extends RepoCommand {
  static override summary = 'list the entries of an image directory';
  static override pager = true;
  static override description = `SPEC is REV or REV:path (e.g. 'debian/12/base:etc/ssh'). For a disk commit (a raw or qcow2 image), 'ls REV' first prints the partition table and file systems; paths address the files of partition N as 'pN/...' (REV:p1/etc), those of an LVM logical volume as 'VG/LV/...' (REV:vg0/root/etc), or directly (REV:etc) for a bare file-system image. -l shows type and mode, owner, size (or device numbers), ns mtime, symlink targets and hardlink groups; '+' after the mode marks entries with xattrs.\n\nA name with a control character, a backslash, a double quote or bytes that are not UTF-8 is printed C-quoted as git does (\"new\\nline\", \"caf\\377\"); such a quoted path is accepted back after REV: (viva cat 'HEAD:\"caf\\377\"'). --json has the exact bytes as pathHex.\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> ls HEAD', '<%= config.bin %> ls debian/12/base:etc -l', '<%= config.bin %> ls HEAD:usr/bin -r --json', '<%= config.bin %> ls vm/web:p1/etc'];
  static override args = { spec: Args.string({ description: 'REV or REV:path', default: 'HEAD' }) };
  static override flags = {
    recursive: Flags.boolean({ char: 'r', summary: 'recurse into subdirectories' }),
    long: Flags.boolean({ char: 'l', summary: 'long listing with metadata' }),
  };

  async run(): Promise<LsEntry[]> {
    const { args, flags } = await this.parse(Ls);
    const { entries, layout } = await this.withRepo('read', flags.repo, (repo) => ({
      entries: ls(repo, { spec: args.spec, recursive: flags.recursive }),
      layout: args.spec.includes(':') ? undefined : diskLayout(repo, args.spec),
    }));
    if (layout) this.log(`${renderDisk(layout).join('\n')}\n`);
    if (entries.length) this.log(renderLs(entries, flags.long));
    return entries;
  }
}
