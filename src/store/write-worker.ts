/**
 * Worker thread of BackgroundWriter: compresses (zstd) and writes objects into the same LMDB environment, so that
 * the main thread only reads, chunks and hashes. Messages: batch → ack (giving the batch's buffer back), flush → flushed (durable), close.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { LmdbStore, WRITER_BATCH_BYTES, type RemoteMode } from './lmdb-store.js';
import { KIND_BY_CODE, encodeStored } from './object-store.js';

export interface BatchMessage {
  type: 'batch';
  id: number;
  buf: ArrayBuffer;
  /** [kind code, oid hex, offset, length, 1 when already encoded by the sender] */
  items: Array<[number, string, number, number, number]>;
  /** The buffer is this batch's own (one large object, not yet encoded), not given back: the worker keeps it. */
  own?: boolean;
}

const port = parentPort!;
const store = new LmdbStore(workerData.path as string, {
  zstdLevel: workerData.zstdLevel as number, deferIndex: true, batchBytes: WRITER_BATCH_BYTES, staging: true, remote: workerData.remote as RemoteMode | undefined,
});

/** The first failure: after it, batches and flushes are answered with it at once, nothing more is written. */
let failed: { message: string; code?: string; data?: Record<string, unknown> } | undefined;

port.on('message', (msg: BatchMessage | { type: 'flush' | 'close'; id: number }) => {
  if (failed && msg.type !== 'close') {
    port.postMessage({ type: 'error', id: msg.id, ...failed });
    return;
  }
  try {
    if (msg.type === 'batch') {
      const buf = Buffer.from(msg.buf);
      if (msg.own) {
        // The whole buffer is this object's, with room before it: stored raw (an incompressible blob record: 38
        // random-looking bytes per chunk), it is encoded in place, its codec byte in that room, where its pack's header
        // goes too when there is room for it.
        for (const [code, oid, off, len] of msg.items) {
          const data = buf.subarray(off, off + len);
          const stored = encodeStored(data, store.zstdLevel, (n) => (n === len + 1 && off >= 1 ? buf.subarray(off - 1, off + len) : Buffer.allocUnsafe(n)));
          // Given over only when it is still the sender's buffer: a compressed copy may be in Node's shared pool.
          if (stored.buffer === msg.buf) store.writeStoredObjectGiven(KIND_BY_CODE[code]!, oid, stored);
          else store.writeStoredObject(KIND_BY_CODE[code]!, oid, stored);
        }
        port.postMessage({ type: 'ack', id: msg.id });
        return;
      }
      for (const [code, oid, off, len, encoded] of msg.items) {
        // The buffer goes back to the sender below: a queued value must not point into it. writeObject's encoding is
        // a copy; an already encoded value is copied here.
        if (encoded) store.writeStoredObject(KIND_BY_CODE[code]!, oid, Buffer.from(buf.subarray(off, off + len)));
        else store.writeObject(KIND_BY_CODE[code]!, oid, buf.subarray(off, off + len));
      }
      port.postMessage({ type: 'ack', id: msg.id, buf: msg.buf }, [msg.buf]);
    } else if (msg.type === 'flush') {
      store.flushSync({ final: true });
      port.postMessage({ type: 'flushed', id: msg.id, objects: store.written.objects, bytes: store.written.bytes });
    } else if (msg.type === 'close') {
      store.discard();
      void store.close().then(() => port.postMessage({ type: 'closed', id: msg.id }));
    }
  } catch (e) {
    const err = e as Error & { code?: string; data?: Record<string, unknown> };
    failed = { message: err.message, ...(err.code ? { code: err.code } : {}), ...(err.data ? { data: err.data } : {}) };
    port.postMessage({ type: 'error', id: msg.id, ...failed, stack: err.stack });
  }
});
