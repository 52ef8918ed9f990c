/**
 * The read-ahead threads of checkout (BlobPrefetcher) and of the NBD server (ChunkPrefetcher): blobs and chunks come
 * back verified, in the order asked; and a reading thread that died — here, one that cannot open the repository —
 * never leaves a read waiting: the blob's error comes at once, chunks are left to the caller.
 */
import test from 'ava';
import path from 'node:path';
import { BlobPrefetcher, ChunkPrefetcher } from '../../src/store/prefetch.js';
import { readBlobPieces, readBlobRecord } from '../../src/store/typed.js';
import { resolveSpec } from '../../src/ops/resolve.js';
import { walkTree } from '../../src/tree/walk.js';
import { commitAt, randomBytes, sleep, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';
import { lmdb } from '../helpers/lmdb.js';

/** Resolves with `p`, or rejects after `ms` (a hang is a failure here, not a test timeout). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, sleep(ms).then(() => { throw new Error(`${what}: still waiting after ${ms} ms`); })]);
}

async function repoWithFiles(t: import('ava').ExecutionContext) {
  const { repo } = tmpRepo(t);
  const src = tmpDir(t);
  writeTree(src, { 'big.bin': randomBytes(3 << 20, 'big'), 'small.txt': 'hello\n', 'mid.bin': randomBytes(300_000, 'mid') });
  await commitAt(repo, src, { branch: 'main' });
  await repo.objects.flush();
  const files: Array<{ oid: string; size: number }> = [];
  walkTree(repo.objects, resolveSpec(repo, 'main').entry.oid!, (_p, e) => { if (e.type === 'file') files.push({ oid: e.oid!, size: e.size }); });
  return { repo, files };
}

test('prefetch: blobs come back as the main thread reads them; chunks arrive through onChunk', async (t) => {
  const { repo, files } = await repoWithFiles(t);
  const blobs = new BlobPrefetcher(lmdb(repo).path, files);
  t.teardown(() => blobs.close());
  for (const f of files) {
    const pieces = await within(blobs.get(f.oid, f.size), 30_000, 'blob');
    const direct = [...readBlobPieces(repo.objects, f.oid)];
    t.deepEqual(pieces.map((p) => [p.offset, p.data ? Buffer.from(p.data).toString('hex') : p.zeros]), direct.map((p) => [p.offset, p.data ? Buffer.from(p.data).toString('hex') : p.zeros]));
  }
  const got = new Map<string, Buffer | undefined>();
  const chunks = new ChunkPrefetcher(lmdb(repo).path, (oid, data) => got.set(oid, data), 2);
  t.teardown(() => chunks.close());
  const big = files.find((f) => f.size === 3 << 20)!;
  const rec = readBlobRecord(repo.objects, big.oid);
  const chunkOids = rec.form === 'chunked' ? rec.segments.flatMap((s) => (s.kind === 'chunk' ? [s.oid] : [])) : [];
  t.true(chunkOids.length > 1, 'the big file has several chunks');
  chunks.request(chunkOids);
  await within(chunks.wait(chunkOids), 30_000, 'chunks');
  t.deepEqual([...got.keys()].sort(), [...chunkOids].sort());
  t.true([...got.values()].every((d) => d !== undefined));
  t.is(chunks.running, 2);
});

test('prefetch: a reading thread that died never leaves a read waiting', async (t) => {
  const { files } = await repoWithFiles(t);
  const nowhere = path.join(tmpDir(t), 'no-such-repository');
  // Blobs: the thread dies at start; a get made after that returns its error at once.
  const blobs = new BlobPrefetcher(nowhere, files);
  t.teardown(() => blobs.close());
  await sleep(1500);
  for (const f of files) await t.throwsAsync(within(blobs.get(f.oid, f.size), 10_000, 'blob after the thread died'), { message: /prefetch failed/ });
  // Chunks: requests before and after the threads died all settle, and nothing arrives (the caller reads them).
  const got: string[] = [];
  const chunks = new ChunkPrefetcher(nowhere, (oid) => got.push(oid), 2);
  t.teardown(() => chunks.close());
  const some = files.map((f) => f.oid);
  chunks.request(some);
  await within(chunks.wait(some), 10_000, 'chunks in flight when the threads died');
  for (let i = 0; i < 100 && chunks.running > 0; i++) await sleep(50);
  t.is(chunks.running, 0);
  chunks.request(some);
  t.false(chunks.pending(some[0]!), 'nothing is asked of a dead thread');
  await within(chunks.wait(some), 1_000, 'chunks asked after the threads died');
  t.deepEqual(got, []);
});
