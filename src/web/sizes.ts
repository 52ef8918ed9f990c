/**
 * Logical image sizes for listings (the namespace page): the sum of the file sizes below a tree, memoized by tree id.
 * Images share most of their subtrees, so a thousand branches of one family cost about one walk plus their
 * differences; only tree manifests are read, never content. Hardlinked files count once per name here (an
 * apparent size, as `du --apparent-size -l`): `viva stats` gives the exact figures.
 */
import type { Oid } from '../model/oid.js';
import type { Commit } from '../model/commit.js';
import type { Repository } from '../store/repository.js';
import { commitTree, readTree } from '../store/typed.js';

/** Tree ids whose size is known, per repository handle (bounded: a cache, not an index). */
const MAX_CACHED_TREES = 1_000_000;
const cache = new WeakMap<Repository, Map<Oid, number>>();

/** The apparent size of the files below tree `oid` (memoized). */
export function treeSize(repo: Repository, oid: Oid): number {
  let m = cache.get(repo);
  if (!m) { m = new Map(); cache.set(repo, m); }
  const memo = m;
  const visit = (t: Oid): number => {
    const known = memo.get(t);
    if (known !== undefined) return known;
    let n = 0;
    for (const e of readTree(repo.objects, t).entries) {
      if (e.type === 'file') n += e.size;
      else if (e.type === 'dir' && e.oid) n += visit(e.oid);
    }
    if (memo.size >= MAX_CACHED_TREES) memo.clear();
    memo.set(t, n);
    return n;
  };
  return visit(oid);
}

/** The apparent size of a commit's image (for a disk commit: the files of its file systems). */
export function imageSize(repo: Repository, c: Commit): number {
  return treeSize(repo, commitTree(repo.objects, c));
}
