/**
 * The tree cache (git's cache-tree for directory sources): a re-commit takes unchanged directories' trees whole, and
 * every kind of change below them still shows. Each case checks the tree against a commit that reads everything
 * (no stat cache, no tree cache): the cache may only ever save work, never change a tree.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { cat } from '../../src/ops/ls.js';
import { gc } from '../../src/ops/gc.js';
import { deleteRef } from '../../src/ops/branch.js';
import { fsck } from '../../src/ops/fsck.js';
import { native } from '../../src/native/index.js';
import type { Repository } from '../../src/store/repository.js';
import type { CommitResult } from '../../src/ops/commit.js';
import { collect, commitAt, isRoot, sleep, tmpRepo, writeTree, type Spec } from '../helpers/repo.js';

const SPEC: Spec = {
  'README': 'hello\n',
  'etc': { 'hostname': 'viva\n', 'hosts': '127.0.0.1 localhost\n', 'ssh': { 'sshd_config': 'Port 22\n' } },
  'usr': { 'bin': { 'tool': 'binary\0data', 'other': 'more' }, 'share': { 'doc': { 'a.txt': 'a'.repeat(1000), 'b.txt': 'b' } } },
  'zz': { 'deep': { 'deeper': { 'deepest': 'bottom' } } },
};

let tick = 0;

/** A source tree old enough to be recorded (entries changed within 2 s of a commit are racy), committed twice. */
async function recorded(t: ExecutionContext, prepare?: (src: string) => void): Promise<{ repo: Repository; src: string; first: CommitResult; second: CommitResult }> {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, SPEC);
  prepare?.(src);
  await sleep(2100);
  const first = await commitAt(repo, src, { tick: ++tick });
  const second = await commitAt(repo, src, { tick: ++tick });
  return { repo, src, first, second };
}

/** Commits `src` with the caches and without: the trees must be equal. Returns the cached commit. */
async function same(t: ExecutionContext, repo: Repository, src: string): Promise<CommitResult> {
  const cached = await commitAt(repo, src, { tick: ++tick });
  const cold = await commitAt(repo, src, { tick: ++tick, statCache: false });
  t.is(cold.cachedFiles, 0);
  t.is(cached.tree, cold.tree, 'the tree cache changed a tree');
  t.is(cached.files, cold.files);
  t.is(cached.dirs, cold.dirs);
  t.is(cached.bytes, cold.bytes);
  t.is(cached.source.size, cold.source.size);
  return cached;
}

const text = async (repo: Repository, p: string) => (await collect(cat(repo, `HEAD:${p}`))).toString();

test('tree cache: an unchanged tree is taken whole, with the same tree, counts and source size as a full read', async (t) => {
  const { repo, src, first, second } = await recorded(t);
  t.is(first.cachedDirs, 0);
  t.is(second.tree, first.tree);
  t.is(second.cachedDirs, second.dirs);
  t.is(second.cachedFiles, second.files);
  t.is(second.files, 9);
  t.is(second.dirs, 10);
  t.is(second.bytes, first.bytes);
  t.is(second.source.size, first.source.size);
  t.true(second.storedBytes < 1024, `${second.storedBytes}`);
  await same(t, repo, src);
});

test('tree cache: a file rewritten with the same size and mtime is read again; other directories stay whole', async (t) => {
  const { repo, src, first } = await recorded(t);
  const p = path.join(src, 'zz/deep/deeper/deepest');
  const st = fs.statSync(p);
  fs.writeFileSync(p, 'BOTTOM');
  fs.utimesSync(p, st.atime, st.mtime);
  const r = await same(t, repo, src);
  t.not(r.tree, first.tree);
  t.is(await text(repo, 'zz/deep/deeper/deepest'), 'BOTTOM');
  // root, zz, zz/deep and zz/deep/deeper are built again; etc, usr and their subdirectories (6) are taken whole.
  t.is(r.cachedDirs, 6);
});

test('tree cache: a changed xattr, mode or symlink target shows', async (t) => {
  const { repo, src, first } = await recorded(t, (s) => fs.symlinkSync('hostname', path.join(s, 'etc/link')));
  native().lsetxattr(path.join(src, 'usr/share/doc/b.txt'), 'user.viva', Buffer.from('x'));
  const a = await same(t, repo, src);
  t.not(a.tree, first.tree);
  fs.chmodSync(path.join(src, 'usr/bin/tool'), 0o4755);
  const b = await same(t, repo, src);
  t.not(b.tree, a.tree);
  fs.unlinkSync(path.join(src, 'etc/link'));
  fs.symlinkSync('hosts', path.join(src, 'etc/link'));
  const c = await same(t, repo, src);
  t.not(c.tree, b.tree);
});

(isRoot ? test : test.skip)('tree cache: a changed owner shows (root)', async (t) => {
  const { repo, src, first } = await recorded(t);
  fs.lchownSync(path.join(src, 'etc/ssh/sshd_config'), 1234, 5678);
  const r = await same(t, repo, src);
  t.not(r.tree, first.tree);
  fs.lchownSync(path.join(src, 'etc/ssh'), 42, 42);
  const d = await same(t, repo, src);
  t.not(d.tree, r.tree);
});

test('tree cache: a new hardlink shows, and a hardlink group across directories is named as a full read names it', async (t) => {
  const { repo, src, first } = await recorded(t, (s) => fs.linkSync(path.join(s, 'usr/bin/tool'), path.join(s, 'etc/tool')));
  // Nothing changed: the whole tree, links and all, is taken.
  const again = await commitAt(repo, src, { tick: ++tick });
  t.is(again.tree, first.tree);
  t.is(again.cachedDirs, again.dirs);
  // A change beside one name of the group only: both names' directories are read again.
  fs.writeFileSync(path.join(src, 'etc/new'), 'new');
  const a = await same(t, repo, src);
  t.not(a.tree, first.tree);
  // A third name, in a directory that did not change otherwise (its link count and ctime do).
  fs.linkSync(path.join(src, 'usr/bin/tool'), path.join(src, 'zz/deep/tool'));
  const b = await same(t, repo, src);
  t.not(b.tree, a.tree);
  // An ancestor of one name renamed: the group's canonical name (its smallest path) changes.
  fs.renameSync(path.join(src, 'etc'), path.join(src, 'yy'));
  const c = await same(t, repo, src);
  t.not(c.tree, b.tree);
});

test('tree cache: a directory replaced by another with the same names, sizes and mtimes is read again', async (t) => {
  const { repo, src, first } = await recorded(t);
  const deep = path.join(src, 'zz/deep');
  const st = fs.statSync(path.join(deep, 'deeper/deepest'));
  fs.rmSync(deep, { recursive: true });
  writeTree(deep, { 'deeper': { 'deepest': 'BOTTOM' } });
  fs.utimesSync(path.join(deep, 'deeper/deepest'), st.atime, st.mtime);
  const r = await same(t, repo, src);
  t.not(r.tree, first.tree);
  t.is(await text(repo, 'zz/deep/deeper/deepest'), 'BOTTOM');
});

test('tree cache: added and removed entries show; excludes are part of what a record stands for', async (t) => {
  const { repo, src, first } = await recorded(t);
  fs.rmSync(path.join(src, 'usr/share/doc/b.txt'));
  const a = await same(t, repo, src);
  t.not(a.tree, first.tree);
  fs.mkdirSync(path.join(src, 'usr/share/doc/more'));
  const b = await same(t, repo, src);
  t.not(b.tree, a.tree);
  await sleep(2100);
  const excluded = await commitAt(repo, src, { tick: ++tick, exclude: ['usr/bin/'] });
  await commitAt(repo, src, { tick: ++tick, exclude: ['usr/bin/'] });
  const whole = await same(t, repo, src);
  t.not(whole.tree, excluded.tree);
  t.is(whole.tree, b.tree);
  const again = await commitAt(repo, src, { tick: ++tick, exclude: ['usr/bin/'] });
  t.is(again.tree, excluded.tree);
  t.is(again.cachedDirs, again.dirs);
});

test('tree cache: entries changed within the racy window are not recorded', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, SPEC);
  await commitAt(repo, src, { tick: ++tick });
  const again = await commitAt(repo, src, { tick: ++tick });
  t.is(again.cachedDirs, 0);
});

test('tree cache: after gc removed a recorded tree, it is not taken; fsck stays clean', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, SPEC);
  await sleep(2100);
  await commitAt(repo, src, { tick: ++tick, branch: 'tmp' });
  const taken = await commitAt(repo, src, { tick: ++tick, branch: 'tmp' });
  t.is(taken.cachedDirs, taken.dirs);
  await deleteRef(repo, 'branch', 'tmp', true);
  t.true((await gc(repo)).removed > 0);
  const r = await same(t, repo, src);
  t.is(r.cachedDirs, 0);
  t.is(r.tree, taken.tree);
  t.true((await fsck(repo)).ok);
});

test('tree cache: with an entry excluded in the middle of a directory, a change after it shows and a change to it does not', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, { 'etc': { 'a': 'first', 'b.log': 'left out', 'c': 'last' }, 'usr': { 'x': 'x' } });
  await sleep(2100);
  const exclude = ['*.log'];
  const base = await commitAt(repo, src, { tick: ++tick, exclude });
  const recordedAgain = await commitAt(repo, src, { tick: ++tick, exclude });
  t.is(recordedAgain.cachedDirs, recordedAgain.dirs);
  // The excluded file changes: its directory's signature does not cover it.
  fs.writeFileSync(path.join(src, 'etc/b.log'), 'left out, and longer now');
  await sleep(2100);
  const excludedChanged = await commitAt(repo, src, { tick: ++tick, exclude });
  t.is(excludedChanged.tree, base.tree);
  t.is(excludedChanged.cachedDirs, excludedChanged.dirs);
  // The file after it changes: its directory is read again, and the tree is the one a full read gives.
  fs.writeFileSync(path.join(src, 'etc/c'), 'last, changed');
  const changed = await commitAt(repo, src, { tick: ++tick, exclude });
  const cold = await commitAt(repo, src, { tick: ++tick, exclude, statCache: false });
  t.not(changed.tree, base.tree);
  t.is(changed.tree, cold.tree);
  t.true(changed.cachedDirs < changed.dirs);
});
