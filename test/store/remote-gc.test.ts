/**
 * gc of a repository in a bucket (memory://, the in-process bucket with S3's semantics): kopia's delayed deletion.
 * Unreachable objects go after two runs a grace period apart or one `wait` run; reachable ones (refs, reflogs with
 * their archives) never; one gc at a time (the lease); and writers that run meanwhile lose nothing: one that was
 * running when gc marked is waited for, one that starts later uploads its own copies.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { RepositoryLockedError } from '../../src/errors.js';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { checkout } from '../../src/ops/checkout.js';
import { deleteRef } from '../../src/ops/branch.js';
import { gcBucket, type BucketGcOptions, type BucketGcResult } from '../../src/ops/gc-bucket.js';
import { gc } from '../../src/ops/gc.js';
import { rootCommits, walkReachable } from '../../src/ops/reachable.js';
import { objectKey, type ObjectKind } from '../../src/store/object-store.js';
import { Repository } from '../../src/store/repository.js';
import { backendFor } from '../../src/store/remote/open.js';
import { GcLease, LEASE_KEY } from '../../src/store/remote/remote-gc.js';
import { RemotePackStore } from '../../src/store/remote/remote-packs.js';
import { MemoryBackend } from '../../src/store/remote/memory-backend.js';
import { FaultyBackend } from '../../src/store/remote/faulty-backend.js';
import { encodePack } from '../../src/store/lmdb-store.js';
import { encodeStored } from '../../src/store/object-store.js';
import { hashBytes } from '../../src/model/oid.js';
import { commitAt, randomBytes, sleep, tmpDir, writeTree, type Spec } from '../helpers/repo.js';

let n = 0;
const bucketUrl = () => `memory://remote-gc-${process.pid}-${n++}`;

/** A host: its own cache of the bucket, closed when the test ends. */
async function host(t: ExecutionContext, url: string, create = false): Promise<Repository> {
  const repo = create ? await Repository.create(url, { cacheDir: tmpDir(t) }) : await Repository.connect(url, 'write', { cacheDir: tmpDir(t) });
  t.teardown(() => repo.close());
  return repo;
}

function run(repo: Repository, options: BucketGcOptions = {}): Promise<BucketGcResult> {
  return gcBucket(repo, repo.bucketGc()!, { graceSeconds: 0, pollMs: 20, ...options });
}

function tree(t: ExecutionContext, spec: Spec): string {
  const dir = tmpDir(t);
  writeTree(dir, spec);
  return dir;
}

/** The object keys a commit reaches, walked on `repo`. */
function reachedBy(repo: Repository, commit: string): Set<string> {
  return walkReachable(repo, [{ oid: commit, from: 'test' }]).reachable;
}

function key(k: string): Buffer {
  const [kind, oid] = k.split(':') as [ObjectKind, string];
  return objectKey(kind, oid);
}

/** Keys of which no copy at all (tombstoned or not) is left in the bucket, as a fresh host sees it. */
async function goneFromBucket(t: ExecutionContext, url: string, keys: Iterable<string>): Promise<string[]> {
  const fresh = await host(t, url);
  const gcs = fresh.bucketGc()!;
  return [...keys].filter((k) => !gcs.hasCopy(key(k)));
}

/**
 * The fsck-like check from a host with an empty cache: every object every ref and reflog reaches has a live copy (not
 * tombstoned), and `branch` checks out byte-identical to `source`.
 */
async function checkFresh(t: ExecutionContext, url: string, branch: string, source: string): Promise<void> {
  const fresh = await host(t, url);
  const { reachable, problems } = walkReachable(fresh, rootCommits(fresh));
  t.deepEqual(problems, []);
  const notLive = [...reachable].filter((k) => !fresh.bucketGc()!.index.hasLive(key(k)));
  t.deepEqual(notLive, []);
  const out = path.join(tmpDir(t), 'co');
  await checkout(fresh, { rev: branch, dest: out });
  for (const f of listFiles(source)) t.deepEqual(fs.readFileSync(path.join(out, f)), fs.readFileSync(path.join(source, f)), f);
}

function listFiles(root: string, rel = ''): string[] {
  return fs.readdirSync(path.join(root, rel), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(root, path.join(rel, e.name)) : [path.join(rel, e.name)]);
}

/** Keys reached by `doomed` and not by `kept`. */
function only(repo: Repository, doomed: string, kept: string[]): string[] {
  const keep = new Set(kept.flatMap((c) => [...reachedBy(repo, c)]));
  return [...reachedBy(repo, doomed)].filter((k) => !keep.has(k));
}

test('unreachable objects go after two runs a grace period apart; what the refs reach stays', async (t) => {
  const url = bucketUrl();
  const a = await host(t, url, true);
  const keepSrc = tree(t, { etc: { hostname: 'keep\n' }, big: randomBytes(400_000, 'keep') });
  const keep = await commitAt(a, keepSrc, { branch: 'keep' });
  const old = await commitAt(a, tree(t, { etc: { hostname: 'old\n' }, big: randomBytes(400_000, 'old') }), { branch: 'old', tick: 1 });
  const doomed = only(a, old.commit, [keep.commit]);
  t.true(doomed.length >= 3);
  await deleteRef(a, 'branch', 'old', true);

  const g = await host(t, url);
  const r1 = await run(g, { graceSeconds: 2 });
  t.is(r1.removed, 0);
  t.true(r1.bucket.marked >= doomed.length);
  t.is(r1.bucket.pendingMarks, 1);
  t.deepEqual(await goneFromBucket(t, url, doomed), [], 'marked, not deleted');
  // Too young: the second run deletes nothing and marks nothing new.
  const r2 = await run(g, { graceSeconds: 2 });
  t.is(r2.removed, 0);
  t.is(r2.bucket.marked, 0);
  await sleep(2100);
  const r3 = await run(g, { graceSeconds: 2 });
  t.true(r3.removed >= doomed.length);
  t.true(r3.removedBytes > 400_000);
  t.is(r3.bucket.pendingMarks, 0);
  t.deepEqual((await goneFromBucket(t, url, doomed)).sort(), doomed.sort());
  t.deepEqual(await goneFromBucket(t, url, reachedBy(a, keep.commit)), []);
  await checkFresh(t, url, 'keep', keepSrc);
  // Nothing left to do.
  const r4 = await run(g);
  t.is(r4.removed + r4.bucket.marked, 0);
  // The library's gc on a bucket repository is this gc (with the repository's grace), never the cache's.
  await deleteRef(a, 'branch', 'keep', true);
  const r5 = await gc(g) as BucketGcResult;
  t.is(r5.removed, 0);
  t.is(r5.bucket.graceSeconds, 3600);
  t.true(r5.bucket.marked >= 3);
});

test('gc --wait marks and sweeps in one run; reflogs (archived entries too) keep their commits', async (t) => {
  const url = bucketUrl();
  const a = await host(t, url, true);
  const c1 = await commitAt(a, tree(t, { f: randomBytes(200_000, 'c1') }), { branch: 'main' });
  const c2Src = tree(t, { f: randomBytes(200_000, 'c2') });
  const c2 = await commitAt(a, c2Src, { branch: 'main', tick: 1 });
  const c3 = await commitAt(a, tree(t, { f: randomBytes(200_000, 'c3') }), { branch: 'side', tick: 2 });
  // c1 is now named only by main's reflog entries archived to logs/ (the ref object keeps the newest 64).
  for (let i = 0; i < 40; i++) {
    await a.refs.update([{ ref: 'refs/heads/main', newOid: c3.commit, expectedOld: c2.commit, message: 'flip' }], 'Test <t@e>');
    await a.refs.update([{ ref: 'refs/heads/main', newOid: c2.commit, expectedOld: c3.commit, message: 'flop' }], 'Test <t@e>');
  }
  t.false(a.refs.reflog('refs/heads/main').slice(0, 64).some((e) => e.new === c1.commit || e.old === c1.commit), 'c1 is only in the archive');
  t.true([...a.refs.reflogOids()].includes(c1.commit));
  // An unreachable commit: side, deleted (its reflog goes with it).
  const doomed = only(a, c3.commit, [c1.commit, c2.commit]);
  await deleteRef(a, 'branch', 'side', true);
  // c3 is still in main's reflog (the flips): unreachable only once that reflog is gone too. Use a fresh branch.
  const d = await commitAt(a, tree(t, { f: randomBytes(200_000, 'd') }), { branch: 'tmp', tick: 3 });
  const dOnly = only(a, d.commit, [c1.commit, c2.commit, c3.commit]);
  await deleteRef(a, 'branch', 'tmp', true);

  const g = await host(t, url);
  const r = await run(g, { wait: true });
  t.true(r.removed >= dOnly.length);
  t.is(r.bucket.pendingMarks, 0);
  t.deepEqual((await goneFromBucket(t, url, dOnly)).sort(), dOnly.sort());
  t.deepEqual(await goneFromBucket(t, url, reachedBy(a, c1.commit)), [], 'the archived reflog entry keeps c1');
  t.deepEqual(await goneFromBucket(t, url, doomed), [], 'main\'s reflog keeps c3');
  await checkFresh(t, url, 'main', c2Src);
});

test('one gc at a time: a live lease refuses (RepositoryLockedError, exit 11); an expired one is taken over', async (t) => {
  const url = bucketUrl();
  const a = await host(t, url, true);
  await commitAt(a, tree(t, { f: 'x' }), { branch: 'main' });
  const backend = await backendFor(url);
  const lease = await GcLease.acquire(backend);
  const err = await t.throwsAsync(() => run(a), { instanceOf: RepositoryLockedError });
  t.regex(err!.message, /gc running on .* \(pid \d+\)/);
  t.is(exitCodeFor((err as RepositoryLockedError).code), 11);
  await lease.release();
  t.is(await backend.get(LEASE_KEY), undefined);
  await t.notThrowsAsync(() => run(a));
  t.is(await backend.get(LEASE_KEY), undefined, 'released at the end');

  // A crashed gc's lease, expired: taken over.
  await backend.put(LEASE_KEY, Buffer.from(JSON.stringify({ holder: 'dead', host: 'gone', pid: 1, expires: 0 })));
  await t.notThrowsAsync(() => run(a));
  t.is(await backend.get(LEASE_KEY), undefined);
  // A live one of another host, not.
  await backend.put(LEASE_KEY, Buffer.from(JSON.stringify({ holder: 'other', host: 'elsewhere', pid: 7, expires: Date.now() + 600_000 })));
  await t.throwsAsync(() => run(a), { instanceOf: RepositoryLockedError, message: /gc running on elsewhere \(pid 7\)/ });
  t.truthy(await backend.get(LEASE_KEY), 'another gc\'s lease is left alone');
});

test('gc while a commit uploads: a writer running at the mark is waited for, and what it relied on stays', async (t) => {
  const url = bucketUrl();
  const a = await host(t, url, true);
  const shared = randomBytes(500_000, 'shared');
  await commitAt(a, tree(t, { base: 'base\n' }), { branch: 'main' });
  const old = await commitAt(a, tree(t, { img: shared, note: 'old\n' }), { branch: 'old', tick: 1 });
  const sharedKeys = only(a, old.commit, []).filter((k) => k.startsWith('chunk:') || k.startsWith('blob:'));
  await deleteRef(a, 'branch', 'old', true);

  // The writer begins (session, then refresh) before gc marks: it deduplicates against copies gc is about to mark.
  const w = await host(t, url);
  await w.beginSession('commit');
  const g = await host(t, url);
  const r1 = await run(g);
  t.true(r1.bucket.marked > 0);
  const marks = await g.bucketGc()!.listMarks();
  t.is(marks.length, 1);
  t.is(marks[0]!.waitFor.length, 1, 'the writer\'s session is waited for');

  // While it runs, no sweep.
  const rMid = await run(g);
  t.is(rMid.bucket.swept.marks, 0);
  t.is(rMid.bucket.pendingMarks, 1);
  const src = tree(t, { img: shared, note: 'new\n' });
  const landed = await commitAt(w, src, { branch: 'new', tick: 2 });   // ends the session
  t.deepEqual(sharedKeys.filter((k) => !w.bucketGc()!.index.liveCopies(key(k), false).length), []);
  // The writer has ended now, so the mark is swept; its commit is reachable: the shared objects are repacked.
  const r2 = await run(g);
  t.is(r2.bucket.swept.marks, 1);
  const kept = sharedKeys.filter((k) => reachedBy(w, landed.commit).has(k));
  t.true(kept.length >= 1, JSON.stringify(sharedKeys));
  t.true(r2.bucket.swept.repacked >= kept.length);
  t.true(r2.removed >= 1, 'the old note went');
  t.deepEqual(await goneFromBucket(t, url, reachedBy(w, landed.commit)), []);
  await checkFresh(t, url, 'new', src);
});

test('gc --wait waits for the writer that was running at the mark, then sweeps', async (t) => {
  const url = bucketUrl();
  const a = await host(t, url, true);
  const shared = randomBytes(300_000, 'wait');
  await commitAt(a, tree(t, { base: 'base\n' }), { branch: 'main' });
  const old = await commitAt(a, tree(t, { img: shared }), { branch: 'old', tick: 1 });
  const oldOnly = only(a, old.commit, []);
  await deleteRef(a, 'branch', 'old', true);
  const w = await host(t, url);
  await w.beginSession('commit');
  const phases: string[] = [];
  const g = await host(t, url);
  const gcRun = run(g, { wait: true, onProgress: (e) => phases.push(e.phase) });
  await sleep(300);
  const src = tree(t, { img: shared, more: 'x\n' });
  await commitAt(w, src, { branch: 'new', tick: 2 });
  const r = await gcRun;
  t.true(phases.includes('waiting for 1 session'));
  t.is(r.bucket.swept.marks, 1);
  t.is(r.bucket.pendingMarks, 0);
  // Only the old commit and its tree went: the content the new commit shares stayed.
  const gone = await goneFromBucket(t, url, oldOnly);
  t.true(gone.includes(`commit:${old.commit}`));
  t.false(gone.some((k) => k.startsWith('chunk:')));
  await checkFresh(t, url, 'new', src);
});

test('a writer that starts after the mark uploads its own copies of marked objects; the sweep keeps them', async (t) => {
  const url = bucketUrl();
  const a = await host(t, url, true);
  const shared = randomBytes(400_000, 'after');
  await commitAt(a, tree(t, { base: 'base\n' }), { branch: 'main' });
  const old = await commitAt(a, tree(t, { img: shared }), { branch: 'old', tick: 1 });
  const content = only(a, old.commit, []).filter((k) => k.startsWith('chunk:') || k.startsWith('blob:'));
  await deleteRef(a, 'branch', 'old', true);
  const g = await host(t, url);
  const r1 = await run(g);
  t.true(r1.bucket.marked >= content.length);
  const marked = new Map(content.map((k) => [k, g.bucketGc()!.index.liveCopies(key(k), false).map((c) => c.pack)]));
  for (const k of content) t.false(g.bucketGc()!.index.hasLive(key(k)), `${k} is tombstoned`);

  // A writer that begins now sees the tombstones: it does not rely on the marked copies, it uploads new ones.
  const w = await host(t, url);
  const src = tree(t, { img: shared, note: 'after\n' });
  await commitAt(w, src, { branch: 'new', tick: 2 });
  for (const k of content) {
    const live = w.bucketGc()!.index.liveCopies(key(k), true);
    t.is(live.length, 1, k);
    t.false(marked.get(k)!.includes(live[0]!.pack), `${k} has a copy of its own`);
  }
  const r2 = await run(g);
  t.is(r2.bucket.swept.marks, 1);
  t.is(r2.bucket.swept.repacked, 0, 'nothing to repack: the writer has its own copies');
  t.true(r2.removed >= 2, 'the old commit and its tree went');
  const backend = await backendFor(url);
  for (const k of content) for (const p of marked.get(k)!) t.is(await backend.head(`packs/${p}`), undefined, `the marked pack ${p} is deleted`);
  await checkFresh(t, url, 'new', src);
});

test('packs of an interrupted upload are deleted only after the grace period; many segments are merged into one', async (t) => {
  const url = bucketUrl();
  const a = await host(t, url, true);
  const src = tree(t, { f: 'one\n' });
  for (let i = 0; i < 5; i++) {
    fs.writeFileSync(path.join(src, 'f'), `version ${i}\n`);
    await commitAt(a, src, { branch: 'main', tick: i });
  }
  // An upload cut short: a pack no segment names.
  const backend = await backendFor(url);
  const data = Buffer.from('orphan content');
  const orphan = await new RemotePackStore(backend).put(Buffer.concat([encodePack([[objectKey('chunk', hashBytes(data)), encodeStored(data, 0)]]).value, Buffer.alloc(16)]));
  const g = await host(t, url);
  const r1 = await run(g, { graceSeconds: 3600 });
  t.is(r1.bucket.orphans.packs, 0, 'too young');
  t.truthy(await backend.head(`packs/${orphan}`));
  // A live writer session that began before the pack also spares it.
  const w = await host(t, url);
  await w.beginSession('commit');
  await sleep(5);
  const r2 = await run(g, { segmentLimit: 2 });
  await w.endSession();
  t.is(r2.bucket.orphans.packs, 0, 'a writer that began less than 5 minutes (clock skew) after the pack may still name it');
  t.true(r2.bucket.segmentsMerged >= 4);
  let segments = 0;
  for await (const o of backend.list('index/')) if (o.key) segments++;
  t.true(segments <= 2, `${segments} segments left`);
  // No writer runs any more, and the grace period (0 here) has passed: it goes.
  const r3 = await run(g);
  t.is(r3.bucket.orphans.packs, 1);
  t.is(await backend.head(`packs/${orphan}`), undefined);
  await checkFresh(t, url, 'main', src);
});

test('the lease under RGW\'s failures: a lost answer to its create is settled by reading it back; a 409 is retried', async (t) => {
  const inner = new MemoryBackend(`memory://lease-${process.pid}`);
  const lost = new FaultyBackend(inner);
  lost.inject('lost-response', 'put');
  const l1 = await GcLease.acquire(lost);
  t.is(lost.injected.length, 1);
  t.regex((await inner.get(LEASE_KEY))!.body.toString(), /"pid":\d+/);
  // A second gc, through the same bucket, is refused while it is held.
  await t.throwsAsync(() => GcLease.acquire(inner), { instanceOf: RepositoryLockedError });
  // Renewal through a lost answer keeps it ours; release deletes it.
  lost.inject('lost-response', 'put');
  await l1.renew();
  l1.assertHeld();
  await l1.release();
  t.is(await inner.get(LEASE_KEY), undefined);

  const conflict = new FaultyBackend(inner);
  conflict.inject('409', 'put');
  const l2 = await GcLease.acquire(conflict);
  t.is(conflict.injected.length, 1);
  t.truthy(await inner.get(LEASE_KEY));
  await l2.release();
  t.is(await inner.get(LEASE_KEY), undefined);
});
