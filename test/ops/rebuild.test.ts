/** Tests of rebuild (replay with build avoidance), the derivation index, log --derived-from and the derivation graph. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../../src/errors.js';
import { derive } from '../../src/ops/derive.js';
import { derivationGraph, derivedFrom, showDerivation } from '../../src/ops/derivations.js';
import { rebuild } from '../../src/ops/rebuild.js';
import { cat } from '../../src/ops/ls.js';
import { rebuildIndex, checkIndex } from '../../src/ops/index-rebuild.js';
import { readCommit } from '../../src/store/typed.js';
import type { Repository } from '../../src/store/repository.js';
import { AUTHOR, TIME, collect, commitAt, tmpRepo, writeTree } from '../helpers/repo.js';

const text = async (repo: Repository, spec: string) => (await collect(cat(repo, spec))).toString();

/** A base branch, three clones of it and a clone of the first clone. */
async function fleet(t: import('ava').ExecutionContext) {
  const { repo, dir } = tmpRepo(t);
  const base = path.join(dir, 'base');
  writeTree(base, { etc: { hostname: 'base\n', motd: 'v1\n' }, usr: { lib: { libc: 'libc-1' } } });
  await commitAt(repo, base, { branch: 'base' });
  for (const n of [1, 2, 3]) {
    await derive(repo, { base: 'base', branch: `web/0${n}`, author: AUTHOR, time: TIME + 10, edits: [{ op: 'set', path: 'etc/hostname', data: Buffer.from(`web0${n}\n`) }] });
  }
  await derive(repo, { base: 'web/01', branch: 'web/01-debug', author: AUTHOR, time: TIME + 20, edits: [{ op: 'set', path: 'etc/debug', data: Buffer.from('on\n') }] });
  return { repo, dir, base };
}

test('rebuild --derived-from: every clone and the clone of a clone, in dependency order; a second run does nothing', async (t) => {
  const { repo, base } = await fleet(t);
  const heads = () => Object.fromEntries(['web/01', 'web/02', 'web/03', 'web/01-debug'].map((b) => [b, repo.refs.resolve(`refs/heads/${b}`)?.oid]));
  const before = heads();
  // Nothing moved yet: nothing to do.
  const idle = await rebuild(repo, { derivedFrom: 'base', author: AUTHOR, time: TIME + 30 });
  t.is(idle.rebuilt, 0);
  t.is(idle.unchanged, 4);
  t.deepEqual(heads(), before);

  fs.writeFileSync(path.join(base, 'usr/lib/libc'), 'libc-2');
  await commitAt(repo, base, { branch: 'base', tick: 40 });
  const r = await rebuild(repo, { derivedFrom: 'base', author: AUTHOR, time: TIME + 50 });
  t.is(r.rebuilt, 4);
  t.is(r.failed, 0);
  // The clone of a clone comes after its base branch.
  const order = r.items.map((i) => i.branch);
  t.true(order.indexOf('refs/heads/web/01') < order.indexOf('refs/heads/web/01-debug'));
  for (const b of ['web/01', 'web/02', 'web/03']) {
    t.is(await text(repo, `${b}:usr/lib/libc`), 'libc-2');
    t.deepEqual(readCommit(repo.objects, repo.refs.resolve(`refs/heads/${b}`)?.oid!).parents, [before[b]]);
  }
  t.is(await text(repo, 'web/02:etc/hostname'), 'web02\n');
  t.is(await text(repo, 'web/01-debug:etc/debug'), 'on\n');
  t.is(await text(repo, 'web/01-debug:etc/hostname'), 'web01\n');
  t.is(await text(repo, 'web/01-debug:usr/lib/libc'), 'libc-2');
  // The records name the new bases.
  t.is(showDerivation(repo, 'web/01-debug')!.bases[0]!.commit, repo.refs.resolve('refs/heads/web/01')?.oid!);
  const again = await rebuild(repo, { derivedFrom: 'base', author: AUTHOR, time: TIME + 60 });
  t.is(again.rebuilt, 0);
  t.is(again.unchanged, 4);
});

test('rebuild: a recipe that no longer applies fails its branch and skips what derives from it; the others go on', async (t) => {
  const { repo, base } = await fleet(t);
  await derive(repo, { base: 'base', branch: 'nomotd', author: AUTHOR, time: TIME + 10, edits: [{ op: 'rm', path: 'etc/motd' }] });
  await derive(repo, { base: 'nomotd', branch: 'nomotd-child', author: AUTHOR, time: TIME + 10, edits: [{ op: 'mkdir', path: 'srv' }] });
  const stuck = repo.refs.resolve('refs/heads/nomotd')?.oid;
  fs.rmSync(path.join(base, 'etc/motd'));
  await commitAt(repo, base, { branch: 'base', tick: 40 });
  const r = await rebuild(repo, { derivedFrom: 'base', author: AUTHOR, time: TIME + 50 });
  const item = (b: string) => r.items.find((i) => i.branch === `refs/heads/${b}`)!;
  t.is(item('nomotd').status, 'failed');
  t.regex(item('nomotd').reason!, /rm etc\/motd.*does not exist/);
  t.is(item('nomotd-child').status, 'skipped');
  t.is(item('web/02').status, 'rebuilt');
  t.is(r.failed, 1);
  t.is(r.skipped, 1);
  t.is(repo.refs.resolve('refs/heads/nomotd')?.oid, stuck);
});

test('rebuild --derived-from: a branch with a plain commit on top of its clone is skipped with the reason, not dropped', async (t) => {
  const { repo, dir, base } = await fleet(t);
  // web/03 gets a plain commit on top of its derived commit.
  const tree = path.join(dir, 'web3');
  writeTree(tree, { etc: { hostname: 'web03-by-hand\n' } });
  await commitAt(repo, tree, { branch: 'web/03', tick: 30 });
  const head = repo.refs.resolve('refs/heads/web/03')?.oid;
  fs.writeFileSync(path.join(base, 'etc/motd'), 'v2\n');
  await commitAt(repo, base, { branch: 'base', tick: 40 });
  const r = await rebuild(repo, { derivedFrom: 'base', author: AUTHOR, time: TIME + 50 });
  const item = r.items.find((i) => i.branch === 'refs/heads/web/03')!;
  t.is(item.status, 'skipped');
  t.regex(item.reason!, /1 commit past the derived commit [0-9a-f]{12}/);
  t.is(repo.refs.resolve('refs/heads/web/03')?.oid, head);
  t.is(r.rebuilt, 3);
  // derivations says so too.
  const g = derivationGraph(repo);
  t.deepEqual(g.stale.map((x) => [x.ref, x.commitsOnTop]), [['refs/heads/web/03', 1]]);
});

test('rebuild: layers derived on the branch itself are replayed in order; --onto into the same branch twice does nothing', async (t) => {
  const { repo, base } = await fleet(t);
  // web/02 gets a second layer made on itself.
  await derive(repo, { base: 'web/02', branch: 'web/02', author: AUTHOR, time: TIME + 15, edits: [{ op: 'set', path: 'etc/layer', data: Buffer.from('2\n') }] });
  const g = derivationGraph(repo).edges.find((e) => e.ref === 'refs/heads/web/02')!;
  t.is(g.chain.length, 2);
  t.deepEqual(g.baseRefs, [{ ref: 'refs/heads/base', behind: 0 }]);
  fs.writeFileSync(path.join(base, 'usr/lib/libc'), 'libc-3');
  await commitAt(repo, base, { branch: 'base', tick: 40 });
  const dry = await rebuild(repo, { derivedFrom: 'base', author: AUTHOR, time: TIME + 45, dryRun: true });
  // The clone of a clone would be rebuilt too, since its base branch would.
  t.is(dry.items.find((i) => i.branch === 'refs/heads/web/01-debug')!.status, 'rebuilt');
  const r = await rebuild(repo, { derivedFrom: 'base', author: AUTHOR, time: TIME + 50 });
  t.is(r.items.find((i) => i.branch === 'refs/heads/web/02')!.status, 'rebuilt');
  t.is(await text(repo, 'web/02:etc/layer'), '2\n');
  t.is(await text(repo, 'web/02:etc/hostname'), 'web02\n');
  t.is(await text(repo, 'web/02:usr/lib/libc'), 'libc-3');
  t.is((await rebuild(repo, { derivedFrom: 'base', author: AUTHOR, time: TIME + 60 })).rebuilt, 0);

  const once = await rebuild(repo, { rev: 'web/03', onto: 'base', branch: 'web/03-copy', author: AUTHOR, time: TIME + 70 });
  t.is(once.rebuilt, 1);
  const twice = await rebuild(repo, { rev: 'web/03', onto: 'base', branch: 'web/03-copy', author: AUTHOR, time: TIME + 80 });
  t.is(twice.rebuilt, 0);
  t.is(twice.unchanged, 1);
});

test('rebuild REV --onto: replays on any base; a commit without derivation is refused', async (t) => {
  const { repo, dir } = await fleet(t);
  const other = path.join(dir, 'other');
  writeTree(other, { etc: { hostname: 'other\n' } });
  await commitAt(repo, other, { branch: 'other' });
  const r = await rebuild(repo, { rev: 'web/02', onto: 'other', branch: 'web/02-other', author: AUTHOR, time: TIME + 70 });
  t.is(r.rebuilt, 1);
  t.is(await text(repo, 'web/02-other:etc/hostname'), 'web02\n');
  t.deepEqual(readCommit(repo.objects, repo.refs.resolve('refs/heads/web/02-other')?.oid!).parents, []);
  await t.throwsAsync(rebuild(repo, { rev: 'base', onto: 'other', branch: 'x', author: AUTHOR }), { instanceOf: UsageError, message: /no derivation record/ });
  await t.throwsAsync(rebuild(repo, { rev: 'web/02~0', onto: 'other', author: AUTHOR }), { instanceOf: UsageError, message: /not a branch/ });
  // The same replay again (same base tree, same recipe): the memo gives the result without applying an edit.
  const again = await rebuild(repo, { rev: 'web/02', onto: 'other', branch: 'web/02-other2', author: AUTHOR, time: TIME + 80 });
  t.true(again.items[0]!.reused);
});

test('derivations: log --derived-from follows chains; the graph says who is behind; the index survives a rebuild', async (t) => {
  const { repo, base } = await fleet(t);
  const names = derivedFrom(repo, 'base').map((e) => e.refs!.map((r) => r.replace('refs/heads/', '')).join(','));
  t.deepEqual(names.sort(), ['web/01', 'web/01-debug', 'web/02', 'web/03']);
  t.deepEqual(derivedFrom(repo, 'web/01').map((e) => e.refs), [['refs/heads/web/01-debug']]);
  fs.writeFileSync(path.join(base, 'etc/motd'), 'v2\n');
  await commitAt(repo, base, { branch: 'base', tick: 40 });
  // Derived from an older commit of base still counts.
  t.is(derivedFrom(repo, 'base').length, 4);
  const g = derivationGraph(repo, ['refs/heads/web/01']);
  t.deepEqual(g.refs, ['refs/heads/web/01', 'refs/heads/web/01-debug']);
  t.deepEqual(g.edges.find((e) => e.ref === 'refs/heads/web/01')!.baseRefs, [{ ref: 'refs/heads/base', behind: 1 }]);
  t.deepEqual(checkIndex(repo), []);
  await rebuildIndex(repo);
  t.is(derivedFrom(repo, 'base').length, 4);
});
