import { Args, Flags } from '@oclif/core';
import type { PackageOpResult } from '../src/ops/install.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { FROM_FLAG, PACKAGE_FLAGS, PACKAGE_HELP, PackageCommand } from '../src/cli/package-command.js';

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
  static override flags = {
    ...PACKAGE_FLAGS,
    from: FROM_FLAG,
    'no-scripts': Flags.boolean({ summary: 'unpack only: run no maintainer script or trigger (packages left unconfigured)' }),
  };

  async run(): Promise<PackageOpResult> {
    const { argv, flags } = await this.parse(Upgrade);
    const words = argv as string[];
    const base = flags.branches === undefined ? words[0] : undefined;
    const packages = flags.branches === undefined ? words.slice(1) : words;
    return this.runPackageOp('upgrade', flags.repo, {
      ...(base !== undefined ? { base } : {}), ...(flags.branch !== undefined ? { branch: flags.branch } : {}), ...(flags.branches !== undefined ? { branches: flags.branches } : {}),
      packages, from: flags.from ?? [], scripts: !flags['no-scripts'],
      ...(flags.message !== undefined ? { message: flags.message } : {}), ...(flags.author ? { author: flags.author } : {}),
    });
  }
}
