import { Args } from '../src/cli/flags.js';
import type { PackageOpResult } from '../src/ops/install.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { INSTALL_FLAGS, PACKAGE_HELP, PackageCommand } from '../src/cli/package-command.js';

export default class Install extends PackageCommand {
  static override summary = 'install Debian packages into an image, offline, as a new commit';
  static override description = `Makes a commit on branch NEW whose image is BASE with the packages installed, as apt-get install would leave it, without booting or checking out the image by hand. PKG is a package name, name=VERSION, or the path of a .deb file. Dependencies come from the --from sources.

With --no-scripts the packages are only unpacked (dpkg status 'install ok unpacked', conffiles as .dpkg-new), as dpkg --unpack leaves them; the derivation records it, and a first boot finishes with 'dpkg --configure -a'.

${PACKAGE_HELP}

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> install debian/12/base htop tmux -b debian/12/tools --from /var/cache/apt/archives',
    '<%= config.bin %> install debian/12/base ./myapp_1.2_amd64.deb -b apps/myapp --from "http://deb.debian.org/debian bookworm main"',
    '<%= config.bin %> install --branches "web/*" nginx --from ./mirror',
  ];
  static override strict = false;
  static override args = {
    base: Args.string({ description: 'the base image (a revision); omitted with --branches' }),
    packages: Args.string({ description: 'package names (name or name=VERSION) or .deb files' }),
  };
  static override flags = INSTALL_FLAGS;

  async run(): Promise<PackageOpResult> {
    const { argv, flags } = await this.parse(Install);
    return this.runFromArgs('install', argv as string[], flags);
  }
}
