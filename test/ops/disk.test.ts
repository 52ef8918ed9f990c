/**
 * Disk commits end to end: raw and qcow2 disks (bare ext4, GPT, MBR with logical partitions, qcow2 backing chains)
 * built at test time with mke2fs, sfdisk and qemu-img; committed; listed and read by path; checked out bit-exact
 * (raw: same sha256, sparse; qcow2: qemu-img compare identical and qemu-img check clean).
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { checkout } from '../../src/ops/checkout.js';
import { cat, ls } from '../../src/ops/ls.js';
import { fsck } from '../../src/ops/fsck.js';
import { show } from '../../src/ops/show.js';
import { imageStats } from '../../src/ops/stats.js';
import { CorruptInputError, UnsupportedInputError, VivaError } from '../../src/errors.js';
import { decodeDisk, decodeRegionMap, encodeDisk, encodeRegionMap, type Disk } from '../../src/model/disk.js';
import { MiB, collect, commitAt, sha256, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';
import { dumpRepository } from '../helpers/cli.js';
import { EXT_CORPUS, bytes } from '../helpers/ext4-images.js';

const CORPUS = EXT_CORPUS;

function run(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], input, maxBuffer: 64 * MiB }).toString();
}

function fileSha(p: string): string {
  return run('sha256sum', [p]).split(' ')[0]!;
}

/** A small tree with text, random, sparse and hardlinked files, and a symlink. */
function makeTree(root: string, seed = 'a'): void {
  writeTree(root, {
    etc: { hostname: 'vm\n', 'os-release': 'ID=test\n' },
    bin: { tool: bytes(300 * 1024, `tool${seed}`) },
    data: { big: bytes(3 * MiB + 123, `big${seed}`), small: 'tiny' },
  });
  fs.symlinkSync('../etc/hostname', path.join(root, 'bin/link'));
  fs.linkSync(path.join(root, 'data/small'), path.join(root, 'data/small-hl'));
  const fd = fs.openSync(path.join(root, 'data/sparse'), 'w');
  fs.writeSync(fd, bytes(5000, 'sp1'), 0, 5000, 2 * MiB);
  fs.ftruncateSync(fd, 6 * MiB);
  fs.closeSync(fd);
}

/** A bare ext4 image of `tree` (`mke2fs -d`), `sizeMiB` MiB, sparse. */
function mkfs(image: string, tree: string, sizeMiB: number, extra: string[] = []): void {
  fs.rmSync(image, { force: true });
  run('truncate', ['-s', `${sizeMiB}M`, image]);
  run('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, ...extra, image]);
}

/** A tree made by makeTree(seed) and a bare ext4 image `fs.img` of it, `sizeMiB` MiB. */
function bareImage(dir: string, seed: string, sizeMiB: number): { image: string; tree: string } {
  const tree = path.join(dir, 'tree');
  makeTree(tree, seed);
  const image = path.join(dir, 'fs.img');
  mkfs(image, tree, sizeMiB);
  return { image, tree };
}

/** A new sparse disk file partitioned by an sfdisk script, with a source tree made by makeTree(seed). */
function partitioned(dir: string, name: string, sizeMiB: number, label: 'gpt' | 'dos', script: string, seed: string): { disk: string; tree: string } {
  const tree = path.join(dir, 'tree');
  makeTree(tree, seed);
  const disk = path.join(dir, name);
  run('truncate', ['-s', `${sizeMiB}M`, disk]);
  run('sfdisk', ['-q', '--label', label, disk], script);
  return { disk, tree };
}

/** An ext4 file system written into `disk` at byte `offset`, `sizeMiB` long. */
function mkfsAt(disk: string, offset: number, sizeMiB: number, tree: string, label: string): void {
  run('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', label, '-d', tree, '-E', `offset=${offset}`, disk, `${sizeMiB * 1024}`]);
}

async function checkoutExact(t: import('ava').ExecutionContext, repo: Parameters<typeof checkout>[0], rev: string, original: string, dir: string): Promise<void> {
  const raw = path.join(dir, 'out.raw');
  await checkout(repo, { rev, dest: raw });
  t.is(fileSha(raw), fileSha(original), 'raw checkout is bit-identical');
  t.is(fs.statSync(raw).size, fs.statSync(original).size);
  const qcow = path.join(dir, 'out.qcow2');
  await checkout(repo, { rev, dest: qcow });
  t.regex(run('qemu-img', ['check', qcow]), /No errors were found/);
  t.regex(run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', original, qcow]), /Images are identical/);
  fs.rmSync(raw);
  fs.rmSync(qcow);
}

test('disk model: disk objects and region maps round-trip and reject garbage', (t) => {
  const oid = 'ab'.repeat(32);
  const d: Disk = {
    size: 10 * MiB, sectorSize: 512, table: { kind: 'gpt', id: '0123', firstUsable: 17408, lastUsable: 10 * MiB - 16896 },
    regions: [
      { offset: 0, size: MiB, content: { kind: 'raw', data: oid, map: oid } },
      {
        offset: MiB, size: 8 * MiB, partition: { index: 1, type: '0fc63daf-8483-4772-8e79-3d69d8477de4', guid: 'x', name: 'root', attributes: '0x0000000000000004' },
        content: { kind: 'fs', fsType: 'ext4', params: [['uuid', '"u"'], ['blockSize', '4096']], tree: oid, rootMeta: { mode: 0o755, uid: 0, gid: 0, mtimeNs: 5n, xattrs: [] }, data: oid, map: oid },
      },
    ],
    view: oid,
  };
  const enc = encodeDisk(d);
  const back = decodeDisk(enc);
  t.deepEqual(encodeDisk(back), enc);
  t.is(back.regions[1]!.partition!.name, 'root');
  t.throws(() => decodeDisk(enc.subarray(0, enc.length - 3)));
  t.throws(() => encodeDisk({ ...d, regions: [d.regions[1]!, d.regions[0]!] }), { message: /overlaps/ });
  const m = { packed: [{ at: 0, length: 4096 }, { at: 8192, length: 10 }], runs: [{ at: 4096, length: 4096, file: 3, fileOffset: 0 }, { at: 9000, length: 5, file: 1, fileOffset: 4096 }] };
  t.deepEqual(decodeRegionMap(encodeRegionMap(m)), m);
  t.throws(() => encodeRegionMap({ packed: [{ at: 10, length: 5 }, { at: 12, length: 1 }], runs: [] }), { message: /overlaps/ });
  t.throws(() => decodeRegionMap(Buffer.from('rmap\0\x01\x05', 'latin1')));
});

test('disk: a bare ext4 image commits file by file and checks out bit-exact as raw and qcow2', async (t) => {
  const dir = tmpDir(t);
  const tree = path.join(dir, 'tree');
  makeTree(tree);
  const image = path.join(dir, 'fs.img');
  mkfs(image, tree, 32);
  const { repo } = tmpRepo(t);
  const r = await commitAt(repo, image, { branch: 'vm/bare' });
  t.is(r.rootKind, 'disk');
  // A bare file system's root is the image's root: counted by all three.
  t.is(imageStats(repo, 'vm/bare').dirs, r.dirs);
  t.is(r.source.format, 'raw');
  // Paths address the file system directly.
  t.deepEqual(ls(repo, { spec: 'vm/bare:etc' }).map((e) => e.path), ['etc/hostname', 'etc/os-release']);
  t.is((await collect(cat(repo, 'vm/bare:etc/hostname'))).toString(), 'vm\n');
  t.is(sha256(await collect(cat(repo, 'vm/bare:data/big'))), sha256(fs.readFileSync(path.join(tree, 'data/big'))));
  const s = show(repo, 'vm/bare');
  t.is(s.disk?.regions.length, 1);
  t.is(s.disk?.regions[0]!.fs?.type, 'ext4');
  t.is(s.tree, r.tree);
  await checkoutExact(t, repo, 'vm/bare', image, dir);
  // Checkout of a path and of the whole image to a directory works as for directory commits.
  const out = path.join(dir, 'dirout');
  await checkout(repo, { rev: 'vm/bare', dest: out });
  t.is(fs.readFileSync(path.join(out, 'data/big')).equals(fs.readFileSync(path.join(tree, 'data/big'))), true);
  t.is(fs.readlinkSync(path.join(out, 'bin/link')), '../etc/hostname');
  t.is(fs.statSync(path.join(out, 'data/small')).ino, fs.statSync(path.join(out, 'data/small-hl')).ino);
  const f = await fsck(repo);
  t.deepEqual(f.problems, []);
});

test('disk: the same files dedup between a directory commit and a disk commit', async (t) => {
  const dir = tmpDir(t);
  const { image, tree } = bareImage(dir, 'dedup', 32);
  const { repo } = tmpRepo(t);
  const a = await commitAt(repo, tree, { branch: 'dir' });
  const b = await commitAt(repo, image, { branch: 'disk' });
  t.true(a.storedBytes > 3 * MiB);
  // Only metadata blocks, the maps and trees are new: far less than the file bytes.
  t.true(b.storedBytes < a.storedBytes / 4, `disk commit stored ${b.storedBytes} after the directory's ${a.storedBytes}`);
  t.is(ls(repo, { spec: 'disk:data/big' })[0]!.oid, ls(repo, { spec: 'dir:data/big' })[0]!.oid);
});

test('disk: a GPT disk with an ext4 partition, a raw partition and gaps; qcow2 sources with a backing chain', async (t) => {
  const dir = tmpDir(t);
  const { disk, tree } = partitioned(dir, 'disk.raw', 64, 'gpt', 'start=2048, size=40960, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"\nstart=43008, size=20480, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name="swap"\n', 'gpt');
  mkfsAt(disk, 2048 * 512, 20, tree, 'rootfs');
  // Something in the raw partition and in the gap before the first partition.
  const fd = fs.openSync(disk, 'r+');
  fs.writeSync(fd, bytes(100_000, 'swap'), 0, 100_000, 43008 * 512 + 4096);
  fs.writeSync(fd, Buffer.from('boot loader stage 1.5'), 0, 21, 100 * 512);
  fs.closeSync(fd);
  const { repo } = tmpRepo(t);
  await commitAt(repo, disk, { branch: 'vm/gpt' });
  const s = show(repo, 'vm/gpt');
  t.is(s.disk?.table?.kind, 'gpt');
  const parts = s.disk!.regions.filter((r) => r.partition);
  t.deepEqual(parts.map((p) => [p.partition!.index, p.kind, p.partition!.name]), [[1, 'fs', 'root'], [2, 'raw', 'swap']]);
  t.is(parts[0]!.fs?.label, 'rootfs');
  t.deepEqual(ls(repo, { spec: 'vm/gpt' }).map((e) => e.path), ['p1']);
  t.is((await collect(cat(repo, 'vm/gpt:p1/etc/os-release'))).toString(), 'ID=test\n');
  await checkoutExact(t, repo, 'vm/gpt', disk, dir);

  // The same disk as qcow2, and a child image on top of it that changes one file's bytes.
  const base = path.join(dir, 'base.qcow2');
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', disk, base]);
  const child = path.join(dir, 'child.qcow2');
  run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', child]);
  run('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x41 ${43008 * 512} 4096`, child]);
  const c1 = await commitAt(repo, base, { branch: 'vm/qcow' });
  t.is(c1.source.format, 'qcow2');
  t.is(show(repo, 'vm/qcow').tree, show(repo, 'vm/gpt').tree, 'same files, same view tree');
  const c2 = await commitAt(repo, child, { branch: 'vm/child' });
  t.deepEqual(c2.source.backing, [base]);
  t.true(c2.storedBytes < 200_000, `the child adds ${c2.storedBytes} bytes`);
  const flat = path.join(dir, 'child.raw');
  run('qemu-img', ['convert', '-O', 'raw', child, flat]);
  await checkoutExact(t, repo, 'vm/child', flat, dir);
  t.deepEqual((await fsck(repo)).problems, []);
});

test('disk: an MBR disk with a logical partition inside an extended one', async (t) => {
  const dir = tmpDir(t);
  const { disk, tree } = partitioned(dir, 'mbr.img', 48, 'dos', 'start=2048, size=20480, type=83, bootable\nstart=22528, size=75776, type=5\nstart=24576, size=30720, type=83\n', 'mbr');
  mkfsAt(disk, 2048 * 512, 10, tree, 'boot');
  mkfsAt(disk, 24576 * 512, 15, tree, 'logical');
  const { repo } = tmpRepo(t);
  const c = await commitAt(repo, disk, { branch: 'vm/mbr' });
  // commit, stats and a checkout to a directory or a tar count the same directories: the file systems' own
  // (p1/, p5/ are their roots), not the destination root made for the synthetic view.
  const st = imageStats(repo, 'vm/mbr');
  const asDir = await checkout(repo, { rev: 'vm/mbr', dest: path.join(dir, 'mbr-dir') });
  const asTar = await checkout(repo, { rev: 'vm/mbr', dest: path.join(dir, 'mbr.tar') });
  t.deepEqual([st.dirs, asDir.dirs, asTar.dirs], [c.dirs, c.dirs, c.dirs]);
  t.deepEqual([st.files, asDir.files, asTar.files], [c.files, c.files, c.files]);
  const s = show(repo, 'vm/mbr');
  t.is(s.disk?.table?.kind, 'mbr');
  t.deepEqual(s.disk!.regions.filter((r) => r.fs).map((r) => [r.path, r.fs!.label]), [['p1', 'boot'], ['p5', 'logical']]);
  t.true(s.disk!.regions.find((r) => r.path === 'p1')!.partition!.bootable);
  t.is((await collect(cat(repo, 'vm/mbr:p5/etc/hostname'))).toString(), 'vm\n');
  await checkoutExact(t, repo, 'vm/mbr', disk, dir);
});

test('disk: bad disks are refused with one clean error and the repository is unchanged', async (t) => {
  const dir = tmpDir(t);
  const { repo, dir: repoDir } = tmpRepo(t);
  const before = await dumpRepository(path.join(repoDir, 'repo'));
  // Overlapping partitions.
  const overlap = path.join(dir, 'overlap.img');
  run('truncate', ['-s', '8M', overlap]);
  const mbr = Buffer.alloc(512);
  mbr.writeUInt8(0x83, 446 + 4); mbr.writeUInt32LE(2048, 446 + 8); mbr.writeUInt32LE(4096, 446 + 12);
  mbr.writeUInt8(0x83, 462 + 4); mbr.writeUInt32LE(4000, 462 + 8); mbr.writeUInt32LE(4096, 462 + 12);
  mbr[510] = 0x55; mbr[511] = 0xaa;
  const fd = fs.openSync(overlap, 'r+');
  fs.writeSync(fd, mbr, 0, 512, 0);
  fs.closeSync(fd);
  await t.throwsAsync(commitAt(repo, overlap), { instanceOf: CorruptInputError, message: /overlap/ });
  // A partition past the end of the disk.
  mbr.fill(0, 462, 478);
  mbr.writeUInt32LE(1_000_000, 446 + 12);
  const past = path.join(dir, 'past.img');
  run('truncate', ['-s', '8M', past]);
  const fd2 = fs.openSync(past, 'r+');
  fs.writeSync(fd2, mbr, 0, 512, 0);
  fs.closeSync(fd2);
  await t.throwsAsync(commitAt(repo, past), { instanceOf: CorruptInputError });
  // A truncated qcow2 image.
  const tree = path.join(dir, 'tree');
  makeTree(tree, 'bad');
  const img = path.join(dir, 'fs.img');
  mkfs(img, tree, 16);
  const q = path.join(dir, 'fs.qcow2');
  run('qemu-img', ['convert', '-O', 'qcow2', img, q]);
  fs.truncateSync(q, Math.floor(fs.statSync(q).size / 2));
  await t.throwsAsync(commitAt(repo, q), { instanceOf: VivaError });
  // A backing chain that loops.
  const a = path.join(dir, 'a.qcow2');
  const b = path.join(dir, 'b.qcow2');
  run('qemu-img', ['create', '-q', '-f', 'qcow2', a, '16M']);
  run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', a, '-F', 'qcow2', b]);
  run('qemu-img', ['rebase', '-u', '-f', 'qcow2', '-b', b, '-F', 'qcow2', a]);
  await t.throwsAsync(commitAt(repo, b), { instanceOf: CorruptInputError, message: /loop|chain/ });
  t.deepEqual(await dumpRepository(path.join(repoDir, 'repo')), before);
});

(fs.existsSync(CORPUS) ? test : test.skip)('disk: every damaged image of the e2fsprogs corpus commits (and checks out bit-exact) or fails cleanly', async (t) => {
  t.timeout(600_000);
  const dir = tmpDir(t);
  const { repo, dir: repoDir } = tmpRepo(t);
  const names = fs.readdirSync(CORPUS).filter((n) => n.endsWith('.img.gz')).sort();
  const counts = { ok: 0, corrupt: 0, unsupported: 0 };
  const bad: string[] = [];
  for (const name of names) {
    const image = path.join(dir, 'image.img');
    fs.writeFileSync(image, zlib.gunzipSync(fs.readFileSync(path.join(CORPUS, name))));
    const before = await dumpRepository(path.join(repoDir, 'repo'), ['refs', 'reflog']);
    const start = Date.now();
    const cpuStart = process.cpuUsage();
    // Reading the image is bounded in CPU time (this process's threads): 10 s plus 1 ms per file catches a runaway loop
    // whatever else the machine runs (CI runs other test files beside this one, which spawn many processes at once;
    // wall time there once reached 10x the 1.5 s f_many_subdirs takes to fail). A hang that waits without spinning is
    // caught by the wall-time bound below. Checking a tree out writes every file: the overall bound grows with them
    // (f_h_unsigned has 47,716 files, which a loaded 2-core machine writes in well over a minute).
    const cpuMs = () => { const u = process.cpuUsage(cpuStart); return Math.round((u.user + u.system) / 1000); };
    let files = 0;
    try {
      const r = await commitAt(repo, image, { branch: 'corpus', message: name });
      files = r.files;
      // The bound is on reading the image (a hang or runaway loop); the checkouts below only check the result.
      if (cpuMs() > 10_000 + r.files) bad.push(`${name}: commit of ${r.files} files took ${cpuMs()} ms of CPU`);
      // An image with a zeroed superblock is not recognised as a disk: it is an all-zero file, i.e. an empty tar.
      if (r.rootKind === 'disk') {
        const out = path.join(dir, 'out.raw');
        await checkout(repo, { rev: r.commit, dest: out, force: true });
        if (fileSha(out) !== fileSha(image)) bad.push(`${name}: raw checkout differs`);
      }
      const d = path.join(dir, 'tree');
      fs.rmSync(d, { recursive: true, force: true });
      await checkout(repo, { rev: r.commit, dest: d });
      counts.ok++;
    } catch (e) {
      if (cpuMs() > 10_000) bad.push(`${name}: failing took ${cpuMs()} ms of CPU`);
      if (e instanceof CorruptInputError) counts.corrupt++;
      else if (e instanceof UnsupportedInputError) counts.unsupported++;
      else bad.push(`${name}: ${(e as Error).stack ?? String(e)}`);
      if ((await dumpRepository(path.join(repoDir, 'repo'), ['refs', 'reflog'])).join('\n') !== before.join('\n')) bad.push(`${name}: refs changed after a failed commit`);
      if (e instanceof VivaError && e.message.includes('\n')) bad.push(`${name}: multi-line message`);
    }
    if (Date.now() - start > 60_000 + 2 * files) bad.push(`${name}: commit and checkouts of ${files} files took ${Date.now() - start} ms`);
  }
  t.log(`${names.length} images: ${counts.ok} committed, ${counts.corrupt} CorruptInputError, ${counts.unsupported} UnsupportedInputError`);
  t.deepEqual(bad, []);
  t.deepEqual((await fsck(repo)).problems, []);
});

test('disk: --path cannot be combined with a disk image destination', async (t) => {
  const dir = tmpDir(t);
  const { image, tree } = bareImage(dir, 'usage', 16);
  const { repo } = tmpRepo(t);
  await commitAt(repo, image, { branch: 'vm' });
  await t.throwsAsync(checkout(repo, { rev: 'vm', dest: path.join(dir, 'x.qcow2'), paths: ['etc'] }), { message: /--path/ });
  t.false(fs.existsSync(path.join(dir, 'x.qcow2')));
});

/** `ls -r` of an image as comparable lines (no holes: mke2fs -d may store zero blocks of a file as holes). */
function listing(repo: Parameters<typeof ls>[0], spec: string): string[] {
  return ls(repo, { spec, recursive: true })
    .filter((e) => !e.path.startsWith('lost+found') && !/^p\d+\/lost\+found/.test(e.path))
    .map((e) => JSON.stringify({ ...e, path: e.path.replace(/^p\d+\//, ''), holes: undefined, oid: e.type === 'dir' ? undefined : e.oid }));
}

test('disk rebuild: a directory commit becomes a new GPT disk whose file system holds every file and attribute', async (t) => {
  const dir = tmpDir(t);
  const tree = path.join(dir, 'tree');
  makeTree(tree, 'rebuild');
  fs.utimesSync(path.join(tree, 'etc/hostname'), new Date(1_600_000_000_123), new Date(1_600_000_000_123));
  const { repo } = tmpRepo(t);
  await commitAt(repo, tree, { branch: 'dir' });
  // A bare file system first: e2fsck must find it clean.
  const bare = path.join(dir, 'bare.raw');
  const r1 = await checkout(repo, { rev: 'dir', dest: bare, build: { size: 64 * MiB, partition: 'none', label: 'bare' } });
  t.true(r1.rebuilt);
  run('e2fsck', ['-fn', bare]);
  // GPT as qcow2, committed back: the same entries (ns mtimes, owners, links, hardlinks) under p1/.
  const q = path.join(dir, 'new.qcow2');
  await checkout(repo, { rev: 'dir', dest: q, build: { size: 96 * MiB } });
  t.regex(run('qemu-img', ['check', q]), /No errors were found/);
  t.is(JSON.parse(run('qemu-img', ['info', '--output=json', q]))['virtual-size'], 96 * MiB);
  await commitAt(repo, q, { branch: 'rebuilt' });
  const s = show(repo, 'rebuilt');
  t.is(s.disk?.table?.kind, 'gpt');
  t.deepEqual(listing(repo, 'rebuilt:p1'), listing(repo, 'dir'));
  // Too small a disk is a clean error naming the destination, and nothing is left behind.
  const tiny = path.join(dir, 'tiny.raw');
  await t.throwsAsync(checkout(repo, { rev: 'dir', dest: tiny, build: { size: 2 * MiB } }), { instanceOf: VivaError, message: /tiny\.raw/ });
  t.false(fs.existsSync(tiny));
  await t.throwsAsync(checkout(repo, { rev: 'dir', dest: path.join(dir, 'x.raw') }), { message: /--size/ });
});

test('disk rebuild: --layout-from keeps the partition table, boot code, other partitions and file-system parameters', async (t) => {
  const dir = tmpDir(t);
  const tree = path.join(dir, 'tree');
  makeTree(tree, 'layout');
  const other = path.join(dir, 'other');
  makeTree(other, 'other');
  fs.writeFileSync(path.join(other, 'etc/hostname'), 'changed\n');
  const disk = path.join(dir, 'disk.raw');
  run('truncate', ['-s', '64M', disk]);
  run('sfdisk', ['-q', '--label', 'dos', disk], 'start=2048, size=61440, type=83, bootable\nstart=63488, type=82\n');
  mkfsAt(disk, 2048 * 512, 30, tree, 'root');
  const fd = fs.openSync(disk, 'r+');
  fs.writeSync(fd, Buffer.from('GRUB stage1'), 0, 11, 0);
  fs.writeSync(fd, bytes(8192, 'swap-sig'), 0, 8192, 63488 * 512);
  fs.closeSync(fd);
  const { repo } = tmpRepo(t);
  await commitAt(repo, disk, { branch: 'vm' });
  await commitAt(repo, other, { branch: 'other' });
  const out = path.join(dir, 'out.raw');
  await checkout(repo, { rev: 'other', dest: out, build: { layoutFrom: 'vm' } });
  t.is(fs.statSync(out).size, 64 * MiB);
  const a = fs.readFileSync(disk);
  const b = fs.readFileSync(out);
  t.true(b.subarray(0, 2048 * 512).equals(a.subarray(0, 2048 * 512)), 'boot code and table are copied');
  t.true(b.subarray(63488 * 512).equals(a.subarray(63488 * 512)), 'the second partition is copied');
  await commitAt(repo, out, { branch: 'rebuilt' });
  const before = show(repo, 'vm').disk!.regions.find((r) => r.fs)!.fs!;
  const after = show(repo, 'rebuilt').disk!.regions.find((r) => r.fs)!.fs!;
  t.is(after.uuid, before.uuid);
  t.is(after.label, 'root');
  t.deepEqual(after.features, before.features);
  t.deepEqual(listing(repo, 'rebuilt:p1'), listing(repo, 'other'));
  t.is((await collect(cat(repo, 'rebuilt:p1/etc/hostname'))).toString(), 'changed\n');
});

// Not root: owners, devices and trusted xattrs cannot be checked out.
(process.getuid?.() === 0 ? test : test.skip)('disk rebuild: every kind of entry and attribute of the edge tree survives a rebuild (as root)', async (t) => {
  const dir = tmpDir(t);
  const edge = path.join(dir, 'edge');
  run('bash', [path.resolve(path.dirname(new URL(import.meta.url).pathname), '../fixtures/mkedge.sh'), edge]);
  const { repo } = tmpRepo(t);
  await commitAt(repo, edge, { branch: 'edge' });
  const image = path.join(dir, 'edge.raw');
  await checkout(repo, { rev: 'edge', dest: image, build: { size: 256 * MiB, partition: 'none' } });
  run('e2fsck', ['-fn', image]);
  await commitAt(repo, image, { branch: 'rebuilt' });
  t.deepEqual(listing(repo, 'rebuilt'), listing(repo, 'edge'));
});
