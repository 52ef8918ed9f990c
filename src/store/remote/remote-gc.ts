/**
 * The bucket mechanics of gc for a repository in a bucket: kopia's delayed deletion (docs/s3.md, "gc with several
 * writers"). One gc at a time holds `gc/lease.json`. A run sweeps old marks (repacking what must stay, retiring and
 * deleting the packs), marks the copies of unreachable objects with a tombstone segment plus `gc/marks/<runId>.json`
 * naming the writer sessions it must outlive, deletes orphan packs, and merges segments when there are many.
 * Reachability is the caller's (the op layer walks the refs); this file only sees a predicate over object keys.
 */
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { RemoteError, RepositoryLockedError } from '../../errors.js';
import type { PackId, RepoConfig } from '../interfaces.js';
import type { Backend } from './backend.js';
import { RemotePackWriter } from './remote-pack-writer.js';
import type { RemoteIndex } from './remote-index.js';
import type { RemotePackStore } from './remote-packs.js';
import type { Segment, SegmentPack, SegmentStore, SegmentTombstone } from './segment.js';
import { SESSION_EXPIRY_MS, listSessions, sessionExpired, type SessionInfo } from './sessions.js';

/** The key of the gc lease, below the prefix. */
export const LEASE_KEY = 'gc/lease.json';
/** The key prefix of gc marks. */
export const MARKS_PREFIX = 'gc/marks/';
/** How long a lease holds without renewal. */
export const LEASE_MS = 15 * 60_000;
/** How often a running gc renews its lease. */
export const LEASE_RENEW_MS = 5 * 60_000;
/** Clock skew allowed between hosts (lease expiry, session start against pack times). */
export const SKEW_MS = 5 * 60_000;
/** Above this many segments, gc merges them into one. */
export const SEGMENT_LIMIT = 64;

/** What `gc/lease.json` holds. */
export interface LeaseBody { holder: string; host: string; pid: number; expires: number }

/** What `gc/marks/<runId>.json` holds. */
export interface MarkBody {
  /** ms since the epoch (server time, from the lease's LastModified) when the mark was made. */
  created: number;
  /** The tombstone segment of this mark. */
  segment: string;
  /** The packs holding the tombstoned copies. */
  packs: PackId[];
  /** Writer sessions live when the tombstones were published: the sweep waits until each has ended or expired. */
  waitFor: string[];
}

/** A mark as listed: its run id, body, and the server time it was written. */
export interface Mark extends MarkBody { runId: string; mtime: number }

/**
 * The gc lease: created only if absent (`If-None-Match: *`), taken over when expired (`If-Match` on the old ETag),
 * renewed every LEASE_RENEW_MS while held, deleted at release only if it is still ours.
 */
export class GcLease {
  private timer?: NodeJS.Timeout;
  private renewing?: Promise<void>;
  private lost?: RepositoryLockedError;

  private constructor(private readonly backend: Backend, private etag: string, private readonly body: LeaseBody) {}

  /**
   * Takes the lease. Throws RepositoryLockedError (exit 11) while another gc holds a lease that has not expired,
   * RemoteError when the bucket fails.
   */
  static async acquire(backend: Backend, options: { renewMs?: number } = {}): Promise<GcLease> {
    for (let attempt = 0; attempt < 6; attempt++) {
      const body: LeaseBody = { holder: randomUUID(), host: os.hostname(), pid: process.pid, expires: Date.now() + LEASE_MS };
      const bytes = Buffer.from(JSON.stringify(body));
      const cur = await backend.get(LEASE_KEY);
      let cond: { ifMatch: string } | { ifNoneMatch: '*' } = { ifNoneMatch: '*' };
      if (cur) {
        const held = parseLease(cur.body);
        if (held && held.expires + SKEW_MS > Date.now()) throw lockedBy(backend, held);
        cond = { ifMatch: cur.etag };
      }
      const r = await backend.put(LEASE_KEY, bytes, cond);
      let etag: string | undefined = r.ok ? r.etag : undefined;
      if (!r.ok && r.why === 'unknown') {
        const got = await backend.get(LEASE_KEY);
        if (got && parseLease(got.body)?.holder === body.holder) etag = got.etag;
      }
      if (etag !== undefined) {
        // An empty ETag (some servers answer so) is settled by reading the lease back.
        if (etag === '') etag = (await backend.get(LEASE_KEY))?.etag ?? '';
        const lease = new GcLease(backend, etag, body);
        lease.timer = setInterval(() => {
          // A failed renewal is retried at the next tick; a lease another gc took over is final (assertHeld throws).
          lease.renewing = lease.renew().catch((e: unknown) => { if (e instanceof RepositoryLockedError) lease.lost = e; });
        }, options.renewMs ?? LEASE_RENEW_MS);
        lease.timer.unref();
        return lease;
      }
      // Lost a race for the key: read it again (the winner's lease is live, so the next round refuses).
    }
    throw new RemoteError(backend.url, `could not take the gc lease '${LEASE_KEY}'`);
  }

  /** Throws RepositoryLockedError when a renewal found the lease taken over (this gc ran past its expiry). */
  assertHeld(): void {
    if (this.lost) throw this.lost;
  }

  /** The server's time now (ms): the lease's LastModified after a renewal, which gc uses as its clock. */
  async serverNow(): Promise<number> {
    await this.renew();
    return (await this.backend.head(LEASE_KEY))?.mtime ?? Date.now();
  }

  /** Rewrites the lease with a new expiry, if it is still ours. Throws RepositoryLockedError when it is not. */
  async renew(): Promise<void> {
    this.body.expires = Date.now() + LEASE_MS;
    const r = await this.backend.put(LEASE_KEY, Buffer.from(JSON.stringify(this.body)), { ifMatch: this.etag });
    if (r.ok && r.etag) { this.etag = r.etag; return; }
    const got = await this.backend.get(LEASE_KEY);
    const held = got ? parseLease(got.body) : undefined;
    if (got && held?.holder === this.body.holder) { this.etag = got.etag; return; }
    throw held ? lockedBy(this.backend, held) : new RemoteError(this.backend.url, `the gc lease '${LEASE_KEY}' is gone`);
  }

  /** Stops renewing and deletes the lease if it is still ours (RGW has no conditional DELETE: read, compare, delete). */
  async release(): Promise<void> {
    clearInterval(this.timer);
    await this.renewing;
    const got = await this.backend.get(LEASE_KEY);
    if (got && parseLease(got.body)?.holder === this.body.holder) await this.backend.delete([LEASE_KEY]);
  }
}

function parseLease(body: Buffer): LeaseBody | undefined {
  try {
    const j = JSON.parse(body.toString('utf8')) as Partial<LeaseBody>;
    return { holder: String(j.holder ?? ''), host: String(j.host ?? '?'), pid: Number(j.pid ?? 0), expires: Number(j.expires ?? 0) };
  } catch {
    return undefined;
  }
}

function lockedBy(backend: Backend, held: LeaseBody): RepositoryLockedError {
  return new RepositoryLockedError(backend.url, `gc running on ${held.host} (pid ${held.pid})`);
}

/** What a sweep did. */
export interface SweepResult {
  /** Marks swept (and deleted). */
  marks: number;
  /** Copies deleted with their packs (objects no ref reaches). */
  objects: number;
  /** Packs deleted. */
  packs: number;
  /** Stored bytes of the deleted packs. */
  bytes: number;
  /** Objects those packs held that had to stay: uploaded again into new packs. */
  repacked: number;
  /** Stored bytes uploaded for them. */
  repackedBytes: number;
}

/** What a mark did. */
export interface MarkResult {
  /** The new mark, or undefined when nothing was left to mark. */
  mark?: Mark;
  /** Copies tombstoned. */
  objects: number;
  /** Their stored bytes. */
  bytes: number;
}

/**
 * gc's operations on the bucket of one repository, over the host's index of it. `refresh` brings the index up to
 * the bucket (the repository's refresh). Each method is one step of the protocol; the op runs them under a lease.
 */
export class BucketGc {
  constructor(
    readonly backend: Backend,
    readonly config: RepoConfig,
    readonly index: RemoteIndex,
    readonly packs: RemotePackStore,
    readonly segments: SegmentStore,
    private readonly refresh: () => Promise<unknown>,
  ) {}

  /** True when the bucket holds any copy of the object (tombstoned ones too): what the reachability walk may read. */
  hasCopy(key: Buffer): boolean {
    return this.index.liveCopies(key, false).length > 0;
  }

  /** Every mark in the bucket, oldest first; unreadable ones are skipped. */
  async listMarks(): Promise<Mark[]> {
    const out: Mark[] = [];
    for await (const o of this.backend.list(MARKS_PREFIX)) {
      const got = await this.backend.get(o.key);
      if (!got) continue;
      try {
        const j = JSON.parse(got.body.toString('utf8')) as MarkBody;
        out.push({ ...j, runId: o.key.slice(MARKS_PREFIX.length).replace(/\.json$/, ''), mtime: o.mtime });
      } catch {
        continue;
      }
    }
    return out.sort((a, b) => a.created - b.created);
  }

  /**
   * The marks that may be swept at server time `now`: at least `graceMs` old, and every session in their `waitFor`
   * gone (ended, or expired: an expired session object is deleted here). Also returns the sessions still waited for.
   */
  async sweepable(marks: Mark[], now: number, graceMs: number): Promise<{ ready: Mark[]; waiting: Set<string> }> {
    const live = new Map<string, SessionInfo>();
    const dead: string[] = [];
    for (const s of await listSessions(this.backend)) {
      if (sessionExpired(s, now, SESSION_EXPIRY_MS)) dead.push(`sessions/${s.id}.json`);
      else live.set(s.id, s);
    }
    if (dead.length) await this.backend.delete(dead);
    const ready: Mark[] = [];
    const waiting = new Set<string>();
    for (const m of marks) {
      const blocking = m.waitFor.filter((id) => live.has(id));
      blocking.forEach((id) => waiting.add(id));
      if (blocking.length === 0 && now - m.created >= graceMs) ready.push(m);
    }
    return { ready, waiting };
  }

  /**
   * Sweeps `marks` (each sweepable, and `reachable` computed after they became so): the copies a mark tombstoned
   * whose object no ref reaches go; every other object in a marked pack that has no live copy elsewhere is uploaded
   * again into a new pack. One segment publishes the new packs and retires the old ones; then the old packs and the
   * marks are deleted.
   */
  async sweep(marks: Mark[], reachable: (key: Buffer) => boolean): Promise<SweepResult> {
    const result: SweepResult = { marks: 0, objects: 0, packs: 0, bytes: 0, repacked: 0, repackedBytes: 0 };
    if (marks.length === 0) return result;
    const gone = new Set<string>();
    const retiring = new Set<PackId>();
    for (const m of marks) {
      const seg = await this.segments.getSegment(m.segment);
      for (const t of seg?.tombstones ?? []) if (!reachable(t.key)) gone.add(copyName(t.key, t.pack));
      for (const p of m.packs) {
        const info = this.index.pack(p);
        if (info && !info.retired) retiring.add(p);
      }
    }
    const writer = new RemotePackWriter(this.packs, this.config.packTarget);
    const sizes: number[] = [];
    const repacked = new Set<string>();
    for (const p of retiring) {
      const header = await this.packs.readHeader(p, this.index.pack(p)?.size || undefined);
      // Kept: what the marks did not doom, unless a live copy outside the packs retired now exists (or was just
      // repacked from another of them).
      const keep = header.filter((e) => !gone.has(copyName(e.key, p)) && !repacked.has(e.key.toString('hex'))
        && !this.index.liveCopies(e.key, true).some((c) => c.pack !== p && !retiring.has(c.pack)));
      result.objects += header.filter((e) => gone.has(copyName(e.key, p))).length;
      sizes.push(this.index.pack(p)?.size ?? 0);
      if (keep.length === 0) continue;
      const bytes = await this.packs.get(p);
      if (!bytes) throw new RemoteError(this.backend.url, `pack 'packs/${p}' is gone while gc repacks it`);
      for (const e of keep) {
        repacked.add(e.key.toString('hex'));
        await writer.add(e.key, bytes.subarray(e.offset, e.offset + e.length));
        result.repacked++;
        result.repackedBytes += e.length;
      }
    }
    const written = await writer.finish();
    // Packs an earlier sweep retired already (one cut short before deleting its marks) need no new segment.
    if (retiring.size > 0) {
      const seg: Segment = { packs: written.packs, entries: written.entries, retired: [...retiring], tombstones: [] };
      const sha = await this.segments.putSegment(seg);
      this.index.ingest(sha, seg);
      await this.packs.delete([...retiring]);
    }
    await this.backend.delete(marks.map((m) => `${MARKS_PREFIX}${m.runId}.json`));
    result.marks = marks.length;
    result.packs = retiring.size;
    result.bytes = sizes.reduce((a, b) => a + b, 0);
    return result;
  }

  /**
   * Marks the copies of every object `reachable` rejects that are not tombstoned yet: PUTs their tombstone segment
   * (from then on every new writer uploads such objects again), THEN lists the writer sessions (minus `ownSession`),
   * and PUTs the mark naming them. `now` is the server time of the mark. With nothing to mark, nothing is written.
   */
  async mark(reachable: (key: Buffer) => boolean, now: number, ownSession?: string): Promise<MarkResult> {
    const tombstones: SegmentTombstone[] = [];
    const packs = new Map<PackId, SegmentPack>();
    let bytes = 0;
    for (const c of this.index.copiesInLivePacks()) {
      if (c.tombstoned || reachable(c.key)) continue;
      tombstones.push({ key: c.key, pack: c.pack });
      bytes += c.length;
      if (!packs.has(c.pack)) {
        const info = this.index.pack(c.pack)!;
        packs.set(c.pack, { id: c.pack, size: info.size, class: info.class });
      }
    }
    if (tombstones.length === 0) return { objects: 0, bytes: 0 };
    const seg: Segment = { packs: [...packs.values()], entries: [], retired: [], tombstones };
    const segment = await this.segments.putSegment(seg);
    this.index.ingest(segment, seg);
    // Listed after the tombstones are in the bucket: a session that is not in this list began later, and its refresh
    // sees the tombstones, so it never relies on a marked copy.
    const waitFor = (await listSessions(this.backend)).filter((s) => s.id !== ownSession && !sessionExpired(s, now)).map((s) => s.id);
    const runId = `${new Date(now).toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}`;
    const body: MarkBody = { created: now, segment, packs: [...packs.keys()], waitFor };
    const r = await this.backend.put(`${MARKS_PREFIX}${runId}.json`, Buffer.from(JSON.stringify(body)));
    if (!r.ok) throw new RemoteError(this.backend.url, `upload of '${MARKS_PREFIX}${runId}.json' failed (${r.why})`);
    return { mark: { ...body, runId, mtime: now }, objects: tombstones.length, bytes };
  }

  /**
   * Deletes packs no segment names (left by interrupted writes) and retired packs still there (a sweep cut short),
   * if their LastModified is older than `now - graceMs` and than the earliest start of a live session minus
   * SKEW_MS (a writer uploads its packs before the segment that names them). Packs are listed before the index is
   * refreshed, so a pack whose segment exists is known by then.
   */
  async deleteOrphans(now: number, graceMs: number): Promise<{ packs: number; bytes: number }> {
    const listed: Array<{ id: PackId; size: number; mtime: number }> = [];
    for await (const p of this.packs.list()) listed.push(p);
    const sessions = (await listSessions(this.backend)).filter((s) => !sessionExpired(s, now));
    await this.refresh();
    const earliest = Math.min(Infinity, ...sessions.map((s) => s.started));
    const doomed = listed.filter((p) => {
      const info = this.index.pack(p.id);
      if (info && !info.retired) return false;
      return p.mtime < now - graceMs && p.mtime < earliest - SKEW_MS;
    });
    if (doomed.length) await this.packs.delete(doomed.map((p) => p.id));
    return { packs: doomed.length, bytes: doomed.reduce((a, p) => a + p.size, 0) };
  }

  /**
   * With more than `limit` segments, merges every segment but the marks' into one: the copies in packs that are not
   * retired, their tombstones, and the retired packs. PUTs it, then deletes the merged ones (a reader that listed
   * one of them before meets a 404 and skips it; its next refresh lists the merged one). Returns how many went.
   */
  async compactSegments(marks: Mark[], limit = SEGMENT_LIMIT): Promise<number> {
    await this.refresh();
    const listed: string[] = [];
    for await (const s of this.segments.listSegments()) listed.push(s.sha);
    if (listed.length <= limit) return 0;
    const keep = new Set(marks.map((m) => m.segment));
    const merged = listed.filter((s) => !keep.has(s) && this.index.ingested(s));
    if (merged.length < 2) return 0;
    const packs = new Map<PackId, SegmentPack>();
    const seg: Segment = { packs: [], entries: [], retired: [...this.index.retiredPacks()], tombstones: [] };
    for (const c of this.index.copiesInLivePacks()) {
      if (!packs.has(c.pack)) {
        const info = this.index.pack(c.pack)!;
        packs.set(c.pack, { id: c.pack, size: info.size, class: info.class });
      }
      seg.entries.push({ key: c.key, pack: c.pack, offset: c.offset, length: c.length });
      if (c.tombstoned) seg.tombstones.push({ key: c.key, pack: c.pack });
    }
    seg.packs = [...packs.values()];
    const sha = await this.segments.putSegment(seg);
    this.index.ingest(sha, seg);
    const gone = merged.filter((s) => s !== sha);
    await this.backend.delete(gone.map((s) => `index/${s}.vix`));
    return gone.length;
  }
}

function copyName(key: Buffer, pack: PackId): string {
  return `${key.toString('hex')}@${pack}`;
}
