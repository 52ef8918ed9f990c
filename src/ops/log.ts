/** The log op: commits reachable from a revision, newest first (by time, then id), as plain data. */
import { type Commit, type SourceJson, sourceJson } from '../model/commit.js';
import type { Oid } from '../model/oid.js';
import type { Repository } from '../store/repository.js';
import { readCommit } from '../store/typed.js';
import { reachableCommits, resolveRevisionRange } from './rev-list.js';

export interface LogEntry {
  id: Oid;
  parents: Oid[];
  author: string;
  /** ISO 8601 with the commit's timezone offset. */
  date: string;
  time: number;
  message: string;
  labels: Record<string, string>;
  root: Oid;
  rootKind: string;
  source: SourceJson;
  /** log and show: the refs (full names) that point at this commit, for decorations. */
  refs?: string[];
}

export interface LogOptions {
  rev?: string;
  /** Revision arguments, as rev-list.ts reads them (`B`, `^A`, `A..B`, `A...B`); replace `rev` when given. */
  revs?: string[];
  maxCount?: number;
  /** Follow only first parents. */
  firstParent?: boolean;
}

/**
 * `2024-01-31T12:00:00+01:00`. A time no Date can hold (a commit written before encodeCommit checked its range) shows
 * as `@SECONDS` so that log and show of such a branch still work.
 */
export function isoDate(time: number, tzOffset: number): string {
  const d = new Date((time + tzOffset * 60) * 1000);
  if (Number.isNaN(d.getTime())) return `@${time}`;
  const sign = tzOffset >= 0 ? '+' : '-';
  const a = Math.abs(tzOffset);
  return `${d.toISOString().slice(0, 19)}${sign}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

/** Every ref that points directly at a commit (not HEAD, which is symbolic), grouped by the commit's id, in ref order. */
export function refsByOid(repo: Repository): Map<Oid, string[]> {
  const m = new Map<Oid, string[]>();
  for (const { key, value } of repo.store.refs.getRange({})) {
    const oid = (value as { oid?: string }).oid;
    if (!oid) continue;
    const list = m.get(oid) ?? [];
    list.push(key as string);
    m.set(oid, list);
  }
  return m;
}

export function toLogEntry(id: Oid, c: Commit): LogEntry {
  return {
    id, parents: c.parents, author: c.author, date: isoDate(c.time, c.tzOffset), time: c.time, message: c.message,
    labels: Object.fromEntries(c.labels), root: c.root, rootKind: c.rootKind, source: sourceJson(c.source),
  };
}

/**
 * Walks history from `rev` (default HEAD), or from the revision arguments `revs` (`A..B`, `^A`, ...). Locking: none.
 * @example const entries = log(repo, { rev: 'debian/12/base', maxCount: 10 });
 */
export function log(repo: Repository, options: LogOptions = {}): LogEntry[] {
  const range = resolveRevisionRange(repo, options.revs ?? [options.rev ?? 'HEAD']);
  const decorations = refsByOid(repo);
  const out: LogEntry[] = [];
  // Commits reachable from an exclusion (`^A`, the A of `A..B`) are never listed nor walked through.
  const seen = range.exclude.length ? reachableCommits(repo, range.exclude) : new Set<Oid>();
  const queue: Array<{ oid: Oid; c: Commit }> = [];
  for (const oid of range.include) if (!seen.has(oid)) { seen.add(oid); queue.push({ oid, c: readCommit(repo.store, oid) }); }
  const max = options.maxCount ?? Infinity;
  while (queue.length && out.length < max) {
    queue.sort((a, b) => b.c.time - a.c.time || (a.oid < b.oid ? -1 : 1));
    const { oid, c } = queue.shift()!;
    out.push({ ...toLogEntry(oid, c), refs: decorations.get(oid) ?? [] });
    const parents = options.firstParent ? c.parents.slice(0, 1) : c.parents;
    for (const p of parents) {
      if (seen.has(p)) continue;
      seen.add(p);
      queue.push({ oid: p, c: readCommit(repo.store, p) });
    }
  }
  return out;
}

/** `oid` and all its ancestors. Locking: none. */
export function history(repo: Repository, oid: Oid): Set<Oid> {
  const seen = new Set<Oid>([oid]);
  const stack = [oid];
  while (stack.length) {
    for (const p of readCommit(repo.store, stack.pop()!).parents) if (!seen.has(p)) { seen.add(p); stack.push(p); }
  }
  return seen;
}

