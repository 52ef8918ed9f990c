/**
 * A repository in a bucket (memory://, the in-process bucket with S3's semantics), end to end through the ops: one
 * host commits, another host with an empty cache reads, checks out and commits on top; both see the same history.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { Repository } from '../../src/store/repository.js';
import { checkout } from '../../src/ops/checkout.js';
import { cat } from '../../src/ops/ls.js';
import { log } from '../../src/ops/log.js';
import { fsck } from '../../src/ops/fsck.js';
import { rebuildIndex } from '../../src/ops/index-rebuild.js';
import { gcBucket } from '../../src/ops/gc-bucket.js';
import { backendFor } from '../../src/store/remote/open.js';
import { collect, commitAt, tmpDir, writeTree } from '../helpers/repo.js';

let n = 0;
const bucket = () => `memory://bucket-repo-${process.pid}-${n++}`;

test('host A commits into a bucket; host B, with an empty cache, reads the same history and files, and commits on top', async (t) => {
  const url = bucket();
  const a = await Repository.create(url, { cacheDir: tmpDir(t) });
  t.true(a.inBucket);
  t.is(a.location, url);
  const src = tmpDir(t);
  writeTree(src, { etc: { hostname: 'base\n', big: Buffer.alloc(300_000, 9) }, usr: { bin: { tool: Buffer.from([1, 2, 3]) } } });
  const c1 = await commitAt(a, src, { branch: 'images/base', message: 'base' });
  t.is(a.refs.resolve('refs/heads/images/base')?.oid, c1.commit);

  const b = await Repository.connect(url, 'write', { cacheDir: tmpDir(t) });
  t.is(b.id, a.id);
  t.is(b.refs.resolve('refs/heads/images/base')?.oid, c1.commit);
  t.is((await collect(cat(b, 'images/base:etc/hostname'))).toString(), 'base\n');
  const out = path.join(tmpDir(t), 'co');
  await checkout(b, { rev: 'images/base', dest: out });
  t.deepEqual(fs.readFileSync(path.join(out, 'etc/big')), Buffer.alloc(300_000, 9));

  fs.writeFileSync(path.join(src, 'etc/hostname'), 'web\n');
  const c2 = await commitAt(b, src, { branch: 'images/base', message: 'web', tick: 1 });
  await a.refresh();
  t.is(a.refs.resolve('refs/heads/images/base')?.oid, c2.commit);
  t.is((await collect(cat(a, 'images/base:etc/hostname'))).toString(), 'web\n');
  t.deepEqual(log(a, { rev: 'images/base' }).map((e) => [e.id, e.message]), [[c2.commit, 'web'], [c1.commit, 'base']]);
  t.deepEqual(log(b, { rev: 'images/base' }).map((e) => e.id), [c2.commit, c1.commit]);
  await a.close();
  await b.close();
});

test('fsck of a bucket repository reads every pack and segment: clean, then a tampered pack and a damaged segment are named by key', async (t) => {
  const url = bucket();
  const a = await Repository.create(url, { cacheDir: tmpDir(t) });
  const src = tmpDir(t);
  writeTree(src, { etc: { hostname: 'x\n', big: Buffer.alloc(200_000, 2) } });
  await commitAt(a, src, { branch: 'main' });
  await a.close();
  const fresh = await Repository.connect(url, 'read', { cacheDir: tmpDir(t) });
  const ok = await fsck(fresh);
  t.deepEqual(ok.problems, []);
  t.true(ok.objects >= 4, 'every object came into the cache and was checked');
  await fresh.close();

  const backend = await backendFor(url);
  const packs: string[] = [];
  for await (const o of backend.list('packs/')) packs.push(o.key);
  const body = (await backend.get(packs[0]!))!.body;
  body[body.length - 20]! ^= 1;
  await backend.put(packs[0]!, body);
  const third = await Repository.connect(url, 'read', { cacheDir: tmpDir(t) });
  const bad = await fsck(third);
  t.false(bad.ok);
  t.deepEqual([bad.problems[0]!.kind, bad.problems[0]!.oid], ['pack', packs[0]]);
  t.regex(bad.problems[0]!.problem, /^does not match its name/);
  // The objects in it that the walk reads are named too, each with the pack.
  for (const p of bad.problems.slice(1)) t.true(p.problem.includes(packs[0]!), JSON.stringify(p));
  await third.close();

  // A damaged segment is met when a host opens the repository: one clean error naming it.
  const segs: string[] = [];
  for await (const o of backend.list('index/')) segs.push(o.key);
  await backend.put(segs[0]!, Buffer.from('not a segment'));
  const e = await t.throwsAsync(Repository.connect(url, 'read', { cacheDir: tmpDir(t) }));
  t.regex(e?.message ?? '', /index\/[0-9a-f]{64}\.vix/);
});

test('index rebuild of a bucket repository: from its segments, and --from-packs when the segments are gone', async (t) => {
  const url = bucket();
  const a = await Repository.create(url, { cacheDir: tmpDir(t) });
  const src = tmpDir(t);
  writeTree(src, { etc: { hostname: 'x\n' }, data: Buffer.alloc(150_000, 6) });
  const c = await commitAt(a, src, { branch: 'main' });
  await a.close();
  const backend = await backendFor(url);
  const segs: string[] = [];
  for await (const o of backend.list('index/')) segs.push(o.key);
  await backend.delete(segs);
  const b = await Repository.connect(url, 'write', { cacheDir: tmpDir(t) });
  t.false(b.objects.hasObject('commit', c.commit), 'no segment names it');
  const r = await rebuildIndex(b, { fromPacks: true });
  t.like(r.bucket, { segments: 1 });
  t.true(r.bucket!.packs >= 2);
  t.true(b.objects.hasObject('commit', c.commit));
  t.is((await collect(cat(b, 'main:etc/hostname'))).toString(), 'x\n');
  t.deepEqual((await fsck(b)).problems, []);
  const again = await rebuildIndex(b);
  t.like(again.bucket, { segments: 1, packs: 0 });
  await b.close();
  const local = (await import('../helpers/repo.js')).tmpRepo(t).repo;
  await t.throwsAsync(rebuildIndex(local, { fromPacks: true }), { message: /--from-packs is for a repository in a bucket/ });
});

test('a host whose index predates another host\'s gc: the repacked pack is gone (404), a refresh finds the new copy, the checkout works', async (t) => {
  const url = bucket();
  const a = await Repository.create(url, { cacheDir: tmpDir(t) });
  const keep = tmpDir(t);
  const drop = tmpDir(t);
  writeTree(keep, { kept: Buffer.alloc(120_000, 1) });
  writeTree(drop, { kept: Buffer.alloc(120_000, 1), dropped: Buffer.alloc(120_000, 2) });
  await commitAt(a, drop, { branch: 'tmp', message: 'to drop' });
  await commitAt(a, keep, { branch: 'main', message: 'kept', tick: 1 });
  const b = await Repository.connect(url, 'write', { cacheDir: tmpDir(t) });
  // tmp goes, with its reflog; gc marks and sweeps in one run: the pack shared by both commits is repacked.
  await a.refs.update([{ ref: 'refs/heads/tmp', newOid: null, message: 'delete' }], 'test <t@e>');
  const gcs = a.bucketGc()!;
  const r = await gcBucket(a, gcs, { wait: true, graceSeconds: 0, pollMs: 10 });
  t.true(r.bucket.swept.packs > 0 || r.bucket.marked > 0, JSON.stringify(r.bucket));
  const out = path.join(tmpDir(t), 'co');
  await checkout(b, { rev: 'main', dest: out });
  t.deepEqual(fs.readFileSync(path.join(out, 'kept')), Buffer.alloc(120_000, 1));
  await a.close();
  await b.close();
});
