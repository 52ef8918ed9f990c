/**
 * Refs in a bucket (RemoteRefStore): one JSON object per ref, moved by compare-and-swap (conditional PUT) with its
 * newest reflog entries inside it and older ones in immutable archives; HEAD stays on the host (LocalHead), as in a
 * bare git repository. Layout: docs/format.md, "Bucket format 1: refs".
 */
import { randomUUID } from 'node:crypto';
import { RefConflictError, RefExistsError, RefNotFoundError, RemoteError, RepositoryCorruptError, UsageError } from '../../errors.js';
import { isOid, type Oid } from '../../model/oid.js';
import { shortRefName } from '../../model/ref.js';
import { headDescription, refNameConflictError, resolveRefChain } from '../refs.js';
import type { RefStore, RefUpdate, RefUpdateOptions, RefValue, ReflogEntry } from '../interfaces.js';
import type { Backend } from './backend.js';
import { forEachLimit } from './concurrency.js';

/** How many reflog entries a ref object keeps; a write that would keep more archives the oldest REFLOG_ARCHIVE first. */
export const REFLOG_KEEP = 64;
/** How many entries one reflog archive (`logs/<ref>/<n>.json`) takes from a full ref object. */
export const REFLOG_ARCHIVE = 32;
/** Conditional PUTs one ref move may take (lost answers, transient errors, rebases) before it fails with RemoteError. */
export const REF_CAS_ATTEMPTS = 6;
/** Ref objects and archives read at once by `open` and `refresh`. */
export const REF_READ_CONCURRENCY = 16;
/** Backoff between attempts when nobody moved the ref: BASE × 2^(attempt-1), at most CAP, with jitter (ms). */
export const REF_BACKOFF_BASE_MS = 50;
/** See REF_BACKOFF_BASE_MS. */
export const REF_BACKOFF_CAP_MS = 2000;

const HEAD = 'HEAD';
const REFS_PREFIX = 'refs/';

const now = () => Math.floor(Date.now() / 1000);

/**
 * The object stored under `refs/<name>` (bucket format 1). `oid: null` without `symref` is a tombstone: the ref was
 * deleted (RGW has no conditional DELETE, so a ref object is never removed). `nonce` is new on every write, so a
 * writer whose answer was lost recognises its own write. `seq` grows on every write (and past every archive number
 * the write used). `log` holds the newest reflog entries, oldest first; `archives` numbers the archives
 * (`logs/<name>/<12 digits>.json`, oldest first) that hold the older ones: only the archives a ref object names are
 * part of its reflog.
 */
export interface RefObject {
  v: 1;
  oid: Oid | null;
  symref?: string;
  nonce: string;
  seq: number;
  log: ReflogEntry[];
  archives?: number[];
}

/**
 * HEAD and its reflog, which live on the host, not in the bucket: each host has its own HEAD (as each clone of a bare
 * repository does). The LMDB cache implements it over two meta keys; `MemoryLocalHead` in memory.
 */
export interface LocalHead {
  /** HEAD's value, or undefined when it was never set (or was deleted). */
  read(): RefValue | undefined;
  /** Sets HEAD (undefined removes it). */
  write(v: RefValue | undefined): void;
  /** HEAD's reflog, newest first. */
  reflog(): ReflogEntry[];
  /** Appends an entry to HEAD's reflog (it becomes the newest). */
  append(e: ReflogEntry): void;
  /** Replaces HEAD's reflog (`entries` newest first). */
  replaceReflog(entries: ReflogEntry[]): void;
}

/** A LocalHead held in memory (tests, and stores that need no durable HEAD). */
export class MemoryLocalHead implements LocalHead {
  private value: RefValue | undefined;
  private log: ReflogEntry[] = [];

  /** `initial`: HEAD's value at the start (e.g. `{ symref: 'refs/heads/main' }`). */
  constructor(initial?: RefValue) { this.value = initial && { ...initial }; }

  read(): RefValue | undefined { return this.value && { ...this.value }; }
  write(v: RefValue | undefined): void { this.value = v && { ...v }; }
  reflog(): ReflogEntry[] { return this.log.map((e) => ({ ...e })); }
  append(e: ReflogEntry): void { this.log.unshift({ ...e }); }
  replaceReflog(entries: ReflogEntry[]): void { this.log = entries.map((e) => ({ ...e })); }
}

/** A ref object as read or written, with the ETag (unquoted) it has in the bucket. */
interface Entry { etag: string; body: RefObject }

/** What a write makes of the current ref object: the fields of the next one (its nonce, seq and archives come later). */
interface Draft { oid: Oid | null; symref?: string; log: ReflogEntry[]; archives: number[] }

/**
 * The refs of a bucket repository over a `Backend`: `refs/<full name>` objects moved by compare-and-swap, and HEAD
 * on the host through a `LocalHead`.
 *
 * Reads are synchronous, from a snapshot of every ref object and the reflog archives they name, taken by `open` and
 * brought up to date by `refresh` (and by this store's own writes). Writes re-read what they need from the bucket.
 *
 * Locking: none; every ref moves by a conditional PUT (`If-Match` on the ETag the writer read, `If-None-Match: *` to
 * create), so of concurrent writers expecting the same value exactly one wins and the others get RefConflictError
 * (exit 12). `update` with several refs is not atomic (`atomicMulti` is false): refs move one by one in name order and
 * the first conflict stops the rest (`RefConflictError.data.applied` lists those that moved). A 409, 500, 503 or lost
 * answer to a conditional PUT is resolved by re-reading the ref: its nonce says whether the write landed.
 *
 * @example
 * const refs = await RemoteRefStore.open(backend, new MemoryLocalHead({ symref: 'refs/heads/main' }));
 * await refs.update([{ ref: 'refs/heads/main', newOid: oid, expectedOld: null, message: 'commit (initial): base' }], who);
 * await refs.refresh();   // see other hosts' writes
 */
export class RemoteRefStore implements RefStore {
  readonly atomicMulti = false;
  private readonly snapshot = new Map<string, Entry>();
  /** Reflog archives by key: immutable once written, so never re-read. */
  private readonly archiveCache = new Map<string, ReflogEntry[]>();

  private constructor(private readonly backend: Backend, private readonly head: LocalHead) {}

  /** Opens the refs of the repository under `backend`: lists `refs/`, reads every ref object and the archives they name. */
  static async open(backend: Backend, head: LocalHead): Promise<RemoteRefStore> {
    const store = new RemoteRefStore(backend, head);
    await store.refresh();
    return store;
  }

  read(ref: string): RefValue | undefined {
    if (ref === HEAD) return this.head.read();
    const e = this.snapshot.get(ref);
    if (!e || isTombstone(e.body)) return undefined;
    return e.body.symref ? { symref: e.body.symref } : { oid: e.body.oid! };
  }

  resolve(ref: string): { ref: string; oid?: Oid } | undefined {
    return resolveRefChain((r) => this.read(r), ref);
  }

  list(prefix = REFS_PREFIX): Array<{ ref: string; oid: Oid }> {
    const out: Array<{ ref: string; oid: Oid }> = [];
    const head = this.head.read();
    if (head?.oid && HEAD.startsWith(prefix)) out.push({ ref: HEAD, oid: head.oid });
    for (const [ref, e] of this.snapshot) {
      if (ref.startsWith(prefix) && e.body.oid && !e.body.symref) out.push({ ref, oid: e.body.oid });
    }
    return out.sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
  }

  reflog(ref: string): ReflogEntry[] {
    if (ref === HEAD) return this.head.reflog();
    const e = this.snapshot.get(ref);
    return e ? this.fullLog(ref, e.body).reverse() : [];
  }

  /** Every oid the reflogs in the bucket name (archives included); HEAD's host-local reflog is left out, as for LMDB. */
  *reflogOids(): Iterable<Oid> {
    for (const [ref, e] of this.snapshot) {
      for (const entry of this.fullLog(ref, e.body)) {
        if (entry.old) yield entry.old;
        if (entry.new) yield entry.new;
      }
    }
  }

  async update(updates: RefUpdate[], who: string, opts: RefUpdateOptions = {}): Promise<void> {
    const time = opts.time ?? now();
    const headBefore = this.head.read();
    const moveTo = opts.head && headBefore?.symref !== opts.head ? opts.head : undefined;
    const headTarget = moveTo ?? headBefore?.symref;
    const checkout = moveTo ? { from: this.resolve(HEAD)?.oid ?? null, message: `checkout: moving from ${headDescription(this)} to ${shortRefName(moveTo)}` } : undefined;
    let targetBefore = moveTo ? this.resolve(moveTo)?.oid ?? null : null;
    const headEntries: ReflogEntry[] = [];
    const applied: string[] = [];
    let failure: unknown;
    try {
      for (const u of [...updates].sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0))) {
        if (u.ref === HEAD) {
          this.updateHead(u, who, time);
          applied.push(u.ref);
          continue;
        }
        const r = await this.cas(u.ref, u.expectedOld, true, (cur) => {
          const live = liveBody(cur);
          if (u.newOid === null) return live && { oid: null, log: [], archives: [] };
          return { oid: u.newOid, log: [...(live?.log ?? []), { old: live?.oid ?? null, new: u.newOid, who, time, message: u.message }], archives: live?.archives ?? [] };
        });
        if (!r.wrote) continue;
        applied.push(u.ref);
        if (u.ref === headTarget && u.newOid !== null) {
          const old = liveBody(r.before)?.oid ?? null;
          if (u.ref === moveTo) targetBefore = old;
          headEntries.push({ old, new: u.newOid, who, time, message: u.message });
        }
      }
    } catch (e) {
      failure = e instanceof RefConflictError && applied.length
        ? new RefConflictError(String(e.data.ref), e.data.expected as string | null, e.data.actual as string | null, undefined, applied)
        : e;
    }
    // HEAD is the host's: it moves after the bucket, and only onto a branch whose update landed (or when all did).
    if (moveTo && (!failure || applied.includes(moveTo))) {
      this.head.write({ symref: moveTo });
      if (targetBefore && checkout) this.head.append({ old: checkout.from, new: targetBefore, who, time, message: checkout.message });
    }
    if (headTarget && this.head.read()?.symref === headTarget) for (const e of headEntries) this.head.append(e);
    if (failure) throw failure;
  }

  async moveHead(target: RefValue, who: string, message: string, time = now()): Promise<void> {
    const old = this.resolve(HEAD)?.oid ?? null;
    this.head.write(target.symref ? { symref: target.symref } : { oid: target.oid });
    const cur = this.resolve(HEAD)?.oid;
    if (cur) this.head.append({ old, new: cur, who, time, message });
  }

  async setSymbolic(ref: string, target: string): Promise<void> {
    if (ref === HEAD) {
      this.head.write({ symref: target });
      return;
    }
    await this.cas(ref, undefined, false, (cur) => {
      const live = liveBody(cur);
      return { oid: null, symref: target, log: live?.log ?? [], archives: live?.archives ?? [] };
    });
  }

  /**
   * Creates `to` with `from`'s value and reflog (its archives rewritten under `to`) plus a `renamed` entry, then
   * deletes `from` (expecting the value it had), then repoints the symbolic refs that named `from`. Not atomic: a
   * conflict on `from` after `to` was created leaves both.
   */
  async rename(from: string, to: string, who: string, force = false): Promise<void> {
    const cur = this.read(from);
    if (!cur?.oid) throw new RefNotFoundError(from);
    if (!force && this.read(to)) throw new RefExistsError(to);
    await this.assertNoNameConflict(to, from);
    const fromEntry = this.snapshot.get(from);
    const history = fromEntry ? this.fullLog(from, fromEntry.body) : [];
    const entry: ReflogEntry = { old: cur.oid, new: cur.oid, who, time: now(), message: `renamed ${from} to ${to}` };
    try {
      await this.cas(to, force ? undefined : null, false, () => ({ oid: cur.oid!, log: [...history, entry], archives: [] }));
    } catch (e) {
      if (!force && e instanceof RefConflictError) throw new RefExistsError(to);
      throw e;
    }
    await this.cas(from, cur.oid, false, (c) => liveBody(c) && { oid: null, log: [], archives: [] });
    if (this.head.read()?.symref === from) this.head.write({ symref: to });
    for (const [name, e] of [...this.snapshot]) {
      if (e.body.symref === from) await this.setSymbolic(name, to);
    }
  }

  /** Rewrites `ref`'s object without the refused entries; its remaining archived entries go to new archive keys. */
  async dropReflogEntries(ref: string, keep: (oid: Oid) => boolean): Promise<number> {
    const refused = (e: ReflogEntry) => e.new !== null && !keep(e.new);
    if (ref === HEAD) {
      const log = this.head.reflog();
      const kept = log.filter((e) => !refused(e));
      if (kept.length !== log.length) this.head.replaceReflog(kept);
      return log.length - kept.length;
    }
    let dropped = 0;
    await this.cas(ref, undefined, false, (cur) => {
      const live = liveBody(cur);
      const full = live ? this.fullLog(ref, live) : [];
      const kept = full.filter((e) => !refused(e));
      dropped = full.length - kept.length;
      return dropped > 0 && live ? { oid: live.oid, ...(live.symref ? { symref: live.symref } : {}), log: kept, archives: [] } : undefined;
    });
    return dropped;
  }

  /**
   * Lists `refs/` and reads the ref objects whose ETag is not the one in the snapshot (16 at a time), with the
   * archives they name that were not read before. Returns the names whose ref object changed, in name order.
   */
  async refresh(): Promise<{ changed: string[] }> {
    const listed = new Map<string, string>();
    for await (const o of this.backend.list(REFS_PREFIX)) listed.set(o.key, o.etag);
    const changed: string[] = [];
    for (const name of [...this.snapshot.keys()]) {
      if (!listed.has(name)) { this.snapshot.delete(name); changed.push(name); }
    }
    const stale = [...listed].filter(([name, etag]) => this.snapshot.get(name)?.etag !== etag).map(([name]) => name);
    await forEachLimit(stale, REF_READ_CONCURRENCY, async (name) => {
      const before = this.snapshot.get(name)?.etag;
      const e = await this.fetch(name);
      if (e?.etag !== before) changed.push(name);
    });
    return { changed: changed.sort() };
  }

  /** An update of HEAD itself, on the host (as LmdbRefStore: deleting HEAD drops its reflog). */
  private updateHead(u: RefUpdate, who: string, time: number): void {
    const cur = this.head.read()?.oid ?? null;
    if (u.expectedOld !== undefined && u.expectedOld !== cur) throw new RefConflictError(u.ref, u.expectedOld, cur);
    if (u.newOid === null) {
      this.head.write(undefined);
      this.head.replaceReflog([]);
      return;
    }
    this.head.write({ oid: u.newOid });
    this.head.append({ old: cur, new: u.newOid, who, time, message: u.message });
  }

  /**
   * The compare-and-swap loop of one ref (design: "Ref CAS"). `make` turns the current ref object (undefined: none)
   * into the next one, or returns a falsy value when there is nothing to write. With `expected` (an oid, or null for
   * "must not exist") a ref holding another value is a RefConflictError; without it the write is rebased on whatever
   * the ref holds. A ref rewritten by someone else without a change of value (a reflog rewrite) is rebased on, not a
   * conflict: the expectation is about the value. `dfCheck`: check git's D/F rule when the write creates the ref.
   * Returns the ref object the write replaced.
   */
  private async cas(name: string, expected: Oid | null | undefined, dfCheck: boolean, make: (cur: Entry | undefined) => Draft | undefined | false | null):
    Promise<{ before: Entry | undefined; wrote: boolean }> {
    const key = refKey(name);
    let cur = this.snapshot.get(name) ?? await this.fetch(name);
    if (expected !== undefined && oidOf(cur) !== expected) {
      cur = await this.fetch(name);
      if (oidOf(cur) !== expected) throw new RefConflictError(name, expected, oidOf(cur));
    }
    let checked = false;
    let body: RefObject | undefined;
    let bytes = Buffer.alloc(0);
    for (let attempt = 1; ; attempt++) {
      if (!body) {
        const draft = make(cur);
        if (!draft) return { before: cur, wrote: false };
        if (dfCheck && !checked && !isTombstone(draft) && !liveBody(cur)) {
          await this.assertNoNameConflict(name);
          checked = true;
        }
        body = await this.prepare(name, cur, draft);
        bytes = Buffer.from(JSON.stringify(body));
      }
      const r = await this.backend.put(key, bytes, cur ? { ifMatch: cur.etag } : { ifNoneMatch: '*' });
      if (r.ok) {
        this.snapshot.set(name, { etag: r.etag, body });
        return { before: cur, wrote: true };
      }
      const fresh = await this.fetch(name);
      if (fresh?.body.nonce === body.nonce) return { before: cur, wrote: true };   // ours landed; the answer was lost
      if (attempt >= REF_CAS_ATTEMPTS) {
        throw new RemoteError(this.backend.url, `cannot update ref '${name}': no conditional write succeeded in ${attempt} attempts`);
      }
      if (fresh?.etag === cur?.etag) {   // nobody moved it: a transient failure; the same write again
        await sleep(backoff(attempt));
        continue;
      }
      if (expected !== undefined && oidOf(fresh) !== expected) throw new RefConflictError(name, expected, oidOf(fresh));
      cur = fresh;   // moved without a change of the value we expect, or no expectation: rebase
      body = undefined;
    }
  }

  /**
   * The next ref object from `cur` and `draft`: a new nonce, the next seq, and, while the log is longer than
   * REFLOG_KEEP, its oldest REFLOG_ARCHIVE entries moved to a new archive (written before the ref object, so a ref
   * object never names an archive that is not there).
   */
  private async prepare(name: string, cur: Entry | undefined, draft: Draft): Promise<RefObject> {
    const base = cur?.body.seq ?? 0;
    let next = base + 1;
    let log = draft.log;
    const archives = [...draft.archives];
    while (log.length > REFLOG_KEEP) {
      const n = await this.writeArchive(name, next, log.slice(0, REFLOG_ARCHIVE));
      archives.push(n);
      next = n + 1;
      log = log.slice(REFLOG_ARCHIVE);
    }
    return {
      v: 1, oid: draft.oid, ...(draft.symref ? { symref: draft.symref } : {}), nonce: randomUUID(), seq: Math.max(base + 1, next - 1),
      log, ...(archives.length ? { archives } : {}),
    };
  }

  /**
   * Writes an archive as `logs/<name>/<n>.json` with `If-None-Match: *` and returns the number used. An existing
   * archive with the same bytes is fine (another writer archived the same entries from the same ref object); one with
   * other bytes (a writer that then lost its race) makes it take the next number.
   */
  private async writeArchive(name: string, n: number, entries: ReflogEntry[]): Promise<number> {
    const bytes = Buffer.from(JSON.stringify(entries));
    for (let attempt = 1; ; attempt++) {
      const key = archiveKey(name, n);
      const r = await this.backend.put(key, bytes, { ifNoneMatch: '*' });
      const there = r.ok ? undefined : await this.backend.get(key);
      if (r.ok || there?.body.equals(bytes)) {
        this.archiveCache.set(key, entries.map((e) => ({ ...e })));
        return n;
      }
      if (attempt >= REF_CAS_ATTEMPTS) throw new RemoteError(this.backend.url, `cannot write reflog archive '${key}' in ${attempt} attempts`);
      if (there) n++;
      else await sleep(backoff(attempt));
    }
  }

  /** Reads `refs/<name>` from the bucket into the snapshot (with the archives it names); undefined when absent. */
  private async fetch(name: string): Promise<Entry | undefined> {
    const key = refKey(name);
    const got = await this.backend.get(key);
    if (!got) {
      this.snapshot.delete(name);
      return undefined;
    }
    const entry = { etag: got.etag, body: parseRefObject(key, got.body) };
    await forEachLimit(entry.body.archives ?? [], REF_READ_CONCURRENCY, async (n) => {
      const akey = archiveKey(name, n);
      if (this.archiveCache.has(akey)) return;
      const a = await this.backend.get(akey);
      if (!a) throw new RepositoryCorruptError(`reflog archive '${akey}'`, `missing (named by '${key}')`);
      this.archiveCache.set(akey, parseArchive(akey, a.body));
    });
    // A concurrent read may have brought a newer version already (seq only grows).
    const have = this.snapshot.get(name);
    if (!have || have.body.seq <= entry.body.seq) this.snapshot.set(name, entry);
    return this.snapshot.get(name);
  }

  /** `name`'s whole reflog, oldest first: its archives, then the entries in the ref object. */
  private fullLog(name: string, body: RefObject): ReflogEntry[] {
    const out: ReflogEntry[] = [];
    for (const n of body.archives ?? []) {
      const a = this.archiveCache.get(archiveKey(name, n));
      if (!a) throw new RepositoryCorruptError(`reflog archive '${archiveKey(name, n)}'`, 'not read');
      for (const e of a) out.push({ ...e });
    }
    for (const e of body.log) out.push({ ...e });
    return out;
  }

  /**
   * Throws UsageError when `name` cannot be created next to the existing refs (git's D/F rule): a ref named like one
   * of its directories (snapshot), or one below it (snapshot, and a LIST of `refs/<name>/` for refs created since).
   * `ignore` (a ref about to be renamed away) does not count. Two hosts creating `a` and `a/b` at once are not
   * prevented from both succeeding.
   */
  private async assertNoNameConflict(name: string, ignore?: string): Promise<void> {
    const below = new Set<string>();
    for (const [ref, e] of this.snapshot) if (ref.startsWith(name + '/') && !isTombstone(e.body)) below.add(ref);
    for await (const o of this.backend.list(name + '/')) {
      const known = this.snapshot.get(o.key);
      if (known?.etag === o.etag) continue;
      const e = await this.fetch(o.key);
      if (e && !isTombstone(e.body)) below.add(o.key); else below.delete(o.key);
    }
    below.delete(ignore ?? '');
    const first = [...below].sort()[0];
    if (first) throw refNameConflictError(name, { ref: first, below: true });
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const up = parts.slice(0, i).join('/');
      if (up !== ignore && this.read(up)) throw refNameConflictError(name, { ref: up, below: false });
    }
  }
}

/** The bucket key of a ref: its full name, which must be under `refs/` (HEAD is host-local). */
function refKey(name: string): string {
  if (!name.startsWith(REFS_PREFIX) || name.length === REFS_PREFIX.length) {
    throw new UsageError(`ref '${name}' cannot be stored in a bucket repository: only names under 'refs/' can`, { ref: name });
  }
  return name;
}

/** The key of archive `n` of ref `name`: `logs/<name>/<n, 12 digits>.json`. */
function archiveKey(name: string, n: number): string {
  return `logs/${name}/${String(n).padStart(12, '0')}.json`;
}

function isTombstone(body: Pick<RefObject, 'oid' | 'symref'>): boolean {
  return body.oid === null && !body.symref;
}

/** The body of a ref object that exists (not absent, not a tombstone). */
function liveBody(e: Entry | undefined): RefObject | undefined {
  return e && !isTombstone(e.body) ? e.body : undefined;
}

/** The value an expectation is checked against: the ref's oid, or null when it is absent, deleted or symbolic. */
function oidOf(e: Entry | undefined): Oid | null {
  return liveBody(e)?.oid ?? null;
}

function isReflogEntry(e: unknown): e is ReflogEntry {
  const o = e as ReflogEntry;
  return typeof o === 'object' && o !== null && (o.old === null || isOid(o.old)) && (o.new === null || isOid(o.new))
    && typeof o.who === 'string' && typeof o.time === 'number' && typeof o.message === 'string';
}

/** Parses and checks a ref object; RepositoryCorruptError naming the key when it is not one. */
function parseRefObject(key: string, bytes: Buffer): RefObject {
  let o: RefObject;
  try {
    o = JSON.parse(bytes.toString('utf8')) as RefObject;
  } catch {
    throw new RepositoryCorruptError(`ref object '${key}'`, 'not JSON');
  }
  if (typeof o !== 'object' || o === null) throw new RepositoryCorruptError(`ref object '${key}'`, 'not an object');
  if (o.v !== 1) throw new RepositoryCorruptError(`ref object '${key}'`, `unsupported version ${String(o.v)}`);
  const ok = (o.oid === null || isOid(o.oid)) && (o.symref === undefined || typeof o.symref === 'string')
    && typeof o.nonce === 'string' && Number.isSafeInteger(o.seq) && Array.isArray(o.log) && o.log.every(isReflogEntry)
    && (o.archives === undefined || (Array.isArray(o.archives) && o.archives.every((n) => Number.isSafeInteger(n) && n >= 0)));
  if (!ok) throw new RepositoryCorruptError(`ref object '${key}'`, 'malformed');
  return o;
}

function parseArchive(key: string, bytes: Buffer): ReflogEntry[] {
  let a: unknown;
  try {
    a = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new RepositoryCorruptError(`reflog archive '${key}'`, 'not JSON');
  }
  if (!Array.isArray(a) || !a.every(isReflogEntry)) throw new RepositoryCorruptError(`reflog archive '${key}'`, 'malformed');
  return a;
}

/** The wait before attempt `attempt + 1`: REF_BACKOFF_BASE_MS × 2^(attempt-1), capped, times a jitter in [0.5, 1). */
function backoff(attempt: number): number {
  return Math.min(REF_BACKOFF_CAP_MS, REF_BACKOFF_BASE_MS * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

