/**
 * Chunks decoded and verified on libuv's thread pool (the native decodeVerify and the ChunkDecoder over it): every
 * codec decodes into the caller's buffers; a value that does not decode, has another size, or does not match its id
 * is reported, never handed out; a chunk the decoder cannot read arrives as undefined for the reader to report; and
 * a bit-exact export takes its chunks from the decoder, and still refuses a damaged one with the same error.
 */
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { native } from '../../src/native/index.js';
import { ChunkDecoder } from '../../src/store/chunk-decoder.js';
import { CODEC_RAW, CODEC_ZSTD, encodeStored } from '../../src/store/object-store.js';
import { readBlobRecord, readDisk } from '../../src/store/typed.js';
import { exportDisk } from '../../src/ops/export-disk.js';
import { createDiskWriter } from '../../src/formats/disk-writer.js';
import { resolveRevision, resolveSpec } from '../../src/ops/resolve.js';
import { walkTree } from '../../src/tree/walk.js';
import { RepositoryCorruptError } from '../../src/errors.js';
import { MiB, commitAt, randomBytes, sha256, sleep, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';
import { lmdb } from '../helpers/lmdb.js';

const digest = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest();

/** Runs decodeVerify and resolves with the statuses. */
function decodeVerify(stored: Buffer[], out: Buffer[], ids: Buffer): Promise<number[]> {
  const status = new Int32Array(stored.length);
  return new Promise((resolve) => native().decodeVerify(stored, out, ids, status, () => resolve([...status])));
}

test('decodeVerify: raw and zstd values decode into the given buffers and match their ids; every failure has its status', async (t) => {
  const text = Buffer.from(randomBytes(40_000, 'text').toString('hex'));
  const random = randomBytes(70_000, 'r');
  const zstd = encodeStored(text, 3);
  const raw = encodeStored(random, 3);
  t.is(zstd[0], CODEC_ZSTD);
  t.is(raw[0], CODEC_RAW);
  const corrupt = Buffer.from(zstd);
  corrupt.fill(0x55, 12, 40);
  const unknown = Buffer.concat([Buffer.from([7]), text]);
  const stored = [zstd, raw, zstd, raw, corrupt, unknown, Buffer.alloc(0)];
  const sizes = [text.length, random.length, text.length, random.length - 1, text.length, text.length, 1];
  const out = sizes.map((n) => Buffer.alloc(n, 0xaa));
  const wrong = Buffer.from(digest(text));
  wrong[5]! ^= 1;
  const ids = Buffer.concat([digest(text), digest(random), wrong, digest(random), digest(text), digest(text), digest(Buffer.alloc(1))]);
  const status = await decodeVerify(stored, out, ids);
  // 0 ok, 1 unknown codec, 2 undecodable, 3 another size, 4 not its id.
  t.deepEqual(status, [0, 0, 4, 3, 2, 1, 1]);
  t.true(out[0]!.equals(text));
  t.true(out[1]!.equals(random));
  // A zstd frame of another declared size is not decoded into a buffer too small or too large for it.
  const small = [Buffer.alloc(text.length - 1), Buffer.alloc(text.length + 1)];
  t.deepEqual(await decodeVerify([zstd, zstd], small, Buffer.concat([digest(text), digest(text)])), [3, 3]);
});

test('decodeVerify: arguments of the wrong shape are refused at the call, not on the thread pool', (t) => {
  const b = Buffer.from([0, 1]);
  const id = digest(Buffer.from([1]));
  const st = new Int32Array(1);
  const done = () => undefined;
  t.throws(() => native().decodeVerify([b], [], id, st, done), { message: /as long as stored/ });
  t.throws(() => native().decodeVerify([b], [Buffer.alloc(1)], id.subarray(1), st, done), { message: /32 bytes per object/ });
  t.throws(() => native().decodeVerify([b], [Buffer.alloc(1)], id, new Int32Array(2), done), { message: /Int32Array/ });
  t.throws(() => native().decodeVerify(['x' as unknown as Buffer], [Buffer.alloc(1)], id, st, done), { message: /hold Buffers/ });
});

/** A repository with a multi-chunk random file and a compressible one; their chunks' ids. */
async function chunkedRepo(t: import('ava').ExecutionContext) {
  const { repo } = tmpRepo(t);
  const src = tmpDir(t);
  writeTree(src, { 'big.bin': randomBytes(3 * MiB, 'big'), 'text.txt': 'some text that compresses\n'.repeat(200_000) });
  await commitAt(repo, src, { branch: 'main' });
  await repo.objects.flush();
  const chunks = new Set<string>();
  walkTree(repo.objects, resolveSpec(repo, 'main').entry.oid!, (_p, e) => {
    if (e.type !== 'file') return;
    const rec = readBlobRecord(repo.objects, e.oid!);
    if (rec.form === 'chunked') for (const s of rec.segments) if (s.kind === 'chunk') chunks.add(s.oid);
  });
  return { repo, chunks: [...chunks] };
}

test('ChunkDecoder: every chunk asked for arrives decoded and verified; missing and damaged ones arrive as undefined', async (t) => {
  const { repo, chunks } = await chunkedRepo(t);
  t.true(chunks.length > 20, `${chunks.length} chunks`);
  const store = lmdb(repo);
  // One chunk damaged in place (same length, one byte changed), stored under its id.
  const victim = chunks[3]!;
  const damaged = Buffer.from(repo.objects.readObject('chunk', victim));
  damaged[100]! ^= 1;
  store.remove([{ kind: 'chunk', oid: victim }]);
  store.writeStoredObject('chunk', victim, encodeStored(damaged, 3));
  await store.flush();
  const absent = 'ab'.repeat(32);
  const got = new Map<string, Buffer | undefined>();
  const dec = new ChunkDecoder((oid) => store.storedView('chunk', oid), (n) => Buffer.alloc(n), (oid, data) => got.set(oid, data && Buffer.from(data)));
  t.teardown(() => dec.close());
  dec.request([...chunks, absent]);
  t.true(chunks.some((c) => dec.pending(c)));
  await Promise.race([dec.wait([...chunks, absent]), sleep(30_000).then(() => { throw new Error('still waiting after 30 s'); })]);
  t.is(got.size, chunks.length + 1);
  for (const c of chunks) {
    if (c === victim) t.is(got.get(c), undefined);
    else t.true(got.get(c)?.equals(repo.objects.readObject('chunk', c)), c);
  }
  t.is(got.get(absent), undefined);
  t.false(dec.pending(chunks[0]!));
});

test('ChunkDecoder: close with batches on the thread pool resolves once they are done, and drops their chunks', async (t) => {
  const { repo, chunks } = await chunkedRepo(t);
  const store = lmdb(repo);
  let arrived = 0;
  const dec = new ChunkDecoder((oid) => store.storedView('chunk', oid), (n) => Buffer.alloc(n), () => { arrived++; });
  dec.request(chunks);
  const waiting = dec.wait(chunks);
  await dec.close();
  await waiting;
  const after = arrived;
  dec.request(chunks);
  await sleep(50);
  t.is(arrived, after, 'a closed decoder takes no more requests');
  t.true(after < chunks.length, `${after} of ${chunks.length} arrived before the close`);
});

/** A bare ext4 image holding multi-chunk files (the first `bigMiB` MiB) and small ones, committed as a disk. */
async function diskRepo(t: import('ava').ExecutionContext, bigMiB = 3) {
  const dir = tmpDir(t);
  const tree = path.join(dir, 'tree');
  writeTree(tree, {
    data: { big: randomBytes(bigMiB * MiB + 123, 'big'), text: 'a line of text\n'.repeat(100_000) },
    etc: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${i}`, `file ${i}\n`.repeat(i + 1)])),
  });
  const image = path.join(dir, 'fs.img');
  execFileSync('truncate', ['-s', `${32 + 2 * bigMiB}M`, image]);
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, image], { stdio: 'ignore' });
  const { repo } = tmpRepo(t);
  await commitAt(repo, image, { branch: 'vm/disk' });
  await repo.objects.flush();
  return { repo, dir, image, disk: readDisk(repo.objects, resolveRevision(repo, 'vm/disk').commit.root) };
}

test('export: a bit-exact export takes its file chunks from the thread pool; a damaged chunk is refused as before', async (t) => {
  const { repo, dir, image, disk } = await diskRepo(t);
  const out = path.join(dir, 'out.raw');
  const w = await createDiskWriter(out, 'raw', disk.size);
  const stats = await exportDisk(repo.objects, disk, w);
  await w.finish();
  t.is(sha256(fs.readFileSync(out)), sha256(fs.readFileSync(image)));
  t.true(stats.chunksAhead > 20, JSON.stringify(stats));
  t.is(stats.chunksRead, 0, 'no chunk decoded twice');

  // Damage one chunk of data/big: the decoder hands it back undefined, the export reads it and names it.
  let victim = '';
  walkTree(repo.objects, disk.view, (p, e) => {
    if (p.toString() !== 'data/big') return;
    const rec = readBlobRecord(repo.objects, e.oid!);
    if (rec.form === 'chunked') victim = rec.segments.find((s) => s.kind === 'chunk')!.oid;
  });
  t.truthy(victim);
  const store = lmdb(repo);
  const damaged = Buffer.from(repo.objects.readObject('chunk', victim));
  damaged[7]! ^= 1;
  store.remove([{ kind: 'chunk', oid: victim }]);
  store.writeStoredObject('chunk', victim, encodeStored(damaged, 3));
  await store.flush();
  const w2 = await createDiskWriter(path.join(dir, 'bad.raw'), 'raw', disk.size);
  const e = await t.throwsAsync(exportDisk(repo.objects, disk, w2));
  await w2.abort();
  t.true(e instanceof RepositoryCorruptError, String(e));
  t.regex(e!.message, new RegExp(`chunk '?${victim}'?.*does not match`));
});

test('export: a file larger than the read-ahead is asked for a slice at a time, not all at once', async (t) => {
  const { repo, dir, image, disk } = await diskRepo(t, 48);
  const out = path.join(dir, 'out.raw');
  const w = await createDiskWriter(out, 'raw', disk.size);
  const stats = await exportDisk(repo.objects, disk, w);
  await w.finish();
  t.is(sha256(fs.readFileSync(out)), sha256(fs.readFileSync(image)));
  t.is(stats.chunksRead, 0, JSON.stringify(stats));
  // 12 MiB ahead, in slices of 1 MiB whose chunks (up to 256 KiB each) may reach past them: never the 48 MiB file.
  t.true(stats.peakAheadBytes > 0 && stats.peakAheadBytes <= 14 * MiB, `${stats.peakAheadBytes} bytes ahead at most`);
});
