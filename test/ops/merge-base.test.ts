/**
 * Merge bases as git finds them (best common ancestors, criss-cross histories with two), and through derivations
 * where the commit graph has none (two clones of one base).
 */
import test from 'ava';
import path from 'node:path';
import type { Commit } from '../../src/model/commit.js';
import type { Oid } from '../../src/model/oid.js';
import { derive } from '../../src/ops/derive.js';
import { mergeBase, mergeBases } from '../../src/ops/merge-base.js';
import { writeCommits } from '../../src/ops/write-commit.js';
import type { Repository } from '../../src/store/repository.js';
import { readCommit } from '../../src/store/typed.js';
import { AUTHOR, TIME, commitAt, tmpRepo, writeTree } from '../helpers/repo.js';

/** A commit of `like`'s tree with these parents, at TIME + tick, on a branch of its own. */
async function mk(repo: Repository, like: Oid, parents: Oid[], tick: number, name: string): Promise<Oid> {
  const c = readCommit(repo.objects, like);
  const commit: Commit = { ...c, parents, time: TIME + tick, message: name, author: AUTHOR };
  const [oid] = await writeCommits(repo, [{ commit, ref: `refs/heads/t/${name}`, expectedOld: null, reflog: name }]);
  return oid!;
}

test('merge-base: a fork point; the branch tip when one contains the other; criss-cross gives two', async (t) => {
  const { repo, dir } = tmpRepo(t);
  writeTree(path.join(dir, 'src'), { a: 'a' });
  const root = (await commitAt(repo, path.join(dir, 'src'), { branch: 'main' })).id;
  const o = await mk(repo, root, [root], 1, 'o');
  const a1 = await mk(repo, root, [o], 2, 'a1');
  const b1 = await mk(repo, root, [o], 3, 'b1');
  t.deepEqual(mergeBases(repo, a1, b1), { bases: [o], via: 'history' });
  const a2 = await mk(repo, root, [a1], 4, 'a2');
  t.is(mergeBase(repo, a2, a1), a1);
  // Criss-cross: x merges a1 and b1, y merges b1 and a1: both a1 and b1 are best common ancestors of x and y.
  const x = await mk(repo, root, [a1, b1], 5, 'x');
  const y = await mk(repo, root, [b1, a1], 6, 'y');
  t.deepEqual(mergeBases(repo, x, y), { bases: [b1, a1], via: 'history' });
  t.is(mergeBase(repo, x, y), b1);
});

test('merge-base: two clones of one base meet at the base commit they were derived from; unrelated images meet nowhere', async (t) => {
  const { repo, dir } = tmpRepo(t);
  writeTree(path.join(dir, 'src'), { etc: { hostname: 'base\n' } });
  const base = (await commitAt(repo, path.join(dir, 'src'), { branch: 'base' })).id;
  const w1 = await derive(repo, { base: 'base', branch: 'web/1', edits: [{ op: 'set', path: 'etc/hostname', data: Buffer.from('w1\n') }], author: AUTHOR, time: TIME + 10 });
  const w2 = await derive(repo, { base: 'base', branch: 'web/2', edits: [{ op: 'set', path: 'etc/hostname', data: Buffer.from('w2\n') }], author: AUTHOR, time: TIME + 11 });
  // A second layer on web/2: still meets web/1 at base.
  const w2b = await derive(repo, { base: 'web/2', branch: 'web/2', edits: [{ op: 'set', path: 'etc/motd', data: Buffer.from('m\n') }], author: AUTHOR, time: TIME + 12 });
  t.deepEqual(mergeBases(repo, w1.id, w2b.id), { bases: [base], via: 'derivation' });
  t.is(mergeBase(repo, w1.id, w2.id), undefined);
  writeTree(path.join(dir, 'other'), { x: 'y' });
  const other = (await commitAt(repo, path.join(dir, 'other'), { branch: 'other' })).id;
  t.deepEqual(mergeBases(repo, w1.id, other), { bases: [], via: 'derivation' });
});
