import { Args, Flags } from '../src/cli/flags.js';
import { NBD_SOURCE_PREFIX, commit, parseLabel, type CommitResult } from '../src/ops/commit.js';
import { EXIT, EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand, quietFlag } from '../src/cli/repo-command.js';
import { renderCommit } from '../src/cli/render.js';

export default class Commit extends RepoCommand {
  static override summary = 'record an image (directory, tar, or raw/qcow2/VHD/VHDX/VDI/VMDK disk) as a new commit on a branch';
  static override description = `SOURCE is a directory, a tar archive (plain, gzip, xz, zstd or bzip2 — detected by content; GNU/pax with xattrs, ACLs, sparse members and ns times), or a disk image: raw, qcow2 (v2/v3, zlib/zstd clusters, extended L2 entries, backing chains; --snapshot NAME commits an internal snapshot — see 'qemu-img snapshot -l' — instead of the active layer, a name the image lacks is exit 2 with the list of its snapshots), VHD (fixed, dynamic), VHDX (fixed, dynamic; an image with a log to replay is refused), VirtualBox VDI (static, dynamic) or VMDK (monolithicSparse, streamOptimized as inside an OVA, monolithicFlat), all detected by content, with an MBR or GPT partition table or a bare file system. ext2/3/4, FAT12/16/32 and XFS (v5 and v4) file systems are read file by file, also inside the linear logical volumes of an LVM2 physical volume (a partition or the whole disk); a disk or partition holding one viva does not read (btrfs, LUKS, NTFS, swap — recognised by signature — or anything else) is stored as raw bytes with one warning. Disks are read offline, without mounting or booting: each file system read becomes a tree like a directory commit's (files dedup across both; address them as REV:p1/etc, REV:vg0/root/etc for logical volume 'root' of volume group 'vg0', or REV:etc for a bare file system), and everything else (boot code, gaps, other partitions, file-system metadata) is kept so that 'viva checkout REV out.raw|out.qcow2|out.vmdk' gives the disk back bit-identical. Every file, attribute, hardlink, device node and hole is kept. File contents are deduplicated (whole files and content-defined chunks) and zstd-compressed.

SOURCE 'nbd:SESSION' (when no file of that name exists) is a writable 'viva nbd --writable' session: its base disk commit with the session's overlay over it, at its last flush, committed as a disk; files whose disk blocks the session did not touch keep their blob ids without being read (counted as unchanged), the rest are read as for any disk. A new branch starts at the session's base commit. The overlay stays until 'viva nbd --drop SESSION'.

The branch is created if missing; otherwise its head becomes the new commit's parent. HEAD then points at the branch (recorded in HEAD's reflog as 'checkout: moving from A to B'; with HEAD detached by 'viva switch --detach', -b is required). Re-committing a directory reuses the blob ids of files whose dev, inode, size, mtime and ctime did not change (stat cache), without reading them, and takes whole the tree of every directory whose entries' names and lstat fields (all but atime) are all as when a commit built it, and so is everything below it (tree cache, as git's cache-tree): an unchanged tree costs one directory scan per directory. Entries changed within 2 seconds of a commit are not cached (as git's racy-clean rule). --no-cache reads everything.

A disk partition that holds no file system viva reads (swap, LUKS, an unknown type; a Linux-typed one whose superblock cannot be read), or whose file system is damaged or unsupported, is stored as raw bytes (still bit-exact on checkout, but without files) with one warning line naming the partition and what it holds (in --json: warnings); --strict makes that an error (exit 13) for partitions typed as Linux file systems. Never-formatted partitions and BIOS boot partitions are raw without a warning. A bad source (corrupt or truncated tar, '../' or absolute member names, a member written through a symlink, a file that changes while being read) is refused with one line naming the file and offset or path, and the branch is not moved.

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> commit rootfs/ -b debian/12/base -m "base image"',
    '<%= config.bin %> commit web.tar.zst -b customers/acme/web -m "acme web" --label env=prod --label owner=ops',
    '<%= config.bin %> commit rootfs/ -m "nightly" --json',
    '<%= config.bin %> commit vm.qcow2 -b vm/web -m "web VM disk"',
    '<%= config.bin %> commit vm.qcow2 --snapshot before-upgrade -b vm/web -m "web VM before the upgrade"',
    '<%= config.bin %> commit nbd:web-test -b vm/web -m "after the test run"',
    '<%= config.bin %> commit /srv/rootfs -b web -m "without caches" --exclude var/cache/ --exclude "*.log"',
    'tar -C /srv/rootfs -c . | <%= config.bin %> commit - -b web -m "from a pipe"',
  ];
  static override args = { source: Args.string({ required: true, description: 'directory, tar archive (- for one on standard input), raw/qcow2/VHD/VHDX/VDI/VMDK disk image, or nbd:SESSION to commit' }) };
  static override flags = {
    quiet: quietFlag,
    branch: Flags.string({ char: 'b', summary: 'branch to commit to (default: the branch HEAD points at)' }),
    message: Flags.string({ char: 'm', summary: 'commit message', required: true }),
    label: Flags.string({ char: 'l', summary: 'key=value label (repeatable)', multiple: true, default: [] }),
    author: Flags.string({ summary: "author as 'Name <email>' (default: $VIVA_AUTHOR or user@host)" }),
    'no-cache': Flags.boolean({ summary: 'read every file and directory, ignoring the stat cache and the tree cache' }),
    strict: Flags.boolean({ summary: 'fail instead of warning: a file or directory of the source that cannot be read (exit 14; without it: left out, exit 4); a disk partition with a file system that can only be stored as raw bytes (exit 13)' }),
    exclude: Flags.string({ char: 'x', summary: "leave out image paths matching this gitignore-style pattern ('*.log', '/tmp/', 'cache/', '!keep.log'; repeatable)", multiple: true, helpValue: 'PATTERN' }),
    snapshot: Flags.string({ summary: "qcow2 disk: commit this internal snapshot (id or name, as 'qemu-img snapshot -l' lists them) instead of the active layer", helpValue: 'NAME' }),
    'exclude-from': Flags.string({ summary: 'read exclude patterns from FILE, one per line, as a .gitignore (repeatable)', multiple: true, helpValue: 'FILE' }),
  };

  async run(): Promise<CommitResult> {
    const { args, flags } = await this.parse(Commit);
    const labels = flags.label.map(parseLabel);
    const result = await this.withRepo('write', flags.repo, (repo) =>
      commit(repo, {
        source: args.source, branch: flags.branch, message: flags.message, labels, author: flags.author,
        statCache: !flags['no-cache'], strict: flags.strict, onProgress: this.progress('committing'),
        ...(flags.exclude ? { exclude: flags.exclude } : {}), ...(flags.snapshot !== undefined ? { snapshot: flags.snapshot } : {}), ...(flags['exclude-from'] ? { excludeFrom: flags['exclude-from'] } : {}),
      }));
    this.endProgress();
    for (const w of result.warnings) this.warnLine(w);
    this.log(renderCommit(result));
    // The session's overlay is kept (it may be committed again, or served on): say how to remove it.
    if (result.source.name?.startsWith(NBD_SOURCE_PREFIX) && !flags.quiet && !this.jsonEnabled()) {
      process.stderr.write(`the overlay of nbd session '${args.source.slice(NBD_SOURCE_PREFIX.length)}' is kept: remove it with 'viva nbd --drop ${args.source.slice(NBD_SOURCE_PREFIX.length)}'\n`);
    }
    if (result.source.omitted?.length) process.exitCode = EXIT.INCOMPLETE;
    return result;
  }
}
