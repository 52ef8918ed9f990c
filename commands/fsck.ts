import { Flags } from '../src/cli/flags.js';
import { fsck, type FsckResult } from '../src/ops/fsck.js';
import { EXIT, EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand, quietFlag } from '../src/cli/repo-command.js';
import { renderFsck } from '../src/cli/render.js';

export default class Fsck extends RepoCommand {
  static override summary = 'verify the repository: rehash every object, check reachability and tree invariants';
  static override description = `Every chunk, blob, tree and commit is rehashed against its id; every object reachable from refs, HEAD and reflogs must be present; trees must be well-formed (sorted, valid names, consistent hardlink groups, sane holes). Prints each problem as 'KIND ID: problem' and exits 1 when there is any.\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> fsck', '<%= config.bin %> fsck --connectivity-only --json'];
  static override flags = {
    quiet: quietFlag, 'connectivity-only': Flags.boolean({ summary: 'skip rehashing file content (structure and reachability only)' }) };

  async run(): Promise<FsckResult> {
    const { flags } = await this.parse(Fsck);
    const r = await this.withRepo('read', flags.repo, (repo) => fsck(repo, { connectivityOnly: flags['connectivity-only'], onProgress: this.progress() }));
    this.endProgress();
    // --quiet drops the summary line, never a problem found.
    if (this.quiet) for (const p of r.problems) process.stdout.write(`${p.kind} ${p.oid}: ${p.problem}\n`);
    else this.log(renderFsck(r));
    if (!r.ok) process.exitCode = EXIT.FAILURE;
    return r;
  }
}
