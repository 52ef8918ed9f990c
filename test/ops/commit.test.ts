/** Tests of the commit op: determinism of ids, dedup, sparse files, the stat cache, branch semantics and failure atomicity. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  InvalidRefNameError, RefConflictError, UsageError, SourceReadError,
} from '../../src/errors.js';
import { commit } from '../../src/ops/commit.js';
import { checkout } from '../../src/ops/checkout.js';
import { cat, ls } from '../../src/ops/ls.js';
import { log } from '../../src/ops/log.js';
import { resolveSpec } from '../../src/ops/resolve.js';
import { readBlobRecord, readCommit, readTree } from '../../src/store/typed.js';
import { Repository } from '../../src/store/repository.js';
import { openDirectory } from '../../src/formats/directory.js';
import type { ImageEntry } from '../../src/formats/types.js';
import { native } from '../../src/native/index.js';
import { mkedgePath } from '../helpers/snapshot.js';
import { content, entryOf, readerOf } from '../helpers/image.js';
import { lmdb } from '../helpers/lmdb.js';
import {
  AUTHOR, MiB, TIME, collect, commitAt, isRoot, randomBytes, sha256, sleep, tmpDir, tmpRepo, writeTree, type Spec,
} from '../helpers/repo.js';

const SPEC: Spec = {
  'README': 'hello\n',
  'etc': { 'hostname': 'viva\n', 'hosts': '127.0.0.1 localhost\n', 'empty': '' },
  'usr': { 'bin': { 'tool': 'binary\0data' }, 'share': { 'doc': { 'a.txt': 'a'.repeat(1000) } } },
  'zz': { 'deep': { 'deeper': { 'deepest': 'bottom' } } },
};

test('commit: the first commit has no parent, the second has the first; HEAD follows the branch', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, SPEC);
  const first = await commitAt(repo, src, { message: 'first' });
  t.is(first.parent, null);
  t.is(first.branch, 'refs/heads/main');
  t.deepEqual(readCommit(repo.objects, first.commit).parents, []);
  t.is(repo.refs.resolve('HEAD')?.oid, first.commit);
  t.is(first.files, 7);
  t.is(first.dirs, 9);
  t.is(first.bytes, 6 + 5 + 20 + 0 + 11 + 1000 + 6);
  t.deepEqual(first.source, { format: 'dir', name: src, size: first.bytes });

  fs.writeFileSync(path.join(src, 'README'), 'hello again\n');
  const second = await commitAt(repo, src, { message: 'second', tick: 1 });
  t.is(second.parent, first.commit);
  t.deepEqual(readCommit(repo.objects, second.commit).parents, [first.commit]);
  t.is(repo.refs.resolve('refs/heads/main')?.oid, second.commit);

  // Hierarchical branches: a new branch starts a new history and HEAD moves to it.
  const base = await commitAt(repo, src, { branch: 'debian/12/base', message: 'base', tick: 2 });
  t.is(base.parent, null);
  t.is(base.branch, 'refs/heads/debian/12/base');
  t.deepEqual(repo.refs.read('HEAD'), { symref: 'refs/heads/debian/12/base' });
  const web = await commitAt(repo, src, { branch: 'refs/heads/customers/acme/web', message: 'web', tick: 3 });
  t.is(web.branch, 'refs/heads/customers/acme/web');
  t.is(web.tree, base.tree);
  t.not(web.commit, base.commit);
  // Without a branch: the branch HEAD points at.
  const next = await commitAt(repo, src, { message: 'on web', tick: 4 });
  t.is(next.branch, 'refs/heads/customers/acme/web');
  t.is(next.parent, web.commit);
  t.deepEqual(log(repo, { rev: 'customers/acme/web' }).map((e) => e.message), ['on web', 'web']);
  t.is(repo.refs.resolve('refs/heads/main')?.oid, second.commit);
  t.deepEqual(repo.refs.reflog('refs/heads/main').map((e) => e.message), ['commit: second', 'commit (initial): first']);
});

test('commit: known answer: a fixed image committed with a fixed author, time and timezone has pinned ids', async (t) => {
  const { repo } = tmpRepo(t);
  const tz = process.env.TZ;
  process.env.TZ = 'UTC';
  t.teardown(() => { if (tz === undefined) delete process.env.TZ; else process.env.TZ = tz; });
  const image = () => readerOf([
    entryOf('', 'dir', { mode: 0o755, mtimeNs: 1_577_934_245_000_000_000n }),
    entryOf('README', 'file', { mtimeNs: 1_577_934_245_123_456_789n, content: content('hello\n') }),
    entryOf('etc', 'dir', { mode: 0o755, mtimeNs: 1_577_934_245_000_000_000n, xattrs: [{ name: 'user.viva', value: Buffer.from('x') }] }),
    entryOf('etc/shadow', 'file', { mode: 0o640, gid: 42, content: content('root:*:19000:0:99999:7:::\n') }),
    entryOf('bin', 'symlink', { mode: 0o777, linkTarget: Buffer.from('usr/bin') }),
    entryOf('README.md', 'hardlink', { linkTarget: Buffer.from('README') }),
    entryOf('dev', 'dir'),
    entryOf('dev/null', 'chr', { mode: 0o666, rdev: { major: 1, minor: 3 } }),
    entryOf('run', 'dir'),
    entryOf('run/initctl', 'fifo', { mode: 0o600 }),
  ]);
  const first = await commit(repo, { reader: image(), message: 'pinned', author: AUTHOR, time: TIME, labels: [['arch', 'amd64']] });
  t.is(first.tree, 'e9cb175972343fc8e255106298e2edd57e4e001e4a57b141453651e4b2893328');
  t.is(first.commit, 'aa065fa72526662516d2223782b381d53ceb685e0c3c34f04c04322e3242f79e');
  const second = await commit(repo, { reader: image(), message: 'again', author: AUTHOR, time: TIME + 60 });
  t.is(second.tree, first.tree);
  t.is(second.commit, '5c36554422306bca9e8b2b2df4bdf93c1c09ef6bbe407a92522c36abee9d7854');
  const c = readCommit(repo.objects, second.commit);
  t.deepEqual(c.parents, [first.commit]);
  t.is(c.tzOffset, 0);
  t.deepEqual(c.source, { format: 'test', name: 'test-reader' });
});

test('commit: the blob id of a file is its sha256sum; a directory committed as root has pinned ids', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, SPEC);
  fs.chmodSync(src, 0o755);
  fs.utimesSync(src, new Date('2020-01-02T03:04:05Z'), new Date('2020-01-02T03:04:05Z'));
  const r = await commit(repo, { source: src, message: 'pinned', author: AUTHOR, time: TIME });
  // Owners are those of the files: the tree id is pinned only where they are root's.
  if (isRoot) t.is(r.tree, '32e3d8557d225ab019a036fc3669d5d9bb173fa3d042f2f410b070b07fe4ae5e');
  const c = readCommit(repo.objects, r.commit);
  t.is(c.author, AUTHOR);
  t.is(c.time, TIME);
  t.is(c.root, r.tree);
  t.deepEqual(c.rootMeta && { mode: c.rootMeta.mode, mtimeNs: c.rootMeta.mtimeNs }, { mode: 0o755, mtimeNs: 1_577_934_245_000_000_000n });
  t.is(resolveSpec(repo, 'HEAD:README').entry.oid, sha256('hello\n'));
  t.is(resolveSpec(repo, 'HEAD:usr/share/doc/a.txt').entry.oid, sha256('a'.repeat(1000)));
  t.is(resolveSpec(repo, 'HEAD:etc/empty').entry.oid, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  t.is(resolveSpec(repo, 'HEAD:usr/bin/tool').entry.oid, execFileSync('sha256sum', [path.join(src, 'usr/bin/tool')]).toString().slice(0, 64));
});

test('commit: the tree id does not depend on creation order, inode numbers, location or cp -a', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'elsewhere/deeper/b');
  writeTree(a, SPEC);
  writeTree(b, SPEC, { reverse: true });
  // Hardlinks made in opposite orders: the group is named by its first path in byte order either way.
  fs.linkSync(path.join(a, 'README'), path.join(a, 'README-link'));
  fs.renameSync(path.join(b, 'README'), path.join(b, 'README-link'));
  fs.linkSync(path.join(b, 'README-link'), path.join(b, 'README'));
  for (const d of [a, b]) {
    fs.symlinkSync('etc/hosts', path.join(d, 'link'));
    fs.lutimesSync(path.join(d, 'link'), new Date(0), new Date(1000));
    fs.utimesSync(d, new Date(0), new Date(0));
  }
  const c = path.join(dir, 'c');
  execFileSync('cp', ['-a', a, c]);
  const ra = await commitAt(repo, a, { branch: 'a' });
  const rb = await commitAt(repo, b, { branch: 'b' });
  const rc = await commitAt(repo, c, { branch: 'c' });
  t.is(rb.tree, ra.tree);
  t.is(rc.tree, ra.tree);
  const hl = ls(repo, { spec: 'a:' }).filter((e) => e.hardlink);
  t.deepEqual(hl.map((e) => [e.path, e.hardlink]), [['README', 'README'], ['README-link', 'README']]);
});

// Skipped unless root.
(isRoot ? test : test.skip)('commit: the edge tree copied with cp -a gives the same root tree id', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const a = path.join(dir, 'a');
  execFileSync('bash', [mkedgePath(), a], { stdio: 'ignore' });
  const b = path.join(dir, 'b');
  execFileSync('cp', ['-a', a, b]);
  const ra = await commitAt(repo, a, { branch: 'a' });
  const rb = await commitAt(repo, b, { branch: 'b' });
  t.is(rb.tree, ra.tree);
});

test('commit: the tree id does not depend on the umask of the committing process', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, SPEC);
  const old = process.umask(0o077);
  let strict;
  try {
    strict = await commitAt(repo, src, { branch: 'strict' });
  } finally {
    process.umask(0);
  }
  let open;
  try {
    open = await commitAt(repo, src, { branch: 'open' });
  } finally {
    process.umask(old);
  }
  t.is(strict.tree, open.tree);
  t.is(strict.commit.length, 64);
});

test('commit: identical files are stored as one blob', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  const big = randomBytes(MiB, 'same');
  writeTree(src, { 'a': big, 'b': big, 'c': { 'd': big }, 'small1': 'x', 'small2': 'x', 'other': 'y' });
  const r = await commitAt(repo, src);
  const blobs = [...repo.index.list('blob')].sort();
  t.deepEqual(blobs, [sha256(big), sha256('x'), sha256('y')].sort());
  t.true(r.storedBytes < big.length + 64 * 1024, `${r.storedBytes} stored bytes`);
  const rec = readBlobRecord(repo.objects, sha256(big));
  t.is(rec.form, 'chunked');
  t.is(rec.size, MiB);
  t.deepEqual(readBlobRecord(repo.objects, sha256('x')), { form: 'inline', size: 1, data: Buffer.from('x') });
});

test('commit: committing a copy of a directory adds almost no stored bytes', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, { 'sub': { 'data': randomBytes(3 * MiB, 'copy'), 'text': 'hello\n', 'more': { 'x': 'y' } } });
  const first = await commitAt(repo, src);
  t.true(first.storedBytes > 3 * MiB);
  execFileSync('cp', ['-a', path.join(src, 'sub'), path.join(src, 'sub-copy')]);
  const second = await commitAt(repo, src, { tick: 1 });
  t.true(second.storedBytes < 2048, `${second.storedBytes} stored bytes`);
  const entries = ls(repo, { spec: 'HEAD' });
  t.is(entries.find((e) => e.path === 'sub')!.oid, entries.find((e) => e.path === 'sub-copy')!.oid);
});

test('commit: a small insertion near the start of a 24 MiB file re-stores only a few chunks', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  const data = randomBytes(24 * MiB, 'insert');
  fs.writeFileSync(path.join(src, 'disk.img'), data);
  const first = await commitAt(repo, src);
  t.true(first.storedBytes >= 24 * MiB, `${first.storedBytes}`);
  const chunksBefore = [...repo.index.list('chunk')].length;
  t.true(chunksBefore > 200);

  fs.writeFileSync(path.join(src, 'disk.img'), Buffer.concat([data.subarray(0, 5000), Buffer.from('a few new bytes'), data.subarray(5000)]));
  const second = await commitAt(repo, src, { tick: 1 });
  t.true(second.storedBytes < MiB, `${second.storedBytes} stored bytes`);
  const chunksAfter = [...repo.index.list('chunk')].length;
  t.true(chunksAfter - chunksBefore <= 3, `${chunksAfter - chunksBefore} new chunks`);
  t.is(resolveSpec(repo, 'HEAD:disk.img').entry.oid, sha256(fs.readFileSync(path.join(src, 'disk.img'))));
});

test('commit: a 1 GiB sparse file with 8 KiB of data is stored tiny and checks out sparse', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  const file = path.join(src, 'sparse.img');
  const fd = fs.openSync(file, 'w');
  const piece = randomBytes(4096, 'sparse');
  fs.writeSync(fd, piece, 0, 4096, 4096);
  fs.writeSync(fd, piece, 0, 4096, 512 * MiB);
  fs.ftruncateSync(fd, 1024 * MiB);
  fs.closeSync(fd);
  const r = await commitAt(repo, src);
  t.is(r.bytes, 1024 * MiB);
  t.true(r.storedBytes < 64 * 1024, `${r.storedBytes} stored bytes`);
  const entry = resolveSpec(repo, 'HEAD:sparse.img').entry;
  t.is(entry.size, 1024 * MiB);
  t.deepEqual(entry.holes, [{ offset: 0, length: 4096 }, { offset: 8192, length: 512 * MiB - 8192 }, { offset: 512 * MiB + 4096, length: 512 * MiB - 4096 }]);

  const out = path.join(dir, 'out');
  await checkout(repo, { rev: 'HEAD', dest: out });
  const ofd = fs.openSync(path.join(out, 'sparse.img'), 'r');
  try {
    t.is(fs.fstatSync(ofd).size, 1024 * MiB);
    const extents = native().dataExtents(ofd, 1024 * MiB);
    let dataBytes = 0;
    for (let i = 1; i < extents.length; i += 2) dataBytes += extents[i]!;
    t.true(dataBytes <= 64 * 1024, `${dataBytes} data bytes in the checkout`);
    t.true(fs.fstatSync(ofd).blocks * 512 <= 256 * 1024);
    const check = Buffer.alloc(4096);
    fs.readSync(ofd, check, 0, 4096, 512 * MiB);
    t.true(check.equals(piece));
  } finally {
    fs.closeSync(ofd);
  }
  // The blob id is the sha256 of the whole logical content.
  t.is(entry.oid, sha256(fs.readFileSync(file)));
});

test('commit: the stat cache skips unchanged files and still sees a same-size rewrite', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, SPEC);
  fs.writeFileSync(path.join(src, 'big'), randomBytes(2 * MiB, 'cache'));
  // Files younger than the racy window are never cached: wait until they are old enough.
  await sleep(2100);
  const first = await commitAt(repo, src);
  t.is(first.cachedFiles, 0);
  const second = await commitAt(repo, src, { tick: 1 });
  t.is(second.cachedFiles, second.files);
  t.is(second.files, 8);
  t.is(second.tree, first.tree);
  t.true(second.storedBytes < 1024, `${second.storedBytes}`);

  // Same size, new content, and the old mtime put back: the ctime still changes.
  const p = path.join(src, 'etc/hostname');
  const st = fs.statSync(p);
  fs.writeFileSync(p, 'VIVA\n');
  fs.utimesSync(p, st.atime, st.mtime);
  const third = await commitAt(repo, src, { tick: 2 });
  t.not(third.tree, first.tree);
  t.is(third.cachedFiles, third.files - 1);
  t.is((await collect(cat(repo, 'HEAD:etc/hostname'))).toString(), 'VIVA\n');
  // With the cache off every file is read again, with the same result.
  const fourth = await commitAt(repo, src, { tick: 3, statCache: false });
  t.is(fourth.cachedFiles, 0);
  t.is(fourth.tree, third.tree);
});

test('commit: files changed within the racy window are not cached', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'fresh'), 'just written');
  // Dated an hour ahead, so the commit sees it inside the racy window however long a loaded machine takes to get there.
  const soon = new Date(Date.now() + 3_600_000);
  fs.utimesSync(path.join(src, 'fresh'), soon, soon);
  await commitAt(repo, src);
  const again = await commitAt(repo, src, { tick: 1 });
  t.is(again.cachedFiles, 0);
  t.is(again.files, 1);
});

test('commit: the stat cache is per repository path and notices a replaced file', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'f'), 'one');
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(path.join(src, 'f'), old, old);
  await sleep(2100);
  await commitAt(repo, src);
  // Replace it by another file (new inode) with the same size and mtime.
  fs.writeFileSync(path.join(src, 'g'), 'two');
  fs.utimesSync(path.join(src, 'g'), old, old);
  fs.renameSync(path.join(src, 'g'), path.join(src, 'f'));
  const r = await commitAt(repo, src, { tick: 1 });
  t.is(r.cachedFiles, 0);
  t.is((await collect(cat(repo, 'HEAD:f'))).toString(), 'two');
});

test('commit: a branch that moves during the commit fails with RefConflictError and is left as moved', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, SPEC);
  const first = await commitAt(repo, src);
  const intruder = 'ee'.repeat(32);
  const reader = readerOf([
    entryOf('', 'dir'),
    () => { void repo.refs.update([{ ref: 'refs/heads/main', newOid: intruder, message: 'concurrent' }], AUTHOR); },
    entryOf('f', 'file', { content: content('data') }),
  ]);
  const err = await t.throwsAsync(commit(repo, { reader, message: 'loses', author: AUTHOR, time: TIME }), { instanceOf: RefConflictError });
  t.deepEqual(err?.data, { ref: 'refs/heads/main', expected: first.commit, actual: intruder });
  t.is(repo.refs.resolve('refs/heads/main')?.oid, intruder);
  t.is([...lmdb(repo).sessions.getKeys({})].length, 0, 'the writer session ended');
});

test('commit: a source that fails midway leaves refs and HEAD unchanged', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, SPEC);
  const first = await commitAt(repo, src);
  const reader = readerOf([
    entryOf('', 'dir'),
    entryOf('f', 'file', { content: content('data') }),
    () => { throw new SourceReadError('test-reader', 'disk on fire'); },
  ]);
  await t.throwsAsync(commit(repo, { reader, branch: 'other', message: 'fails', author: AUTHOR, time: TIME }), { instanceOf: SourceReadError });
  t.is(repo.refs.resolve('refs/heads/main')?.oid, first.commit);
  t.is(repo.refs.read('refs/heads/other'), undefined);
  t.deepEqual(repo.refs.read('HEAD'), { symref: 'refs/heads/main' });
  t.is([...lmdb(repo).sessions.getKeys({})].length, 0);
});

test('commit: a reader whose content breaks its contract is a CorruptInputError naming the file', async (t) => {
  const { repo } = tmpRepo(t);
  const bad: ImageEntry['content'] = { size: 3, async *read() { yield { offset: 0, data: Buffer.from('toolong') }; } };
  const reader = readerOf([entryOf('', 'dir'), entryOf('dir/f', 'file', { content: bad })]);
  const err = await t.throwsAsync(commit(repo, { reader, message: 'm', author: AUTHOR, time: TIME }));
  t.is((err as { code?: string }).code, 'ERR_CORRUPT_INPUT');
  t.regex(err?.message ?? '', /'dir\/f'/);
  t.is(repo.refs.resolve('HEAD')?.oid, undefined);
});

test('commit: entries given in any order build the same tree; implied directories get default metadata', async (t) => {
  const { repo } = tmpRepo(t);
  const entries = () => [
    entryOf('', 'dir', { mode: 0o700 }),
    entryOf('b/c', 'file', { content: content('c') }),
    entryOf('a', 'file', { content: content('a') }),
    entryOf('b', 'dir', { mode: 0o750, mtimeNs: 5n }),
    entryOf('d/e/f', 'symlink', { linkTarget: Buffer.from('../../a') }),
  ];
  const forward = await commit(repo, { reader: readerOf(entries()), branch: 'f', message: 'm', author: AUTHOR, time: TIME });
  const backward = await commit(repo, { reader: readerOf(entries().reverse()), branch: 'r', message: 'm', author: AUTHOR, time: TIME });
  t.is(backward.tree, forward.tree);
  const listing = ls(repo, { spec: 'f', recursive: true });
  t.deepEqual(listing.map((e) => [e.path, e.type, e.mode]), [
    ['a', 'file', '0644'], ['b', 'dir', '0750'], ['b/c', 'file', '0644'], ['d', 'dir', '0755'], ['d/e', 'dir', '0755'], ['d/e/f', 'symlink', '0644'],
  ]);
  t.is(readCommit(repo.objects, forward.commit).rootMeta?.mode, 0o700);
  t.is(readTree(repo.objects, forward.tree).entries.length, 3);
});

test('commit: refuses a bad author, a duplicate label and an invalid branch name before writing anything', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, SPEC);
  await t.throwsAsync(commit(repo, { source: src, message: 'm', author: 'no email', time: TIME }), { instanceOf: UsageError, message: /not of the form/ });
  await t.throwsAsync(commit(repo, { source: src, message: 'm', author: AUTHOR, labels: [['a', '1'], ['a', '2']] }), { instanceOf: UsageError, message: /given twice/ });
  for (const bad of ['a..b', 'HEAD', 'x.lock', 'a b', 'a/', '@', 'x~1']) {
    await t.throwsAsync(commit(repo, { source: src, branch: bad, message: 'm', author: AUTHOR }), { instanceOf: InvalidRefNameError }, bad);
  }
  t.deepEqual([...repo.index.listAll()], []);
  t.is(repo.refs.resolve('HEAD')?.oid, undefined);
});

test('commit: a repository can be reopened and committed to again', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, SPEC);
  const first = await commitAt(repo, src);
  await repo.close();
  const again = Repository.open(path.join(dir, 'repo'), 'write');
  try {
    fs.writeFileSync(path.join(src, 'new'), 'new');
    const second = await commitAt(again, src, { tick: 1 });
    t.is(second.parent, first.commit);
    t.is(log(again).length, 2);
  } finally {
    await again.close();
  }
});

test('commit: openDirectory of a source and commit of the path agree', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, SPEC);
  const viaPath = await commitAt(repo, src, { branch: 'p' });
  const viaReader = await commit(repo, { reader: openDirectory(src), branch: 'r', message: 'm', author: AUTHOR, time: TIME });
  t.is(viaReader.tree, viaPath.tree);
});

test('commit: a source directory that holds the repository leaves the repository itself out (as git ignores .git)', async (t) => {
  const dir = tmpDir(t);
  const repo = Repository.init(dir);
  t.teardown(() => repo.close());
  fs.writeFileSync(path.join(dir, 'file'), 'content');
  const r = await commitAt(repo, dir);
  t.is(r.files, 1);
  t.deepEqual(ls(repo, { spec: 'HEAD' }).map((e) => e.path), ['file']);
});
