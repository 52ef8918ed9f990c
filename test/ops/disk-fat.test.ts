/** A FAT partition of a disk is read into a tree (names, attributes) and the disk still checks out bit-exact. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { CorruptInputError } from '../../src/errors.js';
import { checkout } from '../../src/ops/checkout.js';
import { fsck } from '../../src/ops/fsck.js';
import { ls } from '../../src/ops/ls.js';
import { describeDisk } from '../../src/ops/disk-info.js';
import { readCommit, readDisk } from '../../src/store/typed.js';
import { commitAt, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';
import { SECTOR, haveMke2fs, makeMbrDisk, patchBytes } from '../helpers/mbr-disk.js';

const P1 = 2048;
const SECTORS = 16384;
const ENV = { ...process.env, mtools_skip_check: '1', LC_ALL: 'C.UTF-8', TZ: 'UTC' };

function haveTools(): boolean {
  try {
    execFileSync('mkfs.vfat', ['--help'], { stdio: 'ignore' });
    execFileSync('mcopy', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** An MBR disk whose p1 (type 0x0e, FAT16) holds EFI/BOOT/BOOTX64.EFI, a long-named file and a hidden one. */
function fatDisk(dir: string, root?: string): string {
  const file = path.join(dir, 'disk.raw');
  makeMbrDisk(file, 32, [{ start: P1, sectors: SECTORS, type: 0x0e }, ...(root ? [{ start: P1 + SECTORS, sectors: 30720, type: 0x83, ext4Tree: root }] : [])]);
  execFileSync('mkfs.vfat', ['-F', '16', '-s', '1', '-n', 'ESP', '--offset', String(P1), file, String((SECTORS * SECTOR) / 1024)], { stdio: 'ignore' });
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'EFI', 'BOOT'), { recursive: true });
  fs.writeFileSync(path.join(src, 'EFI', 'BOOT', 'BOOTX64.EFI'), Buffer.alloc(5000, 7));
  fs.writeFileSync(path.join(src, 'A long name.txt'), 'long\n');
  const img = `${file}@@${P1 * SECTOR}`;
  execFileSync('mcopy', ['-s', '-i', img, path.join(src, 'EFI'), path.join(src, 'A long name.txt'), '::/'], { env: ENV });
  execFileSync('mattrib', ['-i', img, '+h', '::/A long name.txt'], { env: ENV });
  return file;
}

const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

(haveTools() ? test : test.skip)('commit disk: a FAT partition becomes a tree and checks out bit-exact; a damaged one is raw with a warning', async (t) => {
  const dir = tmpDir(t);
  const file = fatDisk(dir);
  const { repo } = tmpRepo(t);
  const r = await commitAt(repo, file, { branch: 'vm/esp' });
  t.deepEqual(r.warnings, []);
  t.is(r.files, 2);
  t.deepEqual(ls(repo, { spec: 'vm/esp:p1', recursive: true }).map((e) => e.path).sort(),
    ['p1/A long name.txt', 'p1/EFI', 'p1/EFI/BOOT', 'p1/EFI/BOOT/BOOTX64.EFI']);
  const out = path.join(dir, 'out.raw');
  await checkout(repo, { rev: 'vm/esp', dest: out });
  t.is(sha(out), sha(file), 'the raw checkout is the same disk');
  t.deepEqual((await fsck(repo)).problems, []);
  // Bytes per sector 300: no FAT boot sector, so the partition is stored raw, with a warning.
  patchBytes(file, P1 * SECTOR + 11, Buffer.from([0x2c, 0x01]));
  const bad = await commitAt(repo, file, { branch: 'vm/bad' });
  t.is(bad.files, 0);
  t.is(bad.warnings.length, 1);
  t.regex(bad.warnings[0]!, /: p1: unknown content \(partition type [0-9a-fx-]+\): stored as raw bytes, files inside are not indexed$/, 'no FAT boot sector any more: the partition is raw bytes');
  // A FAT loop in the file's chain: the reader refuses it, the partition is raw with a warning; strict refuses.
  patchBytes(file, P1 * SECTOR + 11, Buffer.from([0x00, 0x02]));
  const boot = fs.readFileSync(file).subarray(P1 * SECTOR, P1 * SECTOR + 512);
  const fatAt = P1 * SECTOR + boot.readUInt16LE(14) * 512;
  const whole = fs.readFileSync(file);
  const entry = whole.indexOf(Buffer.from('BOOTX64 EFI'));
  const first = whole.readUInt16LE(entry + 26);
  patchBytes(file, fatAt + (first + 1) * 2, Buffer.from([first & 0xff, first >> 8]));
  const loop = await commitAt(repo, file, { branch: 'vm/loop' });
  t.is(loop.warnings.length, 1);
  t.regex(loop.warnings[0]!, /: p1: FAT file system unreadable \(cluster \d+: the cluster chain of 'EFI\/BOOT\/BOOTX64\.EFI' loops; the partition starts at byte 1048576\): stored as raw bytes$/);
  await t.throwsAsync(commitAt(repo, file, { branch: 'vm/strict', strict: true }), { instanceOf: CorruptInputError });
});

(haveTools() && haveMke2fs() ? test : test.skip)('commit disk: an ESP beside an ext4 root: disk info names FAT16, a bare .ext4 checkout takes the root', async (t) => {
  const dir = tmpDir(t);
  const root = path.join(dir, 'root');
  writeTree(root, { etc: { hostname: 'vm\n' } });
  const file = fatDisk(dir, root);
  const { repo } = tmpRepo(t);
  await commitAt(repo, file, { branch: 'vm' });
  const commit = readCommit(repo.objects, repo.refs.resolve('refs/heads/vm')?.oid!);
  const info = describeDisk(commit.root, readDisk(repo.objects, commit.root));
  const fss = info.regions.filter((r) => r.fs).map((r) => [r.path, r.fs!.type, r.fs!.label]);
  t.deepEqual(fss, [['p1', 'fat16', 'ESP'], ['p2', 'ext4', '']]);
  t.regex(info.regions.find((r) => r.path === 'p1')!.fs!.uuid ?? '', /^[0-9A-F]{4}-[0-9A-F]{4}$/);
  t.is(info.regions.find((r) => r.path === 'p1')!.fs!.blockSize, 512, 'the cluster size');
  const out = path.join(dir, 'root.ext4');
  await checkout(repo, { rev: 'vm', dest: out });
  t.true(fs.statSync(out).size > 0);
  // A new root into the same layout: the ESP is copied bit-exact, the ext4 partition is rebuilt.
  writeTree(root, { etc: { hostname: 'rebuilt\n' } });
  await commitAt(repo, root, { branch: 'rootfs' });
  const layout = path.join(dir, 'layout.raw');
  await checkout(repo, { rev: 'rootfs', dest: layout, build: { layoutFrom: 'vm' } });
  const esp = (f: string) => fs.readFileSync(f).subarray(P1 * SECTOR, (P1 + SECTORS) * SECTOR);
  t.true(esp(layout).equals(esp(file)));
  t.false(fs.readFileSync(layout).equals(fs.readFileSync(file)));
});

(haveTools() ? test : test.skip)('commit disk: a bare FAT32 image (no partition table) is a tree and checks out bit-exact; a damaged one fails', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'esp.img');
  execFileSync('mkfs.vfat', ['-C', '-F', '32', '-s', '1', file, '40960'], { stdio: 'ignore' });
  execFileSync('mmd', ['-i', file, '::/EFI'], { env: ENV });
  fs.writeFileSync(path.join(dir, 'grub.cfg'), 'set timeout=1\n');
  execFileSync('mcopy', ['-i', file, path.join(dir, 'grub.cfg'), '::/EFI/Grub.cfg'], { env: ENV });
  const { repo } = tmpRepo(t);
  const r = await commitAt(repo, file, { branch: 'esp' });
  t.is(r.files, 1);
  t.deepEqual(ls(repo, { spec: 'esp', recursive: true }).map((e) => e.path), ['EFI', 'EFI/Grub.cfg']);
  const out = path.join(dir, 'out.img');
  await checkout(repo, { rev: 'esp', dest: out });
  t.is(sha(out), sha(file));
  // The long name's checksum no longer matches: nothing to fall back to.
  const img = fs.readFileSync(file);
  const at = img.indexOf(Buffer.from('GRUB    CFG'));
  patchBytes(file, at - 32 + 13, Buffer.from([img[at - 32 + 13]! ^ 1]));
  const e = await t.throwsAsync(commitAt(repo, file, { branch: 'bad' }), { instanceOf: CorruptInputError });
  t.regex(e!.message, /long-name checksum \d+ does not match/);
});
