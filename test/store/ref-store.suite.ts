/**
 * The conformance suite of `RefStore`: every implementation (LMDB today; memory and S3 later) must pass the same
 * tests. A runner file calls `refStoreSuite(harness)`; this file registers no test on its own.
 */
import type { ExecutionContext } from 'ava';
import { RefConflictError, RefExistsError, RefNotFoundError, RepositoryCorruptError, UsageError } from '../../src/errors.js';
import type { RefStore } from '../../src/store/interfaces.js';
import { suiteTests, type Harness } from './suite.js';

const A = 'aa'.repeat(32);
const B = 'bb'.repeat(32);
const C = 'cc'.repeat(32);
const WHO = 'Viva Test <test@example.org>';
const OTHER = 'Other <o@example.org>';

type Body = (t: ExecutionContext, refs: RefStore, reopen: () => Promise<RefStore>) => Promise<void>;

/** Registers the RefStore conformance tests for `h`. */
export function refStoreSuite(h: Harness<RefStore>): void {
  const test_ = suiteTests(h);
  const it = (name: string, body: Body): void => test_(name, (t, made) => body(t, made.it, made.reopen));

  it('create with expectedOld null; a second create conflicts and changes nothing', async (t, refs) => {
    await refs.update([{ ref: 'refs/heads/main', newOid: A, expectedOld: null, message: 'create' }], WHO, { time: 100 });
    t.deepEqual(refs.read('refs/heads/main'), { oid: A });
    t.deepEqual(refs.resolve('refs/heads/main'), { ref: 'refs/heads/main', oid: A });
    const err = await t.throwsAsync(refs.update([{ ref: 'refs/heads/main', newOid: B, expectedOld: null, message: 'again' }], WHO), { instanceOf: RefConflictError });
    t.is(err?.code, 'ERR_REF_CONFLICT');
    t.deepEqual(refs.read('refs/heads/main'), { oid: A });
    t.is(refs.reflog('refs/heads/main').length, 1);
  });

  it('move with the expected old value; a stale expectation conflicts; no expectation moves unconditionally', async (t, refs) => {
    await refs.update([{ ref: 'refs/heads/main', newOid: A, expectedOld: null, message: 'one' }], WHO, { time: 1 });
    await refs.update([{ ref: 'refs/heads/main', newOid: B, expectedOld: A, message: 'two' }], WHO, { time: 2 });
    const before = refs.reflog('refs/heads/main');
    await t.throwsAsync(refs.update([{ ref: 'refs/heads/main', newOid: C, expectedOld: A, message: 'stale' }], WHO), { instanceOf: RefConflictError });
    t.is(refs.resolve('refs/heads/main')?.oid, B);
    t.deepEqual(refs.reflog('refs/heads/main'), before);
    // Expecting a value of a ref that does not exist is a conflict too.
    await t.throwsAsync(refs.update([{ ref: 'refs/heads/none', newOid: C, expectedOld: A, message: 'x' }], WHO), { instanceOf: RefConflictError });
    t.is(refs.read('refs/heads/none'), undefined);
    await refs.update([{ ref: 'refs/heads/main', newOid: C, message: 'force' }], WHO, { time: 3 });
    t.is(refs.resolve('refs/heads/main')?.oid, C);
  });

  it('delete with the expected value removes the ref and its reflog; a stale delete conflicts', async (t, refs) => {
    await refs.update([{ ref: 'refs/heads/gone', newOid: A, message: 'a' }], WHO, { time: 1 });
    await refs.update([{ ref: 'refs/heads/gone', newOid: B, message: 'b' }], WHO, { time: 2 });
    await t.throwsAsync(refs.update([{ ref: 'refs/heads/gone', newOid: null, expectedOld: A, message: 'stale' }], WHO), { instanceOf: RefConflictError });
    t.is(refs.resolve('refs/heads/gone')?.oid, B);
    await refs.update([{ ref: 'refs/heads/gone', newOid: null, expectedOld: B, message: 'delete' }], WHO, { time: 3 });
    t.is(refs.read('refs/heads/gone'), undefined);
    t.deepEqual(refs.reflog('refs/heads/gone'), []);
    t.deepEqual(refs.list(), []);
    // Created again, it starts a fresh reflog.
    await refs.update([{ ref: 'refs/heads/gone', newOid: C, expectedOld: null, message: 'again' }], WHO, { time: 4 });
    t.deepEqual(refs.reflog('refs/heads/gone'), [{ old: null, new: C, who: WHO, time: 4, message: 'again' }]);
  });

  it('symbolic refs: HEAD on an unborn branch, then following it; updates of its branch are in HEAD\'s reflog', async (t, refs) => {
    await refs.setSymbolic('HEAD', 'refs/heads/main');
    t.deepEqual(refs.read('HEAD'), { symref: 'refs/heads/main' });
    t.deepEqual(refs.resolve('HEAD'), { ref: 'refs/heads/main' });
    t.is(refs.resolve('refs/heads/main'), undefined);
    await refs.update([{ ref: 'refs/heads/main', newOid: A, expectedOld: null, message: 'first' }], WHO, { time: 10 });
    t.deepEqual(refs.resolve('HEAD'), { ref: 'refs/heads/main', oid: A });
    t.deepEqual(refs.reflog('HEAD'), [{ old: null, new: A, who: WHO, time: 10, message: 'first' }]);
    // Symbolic refs are not listed; HEAD's own reflog does not count as gc roots.
    t.deepEqual(refs.list(''), [{ ref: 'refs/heads/main', oid: A }]);
    await refs.update([{ ref: 'refs/heads/other', newOid: B, message: 'other' }], WHO, { time: 11 });
    t.is(refs.reflog('HEAD').length, 1);
    t.deepEqual(new Set(refs.reflogOids()), new Set([A, B]));
  });

  it('a symbolic ref loop and a dangling chain', async (t, refs) => {
    await refs.setSymbolic('refs/a', 'refs/b');
    t.deepEqual(refs.resolve('refs/a'), { ref: 'refs/b' });
    await refs.setSymbolic('refs/b', 'refs/a');
    t.throws(() => refs.resolve('refs/a'), { instanceOf: RepositoryCorruptError, message: /symbolic ref loop/ });
  });

  it('moveHead detaches at a commit and returns to a branch, recording checkouts in HEAD\'s reflog', async (t, refs) => {
    await refs.setSymbolic('HEAD', 'refs/heads/main');
    // To an unborn branch: no entry (HEAD names no commit).
    await refs.moveHead({ symref: 'refs/heads/unborn' }, WHO, 'checkout: moving from main to unborn', 1);
    t.deepEqual(refs.read('HEAD'), { symref: 'refs/heads/unborn' });
    t.deepEqual(refs.reflog('HEAD'), []);
    await refs.update([{ ref: 'refs/heads/main', newOid: A, message: 'a' }], WHO, { time: 2 });
    await refs.moveHead({ oid: B }, WHO, 'checkout: moving from unborn to bbbb', 3);
    t.deepEqual(refs.read('HEAD'), { oid: B });
    t.deepEqual(refs.resolve('HEAD'), { ref: 'HEAD', oid: B });
    await refs.moveHead({ symref: 'refs/heads/main' }, WHO, 'checkout: moving from bbbb to main', 4);
    t.deepEqual(refs.reflog('HEAD'), [
      { old: B, new: A, who: WHO, time: 4, message: 'checkout: moving from bbbb to main' },
      { old: null, new: B, who: WHO, time: 3, message: 'checkout: moving from unborn to bbbb' },
    ]);
  });

  it('update with `head` points HEAD at the branch in the same update', async (t, refs) => {
    await refs.setSymbolic('HEAD', 'refs/heads/main');
    await refs.update([{ ref: 'refs/heads/main', newOid: A, expectedOld: null, message: 'commit: a' }], WHO, { time: 1 });
    await refs.update([{ ref: 'refs/heads/web', newOid: B, expectedOld: null, message: 'commit: web' }], WHO, { time: 2, head: 'refs/heads/web' });
    t.deepEqual(refs.read('HEAD'), { symref: 'refs/heads/web' });
    // The branch was unborn when HEAD moved to it: no checkout entry, then the commit.
    t.deepEqual(refs.reflog('HEAD').map((e) => [e.old, e.new, e.message]), [[null, B, 'commit: web'], [null, A, 'commit: a']]);
    // Back to an existing branch: a checkout entry, then the update of the branch.
    await refs.update([{ ref: 'refs/heads/main', newOid: C, expectedOld: A, message: 'commit: c' }], WHO, { time: 3, head: 'refs/heads/main' });
    t.deepEqual(refs.read('HEAD'), { symref: 'refs/heads/main' });
    t.deepEqual(refs.reflog('HEAD').slice(0, 2).map((e) => [e.old, e.new, e.message]), [[A, C, 'commit: c'], [B, A, 'checkout: moving from web to main']]);
    // A conflict leaves HEAD where it was (all or none).
    await t.throwsAsync(refs.update([{ ref: 'refs/heads/x', newOid: C, expectedOld: A, message: 'lost' }], WHO, { head: 'refs/heads/x' }), { instanceOf: RefConflictError });
    if (refs.atomicMulti) t.deepEqual(refs.read('HEAD'), { symref: 'refs/heads/main' });
  });

  it('list by prefix, in name order, without symbolic refs or siblings that share a prefix', async (t, refs) => {
    const names = ['refs/heads/main', 'refs/heads/debian/12/base', 'refs/heads/debian/11/base', 'refs/heads/ab', 'refs/tags/v1', 'refs/remotes/origin/main'];
    for (const ref of names) await refs.update([{ ref, newOid: A, message: 'm' }], WHO, { time: 1 });
    await refs.setSymbolic('refs/heads/sym', 'refs/heads/main');
    t.deepEqual(refs.list().map((r) => r.ref), [...names].sort());
    t.deepEqual(refs.list('refs/heads/debian/').map((r) => r.ref), ['refs/heads/debian/11/base', 'refs/heads/debian/12/base']);
    t.deepEqual(refs.list('refs/tags/'), [{ ref: 'refs/tags/v1', oid: A }]);
    t.deepEqual(refs.list('refs/nothing/'), []);
    t.deepEqual(refs.list('refs/heads/a').map((r) => r.ref), ['refs/heads/ab']);
  });

  it('reflog: old, new, who, time and message, newest first, also past 128 entries; reflogOids names every value', async (t, refs) => {
    await refs.update([{ ref: 'refs/heads/main', newOid: A, expectedOld: null, message: 'one' }], WHO, { time: 100 });
    await refs.update([{ ref: 'refs/heads/main', newOid: B, expectedOld: A, message: 'two' }], OTHER, { time: 200 });
    t.deepEqual(refs.reflog('refs/heads/main'), [
      { old: A, new: B, who: OTHER, time: 200, message: 'two' },
      { old: null, new: A, who: WHO, time: 100, message: 'one' },
    ]);
    const oid = (i: number) => i.toString(16).padStart(64, '0');
    for (let i = 0; i < 140; i++) await refs.update([{ ref: 'refs/heads/long', newOid: oid(i + 1), message: `m${i}` }], WHO, { time: i });
    const log = refs.reflog('refs/heads/long');
    t.is(log.length, 140);
    t.deepEqual(log.slice(0, 3).map((e) => e.message), ['m139', 'm138', 'm137']);
    t.is(log.at(-1)?.message, 'm0');
    // Reflogs of refs whose names extend each other stay apart.
    t.is(refs.reflog('refs/heads/mai').length, 0);
    t.true(new Set(refs.reflogOids()).has(A));
  });

  it('dropReflogEntries removes the entries whose new value is refused and counts them', async (t, refs) => {
    await refs.update([{ ref: 'refs/heads/main', newOid: A, message: 'a' }], WHO, { time: 1 });
    await refs.update([{ ref: 'refs/heads/main', newOid: B, message: 'b' }], WHO, { time: 2 });
    await refs.update([{ ref: 'refs/heads/main', newOid: C, message: 'c' }], WHO, { time: 3 });
    t.is(await refs.dropReflogEntries('refs/heads/main', (oid) => oid !== B), 1);
    t.deepEqual(refs.reflog('refs/heads/main').map((e) => e.message), ['c', 'a']);
    t.is(await refs.dropReflogEntries('refs/heads/none', () => false), 0);
  });

  it('rename moves the ref with its reflog, symbolic refs follow; missing source and existing target are refused', async (t, refs) => {
    await refs.setSymbolic('HEAD', 'refs/heads/main');
    await refs.update([{ ref: 'refs/heads/main', newOid: A, message: 'one' }], WHO, { time: 1 });
    await refs.update([{ ref: 'refs/heads/b', newOid: B, message: 'b' }], WHO, { time: 1 });
    await refs.rename('refs/heads/main', 'refs/heads/debian/12/base', WHO);
    t.is(refs.read('refs/heads/main'), undefined);
    t.deepEqual(refs.read('refs/heads/debian/12/base'), { oid: A });
    t.deepEqual(refs.read('HEAD'), { symref: 'refs/heads/debian/12/base' });
    t.deepEqual(refs.reflog('refs/heads/main'), []);
    t.deepEqual(refs.reflog('refs/heads/debian/12/base').map((e) => e.message), ['renamed refs/heads/main to refs/heads/debian/12/base', 'one']);
    await t.throwsAsync(refs.rename('refs/heads/nope', 'refs/heads/x', WHO), { instanceOf: RefNotFoundError });
    await t.throwsAsync(refs.rename('refs/heads/b', 'refs/heads/debian/12/base', WHO), { instanceOf: RefExistsError });
    t.is(refs.resolve('refs/heads/b')?.oid, B);
    await refs.rename('refs/heads/b', 'refs/heads/debian/12/base', WHO, true);
    t.is(refs.resolve('refs/heads/debian/12/base')?.oid, B);
    t.deepEqual(refs.reflog('refs/heads/debian/12/base').map((e) => e.message), ['renamed refs/heads/b to refs/heads/debian/12/base', 'b']);
  });

  it('D/F rule: `a` and `a/b` cannot coexist, by update or rename, but `a` may be renamed to `a/b`', async (t, refs) => {
    await refs.update([{ ref: 'refs/heads/a', newOid: A, message: 'a' }, { ref: 'refs/heads/x/y/z', newOid: A, message: 'z' }], WHO, { time: 1 });
    const e1 = await t.throwsAsync(refs.update([{ ref: 'refs/heads/a/b', newOid: B, message: 'm' }], WHO), { instanceOf: UsageError });
    t.regex(e1!.message, /'a' exists/);
    const e2 = await t.throwsAsync(refs.update([{ ref: 'refs/heads/x/y', newOid: B, message: 'm' }], WHO), { instanceOf: UsageError });
    t.regex(e2!.message, /'x\/y\/z' exists below it/);
    await t.throwsAsync(refs.update([{ ref: 'refs/heads/x', newOid: B, message: 'm' }], WHO), { instanceOf: UsageError });
    t.is(refs.read('refs/heads/a/b'), undefined);
    await refs.update([{ ref: 'refs/heads/m', newOid: B, message: 'm' }], WHO, { time: 1 });
    await t.throwsAsync(refs.rename('refs/heads/m', 'refs/heads/a/m', WHO), { instanceOf: UsageError, message: /'a' exists/ });
    t.is(refs.resolve('refs/heads/m')?.oid, B);
    await refs.rename('refs/heads/a', 'refs/heads/a/b', WHO);
    await refs.rename('refs/heads/a/b', 'refs/heads/a', WHO);
    t.deepEqual(refs.list().map((r) => r.ref), ['refs/heads/a', 'refs/heads/m', 'refs/heads/x/y/z']);
  });

  it('a batch with one conflict: all or none when atomicMulti, else the refs before the conflict move', async (t, refs) => {
    await refs.update([{ ref: 'refs/heads/a', newOid: A, message: 'a' }, { ref: 'refs/heads/b', newOid: A, message: 'b' }], WHO, { time: 1 });
    await t.throwsAsync(refs.update([
      { ref: 'refs/heads/a', newOid: B, expectedOld: A, message: 'ok' },
      { ref: 'refs/heads/b', newOid: B, expectedOld: C, message: 'stale' },
    ], WHO), { instanceOf: RefConflictError });
    t.is(refs.resolve('refs/heads/b')?.oid, A);
    t.is(refs.resolve('refs/heads/a')?.oid, refs.atomicMulti ? A : B);
    if (refs.atomicMulti) t.is(refs.reflog('refs/heads/a').length, 1);
  });

  it('refresh reports no change when only this store wrote', async (t, refs) => {
    await refs.update([{ ref: 'refs/heads/main', newOid: A, message: 'a' }], WHO, { time: 1 });
    t.deepEqual(await refs.refresh(), { changed: [] });
    t.is(refs.resolve('refs/heads/main')?.oid, A);
  });

  it('reopen: refs, symbolic refs and reflogs are durable', async (t, refs, reopen) => {
    await refs.setSymbolic('HEAD', 'refs/heads/main');
    await refs.update([{ ref: 'refs/heads/main', newOid: A, expectedOld: null, message: 'one' }], WHO, { time: 1 });
    await refs.update([{ ref: 'refs/heads/main', newOid: B, expectedOld: A, message: 'two' }], WHO, { time: 2 });
    await refs.update([{ ref: 'refs/tags/v1', newOid: C, message: 'tag' }], WHO, { time: 3 });
    const again = await reopen();
    t.deepEqual(again.read('HEAD'), { symref: 'refs/heads/main' });
    t.deepEqual(again.list(), [{ ref: 'refs/heads/main', oid: B }, { ref: 'refs/tags/v1', oid: C }]);
    t.deepEqual(again.reflog('refs/heads/main').map((e) => e.message), ['two', 'one']);
    t.deepEqual(again.reflog('HEAD').map((e) => e.message), ['two', 'one']);
    await t.throwsAsync(again.update([{ ref: 'refs/heads/main', newOid: C, expectedOld: A, message: 'stale' }], WHO), { instanceOf: RefConflictError });
  });
}
