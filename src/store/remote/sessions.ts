/**
 * Writer sessions of a bucket repository: `sessions/<uuid>.json` objects that say a commit, push or gc is under way
 * on some host. gc's delayed deletion (kopia's scheme, docs/s3.md) waits for every session that was live when it
 * marked objects, so a writer that deduplicated against an object keeps it alive until its ref has moved.
 *
 * A session is PUT again every `HEARTBEAT_MS`; one whose object is older than `SESSION_EXPIRY_MS` is dead, and gc may
 * delete it. A writer whose last successful heartbeat is older than `HEARTBEAT_MAX_AGE_MS` refuses to move a ref
 * (`assertAlive`): by then gc may consider it dead, so what it deduplicated against may be gone.
 */
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { WriteError } from '../../errors.js';
import type { Backend } from './backend.js';
import { forEachLimit } from './concurrency.js';

/** How often a live session's object is rewritten. */
export const HEARTBEAT_MS = 60_000;
/** A session whose object was last written longer ago than this is dead. */
export const SESSION_EXPIRY_MS = 15 * 60_000;
/** A writer whose last heartbeat is older than this does not move refs any more (margin: 5 min before expiry). */
export const HEARTBEAT_MAX_AGE_MS = 10 * 60_000;

const PREFIX = 'sessions/';

/** A session as listed: who, what, since when, and the server time of its last heartbeat. */
export interface SessionInfo {
  id: string;
  host: string;
  pid: number;
  kind: string;
  /** ms since the epoch: the writer's clock when it began (gc allows 5 min of skew against it). */
  started: number;
  /** ms since the epoch: the server's time of its last heartbeat. */
  mtime: number;
}

/** Options of `RemoteSession.begin`. */
export interface SessionOptions {
  heartbeatMs?: number;
  /** Heartbeat age after which `assertAlive` refuses (default `HEARTBEAT_MAX_AGE_MS`). */
  maxAgeMs?: number;
}

/**
 * One live writer. `begin` PUTs the session object; a timer rewrites it every
 * heartbeat (unref'd: it never keeps a process alive); `end` stops the timer and deletes the object.
 *
 * @example
 * const s = await RemoteSession.begin(backend, 'commit');
 * try { …upload…; s.assertAlive(); …move the ref… } finally { await s.end(); }
 */
export class RemoteSession {
  private timer?: NodeJS.Timeout;
  private beating?: Promise<void>;
  /** `Date.now()` of the last successful heartbeat (local clock: only differences are used). */
  lastBeat = 0;

  private constructor(private readonly backend: Backend, readonly id: string, private readonly body: Buffer, private readonly options: SessionOptions) {}

  /** Starts a session of `kind` (commit, push, gc, …). The first PUT's failure is thrown (RemoteError). */
  static async begin(backend: Backend, kind: string, options: SessionOptions = {}): Promise<RemoteSession> {
    const id = randomUUID();
    const started = Date.now();
    const s = new RemoteSession(backend, id, Buffer.from(JSON.stringify({ host: os.hostname(), pid: process.pid, kind, started })), options);
    await backend.put(s.key, s.body);
    s.lastBeat = started;
    s.timer = setInterval(() => { s.beating = s.beat(); }, options.heartbeatMs ?? HEARTBEAT_MS);
    s.timer.unref();
    return s;
  }

  /** The session's key below the repository prefix. */
  get key(): string {
    return `${PREFIX}${this.id}.json`;
  }

  /** Throws WriteError when the last successful heartbeat is too old for this writer to move a ref safely. */
  assertAlive(): void {
    const age = Date.now() - this.lastBeat;
    if (age > (this.options.maxAgeMs ?? HEARTBEAT_MAX_AGE_MS)) {
      throw new WriteError(this.backend.url, `the session's last heartbeat was ${Math.round(age / 1000)} s ago; gc may have taken what this write relies on, so no ref was moved (run it again)`);
    }
  }

  /** Stops the heartbeat and deletes the session object. */
  async end(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    await this.backend.delete([this.key]);
  }

  private async beat(): Promise<void> {
    const sent = Date.now();
    try {
      await this.backend.put(this.key, this.body);
      this.lastBeat = sent;
    } catch {
      // A missed heartbeat is retried at the next tick; assertAlive refuses when too many were missed.
    }
  }
}

/** Every session object of the repository with its server time; malformed objects are listed as kind `?`. */
export async function listSessions(backend: Backend): Promise<SessionInfo[]> {
  const listed: Array<{ key: string; mtime: number }> = [];
  for await (const o of backend.list(PREFIX)) listed.push(o);
  // The session objects are read several at a time: a fleet's dozens of writers are dozens of round trips.
  const out = new Array<SessionInfo>(listed.length);
  await forEachLimit(listed.map((o, i) => ({ o, i })), SESSION_READS, async ({ o, i }) => {
    const id = o.key.slice(PREFIX.length).replace(/\.json$/, '');
    let j: Partial<SessionInfo> = {};
    try {
      j = JSON.parse((await backend.get(o.key))?.body.toString() ?? '{}') as Partial<SessionInfo>;
    } catch {
      j = {};
    }
    out[i] = { id, host: String(j.host ?? '?'), pid: Number(j.pid ?? 0), kind: String(j.kind ?? '?'), started: Number(j.started ?? o.mtime), mtime: o.mtime };
  });
  return out;
}

/** Session objects read at once by listSessions. */
const SESSION_READS = 8;

/** True when `s` has had no heartbeat for `SESSION_EXPIRY_MS` by the server's clock `now` (ms). */
export function sessionExpired(s: SessionInfo, now: number, expiryMs = SESSION_EXPIRY_MS): boolean {
  return now - s.mtime > expiryMs;
}
