/**
 * Upstream tracking, as git's `branch.<name>.remote` and `branch.<name>.merge`: which remote branch a local branch
 * follows (`branch -u`, `push -u`, `switch` of a remote branch, `clone`), what `@{upstream}` names, and how far ahead
 * and behind a branch is. Kept in the repository's meta database under the key `branches`, next to `remotes`:
 * `{ "<branch>": { "remote": "origin", "merge": "refs/heads/<branch on the remote>" } }`; `remote` is `.` for a local
 * branch as upstream (its `merge` is then that local branch).
 */
import { RefNotFoundError, UsageError } from '../errors.js';
import { HEAD, HEADS, REMOTES, branchRef, shortRefName } from '../model/ref.js';
import type { Repository } from '../store/repository.js';

/** The meta key of the per-branch tracking configuration. */
export const BRANCHES_KEY = 'branches';
/** The meta key of the remotes (sync.ts owns it; read here to tell a remote-tracking ref from a branch). */
const REMOTES_KEY = 'remotes';
/** `remote` of a branch whose upstream is another local branch (git's `branch.x.remote = .`). */
export const LOCAL_REMOTE = '.';

/** A branch's upstream as configured (git's `branch.NAME.remote` and `branch.NAME.merge`). */
export interface UpstreamConfig {
  /** A configured remote's name, or `.` for a local branch. */
  remote: string;
  /** The branch on the remote (full name: `refs/heads/x`). */
  merge: string;
}

/** A branch's upstream with the local ref that stands for it (`origin/x`). */
export interface Upstream extends UpstreamConfig {
  /** The local ref that stands for it: `refs/remotes/origin/x` (or `refs/heads/x` for a local upstream). */
  ref: string;
  /** Its short name: `origin/x`. */
  name: string;
}

/** What {@link setUpstream}, {@link setUpstreamTo} or {@link unsetUpstream} left configured. */
export interface UpstreamResult {
  /** The local branch (short name). */
  branch: string;
  /** Its upstream's short name (`origin/x`), absent after unsetUpstream. */
  upstream?: string;
}

function configOf(repo: Repository): Record<string, UpstreamConfig> {
  return (repo.meta.get(BRANCHES_KEY) as Record<string, UpstreamConfig> | undefined) ?? {};
}

function writeConfig(repo: Repository, all: Record<string, UpstreamConfig>): void {
  repo.meta.put(BRANCHES_KEY, all);
}

/** The local ref standing for an upstream configuration. */
export function upstreamRef(c: UpstreamConfig): string {
  return c.remote === LOCAL_REMOTE ? c.merge : `${REMOTES}${c.remote}/${c.merge.startsWith(HEADS) ? c.merge.slice(HEADS.length) : c.merge}`;
}

/** The upstream of a branch (short or full name), or undefined when none is configured. Locking: none. */
export function readUpstream(repo: Repository, branch: string): Upstream | undefined {
  const name = shortRefName(branch.startsWith(HEADS) ? branch : HEADS + branch);
  const c = configOf(repo)[name];
  if (!c) return undefined;
  const ref = upstreamRef(c);
  return { ...c, ref, name: shortRefName(ref) };
}

/** The branch a command without a BRANCH argument means: HEAD's. Throws UsageError when HEAD is detached. */
export function currentBranch(repo: Repository): string {
  const v = repo.refs.read(HEAD);
  if (!v?.symref) throw new UsageError('HEAD is detached, not on a branch: name the branch');
  return v.symref;
}

/**
 * What an upstream argument names, as git's `branch -u`: a remote-tracking branch of a configured remote (`origin/x`,
 * `remotes/origin/x`, `refs/remotes/origin/x`) or a local branch. Throws RefNotFoundError (git's "the requested
 * upstream branch 'x' does not exist").
 */
export function parseUpstream(repo: Repository, upstream: string): UpstreamConfig {
  const remotes = Object.keys((repo.meta.get(REMOTES_KEY) as Record<string, unknown> | undefined) ?? {});
  const full = upstream.startsWith('refs/') ? upstream : upstream.startsWith('remotes/') ? `refs/${upstream}` : undefined;
  for (const cand of full ? [full] : [REMOTES + upstream, HEADS + upstream]) {
    if (!repo.refs.resolve(cand)?.oid) continue;
    if (cand.startsWith(HEADS)) return { remote: LOCAL_REMOTE, merge: cand };
    const rest = cand.slice(REMOTES.length);
    const remote = remotes.find((r) => rest.startsWith(r + '/'));
    if (remote) return { remote, merge: HEADS + rest.slice(remote.length + 1) };
  }
  throw new RefNotFoundError(upstream, `the requested upstream branch '${upstream}' does not exist`);
}

/**
 * Records `config` as the upstream of `branch` (full name; it must exist). Locking: one write transaction.
 * @example setUpstream(repo, 'refs/heads/web', { remote: 'origin', merge: 'refs/heads/web' });
 */
export function setUpstream(repo: Repository, branch: string, config: UpstreamConfig): UpstreamResult {
  const name = shortRefName(branch);
  writeConfig(repo, { ...configOf(repo), [name]: { remote: config.remote, merge: config.merge } });
  return { branch: name, upstream: shortRefName(upstreamRef(config)) };
}

/**
 * `branch -u UPSTREAM [BRANCH]`: BRANCH (default HEAD's) tracks UPSTREAM. Throws RefNotFoundError for a missing
 * branch or upstream, UsageError when HEAD is detached and no branch is named.
 */
export function setUpstreamTo(repo: Repository, upstream: string, branch?: string): UpstreamResult {
  const ref = branch ? branchRef(branch) : currentBranch(repo);
  if (!repo.refs.resolve(ref)?.oid) throw new RefNotFoundError(shortRefName(ref), `branch '${shortRefName(ref)}' does not exist`);
  return setUpstream(repo, ref, parseUpstream(repo, upstream));
}

/** `branch --unset-upstream [BRANCH]`. Throws UsageError when the branch has none (git's "has no upstream information"). */
export function unsetUpstream(repo: Repository, branch?: string): UpstreamResult {
  const name = shortRefName(branch ? branchRef(branch) : currentBranch(repo));
  const all = configOf(repo);
  if (!all[name]) throw new UsageError(`branch '${name}' has no upstream information`);
  delete all[name];
  writeConfig(repo, all);
  return { branch: name };
}

/** Drops (`to` undefined) or moves the tracking configuration of a deleted or renamed branch, as git does. */
export function moveUpstreamConfig(repo: Repository, from: string, to?: string): void {
  const all = configOf(repo);
  const a = shortRefName(from);
  const c = all[a];
  if (!c) return;
  delete all[a];
  if (to) all[shortRefName(to)] = c;
  writeConfig(repo, all);
}

/** git's message when a branch starts tracking: `branch 'x' set up to track 'origin/x'`. */
export function trackingMessage(r: UpstreamResult): string {
  return `branch '${r.branch}' set up to track '${r.upstream}'`;
}
