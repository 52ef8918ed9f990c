/** Tests of refs and reflogs: compare-and-swap updates, atomic batches, reflog order, rename, delete, symbolic refs. */
import test from 'ava';
import { RefConflictError, RefExistsError, RefNotFoundError, RepositoryCorruptError, UsageError } from '../../src/errors.js';
import {
  listReflogOids, listRefs, readReflog, readRef, renameRef, resolveRef, resolveRefChain, setSymbolicRef, updateRefs,
} from '../../src/store/refs.js';
import { tmpRepo } from '../helpers/repo.js';

const A = 'aa'.repeat(32);
const B = 'bb'.repeat(32);
const C = 'cc'.repeat(32);
const WHO = 'Viva Test <test@example.org>';

test('refs: a new repository has HEAD pointing at the unborn main branch', (t) => {
  const { repo } = tmpRepo(t);
  t.deepEqual(readRef(repo.store, 'HEAD'), { symref: 'refs/heads/main' });
  t.deepEqual(resolveRefChain(repo.store, 'HEAD'), { ref: 'refs/heads/main' });
  t.is(resolveRef(repo.store, 'HEAD'), undefined);
  t.is(resolveRefChain(repo.store, 'refs/heads/main'), undefined);
  t.deepEqual(listRefs(repo.store), []);
});

test('refs: updateRefs creates, moves and resolves refs, and HEAD follows its branch', (t) => {
  const { repo } = tmpRepo(t);
  const s = repo.store;
  updateRefs(s, [{ ref: 'refs/heads/main', newOid: A, expectedOld: null, message: 'create' }], WHO, 100);
  t.deepEqual(readRef(s, 'refs/heads/main'), { oid: A });
  t.is(resolveRef(s, 'HEAD'), A);
  t.deepEqual(resolveRefChain(s, 'HEAD'), { ref: 'refs/heads/main', oid: A });
  updateRefs(s, [{ ref: 'refs/heads/main', newOid: B, expectedOld: A, message: 'move' }], WHO, 200);
  t.is(resolveRef(s, 'HEAD'), B);
  // No expectation: unconditional.
  updateRefs(s, [{ ref: 'refs/heads/main', newOid: C, message: 'force' }], WHO, 300);
  t.is(resolveRef(s, 'refs/heads/main'), C);
});

test('refs: a compare-and-swap mismatch throws RefConflictError and changes nothing', (t) => {
  const { repo } = tmpRepo(t);
  const s = repo.store;
  updateRefs(s, [{ ref: 'refs/heads/main', newOid: A, expectedOld: null, message: 'create' }], WHO, 100);
  const before = readReflog(s, 'refs/heads/main');

  const err = t.throws(() => updateRefs(s, [{ ref: 'refs/heads/main', newOid: C, expectedOld: B, message: 'stale' }], WHO, 200), { instanceOf: RefConflictError });
  t.is(err?.code, 'ERR_REF_CONFLICT');
  t.deepEqual(err?.data, { ref: 'refs/heads/main', expected: B, actual: A });
  t.is(resolveRef(s, 'refs/heads/main'), A);
  t.deepEqual(readReflog(s, 'refs/heads/main'), before);

  // expectedOld null means "must not exist".
  const err2 = t.throws(() => updateRefs(s, [{ ref: 'refs/heads/main', newOid: C, expectedOld: null, message: 'create again' }], WHO), { instanceOf: RefConflictError });
  t.deepEqual(err2?.data, { ref: 'refs/heads/main', expected: null, actual: A });
  // Expecting a value for a ref that does not exist.
  const err3 = t.throws(() => updateRefs(s, [{ ref: 'refs/heads/other', newOid: C, expectedOld: A, message: 'x' }], WHO), { instanceOf: RefConflictError });
  t.deepEqual(err3?.data, { ref: 'refs/heads/other', expected: A, actual: null });
  t.is(readRef(s, 'refs/heads/other'), undefined);
  t.deepEqual(readReflog(s, 'refs/heads/other'), []);
});

test('refs: a batch of updates is atomic: one conflict and none of them happens', (t) => {
  const { repo } = tmpRepo(t);
  const s = repo.store;
  updateRefs(s, [
    { ref: 'refs/heads/a', newOid: A, expectedOld: null, message: 'a' },
    { ref: 'refs/heads/b', newOid: A, expectedOld: null, message: 'b' },
  ], WHO, 100);
  t.deepEqual(listRefs(s).map((r) => [r.ref, r.oid]), [['refs/heads/a', A], ['refs/heads/b', A]]);

  t.throws(() => updateRefs(s, [
    { ref: 'refs/heads/a', newOid: B, expectedOld: A, message: 'ok' },
    { ref: 'refs/tags/new', newOid: B, expectedOld: null, message: 'ok' },
    { ref: 'refs/heads/b', newOid: B, expectedOld: C, message: 'conflict' },
  ], WHO, 200), { instanceOf: RefConflictError });
  t.deepEqual(listRefs(s).map((r) => [r.ref, r.oid]), [['refs/heads/a', A], ['refs/heads/b', A]]);
  t.is(readReflog(s, 'refs/heads/a').length, 1);
  t.deepEqual(readReflog(s, 'refs/tags/new'), []);

  updateRefs(s, [
    { ref: 'refs/heads/a', newOid: B, expectedOld: A, message: 'both' },
    { ref: 'refs/heads/b', newOid: C, expectedOld: A, message: 'both' },
  ], WHO, 300);
  t.deepEqual(listRefs(s).map((r) => [r.ref, r.oid]), [['refs/heads/a', B], ['refs/heads/b', C]]);
});

test('refs: the reflog lists old, new, who, time and message, newest first', (t) => {
  const { repo } = tmpRepo(t);
  const s = repo.store;
  updateRefs(s, [{ ref: 'refs/heads/main', newOid: A, expectedOld: null, message: 'one' }], WHO, 100);
  updateRefs(s, [{ ref: 'refs/heads/main', newOid: B, expectedOld: A, message: 'two' }], 'Other <o@x>', 200);
  updateRefs(s, [{ ref: 'refs/heads/main', newOid: C, expectedOld: B, message: 'three' }], WHO, 300);
  t.deepEqual(readReflog(s, 'refs/heads/main'), [
    { old: B, new: C, who: WHO, time: 300, message: 'three' },
    { old: A, new: B, who: 'Other <o@x>', time: 200, message: 'two' },
    { old: null, new: A, who: WHO, time: 100, message: 'one' },
  ]);
  t.deepEqual(new Set(listReflogOids(s)), new Set([A, B, C]));
});

test('refs: the reflog keeps its order past ten and past 128 entries', (t) => {
  const { repo } = tmpRepo(t);
  const s = repo.store;
  const oid = (i: number) => i.toString(16).padStart(64, '0');
  for (let i = 0; i < 300; i++) updateRefs(s, [{ ref: 'refs/heads/main', newOid: oid(i + 1), message: `m${i}` }], WHO, i);
  const log = readReflog(s, 'refs/heads/main');
  t.is(log.length, 300);
  t.deepEqual(log.map((e) => e.message), Array.from({ length: 300 }, (_, i) => `m${299 - i}`));
});

test('refs: reflogs of refs whose names extend each other stay apart', (t) => {
  const { repo } = tmpRepo(t);
  const s = repo.store;
  const refs = ['refs/heads/x', 'refs/heads/x-y', 'refs/heads/x.y', 'refs/heads/x0', 'refs/heads/xy', 'refs/heads/w'];
  for (const ref of refs) updateRefs(s, [{ ref, newOid: A, message: ref }], WHO, 1);
  for (const ref of refs) t.deepEqual(readReflog(s, ref).map((e) => e.message), [ref]);
  updateRefs(s, [{ ref: 'refs/heads/x', newOid: null, message: 'delete' }], WHO, 2);
  t.deepEqual(readReflog(s, 'refs/heads/x'), []);
  for (const ref of refs.slice(1)) t.is(readReflog(s, ref).length, 1, ref);
});

test('refs: a new ref must not clash with a ref named like its directory or below it (D/F), even within one batch', (t) => {
  const { repo } = tmpRepo(t);
  const s = repo.store;
  updateRefs(s, [{ ref: 'refs/heads/a', newOid: A, message: 'a' }, { ref: 'refs/heads/x/y/z', newOid: A, message: 'z' }], WHO, 1);
  const e1 = t.throws(() => updateRefs(s, [{ ref: 'refs/heads/a/b', newOid: B, message: 'm' }], WHO), { instanceOf: UsageError });
  t.is(e1?.message, "cannot create 'a/b': 'a' exists");
  const e2 = t.throws(() => updateRefs(s, [{ ref: 'refs/heads/x/y', newOid: B, message: 'm' }], WHO), { instanceOf: UsageError });
  t.is(e2?.message, "cannot create 'x/y': 'x/y/z' exists below it");
  t.throws(() => updateRefs(s, [{ ref: 'refs/heads/x', newOid: B, message: 'm' }], WHO), { instanceOf: UsageError });
  // Within one batch: the second creation clashes with the first, and neither happens.
  t.throws(() => updateRefs(s, [
    { ref: 'refs/heads/p', newOid: B, expectedOld: null, message: 'p' },
    { ref: 'refs/heads/p/q', newOid: B, expectedOld: null, message: 'p/q' },
  ], WHO), { instanceOf: UsageError });
  t.is(readRef(s, 'refs/heads/p'), undefined);
  t.deepEqual(readReflog(s, 'refs/heads/p'), []);
  // Moving an existing ref is not a creation; siblings sharing a prefix are fine.
  updateRefs(s, [{ ref: 'refs/heads/a', newOid: C, message: 'move' }, { ref: 'refs/heads/ab', newOid: C, message: 'ab' }], WHO, 2);
  t.deepEqual(listRefs(s).map((r) => r.ref), ['refs/heads/a', 'refs/heads/ab', 'refs/heads/x/y/z']);
});

test('refs: renameRef obeys the D/F rule but may rename a ref below its own old name', (t) => {
  const { repo } = tmpRepo(t);
  const s = repo.store;
  updateRefs(s, [{ ref: 'refs/heads/a', newOid: A, message: 'a' }, { ref: 'refs/heads/m', newOid: B, message: 'm' }], WHO, 1);
  t.throws(() => renameRef(s, 'refs/heads/m', 'refs/heads/a/m', WHO), { instanceOf: UsageError, message: /'a' exists/ });
  t.is(resolveRef(s, 'refs/heads/m'), B);
  renameRef(s, 'refs/heads/a', 'refs/heads/a/b', WHO);
  t.deepEqual(listRefs(s).map((r) => r.ref), ['refs/heads/a/b', 'refs/heads/m']);
  renameRef(s, 'refs/heads/a/b', 'refs/heads/a', WHO);
  t.deepEqual(listRefs(s).map((r) => r.ref), ['refs/heads/a', 'refs/heads/m']);
});

test('refs: deleting a ref removes it and its reflog', (t) => {
  const { repo } = tmpRepo(t);
  const s = repo.store;
  updateRefs(s, [{ ref: 'refs/heads/gone', newOid: A, message: 'a' }], WHO, 1);
  updateRefs(s, [{ ref: 'refs/heads/gone', newOid: B, message: 'b' }], WHO, 2);
  t.throws(() => updateRefs(s, [{ ref: 'refs/heads/gone', newOid: null, expectedOld: A, message: 'stale delete' }], WHO), { instanceOf: RefConflictError });
  t.is(resolveRef(s, 'refs/heads/gone'), B);
  updateRefs(s, [{ ref: 'refs/heads/gone', newOid: null, expectedOld: B, message: 'delete' }], WHO, 3);
  t.is(readRef(s, 'refs/heads/gone'), undefined);
  t.deepEqual(readReflog(s, 'refs/heads/gone'), []);
  t.deepEqual([...listReflogOids(s)], []);
  // Recreated: a fresh reflog.
  updateRefs(s, [{ ref: 'refs/heads/gone', newOid: C, expectedOld: null, message: 'again' }], WHO, 4);
  t.deepEqual(readReflog(s, 'refs/heads/gone'), [{ old: null, new: C, who: WHO, time: 4, message: 'again' }]);
});

test('refs: renameRef moves the ref with its reflog and HEAD follows', (t) => {
  const { repo } = tmpRepo(t);
  const s = repo.store;
  updateRefs(s, [{ ref: 'refs/heads/main', newOid: A, message: 'one' }], WHO, 1);
  updateRefs(s, [{ ref: 'refs/heads/main', newOid: B, message: 'two' }], WHO, 2);
  setSymbolicRef(s, 'refs/alias', 'refs/heads/main');
  renameRef(s, 'refs/heads/main', 'refs/heads/debian/12/base', WHO);
  t.is(readRef(s, 'refs/heads/main'), undefined);
  t.deepEqual(readRef(s, 'refs/heads/debian/12/base'), { oid: B });
  t.deepEqual(readRef(s, 'HEAD'), { symref: 'refs/heads/debian/12/base' });
  t.deepEqual(readRef(s, 'refs/alias'), { symref: 'refs/heads/debian/12/base' });
  t.is(resolveRef(s, 'HEAD'), B);
  t.deepEqual(readReflog(s, 'refs/heads/main'), []);
  const log = readReflog(s, 'refs/heads/debian/12/base');
  t.deepEqual(log.map((e) => e.message), ['renamed refs/heads/main to refs/heads/debian/12/base', 'two', 'one']);
  t.deepEqual(log[0]!.old, B);
  t.deepEqual(log[0]!.new, B);
  t.is(log[0]!.who, WHO);
  // Later updates append after the moved entries.
  updateRefs(s, [{ ref: 'refs/heads/debian/12/base', newOid: C, expectedOld: B, message: 'three' }], WHO, 3);
  t.deepEqual(readReflog(s, 'refs/heads/debian/12/base').map((e) => e.message).slice(0, 2), ['three', 'renamed refs/heads/main to refs/heads/debian/12/base']);
});

test('refs: renameRef refuses a missing source and an existing target unless forced', (t) => {
  const { repo } = tmpRepo(t);
  const s = repo.store;
  t.throws(() => renameRef(s, 'refs/heads/nope', 'refs/heads/x', WHO), { instanceOf: RefNotFoundError });
  updateRefs(s, [{ ref: 'refs/heads/a', newOid: A, message: 'a1' }], WHO, 1);
  updateRefs(s, [{ ref: 'refs/heads/b', newOid: B, message: 'b1' }], WHO, 1);
  updateRefs(s, [{ ref: 'refs/heads/b', newOid: C, message: 'b2' }], WHO, 2);
  const err = t.throws(() => renameRef(s, 'refs/heads/a', 'refs/heads/b', WHO), { instanceOf: RefExistsError });
  t.is(err?.data.ref, 'refs/heads/b');
  t.is(resolveRef(s, 'refs/heads/a'), A);
  t.is(resolveRef(s, 'refs/heads/b'), C);
  renameRef(s, 'refs/heads/a', 'refs/heads/b', WHO, true);
  t.is(resolveRef(s, 'refs/heads/a'), undefined);
  t.is(resolveRef(s, 'refs/heads/b'), A);
  // The target's old reflog is replaced by the source's.
  t.deepEqual(readReflog(s, 'refs/heads/b').map((e) => e.message), ['renamed refs/heads/a to refs/heads/b', 'a1']);
});

test('refs: listRefs by prefix, in name order, without symbolic refs', (t) => {
  const { repo } = tmpRepo(t);
  const s = repo.store;
  const names = ['refs/heads/main', 'refs/heads/debian/12/base', 'refs/heads/debian/11/base', 'refs/heads/customers/acme/web', 'refs/tags/v1', 'refs/heads/debianx'];
  for (const ref of names) updateRefs(s, [{ ref, newOid: A, message: 'm' }], WHO, 1);
  setSymbolicRef(s, 'refs/heads/sym', 'refs/heads/main');
  t.deepEqual(listRefs(s).map((r) => r.ref), [...names].sort());
  t.deepEqual(listRefs(s, 'refs/heads/debian/').map((r) => r.ref), ['refs/heads/debian/11/base', 'refs/heads/debian/12/base']);
  t.deepEqual(listRefs(s, 'refs/tags/').map((r) => r.ref), ['refs/tags/v1']);
  t.deepEqual(listRefs(s, 'refs/nothing/'), []);
  t.true(listRefs(s, '').every((r) => r.ref !== 'HEAD' && r.ref !== 'refs/heads/sym'));
});

test('refs: a symbolic ref loop and a malformed value are reported as corruption', (t) => {
  const { repo } = tmpRepo(t);
  const s = repo.store;
  setSymbolicRef(s, 'refs/a', 'refs/b');
  setSymbolicRef(s, 'refs/b', 'refs/a');
  t.throws(() => resolveRefChain(s, 'refs/a'), { instanceOf: RepositoryCorruptError, message: /symbolic ref loop/ });
  s.env.transactionSync(() => { s.refs.putSync('refs/heads/bad', { oid: 'not-an-oid' }); });
  t.throws(() => resolveRef(s, 'refs/heads/bad'), { instanceOf: RepositoryCorruptError, message: /malformed value/ });
});
