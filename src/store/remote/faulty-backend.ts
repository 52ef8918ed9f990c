/** A `Backend` wrapper that injects the failures RGW shows: lost responses, 409s, 500s, dropped calls and latency. */
import { RemoteError } from '../../errors.js';
import type { Backend, ByteRange, ObjectInfo, PutCondition, PutResult } from './backend.js';

/** The operations a fault can target. */
export type BackendOp = 'get' | 'head' | 'put' | 'list' | 'delete';

/**
 * What goes wrong:
 * - `lost-response`: the call reaches the inner backend and takes effect, then the answer is lost (RGW: the 500 that
 *   race losers and dropped connections produce). A conditional PUT reports `{ ok: false, why: 'unknown' }`; any other
 *   call throws `RemoteError` (status 500) although it was applied.
 * - `409`: a conditional PUT gets S3's ConditionalRequestConflict and is not applied (`unknown`); other calls throw.
 * - `500`: the call is not applied; a conditional PUT reports `unknown`, other calls throw `RemoteError` (status 500).
 * - `unreachable`: the call is not applied; a conditional PUT reports `unknown` (the client cannot tell a refused
 *   connection from a lost one), other calls throw `RemoteError` "cannot reach", as after the client's retries.
 */
export type Fault = 'lost-response' | '409' | '500' | 'unreachable';

/** One planned fault: the `nth` call (1-based) of `op` (or of any operation when `op` is absent) fails with `fault`. */
export interface PlannedFault { nth: number; op?: BackendOp; fault: Fault }

/** Options of `FaultyBackend`. */
export interface FaultyOptions {
  /** Faults planned up front (more can be added with `inject`). */
  faults?: PlannedFault[];
  /** Delay before each call reaches the inner backend, in ms: a number, or a function for jitter. */
  latencyMs?: number | (() => number);
}

/**
 * Wraps a backend and fails chosen calls the way an S3 server does, so that the code above it can be tested against
 * each failure without a server. Counting is per wrapper: `calls.put` is the number of PUTs so far.
 *
 * @example
 * const b = new FaultyBackend(new MemoryBackend(), { faults: [{ op: 'put', nth: 1, fault: 'lost-response' }] });
 * await b.put('k', body, { ifNoneMatch: '*' });   // { ok: false, why: 'unknown' }, yet b.get('k') finds it
 */
export class FaultyBackend implements Backend {
  /** Calls seen so far, by operation and in total. */
  readonly calls: Record<BackendOp | 'all', number> = { get: 0, head: 0, put: 0, list: 0, delete: 0, all: 0 };
  /** Faults injected so far, in order. */
  readonly injected: Array<{ op: BackendOp; fault: Fault; call: number }> = [];
  private readonly plan: PlannedFault[];

  constructor(private readonly inner: Backend, private readonly options: FaultyOptions = {}) {
    this.plan = [...(options.faults ?? [])];
  }

  get url(): string { return this.inner.url; }

  /** Plans `fault` for the `nth` call from now of `op` (of any operation when `op` is absent); nth defaults to the next. */
  inject(fault: Fault, op?: BackendOp, nth = 1): void {
    this.plan.push({ fault, op, nth: (op ? this.calls[op] : this.calls.all) + nth });
  }

  async get(key: string, range?: ByteRange): Promise<{ body: Buffer; etag: string } | undefined> {
    return this.call('get', () => this.inner.get(key, range));
  }

  /**
   * A synchronous GET, when the inner backend has one (`SyncReader` reads in-process backends this way): planned
   * faults apply as to `get`; latency does not.
   */
  getSync(key: string, range?: ByteRange): { body: Buffer; etag: string } | undefined {
    const inner = this.inner as Backend & { getSync?(key: string, range?: ByteRange): { body: Buffer; etag: string } | undefined };
    if (typeof inner.getSync !== 'function') throw new TypeError(`${this.url}: the inner backend has no synchronous get`);
    const fault = this.next('get');
    if (fault === 'lost-response') inner.getSync(key, range);
    if (fault) throw this.failure('get', fault);
    return inner.getSync(key, range);
  }

  async head(key: string): Promise<Omit<ObjectInfo, 'key'> | undefined> {
    return this.call('head', () => this.inner.head(key));
  }

  async put(key: string, body: Buffer, cond?: PutCondition): Promise<PutResult> {
    return this.call('put', () => this.inner.put(key, body, cond), cond ? { ok: false, why: 'unknown' } : undefined);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const all = await this.call('list', async () => {
      const out: ObjectInfo[] = [];
      for await (const o of this.inner.list(prefix)) out.push(o);
      return out;
    });
    yield* all;
  }

  async delete(keys: string[]): Promise<void> {
    return this.call('delete', () => this.inner.delete(keys));
  }

  /** Runs one call: latency, then the planned fault if this call is the one, else the inner backend. */
  private async call<T>(op: BackendOp, run: () => Promise<T>, unknown?: T): Promise<T> {
    const fault = this.next(op);
    const ms = typeof this.options.latencyMs === 'function' ? this.options.latencyMs() : this.options.latencyMs ?? 0;
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
    if (!fault) return run();
    if (fault === 'lost-response') await run();
    if (unknown !== undefined) return unknown;
    throw this.failure(op, fault);
  }

  /** Counts a call of `op` and returns the fault planned for it (recorded in `injected`), if any. */
  private next(op: BackendOp): Fault | undefined {
    this.calls[op]++;
    this.calls.all++;
    const i = this.plan.findIndex((f) => f.nth === (f.op ? (f.op === op ? this.calls[op] : -1) : this.calls.all));
    const fault = i < 0 ? undefined : this.plan.splice(i, 1)[0]!.fault;
    if (fault) this.injected.push({ op, fault, call: this.calls.all });
    return fault;
  }

  /** The error a failed call of `op` throws. */
  private failure(op: BackendOp, fault: Fault): RemoteError {
    if (fault === 'unreachable') return new RemoteError(this.url, 'cannot reach the server: ECONNRESET (injected fault)');
    const status = fault === '409' ? 409 : 500;
    return new RemoteError(this.url, `${op} failed: ${status === 409 ? 'ConditionalRequestConflict' : 'InternalError'} (HTTP ${status}, injected fault)`, status);
  }
}
