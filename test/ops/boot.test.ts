/**
 * It boots: a small MBR disk is built at test time — a FAT boot partition with syslinux, and an ext4 partition
 * holding a kernel (the host's Debian kernel) and a busybox initramfs — committed, checked out bit-exact and rebuilt,
 * and each result is booted in `qemu-system-x86_64 -accel tcg` until the initramfs prints the marker file it read
 * from the ext4 partition on the serial console.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { checkout } from '../../src/ops/checkout.js';
import { derive } from '../../src/ops/derive.js';
import { cat } from '../../src/ops/ls.js';
import { AUTHOR, collect, commitAt, tmpDir, tmpRepo } from '../helpers/repo.js';
import { KERNEL, MISSING, makeBootDisk, run } from '../helpers/boot-disk.js';

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
  const { disk, root } = makeBootDisk(dir, KERNEL!, 'bit-exact');
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
