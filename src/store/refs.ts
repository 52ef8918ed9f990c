/**
 * Refs and reflogs in LMDB (LmdbRefStore): reading, listing by prefix, and compare-and-swap updates that move refs and
 * append reflog entries in one LMDB transaction (serialised across processes by LMDB's writer lock).
 */
import { RefConflictError, RefExistsError, RefNotFoundError, RepositoryCorruptError, UsageError } from '../errors.js';
import { isOid, type Oid } from '../model/oid.js';
import { shortRefName } from '../model/ref.js';
import type { LmdbStore } from './lmdb-store.js';
import type { RefStore, RefUpdate, RefUpdateOptions, RefValue, ReflogEntry } from './interfaces.js';

export type { RefUpdate, RefUpdateOptions, RefValue, ReflogEntry } from './interfaces.js';

const MAX_SYMREF_DEPTH = 5;
/** HEAD has a reflog of its own (git's logs/HEAD): its moves, and every update of the branch it points at. */
const HEAD_REF = 'HEAD';

const now = () => Math.floor(Date.now() / 1000);

/** What HEAD is on, as git's reflog messages name it: the short branch name, or the commit id when detached. */
export function headDescription(refs: Pick<RefStore, 'read'>): string {
  const v = refs.read(HEAD_REF);
  return v?.symref ? shortRefName(v.symref) : v?.oid ?? HEAD_REF;
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
  if (c) throw refNameConflictError(ref, c);
}

/** The UsageError for creating `ref` next to `c`, the existing ref git's D/F rule says it cannot coexist with. */
export function refNameConflictError(ref: string, c: { ref: string; below: boolean }): UsageError {
  return new UsageError(`cannot create '${shortRefName(ref)}': '${shortRefName(c.ref)}' exists${c.below ? ' below it' : ''}`, { ref, conflict: c.ref });
}

/**
 * Follows symbolic refs from `ref` through `read` (every RefStore's `resolve`): the final ref name and its oid (none for
 * an unborn branch), or undefined when `ref` does not exist. Throws RepositoryCorruptError for a malformed value or a
 * symbolic ref loop.
 */
export function resolveRefChain(read: (ref: string) => RefValue | undefined, ref: string): { ref: string; oid?: Oid } | undefined {
  let name = ref;
  for (let i = 0; i < MAX_SYMREF_DEPTH; i++) {
    const v = read(name);
    if (!v) return i === 0 ? undefined : { ref: name };
    if (v.symref) { name = v.symref; continue; }
    if (!v.oid || !isOid(v.oid)) throw new RepositoryCorruptError(`ref '${name}'`, 'malformed value');
    return { ref: name, oid: v.oid };
  }
  throw new RepositoryCorruptError(`ref '${ref}'`, 'symbolic ref loop');
}

/**
 * The refs of a repository in LMDB (`refs` and `reflog` databases of its environment).
 *
 * Writes are `async` to fit {@link RefStore}, but do all their work synchronously, before they return their promise:
 * called inside a write transaction of the same store (gc's), they are part of it; otherwise each is one write
 * transaction.
 *
 * Locking: every write takes LMDB's writer lock, which serialises writers across processes; `update` checks every
 * expectation and moves every ref in one transaction (all or none).
 */
export class LmdbRefStore implements RefStore {
  readonly atomicMulti = true;

  constructor(private readonly store: LmdbStore) {}

  read(ref: string): RefValue | undefined {
    return this.store.refs.get(ref) as RefValue | undefined;
  }

  resolve(ref: string): { ref: string; oid?: Oid } | undefined {
    return resolveRefChain((r) => this.read(r), ref);
  }

  list(prefix = 'refs/'): Array<{ ref: string; oid: Oid }> {
    const out: Array<{ ref: string; oid: Oid }> = [];
    for (const { key, value } of this.store.refs.getRange({ start: prefix })) {
      const k = key as string;
      if (!k.startsWith(prefix)) break;
      const v = value as RefValue;
      if (v.oid) out.push({ ref: k, oid: v.oid });
    }
    return out;
  }

  reflog(ref: string): ReflogEntry[] {
    const out: ReflogEntry[] = [];
    for (const { value } of this.store.reflog.getRange({ start: [ref, Number.MAX_SAFE_INTEGER], end: [ref, -1], reverse: true })) {
      out.push(value as ReflogEntry);
    }
    return out;
  }

  /**
   * Every oid the reflog of a ref names (gc keeps them). HEAD's own reflog is left out: every commit made on any
   * branch passes through it, so it would keep everything ever committed, also on branches since deleted. gc drops
   * its entries for the commits it removes instead (dropReflogEntries), as git's `reflog expire --expire-unreachable`.
   */
  *reflogOids(): Iterable<Oid> {
    for (const { key, value } of this.store.reflog.getRange({})) {
      if ((key as [string, number])[0] === HEAD_REF) continue;
      const e = value as ReflogEntry;
      if (e.old) yield e.old;
      if (e.new) yield e.new;
    }
  }

  async update(updates: RefUpdate[], who: string, opts: RefUpdateOptions = {}): Promise<void> {
    const time = opts.time ?? now();
    this.write(() => {
      if (opts.head && this.read(HEAD_REF)?.symref !== opts.head) {
        this.moveHeadNow({ symref: opts.head }, who, `checkout: moving from ${headDescription(this)} to ${shortRefName(opts.head)}`, time);
      }
      // An update of the branch HEAD points at is a move of HEAD too (read after the move above).
      const headTarget = this.read(HEAD_REF)?.symref;
      const olds: Array<Oid | null> = [];
      for (const u of updates) {
        const cur = this.read(u.ref);
        const curOid = cur?.oid ?? null;
        if (u.expectedOld !== undefined && u.expectedOld !== curOid) throw new RefConflictError(u.ref, u.expectedOld, curOid);
        olds.push(curOid);
      }
      const { refs, reflog } = this.store;
      updates.forEach((u, i) => {
        if (u.newOid === null) {
          refs.removeSync(u.ref);
          for (const key of reflog.getKeys({ start: [u.ref, -1], end: [u.ref, Number.MAX_SAFE_INTEGER] })) reflog.removeSync(key);
        } else {
          if (olds[i] === null && !this.read(u.ref)) assertNoRefNameConflict(this.store, u.ref);
          refs.putSync(u.ref, { oid: u.newOid });
          this.appendReflog(u.ref, { old: olds[i]!, new: u.newOid, who, time, message: u.message });
          if (u.ref === headTarget) this.appendReflog(HEAD_REF, { old: olds[i]!, new: u.newOid, who, time, message: u.message });
        }
      });
    });
  }

  async moveHead(target: RefValue, who: string, message: string, time = now()): Promise<void> {
    this.write(() => this.moveHeadNow(target, who, message, time));
  }

  async setSymbolic(ref: string, target: string): Promise<void> {
    this.write(() => { this.store.refs.putSync(ref, { symref: target }); });
  }

  async rename(from: string, to: string, who: string, force = false): Promise<void> {
    const { refs, reflog } = this.store;
    this.write(() => {
      const cur = this.read(from);
      if (!cur?.oid) throw new RefNotFoundError(from);
      if (!force && this.read(to)) throw new RefExistsError(to);
      assertNoRefNameConflict(this.store, to, from);
      const entries: Array<[unknown, ReflogEntry]> = [];
      for (const { key, value } of reflog.getRange({ start: [from, -1], end: [from, Number.MAX_SAFE_INTEGER] })) entries.push([key, value as ReflogEntry]);
      for (const [k] of entries) reflog.removeSync(k as any);
      for (const key of reflog.getKeys({ start: [to, -1], end: [to, Number.MAX_SAFE_INTEGER] })) reflog.removeSync(key);
      refs.removeSync(from);
      refs.putSync(to, { oid: cur.oid });
      entries.forEach(([, e], i) => reflog.putSync([to, i], e));
      reflog.putSync([to, entries.length], { old: cur.oid, new: cur.oid, who, time: now(), message: `renamed ${from} to ${to}` });
      // Symbolic refs that pointed at the old name follow it (git does this for HEAD).
      for (const { key, value } of refs.getRange({})) {
        if ((value as RefValue).symref === from) refs.putSync(key as string, { symref: to });
      }
    });
  }

  /** `HEAD@{N}` counts the entries left. */
  async dropReflogEntries(ref: string, keep: (oid: Oid) => boolean): Promise<number> {
    const { reflog } = this.store;
    return this.write(() => {
      let n = 0;
      for (const { key, value } of [...reflog.getRange({ start: [ref, -1], end: [ref, Number.MAX_SAFE_INTEGER] })]) {
        const e = value as ReflogEntry;
        if (e.new && !keep(e.new)) { reflog.removeSync(key as [string, number]); n++; }
      }
      return n;
    });
  }

  async refresh(): Promise<{ changed: string[] }> {
    return { changed: [] };
  }

  /** Runs `fn` in a write transaction of its own, or in the caller's when one is open already (gc's). */
  private write<T>(fn: () => T): T {
    return this.store.inWriteTransaction ? fn() : this.store.writeTransaction(fn);
  }

  private moveHeadNow(target: RefValue, who: string, message: string, time: number): void {
    const old = this.resolve(HEAD_REF)?.oid ?? null;
    this.store.refs.putSync(HEAD_REF, target.symref ? { symref: target.symref } : { oid: target.oid });
    const cur = this.resolve(HEAD_REF)?.oid;
    if (cur) this.appendReflog(HEAD_REF, { old, new: cur, who, time, message });
  }

  private appendReflog(ref: string, entry: ReflogEntry): void {
    let seq = 0;
    for (const key of this.store.reflog.getKeys({ start: [ref, Number.MAX_SAFE_INTEGER], end: [ref, -1], reverse: true, limit: 1 })) {
      seq = ((key as [string, number])[1]) + 1;
    }
    this.store.reflog.putSync([ref, seq], entry);
  }
}
