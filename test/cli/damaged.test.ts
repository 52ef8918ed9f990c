/**
 * A damaged repository database (truncated, zero-length, garbage, deleted `data.mdb`) through the built CLI: every
 * command exits 15 with one line naming the file, no process dies of a signal (LMDB maps the file: a truncated one
 * used to give SIGBUS, garbage SIGSEGV), and nothing in `.viva` changes (no fresh database replaces a lost one).
 * Also: paths init cannot create fail at once (exit 16).
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import { type RunResult, dataFile, tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';

const isRoot = process.getuid?.() === 0;

/** A repository with two commits on main (made once, copied per case). */
const fixture = { dir: '', repo: '', src: '' };

test.before(async (t) => {
  fixture.dir = tmpDir(undefined, 'viva-damaged-');
  fixture.src = path.join(fixture.dir, 'src');
  fixture.repo = path.join(fixture.dir, 'repo');
  fs.mkdirSync(path.join(fixture.src, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(fixture.src, 'etc/hostname'), 'one\n');
  fs.writeFileSync(path.join(fixture.src, 'big'), crypto.randomBytes(300_000));
  await vivaOk(t, ['init', fixture.repo]);
  await vivaOk(t, ['commit', fixture.src, '-C', fixture.repo, '-m', 'first']);
  fs.writeFileSync(path.join(fixture.src, 'etc/hostname'), 'two\n');
  await vivaOk(t, ['commit', fixture.src, '-C', fixture.repo, '-m', 'second']);
});

test.after.always(() => {
  if (fixture.dir) fs.rmSync(fixture.dir, { recursive: true, force: true });
});

/** A private copy of the fixture's `.viva` (every file in it, the marker and the lock file included). */
function repoCopy(t: ExecutionContext): string {
  const repo = path.join(tmpDir(t, 'viva-damaged-case-'), 'repo');
  fs.cpSync(fixture.repo, repo, { recursive: true });
  return repo;
}

/** Every file under `.viva` with the sha256 of its bytes. */
function snapshotDataDir(repo: string): Record<string, string> {
  const dir = path.join(repo, '.viva');
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(dir).sort()) out[name] = crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, name))).digest('hex');
  return out;
}

function assertDamaged(t: ExecutionContext, r: RunResult, repo: string, why: RegExp, what: string): void {
  t.is(r.signal, null, `${what}: killed by ${r.signal}`);
  t.is(r.code, EXIT.REPOSITORY_DAMAGED, `${what}: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter(Boolean);
  t.is(lines.length, 1, `${what}: ${r.stderr}`);
  const file = dataFile(repo).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  t.regex(lines[0] ?? '', new RegExp(`^error: repository database '${file}' damaged or missing: .*\\(restore it from a remote with 'viva clone'`), what);
  t.regex(lines[0] ?? '', why, what);
  t.is(r.stdout, '', what);
}

const COMMANDS: string[][] = [['log'], ['fsck'], ['gc'], ['commit', '@SRC', '-m', 'again'], ['show'], ['cat', 'HEAD:etc/hostname']];

async function expectAllDamaged(t: ExecutionContext, repo: string, why: RegExp, label: string): Promise<void> {
  const before = snapshotDataDir(repo);
  for (const args of COMMANDS) {
    const argv = args.map((a) => (a === '@SRC' ? fixture.src : a));
    const r = await viva([...argv, '-C', repo], { timeoutMs: 30_000 });
    assertDamaged(t, r, repo, why, `${label}: viva ${args.join(' ')}`);
    t.deepEqual(snapshotDataDir(repo), before, `${label}: viva ${args.join(' ')} changed nothing in .viva`);
  }
  // Found from the current directory too (no -C).
  const r = await viva(['log'], { cwd: repo, timeoutMs: 30_000 });
  assertDamaged(t, r, repo, why, `${label}: viva log in the work tree`);
  t.deepEqual(snapshotDataDir(repo), before);
}

const size = () => fs.statSync(dataFile(fixture.repo)).size;

const TRUNCATIONS: Array<[string, () => number, RegExp]> = [
  ['zero-length', () => 0, /: the file is empty \(/],
  ['100 bytes', () => 100, /: truncated to 100 bytes, shorter than an LMDB meta page/],
  ['one page', () => 4096, /: truncated to 4096 bytes, shorter than its two 4096-byte meta pages/],
  ['two pages', () => 8192, /: truncated to 8192 bytes of the \d+ its pages need/],
  ['half', () => Math.floor(size() / 2), /: truncated to \d+ bytes of the \d+ its pages need/],
];

for (const [label, to, why] of TRUNCATIONS) {
  test(`damaged: data.mdb truncated (${label}) fails every command with exit 15, no crash, nothing changed`, async (t) => {
    const repo = repoCopy(t);
    fs.truncateSync(dataFile(repo), to());
    await expectAllDamaged(t, repo, why, label);
  });
}

// The last pages of a healthy file may be free ones LMDB allocated and released within one transaction (never
// written, so the file may legitimately end before them): cutting them is harmless, cutting a page in use is damage.
for (const [label, cut] of [['all but one page', 4096], ['all but one byte', 1], ['all but three pages', 3 * 4096]] as const) {
  test(`damaged: data.mdb truncated (${label}) is exit 15 if a page in use is gone, else harmless; never a crash`, async (t) => {
    const repo = repoCopy(t);
    fs.truncateSync(dataFile(repo), size() - cut);
    const r = await viva(['log', '-C', repo], { timeoutMs: 30_000 });
    t.is(r.signal, null);
    if (r.code === EXIT.REPOSITORY_DAMAGED) {
      t.log('a page in use was cut');
      await expectAllDamaged(t, repo, /: truncated to \d+ bytes of the \d+ its pages need \((overflow )?pages? \d+.* in use lies? past the end\)/, label);
    } else {
      t.log('only free pages were cut');
      t.is(r.code, 0, r.stderr);
      const f = await vivaJson(t, ['fsck', '-C', repo]);
      t.true(f.ok);
      await vivaOk(t, ['cat', 'HEAD:etc/hostname', '-C', repo]);
    }
  });
}

test('damaged: data.mdb full of garbage fails every command with exit 15', async (t) => {
  const repo = repoCopy(t);
  fs.writeFileSync(dataFile(repo), crypto.randomBytes(size()));
  await expectAllDamaged(t, repo, /: not an LMDB file \(meta page 0: /, 'garbage');
});

test('damaged: a garbage second meta page fails with exit 15 (LMDB would pick it by its txnid)', async (t) => {
  const repo = repoCopy(t);
  const fd = fs.openSync(dataFile(repo), 'r+');
  fs.writeSync(fd, crypto.randomBytes(4096), 0, 4096, 4096);
  fs.closeSync(fd);
  await expectAllDamaged(t, repo, /: meta page 1 is damaged/, 'meta 1');
});

test('damaged: a deleted data.mdb is reported, and init, commit and clone never create a fresh database there', async (t) => {
  const repo = repoCopy(t);
  fs.rmSync(dataFile(repo));
  await expectAllDamaged(t, repo, /: the file is missing \(/, 'deleted');
  const before = snapshotDataDir(repo);
  const r = await viva(['init', repo]);
  assertDamaged(t, r, repo, /: the file is missing/, 'init');
  const r2 = await viva(['init'], { cwd: repo });
  assertDamaged(t, r2, repo, /: the file is missing/, 'init .');
  const r3 = await viva(['commit', fixture.src, '-m', 'x'], { cwd: path.join(repo) });
  assertDamaged(t, r3, repo, /: the file is missing/, 'commit in the work tree');
  const r4 = await viva(['clone', fixture.repo, repo]);
  assertDamaged(t, r4, repo, /: the file is missing/, 'clone into it');
  t.deepEqual(snapshotDataDir(repo), before);
  t.false(fs.existsSync(dataFile(repo)));
});

test('damaged: a .viva with only the marker (lock file gone too) is still a repository that lost its database', async (t) => {
  const repo = repoCopy(t);
  fs.rmSync(dataFile(repo));
  fs.rmSync(dataFile(repo) + '-lock');
  // The stat cache (cache.mdb) goes too: only the marker is left.
  for (const f of ['cache.mdb', 'cache.mdb-lock']) fs.rmSync(path.join(repo, '.viva', f), { force: true });
  const r = await viva(['log', '-C', repo]);
  assertDamaged(t, r, repo, /: the file is missing/, 'log');
  const r2 = await viva(['init', repo]);
  assertDamaged(t, r2, repo, /: the file is missing/, 'init');
  t.deepEqual(fs.readdirSync(path.join(repo, '.viva')), ['format']);
});

test('damaged: a garbage or empty lock file does not crash (LMDB rebuilds it when no process has it open)', async (t) => {
  const repo = repoCopy(t);
  for (const lock of [crypto.randomBytes(8272), crypto.randomBytes(100), Buffer.alloc(0)]) {
    fs.writeFileSync(dataFile(repo) + '-lock', lock);
    const log = await vivaJson<Array<{ message: string }>>(t, ['log', '-C', repo]);
    t.deepEqual(log.map((e) => e.message), ['second', 'first']);
  }
  const f = await vivaJson(t, ['fsck', '-C', repo]);
  t.true(f.ok);
});

test('damaged: init writes the format marker, and a write to an older repository without it adds it', async (t) => {
  const repo = repoCopy(t);
  t.is(fs.readFileSync(path.join(repo, '.viva/format'), 'utf8'), 'viva repository format 1\n');
  fs.rmSync(path.join(repo, '.viva/format'));
  await vivaOk(t, ['log', '-C', repo]);
  t.false(fs.existsSync(path.join(repo, '.viva/format')), 'a read leaves the repository alone');
  await vivaOk(t, ['branch', 'b', '-C', repo]);
  t.is(fs.readFileSync(path.join(repo, '.viva/format'), 'utf8'), 'viva repository format 1\n');
});

// ---------------------------------------------------------------------------------------------------------------
// init: paths that cannot be created fail at once (they used to spin in fs.mkdirSync's recursive mode).

function assertCreateError(t: ExecutionContext, r: RunResult, message: RegExp): void {
  t.is(r.signal, null, `killed by ${r.signal} (a hang?)`);
  t.is(r.code, EXIT.CHECKOUT_FAILED, r.stderr);
  const lines = r.stderr.split('\n').filter(Boolean);
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0] ?? '', message);
}

test('init: a directory under /proc cannot be created: exit 16 at once, no spin', async (t) => {
  // The timeout kills a spinning child (signal SIGKILL fails the assertions).
  const r = await viva(['init', '/proc/viva-nope'], { timeoutMs: 60_000 });
  assertCreateError(t, r, /^error: cannot create repository directory '\/proc\/viva-nope': no such file or directory$/);
  const r2 = await viva(['init', '/proc/viva-nope/a/b'], { timeoutMs: 60_000 });
  assertCreateError(t, r2, /^error: cannot create repository directory '\/proc\/viva-nope': no such file or directory$/);
});

test('init: a path under a regular file fails with exit 16 naming the file', async (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'file'), 'x');
  const r = await viva(['init', path.join(dir, 'file/sub/repo')], { timeoutMs: 60_000 });
  assertCreateError(t, r, /^error: cannot create repository directory '.*\/file\/sub': '.*\/file' is not a directory$/);
  t.deepEqual(fs.readdirSync(dir), ['file']);
  // clone reports the same, not the error of cleaning up what it never made.
  const c = await viva(['clone', path.join(dir, 'nowhere'), path.join(dir, 'file/x')], { timeoutMs: 60_000 });
  assertCreateError(t, c, /^error: cannot create repository directory '.*\/file\/x': '.*\/file' is not a directory$/);
  // A dangling symlink in the way is named as such.
  fs.symlinkSync(path.join(dir, 'missing-target'), path.join(dir, 'dangling'));
  const d = await viva(['init', path.join(dir, 'dangling')], { timeoutMs: 60_000 });
  assertCreateError(t, d, /^error: cannot create repository directory '.*\/dangling': a dangling symlink or another file is in the way$/);
  t.deepEqual(fs.readdirSync(dir).sort(), ['dangling', 'file']);
});

/** A read-only directory even for root: a read-only bind mount (needs root and mount), else chattr +i. */
function makeReadOnlyDir(t: ExecutionContext, dir: string): boolean {
  if (!isRoot) return false;
  try {
    execFileSync('mount', ['--bind', dir, dir], { stdio: 'ignore' });
    execFileSync('mount', ['-o', 'remount,bind,ro', dir], { stdio: 'ignore' });
    t.teardown(() => { try { execFileSync('umount', [dir], { stdio: 'ignore' }); } catch { /* already gone */ } });
    return true;
  } catch {
    try { execFileSync('umount', [dir], { stdio: 'ignore' }); } catch { /* not mounted */ }
  }
  try {
    execFileSync('chattr', ['+i', dir], { stdio: 'ignore' });
    t.teardown(() => { try { execFileSync('chattr', ['-i', dir], { stdio: 'ignore' }); } catch { /* gone */ } });
    return true;
  } catch {
    return false;
  }
}

const canMakeReadOnly = (() => {
  if (!isRoot) return false;
  const probe = fs.mkdtempSync('/tmp/viva-ro-probe-');
  try {
    try {
      execFileSync('mount', ['--bind', probe, probe], { stdio: 'ignore' });
      execFileSync('mount', ['-o', 'remount,bind,ro', probe], { stdio: 'ignore' });
      execFileSync('umount', [probe], { stdio: 'ignore' });
      return true;
    } catch {
      try { execFileSync('umount', [probe], { stdio: 'ignore' }); } catch { /* not mounted */ }
    }
    try {
      execFileSync('chattr', ['+i', probe], { stdio: 'ignore' });
      execFileSync('chattr', ['-i', probe], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
})();

(canMakeReadOnly ? test : test.skip)('init: a read-only location fails with exit 16 at once', async (t) => {
  const dir = tmpDir(t);
  t.true(makeReadOnlyDir(t, dir));
  const r = await viva(['init', path.join(dir, 'repo')], { timeoutMs: 60_000 });
  assertCreateError(t, r, /^error: cannot create repository directory '.*\/repo': (read-only file system|operation not permitted)$/);
});

test('checkout: a destination directory under /proc or under a regular file fails with exit 16 at once, no spin', async (t) => {
  const r = await viva(['checkout', 'HEAD', '/proc/viva-nope/out', '-C', fixture.repo], { timeoutMs: 60_000 });
  t.is(r.signal, null, `killed by ${r.signal} (a hang?)`);
  t.is(r.code, EXIT.CHECKOUT_FAILED, r.stderr);
  t.is(r.stderr, "error: cannot create '/proc/viva-nope/out': no such file or directory (ENOENT)\n");
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'file'), 'x');
  const r2 = await viva(['checkout', 'HEAD', path.join(dir, 'file/sub/out'), '-C', fixture.repo], { timeoutMs: 60_000 });
  t.is(r2.code, EXIT.CHECKOUT_FAILED, r2.stderr);
  t.regex(r2.stderr, /^error: cannot create '.*\/file\/sub\/out': not a directory \(ENOTDIR\)\n$/);
  t.deepEqual(fs.readdirSync(dir), ['file']);
});

/**
 * What LMDB's C code (and lmdb-js's native part) print on stderr themselves when they meet a zeroed page: lines, and
 * a text without a newline before a failed commit. They cannot be silenced from JavaScript.
 */
const LMDB_OWN_LINE = /^(internal error, index points to a 00 page!\?|mdb_page_alloc error)$/;
const LMDB_OWN_TEXT = "txn has failed/finished, can't commit";

test('damaged: a zeroed page inside the database (not its header) is exit 15 naming the file, never an internal error', async (t) => {
  t.timeout(300_000);
  const pages = Math.min(Math.floor(size() / 4096), 12);
  let hit = 0;
  for (let page = 2; page < pages; page++) {
    const repo = repoCopy(t);
    const fd = fs.openSync(dataFile(repo), 'r+');
    fs.writeSync(fd, Buffer.alloc(4096), 0, 4096, page * 4096);
    fs.closeSync(fd);
    const file = dataFile(repo).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    for (const args of COMMANDS) {
      const argv = args.map((a) => (a === '@SRC' ? fixture.src : a));
      const r = await viva([...argv, '-C', repo], { timeoutMs: 30_000 });
      const what = `page ${page}: viva ${args.join(' ')}`;
      t.is(r.signal, null, what);
      t.notRegex(r.stderr, /error: internal error|\n\s+at /, `${what}: ${r.stderr}`);
      if (r.code === 0) continue;
      hit++;
      t.is(r.code, EXIT.REPOSITORY_DAMAGED, `${what}: ${r.stderr}`);
      const lines = r.stderr.replaceAll(LMDB_OWN_TEXT, '').split('\n').filter((l) => l && !LMDB_OWN_LINE.test(l));
      t.is(lines.length, 1, `${what}: ${r.stderr}`);
      t.regex(lines[0] ?? '', new RegExp(`^error: repository database '${file}' damaged or missing: MDB_`), what);
    }
  }
  t.true(hit > 0, 'no zeroed page was ever read');
});
