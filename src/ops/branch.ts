/** The branch and tag ops: list (by prefix or glob), create, delete and rename refs in the hierarchical namespace. */
import { RefExistsError, RefNotFoundError, UsageError } from '../errors.js';
import type { Oid } from '../model/oid.js';
import { HEAD, HEADS, TAGS, branchRef, refGlob, shortRefName, tagRef } from '../model/ref.js';
import { listRefs, readRef, renameRef, resolveRef, updateRefs } from '../store/refs.js';
import type { Repository } from '../store/repository.js';
import { defaultAuthor } from './commit.js';
import { resolveRevision, shadowWarnings } from './resolve.js';

export type RefKind = 'branch' | 'tag';

export interface RefInfo {
  name: string;
  ref: string;
  oid: Oid;
  /** True for the branch HEAD points at. */
  head?: boolean;
  message?: string;
  /** createRef with force over an existing ref: where it pointed before. */
  replaced?: Oid;
}

function prefixOf(kind: RefKind): string {
  return kind === 'branch' ? HEADS : TAGS;
}

function fullRef(kind: RefKind, name: string): string {
  return kind === 'branch' ? branchRef(name) : tagRef(name);
}

/**
 * Lists branches or tags. `pattern` is a prefix (`debian/`, `customers/acme`) or a glob (`debian/*\/base`, `**\/web`).
 */
export function listBranches(repo: Repository, kind: RefKind, pattern?: string): RefInfo[] {
  const head = readRef(repo.store, HEAD)?.symref;
  const refs = listRefs(repo.store, prefixOf(kind));
  const glob = pattern && /[*?]/.test(pattern) ? refGlob(pattern) : undefined;
  return refs
    .map(({ ref, oid }) => ({ name: shortRefName(ref), ref, oid, ...(ref === head ? { head: true } : {}) }))
    .filter((r) => {
      if (!pattern) return true;
      if (glob) return glob.test(r.name);
      const p = pattern.replace(/\/+$/, '');
      return r.name === p || r.name.startsWith(p + '/');
    });
}

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
export function createRef(repo: Repository, options: CreateRefOptions): RefInfo {
  const ref = fullRef(options.kind, options.name);
  const target = resolveRevision(repo, options.rev ?? HEAD);
  const cur = resolveRef(repo.store, ref) ?? null;
  if (cur && !options.force) throw new RefExistsError(shortRefName(ref));
  const warnings = cur ? [] : shadowWarnings(repo, ref);
  // A ref cannot be both a leaf and a directory of other refs (git's D/F rule): updateRefs refuses that.
  const msg = cur ? `${options.kind}: reset to ${options.rev ?? HEAD}` : `${options.kind}: created from ${options.rev ?? HEAD}`;
  updateRefs(repo.store, [{ ref, newOid: target.oid, expectedOld: cur, message: msg }], defaultAuthor());
  repo.warnings.push(...warnings);
  return { name: shortRefName(ref), ref, oid: target.oid, ...(cur ? { replaced: cur } : {}) };
}

/**
 * Deletes a branch or tag. Throws RefNotFoundError, and UsageError for the branch HEAD points at (as git refuses to
 * delete the checked-out branch) unless `force`.
 */
export function deleteRef(repo: Repository, kind: RefKind, name: string, force = false): RefInfo {
  const ref = fullRef(kind, name);
  const cur = resolveRef(repo.store, ref);
  if (!cur) throw new RefNotFoundError(name);
  if (kind === 'branch' && !force && readRef(repo.store, HEAD)?.symref === ref) {
    throw new UsageError(`cannot delete branch '${shortRefName(ref)}': HEAD points at it (use --force)`);
  }
  updateRefs(repo.store, [{ ref, newOid: null, expectedOld: cur, message: 'deleted' }], defaultAuthor());
  return { name: shortRefName(ref), ref, oid: cur };
}

/** Renames a branch or tag (with its reflog; HEAD follows a renamed branch). */
export function renameBranch(repo: Repository, kind: RefKind, from: string, to: string, force = false): RefInfo {
  const a = fullRef(kind, from);
  const b = fullRef(kind, to);
  if (!resolveRef(repo.store, a)) throw new RefNotFoundError(from);
  const warnings = resolveRef(repo.store, b) ? [] : shadowWarnings(repo, b);
  renameRef(repo.store, a, b, defaultAuthor(), force);
  repo.warnings.push(...warnings);
  return { name: shortRefName(b), ref: b, oid: resolveRef(repo.store, b)! };
}
