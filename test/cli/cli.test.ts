/** The CLI end to end, as a new user meets it: init, commit, log, show, ls, cat, checkout, branch, tag, reflog, fsck, gc, help. */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import { native } from '../../src/native/index.js';
import { ROOT, cleanEnv, copyRepository, tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';
import { snapshotTree } from '../helpers/snapshot.js';

const execFileAsync = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const OID = /^[0-9a-f]{64}$/;
const ALICE = 'Alice Example <alice@example.com>';
const TEST_USER = 'Test User <test@example.com>';

interface CommitJson {
  commit: string;
  tree: string;
  branch: string;
  parent: string | null;
  files: number;
  dirs: number;
  bytes: number;
  storedBytes: number;
  cachedFiles: number;
  source: { format: string; name?: string; size?: number };
}

interface LogJson {
  id: string;
  parents: string[];
  author: string;
  date: string;
  time: number;
  message: string;
  labels: Record<string, string>;
}

/** Shared, read-only after `before`: a repository with two commits on debian/12/base made from `src`. */
const fx = {
  dir: '',
  src: '',
  repo: '',
  initOut: '',
  first: undefined as unknown as CommitJson,
  second: undefined as unknown as CommitJson,
  /** snapshotTree of the source at the first and second commit. */
  snap1: [] as string[],
  snap2: [] as string[],
  tool: Buffer.alloc(0) as Buffer,
};

/** Deterministic pseudo-random bytes (a sha256 counter stream), so chunking and dedup see realistic content. */
function prng(seed: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0, off = 0; off < n; i++, off += 32) crypto.createHash('sha256').update(`${seed}:${i}`).digest().copy(out, off);
  return out;
}

function makeSource(src: string): void {
  const p = (rel: string) => path.join(src, rel);
  for (const d of ['etc', 'usr/bin', 'usr/share/doc', 'var/empty', 'var/tmp']) fs.mkdirSync(p(d), { recursive: true });
  fs.writeFileSync(p('etc/os-release'), 'ID=debian\nVERSION_ID=12\n');
  native().lsetxattr(p('etc/os-release'), 'user.comment', Buffer.from('hello'));
  fs.writeFileSync(p('etc/hostname'), 'base\n');
  fs.writeFileSync(p('etc/shadow'), 'root:*:19000:0:99999:7:::\n');
  fs.chmodSync(p('etc/shadow'), 0o640);
  if (isRoot) fs.chownSync(p('etc/shadow'), 0, 42);
  fx.tool = prng('tool', 300 * 1024);
  fs.writeFileSync(p('usr/bin/tool'), fx.tool);
  fs.chmodSync(p('usr/bin/tool'), 0o755);
  fs.linkSync(p('usr/bin/tool'), p('usr/bin/tool-link'));
  fs.writeFileSync(p('usr/share/doc/readme.txt'), 'read me\n');
  fs.chmodSync(p('var/tmp'), 0o1777);
  fs.symlinkSync('etc/os-release', p('link'));
}

test.before(async (t) => {
  fx.dir = tmpDir(undefined, 'viva-cli-e2e-');
  fx.src = path.join(fx.dir, 'src');
  fx.repo = path.join(fx.dir, 'repo');
  makeSource(fx.src);
  fx.snap1 = snapshotTree(fx.src);
  fx.initOut = (await vivaOk(t, ['init', fx.repo])).stdout;
  fx.first = await vivaJson<CommitJson>(t, ['commit', fx.src, '-b', 'debian/12/base', '-m', 'base image\n\nwith a body', '--label', 'env=prod',
    '--label', 'owner=ops', '--author', ALICE], { cwd: fx.repo });
  fs.writeFileSync(path.join(fx.src, 'etc/hostname'), 'web\n');
  fs.writeFileSync(path.join(fx.src, 'etc/new'), 'new file\n');
  fx.snap2 = snapshotTree(fx.src);
  fx.second = await vivaJson<CommitJson>(t, ['commit', fx.src, '-b', 'debian/12/base', '-m', 'second'], { cwd: fx.repo });
});

test.after.always(() => {
  if (fx.dir) fs.rmSync(fx.dir, { recursive: true, force: true });
});

/** A private, writable copy of the shared repository. */
function repoCopy(t: ExecutionContext): { dir: string; repo: string } {
  const dir = tmpDir(t, 'viva-cli-case-');
  return { dir, repo: copyRepository(fx.repo, path.join(dir, 'repo')) };
}

const inRepo = () => ({ cwd: fx.repo });

// ---------------------------------------------------------------------------------------------------------------
// init and commit

test('init: creates the repository and says where', (t) => {
  t.regex(fx.initOut, new RegExp(`^Initialized empty viva repository in ${fx.repo.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/\\.viva\\n$`));
  t.true(fs.existsSync(path.join(fx.repo, '.viva', 'data.mdb')));
});

test('commit: --json returns the commit, its tree, the branch and the counts', (t) => {
  const c = fx.first;
  t.regex(c.commit, OID);
  t.regex(c.tree, OID);
  t.not(c.commit, c.tree);
  t.is(c.branch, 'refs/heads/debian/12/base');
  t.is(c.parent, null);
  // os-release, hostname, shadow, tool, tool-link (a hardlink), readme.txt
  t.is(c.files, 6);
  // the root, etc, usr, usr/bin, usr/share, usr/share/doc, var, var/empty, var/tmp
  t.is(c.dirs, 9);
  t.is(c.bytes, 24 + 5 + 26 + 2 * 300 * 1024 + 8);
  t.true(c.storedBytes > 0);
  t.is(c.source.format, 'dir');
  t.is(c.source.name, fx.src);
});

test('commit -: a tar on standard input (plain or compressed) commits the same tree as the directory; garbage is exit 13', async (t) => {
  const { repo } = repoCopy(t);
  for (const flag of [[], ['-z'], ['--zstd'], ['-J']]) {
    const tar = execFileSync('tar', [...flag, '--xattrs', '--xattrs-include=*', '-C', fx.src, '-cf', '-', '.'], { maxBuffer: 1 << 30 });
    const c = await vivaJson<CommitJson>(t, ['commit', '-', '-b', 'stdin', '-m', 'from stdin', '-C', repo], { input: tar });
    t.is(c.tree, fx.second.tree, flag.join(' '));
    t.is(c.source.name, '-');
  }
  const bad = await viva(['commit', '-', '-b', 'stdin', '-m', 'x', '-C', repo], { input: Buffer.alloc(3000, 7) });
  t.is(bad.code, 13, bad.stderr);
  t.regex(bad.stderr, /^error: -: offset 0: not a tar archive/);
});

test('commit --exclude / --exclude-from: gitignore-style patterns leave paths out, the same for a directory and a tar; refused for a disk', async (t) => {
  const { dir, repo } = repoCopy(t);
  const src = path.join(dir, 'src');
  for (const d of ['etc', 'var/cache/apt', 'var/log', 'x/var/cache']) fs.mkdirSync(path.join(src, d), { recursive: true });
  for (const f of ['etc/a', 'var/cache/apt/pkg', 'var/log/a.log', 'var/log/keep.log', 'x/var/cache/c', 'x/b.log']) fs.writeFileSync(path.join(src, f), f);
  fs.linkSync(path.join(src, 'var/log/a.log'), path.join(src, 'etc/a.hard'));
  const from = path.join(dir, 'exclude');
  fs.writeFileSync(from, '# logs\n*.log\n!keep.log\n\n');
  const want = ['etc/', 'etc/a', 'etc/a.hard', 'var/', 'var/log/', 'var/log/keep.log', 'x/', 'x/var/', 'x/var/cache/', 'x/var/cache/c'];
  const ls = async (b: string) => (await vivaOk(t, ['ls', '-r', b, '-C', repo])).stdout.split('\n').filter(Boolean);
  await vivaOk(t, ['commit', src, '-b', 'ex', '-m', 'ex', '--exclude', '/var/cache/', '--exclude-from', from, '-C', repo]);
  t.deepEqual(await ls('ex'), want);
  const tar = execFileSync('tar', ['-C', src, '-cf', '-', '.'], { maxBuffer: 1 << 30 });
  await vivaOk(t, ['commit', '-', '-b', 'ex-tar', '-m', 'ex', '-x', '/var/cache/', '--exclude-from', from, '-C', repo], { input: tar });
  // In a tar, the second name of a file is a link to the first: if that is the excluded a.log, etc/a.hard goes with it.
  const listing = execFileSync('tar', ['-tvf', '-'], { input: tar, encoding: 'utf8' });
  const hardIsLink = /etc\/a\.hard link to/.test(listing);
  t.deepEqual(await ls('ex-tar'), hardIsLink ? want.filter((p) => p !== 'etc/a.hard') : want);
  const missing = await viva(['commit', src, '-m', 'x', '--exclude-from', path.join(dir, 'nope'), '-C', repo]);
  t.is(missing.code, 14, missing.stderr);
  const disk = path.join(dir, 'd.img');
  fs.writeFileSync(disk, Buffer.alloc(1 << 20));
  execFileSync('sh', ['-c', `printf 'label: gpt\n,\n' | sfdisk -q ${disk}`]);
  const r = await viva(['commit', disk, '-m', 'x', '--exclude', 'tmp/', '-C', repo]);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /--exclude applies to directories and tars/);
});

(isRoot ? test : test.skip)('commit: files that cannot be read are left out with a warning, recorded in the commit, exit 4; --strict makes it exit 14', async (t) => {
  // Run as nobody (root reads everything): a file with mode 000 and a directory of root's with mode 0700.
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  for (const d of ['open', 'secret']) fs.mkdirSync(path.join(src, d), { recursive: true });
  fs.writeFileSync(path.join(src, 'open/a'), 'a');
  fs.writeFileSync(path.join(src, 'secret/s'), 's');
  fs.writeFileSync(path.join(src, 'private'), 'p');
  const nobody = { uid: 65534, gid: 65534 };
  execFileSync('chown', ['-R', '65534:65534', dir]);
  fs.chownSync(path.join(src, 'secret'), 0, 0);
  fs.chmodSync(path.join(src, 'secret'), 0o700);
  fs.chmodSync(path.join(src, 'private'), 0o000);
  const repo = path.join(dir, 'repo');
  t.is((await viva(['init', repo], nobody)).code, 0);
  const r = await viva(['commit', src, '-b', 'x', '-m', 'partial', '-C', repo, '--json'], nobody);
  t.is(r.code, 4, r.stderr);
  t.deepEqual(r.stderr.split('\n').filter(Boolean), [
    "warning: cannot read 'private': permission denied; left out of the image",
    "warning: cannot read 'secret': cannot list: permission denied (EACCES); left out of the image",
  ]);
  t.deepEqual(JSON.parse(r.stdout).source.omitted, ['private', 'secret']);
  t.deepEqual((await vivaJson(t, ['show', 'x', '-C', repo], nobody)).source.omitted, ['private', 'secret']);
  t.regex((await viva(['show', 'x', '-C', repo], nobody)).stdout, /^Omitted: 2 unreadable paths of the source \(private, secret\)$/m);
  t.deepEqual((await viva(['ls', '-r', 'x', '-C', repo], nobody)).stdout.split('\n').filter(Boolean), ['open/', 'open/a', 'secret/']);
  const strict = await viva(['commit', src, '-b', 'y', '-m', 'strict', '--strict', '-C', repo], nobody);
  t.is(strict.code, 14, strict.stderr);
  t.regex(strict.stderr, /^error: cannot read '.*\/src\/private': permission denied/m);
  t.is((await viva(['log', 'y', '-C', repo], nobody)).code, 3);
});

test('commit: re-committing the branch makes the previous commit the parent', (t) => {
  t.is(fx.second.parent, fx.first.commit);
  t.is(fx.second.branch, 'refs/heads/debian/12/base');
  t.not(fx.second.tree, fx.first.tree);
  t.is(fx.second.files, 7);
  // Only the changed files and the trees above them are new: the 300 KiB tool is deduplicated.
  t.true(fx.second.storedBytes < 10_000, `stored ${fx.second.storedBytes} bytes`);
});

test('commit: the text output names branch, short id and counts; an unchanged tree commits the same tree id', async (t) => {
  const { repo } = repoCopy(t);
  const r = await vivaOk(t, ['commit', fx.src, '-m', 'third', '-C', repo]);
  t.regex(r.stdout, /^\[debian\/12\/base [0-9a-f]{12}\] 7 files, 9 directories, [\d.]+ KiB; [\d.]+ (B|KiB) new in the repository/);
  t.is(r.stderr, '');
  const show = await vivaJson(t, ['show', '-C', repo]);
  t.is(show.tree, fx.second.tree, 'same content, same tree');
  t.deepEqual(show.parents, [fx.second.commit]);
  // A new branch starts as a root commit.
  const r2 = await vivaOk(t, ['commit', fx.src, '-b', 'other/root', '-m', 'x', '-C', repo]);
  t.regex(r2.stdout, /^\[other\/root \(root-commit\) [0-9a-f]{12}\] /);
});

// ---------------------------------------------------------------------------------------------------------------
// log and show

test('log: text shows id, author, date, labels and the indented message, newest first', async (t) => {
  const r = await vivaOk(t, ['log'], inRepo());
  const expected = [
    `commit ${fx.second.commit}`,
    `Author: ${TEST_USER}`,
    /^Date: {3}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/,
    '',
    '    second',
    '',
    `commit ${fx.first.commit}`,
    `Author: ${ALICE}`,
    /^Date: {3}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/,
    'Labels: env=prod owner=ops',
    '',
    '    base image',
    '    ',
    '    with a body',
    '',
  ];
  const lines = r.stdout.replace(/\n$/, '').split('\n');
  t.is(lines.length, expected.length, r.stdout);
  expected.forEach((e, i) => (typeof e === 'string' ? t.is(lines[i], e) : t.regex(lines[i] ?? '', e)));
});

test('log: --json is an array with id, parents, author, date, message and labels', async (t) => {
  const log = await vivaJson<LogJson[]>(t, ['log'], inRepo());
  t.is(log.length, 2);
  const [second, first] = log as [LogJson, LogJson];
  t.is(second.id, fx.second.commit);
  t.deepEqual(second.parents, [fx.first.commit]);
  t.is(second.author, TEST_USER);
  t.is(second.message, 'second');
  t.deepEqual(second.labels, {});
  t.is(first.id, fx.first.commit);
  t.deepEqual(first.parents, []);
  t.is(first.author, ALICE);
  t.is(first.message, 'base image\n\nwith a body');
  t.deepEqual(first.labels, { env: 'prod', owner: 'ops' });
  for (const e of log) {
    t.regex(e.date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/);
    t.true(Math.abs(e.time - Date.now() / 1000) < 3600);
  }
});

test('log: a revision, -n and --oneline', async (t) => {
  const one = await vivaOk(t, ['log', '--oneline'], inRepo());
  t.is(one.stdout, `${fx.second.commit.slice(0, 12)} second\n${fx.first.commit.slice(0, 12)} base image\n`);
  const n1 = await vivaJson<LogJson[]>(t, ['log', '-n', '1'], inRepo());
  t.deepEqual(n1.map((e) => e.id), [fx.second.commit]);
  for (const rev of ['HEAD~1', 'debian/12/base^', fx.first.commit, fx.first.commit.slice(0, 8), 'refs/heads/debian/12/base~1']) {
    const l = await vivaJson<LogJson[]>(t, ['log', rev], inRepo());
    t.deepEqual(l.map((e) => e.id), [fx.first.commit], rev);
  }
});

test('show: --json includes the tree, root metadata and the refs pointing at the commit', async (t) => {
  const s = await vivaJson(t, ['show'], inRepo());
  t.is(s.id, fx.second.commit);
  t.is(s.tree, fx.second.tree);
  t.deepEqual(s.parents, [fx.first.commit]);
  t.deepEqual(s.refs, ['refs/heads/debian/12/base']);
  t.is(s.rootEntries, 4); // etc, link, usr, var
  const st = fs.statSync(fx.src, { bigint: true });
  t.is(s.rootMeta.mode, (Number(st.mode) & 0o7777).toString(8).padStart(4, '0'));
  t.is(s.rootMeta.mtimeNs, st.mtimeNs.toString());
  const s1 = await vivaJson(t, ['show', 'HEAD~1'], inRepo());
  t.is(s1.tree, fx.first.tree);
  t.deepEqual(s1.labels, { env: 'prod', owner: 'ops' });
  const text = await vivaOk(t, ['show'], inRepo());
  // HEAD is on that branch: git's `HEAD -> branch`.
  t.regex(text.stdout, new RegExp(`^commit ${fx.second.commit} \\(HEAD -> debian/12/base\\)\\n`));
  t.regex(text.stdout, new RegExp(`\\nTree: {3}${fx.second.tree} \\(4 entries at the root\\)\\n`));
  t.regex(text.stdout, /\nSource: dir .*src \([\d.]+ KiB\)\n?$/);
});

// ---------------------------------------------------------------------------------------------------------------
// ls and cat

test('ls: lists the root, with / after directories', async (t) => {
  const r = await vivaOk(t, ['ls'], inRepo());
  t.is(r.stdout, 'etc/\nlink\nusr/\nvar/\n');
});

test('ls: -l shows mode, owner, size, ns mtime, symlink targets, hardlinks and xattr marks', async (t) => {
  const r = await vivaOk(t, ['ls', '-l', 'HEAD:etc'], inRepo());
  const lines = r.stdout.trimEnd().split('\n');
  t.deepEqual(lines.map((l) => l.split(' ').pop()), ['etc/hostname', 'etc/new', 'etc/os-release', 'etc/shadow']);
  const osr = fs.lstatSync(path.join(fx.src, 'etc/os-release'), { bigint: true });
  const ns = (osr.mtimeNs % 1_000_000_000n).toString().padStart(9, '0');
  t.regex(lines[2]!, new RegExp(`^-rw-r--r--\\+ +0 +0 +24 \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.${ns} etc/os-release$`));
  t.regex(lines[3]!, new RegExp(`^-rw-r-----  +0 +${isRoot ? 42 : '\\d+'} +26 .* etc/shadow$`));
  const root = await vivaOk(t, ['ls', '-l'], inRepo());
  t.regex(root.stdout, /^lrwxrwxrwx .* link -> etc\/os-release$/m);
  t.regex(root.stdout, /^drwxr-xr-x .* usr$/m);
  const bin = await vivaOk(t, ['ls', '-l', 'HEAD:usr/bin'], inRepo());
  t.regex(bin.stdout, /^-rwxr-xr-x  .* 307200 .* usr\/bin\/tool$/m);
  t.regex(bin.stdout, /^-rwxr-xr-x  .* 307200 .* usr\/bin\/tool-link => usr\/bin\/tool$/m);
  const v = await vivaOk(t, ['ls', '-l', 'HEAD:var'], inRepo());
  t.regex(v.stdout, /^drwxrwxrwt .* var\/tmp$/m);
});

test('ls: -r recurses; REV:path lists a directory or names a single entry; --json has the metadata', async (t) => {
  const r = await vivaOk(t, ['ls', '-r'], inRepo());
  t.deepEqual(r.stdout.trimEnd().split('\n'), [
    'etc/', 'etc/hostname', 'etc/new', 'etc/os-release', 'etc/shadow', 'link', 'usr/', 'usr/bin/', 'usr/bin/tool',
    'usr/bin/tool-link', 'usr/share/', 'usr/share/doc/', 'usr/share/doc/readme.txt', 'var/', 'var/empty/', 'var/tmp/',
  ]);
  const old = await vivaOk(t, ['ls', 'HEAD~1:etc'], inRepo());
  t.is(old.stdout, 'etc/hostname\netc/os-release\netc/shadow\n');
  const one = await vivaOk(t, ['ls', 'debian/12/base:/usr//bin/tool/'], inRepo());
  t.is(one.stdout, 'usr/bin/tool\n');
  const j = await vivaJson<Array<Record<string, any>>>(t, ['ls', 'HEAD:etc/os-release'], inRepo());
  t.is(j.length, 1);
  t.like(j[0], { path: 'etc/os-release', type: 'file', mode: '0644', uid: 0, gid: 0, size: 24 });
  t.deepEqual(j[0]!.xattrs, { 'user.comment': Buffer.from('hello').toString('base64') });
  t.regex(j[0]!.oid, OID);
  const empty = await vivaOk(t, ['ls', 'HEAD:var/empty'], inRepo());
  t.is(empty.stdout, '');
});

test('cat: writes file content byte for byte; a symlink prints its target; old revisions work', async (t) => {
  t.is((await vivaOk(t, ['cat', 'HEAD:etc/os-release'], inRepo())).stdout, 'ID=debian\nVERSION_ID=12\n');
  t.is((await vivaOk(t, ['cat', 'HEAD:etc/hostname'], inRepo())).stdout, 'web\n');
  t.is((await vivaOk(t, ['cat', 'HEAD~1:etc/hostname'], inRepo())).stdout, 'base\n');
  t.is((await vivaOk(t, ['cat', `${fx.first.commit.slice(0, 10)}:/etc/hostname`], inRepo())).stdout, 'base\n');
  const tool = await vivaOk(t, ['cat', 'debian/12/base:usr/bin/tool-link'], inRepo());
  t.true(tool.stdoutBytes.equals(fx.tool));
  t.is((await vivaOk(t, ['cat', 'HEAD:link'], inRepo())).stdout, 'etc/os-release');
  const dir = await viva(['cat', 'HEAD:etc'], inRepo());
  t.is(dir.code, EXIT.USAGE);
  t.is(dir.stderr, "error: 'HEAD:etc' is a dir, not a file\n");
});

// ---------------------------------------------------------------------------------------------------------------
// checkout

test('checkout: to a new directory reproduces the source exactly (modes, owners, ns mtimes, xattrs, links)', async (t) => {
  const dir = tmpDir(t);
  const dest = path.join(dir, 'out');
  const r = await vivaOk(t, ['checkout', 'debian/12/base', dest], inRepo());
  t.regex(r.stdout, new RegExp(`^checked out ${fx.second.commit.slice(0, 12)} to ${dest} \\(dir\\): 7 files, 9 directories, `));
  t.deepEqual(snapshotTree(dest), fx.snap2);
  // An existing empty directory is fine too; HEAD~1 gives the first image back.
  const dest1 = path.join(dir, 'old');
  fs.mkdirSync(dest1);
  const j = await vivaJson(t, ['checkout', 'HEAD~1', dest1], inRepo());
  t.like(j, { commit: fx.first.commit, tree: fx.first.tree, format: 'dir', files: 6, dirs: 9, warnings: [] });
  t.deepEqual(snapshotTree(dest1), fx.snap1);
});

test('checkout: --path takes only those paths, with their parents', async (t) => {
  const dir = tmpDir(t);
  const dest = path.join(dir, 'out');
  const j = await vivaJson(t, ['checkout', 'HEAD', dest, '--path', 'etc/os-release', '-p', 'usr/bin'], inRepo());
  t.is(j.files, 3);
  const snap = snapshotTree(dest);
  const want = fx.snap2.filter((l) => /^(\. |etc |etc\/os-release |usr |usr\/bin[ /])/.test(l));
  // Parent directories carry their image metadata, but their mtime may differ: only the listed paths are complete.
  const strip = (ls: string[]) => ls.map((l) => (/^(\.|etc|usr) /.test(l) ? l.replace(/ mtime=\d+/, '') : l));
  t.deepEqual(strip(snap), strip(want));
  t.deepEqual(fs.readdirSync(path.join(dest, 'etc')), ['os-release']);
});

test('checkout: REV:path writes that directory as the root, to a directory or a tar; a file, a disk destination or --path with it are refused', async (t) => {
  const dir = tmpDir(t);
  const dest = path.join(dir, 'usr');
  const j = await vivaJson(t, ['checkout', 'HEAD:usr', dest], inRepo());
  t.is(j.files, 3);
  // The same entries as under usr/ in the source, with usr's own metadata on the root.
  const under = fx.snap2.filter((l) => /^usr[ /]/.test(l)).map((l) => l.replace(/^usr\/?/, '').replace(/^ /, '. ').replace(' link=usr/', ' link='));
  t.deepEqual(snapshotTree(dest), under);
  const tar = path.join(dir, 'bin.tar');
  await vivaOk(t, ['checkout', 'debian/12/base~1:usr/bin', tar], inRepo());
  t.deepEqual(execFileSync('tar', ['-tf', tar], { encoding: 'utf8' }).split('\n').filter(Boolean).sort(), ['./', 'tool', 'tool-link']);
  for (const [args, re] of [
    [['HEAD:etc/hostname', path.join(dir, 'f')], /'HEAD:etc\/hostname' is a file, not a directory: 'viva cat HEAD:etc\/hostname > FILE'/],
    [['HEAD:usr', path.join(dir, 'd.qcow2')], /check it out to a directory or a tar/],
    [['HEAD:usr', path.join(dir, 'p'), '--path', 'bin'], /--path and 'HEAD:usr' both choose/],
  ] as const) {
    const r = await viva(['checkout', ...args], inRepo());
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, re);
  }
  const missing = await viva(['checkout', 'HEAD:nope', path.join(dir, 'n')], inRepo());
  t.is(missing.code, 3, missing.stderr);
});

const tarCheckout = test.macro({
  async exec(t, ext: string, tarFlag: string[]) {
    const { dir, repo } = repoCopy(t);
    const file = path.join(dir, `image.${ext}`);
    const j = await vivaJson(t, ['checkout', 'HEAD', file, '-C', repo]);
    t.like(j, { commit: fx.second.commit, format: 'tar', files: 7, dirs: 9, warnings: [] });
    // GNU tar reads it back to the same tree (numeric owners, xattrs, ns mtimes from pax headers).
    const x = path.join(dir, 'x');
    fs.mkdirSync(x);
    execFileSync('tar', [...tarFlag, '-x', '-p', '--numeric-owner', '--xattrs', "--xattrs-include=*", '-f', file, '-C', x]);
    t.deepEqual(snapshotTree(x), fx.snap2);
    // And viva reads it back to the very same tree id: nothing was lost on the way.
    const c = await vivaJson<CommitJson>(t, ['commit', file, '-b', `from-${ext}`, '-m', 'round trip', '-C', repo]);
    t.is(c.tree, fx.second.tree);
    t.is(c.source.format, ext === 'tar' ? 'tar' : `tar+${ext === 'tar.gz' ? 'gzip' : 'zstd'}`);
  },
  title: (_, ext: string) => `checkout: to a .${ext} file that GNU tar and viva read back losslessly`,
});

test(tarCheckout, 'tar', []);
test(tarCheckout, 'tar.gz', ['-z']);
test(tarCheckout, 'tar.zst', ['--zstd']);

test('checkout: --format tar writes a tar whatever the name', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'image.out');
  const j = await vivaJson(t, ['checkout', 'HEAD', file, '--format', 'tar'], inRepo());
  t.is(j.format, 'tar');
  const list = execFileSync('tar', ['-tf', file], { encoding: 'utf8' });
  t.true(list.split('\n').includes('etc/os-release'));
});

// ---------------------------------------------------------------------------------------------------------------
// branch, tag, reflog

test('branch: list, create, --list by prefix and glob, rename with -m, delete with -d', async (t) => {
  const { repo } = repoCopy(t);
  const C = ['-C', repo];
  const short2 = fx.second.commit.slice(0, 12);
  const short1 = fx.first.commit.slice(0, 12);
  t.is((await vivaOk(t, ['branch', ...C])).stdout, `* debian/12/base  ${short2}\n`);
  t.is((await vivaOk(t, ['branch', 'customers/acme/web', ...C])).stdout, `Created branch customers/acme/web at ${short2}\n`);
  t.is((await vivaOk(t, ['branch', 'debian/11/base', 'HEAD~1', ...C])).stdout, `Created branch debian/11/base at ${short1}\n`);
  await vivaOk(t, ['branch', 'customers/globex/web', fx.first.commit, ...C]);
  await vivaOk(t, ['branch', 'debianx', ...C]);
  const names = async (...args: string[]) => (await vivaJson<Array<{ name: string }>>(t, ['branch', ...args, ...C])).map((b) => b.name);
  t.deepEqual(await names(), ['customers/acme/web', 'customers/globex/web', 'debian/11/base', 'debian/12/base', 'debianx']);
  t.deepEqual(await names('--list', 'debian/'), ['debian/11/base', 'debian/12/base']);
  t.deepEqual(await names('-l', 'debian'), ['debian/11/base', 'debian/12/base'], 'a prefix matches whole components');
  t.deepEqual(await names('--list', 'debian/*/base'), ['debian/11/base', 'debian/12/base']);
  t.deepEqual(await names('--list', '**/web'), ['customers/acme/web', 'customers/globex/web']);
  t.deepEqual(await names('--list', 'customers/*'), []);
  t.deepEqual(await names('--list', 'nothing/'), []);
  const list = await vivaJson(t, ['branch', ...C]);
  t.like(list[3], { name: 'debian/12/base', ref: 'refs/heads/debian/12/base', oid: fx.second.commit, head: true });
  t.is(list[2].oid, fx.first.commit);

  t.is((await vivaOk(t, ['branch', '-m', 'customers/acme/web', 'customers/acme/www', ...C])).stdout, 'Renamed branch customers/acme/web to customers/acme/www\n');
  const rl = await vivaJson(t, ['reflog', 'customers/acme/www', ...C]);
  t.deepEqual(rl.entries.map((e: { message: string }) => e.message), ['renamed refs/heads/customers/acme/web to refs/heads/customers/acme/www', 'branch: created from HEAD']);
  t.is((await vivaOk(t, ['branch', '-d', 'customers/acme/www', ...C])).stdout, `Deleted branch customers/acme/www (was ${short2})\n`);
  t.deepEqual(await names(), ['customers/globex/web', 'debian/11/base', 'debian/12/base', 'debianx']);
  // Renaming the branch HEAD points at moves HEAD with it.
  await vivaOk(t, ['branch', '-m', 'debian/12/base', 'debian/12/main', ...C]);
  const after = await vivaJson(t, ['branch', '--list', 'debian/12/', ...C]);
  t.like(after[0], { name: 'debian/12/main', head: true, oid: fx.second.commit });
  t.is((await vivaJson(t, ['show', ...C])).id, fx.second.commit);
  t.true((await vivaJson(t, ['fsck', ...C])).ok);
});

test('tag: list, create at a revision, --list by prefix and glob, rename, delete', async (t) => {
  const { repo } = repoCopy(t);
  const C = ['-C', repo];
  t.is((await vivaOk(t, ['tag', ...C])).stdout, '');
  t.is((await vivaOk(t, ['tag', 'v1.0', 'HEAD~1', ...C])).stdout, `Created tag v1.0 at ${fx.first.commit.slice(0, 12)}\n`);
  await vivaOk(t, ['tag', 'v1.1', ...C]);
  await vivaOk(t, ['tag', 'release/2024/a', ...C]);
  const names = async (...args: string[]) => (await vivaJson<Array<{ name: string }>>(t, ['tag', ...args, ...C])).map((b) => b.name);
  t.deepEqual(await names(), ['release/2024/a', 'v1.0', 'v1.1']);
  t.deepEqual(await names('--list', 'v1.*'), ['v1.0', 'v1.1']);
  t.deepEqual(await names('-l', 'release/'), ['release/2024/a']);
  t.deepEqual(await names('-l', 'release/*/a'), ['release/2024/a']);
  t.is((await vivaJson(t, ['show', 'v1.0', ...C])).id, fx.first.commit);
  t.deepEqual((await vivaJson(t, ['log', 'v1.1', ...C])).map((e: LogJson) => e.id), [fx.second.commit, fx.first.commit]);
  t.is((await vivaOk(t, ['tag', '-m', 'v1.1', 'v1.1-final', ...C])).stdout, 'Renamed tag v1.1 to v1.1-final\n');
  t.is((await vivaOk(t, ['tag', '-d', 'v1.0', ...C])).stdout, `Deleted tag v1.0 (was ${fx.first.commit.slice(0, 12)})\n`);
  t.deepEqual(await names(), ['release/2024/a', 'v1.1-final']);
  // Tags are not branches.
  t.deepEqual((await vivaJson<Array<{ name: string }>>(t, ['branch', ...C])).map((b) => b.name), ['debian/12/base']);
});

test('reflog: every move of the branch, newest first, as text and --json', async (t) => {
  const r = await vivaOk(t, ['reflog'], inRepo());
  t.is(r.stdout, `${fx.second.commit.slice(0, 12)} HEAD@{0}: commit: second\n${fx.first.commit.slice(0, 12)} HEAD@{1}: commit (initial): base image\n`);
  const j = await vivaJson(t, ['reflog', 'debian/12/base'], inRepo());
  t.is(j.ref, 'refs/heads/debian/12/base');
  t.like(j.entries[0], { old: fx.first.commit, new: fx.second.commit, who: TEST_USER, message: 'commit: second', selector: 'debian/12/base@{0}' });
  t.like(j.entries[1], { old: null, new: fx.first.commit, who: ALICE, message: 'commit (initial): base image', selector: 'debian/12/base@{1}' });
});

// ---------------------------------------------------------------------------------------------------------------
// fsck and gc

test('fsck: a healthy repository is ok, as text and --json', async (t) => {
  const r = await vivaOk(t, ['fsck'], inRepo());
  t.regex(r.stdout, /^(\d+) objects checked, \1 reachable, 0 unreachable: ok\n$/);
  const j = await vivaJson(t, ['fsck', '--connectivity-only'], inRepo());
  t.like(j, { ok: true, unreachable: 0, problems: [] });
  t.true(j.objects > 10);
});

test('gc: removes what nothing reaches any more, keeps everything else', async (t) => {
  const { dir, repo } = repoCopy(t);
  const C = ['-C', repo];
  const before = await vivaJson(t, ['fsck', ...C]);
  t.is((await vivaOk(t, ['gc', ...C])).stdout, `removed 0 objects, kept ${before.objects}\n`);
  // A commit on a branch that is then deleted leaves garbage (its reflog goes with the branch).
  const other = path.join(dir, 'other');
  fs.mkdirSync(other);
  fs.writeFileSync(path.join(other, 'blob'), prng('garbage', 200 * 1024));
  await vivaOk(t, ['commit', other, '-b', 'tmp', '-m', 'tmp', ...C]);
  await vivaOk(t, ['branch', '-d', '-f', 'tmp', ...C]);
  const mid = await vivaJson(t, ['fsck', ...C]);
  t.true(mid.ok);
  t.true(mid.unreachable > 0);
  const dry = await vivaJson(t, ['gc', '--dry-run', ...C]);
  t.like(dry, { dryRun: true, removed: mid.unreachable, kept: before.objects });
  t.true(dry.removedBytes > 200 * 1024);
  t.deepEqual(await vivaJson(t, ['fsck', ...C]), mid, 'dry run removed nothing');
  const g = await vivaJson(t, ['gc', ...C]);
  t.like(g, { dryRun: false, removed: mid.unreachable, kept: before.objects, removedBytes: dry.removedBytes });
  const after = await vivaJson(t, ['fsck', ...C]);
  t.like(after, { ok: true, objects: before.objects, unreachable: 0 });
  const out = path.join(dir, 'out');
  await vivaOk(t, ['checkout', 'debian/12/base~1', out, ...C]);
  t.deepEqual(snapshotTree(out), fx.snap1);
});

// ---------------------------------------------------------------------------------------------------------------
// finding the repository

test('repository: found from VIVA_REPO, --repo/-C (the root or .viva itself) and from any subdirectory', async (t) => {
  const elsewhere = tmpDir(t);
  const ids = async (options: Parameters<typeof viva>[1], ...args: string[]) => {
    const r = await viva(['log', '--json', ...args], options);
    t.is(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as LogJson[]).map((e) => e.id);
  };
  const want = [fx.second.commit, fx.first.commit];
  t.deepEqual(await ids({ cwd: elsewhere, env: { VIVA_REPO: fx.repo } }), want);
  t.deepEqual(await ids({ cwd: elsewhere }, '--repo', fx.repo), want);
  t.deepEqual(await ids({ cwd: elsewhere }, '-C', path.join(fx.repo, '.viva')), want);
  const sub = path.join(fx.repo, 'work', 'deep', 'er');
  fs.mkdirSync(sub, { recursive: true });
  t.teardown(() => fs.rmSync(path.join(fx.repo, 'work'), { recursive: true, force: true }));
  t.deepEqual(await ids({ cwd: sub }), want);
  t.deepEqual(await ids({ cwd: path.join(fx.repo, '.viva') }), want);
  // --repo wins over VIVA_REPO.
  const r = await viva(['log', '--repo', fx.repo], { cwd: elsewhere, env: { VIVA_REPO: elsewhere } });
  t.is(r.code, 0, r.stderr);
});

// ---------------------------------------------------------------------------------------------------------------
// help

const COMMANDS = fs.readdirSync(path.join(ROOT, 'commands')).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3)).sort();

test('help: the top-level help lists every command, also through npx', async (t) => {
  t.true(COMMANDS.length >= 12);
  for (const args of [['--help'], []]) {
    const r = await viva(args);
    t.is(r.code, 0, `viva ${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stdout, /^git for virtual-machine images/);
    t.regex(r.stdout, /\nUSAGE\n {2}\$ viva \[COMMAND\]\n/);
    for (const c of COMMANDS) t.regex(r.stdout, new RegExp(`\\n {2}${c} +\\S`), `${c} in viva ${args.join(' ')}`);
  }
  // As a user of the installed package runs it (npx finds the project's own bin; --offline keeps the registry out).
  const npx = await execFileAsync('npx', ['--offline', '--no-install', 'viva', '--help'], { cwd: ROOT, env: cleanEnv(), timeout: 60_000 });
  t.regex(npx.stdout, /^git for virtual-machine images/);
  for (const c of COMMANDS) t.regex(npx.stdout, new RegExp(`\\n {2}${c} +\\S`));
});

const commandHelp = test.macro({
  async exec(t, command: string) {
    const r = await viva([command, '--help']);
    t.is(r.code, 0, r.stderr);
    t.is(r.stderr, '');
    t.regex(r.stdout, new RegExp(`\\nUSAGE\\n {2}\\$ viva ${command}\\b`));
    t.regex(r.stdout, /\n {2}EXIT STATUS\n/);
    for (const code of new Set(Object.values(EXIT))) t.regex(r.stdout, new RegExp(`\\n {2}${code} +\\S`), `exit code ${code} documented`);
    t.regex(r.stdout, /-C, --repo=<value>/);
  },
  title: (_, command: string) => `help: 'viva ${command} --help' exits 0 and documents the exit status`,
});

for (const c of COMMANDS) test(commandHelp, c);

test('help: `viva help COMMAND` shows the same help as `viva COMMAND --help`', async (t) => {
  const a = await execFileAsync(process.execPath, [path.join(ROOT, 'bin/run.js'), 'help', 'commit'], { env: cleanEnv() });
  const b = await execFileAsync(process.execPath, [path.join(ROOT, 'bin/run.js'), 'commit', '--help'], { env: cleanEnv() });
  t.is(a.stdout, b.stdout);
  t.regex(a.stdout, /EXIT STATUS/);
});
