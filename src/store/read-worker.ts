/**
 * Worker thread of BlobPrefetcher: reads blob records and chunks from LMDB and decompresses them ahead of the
 * checkout writer, so that the main thread only writes files.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { LmdbStore } from './lmdb-store.js';
import { readBlobPieces } from './typed.js';

const port = parentPort!;
const store = new LmdbStore(workerData.path as string, { readOnly: true });

port.on('message', (msg: { type: 'read'; oids: string[] } | { type: 'chunks'; oids: string[] } | { type: 'close' }) => {
  if (msg.type === 'close') {
    void store.close().then(() => port.postMessage({ type: 'closed' }));
    return;
  }
  if (msg.type === 'chunks') {
    // Decoded and verified chunks for ChunkPrefetcher; one that cannot be read is left to the main thread, which
    // reads it again and reports the error where it is needed.
    // Posted in batches of about 1 MiB: one message per chunk costs the main thread more than the copy it saves.
    let batch: Array<{ oid: string; data?: Uint8Array }> = [];
    let transfer: ArrayBuffer[] = [];
    let bytes = 0;
    const post = () => {
      if (batch.length) port.postMessage({ type: 'chunks', chunks: batch }, transfer);
      batch = [];
      transfer = [];
      bytes = 0;
    };
    for (const oid of msg.oids) {
      let data: Buffer | undefined;
      try { data = store.readObject('chunk', oid); } catch { data = undefined; }
      // Moved, not copied by the main thread: a chunk that shares its ArrayBuffer is copied here into its own.
      const own = data && (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) ? new Uint8Array(data) : data;
      batch.push({ oid, ...(own ? { data: own } : {}) });
      if (own) { transfer.push(own.buffer as ArrayBuffer); bytes += own.length; }
      if (bytes >= 1 << 20) post();
    }
    post();
    return;
  }
  for (const oid of msg.oids) {
    try {
      const pieces: Array<{ offset: number; data?: Buffer; zeros?: number }> = [];
      const transfer: ArrayBuffer[] = [];
      for (const p of readBlobPieces(store, oid)) {
        pieces.push(p);
        const ab = p.data?.buffer;
        // Only whole, unshared ArrayBuffers can move without a copy (small Buffers live in a shared pool).
        if (p.data && ab instanceof ArrayBuffer && p.data.byteOffset === 0 && p.data.byteLength === ab.byteLength && !transfer.includes(ab)) transfer.push(ab);
      }
      port.postMessage({ type: 'blob', oid, pieces }, transfer);
    } catch (e) {
      port.postMessage({ type: 'blob', oid, error: { message: (e as Error).message, code: (e as { code?: string }).code, data: (e as { data?: unknown }).data } });
    }
  }
});
