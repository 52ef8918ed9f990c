/** Tests of the interface views a local Repository gives (repo.index, contentIndex, packageIndex, packs, config). */
import test from 'ava';
import path from 'node:path';
import { tmpRepo, commitAt, writeTree } from '../helpers/repo.js';
import { indexKey } from '../../src/store/content-index.js';
import { Repository } from '../../src/store/repository.js';

test('repository views: the object index, packs, content index and config describe what a commit stored', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, { etc: { hostname: 'box\n' }, 'README': 'hello\n' });
  const c = await commitAt(repo, src);
  t.true(repo.index.has('commit', c.commit));
  t.false(repo.index.has('commit', 'ee'.repeat(32)));
  t.deepEqual([...repo.index.list('commit')], [c.commit]);
  t.deepEqual([...repo.index.list('commit', c.commit.slice(0, 5))], [c.commit]);
  t.deepEqual([...repo.index.list('commit', c.commit[0] === 'f' ? '0' : 'f')].filter((o) => o === c.commit), []);
  const all = [...repo.index.listAll()];
  t.true(all.some((o) => o.kind === 'tree' && o.oid === c.tree));
  const loc = repo.index.locate('commit', c.commit)!;
  t.regex(loc.pack, /^\d+$/);
  const packs = [];
  for await (const p of repo.packs.list()) packs.push(p);
  t.true(packs.some((p) => p.id === loc.pack && p.size >= loc.offset + loc.length));
  t.is((await repo.packs.getRange(loc.pack, loc.offset, loc.length)).length, loc.length);
  t.is((await repo.packs.get(loc.pack))!.length, packs.find((p) => p.id === loc.pack)!.size);
  t.is(await repo.packs.get('999999'), undefined);
  // The commit is indexed under its root tree; the tree's files under their parent.
  t.deepEqual(repo.contentIndex.roots(indexKey('tree', c.tree)).map((v) => v.toString('hex')), [c.commit]);
  t.is(repo.contentIndex.version(), 1);
  t.true([...repo.contentIndex.scanParents()].length > 0);
  t.true([...repo.contentIndex.entries()].some(([db]) => db === 'ix-root'));
  const pkKey = Buffer.from('ab'.repeat(32), 'hex');
  repo.packageIndex.put([[pkKey, Buffer.from('pkgs')]]);
  t.deepEqual(repo.packageIndex.get('ab'.repeat(32)), Buffer.from('pkgs'));
  t.like(repo.config, { format: 1, id: repo.id, storage: 'lmdb', defaultBranch: 'refs/heads/main' });
  t.is(repo.location, repo.root);
  t.true(path.isAbsolute(repo.location));
  t.is(repo.objects, Repository.lmdbOf(repo));
});

test('repository views: a new pack gets the next id of the store\'s own allocator, and delete removes it', async (t) => {
  const { repo, dir } = tmpRepo(t);
  writeTree(path.join(dir, 'src'), { a: 'a\n' });
  await commitAt(repo, path.join(dir, 'src'));
  const before: string[] = [];
  for await (const p of repo.packs.list()) before.push(p.id);
  const id = await repo.packs.put(Buffer.from('not really a pack'));
  t.false(before.includes(id));
  t.deepEqual(await repo.packs.get(id), Buffer.from('not really a pack'));
  await repo.packs.delete([id, '424242']);
  t.is(await repo.packs.get(id), undefined);
  // The store's own writes do not reuse the id.
  writeTree(path.join(dir, 'src'), { b: 'b\n' });
  await commitAt(repo, path.join(dir, 'src'));
  const ids: string[] = [];
  for await (const p of repo.packs.list()) ids.push(p.id);
  t.false(ids.includes(id));
});

test('repository views: init records the default branch in the config', (t) => {
  const { dir } = tmpRepo(t);
  const repo = Repository.init(path.join(dir, 'other'), { defaultBranch: 'trunk' });
  t.teardown(() => repo.close());
  t.is(repo.config.defaultBranch, 'refs/heads/trunk');
  t.deepEqual(repo.refs.read('HEAD'), { symref: 'refs/heads/trunk' });
});
