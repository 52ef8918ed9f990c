import { Args } from '../src/cli/flags.js';
import { inventoriesOf } from '../src/ops/image-packages.js';
import { type Inventory } from '../src/packages/inventory.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { renderPackages } from '../src/cli/render.js';
import { RepoCommand, plural } from '../src/cli/repo-command.js';

export default class Packages extends RepoCommand {
  static override summary = 'list the packages installed in an image';
  static override pager = true;
  static override description = `Read from the image's own package database: Debian's var/lib/dpkg/status (installed packages only), Alpine's lib/apk/db/installed, or RPM's var/lib/rpm/rpmdb.sqlite (read with sql.js). SPEC is REV, or REV:path for a directory inside an image. For a disk commit every file system's database is read (vm/web, or one partition: vm/web:p1), each listed under a header naming its partition ('# p1: var/lib/dpkg/status (deb, 312 packages)', '1 package' for one); --json gives the inventory with its partition, or {inventories: [...]} when several file systems have one. Malformed records are skipped with a warning naming the file and line.

${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> packages debian/12/base', '<%= config.bin %> packages vm/web:p1 --json'];
  static override args = { spec: Args.string({ description: 'REV or REV:path', default: 'HEAD' }) };

  async run(): Promise<Inventory | { inventories: Inventory[] } | { format: null; packages: [] }> {
    const { args, flags } = await this.parse(Packages);
    const invs = await this.withRepo('read', flags.repo, (repo) => inventoriesOf(repo, args.spec));
    if (!invs.length) {
      this.warnLine(`no package database (var/lib/dpkg/status, lib/apk/db/installed, var/lib/rpm/rpmdb.sqlite) in ${args.spec}`);
      return { format: null, packages: [] };
    }
    for (const inv of invs) for (const p of inv.problems) this.warnLine(`${inv.partition ? `${inv.partition}/` : ''}${p.file}:${p.line}: ${p.message}`);
    if (!this.jsonEnabled()) {
      const blocks = invs.map((inv) => {
        const rows = renderPackages(inv.packages);
        // Which file system of a disk it came from, as a header.
        return [...(inv.partition ? [`# ${inv.partition}: ${inv.file} (${inv.format}, ${plural(inv.packages.length, 'package')})`] : []), ...rows].join('\n');
      });
      this.log(blocks.join('\n\n'));
    }
    return invs.length === 1 ? invs[0]! : { inventories: invs };
  }
}
