/** An XFS file system on a disk (bare or as a partition) is committed file by file and still checks out bit-exact. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { CorruptInputError } from '../../src/errors.js';
import { checkout } from '../../src/ops/checkout.js';
import { fsck } from '../../src/ops/fsck.js';
import { describeDisk } from '../../src/ops/disk-info.js';
import { readCommit, readDisk } from '../../src/store/typed.js';
import { commitAt, tmpDir, tmpRepo } from '../helpers/repo.js';
import { SECTOR, makeMbrDisk, patchBytes } from '../helpers/mbr-disk.js';
import { snapshotTree } from '../helpers/snapshot.js';
import { XFS_SIZE, inodeOf, makeXfsImage, withMount, withoutSgiAcl, xfsAvailable, xfsDb } from '../helpers/xfs-images.js';

const P1 = 2048;
const MiB = 1 << 20;

/** Whether two files have the same bytes (cmp: no whole-image buffers in this process). */
function same(a: string, b: string): boolean {
  try {
    execFileSync('cmp', ['-s', a, b]);
    return true;
  } catch {
    return false;
  }
}

/** The kernel's view of `image`'s files, without the root line and the raw SGI ACL attributes. */
function kernelView(image: string): string[] {
  return withMount(image, true, (mnt) => snapshotTree(mnt).filter((l) => !l.startsWith('. ')).map(withoutSgiAcl));
}

/**
 * The files of `rev` (its partition `part`, if given) checked out as a directory, as snapshot lines. The directory is
 * on a scratch XFS file system: /tmp's ext4 cannot hold 700 xattrs or a 10 KiB value on one file.
 */
async function checkedOut(repo: Parameters<typeof checkout>[0], rev: string, dir: string, part?: string): Promise<string[]> {
  const img = path.join(dir, 'scratch.xfs');
  fs.closeSync(fs.openSync(img, 'w'));
  fs.truncateSync(img, XFS_SIZE);
  execFileSync('mkfs.xfs', ['-q', '-f', img], { stdio: 'pipe' });
  const mnt = fs.mkdtempSync(path.join(dir, 'scratch-'));
  execFileSync('mount', ['-o', 'loop', img, mnt], { stdio: 'pipe' });
  try {
    const dest = path.join(mnt, 'files');
    await checkout(repo, { rev, dest, format: 'dir', ...(part ? { paths: [part] } : {}) });
    return snapshotTree(part ? path.join(dest, part) : dest).filter((l) => !l.startsWith('. ')).map(withoutSgiAcl);
  } finally {
    execFileSync('umount', [mnt], { stdio: 'pipe' });
    fs.rmSync(img);
  }
}

(xfsAvailable ? test : test.skip)('commit disk: a bare XFS image becomes a tree equal to the mounted one and checks out bit-exact', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'root.xfs');
  makeXfsImage(file);
  const { repo } = tmpRepo(t);
  const r = await commitAt(repo, file, { branch: 'vm/xfs' });
  t.deepEqual(r.warnings, []);
  t.true(r.files > 18_000);
  const commit = readCommit(repo.objects, repo.refs.resolve('refs/heads/vm/xfs')?.oid!);
  const info = describeDisk(commit.root, readDisk(repo.objects, commit.root));
  t.is(info.regions.length, 1);
  t.like(info.regions[0]!.fs, { type: 'xfs', label: 'vivatest', blockSize: 4096, inodeSize: 512 });
  t.true(info.regions[0]!.fs!.features!.includes('reflink'));
  t.deepEqual(await checkedOut(repo, 'vm/xfs', dir), kernelView(file));
  const out = path.join(dir, 'out.raw');
  await checkout(repo, { rev: 'vm/xfs', dest: out });
  t.is(fs.statSync(out).size, XFS_SIZE);
  t.true(same(out, file), 'the raw checkout is the same image');
  t.deepEqual((await fsck(repo)).problems, []);
  // A damaged bare file system has nothing to fall back to: the commit fails and the branch does not move.
  const ino = inodeOf(file, 'edge/plain');
  const at = Number(/\((\d+)\)/.exec(xfsDb(file, [`convert inode ${ino} byte`]))![1]);
  patchBytes(file, at + 8, Buffer.from([0x12, 0x34]));
  const e = await t.throwsAsync(commitAt(repo, file, { branch: 'vm/bad' }), { instanceOf: CorruptInputError });
  t.is(e!.message.split('\n').length, 1);
  t.regex(e!.message, new RegExp(`^${file}: inode ${ino} \\('edge/plain'\\): checksum mismatch at offset ${at} `));
  t.is(repo.refs.resolve('refs/heads/vm/bad')?.oid, undefined);
});

(xfsAvailable ? test : test.skip)('commit disk: an XFS partition beside the table checks out bit-exact; damaged, it is raw with a warning', async (t) => {
  const dir = tmpDir(t);
  const fsImage = path.join(dir, 'p1.xfs');
  makeXfsImage(fsImage);
  const disk = path.join(dir, 'disk.raw');
  makeMbrDisk(disk, XFS_SIZE / MiB + 2, [{ start: P1, sectors: XFS_SIZE / SECTOR, type: 0x83 }]);
  execFileSync('dd', [`if=${fsImage}`, `of=${disk}`, 'bs=1M', `seek=${(P1 * SECTOR) / MiB}`, 'conv=notrunc,sparse', 'status=none']);
  const { repo } = tmpRepo(t);
  const r = await commitAt(repo, disk, { branch: 'vm/disk' });
  t.deepEqual(r.warnings, []);
  t.deepEqual(await checkedOut(repo, 'vm/disk', dir, 'p1'), kernelView(fsImage));
  const out = path.join(dir, 'out.raw');
  await checkout(repo, { rev: 'vm/disk', dest: out });
  t.true(same(out, disk), 'the raw checkout is the same disk');
  t.deepEqual((await fsck(repo)).problems, []);
  // A directory whose two blocks are one: the partition is kept raw with one warning; --strict refuses.
  const leaf = inodeOf(fsImage, 'frag-dir');
  const first = /=\s*(\d+)/.exec(xfsDb(fsImage, [`inode ${leaf}`, 'print u3.bmx[0].startblock']))![1];
  xfsDb(fsImage, [`inode ${leaf}`, `write u3.bmx[1].startblock ${first}`], true);
  execFileSync('dd', [`if=${fsImage}`, `of=${disk}`, 'bs=1M', `seek=${(P1 * SECTOR) / MiB}`, 'conv=notrunc,sparse', 'status=none']);
  const bad = await commitAt(repo, disk, { branch: 'vm/bad' });
  t.is(bad.files, 0);
  t.is(bad.warnings.length, 1);
  t.regex(bad.warnings[0]!, new RegExp(`^${disk}: p1: XFS file system unreadable \\(inode ${leaf} \\('frag-dir'\\): directory block \\d+: block at offset \\d+ is visited twice \\(a loop\\); the partition starts at byte 1048576\\): stored as raw bytes$`));
  const raw = path.join(dir, 'bad.raw');
  await checkout(repo, { rev: 'vm/bad', dest: raw });
  t.true(same(raw, disk), 'the damaged disk checks out bit-exact too');
  await t.throwsAsync(commitAt(repo, disk, { branch: 'vm/strict', strict: true }), { instanceOf: CorruptInputError, message: /p1: XFS file system unreadable .*\(--strict\)$/ });
  t.is(repo.refs.resolve('refs/heads/vm/strict')?.oid, undefined);
});
