import { Args, Flags } from '../src/cli/flags.js';
import { UsageError } from '../src/errors.js';
import { type MergeOpResult, type MergeOptions, merge, mergeContinue } from '../src/ops/merge.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';
import { renderMerge } from '../src/cli/render.js';

export default class Merge extends RepoCommand {
  static override summary = 'merge image B into image A (three-way, aware of packages and accounts)';
  static override description = `Merges B into A against their merge base (viva merge-base: the best common ancestor, or for two clones of one base the base they were made from) and commits the result on A's branch (or -b NEW) with parents A and B, as git merge does. When A already holds B nothing happens ("Already up to date"); when B holds A the branch fast-forwards (--no-ff makes a merge commit anyway).

Per path: a change on one side is taken; the same change on both is taken once; identical directories are not read. Text files both sides changed merge line by line; overlapping changes are conflicts. Mode, owner, xattrs and mtime merge field by field, apart from the content: both sides changing the mode differently is a conflict, one changing the mode and the other the content is not. Add/add with different content, modify/delete and type changes are conflicts. Some files merge by what they mean (docs/merge.md): dpkg's status per package (two sides installing different packages merge; one package at two versions is a conflict), apt's extended_states, dpkg's package files, trigger interests, /etc/passwd, group, shadow, gshadow, subuid, subgid per record (the same id for two names is a conflict; group members merge as sets), /etc/hosts per address, /etc/fstab per mount point, dpkg and apt logs (both sides' appended lines).

Disk images merge when both have the same partition layout: each file system's tree is merged and patched into A's disk.

On a conflict nothing moves: the conflicts are listed (kind and path; --json as data) and the exit status is 1. Resolve them with --resolve PATH=ours|theirs|base|@HOSTFILE (repeatable), or check the merged tree out with --checkout DIR (conflict markers in text files, PATH~theirs and PATH~base beside the others), fix it there, and finish with 'viva merge --continue DIR'. Images with no common ancestor are refused unless --allow-unrelated.

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> merge web/base sec/hardened',
    '<%= config.bin %> merge team-a/img team-b/img -b team/combined --resolve etc/motd=theirs',
    '<%= config.bin %> merge web/01 web/02 -b web/both --checkout /tmp/m; vi /tmp/m/etc/app.conf; <%= config.bin %> merge --continue /tmp/m',
  ];
  static override args = {
    a: Args.string({ description: 'ours: the image merged into (its branch is the default destination)' }),
    b: Args.string({ description: 'theirs: the image merged in' }),
  };
  static override flags = {
    branch: Flags.string({ char: 'b', summary: "destination branch: A's own (default, when A is a branch) or a new one" }),
    message: Flags.string({ char: 'm', summary: "commit message (default: 'merge B into A')" }),
    author: Flags.string({ summary: "author as 'Name <email>' (default: $VIVA_AUTHOR or user@host)" }),
    resolve: Flags.string({ summary: 'resolve a conflict at PATH: ours, theirs, base, or @HOSTFILE (its content)', multiple: true, helpValue: 'PATH=HOW' }),
    checkout: Flags.string({ summary: 'on conflicts, write the merged tree here to resolve by hand (then --continue DIR)', helpValue: 'DIR' }),
    continue: Flags.string({ summary: 'commit a merge checked out with --checkout, once its conflicts are resolved', helpValue: 'DIR' }),
    'allow-unrelated': Flags.boolean({ summary: 'merge images with no common ancestor, against an empty image' }),
    'no-ff': Flags.boolean({ summary: 'make a merge commit even when a fast-forward would do' }),
  };

  async run(): Promise<MergeOpResult> {
    const { args, flags } = await this.parse(Merge);
    const id = { ...(flags.message !== undefined ? { message: flags.message } : {}), ...(flags.author ? { author: flags.author } : {}) };
    if (flags.continue !== undefined) {
      if (args.a !== undefined || flags.resolve || flags.checkout !== undefined) throw new UsageError('--continue DIR takes no images, --resolve or --checkout: the merge was set up when it was checked out');
      const r = await this.withRepo('write', flags.repo, (repo) => mergeContinue(repo, { dir: flags.continue!, ...id }));
      this.log(renderMerge(r));
      return r;
    }
    if (args.a === undefined || args.b === undefined) throw new UsageError('give A and B (or --continue DIR)');
    const resolve: NonNullable<MergeOptions['resolve']> = (flags.resolve ?? []).map((s) => {
      const i = s.lastIndexOf('=');
      const how = i < 0 ? '' : s.slice(i + 1);
      const p = s.slice(0, i);
      if (i <= 0 || !how) throw new UsageError(`--resolve '${s}': give PATH=ours, PATH=theirs, PATH=base or PATH=@HOSTFILE`);
      if (how.startsWith('@')) return { path: p, host: how.slice(1) };
      if (how !== 'ours' && how !== 'theirs' && how !== 'base') throw new UsageError(`--resolve '${s}': '${how}' is not ours, theirs, base or @HOSTFILE`);
      return { path: p, how };
    });
    const r = await this.withRepo('write', flags.repo, (repo) => merge(repo, {
      a: args.a!, b: args.b!, resolve, ...id, ...(flags.branch !== undefined ? { branch: flags.branch } : {}),
      ...(flags.checkout !== undefined ? { checkout: flags.checkout } : {}), allowUnrelated: flags['allow-unrelated'], noFf: flags['no-ff'],
    }));
    this.log(renderMerge(r));
    if (r.status === 'conflicts') process.exitCode = 1;
    return r;
  }
}
