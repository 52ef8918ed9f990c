/**
 * A RHEL-like disk, as RHEL 9 / Rocky / Alma cloud images and their installers lay it out: GPT with an EFI system
 * partition (vfat), /boot on XFS, and an LVM2 physical volume whose volume group holds an XFS root and swap. Every
 * file system is made by the real tools (mkfs.vfat + mtools, mkfs.xfs + a loop mount, pvcreate/vgcreate/lvcreate),
 * committed, compared file by file with a loop mount of what was written, and checked out bit-exact.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { checkout } from '../../src/ops/checkout.js';
import { fsck } from '../../src/ops/fsck.js';
import { ls } from '../../src/ops/ls.js';
import { canLoopMount } from '../helpers/ext4-images.js';
import { haveLvm, makePv, writeLv } from '../helpers/lvm.js';
import { MiB, commitAt, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';
import { mkedgePath, snapshotTree } from '../helpers/snapshot.js';

const FAT_ENV = { ...process.env, mtools_skip_check: '1', LC_ALL: 'C.UTF-8', TZ: 'UTC' };
const ESP_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
const LINUX_TYPE = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
const LVM_TYPE = 'E6D6D379-F507-44C2-A23C-238F2A3DF928';

const have = (cmd: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const ready = haveLvm && canLoopMount() && ['mkfs.xfs', 'mkfs.vfat', 'mcopy', 'mkswap', 'sfdisk', 'setfattr', 'setfacl'].every(have);

const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

/** Runs `fill(mnt)` on the XFS file system in `img` mounted by loop, then unmounts it. */
function withMount(img: string, mnt: string, fill: (mnt: string) => void, ro = false): void {
  fs.mkdirSync(mnt, { recursive: true });
  execFileSync('mount', ['-o', ro ? 'loop,ro' : 'loop', img, mnt]);
  try {
    fill(mnt);
  } finally {
    execFileSync('umount', [mnt]);
  }
}

/** An XFS image of `mib` MiB (RHEL 9's defaults are mkfs.xfs's: crc, ftype, reflink, bigtime) filled by `fill`. */
function xfsImage(dir: string, name: string, mib: number, fill: (mnt: string) => void): string {
  const img = path.join(dir, `${name}.xfs`);
  fs.writeFileSync(img, '');
  fs.truncateSync(img, mib * MiB);
  execFileSync('mkfs.xfs', ['-q', '-L', name, img]);
  withMount(img, path.join(dir, `mnt-${name}`), fill);
  return img;
}

/** Copies the bytes of `img` into `file` at `offset`. */
function place(file: string, offset: number, img: string): void {
  execFileSync('dd', [`if=${img}`, `of=${file}`, 'bs=1M', `seek=${offset}`, 'oflag=seek_bytes', 'conv=notrunc,sparse', 'status=none']);
}

/**
 * The snapshot of a tree without its root line, and without the raw `trusted.SGI_ACL_*` copies of POSIX ACLs that
 * Linux's XFS also lists to root (viva keeps ACLs once, as system.posix_acl_*).
 */
const content = (dir: string) => snapshotTree(dir).filter((l) => !l.startsWith('. ')).map((l) => l.replace(/ xattr:trusted\.SGI_ACL_(FILE|DEFAULT)=[0-9a-f]*/g, ''));

(ready ? test : test.skip)('disk: a RHEL-like disk (GPT: ESP vfat, /boot xfs, LVM with an xfs root and swap) is read file by file and checks out bit-exact', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'rhel.raw');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, 1200 * MiB);
  execFileSync('sfdisk', ['-q', file], {
    input: `label: gpt\nstart=2048, size=${64 * 2048}, type=${ESP_TYPE}, name="EFI System Partition"\nsize=${320 * 2048}, type=${LINUX_TYPE}\ntype=${LVM_TYPE}\n`,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  const parts = (JSON.parse(execFileSync('sfdisk', ['-J', file], { encoding: 'utf8' })) as { partitiontable: { partitions: Array<{ start: number; size: number }> } })
    .partitiontable.partitions.map((p) => ({ start: p.start * 512, size: p.size * 512 }));
  const [esp, boot, pv] = parts as [typeof parts[0], typeof parts[0], typeof parts[0]];

  // p1: the ESP, with shim and grub as the RHEL layout has them.
  const espImg = path.join(dir, 'esp.vfat');
  execFileSync('mkfs.vfat', ['-C', '-F', '16', '-n', 'ESP', espImg, String(esp.size / 1024)], { stdio: 'ignore' });
  const espSrc = path.join(dir, 'esp-src');
  writeTree(espSrc, { EFI: { BOOT: { 'BOOTX64.EFI': Buffer.alloc(9000, 1) }, redhat: { 'shimx64.efi': Buffer.alloc(7000, 2), 'grub.cfg': 'configfile $prefix/grub.cfg\n' } } });
  execFileSync('mcopy', ['-s', '-m', '-i', espImg, path.join(espSrc, 'EFI'), '::/'], { env: FAT_ENV });
  place(file, esp.start, espImg);

  // p2: /boot on XFS: a kernel, an initramfs, grub's files and a BLS entry.
  const kernel = crypto.randomBytes(3 * MiB);
  const bootImg = xfsImage(dir, 'boot', 320, (m) => {
    fs.writeFileSync(path.join(m, 'vmlinuz-5.14.0-70.el9.x86_64'), kernel, { mode: 0o755 });
    fs.writeFileSync(path.join(m, 'initramfs-5.14.0-70.el9.x86_64.img'), crypto.randomBytes(MiB), { mode: 0o600 });
    fs.mkdirSync(path.join(m, 'loader/entries'), { recursive: true });
    fs.writeFileSync(path.join(m, 'loader/entries/abc-5.14.0-70.el9.x86_64.conf'), 'title Red Hat Enterprise Linux\nlinux /vmlinuz-5.14.0-70.el9.x86_64\n');
    fs.mkdirSync(path.join(m, 'grub2'));
    fs.writeFileSync(path.join(m, 'grub2/grubenv'), `# GRUB Environment Block\n${'#'.repeat(1024 - 24)}`);
    fs.symlinkSync('vmlinuz-5.14.0-70.el9.x86_64', path.join(m, 'vmlinuz'));
  });
  place(file, boot.start, bootImg);

  // p3: LVM2 PV, volume group 'rhel' with 'root' (XFS, edge-case files, SELinux labels, ACLs) and 'swap'.
  const layout = makePv(file, [pv], 'rhel', (lvm) => {
    lvm('lvcreate', '--activate', 'n', '--zero', 'n', '-L', '64M', '-n', 'swap', 'rhel');
    lvm('lvcreate', '--activate', 'n', '--zero', 'n', '-L', '320M', '-n', 'root', 'rhel');
  }, '4M');
  const rootImg = xfsImage(dir, 'root', 320, (m) => {
    execFileSync('bash', [mkedgePath(), path.join(m, 'srv/edge')], { stdio: 'ignore' });
    fs.mkdirSync(path.join(m, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(m, 'etc/fstab'), 'UUID=x / xfs defaults 0 0\n/dev/mapper/rhel-swap none swap defaults 0 0\n');
    fs.writeFileSync(path.join(m, 'etc/hostname'), 'rhel9\n');
    execFileSync('setfattr', ['-n', 'security.selinux', '-v', 'system_u:object_r:etc_t:s0', path.join(m, 'etc/hostname')]);
    const many = path.join(m, 'usr/share/many');
    fs.mkdirSync(many, { recursive: true });
    for (let i = 0; i < 600; i++) fs.writeFileSync(path.join(many, `file-with-a-longer-name-${i}`), `${i}\n`);
  });
  writeLv(file, pv.start, layout, layout.lvs.get('root')!, rootImg);
  const swapImg = path.join(dir, 'swap.img');
  fs.writeFileSync(swapImg, '');
  fs.truncateSync(swapImg, 64 * MiB);
  execFileSync('mkswap', ['-q', swapImg], { stdio: 'ignore' });
  writeLv(file, pv.start, layout, layout.lvs.get('swap')!, swapImg);

  const { repo, dir: rd } = tmpRepo(t);
  const r = await commitAt(repo, file, { branch: 'rhel/9' });
  t.deepEqual(r.warnings, [], 'every file system is read; swap is raw without a word');
  t.deepEqual(ls(repo, { spec: 'rhel/9' }).map((e) => e.path), ['p1', 'p2', 'rhel']);
  t.deepEqual(ls(repo, { spec: 'rhel/9:rhel' }).map((e) => e.path), ['rhel/root']);

  // Each file system's tree is what a loop mount of it shows (the ESP through mtools' view: names and contents).
  const out = path.join(rd, 'tree');
  await checkout(repo, { rev: 'rhel/9', dest: out });
  withMount(bootImg, path.join(dir, 'ro-boot'), (m) => t.deepEqual(content(path.join(out, 'p2')), content(m), '/boot'), true);
  withMount(rootImg, path.join(dir, 'ro-root'), (m) => t.deepEqual(content(path.join(out, 'rhel/root')), content(m), 'the root logical volume'), true);
  t.deepEqual(fs.readFileSync(path.join(out, 'p1/EFI/redhat/shimx64.efi')), Buffer.alloc(7000, 2));
  t.deepEqual(fs.readFileSync(path.join(out, 'p2/vmlinuz-5.14.0-70.el9.x86_64')), kernel);

  // Bit-exact back, as raw and through qcow2 (the same disk object either way).
  const raw = path.join(rd, 'out.raw');
  await checkout(repo, { rev: 'rhel/9', dest: raw });
  t.is(sha(raw), sha(file));
  const qcow = path.join(dir, 'rhel.qcow2');
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', file, qcow]);
  const q = await commitAt(repo, qcow, { branch: 'rhel/9-qcow2' });
  t.is(q.root, r.root);
  t.deepEqual((await fsck(repo)).problems, []);
});
