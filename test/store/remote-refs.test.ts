/**
 * RemoteRefStore beyond the conformance suite, on MemoryBackend and FaultyBackend: the 20-writer race (exactly one
 * winner per round), lost answers and transient errors of conditional PUTs, tombstones, reflog archives, refresh, the
 * D/F rule across hosts, the partial batch's `applied`, a corrupt ref object, and HEAD staying on its host.
 */
import test from 'ava';
import { RefConflictError, RemoteError, RepositoryCorruptError, UsageError } from '../../src/errors.js';
import type { Backend } from '../../src/store/remote/backend.js';
import { FaultyBackend, type Fault, type PlannedFault } from '../../src/store/remote/faulty-backend.js';
import { MemoryBackend } from '../../src/store/remote/memory-backend.js';
import { MemoryLocalHead, REFLOG_ARCHIVE, REFLOG_KEEP, RemoteRefStore, type RefObject } from '../../src/store/remote/remote-refs.js';
import { refRace } from './ref-race.js';

const WHO = 'Viva Test <test@example.org>';
const MAIN = 'refs/heads/main';
const oid = (i: number) => i.toString(16).padStart(64, '0');
const open = (b: Backend, head = new MemoryLocalHead()) => RemoteRefStore.open(b, head);

async function refObject(b: Backend, key: string): Promise<RefObject> {
  const got = await b.get(key);
  if (!got) throw new Error(`no object '${key}'`);
  return JSON.parse(got.body.toString()) as RefObject;
}

async function keys(b: Backend, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of b.list(prefix)) out.push(o.key);
  return out;
}

test('race: 20 stores on one memory bucket, 10 rounds, exactly one winner per round', async (t) => {
  const b = new MemoryBackend('memory://race');
  await refRace(t, () => b);
});

test('race: 20 stores, each through its own faulty handle (latency, lost answers, 409, 500), exactly one winner per round', async (t) => {
  const inner = new MemoryBackend('memory://race-faulty');
  const faults: Fault[] = ['lost-response', '409', '500', 'lost-response', 'unreachable'];
  const handles: FaultyBackend[] = [];
  await refRace(t, (i) => {
    const plan: PlannedFault[] = Array.from({ length: 6 }, (_, k) => ({ op: 'put' as const, nth: 1 + k * 2 + (i % 2), fault: faults[(i + k) % faults.length]! }));
    const h = new FaultyBackend(inner, { faults: plan, latencyMs: () => Math.random() * 5 });
    handles.push(h);
    return h;
  });
  // Every even-numbered handle fails its first PUT, which each store sends in round 1; how many more depends on timing.
  t.true(handles.reduce((n, h) => n + h.injected.length, 0) >= 10, 'faults were injected');
});

test('a lost answer after a successful PUT is a success: the re-read finds the write\'s nonce', async (t) => {
  const inner = new MemoryBackend('memory://lost');
  const b = new FaultyBackend(inner);
  const refs = await open(b);
  b.inject('lost-response', 'put');
  await refs.update([{ ref: MAIN, newOid: oid(1), expectedOld: null, message: 'create' }], WHO, { time: 1 });
  b.inject('lost-response', 'put');
  await refs.update([{ ref: MAIN, newOid: oid(2), expectedOld: oid(1), message: 'move' }], WHO, { time: 2 });
  t.deepEqual(b.injected.map((f) => f.fault), ['lost-response', 'lost-response']);
  t.is(b.calls.put, 2, 'no second PUT: the re-read showed the write had landed');
  const other = await open(inner);
  t.is(other.resolve(MAIN)?.oid, oid(2));
  t.deepEqual(other.reflog(MAIN).map((e) => e.message), ['move', 'create']);
  t.deepEqual(await refs.refresh(), { changed: [] });
});

test('409, 500 and a refused connection on a conditional PUT: re-read, back off, write again; six failures are a RemoteError', async (t) => {
  const inner = new MemoryBackend('memory://transient');
  const b = new FaultyBackend(inner);
  const refs = await open(b);
  await refs.update([{ ref: MAIN, newOid: oid(1), expectedOld: null, message: 'create' }], WHO, { time: 1 });
  (['409', '500', 'unreachable'] as const).forEach((f, k) => b.inject(f, 'put', k + 1));
  const puts = b.calls.put;
  await refs.update([{ ref: MAIN, newOid: oid(2), expectedOld: oid(1), message: 'move' }], WHO, { time: 2 });
  t.is(b.calls.put - puts, 4, 'three failed PUTs, then the one that landed');
  t.deepEqual(b.injected.map((f) => f.fault), ['409', '500', 'unreachable']);
  t.is((await open(inner)).reflog(MAIN).length, 2);
  for (let k = 1; k <= 6; k++) b.inject('500', 'put', k);
  const err = await t.throwsAsync(refs.update([{ ref: MAIN, newOid: oid(3), expectedOld: oid(2), message: 'never' }], WHO), { instanceOf: RemoteError });
  t.regex(err!.message, /^memory:\/\/transient: cannot update ref 'refs\/heads\/main'/);
  t.is((await open(inner)).resolve(MAIN)?.oid, oid(2));
});

test('delete leaves a tombstone (oid null) that is neither listed nor resolved; the ref can be created again', async (t) => {
  const b = new MemoryBackend('memory://tombstone');
  const refs = await open(b);
  await refs.update([{ ref: MAIN, newOid: oid(1), expectedOld: null, message: 'create' }], WHO, { time: 1 });
  await refs.update([{ ref: MAIN, newOid: null, expectedOld: oid(1), message: 'delete' }], WHO, { time: 2 });
  const tomb = await refObject(b, MAIN);
  t.like(tomb, { v: 1, oid: null, seq: 2, log: [] });
  const other = await open(b);
  t.is(other.read(MAIN), undefined);
  t.deepEqual(other.list(), []);
  t.deepEqual(other.reflog(MAIN), []);
  t.deepEqual([...other.reflogOids()], []);
  // Deleting what is already deleted writes nothing.
  const etag = (await b.head(MAIN))?.etag;
  await other.update([{ ref: MAIN, newOid: null, message: 'again' }], WHO);
  t.is((await b.head(MAIN))?.etag, etag);
  // A stale create expectation on the tombstone's host conflicts; null (absent) is the right one.
  await t.throwsAsync(other.update([{ ref: MAIN, newOid: oid(3), expectedOld: oid(1), message: 'x' }], WHO), { instanceOf: RefConflictError });
  await other.update([{ ref: MAIN, newOid: oid(3), expectedOld: null, message: 'recreate' }], WHO, { time: 3 });
  t.like(await refObject(b, MAIN), { oid: oid(3), seq: 3 });
  await refs.refresh();
  t.deepEqual(refs.reflog(MAIN), [{ old: null, new: oid(3), who: WHO, time: 3, message: 'recreate' }]);
});

test('the reflog past 64 entries: the oldest 32 go to an archive; a second host reads the reflog across archives', async (t) => {
  const b = new MemoryBackend('memory://archive');
  const refs = await open(b);
  for (let i = 1; i <= REFLOG_KEEP; i++) await refs.update([{ ref: MAIN, newOid: oid(i), message: `m${i}` }], WHO, { time: i });
  t.deepEqual(await keys(b, 'logs/'), []);
  t.is((await refObject(b, MAIN)).log.length, REFLOG_KEEP);
  await refs.update([{ ref: MAIN, newOid: oid(65), message: 'm65' }], WHO, { time: 65 });
  const o = await refObject(b, MAIN);
  t.is(o.log.length, REFLOG_KEEP + 1 - REFLOG_ARCHIVE);
  t.is(o.log[0]!.message, 'm33');
  t.deepEqual(o.archives, [65]);
  t.deepEqual(await keys(b, 'logs/'), ['logs/refs/heads/main/000000000065.json']);
  const archived = JSON.parse((await b.get('logs/refs/heads/main/000000000065.json'))!.body.toString()) as Array<{ message: string }>;
  t.deepEqual(archived.map((e) => e.message), Array.from({ length: 32 }, (_, i) => `m${i + 1}`));
  for (let i = 66; i <= 150; i++) await refs.update([{ ref: MAIN, newOid: oid(i), message: `m${i}` }], WHO, { time: i });
  t.is((await keys(b, 'logs/')).length, 3);
  const other = await open(b);
  const log = other.reflog(MAIN);
  t.is(log.length, 150);
  t.deepEqual(log.map((e) => e.message), Array.from({ length: 150 }, (_, i) => `m${150 - i}`));
  t.deepEqual(log, refs.reflog(MAIN));
  t.true(new Set(other.reflogOids()).has(oid(1)), 'archived values are gc roots');
});

test('dropReflogEntries rewrites the ref object and its archives under new keys; a second host sees the result', async (t) => {
  const b = new MemoryBackend('memory://drop');
  const refs = await open(b);
  for (let i = 1; i <= 100; i++) await refs.update([{ ref: MAIN, newOid: oid(i), message: `m${i}` }], WHO, { time: i });
  const before = new Set(await keys(b, 'logs/'));
  t.is(await refs.dropReflogEntries(MAIN, (o) => o !== oid(5) && o !== oid(90)), 2);
  const o = await refObject(b, MAIN);
  t.true((o.archives ?? []).every((n) => !before.has(`logs/refs/heads/main/${String(n).padStart(12, '0')}.json`)), 'archives rewritten as new keys');
  const other = await open(b);
  const msgs = other.reflog(MAIN).map((e) => e.message);
  t.is(msgs.length, 98);
  t.false(msgs.includes('m5'));
  t.false(msgs.includes('m90'));
  t.is(msgs.at(-1), 'm1');
  t.is(other.resolve(MAIN)?.oid, oid(100));
  t.is(await other.dropReflogEntries(MAIN, () => true), 0);
});

test('two hosts archiving from the same ref object at once: one archive, both entries, no duplicate', async (t) => {
  const b = new MemoryBackend('memory://archive-race');
  const one = await open(b);
  for (let i = 1; i <= REFLOG_KEEP; i++) await one.update([{ ref: MAIN, newOid: oid(i), message: `m${i}` }], WHO, { time: i });
  const two = await open(b);
  await Promise.all([
    one.update([{ ref: MAIN, newOid: oid(101), message: 'one' }], WHO, { time: 100 }),
    two.update([{ ref: MAIN, newOid: oid(102), message: 'two' }], WHO, { time: 100 }),
  ]);
  const log = (await open(b)).reflog(MAIN);
  t.is(log.length, REFLOG_KEEP + 2);
  t.deepEqual(log.slice(0, 2).map((e) => e.message).sort(), ['one', 'two']);
  t.is(new Set(log.map((e) => e.message)).size, log.length);
  t.deepEqual(await keys(b, 'logs/'), ['logs/refs/heads/main/000000000065.json']);
});

test('refresh sees another handle\'s writes and names the refs that changed', async (t) => {
  const b = new MemoryBackend('memory://refresh');
  const a = await open(b);
  const other = await open(b);
  await a.update([{ ref: MAIN, newOid: oid(1), message: 'one' }, { ref: 'refs/tags/v1', newOid: oid(1), message: 'tag' }], WHO, { time: 1 });
  t.is(other.read(MAIN), undefined, 'reads come from the snapshot');
  t.deepEqual(await other.refresh(), { changed: [MAIN, 'refs/tags/v1'] });
  t.is(other.resolve(MAIN)?.oid, oid(1));
  t.deepEqual(await other.refresh(), { changed: [] });
  await a.update([{ ref: MAIN, newOid: null, message: 'delete' }], WHO);
  t.deepEqual(await other.refresh(), { changed: [MAIN] });
  t.is(other.read(MAIN), undefined);
  t.deepEqual(other.list(), [{ ref: 'refs/tags/v1', oid: oid(1) }]);
  // A stale snapshot does not stop a write without expectation; with one, it is checked against the bucket.
  const stale = await open(b);
  await a.update([{ ref: 'refs/tags/v1', newOid: oid(2), message: 'retag' }], WHO);
  await stale.update([{ ref: 'refs/tags/v1', newOid: oid(3), expectedOld: oid(2), message: 'from fresh read' }], WHO);
  await a.refresh();
  t.is(a.resolve('refs/tags/v1')?.oid, oid(3));
});

test('D/F rule against a ref another host created since this snapshot', async (t) => {
  const b = new MemoryBackend('memory://df');
  const a = await open(b);
  const other = await open(b);
  await a.update([{ ref: 'refs/heads/a/b', newOid: oid(1), message: 'm' }], WHO);
  const err = await t.throwsAsync(other.update([{ ref: 'refs/heads/a', newOid: oid(2), message: 'm' }], WHO), { instanceOf: UsageError });
  t.regex(err!.message, /cannot create 'a': 'a\/b' exists below it/);
  // A deleted ref below does not count.
  await a.update([{ ref: 'refs/heads/a/b', newOid: null, message: 'd' }], WHO);
  await other.update([{ ref: 'refs/heads/a', newOid: oid(2), message: 'm' }], WHO);
  t.is(other.resolve('refs/heads/a')?.oid, oid(2));
});

test('a batch stops at its first conflict; RefConflictError.data.applied names the refs that moved', async (t) => {
  const refs = await open(new MemoryBackend('memory://batch'));
  await refs.update([{ ref: 'refs/heads/a', newOid: oid(1), message: 'a' }, { ref: 'refs/heads/c', newOid: oid(1), message: 'c' }], WHO);
  const err = await t.throwsAsync(refs.update([
    { ref: 'refs/heads/c', newOid: oid(2), message: 'c2' },
    { ref: 'refs/heads/b', newOid: oid(2), expectedOld: oid(9), message: 'stale' },
    { ref: 'refs/heads/a', newOid: oid(2), expectedOld: oid(1), message: 'a2' },
  ], WHO), { instanceOf: RefConflictError });
  t.deepEqual(err!.data, { ref: 'refs/heads/b', expected: oid(9), actual: null, applied: ['refs/heads/a'] });
  t.is(refs.resolve('refs/heads/a')?.oid, oid(2));
  t.is(refs.resolve('refs/heads/c')?.oid, oid(1), 'refs after the conflict (name order) did not move');
});

test('a malformed ref object, or one naming a missing archive, is a RepositoryCorruptError naming the key', async (t) => {
  const b = new MemoryBackend('memory://corrupt');
  await b.put('refs/heads/bad', Buffer.from('{"v":1,"oid":"xyz","nonce":"n","seq":1,"log":[]}'));
  await t.throwsAsync(open(b), { instanceOf: RepositoryCorruptError, message: /ref object 'refs\/heads\/bad': malformed/ });
  await b.put('refs/heads/bad', Buffer.from('{"v":2}'));
  await t.throwsAsync(open(b), { instanceOf: RepositoryCorruptError, message: /unsupported version 2/ });
  await b.put('refs/heads/bad', Buffer.from(`{"v":1,"oid":"${oid(1)}","nonce":"n","seq":9,"log":[],"archives":[5]}`));
  await t.throwsAsync(open(b), { instanceOf: RepositoryCorruptError, message: /reflog archive 'logs\/refs\/heads\/bad\/000000000005\.json': missing/ });
});

test('HEAD is host-local: each host has its own HEAD and HEAD reflog, and the bucket holds no HEAD', async (t) => {
  const b = new MemoryBackend('memory://head');
  const h1 = new MemoryLocalHead({ symref: MAIN });
  const h2 = new MemoryLocalHead({ symref: 'refs/heads/web' });
  const one = await open(b, h1);
  const two = await open(b, h2);
  await one.update([{ ref: MAIN, newOid: oid(1), expectedOld: null, message: 'commit: one' }], WHO, { time: 1 });
  await two.refresh();
  t.deepEqual(two.read('HEAD'), { symref: 'refs/heads/web' });
  t.deepEqual(two.reflog('HEAD'), []);
  t.deepEqual(one.reflog('HEAD').map((e) => e.message), ['commit: one']);
  await two.moveHead({ oid: oid(1) }, WHO, 'checkout: moving from web to 0001', 2);
  t.deepEqual(two.list(''), [{ ref: 'HEAD', oid: oid(1) }, { ref: MAIN, oid: oid(1) }], 'a detached HEAD is listed, as in LMDB');
  t.deepEqual(one.read('HEAD'), { symref: MAIN });
  // Updating HEAD itself (a commit on a detached HEAD) stays on the host too.
  await two.update([{ ref: 'HEAD', newOid: oid(2), expectedOld: oid(1), message: 'commit: detached' }], WHO, { time: 3 });
  t.deepEqual(h2.read(), { oid: oid(2) });
  t.deepEqual((await keys(b, '')).sort(), [MAIN]);
  await t.throwsAsync(one.update([{ ref: 'ORIG_HEAD', newOid: oid(1), message: 'x' }], WHO), { instanceOf: UsageError, message: /only names under 'refs\/'/ });
});
