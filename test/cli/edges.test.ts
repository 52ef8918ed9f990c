/**
 * Input checked at the CLI's edges (times, ref names, remotes, user-given paths), a closed output pipe, and the
 * human output of refs, diffs and listings: each through the built CLI in child processes.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import { Repository } from '../../src/store/repository.js';
import { readCommit } from '../../src/store/typed.js';
import { resolveRef, updateRefs } from '../../src/store/refs.js';
import { encodeCommit, hashCommit } from '../../src/model/commit.js';
import { BIN, type RunResult, cleanEnv, copyRepository, dumpRepository, tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';

/**
 * Two commits on main (the second adds etc/hostname), a tag v1 on the first; branch `long` has 600 more commits on
 * top, and the image has 3000 small files and a 1 MB text file, so that log, ls -r, find --json, grep and cat outrun
 * a pipe's buffer (64 KiB).
 */
const fixture = { dir: '', repo: '', src: '' };

test.before(async (t) => {
  fixture.dir = tmpDir(undefined, 'viva-edges-');
  fixture.src = path.join(fixture.dir, 'src');
  fixture.repo = path.join(fixture.dir, 'repo');
  const src = fixture.src;
  fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(src, 'usr/share'), { recursive: true });
  fs.writeFileSync(path.join(src, 'etc/os-release'), 'ID=debian\n');
  // Enough lines that `log`, `ls -r`, `grep` and `cat` outrun a pipe buffer (64 KiB).
  fs.writeFileSync(path.join(src, 'usr/share/big.txt'), Array.from({ length: 40_000 }, (_, i) => `line ${i} of the big file`).join('\n') + '\n');
  for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(src, 'usr/share', `f${i}`), `file ${i}\n`);
  await vivaOk(t, ['init', fixture.repo]);
  await vivaOk(t, ['commit', src, '-C', fixture.repo, '-m', 'first'], { env: { VIVA_DATE: '1700000000' } });
  await vivaOk(t, ['tag', 'v1', '-C', fixture.repo]);
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'base\n');
  await vivaOk(t, ['commit', src, '-C', fixture.repo, '-m', 'second'], { env: { VIVA_DATE: '1700000100' } });
  const r = Repository.open(fixture.repo, 'write');
  try {
    let parent = resolveRef(r.store, 'refs/heads/main')!;
    const base = readCommit(r.store, parent);
    for (let i = 0; i < 600; i++) {
      const enc = encodeCommit({ ...base, parents: [parent], time: base.time + i + 1, message: `long ${i}` });
      parent = hashCommit(enc);
      r.store.writeObject('commit', parent, enc);
    }
    r.store.flush();
    updateRefs(r.store, [{ ref: 'refs/heads/long', newOid: parent, expectedOld: null, message: 'test' }], 'Test User <test@example.com>');
  } finally {
    await r.close();
  }
});

test.after.always(() => {
  if (fixture.dir) fs.rmSync(fixture.dir, { recursive: true, force: true });
});

function repoCopy(t: ExecutionContext): { dir: string; repo: string } {
  const dir = tmpDir(t, 'viva-edges-case-');
  return { dir, repo: copyRepository(fixture.repo, path.join(dir, 'repo')) };
}

/** Exactly one `error: ` line on stderr (plus oclif's help hint), no stack, matching `message`. */
function assertOneLine(t: ExecutionContext, r: RunResult, message: RegExp): void {
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  t.is(lines.filter((l) => l.startsWith('error: ')).length, 1, `stderr: ${r.stderr}`);
  t.true(lines[0]?.startsWith('error: '), `stderr: ${r.stderr}`);
  for (const l of lines.slice(1)) t.regex(l, /^See 'viva [a-z ]*--help'\.$/, `unexpected stderr line in: ${r.stderr}`);
  t.notRegex(r.stderr, /^\s+at /m);
  t.regex(lines[0] ?? '', message);
}

/** Runs a command that must fail with `exit` and one line matching `message`, leaving the repository unchanged. */
async function expectRefused(t: ExecutionContext, repo: string, args: string[], exit: number, message: RegExp, env?: Record<string, string>): Promise<RunResult> {
  const before = await dumpRepository(repo);
  const r = await viva([...args, '-C', repo], env ? { env } : {});
  t.is(r.code, exit, `viva ${args.join(' ')}: ${r.stderr}`);
  assertOneLine(t, r, message);
  t.deepEqual(await dumpRepository(repo), before, 'the repository is unchanged');
  return r;
}

// ---------------------------------------------------------------------------------------------------------------
// Times.

for (const value of ['abc', '1.5', '1e20', '99999999999999999999', '253402300800']) {
  test(`commit: VIVA_DATE=${value} is refused with exit 2 before anything is written`, async (t) => {
    const { repo } = repoCopy(t);
    await expectRefused(t, repo, ['commit', fixture.src, '-m', 'x'], EXIT.USAGE,
      new RegExp(`^error: VIVA_DATE '${value.replace('.', '\\.')}' is not a valid time: `), { VIVA_DATE: value });
    const log = await vivaJson<Array<{ message: string }>>(t, ['log', '-C', repo]);
    t.deepEqual(log.map((e) => e.message), ['second', 'first']);
  });
}

test('commit: VIVA_DATE at the limits is recorded and shown', async (t) => {
  const { repo } = repoCopy(t);
  await vivaOk(t, ['commit', fixture.src, '-C', repo, '-m', 'late'], { env: { VIVA_DATE: '253402300799' } });
  const [head] = await vivaJson<Array<{ date: string; time: number }>>(t, ['log', '-n', '1', '-C', repo]);
  t.is(head?.time, 253402300799);
  t.regex(head?.date ?? '', /^9999-12-3[01]T/);
  await vivaOk(t, ['show', '-C', repo]);
});

test('find: --newer refuses what is neither whole seconds nor an ISO date', async (t) => {
  const { repo } = repoCopy(t);
  for (const v of ['1.5', '1e20', 'yesterday', '2024-13']) {
    await expectRefused(t, repo, ['find', '--newer', v], EXIT.USAGE, new RegExp(`^error: --newer '${v.replace('.', '\\.')}' is not a valid time: `));
  }
  const hits = await vivaJson<Array<{ path: string }>>(t, ['find', '--newer', '2000-01-01', '--name', 'os-release', '-C', repo]);
  t.true(hits.length > 0);
});

// ---------------------------------------------------------------------------------------------------------------
// A closed output pipe.

/** Runs `viva ARGS | head HEADARGS` in bash with a real pipe; returns viva's exit status and its stderr. */
async function pipedToHead(args: string[], headArgs: string[]): Promise<{ code: number; stderr: string; head: string }> {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = `${q(process.execPath)} ${q(BIN)} ${args.map(q).join(' ')} 2>"$ERR" | head ${headArgs.map(q).join(' ')}; echo "status=\${PIPESTATUS[0]}" >&2`;
  const dir = fs.mkdtempSync(path.join(fixture.dir, 'pipe-'));
  const errFile = path.join(dir, 'stderr');
  const child = spawn('bash', ['-c', script], { env: cleanEnv({ ERR: errFile }), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  await new Promise((resolve) => child.on('close', resolve));
  const status = /status=(\d+)/.exec(err);
  return { code: status ? Number(status[1]) : -1, stderr: fs.readFileSync(errFile, 'utf8'), head: out };
}

const closedPipe = test.macro({
  async exec(t, args: string[], headArgs: string[]) {
    const r = await pipedToHead([...args, '-C', fixture.repo], headArgs);
    t.is(r.stderr, '', 'nothing on stderr');
    t.is(r.code, EXIT.PIPE_CLOSED);
    t.true(r.head.length > 0);
  },
  title: (_, args: string[], headArgs: string[]) => `output: viva ${args.join(' ')} | head ${headArgs.join(' ')} ends quietly with ${EXIT.PIPE_CLOSED}`,
});

test(closedPipe, ['log', 'long'], ['-1']);
test(closedPipe, ['log', 'long', '--oneline'], ['-1']);
test(closedPipe, ['log', 'long', '--json'], ['-1']);
test(closedPipe, ['ls', '-r', '-l'], ['-1']);
test(closedPipe, ['cat', 'HEAD:usr/share/big.txt'], ['-c10']);
test(closedPipe, ['grep', 'line'], ['-1']);
test(closedPipe, ['find', '--name', 'f*', '--json'], ['-1']);

test('output: a reader that reads everything still gets exit 0', async (t) => {
  const r = await pipedToHead(['log', '-n', '1', '-C', fixture.repo], ['-100']);
  t.is(r.code, 0);
  t.is(r.stderr, '');
});
