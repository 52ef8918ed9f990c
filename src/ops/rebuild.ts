/**
 * The rebuild op: replay derivation recipes on newer bases, with build avoidance ("make" for images). A step's result
 * is memoized by (base root id, recipe id) — the recipe holds every other input (content ids, modes, times, its
 * format version) — so a replay whose inputs did not change does no work and makes no commit.
 */
import { DependencyError, EditFailedError, Ext4PatchError, FileConflictError, PackageStateError, RefNotFoundError, ScriptFailedError, UsageError, VivaError } from '../errors.js';
import { type Commit, encodeCommit, hashCommit } from '../model/commit.js';
import type { Oid } from '../model/oid.js';
import { branchRef } from '../model/ref.js';
import type { Repository } from '../store/repository.js';
import { readCommit } from '../store/typed.js';
import { applyToBase, commitWithDerivation, derivationOf } from './derive.js';
import { replayPackages } from './install.js';
import { replayMerge } from './merge.js';
import { derivationGraph, readDerivation } from './derivations.js';
import { history } from './log.js';
import { type Derivation, derivationRecipeId } from '../model/derivation.js';
import type { RootKind, RootMeta } from '../model/commit.js';
import { resolveRevision } from './resolve.js';
import { type NewCommit, commitIdentity, firstLine, writeCommits } from './write-commit.js';

/** The options of {@link rebuild}: one revision onto a new base, or every derived branch whose base moved. */
export interface RebuildOptions {
  /** `rebuild REV --onto NEWBASE`: replay REV's recipe on NEWBASE. */
  rev?: string;
  onto?: string;
  /** The branch the replay goes on (default: REV when it names a branch). */
  branch?: string;
  /** `rebuild --derived-from BRANCH`: every branch derived (transitively) from an older commit of BRANCH. */
  derivedFrom?: string;
  author?: string;
  time?: number;
  /** Plan only: say what would be rebuilt, write nothing. */
  dryRun?: boolean;
}

export type RebuildStatus = 'rebuilt' | 'unchanged' | 'failed' | 'skipped';

/** One branch {@link rebuild} looked at: rebuilt, unchanged or failed, with the new commit or the reason. */
export interface RebuildItem {
  branch: string;
  status: RebuildStatus;
  /** rebuilt: the new commit; otherwise the branch's head. */
  commit?: Oid;
  /** The base the recipe was replayed on. */
  base?: Oid;
  /** rebuilt: the result tree came from an earlier identical step (memo), no edit was applied. */
  reused?: boolean;
  /** failed, skipped, unchanged: why. */
  reason?: string;
}

/** What {@link rebuild} did, per branch, with counts. */
export interface RebuildResult {
  items: RebuildItem[];
  rebuilt: number;
  unchanged: number;
  /** Recipes that no longer apply. */
  failed: number;
  /** Not rebuilt: derived from a branch that failed, or with commits of its own on top of its derived commit. */
  skipped: number;
}

interface Job {
  ref: string;
  /** The derived commit whose recipe is replayed (the top one of `steps`). */
  head: Oid;
  commit: Commit;
  /**
   * The derived commits to replay, oldest first: one, or a chain of layers made on the branch itself
   * (`derive web -b web …`: each layer's base is the commit before it), replayed in order on the new base.
   */
  steps: Array<{ oid: Oid; commit: Commit }>;
  /** The branch's head now (the new commit's parent), null for a new branch. */
  parent: Oid | null;
  /** The branch whose (new) head is the new base; undefined for `--onto`. */
  baseRef?: string;
  onto?: { oid: Oid; commit: Commit };
}

/**
 * Replays recipes. With `rev` + `onto`: REV's recipe on NEWBASE, as a new commit on `branch`. With `derivedFrom`:
 * every branch whose head was derived from an older commit of that branch (and, transitively, the branches derived
 * from those), in dependency order, each as a new commit on its branch whose parent is its old head. All new commits
 * move their branches in one transaction at the end.
 *
 * Locking: the refs move by compare-and-swap (RefConflictError if one moved meanwhile: then none moves).
 * Throws: UsageError for a commit that has no derivation or missing options; RevisionNotFoundError. A recipe that no
 * longer applies fails its branch (status 'failed', with the reason), leaves it where it was, skips the branches
 * derived from it, and the others go on.
 *
 * @example
 * const r = await rebuild(repo, { derivedFrom: 'debian/12/base' });
 * console.log(r.rebuilt, r.unchanged, r.failed);
 */
export async function rebuild(repo: Repository, options: RebuildOptions): Promise<RebuildResult> {
  const id = commitIdentity(options);
  const plan = options.derivedFrom !== undefined ? planDerivedFrom(repo, options.derivedFrom) : { jobs: [planOnto(repo, options)], stale: [] };
  const jobs = plan.jobs;
  const items: RebuildItem[] = [...plan.stale];
  const commits: NewCommit[] = [];
  /** New heads of branches rebuilt in this run, for the branches derived from them. */
  const newHeads = new Map<string, { oid: Oid; commit: Commit }>();
  const failedRefs = new Set<string>();
  /** Old head → new head of each branch rebuilt so far (a merge replayed later takes the new one as its input). */
  const rebuiltFrom = new Map<Oid, Oid>();
  await repo.beginSession('rebuild');
  try {
    for (const job of jobs) {
      const dv = readDerivation(job.head, job.commit)!;
      const bottom = readDerivation(job.steps[0]!.oid, job.steps[0]!.commit)!;
      if (job.baseRef && failedRefs.has(job.baseRef)) {
        failedRefs.add(job.ref);
        items.push({ branch: job.ref, status: 'skipped', commit: job.head, reason: `its base branch ${job.baseRef} failed` });
        continue;
      }
      const base = job.onto ?? newHeads.get(job.baseRef!) ?? headOf(repo, job.baseRef!);
      const old = bottom.bases[0]!;
      // Build avoidance: the inputs are the base tree and the recipe; the same inputs, the same image.
      if (job.parent === job.head && old.root === base.commit.root && old.rootKind === base.commit.rootKind) {
        items.push({ branch: job.ref, status: 'unchanged', commit: job.head, base: old.commit, reason: old.commit === base.oid ? 'base unchanged' : 'base tree unchanged' });
        continue;
      }
      // --onto into a branch whose head already is this recipe on this base tree (a replay made before): nothing to do.
      if (job.parent && job.parent !== job.head && job.steps.length === 1) {
        const pc = readCommit(repo.objects, job.parent);
        const pd = readDerivation(job.parent, pc);
        if (pd && pd.kind === dv.kind && derivationRecipeId(pd) === derivationRecipeId(dv) && pd.bases[0]?.root === base.commit.root) {
          items.push({ branch: job.ref, status: 'unchanged', commit: job.parent, base: pd.bases[0]!.commit, reason: 'already this recipe on this base tree' });
          continue;
        }
      }
      if (options.dryRun) {
        items.push({ branch: job.ref, status: 'rebuilt', base: base.oid });
        // What derives from this branch would see a new base: a stand-in head that matches nothing.
        newHeads.set(job.ref, { oid: '0'.repeat(64), commit: { ...base.commit, root: '0'.repeat(64) } });
        continue;
      }
      // Each step on the result of the one before: the first on the new base.
      let on = base;
      let parent = job.parent;
      let reused = true;
      /** Each replayed layer's commit, with its encoding (the layers below the top are stored as they are). */
      const made: Array<{ commit: Commit; enc: Buffer; oid: Oid }> = [];
      let failure: string | undefined;
      for (const step of job.steps) {
        const sdv = readDerivation(step.oid, step.commit)!;
        let applied: { rootKind: RootKind; root: Oid; rootMeta: RootMeta; reused: boolean };
        let ndv: Derivation;
        /** A merge's second parent: the other input, or what this run rebuilt it into. */
        let theirs: Oid[] = [];
        try {
          const onBase = { oid: on.oid, commit: on.commit, name: shortName(job.baseRef) ?? on.oid.slice(0, 12) };
          if (sdv.kind === 'merge') {
            // Both inputs moved to the new base: merged against it; the other input as it was: against the recorded base.
            const other = sdv.bases[1]!.commit;
            const moved = rebuiltFrom.get(other);
            const r = await replayMerge(repo, onBase, moved ?? other, sdv.recipe, id.time, moved ? base.oid : sdv.recipe.base);
            applied = { ...r, reused: false };
            ndv = r.dv;
            theirs = [r.theirs];
          } else if (sdv.kind === 'derive') {
            applied = await applyToBase(repo, repo.objects, onBase, sdv.recipe);
            ndv = derivationOf(onBase, sdv.recipe);
          } else {
            const r = await replayPackages(repo, onBase, sdv, id.time);
            applied = r;
            ndv = r.dv;
          }
        } catch (e) {
          // What no longer fits the new base fails this branch only: an edit, a disk change the patcher refuses, a full
          // file system, a package request the new base cannot take or whose scripts fail there.
          if (!(e instanceof EditFailedError || e instanceof UsageError || e instanceof Ext4PatchError || e instanceof DependencyError
            || e instanceof FileConflictError || e instanceof PackageStateError || e instanceof ScriptFailedError)) throw e;
          failure = `${job.steps.length > 1 ? `layer ${step.oid.slice(0, 12)}: ` : ''}${(e as VivaError).message}`;
          break;
        }
        reused &&= applied.reused;
        const c = commitWithDerivation(ndv, applied, { ...id, parents: [...(parent ? [parent] : []), ...theirs], message: step.commit.message, labels: step.commit.labels });
        const enc = encodeCommit(c);
        const oid = hashCommit(enc);
        // Stored (pending) at once: the next layer, or a merge replayed later in this run, reads it.
        if (!repo.objects.hasObject('commit', oid)) repo.objects.writeObject('commit', oid, enc);
        made.push({ commit: c, enc, oid });
        on = { oid, commit: c };
        parent = oid;
      }
      if (failure !== undefined) {
        failedRefs.add(job.ref);
        items.push({ branch: job.ref, status: 'failed', commit: job.head, base: base.oid, reason: failure });
        continue;
      }
      // The branch moves once, to the last layer; the layers below are objects its history holds.
      const top = made[made.length - 1]!;
      commits.push({ commit: top.commit, ref: job.ref, expectedOld: job.parent, reflog: `rebuild: ${firstLine(top.commit.message)}` });
      newHeads.set(job.ref, on);
      rebuiltFrom.set(job.head, on.oid);
      items.push({ branch: job.ref, status: 'rebuilt', commit: on.oid, base: base.oid, ...(reused ? { reused: true } : {}) });
    }
    // A branch rebuilt twice in one run (not possible with one job per branch) would need chained expectations.
    if (commits.length) await writeCommits(repo, commits, { who: id.author });
  } catch (e) {
    repo.objects.discard();
    throw e;
  } finally {
    try { await repo.endSession(); } catch { /* gc clears a stale session */ }
  }
  const count = (s: RebuildStatus) => items.filter((i) => i.status === s).length;
  return { items, rebuilt: count('rebuilt'), unchanged: count('unchanged'), failed: count('failed'), skipped: count('skipped') };
}

function shortName(ref: string | undefined): string | undefined {
  return ref?.replace(/^refs\/heads\//, '');
}

function headOf(repo: Repository, ref: string): { oid: Oid; commit: Commit } {
  const oid = repo.refs.resolve(ref)?.oid!;
  return { oid, commit: readCommit(repo.objects, oid) };
}

/** `rebuild REV --onto NEWBASE [-b BRANCH]`. */
function planOnto(repo: Repository, options: RebuildOptions): Job {
  if (!options.rev || !options.onto) throw new UsageError('give REV --onto NEWBASE, or --derived-from BRANCH');
  const r = resolveRevision(repo, options.rev);
  if (!readDerivation(r.oid, r.commit)) throw new UsageError(`'${options.rev}' (${r.oid.slice(0, 12)}) has no derivation record: it was not made by derive, so there is no recipe to replay`);
  const onto = resolveRevision(repo, options.onto);
  const branch = options.branch ?? (r.ref?.startsWith('refs/heads/') ? r.ref : undefined);
  if (!branch) throw new UsageError(`'${options.rev}' is not a branch: say where the rebuilt image goes with -b BRANCH`);
  const ref = branchRef(branch);
  // REV's recipe; the new commit's parent is the branch's head when the branch exists.
  return { ref, head: r.oid, commit: r.commit, steps: [{ oid: r.oid, commit: r.commit }], parent: repo.refs.resolve(ref)?.oid ?? null, onto: { oid: onto.oid, commit: onto.commit } };
}

/** Every derived branch whose base lies in the history of `branch` or of a branch planned before it, in dependency order. */
function planDerivedFrom(repo: Repository, branch: string): { jobs: Job[]; stale: RebuildItem[] } {
  const root = branchRef(branch);
  if (!repo.refs.resolve(root)?.oid) throw new RefNotFoundError(root, `branch '${branch}' not found`);
  const graph = derivationGraph(repo);
  const jobs: Job[] = [];
  const planned = new Set<string>([root]);
  const histories = new Map<string, Set<Oid>>();
  const hist = (ref: string) => {
    let h = histories.get(ref);
    if (!h) histories.set(ref, (h = history(repo, repo.refs.resolve(ref)?.oid!)));
    return h;
  };
  for (let grew = true; grew;) {
    grew = false;
    for (const e of graph.edges) {
      if (planned.has(e.ref)) continue;
      // Its base branch: the nearest planned branch whose history holds the base commit.
      const baseRef = [...planned].find((p) => hist(p).has(e.base));
      if (!baseRef) continue;
      planned.add(e.ref);
      jobs.push({ ref: e.ref, head: e.commit, commit: readCommit(repo.objects, e.commit), steps: e.chain.map((oid) => ({ oid, commit: readCommit(repo.objects, oid) })), parent: e.commit, baseRef });
      grew = true;
    }
  }
  // Branches with commits on top of a derived commit: replaying the recipe would drop those commits (a rebase).
  const stale: RebuildItem[] = [];
  const ordered = mergeInputsFirst(jobs);
  for (const x of graph.stale) {
    if (planned.has(x.ref) || ![...planned].some((p) => hist(p).has(x.base))) continue;
    const n = x.commitsOnTop;
    stale.push({ branch: x.ref, status: 'skipped', commit: x.head, reason: `its head is ${n} commit${n === 1 ? '' : 's'} past the derived commit ${x.derived.slice(0, 12)}: replaying the recipe would drop ${n === 1 ? 'it' : 'them'} (rebuild that commit with --onto and reapply them)` });
  }
  return { jobs: ordered, stale };
}

/**
 * The jobs in an order where a branch whose layers merged another planned branch's head comes after that branch
 * (so the merge is replayed with the other input as this run rebuilt it), and after its own base branch.
 */
function mergeInputsFirst(jobs: Job[]): Job[] {
  const byHead = new Map(jobs.map((j) => [j.head, j]));
  const byRef = new Map(jobs.map((j) => [j.ref, j]));
  const out: Job[] = [];
  const seen = new Set<Job>();
  const visit = (j: Job) => {
    if (seen.has(j)) return;
    seen.add(j);
    for (const s of j.steps) {
      const dv = readDerivation(s.oid, s.commit);
      const input = dv?.kind === 'merge' ? byHead.get(dv.bases[1]!.commit) : undefined;
      if (input) visit(input);
    }
    const b = j.baseRef ? byRef.get(j.baseRef) : undefined;
    if (b) visit(b);
    out.push(j);
  };
  for (const j of jobs) visit(j);
  return out;
}
