/** Tests of the LMDB object store: queue/flush/read, dedup, the stored-value codec, listing by prefix, persistence. */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import path from 'node:path';
import { ObjectNotFoundError, RepositoryCorruptError, WriteError } from '../../src/errors.js';
import { faultCounts, setFaults } from '../../src/store/faults.js';
import { hashBytes } from '../../src/model/oid.js';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import {
  CODEC_RAW, CODEC_ZSTD, INCOMPRESSIBLE_BITS, MIN_COMPRESS_SIZE, OBJECT_KINDS, decodeStored, encodeStored, objectKey, sampleEntropy, type ObjectKind,
} from '../../src/store/object-store.js';
import { randomBytes, tmpDir } from '../helpers/repo.js';

function openStore(t: ExecutionContext, dir = tmpDir(t)): { store: LmdbStore; file: string } {
  const file = path.join(dir, 'data.mdb');
  const store = new LmdbStore(file);
  let open = true;
  t.teardown(async () => { if (open) await store.close(); });
  const close = store.close.bind(store);
  store.close = async () => { open = false; await close(); };
  return { store, file };
}

function stored(store: LmdbStore, kind: ObjectKind, oid: string): Buffer | undefined {
  return store.hasDurableObject(kind, oid) ? store.readStored(kind, oid) : undefined;
}

test('lmdb-store: object kind codes and codec bytes are frozen', (t) => {
  t.deepEqual({ ...OBJECT_KINDS }, { chunk: 1, blob: 2, tree: 3, commit: 4, disk: 5 });
  t.deepEqual([CODEC_RAW, CODEC_ZSTD], [0, 1]);
});

test('lmdb-store: objectKey is the kind byte followed by the 32 id bytes', (t) => {
  const oid = hashBytes(Buffer.from('x'));
  const k = objectKey('tree', oid);
  t.is(k.length, 33);
  t.is(k[0], 3);
  t.is(k.subarray(1).toString('hex'), oid);
});

test('lmdb-store: a written object is readable before and after flush, and durable after flush', async (t) => {
  const dir = tmpDir(t);
  const { store } = openStore(t, dir);
  const data = Buffer.from('hello object store\n'.repeat(10));
  const oid = hashBytes(data);
  t.false(store.hasObject('chunk', oid));
  t.is(store.tryReadObject('chunk', oid), undefined);
  store.writeObject('chunk', oid, data);
  // Pending: visible through the store, not yet in the database.
  t.true(store.hasObject('chunk', oid));
  t.deepEqual(store.readObject('chunk', oid), data);
  t.false(store.hasDurableObject('chunk', oid));
  await store.flush();
  t.true(store.hasDurableObject('chunk', oid));
  t.deepEqual(store.readObject('chunk', oid), data);
  // Other kinds live in other keyspaces.
  t.false(store.hasObject('blob', oid));
  t.false(store.hasObject('tree', oid));
  await store.close();

  const { store: again } = openStore(t, dir);
  t.true(again.hasObject('chunk', oid));
  t.deepEqual(again.readObject('chunk', oid), data);
});

test('lmdb-store: readObject throws ObjectNotFoundError naming kind and id', (t) => {
  const { store } = openStore(t);
  const oid = 'ab'.repeat(32);
  const err = t.throws(() => store.readObject('tree', oid), { instanceOf: ObjectNotFoundError });
  t.is(err?.code, 'ERR_OBJECT_NOT_FOUND');
  t.deepEqual(err?.data, { kind: 'tree', oid });
  t.is(err?.message, `tree '${oid}' not found`);
});

test('lmdb-store: writing an id twice (pending or stored) keeps one object', async (t) => {
  const { store } = openStore(t);
  const a = randomBytes(1000, 'a');
  const oid = hashBytes(a);
  const before = { ...store.written };
  store.writeObject('chunk', oid, a);
  store.writeObject('chunk', oid, a);
  t.true(store.hasObject('chunk', oid));
  await store.flush();
  t.is(store.written.objects - before.objects, 1);
  // Written again after the flush: the flush finds it present and writes nothing.
  store.writeObject('chunk', oid, a);
  await store.flush();
  t.is(store.written.objects - before.objects, 1);
  t.deepEqual([...store.listObjects('chunk')], [oid]);
});

test('lmdb-store: the same id under two kinds is two objects', async (t) => {
  const { store } = openStore(t);
  const oid = hashBytes(Buffer.from('shared'));
  store.writeObject('chunk', oid, Buffer.from('shared'));
  store.writeObject('blob', oid, Buffer.from('a blob record'));
  await store.flush();
  t.deepEqual(store.readObject('chunk', oid), Buffer.from('shared'));
  t.deepEqual(store.readObject('blob', oid), Buffer.from('a blob record'));
  t.deepEqual([...store.listObjects('chunk')], [oid]);
  t.deepEqual([...store.listObjects('blob')], [oid]);
  t.deepEqual([...store.listObjects('tree')], []);
});

test('lmdb-store: incompressible data is stored raw, compressible data as zstd', async (t) => {
  const { store } = openStore(t);
  const random = randomBytes(100_000, 'incompressible');
  const text = Buffer.from('all work and no play makes jack a dull boy\n'.repeat(3000));
  const tiny = Buffer.from('a'.repeat(MIN_COMPRESS_SIZE - 1));
  for (const d of [random, text, tiny]) store.writeObject('chunk', hashBytes(d), d);
  await store.flush();

  const r = stored(store, 'chunk', hashBytes(random))!;
  t.is(r[0], CODEC_RAW);
  t.is(r.length, random.length + 1);
  t.true(r.subarray(1).equals(random));

  const z = stored(store, 'chunk', hashBytes(text))!;
  t.is(z[0], CODEC_ZSTD);
  t.true(z.length < text.length / 20, `${z.length} stored bytes for ${text.length}`);

  const s = stored(store, 'chunk', hashBytes(tiny))!;
  t.is(s[0], CODEC_RAW, 'values below MIN_COMPRESS_SIZE are not compressed');

  for (const d of [random, text, tiny]) t.true(store.readObject('chunk', hashBytes(d)).equals(d));
});

test('lmdb-store: encodeStored/decodeStored round trip and refuse bad values', (t) => {
  for (const d of [Buffer.alloc(0), Buffer.from('x'), Buffer.alloc(10_000), randomBytes(5000, 'rt')]) {
    t.true(decodeStored(encodeStored(d)).equals(d));
    t.true(decodeStored(encodeStored(d, 19)).equals(d));
  }
  t.throws(() => decodeStored(Buffer.alloc(0)), { message: /empty stored value/ });
  t.throws(() => decodeStored(Buffer.from([7, 1, 2])), { message: /unknown codec 7/ });
  t.throws(() => decodeStored(Buffer.from([CODEC_ZSTD, 1, 2, 3, 4, 5])));
});

test('lmdb-store: a stored value that cannot be decoded reads as RepositoryCorruptError', async (t) => {
  const { store } = openStore(t);
  const oid = 'cd'.repeat(32);
  store.putStoredUnchecked('chunk', oid, Buffer.from([CODEC_ZSTD, 0xde, 0xad, 0xbe, 0xef]));
  const err = t.throws(() => store.readObject('chunk', oid), { instanceOf: RepositoryCorruptError });
  t.regex(err?.message ?? '', new RegExp(`chunk ${oid}: cannot decode stored value`));
  t.true(store.hasObject('chunk', oid));
});

test('lmdb-store: writeStoredObject keeps the given stored value as is', async (t) => {
  const { store } = openStore(t);
  const data = Buffer.from('z'.repeat(1000));
  const enc = encodeStored(data);
  t.is(enc[0], CODEC_ZSTD);
  store.writeStoredObject('chunk', hashBytes(data), enc);
  await store.flush();
  t.deepEqual(stored(store, 'chunk', hashBytes(data)), enc);
  t.true(store.readObject('chunk', hashBytes(data)).equals(data));
});

test('lmdb-store: discardPending drops queued objects', async (t) => {
  const { store } = openStore(t);
  const kept = Buffer.from('kept');
  const dropped = Buffer.from('dropped');
  store.writeObject('chunk', hashBytes(kept), kept);
  await store.flush();
  store.writeObject('chunk', hashBytes(dropped), dropped);
  store.discard();
  await store.flush();
  t.true(store.hasObject('chunk', hashBytes(kept)));
  t.false(store.hasObject('chunk', hashBytes(dropped)));
});

test('lmdb-store: listObjects by hex prefix of every length, odd and even', async (t) => {
  const { store } = openStore(t);
  const oids: string[] = [];
  for (let i = 0; i < 600; i++) {
    const d = Buffer.from(`object ${i}`);
    const oid = hashBytes(d);
    oids.push(oid);
    store.writeObject('chunk', oid, d);
  }
  // Objects of neighbouring kinds must not leak into the listing.
  store.writeObject('blob', 'ff'.repeat(32), Buffer.from('b'));
  store.writeObject('tree', '00'.repeat(32), Buffer.from('t'));
  await store.flush();
  oids.sort();
  t.deepEqual([...store.listObjects('chunk')], oids);
  t.deepEqual([...store.listObjects('chunk', '')], oids);
  const probes = [oids[0]!, oids[299]!, oids[599]!, 'a', 'f', '0', '7f', 'ab', 'abc', 'fff', '0000', 'ffffff', '123456789'];
  for (const base of probes) {
    for (let len = 1; len <= Math.min(base.length, 8); len++) {
      const prefix = base.slice(0, len);
      t.deepEqual([...store.listObjects('chunk', prefix)], oids.filter((o) => o.startsWith(prefix)), `prefix ${prefix}`);
    }
  }
  t.deepEqual([...store.listObjects('chunk', oids[42]!)], [oids[42]!]);
  t.deepEqual([...store.listObjects('blob', 'f')], ['ff'.repeat(32)]);
  t.deepEqual([...store.listObjects('tree', '0')], ['00'.repeat(32)]);
  t.deepEqual([...store.listObjects('commit')], []);
});

test('lmdb-store: listAllObjects yields kind, id and stored size of everything', async (t) => {
  const { store } = openStore(t);
  const a = Buffer.from('aaaa');
  const b = randomBytes(300, 'b');
  store.writeObject('chunk', hashBytes(a), a);
  store.writeObject('commit', hashBytes(b), b);
  await store.flush();
  const all = [...store.listAllObjects()].sort((x, y) => x.kind.localeCompare(y.kind));
  t.deepEqual(all, [
    { kind: 'chunk', oid: hashBytes(a), storedSize: a.length + 1 },
    { kind: 'commit', oid: hashBytes(b), storedSize: b.length + 1 },
  ]);
});

test('lmdb-store: many pending objects are flushed in batches and all survive', async (t) => {
  const { store } = openStore(t);
  const oids: string[] = [];
  // ~48 MiB of incompressible data: more than one DEFAULT_BATCH_BYTES batch.
  for (let i = 0; i < 48; i++) {
    const d = randomBytes(1 << 20, `batch ${i}`);
    const oid = hashBytes(d);
    oids.push(oid);
    store.writeObject('chunk', oid, d);
  }
  await store.flush();
  for (const oid of oids) t.true(store.hasDurableObject('chunk', oid));
  t.is([...store.listObjects('chunk')].length, 48);
});

test('lmdb-store: small objects share packs; content and metadata go to separate packs', async (t) => {
  const { store } = openStore(t);
  const chunks: string[] = [];
  for (let i = 0; i < 200; i++) {
    const d = randomBytes(3000, `small ${i}`);
    const oid = hashBytes(d);
    chunks.push(oid);
    store.writeObject('chunk', oid, d);
  }
  const tree = Buffer.from('tree\0\x01\x00');
  store.writeObject('tree', hashBytes(tree), tree);
  await store.flush();
  const packsOf = (kind: ObjectKind, oids: string[]) => new Set(oids.map((o) => store.locate(kind, o)!.pack));
  // 200 × 3 KB of incompressible data: a few 256 KiB packs, not 200 values of whole pages.
  t.true(packsOf('chunk', chunks).size <= 4);
  t.false(packsOf('chunk', chunks).has(store.locate('tree', hashBytes(tree))!.pack));
  for (const oid of chunks) t.is(hashBytes(store.readObject('chunk', oid)), oid);
});

test('lmdb-store: removing objects rewrites their packs with the live objects only', async (t) => {
  const { store } = openStore(t);
  const oids: string[] = [];
  for (let i = 0; i < 50; i++) {
    const d = randomBytes(2000, `gc ${i}`);
    oids.push(hashBytes(d));
    store.writeObject('chunk', oids[i]!, d);
  }
  await store.flush();
  const before = [...store.listPacks()];
  const doomed = oids.filter((_, i) => i % 2 === 0);
  let freed = 0;
  store.env.transactionSync(() => { freed = store.remove(doomed.map((oid) => ({ kind: 'chunk' as const, oid }))); });
  t.true(freed >= 25 * 2000);
  for (const [i, oid] of oids.entries()) {
    t.is(store.hasObject('chunk', oid), i % 2 === 1);
    if (i % 2 === 1) t.is(hashBytes(store.readObject('chunk', oid)), oid);
  }
  t.notDeepEqual([...store.listPacks()], before);
  // A pack whose objects are all live is left alone.
  const after = [...store.listPacks()];
  store.env.transactionSync(() => { for (const id of after) t.is(store.compactPack(id), 0); });
  t.deepEqual([...store.listPacks()], after);
});

test('lmdb-store: high-entropy data is stored raw without a compression attempt; text is compressed', (t) => {
  const random = randomBytes(64 * 1024, 'entropy');
  t.true(sampleEntropy(random) > INCOMPRESSIBLE_BITS);
  t.is(encodeStored(random)[0], CODEC_RAW);
  const text = Buffer.from('the quick brown fox jumps over the lazy dog 0123456789\n'.repeat(2000));
  t.true(sampleEntropy(text) < 5);
  t.is(encodeStored(text)[0], CODEC_ZSTD);
  // Half random, half zeros: entropy below the threshold, so zstd gets its chance (and wins).
  const mixed = Buffer.concat([randomBytes(32 * 1024, 'mixed'), Buffer.alloc(32 * 1024)]);
  t.is(encodeStored(mixed)[0], CODEC_ZSTD);
});

test('lmdb-store: every read checks the bytes against the id (chunks raw, meta objects by encoding; blob records are checked by readBlobPieces)', async (t) => {
  const { store } = openStore(t);
  const data = randomBytes(5000, 'verify');
  const oid = hashBytes(data);
  store.writeObject('chunk', oid, data);
  store.writeObject('tree', oid, data);
  store.writeObject('blob', oid, data);
  await store.flush();
  t.true(store.readObject('chunk', oid).equals(data));
  const flipped = Buffer.from(data);
  flipped[4000]! ^= 0x10;
  for (const kind of ['chunk', 'tree', 'blob'] as const) store.putStoredUnchecked(kind, oid, encodeStored(flipped));
  for (const kind of ['chunk', 'tree'] as const) {
    const err = t.throws(() => store.readObject(kind, oid), { instanceOf: RepositoryCorruptError });
    t.is(err?.message, `${kind} '${oid}' does not match its id (repository damaged: run 'viva fsck')`);
    t.throws(() => store.tryReadObject(kind, oid), { instanceOf: RepositoryCorruptError });
    t.true(store.tryReadUnverified(kind, oid)!.equals(flipped));
  }
  t.true(store.readObject('blob', oid).equals(flipped));
});

test('lmdb-store: injected write, flush and read faults surface as WriteError and RepositoryCorruptError', async (t) => {
  const { store } = openStore(t);
  const data = randomBytes(3000, 'faults');
  const oid = hashBytes(data);
  t.teardown(() => setFaults(undefined));
  setFaults('write:1:ENOSPC');
  store.writeObject('chunk', oid, data);
  const err = t.throws(() => store.flushSync(), { instanceOf: WriteError });
  t.regex(err?.message ?? '', /^cannot write '.*data\.mdb': no space left on device$/);
  t.false(store.hasDurableObject('chunk', oid), 'nothing written');
  setFaults('flush:1:EIO');
  store.writeObject('chunk', oid, data);
  t.throws(() => store.flushSync(), { instanceOf: WriteError, message: /input\/output error/ });
  t.true(store.hasDurableObject('chunk', oid), 'a flush fault comes after the transaction committed');
  setFaults('read:1:EIO');
  // The read names the object it was for, not only the pack.
  const readErr = t.throws(() => store.readObject('chunk', oid), { instanceOf: RepositoryCorruptError });
  t.regex(readErr?.message ?? '', new RegExp(`^cannot read chunk '${oid}': input/output error \\(pack \\d+\\)$`));
  t.true(store.readObject('chunk', oid).equals(data), 'only the first read failed');
  t.deepEqual({ ...faultCounts() }, { write: 0, read: 2, flush: 0 });
  t.throws(() => setFaults('write:x:EIO'), { message: /bad VIVA_FAULT entry/ });
  // Synchronous up to here: no other test of this file ran while faults were set.
  setFaults(undefined);
});
