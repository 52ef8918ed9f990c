import { Args } from '../src/cli/flags.js';
import type { PackageOpResult } from '../src/ops/install.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { INSTALL_FLAGS, PACKAGE_HELP, PackageCommand } from '../src/cli/package-command.js';

export default class Upgrade extends PackageCommand {
  static override summary = 'upgrade packages of an image to the newest versions the sources have, as a new commit';
  static override description = `Makes a commit on branch NEW whose image is BASE with its packages upgraded: every installed package a source has a newer version of, or only the PKGs named (each must be installed), with the dependencies the new versions need (apt-get upgrade / install --only-upgrade). Scripts run as dpkg runs them for an upgrade (the old prerm and postrm, the new preinst and postinst).

${PACKAGE_HELP}

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> upgrade debian/12/base -b debian/12/base --from "http://deb.debian.org/debian-security bookworm-security main"',
    '<%= config.bin %> upgrade debian/12/base openssl -b debian/12/patched --from ./updates',
    '<%= config.bin %> upgrade --branches "web/*" --from ./updates --json',
  ];
  static override strict = false;
  static override args = {
    base: Args.string({ description: 'the base image (a revision); omitted with --branches' }),
    packages: Args.string({ description: 'packages to upgrade (default: every upgradable one)' }),
  };
  static override flags = INSTALL_FLAGS;

  async run(): Promise<PackageOpResult> {
    const { argv, flags } = await this.parse(Upgrade);
    return this.runFromArgs('upgrade', argv as string[], flags);
  }
}
