/**
 * Log entries: a commit as log, show and `log --derived-from` give it, the decorations they print, and the ancestry
 * helpers they share (kept apart from the log op, which compares images, so that derivations and merge-base can use
 * them without an import cycle through diff).
 */
import { type Commit, type SourceJson, sourceJson } from '../model/commit.js';
import type { Oid } from '../model/oid.js';
import { HEAD } from '../model/ref.js';
import type { Repository } from '../store/repository.js';
import { readCommit } from '../store/typed.js';
import type { DiffEntry } from './diff-entry.js';

/** One commit as log, show and whatchanged give it (the `--json` shape of each). */
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
  /** log and show: the branch HEAD points at (`refs/heads/main`) when that branch is at this commit (`HEAD -> main`). */
  head?: string;
  /**
   * Derived commits: the commits the derivation record names as its base that are not also parents. A derived branch
   * starts with no parent, so this is the only link to the image it was made from.
   */
  derivedFrom?: Oid[];
  /**
   * log --graph: the edges the graph draws, to commits the log selects: the parents (under path limiting or filters,
   * each rewritten to the nearest selected ancestor, as git does), then the derivation bases (`derivedFrom`) selected.
   * With -n, an edge may lead to a commit cut off below the last one shown (its line runs to the end, as git's).
   */
  graphParents?: Oid[];
  /** log --follow, whatchanged: the followed path's name in this commit (it differs before a rename). */
  path?: string;
  /**
   * log -p / --stat / --name-status, whatchanged: what changed against the first parent (everything added for a
   * root commit; merges only with --first-parent, as git), limited to the log's paths when it has any.
   */
  changes?: DiffEntry[];
  /** log -p: a patch per changed file, by path (as `diff -p --json`). */
  patches?: Record<string, string>;
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
  for (const { ref, oid } of repo.refs.list('')) {
    const list = m.get(oid) ?? [];
    list.push(ref);
    m.set(oid, list);
  }
  return m;
}

/**
 * Where a symbolic HEAD points: its branch and that branch's commit (git's `HEAD -> main` decoration), or undefined
 * when HEAD is detached (refsByOid lists it then) or its branch is unborn.
 */
export function headBranch(repo: Repository): { ref: string; oid: Oid } | undefined {
  if (!repo.refs.read(HEAD)?.symref) return undefined;
  const r = repo.refs.resolve(HEAD);
  return r?.oid ? { ref: r.ref, oid: r.oid } : undefined;
}

/** A commit's fields as a log entry (no decorations). */
export function toLogEntry(id: Oid, c: Commit): LogEntry {
  return {
    id, parents: c.parents, author: c.author, date: isoDate(c.time, c.tzOffset), time: c.time, message: c.message,
    labels: Object.fromEntries(c.labels), root: c.root, rootKind: c.rootKind, source: sourceJson(c.source),
  };
}

/** `oid` and all its ancestors. Locking: none. */
export function history(repo: Repository, oid: Oid): Set<Oid> {
  const seen = new Set<Oid>([oid]);
  const stack = [oid];
  while (stack.length) {
    for (const p of readCommit(repo.objects, stack.pop()!).parents) if (!seen.has(p)) { seen.add(p); stack.push(p); }
  }
  return seen;
}
