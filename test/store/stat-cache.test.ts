/**
 * The stat cache's own file (`.viva/cache.mdb`): commits record and find their files there, nothing of it is in
 * `data.mdb`, a damaged cache costs one full read and nothing else, a reader creates none, and the cache an earlier
 * version kept inside `data.mdb` is ignored and dropped by gc.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { gc } from '../../src/ops/gc.js';
import { fsck } from '../../src/ops/fsck.js';
import { Repository } from '../../src/store/repository.js';
import { STAT_CACHE_FILE } from '../../src/store/stat-cache.js';
import type { CommitResult } from '../../src/ops/commit.js';
import { commitAt, sleep, tmpRepo, writeTree, type Spec } from '../helpers/repo.js';
import { lmdb } from '../helpers/lmdb.js';

const SPEC: Spec = { 'a': 'alpha\n', 'b': { 'c': 'gamma\n', 'd': 'delta'.repeat(100) }, 'e': 'epsilon\n' };

/** The names of the databases in a repository's data.mdb. */
const databases = (repo: Repository) => [...lmdb(repo).env.getKeys({})].map(String);

/** The repository in `dir` opened again for writing (as the next command would), closed when the test ends. */
function reopen(t: ExecutionContext, dir: string): Repository {
  const repo = Repository.open(path.join(dir, 'repo'), 'write');
  t.teardown(() => repo.close());
  return repo;
}

/** A repository with one commit of a source tree, closed: the source, the commit and the cache's path. */
async function committedAndClosed(t: ExecutionContext): Promise<{ dir: string; src: string; first: CommitResult; file: string }> {
  const { repo, dir } = tmpRepo(t);
  const src = await source(dir);
  const first = await commitAt(repo, src, { tick: 1 });
  await repo.close();
  return { dir, src, first, file: path.join(dir, 'repo', '.viva', STAT_CACHE_FILE) };
}

/** A source tree older than the racy window (files changed within 2 s of a commit are not recorded). */
async function source(dir: string): Promise<string> {
  const src = path.join(dir, 'src');
  writeTree(src, SPEC);
  await sleep(2100);
  return src;
}

test('stat cache: kept in cache.mdb beside data.mdb, not in data.mdb; a re-commit reads nothing', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = await source(dir);
  const first = await commitAt(repo, src, { tick: 1 });
  t.is(first.cachedFiles, 0);
  t.true(fs.statSync(path.join(repo.dataDir, STAT_CACHE_FILE)).size > 0);
  t.false(databases(repo).includes('statcache'));
  const second = await commitAt(repo, src, { tick: 2 });
  t.is(second.cachedFiles, 4);
  t.is(second.tree, first.tree);
  // Another handle (another process, as the next command would be) finds the records too.
  await repo.close();
  const again = reopen(t, dir);
  const third = await commitAt(again, src, { tick: 3 });
  t.is(third.cachedFiles, 4);
  t.is(third.tree, first.tree);
});

test('stat cache: a damaged cache.mdb is replaced; the commit reads every file and is the same', async (t) => {
  const { dir, src, first, file } = await committedAndClosed(t);
  fs.writeFileSync(file, Buffer.alloc(20000, 0xa5));
  const again = reopen(t, dir);
  const second = await commitAt(again, src, { tick: 2 });
  t.is(second.cachedFiles, 0);
  t.is(second.tree, first.tree);
  const third = await commitAt(again, src, { tick: 3 });
  t.is(third.cachedFiles, 4);
  t.true((await fsck(again)).ok);
});

test('stat cache: damage inside cache.mdb (its header intact) fails nothing: not used, gc runs, the next handle makes a new one', async (t) => {
  const { dir, src, first, file } = await committedAndClosed(t);
  const size = fs.statSync(file).size;
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.alloc(size - 8192, 0), 0, size - 8192, 8192);
  fs.closeSync(fd);
  const again = reopen(t, dir);
  await gc(again);
  const second = await commitAt(again, src, { tick: 2 });
  t.is(second.cachedFiles, 0);
  t.is(second.tree, first.tree);
  await again.close();
  const third = reopen(t, dir);
  t.is((await commitAt(third, src, { tick: 3 })).cachedFiles, 0);
  t.is((await commitAt(third, src, { tick: 4 })).cachedFiles, 4);
  t.true((await fsck(third)).ok);
});

test('stat cache: a repository opened for reading creates no cache file and finds no records', async (t) => {
  const { repo, dir } = tmpRepo(t);
  await repo.close();
  const reader = Repository.open(path.join(dir, 'repo'), 'read');
  t.teardown(() => reader.close());
  t.is(reader.statCache.read('dir:/nowhere', 'x'), undefined);
  t.is(reader.statCache.readTree('dir:/nowhere', Buffer.alloc(32)), undefined);
  t.false(fs.existsSync(path.join(dir, 'repo', '.viva', STAT_CACHE_FILE)));
});

test('stat cache: the cache an earlier version kept in data.mdb is not read, and gc drops it', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = await source(dir);
  const first = await commitAt(repo, src, { tick: 1 });
  // The database an earlier version wrote, with a record that would name a blob if it were read.
  const store = lmdb(repo);
  const legacy = store.env.openDB<Buffer, Buffer>({ name: 'statcache', keyEncoding: 'binary', encoding: 'binary' });
  await store.env.transactionSync(() => legacy.putSync(Buffer.alloc(16, 1), Buffer.alloc(48, 2)));
  t.true(databases(repo).includes('statcache'));
  fs.rmSync(path.join(repo.dataDir, STAT_CACHE_FILE));
  fs.rmSync(path.join(repo.dataDir, `${STAT_CACHE_FILE}-lock`), { force: true });
  await repo.close();
  const again = reopen(t, dir);
  const second = await commitAt(again, src, { tick: 2 });
  t.is(second.cachedFiles, 0, 'a record of data.mdb was read');
  t.is(second.tree, first.tree);
  await gc(again);
  t.false(databases(again).includes('statcache'));
  const third = await commitAt(again, src, { tick: 3 });
  t.is(third.cachedFiles, 4);
  t.true((await fsck(again)).ok);
});
