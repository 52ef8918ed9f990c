/** Disk commits through the CLI: warnings for partitions stored raw (and --strict), package tools over every file system. */
import test from 'ava';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import { tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';
import { writeTree } from '../helpers/repo.js';
import { SECTOR, haveMke2fs, makeMbrDisk, patchBytes } from '../helpers/mbr-disk.js';

const P1 = 2048;

(haveMke2fs() ? test : test.skip)('cli commit: a partition stored raw for an unreadable superblock gives one warning line and --json warnings; --strict exits 13', async (t) => {
  const dir = tmpDir(t);
  const tree = path.join(dir, 'tree');
  writeTree(tree, { etc: { hostname: 'vm\n' } });
  const disk = path.join(dir, 'disk.raw');
  makeMbrDisk(disk, 24, [{ start: P1, sectors: 30720, type: 0x83, ext4Tree: tree }]);
  patchBytes(disk, P1 * SECTOR + 1080, Buffer.alloc(2));
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  const r = await vivaOk(t, ['commit', '-C', repo, disk, '-b', 'vm/raw', '-m', 'raw']);
  t.is(r.stderr, `warning: ${disk}: p1: ext4 superblock unreadable (bad magic 0x0000 at offset 1080, expected 0xef53): stored as raw bytes\n`);
  const j = await vivaJson(t, ['commit', '-C', repo, disk, '-b', 'vm/raw2', '-m', 'raw', '--json']);
  t.deepEqual(j.warnings, [`${disk}: p1: ext4 superblock unreadable (bad magic 0x0000 at offset 1080, expected 0xef53): stored as raw bytes`]);
  const strict = await viva(['commit', '-C', repo, disk, '-b', 'vm/strict', '-m', 'raw', '--strict']);
  t.is(strict.code, EXIT.CORRUPT_INPUT);
  t.is(strict.stderr, `error: ${disk}: p1: ext4 superblock unreadable (bad magic 0x0000 at offset 1080, expected 0xef53) (--strict)\n`);
  t.is((await viva(['log', '-C', repo, 'vm/strict'])).code, EXIT.NOT_FOUND);
});
