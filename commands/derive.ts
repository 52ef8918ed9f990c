import { Args, Flags } from '../src/cli/flags.js';
import { UsageError } from '../src/errors.js';
import { deriveBatch, type BatchResult } from '../src/ops/derive-batch.js';
import { derive, type DeriveResult } from '../src/ops/derive.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';
import { EDIT_FLAGS, type EditFlag, editsFromArgv } from '../src/cli/edits.js';
import { renderDerive, renderDeriveBatch } from '../src/cli/render.js';

const editFlag = (flag: EditFlag, summary: string) => Flags.string({ summary: `${summary} (${EDIT_FLAGS[flag]})`, multiple: true, helpGroup: 'EDIT', helpValue: EDIT_FLAGS[flag] });

export default class Derive extends RepoCommand {
  static override summary = 'make a new image from BASE plus edits, without checking BASE out';
  static override description = `Makes a commit on branch NEW whose image is BASE with the edits applied, in the order given. Only the directories on edited paths are read and written: the rest of the image is shared with BASE, so a customized clone costs a few kilobytes. The branch is created when missing; otherwise its head becomes the new commit's parent (BASE is recorded as the derivation base, not as a parent). HEAD does not move.

The commit carries a derivation record: the base commit and tree, the recipe (every edit, with added content by its blob or tree id), the tool version and the recipe's id. 'viva show REV --derivation' prints it, 'viva log --derived-from REV' lists what was derived, and 'viva rebuild' replays the recipe on a newer base.

The edit flags (EDIT FLAGS above) apply in the order given, each repeatable. --set writes TEXT as given (no newline added; in bash, $'...\\n' adds one). An existing file keeps its mode, owner and xattrs and gets the commit's time as mtime; a new file is 0644 root:root. --add takes a host directory (merged in, as cp -a DIR/. PATH/), a tar archive (by its name: .tar, .tar.gz, .tgz, .tar.xz, .tar.zst, .tar.bz2; unpacked there) or a file, with all their metadata. --rm removes a file, a symlink or a whole directory; --mkdir makes missing parents too (0755 root:root). --chmod takes an octal mode (0644, 4755), --chown numeric ids, --xattr a value as setfattr does (text, 0x… hex, 0s… base64).

Paths are image paths ('etc/hostname'; a name printed quoted by viva can be given quoted). Missing parent directories of new entries are made 0755 root:root. Edits never follow a symlink in the image: a path through one is refused, and a symlink at PATH must be removed before a file can replace it. A hardlinked file changes for all its names (they are one inode).

On a disk image (raw or qcow2 commit), paths name a partition: 'p1/etc/hostname' (on a bare file system 'etc/hostname'). Each ext2/3/4 file system that changed is patched in place — the base's bytes with only the changed files, inodes, directories and bitmaps rewritten, e2fsck-clean — so the clone costs the blocks it changed. 'viva checkout CLONE out.qcow2 --backing BASE.qcow2' writes it as a qcow2 overlay over a checkout of the base (KBs per clone). Adding hardlinks, devices, fifos or sockets to a disk is refused; a file system without a free block or inode is exit 16.

--batch SPEC makes many variants in one run and one transaction: per variant a branch, a base and edits, expanded by a counter or lists of values, with values viva generates per clone (hostname, /etc/machine-id, ssh host keys). The format is in docs/derive-batch.md; a spec with a syntax error, an unknown key or two variants on one branch is refused (file:line) before anything is written.

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> derive --batch examples/fleet.yaml',
    '<%= config.bin %> derive debian/12/base -b web/01 --set etc/hostname=$\'web01\\n\' --rm etc/motd',
    '<%= config.bin %> derive debian/12/base -b web/01 --add ./overlay:/ --chmod 0600:etc/ssh/sshd_config -m "web role"',
    '<%= config.bin %> derive web/01 -b web/01 --add app.tar.gz:opt/app --json',
  ];
  static override args = { base: Args.string({ description: 'the base image (a revision)' }) };
  static override flags = {
    branch: Flags.string({ char: 'b', summary: 'branch of the new image (created, or advanced)' }),
    batch: Flags.string({ summary: 'make every variant of a batch spec (YAML or JSON; see docs/derive-batch.md) in one transaction', helpValue: 'SPEC' }),
    message: Flags.string({ char: 'm', summary: "commit message (default: 'derive from BASE: N edits')" }),
    author: Flags.string({ summary: "author as 'Name <email>' (default: $VIVA_AUTHOR or user@host)" }),
    set: editFlag('set', 'write a file'),
    'set-file': editFlag('set-file', 'write a file from a host file'),
    add: editFlag('add', 'add a host directory, tar archive or file'),
    rm: editFlag('rm', 'remove an entry'),
    mkdir: editFlag('mkdir', 'make a directory'),
    symlink: editFlag('symlink', 'make a symlink'),
    chmod: editFlag('chmod', 'change the mode'),
    chown: editFlag('chown', 'change the owner'),
    xattr: editFlag('xattr', 'set an xattr'),
    'rm-xattr': editFlag('rm-xattr', 'remove an xattr'),
    mtime: editFlag('mtime', 'set the mtime'),
    rename: editFlag('rename', 'move an entry'),
  };

  async run(): Promise<DeriveResult | BatchResult> {
    const { args, flags } = await this.parse(Derive);
    const edits = editsFromArgv(this.argv, new Set(['-b', '--branch', '-m', '--message', '--author', '-C', '--repo', '--batch']));
    if (flags.batch !== undefined) {
      if (args.base !== undefined || flags.branch !== undefined || flags.message !== undefined || edits.length) throw new UsageError('--batch takes bases, branches, messages and edits from the spec: give it alone');
      const r = await this.withRepo('write', flags.repo, (repo) => deriveBatch(repo, { file: flags.batch!, ...(flags.author ? { author: flags.author } : {}) }));
      this.log(renderDeriveBatch(r));
      return r;
    }
    if (args.base === undefined || flags.branch === undefined) throw new UsageError('give BASE and -b BRANCH (or --batch SPEC)');
    const parsed = (Object.keys(EDIT_FLAGS) as EditFlag[]).reduce((n, k) => n + ((flags[k] as string[] | undefined)?.length ?? 0), 0);
    if (parsed !== edits.length) throw new UsageError('edit flags could not be read in order: give each as --FLAG VALUE or --FLAG=VALUE');
    if (edits.length === 0) throw new UsageError('nothing to derive: give at least one edit (--set, --add, --rm, …; see viva derive --help)');
    const result = await this.withRepo('write', flags.repo, (repo) =>
      derive(repo, { base: args.base!, branch: flags.branch!, edits, ...(flags.message !== undefined ? { message: flags.message } : {}), ...(flags.author ? { author: flags.author } : {}) }));
    this.log(renderDerive(result));
    return result;
  }
}
