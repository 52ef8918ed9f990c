import { Args, Flags } from '../src/cli/flags.js';
import { UsageError } from '../src/errors.js';
import { parseSize } from '../src/cli/argv.js';
import { isHostArgument, readHostSide, type HostSide } from '../src/ops/diff-source.js';
import { diff, patchFor, resolveDiffSides, type DiffEntry, type DiffResult } from '../src/ops/diff.js';
import type { PackageDiff } from '../src/ops/image-packages.js';
import { EXIT, EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';
import { renderDiff, renderDiffStat, renderPackageDiff } from '../src/cli/render.js';

export default class Diff extends RepoCommand {
  static override summary = 'show what changed between two images';
  static override pager = true;
  static override description = `A and B are revisions (a branch, a tag, an id, HEAD~3, a disk commit) or REV:path for a directory inside an image (e.g. a disk partition: vm/web:p1). With only A, A is compared with its first parent.

A or B may also be a directory or a tar file on the host (a path starting with /, ./ or ../, or any existing path that is not a revision; a word that is both is refused: say ./NAME): it is read as commit would read it and compared without being committed (viva diff base ./rootfs, viva diff web image.tar, viva diff ./a ./b). A host path alone is compared with HEAD. Files a previous commit of the same directory recorded in the stat cache are not read again. As in git, A..B is the same as A B, and A...B compares B with the merge base of A and B (what B changed since they parted); an empty side means HEAD. Paths after -- limit the diff to those image paths.

Works on manifests: subtrees with the same id on both sides are skipped unread; file content is read only for -p and --packages. Output, one line per entry, like 'git diff --name-status':
  A added, D deleted, M modified, T type changed, R renamed (same content, found by blob id)
with the attributes that changed in brackets (content, mode, owner, xattrs, mtime, target, rdev, holes, hardlink). --ignore-mtime leaves out entries whose only change is their mtime. --stat shows sizes (with -p, followed by the entries and their patches), -p adds text patches (binary files and files over --max-patch-size are named, not shown), --packages compares the images' package databases (dpkg, apk, rpm sqlite) in their format's version order (dpkg's or rpm's).

--exit-code: exit 1 when there are differences, 0 when there are none (as git diff --exit-code).

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> diff debian/12/base debian/12/base2',
    '<%= config.bin %> diff HEAD~1 HEAD -- etc',
    '<%= config.bin %> diff main...feature --stat',
    '<%= config.bin %> diff base web --stat --ignore-mtime',
    '<%= config.bin %> diff base base2 -p -- etc/ssh/sshd_config',
    '<%= config.bin %> diff --packages base web --json',
    '<%= config.bin %> diff vm/web:p1 debian/12/base --exit-code',
    '<%= config.bin %> diff debian/12/base /srv/rootfs --stat',
    '<%= config.bin %> diff web ./web.tar -p -- etc',
  ];
  static override strict = false;
  static override args = {
    a: Args.string({ required: true, description: 'first revision (REV or REV:path), or a directory or tar on the host' }),
    b: Args.string({ description: 'second revision or host image (default: A, compared with A~1)' }),
  };
  static override flags = {
    stat: Flags.boolean({ summary: 'per-entry sizes and a summary line' }),
    patch: Flags.boolean({ char: 'p', summary: 'text patches of changed files' }),
    packages: Flags.boolean({ summary: 'package-level diff from the images\' package databases' }),
    'ignore-mtime': Flags.boolean({ summary: 'ignore mtime-only changes' }),
    'no-renames': Flags.boolean({ summary: 'report renames as a deletion and an addition' }),
    'exit-code': Flags.boolean({ summary: 'exit 1 if the images differ, 0 if not' }),
    'max-patch-size': Flags.string({ summary: 'largest file -p shows a patch for', default: '1M' }),
  };

  async run(): Promise<DiffResult | PackageDiff | (DiffResult & { patches: Record<string, string> })> {
    const { args, flags, argv } = await this.parse(Diff);
    const dd = this.argv.indexOf('--');
    const paths = dd >= 0 ? this.argv.slice(dd + 1) : [];
    // oclif hands back the words after -- as arguments too (they end argv): the revisions are what comes before.
    const positional = (argv as string[]).slice(0, (argv as string[]).length - paths.length);
    if (positional.length > 2) throw new UsageError(`too many revisions: ${positional.slice(2).join(' ')} (put image paths after --)`);
    if (positional.length === 0) throw new UsageError('a revision is required before --');
    let a = positional[0] ?? args.a;
    let b = positional[1];
    const result = await this.withRepo('read', flags.repo, async (repo) => {
      // A directory or tar on the host is read as commit would read it, without committing it.
      const hostA = isHostArgument(repo, a);
      const hostB = b !== undefined && isHostArgument(repo, b);
      if (hostA && b === undefined) ({ a, b } = { a: 'HEAD', b: a });
      else if (!hostA && !hostB) ({ a, b } = resolveDiffSides(repo, a, b));
      if ((hostA || hostB) && flags.packages) throw new UsageError('--packages compares two revisions: commit the image on the host first');
      if (flags.packages) {
        const { diffPackages } = await import('../src/ops/image-packages.js');
        return { kind: 'packages' as const, value: await diffPackages(repo, a, b!) };
      }
      const onProgress = this.progress('reading');
      const hosts: { a?: HostSide; b?: HostSide } = {};
      if (isHostArgument(repo, a)) hosts.a = await readHostSide(repo, a, { ...(onProgress ? { onProgress } : {}) });
      if (isHostArgument(repo, b!)) hosts.b = await readHostSide(repo, b!, { ...(onProgress ? { onProgress } : {}), ...(hosts.a ? { objects: hosts.a.objects } : {}) });
      this.endProgress();
      const d = diff(repo, { a, b: b!, paths, ignoreMtime: flags['ignore-mtime'], renames: !flags['no-renames'], hosts });
      const patches: Record<string, string> = {};
      if (flags.patch) {
        const maxBytes = parseSize(flags['max-patch-size']);
        const objects = hosts.a?.objects ?? hosts.b?.objects;
        for (const e of d.entries) {
          const p = await patchFor(repo, e, { maxBytes, ...(objects ? { objects } : {}) });
          if (p) patches[e.path] = p;
        }
      }
      return { kind: 'diff' as const, value: d, patches };
    });
    let differs: boolean;
    if (result.kind === 'packages') {
      const p = result.value;
      for (const [spec, inv] of [[a, p.a], [b!, p.b]] as const) for (const pr of inv?.problems ?? []) this.warnLine(`${spec}: ${pr.file}:${pr.line}: ${pr.message}`);
      if (!p.a || !p.b) this.warnLine(`no package database (var/lib/dpkg/status, lib/apk/db/installed, var/lib/rpm/rpmdb.sqlite) in ${!p.a ? a : b}`);
      if (!this.jsonEnabled() && p.changes.length) this.log(renderPackageDiff(p));
      differs = p.changes.length > 0;
      this.finish(flags['exit-code'], differs);
      return p;
    }
    const { value: d, patches } = result;
    differs = d.entries.length > 0;
    if (!this.jsonEnabled()) {
      // --stat -p: the summary, then the entries with their patches (as git).
      if (flags.stat && d.entries.length) this.log(renderDiffStat(d.entries));
      if (flags.stat && flags.patch && d.entries.length) this.log('');
      if ((!flags.stat || flags.patch) && d.entries.length) this.log(renderDiff(d.entries, flags.patch ? patches : undefined));
    }
    this.finish(flags['exit-code'], differs);
    return flags.patch ? { ...d, patches } : d;
  }

  private finish(exitCode: boolean, differs: boolean): void {
    if (exitCode && differs) process.exitCode = EXIT.FAILURE;
  }
}

export type { DiffEntry };
