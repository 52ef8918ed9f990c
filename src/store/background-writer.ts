/**
 * An ObjectWriter that hands compression and LMDB writes to one worker thread (both cores work during a commit:
 * this thread reads, chunks and hashes; the worker compresses and writes). Bounded: at most MAX_INFLIGHT batches,
 * in batch buffers that go to the worker and come back with its answer (at most MAX_INFLIGHT + 1 of them ever).
 */
import type { Worker } from 'node:worker_threads';
import { WriteError } from '../errors.js';
import { workerScript } from './worker-script.js';
import os from 'node:os';
import { ChunkedBlobBuilder } from '../model/blob.js';
import { isOid, type Oid } from '../model/oid.js';
import { KeyTable } from './key-table.js';
import { KIND_BY_CODE, OBJECT_KEY_BYTES, OBJECT_KINDS, encodeStored, objectKey, type BackgroundObjectWriter, type ObjectKind } from './object-store.js';

/**
 * Bytes per batch, and batches on their way to the worker. 4 × 4 MiB keep the worker fed as well as 6 × 8 MiB did
 * (a batch takes it tens of milliseconds), for a third of the memory.
 */
export const DEFAULT_WORKER_BATCH = 4 * 1024 * 1024;
export const MAX_INFLIGHT = 4;
/**
 * The writer thread's young generation (MB). Its JavaScript objects are few and short-lived (a batch's index
 * entries): V8's default lets them pile up to ≈ 50 MB between scavenges.
 */
export const WRITER_YOUNG_GENERATION_MB = 8;
/**
 * What BackgroundWriter needs of the LMDB store it writes beside (LmdbStore; named by shape here, so that the store
 * can make its writer without the two modules importing each other).
 */
export interface WriterStore {
  readonly path: string;
  readonly zstdLevel: number;
  /** Set for the cache of a bucket repository (LmdbStore's RemoteMode). */
  readonly remoteMode?: { sincePack?: number };
  readonly written: { objects: number; bytes: number };
  readonly env: { resetReadTxn(): void };
  hasObject(kind: ObjectKind, oid: Oid): boolean;
  writeObject(kind: ObjectKind, oid: Oid, data: Uint8Array): unknown;
  writeStoredObject(kind: ObjectKind, oid: Oid, stored: Uint8Array): void;
  flushSync(): void;
}

/** How long close() waits for the worker to finish its current message before terminating it anyway. */
export const CLOSE_TIMEOUT_MS = 30_000;

type Reply = {
  type: 'ack' | 'flushed' | 'closed' | 'error'; id: number; objects?: number; bytes?: number; message?: string; code?: string;
  data?: Record<string, unknown>;
  /** An ack gives the batch's buffer back (transferred), for the next batch. */
  buf?: ArrayBuffer;
};

export class BackgroundWriter implements BackgroundObjectWriter {
  /** Started on the first full batch: small commits (re-commits through the stat cache) never pay for a thread. */
  private worker?: Worker;
  /**
   * Object keys (kind code + id) of the objects handed to the worker: one per object of a commit, kept to its end (the
   * worker indexes them only then). Binary, outside the JavaScript heap: a set of id strings cost about 100 bytes
   * per object, 16 MB for a 10 GiB file.
   */
  private readonly sent = new KeyTable(OBJECT_KEY_BYTES, 0);
  /** Where an object's key is assembled for `sent`. */
  private readonly key = Buffer.alloc(OBJECT_KEY_BYTES);
  private buf = new ArrayBuffer(DEFAULT_WORKER_BATCH);
  /**
   * Batch buffers the worker gave back. Reusing them, rather than allocating 8 MiB per batch and leaving the old one
   * to the worker's garbage collector, keeps the memory of the queue at its bound: freed late, and by another thread
   * than the one that allocated it, each spent batch stayed in the allocator's arenas (≈ 100 MB at a time).
   */
  private spare: ArrayBuffer[] = [];
  /**
   * Batch buffers allocated so far (the first one included): MAX_INFLIGHT + 1 at most, plus one for each object of a
   * batch or more written with writeObject (a buffer given over with writeObjectGiven is not counted: it is the caller's).
   */
  buffersAllocated = 1;
  private used = 0;
  /** [kind code, oid, offset, length, 1 when already encoded (compressed here) else 0] */
  private items: Array<[number, string, number, number, number]> = [];
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private inflight = 0;
  private failure?: Error;
  private closing = false;
  private closeWaiter?: { id: number; done: () => void };
  private wakers: Array<() => void> = [];
  /** Objects and stored bytes the worker newly wrote (known after flush). */
  written = { objects: 0, bytes: 0 };

  constructor(private readonly store: WriterStore) {}

  private startWorker(): Worker {
    // The cache of a bucket repository deduplicates against the bucket, and counts this session's packs as written.
    const remote = this.store.remoteMode && { sincePack: this.store.remoteMode.sincePack };
    const worker = workerScript(new URL('./write-worker', import.meta.url), { path: this.store.path, zstdLevel: this.store.zstdLevel, remote }, [],
      { maxYoungGenerationSizeMb: WRITER_YOUNG_GENERATION_MB });
    this.worker = worker;
    worker.on('message', (r: Reply) => {
      if (this.closeWaiter && r.id === this.closeWaiter.id) { this.closeWaiter.done(); return; }
      const w = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      if (r.type === 'error') {
        // Whatever failed in the writer thread, the commit cannot finish: a write error, one line, exit 16.
        this.failAll(r.code === WriteError.code && r.data
          ? new WriteError(String(r.data.path), String(r.data.reason))
          : new WriteError(this.store.path, `object writer failed: ${r.message}`));
        w?.reject(this.failure!);
        return;
      }
      w?.resolve(r);
    });
    worker.on('error', (e) => this.failAll(new WriteError(this.store.path, `object writer failed: ${e.message}`, { cause: e })));
    // An exit before close() (even with code 0) leaves requests unanswered: fail them rather than wait forever.
    worker.on('exit', (code) => {
      this.closeWaiter?.done();
      if (!this.closing) this.failAll(new WriteError(this.store.path, `object writer exited with code ${code}`));
    });
    return worker;
  }

  /** True when a worker pays off: more than one core. */
  static available(): boolean {
    return (os.availableParallelism?.() ?? os.cpus().length) > 1;
  }

  private failAll(e: Error): void {
    this.failure ??= e;
    e = this.failure;
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }

  private request(msg: object, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      try {
        (this.worker ?? this.startWorker()).postMessage({ ...msg, id }, transfer);
      } catch (e) {
        // Not sent (a thread that cannot start, a buffer that cannot be transferred): what it held is not written,
        // so the commit must fail, not go on as if it were.
        this.waiting.delete(id);
        this.failAll(new WriteError(this.store.path, `object writer failed: ${(e as Error).message}`, { cause: e }));
        reject(this.failure);
      }
    });
  }

  /** `kind` and `oid` as an object key, in `key` (valid until the next call). */
  private keyOf(kind: ObjectKind, oid: Oid): Buffer {
    // A string that is not an id would leave the last key's bytes in place, and find that object as sent.
    if (!isOid(oid)) throw new RangeError(`not an object id: '${oid}'`);
    return objectKey(kind, oid, this.key);
  }

  hasObject(kind: ObjectKind, oid: Oid): boolean {
    return this.sent.has(this.keyOf(kind, oid)) || this.store.hasObject(kind, oid);
  }

  /**
   * Copies `data` into the current batch. While the worker is saturated this thread compresses the object itself
   * (work sharing: otherwise it would only wait in drain()), so both cores compress when compression is the limit.
   */
  writeObject(kind: ObjectKind, oid: Oid, data: Uint8Array): void {
    if (this.failure) throw this.failure;
    if (!this.sent.insert(this.keyOf(kind, oid))) return;
    if (data.length >= DEFAULT_WORKER_BATCH) {
      // A batch or more travels alone, copied into a buffer of its own with the room a given one has before it.
      const own = Buffer.from(new ArrayBuffer(ChunkedBlobBuilder.ROOM + data.length), ChunkedBlobBuilder.ROOM, data.length);
      own.set(data);
      this.buffersAllocated++;
      this.sendOwn(kind, oid, own);
      return;
    }
    const encoded = this.worker !== undefined && this.inflight >= MAX_INFLIGHT;
    const bytes = encoded ? encodeStored(data, this.store.zstdLevel) : data;
    if (this.used + bytes.length > this.buf.byteLength) this.send();
    new Uint8Array(this.buf, this.used, bytes.length).set(bytes);
    this.items.push([OBJECT_KINDS[kind], oid, this.used, bytes.length, encoded ? 1 : 0]);
    this.used += bytes.length;
  }

  /**
   * Sends `data`'s whole ArrayBuffer (transferred, gone from this thread) as a batch of its one object, which the
   * worker keeps: it encodes it in place when it stays raw (an incompressible blob record: 38 random-looking bytes per
   * chunk), in the room before it. Copied into a batch and then by the worker into its staging, the 6 MB record of a
   * 10 GiB file was four copies at the end of the file, when every table is at its largest.
   */
  private sendOwn(kind: ObjectKind, oid: Oid, data: Buffer): void {
    this.send();
    this.inflight++;
    const done = () => this.settled();
    const buf = data.buffer as ArrayBuffer;
    this.request({ type: 'batch', buf, items: [[OBJECT_KINDS[kind], oid, data.byteOffset, data.length, 0]], own: true }, [buf]).then(done, done);
  }

  /** writeObject of a buffer given over: one of a batch or more goes to the worker as it is, without a copy. */
  writeObjectGiven(kind: ObjectKind, oid: Oid, data: Buffer): void {
    if (data.length < DEFAULT_WORKER_BATCH) {
      this.writeObject(kind, oid, data);
      return;
    }
    if (this.failure) throw this.failure;
    if (!this.sent.insert(this.keyOf(kind, oid))) return;
    this.sendOwn(kind, oid, data);
  }

  /** A batch was answered: one fewer in flight, and whoever waits for room goes on. */
  private settled(buf?: ArrayBuffer): void {
    this.inflight--;
    if (buf && buf.byteLength === DEFAULT_WORKER_BATCH) this.spare.push(buf);
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }

  private send(): void {
    if (this.items.length === 0) return;
    const buf = this.buf;
    const items = this.items;
    this.buf = this.spare.pop() ?? this.newBuffer();
    this.used = 0;
    this.items = [];
    this.inflight++;
    this.request({ type: 'batch', buf, items }, [buf]).then((r) => this.settled(r.buf), () => this.settled());
  }

  private newBuffer(): ArrayBuffer {
    this.buffersAllocated++;
    return new ArrayBuffer(DEFAULT_WORKER_BATCH);
  }

  async drain(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.used >= DEFAULT_WORKER_BATCH / 2) this.send();
    while (this.inflight >= MAX_INFLIGHT) {
      await new Promise<void>((r) => this.wakers.push(r));
      if (this.failure) throw this.failure;
    }
  }

  /** Sends what is queued and waits until the worker has committed everything durably. */
  async flush(): Promise<void> {
    if (!this.worker) {
      // Everything fits in one batch: write it on this thread.
      const before = this.store.written.bytes;
      const objects = this.store.written.objects;
      const buf = Buffer.from(this.buf);
      for (const [code, oid, off, len, enc] of this.items) {
        if (enc) this.store.writeStoredObject(KIND_BY_CODE[code]!, oid, buf.subarray(off, off + len));
        else this.store.writeObject(KIND_BY_CODE[code]!, oid, buf.subarray(off, off + len));
      }
      this.items = [];
      this.used = 0;
      this.store.flushSync();
      this.written = { objects: this.store.written.objects - objects, bytes: this.store.written.bytes - before };
      return;
    }
    this.send();
    const r = await this.request({ type: 'flush' });
    this.written = { objects: r.objects ?? 0, bytes: r.bytes ?? 0 };
    // The worker committed in its own environment handle: this thread's read snapshot is renewed only on a timer
    // (lmdb-js), which a busy event loop can run after this reply. Renew it now, so that what was just written —
    // the objects a ref is about to point at — is visible to the reads that follow.
    this.store.env.resetReadTxn();
  }

  /**
   * Stops the worker; queued but unflushed objects are dropped. Also after a failure the worker is asked to close
   * and answers once its current message is done: terminating it inside a write transaction would leave LMDB's
   * write lock held by a thread that is gone, and the next write of this process (ending the session) would wait
   * for it forever. The worker answers every message after its first failure at once, so this is quick.
   */
  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.closing = true;
    await new Promise<void>((resolve) => {
      const id = this.nextId++;
      const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
      const done = () => { clearTimeout(timer); this.closeWaiter = undefined; resolve(); };
      // Kept apart from `waiting`: a late error answer (failAll) must not end this wait early.
      this.closeWaiter = { id, done };
      try { worker.postMessage({ type: 'close', id }); } catch { done(); }
    });
    await worker.terminate();
  }
}
