/**
 * RemotePackWriter on memory: packs cut at their targets with content and metadata apart, entries that point at the
 * right bytes, at most 4 uploads in flight with backpressure on `add`, and upload failures surfacing as RemoteError.
 */
import test from 'ava';
import crypto from 'node:crypto';
import { AbortedError, RemoteError } from '../../src/errors.js';
import { hashBytes } from '../../src/model/oid.js';
import { decodePackHeader, isMetaKind } from '../../src/store/lmdb-store.js';
import { KIND_BY_CODE, OBJECT_KINDS, decodeStored, encodeStored, objectKey, type ObjectKind } from '../../src/store/object-store.js';
import { FaultyBackend } from '../../src/store/remote/faulty-backend.js';
import { MemoryBackend } from '../../src/store/remote/memory-backend.js';
import { MAX_PENDING_UPLOADS, RemotePackWriter } from '../../src/store/remote/remote-pack-writer.js';
import { RemotePackStore } from '../../src/store/remote/remote-packs.js';
import { decodeSegment, encodeSegment } from '../../src/store/remote/segment.js';
import { InFlightBackend } from './remote-pack-helpers.js';

interface Obj { kind: ObjectKind; data: Buffer; key: Buffer; stored: Buffer }

/** An object of `kind` with `size` random (incompressible: stored raw, one codec byte more) bytes. */
function obj(kind: ObjectKind, size: number): Obj {
  const data = crypto.randomBytes(size);
  return { kind, data, key: objectKey(kind, hashBytes(data)), stored: encodeStored(data) };
}

/** Content and metadata interleaved: chunks and blob records, trees and commits. */
function mixed(n: number): Obj[] {
  const kinds: ObjectKind[] = ['chunk', 'chunk', 'tree', 'chunk', 'blob', 'commit', 'chunk', 'disk'];
  return Array.from({ length: n }, (_, i) => obj(kinds[i % kinds.length]!, isMetaKind(OBJECT_KINDS[kinds[i % kinds.length]!]) ? 300 + (i % 7) * 50 : 1000 + (i % 5) * 400));
}

const TARGET = { data: 10_000, meta: 2_000 };

test('pack writer: packs are cut at their targets, content and metadata apart, in the pack format', async (t) => {
  const store = new RemotePackStore(new MemoryBackend('memory://writer'));
  const w = new RemotePackWriter(store, TARGET);
  const objects = mixed(200);
  for (const o of objects) await w.add(o.key, o.stored);
  const { packs } = await w.finish();
  const byKey = new Map(objects.map((o) => [o.key.toString('hex'), o]));
  const classes = new Set<string>();
  for (const cls of ['data', 'meta'] as const) {
    const ofClass = packs.filter((p) => p.class === cls);
    t.true(ofClass.length >= 3, `${cls}: ${ofClass.length} packs`);
    for (const [i, p] of ofClass.entries()) {
      const bytes = (await store.get(p.id))!;
      t.is(bytes.length, p.size);
      const header = decodePackHeader(p.id, bytes);
      const used = header.reduce((n, e) => n + e.length + 41, 0);
      const target = TARGET[cls];
      if (i < ofClass.length - 1) {
        t.true(used >= target, `${cls} pack ${i}: ${used} bytes reach the target`);
        t.true(used - header[header.length - 1]!.length - 41 < target, `${cls} pack ${i}: closed by its last object`);
      } else {
        t.true(used < target + 3000, 'the last pack holds the rest');
      }
      for (const e of header) {
        t.is(isMetaKind(e.key[0]!), cls === 'meta', `${KIND_BY_CODE[e.key[0]!]} in a ${cls} pack`);
        t.true(byKey.has(e.key.toString('hex')));
        classes.add(KIND_BY_CODE[e.key[0]!]!);
      }
    }
  }
  t.deepEqual([...classes].sort(), ['blob', 'chunk', 'commit', 'disk', 'tree']);
});

test('pack writer: every entry points at its object\'s stored bytes; the result encodes as a segment', async (t) => {
  const store = new RemotePackStore(new MemoryBackend('memory://writer'));
  const w = new RemotePackWriter(store, TARGET);
  const objects = mixed(120);
  for (const o of objects) await w.add(o.key, o.stored);
  await w.add(objects[5]!.key, objects[5]!.stored);               // added twice: stored once
  const { packs, entries } = await w.finish();
  t.is(entries.length, objects.length);
  const byKey = new Map(objects.map((o) => [o.key.toString('hex'), o]));
  for (const e of entries) {
    const o = byKey.get(e.key.toString('hex'))!;
    const stored = await store.getRange(e.pack, e.offset, e.length);
    t.deepEqual(stored, o.stored);
    t.is(hashBytes(decodeStored(stored)), o.key.subarray(1).toString('hex'));
    t.true(packs.some((p) => p.id === e.pack && p.class === (isMetaKind(o.key[0]!) ? 'meta' : 'data')));
  }
  const seg = decodeSegment(encodeSegment({ packs, entries, retired: [], tombstones: [] }), 'index/x.vix');
  t.is(seg.entries.length, objects.length);
  t.deepEqual(seg.packs, packs);
});

test('pack writer: at most 4 uploads in flight; add() waits while 4 are pending', async (t) => {
  const backend = new InFlightBackend(new FaultyBackend(new MemoryBackend('memory://writer'), { latencyMs: 15 }));
  const w = new RemotePackWriter(new RemotePackStore(backend), { data: 2_000, meta: 2_000 });
  let maxPendingAfterAdd = 0;
  let waited = 0;
  for (const o of Array.from({ length: 120 }, () => obj('chunk', 1000))) {
    const before = performance.now();
    await w.add(o.key, o.stored);
    if (performance.now() - before > 5) waited++;
    maxPendingAfterAdd = Math.max(maxPendingAfterAdd, w.pendingUploads);
  }
  const { packs } = await w.finish();
  t.is(packs.length, 60);
  t.is(backend.maxPuts, MAX_PENDING_UPLOADS, 'uploads overlap, but never more than 4');
  t.true(maxPendingAfterAdd < MAX_PENDING_UPLOADS, `pending after add: ${maxPendingAfterAdd}`);
  t.true(waited > 10, `add waited ${waited} times`);
  t.is(w.pendingUploads, 0);
});

test('pack writer: an upload failure rejects finish() and later adds with the RemoteError', async (t) => {
  const inner = new MemoryBackend('memory://writer');
  const backend = new FaultyBackend(inner, { latencyMs: 2, faults: [{ op: 'put', nth: 3, fault: '500' }] });
  const w = new RemotePackWriter(new RemotePackStore(backend), { data: 2_000, meta: 2_000 });
  // 7 objects: three packs close while adding (fewer than 4 pending: add never waits), the fourth in finish().
  const objects = Array.from({ length: 7 }, () => obj('chunk', 1000));
  for (const o of objects) await w.add(o.key, o.stored);
  t.is(w.pendingUploads, 3);
  const e = await t.throwsAsync(w.finish(), { instanceOf: RemoteError });
  t.is(e?.status, 500);
  t.regex(e?.message ?? '', /^memory:\/\/writer: put failed/);
  await t.throwsAsync(w.add(obj('chunk', 10).key, Buffer.from([0, 1])), { instanceOf: Error });
  t.is(backend.calls.put, 4, 'the other uploads still ran');
});

test('pack writer: a failure surfaces on add() once it is known, before finish()', async (t) => {
  const backend = new FaultyBackend(new MemoryBackend('memory://writer'), { faults: [{ op: 'put', nth: 1, fault: 'unreachable' }] });
  const w = new RemotePackWriter(new RemotePackStore(backend), { data: 1_000, meta: 1_000 });
  const err = await t.throwsAsync(async () => {
    for (let i = 0; i < 50; i++) {
      const o = obj('chunk', 1000);
      await w.add(o.key, o.stored);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }, { instanceOf: RemoteError });
  t.regex(err?.message ?? '', /cannot reach/);
  await t.throwsAsync(w.finish(), { instanceOf: RemoteError });
});

test('pack store: any number of put() calls without awaiting keep at most 4 PUTs in flight', async (t) => {
  const backend = new InFlightBackend(new FaultyBackend(new MemoryBackend('memory://packs'), { latencyMs: 10 }));
  const store = new RemotePackStore(backend);
  const bodies = Array.from({ length: 20 }, () => crypto.randomBytes(100));
  const ids = await Promise.all(bodies.map((b) => store.put(b)));
  t.deepEqual(ids, bodies.map(hashBytes));
  t.is(backend.maxPuts, 4);
  t.is(store.putsInFlight, 0);
});

test('pack writer: onUploaded reports each pack; an abort stops the uploads not yet started', async (t) => {
  const backend = new FaultyBackend(new MemoryBackend('memory://writer'), { latencyMs: 10 });
  const seen: string[] = [];
  const w = new RemotePackWriter(new RemotePackStore(backend), { data: 1_000, meta: 1_000 }, { onUploaded: (p) => seen.push(p.id) });
  for (const o of Array.from({ length: 6 }, () => obj('chunk', 1000))) await w.add(o.key, o.stored);
  const { packs } = await w.finish();
  t.deepEqual(new Set(seen), new Set(packs.map((p) => p.id)));
  t.is(seen.length, 6);

  const ac = new AbortController();
  const aborted = new RemotePackWriter(new RemotePackStore(backend, { putConcurrency: 1 }), { data: 1_000, meta: 1_000 }, { signal: ac.signal });
  const puts = backend.calls.put;
  for (const o of Array.from({ length: 3 }, () => obj('chunk', 1000))) await aborted.add(o.key, o.stored);
  ac.abort();
  await t.throwsAsync(aborted.finish(), { instanceOf: AbortedError });
  t.is(backend.calls.put - puts, 1, 'only the upload already running went out');
});
