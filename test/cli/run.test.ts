/**
 * viva run and demand fetch through NBD: a stand-in emulator (VIVA_QEMU, a shell script) copies the disk it is given
 * with qemu-img and exits with a chosen status — the export equals `viva checkout`, the status is passed on; in a
 * partial clone served over HTTP, a read fetches about what it reads and a second read fetches nothing; and the boot
 * test disk (kernel + busybox initramfs on ext4, syslinux on FAT) boots in qemu TCG through `viva run`, from the
 * repository and from a partial clone (bytes fetched ≤ 1.5 × bytes the guest read, ≤ 10 % of the image, then 0);
 * a partial clone whose remote is gone fails reads with EIO and keeps serving.
 */
import test, { type ExecutionContext } from 'ava';
import { type ChildProcess, execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import { BIN, spawnViva, tmpDir, viva, vivaOk } from '../helpers/cli.js';
import { have } from '../helpers/tools.js';
import { KERNEL, MISSING, makeBootDisk } from '../helpers/boot-disk.js';

const haveTools = have('qemu-img') && have('mke2fs');
const maybe = haveTools ? test : test.skip;
const canBoot = haveTools && !MISSING.length && KERNEL !== undefined;

/** `viva serve` of `repo` on a free loopback port; resolves with its URL. */
async function serve(t: ExecutionContext, repo: string): Promise<string> {
  const child: ChildProcess = spawnViva(['serve', '-C', repo, '--listen', '127.0.0.1:0']);
  t.teardown(() => { child.kill('SIGKILL'); });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 30_000);
    const on = (d: Buffer) => {
      out += d.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
  });
}

/** A stand-in for qemu: copies the NBD drive it is given to `out` with qemu-img, then exits with `status`. */
function fakeQemu(dir: string, out: string, status: number): string {
  const script = path.join(dir, 'fake-qemu');
  fs.writeFileSync(script, `#!/bin/sh
for a in "$@"; do case "$a" in file=nbd*) drive=\${a#file=}; drive=\${drive%%,*};; esac; done
echo "args: $*" >&2
qemu-img convert -f raw "$drive" ${JSON.stringify(out)} || exit 99
exit ${status}
`, { mode: 0o755 });
  return script;
}

/** The numbers of `viva run`'s summary line. */
function summary(stderr: string): { read: number; fetched: number } {
  const m = /the guest read (\d+) bytes of [^,\s]+(?:, (\d+) bytes fetched)?/.exec(stderr);
  if (!m) throw new Error(`no summary in: ${stderr}`);
  return { read: Number(m[1]), fetched: Number(m[2] ?? 0) };
}

/** A repository with one ext4 disk commit (`vm/a`): a 24 MiB random file, small files; returns the raw image too. */
async function setup(t: ExecutionContext): Promise<{ dir: string; repo: string; image: string }> {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'base\n');
  fs.writeFileSync(path.join(src, 'big.bin'), crypto.randomBytes(24 << 20));
  fs.writeFileSync(path.join(src, 'small.bin'), crypto.randomBytes(300 << 10));
  const image = path.join(dir, 'a.ext4');
  execFileSync('truncate', ['-s', '40M', image]);
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', src, '-E', 'root_owner=0:0', image]);
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', '-C', repo, image, '-b', 'vm/a', '-m', 'a']);
  return { dir, repo, image };
}

maybe('run: qemu gets the disk over NBD (byte-identical), its exit status is viva run\'s', async (t) => {
  const { dir, repo, image } = await setup(t);
  const out = path.join(dir, 'out.raw');
  const r = await viva(['run', '-C', repo, 'vm/a', '--memory', '512M', '--cpus', '2', '--accel', 'tcg', '--', '-no-reboot'], { env: { VIVA_QEMU: fakeQemu(dir, out, 7) } });
  t.is(r.code, 7, r.stderr);
  t.regex(r.stderr, /args: -accel tcg -m 512M -smp 2 -display none -serial mon:stdio -drive file=nbd\+unix:\/\/\/disk\?socket=\S+,format=raw,if=virtio,snapshot=on -no-reboot/);
  t.true(fs.readFileSync(out).equals(fs.readFileSync(image)));
  t.regex(r.stderr, /viva run: qemu \(tcg\) exited with status 7; the guest read \d+ bytes of vm\/a\n/);
  // The socket's temporary directory is gone.
  const sock = /socket=(\S+?),/.exec(r.stderr)![1]!;
  t.false(fs.existsSync(path.dirname(decodeURIComponent(sock))));
});

maybe('run: a kill -9 of viva run ends its qemu too (whose disk was viva\'s server), by name on PATH or by path', async (t) => {
  const { dir, repo } = await setup(t);
  for (const how of ['path', 'PATH']) {
    const bin = path.join(dir, `bin-${how}`);
    fs.mkdirSync(bin);
    // A number of seconds no other process sleeps: this run's pid and the case.
    const secs = `${process.pid}${how === 'path' ? 1 : 2}`;
    // An emulator that says it started and then waits (one process: exec, so its command line is the one to find).
    fs.writeFileSync(path.join(bin, 'fake-qemu'), `#!/bin/sh\necho started >&2\nexec sleep ${secs}\n`, { mode: 0o755 });
    const env = how === 'path'
      ? { VIVA_QEMU: path.join(bin, 'fake-qemu') }
      : { VIVA_QEMU: 'fake-qemu', PATH: `${bin}:${process.env.PATH ?? ''}` };
    const child = spawnViva(['run', '-C', repo, 'vm/a', '--accel', 'tcg'], { env });
    await new Promise<void>((resolve) => {
      let err = '';
      child.stderr!.on('data', (d: Buffer) => { err += d.toString(); if (err.includes('started')) resolve(); });
    });
    const pattern = `^sleep ${secs}$`;
    for (let i = 0; i < 50 && spawnSync('pgrep', ['-f', pattern]).status !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    t.is(spawnSync('pgrep', ['-f', pattern]).status, 0, `${how}: the emulator runs`);
    child.kill('SIGKILL');
    // 'exit', not 'close': an emulator left behind would hold viva's output pipes open.
    await new Promise((r) => child.once('exit', r));
    let alive = true;
    for (let i = 0; i < 100 && alive; i++) {
      alive = spawnSync('pgrep', ['-f', pattern]).status === 0;
      if (alive) await new Promise((r) => setTimeout(r, 100));
    }
    if (alive) spawnSync('pkill', ['-9', '-f', pattern]);
    t.false(alive, `${how}: the emulator died with viva run`);
  }
});

maybe('run: a directory commit boots from the disk built for its tree; a missing emulator is exit 2', async (t) => {
  const { dir, repo } = await setup(t);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  fs.writeFileSync(path.join(tree, 'f'), 'x');
  await vivaOk(t, ['commit', '-C', repo, tree, '-b', 'files', '-m', 'files']);
  const out = path.join(dir, 'files.raw');
  const dirCommit = await viva(['run', '-C', repo, 'files', '--size', '64M'], { env: { VIVA_QEMU: fakeQemu(dir, out, 0) } });
  t.is(dirCommit.code, 0, dirCommit.stderr);
  t.regex(dirCommit.stderr, /^built a disk for 'files' \(kept for the next run\)$/m);
  t.is(fs.statSync(out).size, 64 << 20);
  t.is(JSON.parse(execFileSync('sfdisk', ['--json', out], { encoding: 'utf8' })).partitiontable.label, 'gpt');
  const missing = await viva(['run', '-C', repo, 'vm/a'], { env: { VIVA_QEMU: path.join(dir, 'no-such-qemu') } });
  t.is(missing.code, EXIT.USAGE);
  t.regex(missing.stderr, /no-such-qemu' not found/);
});

maybe('run: in a partial clone over HTTP, reads fetch whole chunks near what is read, and a second run fetches nothing', async (t) => {
  const { dir, repo, image } = await setup(t);
  const url = await serve(t, repo);
  const clone = path.join(dir, 'clone');
  await vivaOk(t, ['clone', '--filter', 'manifests', url, clone]);
  // The whole disk through a partial clone: everything the disk holds is fetched once, verified, byte-identical.
  const out = path.join(dir, 'out.raw');
  const first = await viva(['run', '-C', clone, 'vm/a'], { env: { VIVA_QEMU: fakeQemu(dir, out, 0) } });
  t.is(first.code, 0, first.stderr);
  t.true(fs.readFileSync(out).equals(fs.readFileSync(image)));
  const s1 = summary(first.stderr);
  t.true(s1.fetched > 24 << 20, first.stderr);
  fs.rmSync(out);
  const second = await viva(['run', '-C', clone, 'vm/a'], { env: { VIVA_QEMU: fakeQemu(dir, out, 0) } });
  t.is(second.code, 0, second.stderr);
  t.true(fs.readFileSync(out).equals(fs.readFileSync(image)));
  t.is(summary(second.stderr).fetched, 0, second.stderr);
  // A fresh clone, one small read through viva nbd: a few chunks, far less than the disk.
  const clone2 = path.join(dir, 'clone2');
  await vivaOk(t, ['clone', '--filter', 'manifests', url, clone2]);
  const sock = path.join(dir, 'nbd.sock');
  const nbd = spawnViva(['nbd', '-C', clone2, 'vm/a', '--socket', sock]);
  t.teardown(() => { nbd.kill('SIGKILL'); });
  let log = '';
  nbd.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
  await new Promise<void>((resolve) => nbd.stdout!.once('data', () => resolve()));
  execFileSync('qemu-io', ['-r', '-f', 'raw', '-c', 'read 0 4096', '-c', 'read 1048576 65536', `nbd+unix:///vm/a?socket=${sock}`], { stdio: 'ignore' });
  for (let i = 0; i < 50 && !/disconnected/.test(log); i++) await new Promise((r) => setTimeout(r, 100));
  const fetched = Number(/\((\d+) fetched\)/.exec(log)?.[1] ?? 0);
  t.true(fetched > 0 && fetched < 4 << 20, log);
});

maybe('run: in a partial clone whose remote is gone, a read fails with EIO naming the remote, and the server goes on', async (t) => {
  const { dir, repo } = await setup(t);
  const server = spawnViva(['serve', '-C', repo, '--listen', '127.0.0.1:0']);
  let out = '';
  const url = await new Promise<string>((resolve) => {
    const on = (d: Buffer) => { out += d.toString(); const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out); if (m) resolve(m[1]!); };
    server.stdout!.on('data', on);
    server.stderr!.on('data', on);
  });
  const clone = path.join(dir, 'clone');
  await vivaOk(t, ['clone', '--filter', 'manifests', url, clone]);
  const sock = path.join(dir, 'nbd.sock');
  const nbd = spawnViva(['nbd', '-C', clone, 'vm/a', '--socket', sock]);
  t.teardown(() => { nbd.kill('SIGKILL'); });
  let log = '';
  nbd.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
  await new Promise<void>((resolve) => nbd.stdout!.once('data', () => resolve()));
  // The maps came at start; the remote goes before any data is read.
  server.kill('SIGKILL');
  await new Promise((r) => server.once('exit', r));
  const uri = `nbd+unix:///vm/a?socket=${sock}`;
  t.throws(() => execFileSync('qemu-io', ['-r', '-f', 'raw', '-c', 'read 0 4096', uri], { stdio: 'pipe' }));
  for (let i = 0; i < 50 && !/failed, first/.test(log); i++) await new Promise((r) => setTimeout(r, 100));
  t.regex(log, /1 failed, first: cannot read: http:\/\/127\.0\.0\.1:\d+\/: cannot connect/);
  // Still serving: the handshake and a block status work.
  t.regex(execFileSync('qemu-img', ['info', '-f', 'raw', uri], { encoding: 'utf8' }), /virtual size: 40 MiB/);
});

(canBoot ? test : test.skip)('run: the boot test disk boots through viva run, from the repository and from a partial clone over HTTP that fetches only what the guest reads', async (t) => {
  t.timeout(1_200_000);
  const dir = tmpDir(t);
  // A large file the boot never reads, so that "a fraction of the image" means something.
  const { disk } = makeBootDisk(dir, KERNEL!, 'through-nbd', {
    sizeMiB: 320,
    fill: (root) => fs.writeFileSync(path.join(root, 'unused.bin'), crypto.randomBytes(200 << 20)),
  });
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', '-C', repo, disk, '-b', 'vm/boot', '-m', 'boot']);
  const boot = async (r: string) => {
    const res = await viva(['run', '-C', r, 'vm/boot', '--accel', 'tcg', '--memory', '256M', '--', '-no-reboot', '-nodefaults'], { timeoutMs: 300_000 });
    const marker = /VIVA-(MARKER: \S+|MOUNT-FAILED \S+)/.exec(res.stdout)?.[0];
    if (!marker) t.log(res.stdout.slice(-3000), res.stderr);
    return { marker, ...summary(res.stderr), code: res.code };
  };
  const full = await boot(repo);
  t.is(full.marker, 'VIVA-MARKER: through-nbd');
  t.is(full.code, 0);
  t.is(full.fetched, 0);

  const url = await serve(t, repo);
  const clone = path.join(dir, 'clone');
  await vivaOk(t, ['clone', '--filter', 'manifests', url, clone]);
  const cold = await boot(clone);
  t.is(cold.marker, 'VIVA-MARKER: through-nbd');
  const image = fs.statSync(disk).size;
  t.log(`cold boot: guest read ${cold.read} bytes, fetched ${cold.fetched} (${(cold.fetched / cold.read).toFixed(2)}x, ${(100 * cold.fetched / image).toFixed(1)} % of ${image})`);
  t.true(cold.fetched <= 1.5 * cold.read, `fetched ${cold.fetched} for ${cold.read} read`);
  t.true(cold.fetched <= 0.1 * image, `fetched ${cold.fetched} of a ${image}-byte image`);
  const warm = await boot(clone);
  t.is(warm.marker, 'VIVA-MARKER: through-nbd');
  t.is(warm.fetched, 0);
});

/** The commit command `viva run --writable` printed, run as printed (through sh, with viva = this build). */
function runPrintedCommit(t: ExecutionContext, stderr: string): string {
  const cmd = /to commit them:\n {2}(viva commit .*)\n/.exec(stderr)?.[1];
  if (!cmd) throw new Error(`no commit command in: ${stderr}`);
  t.log(cmd);
  return execFileSync('sh', ['-c', `viva() { ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} "$@"; }; ${cmd}`], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
}

maybe('run --writable: what the guest writes stays in the session, the printed command commits it, an unchanged run says so', async (t) => {
  const { dir, repo, image } = await setup(t);
  // The "guest": copies the disk, adds a file with debugfs, and writes the changed image back over NBD.
  const script = path.join(dir, 'guest');
  fs.writeFileSync(script, `#!/bin/sh
for a in "$@"; do case "$a" in file=nbd*) drive=\${a#file=}; drive=\${drive%%,*};; esac; done
echo "args: $*" >&2
d=$(mktemp -d); qemu-img convert -f raw "$drive" "$d/disk.raw" || exit 99
printf 'written by the guest\\n' > "$d/new"
debugfs -w -R "write $d/new etc/guest-file" "$d/disk.raw" >/dev/null 2>&1 || exit 98
qemu-img convert -n -f raw -O raw "$d/disk.raw" "$drive" || exit 97
rm -rf "$d"
`, { mode: 0o755 });
  const before = (await vivaOk(t, ['rev-parse', '-C', repo, 'vm/a'])).stdout.trim();
  const r = await viva(['run', '-C', repo, 'vm/a', '--writable', '--name', 'guest-1'], { env: { VIVA_QEMU: script } });
  t.is(r.code, 0, r.stderr);
  // The drive is the session's export, not a throwaway snapshot.
  t.regex(r.stderr, /args: .*-drive file=nbd\+unix:\/\/\/vm\/a\?socket=\S+,format=raw,if=virtio,cache=writeback$/m);
  t.regex(r.stderr, /^nbd session 'guest-1' created: the guest's writes go there$/m);
  t.regex(r.stderr, /nbd session 'guest-1' holds \d+ changed bytes; to commit them:\n {2}viva commit nbd:guest-1 --repo \S+ -b vm\/a -m 'changes made in viva run of vm\/a'\n/);
  // Nothing is committed yet: the branch is where it was.
  t.is((await vivaOk(t, ['rev-parse', '-C', repo, 'vm/a'])).stdout.trim(), before);
  t.is((await viva(['cat', '-C', repo, 'vm/a:etc/guest-file'])).code, EXIT.NOT_FOUND);
  runPrintedCommit(t, r.stderr);
  t.not((await vivaOk(t, ['rev-parse', '-C', repo, 'vm/a'])).stdout.trim(), before);
  t.is((await vivaOk(t, ['rev-parse', '-C', repo, 'vm/a~1'])).stdout.trim(), before);
  t.is((await vivaOk(t, ['cat', '-C', repo, 'vm/a:etc/guest-file'])).stdout, 'written by the guest\n');
  // The new commit checks out as a clean ext4 with the file and the old content.
  const out = path.join(dir, 'after.raw');
  await vivaOk(t, ['checkout', '-C', repo, 'vm/a', out]);
  execFileSync('e2fsck', ['-fn', out], { stdio: 'pipe' });
  const big = (f: string) => execFileSync('debugfs', ['-R', 'cat big.bin', f], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 });
  t.true(big(out).equals(big(image)));
  // A run whose guest writes nothing: the session holds no changes and says how to drop it.
  const idle = await viva(['run', '-C', repo, 'vm/a', '--writable', '--name', 'idle'], { env: { VIVA_QEMU: '/bin/true' } });
  t.is(idle.code, 0, idle.stderr);
  t.regex(idle.stderr, /nbd session 'idle' holds no changes \(drop it with 'viva nbd --drop idle'\)/);
  // --name without --writable is a usage error; a session over another commit is refused.
  t.is((await viva(['run', '-C', repo, 'vm/a', '--name', 'x'])).code, EXIT.USAGE);
  const other = await viva(['run', '-C', repo, before, '--writable', '--name', 'idle'], { env: { VIVA_QEMU: '/bin/true' } });
  t.is(other.code, EXIT.USAGE, other.stderr);
  t.regex(other.stderr, /nbd session 'idle' is over 'vm\/a'/);
});

(canBoot ? test : test.skip)('run --writable: a real guest changes its root file system; the printed command commits it, e2fsck clean', async (t) => {
  t.timeout(600_000);
  const dir = tmpDir(t);
  const { disk } = makeBootDisk(dir, KERNEL!, 'writer', { fill: (root) => fs.writeFileSync(path.join(root, 'etc/viva-write'), '') });
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', '-C', repo, disk, '-b', 'vm/boot', '-m', 'boot']);
  const boot = (extra: string[]) => viva(['run', '-C', repo, 'vm/boot', ...extra, '--accel', 'tcg', '--memory', '256M', '--', '-no-reboot', '-nodefaults'], { timeoutMs: 300_000 });
  const r = await boot(['--writable']);
  if (!/VIVA-WROTE/.test(r.stdout)) t.log(r.stdout.slice(-3000), r.stderr);
  t.regex(r.stdout, /VIVA-MARKER: writer/);
  t.regex(r.stdout, /VIVA-WROTE/);
  t.regex(r.stderr, /^nbd session '[^']+' created/m);
  runPrintedCommit(t, r.stderr);
  t.is((await vivaOk(t, ['cat', '-C', repo, 'vm/boot:p2/etc/viva-written'])).stdout, 'written by the guest at boot writer\n');
  t.is((await viva(['cat', '-C', repo, 'vm/boot:p2/etc/viva-write'])).code, EXIT.NOT_FOUND);
  const out = path.join(dir, 'after.raw');
  await vivaOk(t, ['checkout', '-C', repo, 'vm/boot', out]);
  const p2 = JSON.parse(execFileSync('sfdisk', ['--json', out], { encoding: 'utf8' })).partitiontable.partitions[1];
  const root = path.join(dir, 'root.ext4');
  execFileSync('dd', [`if=${out}`, `of=${root}`, 'bs=512', `skip=${p2.start}`, `count=${p2.size}`, 'status=none']);
  execFileSync('e2fsck', ['-fn', root], { stdio: 'pipe' });
  // The committed disk boots, and the guest finds nothing more to write.
  const again = await boot([]);
  t.regex(again.stdout, /VIVA-MARKER: writer/);
  t.notRegex(again.stdout, /VIVA-WROTE/);
});
