/**
 * It boots: a small MBR disk is built at test time — a FAT boot partition with syslinux, and an ext4 partition
 * holding a kernel (the host's Debian kernel) and a busybox initramfs — committed, checked out bit-exact and rebuilt,
 * and each result is booted in `qemu-system-x86_64 -accel tcg` until the initramfs prints the marker file it read
 * from the ext4 partition on the serial console.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { checkout } from '../../src/ops/checkout.js';
import { derive } from '../../src/ops/derive.js';
import { cat } from '../../src/ops/ls.js';
import { AUTHOR, collect, commitAt, tmpDir, tmpRepo } from '../helpers/repo.js';

const MODULES = ['virtio_ring', 'virtio', 'virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_pci', 'virtio_blk'];
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in ${MODULES.join(' ')}; do insmod /lib/$m.ko 2>/dev/null; done
root=$(sed -n 's/.*vivaroot=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/$root ] && break; sleep 1; done
if mount -t ext4 -o ro /dev/$root /mnt; then echo "VIVA-MARKER: $(cat /mnt/etc/viva-marker)"; else echo "VIVA-MOUNT-FAILED $root"; fi
poweroff -f
`;

function run(cmd: string, args: string[], options: { input?: string | Buffer; cwd?: string } = {}): Buffer {
  return execFileSync(cmd, args, { stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], input: options.input, cwd: options.cwd, maxBuffer: 256 << 20 });
}

function which(cmd: string): boolean {
  try {
    run('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

/** The host's kernel and its module directory, or undefined. */
function hostKernel(): { vmlinuz: string; modules: string } | undefined {
  if (!fs.existsSync('/boot')) return undefined;
  for (const f of fs.readdirSync('/boot').filter((n) => n.startsWith('vmlinuz-')).sort().reverse()) {
    const modules = path.join('/lib/modules', f.slice('vmlinuz-'.length));
    if (fs.existsSync(modules)) return { vmlinuz: path.join('/boot', f), modules };
  }
  return undefined;
}

const MISSING = ['qemu-system-x86_64', 'busybox', 'syslinux', 'mkfs.vfat', 'mcopy', 'sfdisk', 'mke2fs'].filter((c) => !which(c));
const KERNEL = hostKernel();

/** A busybox initramfs that loads virtio-blk, mounts vivaroot= and prints /etc/viva-marker. */
function makeInitrd(dir: string, kernel: { modules: string }): string {
  const root = path.join(dir, 'initramfs');
  for (const d of ['bin', 'lib', 'proc', 'sys', 'dev', 'mnt']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.copyFileSync(run('sh', ['-c', 'command -v busybox']).toString().trim(), path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  const all = run('find', [kernel.modules, '-name', '*.ko*']).toString().split('\n').filter(Boolean);
  for (const m of MODULES) {
    const f = all.find((p) => path.basename(p).split('.')[0] === m);
    if (!f) continue; // built into this kernel
    if (f.endsWith('.xz')) fs.writeFileSync(path.join(root, 'lib', `${m}.ko`), run('xz', ['-dc', f]));
    else if (f.endsWith('.zst')) fs.writeFileSync(path.join(root, 'lib', `${m}.ko`), run('zstd', ['-dc', f]));
    else fs.copyFileSync(f, path.join(root, 'lib', `${m}.ko`));
  }
  fs.writeFileSync(path.join(root, 'init'), INIT, { mode: 0o755 });
  const list = run('find', ['.'], { cwd: root });
  const cpio = run('busybox', ['cpio', '-o', '-H', 'newc'], { cwd: root, input: list });
  const out = path.join(dir, 'initrd.img');
  fs.writeFileSync(out, cpio);
  return out;
}

/** Boots `disk` (from its own boot code, or with `direct` kernel/initrd/root) and returns the marker line. */
async function boot(t: ExecutionContext, disk: string, format: 'raw' | 'qcow2', direct?: { vmlinuz: string; initrd: string; root: string }): Promise<string> {
  const args = ['-accel', 'tcg', '-m', '256', '-nographic', '-no-reboot', '-nodefaults', '-serial', 'stdio', '-drive', `file=${disk},format=${format},if=virtio`];
  if (direct) args.push('-kernel', direct.vmlinuz, '-initrd', direct.initrd, '-append', `console=ttyS0 vivaroot=${direct.root} quiet`);
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
  await new Promise((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  const line = /VIVA-(MARKER: \S+|MOUNT-FAILED \S+)/.exec(out)?.[0];
  if (!line) t.log(out.slice(-3000));
  return line ?? 'no marker';
}

if (MISSING.length || !KERNEL) console.error(`boot test skipped: missing ${[...MISSING, ...(KERNEL ? [] : ['a kernel in /boot with /lib/modules'])].join(', ')}`);

(MISSING.length || !KERNEL ? test.skip : test)('boot: a committed disk boots bit-exact (qcow2), rebuilt with --layout-from (raw) and as a new GPT disk', async (t) => {
  t.timeout(900_000);
  const dir = tmpDir(t);
  const initrd = makeInitrd(dir, KERNEL);
  // The ext4 root: a kernel, the initramfs and the marker.
  const root = path.join(dir, 'root');
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(root, 'boot'));
  fs.writeFileSync(path.join(root, 'etc/viva-marker'), 'bit-exact\n');
  fs.copyFileSync(KERNEL.vmlinuz, path.join(root, 'boot/vmlinuz'));
  fs.copyFileSync(initrd, path.join(root, 'boot/initrd.img'));
  // The FAT boot partition: syslinux, and the same kernel and initramfs.
  const fat = path.join(dir, 'fat.img');
  run('truncate', ['-s', '40M', fat]);
  run('mkfs.vfat', ['-n', 'VIVABOOT', fat]);
  run('syslinux', ['--install', fat]);
  const cfg = path.join(dir, 'syslinux.cfg');
  fs.writeFileSync(cfg, 'DEFAULT linux\nSERIAL 0 115200\nLABEL linux\n  KERNEL vmlinuz\n  APPEND initrd=initrd.img console=ttyS0 vivaroot=vda2 quiet\n');
  run('mcopy', ['-i', fat, path.join(root, 'boot/vmlinuz'), path.join(root, 'boot/initrd.img'), cfg, '::/']);
  // The disk: MBR with syslinux's boot code, p1 FAT (bootable), p2 ext4.
  const disk = path.join(dir, 'disk.raw');
  run('truncate', ['-s', '96M', disk]);
  run('sfdisk', ['-q', '--label', 'dos', disk], { input: 'start=2048, size=81920, type=c, bootable\nstart=83968, type=83\n' });
  const mbrBin = ['/usr/lib/syslinux/mbr/mbr.bin', '/usr/lib/SYSLINUX/mbr.bin'].find((p) => fs.existsSync(p));
  t.truthy(mbrBin, 'syslinux mbr.bin');
  const fd = fs.openSync(disk, 'r+');
  fs.writeSync(fd, fs.readFileSync(mbrBin!).subarray(0, 440), 0, 440, 0);
  fs.writeSync(fd, fs.readFileSync(fat), 0, 40 << 20, 2048 * 512);
  fs.closeSync(fd);
  run('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'root', '-d', root, '-E', `offset=${83968 * 512}`, disk, String((196608 - 83968) / 2)]);
  t.is(await boot(t, disk, 'raw'), 'VIVA-MARKER: bit-exact', 'the original disk boots');

  const { repo } = tmpRepo(t);
  await commitAt(repo, disk, { branch: 'vm/boot' });
  // 1. Bit-exact, as qcow2.
  const exact = path.join(dir, 'exact.qcow2');
  await checkout(repo, { rev: 'vm/boot', dest: exact });
  t.regex(run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', disk, exact]).toString(), /identical/);
  t.is(await boot(t, exact, 'qcow2'), 'VIVA-MARKER: bit-exact');

  // 2. A changed root tree rebuilt into the same layout: boots through the same boot code and FAT partition.
  fs.writeFileSync(path.join(root, 'etc/viva-marker'), 'rebuilt\n');
  await commitAt(repo, root, { branch: 'rootfs' });
  const layout = path.join(dir, 'layout.raw');
  await checkout(repo, { rev: 'rootfs', dest: layout, build: { layoutFrom: 'vm/boot' } });
  t.is(await boot(t, layout, 'raw'), 'VIVA-MARKER: rebuilt');

  // 3. A new GPT disk of the tree, booted with the kernel and initramfs read back from the commit.
  const fresh = path.join(dir, 'fresh.qcow2');
  await checkout(repo, { rev: 'rootfs', dest: fresh, build: { size: 64 << 20 } });
  const vmlinuz = path.join(dir, 'vmlinuz.out');
  const initrdOut = path.join(dir, 'initrd.out');
  fs.writeFileSync(vmlinuz, await collect(cat(repo, 'rootfs:boot/vmlinuz')));
  fs.writeFileSync(initrdOut, await collect(cat(repo, 'rootfs:boot/initrd.img')));
  t.is(await boot(t, fresh, 'qcow2', { vmlinuz, initrd: initrdOut, root: 'vda1' }), 'VIVA-MARKER: rebuilt');

  // 4. A derived clone (its ext4 root patched in place) as a qcow2 overlay over a checkout of the base disk.
  await derive(repo, { base: 'vm/boot', branch: 'vm/clone', author: AUTHOR, edits: [{ op: 'set', path: 'p2/etc/viva-marker', data: Buffer.from('overlay\n') }] });
  const base = path.join(dir, 'base.qcow2');
  await checkout(repo, { rev: 'vm/boot', dest: base });
  const overlay = path.join(dir, 'clone.qcow2');
  await checkout(repo, { rev: 'vm/clone', dest: overlay, backing: base });
  t.true(fs.statSync(overlay).size < 1 << 20, `overlay of ${fs.statSync(overlay).size} bytes`);
  t.is(await boot(t, overlay, 'qcow2'), 'VIVA-MARKER: overlay');
});
