/** What `viva install`, `upgrade` and `remove` share: their flags, the run, and the report. */
import { Flags } from './flags.js';
import type { PackageOp } from '../model/derivation.js';
import { type PackageOpOptions, type PackageOpResult, packageOp } from '../ops/install.js';
import { RepoCommand, outputTail } from './repo-command.js';
import { renderPackageOp } from './render.js';

export const PACKAGE_FLAGS = {
  branch: Flags.string({ char: 'b', summary: 'branch of the new image (created, or advanced: its head becomes the parent)' }),
  branches: Flags.string({ summary: 'fleet form: every branch matching GLOB gets the same request, each a commit on itself', helpValue: 'GLOB' }),
  message: Flags.string({ char: 'm', summary: "commit message (default: 'install PKG… (+N dependencies)')" }),
  author: Flags.string({ summary: "author as 'Name <email>' (default: $VIVA_AUTHOR or user@host)" }),
};

export const FROM_FLAG = Flags.string({
  summary: 'package source: a directory of .deb files, a Debian repository (DIR or URL, optionally "URL SUITE COMPONENT…"), a flat repository with a Packages index; repeatable',
  multiple: true, helpValue: 'SOURCE',
});

/** install and upgrade: where packages come from, and whether scripts run. */
export const INSTALL_FLAGS = {
  ...PACKAGE_FLAGS,
  from: FROM_FLAG,
  'no-scripts': Flags.boolean({ summary: 'unpack only: run no maintainer script or trigger (packages left unconfigured)' }),
};

export const PACKAGE_HELP = `Resolution: against the image's own dpkg database, as apt-get would choose (Depends, Pre-Depends, versions, Provides, alternatives, Conflicts/Breaks/Replaces, Essential; Recommends are not installed, as with --no-install-recommends). A request that cannot be satisfied names the package and relation (exit 18); nothing is written.

Unpacking is done by viva at tree level, as dpkg --unpack leaves a root (the status file, info/PKG.list, md5sums, conffiles, diversions); each .deb is read once and kept in the repository by its sha256, so the same package costs nothing the second time, in any image. Maintainer scripts, triggers and the configure step run the image's own dpkg in a sandbox: a chroot into an overlay of a checkout of the base kept in .viva/cache (one per base image, shared by its clones), with /proc, /sys and /dev, no network, in its own namespaces (needs root and overlayfs). Conffiles follow dpkg --force-confdef --force-confold: a locally changed one is kept and the new one left beside it as .dpkg-dist. A failing script prints its output's tail (exit 19); nothing is committed and the sandbox is removed.

Memoization: the same request (same packages by sha256, same options) on the same base tree returns the recorded result at once. The commit carries a derivation record (show --derivation), so 'viva rebuild' replays the request on a newer base from the recorded packages alone.

The fleet form (--branches GLOB) applies the request to each matching branch in turn, each on its own: a failure is reported and the others go on (exit 1 if any failed); a branch moves only when its own result is complete.`;

/** The flags every package command parses (see PACKAGE_FLAGS). */
interface PackageFlagValues {
  repo?: string;
  branch?: string;
  branches?: string;
  message?: string;
  author?: string;
  from?: string[];
  'no-scripts'?: boolean;
  purge?: boolean;
}

/** A command that runs a package op and prints its report; exit 1 when a branch of a fleet failed. */
export abstract class PackageCommand extends RepoCommand {
  /** `BASE PKG…` (or `PKG…` with --branches) and the flags, as the op takes them. */
  protected async runFromArgs(op: PackageOp, words: string[], flags: PackageFlagValues): Promise<PackageOpResult> {
    const fleet = flags.branches !== undefined;
    const base = fleet ? undefined : words[0];
    return this.runPackageOp(op, flags.repo, {
      ...(base !== undefined ? { base } : {}), ...(flags.branch !== undefined ? { branch: flags.branch } : {}), ...(fleet ? { branches: flags.branches! } : {}),
      packages: fleet ? words : words.slice(1), from: flags.from ?? [], scripts: !flags['no-scripts'], purge: flags.purge === true,
      ...(flags.message !== undefined ? { message: flags.message } : {}), ...(flags.author ? { author: flags.author } : {}),
    });
  }

  protected async runPackageOp(op: PackageOp, repoFlag: string | undefined, options: Omit<PackageOpOptions, 'op'>): Promise<PackageOpResult> {
    const result = await this.withRepo('write', repoFlag, (repo) => packageOp(repo, { op, ...options }));
    this.log(renderPackageOp(result));
    for (const i of result.items) {
      if (!i.error) continue;
      process.stderr.write(`error: ${i.error.message}\n`);
      if (i.error.output) process.stderr.write(outputTail(i.error.output));
    }
    if (result.failed > 0) process.exitCode = 1;
    return result;
  }
}
