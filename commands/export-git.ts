import { Args, Flags } from '../src/cli/flags.js';
import { exportGit, type ExportGitResult } from '../src/ops/export-git.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand, quietFlag } from '../src/cli/repo-command.js';
import { renderExportGit } from '../src/cli/render.js';

export default class ExportGit extends RepoCommand {
  static override summary = 'write the history of images as a git repository';
  static override description = `Writes every commit reachable from the revisions REV… into the git repository DIR: one git commit per viva commit (author, date and time zone, message, parents, merges), the image's files as git trees and blobs, and in every directory a '.viva-meta' file with what git cannot hold (owners, all mode bits, ns mtimes, xattrs, devices, fifos, sockets, hardlinks, holes, names git refuses). A branch becomes refs/heads/NAME, a tag refs/tags/NAME, any other revision refs/viva/commits/ID. DIR is created as a bare repository ('git clone DIR' to look at the files) when missing or empty; an existing git repository (bare or not) is added to, but a ref of its own (pointing at a commit no export wrote) is never overwritten (exit 12). A disk image is exported as its view tree (one directory per file system).

Incremental: commits exported into DIR before are not written again (the map is DIR's git directory's viva/export-map), nor are unchanged directories and files.

--manifests-only: each image becomes one file, manifest.txt, one line per entry (path, type, mode, owner, size, sha256 or target, mtime, xattrs), for reviewing image changes in any git tool; such an export cannot be imported. Formats: docs/git-interop.md.

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> export-git debian/12/base images.git',
    '<%= config.bin %> export-git web/prod web/staging review.git --manifests-only',
  ];
  static override strict = false;
  static override usage = 'export-git REV... DIR [--manifests-only] [-C <value>] [--json]';
  static override args = {
    rev: Args.string({ required: true, description: 'branch or revision to export (repeatable), then DIR' }),
    dir: Args.string({ required: true, description: 'the git repository to write' }),
  };
  static override flags = {
    quiet: quietFlag,
    'manifests-only': Flags.boolean({ summary: 'write one text manifest per image instead of its files' }),
  };

  async run(): Promise<ExportGitResult> {
    const { flags, argv } = await this.parse(ExportGit);
    const all = argv as string[];
    const dir = all[all.length - 1]!;
    const revs = all.slice(0, -1);
    const r = await this.withRepo('read', flags.repo, (repo) => exportGit(repo, { revs, dir, manifestsOnly: flags['manifests-only'], onProgress: this.progress('exporting') }));
    this.endProgress();
    this.log(renderExportGit(r));
    return r;
  }
}
