/**
 * Refs and reflogs: reading, listing by prefix, and compare-and-swap updates that move refs and append reflog
 * entries in one LMDB transaction (serialised across processes by LMDB's writer lock).
 */
import { RefConflictError, RefExistsError, RefNotFoundError, RepositoryCorruptError, UsageError } from '../errors.js';
import { isOid, type Oid } from '../model/oid.js';
import { shortRefName } from '../model/ref.js';
import type { LmdbStore } from './lmdb-store.js';

export interface RefValue {
  oid?: Oid;
  /** Symbolic ref (HEAD → refs/heads/main). */
  symref?: string;
}

export interface ReflogEntry {
  old: Oid | null;
  new: Oid | null;
  who: string;
  /** Seconds since the epoch. */
  time: number;
  message: string;
}

export interface RefUpdate {
  ref: string;
  /** null deletes the ref. */
  newOid: Oid | null;
  /** undefined: no check; null: the ref must not exist; an oid: the ref must hold exactly it. */
  expectedOld?: Oid | null;
  message: string;
}

const MAX_SYMREF_DEPTH = 5;
/** HEAD has a reflog of its own (git's logs/HEAD): its moves, and every update of the branch it points at. */
const HEAD_REF = 'HEAD';

export function readRef(store: LmdbStore, ref: string): RefValue | undefined {
  return store.refs.get(ref) as RefValue | undefined;
}

/** Follows symbolic refs; returns the final ref name and its oid (undefined for an unborn branch). */
export function resolveRefChain(store: LmdbStore, ref: string): { ref: string; oid?: Oid } | undefined {
  let name = ref;
  for (let i = 0; i < MAX_SYMREF_DEPTH; i++) {
    const v = readRef(store, name);
    if (!v) return i === 0 ? undefined : { ref: name };
    if (v.symref) { name = v.symref; continue; }
    if (!v.oid || !isOid(v.oid)) throw new RepositoryCorruptError(`ref '${name}'`, 'malformed value');
    return { ref: name, oid: v.oid };
  }
  throw new RepositoryCorruptError(`ref '${ref}'`, 'symbolic ref loop');
}

export function resolveRef(store: LmdbStore, ref: string): Oid | undefined {
  return resolveRefChain(store, ref)?.oid;
}

/** Refs (not symbolic ones) whose name starts with `prefix`, in name order. */
export function listRefs(store: LmdbStore, prefix = 'refs/'): Array<{ ref: string; oid: Oid }> {
  const out: Array<{ ref: string; oid: Oid }> = [];
  for (const { key, value } of store.refs.getRange({ start: prefix })) {
    const k = key as string;
    if (!k.startsWith(prefix)) break;
    const v = value as RefValue;
    if (v.oid) out.push({ ref: k, oid: v.oid });
  }
  return out;
}

export function setSymbolicRef(store: LmdbStore, ref: string, target: string): void {
  store.writeTransaction(() => { store.refs.putSync(ref, { symref: target }); });
}

/** What HEAD is on, as git's reflog messages name it: the short branch name, or the commit id when detached. */
export function headDescription(store: LmdbStore): string {
  const v = readRef(store, HEAD_REF);
  return v?.symref ? shortRefName(v.symref) : v?.oid ?? HEAD_REF;
}

/**
 * Points HEAD at a branch (`{ symref: 'refs/heads/x' }`) or detaches it at a commit (`{ oid }`), and records the move
 * in HEAD's own reflog (`checkout: moving from a to b`), as git does: only when HEAD then names a commit (a move to
 * an unborn branch leaves no entry), in one write transaction.
 */
export function moveHead(store: LmdbStore, target: RefValue, who: string, message: string, time = Math.floor(Date.now() / 1000)): void {
  store.writeTransaction(() => moveHeadInTransaction(store, target, who, message, time));
}

/** moveHead for a caller that holds the write transaction already (updateRefs' `alsoInTxn`). */
export function moveHeadInTransaction(store: LmdbStore, target: RefValue, who: string, message: string, time = Math.floor(Date.now() / 1000)): void {
  const old = resolveRef(store, HEAD_REF) ?? null;
  store.refs.putSync(HEAD_REF, target.symref ? { symref: target.symref } : { oid: target.oid });
  const now = resolveRef(store, HEAD_REF);
  if (now) appendReflog(store, HEAD_REF, { old, new: now, who, time, message });
}

/**
 * The existing ref that git's D/F rule says `ref` cannot coexist with: a ref named like one of its parent
 * directories (`a` for `a/b`), or a ref below it (`a/b` for `a`); `ignore` (a ref about to disappear) does not count.
 */
export function findRefNameConflict(store: LmdbStore, ref: string, ignore?: string): { ref: string; below: boolean } | undefined {
  for (const key of store.refs.getKeys({ start: ref + '/' })) {
    const k = key as string;
    if (!k.startsWith(ref + '/')) break;
    if (k !== ignore) return { ref: k, below: true };
  }
  const parts = ref.split('/');
  for (let i = 1; i < parts.length; i++) {
    const up = parts.slice(0, i).join('/');
    if (up !== ignore && store.refs.doesExist(up)) return { ref: up, below: false };
  }
  return undefined;
}

/** Throws UsageError when `ref` cannot be created next to the existing refs (see findRefNameConflict). */
export function assertNoRefNameConflict(store: LmdbStore, ref: string, ignore?: string): void {
  const c = findRefNameConflict(store, ref, ignore);
  if (c) throw new UsageError(`cannot create '${shortRefName(ref)}': '${shortRefName(c.ref)}' exists${c.below ? ' below it' : ''}`, { ref, conflict: c.ref });
}

function appendReflog(store: LmdbStore, ref: string, entry: ReflogEntry): void {
  let seq = 0;
  for (const key of store.reflog.getKeys({ start: [ref, Number.MAX_SAFE_INTEGER], end: [ref, -1], reverse: true, limit: 1 })) {
    seq = ((key as [string, number])[1]) + 1;
  }
  store.reflog.putSync([ref, seq], entry);
}

/**
 * Applies all updates atomically: every expectation is checked first inside the write transaction, then every
 * ref moves and gets a reflog entry. Objects must already be durable (LmdbStore.flush) before this is called.
 * Throws RefConflictError when a ref does not hold its expected value, UsageError when a new ref would break
 * git's D/F rule (`a` next to `a/b`); nothing changes then.
 */
export function updateRefs(store: LmdbStore, updates: RefUpdate[], who: string, time = Math.floor(Date.now() / 1000), alsoInTxn?: () => void): void {
  store.writeTransaction(() => {
    alsoInTxn?.();
    // An update of the branch HEAD points at is a move of HEAD too (read after alsoInTxn, which may move HEAD).
    const headTarget = readRef(store, HEAD_REF)?.symref;
    const olds: Array<Oid | null> = [];
    for (const u of updates) {
      const cur = readRef(store, u.ref);
      const curOid = cur?.oid ?? null;
      if (u.expectedOld !== undefined && u.expectedOld !== curOid) throw new RefConflictError(u.ref, u.expectedOld, curOid);
      olds.push(curOid);
    }
    updates.forEach((u, i) => {
      if (u.newOid === null) {
        store.refs.removeSync(u.ref);
        for (const key of store.reflog.getKeys({ start: [u.ref, -1], end: [u.ref, Number.MAX_SAFE_INTEGER] })) store.reflog.removeSync(key);
      } else {
        if (olds[i] === null && !readRef(store, u.ref)) assertNoRefNameConflict(store, u.ref);
        store.refs.putSync(u.ref, { oid: u.newOid });
        appendReflog(store, u.ref, { old: olds[i]!, new: u.newOid, who, time, message: u.message });
        if (u.ref === headTarget) appendReflog(store, HEAD_REF, { old: olds[i]!, new: u.newOid, who, time, message: u.message });
      }
    });
  });
}

/**
 * Renames a ref with its reflog; fails if `to` exists (unless force) or `from` does not (RefExistsError,
 * RefNotFoundError), or if `to` breaks the D/F rule (UsageError; `from` itself does not count: `a` → `a/b` works).
 */
export function renameRef(store: LmdbStore, from: string, to: string, who: string, force = false): void {
  store.writeTransaction(() => {
    const cur = readRef(store, from);
    if (!cur?.oid) throw new RefNotFoundError(from);
    if (!force && readRef(store, to)) throw new RefExistsError(to);
    assertNoRefNameConflict(store, to, from);
    const entries: Array<[unknown, ReflogEntry]> = [];
    for (const { key, value } of store.reflog.getRange({ start: [from, -1], end: [from, Number.MAX_SAFE_INTEGER] })) entries.push([key, value as ReflogEntry]);
    for (const [k] of entries) store.reflog.removeSync(k as any);
    for (const key of store.reflog.getKeys({ start: [to, -1], end: [to, Number.MAX_SAFE_INTEGER] })) store.reflog.removeSync(key);
    store.refs.removeSync(from);
    store.refs.putSync(to, { oid: cur.oid });
    entries.forEach(([, e], i) => store.reflog.putSync([to, i], e));
    store.reflog.putSync([to, entries.length], { old: cur.oid, new: cur.oid, who, time: Math.floor(Date.now() / 1000), message: `renamed ${from} to ${to}` });
    // Symbolic refs that pointed at the old name follow it (git does this for HEAD).
    for (const { key, value } of store.refs.getRange({})) {
      if ((value as RefValue).symref === from) store.refs.putSync(key as string, { symref: to });
    }
  });
}

/** Reflog of a ref, newest first. */
export function readReflog(store: LmdbStore, ref: string): ReflogEntry[] {
  const out: ReflogEntry[] = [];
  for (const { value } of store.reflog.getRange({ start: [ref, Number.MAX_SAFE_INTEGER], end: [ref, -1], reverse: true })) {
    out.push(value as ReflogEntry);
  }
  return out;
}

/**
 * Every oid the reflog of a ref names (gc keeps them). HEAD's own reflog is left out: every commit made on any branch
 * passes through it, so it would keep everything ever committed, also on branches since deleted. gc drops its
 * entries for the commits it removes instead (dropReflogEntries), as git's `reflog expire --expire-unreachable`.
 */
export function* listReflogOids(store: LmdbStore): Iterable<Oid> {
  for (const { key, value } of store.reflog.getRange({})) {
    if ((key as [string, number])[0] === HEAD_REF) continue;
    const e = value as ReflogEntry;
    if (e.old) yield e.old;
    if (e.new) yield e.new;
  }
}

/**
 * Removes the entries of `ref`'s reflog whose new value `keep` refuses (`HEAD@{N}` counts the entries left). Call it
 * inside a write transaction (gc's). Returns how many were removed.
 */
export function dropReflogEntries(store: LmdbStore, ref: string, keep: (oid: Oid) => boolean): number {
  let n = 0;
  for (const { key, value } of [...store.reflog.getRange({ start: [ref, -1], end: [ref, Number.MAX_SAFE_INTEGER] })]) {
    const e = value as ReflogEntry;
    if (e.new && !keep(e.new)) { store.reflog.removeSync(key as [string, number]); n++; }
  }
  return n;
}
