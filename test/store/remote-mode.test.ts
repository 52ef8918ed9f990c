/**
 * LmdbStore as the host cache of a bucket repository: reads that miss are fetched, and a writer deduplicates only
 * against what the bucket holds live, so an object gc tombstoned is written and uploaded again.
 */
import test from 'ava';
import path from 'node:path';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { objectKey } from '../../src/store/object-store.js';
import { MemoryBackend } from '../../src/store/remote/memory-backend.js';
import { RemotePackStore } from '../../src/store/remote/remote-packs.js';
import { RemoteIndex } from '../../src/store/remote/remote-index.js';
import { SegmentStore } from '../../src/store/remote/segment.js';
import { SyncReader } from '../../src/store/remote/sync-reader.js';
import { RemoteFetcher } from '../../src/store/remote/fetch.js';
import { refreshIndex } from '../../src/store/remote/open.js';
import { nextLocalPack, uploadNewObjects } from '../../src/store/remote/upload.js';
import { lmdb } from '../helpers/lmdb.js';
import { commitAt, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';
import { hashBytes } from '../../src/model/oid.js';

const TARGET = { data: 64 << 10, meta: 16 << 10 };

async function bucketWithCommit(t: Parameters<typeof tmpRepo>[0]) {
  const a = tmpRepo(t).repo;
  const backend = new MemoryBackend(`memory://mode-${Math.random()}`);
  const dir = tmpDir(t);
  writeTree(dir, { etc: { hostname: 'a\n' }, big: Buffer.alloc(200_000, 3) });
  const c = await commitAt(a, dir, { branch: 'main' });
  const segments = new SegmentStore(backend);
  const packs = new RemotePackStore(backend);
  await uploadNewObjects(lmdb(a), 0, { index: new RemoteIndex(lmdb(a).env), packs, segments, target: TARGET });
  const reader = SyncReader.for(backend);
  const file = path.join(tmpDir(t), 'cache.mdb');
  const cache: LmdbStore = new LmdbStore(file, { remote: { fetch: (keys) => new RemoteFetcher(cache, cache.remoteIndex, backend.url).fetchSync(keys, reader) } });
  t.teardown(() => cache.close());
  return { a, c, backend, segments, packs, cache };
}

test('reads fetch on a miss, checked; every object of the commit reads back identical', async (t) => {
  const { a, c, backend, segments, cache } = await bucketWithCommit(t);
  const r = await refreshIndex(backend, segments, cache.remoteIndex, cache);
  t.is(r.segments, 1);
  t.true(cache.hasObject('commit', c.commit));
  for (const k of lmdb(a).index.getKeys({}) as Iterable<Buffer>) {
    const key = Buffer.from(k);
    const kind = (['chunk', 'blob', 'tree', 'commit', 'disk'] as const).find((x) => objectKey(x, key.subarray(1).toString('hex')).equals(key))!;
    const oid = key.subarray(1).toString('hex');
    t.true(cache.hasObject(kind, oid));
    t.deepEqual(cache.readObject(kind, oid), lmdb(a).readObject(kind, oid));
  }
});

test('an object cached but tombstoned in the bucket is written again by a writer, and the upload sends it', async (t) => {
  const { backend, segments, packs, cache } = await bucketWithCommit(t);
  await refreshIndex(backend, segments, cache.remoteIndex, cache);
  const data = Buffer.from('a chunk that gc marked\n');
  const oid = hashBytes(data);
  cache.writeObject('chunk', oid, data);
  await cache.flush();
  await uploadNewObjects(cache, 0, { index: cache.remoteIndex, packs, segments, target: TARGET });
  const key = objectKey('chunk', oid);
  const loc = cache.remoteIndex.locate(key)!;
  t.truthy(loc);
  // gc marks that copy: the bucket no longer counts as holding it.
  cache.remoteIndex.ingest('ab'.repeat(32), { packs: [{ id: loc.pack, size: cache.remoteIndex.pack(loc.pack)!.size, class: 'data' }], entries: [], retired: [], tombstones: [{ key, pack: loc.pack }] });
  t.false(cache.hasObject('chunk', oid), 'a writer must not rely on it');
  cache.remoteMode!.sincePack = nextLocalPack(cache);
  cache.writeObject('chunk', oid, data);
  await cache.flush();
  t.true(cache.hasObject('chunk', oid), 'written in this session');
  const up = await uploadNewObjects(cache, cache.remoteMode!.sincePack, { index: cache.remoteIndex, packs, segments, target: TARGET });
  t.is(up.objects, 1);
  t.true(cache.remoteIndex.hasLive(key));
  t.not(cache.remoteIndex.locate(key)!.pack, loc.pack, 'a new copy, in a new pack');
});
