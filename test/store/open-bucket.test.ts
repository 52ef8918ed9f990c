/** Opening a bucket repository's parts: backends by URL, the host cache's place, and the refresh of the host's index. */
import test from 'ava';
import { UsageError } from '../../src/errors.js';
import { MemoryBackend } from '../../src/store/remote/memory-backend.js';
import { RemotePackStore } from '../../src/store/remote/remote-packs.js';
import { RemoteIndex } from '../../src/store/remote/remote-index.js';
import { SegmentStore } from '../../src/store/remote/segment.js';
import { backendFor, defaultCacheDir, refreshIndex } from '../../src/store/remote/open.js';
import { isBucketUrl } from '../../src/store/repository.js';
import { uploadNewObjects } from '../../src/store/remote/upload.js';
import { lmdb } from '../helpers/lmdb.js';
import { commitAt, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';

test('backendFor: memory:// names one bucket per process; s3:// makes an S3 backend; anything else is a UsageError', async (t) => {
  const a = await backendFor('memory://one');
  t.is(await backendFor('memory://one'), a);
  t.not(await backendFor('memory://two'), a);
  t.true(a instanceof MemoryBackend);
  t.is((await backendFor('s3://viva-ci/p?endpoint=http%3A%2F%2F127.0.0.1%3A1&region=us-east-1')).url, 's3://viva-ci/p/?endpoint=http%3A%2F%2F127.0.0.1%3A1&region=us-east-1');
  for (const bad of ['memory://', 'memory://a/b', 'http://x', '/srv/repo']) await t.throwsAsync(backendFor(bad), { instanceOf: UsageError }, bad);
  t.true(isBucketUrl('s3://b/p') && isBucketUrl('memory://x'));
  t.false(isBucketUrl('/srv/s3://x') || isBucketUrl('https://host/repo'));
});

test('defaultCacheDir: VIVA_CACHE_DIR, then XDG_CACHE_HOME/viva, then ~/.cache/viva, each per repository id', (t) => {
  t.is(defaultCacheDir('id1', { VIVA_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x' }), '/c/id1');
  t.is(defaultCacheDir('id1', { XDG_CACHE_HOME: '/x' }), '/x/viva/id1');
  t.regex(defaultCacheDir('id1', {}), /\/\.cache\/viva\/id1$/);
});

test('refreshIndex ingests new segments and fetches metadata packs only; a second refresh does nothing', async (t) => {
  const a = tmpRepo(t).repo;
  const b = tmpRepo(t).repo;
  const backend = new MemoryBackend('memory://refresh');
  const dir = tmpDir(t);
  writeTree(dir, { etc: { hostname: 'a\n' }, big: Buffer.alloc(200_000, 3) });
  const c = await commitAt(a, dir, { branch: 'main' });
  const segments = new SegmentStore(backend);
  await uploadNewObjects(lmdb(a), 0, { index: new RemoteIndex(lmdb(a).env), packs: new RemotePackStore(backend), segments, target: { data: 64 << 10, meta: 16 << 10 } });
  const ix = new RemoteIndex(lmdb(b).env);
  const r = await refreshIndex(backend, segments, ix, lmdb(b));
  t.is(r.segments, 1);
  t.true(r.metaPacks >= 1);
  t.true(lmdb(b).hasObject('commit', c.commit));
  t.false([...lmdb(b).index.getKeys({}) as Iterable<Buffer>].some((k) => !ix.locate(Buffer.from(k)) || ix.pack(ix.locate(Buffer.from(k))!.pack)?.class !== 'meta'), 'only metadata came');
  t.deepEqual(await refreshIndex(backend, segments, ix, lmdb(b)), { segments: 0, metaPacks: 0 });
});
