/**
 * A full file system (a small tmpfs, as root): commit ends at once with one line and exit 16, the branch unmoved and
 * the repository clean for fsck (gc sweeps the unreferenced packs); checkout to a full destination ends the same way
 * and removes what it wrote. Registered as skipped where tmpfs cannot be mounted (not root, no mount).
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';

const MiB = 1 << 20;
const WRITE_FAILED = 16;

function mountTmpfs(dir: string, size: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const canMount = (() => {
  if (process.getuid?.() !== 0) return false;
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-tmpfs-probe-'));
  const ok = mountTmpfs(probe, '1m');
  if (ok) execFileSync('umount', [probe]);
  fs.rmdirSync(probe);
  return ok;
})();

/** A fresh tmpfs of `size` under a temp dir, unmounted when the test ends. */
function smallDisk(t: ExecutionContext, size: string): string {
  const dir = tmpDir(t, 'viva-full-');
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  if (!mountTmpfs(mnt, size)) throw new Error(`cannot mount tmpfs on ${mnt}`);
  // Teardowns run last-registered first: unmount before the temp dir is removed.
  t.teardown(() => execFileSync('umount', ['-l', mnt]));
  return mnt;
}

function randomTree(dir: string, files: number, size: number): void {
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < files; i++) fs.writeFileSync(path.join(dir, `f${i}.bin`), crypto.randomBytes(size));
}

(canMount ? test : test.skip)('enospc: commit into a full file system exits 16 at once, branch unmoved, fsck clean', async (t) => {
  t.timeout(180_000);
  const disk = smallDisk(t, '30m');
  const work = tmpDir(t, 'viva-full-src-');
  const small = path.join(work, 'small');
  fs.mkdirSync(small);
  fs.writeFileSync(path.join(small, 'os-release'), 'ID=debian\n');
  // Random data does not compress: more than the file system holds, as files and as one file in the last try.
  const sizes: Array<[string, number, number]> = [['many', 10, 4 * MiB], ['one', 1, 25 * MiB], ['huge', 1, 77 * MiB]];
  const repo = path.join(disk, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', small, '-m', 'small', '-b', 'main'], { cwd: repo });
  const before = (await vivaJson<Array<{ name: string; oid: string }>>(t, ['branch'], { cwd: repo })).find((b) => b.name === 'main')!.oid;
  for (const [name, files, size] of sizes) {
    const src = path.join(work, name);
    randomTree(src, files, size);
    const started = Date.now();
    const r = await viva(['commit', src, '-m', name, '-b', 'main'], { cwd: repo, timeoutMs: 60_000 });
    t.is(r.signal, null, `${name}: killed by the timeout (a hang)`);
    t.is(r.code, WRITE_FAILED, `${name}: ${r.stderr}`);
    t.regex(r.stderr, /^error: cannot write '.*data\.mdb': no space left on device[^\n]*\n$/, name);
    t.true(Date.now() - started < 60_000);
    const now = (await vivaJson<Array<{ name: string; oid: string }>>(t, ['branch'], { cwd: repo })).find((b) => b.name === 'main')!.oid;
    t.is(now, before, `${name}: branch moved`);
    await vivaOk(t, ['fsck'], { cwd: repo });
    fs.rmSync(src, { recursive: true });
  }
  // Space is given back by gc; the repository works as before.
  await vivaOk(t, ['gc'], { cwd: repo });
  await vivaOk(t, ['fsck'], { cwd: repo });
  const out = path.join(work, 'out');
  await vivaOk(t, ['checkout', 'main', out], { cwd: repo });
  t.is(fs.readFileSync(path.join(out, 'os-release'), 'utf8'), 'ID=debian\n');
  fs.writeFileSync(path.join(small, 'more'), 'more\n');
  await vivaOk(t, ['commit', small, '-m', 'after', '-b', 'main'], { cwd: repo });
});


/** A repository whose main holds 30 MiB of random files (6 × 5 MiB), in a new temporary directory. */
async function bigRepo(t: ExecutionContext, prefix: string): Promise<{ work: string; repo: string }> {
  const work = tmpDir(t, prefix);
  const src = path.join(work, 'src');
  randomTree(src, 6, 5 * MiB);
  const repo = path.join(work, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', src, '-m', 'big', '-b', 'main'], { cwd: repo });
  return { work, repo };
}

(canMount ? test : test.skip)('enospc: checkout to a full file system exits 16 and removes what it wrote', async (t) => {
  t.timeout(180_000);
  const disk = smallDisk(t, '20m');
  const { repo } = await bigRepo(t, 'viva-full-co-');
  fs.mkdirSync(path.join(disk, 'empty'));
  for (const dest of ['out', 'out.tar', 'empty']) {
    const r = await viva(['checkout', 'main', path.join(disk, dest)], { cwd: repo, timeoutMs: 60_000 });
    t.is(r.code, WRITE_FAILED, `${dest}: ${r.stderr}`);
    t.regex(r.stderr, /^error: cannot create '[^']+': [^\n]*(no space left on device|ENOSPC)[^\n]*\n$/i, dest);
  }
  t.deepEqual(fs.readdirSync(disk), ['empty']);
  t.deepEqual(fs.readdirSync(path.join(disk, 'empty')), []);
});

(canMount ? test : test.skip)('enospc: a disk image built from a directory commit onto a full file system exits 16 naming it, nothing left', async (t) => {
  t.timeout(240_000);
  const disk = smallDisk(t, '20m');
  const { repo } = await bigRepo(t, 'viva-full-build-');
  for (const name of ['x.raw', 'x.qcow2', 'x.ext4']) {
    const dest = path.join(disk, name);
    const r = await viva(['checkout', 'main', dest, '--size', '200M'], { cwd: repo, timeoutMs: 120_000 });
    t.is(r.code, WRITE_FAILED, `${name}: ${r.stderr}`);
    const quoted = dest.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    t.regex(r.stderr, new RegExp(`^error: cannot create '${quoted}': [^\\n]*(no space left on device|ENOSPC)[^\\n]*\\n$`, 'i'), name);
    t.deepEqual(fs.readdirSync(disk), [], `${name}: partial output left`);
  }
});

(canMount ? test : test.skip)('erofs: commit, gc and push into a repository on a read-only file system exit 16 naming its database; reads still work', async (t) => {
  t.timeout(120_000);
  const disk = smallDisk(t, '20m');
  const work = tmpDir(t, 'viva-ro-');
  const src = path.join(work, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'a'), 'one\n');
  const repo = path.join(disk, 'repo');
  const local = path.join(work, 'local');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', src, '-m', 'one', '-b', 'main'], { cwd: repo });
  await vivaOk(t, ['init', local]);
  await vivaOk(t, ['commit', src, '-m', 'local', '-b', 'main'], { cwd: local });
  execFileSync('mount', ['-o', 'remount,ro', disk]);
  const data = path.join(repo, '.viva', 'data.mdb').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const runs: Array<[string[], string]> = [[['commit', src, '-m', 'two'], repo], [['gc'], repo], [['push', repo, 'main'], local]];
  for (const [args, cwd] of runs) {
    const r = await viva(args, { cwd });
    t.is(r.code, WRITE_FAILED, `${args[0]}: ${r.stderr}`);
    t.regex(r.stderr, new RegExp(`^error: cannot write '${data}': read-only file system \\(EROFS\\)\\n$`), args[0]!);
  }
  const cat = await vivaOk(t, ['cat', 'main:a'], { cwd: repo });
  t.is(cat.stdout, 'one\n');
  await vivaOk(t, ['log'], { cwd: repo });
});
