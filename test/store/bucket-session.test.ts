/** config.json (creation, reading, every refusal) and writer sessions (heartbeat, expiry, listing) on a MemoryBackend. */
import test from 'ava';
import { NotARepositoryError, RepositoryCorruptError, RepositoryExistsError, RepositoryFormatError, WriteError } from '../../src/errors.js';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { FaultyBackend } from '../../src/store/remote/faulty-backend.js';
import { MemoryBackend } from '../../src/store/remote/memory-backend.js';
import { CONFIG_KEY, createBucketConfig, readBucketConfig } from '../../src/store/remote/bucket-config.js';
import { RemoteSession, listSessions, sessionExpired } from '../../src/store/remote/sessions.js';

test('config.json: created once, read back by any host; a second create is RepositoryExistsError (exit 12)', async (t) => {
  const b = new MemoryBackend('memory://cfg');
  const c = await createBucketConfig(b, { defaultBranch: 'trunk', created: 1000 });
  t.like(c, { format: 1, created: 1000, defaultBranch: 'refs/heads/trunk', storage: 's3', packTarget: { data: 8 << 20, meta: 1 << 20 }, gc: { graceSeconds: 3600 } });
  t.regex(c.id, /^[0-9a-f-]{36}$/);
  t.deepEqual(await readBucketConfig(b), c);
  t.deepEqual(JSON.parse((await b.get(CONFIG_KEY))!.body.toString()).viva, 'repository');
  const e = await t.throwsAsync(createBucketConfig(b), { instanceOf: RepositoryExistsError });
  t.is(exitCodeFor(e?.code), 12);
  t.deepEqual(await readBucketConfig(b), c, 'unchanged');
});

test('config.json: a lost answer to the create is settled by reading the key back', async (t) => {
  const b = new FaultyBackend(new MemoryBackend('memory://cfg'), { faults: [{ op: 'put', nth: 1, fault: 'lost-response' }] });
  const c = await createBucketConfig(b);
  t.deepEqual(await readBucketConfig(b), c);
  const other = new FaultyBackend(new MemoryBackend('memory://cfg2'), { faults: [{ op: 'put', nth: 1, fault: '500' }, { op: 'put', nth: 2, fault: '409' }] });
  const c2 = await createBucketConfig(other);
  t.deepEqual(await readBucketConfig(other), c2, 'not applied and the key still free: sent again');
  t.is(other.calls.put, 3);
});

test('config.json: missing → NotARepositoryError (exit 10); newer format → RepositoryFormatError; junk → RepositoryCorruptError (exit 15)', async (t) => {
  const b = new MemoryBackend('memory://cfg');
  t.is(exitCodeFor((await t.throwsAsync(readBucketConfig(b), { instanceOf: NotARepositoryError }))?.code), 10);
  const good = JSON.parse((await (async () => { const x = new MemoryBackend(); await createBucketConfig(x); return (await x.get(CONFIG_KEY))!.body; })()).toString());
  await b.put(CONFIG_KEY, Buffer.from(JSON.stringify({ ...good, bucketFormat: 2 })));
  const f = await t.throwsAsync(readBucketConfig(b), { instanceOf: RepositoryFormatError });
  t.is(exitCodeFor(f?.code), 10);
  for (const junk of ['not json', '{"viva":"other"}', JSON.stringify({ ...good, id: 5 }), JSON.stringify({ ...good, packTarget: { data: 1, meta: 2 } }),
    JSON.stringify({ ...good, gc: {} }), 'null', '[]']) {
    await b.put(CONFIG_KEY, Buffer.from(junk));
    const e = await t.throwsAsync(readBucketConfig(b), { instanceOf: RepositoryCorruptError }, junk);
    t.is(exitCodeFor(e?.code), 15);
    t.true(e?.message.startsWith('memory://cfg config.json: '), e?.message);
  }
});

test('sessions: begin PUTs the session, the heartbeat rewrites it, end deletes it; listing shows who and what', async (t) => {
  const b = new MemoryBackend('memory://s');
  const s = await RemoteSession.begin(b, 'commit', { heartbeatMs: 20 });
  const [info] = await listSessions(b);
  t.like(info, { id: s.id, pid: process.pid, kind: 'commit' });
  const first = info!.mtime;
  await new Promise((r) => setTimeout(r, 80));
  t.true((await listSessions(b))[0]!.mtime > first, 'the heartbeat moved its time');
  t.notThrows(() => s.assertAlive());
  await s.end();
  t.deepEqual(await listSessions(b), []);
});

test('sessions: a writer whose heartbeats fail refuses to go on (WriteError, exit 16); expiry by server time', async (t) => {
  const inner = new MemoryBackend('memory://s');
  const b = new FaultyBackend(inner);
  const s = await RemoteSession.begin(b, 'push', { heartbeatMs: 10, maxAgeMs: 60 });
  for (let i = 1; i <= 30; i++) b.inject('unreachable', 'put', i);
  await new Promise((r) => setTimeout(r, 150));
  const e = t.throws(() => s.assertAlive(), { instanceOf: WriteError });
  t.is(exitCodeFor(e?.code), 16);
  t.regex(e?.message ?? '', /no ref was moved/);
  const [info] = await listSessions(inner);
  t.false(sessionExpired(info!, info!.mtime + 1000));
  t.true(sessionExpired(info!, info!.mtime + 15 * 60_000 + 1));
  await s.end().catch(() => {});
});
