/** A Linux partition whose file system cannot be read is stored as raw bytes with a warning, or refused with strict. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { CorruptInputError } from '../../src/errors.js';
import { checkout } from '../../src/ops/checkout.js';
import { fsck } from '../../src/ops/fsck.js';
import { ls } from '../../src/ops/ls.js';
import { commitAt, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';
import { SECTOR, haveMke2fs, makeMbrDisk, patchBytes } from '../helpers/mbr-disk.js';

const P1 = 2048;

/** p1: ext4 of a small tree (Linux type); p2: Linux type, never formatted (all zeros). */
function disk(dir: string): string {
  const tree = path.join(dir, 'tree');
  writeTree(tree, { etc: { hostname: 'vm\n' } });
  const file = path.join(dir, 'disk.raw');
  makeMbrDisk(file, 24, [{ start: P1, sectors: 30720, type: 0x83, ext4Tree: tree }, { start: P1 + 30720, sectors: 8192, type: 0x83 }]);
  return file;
}

(haveMke2fs() ? test : test.skip)('commit disk: a corrupt ext4 superblock on p1 is stored raw with one warning naming it; strict refuses', async (t) => {
  const dir = tmpDir(t);
  const file = disk(dir);
  const { repo } = tmpRepo(t);
  const good = await commitAt(repo, file, { branch: 'vm/good' });
  t.deepEqual(good.warnings, [], 'an unformatted (all-zero) Linux partition is nothing to warn about');
  t.true(good.files > 0);
  // Break p1's magic (offset 1080 of the partition).
  patchBytes(file, P1 * SECTOR + 1080, Buffer.from([0x12, 0x34]));
  const bad = await commitAt(repo, file, { branch: 'vm/bad' });
  t.is(bad.files, 0);
  t.deepEqual(bad.warnings, [`${file}: p1: ext4 superblock unreadable (bad magic 0x3412 at offset 1080, expected 0xef53): stored as raw bytes`]);
  const e = await t.throwsAsync(commitAt(repo, file, { branch: 'vm/strict', strict: true }), { instanceOf: CorruptInputError });
  t.is(e!.message, `${file}: p1: ext4 superblock unreadable (bad magic 0x3412 at offset 1080, expected 0xef53) (--strict)`);
  t.is(repo.refs.resolve('refs/heads/vm/strict')?.oid, undefined, 'the branch did not move');
  t.true(fs.existsSync(file));
  // Each partition kept raw is named by what it holds: swap (no files, so --strict does not mind it), then other
  // contents whose files are not indexed.
  const p2 = (P1 + 30720) * SECTOR;
  patchBytes(file, p2 + 1024, Buffer.from([1, 0, 0, 0, 0xff, 0x1f, 0, 0]));
  patchBytes(file, p2 + 4086, Buffer.from('SWAPSPACE2'));
  t.deepEqual((await commitAt(repo, file, { branch: 'vm/swap' })).warnings.slice(1), [`${file}: p2: swap space: stored as raw bytes`]);
  patchBytes(file, p2 + 4086, Buffer.alloc(10));
  patchBytes(file, p2 + 0x10040, Buffer.from('_BHRfS_M'));
  t.deepEqual((await commitAt(repo, file, { branch: 'vm/btrfs' })).warnings.slice(1), [`${file}: p2: btrfs file system, which viva does not read: stored as raw bytes, files inside are not indexed`]);
  patchBytes(file, p2 + 0x10040, Buffer.alloc(8));
  patchBytes(file, p2, Buffer.from('LUKS\xba\xbe', 'latin1'));
  t.deepEqual((await commitAt(repo, file, { branch: 'vm/luks' })).warnings.slice(1), [`${file}: p2: LUKS encrypted volume, which viva does not read: stored as raw bytes, files inside are not indexed`]);
  patchBytes(file, p2, Buffer.from('hello'));
  patchBytes(file, p2 + 1024, Buffer.alloc(8));
  t.deepEqual((await commitAt(repo, file, { branch: 'vm/unknown' })).warnings.slice(1), [`${file}: p2: unknown content (partition type 0x83): stored as raw bytes, files inside are not indexed`]);
  // Every one of them checks out bit-exact.
  const out = path.join(dir, 'out.raw');
  await checkout(repo, { rev: 'vm/unknown', dest: out });
  t.is(fileSha(out), fileSha(file));
});

/** p1 and p2: ext4 file systems of small trees (Linux type), 15 MiB each (1 KiB blocks). */
function twoFsDisk(dir: string): { file: string; p2: number } {
  const tree = path.join(dir, 'tree');
  writeTree(tree, { etc: { hostname: 'vm\n', motd: 'hello\n'.repeat(500) }, srv: { data: 'x'.repeat(70_000) } });
  const file = path.join(dir, 'disk.raw');
  makeMbrDisk(file, 40, [{ start: P1, sectors: 30720, type: 0x83, ext4Tree: tree }, { start: P1 + 30720, sectors: 30720, type: 0x83, ext4Tree: tree }]);
  return { file, p2: P1 + 30720 };
}

const fileSha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

/** Block number (of the file system's block size) of a path's first data block, read by debugfs from a copy of p1. */
function firstBlockOf(dir: string, file: string, p: string): number {
  const copy = path.join(dir, 'p1.ext4');
  fs.writeFileSync(copy, fs.readFileSync(file).subarray(P1 * SECTOR, (P1 + 30720) * SECTOR));
  const out = execFileSync('debugfs', ['-R', `blocks ${p}`, copy], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  fs.rmSync(copy);
  return Number(out.trim().split(/\s+/)[0]);
}

async function rawWithWarning(t: import('ava').ExecutionContext, file: string, damage: RegExp): Promise<void> {
  const { repo } = tmpRepo(t);
  const r = await commitAt(repo, file, { branch: 'vm/bad' });
  t.is(r.warnings.length, 1);
  t.regex(r.warnings[0]!, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: p1: ext file system unreadable \\(${damage.source}.*; the partition starts at byte ${P1 * SECTOR}\\): stored as raw bytes$`));
  t.false(r.warnings[0]!.includes('\n'));
  // p2 is still read; p1 is raw bytes with nothing to address.
  t.is(r.files, 3, 'the files of p2 only');
  t.deepEqual(ls(repo, { spec: 'vm/bad' }).map((e) => e.path), ['p2']);
  const out = path.join(path.dirname(file), 'out.raw');
  await checkout(repo, { rev: 'vm/bad', dest: out });
  t.is(fileSha(out), fileSha(file), 'the raw checkout is the same disk');
  t.deepEqual((await fsck(repo)).problems, []);
  const e = await t.throwsAsync(commitAt(repo, file, { branch: 'vm/strict', strict: true }), { instanceOf: CorruptInputError });
  t.regex(e!.message, /: p1: ext file system unreadable \(.*\(--strict\)$/);
  t.is(repo.refs.resolve('refs/heads/vm/strict')?.oid, undefined, 'the branch did not move');
}

(haveMke2fs() ? test : test.skip)('commit disk: p1 with a damaged ext4 superblock (magic intact) is stored raw with one warning; strict refuses', async (t) => {
  const dir = tmpDir(t);
  const { file } = twoFsDisk(dir);
  // The volume label changes, the superblock checksum does not.
  patchBytes(file, P1 * SECTOR + 1024 + 0x78, Buffer.from('damaged'));
  await rawWithWarning(t, file, /superblock: superblock checksum mismatch/);
});

(haveMke2fs() ? test : test.skip)('commit disk: p1 with a block size out of range is stored raw with one warning; strict refuses', async (t) => {
  const dir = tmpDir(t);
  const { file } = twoFsDisk(dir);
  // Off metadata_csum (its checksum would be the first complaint), then an impossible block size.
  const sb = P1 * SECTOR + 1024;
  const ro = fs.readFileSync(file).readUInt32LE(sb + 0x64);
  const b = Buffer.alloc(4);
  b.writeUInt32LE(ro & ~0x400);
  patchBytes(file, sb + 0x64, b);
  b.writeUInt32LE(9);
  patchBytes(file, sb + 0x18, b);
  await rawWithWarning(t, file, /superblock: block size 2\^19 is out of range/);
});

(haveMke2fs() && haveDebugfs() ? test : test.skip)('commit disk: p1 with a directory block damaged (met while walking) is stored raw with one warning; strict refuses', async (t) => {
  const dir = tmpDir(t);
  const { file } = twoFsDisk(dir);
  const block = firstBlockOf(dir, file, '/etc');
  patchBytes(file, P1 * SECTOR + block * 1024, Buffer.alloc(1024, 0xff));
  await rawWithWarning(t, file, /inode \d+: directory block 0: /);
});

function haveDebugfs(): boolean {
  try {
    execFileSync('debugfs', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
