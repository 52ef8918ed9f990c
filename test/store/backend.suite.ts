/**
 * The conformance suite of `Backend`: every implementation (memory, faulty(memory), S3 on Ceph) must pass the same
 * tests. A runner file calls `backendSuite(harness)`; this file registers no test on its own.
 */
import type { ExecutionContext } from 'ava';
import crypto from 'node:crypto';
import type { Backend, PutResult } from '../../src/store/remote/backend.js';
import { RemoteError } from '../../src/errors.js';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { suiteTests } from './suite.js';

/** How a runner provides fresh backends: each `make()` is an empty key space (its own prefix). */
export interface BackendHarness {
  name: string;
  /** Set to register every test as skipped, with this reason in the title. */
  skip?: string;
  make(): Promise<{ it: Backend; close(): Promise<void> }>;
  /** A backend on the same server whose credentials are wrong (only servers that check credentials). */
  wrongCredentials?(): Promise<{ it: Backend; close(): Promise<void> }>;
}

type Body = (t: ExecutionContext, b: Backend) => Promise<void>;

/** Registers the conformance tests for `h`. */
export function backendSuite(h: BackendHarness): void {
  const test_ = suiteTests(h);
  const it = (name: string, body: Body): void => test_(name, (t, made) => body(t, made.it));

  it('put, get and head round trip; ETags are unquoted and agree', async (t, b) => {
    const body = crypto.randomBytes(1000);
    const r = await b.put('objects/one', body);
    if (!r.ok) return t.fail(`put failed: ${r.why}`);
    t.regex(r.etag, /^[0-9a-f]{32}$/);
    const got = await b.get('objects/one');
    t.deepEqual(got?.body, body);
    t.is(got?.etag, r.etag);
    const head = await b.head('objects/one');
    t.is(head?.etag, r.etag);
    t.is(head?.size, 1000);
    t.true(Math.abs((head?.mtime ?? 0) - Date.now()) < 5 * 60_000, 'mtime is the server clock, in ms');
    const listed = await collect(b, 'objects/');
    t.deepEqual(listed.map((o) => [o.key, o.etag, o.size]), [['objects/one', r.etag, 1000]]);
    for (const o of [r.etag, got!.etag, head!.etag, listed[0]!.etag]) t.false(o.includes('"'));
    const empty = await b.put('objects/empty', Buffer.alloc(0));
    t.true(empty.ok);
    t.deepEqual((await b.get('objects/empty'))?.body, Buffer.alloc(0));
    t.is((await b.head('objects/empty'))?.size, 0);
  });

  it('a put replaces the object; the ETag follows the content', async (t, b) => {
    const one = await b.put('k', Buffer.from('one'));
    const two = await b.put('k', Buffer.from('two'));
    t.true(one.ok && two.ok && one.etag !== two.etag);
    t.is((await b.get('k'))?.body.toString(), 'two');
  });

  it('range get returns exactly the bytes asked for, cut short at the end', async (t, b) => {
    const body = crypto.randomBytes(100_000);
    await b.put('packs/p', body);
    t.deepEqual((await b.get('packs/p', { offset: 0, length: 4 }))?.body, body.subarray(0, 4));
    t.deepEqual((await b.get('packs/p', { offset: 12_345, length: 54_321 }))?.body, body.subarray(12_345, 66_666));
    t.deepEqual((await b.get('packs/p', { offset: 99_999, length: 1 }))?.body, body.subarray(99_999));
    t.deepEqual((await b.get('packs/p', { offset: 99_990, length: 100 }))?.body, body.subarray(99_990));
    t.is((await b.get('packs/p', { offset: 5, length: 5 }))?.etag, (await b.head('packs/p'))?.etag);
    t.is(await b.get('packs/missing', { offset: 0, length: 4 }), undefined);
  });

  it('a missing key: get and head give undefined, delete is no error, list is empty', async (t, b) => {
    t.is(await b.get('nothing/here'), undefined);
    t.is(await b.head('nothing/here'), undefined);
    await b.delete(['nothing/here', 'nothing/there']);
    t.deepEqual(await collect(b, 'nothing/'), []);
  });

  it('list pages past 1000 keys, in key order, only below the prefix; delete removes many', async (t, b) => {
    const keys = Array.from({ length: 1105 }, (_, i) => `many/${String(i).padStart(5, '0')}`);
    await pool(keys, 16, (k) => b.put(k, Buffer.from(k)));
    await b.put('many-not/x', Buffer.from('x'));
    await b.put('man', Buffer.from('x'));
    const listed = await collect(b, 'many/');
    t.is(listed.length, 1105);
    t.deepEqual(listed.map((o) => o.key), keys);
    t.true(listed.every((o) => o.size === o.key.length && /^[0-9a-f]{32}$/.test(o.etag)));
    t.is((await collect(b, 'many')).length, 1106);
    t.is((await collect(b, '')).length, 1107);
    await b.delete([...keys.slice(0, 1050), 'many/absent']);
    t.deepEqual((await collect(b, 'many/')).map((o) => o.key), keys.slice(1050));
    await b.delete(keys);
    t.deepEqual((await collect(b, '')).map((o) => o.key), ['man', 'many-not/x']);
  });

  it('conditional puts: create-only on a taken key and If-Match on a stale or missing ETag are refused', async (t, b) => {
    const first = await b.put('refs/heads/main', Buffer.from('one'), { ifNoneMatch: '*' });
    if (!first.ok) return t.fail(`create failed: ${first.why}`);
    t.deepEqual(await b.put('refs/heads/main', Buffer.from('two'), { ifNoneMatch: '*' }), { ok: false, why: 'precondition' });
    const second = await b.put('refs/heads/main', Buffer.from('two'), { ifMatch: first.etag });
    if (!second.ok) return t.fail(`If-Match with the current ETag failed: ${second.why}`);
    t.deepEqual(await b.put('refs/heads/main', Buffer.from('three'), { ifMatch: first.etag }), { ok: false, why: 'precondition' });
    t.deepEqual(await b.put('refs/heads/absent', Buffer.from('x'), { ifMatch: first.etag }), { ok: false, why: 'precondition' });
    t.is(await b.head('refs/heads/absent'), undefined);
    t.is((await b.get('refs/heads/main'))?.body.toString(), 'two');
    t.is((await b.head('refs/heads/main'))?.etag, second.etag);
  });

  it('create-only race: of 20 concurrent creates exactly one wins, and its body is stored', async (t, b) => {
    const bodies = Array.from({ length: 20 }, (_, i) => Buffer.from(`writer ${i} ${crypto.randomUUID()}`));
    const results = await Promise.all(bodies.map((body) => b.put('refs/heads/race', body, { ifNoneMatch: '*' })));
    checkRace(t, results, bodies, (await b.get('refs/heads/race'))?.body);
  });

  it('compare-and-swap race: of 20 concurrent If-Match writes with one ETag exactly one wins', async (t, b) => {
    const base = await b.put('refs/heads/cas', Buffer.from('base'));
    if (!base.ok) return t.fail('base put failed');
    for (let round = 0; round < 3; round++) {
      const etag = (await b.head('refs/heads/cas'))!.etag;
      const bodies = Array.from({ length: 20 }, (_, i) => Buffer.from(`round ${round} writer ${i} ${crypto.randomUUID()}`));
      const results = await Promise.all(bodies.map((body) => b.put('refs/heads/cas', body, { ifMatch: etag })));
      const stored = await b.get('refs/heads/cas');
      checkRace(t, results, bodies, stored?.body);
      const winner = results.find((r) => r.ok);
      t.is(winner?.ok && winner.etag, stored?.etag);
    }
  });

  it('a 20 MiB object goes up in parts and comes back whole', async (t, b) => {
    const body = crypto.randomBytes(20 << 20);
    const r = await b.put('packs/big', body);
    if (!r.ok) return t.fail(`put failed: ${r.why}`);
    t.false(r.etag.includes('"'));
    const head = await b.head('packs/big');
    t.is(head?.size, body.length);
    t.true(r.etag !== '' && r.etag === head?.etag, 'the ETag of a multipart upload is the one HEAD reports');
    const got = await b.get('packs/big');
    t.is(sha256(got!.body), sha256(body));
    t.deepEqual((await b.get('packs/big', { offset: (16 << 20) - 2, length: 4 }))?.body, body.subarray((16 << 20) - 2, (16 << 20) + 2));
  });

  if (h.wrongCredentials) {
    const wrong = suiteTests({ name: h.name, skip: h.skip, make: h.wrongCredentials.bind(h) });
    wrong('wrong credentials: every call is a RemoteError, exit 17, one line naming the URL', async (t, { it: b }) => {
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['get', () => b.get('x')], ['head', () => b.head('x')], ['put', () => b.put('x', Buffer.from('x'))],
        ['conditional put', () => b.put('x', Buffer.from('x'), { ifNoneMatch: '*' })],
        ['list', () => collect(b, '')], ['delete', () => b.delete(['x'])],
      ];
      for (const [what, call] of calls) {
        const e = await t.throwsAsync(call, { instanceOf: RemoteError }, what);
        t.is(exitCodeFor(e?.code), 17, what);
        t.true(e?.message.startsWith(`${b.url}: access denied: the credentials were refused`), `${what}: ${e?.message}`);
        t.false(e?.message.includes('\n'), what);
      }
    });
  }
}

/** Exactly one `ok`; every other result a refusal or unknown; the stored body is the winner's. */
function checkRace(t: ExecutionContext, results: PutResult[], bodies: Buffer[], stored: Buffer | undefined): void {
  const winners = results.flatMap((r, i) => (r.ok ? [i] : []));
  t.is(winners.length, 1, `one winner, got ${JSON.stringify(results)}`);
  t.true(results.every((r) => r.ok || r.why === 'precondition' || r.why === 'unknown'));
  if (winners.length === 1) t.deepEqual(stored, bodies[winners[0]!]);
}

/** Every listed object below `prefix`. */
export async function collect(b: Backend, prefix: string): Promise<Array<{ key: string; etag: string; size: number; mtime: number }>> {
  const out = [];
  for await (const o of b.list(prefix)) out.push(o);
  return out;
}

/** Runs `fn` over `items` with at most `n` calls in flight. */
export async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

function sha256(b: Buffer): string { return crypto.createHash('sha256').update(b).digest('hex'); }
