/** Tests of commit's writer thread: its batch buffers are bounded and reused, and what it writes reads back intact. */
import test from 'ava';
import path from 'node:path';
import { BackgroundWriter, DEFAULT_WORKER_BATCH, MAX_INFLIGHT } from '../../src/store/background-writer.js';
import { FINAL_INDEX_ENTRIES, LmdbStore } from '../../src/store/lmdb-store.js';
import { WriteError } from '../../src/errors.js';
import { faultCounts, setFaults } from '../../src/store/faults.js';
import { encodeTree, hashTree } from '../../src/model/tree.js';
import { hashBytes } from '../../src/model/oid.js';
import { ChunkedBlobBuilder, decodeBlob } from '../../src/model/blob.js';
import { randomBytes, tmpDir } from '../helpers/repo.js';

/** Bytes that compress (words from a small vocabulary), so that the writer thread has work to fall behind on. */
function textBytes(n: number, seed: number): Buffer {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', String(seed)];
  const parts: string[] = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const w = words[(i * 7 + seed * 13 + (i >> 3)) % words.length]!;
    parts.push(w);
    len += w.length + 1;
  }
  return Buffer.from(parts.join(' ').slice(0, n));
}

test('background writer: batch buffers come back from the worker and are reused (12 batches, at most MAX_INFLIGHT + 1 buffers)', async (t) => {
  const store = new LmdbStore(path.join(tmpDir(t), 'data.mdb'));
  const writer = new BackgroundWriter(store);
  t.teardown(async () => { await writer.close(); await store.close(); });
  const objects: Array<[string, Buffer]> = [];
  const total = 12 * DEFAULT_WORKER_BATCH;
  for (let i = 0, bytes = 0; bytes < total; i++) {
    // Half compressible, half not: both the worker's encoding and the sender's own (when the worker lags) are used.
    const data = i % 2 ? textBytes(200_000 + i, i) : randomBytes(200_000 + i, `chunk ${i}`);
    const oid = hashBytes(data);
    writer.writeObject('chunk', oid, data);
    // The caller's buffer is borrowed: scribbling on it after the call must not change what is stored.
    data.fill(0xee);
    objects.push([oid, i % 2 ? textBytes(200_000 + i, i) : randomBytes(200_000 + i, `chunk ${i}`)]);
    bytes += data.length;
    await writer.drain();
  }
  await writer.flush();
  t.true(writer.buffersAllocated <= MAX_INFLIGHT + 1, `${writer.buffersAllocated} batch buffers allocated`);
  for (const [oid, data] of objects) t.true(store.readObject('chunk', oid).equals(data), `chunk ${oid} reads back as written`);
});

test('background writer: an object larger than a batch travels in a buffer of its own, not kept', async (t) => {
  const store = new LmdbStore(path.join(tmpDir(t), 'data.mdb'));
  const writer = new BackgroundWriter(store);
  t.teardown(async () => { await writer.close(); await store.close(); });
  const small = randomBytes(1000, 'small');
  const big = randomBytes(DEFAULT_WORKER_BATCH + 12345, 'big');
  const after = randomBytes(3 * DEFAULT_WORKER_BATCH, 'after');
  const written: Buffer[] = [small, big];
  writer.writeObject('chunk', hashBytes(small), small);
  writer.writeObject('blob', hashBytes(big), big);
  await writer.drain();
  // Batches after the big one still fit the buffers of batch size (no further allocation for them).
  for (let off = 0; off < after.length; off += 100_000) {
    const piece = after.subarray(off, off + 100_000);
    writer.writeObject('chunk', hashBytes(piece), piece);
    written.push(piece);
    await writer.drain();
  }
  await writer.flush();
  t.true(writer.buffersAllocated <= MAX_INFLIGHT + 2, `${writer.buffersAllocated} batch buffers allocated`);
  t.true(store.readObject('blob', hashBytes(big)).equals(big));
  for (const w of written.slice(2)) t.true(store.readObject('chunk', hashBytes(w)).equals(w));
});

test('background writer: a large object first, compressible, and the caller\'s buffer scribbled on after the call: stored compressed, reads back', async (t) => {
  const store = new LmdbStore(path.join(tmpDir(t), 'data.mdb'));
  const writer = new BackgroundWriter(store);
  t.teardown(async () => { await writer.close(); await store.close(); });
  const big = textBytes(2 * DEFAULT_WORKER_BATCH + 7, 3);
  const oid = hashBytes(big);
  const data = Buffer.from(big);
  writer.writeObject('blob', oid, data);
  data.fill(0);
  // The same object again is not sent twice.
  writer.writeObject('blob', oid, big);
  await writer.flush();
  t.true(store.readObject('blob', oid).equals(big));
  t.true(store.readStored('blob', oid)!.length < big.length / 2, 'stored compressed');
  t.is(writer.written.objects, 1);
});

test('background writer: a large blob record given over (ChunkedBlobBuilder\'s) goes to the worker without a copy; a small one is copied', async (t) => {
  const store = new LmdbStore(path.join(tmpDir(t), 'data.mdb'));
  const writer = new BackgroundWriter(store);
  t.teardown(async () => { await writer.close(); await store.close(); });
  // 120 000 segments: a 4.5 MB record, as a 7.5 GiB file's.
  const b = new ChunkedBlobBuilder();
  let size = 0;
  for (let i = 0; i < 120_000; i++) {
    const length = 65_536 + (i % 1000);
    b.chunk(hashBytes(Buffer.from(`chunk ${i}`)), length);
    size += length;
  }
  const record = b.finish(size);
  t.true(record.length >= DEFAULT_WORKER_BATCH);
  const expected = Buffer.from(record);
  const oid = hashBytes(Buffer.from('a large file'));
  writer.writeObjectGiven('blob', oid, record);
  t.is(record.buffer.byteLength, 0, 'the buffer went to the worker');
  const small = new ChunkedBlobBuilder();
  small.chunk(hashBytes(Buffer.from('x')), 10);
  const smallRecord = small.finish(10);
  const smallOid = hashBytes(Buffer.from('a small file'));
  writer.writeObjectGiven('blob', smallOid, smallRecord);
  t.is(smallRecord.length, 43, 'a small record is copied, its buffer left to the caller');
  writer.writeObjectGiven('blob', oid, Buffer.from(expected));
  await writer.flush();
  t.true(store.readObject('blob', oid).equals(expected));
  t.deepEqual(decodeBlob(store.readObject('blob', smallOid)), { form: 'chunked', size: 10, segments: [{ kind: 'chunk', oid: hashBytes(Buffer.from('x')), length: 10 }] });
  t.is(writer.written.objects, 2);
});

test('background writer: a large record given over that compresses to a few bytes is stored compressed, and the trees queued before it read back', async (t) => {
  const store = new LmdbStore(path.join(tmpDir(t), 'data.mdb'));
  const writer = new BackgroundWriter(store);
  t.teardown(async () => { await writer.close(); await store.close(); });
  // Trees first: the worker keeps their keys in Node's shared pool, right before where a small compressed copy of the
  // record is allocated; being metadata, they are packed apart, so the record makes a pack of its own.
  const small = Array.from({ length: 50 }, (_, i) => encodeTree({ entries: [{ name: Buffer.from(`f${i}`), type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, size: 1, xattrs: [], oid: hashBytes(Buffer.from(`x${i}`)) }] }));
  for (const d of small) writer.writeObject('tree', hashTree(d), d);
  // 130 000 equal segments (a file of the same 64 KiB chunk over and over): a 4.4 MB record that zstd takes to bytes.
  const b = new ChunkedBlobBuilder();
  const same = hashBytes(Buffer.from('the same chunk'));
  for (let i = 0; i < 130_000; i++) b.chunk(same, 65_536);
  const record = b.finish(130_000 * 65_536);
  const expected = Buffer.from(record);
  const oid = hashBytes(Buffer.from('a file of one chunk repeated'));
  writer.writeObjectGiven('blob', oid, record);
  await writer.flush();
  t.true(store.readStored('blob', oid)!.length < 100_000, 'stored compressed');
  t.true(store.readObject('blob', oid).equals(expected));
  let same2 = 0;
  for (const d of small) if (store.hasObject('tree', hashTree(d)) && store.readObject('tree', hashTree(d)).equals(d)) same2++;
  t.is(same2, small.length);
});

test('lmdb-store: the deferred index goes in in bounded transactions, chunks and blobs first; trees and the content index only with the last', (t) => {
  // One run to count the write transactions, a second that fails the last one. Synchronous: no other test of this
  // file runs while faults are set.
  const run = (fault: string) => {
    const store = new LmdbStore(path.join(tmpDir(t), 'data.mdb'), { deferIndex: true });
    t.teardown(() => store.close());
    const chunks: string[] = [];
    for (let i = 0; i < FINAL_INDEX_ENTRIES + 500; i++) {
      const d = Buffer.from(`chunk ${i}`);
      chunks.push(hashBytes(d));
      store.writeObject('chunk', hashBytes(d), d);
    }
    const tree = encodeTree({ entries: [{ name: Buffer.from('f'), type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, size: 7, xattrs: [], oid: chunks[0] }] });
    store.writeObject('tree', hashTree(tree), tree);
    setFaults(fault);
    let failed = false;
    try {
      store.flushSync({ final: true });
    } catch (e) {
      failed = e instanceof WriteError;
    }
    const writes = faultCounts().write;
    setFaults(undefined);
    const indexed = chunks.filter((c) => store.hasDurableObject('chunk', c)).length;
    return { writes, failed, indexed, tree: store.hasDurableObject('tree', hashTree(tree)), parents: store.ixParent.getKeysCount() };
  };
  const all = run('write:1000000:ENOSPC');
  t.deepEqual([all.failed, all.indexed, all.tree], [false, FINAL_INDEX_ENTRIES + 500, true]);
  t.true(all.parents > 0, 'the tree\'s content index entries are written');
  const lost = run(`write:${all.writes}:ENOSPC`);
  t.true(lost.failed);
  t.is(lost.indexed, FINAL_INDEX_ENTRIES, 'the first transaction\'s chunks are in the index');
  t.false(lost.tree, 'the tree is not, since the last transaction failed');
  t.is(lost.parents, 0, 'nor any content index entry');
});

test('lmdb-store: a writer store with staging (the writer thread\'s) reuses its staging buffer across transactions; every object reads back', async (t) => {
  const store = new LmdbStore(path.join(tmpDir(t), 'data.mdb'), { deferIndex: true, batchBytes: 64 * 1024, staging: true });
  t.teardown(() => store.close());
  const objects: Array<[string, Buffer]> = [];
  for (let i = 0; i < 120; i++) {
    const data = i % 3 ? textBytes(10_000 + 97 * i, i) : randomBytes(10_000 + 97 * i, `staged ${i}`);
    const oid = hashBytes(data);
    store.writeObject('chunk', oid, data);
    objects.push([oid, data]);
  }
  store.flushSync({ final: true });
  // 120 objects of 10–22 KB in 64 KiB transactions: the staging buffer was filled and reused many times over.
  for (const [oid, data] of objects) t.true(store.readObject('chunk', oid).equals(data), `chunk ${oid} reads back as written`);
});
