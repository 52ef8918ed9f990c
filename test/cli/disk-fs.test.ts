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

(haveMke2fs() ? test : test.skip)('cli commit: a partition whose ext4 superblock is damaged (magic intact) is one warning line and exit 0, not \'0 files\' in silence; --strict exits 13', async (t) => {
  const dir = tmpDir(t);
  const tree = path.join(dir, 'tree');
  writeTree(tree, { etc: { hostname: 'vm\n' } });
  const disk = path.join(dir, 'disk.raw');
  makeMbrDisk(disk, 24, [{ start: P1, sectors: 30720, type: 0x83, ext4Tree: tree }]);
  patchBytes(disk, P1 * SECTOR + 1024 + 0x78, Buffer.from('damaged'));
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  const r = await vivaOk(t, ['commit', '-C', repo, disk, '-b', 'vm/raw', '-m', 'raw']);
  const lines = r.stderr.split('\n');
  t.is(lines.length, 2, 'one line');
  t.regex(lines[0]!, /^warning: .*disk\.raw: p1: ext file system unreadable \(superblock: superblock checksum mismatch \(stored 0x[0-9a-f]+, computed 0x[0-9a-f]+\); the partition starts at byte 1048576\): stored as raw bytes$/);
  const strict = await viva(['commit', '-C', repo, disk, '-b', 'vm/strict', '-m', 'raw', '--strict']);
  t.is(strict.code, EXIT.CORRUPT_INPUT);
  t.regex(strict.stderr, /^error: .*disk\.raw: p1: ext file system unreadable \(superblock: .*; the partition starts at byte 1048576\) \(--strict\)\n$/);
  t.is((await viva(['log', '-C', repo, 'vm/strict'])).code, EXIT.NOT_FOUND);
});

(haveMke2fs() ? test : test.skip)('cli packages, find --package, diff --packages: a disk commit\'s file systems, each named by its partition', async (t) => {
  const dir = tmpDir(t);
  const status = (n: string, v: string) => `Package: ${n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${v}\n`;
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  for (const [name, version] of [['a', '5.2-1'], ['b', '5.2-2']] as const) {
    const tree = path.join(dir, `t-${name}`);
    writeTree(tree, { var: { lib: { dpkg: { status: status('bash', version) } } } });
    const disk = path.join(dir, `${name}.raw`);
    makeMbrDisk(disk, 24, [{ start: P1, sectors: 30720, type: 0x83, ext4Tree: tree }]);
    await vivaOk(t, ['commit', '-C', repo, disk, '-b', `img/${name}`, '-m', name]);
  }
  t.is((await vivaOk(t, ['packages', '-C', repo, 'img/a'])).stdout, '# p1: var/lib/dpkg/status (deb, 1 package)\nbash  5.2-1  amd64\n');
  const j = await vivaJson(t, ['packages', '-C', repo, 'img/a', '--json']);
  t.is(j.partition, 'p1');
  t.deepEqual(j.packages, [{ name: 'bash', version: '5.2-1', arch: 'amd64' }]);
  const f = await vivaOk(t, ['find', '-C', repo, '--package', 'bash']);
  t.deepEqual(f.stdout.trim().split('\n').map((l) => l.split('\t').filter((_, i) => i !== 1)).sort(), [['img/a', 'bash 5.2-1 amd64', 'p1'], ['img/b', 'bash 5.2-2 amd64', 'p1']]);
  const d = await vivaOk(t, ['diff', '-C', repo, '--packages', 'img/a', 'img/b']);
  t.is(d.stdout, 'upgraded   bash 5.2-1 -> 5.2-2 (amd64) [p1]\n');
});
