/**
 * BlobRangeReader with recycled chunk buffers (the bit-exact export's reader): chunks decoded into buffers the cache
 * evicted must still give every byte right, whatever the order of the reads, and a chunk that does not match its id
 * is refused as on the allocating path. decodeStoredInto decodes both codecs into the caller's buffer.
 */
import test from 'ava';
import { BlobRangeReader } from '../../src/ops/disk-reader.js';
import { resolveSpec } from '../../src/ops/resolve.js';
import { RepositoryCorruptError } from '../../src/errors.js';
import { CODEC_RAW, decodeStoredInto, encodeStored } from '../../src/store/object-store.js';
import { readBlobRecord } from '../../src/store/typed.js';
import { walkTree } from '../../src/tree/walk.js';
import { commitAt, randomBytes, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';

test('decodeStoredInto: raw and zstd values decode into the buffer alloc gives, of the decoded size; a corrupt frame throws', (t) => {
  const text = Buffer.from('the same line again\n'.repeat(5000));
  const random = randomBytes(70_000, 'r');
  for (const data of [text, random, Buffer.from('tiny')]) {
    const stored = encodeStored(data, 3);
    const sizes: number[] = [];
    const arena = Buffer.alloc(data.length + 100, 0xaa);
    const out = decodeStoredInto(stored, (n) => { sizes.push(n); return arena.subarray(0, n); });
    t.deepEqual(sizes, [data.length]);
    t.is(out.buffer, arena.buffer);
    t.true(out.equals(data));
  }
  t.is(encodeStored(random, 3)[0], CODEC_RAW);
  const bad = Buffer.from(encodeStored(text, 3));
  bad.fill(0x55, 12, 40);
  t.throws(() => decodeStoredInto(bad, (n) => Buffer.alloc(n)));
});

async function bigFile(t: import('ava').ExecutionContext) {
  const { repo } = tmpRepo(t);
  const src = tmpDir(t);
  const content = randomBytes(3 << 20, 'big');
  writeTree(src, { 'big.bin': content });
  await commitAt(repo, src, { branch: 'main' });
  await repo.objects.flush();
  let oid = '';
  walkTree(repo.objects, resolveSpec(repo, 'main').entry.oid!, (_p, e) => { if (e.type === 'file') oid = e.oid!; });
  return { repo, oid, content };
}

test('recycled chunk buffers: reads in any order, through a cache far smaller than the file, give the file\'s bytes', async (t) => {
  const { repo, oid, content } = await bigFile(t);
  const rec = readBlobRecord(repo.objects, oid);
  t.is(rec.form, 'chunked');
  // A cache of a few chunks: nearly every read evicts, and the next chunk is decoded into an evicted one's buffer.
  const reader = new BlobRangeReader(repo.objects, 256 << 10, { recycle: true });
  const step = 100_003;
  const ranges: Array<[number, number]> = [];
  for (let at = 0; at < content.length; at += step) ranges.push([at, Math.min(step, content.length - at)]);
  for (const order of [ranges, [...ranges].reverse(), ranges.filter((_, i) => i % 3 === 0).concat(ranges.filter((_, i) => i % 3 !== 0))]) {
    for (const [at, n] of order) {
      const out = Buffer.alloc(n);
      reader.read(oid, at, n, out, 0);
      if (!out.equals(content.subarray(at, at + n))) return t.fail(`bytes ${at}+${n} differ`);
    }
  }
  t.true(reader.chunkReads > 100);
  // One read of the whole file through a cache of one chunk: every chunk is evicted (and its buffer reused) while
  // the same read goes on, so each must be copied out before the next is decoded.
  const tiny = new BlobRangeReader(repo.objects, 1, { recycle: true });
  const all = Buffer.alloc(content.length);
  tiny.read(oid, 0, content.length, all, 0);
  t.true(all.equals(content));
});

test('recycled chunk buffers: a chunk that does not match its id is refused', async (t) => {
  const { repo, oid } = await bigFile(t);
  const rec = readBlobRecord(repo.objects, oid);
  if (rec.form !== 'chunked') return t.fail('expected a chunked blob');
  const first = rec.segments.find((s) => s.kind === 'chunk')!;
  // The chunk with one byte changed, stored under its id (a damaged repository): same length, wrong content.
  const { lmdb } = await import('../helpers/lmdb.js');
  const store = lmdb(repo);
  const damaged = Buffer.from(repo.objects.readObject('chunk', first.oid));
  damaged[100] ^= 1;
  store.remove([{ kind: 'chunk', oid: first.oid }]);
  store.writeStoredObject('chunk', first.oid, encodeStored(damaged, 3));
  await store.flush();
  const reader = new BlobRangeReader(repo.objects, 256 << 10, { recycle: true });
  const e = t.throws(() => reader.read(oid, 0, 10, Buffer.alloc(10), 0));
  t.true(e instanceof RepositoryCorruptError, String(e));
  t.regex(e!.message, /does not match/);
});
