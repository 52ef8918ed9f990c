import { Args, Flags } from '../src/cli/flags.js';
import { UsageError } from '../src/errors.js';
import { STDOUT_DEST } from '../src/formats/index.js';
import { type TreeEntry } from '../src/model/tree.js';
import { REBUILD_FS_TYPES, type RebuildFsType } from '../src/ops/build-disk.js';
import { parseSize } from '../src/cli/argv.js';
import { checkout, type CheckoutResult } from '../src/ops/checkout.js';
import { recordCheckout } from '../src/ops/status.js';
import { createTrackingBranch, findTrackingCandidate } from '../src/ops/switch.js';
import { trackingMessage } from '../src/ops/upstream.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand, formatBytes, plural, quietFlag } from '../src/cli/repo-command.js';
import { MAX_LISTED_WARNINGS, renderWarnings } from '../src/cli/render.js';

export default class Checkout extends RepoCommand {
  static override summary = 'materialize an image (or some paths of it) as a directory, a tar file or a disk image';
  static override description = `DEST is a new or empty directory, a tar file (a name ending in .tar, .tar.gz, .tgz, .tar.zst, .tar.xz, .tar.bz2 or another name GNU tar's --auto-compress gives one of these compressions: .taz, .tzst, .txz, .tbz, .tbz2, .tz2, ...; or --format tar), '-' for a tar on standard output (refused when that is a terminal), a disk image (.raw, .img, .qcow2, .vmdk, or --format raw|qcow2|vmdk; a .vmdk is streamOptimized, the disk format inside OVA files that VMware imports), or a bare file-system image (.ext4, .ext3, .ext2: a raw file system without a partition table, as --partition none). Other image and archive names (.vhd, .vhdx, .vdi, .iso, .zip, .tar.lz, .tar.Z, ...) are refused with exit 2 rather than made into a directory; --format dir makes a directory of any name. A destination inside the repository's .viva, or inside any other repository's .viva (one holding data.mdb or the format marker), also through a symlink or '..', is refused with exit 2, and so is an existing file that is a repository's database (LMDB data file, e.g. reached through a hard link), also with --force.

A disk commit (a raw or qcow2 image given to 'viva commit') checks out as a disk bit-identical to the one committed: a raw file with the same sha256 (sparse), or a qcow2 or VMDK streamOptimized image with the same guest content ('qemu-img compare' identical), written in one streaming pass. A directory commit (or a disk commit given any of the layout flags) becomes a freshly built disk: --size, a partition table (--partition gpt, the default; mbr; none for a bare file system) with one partition starting at 1 MiB (an EFI system partition with --fs vfat), and a file system (--fs) holding the tree:
- ext4 (the default; also ext3, ext2): every file and attribute, made with mke2fs -d and a debugfs pass that restores ns mtimes and owners (e2fsprogs and sfdisk must be installed); it gets a lost+found directory, as mke2fs makes one.
- xfs: every file and attribute too (owners, modes, ns mtimes, all xattrs with ACLs and SELinux labels, hardlinks, devices, holes), made with mkfs.xfs (xfsprogs; 300 MiB or more) and written through a loop mount: it needs root and a loop device, else it fails with exit 16 before writing anything; a device node numbered past 511:262143, which Linux's XFS cannot store, is exit 2.
- vfat (dosfstools and mtools; FAT12, FAT16 or FAT32 as mkfs.vfat picks for the size): names, contents, mtimes (2-second steps, rounded down) and the read-only, hidden, system and archive bits kept in the xattr user.fat.attributes. What FAT cannot hold (owners, modes, symbolic links, devices, fifos, sockets, hardlinks: written as copies, other xattrs, names it refuses or that differ only in case, files of 4 GiB or more) is one warning per kind with a count; --strict makes it an error (exit 16).
--layout-from REV reuses a disk commit's partition table, boot code and other regions, and rebuilds its file systems with their own type and parameters (uuid, label, features, geometry; ext, xfs, FAT): a tree goes into the root file system (the first ext or xfs one), while a tree whose top level is p1/, p2/, ... (a directory checkout of that disk, or a disk commit with several file systems) puts each pN/ into partition N. File systems that get no files are copied bit-exact.

To a directory or tar, a disk commit gives its files: a bare file system's root, or p1/, p2/, ... for the file systems of a partitioned disk and VG/LV/ (vg0/root/) for those in LVM logical volumes.
Everything in the manifest comes back: owners, modes incl. setuid/sticky, xattrs (ACLs, capabilities, SELinux labels), device nodes, fifos, sockets, hardlinks, sparse holes and ns mtimes (directories too). Checkout never writes outside DEST and never follows a symlink of the image.

A REV that names nothing here but is a branch of exactly one remote (origin/team/img after a clone or fetch) is made a local branch first, tracking that remote branch, as git checkout does: "branch 'team/img' set up to track 'origin/team/img'". HEAD does not move (see 'viva switch').

Run as non-root, what cannot be created (device nodes, trusted.* xattrs) is listed in a warning, and owners that cannot be set in one summary line (the first entry and how many more); --strict makes that an error.

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> checkout debian/12/base /srv/rootfs',
    '<%= config.bin %> checkout debian/12/base~1 base.tar.zst',
    '<%= config.bin %> checkout debian/12/base - | ssh host tar -xpf - -C /srv/rootfs',
    '<%= config.bin %> checkout debian/12/base rootfs.ext4 --size 2G',
    '<%= config.bin %> checkout HEAD out/ --path etc --path usr/bin/ls',
    '<%= config.bin %> checkout vm/web web.qcow2',
    '<%= config.bin %> checkout vm/web web.vmdk',
    '<%= config.bin %> checkout vm/web rootfs/ --path p1/etc',
    '<%= config.bin %> checkout debian/12/base base.qcow2 --size 4G --label root',
    '<%= config.bin %> checkout customers/acme/web web.raw --layout-from vm/web',
    '<%= config.bin %> checkout efi/shim esp.raw --size 256M --fs vfat --label ESP',
    'sudo <%= config.bin %> checkout rhel/9/root root.qcow2 --size 10G --fs xfs',
  ];
  static override args = {
    rev: Args.string({ required: true, description: 'revision to check out (branch, tag, id, REV~N), or REV:path for one directory of it as the root (REV:p1: the first file system of a disk)' }),
    dest: Args.string({ required: true, description: "destination directory, tar file ('-': standard output), disk image or file-system image" }),
  };
  static override flags = {
    quiet: quietFlag,
    path: Flags.string({ char: 'p', summary: 'only this image path (repeatable); parents are created with their image metadata', multiple: true }),
    format: Flags.string({ char: 'f', summary: 'output format (default: from DEST)', options: ['dir', 'tar', 'raw', 'qcow2', 'vmdk'] }),
    strict: Flags.boolean({ summary: 'fail instead of warning when an entry cannot be recreated exactly' }),
    force: Flags.boolean({ summary: 'overwrite an existing tar file or disk image' }),
    size: Flags.string({ summary: 'new disk: virtual size (4G, 512M, bytes)', helpGroup: 'NEW DISK' }),
    fs: Flags.string({ summary: 'new disk: file system type (default ext4, or what a .ext3/.ext2 name says; xfs needs root; vfat for an EFI system partition)', options: [...REBUILD_FS_TYPES], helpGroup: 'NEW DISK' }),
    label: Flags.string({ summary: 'new disk: file-system label', helpGroup: 'NEW DISK' }),
    partition: Flags.string({ summary: 'new disk: partition table (default gpt; none for a .ext4/.ext3/.ext2 name)', options: ['gpt', 'mbr', 'none'], helpGroup: 'NEW DISK' }),
    backing: Flags.string({ summary: 'derived disk: write a qcow2 overlay whose backing file is this checkout of its base (only the changed clusters)', helpValue: 'BASE.qcow2' }),
    'layout-from': Flags.string({ summary: 'new disk: reuse the partition table, boot code and file-system parameters of this disk commit', helpGroup: 'NEW DISK' }),
  };

  async run(): Promise<CheckoutResult> {
    const { args, flags } = await this.parse(Checkout);
    const toStdout = args.dest === STDOUT_DEST && flags.format !== 'dir';
    if (toStdout) {
      // As tar does: an archive on a terminal is never what was meant.
      if (process.stdout.isTTY) throw new UsageError("refusing to write a tar archive to a terminal (redirect standard output, or name a file instead of '-')");
      if (this.jsonEnabled()) throw new UsageError("--json cannot be combined with '-': standard output carries the tar archive");
    }
    // git's DWIM: a branch only a remote has becomes a local branch tracking it (a write, only then).
    const candidate = await this.withRepo('read', flags.repo, (repo) => findTrackingCandidate(repo, args.rev));
    if (candidate) {
      const t = await this.withRepo('write', flags.repo, (repo) => createTrackingBranch(repo, args.rev, candidate));
      if (toStdout) this.logToStderr(trackingMessage(t));
      else this.log(trackingMessage(t));
    }
    // The files written, for the checkout record below (so that it need not walk the tree again).
    const files: Array<{ path: Buffer; entry: TreeEntry }> = [];
    // An overlay remembers which backing files were checked (a write); everything else only reads.
    const r = await this.withRepo(flags.backing !== undefined ? 'write' : 'read', flags.repo, (repo) =>
      checkout(repo, {
        rev: args.rev, dest: args.dest, paths: flags.path, ...(flags.backing !== undefined ? { backing: flags.backing } : {}), format: flags.format as 'dir' | 'tar' | 'raw' | 'qcow2' | 'vmdk' | undefined,
        strict: flags.strict, force: flags.force, onProgress: this.progress('checking out'), onFile: (path, entry) => files.push({ path, entry }),
        ...(flags.size || flags.fs || flags.label || flags.partition || flags['layout-from'] ? {
          build: {
            ...(flags.size ? { size: parseSize(flags.size) } : {}), ...(flags.fs ? { fs: flags.fs as RebuildFsType } : {}),
            ...(flags.label ? { label: flags.label } : {}), ...(flags.partition ? { partition: flags.partition as 'gpt' } : {}),
            ...(flags['layout-from'] ? { layoutFrom: flags['layout-from'] } : {}),
          },
        } : {}),
      }));
    this.endProgress();
    if (r.format === 'dir') {
      // What the directory came from, for 'viva status DIR' (a small write; a read-only repository just cannot).
      const colon = args.rev.indexOf(':');
      try {
        await this.withRepo('write', flags.repo, (repo) => recordCheckout(repo, r.dest, {
          commit: r.commit, rev: args.rev, ...(colon >= 0 ? { subPath: args.rev.slice(colon + 1) } : {}), ...(flags.path?.length ? { paths: flags.path } : {}), files,
        }));
      } catch (e) {
        this.warnLine(`could not record the checkout for 'viva status' (${(e as Error).message})`);
      }
    }
    for (const line of renderWarnings(r.warnings)) this.warnLine(line);
    if (r.warnings.length > MAX_LISTED_WARNINGS) this.warnLine('run as root (or with --json for the full list) to recreate them; --strict makes this an error');
    if (r.overlay) {
      this.log(`checked out ${r.commit.slice(0, 12)} to ${r.dest} (qcow2 overlay on ${r.overlay.backing}, base ${r.overlay.backingDisk.slice(0, 12)}${r.overlay.checked ? ', backing file checked' : ''}): ${plural(r.overlay.clusters, 'cluster')}, ${formatBytes(r.bytes)}`);
      return r;
    }
    if (r.format === 'raw' || r.format === 'qcow2' || r.format === 'vmdk') {
      this.log(`checked out ${r.commit.slice(0, 12)} to ${r.dest} (${r.format}, ${r.rebuilt ? 'new disk built from the tree' : 'bit-exact'}): ${formatBytes(r.bytes)} virtual disk`);
      return r;
    }
    const summary = `checked out ${r.commit.slice(0, 12)} to ${toStdout ? 'standard output' : r.dest} (${r.format}): ${plural(r.files, 'file')}, ${plural(r.dirs, 'directory', 'directories')}, ${formatBytes(r.bytes)}${r.warnings.length ? `, ${plural(r.warnings.length, 'warning')}` : ''}`;
    // With '-' standard output is the archive: the summary goes to stderr.
    if (toStdout) this.logToStderr(summary);
    else this.log(summary);
    return r;
  }
}
