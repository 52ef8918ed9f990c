/** uploadNewObjects: a write's new objects go from the host cache to the bucket once, published by a segment. */
import test from 'ava';
import { MemoryBackend } from '../../src/store/remote/memory-backend.js';
import { RemotePackStore } from '../../src/store/remote/remote-packs.js';
import { RemoteIndex } from '../../src/store/remote/remote-index.js';
import { SegmentStore } from '../../src/store/remote/segment.js';
import { nextLocalPack, uploadNewObjects, type UploadTarget } from '../../src/store/remote/upload.js';
import { KIND_BY_CODE, decodeStored } from '../../src/store/object-store.js';
import { lmdb } from '../helpers/lmdb.js';
import { commitAt, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';

function target(repo: ReturnType<typeof tmpRepo>['repo']): UploadTarget & { backend: MemoryBackend } {
  const backend = new MemoryBackend('memory://upload');
  return { backend, index: new RemoteIndex(lmdb(repo).env), packs: new RemotePackStore(backend), segments: new SegmentStore(backend), target: { data: 64 << 10, meta: 16 << 10 } };
}

test('every object of the new packs goes up once; the segment is listed and ingested; a second upload sends nothing', async (t) => {
  const { repo } = tmpRepo(t);
  const to = target(repo);
  const start = nextLocalPack(lmdb(repo));
  const dir = tmpDir(t);
  writeTree(dir, { etc: { hostname: 'a\n', big: Buffer.alloc(300_000, 7) }, usr: { bin: { tool: Buffer.from([0, 1, 2]) } } });
  await commitAt(repo, dir, { branch: 'main' });
  const r = await uploadNewObjects(lmdb(repo), start, to);
  t.truthy(r.segment);
  t.true(r.objects > 3);
  const listed = [];
  for await (const s of to.segments.listSegments()) listed.push(s.sha);
  t.deepEqual(listed, [r.segment]);
  t.true(to.index.ingested(r.segment!));
  // Every object of the cache is now in the bucket, and its bytes there decode to the object (read verified).
  let n = 0;
  for (const k of lmdb(repo).index.getKeys({}) as Iterable<Buffer>) {
    const loc = to.index.locate(Buffer.from(k));
    t.truthy(loc, Buffer.from(k).toString('hex'));
    const stored = await to.packs.getRange(loc!.pack, loc!.offset, loc!.length);
    const kind = KIND_BY_CODE[k[0]!]!;
    t.deepEqual(decodeStored(stored), lmdb(repo).readObject(kind, Buffer.from(k).subarray(1).toString('hex')));
    n++;
  }
  t.is(n, r.objects);
  t.like(await uploadNewObjects(lmdb(repo), start, to), { objects: 0, bytes: 0, packs: 0, segment: undefined });
});
