/**
 * What RemotePackStore does beyond the PackStore suite: reading a pack's header with two range GETs (for an index
 * rebuild from packs alone), errors that name the pack's key, HEAD-before-PUT when asked, aborts, and pack ids.
 */
import test from 'ava';
import { AbortedError, RepositoryCorruptError } from '../../src/errors.js';
import { hashBytes } from '../../src/model/oid.js';
import { decodePackHeader, encodePack } from '../../src/store/lmdb-store.js';
import { FaultyBackend } from '../../src/store/remote/faulty-backend.js';
import { MemoryBackend } from '../../src/store/remote/memory-backend.js';
import { RemotePackStore, packKey } from '../../src/store/remote/remote-packs.js';
import { samplePack } from './pack-store.suite.js';

function setup(options = {}): { backend: FaultyBackend; inner: MemoryBackend; store: RemotePackStore } {
  const inner = new MemoryBackend('memory://remote-packs');
  const backend = new FaultyBackend(inner);
  return { backend, inner, store: new RemotePackStore(backend, options) };
}

test('remote packs: readHeader reads the header with two range GETs (and a HEAD without the size)', async (t) => {
  const { backend, store } = setup();
  const { bytes } = samplePack(5, 3000);
  const id = await store.put(bytes);
  const whole = decodePackHeader(id, bytes);
  t.deepEqual(await store.readHeader(id, bytes.length), whole);
  t.deepEqual([backend.calls.get, backend.calls.head], [2, 0]);
  t.deepEqual(await store.readHeader(id), whole);
  t.deepEqual([backend.calls.get, backend.calls.head], [4, 1]);
  const empty = await store.put(encodePack([]).value);
  t.deepEqual(await store.readHeader(empty), []);
  t.is(backend.calls.get, 5, 'an empty pack: one GET');
});

test('remote packs: readHeader refuses a header that does not fit the pack, naming the pack\'s key', async (t) => {
  const { backend, inner, store } = setup();
  const { bytes } = samplePack(3, 100);
  const id = await store.put(bytes);
  const bad = Buffer.from(bytes);
  bad.writeUInt32BE(1_000_000, 0);
  await inner.put(packKey(id), bad);
  const gets = backend.calls.get;
  const e = await t.throwsAsync(store.readHeader(id, bad.length), { instanceOf: RepositoryCorruptError });
  t.is(e?.message, `pack packs/${id}: header larger than the pack`);
  t.is(backend.calls.get, gets + 1, 'the count alone is enough to refuse it');
  const outside = Buffer.from(bytes);
  outside.writeUInt32BE(bytes.length, 4 + 33);
  await inner.put(packKey(id), outside);
  await t.throwsAsync(store.readHeader(id, bytes.length), { instanceOf: RepositoryCorruptError, message: /object 0 lies outside the pack/ });
  await t.throwsAsync(store.readHeader(id, 3), { instanceOf: RepositoryCorruptError, message: /truncated header/ });
});

test('remote packs: a missing pack is a RepositoryCorruptError marked missing for getRange and readHeader', async (t) => {
  const { store } = setup();
  const id = hashBytes(Buffer.from('nothing'));
  for (const call of [() => store.getRange(id, 0, 4), () => store.readHeader(id), () => store.readHeader(id, 100)]) {
    const e = await t.throwsAsync(call, { instanceOf: RepositoryCorruptError });
    t.is(e?.message, `pack 'packs/${id}' is missing`);
    t.true(e?.data.missing);
    t.is(e?.data.key, `packs/${id}`);
  }
});

test('remote packs: getRange past the end names the pack and the range', async (t) => {
  const { store } = setup();
  const { bytes } = samplePack(1, 50);
  const id = await store.put(bytes);
  const e = await t.throwsAsync(store.getRange(id, bytes.length - 2, 10), { instanceOf: RepositoryCorruptError });
  t.is(e?.message, `packs/${id}: range ${bytes.length - 2}+10 lies outside the pack: the pack ends after ${bytes.length} bytes`);
  const f = await t.throwsAsync(store.getRange(id, bytes.length + 5, 10), { instanceOf: RepositoryCorruptError });
  t.regex(f?.message ?? '', /it starts past the end$/);
});

test('remote packs: with headFirst, a pack already in the bucket is not uploaded again; without, it is', async (t) => {
  const { backend, store } = setup({ headFirst: true });
  const { bytes } = samplePack(2, 100);
  await store.put(bytes);
  t.deepEqual([backend.calls.head, backend.calls.put], [1, 1]);
  await store.put(bytes);
  t.deepEqual([backend.calls.head, backend.calls.put], [2, 1]);
  const plain = new RemotePackStore(backend);
  await plain.put(bytes);
  t.deepEqual([backend.calls.head, backend.calls.put], [2, 2]);
});

test('remote packs: an aborted signal stops a put before its request', async (t) => {
  const { backend, store } = setup();
  const ac = new AbortController();
  ac.abort();
  await t.throwsAsync(store.put(samplePack(1, 10).bytes, { signal: ac.signal }), { instanceOf: AbortedError });
  t.is(backend.calls.put, 0);
});

test('remote packs: ids are 64 lowercase hex digits; anything else is refused before a request', async (t) => {
  const { backend, store } = setup();
  for (const id of ['17', 'AB'.repeat(32), '../config.json', `${'a'.repeat(64)}/x`]) {
    t.throws(() => packKey(id), { instanceOf: RangeError }, id);
    await t.throwsAsync(store.get(id), { instanceOf: RangeError }, id);
  }
  t.is(backend.calls.all, 0);
});

test('remote packs: list ignores keys below packs/ that are not pack names', async (t) => {
  const { inner, store } = setup();
  const id = await store.put(samplePack(1, 10).bytes);
  await inner.put('packs/README', Buffer.from('x'));
  await inner.put(`packs/${id}.tmp`, Buffer.from('x'));
  const ids = [];
  for await (const p of store.list()) ids.push(p.id);
  t.deepEqual(ids, [id]);
});
