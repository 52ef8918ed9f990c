/**
 * Merge bases, as git's merge-base finds them: the best common ancestors of two commits (common ancestors that are
 * not ancestors of another common ancestor). Images add a second kind of ancestry: a derived commit's derivation
 * names the commit it was made from, which is not a parent (a clone starts a branch of its own). Where the commit
 * graph has no common ancestor, the common derivation ancestry is searched: two clones of one base image meet there.
 */
import type { Oid } from '../model/oid.js';
import type { Repository } from '../store/repository.js';
import { readCommit } from '../store/typed.js';
import { readDerivation } from './derivations.js';

/** The merge bases of two commits ({@link mergeBases}) and how they were found. */
export interface MergeBases {
  /** The best common ancestors, newest first (by commit time, then id). Empty: unrelated. */
  bases: Oid[];
  /** `history`: found through parents; `derivation`: only through derivation bases. */
  via: 'history' | 'derivation';
}

/** The commits `oid` comes from: its parents, and with `derivations` the commits its derivation was made from. */
function sources(repo: Repository, oid: Oid, derivations: boolean): Oid[] {
  const c = readCommit(repo.objects, oid);
  if (!derivations) return c.parents;
  const dv = readDerivation(oid, c);
  const from = (dv?.bases ?? []).map((b) => b.commit).filter((b) => repo.objects.hasObject('commit', b));
  return [...c.parents, ...from];
}

/** `oid` and everything it comes from. */
function ancestry(repo: Repository, oid: Oid, derivations: boolean): Set<Oid> {
  const seen = new Set<Oid>([oid]);
  const stack = [oid];
  while (stack.length) {
    for (const p of sources(repo, stack.pop()!, derivations)) if (!seen.has(p)) { seen.add(p); stack.push(p); }
  }
  return seen;
}

function best(repo: Repository, a: Oid, b: Oid, derivations: boolean): Oid[] {
  const ofA = ancestry(repo, a, derivations);
  const common = [...ancestry(repo, b, derivations)].filter((o) => ofA.has(o));
  // A common ancestor reachable from another common ancestor is not a best one.
  const redundant = new Set<Oid>();
  const commonSet = new Set(common);
  for (const c of common) {
    if (redundant.has(c)) continue;
    const stack = sources(repo, c, derivations);
    while (stack.length) {
      const o = stack.pop()!;
      if (redundant.has(o)) continue;
      redundant.add(o);
      stack.push(...sources(repo, o, derivations));
    }
  }
  const out = [...commonSet].filter((o) => !redundant.has(o));
  const time = new Map(out.map((o) => [o, readCommit(repo.objects, o).time]));
  return out.sort((x, y) => time.get(y)! - time.get(x)! || (x < y ? -1 : 1));
}

/**
 * The merge bases of commits `a` and `b`: through the commit graph, else through derivations. Locking: none.
 *
 * @example
 * mergeBases(repo, ours, theirs).bases[0]; // the base a three-way merge compares with
 */
export function mergeBases(repo: Repository, a: Oid, b: Oid): MergeBases {
  const bases = best(repo, a, b, false);
  if (bases.length) return { bases, via: 'history' };
  return { bases: best(repo, a, b, true), via: 'derivation' };
}

/** The newest best common ancestor of `a` and `b` in the commit graph, or undefined when their histories never meet. */
export function mergeBase(repo: Repository, a: Oid, b: Oid): Oid | undefined {
  return best(repo, a, b, false)[0];
}
