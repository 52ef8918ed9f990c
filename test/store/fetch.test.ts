/**
 * RemoteFetcher: objects of a bucket repository come into a second host's cache checked (whole packs against their
 * name, single objects against their id), synchronously and ahead of time.
 */
import test from 'ava';
import { RepositoryCorruptError } from '../../src/errors.js';
import { objectKey } from '../../src/store/object-store.js';
import { MemoryBackend } from '../../src/store/remote/memory-backend.js';
import { RemotePackStore, packKey } from '../../src/store/remote/remote-packs.js';
import { RemoteIndex } from '../../src/store/remote/remote-index.js';
import { SegmentStore } from '../../src/store/remote/segment.js';
import { SyncReader } from '../../src/store/remote/sync-reader.js';
import { RemoteFetcher } from '../../src/store/remote/fetch.js';
import { nextLocalPack, uploadNewObjects } from '../../src/store/remote/upload.js';
import { lmdb } from '../helpers/lmdb.js';
import { commitAt, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';

/** Host A commits and uploads; host B (an empty cache) has ingested the segment. */
async function twoHosts(t: Parameters<typeof tmpRepo>[0], target = { data: 64 << 10, meta: 16 << 10 }) {
  const a = tmpRepo(t).repo;
  const b = tmpRepo(t).repo;
  const backend = new MemoryBackend('memory://fetch');
  const dir = tmpDir(t);
  writeTree(dir, { etc: { hostname: 'a\n', big: Buffer.alloc(300_000, 7) }, data: Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) & 255)) });
  const c = await commitAt(a, dir, { branch: 'main' });
  const packs = new RemotePackStore(backend);
  const up = await uploadNewObjects(lmdb(a), 0, { index: new RemoteIndex(lmdb(a).env), packs, segments: new SegmentStore(backend), target });
  const ix = new RemoteIndex(lmdb(b).env);
  ix.ingest(up.segment!, (await new SegmentStore(backend).getSegment(up.segment!))!);
  return { a, b, backend, ix, commit: c.commit, fetcher: new RemoteFetcher(lmdb(b), ix, backend.url), keys: [...lmdb(a).index.getKeys({}) as Iterable<Buffer>].map((k) => Buffer.from(k)) };
}

test('fetchSync brings every object into the second cache, byte-identical and verified', async (t) => {
  const { a, b, backend, fetcher, keys, commit } = await twoHosts(t);
  t.false(lmdb(b).hasObject('commit', commit));
  fetcher.fetchSync(keys, SyncReader.for(backend));
  for (const k of keys) {
    const kind = (['chunk', 'blob', 'tree', 'commit', 'disk'] as const).find((x) => objectKey(x, k.subarray(1).toString('hex')).equals(k))!;
    t.deepEqual(lmdb(b).readObject(kind, k.subarray(1).toString('hex')), lmdb(a).readObject(kind, k.subarray(1).toString('hex')));
  }
});

test('prefetch does the same asynchronously; an unknown key is left out', async (t) => {
  const { b, backend, fetcher, keys, commit } = await twoHosts(t);
  await fetcher.prefetch([...keys, objectKey('tree', 'ee'.repeat(32))], backend);
  t.true(lmdb(b).hasObject('commit', commit));
  t.false(lmdb(b).hasObject('tree', 'ee'.repeat(32)));
});

test('a tampered pack is refused whole, a tampered single object by its id, a missing pack named; the cache gets nothing', async (t) => {
  const { b, backend, fetcher, ix, keys, commit } = await twoHosts(t, { data: 4 << 20, meta: 4 << 20 });
  const key = objectKey('commit', commit);
  const loc = ix.locate(key)!;
  const body = (await backend.get(packKey(loc.pack)))!.body;
  const bad = Buffer.from(body);
  bad[loc.offset + 3]! ^= 0xff;
  await backend.put(packKey(loc.pack), bad);
  const e = t.throws(() => fetcher.fetchSync([key], SyncReader.for(backend)), { instanceOf: RepositoryCorruptError });
  t.regex(e?.message ?? '', /^pack 'packs\/[0-9a-f]{64}' does not match its name/);
  t.false(lmdb(b).hasObject('commit', commit));
  await backend.delete([packKey(loc.pack)]);
  const m = t.throws(() => fetcher.fetchSync(keys, SyncReader.for(backend)), { instanceOf: RepositoryCorruptError });
  t.regex(m?.message ?? '', /is missing from memory:\/\/fetch/);
});

test('a single object from a large pack comes by range and is checked against its id', async (t) => {
  const { b, backend, fetcher, ix, commit } = await twoHosts(t, { data: 4 << 20, meta: 4 << 20 });
  const key = objectKey('commit', commit);
  const loc = ix.locate(key)!;
  // Make the pack look large so that one object is fetched alone.
  (ix as unknown as { packs: { putSync(k: Buffer, v: unknown): void } }).packs.putSync(Buffer.from(loc.pack, 'hex'), { size: 2 << 20, class: 'meta', retired: false });
  const body = (await backend.get(packKey(loc.pack)))!.body;
  const bad = Buffer.from(body);
  bad[loc.offset + loc.length - 1]! ^= 0x01;
  await backend.put(packKey(loc.pack), bad);
  const e = t.throws(() => fetcher.fetchSync([key], SyncReader.for(backend)), { instanceOf: RepositoryCorruptError });
  t.regex(e?.message ?? '', /^commit '[0-9a-f]{64}' of 'packs\/[0-9a-f]{64}' does not match its id/);
  await backend.put(packKey(loc.pack), body);
  fetcher.fetchSync([key], SyncReader.for(backend));
  t.true(lmdb(b).hasObject('commit', commit));
});
