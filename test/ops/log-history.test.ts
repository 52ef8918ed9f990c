/**
 * log's history walk at the library level: path limiting over a long history reads trees along the path only (no
 * blob record, no chunk), the date parser's forms, and history simplification at a merge.
 */
import test from 'ava';
import path from 'node:path';
import { derive } from '../../src/ops/derive.js';
import { log, parseApproxDate } from '../../src/ops/log.js';
import type { ObjectKind } from '../../src/store/object-store.js';
import { AUTHOR, TIME, commitAt, tmpRepo, writeTree } from '../helpers/repo.js';

test('log: -- PATH over 1000 commits reads only commits and the trees along the path, never file content', async (t) => {
  const { repo, dir } = tmpRepo(t);
  writeTree(path.join(dir, 'src'), { etc: { hostname: 'h0\n', motd: 'm\n' }, usr: { share: { doc: { a: 'a\n', b: 'b\n' } } }, var: { log: { n: '0\n' } } });
  await commitAt(repo, path.join(dir, 'src'), { branch: 'main', message: 'base' });
  const N = 1000;
  for (let i = 1; i <= N; i++) {
    // Every commit changes var/log/n; every 100th also etc/hostname.
    const edits = [{ op: 'set' as const, path: 'var/log/n', data: Buffer.from(`${i}\n`) }];
    if (i % 100 === 0) edits.push({ op: 'set', path: 'etc/hostname', data: Buffer.from(`h${i}\n`) });
    await derive(repo, { base: 'main', branch: 'main', author: AUTHOR, time: TIME + i, message: `c${i}`, edits });
  }
  const counts: Partial<Record<ObjectKind, number>> = {};
  const store = repo.objects;
  const read = store.readObject.bind(store);
  store.readObject = (kind, oid) => { counts[kind] = (counts[kind] ?? 0) + 1; return read(kind, oid); };
  const started = process.hrtime.bigint();
  const entries = log(repo, { rev: 'main', paths: ['etc/hostname'] });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.deepEqual(entries.map((e) => e.message), [...Array.from({ length: 10 }, (_x, k) => `c${(10 - k) * 100}`), 'base']);
  t.deepEqual(Object.keys(counts).sort(), ['commit', 'tree'], JSON.stringify(counts));
  t.is(counts.commit, N + 1, 'each commit read once');
  // Per commit its root tree and etc (the root tree changes every commit; etc only every 100th).
  t.true(counts.tree! <= 2 * (N + 1), JSON.stringify(counts));
  t.log(`log -- etc/hostname over ${N + 1} commits: ${ms.toFixed(0)} ms, ${JSON.stringify(counts)}`);
  // -n stops the walk early: the newest match is near the top.
  t.deepEqual(log(repo, { rev: 'main', paths: ['etc/hostname'], maxCount: 1 }).map((e) => e.message), ['c1000']);
});

test('log: parseApproxDate reads ISO dates, @seconds, relative dates and refuses the rest', (t) => {
  const now = 1_700_000_000;
  t.is(parseApproxDate('@1234', now), 1234);
  t.is(parseApproxDate('2023-11-14T22:13:20Z', now), 1_700_000_000);
  t.is(parseApproxDate('2023-11-14 23:13:20 +01:00', now), 1_700_000_000);
  t.is(parseApproxDate('2023-11-14T20:13:20-0200', now), 1_700_000_000);
  t.is(parseApproxDate('2023-11-14', now), Math.floor(new Date(2023, 10, 14).getTime() / 1000));
  t.is(parseApproxDate('2.weeks.ago', now), now - 14 * 86400);
  t.is(parseApproxDate('2 weeks ago', now), now - 14 * 86400);
  t.is(parseApproxDate('3 hours ago', now), now - 3 * 3600);
  t.is(parseApproxDate('a day ago', now), now - 86400);
  t.is(parseApproxDate('yesterday', now), now - 86400);
  t.is(parseApproxDate('now', now), now);
  const d = new Date(now * 1000);
  d.setMonth(d.getMonth() - 1);
  t.is(parseApproxDate('1 month ago', now), Math.floor(d.getTime() / 1000));
  for (const bad of ['nonsense', '2023-13-01', '2 fortnights ago', '']) t.throws(() => parseApproxDate(bad, now), { code: 'ERR_USAGE' }, bad);
});
