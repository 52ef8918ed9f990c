/** XFS images built at test time: mkfs.xfs on a file, filled through a loop mount (run as root), damaged with xfs_db. */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileBlockSource } from '../../src/formats/ext4.js';
import { openXfs, type XfsInfo } from '../../src/formats/xfs.js';
import type { ImageEntry } from '../../src/formats/types.js';
import { canLoopMount, readEntries, type ReadFile } from './ext4-images.js';
import { mkedgePath } from './snapshot.js';

const MiB = 1 << 20;
const MKEDGE = mkedgePath();

function has(tool: string, args: string[]): boolean {
  try {
    execFileSync(tool, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** True when mkfs.xfs and xfs_db are installed. */
export const haveXfsprogs: boolean = has('mkfs.xfs', ['-V']) && has('xfs_db', ['-V']);

/** True when XFS images can be made and filled here: xfsprogs, root with loop mounts, the edge-tree script. */
export const xfsAvailable: boolean = process.getuid?.() === 0 && haveXfsprogs && fs.existsSync(MKEDGE) && canLoopMount();

/** The smallest file system mkfs.xfs makes without --unsupported. */
export const XFS_SIZE = 320 * MiB;

/**
 * Shell that fills the mounted file system at $1 with the shapes the reader must handle: the edge tree (modes, owners,
 * xattrs, ACLs, hardlinks, devices, fifo, socket, holes, non-UTF-8 names, ns times) and, beside it, directories in
 * every form (short-form, block, leaf, node, one of several extents, and one whose block map is a btree), a file of 1000 extents (bmbt),
 * unwritten extents, a reflinked copy, an SELinux label, remote and inline symlinks, attribute forks in short-form,
 * leaf and node form with a remote value, and bigtime timestamps past 2038 and before 1970.
 */
const POPULATE = String.raw`
set -euo pipefail
export TZ=UTC
M=$1; MKEDGE=$2
bash "$MKEDGE" "$M/edge" >/dev/null
cd "$M"
mkdir short block leaf node btree
touch short/a short/b; ln -s a short/c
for i in $(seq 1 40); do : > "block/entry-$i"; done
for i in $(seq 1 400); do : > "leaf/a-rather-long-file-name-to-fill-blocks-$i"; done
python3 - "$M" <<'PY'
import os, sys
m = sys.argv[1]
for i in range(6000):
    open(os.path.join(m, 'node', 'a-longer-name-so-that-the-directory-needs-many-blocks-%05d' % i), 'w').close()
# Interleave each new directory block with allocated file blocks so that the directory's map fragments into a btree.
d = os.path.join(m, 'btree')
for i in range(12000):
    fd = os.open(os.path.join(d, 'entry-with-a-long-name-to-fill-directory-blocks-fast-%05d' % i), os.O_CREAT | os.O_WRONLY, 0o644)
    if i % 20 == 0:
        os.posix_fallocate(fd, 0, 4096)
    os.close(fd)
# A directory of a few extents (still in the inode): its data blocks interleaved with file blocks.
d = os.path.join(m, 'frag-dir')
os.mkdir(d)
for i in range(600):
    fd = os.open(os.path.join(d, 'entry-with-a-long-name-to-fill-directory-blocks-fast-%05d' % i), os.O_CREAT | os.O_WRONLY, 0o644)
    if i % 10 == 0:
        os.posix_fallocate(fd, 0, 4096)
    os.close(fd)
# 1000 extents: every other 4 KiB block written, each synced before the next so that none merge.
fd = os.open(os.path.join(m, 'frag'), os.O_CREAT | os.O_WRONLY, 0o644)
for i in range(1000):
    os.pwrite(fd, bytes([i % 251 + 1]) * 4096, i * 8192)
    os.fsync(fd)
os.close(fd)
# Unwritten extents: preallocated space reads as zeros, inside and past the written data.
fd = os.open(os.path.join(m, 'prealloc'), os.O_CREAT | os.O_WRONLY, 0o644)
os.pwrite(fd, b'head' * 1024, 0)
os.posix_fallocate(fd, 0, 1 << 20)
os.pwrite(fd, b'tail' * 1024, 3 << 20)
os.close(fd)
# Attributes: many (leaf form), more (node form), one large value (remote).
open(os.path.join(m, 'attrs-leaf'), 'w').close()
for i in range(40):
    os.setxattr(os.path.join(m, 'attrs-leaf'), 'user.attr-%03d' % i, b'v' * 60)
open(os.path.join(m, 'attrs-node'), 'w').close()
for i in range(700):
    os.setxattr(os.path.join(m, 'attrs-node'), 'user.a-longer-attribute-name-%04d' % i, (b'%d' % i) * 20)
os.setxattr(os.path.join(m, 'attrs-node'), 'trusted.big', bytes(range(256)) * 40)
open(os.path.join(m, 'attrs-remote'), 'w').close()
os.setxattr(os.path.join(m, 'attrs-remote'), 'user.big', bytes(range(256)) * 39 + b'end')
PY
head -c 3000000 /dev/urandom > original
cp --reflink=always original reflinked 2>/dev/null || cp original reflinked # v4: no reflink
printf 'changed' | dd of=reflinked bs=1 seek=1000000 conv=notrunc status=none
echo labelled > selinux; setfattr -n security.selinux -v 'system_u:object_r:etc_t:s0' selinux
echo acl > acl-many; setfacl -m u:1000:r,u:1001:rw,g:2000:rw,g:2001:x,m::rwx acl-many
mkdir acl-default; setfacl -d -m u:1000:rwx,g:2000:rx acl-default; : > acl-default/inherits
ln -s "$(printf 'long-target/%.0s' $(seq 1 80))end" long-link
ln -s short-target short-link
touch -d '2200-03-04 05:06:07.123456789' future
touch -d '1901-12-14 00:00:00' past
touch -h -d '2150-01-01 00:00:00.5' long-link
`;

/**
 * Makes an XFS image of XFS_SIZE bytes at `file` (mkfs.xfs defaults: crc, ftype, reflink, bigtime, finobt, sparse
 * inodes; plus `mkfsArgs`) and fills it through a loop mount with the POPULATE shapes. Needs xfsAvailable.
 */
export function makeXfsImage(file: string, mkfsArgs: string[] = []): void {
  fs.rmSync(file, { force: true });
  fs.closeSync(fs.openSync(file, 'w'));
  fs.truncateSync(file, XFS_SIZE);
  execFileSync('mkfs.xfs', ['-q', '-f', '-L', 'vivatest', ...mkfsArgs, file], { stdio: 'pipe' });
  withMount(file, false, (mnt) => {
    execFileSync('bash', ['-c', POPULATE, 'populate', mnt, MKEDGE], { stdio: 'pipe', maxBuffer: 64 * MiB });
  });
}

/** Runs `fn` with `file` loop-mounted (read-only when `ro`), unmounting afterwards. */
export function withMount<T>(file: string, ro: boolean, fn: (mnt: string) => T): T {
  const mnt = fs.mkdtempSync(path.join(path.dirname(file), 'mnt-'));
  execFileSync('mount', ['-t', 'xfs', '-o', ro ? 'loop,ro' : 'loop', file, mnt], { stdio: 'pipe' });
  try {
    return fn(mnt);
  } finally {
    execFileSync('umount', [mnt], { stdio: 'pipe' });
    fs.rmdirSync(mnt);
  }
}

/** `xfs_db -r` (or `-x`, writing) with the given commands; its standard output. */
export function xfsDb(file: string, commands: string[], write = false): string {
  return execFileSync('xfs_db', [write ? '-x' : '-r', ...commands.flatMap((c) => ['-c', c]), file], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

/** The inode number of `rel` inside the image (xfs_db path lookup). */
export function inodeOf(file: string, rel: string): number {
  const out = xfsDb(file, [`path /${rel}`, 'inode']);
  const m = /current inode number is (\d+)/.exec(out);
  if (!m) throw new Error(`cannot find the inode of '${rel}': ${out}`);
  return Number(m[1]);
}

/** One field of an inode as xfs_db prints it (`core.format`, `u3.bmx[1].startblock`, ...). */
export function inodeField(file: string, ino: number, field: string): string {
  const out = xfsDb(file, [`inode ${ino}`, `print ${field}`]);
  const m = /=\s*(.*)$/m.exec(out);
  if (!m) throw new Error(`cannot read ${field} of inode ${ino}: ${out}`);
  return m[1]!.trim();
}

export interface ReadXfs {
  info: XfsInfo;
  entries: ImageEntry[];
  files: Map<string, ReadFile>;
}

/** Reads a whole XFS image (at `offset`, `size` bytes of `file`): every entry, every file's content hashed. */
export async function readXfsImage(file: string, offset = 0, size?: number): Promise<ReadXfs> {
  const src = await fileBlockSource(file, offset, size);
  try {
    const { info, reader } = await openXfs(src, file);
    return { info, ...(await readEntries(reader)) };
  } finally {
    await src.close();
  }
}

/**
 * A kernel snapshot line without the raw root-namespace ACL attributes: as root the kernel lists XFS's ACLs twice,
 * as system.posix_acl_* and as trusted.SGI_ACL_* (its on-disk bytes); the reader keeps the first form only.
 */
export function withoutSgiAcl(line: string): string {
  return line.split(' ').filter((p) => !p.startsWith('xattr:trusted.SGI_ACL_')).join(' ');
}

/** mkfs.xfs options of a v4 file system (no CRCs, none of the features that need v5). */
export const XFS_V4_ARGS = ['-m', 'crc=0,finobt=0,reflink=0,rmapbt=0,bigtime=0,inobtcount=0', '-i', 'sparse=0', '-n', 'ftype=1'];

