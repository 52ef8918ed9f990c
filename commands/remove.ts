import { Args, Flags } from '../src/cli/flags.js';
import type { PackageOpResult } from '../src/ops/install.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { PACKAGE_FLAGS, PACKAGE_HELP, PackageCommand } from '../src/cli/package-command.js';

export default class Remove extends PackageCommand {
  static override summary = 'remove packages from an image, offline, as a new commit';
  static override description = `Makes a commit on branch NEW whose image is BASE without the packages named (each must be installed), and without the installed packages that depend on them, as apt-get remove does; an Essential package goes only when named. The image's own dpkg removes them in the sandbox (prerm and postrm run), so what is left is what dpkg leaves: configuration files stay (status 'deinstall ok config-files') unless --purge.

${PACKAGE_HELP}

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> remove debian/12/tools tmux -b debian/12/tools',
    '<%= config.bin %> remove --branches "web/*" telnet --purge',
  ];
  static override strict = false;
  static override args = {
    base: Args.string({ description: 'the base image (a revision); omitted with --branches' }),
    packages: Args.string({ description: 'packages to remove' }),
  };
  static override flags = {
    ...PACKAGE_FLAGS,
    purge: Flags.boolean({ summary: 'remove configuration files too (dpkg --purge)' }),
  };

  async run(): Promise<PackageOpResult> {
    const { argv, flags } = await this.parse(Remove);
    return this.runFromArgs('remove', argv as string[], flags);
  }
}
