import { Args } from '@oclif/core';
import { inventoryOf, type Inventory } from '../src/index.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';

export default class Packages extends RepoCommand {
  static override summary = 'list the packages installed in an image';
  static override description = `Read from the image's own package database: Debian's var/lib/dpkg/status (installed packages only), Alpine's lib/apk/db/installed, or RPM's var/lib/rpm/rpmdb.sqlite (read with sql.js). SPEC is REV, or REV:path for a directory inside an image (a disk partition: vm/web:p1). Malformed records are skipped with a warning naming the file and line.

${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> packages debian/12/base', '<%= config.bin %> packages vm/web:p1 --json'];
  static override args = { spec: Args.string({ description: 'REV or REV:path', default: 'HEAD' }) };

  async run(): Promise<Inventory | { format: null; packages: [] }> {
    const { args, flags } = await this.parse(Packages);
    const inv = await this.withRepo('read', flags.repo, (repo) => inventoryOf(repo, args.spec));
    if (!inv) {
      this.warn(`no package database (var/lib/dpkg/status, lib/apk/db/installed, var/lib/rpm/rpmdb.sqlite) in ${args.spec}`);
      return { format: null, packages: [] };
    }
    for (const p of inv.problems) this.warn(`${p.file}:${p.line}: ${p.message}`);
    if (!this.jsonEnabled()) {
      const w = Math.max(0, ...inv.packages.map((p) => p.name.length));
      const v = Math.max(0, ...inv.packages.map((p) => p.version.length));
      this.log(inv.packages.map((p) => `${p.name.padEnd(w)}  ${p.version.padEnd(v)}  ${p.arch ?? ''}`.trimEnd()).join('\n'));
    }
    return inv;
  }
}
