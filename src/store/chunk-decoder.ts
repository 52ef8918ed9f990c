/**
 * Decodes and verifies chunks ahead of a sequential reader on libuv's thread pool (the native addon's decodeVerify:
 * zstd and SHA-256 in C), into buffers the reader recycles. The main thread only looks the stored bytes up; the
 * second core decompresses and hashes. Worker threads (prefetch.ts) do the same work but hand every decoded chunk back
 * as a new buffer that the main thread then collects, which cost more than it saved for a bit-exact export.
 *
 * Same contract as the worker-thread ChunkPrefetcher: each chunk asked for arrives through `onChunk`, decoded and
 * checked against its id, or as undefined when it could not be (missing, undecodable, not matching its id): the
 * reader then reads it itself, and reports the damage exactly as without a decoder.
 */
import os from 'node:os';
import { native } from '../native/index.js';
import { type Oid, OID_BYTES } from '../model/oid.js';
import { CODEC_RAW, CODEC_ZSTD, frameContentSize } from './object-store.js';

/** Decoded bytes per batch handed to the thread pool: large enough to cost little per call, small enough to spread. */
const BATCH_BYTES = 1 << 20;
/** Stored bytes a batch's input buffer holds (stored values are at most their decoded size, plus a byte). */
const INPUT_BYTES = BATCH_BYTES + (BATCH_BYTES >> 1);
/**
 * Batches on the thread pool at a time: one per core (up to 4, the pool's default size, whose threads also serve fs's
 * writes). The pool threads run as SCHED_BATCH (see viva_native.c), so they do not take the main thread's core.
 */
const MAX_JOBS = Math.max(1, Math.min(4, os.availableParallelism()));
/** Frames larger than this are left to the reader (they would pin a buffer of that size). */
const MAX_CHUNK = 64 << 20;

/** Where a decoder finds stored values (codec byte + payload): a view, valid until the next lookup (it is copied at once). */
export type StoredLookup = (oid: Oid) => Buffer | undefined;

/** What a chunk source ahead of a reader offers (the worker-thread prefetcher and this decoder). */
export interface ChunkSource {
  /** Whether `oid` was asked for and has not arrived yet. */
  pending(oid: Oid): boolean;
  /** Asks for these chunks (those not already asked for), nearest first. */
  request(oids: Oid[]): void;
  /** Resolves when each of these chunks that is in flight has arrived (or failed). */
  wait(oids: Oid[]): Promise<void>;
  /** Stops: chunks still in flight are dropped. */
  close(): Promise<void>;
}

/** A batch: its chunks, their stored values (copied into `input`), the buffers they decode into, and decoded bytes. */
type Batch = { oids: Oid[]; stored: Buffer[]; out: Buffer[]; bytes: number; input: Buffer; used: number };

export class ChunkDecoder implements ChunkSource {
  private readonly inFlight = new Map<Oid, Array<() => void>>();
  private batch: Batch | undefined;
  /** The chunks of the batch being filled. */
  private readonly unsent = new Set<Oid>();
  /** Input buffers of finished batches, reused (stored values are copied: the store's views do not last). */
  private readonly inputs: Buffer[] = [];
  /** Batches made, waiting for a free job slot, in order. */
  private readonly queued: Batch[] = [];
  private jobs = 0;
  private closed = false;
  /** Decoded bytes asked for and not yet arrived, and the most at any time. */
  private aheadBytes = 0;
  peakBytes = 0;
  private idle: (() => void) | undefined;

  constructor(private readonly lookup: StoredLookup, private readonly alloc: (size: number) => Buffer, private readonly onChunk: (oid: Oid, data: Buffer | undefined) => void) {}

  pending(oid: Oid): boolean {
    return this.inFlight.has(oid);
  }

  request(oids: Oid[]): void {
    if (this.closed) return;
    const failed: Oid[] = [];
    for (const oid of oids) {
      if (this.inFlight.has(oid)) continue;
      let stored: Buffer | undefined;
      try {
        stored = this.lookup(oid);
      } catch {
        // Unreadable here: the reader reads it itself and reports why.
      }
      const size = stored && decodedSize(stored);
      this.inFlight.set(oid, []);
      if (!stored || size === undefined) { failed.push(oid); continue; }
      let b = this.batch;
      if (b && b.used + stored.length > b.input.length) {
        this.submit();
        b = undefined;
      }
      b ??= this.batch = this.newBatch(stored.length);
      const copy = b.input.subarray(b.used, b.used + stored.length);
      copy.set(stored);
      b.used += stored.length;
      b.oids.push(oid);
      this.unsent.add(oid);
      b.stored.push(copy);
      b.out.push(this.alloc(size));
      b.bytes += size;
      this.aheadBytes += size;
      if (this.aheadBytes > this.peakBytes) this.peakBytes = this.aheadBytes;
      if (b.bytes >= BATCH_BYTES) this.submit();
    }
    for (const oid of failed) this.arrive(oid, undefined);
  }

  /**
   * Resolves when each of these chunks that is in flight has arrived. A batch being filled is sent when one of them
   * is in it: batches are otherwise sent full, since every batch sent to an idle thread pool wakes a thread, which
   * on a busy machine takes the main thread's core for a while.
   */
  async wait(oids: Oid[]): Promise<void> {
    const waits: Array<Promise<void>> = [];
    for (const o of oids) {
      const ws = this.inFlight.get(o);
      if (ws) waits.push(new Promise<void>((resolve) => ws.push(resolve)));
    }
    if (!waits.length) return;
    if (oids.some((o) => this.unsent.has(o))) this.submit();
    await Promise.all(waits);
  }

  /** Stops taking requests and waits for the batches on the thread pool (native work cannot be cancelled); their chunks are dropped. */
  async close(): Promise<void> {
    this.closed = true;
    this.queued.length = 0;
    for (const ws of this.inFlight.values()) for (const wake of ws) wake();
    this.inFlight.clear();
    if (this.jobs) await new Promise<void>((resolve) => { this.idle = resolve; });
  }

  /** Closes the batch being filled, and starts what a free job slot allows. */
  private submit(): void {
    const b = this.batch;
    if (b?.oids.length) {
      this.queued.push(b);
      this.batch = undefined;
      this.unsent.clear();
    }
    while (this.jobs < MAX_JOBS && this.queued.length) this.start(this.queued.shift()!);
  }

  private start(b: Batch): void {
    const ids = Buffer.allocUnsafe(OID_BYTES * b.oids.length);
    b.oids.forEach((o, i) => ids.write(o, i * OID_BYTES, 'hex'));
    const status = new Int32Array(b.oids.length);
    this.jobs++;
    native().decodeVerify(b.stored, b.out, ids, status, () => {
      this.jobs--;
      this.aheadBytes -= b.bytes;
      if (this.inputs.length < MAX_JOBS + 2) this.inputs.push(b.input);
      if (!this.closed) {
        b.oids.forEach((o, i) => this.arrive(o, status[i] === 0 ? b.out[i] : undefined));
        this.submit();
      }
      if (!this.jobs) this.idle?.();
    });
  }

  /** An empty batch whose input holds at least `first` bytes. */
  private newBatch(first: number): Batch {
    let input = this.inputs.pop();
    if (!input || input.length < first) input = Buffer.allocUnsafeSlow(Math.max(first, INPUT_BYTES));
    return { oids: [], stored: [], out: [], bytes: 0, input, used: 0 };
  }

  private arrive(oid: Oid, data: Buffer | undefined): void {
    const ws = this.inFlight.get(oid);
    if (!ws) return;
    this.inFlight.delete(oid);
    this.onChunk(oid, data);
    for (const wake of ws) wake();
  }
}

/** The decoded size a stored value declares, or undefined when it does not (or is too large to decode ahead). */
function decodedSize(stored: Buffer): number | undefined {
  if (stored.length === 0) return undefined;
  if (stored[0] === CODEC_RAW) return stored.length - 1;
  if (stored[0] !== CODEC_ZSTD) return undefined;
  const n = frameContentSize(stored.subarray(1));
  return n === null || n > MAX_CHUNK ? undefined : n;
}
