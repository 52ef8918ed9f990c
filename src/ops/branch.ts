/** The branch and tag ops: list (by prefix or glob), create, delete and rename refs in the hierarchical namespace. */
import { RefExistsError, RefNotFoundError, UsageError } from '../errors.js';
import type { Oid } from '../model/oid.js';
import { HEAD, HEADS, REMOTES, TAGS, branchRef, refGlob, shortRefName, tagRef } from '../model/ref.js';
import type { Repository } from '../store/repository.js';
import { defaultAuthor } from './commit.js';
import { history } from './log.js';
import { resolveRevision, shadowWarnings } from './resolve.js';
import { moveUpstreamConfig, readUpstream } from './upstream.js';
import { readCommit } from '../store/typed.js';

/** Branches (`refs/heads/`) or tags (`refs/tags/`). */
export type RefKind = 'branch' | 'tag';

/** A branch or tag as {@link listBranches}, {@link createRef}, {@link deleteRef} and {@link renameBranch} return it. */
export interface RefInfo {
  name: string;
  ref: string;
  oid: Oid;
  /** True for the branch HEAD points at. */
  head?: boolean;
  message?: string;
  /** createRef with force over an existing ref: where it pointed before. */
  replaced?: Oid;
  /** A remote-tracking branch (`branch -r`, `-a`). */
  remote?: boolean;
  /** `verbose`: the first line of the commit's message. */
  subject?: string;
  /** `verbose`: the upstream's short name (`origin/x`). */
  upstream?: string;
  /** `verbose`: commits here and not on the upstream, and the other way round. */
  ahead?: number;
  behind?: number;
  /** `verbose`: the upstream is configured but its ref is gone (git's `[origin/x: gone]`). */
  gone?: boolean;
}

function prefixOf(kind: RefKind): string {
  return kind === 'branch' ? HEADS : TAGS;
}

function fullRef(kind: RefKind, name: string): string {
  return kind === 'branch' ? branchRef(name) : tagRef(name);
}

/** The options of {@link listBranches} (`viva branch -r`, `-a`, `-v`). */
export interface ListRefsOptions {
  /** Branches: `only` lists the remote-tracking branches (`branch -r`, named `origin/x`), `also` both (`-a`, `remotes/origin/x`). */
  remotes?: 'only' | 'also';
  /** Add each commit's subject, and for branches the upstream with ahead/behind counts. */
  verbose?: boolean;
}

/**
 * Lists branches or tags. `pattern` is a prefix (`debian/`, `customers/acme`) or a glob (`debian/*\/base`, `**\/web`),
 * matched against the names as listed. Locking: none.
 */
export function listBranches(repo: Repository, kind: RefKind, pattern?: string, options: ListRefsOptions = {}): RefInfo[] {
  const head = repo.refs.read(HEAD)?.symref;
  const local = kind !== 'branch' || options.remotes !== 'only' ? repo.refs.list(prefixOf(kind)).map(({ ref, oid }) => ({ name: shortRefName(ref), ref, oid, ...(ref === head ? { head: true } : {}) })) : [];
  const remote = kind === 'branch' && options.remotes
    ? repo.refs.list(REMOTES).map(({ ref, oid }) => ({ name: options.remotes === 'also' ? ref.slice('refs/'.length) : shortRefName(ref), ref, oid, remote: true }))
    : [];
  const glob = pattern && /[*?]/.test(pattern) ? refGlob(pattern) : undefined;
  const refs: RefInfo[] = [...local, ...remote].filter((r) => {
    if (!pattern) return true;
    if (glob) return glob.test(r.name);
    const p = pattern.replace(/\/+$/, '');
    return r.name === p || r.name.startsWith(p + '/');
  });
  return options.verbose ? refs.map((r) => ({ ...r, ...verboseInfo(repo, r) })) : refs;
}

function verboseInfo(repo: Repository, r: RefInfo): Partial<RefInfo> {
  const subject = readCommit(repo.objects, r.oid).message.split('\n', 1)[0] ?? '';
  const up = r.ref.startsWith(HEADS) ? readUpstream(repo, r.ref) : undefined;
  if (!up) return { subject };
  const theirs = repo.refs.resolve(up.ref)?.oid;
  if (!theirs) return { subject, upstream: up.name, gone: true };
  return { subject, upstream: up.name, ...aheadBehind(repo, r.oid, theirs) };
}

/** Commits in `a`'s history that are not in `b`'s (ahead), and the other way round (behind). Locking: none. */
export function aheadBehind(repo: Repository, a: Oid, b: Oid): { ahead: number; behind: number } {
  if (a === b) return { ahead: 0, behind: 0 };
  const ofA = history(repo, a);
  const ofB = history(repo, b);
  let ahead = 0;
  let behind = 0;
  for (const o of ofA) if (!ofB.has(o)) ahead++;
  for (const o of ofB) if (!ofA.has(o)) behind++;
  return { ahead, behind };
}

/**
 * The options of {@link createRef}: the kind, the name, where it starts (default HEAD), and whether to replace one of that name.
 */
export interface CreateRefOptions {
  kind: RefKind;
  name: string;
  /** Start point revision; default HEAD. */
  rev?: string;
  force?: boolean;
}

/**
 * Creates a branch or tag at `rev` (with `force`, moves an existing one: `replaced` is where it pointed). Throws
 * RefExistsError unless `force`, InvalidRefNameError, RevisionNotFoundError, UsageError when the name clashes with a
 * ref named like its directory or below it (`a` and `a/b`). A name another ref or a commit id already answers to
 * (`tag main` beside branch main, branch `8496`) is created with a warning on `repo.warnings`.
 */
export async function createRef(repo: Repository, options: CreateRefOptions): Promise<RefInfo> {
  const ref = fullRef(options.kind, options.name);
  const target = resolveRevision(repo, options.rev ?? HEAD);
  const cur = repo.refs.resolve(ref)?.oid ?? null;
  if (cur && !options.force) throw new RefExistsError(shortRefName(ref));
  const warnings = cur ? [] : shadowWarnings(repo, ref);
  // A ref cannot be both a leaf and a directory of other refs (git's D/F rule): updateRefs refuses that.
  const msg = cur ? `${options.kind}: reset to ${options.rev ?? HEAD}` : `${options.kind}: created from ${options.rev ?? HEAD}`;
  await repo.refs.update([{ ref, newOid: target.oid, expectedOld: cur, message: msg }], defaultAuthor());
  repo.warnings.push(...warnings);
  return { name: shortRefName(ref), ref, oid: target.oid, ...(cur ? { replaced: cur } : {}) };
}

/**
 * Deletes a branch or tag. Throws RefNotFoundError, and UsageError for the branch HEAD points at (as git refuses to
 * delete the checked-out branch) unless `force`.
 */
export async function deleteRef(repo: Repository, kind: RefKind, name: string, force = false): Promise<RefInfo> {
  const ref = fullRef(kind, name);
  const cur = repo.refs.resolve(ref)?.oid;
  if (!cur) throw new RefNotFoundError(name);
  if (kind === 'branch' && !force && repo.refs.read(HEAD)?.symref === ref) {
    throw new UsageError(`cannot delete branch '${shortRefName(ref)}': HEAD points at it (use --force)`);
  }
  await repo.refs.update([{ ref, newOid: null, expectedOld: cur, message: 'deleted' }], defaultAuthor());
  // As git: a deleted branch's tracking configuration goes with it.
  if (kind === 'branch') moveUpstreamConfig(repo, ref);
  return { name: shortRefName(ref), ref, oid: cur };
}

/** Renames a branch or tag (with its reflog; HEAD follows a renamed branch). */
export async function renameBranch(repo: Repository, kind: RefKind, from: string, to: string, force = false): Promise<RefInfo> {
  const a = fullRef(kind, from);
  const b = fullRef(kind, to);
  if (!repo.refs.resolve(a)?.oid) throw new RefNotFoundError(from);
  const warnings = repo.refs.resolve(b)?.oid ? [] : shadowWarnings(repo, b);
  await repo.refs.rename(a, b, defaultAuthor(), force);
  if (kind === 'branch') moveUpstreamConfig(repo, a, b);
  repo.warnings.push(...warnings);
  return { name: shortRefName(b), ref: b, oid: repo.refs.resolve(b)!.oid! };
}
