/**
 * A bootable test disk built at test time: an MBR disk with syslinux's boot code, a FAT boot partition (syslinux, the
 * host's kernel and a busybox initramfs) and an ext4 root holding the same kernel and initramfs and /etc/viva-marker.
 * The initramfs loads virtio-blk, mounts the root read-only and prints `VIVA-MARKER: <marker>` on the serial console;
 * when the root holds /etc/viva-write, it remounts it writable, writes /etc/viva-written, removes viva-write, unmounts
 * and prints `VIVA-WROTE` (a guest that changes its disk).
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

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
if [ -e /mnt/etc/viva-write ] && mount -o remount,rw /mnt; then
  echo "written by the guest at boot $(cat /mnt/etc/viva-marker)" > /mnt/etc/viva-written
  rm /mnt/etc/viva-write
  sync; umount /mnt && echo VIVA-WROTE
fi
poweroff -f
`;

export function run(cmd: string, args: string[], options: { input?: string | Buffer; cwd?: string } = {}): Buffer {
  return execFileSync(cmd, args, { stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], input: options.input, cwd: options.cwd, maxBuffer: 256 << 20 });
}

export function which(cmd: string): boolean {
  try {
    run('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

/** The host's kernel and its module directory, or undefined. */
export function hostKernel(): { vmlinuz: string; modules: string } | undefined {
  if (!fs.existsSync('/boot')) return undefined;
  for (const f of fs.readdirSync('/boot').filter((n) => n.startsWith('vmlinuz-')).sort().reverse()) {
    const modules = path.join('/lib/modules', f.slice('vmlinuz-'.length));
    if (fs.existsSync(modules)) return { vmlinuz: path.join('/boot', f), modules };
  }
  return undefined;
}

/** Tools the disk (and booting it) needs that are not installed. */
export const MISSING = ['qemu-system-x86_64', 'busybox', 'syslinux', 'mkfs.vfat', 'mcopy', 'sfdisk', 'mke2fs'].filter((c) => !which(c));
/** The host's kernel, or undefined. */
export const KERNEL = hostKernel();

/** A busybox initramfs that loads virtio-blk, mounts vivaroot= and prints /etc/viva-marker. */
export function makeInitrd(dir: string, kernel: { modules: string }): string {
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

/**
 * Builds the boot disk in `dir` (`disk.raw`, `sizeMiB` MiB, ext4 root filling the rest after a 40 MiB FAT
 * partition); `fill` may add files to the root tree first (e.g. a large file the boot never reads).
 */
export function makeBootDisk(dir: string, kernel: { vmlinuz: string; modules: string }, marker: string, options: { sizeMiB?: number; fill?: (root: string) => void } = {}): { disk: string; root: string } {
  const sizeMiB = options.sizeMiB ?? 96;
  const initrd = makeInitrd(dir, kernel);
  // The ext4 root: a kernel, the initramfs and the marker.
  const root = path.join(dir, 'root');
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(root, 'boot'));
  fs.writeFileSync(path.join(root, 'etc/viva-marker'), `${marker}\n`);
  options.fill?.(root);
  fs.copyFileSync(kernel.vmlinuz, path.join(root, 'boot/vmlinuz'));
  fs.copyFileSync(initrd, path.join(root, 'boot/initrd.img'));
  // The FAT boot partition: syslinux, and the same kernel and initramfs.
  const fat = path.join(dir, 'fat.img');
  run('truncate', ['-s', '40M', fat]);
  run('mkfs.vfat', ['-n', 'VIVABOOT', fat]);
  run('syslinux', ['--install', fat]);
  const cfg = path.join(dir, 'syslinux.cfg');
  // no_timer_check: the kernel's check of the timer interrupt through the IO-APIC, which a TCG guest on a busy host
  // can fail ("IO-APIC + timer doesn't work!", a panic seen in CI); virtual machines' kernels are commonly booted so.
  fs.writeFileSync(cfg, 'DEFAULT linux\nSERIAL 0 115200\nLABEL linux\n  KERNEL vmlinuz\n  APPEND initrd=initrd.img console=ttyS0 vivaroot=vda2 no_timer_check quiet\n');
  run('mcopy', ['-i', fat, path.join(root, 'boot/vmlinuz'), path.join(root, 'boot/initrd.img'), cfg, '::/']);
  // The disk: MBR with syslinux's boot code, p1 FAT (bootable), p2 ext4.
  const disk = path.join(dir, 'disk.raw');
  run('truncate', ['-s', `${sizeMiB}M`, disk]);
  run('sfdisk', ['-q', '--label', 'dos', disk], { input: 'start=2048, size=81920, type=c, bootable\nstart=83968, type=83\n' });
  const mbrBin = ['/usr/lib/syslinux/mbr/mbr.bin', '/usr/lib/SYSLINUX/mbr.bin'].find((p) => fs.existsSync(p));
  if (!mbrBin) throw new Error('syslinux mbr.bin not found');
  const fd = fs.openSync(disk, 'r+');
  fs.writeSync(fd, fs.readFileSync(mbrBin).subarray(0, 440), 0, 440, 0);
  fs.writeSync(fd, fs.readFileSync(fat), 0, 40 << 20, 2048 * 512);
  fs.closeSync(fd);
  run('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'root', '-d', root, '-E', `offset=${83968 * 512}`, disk, String((sizeMiB * 2048 - 83968) / 2)]);
  return { disk, root };
}
