/**
 * Reading derivations: a commit's derivation record as data (`show --derivation`), what was derived from a commit or
 * its branch through chains (`log --derived-from`, from the `ix-deriv` index written with each derived commit, not a
 * scan of every commit), and the derivation graph of branches (`viva derivations`).
 */
import { RefNotFoundError, RepositoryCorruptError } from '../errors.js';
import type { Commit } from '../model/commit.js';
import { type Derivation, type Edit, type PackageRecipe, decodeDerivation, derivationRecipeId } from '../model/derivation.js';
import type { Oid } from '../model/oid.js';
import { hexIfNotUtf8 } from '../model/quote.js';
import { DERIV_BASE } from '../store/content-index.js';
import type { Repository } from '../store/repository.js';
import { readCommit } from '../store/typed.js';
import { describeEdit } from '../tree/recipe.js';
import { type LogEntry, history, refsByOid, toLogEntry } from './log-entry.js';
import { resolveRevision } from './resolve.js';

/** An edit as JSON: its op, a one-line description, and its fields (paths as text, with `pathHex` when not UTF-8). */
export interface EditInfo {
  op: Edit['op'];
  text: string;
  path: string;
  pathHex?: string;
  [field: string]: unknown;
}

/** How a commit was made ({@link showDerivation}): the kind (derive, install, merge, …), its bases and the recipe. */
export interface DerivationInfo {
  kind: Derivation['kind'];
  bases: Array<{ commit: Oid; rootKind: string; root: Oid; refs: string[] }>;
  /**
   * The recipe: its id and a one-line summary (`3 edits`, `install htop tmux: 5 packages`); for derive its time and
   * edits, for install/upgrade/remove the package request and the packages unpacked (by sha256 and record tree).
   */
  recipe: {
    id: Oid;
    summary: string;
    time?: number;
    edits?: EditInfo[];
    packages?: PackageRecipe;
    /** merge: the merge base and the resolved conflicts (paths as text). */
    merge?: { base: Oid | null; resolutions: Array<{ path: string; how: string; blob?: Oid }> };
  };
  tool: string;
}

/** One line saying what a recipe does. */
export function recipeSummary(dv: Derivation): string {
  if (dv.kind === 'derive') return `${dv.recipe.edits.length} edit${dv.recipe.edits.length === 1 ? '' : 's'}`;
  if (dv.kind === 'merge') {
    const n = dv.recipe.resolutions.length;
    return `merge of ${dv.bases.length} images${dv.recipe.base ? '' : ' with no common base'}${n ? `, ${n} conflict${n === 1 ? '' : 's'} resolved` : ''}`;
  }
  const r = dv.recipe;
  const asked = dv.kind === 'remove' ? r.remove : r.request.map((q) => (q.version ? `${q.name}=${q.version}` : q.name));
  const n = r.debs.length;
  const parts = [`${dv.kind}${r.purge ? ' --purge' : ''} ${asked.length ? asked.join(' ') : 'all'}`];
  if (n) parts.push(`${n} package${n === 1 ? '' : 's'} unpacked${r.scripts ? '' : ', not configured'}`);
  if (r.removed.length) parts.push(`${r.removed.length} removed besides`);
  return parts.join(': ');
}

/** The decoded derivation of commit `oid`, or undefined for a commit that was not derived. Throws RepositoryCorruptError. */
export function readDerivation(oid: Oid, c: Commit): Derivation | undefined {
  if (!c.derivation) return undefined;
  try {
    return decodeDerivation(c.derivation);
  } catch (e) {
    throw new RepositoryCorruptError(`commit ${oid}`, `derivation record: ${(e as Error).message}`);
  }
}

function editInfo(e: Edit): EditInfo {
  const hex = hexIfNotUtf8(e.path);
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) {
    if (k === 'op' || k === 'path') continue;
    if (Buffer.isBuffer(v)) fields[k] = k === 'value' ? v.toString('base64') : v.toString('utf8');
    else if (typeof v === 'bigint') fields[k] = v.toString();
    else if (k === 'entry' || k === 'meta') fields[k] = JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x?.type === 'Buffer' ? Buffer.from(x.data).toString('utf8') : x)));
    else fields[k] = v;
  }
  return { op: e.op, text: describeEdit(e), path: e.path.toString('utf8'), ...(hex ? { pathHex: hex } : {}), ...fields };
}

/** The derivation of `rev` as JSON-safe data, or undefined when it was not derived. Locking: none. */
export function showDerivation(repo: Repository, rev: string): DerivationInfo | undefined {
  const r = resolveRevision(repo, rev);
  const dv = readDerivation(r.oid, r.commit);
  if (!dv) return undefined;
  const refs = refsByOid(repo);
  return {
    kind: dv.kind,
    bases: dv.bases.map((b) => ({ commit: b.commit, rootKind: b.rootKind, root: b.root, refs: refs.get(b.commit) ?? [] })),
    recipe: dv.kind === 'derive'
      ? { id: derivationRecipeId(dv), summary: recipeSummary(dv), time: dv.recipe.time, edits: dv.recipe.edits.map(editInfo) }
      : dv.kind === 'merge'
        ? { id: derivationRecipeId(dv), summary: recipeSummary(dv), merge: { base: dv.recipe.base, resolutions: dv.recipe.resolutions.map((x) => ({ path: x.path.toString('utf8'), how: x.how, ...(x.blob ? { blob: x.blob } : {}) })) } }
        : { id: derivationRecipeId(dv), summary: recipeSummary(dv), packages: dv.recipe },
    tool: dv.tool,
  };
}

/**
 * Every commit derived from `rev` or from any commit of its history, and, through chains, from those (a clone of a
 * clone): newest first, as log entries. Reads the `ix-deriv` index. Locking: none. Throws RevisionNotFoundError.
 */
export function derivedFrom(repo: Repository, rev: string): LogEntry[] {
  const start = resolveRevision(repo, rev);
  const found = new Map<Oid, Commit>();
  const queue = [...history(repo, start.oid)];
  const seen = new Set(queue);
  while (queue.length) {
    const base = queue.pop()!;
    for (const d of repo.contentIndex.derived(DERIV_BASE, base)) {
      if (seen.has(d)) continue;
      seen.add(d);
      const c = readCommit(repo.objects, d);
      found.set(d, c);
      // What was derived from an earlier commit of the derived branch belongs to the chain too.
      for (const a of history(repo, d)) if (!seen.has(a)) { seen.add(a); queue.push(a); }
      queue.push(d);
    }
  }
  const refs = refsByOid(repo);
  return [...found].sort((a, b) => b[1].time - a[1].time || (a[0] < b[0] ? -1 : 1)).map(([oid, c]) => ({ ...toLogEntry(oid, c), refs: refs.get(oid) ?? [] }));
}

/**
 * One derived branch in a {@link DerivationGraph}: its head, the base it was derived from and whether that base moved on.
 */
export interface DerivationEdge {
  /** The derived branch (full ref) and its head. */
  ref: string;
  commit: Oid;
  /** The base commit of its head's derivation, and the branches whose history holds it. */
  base: Oid;
  baseRefs: Array<{ ref: string; behind: number }>;
  recipe: Oid;
  /** What the head's recipe does, in one line (recipeSummary). */
  summary: string;
  /**
   * The derived commits of the branch, oldest first: its head alone, or the layers made on the branch itself
   * (`derive web -b web …`, each based on the commit before it) down to the one based on another branch's commit.
   * `base` is that lowest layer's base.
   */
  chain: Oid[];
}

/** A branch with commits of its own on top of a derived commit (rebuild does not replay it: that would drop them). */
export interface StaleBranch {
  ref: string;
  head: Oid;
  /** The derived commit below, how many commits lie above it, and its base. */
  derived: Oid;
  commitsOnTop: number;
  base: Oid;
}

/**
 * Which branches were derived from which ({@link derivationGraph}), and the branches whose base has new commits since.
 */
export interface DerivationGraph {
  /** Every branch in scope, derived or not. */
  refs: string[];
  edges: DerivationEdge[];
  stale: StaleBranch[];
}

/** How far back a branch whose head is not derived is searched for the derived commit it was built on. */
const STALE_SEARCH_DEPTH = 64;

/** The local branches (full refs), sorted. */
export function branchRefs(repo: Repository): string[] {
  return repo.refs.list('refs/heads/').map((r) => r.ref).sort();
}

/**
 * The derivation graph of branches: for each branch whose head is a derived commit, an edge to its base commit, with
 * the branches whose history holds that base and how many commits each has moved on since (0: up to date).
 * `refs` (full names): limit to these branches and to the branches derived from them (default: all); RefNotFoundError
 * for one that does not exist. Locking: none.
 */
export function derivationGraph(repo: Repository, refs?: string[]): DerivationGraph {
  const all = branchRefs(repo);
  const heads = new Map<string, Oid>();
  for (const r of all) {
    const v = repo.refs.read(r);
    if (v?.oid) heads.set(r, v.oid);
  }
  // Ancestor distance of every commit in each branch's first-parent-agnostic history (BFS by generation).
  const depth = new Map<string, Map<Oid, number>>();
  const distances = (ref: string): Map<Oid, number> => {
    let m = depth.get(ref);
    if (m) return m;
    m = new Map();
    let level = [heads.get(ref)!];
    for (let n = 0; level.length; n++) {
      const next: Oid[] = [];
      for (const o of level) {
        if (m.has(o)) continue;
        m.set(o, n);
        next.push(...readCommit(repo.objects, o).parents);
      }
      level = next;
    }
    depth.set(ref, m);
    return m;
  };
  const edges: DerivationEdge[] = [];
  for (const [ref, oid] of heads) {
    const headCommit = readCommit(repo.objects, oid);
    const dv = readDerivation(oid, headCommit);
    if (!dv || dv.bases.length === 0) continue;
    // Layers on the branch itself: a derived commit whose base is its own first parent, itself derived.
    const chain = [oid];
    let lowest = { oid, commit: headCommit, dv };
    for (;;) {
      const b = lowest.dv.bases[0]?.commit;
      if (!b || lowest.commit.parents[0] !== b) break;
      const bc = readCommit(repo.objects, b);
      const bdv = readDerivation(b, bc);
      if (!bdv || bdv.bases.length === 0) break;
      chain.unshift(b);
      lowest = { oid: b, commit: bc, dv: bdv };
    }
    const base = lowest.dv.bases[0]!.commit;
    const baseRefs: Array<{ ref: string; behind: number }> = [];
    for (const other of heads.keys()) {
      if (other === ref) continue;
      const n = distances(other).get(base);
      if (n !== undefined) baseRefs.push({ ref: other, behind: n });
    }
    baseRefs.sort((a, b) => a.behind - b.behind || (a.ref < b.ref ? -1 : 1));
    edges.push({ ref, commit: oid, base, baseRefs, recipe: derivationRecipeId(dv), summary: recipeSummary(dv), chain });
  }
  const stale: StaleBranch[] = [];
  for (const [ref, head] of heads) {
    if (edges.some((e) => e.ref === ref)) continue;
    let oid: Oid | undefined = head;
    for (let n = 0; oid && n < STALE_SEARCH_DEPTH; n++) {
      const c = readCommit(repo.objects, oid);
      const d = readDerivation(oid, c);
      if (d) {
        if (n > 0 && d.bases[0]) stale.push({ ref, head, derived: oid, commitsOnTop: n, base: d.bases[0].commit });
        break;
      }
      oid = c.parents[0];
    }
  }
  if (!refs || refs.length === 0) return { refs: all, edges, stale };
  for (const r of refs) if (!heads.has(r)) throw new RefNotFoundError(r, `branch '${r.replace(/^refs\/heads\//, '')}' not found`);
  // The named branches and, transitively, the branches derived from them.
  const keep = new Set(refs);
  for (let grew = true; grew;) {
    grew = false;
    for (const e of edges) if (!keep.has(e.ref) && e.baseRefs.some((b) => keep.has(b.ref))) { keep.add(e.ref); grew = true; }
  }
  return { refs: all.filter((r) => keep.has(r)), edges: edges.filter((e) => keep.has(e.ref)), stale: stale.filter((x) => keep.has(x.ref) || [...keep].some((k) => distances(k).has(x.base))) };
}
