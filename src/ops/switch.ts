/**
 * The switch op: moves HEAD to another branch (`switch B`), to a new one (`switch -c NEW [START]`), or detaches it at
 * a commit (`switch --detach REV`), recording each move in HEAD's reflog as git does (`checkout: moving from a to b`).
 * Nothing is materialized: viva images are not checked out into a work tree, so switching only changes what HEAD —
 * the default revision of log, diff, grep, commit, push, … — names. A branch that exists only as a remote-tracking
 * branch of exactly one remote (`origin/team/img`) is created from it, tracking it (git's DWIM).
 */
import { RefExistsError, RefNotFoundError, UsageError } from '../errors.js';
import type { Oid } from '../model/oid.js';
import { HEAD, HEADS, REMOTES, TAGS, branchRef, refNameProblem, shortRefName } from '../model/ref.js';
import { headDescription } from '../store/refs.js';
import type { Repository } from '../store/repository.js';
import { createRef } from './branch.js';
import { defaultAuthor } from './commit.js';
import { previousBranch, resolveRevision } from './resolve.js';
import { type UpstreamResult, setUpstream } from './upstream.js';

/** The options of {@link switchBranch} (git's `switch`: a branch, `-c`, `-C`, `--detach`). */
export interface SwitchOptions {
  /** The branch to switch to (`-` or `@{-N}`: an earlier one); with `detach`, any revision (default HEAD). */
  branch?: string;
  /** `-c NEW`: create NEW at `start` (default HEAD) and switch to it. */
  create?: string;
  /** `-C NEW`: as `create`, resetting NEW if it exists. */
  forceCreate?: boolean;
  /** Start point of `create`. */
  start?: string;
  /** Detach HEAD at `branch` (a revision). */
  detach?: boolean;
  /** Create a missing branch from the one remote that has it (default true; git's --guess). */
  guess?: boolean;
}

/** Where HEAD is after {@link switchBranch}, and where it was. */
export interface SwitchResult {
  /** The branch HEAD now points at (full name); absent when detached. */
  branch?: string;
  /** What HEAD names now (null: an unborn branch). */
  oid: Oid | null;
  /** What HEAD was on: a short branch name, or a commit id when it was detached. */
  previous: string;
  /** The branch was made by this switch. */
  created?: boolean;
  /** HEAD was on that branch already (git's "Already on 'x'"). */
  alreadyOn?: boolean;
  /** HEAD is detached at `oid`. */
  detached?: boolean;
  /** Detached: the first line of that commit's message (git's "HEAD is now at 1a2b3c subject"). */
  subject?: string;
  /** The new branch tracks this upstream (a remote branch switched to, or a remote-tracking START). */
  tracking?: UpstreamResult;
}

/** The remotes configured in this repository (sync.ts owns the key). */
function remoteNames(repo: Repository): string[] {
  return Object.keys((repo.meta.get('remotes') as Record<string, unknown> | undefined) ?? {});
}

/**
 * git's checkout/switch DWIM: the remote-tracking ref (`refs/remotes/R/NAME`) a missing local branch NAME can be made
 * from — only when NAME is a valid branch name that names nothing here and exactly one configured remote has it.
 * Locking: none.
 */
export function findTrackingCandidate(repo: Repository, name: string): { remote: string; ref: string } | undefined {
  if (refNameProblem(name) || name.startsWith('-') || name.startsWith('refs/') || name === HEAD) return undefined;
  if (repo.refs.resolve(HEADS + name)?.oid) return undefined;
  try {
    resolveRevision(repo, name);
    return undefined; // it names something already (a tag, a remote-tracking ref, a commit)
  } catch { /* not a revision: a candidate */ }
  const hits = remoteNames(repo).filter((r) => repo.refs.resolve(`${REMOTES}${r}/${name}`)?.oid);
  return hits.length === 1 ? { remote: hits[0]!, ref: `${REMOTES}${hits[0]}/${name}` } : undefined;
}

/**
 * Creates local branch NAME at a remote-tracking ref, tracking it (git's "branch 'x' set up to track 'origin/x'").
 * Throws RefExistsError when NAME exists.
 */
export async function createTrackingBranch(repo: Repository, name: string, candidate: { remote: string; ref: string }): Promise<UpstreamResult> {
  const info = await createRef(repo, { kind: 'branch', name, rev: candidate.ref });
  return setUpstream(repo, info.ref, { remote: candidate.remote, merge: HEADS + candidate.ref.slice(`${REMOTES}${candidate.remote}/`.length) });
}

/** What a revision that is not a local branch is, for git's "a branch is expected, got tag 'v1'". */
function describeNonBranch(repo: Repository, name: string): string | undefined {
  let ref: string | undefined;
  try {
    ref = resolveRevision(repo, name).ref;
  } catch {
    return undefined;
  }
  if (ref?.startsWith(TAGS)) return `tag '${name}'`;
  if (ref?.startsWith(REMOTES)) return `remote branch '${name}'`;
  return `commit '${name}'`;
}

/**
 * Moves HEAD. Throws RefNotFoundError for a branch that does not exist (git's "invalid reference"), RefExistsError
 * for `create` of an existing branch (unless `forceCreate`), UsageError for a revision that is not a branch without
 * `detach` (git's "a branch is expected, got tag 'v1'"). Locking: one write transaction per ref moved.
 *
 * @example
 * await switchBranch(repo, { branch: 'debian/12/base' });
 * await switchBranch(repo, { create: 'customers/acme/web', start: 'debian/12/base' });
 */
export async function switchBranch(repo: Repository, options: SwitchOptions): Promise<SwitchResult> {
  const who = defaultAuthor();
  const previous = headDescription(repo.refs);
  const move = (target: { symref: string } | { oid: Oid }, to: string) => repo.refs.moveHead(target, who, `checkout: moving from ${previous} to ${to}`);

  if (options.detach) {
    const rev = options.branch ?? HEAD;
    const r = resolveRevision(repo, rev);
    await move({ oid: r.oid }, rev);
    return { oid: r.oid, previous, detached: true, subject: r.commit.message.split('\n', 1)[0] ?? '' };
  }

  if (options.create !== undefined) {
    const ref = branchRef(options.create);
    const exists = repo.refs.resolve(ref)?.oid;
    if (exists && !options.forceCreate) throw new RefExistsError(shortRefName(ref), `a branch named '${shortRefName(ref)}' already exists`);
    const start = options.start;
    // On an unborn branch with no START, git's `switch -c x` just renames the unborn branch HEAD is on.
    if (start === undefined && !repo.refs.resolve(HEAD)?.oid) {
      await move({ symref: ref }, shortRefName(ref));
      return { branch: ref, oid: null, previous, created: true };
    }
    const info = await createRef(repo, { kind: 'branch', name: options.create, rev: start ?? HEAD, force: options.forceCreate ?? false });
    // git's branch.autoSetupMerge: a new branch started at a remote-tracking branch tracks it.
    let tracking: UpstreamResult | undefined;
    if (start !== undefined) {
      const startRef = resolveRevision(repo, start).ref;
      const remote = startRef?.startsWith(REMOTES) ? remoteNames(repo).find((r) => startRef.startsWith(`${REMOTES}${r}/`)) : undefined;
      if (remote && startRef) tracking = setUpstream(repo, ref, { remote, merge: HEADS + startRef.slice(`${REMOTES}${remote}/`.length) });
    }
    await move({ symref: ref }, shortRefName(ref));
    return { branch: ref, oid: info.oid, previous, created: true, ...(tracking ? { tracking } : {}) };
  }

  let name = options.branch;
  if (name === undefined) throw new UsageError('name the branch to switch to (or -c NEW to create one)');
  if (name === '-') name = '@{-1}';
  const prev = /^@\{-(\d+)\}$/.exec(name);
  if (prev) name = previousBranch(repo, Number(prev[1]), name);
  if (name.startsWith(HEADS)) name = name.slice(HEADS.length);
  const ref = HEADS + name;
  const oid = repo.refs.resolve(ref)?.oid;
  if (oid) {
    const alreadyOn = repo.refs.read(HEAD)?.symref === ref;
    await move({ symref: ref }, name);
    return { branch: ref, oid, previous, ...(alreadyOn ? { alreadyOn } : {}) };
  }
  const candidate = options.guess === false ? undefined : findTrackingCandidate(repo, name);
  if (candidate) {
    const tracking = await createTrackingBranch(repo, name, candidate);
    await move({ symref: ref }, name);
    return { branch: ref, oid: repo.refs.resolve(ref)!.oid!, previous, created: true, tracking };
  }
  const what = describeNonBranch(repo, name);
  if (what) throw new UsageError(`a branch is expected, got ${what} (use --detach to switch to it without a branch)`);
  throw new RefNotFoundError(name, `invalid reference: '${name}'`);
}
