import { Args, Flags } from '@oclif/core';
import { parsePushSpec, push, type PushResult } from '../src/index.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand, formatBytes, plural, quietFlag } from '../src/cli/repo-command.js';
import { shortRefName } from '../src/model/ref.js';

export default class Push extends RepoCommand {
  static override summary = 'send local branches to a remote, only the objects it is missing';
  static override description = `Each SPEC is SRC[:DST]: a local revision and the remote ref. Short names resolve as git's do: a tag named by SRC updates the remote tag, a branch the remote branch (a name that is both is refused: give refs/tags/NAME or refs/heads/NAME); a short DST is the remote ref of that name, else it goes in SRC's namespace. A tag that exists on the remote is not moved without --force. A remote branch that is not an ancestor of what is pushed is refused (non-fast-forward, exit 12) unless --force; the remote update is compare-and-swap against the value listed at the start, so a concurrent push makes this one fail. --delete removes the named remote branches or tags.\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> push library debian/12/base', '<%= config.bin %> push library HEAD:customers/acme/web --force', '<%= config.bin %> push library --delete old/branch', '<%= config.bin %> push library v1.0'];
  static override strict = false;
  static override args = { remote: Args.string({ required: true, description: 'remote name or path' }) };
  static override flags = {
    quiet: quietFlag,
    force: Flags.boolean({ char: 'f', summary: 'allow non-fast-forward updates' }),
    delete: Flags.boolean({ char: 'd', summary: 'delete the named remote branches' }),
    'token-file': Flags.string({ summary: 'file holding the push token (default: the remote\'s, or VIVA_TOKEN)' }),
  };

  async run(): Promise<PushResult> {
    const { args, flags, argv } = await this.parse(Push);
    const specs = (argv as string[]).slice(1).map((s) => parsePushSpec(s, flags.delete));
    const r = await this.withRepo('write', flags.repo, (repo) => push(repo, args.remote, specs, { force: flags.force, onProgress: this.progress('sending'), ...(flags['token-file'] ? { tokenFile: flags['token-file'] } : {}) }));
    this.endProgress();
    this.log(`pushed to ${r.url}: ${plural(r.objects, 'object')}, ${formatBytes(r.bytes)}${r.updated.length ? '' : ' (everything up to date)'}`);
    for (const u of r.updated) this.log(`  ${u.new === null ? ' - [deleted]   ' : u.old ? `${u.old.slice(0, 12)}${u.forced ? '...' : '..'}${u.new.slice(0, 12)}` : ' * [new]      '}  ${shortRefName(u.ref)}${u.forced ? ' (forced)' : ''}`);
    return r;
  }
}
