import { Args, Flags } from '../src/cli/flags.js';
import { importGit, type ImportGitResult } from '../src/ops/import-git.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand, quietFlag } from '../src/cli/repo-command.js';
import { renderImportGit } from '../src/cli/render.js';

export default class ImportGit extends RepoCommand {
  static override summary = 'read a git repository written by export-git back into images';
  static override description = `Reads the history of REF (a branch, tag or commit of the git repository DIR, written by 'viva export-git') into viva: the '.viva-meta' files give back every owner, mode, xattr, device, hardlink and hole, so the trees are the exported ones (same tree ids), and a commit whose tree and parents did not change in git is the exported commit itself (same id). Commits made in git become new commits with their author, date and message; files added in git without a '.viva-meta' line get mode 0644 (0755 when executable), owner 0:0 and the commit's time. The viva branch (-b, default REF's name) is created, or fast-forwarded when it is part of the imported history.

A disk image was exported as its file trees: import gives a tree commit (with a warning). A --manifests-only export holds no file contents and is refused (exit 13); so is a malformed '.viva-meta' (the message names the file, the commit and the line). Nothing is written before every sidecar of the history is read and checked.

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> import-git images.git debian/12/base',
    '<%= config.bin %> import-git checkout-of-images/ main -b debian/12/edited',
  ];
  static override args = {
    dir: Args.string({ required: true, description: 'git repository written by export-git' }),
    ref: Args.string({ required: true, description: 'git branch, tag or commit to import' }),
  };
  static override flags = {
    quiet: quietFlag,
    branch: Flags.string({ char: 'b', summary: 'viva branch to create or fast-forward (default: the git branch name)' }),
  };

  async run(): Promise<ImportGitResult> {
    const { args, flags } = await this.parse(ImportGit);
    const r = await this.withRepo('write', flags.repo, (repo) => importGit(repo, { dir: args.dir, ref: args.ref, onProgress: this.progress('importing'), ...(flags.branch ? { branch: flags.branch } : {}) }));
    this.endProgress();
    for (const w of r.warnings) this.warnLine(w);
    this.log(renderImportGit(r));
    return r;
  }
}
