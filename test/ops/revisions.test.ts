/** Tests of revision syntax, log, ls, cat, show, reflog and the branch/tag ops. */
import test from 'ava';
import {
  AmbiguousRevisionError, InvalidRefNameError, PathNotFoundError, RefExistsError, RefNotFoundError, RevisionNotFoundError,
  UsageError,
} from '../../src/errors.js';
import { commit, type CommitResult } from '../../src/ops/commit.js';
import { log } from '../../src/ops/log.js';
import { cat, ls } from '../../src/ops/ls.js';
import { show } from '../../src/ops/show.js';
import { reflog } from '../../src/ops/reflog.js';
import { createRef, deleteRef, listBranches, renameBranch } from '../../src/ops/branch.js';
import { resolveRevision, resolveSpec, splitRevPath, normalizeImagePath } from '../../src/ops/resolve.js';
import { encodeCommit, hashCommit, type Commit } from '../../src/model/commit.js';
import type { Repository } from '../../src/store/repository.js';
import type { ImageEntry } from '../../src/formats/types.js';
import { content, entryOf, readerOf } from '../helpers/image.js';
import { AUTHOR, TIME, collect, tmpRepo } from '../helpers/repo.js';

/** Commits an image of `files` (path → content; a trailing '/' makes a directory) at TIME + tick. */
function commitFiles(repo: Repository, files: Record<string, string>, options: { branch?: string; tick?: number; message?: string } = {}): Promise<CommitResult> {
  const entries: ImageEntry[] = [entryOf('', 'dir')];
  for (const [p, data] of Object.entries(files)) {
    entries.push(p.endsWith('/') ? entryOf(p.slice(0, -1), 'dir') : entryOf(p, 'file', { content: content(data) }));
  }
  return commit(repo, {
    reader: readerOf(entries), branch: options.branch, author: AUTHOR, time: TIME + (options.tick ?? 0),
    message: options.message ?? `commit ${options.tick ?? 0}`,
  });
}

/** main: c0 ← c1 ← c2 ← c3 ← c4, each changing `f`. */
async function history(repo: Repository, n = 5): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await commitFiles(repo, { 'f': `version ${i}`, 'etc/': '', 'etc/hosts': 'localhost' }, { tick: i })).commit);
  return ids;
}

test('revisions: full ids, unique prefixes, HEAD, branch and full ref names', async (t) => {
  const { repo } = tmpRepo(t);
  const c = await history(repo);
  const c4 = c[4]!;
  t.is(resolveRevision(repo, c4).oid, c4);
  t.is(resolveRevision(repo, c4.toUpperCase()).oid, c4);
  t.is(resolveRevision(repo, 'HEAD').oid, c4);
  t.is(resolveRevision(repo, 'main').oid, c4);
  t.is(resolveRevision(repo, 'refs/heads/main').oid, c4);
  t.is(resolveRevision(repo, 'HEAD').ref, 'refs/heads/main');
  t.is(resolveRevision(repo, 'main').ref, 'refs/heads/main');
  t.is(resolveRevision(repo, c4).ref, undefined);
  for (const id of c) {
    // Shortest unambiguous prefix among 5 commits: 8 hex digits always are.
    t.is(resolveRevision(repo, id.slice(0, 8)).oid, id);
  }
  // Fewer than 4 hex digits are never taken as an id.
  t.throws(() => resolveRevision(repo, c4.slice(0, 3)), { instanceOf: RevisionNotFoundError });
  // A prefix of a tree id is not a commit.
  const tree = resolveRevision(repo, 'HEAD').commit.root;
  t.throws(() => resolveRevision(repo, tree.slice(0, 12)), { instanceOf: RevisionNotFoundError });
  t.throws(() => resolveRevision(repo, tree), { instanceOf: RevisionNotFoundError });
});

test('revisions: ancestry suffixes ~N, ^, ^N and their errors', async (t) => {
  const { repo } = tmpRepo(t);
  const c = await history(repo);
  t.is(resolveRevision(repo, 'HEAD~0').oid, c[4]);
  t.is(resolveRevision(repo, 'HEAD~').oid, c[3]);
  t.is(resolveRevision(repo, 'HEAD~2').oid, c[2]);
  t.is(resolveRevision(repo, 'main~4').oid, c[0]);
  t.is(resolveRevision(repo, 'main^').oid, c[3]);
  t.is(resolveRevision(repo, 'main^^').oid, c[2]);
  t.is(resolveRevision(repo, 'main^1').oid, c[3]);
  t.is(resolveRevision(repo, 'main^0').oid, c[4]);
  t.is(resolveRevision(repo, 'HEAD~1^~1').oid, c[1]);
  t.is(resolveRevision(repo, `${c[3]!.slice(0, 10)}~2`).oid, c[1]);
  t.is(resolveRevision(repo, 'HEAD~2').ref, undefined);
  const e1 = t.throws(() => resolveRevision(repo, 'HEAD~5'), { instanceOf: RevisionNotFoundError });
  t.is(e1?.message, "not enough ancestors for 'HEAD~5'");
  const e2 = t.throws(() => resolveRevision(repo, 'HEAD^2'), { instanceOf: RevisionNotFoundError });
  t.is(e2?.message, "no parent 2 in 'HEAD^2'");
  t.is(e2?.code, 'ERR_REVISION_NOT_FOUND');
  t.deepEqual(e2?.data, { rev: 'HEAD^2' });
});

test('revisions: a merge commit has a second parent reachable with ^2, and log walks both sides by time', async (t) => {
  const { repo } = tmpRepo(t);
  const main = await history(repo, 3);
  const side = await commitFiles(repo, { 'side': 'x' }, { branch: 'side', tick: 10 });
  const base = resolveRevision(repo, 'main').commit;
  const merge: Commit = { ...base, parents: [main[2]!, side.commit], time: TIME + 20, message: 'merge side' };
  const enc = encodeCommit(merge);
  const mid = hashCommit(enc);
  repo.objects.writeObject('commit', mid, enc);
  await repo.objects.flush();
  await repo.refs.update([{ ref: 'refs/heads/main', newOid: mid, expectedOld: main[2]!, message: 'merge' }], AUTHOR);
  t.is(resolveRevision(repo, 'main^2').oid, side.commit);
  t.is(resolveRevision(repo, 'main^1').oid, main[2]);
  t.is(resolveRevision(repo, 'main^2~0').oid, side.commit);
  t.throws(() => resolveRevision(repo, 'main^3'), { instanceOf: RevisionNotFoundError, message: /no parent 3/ });
  t.deepEqual(log(repo, { rev: 'main' }).map((e) => e.id), [mid, side.commit, main[2], main[1], main[0]]);
  t.deepEqual(log(repo, { rev: 'main', firstParent: true }).map((e) => e.id), [mid, main[2], main[1], main[0]]);
});

test('revisions: an ambiguous short id lists its candidates; a longer prefix is unique', async (t) => {
  const { repo } = tmpRepo(t);
  const tree = (await commitFiles(repo, { 'f': 'x' })).tree;
  // Commits that differ only in their message, until two ids share their first 4 hex digits (birthday: ~300 tries).
  const seen = new Map<string, { oid: string; enc: Buffer }>();
  let pair: Array<{ oid: string; enc: Buffer }> | undefined;
  for (let i = 0; !pair && i < 100_000; i++) {
    const enc = encodeCommit({ rootKind: 'tree', root: tree, parents: [], author: AUTHOR, time: TIME, tzOffset: 0, message: `try ${i}`, labels: [], source: { format: 'test' } });
    const oid = hashCommit(enc);
    const other = seen.get(oid.slice(0, 4));
    if (other) pair = [other, { oid, enc }];
    else seen.set(oid.slice(0, 4), { oid, enc });
  }
  t.truthy(pair);
  for (const p of pair!) repo.objects.writeObject('commit', p.oid, p.enc);
  await repo.objects.flush();
  const [a, b] = pair!.map((p) => p.oid).sort() as [string, string];
  const prefix = a.slice(0, 4);
  const err = t.throws(() => resolveRevision(repo, prefix), { instanceOf: AmbiguousRevisionError });
  t.is(err?.code, 'ERR_AMBIGUOUS_REVISION');
  t.deepEqual(err?.data, { rev: prefix, candidates: [a, b] });
  t.regex(err?.message ?? '', new RegExp(`^short id '${prefix}' is ambiguous \\(2 candidates: ${a}, ${b}\\)$`));
  let n = 4;
  while (a[n] === b[n]) n++;
  t.is(resolveRevision(repo, a.slice(0, n + 1)).oid, a);
  t.is(resolveRevision(repo, b.slice(0, n + 1)).oid, b);
});

test('revisions: unknown names, an unborn HEAD and a path given as a commit are errors', async (t) => {
  const { repo } = tmpRepo(t);
  const unborn = t.throws(() => resolveRevision(repo, 'HEAD'), { instanceOf: RevisionNotFoundError });
  t.regex(unborn?.message ?? '', /current branch 'main' does not have any commits yet/);
  await history(repo, 1);
  for (const rev of ['nope', 'mainx', 'refs/heads/nope', 'deadbeef', '0000000000000000000000000000000000000000000000000000000000000000', '~1', '^']) {
    const e = t.throws(() => resolveRevision(repo, rev), { instanceOf: RevisionNotFoundError }, rev);
    t.is(e?.data.rev, rev);
  }
  t.throws(() => resolveRevision(repo, 'HEAD:f'), { instanceOf: UsageError });
});

test('revisions: tags resolve, and a tag wins over a branch of the same name (as in git)', async (t) => {
  const { repo } = tmpRepo(t);
  const c = await history(repo, 3);
  await createRef(repo, { kind: 'tag', name: 'v1', rev: 'HEAD~2' });
  await createRef(repo, { kind: 'tag', name: 'release/2024/01', rev: c[1] });
  t.is(resolveRevision(repo, 'v1').oid, c[0]);
  t.is(resolveRevision(repo, 'refs/tags/v1').oid, c[0]);
  t.is(resolveRevision(repo, 'release/2024/01').oid, c[1]);
  t.is(resolveRevision(repo, 'release/2024/01^').oid, c[0]);
  await createRef(repo, { kind: 'branch', name: 'v1', rev: 'HEAD' });
  t.is(resolveRevision(repo, 'v1').oid, c[0]);
  t.is(resolveRevision(repo, 'refs/heads/v1').oid, c[2]);
});

test('revisions: REV:path names an entry; paths are normalised', async (t) => {
  const { repo } = tmpRepo(t);
  await history(repo, 3);
  t.is(resolveSpec(repo, 'HEAD:f').entry.type, 'file');
  t.is(resolveSpec(repo, 'HEAD:/etc//hosts/').path.toString(), 'etc/hosts');
  t.is(resolveSpec(repo, 'HEAD:./etc/./hosts').path.toString(), 'etc/hosts');
  t.is(resolveSpec(repo, 'main~2:f').entry.oid, resolveSpec(repo, 'HEAD~2:f').entry.oid);
  t.not(resolveSpec(repo, 'main~2:f').entry.oid, resolveSpec(repo, 'main:f').entry.oid);
  t.is(resolveSpec(repo, ':f').commitOid, resolveRevision(repo, 'HEAD').oid);
  const root = resolveSpec(repo, 'HEAD');
  t.is(root.entry.type, 'dir');
  t.is(root.entry.oid, root.commit.root);
  t.is(resolveSpec(repo, 'HEAD:').entry.oid, root.commit.root);
  const e = t.throws(() => resolveSpec(repo, 'HEAD:etc/nope'), { instanceOf: PathNotFoundError });
  t.deepEqual(e?.data, { path: 'etc/nope', rev: 'HEAD' });
  t.throws(() => resolveSpec(repo, 'HEAD:f/under-a-file'), { instanceOf: PathNotFoundError });
  t.deepEqual(splitRevPath('a:b:c'), { rev: 'a', path: 'b:c' });
  t.deepEqual(splitRevPath(':x'), { rev: 'HEAD', path: 'x' });
  t.deepEqual(normalizeImagePath('//a/./b//'), Buffer.from('a/b'));
});

test('log: newest first, maxCount, and the fields of an entry', async (t) => {
  const { repo } = tmpRepo(t);
  const c = await history(repo);
  const entries = log(repo);
  t.deepEqual(entries.map((e) => e.id), [...c].reverse());
  t.deepEqual(log(repo, { maxCount: 2 }).map((e) => e.id), [c[4], c[3]]);
  t.deepEqual(log(repo, { maxCount: 0 }), []);
  t.deepEqual(log(repo, { rev: 'HEAD~3' }).map((e) => e.id), [c[1], c[0]]);
  const e = entries[0]!;
  t.is(e.author, AUTHOR);
  t.is(e.time, TIME + 4);
  t.is(e.message, 'commit 4');
  t.deepEqual(e.parents, [c[3]]);
  t.is(e.rootKind, 'tree');
  t.deepEqual(e.labels, {});
  t.deepEqual(e.source, { format: 'test', name: 'test-reader' });
  t.regex(e.date, /^2023-11-1[45]T\d\d:\d\d:24[+-]\d\d:\d\d$/);
});

test('log: commits with the same time are ordered by id, deterministically', async (t) => {
  const { repo } = tmpRepo(t);
  const a = await commitFiles(repo, { 'f': '1' }, { branch: 'a', tick: 0, message: 'a' });
  const b = await commitFiles(repo, { 'f': '2' }, { branch: 'b', tick: 0, message: 'b' });
  const base = resolveRevision(repo, 'a').commit;
  const enc = encodeCommit({ ...base, parents: [a.commit, b.commit], time: TIME + 1, message: 'm' });
  const m = hashCommit(enc);
  repo.objects.writeObject('commit', m, enc);
  await repo.objects.flush();
  await repo.refs.update([{ ref: 'refs/heads/m', newOid: m, message: 'm' }], AUTHOR);
  t.deepEqual(log(repo, { rev: 'm' }).map((e) => e.id), [m, ...[a.commit, b.commit].sort()]);
});

test('ls: a directory, recursively, a single file, and the root', async (t) => {
  const { repo } = tmpRepo(t);
  await commit(repo, {
    reader: readerOf([
      entryOf('', 'dir'),
      entryOf('etc', 'dir', { mode: 0o750, uid: 1, gid: 2 }),
      entryOf('etc/hosts', 'file', { content: content('127.0.0.1 localhost\n'), xattrs: [{ name: 'user.a', value: Buffer.from('b') }] }),
      entryOf('etc/sub', 'dir'),
      entryOf('etc/sub/x', 'file', { content: content('x') }),
      entryOf('link', 'symlink', { mode: 0o777, linkTarget: Buffer.from('etc/hosts') }),
      entryOf('null', 'chr', { mode: 0o666, rdev: { major: 1, minor: 3 } }),
      entryOf(Buffer.from([0x6e, 0xff]).toString('latin1'), 'fifo', { path: Buffer.from([0x6e, 0xff]) }),
      entryOf('sparse', 'file', { content: content('data', 1000, 5000) }),
    ]),
    message: 'm', author: AUTHOR, time: TIME,
  });
  t.deepEqual(ls(repo, { spec: 'HEAD' }).map((e) => e.path), ['etc', 'link', 'null', 'n\ufffd', 'sparse']);
  t.deepEqual(ls(repo, { spec: 'HEAD', recursive: true }).map((e) => e.path), ['etc', 'etc/hosts', 'etc/sub', 'etc/sub/x', 'link', 'null', 'n\ufffd', 'sparse']);
  t.deepEqual(ls(repo, { spec: 'HEAD:etc' }).map((e) => e.path), ['etc/hosts', 'etc/sub']);
  const [hosts] = ls(repo, { spec: 'HEAD:etc/hosts' });
  t.like(hosts, { path: 'etc/hosts', type: 'file', mode: '0644', uid: 0, gid: 0, size: 20, xattrs: { 'user.a': Buffer.from('b').toString('base64') } });
  t.is(hosts!.oid?.length, 64);
  const all = ls(repo, { spec: 'HEAD' });
  t.like(all.find((e) => e.path === 'etc'), { type: 'dir', mode: '0750', uid: 1, gid: 2 });
  t.like(all.find((e) => e.path === 'link'), { type: 'symlink', linkTarget: 'etc/hosts', size: 9 });
  t.like(all.find((e) => e.path === 'null'), { type: 'chr', rdev: { major: 1, minor: 3 } });
  t.like(all.find((e) => e.path === 'n\ufffd'), { pathHex: '6eff', type: 'fifo' });
  t.like(all.find((e) => e.path === 'sparse'), { size: 5000, holes: 2 });
  t.throws(() => ls(repo, { spec: 'HEAD:nope' }), { instanceOf: PathNotFoundError });
});

test('cat: a file, a sparse file (holes read as zeros), a symlink, and refusals', async (t) => {
  const { repo } = tmpRepo(t);
  const big = Buffer.alloc(3 << 20);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
  await commit(repo, {
    reader: readerOf([
      entryOf('', 'dir'),
      entryOf('f', 'file', { content: content('hello\n') }),
      entryOf('empty', 'file', { content: content('') }),
      entryOf('sparse', 'file', { content: content('middle', 100_000, 300_000) }),
      entryOf('allhole', 'file', { content: content('', 0, 70_000) }),
      entryOf('big', 'file', { content: content(big) }),
      entryOf('link', 'symlink', { linkTarget: Buffer.from('f') }),
      entryOf('d', 'dir'),
      entryOf('fifo', 'fifo'),
    ]),
    message: 'm', author: AUTHOR, time: TIME,
  });
  t.is((await collect(cat(repo, 'HEAD:f'))).toString(), 'hello\n');
  t.is((await collect(cat(repo, 'HEAD:empty'))).length, 0);
  const sparse = await collect(cat(repo, 'HEAD:sparse'));
  const want = Buffer.alloc(300_000);
  want.write('middle', 100_000);
  t.is(sparse.length, 300_000);
  t.true(sparse.equals(want));
  t.true((await collect(cat(repo, 'HEAD:allhole'))).equals(Buffer.alloc(70_000)));
  t.true((await collect(cat(repo, 'HEAD:big'))).equals(big));
  t.is((await collect(cat(repo, 'HEAD:link'))).toString(), 'f');
  await t.throwsAsync(collect(cat(repo, 'HEAD:d')), { instanceOf: UsageError, message: /is a dir, not a file/ });
  await t.throwsAsync(collect(cat(repo, 'HEAD:fifo')), { instanceOf: UsageError });
  await t.throwsAsync(collect(cat(repo, 'HEAD:nope')), { instanceOf: PathNotFoundError });
});

test('show: commit metadata, root summary and the refs that point at it', async (t) => {
  const { repo } = tmpRepo(t);
  const c = await history(repo, 2);
  await createRef(repo, { kind: 'tag', name: 'v1' });
  const s = show(repo);
  t.is(s.id, c[1]);
  t.is(s.tree, resolveRevision(repo, 'HEAD').commit.root);
  t.is(s.rootEntries, 2);
  t.deepEqual(s.rootMeta, { mode: '0755', uid: 0, gid: 0, mtimeNs: '0' });
  t.deepEqual(s.refs.sort(), ['refs/heads/main', 'refs/tags/v1']);
  t.deepEqual(s.parents, [c[0]]);
  const old = show(repo, 'HEAD~1');
  t.is(old.id, c[0]);
  t.deepEqual(old.refs, []);
  t.throws(() => show(repo, 'nope'), { instanceOf: RevisionNotFoundError });
});

test('reflog: the history of a branch and of HEAD, newest first, with selectors', async (t) => {
  const { repo } = tmpRepo(t);
  const c = await history(repo, 3);
  const r = reflog(repo, 'main');
  t.is(r.ref, 'refs/heads/main');
  t.deepEqual(r.entries.map((e) => [e.selector, e.old, e.new]), [
    ['main@{0}', c[1], c[2]], ['main@{1}', c[0], c[1]], ['main@{2}', null, c[0]],
  ]);
  t.deepEqual(r.entries.map((e) => e.message), ['commit: commit 2', 'commit: commit 1', 'commit (initial): commit 0']);
  t.is(reflog(repo).ref, 'HEAD');
  t.is(reflog(repo).entries[0]!.selector, 'HEAD@{0}');
  t.throws(() => reflog(repo, 'nope'), { instanceOf: RefNotFoundError });
});

test('reflog: a repository made before HEAD had its own reflog shows the branch\'s for HEAD, and HEAD@{N} reads it', async (t) => {
  const { repo } = tmpRepo(t);
  const c = await history(repo, 2);
  t.is(reflog(repo).entries.length, 2);
  // Such a repository has no HEAD entries at all.
  await repo.refs.dropReflogEntries('HEAD', () => false);
  const r = reflog(repo);
  t.is(r.ref, 'refs/heads/main');
  t.deepEqual(r.entries.map((e) => [e.selector, e.new]), [['HEAD@{0}', c[1]], ['HEAD@{1}', c[0]]]);
  t.is(resolveRevision(repo, 'HEAD@{1}').oid, c[0]);
});

test('branch: create, list by prefix and glob, head marker', async (t) => {
  const { repo } = tmpRepo(t);
  const c = await history(repo, 2);
  for (const name of ['debian/12/base', 'debian/12/web', 'debian/11/base', 'debianx', 'customers/acme/web', 'customers/zeta/db']) {
    const info = await createRef(repo, { kind: 'branch', name, rev: 'HEAD~1' });
    t.deepEqual(info, { name, ref: `refs/heads/${name}`, oid: c[0] });
  }
  const names = (pattern?: string) => listBranches(repo, 'branch', pattern).map((b) => b.name);
  t.deepEqual(names(), ['customers/acme/web', 'customers/zeta/db', 'debian/11/base', 'debian/12/base', 'debian/12/web', 'debianx', 'main']);
  t.deepEqual(names('debian'), ['debian/11/base', 'debian/12/base', 'debian/12/web']);
  t.deepEqual(names('debian/'), ['debian/11/base', 'debian/12/base', 'debian/12/web']);
  t.deepEqual(names('debian/12'), ['debian/12/base', 'debian/12/web']);
  t.deepEqual(names('debian/*/base'), ['debian/11/base', 'debian/12/base']);
  t.deepEqual(names('**/web'), ['customers/acme/web', 'debian/12/web']);
  t.deepEqual(names('customers/*'), []);
  t.deepEqual(names('customers/**'), ['customers/acme/web', 'customers/zeta/db']);
  t.deepEqual(names('main'), ['main']);
  t.deepEqual(names('ma'), []);
  t.deepEqual(listBranches(repo, 'branch').filter((b) => b.head).map((b) => b.name), ['main']);
  t.deepEqual(listBranches(repo, 'tag'), []);
  // Default start point: HEAD.
  t.is((await createRef(repo, { kind: 'branch', name: 'from-head' })).oid, c[1]);
});

test('branch: an existing name is RefExistsError unless forced; invalid names are refused', async (t) => {
  const { repo } = tmpRepo(t);
  const c = await history(repo, 2);
  await createRef(repo, { kind: 'branch', name: 'topic', rev: 'HEAD~1' });
  const err = await t.throwsAsync(() => createRef(repo, { kind: 'branch', name: 'topic' }), { instanceOf: RefExistsError });
  t.is(err?.data.ref, 'topic');
  t.is(repo.refs.resolve('refs/heads/topic')?.oid, c[0]);
  await createRef(repo, { kind: 'branch', name: 'topic', force: true });
  t.is(repo.refs.resolve('refs/heads/topic')?.oid, c[1]);
  await createRef(repo, { kind: 'tag', name: 'v1' });
  await t.throwsAsync(() => createRef(repo, { kind: 'tag', name: 'v1', rev: 'HEAD~1' }), { instanceOf: RefExistsError });
  for (const bad of ['a..b', 'a b', 'x.lock', '.hidden', 'a/', 'HEAD', 'a~1', 'a:b', '@']) {
    await t.throwsAsync(() => createRef(repo, { kind: 'branch', name: bad }), { instanceOf: InvalidRefNameError }, bad);
  }
  await t.throwsAsync(() => createRef(repo, { kind: 'tag', name: 'v1^' }), { instanceOf: InvalidRefNameError });
  await t.throwsAsync(() => createRef(repo, { kind: 'branch', name: 'x', rev: 'nope' }), { instanceOf: RevisionNotFoundError });
});

test('branch: a name cannot be both a branch and a directory of branches (D/F)', async (t) => {
  const { repo } = tmpRepo(t);
  await history(repo, 1);
  await createRef(repo, { kind: 'branch', name: 'a' });
  await createRef(repo, { kind: 'branch', name: 'x/y/z' });
  await t.throwsAsync(() => createRef(repo, { kind: 'branch', name: 'a/b' }), { instanceOf: UsageError, message: /'a' exists/ });
  await t.throwsAsync(() => createRef(repo, { kind: 'branch', name: 'x/y' }), { instanceOf: UsageError, message: /'x\/y\/z' exists below it/ });
  await t.throwsAsync(() => createRef(repo, { kind: 'branch', name: 'x' }), { instanceOf: UsageError });
  // Renaming and committing obey the same rule.
  await t.throwsAsync(() => renameBranch(repo, 'branch', 'main', 'a/b'), { instanceOf: UsageError, message: /'a' exists/ });
  await t.throwsAsync(() => renameBranch(repo, 'branch', 'main', 'x/y'), { instanceOf: UsageError, message: /'x\/y\/z' exists below it/ });
  await t.throwsAsync(commitFiles(repo, { 'f': 'x' }, { branch: 'a/c' }), { instanceOf: UsageError, message: /'a' exists/ });
  await t.throwsAsync(commitFiles(repo, { 'f': 'x' }, { branch: 'x' }), { instanceOf: UsageError });
  t.deepEqual(listBranches(repo, 'branch').map((b) => b.name), ['a', 'main', 'x/y/z']);
  // Siblings that merely share a prefix are fine.
  await createRef(repo, { kind: 'branch', name: 'ab' });
  await createRef(repo, { kind: 'branch', name: 'x/y2' });
  // Tags and branches are separate namespaces.
  await createRef(repo, { kind: 'tag', name: 'a/b' });
  t.is(listBranches(repo, 'tag')[0]!.name, 'a/b');
});

test('branch: delete removes the branch and its reflog; deleting a missing one is RefNotFoundError', async (t) => {
  const { repo } = tmpRepo(t);
  const c = await history(repo, 2);
  await createRef(repo, { kind: 'branch', name: 'gone/soon' });
  t.deepEqual(await deleteRef(repo, 'branch', 'gone/soon'), { name: 'gone/soon', ref: 'refs/heads/gone/soon', oid: c[1] });
  t.is(repo.refs.read('refs/heads/gone/soon'), undefined);
  t.throws(() => reflog(repo, 'gone/soon'), { instanceOf: RefNotFoundError });
  await t.throwsAsync(() => deleteRef(repo, 'branch', 'gone/soon'), { instanceOf: RefNotFoundError });
  await createRef(repo, { kind: 'tag', name: 'v1' });
  await deleteRef(repo, 'tag', 'v1');
  t.deepEqual(listBranches(repo, 'tag'), []);
  // The directory left empty does not block a branch of that name.
  await createRef(repo, { kind: 'branch', name: 'gone' });
});

test('branch: rename moves the reflog, HEAD follows, and an existing target is RefExistsError', async (t) => {
  const { repo } = tmpRepo(t);
  const c = await history(repo, 2);
  await createRef(repo, { kind: 'branch', name: 'other', rev: 'HEAD~1' });
  const err = await t.throwsAsync(() => renameBranch(repo, 'branch', 'main', 'other'), { instanceOf: RefExistsError });
  t.truthy(err);
  t.is(repo.refs.resolve('refs/heads/main')?.oid, c[1]);
  t.deepEqual(await renameBranch(repo, 'branch', 'main', 'debian/12/base'), { name: 'debian/12/base', ref: 'refs/heads/debian/12/base', oid: c[1] });
  t.deepEqual(repo.refs.read('HEAD'), { symref: 'refs/heads/debian/12/base' });
  t.is(resolveRevision(repo, 'HEAD').oid, c[1]);
  t.deepEqual(reflog(repo, 'debian/12/base').entries.map((e) => e.message), [
    'renamed refs/heads/main to refs/heads/debian/12/base', 'commit: commit 1', 'commit (initial): commit 0',
  ]);
  await t.throwsAsync(() => renameBranch(repo, 'branch', 'main', 'x'), { instanceOf: RefNotFoundError });
  // The next commit goes to the renamed branch.
  const next = await commitFiles(repo, { 'f': 'new' }, { tick: 5 });
  t.is(next.branch, 'refs/heads/debian/12/base');
  t.is(next.parent, c[1]);
  // Forced over an existing branch.
  await renameBranch(repo, 'branch', 'other', 'debian/12/base', true);
  t.is(repo.refs.resolve('refs/heads/debian/12/base')?.oid, c[0]);
  t.is(repo.refs.resolve('refs/heads/other')?.oid, undefined);
});

test('branch: the branch HEAD points at is not deleted without force (as git refuses the checked-out branch)', async (t) => {
  const { repo } = tmpRepo(t);
  const c = await history(repo, 1);
  await t.throwsAsync(() => deleteRef(repo, 'branch', 'main'), { instanceOf: UsageError, message: /HEAD points at it/ });
  t.is(repo.refs.resolve('refs/heads/main')?.oid, c[0]);
  await deleteRef(repo, 'branch', 'main', true);
  t.is(repo.refs.resolve('refs/heads/main')?.oid, undefined);
});
