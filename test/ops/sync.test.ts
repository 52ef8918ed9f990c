/** Sync between local repositories: only missing objects move, subtrees are skipped whole, objects are verified, refs are compare-and-swap. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { addRemote, clone, fetch, listRemotes, parsePushSpec, pull, push, removeRemote } from '../../src/ops/sync.js';
import { fsck } from '../../src/ops/fsck.js';
import { find } from '../../src/ops/find.js';
import { Repository } from '../../src/store/repository.js';
import { LocalPeer, receiveObjects, type StoredObject } from '../../src/sync/peer.js';
import { planTransfer } from '../../src/sync/transfer.js';
import { setUpstreamTo } from '../../src/ops/upstream.js';
import { decodeStored, encodeStored } from '../../src/store/object-store.js';
import { decodeBlob, encodeBlob } from '../../src/model/blob.js';
import { commitTree, readCommit } from '../../src/store/typed.js';
import { AbortedError, RefConflictError, RefExistsError, RemoteError, RepositoryCorruptError, UsageError } from '../../src/errors.js';
import { commitAt, randomBytes, sha256, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';
import { lmdb } from '../helpers/lmdb.js';

/** A ref as a fresh handle sees it (another handle on the same file in this process may keep an old snapshot). */
async function refIn(dir: string, ref: string): Promise<string | undefined> {
  const r = Repository.open(dir, 'read');
  try { return r.refs.resolve(ref)?.oid; } finally { await r.close(); }
}

async function twoRepos(t: import('ava').ExecutionContext) {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  writeTree(src, { usr: { lib: { big: randomBytes(600_000, 'big'), small: 'x' } }, etc: { hostname: 'one\n' } });
  const a = tmpRepo(t);
  await commitAt(a.repo, src, { branch: 'images/base' });
  const bDir = path.join(dir, 'b');
  const b = Repository.init(bDir);
  t.teardown(() => b.close());
  return { dir, src, a: a.repo, aDir: a.repo.root, b, bDir };
}

test('sync: fetch brings only what is missing, into remote-tracking refs; a second fetch asks one question', async (t) => {
  const { src, a, aDir, b } = await twoRepos(t);
  addRemote(b, 'lib', aDir);
  t.deepEqual(listRemotes(b), [{ name: 'lib', url: aDir }]);
  const first = await fetch(b, 'lib');
  t.true(first.objects > 5);
  t.deepEqual(first.updated.map((u) => u.ref), ['refs/remotes/lib/images/base']);
  t.deepEqual((await fsck(b)).problems, []);
  // Nothing new: one has-query for the tip, nothing transferred.
  const again = await fetch(b, 'lib');
  t.is(again.objects, 0);
  t.is(again.queries, 1);
  // A change in one file: only its directory chain and content move, usr/lib is skipped whole.
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'two\n');
  await commitAt(a, src, { branch: 'images/base', tick: 1 });
  const next = await fetch(b, 'lib');
  t.is(next.objects, 4, 'commit, root tree, etc tree, one blob');
  // The content index of the receiver knows the fetched images.
  const hits: string[] = [];
  for await (const h of find(b, { sha256: [sha256('two\n')] })) hits.push(`${h.ref} ${h.path}`);
  t.deepEqual(hits, ['lib/images/base etc/hostname']);
});

test('sync: push sends the missing objects and moves the remote branch; non-fast-forward is refused unless forced', async (t) => {
  const { src, a, b, bDir } = await twoRepos(t);
  addRemote(a, 'copy', bDir);
  const r = await push(a, 'copy', [{ src: 'images/base', dst: 'images/base' }]);
  t.true(r.objects > 0);
  t.is(await refIn(bDir, 'refs/heads/images/base'), a.refs.resolve('refs/heads/images/base')?.oid);
  t.is(a.refs.resolve('refs/remotes/copy/images/base')?.oid, a.refs.resolve('refs/heads/images/base')?.oid);
  t.is((await push(a, 'copy', [{ src: 'images/base', dst: 'images/base' }])).updated.length, 0, 'up to date');
  // Rewrite history on a: a commit not descending from what b has.
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'other\n');
  const other = await commitAt(a, src, { branch: 'side', tick: 5 });
  await t.throwsAsync(push(a, 'copy', [{ src: 'side', dst: 'images/base' }]), { instanceOf: RefConflictError, message: /non-fast-forward/ });
  const forced = await push(a, 'copy', [{ src: 'side', dst: 'images/base' }], { force: true });
  t.true(forced.updated[0]!.forced);
  t.is(await refIn(bDir, 'refs/heads/images/base'), other.commit);
  const del = await push(a, 'copy', [{ src: '', dst: 'images/base' }]);
  t.deepEqual(del.updated.map((u) => u.new), [null]);
  // A fresh handle: a second lmdb-js handle on the same file in one process keeps its read snapshot.
  const fresh = Repository.open(bDir, 'read');
  t.is(fresh.refs.resolve('refs/heads/images/base')?.oid, undefined);
  t.deepEqual((await fsck(fresh)).problems, []);
  await fresh.close();
});

test('sync: clone and pull fast-forward; a diverged branch merges (or, with ffOnly, is refused)', async (t) => {
  const { dir, src, a, aDir } = await twoRepos(t);
  const c = await clone(aDir, path.join(dir, 'c'));
  t.is(c.branch, 'images/base');
  const repo = Repository.open(path.join(dir, 'c'), 'write');
  t.teardown(() => repo.close());
  t.is(repo.refs.resolve('HEAD')?.oid, a.refs.resolve('refs/heads/images/base')?.oid);
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'three\n');
  const up = await commitAt(a, src, { branch: 'images/base', tick: 2 });
  // A tag named like the branch does not make pull ambiguous: it pulls the branch.
  await a.refs.update([{ ref: 'refs/tags/images/base', newOid: c.updated[0]!.new, message: 'test' }], 'Test <t@x>');
  const p = await pull(repo);
  t.true(p.fastForward);
  t.is(repo.refs.resolve('refs/heads/images/base')?.oid, up.commit);
  // Diverge: a local commit, and another upstream.
  await commitAt(repo, src, { branch: 'images/base', tick: 3, message: 'local' });
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'four\n');
  await commitAt(a, src, { branch: 'images/base', tick: 4 });
  await t.throwsAsync(pull(repo, 'origin', undefined, { ffOnly: true }), { instanceOf: RefConflictError, message: /diverged/ });
  const merged = await pull(repo);
  t.is(merged.merge?.status, 'merged');
  const head = readCommit(repo.objects, repo.refs.resolve('refs/heads/images/base')?.oid!);
  t.is(head.parents.length, 2);
  t.is(head.parents[1], repo.refs.resolve('refs/remotes/origin/images/base')?.oid!);
  await removeRemote(repo, 'origin');
  t.deepEqual(repo.refs.list('refs/remotes/'), []);
});

test('sync: pull without a remote follows the branch\'s upstream: another remote branch name, or a local branch', async (t) => {
  const { dir, src, a, aDir } = await twoRepos(t);
  await clone(aDir, path.join(dir, 'c'));
  const repo = Repository.open(path.join(dir, 'c'), 'write');
  t.teardown(() => repo.close());
  // A local branch 'mine' tracking origin/images/base: pull fetches images/base, not 'mine'.
  await repo.refs.update([{ ref: 'refs/heads/mine', newOid: repo.refs.resolve('HEAD')?.oid!, message: 'test' }], 'Test <t@x>');
  setUpstreamTo(repo, 'origin/images/base', 'mine');
  await repo.refs.setSymbolic('HEAD', 'refs/heads/mine');
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'upstream\n');
  const up = await commitAt(a, src, { branch: 'images/base', tick: 5 });
  const p = await pull(repo);
  t.true(p.fastForward);
  t.is(p.branch, 'mine');
  t.is(repo.refs.resolve('refs/heads/mine')?.oid, up.commit);
  // A remote given without a branch: the upstream's branch on that remote.
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'again\n');
  const again = await commitAt(a, src, { branch: 'images/base', tick: 6 });
  t.true((await pull(repo, 'origin')).fastForward);
  t.is(repo.refs.resolve('refs/heads/mine')?.oid, again.commit);
  // A local upstream: no fetch, the local branch is merged or fast-forwarded.
  await repo.refs.update([{ ref: 'refs/heads/feature', newOid: again.commit, message: 'test' }], 'Test <t@x>');
  await commitAt(repo, src, { branch: 'feature', tick: 7, message: 'on feature' });
  setUpstreamTo(repo, 'feature', 'mine');
  await repo.refs.setSymbolic('HEAD', 'refs/heads/mine');
  const local = await pull(repo);
  t.true(local.fastForward);
  t.is(local.objects, 0);
  t.is(repo.refs.resolve('refs/heads/mine')?.oid, repo.refs.resolve('refs/heads/feature')?.oid);
});

test('sync: a tampered or truncated object is refused and nothing of it is referenced; a retry sends the rest', async (t) => {
  const { a, b } = await twoRepos(t);
  const src = new LocalPeer(a);
  const plan = await planTransfer(src, async (ids) => ids.map((i) => b.objects.hasObject(i.kind, i.oid)), [a.refs.resolve('refs/heads/images/base')?.oid!]);
  const objects: StoredObject[] = [];
  for await (const o of src.read(plan.objects)) objects.push(o);
  // Flip a byte in the last chunk's payload (raw codec or zstd: either way it no longer matches its id).
  const bad = objects.map((o) => ({ ...o, stored: Buffer.from(o.stored) as Buffer }));
  const victim = bad.find((o) => o.kind === 'tree')!;
  victim.stored[victim.stored.length - 1] ^= 0xff;
  async function* stream(list: StoredObject[]) { yield* list; }
  await t.throwsAsync(receiveObjects(b, stream(bad)), { instanceOf: RepositoryCorruptError });
  t.deepEqual(b.refs.list('refs/'), []);
  // Objects before the bad one may have been kept (verified, unreferenced); a retry completes the set.
  const retryPlan = await planTransfer(src, async (ids) => ids.map((i) => b.objects.hasObject(i.kind, i.oid)), [a.refs.resolve('refs/heads/images/base')?.oid!]);
  t.true(retryPlan.objects.length <= plan.objects.length);
  await receiveObjects(b, src.read(retryPlan.objects));
  t.deepEqual((await fsck(b)).problems, []);
  await t.throwsAsync(fetch(b, '/no/such/repo'), { instanceOf: RemoteError });
});

/** Everything `a` has for its branch images/base, as a receiver with nothing would get it (children first). */
async function planned(a: Repository, b: Repository): Promise<StoredObject[]> {
  const src = new LocalPeer(a);
  const plan = await planTransfer(src, async (ids) => ids.map((i) => b.objects.hasObject(i.kind, i.oid)), [a.refs.resolve('refs/heads/images/base')?.oid!]);
  const out: StoredObject[] = [];
  for await (const o of src.read(plan.objects)) out.push(o);
  return out;
}
async function* streamOf(list: StoredObject[]) { yield* list; }

test('sync: a receive verified on the worker thread stores what the main thread would, batch after batch', async (t) => {
  const { a, b } = await twoRepos(t);
  const objects = await planned(a, b);
  t.true(objects.some((o) => o.kind === 'chunk') && objects.some((o) => o.kind === 'blob'));
  // From the first object, in batches of about 64 KiB: many batches, several in flight.
  const r = await receiveObjects(b, streamOf(objects), { verifyThreadAfter: 0, verifyBatchBytes: 64 << 10 });
  t.is(r.objects, objects.length);
  for (const o of objects) t.true(b.objects.hasObject(o.kind, o.oid), `${o.kind} ${o.oid}`);
  t.deepEqual((await fsck(b)).problems, []);
  // The same stream again: everything is present, nothing is stored twice.
  t.is((await receiveObjects(b, streamOf(objects), { verifyThreadAfter: 0 })).objects, 0);
});

test('sync: on the worker thread a bad chunk, a lying blob and a tampered tree are refused as on the main thread', async (t) => {
  const { a, b } = await twoRepos(t);
  const objects = await planned(a, b);
  const viaThread = { verifyThreadAfter: 0, verifyBatchBytes: 16 << 10 };
  // A chunk whose bytes are not its id's.
  const badChunk = objects.map((o) => ({ ...o, stored: Buffer.from(o.stored) as Buffer }));
  const chunk = badChunk.filter((o) => o.kind === 'chunk')[1]!;
  chunk.stored = encodeStored(Buffer.concat([decodeStored(chunk.stored), Buffer.from('x')]));
  await t.throwsAsync(receiveObjects(b, streamOf(badChunk), viaThread), { instanceOf: RepositoryCorruptError, message: new RegExp(`chunk ${chunk.oid}.*does not match its id`) });
  // A blob record whose segments add up to other content than its id says (a chunk swapped for another).
  const blobAt = objects.findIndex((o) => o.kind === 'blob' && decodeBlob(decodeStored(o.stored)).form === 'chunked');
  const rec = decodeBlob(decodeStored(objects[blobAt]!.stored));
  if (rec.form !== 'chunked') throw new Error('no chunked blob');
  const segs = rec.segments.filter((x) => x.kind === 'chunk');
  const swapped = { ...rec, segments: rec.segments.map((x) => (x === segs[0] ? { ...segs[1]!, length: segs[1]!.length } : x)) };
  swapped.size = swapped.segments.reduce((n, x) => n + x.length, 0);
  const lying = objects.map((o, i) => (i === blobAt ? { ...o, stored: encodeStored(encodeBlob(swapped)) } : o));
  await t.throwsAsync(receiveObjects(b, streamOf(lying), viaThread), { instanceOf: RepositoryCorruptError, message: /content does not match its id/ });
  // A tree with a flipped byte.
  const badTree = objects.map((o) => ({ ...o, stored: Buffer.from(o.stored) as Buffer }));
  const tree = badTree.find((o) => o.kind === 'tree')!;
  tree.stored = encodeStored(Buffer.concat([decodeStored(tree.stored), Buffer.from([0])]));
  await t.throwsAsync(receiveObjects(b, streamOf(badTree), viaThread), { instanceOf: RepositoryCorruptError, message: new RegExp(`tree ${tree.oid}`) });
  t.deepEqual(b.refs.list('refs/'), []);
  // After all that, the honest stream completes the set.
  await receiveObjects(b, streamOf(objects), viaThread);
  t.deepEqual((await fsck(b)).problems, []);
});

test('sync: a blob whose chunks the receiver already had is checked against its store (the thread does not have them)', async (t) => {
  const { a, b } = await twoRepos(t);
  const objects = await planned(a, b);
  const viaThread = { verifyThreadAfter: 0, verifyBatchBytes: 16 << 10 };
  // The chunks first, in a transfer of their own; then the rest, whose blobs the thread cannot check.
  await receiveObjects(b, streamOf(objects.filter((o) => o.kind === 'chunk')), viaThread);
  const rest = objects.filter((o) => o.kind !== 'chunk');
  // A lying blob among them is still refused, by the main thread from its store.
  const blobAt = rest.findIndex((o) => o.kind === 'blob' && decodeBlob(decodeStored(o.stored)).form === 'chunked');
  const rec = decodeBlob(decodeStored(rest[blobAt]!.stored));
  if (rec.form !== 'chunked') throw new Error('no chunked blob');
  const chunkSeg = rec.segments.find((x) => x.kind === 'chunk')!;
  const truncated = { form: 'chunked' as const, size: chunkSeg.length, segments: [chunkSeg] };
  const lying = rest.map((o, i) => (i === blobAt ? { ...o, stored: encodeStored(encodeBlob(truncated)) } : o));
  await t.throwsAsync(receiveObjects(b, streamOf(lying), viaThread), { instanceOf: RepositoryCorruptError, message: /content does not match its id/ });
  await receiveObjects(b, streamOf(rest), viaThread);
  t.deepEqual((await fsck(b)).problems, []);
});

test('sync: fetch refspecs: BRANCH into its tracking ref, SRC:DST into a local branch (fast-forward only, + forces)', async (t) => {
  const { src, a, aDir, b } = await twoRepos(t);
  addRemote(b, 'lib', aDir);
  const r = await fetch(b, 'lib', ['images/base:mine']);
  t.deepEqual(r.updated.map((u) => u.ref), ['refs/heads/mine']);
  t.is(b.refs.resolve('refs/heads/mine')?.oid, a.refs.resolve('refs/heads/images/base')?.oid);
  // Upstream rewritten: not a fast-forward of mine.
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'rewritten\n');
  await commitAt(a, src, { branch: 'images/rewrite', tick: 9 });
  await t.throwsAsync(fetch(b, 'lib', ['images/rewrite:mine']), { instanceOf: RefConflictError, message: /not a fast-forward/ });
  await fetch(b, 'lib', ['+images/rewrite:mine']);
  t.is(b.refs.resolve('refs/heads/mine')?.oid, a.refs.resolve('refs/heads/images/rewrite')?.oid);
  await t.throwsAsync(fetch(b, 'lib', ['no/such']), { message: /no\/such/ });
  await t.throwsAsync(fetch(b, 'lib', ['a:']), { instanceOf: UsageError });
});

/** Points `ref` of `repo` at `oid` (a tag or branch made without the tag op). */
async function setRef(repo: Repository, ref: string, oid: string): Promise<void> {
  await repo.refs.update([{ ref, newOid: oid, message: 'test' }], 'Test <t@x>');
}

test('sync: a short name pushes and fetches in its own namespace: a tag stays a tag, a branch a branch; both is ambiguous', async (t) => {
  const { src, a, aDir, b, bDir } = await twoRepos(t);
  const base = a.refs.resolve('refs/heads/images/base')?.oid!;
  setRef(a, 'refs/tags/v1', base);
  addRemote(a, 'copy', bDir);
  const r = await push(a, 'copy', [parsePushSpec('v1')]);
  t.deepEqual(r.updated.map((u) => u.ref), ['refs/tags/v1']);
  t.is(await refIn(bDir, 'refs/tags/v1'), base);
  t.is(await refIn(bDir, 'refs/heads/v1'), undefined, 'no branch named like the tag');
  t.deepEqual(a.refs.list('refs/remotes/'), [], 'a tag has no remote-tracking ref');
  // A branch by short name goes to refs/heads/; SRC:DST with a short DST keeps SRC's namespace.
  t.deepEqual((await push(a, 'copy', [parsePushSpec('images/base')])).updated.map((u) => u.ref), ['refs/heads/images/base']);
  t.deepEqual((await push(a, 'copy', [parsePushSpec('v1:v1-copy')])).updated.map((u) => u.ref), ['refs/tags/v1-copy']);
  t.deepEqual((await push(a, 'copy', [parsePushSpec('images/base:other')])).updated.map((u) => u.ref), ['refs/heads/other']);
  // A tag on the remote is not moved without --force, even by a fast-forward.
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'next\n');
  const next = await commitAt(a, src, { branch: 'images/base', tick: 1 });
  setRef(a, 'refs/tags/v1', next.commit);
  await t.throwsAsync(push(a, 'copy', [parsePushSpec('v1')]), { instanceOf: RefExistsError, message: /tag 'v1' already exists/ });
  t.true((await push(a, 'copy', [parsePushSpec('v1')], { force: true })).updated[0]!.forced);
  // A name that is a tag and a branch here is ambiguous, as in git.
  setRef(a, 'refs/heads/v1', base);
  await t.throwsAsync(push(a, 'copy', [parsePushSpec('v1')]), { instanceOf: UsageError, message: /'v1' matches more than one: refs\/tags\/v1, refs\/heads\/v1/ });
  t.deepEqual((await push(a, 'copy', [parsePushSpec('refs/heads/v1')])).updated.map((u) => u.ref), ['refs/heads/v1']);
  // HEAD pushes the branch it is on (not a branch named 'HEAD').
  await commitAt(a, src, { branch: 'images/head', tick: 2 });
  t.deepEqual((await push(a, 'copy', [parsePushSpec('HEAD')])).updated.map((u) => u.ref), ['refs/heads/images/head']);
  // --delete finds the tag by its short name on the remote.
  t.deepEqual((await push(a, 'copy', [parsePushSpec('v1-copy', true)])).updated.map((u) => u.ref), ['refs/tags/v1-copy']);

  // Fetch of a tag by name goes to refs/tags/, of a branch to refs/remotes/R/...
  await b.close();
  const c = Repository.init(path.join(bDir, '..', 'c'));
  t.teardown(() => c.close());
  addRemote(c, 'lib', aDir);
  await t.throwsAsync(fetch(c, 'lib', ['v1']), { instanceOf: UsageError, message: /'v1' matches more than one ref on .*: refs\/tags\/v1, refs\/heads\/v1/ });
  const f = await fetch(c, 'lib', ['refs/tags/v1']);
  t.deepEqual(f.updated.map((u) => u.ref), ['refs/tags/v1']);
  setRef(a, 'refs/tags/v2', base);
  const f2 = await fetch(c, 'lib', ['v2', 'images/base', 'v2:v2-mine']);
  t.deepEqual(f2.updated.map((u) => u.ref).sort(), ['refs/remotes/lib/images/base', 'refs/tags/v2', 'refs/tags/v2-mine']);
  t.is(c.refs.resolve('refs/heads/v2')?.oid, undefined);
  t.deepEqual((await fsck(c)).problems, []);
});

test('sync: a failed clone removes what it created, and only that; the retry succeeds', async (t) => {
  const { dir, aDir } = await twoRepos(t);
  const target = path.join(dir, 'new/deep/c');
  // From a missing path: nothing is left, not even the parents clone created.
  await t.throwsAsync(clone(path.join(dir, 'missing'), target));
  t.false(fs.existsSync(path.join(dir, 'new')));
  // A missing --branch is found after the objects arrived: still removed.
  await t.throwsAsync(clone(aDir, target, { branch: 'no/such' }), { message: /branch 'no\/such' does not exist/ });
  t.false(fs.existsSync(path.join(dir, 'new')));
  const ok = await clone(aDir, target, { branch: 'images/base' });
  t.is(ok.branch, 'images/base');
  // An existing empty directory stays, empty; pre-existing content is never touched.
  const empty = path.join(dir, 'empty');
  fs.mkdirSync(empty);
  await t.throwsAsync(clone(path.join(dir, 'missing'), empty));
  t.deepEqual(fs.readdirSync(empty), []);
  const full = path.join(dir, 'full');
  fs.mkdirSync(full);
  fs.writeFileSync(path.join(full, 'keep'), 'mine\n');
  await t.throwsAsync(clone(aDir, full, { branch: 'no/such' }));
  t.deepEqual(fs.readdirSync(full), ['keep']);
  // Into an existing repository: refused, and the repository is left as it was.
  await t.throwsAsync(clone(path.join(dir, 'missing'), target), { message: /already/ });
  t.true(fs.existsSync(path.join(target, '.viva/data.mdb')));
  // An aborted clone (SIGINT in the CLI) removes it too.
  const stop = new AbortController();
  stop.abort();
  await t.throwsAsync(clone(aDir, path.join(dir, 'aborted'), { signal: stop.signal }), { instanceOf: AbortedError });
  t.false(fs.existsSync(path.join(dir, 'aborted')));
});

test('sync: fetch by path into an ordinary repository brings the content too (no manifests-only filter)', async (t) => {
  const { a, aDir, b } = await twoRepos(t);
  const tip = a.refs.resolve('refs/heads/images/base')?.oid!;
  await a.refs.update([{ ref: 'refs/tags/v2', newOid: tip, expectedOld: null, message: 'tag' }], 't <t@t>');
  const r = await fetch(b, aDir);
  t.true(r.updated.some((u) => u.ref === 'refs/tags/v2'));
  t.deepEqual((await fsck(b)).problems, []);
});

/** Overwrites the stored root tree of `repo`'s images/base tip with bytes that do not decode as a tree. */
function damageRootTree(repo: Repository): string {
  const tip = repo.refs.resolve('refs/heads/images/base')?.oid!;
  const root = commitTree(repo.objects, readCommit(repo.objects, tip));
  const garbage = Buffer.alloc(80, 0x63);
  lmdb(repo).putStoredUnchecked('tree', root, encodeStored(garbage));
  return root;
}

test('sync: a damaged local tree makes push fail as repository damage naming it; a damaged remote one makes fetch fail as the remote\'s', async (t) => {
  const { a, aDir, b, bDir } = await twoRepos(t);
  const root = damageRootTree(a);
  addRemote(a, 'copy', bDir);
  const pushErr = await t.throwsAsync(push(a, 'copy', [{ src: 'images/base', dst: 'images/base' }]), { instanceOf: RepositoryCorruptError });
  t.true(pushErr!.message.includes(root), pushErr!.message);
  const fetchErr = await t.throwsAsync(fetch(b, aDir), { instanceOf: RemoteError });
  t.true(fetchErr!.message.includes(root), fetchErr!.message);
  t.deepEqual(b.refs.list('refs/'), []);
});

test('sync: a chunk of a source repository on a local path that fails verification, or is missing, makes fetch and clone fail as the remote\'s damage (RemoteError) naming it', async (t) => {
  const { dir, a, aDir, b } = await twoRepos(t);
  const [bad, gone] = [...a.index.list('chunk')];
  lmdb(a).putStoredUnchecked('chunk', bad!, encodeStored(Buffer.from('not the chunk it claims to be')));
  const e = await t.throwsAsync(fetch(b, aDir), { instanceOf: RemoteError });
  t.is(e!.message, `${aDir}: chunk '${bad}' content does not match its id (the remote repository is damaged)`);
  t.deepEqual(b.refs.list('refs/'), []);
  t.false(b.objects.hasObject('chunk', bad!));
  const ce = await t.throwsAsync(clone(aDir, path.join(dir, 'c')), { instanceOf: RemoteError });
  t.regex(ce!.message, new RegExp(`chunk '${bad}' content does not match its id \\(the remote repository is damaged\\)$`));
  t.false(fs.existsSync(path.join(dir, 'c')));
  // An object the remote's index lost.
  lmdb(a).putStoredUnchecked('chunk', bad!, undefined);
  const missing = await t.throwsAsync(fetch(b, aDir), { instanceOf: RemoteError });
  t.regex(missing!.message, new RegExp(`^${aDir}: chunk '(${bad}|${gone})' is missing \\(the remote repository is damaged\\)$`));
});

test('sync: tags/NAME and heads/NAME name refs/tags/NAME and refs/heads/NAME, as in git, for push and fetch', async (t) => {
  const { a, aDir, b, bDir } = await twoRepos(t);
  const base = a.refs.resolve('refs/heads/images/base')?.oid!;
  setRef(a, 'refs/tags/both', base);
  setRef(a, 'refs/heads/both', base);
  addRemote(a, 'copy', bDir);
  t.deepEqual((await push(a, 'copy', [parsePushSpec('tags/both')])).updated.map((u) => u.ref), ['refs/tags/both']);
  t.deepEqual((await push(a, 'copy', [parsePushSpec('heads/both')])).updated.map((u) => u.ref), ['refs/heads/both']);
  t.is(await refIn(bDir, 'refs/heads/tags/both'), undefined);
  t.is(await refIn(bDir, 'refs/heads/heads/both'), undefined);
  await b.close();
  const c = Repository.init(path.join(bDir, '..', 'c'));
  t.teardown(() => c.close());
  addRemote(c, 'lib', aDir);
  t.deepEqual((await fetch(c, 'lib', ['tags/both'])).updated.map((u) => u.ref), ['refs/tags/both']);
  t.deepEqual((await fetch(c, 'lib', ['heads/both'])).updated.map((u) => u.ref), ['refs/remotes/lib/both']);
});

test('sync: a tag moved on the remote is rejected by fetch (would clobber existing tag) unless forced or +NAME', async (t) => {
  const { src, a, aDir, b } = await twoRepos(t);
  const base = a.refs.resolve('refs/heads/images/base')?.oid!;
  setRef(a, 'refs/tags/v1', base);
  addRemote(b, 'lib', aDir);
  await fetch(b, 'lib');
  t.is(b.refs.resolve('refs/tags/v1')?.oid, base);
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'moved\n');
  const next = await commitAt(a, src, { branch: 'images/base', tick: 1 });
  setRef(a, 'refs/tags/v1', next.commit);
  for (const specs of [[], ['v1']]) {
    const r = await fetch(b, 'lib', specs);
    t.deepEqual(r.rejected, [{ ref: 'refs/tags/v1', remoteRef: 'refs/tags/v1', old: base, new: next.commit, reason: 'would clobber existing tag' }]);
    t.is(b.refs.resolve('refs/tags/v1')?.oid, base);
  }
  const plus = await fetch(b, 'lib', ['+v1']);
  t.deepEqual([plus.rejected, plus.updated.map((u) => u.ref)], [[], ['refs/tags/v1']]);
  setRef(a, 'refs/tags/v1', base);
  const forced = await fetch(b, 'lib', [], { force: true });
  t.deepEqual([forced.rejected, forced.updated.map((u) => u.ref)], [[], ['refs/tags/v1']]);
  t.is(b.refs.resolve('refs/tags/v1')?.oid, base);
});
