/** DiskReader: random access to a disk commit's bytes through its run table, equal to what checkout writes. */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir, vivaOk } from '../helpers/cli.js';
import { haveMke2fs } from '../helpers/mbr-disk.js';
import { DiskReader } from '../../src/ops/disk-reader.js';
import { resolveRevision } from '../../src/ops/resolve.js';
import { Repository } from '../../src/store/repository.js';
import { readDisk } from '../../src/store/typed.js';

const maybe = haveMke2fs() ? test : test.skip;

maybe('disk reader: the run table of a plain and a derived disk is sorted and disjoint; reads of any size match checkout; zero extents are zeros', async (t) => {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'base\n');
  fs.writeFileSync(path.join(src, 'random.bin'), crypto.randomBytes(1 << 20));
  for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(src, `small-${i}`), `file ${i}\n`.repeat(i * 50 + 1));
  const img = path.join(dir, 'disk.ext4');
  execFileSync('truncate', ['-s', '16M', img]);
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', src, img]);
  const repoDir = path.join(dir, 'repo');
  await vivaOk(t, ['init', repoDir]);
  await vivaOk(t, ['commit', '-C', repoDir, img, '-b', 'base', '-m', 'base']);
  await vivaOk(t, ['derive', '-C', repoDir, 'base', '-b', 'clone', '--set', 'etc/hostname=clone', '--set', 'small-3=changed', '-m', 'clone']);
  for (const rev of ['base', 'clone']) await vivaOk(t, ['checkout', '-C', repoDir, rev, path.join(dir, `${rev}.raw`)]);
  const repo = Repository.open(repoDir, 'read');
  t.teardown(() => repo.close());
  for (const rev of ['base', 'clone']) {
    const want = fs.readFileSync(path.join(dir, `${rev}.raw`));
    const disk = readDisk(repo.objects, resolveRevision(repo, rev).commit.root);
    t.is(Boolean(disk.overlay), rev === 'clone');
    const reader = new DiskReader(repo.objects, disk);
    const runs = reader.index();
    let end = 0;
    for (const r of runs) {
      t.true(r.start >= end && r.length > 0, `${rev}: run at ${r.start} is in order and not empty`);
      end = r.start + r.length;
    }
    t.true(end <= disk.size);
    if (rev === 'clone') t.true(runs.some((r) => Buffer.isBuffer(r.source)), 'the patch is in the table');
    // Whole disk in odd-sized pieces, so reads start and end inside runs.
    const got = Buffer.alloc(disk.size);
    for (let o = 0; o < disk.size; o += 12_345) reader.read(o, Math.min(12_345, disk.size - o)).copy(got, o);
    t.true(got.equals(want), `${rev}: pieces equal the checkout`);
    const extents = reader.extents(0, disk.size);
    t.is(extents.reduce((n, x) => n + x.length, 0), disk.size);
    t.true(extents.some((x) => x.zero) && extents.some((x) => !x.zero));
    for (const x of extents) if (x.zero) t.true(want.subarray(x.offset, x.offset + x.length).equals(Buffer.alloc(x.length)), `${rev}: zero extent at ${x.offset}`);
    t.is(reader.read(disk.size, 0).length, 0);
    t.throws(() => reader.read(disk.size - 1, 2), { instanceOf: RangeError });
    t.throws(() => reader.read(-1, 1), { instanceOf: RangeError });
  }
});
