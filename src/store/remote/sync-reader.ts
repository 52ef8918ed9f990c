/**
 * Synchronous reads of a bucket. viva's object reads are synchronous (`ObjectReader.readObject` feeds every walker,
 * reader and renderer), while an S3 client is asynchronous. A read that misses the host's cache therefore blocks on
 * a worker thread that owns its own backend: the caller posts the requests on a MessageChannel and sleeps in
 * `Atomics.wait` until the worker has answered them all (the same bridge as `receiveMessageOnPort`-based synchronous
 * workers in node's own test runner). Bulk readers avoid the blocking by prefetching asynchronously first; this is
 * the path of a single miss.
 *
 * An in-process backend (MemoryBackend, FaultyBackend over one) cannot be rebuilt in another thread: it is read
 * directly through its `getSync`.
 */
import { MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import { RemoteError, RepositoryCorruptError, VivaError } from '../../errors.js';
import { workerScript } from '../worker-script.js';
import type { Backend, ByteRange } from './backend.js';

/** One GET of a synchronous batch. */
export interface SyncRequest { key: string; range?: ByteRange }
/** Its answer: the body and ETag, or undefined when the key does not exist. */
export type SyncAnswer = { body: Buffer; etag: string } | undefined;

/** A backend another thread can rebuild (S3: its location and options); see `backend-worker.ts`. */
export interface WorkerSpec { kind: 's3'; location: unknown; options?: unknown }

/** A backend that can answer a GET without yielding (in-process backends). */
export interface SyncGettable { getSync(key: string, range?: ByteRange): SyncAnswer }

/** What a backend offers this module: a synchronous GET, or a spec from which a worker thread rebuilds it. */
type Readable = Backend & Partial<SyncGettable> & { workerSpec?(): WorkerSpec };

/** Requests a worker runs at once for one batch (a batch may hold more; they queue in the worker). */
export const SYNC_CONCURRENCY = 6;

/**
 * Blocking reads of `backend`. `getMany` answers in request order; an error of any request (a `RemoteError` after
 * the backend's retries, for instance) is thrown after every request of the batch has ended.
 *
 * @example
 * const r = SyncReader.for(backend);
 * const pack = r.get('packs/ab12…');       // blocks this thread until the worker has it
 * await r.close();
 */
export abstract class SyncReader {
  /** The reader of `backend`: direct for an in-process backend, through a worker thread otherwise. */
  static for(backend: Backend, options: { timeoutMs?: number } = {}): SyncReader {
    const b = backend as Readable;
    if (typeof b.getSync === 'function') return new DirectReader(b as Backend & SyncGettable);
    if (typeof b.workerSpec === 'function') return new WorkerReader(b.url, b.workerSpec(), options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    throw new TypeError(`${backend.url}: this backend can be read neither synchronously nor from a worker`);
  }

  /** The answers to `requests`, in order. */
  abstract getMany(requests: SyncRequest[]): SyncAnswer[];

  /** One GET. */
  get(key: string, range?: ByteRange): SyncAnswer {
    return this.getMany([{ key, ...(range ? { range } : {}) }])[0];
  }

  /** Releases the worker (if any); reads afterwards start a new one. */
  abstract close(): Promise<void>;
}

/**
 * How long a blocked read waits for the worker before it gives up with a RemoteError: longer than the backend's own
 * retries of one request (6 attempts with backoff, 60 s request timeout) would take for a batch that answers at all.
 */
export const DEFAULT_TIMEOUT_MS = 10 * 60_000;

class DirectReader extends SyncReader {
  constructor(private readonly backend: Backend & SyncGettable) { super(); }

  getMany(requests: SyncRequest[]): SyncAnswer[] {
    return requests.map((r) => this.backend.getSync(r.key, r.range));
  }

  async close(): Promise<void> {}
}

/** What the worker posts back for a batch. */
export type WorkerReply =
  | { answers: Array<{ body: Uint8Array; etag: string } | null> }
  | { error: { name: string; message: string; code?: string; data?: Record<string, unknown> } };

class WorkerReader extends SyncReader {
  private worker?: Worker;
  private port?: MessagePort;
  /** [0]: the number of batches the worker has answered; the caller waits for it to pass the number it sent. */
  private readonly flag = new Int32Array(new SharedArrayBuffer(4));
  private sent = 0;

  constructor(private readonly url: string, private readonly spec: WorkerSpec, private readonly timeoutMs: number) { super(); }

  getMany(requests: SyncRequest[]): SyncAnswer[] {
    if (requests.length === 0) return [];
    const port = this.start();
    this.sent++;
    port.postMessage({ requests });
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      // The reply is posted before the counter moves, so once the counter has moved it is on the port.
      Atomics.wait(this.flag, 0, this.sent - 1, 1000);
      const got = receiveMessageOnPort(port);
      if (got) return answersOf(got.message as WorkerReply, this.url);
      if (Atomics.load(this.flag, 0) >= this.sent) continue;   // moved between the wait and the receive: look again
      if (Date.now() > deadline) {
        void this.close();
        throw new RemoteError(this.url, `no answer from the I/O thread in ${Math.round(this.timeoutMs / 1000)} s`);
      }
    }
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.port?.close();
    this.port = undefined;
    this.sent = 0;
    Atomics.store(this.flag, 0, 0);
    if (w) await w.terminate();
  }

  private start(): MessagePort {
    if (this.port) return this.port;
    const { port1, port2 } = new MessageChannel();
    const w = workerScript(new URL('./backend-worker', import.meta.url), { spec: this.spec, port: port2, flag: this.flag }, [port2]);
    w.unref();
    this.worker = w;
    this.port = port1;
    return port1;
  }
}

function answersOf(reply: WorkerReply, url: string): SyncAnswer[] {
  if ('error' in reply) throw reviveError(reply.error, url);
  return reply.answers.map((a) => (a ? { body: Buffer.from(a.body.buffer, a.body.byteOffset, a.body.byteLength), etag: a.etag } : undefined));
}

/** The worker's error as the class the backend threw (RemoteError, RepositoryCorruptError), else a plain VivaError. */
export function reviveError(e: { name: string; message: string; code?: string; data?: Record<string, unknown> }, url: string): Error {
  const data = e.data ?? {};
  if (e.code === RemoteError.code) {
    const u = typeof data.url === 'string' ? data.url : url;
    const msg = e.message.startsWith(`${u}: `) ? e.message.slice(u.length + 2) : e.message;
    return new RemoteError(u, msg, typeof data.status === 'number' ? data.status : undefined);
  }
  if (e.code === RepositoryCorruptError.code) {
    return new RepositoryCorruptError(String(data.what ?? url), String(data.reason ?? e.message), e.message, data);
  }
  return new VivaError(e.message, data);
}
