import { Args, Flags } from '../src/cli/flags.js';
import { clone, defaultCloneDir, type CloneResult } from '../src/ops/sync.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand, formatBytes, plural, quietFlag } from '../src/cli/repo-command.js';

export default class Clone extends RepoCommand {
  static override summary = 'copy a repository: a new one with remote origin, all its branches and tags';
  static override description = `DIR must not hold a repository yet. A clone that fails (remote missing or unreachable, no such --branch, transfer cut, bad data) or is interrupted removes what it created, as git does — DIR itself, or its .viva if DIR existed — so the same command can be run again. With --filter manifests only commits, trees and disk objects are copied (a partial clone): file content is fetched from origin the first time a command needs it (checkout, cat, diff -p, grep, package queries), or with 'viva fetch --content REV'. The remote's branches become refs/remotes/origin/..., and its HEAD branch (or --branch) a local branch that HEAD points at and that tracks origin's branch (its upstream). When the remote's HEAD names no branch that exists, no local branch is made and HEAD stays on that (unborn) branch name, with git's warning: 'You appear to have cloned an empty repository.' or 'remote HEAD refers to nonexistent ref, unable to checkout'. Without DIR, the directory is named after the last component of URL, without a trailing '/' or '.viva' (/srv/images → images; https://host/repos/web → web).\n\n${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> clone /srv/images', '<%= config.bin %> clone /srv/images images', '<%= config.bin %> clone /srv/images work --branch customers/acme/web'];
  static override args = {
    url: Args.string({ required: true, description: 'path or http(s):// URL of the repository to clone' }),
    dir: Args.string({ description: 'new repository directory (default: named after URL)' }),
  };
  static override flags = {
    quiet: quietFlag,
    branch: Flags.string({ char: 'b', summary: 'branch to check out instead of the remote HEAD' }),
    'token-file': Flags.string({ summary: 'token file remembered for the remote origin' }),
    filter: Flags.string({ summary: 'manifests: commits and trees only; file content is fetched on demand', options: ['manifests'] }),
  };

  async run(): Promise<CloneResult> {
    const { args, flags } = await this.parse(Clone);
    // Interrupted (Ctrl-C, kill): the clone stops and removes what it created, then exits 130; a second signal kills.
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let r: CloneResult;
    try {
      r = await clone(args.url, args.dir ?? defaultCloneDir(args.url), { signal: stop.signal, onProgress: this.progress('receiving'), ...(flags.branch ? { branch: flags.branch } : {}), ...(flags['token-file'] ? { tokenFile: flags['token-file'] } : {}), ...(flags.filter ? { filter: 'manifests' as const } : {}) });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    this.endProgress();
    for (const w of r.warnings) this.warnLine(w);
    this.log(`cloned ${r.url} into ${r.dir}: ${plural(r.objects, 'object')}, ${formatBytes(r.bytes)}, ${plural(r.updated.length, 'ref')}${r.branch ? `; on branch ${r.branch}` : ''}`);
    return r;
  }
}
