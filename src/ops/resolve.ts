/**
 * Revision syntax as git's: full or unique-prefix ids, HEAD, branch and tag names, full ref names, `REV~N`, `REV^`,
 * `REV^N`, and `REV:path` for one entry of the image (`REV:"caf\303"`: a path in double quotes is C-unquoted).
 */
import { AmbiguousRevisionError, PathNotFoundError, RevisionNotFoundError, UsageError } from '../errors.js';
import type { Commit, RootMeta } from '../model/commit.js';
import { MIN_PREFIX, type Oid, isOid } from '../model/oid.js';
import { HEAD, HEADS, REMOTES, TAGS } from '../model/ref.js';
import type { TreeEntry } from '../model/tree.js';
import { quotePath, unquotePath } from '../model/quote.js';
import { resolveRefChain } from '../store/refs.js';
import type { Repository } from '../store/repository.js';
import { commitTree, readCommit, tryReadPath } from '../store/typed.js';
import type { ObjectReader } from '../store/object-store.js';
import { splitPath } from '../tree/mutable-tree.js';

export interface ResolvedRevision {
  oid: Oid;
  commit: Commit;
  /** The full ref name when the revision named one directly. */
  ref?: string;
}

/**
 * Candidate full ref names for a short name, in git's order (rev-parse: refs/<n>, tags, heads, remotes), so that
 * `heads/main` names the branch when a tag `main` shadows it.
 */
export function refCandidates(name: string): string[] {
  if (name === HEAD) return [HEAD];
  if (name.startsWith('refs/')) return [name];
  return [`refs/${name}`, TAGS + name, HEADS + name, REMOTES + name, `${REMOTES}${name}/HEAD`];
}

/** Hex names this long could also be a commit id prefix (git warns about such refs; viva warns too). */
export function looksLikeOidPrefix(name: string): boolean {
  return name.length >= MIN_PREFIX && name.length <= 64 && /^[0-9a-f]+$/i.test(name);
}

/**
 * Warnings for a ref about to be created whose short name another ref or a commit id already answers to: `tag main`
 * next to branch main (the tag wins in lookups, as in git), a branch `8496` (a commit id prefix).
 */
export function shadowWarnings(repo: Repository, ref: string): string[] {
  const name = ref.startsWith(TAGS) ? ref.slice(TAGS.length) : ref.startsWith(HEADS) ? ref.slice(HEADS.length) : undefined;
  if (name === undefined) return [];
  const out: string[] = [];
  const others = refCandidates(name).filter((c) => c !== ref && resolveRefChain(repo.store, c)?.oid);
  if (others.length) {
    const winner = refCandidates(name).find((c) => c === ref || others.includes(c))!;
    out.push(`refname '${name}' is ambiguous (${[ref, ...others].join(', ')}): '${name}' means ${winner}; say ${[ref, ...others].map((r) => r.slice('refs/'.length)).join(' or ')}`);
  }
  if (looksLikeOidPrefix(name)) out.push(`'${name}' looks like a commit id: as a revision it now means ${ref}, not a commit whose id starts with it`);
  return out;
}

/** Resolves the part before any `~`/`^` suffix. Ambiguous short names warn on `repo.warnings`, as git does. */
function resolveBase(repo: Repository, base: string, whole: string): { oid: Oid; ref?: string } {
  const store = repo.store;
  const cands = refCandidates(base);
  for (let i = 0; i < cands.length; i++) {
    const cand = cands[i]!;
    const r = resolveRefChain(store, cand);
    if (r?.oid) {
      // git's warn_ambiguous_refs: another candidate, or a commit id with this prefix, also answers to the name.
      const also = cands.slice(i + 1).filter((c) => resolveRefChain(store, c)?.oid);
      if (looksLikeOidPrefix(base) && !store.listObjects('commit', base.toLowerCase())[Symbol.iterator]().next().done) also.push('a commit id');
      if (also.length && !repo.warnings.includes(`refname '${base}' is ambiguous (${[cand, ...also].join(', ')}): using ${cand}`) && repo.warnings.length < 100) repo.warnings.push(`refname '${base}' is ambiguous (${[cand, ...also].join(', ')}): using ${cand}`);
      return { oid: r.oid, ref: r.ref };
    }
    if (r && cand === HEAD) throw new RevisionNotFoundError(whole, 'unborn branch', `your current branch '${r.ref.replace(HEADS, '')}' does not have any commits yet`);
  }
  if (/^[0-9a-f]+$/i.test(base) && base.length >= MIN_PREFIX) {
    const hex = base.toLowerCase();
    if (isOid(hex) && store.hasObject('commit', hex)) return { oid: hex };
    const found: Oid[] = [];
    for (const oid of store.listObjects('commit', hex)) {
      found.push(oid);
      if (found.length > 8) break;
    }
    if (found.length === 1) return { oid: found[0]! };
    if (found.length > 1) throw new AmbiguousRevisionError(base, found);
  }
  throw new RevisionNotFoundError(whole);
}

/**
 * Resolves a revision (without `:path`) to a commit. Throws RevisionNotFoundError, AmbiguousRevisionError.
 * @example resolveRevision(repo, 'debian/12/base~2')
 */
export function resolveRevision(repo: Repository, rev: string): ResolvedRevision {
  if (rev.includes(':')) throw new UsageError(`'${rev}' names a path; a commit is expected here`);
  const m = /^(.*?)((?:[~^]\d*)*)$/.exec(rev);
  const base = m?.[1] ?? rev;
  const suffix = m?.[2] ?? '';
  if (!base) throw new RevisionNotFoundError(rev);
  const start = resolveBase(repo, base, rev);
  let oid = start.oid;
  let c = readCommit(repo.store, oid);
  const ops = suffix.match(/[~^]\d*/g) ?? [];
  for (const op of ops) {
    const n = op.length > 1 ? Number(op.slice(1)) : 1;
    if (op[0] === '~') {
      for (let i = 0; i < n; i++) {
        const p = c.parents[0];
        if (!p) throw new RevisionNotFoundError(rev, 'not enough ancestors for');
        oid = p;
        c = readCommit(repo.store, oid);
      }
    } else if (n > 0) {
      const p = c.parents[n - 1];
      if (!p) throw new RevisionNotFoundError(rev, `no parent ${n} in`);
      oid = p;
      c = readCommit(repo.store, oid);
    }
  }
  return { oid, commit: c, ...(ops.length === 0 && start.ref ? { ref: start.ref } : {}) };
}

export interface ResolvedEntry {
  commitOid: Oid;
  commit: Commit;
  /** Image path ('' = root). */
  path: Buffer;
  /** The entry; for the root a synthetic dir entry built from the commit's root metadata. */
  entry: TreeEntry;
}

/** Splits `REV:path` (a missing `:path` means the root). */
export function splitRevPath(spec: string): { rev: string; path: string } {
  const i = spec.indexOf(':');
  if (i < 0) return { rev: spec, path: '' };
  return { rev: spec.slice(0, i) || HEAD, path: spec.slice(i + 1) };
}

/**
 * Normalises a user-given image path ('/etc//passwd/' → 'etc/passwd'). A string that starts with `"` is the quoted
 * form human output prints for names with control characters or bytes that are not UTF-8 (model/quote.ts): it is
 * unquoted into those bytes first. Throws UsageError for a malformed quoted path.
 */
export function normalizeImagePath(p: string | Buffer): Buffer {
  let b: Buffer;
  if (typeof p === 'string') {
    const u = unquotePath(p);
    if ('error' in u) throw new UsageError(`path '${p}' is not a valid quoted path: ${u.error}`);
    b = u.bytes;
  } else {
    b = p;
  }
  const parts = splitPath(b).filter((x) => x.length > 0 && !(x.length === 1 && x[0] === 0x2e));
  return Buffer.from(parts.map((x) => x.toString('latin1')).join('/'), 'latin1');
}

/** The commit's root directory as an entry (for a disk commit: its view tree, see model/disk.ts). */
export function rootEntry(store: ObjectReader, c: Commit): TreeEntry {
  return dirEntry(commitTree(store, c), c.rootMeta);
}

/** A directory entry (empty name) for tree `oid` with root metadata `m` (default 0755 root:root, mtime 0). */
export function dirEntry(oid: Oid, m?: RootMeta): TreeEntry {
  return {
    name: Buffer.alloc(0), type: 'dir', mode: m?.mode ?? 0o755, uid: m?.uid ?? 0, gid: m?.gid ?? 0, mtimeNs: m?.mtimeNs ?? 0n,
    size: 0, xattrs: m?.xattrs ?? [], oid,
  };
}

/** Looks a path up in a commit's tree. Throws PathNotFoundError. */
export function resolveEntry(repo: Repository, commitOid: Oid, commit: Commit, path: Buffer, revForErrors: string): ResolvedEntry {
  const root = rootEntry(repo.store, commit);
  const entry = path.length === 0 ? root : tryReadPath(repo.store, root.oid!, path);
  if (!entry) throw new PathNotFoundError(quotePath(path), revForErrors);
  return { commitOid, commit, path, entry };
}

/** Resolves `REV[:path]` to an entry. */
export function resolveSpec(repo: Repository, spec: string): ResolvedEntry {
  const { rev, path } = splitRevPath(spec);
  const r = resolveRevision(repo, rev);
  return resolveEntry(repo, r.oid, r.commit, normalizeImagePath(path), rev);
}
