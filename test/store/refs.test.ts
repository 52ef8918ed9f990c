/** Tests of refs and reflogs: compare-and-swap updates, atomic batches, reflog order, rename, delete, symbolic refs. */
import test from 'ava';
import { RefConflictError, RefExistsError, RefNotFoundError, RepositoryCorruptError, UsageError } from '../../src/errors.js';
import { tmpRepo } from '../helpers/repo.js';
import { Repository } from '../../src/store/repository.js';

const A = 'aa'.repeat(32);
const B = 'bb'.repeat(32);
const C = 'cc'.repeat(32);
const WHO = 'Viva Test <test@example.org>';

test('refs: a new repository has HEAD pointing at the unborn main branch', async (t) => {
  const { repo } = tmpRepo(t);
  t.deepEqual(repo.refs.read('HEAD'), { symref: 'refs/heads/main' });
  t.deepEqual(repo.refs.resolve('HEAD'), { ref: 'refs/heads/main' });
  t.is(repo.refs.resolve('HEAD')?.oid, undefined);
  t.is(repo.refs.resolve('refs/heads/main'), undefined);
  t.deepEqual(repo.refs.list(), []);
});

test('refs: updateRefs creates, moves and resolves refs, and HEAD follows its branch', async (t) => {
  const { repo } = tmpRepo(t);
  const r = repo.refs;
  await r.update([{ ref: 'refs/heads/main', newOid: A, expectedOld: null, message: 'create' }], WHO, { time: 100 });
  t.deepEqual(r.read('refs/heads/main'), { oid: A });
  t.is(r.resolve('HEAD')?.oid, A);
  t.deepEqual(r.resolve('HEAD'), { ref: 'refs/heads/main', oid: A });
  await r.update([{ ref: 'refs/heads/main', newOid: B, expectedOld: A, message: 'move' }], WHO, { time: 200 });
  t.is(r.resolve('HEAD')?.oid, B);
  // No expectation: unconditional.
  await r.update([{ ref: 'refs/heads/main', newOid: C, message: 'force' }], WHO, { time: 300 });
  t.is(r.resolve('refs/heads/main')?.oid, C);
});

test('refs: a compare-and-swap mismatch throws RefConflictError and changes nothing', async (t) => {
  const { repo } = tmpRepo(t);
  const r = repo.refs;
  await r.update([{ ref: 'refs/heads/main', newOid: A, expectedOld: null, message: 'create' }], WHO, { time: 100 });
  const before = r.reflog('refs/heads/main');

  const err = await t.throwsAsync(r.update([{ ref: 'refs/heads/main', newOid: C, expectedOld: B, message: 'stale' }], WHO, { time: 200 }), { instanceOf: RefConflictError });
  t.is(err?.code, 'ERR_REF_CONFLICT');
  t.deepEqual(err?.data, { ref: 'refs/heads/main', expected: B, actual: A });
  t.is(r.resolve('refs/heads/main')?.oid, A);
  t.deepEqual(r.reflog('refs/heads/main'), before);

  // expectedOld null means "must not exist".
  const err2 = await t.throwsAsync(r.update([{ ref: 'refs/heads/main', newOid: C, expectedOld: null, message: 'create again' }], WHO), { instanceOf: RefConflictError });
  t.deepEqual(err2?.data, { ref: 'refs/heads/main', expected: null, actual: A });
  // Expecting a value for a ref that does not exist.
  const err3 = await t.throwsAsync(r.update([{ ref: 'refs/heads/other', newOid: C, expectedOld: A, message: 'x' }], WHO), { instanceOf: RefConflictError });
  t.deepEqual(err3?.data, { ref: 'refs/heads/other', expected: A, actual: null });
  t.is(r.read('refs/heads/other'), undefined);
  t.deepEqual(r.reflog('refs/heads/other'), []);
});

test('refs: a batch of updates is atomic: one conflict and none of them happens', async (t) => {
  const { repo } = tmpRepo(t);
  const r = repo.refs;
  await r.update([
    { ref: 'refs/heads/a', newOid: A, expectedOld: null, message: 'a' },
    { ref: 'refs/heads/b', newOid: A, expectedOld: null, message: 'b' },
  ], WHO, { time: 100 });
  t.deepEqual(r.list().map((r) => [r.ref, r.oid]), [['refs/heads/a', A], ['refs/heads/b', A]]);

  await t.throwsAsync(r.update([
    { ref: 'refs/heads/a', newOid: B, expectedOld: A, message: 'ok' },
    { ref: 'refs/tags/new', newOid: B, expectedOld: null, message: 'ok' },
    { ref: 'refs/heads/b', newOid: B, expectedOld: C, message: 'conflict' },
  ], WHO, { time: 200 }), { instanceOf: RefConflictError });
  t.deepEqual(r.list().map((r) => [r.ref, r.oid]), [['refs/heads/a', A], ['refs/heads/b', A]]);
  t.is(r.reflog('refs/heads/a').length, 1);
  t.deepEqual(r.reflog('refs/tags/new'), []);

  await r.update([
    { ref: 'refs/heads/a', newOid: B, expectedOld: A, message: 'both' },
    { ref: 'refs/heads/b', newOid: C, expectedOld: A, message: 'both' },
  ], WHO, { time: 300 });
  t.deepEqual(r.list().map((r) => [r.ref, r.oid]), [['refs/heads/a', B], ['refs/heads/b', C]]);
});

test('refs: the reflog lists old, new, who, time and message, newest first', async (t) => {
  const { repo } = tmpRepo(t);
  const r = repo.refs;
  await r.update([{ ref: 'refs/heads/main', newOid: A, expectedOld: null, message: 'one' }], WHO, { time: 100 });
  await r.update([{ ref: 'refs/heads/main', newOid: B, expectedOld: A, message: 'two' }], 'Other <o@x>', { time: 200 });
  await r.update([{ ref: 'refs/heads/main', newOid: C, expectedOld: B, message: 'three' }], WHO, { time: 300 });
  t.deepEqual(r.reflog('refs/heads/main'), [
    { old: B, new: C, who: WHO, time: 300, message: 'three' },
    { old: A, new: B, who: 'Other <o@x>', time: 200, message: 'two' },
    { old: null, new: A, who: WHO, time: 100, message: 'one' },
  ]);
  t.deepEqual(new Set(r.reflogOids()), new Set([A, B, C]));
});

test('refs: the reflog keeps its order past ten and past 128 entries', async (t) => {
  const { repo } = tmpRepo(t);
  const r = repo.refs;
  const oid = (i: number) => i.toString(16).padStart(64, '0');
  for (let i = 0; i < 300; i++) await r.update([{ ref: 'refs/heads/main', newOid: oid(i + 1), message: `m${i}` }], WHO, { time: i });
  const log = r.reflog('refs/heads/main');
  t.is(log.length, 300);
  t.deepEqual(log.map((e) => e.message), Array.from({ length: 300 }, (_, i) => `m${299 - i}`));
});

test('refs: reflogs of refs whose names extend each other stay apart', async (t) => {
  const { repo } = tmpRepo(t);
  const r = repo.refs;
  const refs = ['refs/heads/x', 'refs/heads/x-y', 'refs/heads/x.y', 'refs/heads/x0', 'refs/heads/xy', 'refs/heads/w'];
  for (const ref of refs) await r.update([{ ref, newOid: A, message: ref }], WHO, { time: 1 });
  for (const ref of refs) t.deepEqual(r.reflog(ref).map((e) => e.message), [ref]);
  await r.update([{ ref: 'refs/heads/x', newOid: null, message: 'delete' }], WHO, { time: 2 });
  t.deepEqual(r.reflog('refs/heads/x'), []);
  for (const ref of refs.slice(1)) t.is(r.reflog(ref).length, 1, ref);
});

test('refs: a new ref must not clash with a ref named like its directory or below it (D/F), even within one batch', async (t) => {
  const { repo } = tmpRepo(t);
  const r = repo.refs;
  await r.update([{ ref: 'refs/heads/a', newOid: A, message: 'a' }, { ref: 'refs/heads/x/y/z', newOid: A, message: 'z' }], WHO, { time: 1 });
  const e1 = await t.throwsAsync(r.update([{ ref: 'refs/heads/a/b', newOid: B, message: 'm' }], WHO), { instanceOf: UsageError });
  t.is(e1?.message, "cannot create 'a/b': 'a' exists");
  const e2 = await t.throwsAsync(r.update([{ ref: 'refs/heads/x/y', newOid: B, message: 'm' }], WHO), { instanceOf: UsageError });
  t.is(e2?.message, "cannot create 'x/y': 'x/y/z' exists below it");
  await t.throwsAsync(r.update([{ ref: 'refs/heads/x', newOid: B, message: 'm' }], WHO), { instanceOf: UsageError });
  // Within one batch: the second creation clashes with the first, and neither happens.
  await t.throwsAsync(r.update([
    { ref: 'refs/heads/p', newOid: B, expectedOld: null, message: 'p' },
    { ref: 'refs/heads/p/q', newOid: B, expectedOld: null, message: 'p/q' },
  ], WHO), { instanceOf: UsageError });
  t.is(r.read('refs/heads/p'), undefined);
  t.deepEqual(r.reflog('refs/heads/p'), []);
  // Moving an existing ref is not a creation; siblings sharing a prefix are fine.
  await r.update([{ ref: 'refs/heads/a', newOid: C, message: 'move' }, { ref: 'refs/heads/ab', newOid: C, message: 'ab' }], WHO, { time: 2 });
  t.deepEqual(r.list().map((r) => r.ref), ['refs/heads/a', 'refs/heads/ab', 'refs/heads/x/y/z']);
});

test('refs: renameRef obeys the D/F rule but may rename a ref below its own old name', async (t) => {
  const { repo } = tmpRepo(t);
  const r = repo.refs;
  await r.update([{ ref: 'refs/heads/a', newOid: A, message: 'a' }, { ref: 'refs/heads/m', newOid: B, message: 'm' }], WHO, { time: 1 });
  await t.throwsAsync(r.rename('refs/heads/m', 'refs/heads/a/m', WHO), { instanceOf: UsageError, message: /'a' exists/ });
  t.is(r.resolve('refs/heads/m')?.oid, B);
  await r.rename('refs/heads/a', 'refs/heads/a/b', WHO);
  t.deepEqual(r.list().map((r) => r.ref), ['refs/heads/a/b', 'refs/heads/m']);
  await r.rename('refs/heads/a/b', 'refs/heads/a', WHO);
  t.deepEqual(r.list().map((r) => r.ref), ['refs/heads/a', 'refs/heads/m']);
});

test('refs: deleting a ref removes it and its reflog', async (t) => {
  const { repo } = tmpRepo(t);
  const r = repo.refs;
  await r.update([{ ref: 'refs/heads/gone', newOid: A, message: 'a' }], WHO, { time: 1 });
  await r.update([{ ref: 'refs/heads/gone', newOid: B, message: 'b' }], WHO, { time: 2 });
  await t.throwsAsync(r.update([{ ref: 'refs/heads/gone', newOid: null, expectedOld: A, message: 'stale delete' }], WHO), { instanceOf: RefConflictError });
  t.is(r.resolve('refs/heads/gone')?.oid, B);
  await r.update([{ ref: 'refs/heads/gone', newOid: null, expectedOld: B, message: 'delete' }], WHO, { time: 3 });
  t.is(r.read('refs/heads/gone'), undefined);
  t.deepEqual(r.reflog('refs/heads/gone'), []);
  t.deepEqual([...r.reflogOids()], []);
  // Recreated: a fresh reflog.
  await r.update([{ ref: 'refs/heads/gone', newOid: C, expectedOld: null, message: 'again' }], WHO, { time: 4 });
  t.deepEqual(r.reflog('refs/heads/gone'), [{ old: null, new: C, who: WHO, time: 4, message: 'again' }]);
});

test('refs: renameRef moves the ref with its reflog and HEAD follows', async (t) => {
  const { repo } = tmpRepo(t);
  const r = repo.refs;
  await r.update([{ ref: 'refs/heads/main', newOid: A, message: 'one' }], WHO, { time: 1 });
  await r.update([{ ref: 'refs/heads/main', newOid: B, message: 'two' }], WHO, { time: 2 });
  await r.setSymbolic('refs/alias', 'refs/heads/main');
  await r.rename('refs/heads/main', 'refs/heads/debian/12/base', WHO);
  t.is(r.read('refs/heads/main'), undefined);
  t.deepEqual(r.read('refs/heads/debian/12/base'), { oid: B });
  t.deepEqual(r.read('HEAD'), { symref: 'refs/heads/debian/12/base' });
  t.deepEqual(r.read('refs/alias'), { symref: 'refs/heads/debian/12/base' });
  t.is(r.resolve('HEAD')?.oid, B);
  t.deepEqual(r.reflog('refs/heads/main'), []);
  const log = r.reflog('refs/heads/debian/12/base');
  t.deepEqual(log.map((e) => e.message), ['renamed refs/heads/main to refs/heads/debian/12/base', 'two', 'one']);
  t.deepEqual(log[0]!.old, B);
  t.deepEqual(log[0]!.new, B);
  t.is(log[0]!.who, WHO);
  // Later updates append after the moved entries.
  await r.update([{ ref: 'refs/heads/debian/12/base', newOid: C, expectedOld: B, message: 'three' }], WHO, { time: 3 });
  t.deepEqual(r.reflog('refs/heads/debian/12/base').map((e) => e.message).slice(0, 2), ['three', 'renamed refs/heads/main to refs/heads/debian/12/base']);
});

test('refs: renameRef refuses a missing source and an existing target unless forced', async (t) => {
  const { repo } = tmpRepo(t);
  const r = repo.refs;
  await t.throwsAsync(r.rename('refs/heads/nope', 'refs/heads/x', WHO), { instanceOf: RefNotFoundError });
  await r.update([{ ref: 'refs/heads/a', newOid: A, message: 'a1' }], WHO, { time: 1 });
  await r.update([{ ref: 'refs/heads/b', newOid: B, message: 'b1' }], WHO, { time: 1 });
  await r.update([{ ref: 'refs/heads/b', newOid: C, message: 'b2' }], WHO, { time: 2 });
  const err = await t.throwsAsync(r.rename('refs/heads/a', 'refs/heads/b', WHO), { instanceOf: RefExistsError });
  t.is(err?.data.ref, 'refs/heads/b');
  t.is(r.resolve('refs/heads/a')?.oid, A);
  t.is(r.resolve('refs/heads/b')?.oid, C);
  await r.rename('refs/heads/a', 'refs/heads/b', WHO, true);
  t.is(r.resolve('refs/heads/a')?.oid, undefined);
  t.is(r.resolve('refs/heads/b')?.oid, A);
  // The target's old reflog is replaced by the source's.
  t.deepEqual(r.reflog('refs/heads/b').map((e) => e.message), ['renamed refs/heads/a to refs/heads/b', 'a1']);
});

test('refs: listRefs by prefix, in name order, without symbolic refs', async (t) => {
  const { repo } = tmpRepo(t);
  const r = repo.refs;
  const names = ['refs/heads/main', 'refs/heads/debian/12/base', 'refs/heads/debian/11/base', 'refs/heads/customers/acme/web', 'refs/tags/v1', 'refs/heads/debianx'];
  for (const ref of names) await r.update([{ ref, newOid: A, message: 'm' }], WHO, { time: 1 });
  await r.setSymbolic('refs/heads/sym', 'refs/heads/main');
  t.deepEqual(r.list().map((r) => r.ref), [...names].sort());
  t.deepEqual(r.list('refs/heads/debian/').map((r) => r.ref), ['refs/heads/debian/11/base', 'refs/heads/debian/12/base']);
  t.deepEqual(r.list('refs/tags/').map((r) => r.ref), ['refs/tags/v1']);
  t.deepEqual(r.list('refs/nothing/'), []);
  t.true(r.list('').every((r) => r.ref !== 'HEAD' && r.ref !== 'refs/heads/sym'));
});

test('refs: a symbolic ref loop and a malformed value are reported as corruption', async (t) => {
  const { repo } = tmpRepo(t);
  const s = Repository.lmdbOf(repo);
  const r = repo.refs;
  await r.setSymbolic('refs/a', 'refs/b');
  await r.setSymbolic('refs/b', 'refs/a');
  t.throws(() => r.resolve('refs/a'), { instanceOf: RepositoryCorruptError, message: /symbolic ref loop/ });
  s.env.transactionSync(() => { s.refs.putSync('refs/heads/bad', { oid: 'not-an-oid' }); });
  t.throws(() => r.resolve('refs/heads/bad')?.oid, { instanceOf: RepositoryCorruptError, message: /malformed value/ });
});
