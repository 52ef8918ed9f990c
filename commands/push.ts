import { Args, Flags } from '../src/cli/flags.js';
import { defaultRemote, parsePushSpec, push, type PushResult } from '../src/ops/sync.js';
import { trackingMessage } from '../src/ops/upstream.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand, formatBytes, plural, quietFlag } from '../src/cli/repo-command.js';
import { shortRefName } from '../src/model/ref.js';

export default class Push extends RepoCommand {
  static override summary = 'send local branches to a remote, only the objects it is missing';
  static override description = `Each SPEC is SRC[:DST]: a local revision and the remote ref. Short names resolve as git's do: a tag named by SRC updates the remote tag, a branch the remote branch (a name that is both is refused: give refs/tags/NAME or refs/heads/NAME); a short DST is the remote ref of that name, else it goes in SRC's namespace. A tag that exists on the remote is not moved without --force. A remote branch that is not an ancestor of what is pushed is refused (non-fast-forward, exit 12) unless --force; the remote update is compare-and-swap against the value listed at the start, so a concurrent push makes this one fail. --delete removes the named remote branches or tags.

Without a SPEC, the current branch is pushed as git's push.default=simple does: to its upstream branch (which must have the same name) when REMOTE is the branch's remote, else to the branch of the same name on REMOTE; a branch without an upstream is refused (exit 2, "has no upstream branch") when pushing to origin or its remote, unless -u. Without REMOTE, the current branch's upstream remote, else origin. -u (--set-upstream) makes each local branch pushed to a remote branch track it (refs/remotes/REMOTE/x; 'viva branch -vv' shows it); 'viva push -u origin' pushes the current branch under its own name and sets that.\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> push library debian/12/base', '<%= config.bin %> push -u origin customers/acme/web', '<%= config.bin %> push', '<%= config.bin %> push library HEAD:customers/acme/web --force', '<%= config.bin %> push library --delete old/branch', '<%= config.bin %> push library v1.0'];
  static override strict = false;
  static override args = { remote: Args.string({ description: 'remote name or path (default: the upstream remote of the current branch, else origin)' }) };
  static override flags = {
    quiet: quietFlag,
    force: Flags.boolean({ char: 'f', summary: 'allow non-fast-forward updates' }),
    delete: Flags.boolean({ char: 'd', summary: 'delete the named remote branches' }),
    'set-upstream': Flags.boolean({ char: 'u', summary: 'make each pushed branch track the remote branch it was pushed to' }),
    'token-file': Flags.string({ summary: 'file holding the push token (default: the remote\'s, or VIVA_TOKEN)' }),
  };

  async run(): Promise<PushResult> {
    const { args, flags, argv } = await this.parse(Push);
    const specs = (argv as string[]).slice(1).map((s) => parsePushSpec(s, flags.delete));
    const r = await this.withRepo('write', flags.repo, (repo) => push(repo, args.remote ?? defaultRemote(repo), specs, {
      force: flags.force, setUpstream: flags['set-upstream'], onProgress: this.progress('sending'), ...(flags['token-file'] ? { tokenFile: flags['token-file'] } : {}),
    }));
    this.endProgress();
    this.log(`pushed to ${r.url}: ${plural(r.objects, 'object')}, ${formatBytes(r.bytes)}${r.updated.length ? '' : ' (everything up to date)'}`);
    for (const u of r.updated) this.log(`  ${u.new === null ? ' - [deleted]   ' : u.old ? `${u.old.slice(0, 12)}${u.forced ? '...' : '..'}${u.new.slice(0, 12)}` : ' * [new]      '}  ${shortRefName(u.ref)}${u.forced ? ' (forced)' : ''}`);
    for (const t of r.tracking ?? []) this.log(trackingMessage(t));
    return r;
  }
}
