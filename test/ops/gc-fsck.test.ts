/** Tests of fsck (rehash, structure, reachability) and gc (mark from refs and reflogs, sweep, session locking). */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RepositoryCorruptError, RepositoryLockedError } from '../../src/errors.js';
import { commit, type CommitResult } from '../../src/ops/commit.js';
import { checkout } from '../../src/ops/checkout.js';
import { cat } from '../../src/ops/ls.js';
import { fsck } from '../../src/ops/fsck.js';
import { gc } from '../../src/ops/gc.js';
import { createRef, deleteRef } from '../../src/ops/branch.js';
import { resolveSpec } from '../../src/ops/resolve.js';
import { encodeStored, type ObjectKind } from '../../src/store/object-store.js';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { hashBytes } from '../../src/model/oid.js';
import { Repository } from '../../src/store/repository.js';
import { readBlobRecord } from '../../src/store/typed.js';
import type { ImageEntry } from '../../src/formats/types.js';
import { content, entryOf, readerOf } from '../helpers/image.js';
import { AUTHOR, TIME, collect, randomBytes, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';
import { lmdb } from '../helpers/lmdb.js';

function commitFiles(repo: Repository, files: Record<string, string | Buffer>, options: { branch?: string; tick?: number } = {}): Promise<CommitResult> {
  const entries: ImageEntry[] = [entryOf('', 'dir')];
  for (const [p, data] of Object.entries(files)) entries.push(entryOf(p, 'file', { content: content(data) }));
  return commit(repo, { reader: readerOf(entries), branch: options.branch, author: AUTHOR, time: TIME + (options.tick ?? 0), message: 'm' });
}

function objectSet(repo: Repository): Set<string> {
  return new Set([...repo.index.listAll()].map((o) => `${o.kind}:${o.oid}`));
}

function putRaw(repo: Repository, kind: ObjectKind, oid: string, stored: Buffer): void {
  lmdb(repo).putStoredUnchecked(kind, oid, stored);
}

test('fsck: a good repository is clean and every object is reachable', async (t) => {
  const { repo } = tmpRepo(t);
  await commitFiles(repo, { 'big': randomBytes(600_000, 'fsck'), 'small': 'hello', 'copy': 'hello' });
  await commitFiles(repo, { 'big': randomBytes(600_000, 'fsck2') }, { tick: 1, branch: 'other' });
  const r = await fsck(repo);
  t.deepEqual(r.problems, []);
  t.true(r.ok);
  t.is(r.objects, objectSet(repo).size);
  t.is(r.reachable, r.objects);
  t.is(r.unreachable, 0);
  t.true((await fsck(repo, { connectivityOnly: true })).ok);
});

test('fsck: a corrupted chunk is reported, with the blob that uses it', async (t) => {
  const { repo } = tmpRepo(t);
  const data = randomBytes(400_000, 'corrupt');
  const c = await commitFiles(repo, { 'disk.img': data, 'ok': 'fine' });
  const blob = resolveSpec(repo, `${c.commit}:disk.img`).entry.oid!;
  const rec = readBlobRecord(repo.objects, blob);
  if (rec.form !== 'chunked') return t.fail('expected a chunked blob');
  const victim = rec.segments.find((s) => s.kind === 'chunk')!;
  if (victim.kind !== 'chunk') return t.fail();
  // Same length, one byte flipped: only rehashing can tell.
  const bad = Buffer.from(repo.objects.readObject('chunk', victim.oid));
  bad[100] ^= 0xff;
  putRaw(repo, 'chunk', victim.oid, encodeStored(bad));

  const r = await fsck(repo);
  t.false(r.ok);
  t.deepEqual(r.problems.filter((p) => p.kind === 'chunk'), [{ kind: 'chunk', oid: victim.oid, problem: 'content does not match its id' }]);
  t.deepEqual(r.problems.filter((p) => p.kind === 'blob'), [{ kind: 'blob', oid: blob, problem: 'content does not match its id' }]);
  t.is(r.problems.length, 2);
  // Connectivity only: the damage is invisible (nothing is missing).
  t.true((await fsck(repo, { connectivityOnly: true })).ok);
});

test('fsck: a chunk of the wrong length and an undecodable stored value are reported', async (t) => {
  const { repo } = tmpRepo(t);
  const c = await commitFiles(repo, { 'a': randomBytes(300_000, 'len'), 'b': randomBytes(300_000, 'zstd') });
  const chunkOf = (name: string) => {
    const rec = readBlobRecord(repo.objects, resolveSpec(repo, `${c.commit}:${name}`).entry.oid!);
    const s = rec.form === 'chunked' ? rec.segments.find((x) => x.kind === 'chunk') : undefined;
    return s?.kind === 'chunk' ? s.oid : '';
  };
  const short = chunkOf('a');
  putRaw(repo, 'chunk', short, encodeStored(Buffer.from('short')));
  const garbled = chunkOf('b');
  putRaw(repo, 'chunk', garbled, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]));
  const r = await fsck(repo);
  t.false(r.ok);
  const blobA = resolveSpec(repo, `${c.commit}:a`).entry.oid!;
  t.true(r.problems.some((p) => p.kind === 'chunk' && p.oid === short && p.problem === 'content does not match its id'));
  t.true(r.problems.some((p) => p.kind === 'blob' && p.oid === blobA && /has length 5, expected/.test(p.problem)));
  t.true(r.problems.some((p) => p.kind === 'chunk' && p.oid === garbled && /cannot decode stored value/.test(p.problem)));
  // Reading the damaged file fails loudly instead of returning wrong bytes.
  await t.throwsAsync(collect(cat(repo, `${c.commit}:a`)), { instanceOf: RepositoryCorruptError });
  await t.throwsAsync(collect(cat(repo, `${c.commit}:b`)), { instanceOf: RepositoryCorruptError });
});

test('fsck: a missing reachable tree is reported, and gc refuses to run', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, { 'etc': { 'hosts': 'localhost' }, 'f': 'x' });
  const c = await commit(repo, { source: src, message: 'm', author: AUTHOR, time: TIME });
  const etc = resolveSpec(repo, 'HEAD:etc').entry.oid!;
  lmdb(repo).putStoredUnchecked('tree', etc, undefined);
  const r = await fsck(repo);
  t.false(r.ok);
  t.deepEqual(r.problems, [{ kind: 'tree', oid: etc, problem: `missing (referenced by tree ${c.tree})` }]);
  const before = objectSet(repo);
  const err = await t.throwsAsync(() => gc(repo), { instanceOf: RepositoryCorruptError });
  t.regex(err?.message ?? '', /gc did nothing/);
  t.deepEqual(objectSet(repo), before);
});

test('fsck: a ref to a missing commit and a tree whose bytes do not match its id are reported', async (t) => {
  const { repo } = tmpRepo(t);
  const c = await commitFiles(repo, { 'f': 'x' });
  const ghost = 'ab'.repeat(32);
  await repo.refs.update([{ ref: 'refs/heads/ghost', newOid: ghost, message: 'ghost' }], AUTHOR);
  // The root tree replaced by another valid tree encoding: decodes fine, hashes wrong.
  const other = await commitFiles(repo, { 'g': 'y' }, { branch: 'other', tick: 1 });
  putRaw(repo, 'tree', c.tree, encodeStored(repo.objects.readObject('tree', other.tree)));
  const r = await fsck(repo);
  t.true(r.problems.some((p) => p.kind === 'ref' && p.oid === 'refs/heads/ghost' && p.problem === `points at missing commit ${ghost}`));
  t.true(r.problems.some((p) => p.kind === 'commit' && p.oid === ghost && /^missing/.test(p.problem)));
  t.true(r.problems.some((p) => p.kind === 'tree' && p.oid === c.tree && p.problem === 'encoding does not match its id'));
});

test('gc: removes the objects of a deleted branch, keeps everything reachable from refs and reflogs', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const v1 = await commitFiles(repo, { 'f': randomBytes(200_000, 'v1'), 'shared': 'shared' });
  const v2 = await commitFiles(repo, { 'f': randomBytes(200_000, 'v2'), 'shared': 'shared' }, { tick: 1 });
  const tmp = await commitFiles(repo, { 'scratch': randomBytes(300_000, 'tmp'), 'shared': 'shared' }, { branch: 'tmp', tick: 2 });
  await createRef(repo, { kind: 'tag', name: 'keep', rev: v2.commit });
  const before = objectSet(repo);
  const scratchBlob = resolveSpec(repo, 'tmp:scratch').entry.oid!;
  t.true(before.has(`blob:${scratchBlob}`));

  // Nothing is unreachable yet.
  t.deepEqual(await gc(repo), { removed: 0, removedBytes: 0, kept: before.size, dryRun: false });

  await deleteRef(repo, 'branch', 'tmp', true);
  const dry = await gc(repo, { dryRun: true });
  t.true(dry.dryRun);
  t.true(dry.removed >= 4, `${dry.removed}`); // commit, root tree, blob, chunks
  t.deepEqual(objectSet(repo), before);

  const r = await gc(repo);
  t.is(r.removed, dry.removed);
  t.is(r.removedBytes, dry.removedBytes);
  t.true(r.removedBytes >= 300_000);
  const after = objectSet(repo);
  t.is(after.size, before.size - r.removed);
  t.is(r.kept, after.size);
  t.false(after.has(`commit:${tmp.commit}`));
  t.false(after.has(`blob:${scratchBlob}`));
  t.false(after.has(`tree:${tmp.tree}`));
  // v1 is no branch head any more, but main's reflog names it: kept, and still checks out.
  t.true(after.has(`commit:${v1.commit}`));
  t.true(after.has(`tree:${v1.tree}`));
  t.true(after.has(`commit:${v2.commit}`));
  const out = path.join(dir, 'v1');
  await checkout(repo, { rev: v1.commit, dest: out });
  t.true(fs.readFileSync(path.join(out, 'f')).equals(randomBytes(200_000, 'v1')));
  const check = await fsck(repo);
  t.deepEqual(check.problems, []);
  t.is(check.unreachable, 0);
  // A second gc finds nothing more.
  t.is((await gc(repo)).removed, 0);
});

test('gc: objects left by an abandoned commit are swept; the stat cache forgets their blobs', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, { 'f': 'kept' });
  await commit(repo, { source: src, message: 'm', author: AUTHOR, time: TIME });
  // An orphan as a crashed commit leaves it (a chunk nothing names), and a stat cache entry naming it.
  const orphan = randomBytes(1000, 'orphan');
  const oid = 'cd'.repeat(32);
  repo.objects.writeObject('chunk', oid, orphan);
  await repo.objects.flush();
  repo.statCache.write([{ key: 'dir:/nowhere', signature: 'x', oid, size: 1, holes: [] }]);
  t.truthy(repo.statCache.read('dir:/nowhere', 'x'));
  t.is((await fsck(repo)).unreachable, 1);
  const r = await gc(repo);
  t.is(r.removed, 1);
  t.false(repo.objects.hasObject('chunk', oid));
  t.is(repo.statCache.read('dir:/nowhere', 'x'), undefined);
  t.true((await fsck(repo)).ok);
});

test('gc: refuses while another live writer session exists (RepositoryLockedError)', async (t) => {
  const { repo, dir } = tmpRepo(t);
  await commitFiles(repo, { 'f': 'x' });
  await createRef(repo, { kind: 'branch', name: 'doomed' });
  await commitFiles(repo, { 'g': randomBytes(100_000, 'doomed') }, { branch: 'doomed', tick: 1 });
  await deleteRef(repo, 'branch', 'doomed', true);
  const before = objectSet(repo);

  const repo2 = Repository.open(path.join(dir, 'repo'), 'write');
  t.teardown(() => repo2.close());
  await repo2.beginSession('commit');
  const err = await t.throwsAsync(() => gc(repo), { instanceOf: RepositoryLockedError });
  t.is(err?.code, 'ERR_LOCKED');
  t.regex(err?.message ?? '', new RegExp(`locked by commit \\(pid ${process.pid} on `));
  t.deepEqual(objectSet(repo), before);
  // The session's own handle may run gc (its own session does not count).
  await repo2.endSession();
  t.true((await gc(repo)).removed > 0);
});

test('gc: a session of a process that no longer exists is cleared and gc proceeds', async (t) => {
  const { repo } = tmpRepo(t);
  await commitFiles(repo, { 'f': 'x' });
  await commitFiles(repo, { 'g': 'y' }, { branch: 'doomed', tick: 1 });
  await deleteRef(repo, 'branch', 'doomed', true);
  // A pid above the kernel's pid_max cannot exist.
  const pidMax = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  const dead = { pid: pidMax + 1000, host: os.hostname(), started: Date.now() - 60_000, kind: 'commit' };
  lmdb(repo).env.transactionSync(() => { lmdb(repo).sessions.putSync('stale-session', dead); });
  const r = await gc(repo);
  t.true(r.removed > 0);
  t.is(lmdb(repo).sessions.get('stale-session'), undefined);
  t.true((await fsck(repo)).ok);
});

test('gc: a session recorded on another host is assumed alive', async (t) => {
  const { repo } = tmpRepo(t);
  await commitFiles(repo, { 'f': 'x' });
  const remote = { pid: 1, host: `not-${os.hostname()}`, started: Date.now(), kind: 'fetch' };
  lmdb(repo).env.transactionSync(() => { lmdb(repo).sessions.putSync('remote-session', remote); });
  await t.throwsAsync(() => gc(repo), { instanceOf: RepositoryLockedError, message: /fetch \(pid 1 on not-/ });
  t.deepEqual(lmdb(repo).sessions.get('remote-session'), remote);
});

test('gc: a commit ends its session, so gc may run right after it', async (t) => {
  const { repo } = tmpRepo(t);
  await commitFiles(repo, { 'f': 'x' });
  t.deepEqual([...lmdb(repo).sessions.getKeys({})], []);
  await t.notThrowsAsync(() => gc(repo));
});

test('gc: a repository opened again sees the result of gc', async (t) => {
  const dir = tmpDir(t);
  const repo = Repository.init(path.join(dir, 'repo'));
  try {
    await commitFiles(repo, { 'f': 'x' });
    await commitFiles(repo, { 'g': randomBytes(50_000, 'x') }, { branch: 'b', tick: 1 });
    await deleteRef(repo, 'branch', 'b', true);
    await gc(repo);
  } finally {
    await repo.close();
  }
  const again = Repository.open(path.join(dir, 'repo'), 'read');
  try {
    const r = await fsck(again);
    t.true(r.ok);
    t.is(r.unreachable, 0);
  } finally {
    await again.close();
  }
});

test('fsck: a pack whose header does not fit its value is reported', async (t) => {
  const { repo } = tmpRepo(t);
  await commitFiles(repo, { 'a': randomBytes(100_000, 'pack'), 'b': 'small' });
  const id = [...lmdb(repo).listPacks()][0]!;
  const key = Buffer.alloc(4);
  key.writeUInt32BE(id);
  const bad = Buffer.alloc(8);
  bad.writeUInt32BE(1000, 0);
  lmdb(repo).env.transactionSync(() => { lmdb(repo).packs.putSync(key, bad); });
  const r = await fsck(repo);
  t.false(r.ok);
  t.true(r.problems.some((p) => p.kind === 'pack' && p.oid === String(id) && /header larger than the pack/.test(p.problem)));
});

test('fsck: packs of an import that never wrote its index are counted as garbage, and gc reclaims them', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, { 'f': 'kept' });
  await commit(repo, { source: src, message: 'm', author: AUTHOR, time: TIME });
  t.is((await fsck(repo)).garbageBytes, 0);
  // What a commit killed before its final index transaction leaves: packs that no index entry points into.
  const importer = new LmdbStore(path.join(dir, 'repo/.viva/data.mdb'), { deferIndex: true });
  const data = randomBytes(300_000, 'interrupted');
  importer.writeObject('chunk', hashBytes(data), data);
  importer.flush();
  await importer.close();
  // Another handle wrote: let this handle's read snapshot renew (lmdb-js renews it on the next event turn).
  await new Promise((r) => setTimeout(r, 10));
  const f = await fsck(repo);
  t.true(f.ok);
  t.is(f.unreachable, 0);
  t.true(f.garbageBytes >= 300_000, String(f.garbageBytes));
  await gc(repo);
  t.is((await fsck(repo)).garbageBytes, 0);
  t.true((await fsck(repo)).ok);
});
