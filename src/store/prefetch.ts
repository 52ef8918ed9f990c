/**
 * Reads blobs ahead of a checkout on a worker thread (LMDB reads + zstd decompression on the second core), in the
 * order the checkout will ask for them, keeping at most a bounded number of bytes in flight.
 */
import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import { ObjectNotFoundError, RepositoryCorruptError } from '../errors.js';
import type { Oid } from '../model/oid.js';
import { workerScript } from './worker-script.js';

export type BlobPiece = { offset: number; data?: Buffer; zeros?: number };

/** Blobs larger than this are streamed by the main thread instead (the prefetcher holds whole blobs). */
export const PREFETCH_MAX_BLOB = 8 * 1024 * 1024;
/** Bytes of content requested ahead of the writer. */
export const PREFETCH_WINDOW = 64 * 1024 * 1024;

type Result = { pieces?: BlobPiece[]; error?: { message: string; code?: string; data?: Record<string, unknown> } };

export class BlobPrefetcher {
  private readonly worker: Worker;
  private readonly results = new Map<Oid, Result>();
  private readonly waiters = new Map<Oid, (r: Result) => void>();
  private next = 0;
  private requestedBytes = 0;
  private consumedBytes = 0;

  /** `blobs` in the order they will be asked for, each once, with its size. */
  constructor(path: string, private readonly blobs: Array<{ oid: Oid; size: number }>) {
    this.worker = workerScript(new URL('./read-worker', import.meta.url), { path });
    this.worker.on('message', (m: { type: string; oid: Oid } & Result) => {
      if (m.type !== 'blob') return;
      const w = this.waiters.get(m.oid);
      if (w) { this.waiters.delete(m.oid); w(m); } else this.results.set(m.oid, m);
    });
    // A worker that died (it could not open the repository, or crashed) answers nothing more: every blob asked for
    // now or later gets its error at once, instead of a wait that never ends.
    const died = (why: string) => {
      if (this.closed) return;
      this.failure ??= { error: { message: `prefetch failed: ${why}` } };
      for (const w of this.waiters.values()) w(this.failure);
      this.waiters.clear();
    };
    this.worker.on('error', (e) => died(e.message));
    this.worker.on('exit', (code) => died(`the reading thread exited (status ${code})`));
    this.request();
  }

  private failure: Result | undefined;
  private closed = false;

  private readonly requested = new Set<Oid>();

  /** Requests the next blobs while the window allows, or at least up to `until`. */
  private request(until?: Oid): void {
    const oids: Oid[] = [];
    while (this.next < this.blobs.length && (this.requestedBytes - this.consumedBytes < PREFETCH_WINDOW || (until !== undefined && !this.requested.has(until)))) {
      const b = this.blobs[this.next++]!;
      oids.push(b.oid);
      this.requested.add(b.oid);
      this.requestedBytes += b.size + 256;
    }
    if (oids.length) this.worker.postMessage({ type: 'read', oids });
  }

  /**
   * The pieces of a blob that was in the list, checked against its id by the worker; throws the store's errors (not
   * found, corrupt: a mismatch names `path`).
   */
  async get(oid: Oid, size: number, path?: string): Promise<BlobPiece[]> {
    if (!this.requested.has(oid)) this.request(oid);
    let r = this.results.get(oid);
    if (r) this.results.delete(oid);
    else r = this.failure ?? await new Promise<Result>((resolve) => this.waiters.set(oid, resolve));
    this.consumedBytes += size + 256;
    this.request();
    if (r.error) {
      if (r.error.code === ObjectNotFoundError.code) throw new ObjectNotFoundError(String(r.error.data?.kind ?? 'object'), String(r.error.data?.oid ?? oid));
      const d = r.error.data;
      if (r.error.code === RepositoryCorruptError.code && d?.reason === 'does not match its id' && typeof d.oid === 'string') {
        throw RepositoryCorruptError.mismatch(String(d.kind), d.oid, path ?? (d.path as string | undefined));
      }
      if (r.error.code === RepositoryCorruptError.code && d?.reason === 'cannot be read' && typeof d.oid === 'string' && typeof d.error === 'string') {
        throw RepositoryCorruptError.unreadable(String(d.kind), d.oid, d.error, typeof d.pack === 'number' ? d.pack : undefined, path ?? (d.path as string | undefined));
      }
      throw new RepositoryCorruptError(`blob ${oid}`, r.error.message);
    }
    return r.pieces!;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.worker.terminate();
  }
}

/**
 * Reads and verifies chunks on worker threads (LMDB read, zstd decompression, sha256) for a random-access reader that
 * knows which chunks it will want next (the NBD server's read-ahead): decoding is the bottleneck of a sequential read,
 * so it is spread over `workers` threads (one per core by default), each request's chunks dealt out in turn so that
 * every worker decodes the nearest ones first. Each chunk arrives through `onChunk`; one a worker could not read
 * arrives as undefined (the caller reads it itself and reports).
 */
export class ChunkPrefetcher {
  /** The workers still running: one that died gets no more requests. */
  private workers: Worker[];
  private readonly inFlight = new Map<Oid, Array<() => void>>();
  private turn = 0;

  constructor(path: string, private readonly onChunk: (oid: Oid, data: Buffer | undefined) => void, workers = Math.max(1, Math.min(4, os.availableParallelism()))) {
    this.workers = Array.from({ length: workers }, () => {
      const w = workerScript(new URL('./read-worker', import.meta.url), { path });
      w.unref();
      w.on('message', (m: { type: string; chunks: Array<{ oid: Oid; data?: Uint8Array }> }) => {
        if (m.type !== 'chunks') return;
        for (const c of m.chunks) {
          this.onChunk(c.oid, c.data ? Buffer.from(c.data.buffer, c.data.byteOffset, c.data.byteLength) : undefined);
          const ws = this.inFlight.get(c.oid);
          this.inFlight.delete(c.oid);
          for (const wake of ws ?? []) wake();
        }
      });
      // A worker that died (it could not open the repository, or crashed): what was in flight is read by the caller
      // itself, and the worker gets no more requests (they would wait for ever).
      const died = () => {
        if (!this.workers.includes(w)) return;
        this.workers = this.workers.filter((x) => x !== w);
        for (const ws of this.inFlight.values()) for (const wake of ws) wake();
        this.inFlight.clear();
      };
      w.on('error', died);
      w.on('exit', died);
      return w;
    });
  }

  /** Whether `oid` was asked for and has not arrived yet. */
  pending(oid: Oid): boolean {
    return this.inFlight.has(oid);
  }

  /** Asks for these chunks (those not already asked for), in order, dealt out to the workers in turn. */
  request(oids: Oid[]): void {
    const fresh = [...new Set(oids)].filter((o) => !this.inFlight.has(o));
    if (!fresh.length || !this.workers.length) return;
    this.turn %= this.workers.length;
    const shares: Oid[][] = this.workers.map(() => []);
    for (const o of fresh) {
      this.inFlight.set(o, []);
      shares[this.turn]!.push(o);
      this.turn = (this.turn + 1) % this.workers.length;
    }
    shares.forEach((share, i) => { if (share.length) this.workers[i]!.postMessage({ type: 'chunks', oids: share }); });
  }

  /** Resolves when each of these chunks that is in flight has arrived (or failed). */
  async wait(oids: Oid[]): Promise<void> {
    await Promise.all(oids.filter((o) => this.inFlight.has(o)).map((o) => new Promise<void>((resolve) => this.inFlight.get(o)!.push(resolve))));
  }

  /** Stops the workers (chunks still in flight are dropped). */
  async close(): Promise<void> {
    const ws = this.workers;
    this.workers = [];
    await Promise.all(ws.map((w) => w.terminate()));
  }

  /** How many workers are running (fewer than started when some died). */
  get running(): number {
    return this.workers.length;
  }
}
