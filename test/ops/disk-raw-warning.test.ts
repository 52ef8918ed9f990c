/** A Linux partition whose file system cannot be read is stored as raw bytes with a warning, or refused with strict. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { CorruptInputError } from '../../src/errors.js';
import { resolveRef } from '../../src/store/refs.js';
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
  t.is(resolveRef(repo.store, 'refs/heads/vm/strict'), undefined, 'the branch did not move');
  t.true(fs.existsSync(file));
  // Swap on p2 (header fields at 1024, signature at the end of the first page) is raw by design: no warning;
  // another Linux file system is named.
  const p2 = (P1 + 30720) * SECTOR;
  patchBytes(file, p2 + 1024, Buffer.from([1, 0, 0, 0, 0xff, 0x1f, 0, 0]));
  patchBytes(file, p2 + 4086, Buffer.from('SWAPSPACE2'));
  t.is((await commitAt(repo, file, { branch: 'vm/swap' })).warnings.length, 1, 'p1 only');
  patchBytes(file, p2, Buffer.from('XFSB'));
  patchBytes(file, p2 + 4086, Buffer.alloc(10));
  t.deepEqual((await commitAt(repo, file, { branch: 'vm/xfs' })).warnings.slice(1), [`${file}: p2: xfs file system: viva reads ext2/ext3/ext4 only: stored as raw bytes`]);
});
