/**
 * derive on disk commits: edits address partitions (p1/etc/hostname, or etc/hostname on a bare file system); the
 * clone's file system is the base's patched in place (e2fsck-clean, content = base + edits, a few blocks changed);
 * checkout gives it as raw, qcow2, or a qcow2 overlay over a checkout of the base holding only the changed clusters.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../../src/errors.js';
import { checkout } from '../../src/ops/checkout.js';
import { derive } from '../../src/ops/derive.js';
import { deriveBatch } from '../../src/ops/derive-batch.js';
import { rebuild } from '../../src/ops/rebuild.js';
import { clone } from '../../src/ops/sync.js';
import { Repository } from '../../src/store/repository.js';
import { fsck } from '../../src/ops/fsck.js';
import { cat } from '../../src/ops/ls.js';
import { readCommit, readDisk } from '../../src/store/typed.js';
import { AUTHOR, MiB, TIME, collect, commitAt, tmpRepo, writeTree } from '../helpers/repo.js';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const tools = have('mke2fs') && have('sfdisk') && have('e2fsck') && have('debugfs') && have('qemu-img');
const maybe = tools ? test : test.skip;

function run(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', ...(input !== undefined ? { input } : {}), stdio: ['pipe', 'pipe', 'pipe'] });
}

const sha = (p: string) => crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');

/** A 64 MiB GPT disk: p1 ext4 (the tree), p2 raw bytes. */
function gptDisk(dir: string): string {
  const tree = path.join(dir, 'tree');
  writeTree(tree, { etc: { hostname: 'base\n', motd: 'hello\n', ssh: { sshd_config: 'Port 22\n' } }, usr: { bin: { tool: 'x'.repeat(70_000) } } });
  const disk = path.join(dir, 'base.raw');
  run('truncate', ['-s', '64M', disk]);
  run('sfdisk', ['-q', '--label', 'gpt', disk], 'start=2048, size=90112, type=linux\nstart=92160, size=8192, type=linux\n');
  run('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'root', '-d', tree, '-E', `offset=${2048 * 512}`, disk, `${(90112 * 512) / 1024}`]);
  const fd = fs.openSync(disk, 'r+');
  fs.writeSync(fd, Buffer.alloc(4096, 0xab), 0, 4096, 92160 * 512 + 8192);
  fs.closeSync(fd);
  return disk;
}

/** e2fsck -fn of the file system at byte `offset` of `image` (a raw file). */
function fsckAt(image: string, offset: number, dir: string): void {
  const part = path.join(dir, 'part.img');
  run('dd', [`if=${image}`, `of=${part}`, 'bs=512', `skip=${offset / 512}`, 'count=90112', 'status=none']);
  const r = spawnSync('e2fsck', ['-fn', part], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`e2fsck -fn failed (${r.status}):\n${r.stdout}${r.stderr}`);
  fs.rmSync(part);
}

function debugfsCat(image: string, offset: number, p: string): string {
  return run('debugfs', ['-R', `cat /${p}`, `${image}?offset=${offset}`]);
}

maybe('derive on a disk: the clone is the base patched in place, e2fsck-clean, as raw, qcow2 and a small overlay', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const disk = gptDisk(dir);
  await commitAt(repo, disk, { branch: 'vm/base' });
  const d = await derive(repo, { base: 'vm/base', branch: 'vm/web', author: AUTHOR, time: TIME + 100, edits: [
    { op: 'set', path: 'p1/etc/hostname', data: Buffer.from('web01\n') },
    { op: 'rm', path: 'p1/etc/motd' },
    { op: 'mkdir', path: 'p1/srv/www' },
    { op: 'set', path: 'p1/srv/www/index.html', data: Buffer.from('<h1>web01</h1>\n') },
    { op: 'chmod', path: 'p1/etc/ssh/sshd_config', mode: 0o600 },
  ] });
  const c = readCommit(repo.objects, d.id);
  t.is(c.rootKind, 'disk');
  const dk = readDisk(repo.objects, c.root);
  t.truthy(dk.overlay);
  t.is((await collect(cat(repo, 'vm/web:p1/etc/hostname'))).toString(), 'web01\n');

  const raw = path.join(dir, 'web.raw');
  await checkout(repo, { rev: 'vm/web', dest: raw });
  const p1 = 2048 * 512;
  fsckAt(raw, p1, dir);
  t.is(debugfsCat(raw, p1, 'etc/hostname'), 'web01\n');
  t.is(debugfsCat(raw, p1, 'srv/www/index.html'), '<h1>web01</h1>\n');
  t.regex(run('debugfs', ['-R', 'stat /etc/ssh/sshd_config', `${raw}?offset=${p1}`]), /Mode:\s+0600/);
  t.notRegex(run('debugfs', ['-R', 'ls /etc', `${raw}?offset=${p1}`]), /motd/);
  // Only a few blocks differ from the base: the raw partition and everything else is the same.
  const a = fs.readFileSync(disk);
  const b = fs.readFileSync(raw);
  let changed = 0;
  for (let o = 0; o < a.length; o += 4096) if (!a.subarray(o, o + 4096).equals(b.subarray(o, o + 4096))) changed++;
  t.true(changed > 0 && changed < 40, `${changed} blocks changed`);
  // Committing the checked-out clone gives the same file-system tree as the derive did.
  const again = await commitAt(repo, raw, { branch: 'vm/web-recommitted' });
  const re = readDisk(repo.objects, again.root);
  t.is(re.regions.find((r) => r.content.kind === 'fs')!.content.kind === 'fs' ? (re.regions.find((r) => r.content.kind === 'fs')!.content as { tree: string }).tree : '', (dk.regions.find((r) => r.content.kind === 'fs')!.content as { tree: string }).tree);

  // qcow2 bit-exact, and an overlay over a checkout of the base.
  const q = path.join(dir, 'web.qcow2');
  await checkout(repo, { rev: 'vm/web', dest: q });
  t.regex(run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, q]), /Images are identical/);
  const baseQ = path.join(dir, 'base.qcow2');
  await checkout(repo, { rev: 'vm/base', dest: baseQ });
  const ov = path.join(dir, 'web-overlay.qcow2');
  const r = await checkout(repo, { rev: 'vm/web', dest: ov, backing: baseQ });
  t.true(r.overlay!.checked);
  t.true(fs.statSync(ov).size < 1 * MiB, `overlay is ${fs.statSync(ov).size} bytes`);
  t.regex(run('qemu-img', ['check', ov]), /No errors were found/);
  t.regex(run('qemu-img', ['info', ov]), /backing file: base\.qcow2/);
  t.regex(run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, ov]), /Images are identical/);
  // The second overlay on the same base file does not read it again.
  const ov2 = path.join(dir, 'web-overlay2.qcow2');
  t.false((await checkout(repo, { rev: 'vm/web', dest: ov2, backing: baseQ })).overlay!.checked);
  // A backing file that is not the base is refused.
  await t.throwsAsync(checkout(repo, { rev: 'vm/web', dest: path.join(dir, 'bad.qcow2'), backing: q }), { instanceOf: UsageError, message: /does not hold the base disk/ });
  await t.throwsAsync(checkout(repo, { rev: 'vm/base', dest: path.join(dir, 'bad2.qcow2'), backing: baseQ }), { instanceOf: UsageError, message: /not a derived disk/ });
  // A backing file viva's qcow2 reader could not follow (here a VDI) is refused before anything is written.
  const baseVdi = path.join(dir, 'base.vdi');
  run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'vdi', baseQ, baseVdi]);
  await t.throwsAsync(checkout(repo, { rev: 'vm/web', dest: path.join(dir, 'bad3.qcow2'), backing: baseVdi }), { instanceOf: UsageError, message: /is a vdi image: an overlay needs a raw or qcow2 backing file/ });
  t.false(fs.existsSync(path.join(dir, 'bad3.qcow2')));
  t.deepEqual((await fsck(repo)).problems, []);

  // A clone of the repository carries the clone with its base and patch: the same bytes come out there.
  await repo.close();
  const copyDir = path.join(dir, 'copy');
  await clone(path.join(dir, 'repo'), copyDir);
  const copy = Repository.open(copyDir, 'read');
  t.teardown(() => copy.close());
  const raw2 = path.join(dir, 'web-from-clone.raw');
  await checkout(copy, { rev: 'origin/vm/web', dest: raw2 });
  t.is(sha(raw2), sha(raw));
  t.deepEqual((await fsck(copy)).problems, []);
});

maybe('derive on a disk: a clone of a clone, rebuild when the base disk moves, edits outside a file system refused', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const disk = gptDisk(dir);
  await commitAt(repo, disk, { branch: 'vm/base' });
  await derive(repo, { base: 'vm/base', branch: 'vm/web', author: AUTHOR, time: TIME + 100, edits: [{ op: 'set', path: 'p1/etc/hostname', data: Buffer.from('web\n') }] });
  await derive(repo, { base: 'vm/web', branch: 'vm/web-debug', author: AUTHOR, time: TIME + 110, edits: [{ op: 'set', path: 'p1/etc/debug', data: Buffer.from('on\n') }] });
  const raw = path.join(dir, 'debug.raw');
  await checkout(repo, { rev: 'vm/web-debug', dest: raw });
  fsckAt(raw, 2048 * 512, dir);
  t.is(debugfsCat(raw, 2048 * 512, 'etc/hostname'), 'web\n');
  t.is(debugfsCat(raw, 2048 * 512, 'etc/debug'), 'on\n');
  // An overlay over the root base covers both levels.
  const baseQ = path.join(dir, 'base.qcow2');
  await checkout(repo, { rev: 'vm/base', dest: baseQ });
  const ov = path.join(dir, 'debug-overlay.qcow2');
  await checkout(repo, { rev: 'vm/web-debug', dest: ov, backing: baseQ });
  t.regex(run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, ov]), /Images are identical/);

  // The base disk moves on (a new file in p1): rebuild replays both.
  run('debugfs', ['-w', '-R', 'mkdir /opt', `${disk}?offset=${2048 * 512}`]);
  await commitAt(repo, disk, { branch: 'vm/base', tick: 50 });
  const rb = await rebuild(repo, { derivedFrom: 'vm/base', author: AUTHOR, time: TIME + 200 });
  t.is(rb.rebuilt, 2);
  const out = path.join(dir, 'debug2.raw');
  await checkout(repo, { rev: 'vm/web-debug', dest: out });
  fsckAt(out, 2048 * 512, dir);
  t.regex(run('debugfs', ['-R', 'ls /', `${out}?offset=${2048 * 512}`]), /opt/);
  t.is(debugfsCat(out, 2048 * 512, 'etc/debug'), 'on\n');

  // A batch of disk clones: generated files go to the partition the spec names.
  const b = await deriveBatch(repo, { file: 'disks.yaml', author: AUTHOR, time: TIME + 300, text: 'base: vm/base\nvariants:\n  - branch: vm/fleet-{n}\n    count: 2\n    partition: p1\n    edits: [{ generate: hostname }, { generate: machine-id }]\n' });
  t.is(b.variants.length, 2);
  const fleetRaw = path.join(dir, 'fleet2.raw');
  await checkout(repo, { rev: 'vm/fleet-2', dest: fleetRaw });
  fsckAt(fleetRaw, 2048 * 512, dir);
  t.is(debugfsCat(fleetRaw, 2048 * 512, 'etc/hostname'), 'fleet-2\n');
  t.regex(debugfsCat(fleetRaw, 2048 * 512, 'etc/machine-id'), /^[0-9a-f]{32}\n$/);

  const refuse = (edits: Parameters<typeof derive>[1]['edits'], re: RegExp) =>
    t.throwsAsync(derive(repo, { base: 'vm/base', branch: 'x', author: AUTHOR, time: TIME, edits }), { message: re });
  await refuse([{ op: 'set', path: 'top-level-file', data: Buffer.from('x') }], /is not a file system of the disk/);
  await refuse([{ op: 'rm', path: 'p1' }], /cannot be removed or renamed/);
  await refuse([{ op: 'set', path: 'p2/x', data: Buffer.from('x') }], /p2/);
  t.is(repo.refs.resolve('refs/heads/x')?.oid, undefined);
});
