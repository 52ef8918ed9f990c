import { Args, Flags } from '../src/cli/flags.js';
import { fetch, fetchImageContent, type FetchResult } from '../src/ops/sync.js';
import { EXIT, EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand, formatBytes, plural, quietFlag } from '../src/cli/repo-command.js';
import { shortRefName } from '../src/model/ref.js';

export default class Fetch extends RepoCommand {
  static override summary = 'get the branches and tags of a remote, only the objects that are missing';
  static override description = `Branches go to refs/remotes/REMOTE/..., new tags to refs/tags/. Arguments after REMOTE limit it: NAME (a remote branch into its remote-tracking ref, a remote tag into refs/tags/; a name that is both on the remote is refused) or [+]SRC:DST (into a local ref in SRC's namespace unless DST is a full name, fast-forward only unless '+'). tags/NAME and heads/NAME name refs/tags/NAME and refs/heads/NAME. A tag that exists here and points elsewhere on the remote is not moved: it is reported as '! [rejected] ... (would clobber existing tag)' and the fetch exits 1, unless --force or +NAME. The walk stops at every object this repository already has (a present subtree is skipped whole); every received object is verified against its id before it is stored, and refs move only when all they need is stored. An interrupted fetch keeps what it stored; the next one sends only the rest.\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> fetch', '<%= config.bin %> fetch library debian/12/base', "<%= config.bin %> fetch library '+customers/acme/web:acme-web'"];
  static override strict = false;
  static override args = { remote: Args.string({ description: 'remote name or path', default: 'origin' }) };
  static override flags = {
    quiet: quietFlag,
    content: Flags.string({ summary: 'partial clone: fetch all file content of this revision' }),
    force: Flags.boolean({ char: 'f', summary: 'move local tags that point elsewhere on the remote' }),
  };

  async run(): Promise<FetchResult | { blobs: number }> {
    const { args, flags, argv } = await this.parse(Fetch);
    if (flags.content) {
      const c = await this.withRepo('write', flags.repo, (repo) => fetchImageContent(repo, flags.content!));
      this.log(`fetched the content of ${plural(c.blobs, 'file')}`);
      return c;
    }
    const specs = (argv as string[]).slice(1);
    const r = await this.withRepo('write', flags.repo, (repo) => fetch(repo, args.remote!, specs, { force: flags.force, onProgress: this.progress('receiving') }));
    this.endProgress();
    this.log(`fetched from ${r.url}: ${plural(r.objects, 'object')}, ${formatBytes(r.bytes)}${r.updated.length || r.rejected.length ? '' : ' (up to date)'}`);
    for (const u of r.updated) this.log(`  ${u.old ? `${u.old.slice(0, 12)}..${u.new.slice(0, 12)}` : ' * [new]      '}  ${shortRefName(u.ref)}`);
    // As git: a rejected tag is reported and makes the fetch fail (exit 1); the other refs were updated.
    for (const x of r.rejected) process.stderr.write(` ! [rejected]    ${shortRefName(x.remoteRef)} -> ${shortRefName(x.ref)}  (${x.reason})\n`);
    if (r.rejected.length) process.exitCode = EXIT.FAILURE;
    return r;
  }
}
