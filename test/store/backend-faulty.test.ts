/**
 * The Backend conformance suite through FaultyBackend (with latency, so calls interleave differently), and the
 * semantics that must survive each injected fault: a lost response is seen by a re-read, a refused call changed nothing.
 */
import test from 'ava';
import { RemoteError } from '../../src/errors.js';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { FaultyBackend } from '../../src/store/remote/faulty-backend.js';
import { MemoryBackend } from '../../src/store/remote/memory-backend.js';
import { backendSuite, collect } from './backend.suite.js';

backendSuite({
  name: 'faulty(memory)',
  make: async () => ({ it: new FaultyBackend(new MemoryBackend('memory://faulty'), { latencyMs: () => Math.random() * 3 }), close: async () => {} }),
});

function faulty(): { b: FaultyBackend; inner: MemoryBackend } {
  const inner = new MemoryBackend('memory://faulty');
  return { b: new FaultyBackend(inner), inner };
}

test('faulty: a lost response to a create reports unknown, and a re-read finds the object', async (t) => {
  const { b } = faulty();
  b.inject('lost-response', 'put');
  t.deepEqual(await b.put('refs/heads/main', Buffer.from('mine'), { ifNoneMatch: '*' }), { ok: false, why: 'unknown' });
  t.is((await b.get('refs/heads/main'))?.body.toString(), 'mine');
  t.deepEqual(await b.put('refs/heads/main', Buffer.from('mine'), { ifNoneMatch: '*' }), { ok: false, why: 'precondition' }, 'a blind retry is refused');
  t.deepEqual(b.injected, [{ op: 'put', fault: 'lost-response', call: 1 }]);
});

test('faulty: a lost response to a compare-and-swap reports unknown; the re-read shows the new body and ETag', async (t) => {
  const { b } = faulty();
  const base = await b.put('refs/heads/main', Buffer.from('old'));
  if (!base.ok) return t.fail();
  b.inject('lost-response', 'put');
  t.deepEqual(await b.put('refs/heads/main', Buffer.from('new'), { ifMatch: base.etag }), { ok: false, why: 'unknown' });
  const now = await b.get('refs/heads/main');
  t.is(now?.body.toString(), 'new');
  t.not(now?.etag, base.etag);
  t.deepEqual(await b.put('refs/heads/main', Buffer.from('again'), { ifMatch: base.etag }), { ok: false, why: 'precondition' });
});

test('faulty: a 409 or 500 on a conditional PUT reports unknown and changes nothing; a retry then succeeds', async (t) => {
  for (const fault of ['409', '500', 'unreachable'] as const) {
    const { b } = faulty();
    const base = await b.put('k', Buffer.from('old'));
    if (!base.ok) return t.fail();
    b.inject(fault, 'put');
    t.deepEqual(await b.put('k', Buffer.from('new'), { ifMatch: base.etag }), { ok: false, why: 'unknown' }, fault);
    const now = await b.get('k');
    t.is(now?.body.toString(), 'old', fault);
    t.is(now?.etag, base.etag, fault);
    t.true((await b.put('k', Buffer.from('new'), { ifMatch: base.etag })).ok, fault);
  }
});

test('faulty: other calls throw RemoteError (exit 17); a lost response was applied, a 500 was not', async (t) => {
  const { b, inner } = faulty();
  b.inject('500', 'put');
  const e = await t.throwsAsync(b.put('a', Buffer.from('x')), { instanceOf: RemoteError });
  t.is(e?.status, 500);
  t.is(exitCodeFor(e?.code), 17);
  t.is(await inner.head('a'), undefined);
  b.inject('lost-response', 'put');
  await t.throwsAsync(b.put('a', Buffer.from('x')), { instanceOf: RemoteError });
  t.is((await inner.get('a'))?.body.toString(), 'x');
  b.inject('lost-response', 'delete');
  await t.throwsAsync(b.delete(['a']), { instanceOf: RemoteError });
  t.is(await inner.head('a'), undefined);
  b.inject('unreachable', 'get');
  const u = await t.throwsAsync(b.get('a'), { instanceOf: RemoteError });
  t.regex(u?.message ?? '', /^memory:\/\/faulty: cannot reach/);
  b.inject('409', 'list');
  await t.throwsAsync(collect(b, ''), { instanceOf: RemoteError });
  t.deepEqual(await collect(b, ''), []);
});

test('faulty: the Nth call fails, counted over all operations or per operation', async (t) => {
  const inner = new MemoryBackend('memory://faulty');
  const b = new FaultyBackend(inner, { faults: [{ nth: 3, fault: '500' }, { nth: 2, op: 'get', fault: 'unreachable' }] });
  await b.put('a', Buffer.from('1'));                                   // call 1
  t.truthy(await b.get('a'));                                           // call 2, get 1
  await t.throwsAsync(b.head('a'), { instanceOf: RemoteError });        // call 3: planned 500
  await t.throwsAsync(b.get('a'), { message: /cannot reach/ });          // get 2
  t.truthy(await b.get('a'));
  t.deepEqual(b.calls, { get: 3, head: 1, put: 1, list: 0, delete: 0, all: 5 });
  t.deepEqual(b.injected.map((f) => f.fault), ['500', 'unreachable']);
});

test('faulty: latency delays every call', async (t) => {
  const b = new FaultyBackend(new MemoryBackend(), { latencyMs: 30 });
  const start = performance.now();
  await b.put('a', Buffer.from('1'));
  await b.get('a');
  t.true(performance.now() - start >= 55);
});
