/**
 * Rebuilt disks with other file systems: `--fs vfat` (mkfs.vfat + mtools; read back by viva's FAT reader, what FAT
 * cannot hold listed as warnings), `--fs xfs` (mkfs.xfs + a loop mount; checked with a loop mount against the source
 * tree, xfs_repair -n and xfs_db), and `--layout-from` a disk holding an ESP, an xfs and an ext4 partition.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { CheckoutError, UsageError } from '../../src/errors.js';
import { checkout } from '../../src/ops/checkout.js';
import { readCommit, readDisk } from '../../src/store/typed.js';
import { walkTree } from '../../src/tree/walk.js';
import type { Repository } from '../../src/store/repository.js';
import type { Oid } from '../../src/model/oid.js';
import type { TreeEntry } from '../../src/model/tree.js';
import { planFat } from '../../src/formats/fat-build.js';
import { MiB, commitAt, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';
import { bytes, canLoopMount, makeSourceTree } from '../helpers/ext4-images.js';
import { snapshotTree } from '../helpers/snapshot.js';

const ENV = { ...process.env, mtools_skip_check: '1', LC_ALL: 'C.UTF-8', TZ: 'UTC' };
const isRoot = process.getuid?.() === 0;
const have = (...cmds: string[]) => cmds.every((c) => spawnSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' }).status === 0);
const haveFat = have('mkfs.vfat', 'mcopy', 'mattrib', 'sfdisk');
const haveXfs = isRoot && have('mkfs.xfs', 'xfs_repair', 'xfs_db', 'sfdisk', 'mke2fs') && canLoopMount();
const ESP_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';

function run(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], input, env: ENV, maxBuffer: 64 * MiB }).toString();
}

/** The disk of branch `ref`'s head. */
function diskOf(repo: Repository, ref: string) {
  const c = readCommit(repo.objects, repo.refs.resolve(`refs/heads/${ref}`)?.oid!);
  return readDisk(repo.objects, c.root);
}

/** path → what a FAT file system keeps of the entry (type, size, content id, attribute xattr) and, optionally, its mtime. */
function fatView(repo: Repository, tree: Oid, mtime = true): Record<string, string> {
  const out: Record<string, string> = {};
  walkTree(repo.objects, tree, (p, e) => {
    const x = e.xattrs.map((a) => `${a.name}=${Buffer.from(a.value).toString('hex')}`).join(',');
    out[p.toString()] = `${e.type} ${e.size} ${e.oid && e.type === 'file' ? e.oid.slice(0, 12) : ''} ${(e.mode & 0o7777).toString(8)} ${x}${mtime ? ` ${e.mtimeNs}` : ''}`;
  });
  return out;
}

function treeOf(repo: Repository, ref: string): Oid {
  const c = readCommit(repo.objects, repo.refs.resolve(`refs/heads/${ref}`)?.oid!);
  return c.root;
}

/** A snapshotTree() line without the trusted.SGI_ACL_* xattrs through which XFS also shows a POSIX ACL. */
function withoutSgiAcls(line: string): string {
  return line.replace(/ xattr:trusted\.SGI_ACL_(FILE|DEFAULT)=[0-9a-f]*/g, '');
}

/** Copies `length` bytes at `offset` of `file` into a new sparse file. */
function extract(file: string, offset: number, length: number, to: string): string {
  run('dd', [`if=${file}`, `of=${to}`, 'bs=512', `skip=${offset / 512}`, `count=${length / 512}`, 'conv=sparse', 'status=none']);
  return to;
}

test('fat plan: what FAT cannot hold is one counted warning per kind, never dropped silently', (t) => {
  const e = (p: string, type: TreeEntry['type'], extra: Partial<TreeEntry> = {}) => ({
    path: Buffer.from(p, 'latin1'), entry: { type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, size: 1, mtimeNs: 1_600_000_000_000_000_000n, xattrs: [], ...extra },
  });
  const plan = planFat([
    e('EFI', 'dir'), e('EFI/BOOT', 'dir'), e('EFI/BOOT/BOOTX64.EFI', 'file', { xattrs: [{ name: 'user.fat.attributes', value: Uint8Array.of(0x07) }], mode: 0o444 }),
    e('README', 'file'), e('readme', 'file'), e('a:b', 'dir'), e('a:b/inside', 'file'), e('trailing.', 'file'), e('non-utf8-\xff', 'file'),
    e('link', 'symlink'), e('null', 'chr'), e('fifo', 'fifo'), e('sock', 'socket'),
    e('owned', 'file', { uid: 1000, gid: 1000 }), e('secret', 'file', { mode: 0o600 }), e('x', 'file', { xattrs: [{ name: 'user.x', value: Uint8Array.of(1) }] }),
    e('h1', 'file', { hardlink: Buffer.from('h1') }), e('h2', 'file', { hardlink: Buffer.from('h1') }), e('huge', 'file', { size: 2 ** 32 }), e('epoch', 'file', { mtimeNs: 0n }),
  ]);
  t.deepEqual(plan.dirs.map(String), ['EFI', 'EFI/BOOT']);
  t.deepEqual(plan.files.map(String), ['EFI/BOOT/BOOTX64.EFI', 'README', 'owned', 'secret', 'x', 'h1', 'h2', 'epoch']);
  t.deepEqual(plan.attributes.get(0x07)?.map(String), ['EFI/BOOT/BOOTX64.EFI']);
  const lines = plan.warnings.map((w) => `${w.path}${w.pathHex ? ` (${w.pathHex})` : ''}: ${w.message}${w.count ? ` [${w.count}]` : ''}`);
  t.deepEqual(lines, [
    "readme: not written: FAT names are case-insensitive and another name in its directory differs only in case",
    "a:b: not written: FAT cannot hold this name (not UTF-8, a character such as ':' or '*', a trailing dot or space, or too long) (and 2 more names) [3]",
    'link: symbolic link not written: FAT has none',
    'null: device node not written: FAT has none',
    'fifo: fifo not written: FAT has none',
    'sock: socket not written: FAT has none',
    'owned: owner not kept: FAT has no owners',
    'secret: mode not kept: FAT has no permission bits, only read-only',
    'x: xattrs not kept: FAT has none besides its attribute bits',
    'h1: hardlink written as a separate copy: FAT has no hardlinks (and 1 more name) [2]',
    'huge: not written: FAT holds files below 4 GiB',
    'epoch: mtime not kept: FAT holds 1980 to 2107 only',
  ]);
});

(haveFat ? test : test.skip)('rebuild --fs vfat: an ESP committed from FAT comes back with the same names, sizes, contents, attributes and mtimes', async (t) => {
  const dir = tmpDir(t);
  // A bare FAT16 image made by mtools: a boot loader, a long name, a hidden, a read-only and a system file.
  const esp = path.join(dir, 'esp.img');
  run('mkfs.vfat', ['-C', '-F', '16', '-n', 'ESP', esp, String(32 * 1024)]);
  const src = path.join(dir, 'src');
  writeTree(src, { EFI: { BOOT: { 'BOOTX64.EFI': bytes(70_000, 'shim'), 'grub.cfg': 'set timeout=1\n' } }, 'A long name.txt': 'long\n', 'Ünïcödé file.txt': 'utf8\n', HIDDEN: 'h', ro: 'r', sys: 's' },
    { mtime: new Date('2021-05-06T07:08:10Z') });
  run('mcopy', ['-s', '-m', '-i', esp, ...['EFI', 'A long name.txt', 'Ünïcödé file.txt', 'HIDDEN', 'ro', 'sys'].map((n) => path.join(src, n)), '::/']);
  run('mattrib', ['-i', esp, '+h', '::/HIDDEN']);
  run('mattrib', ['-i', esp, '+r', '-a', '::/ro']);
  run('mattrib', ['-i', esp, '+s', '+h', '::/sys']);
  const { repo } = tmpRepo(t);
  await commitAt(repo, esp, { branch: 'esp' });
  const original = diskOf(repo, 'esp').regions[0]!.content;
  t.is(original.kind, 'fs');
  if (original.kind !== 'fs') return;
  const out = path.join(dir, 'out.raw');
  const r = await checkout(repo, { rev: 'esp', dest: out, build: { size: 64 * MiB, fs: 'vfat' } });
  t.true(r.rebuilt);
  t.deepEqual(r.warnings, [], 'a FAT tree fits FAT');
  await commitAt(repo, out, { branch: 'rebuilt' });
  const d = diskOf(repo, 'rebuilt');
  t.is(d.table?.kind, 'gpt');
  const p1 = d.regions.find((x) => x.partition?.index === 1)!;
  t.is(p1.partition!.type.toUpperCase(), ESP_TYPE, 'an EFI system partition');
  t.is(p1.content.kind, 'fs');
  if (p1.content.kind !== 'fs') return;
  t.regex(p1.content.fsType, /^fat(16|32)$/);
  t.deepEqual(fatView(repo, p1.content.tree), fatView(repo, original.tree));
  const view = fatView(repo, p1.content.tree);
  // mcopy sets the archive bit on new files; mattrib changed the rest.
  t.regex(view['HIDDEN']!, /user\.fat\.attributes=22 /);
  t.regex(view['ro']!, / 444 user\.fat\.attributes=01 /);
  t.regex(view['sys']!, /user\.fat\.attributes=26 /);
  t.true(p1.offset === MiB);
  // dosfstools' own check finds nothing to fix.
  run('fsck.vfat', ['-n', extract(out, p1.offset, p1.size, path.join(dir, 'p1.img'))]);
});

(haveFat ? test : test.skip)('rebuild --fs vfat: a Linux tree loses what FAT cannot hold, with one warning per kind; --strict refuses', async (t) => {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  writeTree(src, {
    etc: { hostname: 'vm\n', 'secret': 'shh\n' }, boot: { vmlinuz: bytes(200_000, 'kernel') }, 'Ünïcödé long name.txt': 'utf8\n', 'ø.txt': 'short non-437\n',
    README: 'upper\n', readme: 'lower\n', 'a:b': 'colon\n', hard: 'linked\n',
  });
  fs.chmodSync(path.join(src, 'etc/secret'), 0o600);
  fs.symlinkSync('hostname', path.join(src, 'etc/link'));
  run('mkfifo', [path.join(src, 'fifo')]);
  fs.linkSync(path.join(src, 'hard'), path.join(src, 'hard2'));
  // An odd second and a fraction: FAT keeps 2-second steps, rounded down.
  fs.utimesSync(path.join(src, 'boot/vmlinuz'), 1_600_000_001.5, 1_600_000_001.5);
  const { repo } = tmpRepo(t);
  await commitAt(repo, src, { branch: 'linux' });
  const out = path.join(dir, 'out.img');
  const r = await checkout(repo, { rev: 'linux', dest: out, build: { size: 40 * MiB, fs: 'vfat', partition: 'mbr', label: 'EFI' } });
  const messages = r.warnings.map((w) => `${w.path}: ${w.message}`).sort();
  // (Not run as root, every entry is owned by the user: one more warning, for owners.)
  t.deepEqual(messages.filter((m) => !m.startsWith('ø.txt') && !/owner not kept/.test(m)), [
    "a:b: not written: FAT cannot hold this name (not UTF-8, a character such as ':' or '*', a trailing dot or space, or too long)",
    'etc/link: symbolic link not written: FAT has none',
    'etc/secret: mode not kept: FAT has no permission bits, only read-only',
    'fifo: fifo not written: FAT has none',
    'hard: hardlink written as a separate copy: FAT has no hardlinks (and 1 more name)',
    'readme: not written: FAT names are case-insensitive and another name in its directory differs only in case',
  ]);
  // mtools writes a short name it cannot encode in code page 437 as something else: reported, not silent.
  const changed = r.warnings.find((w) => w.path === 'ø.txt');
  t.true(changed === undefined || /written under another name/.test(changed.message), changed?.message);
  await commitAt(repo, out, { branch: 'fat' });
  const d = diskOf(repo, 'fat');
  t.is(d.table?.kind, 'mbr');
  const p1 = d.regions.find((x) => x.partition?.index === 1)!;
  t.is(p1.partition!.type, '0xef');
  if (p1.content.kind !== 'fs') { t.fail('p1 is not read as FAT'); return; }
  t.is(JSON.parse(p1.content.params.find(([k]) => k === 'label')![1]), 'EFI');
  const got = fatView(repo, p1.content.tree, false);
  const want = fatView(repo, treeOf(repo, 'linux'), false);
  for (const p of ['etc', 'etc/hostname', 'boot', 'boot/vmlinuz', 'Ünïcödé long name.txt', 'README', 'hard', 'hard2']) t.is(got[p], want[p], p);
  t.is(got['etc/secret']?.split(' ')[2], want['etc/secret']!.split(' ')[2], 'content kept, mode not');
  for (const p of ['etc/link', 'fifo', 'readme', 'a:b']) t.false(p in got, p);
  let mtime = 0n;
  walkTree(repo.objects, p1.content.tree, (p, e) => { if (p.toString() === 'boot/vmlinuz') mtime = e.mtimeNs; });
  t.is(mtime, 1_600_000_000n * 1_000_000_000n);
  await t.throwsAsync(checkout(repo, { rev: 'linux', dest: path.join(dir, 'strict.img'), strict: true, build: { size: 40 * MiB, fs: 'vfat' } }), { instanceOf: CheckoutError, message: /\(--strict\)$/ });
  t.false(fs.existsSync(path.join(dir, 'strict.img')));
});

(haveXfs ? test : test.skip)('rebuild --fs xfs: every kind of entry and attribute survives (loop mount compare, xfs_repair -n, xfs_db)', async (t) => {
  const dir = tmpDir(t);
  fs.chmodSync(dir, 0o755);
  const src = path.join(dir, 'src');
  makeSourceTree(src);
  // Linux's XFS refuses device numbers past 511:262143 (tested below): this one is for ext4's test of the tree.
  fs.rmSync(path.join(src, 'dev/bigblk'));
  run('setfattr', ['-n', 'security.selinux', '-v', 'system_u:object_r:etc_t:s0', path.join(src, 'small')]);
  // ns mtimes on a file, a directory and a symlink (set last, from the deepest up).
  run('touch', ['-h', '-d', '@1700000000.123456789', path.join(src, 'small'), path.join(src, 'links/short')]);
  run('touch', ['-d', '@1600000000.987654321', path.join(src, 'links')]);
  const { repo } = tmpRepo(t);
  await commitAt(repo, src, { branch: 'src' });
  const out = path.join(dir, 'root.raw');
  const r = await checkout(repo, { rev: 'src', dest: out, build: { size: 400 * MiB, fs: 'xfs', partition: 'none', label: 'root' } });
  t.deepEqual(r.warnings, []);
  t.true(fs.statSync(out).blocks * 512 < 200 * MiB, 'the image is sparse');
  run('xfs_repair', ['-n', out]);
  const version = run('xfs_db', ['-r', '-c', 'version', out]);
  for (const f of ['CRC', 'FTYPE', 'REFLINK', 'BIGTIME']) t.regex(version, new RegExp(`\\b${f}\\b`), f);
  t.regex(run('xfs_db', ['-r', '-c', 'label', out]), /"root"/);
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  run('mount', ['-o', 'ro,loop', out, mnt]);
  try {
    // XFS stores a POSIX ACL as the attribute trusted.SGI_ACL_FILE/_DEFAULT, and the kernel lists it to root under
    // that name too: the same ACL twice, not an extra xattr.
    const kernel = snapshotTree(mnt);
    t.true(kernel.some((l) => l.includes('xattr:trusted.SGI_ACL_FILE=')));
    t.deepEqual(kernel.map(withoutSgiAcls), snapshotTree(src));
    t.true(fs.statSync(path.join(mnt, 'sparse')).blocks * 512 < 4 * MiB, 'holes stay holes');
  } finally {
    run('umount', [mnt]);
  }
  // A device number XFS cannot store is refused before any work, naming it.
  const big = path.join(dir, 'big');
  fs.mkdirSync(path.join(big, 'dev'), { recursive: true });
  run('mknod', [path.join(big, 'dev/bigblk'), 'b', '4095', '1048575']);
  await commitAt(repo, big, { branch: 'big' });
  await t.throwsAsync(checkout(repo, { rev: 'big', dest: path.join(dir, 'big.raw'), build: { size: 400 * MiB, fs: 'xfs' } }),
    { instanceOf: UsageError, message: /'dev\/bigblk' is device 4095:1048575, which xfs cannot store \(major below 512, minor below 262144\): use --fs ext4$/ });
  t.false(fs.existsSync(path.join(dir, 'big.raw')));
  // Too small for mkfs.xfs: the user's to change (exit 2).
  await t.throwsAsync(checkout(repo, { rev: 'src', dest: path.join(dir, 'small.raw'), build: { size: 100 * MiB, fs: 'xfs' } }), { instanceOf: UsageError, message: /300 MiB/ });
});

(haveXfs && haveFat ? test : test.skip)('rebuild --layout-from a disk with an ESP, an xfs /boot and an ext4 root: pN/ trees go into their partitions, with their types and parameters', async (t) => {
  const dir = tmpDir(t);
  fs.chmodSync(dir, 0o755);
  const S = 512;
  const P1 = 2048;
  const P1N = 65536;
  const P2 = P1 + P1N;
  const P2N = 655360;
  const P3 = P2 + P2N;
  const P3N = 131072;
  const disk = path.join(dir, 'rhel.raw');
  fs.writeFileSync(disk, '');
  fs.truncateSync(disk, (P3 + P3N + 2048) * S);
  run('sfdisk', ['-q', '--label', 'gpt', disk], `start=${P1}, size=${P1N}, type=${ESP_TYPE}, name=esp\nstart=${P2}, size=${P2N}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=boot\nstart=${P3}, size=${P3N}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root\n`);
  // p1: FAT, p2: xfs filled through a loop mount, p3: ext4.
  run('mkfs.vfat', ['-F', '16', '-n', 'ESP', '--offset', String(P1), disk, String((P1N * S) / 1024)]);
  const old = path.join(dir, 'old');
  writeTree(old, { esp: { EFI: { BOOT: { 'BOOTX64.EFI': bytes(9000, 'old-shim') } } }, boot: { vmlinuz: bytes(100_000, 'old-kernel') }, root: { etc: { hostname: 'old\n' } } });
  run('mcopy', ['-s', '-m', '-i', `${disk}@@${P1 * S}`, path.join(old, 'esp/EFI'), '::/']);
  const xfs = path.join(dir, 'boot.img');
  fs.writeFileSync(xfs, '');
  fs.truncateSync(xfs, P2N * S);
  run('mkfs.xfs', ['-q', '-f', '-L', 'boot', xfs]);
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  run('mount', ['-o', 'loop', xfs, mnt]);
  try { run('cp', ['-a', `${path.join(old, 'boot')}/.`, mnt]); } finally { run('umount', [mnt]); }
  run('dd', [`if=${xfs}`, `of=${disk}`, 'bs=1M', `seek=${(P2 * S) / MiB}`, 'conv=notrunc,sparse', 'status=none']);
  run('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'root', '-d', path.join(old, 'root'), '-E', `offset=${P3 * S}`, disk, String((P3N * S) / 1024)]);
  const { repo } = tmpRepo(t);
  await commitAt(repo, disk, { branch: 'vm' });
  // New files for each partition, as a directory checkout of the disk gives them: p1/, p2/, p3/.
  const next = path.join(dir, 'next');
  writeTree(next, {
    p1: { EFI: { BOOT: { 'BOOTX64.EFI': bytes(12_000, 'new-shim'), 'grub.cfg': 'set default=0\n' } } },
    p2: { vmlinuz: bytes(150_000, 'new-kernel'), grub2: { 'grub.cfg': 'menuentry\n' } },
    p3: { etc: { hostname: 'new\n', shadow: 'root:*:1::::::\n' } },
  });
  fs.chownSync(path.join(next, 'p2/grub2/grub.cfg'), 1234, 5678);
  fs.chmodSync(path.join(next, 'p2/grub2/grub.cfg'), 0o4750);
  run('setfattr', ['-n', 'security.selinux', '-v', 'system_u:object_r:boot_t:s0', path.join(next, 'p2/vmlinuz')]);
  fs.chmodSync(path.join(next, 'p3/etc/shadow'), 0o000);
  await commitAt(repo, next, { branch: 'next' });
  const out = path.join(dir, 'out.raw');
  const r = await checkout(repo, { rev: 'next', dest: out, build: { layoutFrom: 'vm' } });
  t.deepEqual(r.warnings, []);
  t.is(fs.statSync(out).size, fs.statSync(disk).size);
  const a = fs.readFileSync(disk);
  const b = fs.readFileSync(out);
  t.true(b.subarray(0, P1 * S).equals(a.subarray(0, P1 * S)), 'the protective MBR and the GPT are copied');
  t.true(b.subarray((P3 + P3N) * S).equals(a.subarray((P3 + P3N) * S)), 'the backup GPT is copied');
  // The xfs file system keeps its uuid and label, passes xfs_repair -n, and holds p2/ exactly.
  t.true(b.subarray(P2 * S + 32, P2 * S + 48).equals(a.subarray(P2 * S + 32, P2 * S + 48)), 'xfs uuid');
  t.regex(run('xfs_db', ['-r', '-c', 'label', extract(out, P2 * S, P2N * S, path.join(dir, 'p2.img'))]), /"boot"/);
  run('xfs_repair', ['-n', path.join(dir, 'p2.img')]);
  run('mount', ['-o', `ro,loop,offset=${P2 * S},sizelimit=${P2N * S}`, out, mnt]);
  try { t.deepEqual(snapshotTree(mnt).map(withoutSgiAcls), snapshotTree(path.join(next, 'p2'))); } finally { run('umount', [mnt]); }
  // The ESP and the root read back with the new files, types and parameters kept.
  await commitAt(repo, out, { branch: 'rebuilt' });
  const d = diskOf(repo, 'rebuilt');
  const before = diskOf(repo, 'vm');
  const fsOf = (x: typeof d, n: number) => x.regions.find((g) => g.partition?.index === n)!.content;
  const p1 = fsOf(d, 1);
  const p3 = fsOf(d, 3);
  if (p1.kind !== 'fs' || p3.kind !== 'fs') { t.fail('p1 or p3 not read'); return; }
  t.is(p1.fsType, 'fat16');
  t.is(p3.fsType, 'ext4');
  const param = (c: typeof p1, k: string) => c.params.find(([n]) => n === k)?.[1];
  const b1 = fsOf(before, 1);
  const b3 = fsOf(before, 3);
  if (b1.kind !== 'fs' || b3.kind !== 'fs') { t.fail('the layout was not read'); return; }
  t.is(param(p1, 'volumeId'), param(b1, 'volumeId'));
  t.is(param(p1, 'label'), param(b1, 'label'));
  t.is(param(p3, 'uuid'), param(b3, 'uuid'));
  const nextTree = treeOf(repo, 'next');
  const sub = (name: string) => {
    let oid = '';
    walkTree(repo.objects, nextTree, (p, e) => { if (p.toString() === name) oid = e.oid!; return false; });
    return oid;
  };
  t.deepEqual(Object.keys(fatView(repo, p1.tree)), Object.keys(fatView(repo, sub('p1'))));
  const rootView = fatView(repo, p3.tree);
  delete rootView['lost+found'];
  t.deepEqual(rootView, fatView(repo, sub('p3')));
  // The rebuilt disk (a disk commit with several file systems) into the old layout: each file system by its number.
  // A partition the commit holds as raw bytes (xfs, where viva does not read it) cannot be carried over: said.
  const again = path.join(dir, 'again.raw');
  const r2 = await checkout(repo, { rev: 'rebuilt', dest: again, build: { layoutFrom: 'vm' } });
  const p2Raw = fsOf(d, 2).kind === 'raw';
  t.deepEqual(r2.warnings.map((w) => `${w.path}: ${w.message}`),
    p2Raw ? ["p2: not carried over: 'rebuilt' holds this partition as raw bytes, not files, so the one of 'vm' is kept"] : []);
  await commitAt(repo, again, { branch: 'again' });
  const p3again = fsOf(diskOf(repo, 'again'), 3);
  if (p3again.kind !== 'fs') { t.fail('p3 not read'); return; }
  t.deepEqual(Object.keys(fatView(repo, p3again.tree)), Object.keys(fatView(repo, p3.tree)));
  if (p2Raw) {
    const c = fs.readFileSync(again);
    t.true(c.subarray(P2 * S, (P2 + P2N) * S).equals(a.subarray(P2 * S, (P2 + P2N) * S)), "vm's p2 is kept");
  }
});
