/**
 * A repository behind `viva serve`, as a Peer (docs/protocol.md). Uses Node's fetch; object streams go both ways as
 * frames, each received object is verified by the receiver, and every answer is checked before it is believed:
 * refs are validated, has-answers must have one byte per key, object streams must carry exactly what was asked and
 * end with their end frame.
 */
import fs from 'node:fs';
import { RefConflictError, RemoteError, SourceReadError, UsageError, VivaError, systemReason } from '../errors.js';
import { idleMs, withIdleTimeout } from '../http.js';
import { type Oid, isOid } from '../model/oid.js';
import { refNameProblem } from '../model/ref.js';
import type { ObjectId, Peer, RefUpdateRequest, StoredObject } from './peer.js';
import { decodeFrames, encodeKeys, frameBlocks } from './wire.js';

/** Keys per has/objects request (each request body stays far below the server's limit). */
const BATCH = 20_000;

/** The token a client sends: VIVA_TOKEN, else the first line of the remote's token file. */
export function clientToken(tokenFile?: string): string | undefined {
  if (process.env.VIVA_TOKEN) return process.env.VIVA_TOKEN;
  if (!tokenFile) return undefined;
  try {
    return fs.readFileSync(tokenFile, 'utf8').split('\n')[0]!.trim() || undefined;
  } catch (e) {
    throw new SourceReadError(tokenFile, systemReason(e));
  }
}

export class HttpPeer implements Peer {
  private readonly base: string;

  private readonly abort = new AbortController();

  /** `signal` aborts every request of this peer (an interrupted clone or fetch). */
  constructor(url: string, private readonly token?: string, signal?: AbortSignal) {
    const u = new URL(url);
    if (u.username || u.password) throw new UsageError(`${url}: put the token in VIVA_TOKEN or a --token-file, not in the URL`);
    this.base = url.endsWith('/') ? url : `${url}/`;
    if (signal?.aborted) this.abort.abort();
    else signal?.addEventListener('abort', () => this.abort.abort(), { once: true });
  }

  /** `waitLong`: the answer comes only after the server has processed a whole upload (no answer timeout). */
  private async request(path: string, init: RequestInit & { duplex?: 'half' } = {}, waitLong = false): Promise<Response> {
    let res: Response;
    const timer = waitLong ? undefined : setTimeout(() => this.abort.abort(), idleMs());
    try {
      res = await fetch(new URL(path, this.base), {
        ...init,
        signal: this.abort.signal,
        headers: { ...(init.headers as Record<string, string> | undefined), ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) },
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      if (this.abort.signal.aborted) throw new RemoteError(this.base, `no answer for ${idleMs() / 1000} s`);
      throw new RemoteError(this.base, `cannot connect: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
    if (!res.ok) {
      let message = `HTTP ${res.status}`;
      try {
        const j = (await res.json()) as { error?: { message?: string } };
        if (j.error?.message) message += `: ${j.error.message}`;
      } catch { /* not JSON */ }
      throw new RemoteError(this.base, message, res.status);
    }
    return res;
  }

  async listRefs(): Promise<{ refs: Array<{ ref: string; oid: Oid }>; head?: string }> {
    const res = await this.request('v1/refs');
    let j: { refs?: unknown; head?: unknown };
    try { j = (await res.json()) as typeof j; } catch { throw new RemoteError(this.base, 'the ref list is not JSON'); }
    if (!Array.isArray(j.refs)) throw new RemoteError(this.base, 'the ref list has no refs array');
    const refs: Array<{ ref: string; oid: Oid }> = [];
    for (const r of j.refs as Array<{ ref?: unknown; oid?: unknown }>) {
      if (typeof r?.ref !== 'string' || !r.ref.startsWith('refs/') || refNameProblem(r.ref) || typeof r.oid !== 'string' || !isOid(r.oid)) {
        throw new RemoteError(this.base, `the server sent an invalid ref ${JSON.stringify(r).slice(0, 120)}`);
      }
      refs.push({ ref: r.ref, oid: r.oid });
    }
    const head = typeof j.head === 'string' && j.head.startsWith('refs/heads/') && !refNameProblem(j.head) ? j.head : undefined;
    return { refs, ...(head ? { head } : {}) };
  }

  async has(ids: ObjectId[]): Promise<boolean[]> {
    const out: boolean[] = [];
    for (let i = 0; i < ids.length; i += BATCH) {
      const part = ids.slice(i, i + BATCH);
      const res = await this.request('v1/has', { method: 'POST', body: new Uint8Array(encodeKeys(part)), headers: { 'content-type': 'application/octet-stream' } });
      const b = Buffer.from(await res.arrayBuffer());
      if (b.length !== part.length || b.some((x) => x > 1)) throw new RemoteError(this.base, `has: ${b.length} answers for ${part.length} objects`);
      for (const x of b) out.push(x === 1);
    }
    return out;
  }

  async *read(ids: ObjectId[]): AsyncIterable<StoredObject> {
    for (let i = 0; i < ids.length; i += BATCH) {
      const part = ids.slice(i, i + BATCH);
      const res = await this.request('v1/objects', { method: 'POST', body: new Uint8Array(encodeKeys(part)), headers: { 'content-type': 'application/octet-stream' } });
      if (!res.body) throw new RemoteError(this.base, 'objects: empty response');
      let n = 0;
      try {
        for await (const o of decodeFrames(withIdleTimeout(res.body, idleMs(), this.abort), { maxTotal: 64 * 1024 ** 3 })) {
          const want = part[n];
          if (!want || want.kind !== o.kind || want.oid !== o.oid) throw new RemoteError(this.base, `objects: got ${o.kind} ${o.oid} where ${want ? `${want.kind} ${want.oid}` : 'nothing'} was asked`);
          n++;
          yield o;
        }
      } catch (e) {
        if (e instanceof VivaError) throw e;
        throw new RemoteError(this.base, `objects: ${(e as Error).message}`);
      }
      if (n !== part.length) throw new RemoteError(this.base, `objects: ${n} of ${part.length} objects sent`);
    }
  }

  async write(objects: AsyncIterable<StoredObject>): Promise<{ objects: number; bytes: number }> {
    // Authorization first: a refused push is told before any object is streamed (a server refusing mid-stream
    // can only drop the connection).
    await this.request('v1/auth', { method: 'POST', body: '' });
    const blocks = frameBlocks(objects);
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const next = await blocks.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
    });
    const res = await this.request('v1/receive', { method: 'POST', body, duplex: 'half', headers: { 'content-type': 'application/x-viva-objects' } }, true);
    const j = (await res.json()) as { objects?: number; bytes?: number };
    return { objects: Number(j.objects ?? 0), bytes: Number(j.bytes ?? 0) };
  }

  async updateRefs(updates: RefUpdateRequest[], who: string): Promise<void> {
    try {
      await this.request('v1/update-refs', { method: 'POST', body: JSON.stringify({ updates, who }), headers: { 'content-type': 'application/json' } });
    } catch (e) {
      if (e instanceof RemoteError && e.status === 409) {
        throw new RefConflictError(updates[0]?.ref ?? '', null, null, `${e.message} (another push moved it first: fetch, then push again)`);
      }
      throw e;
    }
  }

  async close(): Promise<void> {}
}
