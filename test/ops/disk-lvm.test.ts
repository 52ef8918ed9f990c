/**
 * LVM2 on a disk: a physical volume made by the real tools (on a loop device, metadata only) in an MBR or GPT
 * partition or on the whole disk, ext4 and FAT images written into its logical volumes' extents; commit reads each LV
 * into `VG/LV/`, checkout gives the disk back bit-exact, and damaged metadata leaves the PV raw with one warning.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CorruptInputError, UsageError } from '../../src/errors.js';
import { checkout } from '../../src/ops/checkout.js';
import { derive } from '../../src/ops/derive.js';
import { packageOp } from '../../src/ops/install.js';
import { inventoriesOf } from '../../src/ops/image-packages.js';
import { imageStats } from '../../src/ops/stats.js';
import { fsck } from '../../src/ops/fsck.js';
import { gc } from '../../src/ops/gc.js';
import { cat, diskLayout, ls } from '../../src/ops/ls.js';
import { lvmCrc } from '../../src/formats/lvm.js';
import { readDisk } from '../../src/store/typed.js';
import { DiskReader } from '../../src/ops/disk-reader.js';
import { AUTHOR, MiB, TIME, collect, commitAt, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';
import { snapshotTree } from '../helpers/snapshot.js';
import { viva, vivaOk } from '../helpers/cli.js';
import { type PvLayout, handMadePv, haveLvm, lvText, makePv, readLv, vgText, writeLv } from '../helpers/lvm.js';

function have(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const haveTools = haveLvm && have('mke2fs', ['-V']) && have('sfdisk', ['--version']);
const haveFat = have('mkfs.vfat', ['--help']) && have('mcopy', ['-V']);
const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const FAT_ENV = { ...process.env, mtools_skip_check: '1', LC_ALL: 'C.UTF-8', TZ: 'UTC' };

/** A populated source tree for the root LV. */
function rootTree(dir: string): string {
  const src = path.join(dir, 'root-src');
  writeTree(src, {
    etc: { hostname: 'lvm-host\n', fstab: '/dev/vg0/root / ext4 defaults 0 1\n' },
    usr: { bin: { tool: crypto.randomBytes(300_000) }, share: { doc: { README: 'hello\n'.repeat(1000) } } },
    var: { log: {}, lib: { dpkg: { status: 'Package: foo\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n' } } },
  }, { mtime: new Date(TIME * 1000) });
  return src;
}

/** An ext4 image of `src` of `mib` MiB. */
function ext4Image(dir: string, name: string, src: string, mib: number): string {
  const img = path.join(dir, `${name}.ext4`);
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-d', src, '-E', 'root_owner=0:0', img, `${mib}M`], { stdio: 'pipe' });
  return img;
}

/** A FAT image of `mib` MiB holding EFI/BOOT/BOOTX64.EFI. */
function fatImage(dir: string, mib: number): string {
  const img = path.join(dir, 'esp.vfat');
  execFileSync('mkfs.vfat', ['-C', '-n', 'ESP', img, String(mib * 1024)], { stdio: 'ignore' });
  const src = path.join(dir, 'esp-src');
  fs.mkdirSync(path.join(src, 'EFI', 'BOOT'), { recursive: true });
  fs.writeFileSync(path.join(src, 'EFI', 'BOOT', 'BOOTX64.EFI'), Buffer.alloc(5000, 7));
  execFileSync('mcopy', ['-s', '-i', img, path.join(src, 'EFI'), '::/'], { env: FAT_ENV });
  return img;
}

/** Partitions a disk file with sfdisk; returns each partition's byte offset and size. */
function partition(file: string, script: string): Array<{ start: number; size: number }> {
  execFileSync('sfdisk', ['-q', file], { input: script, stdio: ['pipe', 'ignore', 'pipe'] });
  const j = JSON.parse(execFileSync('sfdisk', ['-J', file], { encoding: 'utf8' })) as { partitiontable: { partitions: Array<{ start: number; size: number }> } };
  return j.partitiontable.partitions.map((p) => ({ start: p.start * 512, size: p.size * 512 }));
}

interface LvmDisk {
  file: string;
  pv: { start: number; size: number };
  layout: PvLayout;
  src: string;
}

/**
 * A disk whose PV (a partition of `label` 'dos'/'gpt' beside an ext4 p1, or the whole disk) holds vg0 with: root
 * (ext4 of `src`, 12 MiB in two segments: 8 MiB, then 4 MiB after 'esp'), esp (FAT, 4 MiB, when mkfs.vfat/mcopy are
 * there), empty (2 MiB of nothing).
 */
function lvmDisk(t: ExecutionContext, label: 'dos' | 'gpt' | 'whole'): LvmDisk {
  const dir = tmpDir(t);
  const file = path.join(dir, 'disk.raw');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, 48 * MiB);
  let pv = { start: 0, size: 48 * MiB };
  const src = rootTree(dir);
  if (label !== 'whole') {
    const types = label === 'dos' ? ['83', '8e'] : ['0FC63DAF-8483-4772-8E79-3D69D8477DE4', 'E6D6D379-F507-44C2-A23C-238F2A3DF928'];
    const parts = partition(file, `label: ${label}\nstart=2048, size=16384, type=${types[0]}\nstart=18432, type=${types[1]}\n`);
    pv = parts[1]!;
    const boot = path.join(dir, 'boot-src');
    writeTree(boot, { 'grub.cfg': 'set default=0\n' });
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', boot, '-E', `offset=${parts[0]!.start},root_owner=0:0`, file, `${parts[0]!.size / 1024}`], { stdio: 'pipe' });
  }
  const layout = makePv(file, [pv], 'vg0', (lvm) => {
    lvm('lvcreate', '--activate', 'n', '--zero', 'n', '-L', '8M', '-n', 'root', 'vg0');
    lvm('lvcreate', '--activate', 'n', '--zero', 'n', '-L', '4M', '-n', 'esp', 'vg0');
    lvm('lvextend', '-L', '+4M', 'vg0/root');
    lvm('lvcreate', '--activate', 'n', '--zero', 'n', '-L', '2M', '-n', 'empty', 'vg0');
  });
  const root = layout.lvs.get('root')!;
  t.is(root.length, 2, 'lvextend after another LV gave root a second segment');
  writeLv(file, pv.start, layout, root, ext4Image(dir, 'root', src, 12));
  if (haveFat) writeLv(file, pv.start, layout, layout.lvs.get('esp')!, fatImage(dir, 4));
  return { file, pv, layout, src };
}

/** The snapshot of a directory without its root line and ext4's lost+found. */
function contentOf(dir: string): string[] {
  return snapshotTree(dir).filter((l) => !l.startsWith('. ') && !l.startsWith('lost+found'));
}

async function checkLvmDisk(t: ExecutionContext, d: LvmDisk, label: string): Promise<void> {
  const { repo, dir } = tmpRepo(t);
  const r = await commitAt(repo, d.file, { branch: 'vm/lvm' });
  const where = label === 'whole' ? 'whole disk' : 'p2';
  t.deepEqual(r.warnings, [
    ...(haveFat ? [] : [`${d.file}: ${where}: vg0/esp: unknown content in the logical volume, which viva does not read: stored as raw bytes, files inside are not indexed`]),
    `${d.file}: ${where}: vg0/empty: unknown content in the logical volume, which viva does not read: stored as raw bytes, files inside are not indexed`,
  ]);
  // Paths: VG/LV, beside the partitions.
  t.deepEqual(ls(repo, { spec: 'vm/lvm' }).map((e) => e.path), label === 'whole' ? ['vg0'] : ['p1', 'vg0']);
  t.deepEqual(ls(repo, { spec: 'vm/lvm:vg0' }).map((e) => e.path), haveFat ? ['vg0/esp', 'vg0/root'] : ['vg0/root']);
  t.deepEqual(ls(repo, { spec: 'vm/lvm:vg0/root/etc' }).map((e) => e.path), ['vg0/root/etc/fstab', 'vg0/root/etc/hostname']);
  t.is((await collect(cat(repo, 'vm/lvm:vg0/root/etc/hostname'))).toString(), 'lvm-host\n');
  if (haveFat) t.is((await collect(cat(repo, 'vm/lvm:vg0/esp/EFI/BOOT/BOOTX64.EFI'))).length, 5000);
  // The LV's tree is the source tree.
  const out = path.join(dir, 'root-out');
  await checkout(repo, { rev: 'vm/lvm:vg0/root', dest: out });
  t.deepEqual(contentOf(out), contentOf(d.src));
  // The layout lists the volume group and each LV where lvs says it is.
  const info = diskLayout(repo, 'vm/lvm')!;
  const pvRegion = info.regions.find((x) => x.kind === 'lvm')!;
  t.is(pvRegion.offset, d.pv.start);
  t.is(pvRegion.lvm!.vg, 'vg0');
  t.is(pvRegion.lvm!.extentSize, d.layout.extentSize);
  t.is(pvRegion.lvm!.peStart, d.layout.peStart);
  const root = pvRegion.lvm!.volumes.find((v) => v.name === 'root')!;
  t.is(root.path, 'vg0/root');
  t.is(root.fs!.type, 'ext4');
  t.deepEqual(root.segments, d.layout.lvs.get('root')!.map((s) => ({ offset: d.pv.start + d.layout.peStart + s.pvStart * d.layout.extentSize, size: s.count * d.layout.extentSize })));
  t.deepEqual(pvRegion.lvm!.volumes.map((v) => [v.name, v.read]), [['root', true], ['esp', haveFat], ['empty', false]]);
  // gc keeps everything the disk refers to (the LVs' trees, file blobs, data and map blobs): nothing is unreachable.
  t.is((await gc(repo)).removed, 0);
  // Bit-exact: a raw round trip of the whole disk, and the LV's bytes in particular.
  const raw = path.join(dir, 'out.raw');
  await checkout(repo, { rev: 'vm/lvm', dest: raw });
  t.is(fs.statSync(raw).size, fs.statSync(d.file).size);
  t.true(readLv(raw, d.pv.start, d.layout, d.layout.lvs.get('root')!).equals(readLv(d.file, d.pv.start, d.layout, d.layout.lvs.get('root')!)));
  t.is(sha(raw), sha(d.file), 'the raw checkout is the same disk');
  execFileSync('cmp', [raw, d.file]);
  // Random access (what the NBD server serves) gives the same bytes, read in uneven pieces across segment edges.
  const reader = new DiskReader(repo.objects, readDisk(repo.objects, r.root));
  const whole = fs.readFileSync(d.file);
  for (let at = 0, step = 12345; at < whole.length; at += step, step = step * 7 % 3_000_001 + 4096) {
    const n = Math.min(step, whole.length - at);
    if (!reader.read(at, n).equals(whole.subarray(at, at + n))) { t.fail(`bytes at ${at} (+${n}) differ`); break; }
  }
  t.deepEqual((await fsck(repo)).problems, []);
  // Committing the checkout gives the same disk object.
  const again = await commitAt(repo, raw, { branch: 'vm/again' });
  t.is(again.root, r.root);
  // The same disk in a qcow2 container (unallocated clusters are holes) is the same disk object.
  if (label === 'dos' && have('qemu-img', ['--version'])) {
    const q = path.join(dir, 'disk.qcow2');
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', d.file, q], { stdio: 'ignore' });
    t.is((await commitAt(repo, q, { branch: 'vm/qcow2' })).root, r.root);
  }
}

(haveTools ? test : test.skip)('commit disk: an LVM PV in an MBR partition (type 8e): LVs read under vg0/, bit-exact checkout', async (t) => {
  await checkLvmDisk(t, lvmDisk(t, 'dos'), 'dos');
});

(haveTools ? test : test.skip)('commit disk: an LVM PV in a GPT partition (Linux LVM type): LVs read under vg0/, bit-exact checkout', async (t) => {
  await checkLvmDisk(t, lvmDisk(t, 'gpt'), 'gpt');
});

(haveTools ? test : test.skip)('commit disk: a whole-disk LVM PV: the view is vg0/, bit-exact checkout', async (t) => {
  await checkLvmDisk(t, lvmDisk(t, 'whole'), 'whole');
});

(haveTools ? test : test.skip)('derive: a partition beside an LVM PV is patched; a path inside a logical volume is refused', async (t) => {
  const d = lvmDisk(t, 'dos');
  const { repo, dir } = tmpRepo(t);
  await commitAt(repo, d.file, { branch: 'vm/base' });
  await derive(repo, { base: 'vm/base', branch: 'vm/web', author: AUTHOR, time: TIME + 100, edits: [{ op: 'set', path: 'p1/motd', data: Buffer.from('hi\n') }] });
  t.is((await collect(cat(repo, 'vm/web:p1/motd'))).toString(), 'hi\n');
  t.is((await collect(cat(repo, 'vm/web:vg0/root/etc/hostname'))).toString(), 'lvm-host\n');
  const out = path.join(dir, 'web.raw');
  await checkout(repo, { rev: 'vm/web', dest: out });
  t.true(readLv(out, d.pv.start, d.layout, d.layout.lvs.get('root')!).equals(readLv(d.file, d.pv.start, d.layout, d.layout.lvs.get('root')!)), 'the LV is untouched');
  const e = await t.throwsAsync(derive(repo, { base: 'vm/base', branch: 'vm/x', author: AUTHOR, time: TIME + 100, edits: [{ op: 'set', path: 'vg0/root/etc/hostname', data: Buffer.from('x\n') }] }), { instanceOf: UsageError });
  t.regex(e!.message, /'vg0' holds LVM logical volumes: derive and merge do not change file systems inside them/);
  // Packages: the dpkg database is found in the LV (listed as vg0/root), and installing there is refused the same way.
  t.deepEqual((await inventoriesOf(repo, 'vm/base')).map((i) => [i.partition, i.packages.map((x) => x.name)]), [['vg0/root', ['foo']]]);
  const p = await t.throwsAsync(packageOp(repo, { op: 'remove', base: 'vm/base', branch: 'vm/y', packages: ['foo'], from: [], author: AUTHOR, time: TIME + 200 }), { instanceOf: UsageError });
  t.regex(p!.message, /the dpkg database is in LVM logical volume 'vg0\/root': packages cannot be installed into logical volumes/);
  t.deepEqual((await fsck(repo)).problems, []);
});

(haveTools ? test : test.skip)('viva ls/cat/show on an LVM disk: REV:vg0/root paths, the volume group and its LVs listed', async (t) => {
  const d = lvmDisk(t, 'dos');
  const repo = path.join(tmpDir(t), 'repo');
  await vivaOk(t, ['init', repo]);
  const c = await viva(['commit', '-C', repo, d.file, '-b', 'vm/lvm', '-m', 'lvm']);
  t.is(c.code, 0, c.stderr);
  t.regex(c.stderr, /warning: .*: p2: vg0\/empty: unknown content in the logical volume/);
  t.is((await vivaOk(t, ['ls', '-C', repo, 'vm/lvm:vg0/root/etc'])).stdout, 'vg0/root/etc/fstab\nvg0/root/etc/hostname\n');
  t.is((await vivaOk(t, ['cat', '-C', repo, 'vm/lvm:vg0/root/etc/hostname'])).stdout, 'lvm-host\n');
  const show = (await vivaOk(t, ['ls', '-C', repo, 'vm/lvm'])).stdout;
  t.regex(show, /p2 .* LVM2 PV vg=vg0 extent=1\.0 MiB/);
  t.regex(show, /vg0\/root +12\.0 MiB {2}ext4 .* -> vg0\/root\/ \(2 segments\)/);
  t.regex(show, /vg0\/empty +2\.0 MiB {2}raw \(striped\)/);
});

(haveTools ? test : test.skip)('commit disk: a volume group over two PVs (two partitions): LVs on one PV read under one vg0/, striped and spanning LVs raw with one warning each', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'disk.raw');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, 48 * MiB);
  const lvmType = 'E6D6D379-F507-44C2-A23C-238F2A3DF928';
  const parts = partition(file, `label: gpt\nstart=2048, size=40960, type=${lvmType}\nstart=43008, type=${lvmType}\n`);
  const layout = makePv(file, parts, 'vg0', (lvm, [a, b]) => {
    lvm('lvcreate', '--activate', 'n', '--zero', 'n', '-L', '12M', '-n', 'root', 'vg0', a!);
    lvm('lvcreate', '--activate', 'n', '--zero', 'n', '-L', '8M', '-n', 'data', 'vg0', b!);
    lvm('lvcreate', '--activate', 'n', '--zero', 'n', '-i', '2', '-I', '64k', '-L', '4M', '-n', 'striped', 'vg0');
    lvm('lvcreate', '--activate', 'n', '--zero', 'n', '-L', '2M', '-n', 'span', 'vg0', a!);
    lvm('lvextend', '-L', '+2M', 'vg0/span', b!);
  });
  const src = rootTree(dir);
  const root = layout.lvs.get('root')!;
  const data = layout.lvs.get('data')!;
  t.deepEqual([root.map((x) => x.pv), data.map((x) => x.pv), layout.lvs.get('span')!.map((x) => x.pv)], [[0], [1], [0, 1]]);
  writeLv(file, parts[0]!.start, layout, root, ext4Image(dir, 'root', src, 12));
  const dataSrc = path.join(dir, 'data-src');
  writeTree(dataSrc, { 'db.sqlite': crypto.randomBytes(100_000) });
  writeLv(file, parts[1]!.start, layout, data, ext4Image(dir, 'data', dataSrc, 8));
  const { repo, dir: rd } = tmpRepo(t);
  const r = await commitAt(repo, file, { branch: 'vm/two' });
  t.deepEqual(r.warnings, [
    `${file}: p1: vg0/striped: logical volume with 2 stripes: stored as raw bytes, files inside are not indexed`,
    `${file}: p1: vg0/span: logical volume with segments on another physical volume ('pv1'): stored as raw bytes, files inside are not indexed`,
  ]);
  t.deepEqual(ls(repo, { spec: 'vm/two' }).map((e) => e.path), ['vg0']);
  t.is(imageStats(repo, 'vm/two').dirs, r.dirs, 'stats counts directories as commit does (the VG directory is synthetic)');
  t.is(imageStats(repo, 'vm/two').files, r.files);
  t.deepEqual(ls(repo, { spec: 'vm/two:vg0' }).map((e) => e.path), ['vg0/data', 'vg0/root']);
  const out = path.join(rd, 'root');
  await checkout(repo, { rev: 'vm/two:vg0/root', dest: out });
  t.deepEqual(contentOf(out), contentOf(src));
  const dout = path.join(rd, 'data');
  await checkout(repo, { rev: 'vm/two:vg0/data', dest: dout });
  t.deepEqual(contentOf(dout), contentOf(dataSrc));
  const info = diskLayout(repo, 'vm/two')!;
  t.deepEqual(info.regions.filter((x) => x.lvm).map((x) => [x.partition!.index, x.lvm!.pvCount, x.lvm!.volumes.filter((v) => v.read).map((v) => v.name)]), [[1, 2, ['root']], [2, 2, ['data']]]);
  const raw = path.join(rd, 'out.raw');
  await checkout(repo, { rev: 'vm/two', dest: raw });
  t.is(sha(raw), sha(file));
  t.deepEqual((await fsck(repo)).problems, []);
});

/** Rewrites the current metadata text of the PV at `pvOffset` of `file` (new length allowed), with `fixCrc` its checksums. */
function rewriteMetadata(file: string, pvOffset: number, edit: (text: string) => string, fixCrc = true): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const h = Buffer.alloc(512);
    fs.readSync(fd, h, 0, 512, pvOffset + 4096);
    const off = Number(h.readBigUInt64LE(40));
    const len = Number(h.readBigUInt64LE(48));
    const text = Buffer.alloc(len);
    fs.readSync(fd, text, 0, len, pvOffset + 4096 + off);
    const next = Buffer.from(edit(text.toString('utf8')));
    fs.writeSync(fd, next, 0, next.length, pvOffset + 4096 + off);
    h.writeBigUInt64LE(BigInt(next.length), 48);
    h.writeUInt32LE(fixCrc ? lvmCrc(next) : (lvmCrc(next) ^ 1) >>> 0, 56);
    h.writeUInt32LE(lvmCrc(h.subarray(4)), 0);
    fs.writeSync(fd, h, 0, 512, pvOffset + 4096);
  } finally {
    fs.closeSync(fd);
  }
}

function flipByte(file: string, at: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0] ^= 0xff;
    fs.writeSync(fd, b, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}

const DAMAGES: Array<[string, (d: LvmDisk) => void, RegExp]> = [
  ['a bad label checksum', (d) => flipByte(d.file, d.pv.start + 512 + 40), /: p2: LVM2 physical volume label unreadable \(checksum, sector number or type does not match\): stored as raw bytes, files inside are not indexed$/],
  ['a bad metadata area header checksum', (d) => flipByte(d.file, d.pv.start + 4096 + 30), /: p2: LVM2 physical volume unreadable \(metadata area at byte 4096: metadata area header checksum does not match\): stored as raw bytes, files inside are not indexed$/],
  ['a bad metadata text checksum', (d) => rewriteMetadata(d.file, d.pv.start, (s) => s, false), /: p2: LVM2 physical volume unreadable \(metadata area at byte 4096: metadata text checksum does not match\): stored as raw bytes, files inside are not indexed$/],
  ['garbage metadata text', (d) => rewriteMetadata(d.file, d.pv.start, (s) => s.replace('logical_volumes {', 'logical_volumes { = = [')), /: p2: LVM2 physical volume unreadable \(LVM metadata: metadata text line \d+: .*\): stored as raw bytes/],
  ['a segment past the end of the PV', (d) => rewriteMetadata(d.file, d.pv.start, (s) => s.replace(/"pv0", 0\n/, '"pv0", 1000\n')), /: p2: LVM2 physical volume unreadable \(volume group 'vg0': logical volume 'root': segment1: extents 1000\.\.1007 lie past the physical volume's \d+ extents\)/],
  ['two LVs on the same extents', (d) => rewriteMetadata(d.file, d.pv.start, (s) => s.replace(/("pv0", )8\n/, '$10\n')), /: p2: LVM2 physical volume unreadable \(volume group 'vg0': logical volumes '\w+' and '\w+' overlap at physical extent \d+\)/],
  ['a segment listed twice (a loop in the segment list)', (d) => rewriteMetadata(d.file, d.pv.start, (s) => s.replace('start_extent = 8\n', 'start_extent = 0\n')), /: p2: LVM2 physical volume unreadable \(volume group 'vg0': logical volume 'root': segment\d: starts at extent 0 with \d+ extents, expected a non-empty segment at extent \d+\)/],
  ['a PV uuid missing from the metadata', (d) => rewriteMetadata(d.file, d.pv.start, (s) => s.replace(/(physical_volumes \{\s*pv0 \{\s*id = ")./, '$1#')), /this physical volume \(.*\) is not in its volume group's metadata/],
];

for (const [what, damage, re] of DAMAGES) {
  (haveTools ? test : test.skip)(`commit disk: an LVM PV with ${what} is kept raw with one warning, bit-exact; --strict refuses it`, async (t) => {
    const d = lvmDisk(t, 'dos');
    damage(d);
    const { repo, dir } = tmpRepo(t);
    const started = Date.now();
    const r = await commitAt(repo, d.file, { branch: 'vm/bad' });
    t.true(Date.now() - started < 60_000);
    t.is(r.warnings.length, 1, r.warnings.join('\n'));
    t.regex(r.warnings[0]!, re);
    t.deepEqual(ls(repo, { spec: 'vm/bad' }).map((e) => e.path), ['p1']);
    const out = path.join(dir, 'out.raw');
    await checkout(repo, { rev: 'vm/bad', dest: out });
    t.is(sha(out), sha(d.file));
    t.deepEqual((await fsck(repo)).problems, []);
    await t.throwsAsync(commitAt(repo, d.file, { branch: 'vm/strict', strict: true }), { instanceOf: CorruptInputError });
    t.is(repo.refs.resolve('refs/heads/vm/strict')?.oid, undefined);
  });
}

(haveTools ? test : test.skip)('commit disk: a damaged whole-disk PV is kept raw with one warning, never refused', async (t) => {
  const d = lvmDisk(t, 'whole');
  rewriteMetadata(d.file, 0, (s) => s.replace('extent_size', 'extent_size = [ {'));
  const { repo, dir } = tmpRepo(t);
  const r = await commitAt(repo, d.file, { branch: 'vm/bad' });
  t.is(r.warnings.length, 1);
  t.regex(r.warnings[0]!, /: whole disk: LVM2 physical volume unreadable \(LVM metadata: metadata text line \d+: .*\): stored as raw bytes, files inside are not indexed$/);
  const out = path.join(dir, 'out.raw');
  await checkout(repo, { rev: 'vm/bad', dest: out });
  t.is(sha(out), sha(d.file));
});

(haveTools ? test : test.skip)('commit disk: an LV whose ext4 the reader refuses is kept raw with a warning; the other LVs are read', async (t) => {
  const d = lvmDisk(t, 'whole');
  const root = d.layout.lvs.get('root')![0]!;
  // The superblock's volume name, changed without its checksum: the reader refuses the file system.
  flipByte(d.file, d.pv.start + d.layout.peStart + root.pvStart * d.layout.extentSize + 1024 + 0x78);
  const { repo, dir } = tmpRepo(t);
  const r = await commitAt(repo, d.file, { branch: 'vm/lv' });
  t.is(r.warnings.length, haveFat ? 2 : 3, r.warnings.join('\n'));
  t.regex(r.warnings[0]!, /: whole disk: vg0\/root: ext file system unreadable \(.*checksum.*\): stored as raw bytes, files inside are not indexed$/);
  t.deepEqual(ls(repo, { spec: 'vm/lv:vg0' }).map((e) => e.path), haveFat ? ['vg0/esp'] : []);
  const out = path.join(dir, 'out.raw');
  await checkout(repo, { rev: 'vm/lv', dest: out });
  t.is(sha(out), sha(d.file));
  t.deepEqual((await fsck(repo)).problems, []);
  await t.throwsAsync(commitAt(repo, d.file, { branch: 'vm/strict', strict: true }), { instanceOf: CorruptInputError, message: /vg0\/root: ext file system unreadable .*\(--strict\)$/ });
});

test('commit disk: thin, snapshot and raid logical volumes (metadata written by hand) are kept raw with one warning each', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'disk.raw');
  const text = vgText('vg1', 30, [
    lvText('plain', [{ count: 2, pe: 0 }]),
    lvText('pool', [{ type: 'thin-pool', count: 4, extra: 'metadata = "pool_tmeta"\npool = "pool_tdata"\n' }]),
    lvText('pool_tdata', [{ count: 4, pe: 2 }], false),
    lvText('thin1', [{ type: 'thin', count: 8, extra: 'thin_pool = "pool"\ndevice_id = 1\n' }]),
    lvText('snap', [{ type: 'snapshot', count: 1, extra: 'origin = "plain"\ncow_store = "cow"\nchunk_size = 8\n' }]),
    lvText('mirror', [{ type: 'raid1', count: 2, extra: 'device_count = 2\nraids = ["a", "b", "c", "d"]\n' }]),
    lvText('spread', [{ count: 2, pe: 0, pv: 'pv1' }]),
  ], 'pv1 {\nid = "other-pv"\ndevice = "/dev/y"\npe_start = 2048\npe_count = 10\n}\n');
  fs.writeFileSync(file, handMadePv(32 * MiB, text));
  const { repo, dir: rd } = tmpRepo(t);
  const r = await commitAt(repo, file, { branch: 'vm/thin' });
  t.deepEqual(r.warnings, [
    `${file}: whole disk: vg1/plain: unknown content in the logical volume, which viva does not read: stored as raw bytes, files inside are not indexed`,
    `${file}: whole disk: vg1/pool: logical volume with segment type 'thin-pool': stored as raw bytes, files inside are not indexed`,
    `${file}: whole disk: vg1/thin1: logical volume with segment type 'thin': stored as raw bytes, files inside are not indexed`,
    `${file}: whole disk: vg1/snap: logical volume with segment type 'snapshot': stored as raw bytes, files inside are not indexed`,
    `${file}: whole disk: vg1/mirror: logical volume with segment type 'raid1': stored as raw bytes, files inside are not indexed`,
    `${file}: whole disk: vg1/spread: logical volume on physical volume 'pv1', which is not on this disk: not read`,
  ]);
  const info = diskLayout(repo, 'vm/thin')!;
  t.deepEqual(info.regions[0]!.lvm!.volumes.map((v) => [v.name, v.types.join(','), v.read]), [
    ['plain', 'striped', false], ['pool', 'thin-pool', false], ['pool_tdata', 'striped', false], ['thin1', 'thin', false],
    ['snap', 'snapshot', false], ['mirror', 'raid1', false], ['spread', 'striped', false],
  ]);
  t.is(info.regions[0]!.lvm!.pvCount, 2);
  const out = path.join(rd, 'out.raw');
  await checkout(repo, { rev: 'vm/thin', dest: out });
  t.is(sha(out), sha(file));
  t.deepEqual((await fsck(repo)).problems, []);
  // The disk object of an LVM disk is encoded as version 3 and decodes back to the same regions.
  const disk = readDisk(repo.objects, r.root);
  t.is(disk.regions[0]!.content.kind, 'lvm');
});
