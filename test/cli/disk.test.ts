/** Disk commits through the CLI, as a new user meets them: commit a qcow2 disk, ls/show/cat/log, checkout, fsck, gc, errors. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { EXIT } from '../../src/cli/exit-codes.js';
import { tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';
import { bytes } from '../helpers/ext4-images.js';

function run(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], input }).toString();
}

function sha(p: string): string {
  return run('sha256sum', [p]).split(' ')[0]!;
}

/** A GPT disk (p1 ext4 with a few files, p2 raw bytes) as raw and as qcow2. */
function makeDisk(dir: string): { raw: string; qcow2: string } {
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'etc/hostname'), 'web01\n');
  fs.writeFileSync(path.join(tree, 'data.bin'), bytes(2 << 20, 'cli-disk'));
  const raw = path.join(dir, 'disk.raw');
  run('truncate', ['-s', '48M', raw]);
  run('sfdisk', ['-q', '--label', 'gpt', raw], 'start=2048, size=61440, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"\nstart=63488, size=8192\n');
  run('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'root', '-d', tree, '-E', `offset=${2048 * 512}`, raw, String(61440 / 2)]);
  const fd = fs.openSync(raw, 'r+');
  fs.writeSync(fd, bytes(10_000, 'p2'), 0, 10_000, 63488 * 512);
  fs.closeSync(fd);
  const qcow2 = path.join(dir, 'disk.qcow2');
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', '-c', raw, qcow2]);
  return { raw, qcow2 };
}

test('cli: a qcow2 disk commits, lists, shows, reads and checks out like any image', async (t) => {
  const dir = tmpDir(t);
  const { raw, qcow2 } = makeDisk(dir);
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  const c = await vivaOk(t, ['commit', '-C', repo, qcow2, '-b', 'vm/web', '-m', 'web disk']);
  t.regex(c.stdout, /^\[vm\/web \(root-commit\) [0-9a-f]{12}\] qcow2 disk .*disk\.qcow2: \d+ files/m);
  const ls = await vivaOk(t, ['ls', '-C', repo, 'vm/web']);
  t.regex(ls.stdout, /^Disk: 48\.0 MiB \(50331648 bytes\), GPT [0-9a-f-]{36}, sector 512$/m);
  t.regex(ls.stdout, /^ {2}p1 .* ext4 label=root uuid=[0-9a-f-]{36} block=\d+ -> p1\/ type=0fc63daf-8483-4772-8e79-3d69d8477de4 name="root"$/m);
  t.regex(ls.stdout, /^ {2}p2 .* raw /m);
  t.regex(ls.stdout, /^p1\/$/m);
  t.is((await vivaOk(t, ['ls', '-C', repo, 'vm/web:p1/etc'])).stdout, 'p1/etc/hostname\n');
  t.is((await vivaOk(t, ['cat', '-C', repo, 'vm/web:p1/etc/hostname'])).stdout, 'web01\n');
  const show = await vivaJson(t, ['show', '-C', repo, 'vm/web']);
  t.is(show.disk.table.kind, 'gpt');
  t.is(show.source.format, 'qcow2');
  t.deepEqual(show.disk.regions.filter((r: { partition?: unknown }) => r.partition).map((r: { kind: string; path?: string }) => [r.kind, r.path ?? null]), [['fs', 'p1'], ['raw', null]]);
  t.is((await vivaJson(t, ['log', '-C', repo, 'vm/web'])).length, 1);
  // Bit-exact both ways; the destination then exists and needs --force.
  const out = await vivaOk(t, ['checkout', '-C', repo, 'vm/web', path.join(dir, 'out.raw')]);
  t.regex(out.stdout, /\(raw, bit-exact\): 48\.0 MiB virtual disk/);
  t.is(sha(path.join(dir, 'out.raw')), sha(raw));
  const again = await viva(['checkout', '-C', repo, 'vm/web', path.join(dir, 'out.raw')]);
  t.is(again.code, EXIT.CONFLICT);
  t.regex(again.stderr, /out\.raw.*--force/);
  await vivaOk(t, ['checkout', '-C', repo, 'vm/web', path.join(dir, 'out.qcow2')]);
  t.regex(run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, path.join(dir, 'out.qcow2')]), /identical/);
  // Files of a partition, to a directory.
  await vivaOk(t, ['checkout', '-C', repo, 'vm/web', path.join(dir, 'files'), '--path', 'p1/etc']);
  t.is(fs.readFileSync(path.join(dir, 'files/p1/etc/hostname'), 'utf8'), 'web01\n');
  // fsck and gc keep a disk commit whole.
  await vivaOk(t, ['tag', '-C', repo, 'v1', 'vm/web']);
  await vivaOk(t, ['gc', '-C', repo]);
  t.regex((await vivaOk(t, ['fsck', '-C', repo])).stdout, /: ok$/m);
  await vivaOk(t, ['checkout', '-C', repo, 'v1', path.join(dir, 'after-gc.raw')]);
  t.is(sha(path.join(dir, 'after-gc.raw')), sha(raw));
  // A new disk from the files of p1, sized by the user.
  const built = await vivaOk(t, ['checkout', '-C', repo, 'vm/web', path.join(dir, 'new.qcow2'), '--size', '32M', '--partition', 'mbr', '--label', 'fresh']);
  t.regex(built.stdout, /new disk built from the tree/);
  t.regex(run('qemu-img', ['check', path.join(dir, 'new.qcow2')]), /No errors/);
});

test('cli: bad disks and bad disk options get one line and a documented exit code', async (t) => {
  const dir = tmpDir(t);
  const { qcow2 } = makeDisk(dir);
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  const cut = path.join(dir, 'cut.qcow2');
  fs.writeFileSync(cut, fs.readFileSync(qcow2).subarray(0, 300_000));
  const r = await viva(['commit', '-C', repo, cut, '-m', 'x']);
  t.true(r.code === EXIT.CORRUPT_INPUT || r.code === EXIT.SOURCE_UNREADABLE, `exit ${r.code}`);
  t.regex(r.stderr, /^error: .*cut\.qcow2/);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.notRegex(r.stderr, /\n\s+at /);
  t.is((await viva(['log', '-C', repo])).code, EXIT.NOT_FOUND, 'no commit was made');
  await vivaOk(t, ['commit', '-C', repo, path.join(dir, 'tree'), '-b', 'dir', '-m', 'files']);
  const noSize = await viva(['checkout', '-C', repo, 'dir', path.join(dir, 'x.raw')]);
  t.is(noSize.code, EXIT.USAGE);
  t.regex(noSize.stderr, /--size/);
  const badSize = await viva(['checkout', '-C', repo, 'dir', path.join(dir, 'x.raw'), '--size', 'lots']);
  t.is(badSize.code, EXIT.USAGE);
  t.regex(badSize.stderr, /size 'lots'/);
  const notDisk = await viva(['checkout', '-C', repo, 'dir', path.join(dir, 'x.raw'), '--layout-from', 'dir']);
  t.is(notDisk.code, EXIT.USAGE);
  t.regex(notDisk.stderr, /not a disk commit/);
  t.false(fs.existsSync(path.join(dir, 'x.raw')));
});
