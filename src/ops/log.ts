/**
 * The log op: commits reachable from one or more revisions, newest first (by time, then id), as plain data; filtered
 * by message, author, date and image path as git log filters them, with what each commit changed on request.
 *
 * History is walked on the commit graph alone. Path limiting compares the entry at each path between a commit and its
 * parents by walking their trees along the path only (a subtree with the same id on both sides ends the comparison);
 * file content is never read, except for `-p` patches of the commits shown.
 */
import { RevisionNotFoundError, UsageError } from '../errors.js';
import type { Commit } from '../model/commit.js';
import { decodeDerivation } from '../model/derivation.js';
import type { Oid } from '../model/oid.js';
import { HEAD } from '../model/ref.js';
import { type TreeEntry, findEntry } from '../model/tree.js';
import type { Repository } from '../store/repository.js';
import { commitTree, readCommit, readTree, tryReadPath } from '../store/typed.js';
import { splitPath } from '../tree/mutable-tree.js';
import { type DiffEntry, type PatchOptions, diff, patchFor } from './diff.js';
import { type LogEntry, headBranch, refsByOid, toLogEntry } from './log-entry.js';
import { normalizeImagePath, resolveRevision } from './resolve.js';
import { reachableCommits, resolveRevisionRange, splitRange } from './rev-list.js';

export { type LogEntry, headBranch, history, isoDate, refsByOid, toLogEntry } from './log-entry.js';

/**
 * The options of {@link log}: where to start, which commits to keep (paths, authors, dates, grep) and in what order.
 */
export interface LogOptions {
  /** Where to start (default HEAD). */
  rev?: string;
  /** Several starting points (git log A B): the union of their histories. Replaces `rev` when given. */
  revs?: string[];
  /** Start from every ref (branches, tags, remote-tracking branches) and HEAD, as `git log --all`. */
  all?: boolean;
  maxCount?: number;
  /** Follow only first parents (and diff merges against their first parent). */
  firstParent?: boolean;
  /**
   * Image paths: only commits that changed what is at one of them (the entry itself or anything below it), with git's
   * default history simplification (a merge that kept a parent's entry follows that parent alone).
   */
  paths?: string[];
  /** Follow the one path of `paths` across renames (as diff detects them: the same blob id). */
  follow?: boolean;
  /** Messages matching any of these patterns (JavaScript regular expressions, close to `git log -E`), per line. */
  grep?: string[];
  /** Authors ("Name <email>") matching any of these patterns. */
  author?: string[];
  /** Every --grep and --author pattern must match, not any (git's --all-match). */
  allMatch?: boolean;
  /** Commits whose message matches no --grep pattern instead. */
  invertGrep?: boolean;
  /** Patterns match regardless of case. */
  ignoreCase?: boolean;
  /** Patterns are fixed strings, not regular expressions. */
  fixedStrings?: boolean;
  /** Commits made at or after this time (seconds since the epoch; see parseApproxDate). */
  since?: number;
  /** Commits made at or before this time. */
  until?: number;
  /**
   * Order for a graph, and `graphParents` on each entry: no parent before all its children, and one line of history
   * at a time (git's --topo-order, which --graph implies).
   */
  graph?: boolean;
  /** Fill `changes` (what each commit changed against its first parent). */
  changes?: boolean;
  /**
   * Diff merges against their first parent (default: only with firstParent; otherwise merges get no `changes`, as
   * git log -p shows none for them).
   */
  diffMerges?: boolean;
  /**
   * git's --diff-filter: status letters (A, D, M, T, R) of the changes to keep; lower case letters exclude. Commits
   * left with no change are not shown.
   */
  diffFilter?: string;
}

/** A time unit of relative dates (`2 weeks ago`), in seconds; months and years count calendar months. */
const UNIT_SECONDS: Record<string, number> = { second: 1, sec: 1, minute: 60, min: 60, hour: 3600, day: 86400, week: 604800 };
const NUMBER_WORDS: Record<string, number> = { a: 1, an: 1, one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10 };

/**
 * A date as `--since` / `--until` take it, in seconds since the epoch. Accepts `@SECONDS`; ISO 8601 dates
 * (`2024-01-31`, `2024-01-31 12:00`, `2024-01-31T12:00:00Z`, `…+01:00`; without a zone in local time, a date alone at
 * its midnight); relative dates `N UNIT(s) ago` with UNIT second, minute, hour, day, week, month or year, also written
 * with dots (`2.weeks.ago`); `now`, `today` (midnight), `yesterday` (24 hours ago). Throws UsageError for anything else
 * (git guesses at any text; viva refuses what it cannot read).
 *
 * @example parseApproxDate('2.weeks.ago') // now - 14 days
 */
export function parseApproxDate(text: string, now = Math.floor(Date.now() / 1000)): number {
  const s = text.trim().toLowerCase();
  if (/^@-?\d+$/.test(s)) return Number(s.slice(1));
  if (s === 'now') return now;
  if (s === 'yesterday') return now - 86400;
  if (s === 'today') {
    const d = new Date(now * 1000);
    return Math.floor(new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime() / 1000);
  }
  const rel = /^(\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten)[.\s_]*(second|sec|minute|min|hour|day|week|month|year)s?[.\s_]+ago$/.exec(s);
  if (rel) {
    const n = /^\d+$/.test(rel[1]!) ? Number(rel[1]) : NUMBER_WORDS[rel[1]!]!;
    const unit = rel[2]!;
    if (unit === 'month' || unit === 'year') {
      const d = new Date(now * 1000);
      d.setMonth(d.getMonth() - n * (unit === 'year' ? 12 : 1));
      return Math.floor(d.getTime() / 1000);
    }
    return now - n * UNIT_SECONDS[unit]!;
  }
  const iso = /^(\d{4})-(\d\d)-(\d\d)(?:[ t](\d\d):(\d\d)(?::(\d\d))?)?\s*(z|[+-]\d\d:?\d\d)?$/.exec(s);
  if (iso) {
    const [y, mo, d, h, mi, sec] = iso.slice(1, 7).map((x) => Number(x ?? 0)) as [number, number, number, number, number, number];
    const zone = iso[7];
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) throw new UsageError(`invalid date '${text}'`);
    if (zone === undefined) return Math.floor(new Date(y, mo - 1, d, h, mi, sec).getTime() / 1000);
    const utc = Date.UTC(y, mo - 1, d, h, mi, sec) / 1000;
    if (zone === 'z') return utc;
    const z = zone.replace(':', '');
    const offset = (Number(z.slice(1, 3)) * 60 + Number(z.slice(3, 5))) * 60;
    return z[0] === '+' ? utc - offset : utc + offset;
  }
  throw new UsageError(`invalid date '${text}' (use an ISO date such as 2024-01-31, @SECONDS, or '2 weeks ago')`);
}

/** A pattern of --grep / --author as a regular expression; throws UsageError for an invalid one. */
function compilePattern(p: string, options: LogOptions): RegExp {
  const source = options.fixedStrings ? p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : p;
  try {
    return new RegExp(source, `m${options.ignoreCase ? 'i' : ''}`);
  } catch (e) {
    throw new UsageError(`invalid regular expression '${p}': ${(e as Error).message}`);
  }
}

/** The starting commits: `revs`, else `rev`, else HEAD; with `all`, every ref and HEAD besides. */
function startPoints(repo: Repository, options: LogOptions, commits: Map<Oid, Commit>): { include: Oid[]; exclude: Oid[] } {
  const out: Oid[] = [];
  const revs = options.revs?.length ? options.revs : options.all ? [] : [options.rev ?? HEAD];
  // Ranges and exclusions (A..B, A...B, ^A) as rev-list.ts reads them; a plain revision through resolveStart, for
  // its hint when the word is a path of the image.
  const plain = revs.filter((r) => !r.startsWith('^') && !splitRange(r));
  for (const r of plain) {
    const { oid, commit } = resolveStart(repo, r);
    commits.set(oid, commit);
    out.push(oid);
  }
  const ranges = revs.filter((r) => !plain.includes(r));
  const range = ranges.length ? resolveRevisionRange(repo, ranges) : undefined;
  if (range) out.push(...range.include);
  if (options.all) {
    for (const oids of refsByOid(repo).keys()) out.push(oids);
    const h = headBranch(repo);
    if (h) out.push(h.oid);
  }
  return { include: [...new Set(out)], exclude: range?.exclude ?? [] };
}

/**
 * resolveRevision, with git's hint when an unknown revision is a path of HEAD's image (`viva log etc/hostname`):
 * paths go after `--`.
 */
function resolveStart(repo: Repository, rev: string): { oid: Oid; commit: Commit } {
  try {
    return resolveRevision(repo, rev);
  } catch (e) {
    if (!(e instanceof RevisionNotFoundError) || e.data.rev !== rev || rev.includes(':')) throw e;
    let isPath = false;
    try {
      const head = resolveRevision(repo, HEAD);
      const p = normalizeImagePath(rev);
      isPath = p.length > 0 && tryReadPath(repo.objects, commitTree(repo.objects, head.commit), p) !== undefined;
    } catch { /* no HEAD, or not a path: the error as it was */ }
    if (!isPath) throw e;
    throw new RevisionNotFoundError(rev, undefined, `unknown revision '${rev}': it is a path in HEAD's image; paths go after '--' (viva log -- ${rev})`);
  }
}

/** An entry's identity for path limiting: every field a diff compares (name aside: it is the same at one path). */
function entryKey(e: TreeEntry | undefined): string {
  if (!e) return '-';
  return JSON.stringify({ ...e, name: undefined }, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') return Buffer.from((v as { data: number[] }).data).toString('hex');
    if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
    return v;
  });
}

/**
 * Looks up the entry at image paths in commits' trees, reading only the directories along each path, and each
 * directory at most once per path (unchanged subtrees are shared between commits, so a long history reads little).
 */
class PathLookup {
  private readonly byTree = new Map<string, TreeEntry | undefined>();
  private readonly byCommit = new Map<string, string>();

  constructor(private readonly repo: Repository) {}

  /** The identity of what `c` holds at `path` ('-' when nothing), memoized per commit and path. */
  key(oid: Oid, c: Commit, path: Buffer): string {
    const k = `${oid}\0${path.toString('latin1')}`;
    let v = this.byCommit.get(k);
    if (v === undefined) {
      v = entryKey(this.entry(commitTree(this.repo.objects, c), splitPath(path), 0));
      this.byCommit.set(k, v);
    }
    return v;
  }

  private entry(tree: Oid, parts: Buffer[], i: number): TreeEntry | undefined {
    const k = `${tree}\0${Buffer.concat(parts.slice(i).flatMap((p) => [p, Buffer.from('/')])).toString('latin1')}`;
    if (this.byTree.has(k)) return this.byTree.get(k);
    const e = findEntry(readTree(this.repo.objects, tree), parts[i]!);
    const out = i === parts.length - 1 || !e ? e : e.type === 'dir' ? this.entry(e.oid!, parts, i + 1) : undefined;
    this.byTree.set(k, out);
    return out;
  }
}

/** The derivation bases of `c` that are not parents (a derived branch's first commit has none). */
function derivationBases(c: Commit): Oid[] {
  if (!c.derivation) return [];
  try {
    return [...new Set(decodeDerivation(c.derivation).bases.map((b) => b.commit))].filter((b) => !c.parents.includes(b));
  } catch {
    // A damaged record is fsck's and show --derivation's to report; log shows the commit without the edge.
    return [];
  }
}

/** A result path's exact bytes. */
function pathBytes(text: string, hex?: string): Buffer {
  return hex ? Buffer.from(hex, 'hex') : Buffer.from(text, 'utf8');
}

/** What one walk step decided about a commit. */
interface Visited {
  c: Commit;
  /** Passes the path limit (changed a path, or no paths given). */
  touched: boolean;
  /** The parents the walk went on to (history simplification keeps one for a commit that left the path as it was). */
  next: Oid[];
  /** --follow: the path's name in this commit. */
  path?: Buffer;
  /** --follow: the rename found in this commit. */
  rename?: DiffEntry;
}

/**
 * Walks history from `rev` (default HEAD), `revs`, or every ref (`all`), newest first, and returns the commits that
 * pass the filters. Locking: none. Throws RevisionNotFoundError, and UsageError for a bad pattern, date or option.
 *
 * @example const entries = log(repo, { rev: 'debian/12/base', maxCount: 10 });
 * @example const touched = log(repo, { all: true, paths: ['etc/ssh/sshd_config'], grep: ['ssh'], ignoreCase: true });
 */
export function log(repo: Repository, options: LogOptions = {}): LogEntry[] {
  const store = repo.objects;
  const limits = (options.paths ?? []).map((p) => normalizeImagePath(p));
  const limited = limits.length > 0 && limits.every((l) => l.length > 0);
  if (options.follow && (limits.length !== 1 || !limited)) throw new UsageError('--follow requires exactly one path (below the image root)');
  const greps = (options.grep ?? []).map((p) => compilePattern(p, options));
  const authors = (options.author ?? []).map((p) => compilePattern(p, options));
  if (options.diffFilter !== undefined && !/^[ADMTRadmtr]*$/.test(options.diffFilter)) throw new UsageError(`invalid --diff-filter '${options.diffFilter}' (letters A, D, M, T, R; lower case excludes)`);
  const wantChanges = options.changes || options.diffFilter !== undefined;
  const lookup = new PathLookup(repo);
  const decorations = refsByOid(repo);
  const head = headBranch(repo);
  const max = options.maxCount ?? Infinity;

  const commits = new Map<Oid, Commit>();
  const commit = (oid: Oid): Commit => {
    let c = commits.get(oid);
    if (!c) { c = readCommit(store, oid); commits.set(oid, c); }
    return c;
  };
  // Newest first, then by id; kept sorted by insertion (the frontier of a walk is small).
  const queue: Oid[] = [];
  const push = (oid: Oid) => {
    const t = commit(oid).time;
    let lo = 0;
    let hi = queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const q = queue[mid]!;
      const qt = commit(q).time;
      if (qt > t || (qt === t && q < oid)) lo = mid + 1; else hi = mid;
    }
    queue.splice(lo, 0, oid);
  };
  const start = startPoints(repo, options, commits);
  // Commits reachable from an exclusion (`^A`, the A of `A..B`) are never listed nor walked through.
  const seen = new Set<Oid>(start.exclude.length ? reachableCommits(repo, start.exclude) : []);
  for (const s of start.include) if (!seen.has(s)) { seen.add(s); push(s); }

  const visited = new Map<Oid, Visited>();
  const shown: Array<{ oid: Oid; changes?: DiffEntry[] }> = [];
  let followPath = options.follow ? limits[0] : undefined;
  // Without a graph the walk can stop at the count; a graph's order needs the whole set first.
  while (queue.length && (options.graph || shown.length < max)) {
    const oid = queue.shift()!;
    const c = commit(oid);
    const parents = options.firstParent ? c.parents.slice(0, 1) : c.parents;
    const v: Visited = { c, touched: true, next: parents };
    // A derived branch's first commit has no parent: it is compared with the base it was derived from (not walked),
    // when this repository has that commit (a partial or pruned history may not).
    const against = parents.length ? parents : derivationBases(c).filter((b) => store.hasObject('commit', b)).slice(0, 1);
    if (limited) {
      const paths = followPath ? [followPath] : limits;
      const keys = paths.map((p) => lookup.key(oid, c, p));
      const same = (p: Oid) => paths.every((path, i) => lookup.key(p, commit(p), path) === keys[i]);
      if (against.length === 0) v.touched = keys.some((k) => k !== '-');
      else {
        const p = against.find(same);
        if (p !== undefined) { v.touched = false; v.next = parents.includes(p) ? [p] : []; }
      }
      const fp = followPath;
      if (fp) {
        v.path = fp;
        // Added here: was it renamed from somewhere else? (whole-tree diff of this one commit, trees only)
        const first = against[0];
        if (v.touched && first !== undefined && keys[0] !== '-' && lookup.key(first, commit(first), fp) === '-') {
          const r = diff(repo, { a: first, b: oid }).entries.find((e) => e.status === 'R' && pathBytes(e.path, e.pathHex).equals(fp));
          if (r) { v.rename = r; followPath = pathBytes(r.from ?? '', r.fromHex); }
        }
      }
    }
    visited.set(oid, v);
    for (const p of v.next) if (!seen.has(p)) { seen.add(p); push(p); }
    if (!v.touched || !passesFilters(c, options, greps, authors)) continue;
    let changes: DiffEntry[] | undefined;
    if (wantChanges) {
      changes = changesOf(repo, oid, c, against[0], options, limited ? (v.path ? [v.path] : limits) : [], v.rename);
      if (options.diffFilter !== undefined) {
        const kept = filterChanges(changes ?? [], options.diffFilter);
        if (kept.length === 0) continue;
        if (options.changes) changes = kept;
      }
      if (!options.changes) changes = undefined;
    }
    shown.push({ oid, ...(changes ? { changes } : {}) });
  }

  let order = shown;
  let graphParents: Map<Oid, Oid[]> | undefined;
  if (options.graph) {
    const ids = new Set(shown.map((s) => s.oid));
    const rewritten = rewriteParents(visited, ids);
    graphParents = new Map(shown.map(({ oid }) => [oid, [...new Set([...rewritten(oid), ...derivationBases(commit(oid)).filter((b) => ids.has(b))])]]));
    // Cut after ordering; edges to commits cut off stay (their lines run on to the end of the graph, as git's do).
    order = topoOrder(shown, graphParents).slice(0, max);
  }
  return order.map(({ oid, changes }) => {
    const c = commit(oid);
    const bases = derivationBases(c);
    const v = visited.get(oid)!;
    return {
      ...toLogEntry(oid, c), refs: decorations.get(oid) ?? [],
      ...(head?.oid === oid ? { head: head.ref } : {}),
      ...(bases.length ? { derivedFrom: bases } : {}),
      ...(graphParents ? { graphParents: graphParents.get(oid)! } : {}),
      ...(v.path ? { path: v.path.toString('utf8') } : {}),
      ...(changes ? { changes } : {}),
    };
  });
}

/** --grep (any pattern, or all with allMatch; inverted with invertGrep), --author, --since, --until. */
function passesFilters(c: Commit, o: LogOptions, greps: RegExp[], authors: RegExp[]): boolean {
  if (o.since !== undefined && c.time < o.since) return false;
  if (o.until !== undefined && c.time > o.until) return false;
  if (authors.length && !(o.allMatch ? authors.every((r) => r.test(c.author)) : authors.some((r) => r.test(c.author)))) return false;
  if (greps.length) {
    const hit = o.allMatch ? greps.every((r) => r.test(c.message)) : greps.some((r) => r.test(c.message));
    if (hit === Boolean(o.invertGrep)) return false;
  }
  return true;
}

/** git's --diff-filter: upper case letters keep those statuses, lower case ones drop them. */
function filterChanges(changes: DiffEntry[], filter: string): DiffEntry[] {
  const keep = filter.replace(/[a-z]/g, '');
  const drop = filter.replace(/[A-Z]/g, '').toUpperCase();
  return changes.filter((e) => (!keep || keep.includes(e.status)) && !drop.includes(e.status));
}

/**
 * What `oid` changed against `first`, its first parent — for a derived branch's first commit, the base it was derived
 * from; none for a root commit: all added — or undefined for a merge unless asked.
 */
function changesOf(repo: Repository, oid: Oid, c: Commit, first: Oid | undefined, o: LogOptions, paths: Buffer[], rename?: DiffEntry): DiffEntry[] | undefined {
  if (c.parents.length > 1 && !o.firstParent && !o.diffMerges) return undefined;
  if (rename) return [rename];
  return diff(repo, { a: first ?? null, b: oid, paths }).entries;
}

/**
 * The parents a graph draws: each parent, or when it is not shown (it left the path as it was, or a filter hid it)
 * the nearest shown commits below it along the parents the walk followed. Iterative, memoized.
 */
function rewriteParents(visited: Map<Oid, Visited>, shown: Set<Oid>): (oid: Oid) => Oid[] {
  const memo = new Map<Oid, Oid[]>();
  const below = (start: Oid): Oid[] => {
    const m = memo.get(start);
    if (m) return m;
    // Depth-first over hidden commits; each hidden commit's answer is the union of its followed parents' answers.
    const stack: Array<{ oid: Oid; i: number; acc: Oid[] }> = [{ oid: start, i: 0, acc: [] }];
    const onStack = new Set<Oid>([start]);
    let result: Oid[] = [];
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const next = visited.get(top.oid)?.next ?? [];
      if (top.i < next.length) {
        const p = next[top.i++]!;
        if (shown.has(p)) top.acc.push(p);
        else if (memo.has(p)) top.acc.push(...memo.get(p)!);
        else if (visited.has(p) && !onStack.has(p)) { onStack.add(p); stack.push({ oid: p, i: 0, acc: [] }); }
        continue;
      }
      stack.pop();
      result = [...new Set(top.acc)];
      memo.set(top.oid, result);
      if (stack.length) stack[stack.length - 1]!.acc.push(...result);
    }
    return result;
  };
  return (oid) => {
    const out: Oid[] = [];
    for (const p of visited.get(oid)?.next ?? []) out.push(...(shown.has(p) ? [p] : below(p)));
    return [...new Set(out)];
  };
}

/**
 * git's --topo-order (commit.c sort_in_topological_order): tips in walk order; then, as a stack, a commit once all
 * its children are out, its last parent first, so that a merged branch is shown whole before the line it joined.
 */
function topoOrder<T extends { oid: Oid }>(items: T[], edges: Map<Oid, Oid[]>): T[] {
  const byId = new Map(items.map((s) => [s.oid, s]));
  const indegree = new Map<Oid, number>(items.map((s) => [s.oid, 0]));
  for (const s of items) for (const p of edges.get(s.oid) ?? []) if (indegree.has(p)) indegree.set(p, indegree.get(p)! + 1);
  const stack = items.filter((s) => indegree.get(s.oid) === 0).map((s) => s.oid).reverse();
  const out: T[] = [];
  const done = new Set<Oid>();
  while (stack.length) {
    const oid = stack.pop()!;
    if (done.has(oid)) continue;
    done.add(oid);
    out.push(byId.get(oid)!);
    for (const p of edges.get(oid) ?? []) {
      if (!indegree.has(p)) continue;
      const n = indegree.get(p)! - 1;
      indegree.set(p, n);
      if (n === 0) stack.push(p);
    }
  }
  // A cycle cannot happen (a derivation's base exists before it); should one, its commits still come out, in walk order.
  for (const s of items) if (!done.has(s.oid)) out.push(s);
  return out;
}

/**
 * Adds `patches` (as `diff -p` makes them) to entries that have `changes`. Reads the content of the changed files.
 * Locking: none.
 */
export async function addLogPatches(repo: Repository, entries: LogEntry[], options: PatchOptions = {}): Promise<void> {
  for (const e of entries) {
    if (!e.changes) continue;
    const patches: Record<string, string> = {};
    for (const ch of e.changes) {
      const p = await patchFor(repo, ch, options);
      if (p) patches[ch.path] = p;
    }
    e.patches = patches;
  }
}
