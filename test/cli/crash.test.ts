/**
 * kill -9 safety: a commit killed at any moment leaves a repository that fsck finds clean, with the branch either
 * where it was or on a complete new commit, a consistent reflog, and leftovers that the next gc removes.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { copyRepository, delay, finished, spawnViva, tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';
import { snapshotTree } from '../helpers/snapshot.js';

const MiB = 1 << 20;
/** 6 files of 20 MiB of random data in a few directories: a commit of a few seconds. */
const BIG_FILES = 6;
const BIG_FILE_SIZE = 20 * MiB;
/**
 * Kill points as fractions of the measured commit duration (the first is clamped to at least 50 ms); the last run is
 * not killed, so that the "complete new commit" outcome is always checked too.
 */
const KILL_FRACTIONS = [0, 0.25, 0.5, 0.75, 0.92, Infinity];

interface ReflogJson {
  ref: string;
  entries: Array<{ old: string | null; new: string | null; message: string; who: string; time: number; selector: string }>;
}

interface FsckJson {
  ok: boolean;
  objects: number;
  reachable: number;
  unreachable: number;
  problems: unknown[];
}

async function branchOid(t: ExecutionContext, repo: string, name: string): Promise<string | undefined> {
  const list = await vivaJson<Array<{ name: string; oid: string }>>(t, ['branch', '-C', repo]);
  return list.find((b) => b.name === name)?.oid;
}

test.serial('crash: a commit killed with SIGKILL at any point leaves the branch old or complete, fsck clean and gc-able', async (t) => {
  t.timeout(180_000);
  const dir = tmpDir(t, 'viva-crash-');
  const small = path.join(dir, 'small');
  fs.mkdirSync(small);
  fs.writeFileSync(path.join(small, 'os-release'), 'ID=debian\n');
  const small2 = path.join(dir, 'small2');
  fs.mkdirSync(small2);
  fs.writeFileSync(path.join(small2, 'after'), 'the commit after the crash\n');

  const big = path.join(dir, 'big');
  for (let i = 0; i < BIG_FILES; i++) {
    const sub = path.join(big, `d${i % 3}`);
    fs.mkdirSync(sub, { recursive: true });
    execFileSync('head', ['-c', String(BIG_FILE_SIZE), '/dev/urandom'], { stdio: ['ignore', fs.openSync(path.join(sub, `f${i}.img`), 'w'), 'inherit'] });
  }
  const bigSnapshot = snapshotTree(big);

  // The base repository: one commit on branch b.
  const base = path.join(dir, 'base');
  await vivaOk(t, ['init', base]);
  const first = await vivaJson(t, ['commit', small, '-b', 'b', '-m', 'first', '-C', base]);
  const baseReflog = await vivaJson<ReflogJson>(t, ['reflog', 'b', '-C', base]);
  t.is(baseReflog.entries.length, 1);
  const baseFsck = await vivaJson<FsckJson>(t, ['fsck', '-C', base]);

  // One undisturbed run: how long a commit takes, and the tree it must produce.
  const ref = copyRepository(base, path.join(dir, 'ref'));
  const t0 = Date.now();
  const full = await vivaJson(t, ['commit', big, '-b', 'b', '-m', 'second', '-C', ref]);
  const duration = Date.now() - t0;
  t.log(`an undisturbed commit of ${(BIG_FILES * BIG_FILE_SIZE) / MiB} MiB takes ${duration} ms`);
  fs.rmSync(ref, { recursive: true, force: true });

  const outcomes: string[] = [];
  for (const [i, fraction] of KILL_FRACTIONS.entries()) {
    // Jitter of up to ±5% of the duration, so repeated runs probe different moments.
    const kill = Number.isFinite(fraction);
    const at = kill ? Math.max(50, Math.round(duration * (fraction + (Math.random() - 0.5) * 0.06))) : Infinity;
    const repo = copyRepository(base, path.join(dir, `kill${i}`));
    const child = spawnViva(['commit', big, '-b', 'b', '-m', 'second', '-C', repo]);
    const exit = finished(child);
    if (kill) {
      await delay(at);
      child.kill('SIGKILL');
    }
    const r = await exit;
    t.true(r.signal === 'SIGKILL' || r.code === 0, `killed at ${at} ms: ${r.code} ${r.signal} ${r.stderr}`);
    const what = kill ? `kill at ${at} ms (${r.signal ?? `exit ${r.code}`})` : 'no kill';

    // The repository is sound.
    const f = await vivaJson<FsckJson>(t, ['fsck', '-C', repo]);
    t.true(f.ok, `${what}: ${JSON.stringify(f.problems)}`);
    t.deepEqual(f.problems, []);

    // The branch is the old commit or a complete new one; the reflog says the same.
    const head = await branchOid(t, repo, 'b');
    const rl = await vivaJson<ReflogJson>(t, ['reflog', 'b', '-C', repo]);
    if (head === first.commit) {
      outcomes.push(`${what}: branch unchanged, ${f.unreachable} unreachable objects`);
      t.deepEqual(rl, baseReflog, what);
      t.is(f.reachable, baseFsck.reachable, what);
    } else {
      outcomes.push(`${what}: branch on the new commit, ${f.unreachable} unreachable objects`);
      t.truthy(head, what);
      const show = await vivaJson(t, ['show', 'b', '-C', repo]);
      t.deepEqual(show.parents, [first.commit], what);
      t.is(show.tree, full.tree, `${what}: same content, same tree`);
      t.is(show.message, 'second');
      t.is(rl.entries.length, 2, what);
      t.like(rl.entries[0], { old: first.commit, new: head, message: 'commit: second' });
      t.deepEqual(rl.entries[1], { ...baseReflog.entries[0], selector: 'b@{1}' });
      const out = path.join(dir, `out${i}`);
      await vivaOk(t, ['checkout', 'b', out, '-C', repo]);
      t.deepEqual(snapshotTree(out), bigSnapshot, `${what}: checkout equals the source`);
      fs.rmSync(out, { recursive: true, force: true });
    }
    // HEAD follows the branch in both cases.
    t.is((await vivaOk(t, ['rev-parse', '--symbolic-full-name', 'HEAD', '-C', repo])).stdout.trim(), 'refs/heads/b', what);

    // Life goes on: the next commit builds on whatever the branch holds, and gc removes the leftovers.
    const next = await vivaJson(t, ['commit', small2, '-b', 'b', '-m', 'after the crash', '-C', repo]);
    t.is(next.parent, head, what);
    const before = await vivaJson<FsckJson>(t, ['fsck', '--connectivity-only', '-C', repo]);
    t.true(before.ok);
    const g = await viva(['gc', '--json', '-C', repo]);
    t.is(g.code, 0, `${what}: gc: ${g.stderr}`);
    t.is(JSON.parse(g.stdout).removed, before.unreachable, what);
    const after = await vivaJson<FsckJson>(t, ['fsck', '-C', repo]);
    t.like(after, { ok: true, unreachable: 0, objects: before.reachable, problems: [] });
    const log = await vivaJson<Array<{ message: string }>>(t, ['log', 'b', '-C', repo]);
    t.deepEqual(log.map((e) => e.message), head === first.commit ? ['after the crash', 'first'] : ['after the crash', 'second', 'first']);
    fs.rmSync(repo, { recursive: true, force: true });
  }
  t.log(outcomes.join('\n'));
  t.regex(outcomes[0]!, /branch unchanged/, 'killed at 50 ms the commit cannot have finished');
  t.regex(outcomes[outcomes.length - 1]!, /branch on the new commit/);
});
