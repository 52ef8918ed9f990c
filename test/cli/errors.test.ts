/**
 * Bad input through the built CLI: every failure is one line naming what is wrong (file and offset or path), a
 * documented exit code, no stack trace unless DEBUG, and the repository byte-for-byte as before.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { open } from 'lmdb';
import { EXIT } from '../../src/cli/exit-codes.js';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { Repository } from '../../src/store/repository.js';
import { readCommit } from '../../src/store/typed.js';
import { encodeCommit, hashCommit } from '../../src/model/commit.js';
import { MIN_PREFIX } from '../../src/model/oid.js';
import {
  type RunOptions, type RunResult, copyRepository, dataFile, delay, dumpOf, dumpRepository, finished, spawnViva, tmpDir,
  viva, vivaJson, vivaOk,
} from '../helpers/cli.js';
import { snapshotTree } from '../helpers/snapshot.js';
import { BLOCK, ustarArchive, ustarHeader, ustarMember } from '../helpers/ustar.js';

const MiB = 1 << 20;
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

/** The pristine repository every test copies: two commits on debian/12/base, a branch x/y, a tag v1. */
const fixture = { dir: '', repo: '', src: '' };

test.before(async (t) => {
  fixture.dir = tmpDir(undefined, 'viva-errors-');
  fixture.src = path.join(fixture.dir, 'src');
  fixture.repo = path.join(fixture.dir, 'repo');
  const src = fixture.src;
  fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(src, 'usr/bin'), { recursive: true });
  fs.writeFileSync(path.join(src, 'etc/os-release'), 'ID=debian\nVERSION_ID=12\n');
  fs.writeFileSync(path.join(src, 'usr/bin/tool'), Buffer.alloc(200_000, 7));
  fs.chmodSync(path.join(src, 'usr/bin/tool'), 0o755);
  fs.symlinkSync('/etc', path.join(src, 'link'));
  await vivaOk(t, ['init', fixture.repo]);
  await vivaOk(t, ['commit', src, '-C', fixture.repo, '-b', 'debian/12/base', '-m', 'first']);
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'base\n');
  await vivaOk(t, ['commit', src, '-C', fixture.repo, '-b', 'debian/12/base', '-m', 'second']);
  await vivaOk(t, ['branch', 'x/y', 'debian/12/base~1', '-C', fixture.repo]);
  await vivaOk(t, ['tag', 'v1', '-C', fixture.repo]);
});

test.after.always(() => {
  if (fixture.dir) fs.rmSync(fixture.dir, { recursive: true, force: true });
});

/** A private copy of the fixture repository (and a scratch directory next to it). */
function repoCopy(t: ExecutionContext): { dir: string; repo: string } {
  const dir = tmpDir(t, 'viva-errors-case-');
  const repo = copyRepository(fixture.repo, path.join(dir, 'repo'));
  return { dir, repo };
}

/**
 * The error contract: exactly one 'error: ' line (plus at most oclif's "See 'viva X --help'." hint), matching
 * `message`, no stack frames, nothing on stdout.
 */
function assertOneLineError(t: ExecutionContext, r: RunResult, message: RegExp): void {
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  const errors = lines.filter((l) => l.startsWith('error: '));
  t.is(errors.length, 1, `stderr: ${r.stderr}`);
  t.true(lines[0]?.startsWith('error: '), `stderr: ${r.stderr}`);
  for (const l of lines.slice(1)) t.regex(l, /^See 'viva [a-z ]*--help'\.$/, `unexpected stderr line in: ${r.stderr}`);
  t.notRegex(r.stderr, /^\s+at /m, 'no stack trace without DEBUG');
  t.regex(errors[0] ?? '', message);
  t.is(r.stdout, '', 'nothing on stdout');
}

interface Rejection {
  exit: number;
  message: RegExp;
  /** Run without adding `-C repo`. */
  noRepoFlag?: boolean;
  options?: RunOptions;
}

/** Runs a command that must fail, and checks the message, the exit code and that the repository did not change. */
async function expectRejected(t: ExecutionContext, repo: string, args: string[], want: Rejection): Promise<RunResult> {
  const before = await dumpRepository(repo);
  t.true(['index', 'refs', 'reflog', 'meta'].every((db) => dumpOf(before, db).length > 0), 'the dump sees the repository');
  const r = await viva(want.noRepoFlag ? args : [...args, '-C', repo], want.options);
  t.is(r.code, want.exit, `viva ${args.join(' ')}: ${r.stderr}`);
  assertOneLineError(t, r, want.message);
  t.deepEqual(await dumpRepository(repo), before, 'the repository is exactly as before');
  return r;
}

/** fsck is clean and the history reads as in the fixture. */
async function assertIntact(t: ExecutionContext, repo: string): Promise<void> {
  const f = await vivaJson(t, ['fsck', '-C', repo]);
  t.true(f.ok);
  t.deepEqual(f.problems, []);
  const log = await vivaJson<Array<{ message: string }>>(t, ['log', 'debian/12/base', '-C', repo]);
  t.deepEqual(log.map((e) => e.message), ['second', 'first']);
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ---------------------------------------------------------------------------------------------------------------
// Usage errors (exit 2).

test('usage: an unknown flag exits 2 with one line', async (t) => {
  const { repo } = repoCopy(t);
  await expectRejected(t, repo, ['log', '--bogus'], { exit: EXIT.USAGE, message: /^error: Nonexistent flag: --bogus$/ });
});

test('usage: a missing required flag exits 2 and names the flag', async (t) => {
  const { repo } = repoCopy(t);
  await expectRejected(t, repo, ['commit', fixture.src, '-b', 'debian/12/base'], { exit: EXIT.USAGE, message: /^error: Missing required flag message$/ });
  await assertIntact(t, repo);
});

test('usage: a missing argument exits 2 and names it', async (t) => {
  const { repo } = repoCopy(t);
  await expectRejected(t, repo, ['checkout', 'HEAD'], { exit: EXIT.USAGE, message: /^error: Missing 1 required arg: dest\b/ });
});

test('usage: a flag value of the wrong type exits 2 and names the flag', async (t) => {
  const { repo } = repoCopy(t);
  await expectRejected(t, repo, ['log', '-n', 'abc'], { exit: EXIT.USAGE, message: /^error: .*--max-count.*abc/ });
});

const badRefName = test.macro({
  async exec(t, name: string, reason: RegExp) {
    const { repo } = repoCopy(t);
    const quoted = new RegExp(`^error: '${esc(name)}' is not a valid ref name: ${reason.source}`);
    await expectRejected(t, repo, ['commit', fixture.src, '-b', name, '-m', 'x'], { exit: EXIT.USAGE, message: quoted });
    await expectRejected(t, repo, ['branch', name], { exit: EXIT.USAGE, message: quoted });
    await expectRejected(t, repo, ['tag', name], { exit: EXIT.USAGE, message: quoted });
    await expectRejected(t, repo, ['branch', '-m', 'x/y', name], { exit: EXIT.USAGE, message: quoted });
    await assertIntact(t, repo);
  },
  title: (_, name: string) => `usage: the bad ref name '${name}' is refused by commit, branch, tag and rename`,
});

test(badRefName, 'a..b', /it contains '\.\.'/);
test(badRefName, 'x.lock', /a component ends with '\.lock'/);
test(badRefName, 'a b', /it contains a space/);
test(badRefName, 'dir/.hidden', /a component starts with '\.'/);
test(badRefName, 'a//b', /it contains '\/\/'/);
test(badRefName, 'x@{1}', /it contains '@\{'/);

test('usage: a label without = and a malformed author exit 2', async (t) => {
  const { repo } = repoCopy(t);
  await expectRejected(t, repo, ['commit', fixture.src, '-m', 'x', '--label', 'novalue'], { exit: EXIT.USAGE, message: /^error: label 'novalue' is not of the form key=value$/ });
  await expectRejected(t, repo, ['commit', fixture.src, '-m', 'x', '--author', 'nobody'], { exit: EXIT.USAGE, message: /^error: author 'nobody' is not of the form 'Name <email>'$/ });
});

test('usage: an ambiguous short id exits 2 and lists the candidates', async (t) => {
  const { repo } = repoCopy(t);
  // Two commits whose ids share their first MIN_PREFIX hex digits (a birthday search over messages), both on branches.
  const r = Repository.open(repo, 'write');
  let pair: [string, string] = ['', ''];
  try {
    const headOid = r.refs.resolve('refs/heads/debian/12/base')?.oid!;
    const base = readCommit(r.objects, headOid);
    const byPrefix = new Map<string, string>();
    for (let i = 0; ; i++) {
      const enc = encodeCommit({ ...base, parents: [headOid], message: `ambiguous ${i}` });
      const oid = hashCommit(enc);
      const prev = byPrefix.get(oid.slice(0, MIN_PREFIX));
      r.objects.writeObject('commit', oid, enc);
      if (prev) { pair = [prev, oid]; break; }
      byPrefix.set(oid.slice(0, MIN_PREFIX), oid);
    }
    await r.objects.flush();
    await r.refs.update([
      { ref: 'refs/heads/amb/a', newOid: pair[0], expectedOld: null, message: 'test' },
      { ref: 'refs/heads/amb/b', newOid: pair[1], expectedOld: null, message: 'test' },
    ], 'Test User <test@example.com>');
  } finally {
    await r.close();
  }
  await vivaOk(t, ['gc', '-C', repo]); // drop the other generated commits
  const prefix = pair[0].slice(0, MIN_PREFIX);
  await expectRejected(t, repo, ['log', prefix], { exit: EXIT.USAGE, message: new RegExp(`^error: short id '${prefix}' is ambiguous \\(2 candidates: .*${pair[0]}`) });
  await expectRejected(t, repo, ['checkout', prefix, path.join(repo, '..', 'out')], { exit: EXIT.USAGE, message: /is ambiguous/ });
  t.false(fs.existsSync(path.join(repo, '..', 'out')));
  // A longer prefix is unique again.
  const log = await vivaJson<Array<{ id: string }>>(t, ['log', pair[1].slice(0, 12), '-n', '1', '-C', repo]);
  t.is(log[0]?.id, pair[1]);
});

// ---------------------------------------------------------------------------------------------------------------
// Not found (exit 3).

test('not found: an unknown revision exits 3 for every command that takes one', async (t) => {
  const { dir, repo } = repoCopy(t);
  const message = /^error: unknown revision 'nosuch'$/;
  await expectRejected(t, repo, ['log', 'nosuch'], { exit: EXIT.NOT_FOUND, message });
  await expectRejected(t, repo, ['show', 'nosuch'], { exit: EXIT.NOT_FOUND, message });
  await expectRejected(t, repo, ['ls', 'nosuch'], { exit: EXIT.NOT_FOUND, message });
  await expectRejected(t, repo, ['cat', 'nosuch:etc/os-release'], { exit: EXIT.NOT_FOUND, message });
  await expectRejected(t, repo, ['checkout', 'nosuch', path.join(dir, 'out')], { exit: EXIT.NOT_FOUND, message });
  await expectRejected(t, repo, ['branch', 'new', 'nosuch'], { exit: EXIT.NOT_FOUND, message });
  await expectRejected(t, repo, ['show', 'debian/12/base~5'], { exit: EXIT.NOT_FOUND, message: /^error: not enough ancestors for 'debian\/12\/base~5'$/ });
  await expectRejected(t, repo, ['log', 'abc'], { exit: EXIT.NOT_FOUND, message: /^error: unknown revision 'abc'$/ });
  t.false(fs.existsSync(path.join(dir, 'out')), 'checkout created nothing');
});

test('not found: a path that is not in the image exits 3 and names path and revision', async (t) => {
  const { dir, repo } = repoCopy(t);
  await expectRejected(t, repo, ['cat', 'HEAD:etc/nope'], { exit: EXIT.NOT_FOUND, message: /^error: path 'etc\/nope' does not exist in 'HEAD'$/ });
  await expectRejected(t, repo, ['ls', 'debian/12/base~1:etc/hostname'], { exit: EXIT.NOT_FOUND, message: /^error: path 'etc\/hostname' does not exist in 'debian\/12\/base~1'$/ });
  await expectRejected(t, repo, ['ls', 'HEAD:etc/os-release/x'], { exit: EXIT.NOT_FOUND, message: /path 'etc\/os-release\/x' does not exist/ });
  await expectRejected(t, repo, ['checkout', 'HEAD', path.join(dir, 'out'), '--path', 'etc', '--path', 'nope'], { exit: EXIT.NOT_FOUND, message: /^error: path 'nope' does not exist in 'HEAD'$/ });
  t.false(fs.existsSync(path.join(dir, 'out')), 'a bad --path fails before anything is written');
});

test('not found: checkout --path never goes through a symlink of the image', async (t) => {
  const { dir, repo } = repoCopy(t);
  // 'link' is a symlink to /etc in the image: 'link/passwd' is not an image path, and nothing outside DEST is touched.
  const before = fs.statSync('/etc/passwd', { bigint: true });
  await expectRejected(t, repo, ['checkout', 'HEAD', path.join(dir, 'out'), '--path', 'link/passwd'], { exit: EXIT.NOT_FOUND, message: /^error: path 'link\/passwd' does not exist in 'HEAD'$/ });
  await expectRejected(t, repo, ['cat', 'HEAD:link/passwd'], { exit: EXIT.NOT_FOUND, message: /path 'link\/passwd' does not exist/ });
  t.false(fs.existsSync(path.join(dir, 'out')));
  const after = fs.statSync('/etc/passwd', { bigint: true });
  t.is(after.mtimeNs, before.mtimeNs);
  // The symlink itself checks out as a symlink, not as the directory it names.
  await vivaOk(t, ['checkout', 'HEAD', path.join(dir, 'out2'), '--path', 'link', '-C', repo]);
  t.is(fs.readlinkSync(path.join(dir, 'out2/link')), '/etc');
  t.deepEqual(fs.readdirSync(path.join(dir, 'out2')), ['link']);
});

test('not found: deleting or renaming a missing branch or tag, or the reflog of one, exits 3', async (t) => {
  const { repo } = repoCopy(t);
  await expectRejected(t, repo, ['branch', '-d', 'nosuch'], { exit: EXIT.NOT_FOUND, message: /^error: ref 'nosuch' not found$/ });
  await expectRejected(t, repo, ['tag', '-d', 'v9'], { exit: EXIT.NOT_FOUND, message: /^error: ref 'v9' not found$/ });
  await expectRejected(t, repo, ['branch', '-m', 'nosuch', 'other'], { exit: EXIT.NOT_FOUND, message: /^error: ref 'nosuch' not found$/ });
  await expectRejected(t, repo, ['reflog', 'nosuch'], { exit: EXIT.NOT_FOUND, message: /^error: ref 'nosuch' not found$/ });
});

// ---------------------------------------------------------------------------------------------------------------
// No repository (exit 10).

test('no repository: outside any repository, with --repo or VIVA_REPO naming a non-repository, exits 10', async (t) => {
  const dir = tmpDir(t);
  const r1 = await viva(['log'], { cwd: dir });
  t.is(r1.code, EXIT.NO_REPOSITORY);
  assertOneLineError(t, r1, new RegExp(`^error: not a viva repository \\(or any parent\\): '${esc(fs.realpathSync(dir))}'$`));
  const r2 = await viva(['branch', '-C', path.join(dir, 'missing')], { cwd: dir });
  t.is(r2.code, EXIT.NO_REPOSITORY);
  assertOneLineError(t, r2, /^error: not a viva repository \(or any parent\): '.*missing'$/);
  const r3 = await viva(['fsck'], { cwd: dir, env: { VIVA_REPO: dir } });
  t.is(r3.code, EXIT.NO_REPOSITORY);
  assertOneLineError(t, r3, new RegExp(`^error: not a viva repository \\(or any parent\\): '${esc(dir)}'$`));
  const r4 = await viva(['commit', fixture.src, '-m', 'x'], { cwd: dir });
  t.is(r4.code, EXIT.NO_REPOSITORY);
  assertOneLineError(t, r4, /^error: not a viva repository/);
  t.deepEqual(fs.readdirSync(dir), [], 'nothing was created');
});

test('no repository: a repository of a newer format is refused by every command with a hint to upgrade', async (t) => {
  const { dir, repo } = repoCopy(t);
  const store = new LmdbStore(dataFile(repo));
  try {
    store.env.transactionSync(() => { store.meta.putSync('format', 99); });
  } finally {
    await store.close();
  }
  const message = /^error: repository '.*\.viva' has format 99, this viva reads format \d+ or older: upgrade viva$/;
  for (const args of [['log'], ['show'], ['ls'], ['branch'], ['tag', 'v2'], ['reflog'], ['fsck'], ['gc'], ['cat', 'HEAD:etc/os-release'],
    ['checkout', 'HEAD', path.join(dir, 'out')], ['commit', fixture.src, '-m', 'x']]) {
    await expectRejected(t, repo, args, { exit: EXIT.NO_REPOSITORY, message });
  }
  t.false(fs.existsSync(path.join(dir, 'out')));
});

// ---------------------------------------------------------------------------------------------------------------
// Locked (exit 11).

/** Number of writer sessions registered in the repository (read directly from LMDB). */
async function sessionCount(repo: string): Promise<number> {
  const env = open({ path: dataFile(repo), readOnly: true, maxDbs: 16 });
  try {
    const db = env.openDB({ name: 'sessions', keyEncoding: 'binary', encoding: 'binary' });
    return db.getKeysCount({});
  } finally {
    await env.close();
  }
}

test.serial('locked: gc refuses with exit 11 while another process is in a commit session, then succeeds', async (t) => {
  const { dir, repo } = repoCopy(t);
  const big = path.join(dir, 'big');
  fs.mkdirSync(big);
  for (let i = 0; i < 4; i++) execFileSync('head', ['-c', String(32 * MiB), '/dev/urandom'], { stdio: ['ignore', fs.openSync(path.join(big, `f${i}`), 'w'), 'inherit'] });
  const committing = spawnViva(['commit', big, '-b', 'big', '-m', 'big', '-C', repo]);
  const done = finished(committing);
  let stopped = false;
  try {
    // Freeze the commit as soon as its session is registered: it stays a live process holding the session.
    const start = Date.now();
    while ((await sessionCount(repo)) === 0) {
      if (Date.now() - start > 30_000) throw new Error('the commit never registered a session');
      await delay(5);
    }
    committing.kill('SIGSTOP');
    stopped = true;
    const before = await dumpRepository(repo);
    // If the commit was frozen inside an object-batch transaction gc waits for LMDB's writer lock: let it go on then.
    const watchdog = setTimeout(() => { committing.kill('SIGCONT'); stopped = false; }, 5000);
    const r = await viva(['gc', '-C', repo]);
    clearTimeout(watchdog);
    t.is(r.code, EXIT.LOCKED, r.stderr);
    assertOneLineError(t, r, new RegExp(`^error: repository '.*' is locked by commit \\(pid ${committing.pid} on .*\\)$`));
    if (stopped) t.deepEqual(await dumpRepository(repo), before, 'gc changed nothing');
  } finally {
    committing.kill('SIGCONT');
  }
  const c = await done;
  t.is(c.code, 0, c.stderr);
  const g = await vivaJson(t, ['gc', '-C', repo]);
  t.is(g.removed, 0);
  t.is(await sessionCount(repo), 0);
  const f = await vivaJson(t, ['fsck', '-C', repo]);
  t.true(f.ok);
  t.is(f.unreachable, 0);
});

// ---------------------------------------------------------------------------------------------------------------
// Conflicts (exit 12).

test('conflict: checkout into a non-empty directory exits 12 and leaves it alone', async (t) => {
  const { dir, repo } = repoCopy(t);
  const dest = path.join(dir, 'dest');
  fs.mkdirSync(dest);
  fs.writeFileSync(path.join(dest, 'keep'), 'mine');
  const snap = snapshotTree(dest);
  await expectRejected(t, repo, ['checkout', 'HEAD', dest], { exit: EXIT.CONFLICT, message: new RegExp(`^error: destination '${esc(dest)}' exists and is not an empty directory$`) });
  t.deepEqual(snapshotTree(dest), snap);
  // A file, or a symlink (never followed), is no destination either.
  const file = path.join(dir, 'file');
  fs.writeFileSync(file, 'mine');
  await expectRejected(t, repo, ['checkout', 'HEAD', file], { exit: EXIT.CONFLICT, message: /^error: destination '.*file' exists and is not an empty directory$/ });
  t.is(fs.readFileSync(file, 'utf8'), 'mine');
  const empty = path.join(dir, 'empty');
  fs.mkdirSync(empty);
  fs.symlinkSync(empty, path.join(dir, 'sl'));
  await expectRejected(t, repo, ['checkout', 'HEAD', path.join(dir, 'sl')], { exit: EXIT.CONFLICT, message: /^error: destination '.*sl' exists and is not an empty directory$/ });
  t.deepEqual(fs.readdirSync(empty), []);
});

test('conflict: creating or renaming onto an existing branch or tag exits 12', async (t) => {
  const { repo } = repoCopy(t);
  await expectRejected(t, repo, ['branch', 'x/y'], { exit: EXIT.CONFLICT, message: /^error: ref 'x\/y' already exists$/ });
  await expectRejected(t, repo, ['tag', 'v1', 'debian/12/base~1'], { exit: EXIT.CONFLICT, message: /^error: ref 'v1' already exists$/ });
  await expectRejected(t, repo, ['branch', '-m', 'x/y', 'debian/12/base'], { exit: EXIT.CONFLICT, message: /^error: ref 'refs\/heads\/debian\/12\/base' already exists$/ });
  await assertIntact(t, repo);
});

test('conflict: init where a repository exists exits 12', async (t) => {
  const { repo } = repoCopy(t);
  await expectRejected(t, repo, ['init', repo], { exit: EXIT.CONFLICT, message: /^error: a viva repository already exists in '.*repo'$/, noRepoFlag: true });
});

// ---------------------------------------------------------------------------------------------------------------
// Unreadable sources (exit 14).

test('source: a missing source exits 14 and names it', async (t) => {
  const { dir, repo } = repoCopy(t);
  const missing = path.join(dir, 'nosrc');
  await expectRejected(t, repo, ['commit', missing, '-b', 'debian/12/base', '-m', 'x'], { exit: EXIT.SOURCE_UNREADABLE, message: new RegExp(`^error: cannot read '${esc(missing)}': no such file or directory$`) });
  await assertIntact(t, repo);
});

test('source: an unreadable file with --strict exits 14 and names it (without it: left out, exit 4, tested in cli.test.ts)', async (t) => {
  const { dir, repo } = repoCopy(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'ok'), 'fine');
  fs.writeFileSync(path.join(src, 'secret'), 'hidden');
  fs.chmodSync(path.join(src, 'secret'), 0o000);
  // root reads anything: run the CLI as nobody then, on a repository nobody may write.
  const options: RunOptions = isRoot ? { uid: NOBODY, gid: NOBODY, env: { HOME: dir } } : {};
  // The first open creates LMDB's lock file: let that happen before handing the repository to nobody.
  await dumpRepository(repo);
  if (isRoot) execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, repo]);
  await expectRejected(t, repo, ['commit', src, '-b', 'debian/12/base', '-m', 'x', '--strict'], {
    exit: EXIT.SOURCE_UNREADABLE, message: new RegExp(`^error: cannot read '${esc(path.join(src, 'secret'))}': permission denied \\(EACCES\\)$`), options,
  });
  await assertIntact(t, repo);
});

test.serial('source: a file that changes while it is read exits 14 and names it; gc then removes the leftovers', async (t) => {
  const { dir, repo } = repoCopy(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  const big = path.join(src, 'big.img');
  execFileSync('head', ['-c', String(128 * MiB), '/dev/urandom'], { stdio: ['ignore', fs.openSync(big, 'w'), 'inherit'] });
  fs.writeFileSync(path.join(src, 'small'), 'small');
  const before = await dumpRepository(repo);
  // A writer that appends 4 KiB every 2 ms for as long as the commit runs.
  const writer = spawn(process.execPath, ['-e', `
    const fs = require('fs');
    const fd = fs.openSync(${JSON.stringify(big)}, 'a');
    const b = Buffer.alloc(4096, 1);
    fs.writeSync(fd, b);
    process.stdout.write('ready\\n');
    setInterval(() => fs.writeSync(fd, b), 2);
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { writer.kill('SIGKILL'); });
  await new Promise<void>((resolve, reject) => {
    writer.stdout!.once('data', () => resolve());
    writer.once('exit', () => reject(new Error('writer died')));
  });
  const r = await viva(['commit', src, '-b', 'debian/12/base', '-m', 'torn', '-C', repo]);
  writer.kill('SIGKILL');
  t.is(r.code, EXIT.SOURCE_UNREADABLE, r.stderr);
  assertOneLineError(t, r, new RegExp(`^error: '${esc(big)}' changed while it was being read$`));
  // Everything but objects (and the pack counter) is unchanged; objects of flushed batches stay unreferenced until gc.
  const after = await dumpRepository(repo);
  const objectsBefore = new Set(dumpOf(before, 'index'));
  const nextPack = `meta ${Buffer.from('next-pack').toString('hex')} `;
  const notObjects = (d: string[]) => d.filter((l) => !l.startsWith('index ') && !l.startsWith(nextPack));
  t.deepEqual(notObjects(after), notObjects(before));
  t.true(dumpOf(before, 'index').every((l) => after.includes(l)), 'no object was lost');
  const f = await vivaJson(t, ['fsck', '-C', repo]);
  t.true(f.ok);
  t.is(f.objects - f.unreachable, objectsBefore.size);
  await assertIntact(t, repo);
  const g = await vivaJson(t, ['gc', '-C', repo]);
  t.is(g.removed, f.unreachable);
  t.deepEqual(notObjects(await dumpRepository(repo)), notObjects(before), 'after gc the repository is exactly as before');
  t.deepEqual(dumpOf(await dumpRepository(repo), 'index'), dumpOf(before, 'index'), 'with exactly the objects it had');
});

// ---------------------------------------------------------------------------------------------------------------
// Corrupt and unsafe input images (exit 13).

/** A regular archive of the fixture source, built by GNU tar. */
function gnuTar(dir: string): Buffer {
  const file = path.join(dir, 'good.tar');
  execFileSync('tar', ['-cf', file, '-C', fixture.src, '.']);
  return fs.readFileSync(file);
}

const badImage = test.macro({
  async exec(t, make: (dir: string) => Buffer, message: RegExp) {
    const { dir, repo } = repoCopy(t);
    const file = path.join(dir, 'image.tar');
    fs.writeFileSync(file, make(dir));
    await expectRejected(t, repo, ['commit', file, '-b', 'debian/12/base', '-m', 'bad'], {
      exit: EXIT.CORRUPT_INPUT, message: new RegExp(`^error: ${esc(file)}: ${message.source}`),
    });
    await assertIntact(t, repo);
  },
  title: (title = '') => `corrupt input: ${title} exits 13 naming the file and where`,
});

/** 3 MiB of random data, so that truncation hits the middle of a member. */
function bigRandomTar(dir: string): Buffer {
  const src = path.join(dir, 'rnd');
  fs.mkdirSync(src);
  execFileSync('head', ['-c', String(3 * MiB), '/dev/urandom'], { stdio: ['ignore', fs.openSync(path.join(src, 'f'), 'w'), 'inherit'] });
  const file = path.join(dir, 'rnd.tar');
  execFileSync('tar', ['-cf', file, '-C', src, '.']);
  return fs.readFileSync(file);
}

test('a truncated tar', badImage, (dir) => bigRandomTar(dir).subarray(0, 1_500_000), /offset 1500000: unexpected end of archive$/);
test('a tar cut inside a header', badImage, (dir) => gnuTar(dir).subarray(0, 700), /offset \d+: (unexpected end of archive|not a tar archive)$/);
test('a truncated gzip tar', badImage, (dir) => zlib.gzipSync(bigRandomTar(dir)).subarray(0, 1_000_000), /offset \d+: truncated gzip data/);
test('a truncated zstd tar', badImage, (dir) => {
  const tar = path.join(dir, 'z.tar');
  fs.writeFileSync(tar, bigRandomTar(dir));
  execFileSync('zstd', ['-q', '-f', tar, '-o', tar + '.zst']);
  return fs.readFileSync(tar + '.zst').subarray(0, 1_000_000);
}, /offset \d+: truncated zstd data/);
/** A deterministic, compressible archive (so that deflate uses Huffman blocks, not stored ones). */
function textTar(): Buffer {
  const text = Array.from({ length: 20_000 }, (_, i) => `line ${i} of a compressible file ${i % 97}\n`).join('');
  return ustarArchive([{ name: 'etc', type: '5' }, { name: 'etc/big.txt', data: text }, { name: 'etc/x', data: 'x' }]);
}
test('a gzip tar with garbage in the deflate stream', badImage, () => {
  const gz = zlib.gzipSync(textTar());
  for (let i = 2000; i < 2100; i++) gz[i] = 0xff;
  return gz;
}, /offset \d+: corrupt gzip data \(.+\)$/);
test('a gzip tar whose CRC does not match', badImage, () => {
  const gz = zlib.gzipSync(textTar());
  gz[gz.length - 8] ^= 0xff;
  return gz;
}, /offset \d+: corrupt gzip data \(incorrect data check\)$/);
test('a zstd tar whose checksum does not match', badImage, (dir) => {
  const tar = path.join(dir, 'z.tar');
  fs.writeFileSync(tar, textTar());
  execFileSync('zstd', ['-q', '-f', '--check', tar, '-o', tar + '.zst']);
  const zst = fs.readFileSync(tar + '.zst');
  zst[zst.length - 1] ^= 0xff;
  return zst;
}, /offset \d+: corrupt zstd data/);
test('a garbage file', badImage, () => Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919 + 13) % 251)), /offset 0: not a tar archive$/);
test('an empty file', badImage, () => Buffer.alloc(0), /offset 0: not a tar archive/);
test('a header with a bad checksum after a good member', badImage, () => {
  const bad = ustarHeader({ name: 'b', data: 'x' });
  bad[0] ^= 1;
  return Buffer.concat([ustarMember({ name: 'a', data: 'hello\n' }), bad, Buffer.alloc(BLOCK), Buffer.alloc(2 * BLOCK)]);
}, /offset 1024: header checksum mismatch$/);
test('a member larger than the archive', badImage, () => Buffer.concat([ustarHeader({ name: 'a', size: 100_000 }), Buffer.alloc(2 * BLOCK)]), /offset \d+: unexpected end of archive$/);

test("a '../x' member", badImage, () => ustarArchive([{ name: 'a', type: '5' }, { name: '../x', data: 'evil' }]), /member '\.\.\/x': /);
test("an 'a/../../x' member", badImage, () => ustarArchive([{ name: 'a/../../x', data: 'evil' }]), /member 'a\/\.\.\/\.\.\/x': /);
test("an absolute '/etc/x' member", badImage, () => ustarArchive([{ name: '/etc/x', data: 'evil' }]), /member '\/etc\/x': absolute/);
test('a symlink and then a file through it', badImage, () => ustarArchive([
  { name: 'link', type: '2', linkname: '/etc' }, { name: 'link/passwd', data: 'root::0:0::/:/bin/sh\n' },
]), /member 'link\/passwd': path goes through the symlink 'link'$/);
test('a relative symlink and then a directory through it', badImage, () => ustarArchive([
  { name: 'd', type: '5' }, { name: 'd/up', type: '2', linkname: '../..' }, { name: 'd/up/x', type: '5' },
]), /member 'd\/up\/x': path goes through the symlink 'd\/up'$/);
test("a hardlink to '../../etc/passwd'", badImage, () => ustarArchive([{ name: 'h', type: '1', linkname: '../../etc/passwd' }]), /member 'h': hardlink target '\.\.\/\.\.\/etc\/passwd'/);
test('a hardlink through a symlink', badImage, () => ustarArchive([
  { name: 'link', type: '2', linkname: '/etc' }, { name: 'h', type: '1', linkname: 'link/passwd' },
]), /member 'h': hardlink target 'link\/passwd'/);

test('corrupt input: a bad tar never creates the branch it names', async (t) => {
  const { dir, repo } = repoCopy(t);
  const file = path.join(dir, 'evil.tar');
  fs.writeFileSync(file, ustarArchive([{ name: 'ok', data: 'fine' }, { name: '../x', data: 'evil' }]));
  await expectRejected(t, repo, ['commit', file, '-b', 'new/branch', '-m', 'bad'], { exit: EXIT.CORRUPT_INPUT, message: /member '\.\.\/x'/ });
  const branches = await vivaJson<Array<{ name: string }>>(t, ['branch', '-C', repo]);
  t.deepEqual(branches.map((b) => b.name), ['debian/12/base', 'x/y']);
  t.false(fs.existsSync(path.join(dir, 'x')));
});

// ---------------------------------------------------------------------------------------------------------------
// DEBUG and --json.

test('debug: DEBUG=1 adds the stack trace, with the same message and exit code', async (t) => {
  const { repo } = repoCopy(t);
  const r = await viva(['log', 'nosuch', '-C', repo], { env: { DEBUG: '1' } });
  t.is(r.code, EXIT.NOT_FOUND);
  const lines = r.stderr.split('\n');
  t.is(lines[0], "error: unknown revision 'nosuch'");
  t.regex(r.stderr, /RevisionNotFoundError/);
  t.regex(r.stderr, /^ {4}at /m);
});

test('json: with --json the error is also printed as JSON on stdout with its code and data', async (t) => {
  const { repo } = repoCopy(t);
  const r = await viva(['log', 'nosuch', '--json', '-C', repo]);
  t.is(r.code, EXIT.NOT_FOUND);
  t.is(r.stderr, "error: unknown revision 'nosuch'\n");
  const out = JSON.parse(r.stdout);
  t.is(out.error.code, 'ERR_REVISION_NOT_FOUND');
  t.is(out.error.name, 'RevisionNotFoundError');
  t.deepEqual(out.error.data, { rev: 'nosuch' });
});
