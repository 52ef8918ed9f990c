/**
 * Revision lists as git's rev-list reads them: `B` (commits reachable from B), `^A` (minus those reachable from A),
 * `A..B` (= `^A B`), `A...B` (the symmetric difference: `A B` minus their merge bases' history). An empty side of a
 * range is HEAD. log walks the result.
 */
import { UsageError } from '../errors.js';
import type { Oid } from '../model/oid.js';
import { HEAD } from '../model/ref.js';
import type { Repository } from '../store/repository.js';
import { readCommit } from '../store/typed.js';
import { resolveRevision } from './resolve.js';

/** One revision argument as resolved: the commits it includes and excludes. */
export interface RevisionArgument {
  /** The argument as given. */
  arg: string;
  /** Each revision it names, with whether it is excluded (`^A`, the left of `A..B`). */
  revs: Array<{ rev: string; oid: Oid; exclude: boolean; ref?: string }>;
  /** `A...B`: the history both sides share is left out too. */
  symmetric?: boolean;
}

/** Revision arguments resolved into commits to include and to exclude, as `git rev-list` takes them. */
export interface RevisionRange {
  /** Commits whose history is listed. */
  include: Oid[];
  /** Commits whose history is left out. */
  exclude: Oid[];
  args: RevisionArgument[];
}

/** Splits `A..B` / `A...B` (undefined for anything else; a `:` ends a revision, so `..` after one is a path). */
export function splitRange(arg: string): { a: string; b: string; symmetric: boolean } | undefined {
  const m = /^([^:]*?)(\.\.\.?)([^.].*|)$/.exec(arg);
  if (!m) return undefined;
  return { a: m[1] || HEAD, b: m[3] || HEAD, symmetric: m[2] === '...' };
}

/** One argument: `REV`, `^REV`, `A..B` or `A...B`. Throws RevisionNotFoundError, AmbiguousRevisionError. */
export function resolveRevisionArgument(repo: Repository, arg: string): RevisionArgument {
  if (arg.startsWith('^') && arg.length > 1) {
    const r = resolveRevision(repo, arg.slice(1));
    return { arg, revs: [{ rev: arg.slice(1), oid: r.oid, exclude: true, ...(r.ref ? { ref: r.ref } : {}) }] };
  }
  const range = splitRange(arg);
  if (!range) {
    const r = resolveRevision(repo, arg);
    return { arg, revs: [{ rev: arg, oid: r.oid, exclude: false, ...(r.ref ? { ref: r.ref } : {}) }] };
  }
  const a = resolveRevision(repo, range.a);
  const b = resolveRevision(repo, range.b);
  // In git's order: B, then A (or ^A).
  const revs: RevisionArgument['revs'] = [
    { rev: range.b, oid: b.oid, exclude: false, ...(b.ref ? { ref: b.ref } : {}) },
    { rev: range.a, oid: a.oid, exclude: !range.symmetric, ...(a.ref ? { ref: a.ref } : {}) },
  ];
  if (range.symmetric) return { arg, revs, symmetric: true };
  return { arg, revs };
}

/**
 * Resolves revision arguments into the commits to walk from and the commits whose history is left out. No arguments
 * means HEAD. Throws UsageError for an empty argument. Locking: none.
 *
 * @example
 * const { include, exclude } = resolveRevisionRange(repo, ['v1..main', '^hotfix']);
 */
export function resolveRevisionRange(repo: Repository, args: string[]): RevisionRange {
  const parsed = (args.length ? args : [HEAD]).map((a) => {
    if (!a) throw new UsageError('an empty revision argument');
    return resolveRevisionArgument(repo, a);
  });
  const all = parsed.flatMap((p) => p.revs);
  const exclude = all.filter((r) => r.exclude).map((r) => r.oid);
  // `A...B` leaves out what A and B have in common: every common ancestor (their merge bases and all below).
  for (const p of parsed.filter((x) => x.symmetric)) {
    const ofB = reachableCommits(repo, [p.revs[0]!.oid]);
    for (const o of reachableCommits(repo, [p.revs[1]!.oid])) if (ofB.has(o)) exclude.push(o);
  }
  return { include: unique(all.filter((r) => !r.exclude).map((r) => r.oid)), exclude: unique(exclude), args: parsed };
}

function unique(oids: Oid[]): Oid[] {
  return [...new Set(oids)];
}

/** Every commit reachable from `oids` (themselves included): what a range's exclusions hide. Locking: none. */
export function reachableCommits(repo: Repository, oids: Oid[]): Set<Oid> {
  const seen = new Set<Oid>(oids);
  const stack = [...oids];
  while (stack.length) {
    for (const p of readCommit(repo.objects, stack.pop()!).parents) if (!seen.has(p)) { seen.add(p); stack.push(p); }
  }
  return seen;
}
