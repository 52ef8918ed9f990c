/**
 * `viva gc --compact` through the built CLI: the file shrinks after a big branch is gone, the repository stays whole,
 * plain gc says where the space went, compaction refuses while a writer session or another process holds the
 * repository, and a kill -9 at any moment leaves a repository fsck finds clean.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open } from 'lmdb';
import { EXIT } from '../../src/cli/exit-codes.js';
import { copyRepository, dataFile, delay, finished, spawnViva, tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';

const MiB = 1 << 20;
const TMP = '.compact-tmp';

/** main (small) and keep (small) survive; big (24 MiB of random data) is deleted, its objects unreachable. */
const fixture = { dir: '', repo: '', small: '' };

test.before(async (t) => {
  fixture.dir = tmpDir(undefined, 'viva-compact-');
  fixture.repo = path.join(fixture.dir, 'repo');
  fixture.small = path.join(fixture.dir, 'small');
  const big = path.join(fixture.dir, 'big');
  fs.mkdirSync(path.join(fixture.small, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(fixture.small, 'etc/hostname'), 'small\n');
  fs.mkdirSync(big);
  fs.writeFileSync(path.join(big, 'disk.img'), crypto.randomBytes(24 * MiB));
  await vivaOk(t, ['init', fixture.repo]);
  await vivaOk(t, ['commit', fixture.small, '-C', fixture.repo, '-m', 'small']);
  await vivaOk(t, ['branch', 'keep', '-C', fixture.repo]);
  await vivaOk(t, ['commit', big, '-b', 'big', '-C', fixture.repo, '-m', 'big']);
  await vivaOk(t, ['branch', '-d', '-f', 'big', '-C', fixture.repo]);
});

test.after.always(() => {
  if (fixture.dir) fs.rmSync(fixture.dir, { recursive: true, force: true });
});

function repoCopy(t: ExecutionContext, name = 'repo'): string {
  return copyRepository(fixture.repo, path.join(tmpDir(t, 'viva-compact-case-'), name));
}

const sizeOf = (repo: string) => fs.statSync(dataFile(repo)).size;

async function assertWhole(t: ExecutionContext, repo: string, what: string): Promise<void> {
  const f = await vivaJson(t, ['fsck', '-C', repo]);
  t.true(f.ok, `${what}: ${JSON.stringify(f.problems)}`);
  for (const ref of ['main', 'keep']) {
    const out = path.join(path.dirname(repo), `out-${ref}-${crypto.randomUUID()}`);
    await vivaOk(t, ['checkout', ref, out, '-C', repo]);
    t.is(fs.readFileSync(path.join(out, 'etc/hostname'), 'utf8'), 'small\n', `${what}: ${ref}`);
    fs.rmSync(out, { recursive: true, force: true });
  }
}

test('gc: plain gc says the space is free for reuse inside the file, not reclaimed; --compact shrinks the file', async (t) => {
  const repo = repoCopy(t);
  const before = sizeOf(repo);
  t.true(before > 24 * MiB);
  const r = await vivaOk(t, ['gc', '-C', repo]);
  t.regex(r.stdout, /^removed \d+ objects, kept \d+: 24\.\d MiB stored now free for reuse inside the repository file \(it does not shrink; 'viva gc --compact' returns free space to the file system\)\n$/);
  t.true(sizeOf(repo) >= before, 'LMDB files do not shrink by themselves');
  const c = await vivaOk(t, ['gc', '--compact', '-C', repo]);
  const after = sizeOf(repo);
  t.true(after < 1 * MiB, `file is ${after} bytes after compaction`);
  t.regex(c.stdout, /^removed 0 objects, kept \d+\ncompacted '.*data\.mdb': 2\d\.\d MiB -> \d+\.\d KiB \(2\d\.\d MiB returned to the file system\)\n$/);
  t.false(fs.existsSync(dataFile(repo) + TMP));
  await assertWhole(t, repo, 'after compaction');
  // The compacted repository takes new commits, and gc/compact again.
  await vivaOk(t, ['commit', fixture.small, '-b', 'after', '-C', repo, '-m', 'after']);
  const j = await vivaJson(t, ['gc', '--compact', '-C', repo]);
  t.is(j.compacted.before - j.compacted.after, j.compacted.reclaimed);
  t.is(j.compacted.after, sizeOf(repo));
  await assertWhole(t, repo, 'second compaction');
});

(process.getuid?.() === 0 ? test : test.skip)('gc: --compact keeps the data file\'s mode and owner (a shared repository stays usable by its owner)', async (t) => {
  const repo = repoCopy(t);
  const data = dataFile(repo);
  fs.chmodSync(data, 0o664);
  fs.chownSync(data, 65534, 65534);
  await vivaOk(t, ['gc', '--compact', '-C', repo]);
  const st = fs.statSync(data);
  t.is(st.mode & 0o7777, 0o664);
  t.deepEqual([st.uid, st.gid], [65534, 65534]);
  await assertWhole(t, repo, 'after compaction');
});

test('gc: --compact runs gc first, in one command', async (t) => {
  const repo = repoCopy(t);
  const j = await vivaJson(t, ['gc', '--compact', '-C', repo]);
  t.true(j.removed > 0);
  t.true(j.compacted.reclaimed > 24 * MiB, JSON.stringify(j.compacted));
  await assertWhole(t, repo, 'gc --compact');
});

test('gc: --compact refuses (exit 11) while a writer session is live, and changes nothing', async (t) => {
  const repo = repoCopy(t);
  const env = open({ path: dataFile(repo), maxDbs: 16 });
  const sessions = env.openDB({ name: 'sessions', encoding: 'msgpack' });
  await sessions.put('live', { pid: process.pid, host: os.hostname(), started: Date.now(), kind: 'commit' });
  await env.close();
  const before = fs.readFileSync(dataFile(repo));
  const r = await viva(['gc', '--compact', '-C', repo]);
  t.is(r.code, EXIT.LOCKED, r.stderr);
  t.regex(r.stderr, /^error: repository '.*' is locked by commit \(pid \d+ on .*\)\n$/);
  t.true(fs.readFileSync(dataFile(repo)).equals(before));
});

test.serial('gc: --compact refuses (exit 11) while another process has the repository open, and keeps its file', async (t) => {
  const repo = repoCopy(t);
  await vivaOk(t, ['gc', '-C', repo]);
  const before = sizeOf(repo);
  // This test process is the other process: a reader with the environment open.
  const env = open({ path: dataFile(repo), readOnly: true, maxDbs: 16 });
  try {
    t.truthy(env.openDB({ name: 'refs', encoding: 'msgpack' }).get('HEAD'));
    const r = await viva(['gc', '--compact', '-C', repo]);
    t.is(r.code, EXIT.LOCKED, r.stderr);
    // Children this process spawns meanwhile (other tests' viva runs) inherit LMDB's data file descriptor and count too.
    t.regex(r.stderr, new RegExp(`^error: repository '.*' is locked by process(es)? (\\d+, )*${process.pid}(, \\d+)* \\(the repository is open; compaction needs it to itself\\)\\n$`));
    t.is(sizeOf(repo), before);
    t.false(fs.existsSync(dataFile(repo) + TMP));
  } finally {
    await env.close();
  }
  await vivaOk(t, ['gc', '--compact', '-C', repo]);
  t.true(sizeOf(repo) < before);
  await assertWhole(t, repo, 'after the reader left');
});

test('gc: a leftover compaction copy is removed by the next gc', async (t) => {
  const repo = repoCopy(t);
  fs.writeFileSync(dataFile(repo) + TMP, crypto.randomBytes(10_000));
  await vivaOk(t, ['gc', '-C', repo]);
  t.false(fs.existsSync(dataFile(repo) + TMP));
  await assertWhole(t, repo, 'after removing the leftover');
});

/** fsck clean and both surviving branches there (cheaper than assertWhole, for the kill loop). */
async function assertClean(t: ExecutionContext, repo: string, what: string): Promise<void> {
  const f = await vivaJson(t, ['fsck', '-C', repo]);
  t.true(f.ok, `${what}: ${JSON.stringify(f.problems)}`);
  const refs = await vivaJson<Array<{ name: string }>>(t, ['branch', '-C', repo]);
  t.deepEqual(refs.map((b) => b.name).sort(), ['keep', 'live', 'main'], what);
}

test.serial('gc: --compact killed with SIGKILL at any moment leaves a repository fsck finds clean', async (t) => {
  const base = repoCopy(t, 'base');
  // Live data worth copying, so that kills land inside the copy too.
  const live = path.join(path.dirname(base), 'live');
  fs.mkdirSync(live);
  fs.writeFileSync(path.join(live, 'data'), crypto.randomBytes(16 * MiB));
  await vivaOk(t, ['commit', live, '-b', 'live', '-C', base, '-m', 'live']);
  await vivaOk(t, ['gc', '-C', base]);
  // How long a whole run takes here, to spread the kills over it.
  const probe = copyRepository(base, path.join(path.dirname(base), 'probe'));
  const start = Date.now();
  await vivaOk(t, ['gc', '--compact', '-C', probe]);
  const duration = Date.now() - start;
  const outcomes: string[] = [];
  // A number is a fraction of the run; 'copy' kills as soon as the temporary copy appears.
  for (const [i, when] of ([0.3, 0.6, 0.8, 0.9, 1.0, 1.1, 'copy', 'copy'] as const).entries()) {
    const repo = copyRepository(base, path.join(path.dirname(base), `kill${i}`));
    const before = sizeOf(repo);
    const child = spawnViva(['gc', '--compact', '-C', repo]);
    const done = finished(child);
    const t0 = Date.now();
    if (when === 'copy') {
      while (!fs.existsSync(dataFile(repo) + TMP) && child.exitCode === null && Date.now() - t0 < 60_000) await delay(2);
    } else {
      await delay(Math.round(duration * when));
    }
    child.kill('SIGKILL');
    const r = await done;
    const at = `${when} (${Date.now() - t0} ms)`;
    t.true(r.signal === 'SIGKILL' || r.code === 0, `killed at ${at}: ${r.code} ${r.signal} ${r.stderr}`);
    // The copying child dies with its parent (it polls its parent pid every 100 ms).
    await delay(300);
    outcomes.push(`${at}: ${r.signal ?? 'finished'}, ${sizeOf(repo) === before ? 'old file' : 'compacted'}${fs.existsSync(dataFile(repo) + TMP) ? ', copy left' : ''}`);
    await assertClean(t, repo, `killed at ${at}`);
    if (when === 'copy') {
      // The next run removes the leftover and compacts.
      const j = await vivaJson(t, ['gc', '--compact', '-C', repo]);
      t.true(j.compacted.after < before);
      t.false(fs.existsSync(dataFile(repo) + TMP));
      await assertWhole(t, repo, `compacted after the kill at ${at}`);
    }
  }
  t.log(outcomes.join('; '));
  t.true(outcomes.some((o) => o.includes('copy left')), 'some kill landed inside the copy');
});
