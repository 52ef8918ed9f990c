/**
 * Revision syntax as git's: full or unique-prefix ids, HEAD (or `@`), branch and tag names, full ref names,
 * `remotes/origin/x`, `REF@{N}` (the Nth prior value of REF, from its reflog), `@{-N}` (the Nth branch checked out
 * before the current one), `REF@{upstream}` / `@{u}`, `REV~N`, `REV^`, `REV^N`, and `REV:path` for one entry of the
 * image (`REV:"caf\303"`: a path in double quotes is C-unquoted).
 */
import { AmbiguousRevisionError, PathNotFoundError, RevisionNotFoundError, UsageError } from '../errors.js';
import type { Commit, RootMeta } from '../model/commit.js';
import { MIN_PREFIX, type Oid, isOid } from '../model/oid.js';
import { HEAD, HEADS, REMOTES, TAGS } from '../model/ref.js';
import type { TreeEntry } from '../model/tree.js';
import { quotePath, unquotePath } from '../model/quote.js';
import { type ReflogEntry } from '../store/refs.js';
import type { Repository } from '../store/repository.js';
import { commitTree, readCommit, tryReadPath } from '../store/typed.js';
import type { ObjectReader } from '../store/object-store.js';
import { splitPath } from '../tree/mutable-tree.js';
import { readUpstream } from './upstream.js';

/** A revision resolved ({@link resolveRevision}): the commit's id and object, and the ref it named directly, if any. */
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
  const others = refCandidates(name).filter((c) => c !== ref && repo.refs.resolve(c)?.oid);
  if (others.length) {
    const winner = refCandidates(name).find((c) => c === ref || others.includes(c))!;
    out.push(`refname '${name}' is ambiguous (${[ref, ...others].join(', ')}): '${name}' means ${winner}; say ${[ref, ...others].map((r) => r.slice('refs/'.length)).join(' or ')}`);
  }
  if (looksLikeOidPrefix(name)) out.push(`'${name}' looks like a commit id: as a revision it now means ${ref}, not a commit whose id starts with it`);
  return out;
}

/**
 * The reflog a name stands for, newest first: HEAD's own (in a repository made before HEAD had one: its branch's), or
 * the first ref the name's candidates find. undefined when no such ref exists.
 */
export function findReflog(repo: Repository, name: string): { ref: string; entries: ReflogEntry[] } | undefined {
  if (name === HEAD || name === '@') {
    const own = repo.refs.reflog(HEAD);
    const target = repo.refs.read(HEAD)?.symref;
    return own.length || !target ? { ref: HEAD, entries: own } : { ref: target, entries: repo.refs.reflog(target) };
  }
  for (const cand of refCandidates(name)) {
    const r = repo.refs.resolve(cand);
    if (r) return { ref: r.ref, entries: repo.refs.reflog(r.ref) };
  }
  return undefined;
}

/** The branches HEAD's reflog says were checked out before, newest first (`checkout: moving from A to B` → A). */
export function previousBranches(repo: Repository): string[] {
  const out: string[] = [];
  for (const e of repo.refs.reflog(HEAD)) {
    const m = /^checkout: moving from (.+) to .+$/.exec(e.message);
    if (m) out.push(m[1]!);
  }
  return out;
}

/**
 * The name `@{-N}` stands for: the Nth branch (or detached commit id) checked out before the current one. Throws
 * RevisionNotFoundError when HEAD's reflog records fewer moves.
 */
export function previousBranch(repo: Repository, n: number, whole = `@{-${n}}`): string {
  const name = previousBranches(repo)[n - 1];
  if (name === undefined) throw new RevisionNotFoundError(whole, 'unknown revision', `'${whole}': HEAD's reflog records ${plural(previousBranches(repo).length, 'earlier checkout')}`);
  return name;
}

function plural(n: number, one: string): string {
  return `${n === 0 ? 'no' : n} ${n === 1 ? one : `${one}s`}`;
}

/** `@{…}` forms: `REF@{N}`, `@{N}`, `@{-N}`, `REF@{u}` / `REF@{upstream}`; undefined for anything else. */
function resolveAt(repo: Repository, base: string, whole: string): { oid: Oid; ref?: string } | undefined {
  const m = /^(.*)@\{(-?\d+|u|upstream)\}$/i.exec(base);
  if (!m) return undefined;
  const name = m[1]!;
  const sel = m[2]!.toLowerCase();
  if (sel.startsWith('-')) {
    if (name) throw new RevisionNotFoundError(whole, 'unknown revision', `'${whole}': @{-N} stands alone (the Nth branch checked out before)`);
    const prev = previousBranch(repo, Number(sel.slice(1)), whole);
    const branch = repo.refs.resolve(HEADS + prev);
    if (branch?.oid) return { oid: branch.oid, ref: branch.ref };
    return resolveBase(repo, prev, whole);
  }
  // `@{N}` and `@{u}` without a name mean the branch HEAD points at (`HEAD@{N}` is HEAD's own reflog).
  const target = name === '' || name === '@' ? (repo.refs.read(HEAD)?.symref ?? HEAD) : name;
  if (sel === 'u' || sel === 'upstream') {
    const of = name === HEAD ? (repo.refs.read(HEAD)?.symref ?? HEAD) : target;
    const branch = of.startsWith(HEADS) ? of : repo.refs.resolve(HEADS + of) ? HEADS + of : undefined;
    if (!branch) throw new RevisionNotFoundError(whole, 'unknown revision', `'${whole}': '${name || HEAD}' is not a branch, so it has no upstream`);
    const up = readUpstream(repo, branch);
    if (!up) throw new RevisionNotFoundError(whole, 'unknown revision', `no upstream configured for branch '${branch.slice(HEADS.length)}'`);
    const oid = repo.refs.resolve(up.ref)?.oid;
    if (!oid) throw new RevisionNotFoundError(whole, 'unknown revision', `upstream branch '${up.name}' of '${branch.slice(HEADS.length)}' does not exist (fetch it?)`);
    return { oid, ref: up.ref };
  }
  const log = findReflog(repo, target);
  if (!log) throw new RevisionNotFoundError(whole);
  const n = Number(sel);
  const e = log.entries[n];
  if (!e?.new) throw new RevisionNotFoundError(whole, 'unknown revision', `log for '${name || shortName(log.ref)}' only has ${log.entries.length} ${log.entries.length === 1 ? 'entry' : 'entries'}`);
  return { oid: e.new };
}

function shortName(ref: string): string {
  return ref.startsWith(HEADS) ? ref.slice(HEADS.length) : ref;
}

/** Resolves the part before any `~`/`^` suffix. Ambiguous short names warn on `repo.warnings`, as git does. */
function resolveBase(repo: Repository, base: string, whole: string): { oid: Oid; ref?: string } {
  const store = repo.objects;
  const at = resolveAt(repo, base, whole);
  if (at) return at;
  if (base === '@') base = HEAD;
  const cands = refCandidates(base);
  for (let i = 0; i < cands.length; i++) {
    const cand = cands[i]!;
    const r = repo.refs.resolve(cand);
    if (r?.oid) {
      // git's warn_ambiguous_refs: another candidate, or a commit id with this prefix, also answers to the name.
      const also = cands.slice(i + 1).filter((c) => repo.refs.resolve(c)?.oid);
      if (looksLikeOidPrefix(base) && !repo.index.list('commit', base.toLowerCase())[Symbol.iterator]().next().done) also.push('a commit id');
      if (also.length && !repo.warnings.includes(`refname '${base}' is ambiguous (${[cand, ...also].join(', ')}): using ${cand}`) && repo.warnings.length < 100) repo.warnings.push(`refname '${base}' is ambiguous (${[cand, ...also].join(', ')}): using ${cand}`);
      return { oid: r.oid, ref: r.ref };
    }
    if (r && cand === HEAD) throw new RevisionNotFoundError(whole, 'unborn branch', `your current branch '${r.ref.replace(HEADS, '')}' does not have any commits yet`);
  }
  if (/^[0-9a-f]+$/i.test(base) && base.length >= MIN_PREFIX) {
    const hex = base.toLowerCase();
    if (isOid(hex) && store.hasObject('commit', hex)) return { oid: hex };
    const found: Oid[] = [];
    for (const oid of repo.index.list('commit', hex)) {
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
  let c = readCommit(repo.objects, oid);
  const ops = suffix.match(/[~^]\d*/g) ?? [];
  for (const op of ops) {
    const n = op.length > 1 ? Number(op.slice(1)) : 1;
    if (op[0] === '~') {
      for (let i = 0; i < n; i++) {
        const p = c.parents[0];
        if (!p) throw new RevisionNotFoundError(rev, 'not enough ancestors for');
        oid = p;
        c = readCommit(repo.objects, oid);
      }
    } else if (n > 0) {
      const p = c.parents[n - 1];
      if (!p) throw new RevisionNotFoundError(rev, `no parent ${n} in`);
      oid = p;
      c = readCommit(repo.objects, oid);
    }
  }
  return { oid, commit: c, ...(ops.length === 0 && start.ref ? { ref: start.ref } : {}) };
}

/** `REV:path` resolved ({@link resolveSpec}): the commit, the path and the entry it names. */
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
  const root = rootEntry(repo.objects, commit);
  const entry = path.length === 0 ? root : tryReadPath(repo.objects, root.oid!, path);
  if (!entry) throw new PathNotFoundError(quotePath(path), revForErrors);
  return { commitOid, commit, path, entry };
}

/** Resolves `REV[:path]` to an entry. */
export function resolveSpec(repo: Repository, spec: string): ResolvedEntry {
  const { rev, path } = splitRevPath(spec);
  const r = resolveRevision(repo, rev);
  return resolveEntry(repo, r.oid, r.commit, normalizeImagePath(path), rev);
}
