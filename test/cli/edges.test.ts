/**
 * Input checked at the CLI's edges (times, ref names, remotes, user-given paths), a closed output pipe, and the
 * human output of refs, diffs and listings: each through the built CLI in child processes.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import { Repository } from '../../src/store/repository.js';
import { readCommit } from '../../src/store/typed.js';
import { encodeCommit, hashCommit } from '../../src/model/commit.js';
import { BIN, type RunOptions, type RunResult, cleanEnv, copyRepository, dumpRepository, finished, spawnViva, tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';

/**
 * Two commits on main (the second adds etc/hostname), a tag v1 on the first; branch `long` has 600 more commits on
 * top, and the image has 3000 small files and a 1 MB text file, so that log, ls -r, find --json, grep and cat outrun
 * a pipe's buffer (64 KiB) — `log --oneline` too, by its long subjects (with a short output viva may write it all
 * before `head` exits, and end with 0, as git does).
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
    let parent = r.refs.resolve('refs/heads/main')?.oid!;
    const base = readCommit(r.objects, parent);
    for (let i = 0; i < 600; i++) {
      const enc = encodeCommit({ ...base, parents: [parent], time: base.time + i + 1, message: `long ${i}: a subject line long enough that 600 of them outrun a pipe's buffer in log --oneline too` });
      parent = hashCommit(enc);
      r.objects.writeObject('commit', parent, enc);
    }
    await r.objects.flush();
    await r.refs.update([{ ref: 'refs/heads/long', newOid: parent, expectedOld: null, message: 'test' }], 'Test User <test@example.com>');
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
test(closedPipe, ['checkout', 'HEAD', '-'], ['-c10']);

test('output: a full standard output (> /dev/full) is one line and exit 16, no stack trace', async (t) => {
  const q = (x: string) => `'${x}'`;
  for (const args of [['log', 'long'], ['cat', 'HEAD:usr/share/big.txt'], ['checkout', 'HEAD', '-']]) {
    const script = `${q(process.execPath)} ${q(BIN)} ${args.map(q).join(' ')} -C ${q(fixture.repo)} >/dev/full`;
    const r = spawnSync('bash', ['-c', script], { env: cleanEnv(), encoding: 'utf8' });
    t.is(r.status, EXIT.WRITE_FAILED, `${args.join(' ')}: ${r.stderr}`);
    t.is(r.stderr.trimEnd().split('\n').length, 1, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /^error: .*(no space left on device|ENOSPC)/, args.join(' '));
  }
});

test('output: stdout and stderr into one closed pipe (2>&1 | head) also end quietly', async (t) => {
  const q = (x: string) => `'${x}'`;
  const script = `${q(process.execPath)} ${q(BIN)} log long -C ${q(fixture.repo)} 2>&1 | head -1 >/dev/null; echo "status=\${PIPESTATUS[0]}"`;
  const r = spawnSync('bash', ['-c', script], { env: cleanEnv(), encoding: 'utf8' });
  t.is(r.stdout.trim(), `status=${EXIT.PIPE_CLOSED}`);
  t.is(r.stderr, '');
});

test('output: a reader that waits more than 10 s before reading still gets all of a big --json and exit 0', async (t) => {
  const child = spawnViva(['log', 'long', '--json', '-C', fixture.repo]);
  child.stdout!.pause();
  await new Promise((resolve) => setTimeout(resolve, 12_000));
  const done = finished(child);
  child.stdout!.resume();
  const r = await done;
  t.is(r.stderr, '');
  t.is(r.code, 0);
  t.is((JSON.parse(r.stdout) as unknown[]).length, 602);
});

test('output: a reader that reads everything still gets exit 0', async (t) => {
  const r = await pipedToHead(['log', '-n', '1', '-C', fixture.repo], ['-100']);
  t.is(r.code, 0);
  t.is(r.stderr, '');
});

// ---------------------------------------------------------------------------------------------------------------
// Exit codes as docs/cli.md says.

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;
const hasMke2fs = spawnSync('mke2fs', ['-V']).status === 0 && spawnSync('sfdisk', ['--version']).status === 0;

test('remote: a bare word that is no remote and no path is "no such remote" (exit 3) for push, fetch, pull, ls-remote', async (t) => {
  const { dir, repo } = repoCopy(t);
  for (const args of [['push', 'nosuch', 'main'], ['fetch', 'nosuch'], ['pull', 'nosuch'], ['ls-remote', 'nosuch']]) {
    const before = await dumpRepository(repo);
    const r = await viva([...args, '-C', repo], { cwd: dir });
    t.is(r.code, EXIT.NOT_FOUND, `${args.join(' ')}: ${r.stderr}`);
    assertOneLine(t, r, /^error: no such remote 'nosuch' \(no remotes configured; add one with 'viva remote add'\)$/);
    t.deepEqual(await dumpRepository(repo), before);
  }
  await vivaOk(t, ['remote', 'add', 'origin', path.join(dir, 'elsewhere'), '-C', repo]);
  const r = await viva(['push', 'orgin', 'main', '-C', repo], { cwd: dir });
  t.is(r.code, EXIT.NOT_FOUND);
  assertOneLine(t, r, /^error: no such remote 'orgin' \(remotes: origin\)$/);
  // A bare word that is an existing directory is a path, as in git.
  await vivaOk(t, ['init', path.join(dir, 'b')]);
  await vivaOk(t, ['push', 'b', 'main', '-C', repo], { cwd: dir });
  const branches = await vivaJson<Array<{ name: string }>>(t, ['branch', '-C', path.join(dir, 'b')]);
  t.deepEqual(branches.map((b) => b.name), ['main']);
});

test('remote: a missing path or a directory without a repository is an unreachable remote (exit 17)', async (t) => {
  const dir = tmpDir(t);
  fs.mkdirSync(path.join(dir, 'plain'));
  const r1 = await viva(['clone', path.join(dir, 'nonexistent'), path.join(dir, 'c1')]);
  t.is(r1.code, EXIT.REMOTE, r1.stderr);
  assertOneLine(t, r1, /^error: .*nonexistent: no such repository \(the path does not exist\)$/);
  const r2 = await viva(['clone', path.join(dir, 'plain'), path.join(dir, 'c2')]);
  t.is(r2.code, EXIT.REMOTE, r2.stderr);
  assertOneLine(t, r2, /^error: .*plain: not a viva repository$/);
  const { repo } = repoCopy(t);
  await expectRefused(t, repo, ['push', path.join(dir, 'plain'), 'main'], EXIT.REMOTE, /^error: .*plain: not a viva repository$/);
  await expectRefused(t, repo, ['fetch', path.join(dir, 'nonexistent')], EXIT.REMOTE, /: no such repository/);
});

test('serve: a missing --token-file or TLS file exits 14 naming it; a certificate that is not PEM exits 2', async (t) => {
  const { dir, repo } = repoCopy(t);
  const missing = path.join(dir, 'nonexistent');
  await expectRefused(t, repo, ['serve', '--allow-push', '--token-file', missing], EXIT.SOURCE_UNREADABLE,
    new RegExp(`^error: cannot read '${missing}': no such file or directory \\(ENOENT\\)$`));
  const junk = path.join(dir, 'junk.pem');
  fs.writeFileSync(junk, 'not a certificate\n');
  await expectRefused(t, repo, ['serve', '--tls-cert', missing, '--tls-key', junk], EXIT.SOURCE_UNREADABLE, /^error: cannot read '.*nonexistent': no such file/);
  await expectRefused(t, repo, ['serve', '--tls-cert', junk, '--tls-key', junk], EXIT.USAGE, /^error: --tls-cert '.*junk\.pem' \/ --tls-key '.*junk\.pem': not a PEM certificate/);
  await expectRefused(t, repo, ['serve', '--listen', '192.0.2.1:1'], EXIT.USAGE, /^error: cannot listen on '192\.0\.2\.1:1': address not available \(EADDRNOTAVAIL\)$/);
});

(hasMke2fs ? test : test.skip)('checkout: a --size too small for the table or the files is a usage error (exit 2), nothing left behind', async (t) => {
  const { dir, repo } = repoCopy(t);
  for (const [size, message] of [
    ['1', /^error: .*out\.raw: --size 1 bytes is too small: a disk with a GPT table needs at least 2097152 bytes$/],
    ['1M', /too small: a disk with a GPT table needs at least/],
    ['2M', /^error: .*out\.raw: --size 2097152 bytes is too small for the files of 'HEAD' \(mke2fs .*\)$/],
  ] as const) {
    const out = path.join(dir, 'out.raw');
    await expectRefused(t, repo, ['checkout', 'HEAD', out, '--size', size], EXIT.USAGE, message);
    t.false(fs.existsSync(out));
  }
  await expectRefused(t, repo, ['checkout', 'HEAD', path.join(dir, 'bare.raw'), '--size', '100K', '--partition', 'none'], EXIT.USAGE,
    /too small: a disk without a partition table needs at least 262144 bytes$/);
});

for (const dest of ['out', 'out.tar', 'deeper/out']) {
  test(`checkout: a destination '${dest}' in a directory the user may not write exits 16 naming it`, async (t) => {
    const { dir, repo } = repoCopy(t);
    const ro = path.join(dir, 'ro');
    fs.mkdirSync(ro, { mode: 0o555 });
    fs.chmodSync(ro, 0o555);
    // root writes anywhere: run as nobody then, on a repository nobody may open.
    await dumpRepository(repo);
    if (isRoot) execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, repo]);
    const options: RunOptions = isRoot ? { uid: NOBODY, gid: NOBODY, env: { HOME: dir } } : {};
    const target = path.join(ro, dest);
    const r = await viva(['checkout', 'HEAD', target, '-C', repo], options);
    t.is(r.code, EXIT.CHECKOUT_FAILED, r.stderr);
    assertOneLine(t, r, new RegExp(`^error: cannot create '${target}': permission denied \\(EACCES\\)$`));
    t.deepEqual(fs.readdirSync(ro), []);
  });
}

(isRoot ? test : test.skip)('checkout: as a user who may not set owners, one summary warning line counts the entries and names the first', async (t) => {
  const dir = tmpDir(t, 'viva-edges-case-');
  fs.chmodSync(dir, 0o755);
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
  for (const n of ['hostname', 'hosts', 'passwd']) fs.writeFileSync(path.join(src, 'etc', n), `${n}\n`);
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', src, '-C', repo, '-m', 'root-owned']);
  await dumpRepository(repo);
  execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, repo]);
  const home = path.join(dir, 'home');
  fs.mkdirSync(home);
  fs.chownSync(home, NOBODY, NOBODY);
  const out = path.join(home, 'out');
  const r = await viva(['checkout', 'main', out, '-C', repo], { uid: NOBODY, gid: NOBODY, env: { HOME: home } });
  t.is(r.code, 0, r.stderr);
  // The root directory, etc and three files: five entries owned by 0:0.
  t.is(r.stderr, `warning: ${out}: cannot set owner 0:0 (EPERM), nor the owners of 4 more entries\n`);
  t.regex(r.stdout, /: 3 files, 2 directories, .*, 1 warning$/m);
  t.is(fs.readFileSync(path.join(out, 'etc/passwd'), 'utf8'), 'passwd\n');
  const j = await vivaJson<{ warnings: Array<{ path: string; message: string; count?: number }> }>(t, ['checkout', 'main', path.join(home, 'out2'), '-C', repo, '--json'],
    { uid: NOBODY, gid: NOBODY, env: { HOME: home } });
  t.deepEqual(j.warnings, [{ path: path.join(home, 'out2'), message: 'cannot set owner 0:0 (EPERM), nor the owners of 4 more entries', count: 5 }]);
  const strict = await viva(['checkout', 'main', path.join(home, 'out3'), '-C', repo, '--strict'], { uid: NOBODY, gid: NOBODY, env: { HOME: home } });
  t.is(strict.code, EXIT.CHECKOUT_FAILED);
});

// ---------------------------------------------------------------------------------------------------------------
// Refs that shadow each other.

test('refs: a tag named like a branch warns when made and at every lookup; heads/NAME still names the branch', async (t) => {
  const { repo } = repoCopy(t);
  const made = await vivaOk(t, ['tag', 'main', 'HEAD~1', '-C', repo]);
  t.regex(made.stderr, /^warning: refname 'main' is ambiguous \(refs\/tags\/main, refs\/heads\/main\): 'main' means refs\/tags\/main; say tags\/main or heads\/main\n$/);
  const [first, second] = (await vivaJson<Array<{ id: string }>>(t, ['log', 'long', '-C', repo])).slice(-2).reverse();
  const r = await viva(['log', 'main', '-n', '1', '--json', '-C', repo]);
  t.is(r.code, 0);
  t.is(r.stderr, "warning: refname 'main' is ambiguous (refs/tags/main, refs/heads/main): using refs/tags/main\n");
  t.is(JSON.parse(r.stdout)[0].id, first!.id, 'the tag wins, as in git');
  const b = await viva(['log', 'heads/main', '-n', '1', '--json', '-C', repo]);
  t.is(b.stderr, '');
  t.is(JSON.parse(b.stdout)[0].id, second!.id);
  t.is(JSON.parse((await viva(['log', 'tags/main', '-n', '1', '--json', '-C', repo])).stdout)[0].id, first!.id);
});

test('refs: a branch named like a commit id prefix warns when made, and at lookup when a commit id has that prefix', async (t) => {
  const { repo } = repoCopy(t);
  const [head] = await vivaJson<Array<{ id: string }>>(t, ['log', '-n', '1', '-C', repo]);
  const prefix = head!.id.slice(0, 4);
  const made = await vivaOk(t, ['branch', prefix, 'HEAD~1', '-C', repo]);
  t.is(made.stderr, `warning: '${prefix}' looks like a commit id: as a revision it now means refs/heads/${prefix}, not a commit whose id starts with it\n`);
  const r = await viva(['log', prefix, '-n', '1', '--oneline', '-C', repo]);
  t.is(r.stderr, `warning: refname '${prefix}' is ambiguous (refs/heads/${prefix}, a commit id): using refs/heads/${prefix}\n`);
  t.notRegex(r.stdout, new RegExp(`^${head!.id.slice(0, 12)}`));
  const c = await vivaOk(t, ['commit', fixture.src, '-b', 'abcdef12', '-m', 'x', '-C', repo]);
  t.regex(c.stderr, /^warning: 'abcdef12' looks like a commit id/);
  t.is((await vivaOk(t, ['branch', 'v1x', '-C', repo])).stderr, '', 'an ordinary name: no warning');
});

for (const [args, name, reason] of [
  [['branch', '--', '-bad'], '-bad', "it starts with '-'"],
  [['tag', '--', '-bad'], '-bad', "it starts with '-'"],
  [['branch', '-m', 'main', '--', '-bad'], '-bad', "it starts with '-'"],
  [['commit', '-b', 'refs/tags/x', '-m', 'x', '<src>'], 'refs/tags/x', "a short name cannot start with 'refs/' \\(give it as NAME or refs/heads/NAME\\)"],
  [['branch', 'refs/tags/x'], 'refs/tags/x', "a short name cannot start with 'refs/'"],
  [['tag', 'refs/heads/x'], 'refs/heads/x', "a short name cannot start with 'refs/' \\(give it as NAME or refs/tags/NAME\\)"],
  [['tag', 'HEAD'], 'HEAD', "'HEAD' is reserved"],
] as const) {
  test(`refs: ${args.join(' ')} is refused (exit 2)`, async (t) => {
    const { repo } = repoCopy(t);
    const before = await dumpRepository(repo);
    // -C right after the command name: after '--' it would be an argument.
    const [cmd, ...rest] = args.map((a) => (a === '<src>' ? fixture.src : a));
    const r = await viva([cmd!, '-C', repo, ...rest]);
    t.is(r.code, EXIT.USAGE, r.stderr);
    assertOneLine(t, r, new RegExp(`^error: '${name}' is not a valid ref name: ${reason}`));
    t.deepEqual(await dumpRepository(repo), before);
  });
}

test('refs: a full refs/heads/ name is the branch itself', async (t) => {
  const { repo } = repoCopy(t);
  await vivaOk(t, ['branch', 'refs/heads/full', '-C', repo]);
  const names = (await vivaJson<Array<{ name: string }>>(t, ['branch', '-C', repo])).map((b) => b.name);
  t.deepEqual(names, ['full', 'long', 'main']);
});

test('refs: decorations show tags as "tag: v1" (show, log --decorate); log decorates only on request off a terminal', async (t) => {
  const show = await vivaOk(t, ['show', 'v1', '-C', fixture.repo]);
  t.regex(show.stdout.split('\n')[0]!, /^commit [0-9a-f]{64} \(tag: v1\)$/);
  const log = await vivaOk(t, ['log', 'main', '--oneline', '--decorate', '-C', fixture.repo]);
  t.regex(log.stdout, /^[0-9a-f]{12} \(HEAD -> main\) second\n[0-9a-f]{12} \(tag: v1\) first\n$/);
  t.regex((await vivaOk(t, ['log', 'main', '--oneline', '-C', fixture.repo])).stdout, /^[0-9a-f]{12} second\n[0-9a-f]{12} first\n$/);
  const json = await vivaJson<Array<{ refs: string[] }>>(t, ['log', 'main', '-C', fixture.repo]);
  t.deepEqual(json.map((e) => e.refs), [['refs/heads/main'], ['refs/tags/v1']]);
});

test('refs: branch -f over an existing branch says "Reset", listings are aligned', async (t) => {
  const { repo } = repoCopy(t);
  const [head, parent] = await vivaJson<Array<{ id: string }>>(t, ['log', 'main', '-C', repo]);
  const r = await vivaOk(t, ['branch', '-f', 'main', 'HEAD~1', '-C', repo]);
  t.is(r.stdout, `Reset branch main to ${parent!.id.slice(0, 12)} (was ${head!.id.slice(0, 12)})\n`);
  await vivaOk(t, ['branch', 'a/much/longer/name', '-C', repo]);
  const list = (await vivaOk(t, ['branch', '-C', repo])).stdout.split('\n').filter(Boolean);
  t.is(list.length, 3);
  const column = list.map((l) => l.search(/[0-9a-f]{12}$/));
  t.true(column.every((c) => c === column[0]), list.join('\n'));
  await vivaOk(t, ['tag', 'release/2024/long-name', '-C', repo]);
  const tags = (await vivaOk(t, ['tag', '-C', repo])).stdout.split('\n').filter(Boolean);
  t.is(new Set(tags.map((l) => l.search(/[0-9a-f]{12}$/))).size, 1, tags.join('\n'));
});

// ---------------------------------------------------------------------------------------------------------------
// Smaller ones: diff ranges and labels, --stat -p, JSON names, cat --json, messages, plurals, stats.

/** A copy whose main has a third commit changing etc/hostname, and a branch `side` off v1 with its own change. */
async function divergedCopy(t: ExecutionContext): Promise<{ dir: string; repo: string }> {
  const { dir, repo } = repoCopy(t);
  const src = path.join(dir, 'src');
  fs.cpSync(fixture.src, src, { recursive: true });
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'web\n');
  await vivaOk(t, ['commit', src, '-C', repo, '-m', 'third'], { env: { VIVA_DATE: '1700000200' } });
  fs.rmSync(path.join(src, 'etc/hostname'));
  fs.writeFileSync(path.join(src, 'etc/side'), 'side\n');
  await vivaOk(t, ['branch', 'side', 'v1', '-C', repo]);
  await vivaOk(t, ['commit', src, '-b', 'side', '-C', repo, '-m', 'side'], { env: { VIVA_DATE: '1700000300' } });
  return { dir, repo };
}

test('diff: A..B is A B; A...B compares B with the merge base; no common ancestor exits 2', async (t) => {
  const { dir, repo } = await divergedCopy(t);
  const two = await vivaOk(t, ['diff', 'main~2', 'main', '--ignore-mtime', '-C', repo]);
  t.regex(two.stdout, /^A\tetc\/hostname$/m);
  t.is((await vivaOk(t, ['diff', 'main~2..main', '--ignore-mtime', '-C', repo])).stdout, two.stdout);
  const toHead = await vivaOk(t, ['diff', 'main~2..', '--ignore-mtime', '-C', repo]); // HEAD is side now
  t.regex(toHead.stdout, /^A\tetc\/side$/m);
  // side...main: what main did since side forked from it (at v1); main...side: what side did.
  t.is((await vivaOk(t, ['diff', 'side...main', '--ignore-mtime', '-C', repo])).stdout, two.stdout);
  const sideOnly = await vivaOk(t, ['diff', 'main...side', '--ignore-mtime', '-C', repo]);
  t.regex(sideOnly.stdout, /^A\tetc\/side$/m);
  t.notRegex(sideOnly.stdout, /hostname/);
  const json = await vivaJson<{ a: { commit: string } }>(t, ['diff', 'main...side', '-C', repo]);
  const [v1] = await vivaJson<Array<{ id: string }>>(t, ['log', 'v1', '-n', '1', '-C', repo]);
  t.is(json.a.commit, v1!.id);
  // A separate history: no merge base.
  const other = path.join(dir, 'other');
  fs.mkdirSync(other);
  fs.writeFileSync(path.join(other, 'x'), 'x\n');
  await vivaOk(t, ['commit', other, '-b', 'orphan', '-C', repo, '-m', 'orphan']);
  await expectRefused(t, repo, ['diff', 'orphan...main'], EXIT.USAGE, /^error: 'orphan' and 'main' have no common ancestor: 'orphan\.\.\.main' has no merge base to compare with \(use 'orphan\.\.main'\)$/);
  t.regex((await vivaOk(t, ['diff', 'orphan..main', '-C', repo])).stdout, /^D\tx$/m);
});

test('diff: two files are labelled with their path, not "/"; -p patches name it too', async (t) => {
  const { repo } = await divergedCopy(t);
  const r = await vivaOk(t, ['diff', 'main~1:etc/hostname', 'main:etc/hostname', '-C', repo]);
  t.regex(r.stdout, /^M\tetc\/hostname\t\[content 5 -> 4 bytes/);
  const p = await vivaOk(t, ['diff', 'main~1:etc/hostname', 'main:etc/hostname', '-p', '-C', repo]);
  t.regex(p.stdout, /^--- a\/etc\/hostname$/m);
  t.regex(p.stdout, /^\+web$/m);
});

test('diff: --stat -p shows the summary and then the patches', async (t) => {
  const { repo } = await divergedCopy(t);
  const stat = (await vivaOk(t, ['diff', 'main~1', 'main', '--stat', '--ignore-mtime', '-C', repo])).stdout;
  const patch = (await vivaOk(t, ['diff', 'main~1', 'main', '-p', '--ignore-mtime', '-C', repo])).stdout;
  const both = (await vivaOk(t, ['diff', 'main~1', 'main', '--stat', '-p', '--ignore-mtime', '-C', repo])).stdout;
  t.regex(stat, /1 entry changed \(0 added, 0 deleted, 1 modified, 0 type changes, 0 renamed\)/);
  t.regex(patch, /^@@ /m);
  t.is(both, `${stat}\n${patch}`);
});

test('commit: --json names the new commit id as log and show do (commit kept as an alias); counts are singular for 1', async (t) => {
  const { dir, repo } = repoCopy(t);
  const one = path.join(dir, 'one');
  fs.mkdirSync(one);
  fs.writeFileSync(path.join(one, 'f'), 'x');
  const c = await vivaJson<{ id: string; commit: string }>(t, ['commit', one, '-b', 'one', '-m', 'one', '-C', repo]);
  t.is(c.id, c.commit);
  const [head] = await vivaJson<Array<{ id: string }>>(t, ['log', '-n', '1', '-C', repo]);
  t.is(head!.id, c.id);
  fs.writeFileSync(path.join(one, 'f'), 'y');
  const human = await vivaOk(t, ['commit', one, '-b', 'one', '-m', 'two', '-C', repo]);
  t.regex(human.stdout, /^\[one [0-9a-f]{12}\] 1 file, 1 directory, 1 B; /);
  const out = path.join(dir, 'out');
  t.regex((await vivaOk(t, ['checkout', 'one', out, '-C', repo])).stdout, /: 1 file, 1 directory, 1 B$/m);
  t.regex((await vivaOk(t, ['stats', 'one', '-C', repo])).stdout, /^image [0-9a-f]{12}: 1 file, 1 directory, 0 symlinks, 0 other$/m);
});

for (const message of ['', '   ', '\n']) {
  test(`commit: -m ${JSON.stringify(message)} is refused as git does (exit 2)`, async (t) => {
    const { repo } = repoCopy(t);
    await expectRefused(t, repo, ['commit', fixture.src, '-m', message], EXIT.USAGE, /^error: aborting commit due to empty commit message$/);
  });
}

test('cat: --json gives the metadata and the content, as text when it is UTF-8 and as base64 otherwise', async (t) => {
  const { dir, repo } = repoCopy(t);
  const j = await vivaJson<Record<string, unknown>>(t, ['cat', 'main:etc/os-release', '-C', repo]);
  t.like(j, { path: 'etc/os-release', type: 'file', size: 10, encoding: 'utf8', content: 'ID=debian\n' });
  t.regex(String(j.oid), /^[0-9a-f]{64}$/);
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const bytes = Buffer.from([0xff, 0x00, 0xfe, 0x41]);
  fs.writeFileSync(path.join(bin, 'b'), bytes);
  await vivaOk(t, ['commit', bin, '-b', 'bin', '-m', 'bin', '-C', repo]);
  const b = await vivaJson<{ encoding: string; content: string }>(t, ['cat', 'bin:b', '-C', repo]);
  t.is(b.encoding, 'base64');
  t.deepEqual(Buffer.from(b.content, 'base64'), bytes);
  const r = await viva(['cat', 'main:etc', '--json', '-C', repo]);
  t.is(r.code, EXIT.USAGE);
  t.is(JSON.parse(r.stdout).error.code, 'ERR_USAGE');
});

test('push: a non-fast-forward rejection gives advice that works today (no merge)', async (t) => {
  const { dir, repo } = repoCopy(t);
  const other = path.join(dir, 'other');
  await vivaOk(t, ['clone', repo, other]);
  await vivaOk(t, ['commit', fixture.src, '-m', 'ahead', '-C', repo]);
  await vivaOk(t, ['commit', fixture.src, '-m', 'diverged', '-C', other], { env: { VIVA_DATE: '1700000500' } });
  const r = await viva(['push', 'origin', 'main', '-C', other]);
  t.is(r.code, EXIT.CONFLICT);
  assertOneLine(t, r, /non-fast-forward\): the remote has commits yours lacks; fetch them, move your branch onto them \(viva branch -f\) and commit on top, or push --force to replace them$/);
  t.notRegex(r.stderr, /merge/);
});

test('stats: the directory count is the one commit reports (the image root included)', async (t) => {
  const { dir, repo } = repoCopy(t);
  const src = path.join(dir, 'tree');
  fs.mkdirSync(path.join(src, 'a/b'), { recursive: true });
  fs.mkdirSync(path.join(src, 'c'));
  fs.writeFileSync(path.join(src, 'a/b/f'), 'x\n');
  const c = await vivaJson<{ dirs: number; files: number }>(t, ['commit', src, '-b', 'tree', '-m', 'tree', '-C', repo]);
  t.is(c.dirs, 4);
  const s = await vivaJson<{ dirs: number; files: number; dedupRatio: number }>(t, ['stats', 'tree', '-C', repo]);
  t.is(s.dirs, c.dirs);
  t.is(s.files, c.files);
});

(hasMke2fs ? test : test.skip)('stats: on a bare and a partitioned disk, directories agree with commit and dedup is over the files (never below 1)', async (t) => {
  const { dir, repo } = repoCopy(t);
  const src = path.join(dir, 'tree');
  fs.mkdirSync(path.join(src, 'a/b'), { recursive: true });
  fs.writeFileSync(path.join(src, 'a/b/f'), 'same content\n');
  fs.writeFileSync(path.join(src, 'a/g'), 'same content\n');
  const fsImg = path.join(dir, 'fs.img');
  fs.writeFileSync(fsImg, '');
  fs.truncateSync(fsImg, 8 << 20);
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', src, fsImg]);
  const disk = path.join(dir, 'disk.raw');
  fs.writeFileSync(disk, '');
  fs.truncateSync(disk, 12 << 20);
  execFileSync('sfdisk', ['-q', disk], { input: 'start=2048, size=16384, type=83\n' });
  execFileSync('dd', [`if=${fsImg}`, `of=${disk}`, 'bs=512', 'seek=2048', 'conv=notrunc', 'status=none']);
  for (const [image, branch] of [[fsImg, 'bare'], [disk, 'disk']] as const) {
    const c = await vivaJson<{ dirs: number; files: number }>(t, ['commit', image, '-b', branch, '-m', branch, '-C', repo]);
    const s = await vivaJson<{ dirs: number; files: number; dedupRatio: number; logicalBytes: number; uniqueBytes: number; diskExtraBytes: number }>(t, ['stats', branch, '-C', repo]);
    t.is(s.dirs, c.dirs, branch);
    t.is(s.files, c.files, branch);
    t.is(s.logicalBytes, 26, branch);
    t.is(s.uniqueBytes, 13, branch);
    t.is(s.dedupRatio, 2, branch);
    t.true(s.diskExtraBytes > 0, branch);
  }
});
