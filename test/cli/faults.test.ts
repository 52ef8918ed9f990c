/**
 * Fault injection (kopia's faulty storage, SQLite's I/O-error tests): commit, checkout, push, fetch, gc and compaction run as
 * child processes with VIVA_FAULT making the Nth write transaction, pack read or transaction flush fail with ENOSPC
 * or EIO, or the process die. Every run ends within its timeout with success, a one-line error and a documented exit
 * code, or the kill; afterwards fsck is clean and every ref checks out.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { copyRepository, tmpDir, viva, vivaOk, type RunResult } from '../helpers/cli.js';
import { Repository } from '../../src/store/repository.js';
import { fsck } from '../../src/ops/fsck.js';
import { checkout } from '../../src/ops/checkout.js';
import { EXIT } from '../../src/cli/exit-codes.js';

const KiB = 1024;
const POINTS = ['write', 'read', 'flush'] as const;
const ACTIONS = ['ENOSPC', 'EIO', 'kill'] as const;
/** Exit codes a faulted run may end with: success (the fault hit nothing that mattered), damaged (a read failed), write failed. */
const ALLOWED = new Set<number>([EXIT.OK, EXIT.REPOSITORY_DAMAGED, EXIT.WRITE_FAILED]);
/** At most this many N per fault point and operation, spread over the range the operation reaches. */
const SAMPLES = 4;
const RUN_TIMEOUT = 30_000;

function writeFiles(dir: string, files: Record<string, Buffer | string>): void {
  for (const [name, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), data);
  }
}

interface Fixture { dir: string; base: string; empty: string; src: string; big: string }

/** A repository with main (two commits), old (the first) and the leftovers of a deleted branch for gc; `src` for the next commit. */
async function fixture(t: ExecutionContext): Promise<Fixture> {
  const dir = tmpDir(t, 'viva-faults-');
  const s1 = path.join(dir, 's1');
  writeFiles(s1, { 'etc/os-release': 'ID=debian\n', 'etc/hostname': 'one\n', 'usr/bin/tool': crypto.randomBytes(600 * KiB), 'var/log': crypto.randomBytes(300 * KiB) });
  const s2 = path.join(dir, 's2');
  fs.cpSync(s1, s2, { recursive: true });
  writeFiles(s2, { 'etc/hostname': 'two\n', 'usr/lib/big': crypto.randomBytes(700 * KiB) });
  const s3 = path.join(dir, 's3');
  writeFiles(s3, { garbage: crypto.randomBytes(400 * KiB) });
  const src = path.join(dir, 'next');
  fs.cpSync(s2, src, { recursive: true });
  writeFiles(src, { 'etc/hostname': 'three\n', 'opt/new': crypto.randomBytes(500 * KiB), 'opt/dir/small': 'small\n' });

  const base = path.join(dir, 'base');
  await vivaOk(t, ['init', base]);
  await vivaOk(t, ['commit', s1, '-m', 'one', '-b', 'main'], { cwd: base });
  await vivaOk(t, ['branch', 'old'], { cwd: base });
  await vivaOk(t, ['commit', s3, '-m', 'tmp', '-b', 'tmp'], { cwd: base });
  await vivaOk(t, ['commit', s2, '-m', 'two', '-b', 'main'], { cwd: base });
  await vivaOk(t, ['branch', '-d', 'tmp'], { cwd: base });
  const empty = path.join(dir, 'empty');
  await vivaOk(t, ['init', empty]);
  // More than one writer batch: commit hands its writes to the writer thread (which counts its own fault points).
  const big = path.join(dir, 'big');
  writeFiles(big, { a: crypto.randomBytes(5 << 20), b: crypto.randomBytes(5 << 20), 'c/d': crypto.randomBytes(3 << 20) });
  return { dir, base, empty, src, big };
}

interface Scenario {
  name: string;
  /** Prepares the repositories of one run (copies of the fixture under `runDir`); returns the repositories to check afterwards and the command. */
  setup(f: Fixture, runDir: string): { repos: string[]; args: string[]; cwd: string };
  /**
   * Reads a remote on a local path in the same thread: a read fault may hit the remote's packs, which is the
   * remote's damage (exit 17), not this repository's.
   */
  readsRemote?: boolean;
}

const SCENARIOS: Scenario[] = [
  {
    name: 'commit',
    setup: (f, d) => {
      const repo = copyRepository(f.base, path.join(d, 'repo'));
      return { repos: [repo], args: ['commit', f.src, '-m', 'three', '-b', 'main'], cwd: repo };
    },
  },
  {
    name: 'commit-large',
    setup: (f, d) => {
      const repo = copyRepository(f.base, path.join(d, 'repo'));
      return { repos: [repo], args: ['commit', f.big, '-m', 'big', '-b', 'main'], cwd: repo };
    },
  },
  {
    name: 'checkout',
    setup: (f, d) => {
      const repo = copyRepository(f.base, path.join(d, 'repo'));
      return { repos: [repo], args: ['checkout', 'main', path.join(d, 'out')], cwd: repo };
    },
  },
  {
    name: 'checkout-tar',
    setup: (f, d) => {
      const repo = copyRepository(f.base, path.join(d, 'repo'));
      return { repos: [repo], args: ['checkout', 'old', path.join(d, 'out.tar')], cwd: repo };
    },
  },
  {
    name: 'push',
    setup: (f, d) => {
      const repo = copyRepository(f.base, path.join(d, 'repo'));
      const remote = copyRepository(f.empty, path.join(d, 'remote'));
      return { repos: [repo, remote], args: ['push', remote, 'main'], cwd: repo };
    },
  },
  {
    name: 'fetch',
    readsRemote: true,
    setup: (f, d) => {
      const repo = copyRepository(f.empty, path.join(d, 'repo'));
      const remote = copyRepository(f.base, path.join(d, 'remote'));
      return { repos: [repo, remote], args: ['fetch', remote], cwd: repo };
    },
  },
  {
    name: 'gc',
    setup: (f, d) => {
      const repo = copyRepository(f.base, path.join(d, 'repo'));
      return { repos: [repo], args: ['gc'], cwd: repo };
    },
  },
  {
    name: 'gc-compact',
    setup: (f, d) => {
      const repo = copyRepository(f.base, path.join(d, 'repo'));
      return { repos: [repo], args: ['gc', '--compact'], cwd: repo };
    },
  },
];

/** fsck is clean and every ref checks out completely (in this process, without faults). */
async function checkRepository(t: ExecutionContext, root: string, what: string, outDir: string): Promise<void> {
  // Every scenario's repositories exist before the run: a fault that loses the database is a failure.
  const data = path.join(root, '.viva', 'data.mdb');
  if (!fs.existsSync(data)) {
    t.fail(`${what}: ${data} is gone`);
    return;
  }
  const repo = Repository.open(root, 'read');
  try {
    const r = await fsck(repo);
    t.deepEqual(r.problems, [], `${what}: fsck of ${root}`);
    for (const { ref } of repo.refs.list('refs/')) {
      const dest = path.join(outDir, `${path.basename(root)}-${ref.replaceAll('/', '_')}`);
      await t.notThrowsAsync(checkout(repo, { rev: ref, dest }), `${what}: checkout of ${ref} in ${root}`);
      fs.rmSync(dest, { recursive: true, force: true });
    }
  } finally {
    await repo.close();
  }
}

/** Up to SAMPLES values of N spread over 1..max. */
function sampleN(max: number): number[] {
  if (max <= 0) return [];
  const out = new Set<number>([1, max]);
  for (let i = 1; out.size < Math.min(SAMPLES, max); i++) out.add(1 + Math.floor((i * (max - 1)) / SAMPLES));
  return [...out].sort((a, b) => a - b);
}

function judge(t: ExecutionContext, what: string, r: RunResult, action: string, ms: number, readsRemote = false): void {
  t.true(ms < RUN_TIMEOUT, `${what}: still running after ${RUN_TIMEOUT} ms (a hang): ${r.stderr}`);
  if (r.signal === 'SIGKILL' && action === 'kill') return;
  t.is(r.signal, null, `${what}: ended by ${r.signal}`);
  const remoteDamage = readsRemote && what.includes(' read:') && r.code === EXIT.REMOTE && /\(the remote repository is damaged\)$/.test(r.stderr.trimEnd());
  t.true(ALLOWED.has(r.code!) || remoteDamage, `${what}: exit ${r.code}: ${r.stderr}`);
  if (r.code !== 0) {
    const lines = r.stderr.trimEnd().split('\n');
    t.is(lines.length, 1, `${what}: ${r.stderr}`);
    t.regex(lines[0]!, /^error: [a-z'/].*[^.]$/, what); // a remote's errors start with its path
    t.notRegex(r.stderr, /internal error|\n\s+at /, what);
  }
}

for (const scenario of SCENARIOS) {
  test(`faults: ${scenario.name} ends cleanly under every injected fault; fsck clean and every ref complete`, async (t) => {
    t.timeout(300_000);
    const f = await fixture(t);
    // A clean run first: how many times it reaches each fault point.
    const cleanDir = path.join(f.dir, 'clean');
    fs.mkdirSync(cleanDir);
    const clean = scenario.setup(f, cleanDir);
    const countsFile = path.join(f.dir, 'counts.json');
    const ok = await viva(clean.args, { cwd: clean.cwd, env: { VIVA_FAULT_COUNTS: countsFile } });
    t.is(ok.code, 0, ok.stderr);
    const counts = JSON.parse(fs.readFileSync(countsFile, 'utf8')) as Record<(typeof POINTS)[number], number>;
    t.log(`${scenario.name}: ${JSON.stringify(counts)}`);
    let run = 0;
    for (const point of POINTS) {
      for (const n of sampleN(counts[point])) {
        const action = ACTIONS[run % ACTIONS.length]!;
        const what = `${scenario.name} ${point}:${n}:${action}`;
        const d = path.join(f.dir, `run${run++}`);
        fs.mkdirSync(d);
        const s = scenario.setup(f, d);
        const started = Date.now();
        const r = await viva(s.args, { cwd: s.cwd, env: { VIVA_FAULT: `${point}:${n}:${action}` }, timeoutMs: RUN_TIMEOUT });
        judge(t, what, r, action, Date.now() - started, scenario.readsRemote);
        for (const repo of s.repos) await checkRepository(t, repo, what, d);
        fs.rmSync(d, { recursive: true, force: true });
      }
    }
    t.true(run > 0, 'no fault point reached');
  });
}

test('faults: a commit that exits non-zero never moved its branch, and one that moved it exits 0 (later write failures are warnings)', async (t) => {
  t.timeout(300_000);
  const f = await fixture(t);
  const countsFile = path.join(f.dir, 'counts.json');
  const cleanDir = path.join(f.dir, 'clean');
  fs.mkdirSync(cleanDir);
  const clean = copyRepository(f.base, path.join(cleanDir, 'repo'));
  t.is((await viva(['commit', f.src, '-m', 'three', '-b', 'main'], { cwd: clean, env: { VIVA_FAULT_COUNTS: countsFile } })).code, 0);
  const writes = (JSON.parse(fs.readFileSync(countsFile, 'utf8')) as { write: number }).write;
  t.true(writes > 1);
  let moved = 0;
  for (let n = 1; n <= writes; n++) {
    const d = path.join(f.dir, `w${n}`);
    fs.mkdirSync(d);
    const repo = copyRepository(f.base, path.join(d, 'repo'));
    const head0 = JSON.parse((await vivaOk(t, ['log', '-n', '1', '--json'], { cwd: repo })).stdout)[0].id as string;
    const r = await viva(['commit', f.src, '-m', 'three', '-b', 'main'], { cwd: repo, env: { VIVA_FAULT: `write:${n}:ENOSPC` }, timeoutMs: RUN_TIMEOUT });
    const head1 = JSON.parse((await vivaOk(t, ['log', '-n', '1', '--json'], { cwd: repo })).stdout)[0].id as string;
    if (r.code === 0) {
      t.not(head1, head0, `write:${n}: exit 0 but the branch did not move`);
      if (r.stderr) t.regex(r.stderr, /^warning: commit [0-9a-f]{12} is recorded, but .* failed: /, `write:${n}`);
      moved++;
    } else {
      t.is(r.code, EXIT.WRITE_FAILED, `write:${n}: ${r.stderr}`);
      t.is(head1, head0, `write:${n}: exit ${r.code} but the branch moved`);
    }
    await checkRepository(t, repo, `write:${n}`, d);
    fs.rmSync(d, { recursive: true, force: true });
  }
  t.true(moved > 0, 'a failure after the ref moved is reported as a warning');
});

test('faults: a malformed VIVA_FAULT is a usage error (exit 2), never mistaken for an injected fault', async (t) => {
  const dir = tmpDir(t, 'viva-faults-');
  await vivaOk(t, ['init', dir]);
  writeFiles(path.join(dir, 'src'), { 'etc/hostname': 'x\n' });
  await vivaOk(t, ['commit', 'src', '-m', 'x'], { cwd: dir });
  const r = await viva(['log'], { cwd: dir, env: { VIVA_FAULT: 'bogus' } });
  t.is(r.code, EXIT.USAGE, r.stderr);
  t.is(r.stderr, "error: bad VIVA_FAULT entry 'bogus' (want write|read|flush:N:ENOSPC|EIO|kill)\n");
});

test('faults: the post-run check fails when a repository lost its database', async (t) => {
  const root = tmpDir(t, 'viva-faults-lost-');
  fs.mkdirSync(path.join(root, '.viva'));
  const attempt = await t.try(async (tt) => {
    tt.pass();
    await checkRepository(tt, root, 'lost', root);
  });
  const passed = attempt.passed;
  attempt.discard();
  t.false(passed, 'a repository without data.mdb passed the check');
});

test('faults: a failed pack read names the object and, where the reader knows it, the image path (checkout dir and tar, read ahead or not; cat), exit 15', async (t) => {
  t.timeout(300_000);
  const dir = tmpDir(t, 'viva-faults-');
  const src = path.join(dir, 'src');
  // etc/passwd is inline; big.bin and many/* are chunked, and enough for checkout's read-ahead thread.
  const files: Record<string, Buffer | string> = { 'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n', 'big.bin': crypto.randomBytes(3 << 20) };
  for (let i = 0; i < 9; i++) files[`many/f${i}.bin`] = crypto.randomBytes(2 << 20);
  writeFiles(src, files);
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', src, '-m', 'one', '-b', 'main'], { cwd: repo });
  const passwd = JSON.parse((await vivaOk(t, ['ls', '--json', 'main:etc/passwd'], { cwd: repo })).stdout)[0].oid as string;
  const LINE = /^error: cannot read (commit|tree|blob|chunk) '[0-9a-f]{64}'( of '[^']+')?: input\/output error \(pack \d+\)$/;
  const failures: string[] = [];
  const run = async (args: string[], n: number): Promise<string> => {
    const r = await viva(args, { cwd: repo, env: { VIVA_FAULT: `read:${n}:EIO` } });
    t.is(r.code, EXIT.REPOSITORY_DAMAGED, `${args.join(' ')} read:${n}: ${r.stderr}`);
    const lines = r.stderr.trimEnd().split('\n');
    t.is(lines.length, 1, r.stderr);
    t.regex(lines[0]!, LINE);
    // A blob or chunk is always read for a file, and the line says which.
    if (/cannot read (blob|chunk)/.test(lines[0]!)) t.regex(lines[0]!, / of '[^']+': /);
    failures.push(lines[0]!);
    return lines[0]!;
  };
  t.regex(await run(['checkout', 'main', path.join(dir, 'o1')], 1), /^error: cannot read commit '/);
  for (const n of [2, 5, 12]) await run(['checkout', 'main', path.join(dir, `o${n}`)], n);
  // The read-ahead thread's reads name the file too.
  t.true(failures.some((l) => / of 'many\/f\d\.bin': /.test(l)), failures.join('\n'));
  await run(['checkout', 'main', path.join(dir, 'o.tar')], 2);
  t.regex(await run(['cat', 'main:etc/passwd'], 2), new RegExp(`^error: cannot read blob '${passwd}' of 'etc/passwd': input/output error \\(pack \\d+\\)$`));
  for (const out of fs.readdirSync(dir).filter((n) => n.startsWith('o'))) t.fail(`partial output ${out} left behind`);
});
