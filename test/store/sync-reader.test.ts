/**
 * SyncReader: blocking reads of a bucket, directly for in-process backends and through an I/O worker thread for S3
 * (the Ceph radosgw of `.ci/ceph up`), with errors revived as the classes the backend threw.
 */
import test, { type ExecutionContext } from 'ava';
import crypto from 'node:crypto';
import net from 'node:net';
import { RemoteError } from '../../src/errors.js';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { FaultyBackend } from '../../src/store/remote/faulty-backend.js';
import { MemoryBackend } from '../../src/store/remote/memory-backend.js';
import { S3Backend, parseS3Url } from '../../src/store/remote/s3-backend.js';
import { SyncReader } from '../../src/store/remote/sync-reader.js';
import { S3_CREDENTIALS, filePrefix, removePrefix, s3Backend, s3Skip } from '../helpers/s3.js';

const skip = s3Skip();
const root = filePrefix(import.meta.filename);
const s3 = (name: string, f: (t: ExecutionContext) => Promise<void>) => (skip ? test.skip(`s3: ${name} (${skip})`, () => {}) : test(`s3: ${name}`, f));
if (!skip) test.after.always(() => removePrefix(root));

test('memory: reads are direct and answer in request order; a missing key is undefined', async (t) => {
  const b = new MemoryBackend('memory://sync');
  await b.put('a', Buffer.from('alpha'));
  await b.put('b', Buffer.from('beta'));
  const r = SyncReader.for(b);
  t.deepEqual(r.getMany([{ key: 'b' }, { key: 'zz' }, { key: 'a', range: { offset: 1, length: 3 } }]).map((a) => a?.body.toString()), ['beta', undefined, 'lph']);
  t.is(r.get('a')?.etag, (await b.head('a'))?.etag);
  await r.close();
});

test('faulty(memory): a planned fault on get is thrown by the synchronous read, as a RemoteError', async (t) => {
  const inner = new MemoryBackend('memory://sync');
  await inner.put('a', Buffer.from('x'));
  const b = new FaultyBackend(inner, { faults: [{ op: 'get', nth: 1, fault: '500' }] });
  const r = SyncReader.for(b);
  const e = t.throws(() => r.get('a'), { instanceOf: RemoteError });
  t.is(exitCodeFor(e?.code), 17);
  t.is(r.get('a')?.body.toString(), 'x');
});

test('a backend that can neither be read in-process nor rebuilt in a worker is refused', (t) => {
  const b = { url: 'x://', get: async () => undefined, head: async () => undefined, put: async () => ({ ok: true as const, etag: '' }), list: async function* () {}, delete: async () => {} };
  t.throws(() => SyncReader.for(b), { instanceOf: TypeError });
});

test('worker: a server that never answers is a RemoteError after the timeout, not a hang', async (t) => {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => { sockets.push(s); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const b = new S3Backend(parseS3Url('s3://viva-ci/p/', { endpoint: `http://127.0.0.1:${port}` }), { credentials: S3_CREDENTIALS });
  const r = SyncReader.for(b, { timeoutMs: 1500 });
  const start = Date.now();
  const e = t.throws(() => r.get('packs/x'), { instanceOf: RemoteError });
  t.regex(e?.message ?? '', /no answer from the I\/O thread in 2 s/);
  t.true(Date.now() - start >= 1400 && Date.now() - start < 5000);
  await r.close();
  for (const s of sockets) s.destroy();
  server.close();
});

s3('worker: reads block until the I/O thread has them; order, ranges, missing keys and a 5 MiB body', async (t) => {
  const b = s3Backend(`${root}read/`);
  const bodies = Array.from({ length: 20 }, (_, i) => crypto.randomBytes(100 + i));
  await Promise.all(bodies.map((body, i) => b.put(`k/${String(i).padStart(2, '0')}`, body)));
  const big = crypto.randomBytes(5 << 20);
  await b.put('big', big);
  const r = SyncReader.for(b);
  const got = r.getMany([...bodies.map((_, i) => ({ key: `k/${String(i).padStart(2, '0')}` })), { key: 'k/missing' }]);
  t.deepEqual(got.slice(0, 20).map((a) => a?.body), bodies);
  t.is(got[20], undefined);
  t.deepEqual(r.get('big', { offset: (5 << 20) - 10, length: 10 })?.body, big.subarray((5 << 20) - 10));
  t.deepEqual(crypto.createHash('sha256').update(r.get('big')!.body).digest('hex'), crypto.createHash('sha256').update(big).digest('hex'));
  t.is(r.get('k/00')?.etag, (await b.head('k/00'))?.etag);
  await r.close();
  t.is(r.get('k/01')?.body.length, 101, 'a read after close starts a new worker');
  await r.close();
  await b.close();
});

s3('worker: wrong credentials are the backend\'s RemoteError (access denied, exit 17), one line', async (t) => {
  const b = s3Backend(`${root}creds/`, { credentials: { ...S3_CREDENTIALS, secretAccessKey: 'wrong' } });
  const r = SyncReader.for(b);
  const e = t.throws(() => r.get('x'), { instanceOf: RemoteError });
  t.true(e?.message.startsWith(`${b.url}: access denied: the credentials were refused`), e?.message);
  t.false(e?.message.includes('\n'));
  t.is(exitCodeFor(e?.code), 17);
  await r.close();
  await b.close();
});
