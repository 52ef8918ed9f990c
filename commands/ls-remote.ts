import { Args } from '../src/cli/flags.js';
import { lsRemote } from '../src/ops/sync.js';
import { Repository } from '../src/store/repository.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';

export default class LsRemote extends RepoCommand {
  static override summary = 'list the refs of a remote repository';
  static override description = `URL is a path, or the name of a remote of the current repository.\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> ls-remote /srv/images', '<%= config.bin %> ls-remote origin'];
  static override args = { url: Args.string({ required: true, description: 'remote name or path' }) };

  async run(): Promise<{ url: string; head?: string; refs: Array<{ ref: string; oid: string }> }> {
    const { args, flags } = await this.parse(LsRemote);
    let repo: Repository | undefined;
    try { repo = Repository.open(flags.repo, 'read'); } catch { repo = undefined; }
    try {
      const r = await lsRemote(repo, args.url);
      const lines = r.refs.map((x) => `${x.oid}\t${x.ref}`);
      if (r.head) lines.unshift(`ref: ${r.head}\tHEAD`);
      if (lines.length) this.log(lines.join('\n'));
      return r;
    } finally {
      await repo?.close();
    }
  }
}
