/** Tests of the tree walker: N trees in step, pruning, identical subtrees skipped unread, abort, damage named by path. */
import test from 'ava';
import { AbortedError, RepositoryCorruptError } from '../../src/errors.js';
import { commit } from '../../src/ops/commit.js';
import type { ImageEntry } from '../../src/formats/types.js';
import { resolveSpec } from '../../src/ops/resolve.js';
import { encodeStored, type ObjectReader } from '../../src/store/object-store.js';
import type { Repository } from '../../src/store/repository.js';
import { type WalkEntries, walkTree, walkTrees } from '../../src/tree/walk.js';
import { content, entryOf, readerOf } from '../helpers/image.js';
import { AUTHOR, TIME, tmpRepo } from '../helpers/repo.js';
import { lmdb } from '../helpers/lmdb.js';

type Files = Record<string, string | { dir: number }>;

/** Commits an image: strings are files, `{ dir: mode }` directories (parents are implied). Returns the root tree. */
async function treeOf(repo: Repository, files: Files, tick = 0): Promise<string> {
  const entries: ImageEntry[] = [entryOf('', 'dir')];
  for (const [p, v] of Object.entries(files)) {
    entries.push(typeof v === 'string' ? entryOf(p, 'file', { content: content(v) }) : entryOf(p, 'dir', { mode: v.dir }));
  }
  const c = await commit(repo, { reader: readerOf(entries), branch: `b${tick}`, author: AUTHOR, time: TIME + tick, message: 'm' });
  return c.tree;
}

/** The store, counting tree reads by id. */
function counting(repo: Repository): { objects: ObjectReader; reads: string[] } {
  const reads: string[] = [];
  const objects = new Proxy(repo.objects, {
    get(target, prop) {
      if (prop === 'readObject') {
        return (kind: 'tree', oid: string) => {
          if (kind === 'tree') reads.push(oid);
          return target.readObject(kind, oid);
        };
      }
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { objects, reads };
}

/** A row as text: the path, then each side's type (or '-'). */
function row(p: Buffer, es: WalkEntries): string {
  return `${p.toString()} ${es.map((e) => e?.type ?? '-').join(' ')}`;
}

const BASE: Files = { 'a/x': '1', 'a/y': '2', 'b': 'b', 'c/d/e': 'e', 'c/f': 'f' };

test('walk: one tree in pre-order, leave in post-order, paths below options.path', async (t) => {
  const { repo } = tmpRepo(t);
  const root = await treeOf(repo, BASE);
  const seen: string[] = [];
  walkTree(repo.objects, root, (p, e) => { seen.push(`${p.toString()}:${e.type}`); }, { leave: (p) => seen.push(`/${p.toString()}`) });
  t.deepEqual(seen, ['a:dir', 'a/x:file', 'a/y:file', '/a', 'b:file', 'c:dir', 'c/d:dir', 'c/d/e:file', '/c/d', 'c/f:file', '/c']);
  const below: string[] = [];
  walkTree(repo.objects, resolveSpec(repo, 'b0:c').entry.oid!, (p) => { below.push(p.toString()); }, { path: Buffer.from('c') });
  t.deepEqual(below, ['c/d', 'c/d/e', 'c/f']);
});

test('walk: pruning skips a directory\'s children without reading them', async (t) => {
  const { repo } = tmpRepo(t);
  const root = await treeOf(repo, BASE);
  const { objects, reads } = counting(repo);
  const seen: string[] = [];
  walkTree(objects, root, (p) => { seen.push(p.toString()); return p.toString() !== 'c'; });
  t.deepEqual(seen, ['a', 'a/x', 'a/y', 'b', 'c']);
  t.deepEqual(reads, [root, resolveSpec(repo, 'b0:a').entry.oid]);
});

test('walk: two trees merge-joined by name bytes; an identical subtree is neither read nor reported', async (t) => {
  const { repo } = tmpRepo(t);
  const a = await treeOf(repo, BASE);
  const b = await treeOf(repo, { 'a/x': '1', 'a/y': '2', 'b/z': 'z', 'c/d/e': 'E', 'c/f': 'f', 'c.txt': 't' }, 1);
  const { objects, reads } = counting(repo);
  const rows: string[] = [];
  walkTrees(objects, [a, b], { enter: (p, es) => { rows.push(row(p, es)); } });
  // Names compare as bytes ('c' before 'c.txt'), and a directory's children come right after it (pre-order).
  t.deepEqual(rows, ['b file dir', 'b/z - file', 'c dir dir', 'c/d dir dir', 'c/d/e file file', 'c/f file file', 'c.txt - file']);
  t.false(reads.includes(resolveSpec(repo, 'b0:a').entry.oid!), 'the shared directory a is not read');
  // Without skipIdentical every path is visited.
  const all: string[] = [];
  walkTrees(repo.objects, [a, b], { skipIdentical: false, enter: (p, es) => { all.push(row(p, es)); } });
  t.deepEqual(all.slice(0, 3), ['a dir dir', 'a/x file file', 'a/y file file']);
  // The same root on both sides: nothing at all, and nothing read.
  const { objects: o2, reads: r2 } = counting(repo);
  walkTrees(o2, [a, a], { enter: () => t.fail() });
  t.deepEqual(r2, []);
});

test('walk: skipEqualEntries reports exactly the paths where some side differs, and nothing where all are equal', async (t) => {
  const { repo } = tmpRepo(t);
  const files: Files = { 'a/x': '1', 'a/y': '2', 'b': 'b', 'c/d/e': 'e', 'c/f': 'f', 'c/g': 'g', 'h': 'h' };
  const a = await treeOf(repo, files);
  // Edits: a changed file, one added, one removed, a new directory; a file that became a directory.
  const { h: _removed, ...kept } = files;
  const edited = await treeOf(repo, { ...kept, 'c/f': 'F', 'c/z': 'z', 'd': { dir: 0o700 } }, 1);
  const { b: _file, ...rest } = files;
  const other = await treeOf(repo, { ...rest, 'a/x': 'X', 'b/inner': 'i' }, 2);
  for (const [x, y, third] of [[a, edited, undefined], [a, other, undefined], [a, edited, a], [edited, a, other]] as Array<[string, string, string | undefined]>) {
    const roots = third ? [x, y, third] : [x, y];
    const all: string[] = [];
    walkTrees(repo.objects, roots, { enter: (p, es) => {
      const differ = es.some((e) => e === undefined) || es.some((e) => JSON.stringify(e, (_, v) => (typeof v === 'bigint' ? String(v) : v)) !== JSON.stringify(es[0], (_, v) => (typeof v === 'bigint' ? String(v) : v)));
      if (differ) all.push(row(p, es));
    } });
    const skipped: string[] = [];
    walkTrees(repo.objects, roots, { skipEqualEntries: true, enter: (p, es) => { skipped.push(row(p, es)); } });
    t.deepEqual(skipped, all);
    t.true(skipped.length > 0);
  }
  // Every side equal: nothing at all.
  walkTrees(repo.objects, [a, a], { skipEqualEntries: true, skipIdentical: false, enter: () => t.fail() });
  // One tree: skipEqualEntries has no effect.
  const one: string[] = [];
  walkTrees(repo.objects, [a], { skipEqualEntries: true, enter: (p, es) => { one.push(row(p, es)); } });
  t.is(one.length, 10);
});

test('walk: a directory with the same id but another mode is reported and not descended into', async (t) => {
  const { repo } = tmpRepo(t);
  const a = await treeOf(repo, { 'd': { dir: 0o755 }, 'd/f': 'f' });
  const b = await treeOf(repo, { 'd': { dir: 0o700 }, 'd/f': 'f' }, 1);
  t.is(resolveSpec(repo, 'b0:d').entry.oid, resolveSpec(repo, 'b1:d').entry.oid);
  const { objects, reads } = counting(repo);
  const rows: string[] = [];
  walkTrees(objects, [a, b], { enter: (p, es) => { rows.push(`${row(p, es)} ${es.map((e) => e!.mode.toString(8)).join(' ')}`); } });
  t.deepEqual(rows, ['d dir dir 755 700']);
  t.deepEqual(reads, [a, b]);
});

test('walk: three trees, each absent side undefined; an undefined root is an empty tree', async (t) => {
  const { repo } = tmpRepo(t);
  const a = await treeOf(repo, { 'm': '1', 'p/q': 'q' });
  const b = await treeOf(repo, { 'm': '2', 'n': 'n' }, 1);
  const rows: string[] = [];
  walkTrees(repo.objects, [a, b, undefined], { enter: (p, es) => { rows.push(row(p, es)); } });
  t.deepEqual(rows, ['m file file -', 'n - file -', 'p dir - -', 'p/q file - -']);
  const leaves: string[] = [];
  walkTrees(repo.objects, [a, a, b], { enter: () => undefined, leave: (p, es) => leaves.push(row(p, es)) });
  t.deepEqual(leaves, ['p dir dir -']);
});

test('walk: an aborted signal stops the walk with AbortedError', async (t) => {
  const { repo } = tmpRepo(t);
  const root = await treeOf(repo, BASE);
  const ac = new AbortController();
  const seen: string[] = [];
  t.throws(() => walkTree(repo.objects, root, (p) => { seen.push(p.toString()); if (p.toString() === 'a') ac.abort(); }, { signal: ac.signal }), { instanceOf: AbortedError });
  t.deepEqual(seen, ['a']);
});

test('walk: a damaged directory is named by its path', async (t) => {
  const { repo } = tmpRepo(t);
  const root = await treeOf(repo, BASE);
  const other = await treeOf(repo, { 'g': 'g' }, 1);
  const cd = resolveSpec(repo, 'b0:c/d').entry.oid!;
  lmdb(repo).putStoredUnchecked('tree', cd, encodeStored(repo.objects.readObject('tree', other)));
  const err = t.throws(() => walkTree(repo.objects, root, () => undefined), { instanceOf: RepositoryCorruptError });
  t.is(err?.data.path, 'c/d');
  t.regex(err?.message ?? '', new RegExp(`^tree '${cd}' of 'c/d' does not match its id`));
  // Pruned above it, the damage is never read.
  t.notThrows(() => walkTree(repo.objects, root, (p) => p.toString() !== 'c'));
  // A damaged root is named by options.path ('/': the image root).
  const e2 = t.throws(() => walkTree(repo.objects, cd, () => undefined, { path: Buffer.from('c/d') }), { instanceOf: RepositoryCorruptError });
  t.is(e2?.data.path, 'c/d');
  const e3 = t.throws(() => walkTrees(repo.objects, [root, cd], { enter: () => undefined }), { instanceOf: RepositoryCorruptError });
  t.is(e3?.data.path, '/');
});

test('walk: with onReadError a damaged or missing directory is reported and walked as empty', async (t) => {
  const { repo } = tmpRepo(t);
  const root = await treeOf(repo, BASE);
  const other = await treeOf(repo, { 'g': 'g' }, 1);
  const cd = resolveSpec(repo, 'b0:c/d').entry.oid!;
  const a = resolveSpec(repo, 'b0:a').entry.oid!;
  lmdb(repo).putStoredUnchecked('tree', cd, encodeStored(repo.objects.readObject('tree', other)));
  lmdb(repo).putStoredUnchecked('tree', a, undefined);
  const seen: string[] = [];
  const errors: string[] = [];
  walkTree(repo.objects, root, (p) => { seen.push(p.toString()); }, {
    leave: (p) => seen.push(`/${p.toString()}`),
    onReadError: (e, p, oid) => {
      errors.push(`${p.toString()} ${oid === cd ? 'cd' : oid === a ? 'a' : oid} ${(e as Error).constructor.name}`);
      // The error is the read's own: the path is an argument, not part of it.
      t.is((e as RepositoryCorruptError).data.path, undefined);
    },
  });
  t.deepEqual(seen, ['a', '/a', 'b', 'c', 'c/d', '/c/d', 'c/f', '/c']);
  t.deepEqual(errors, ['a a ObjectNotFoundError', 'c/d cd RepositoryCorruptError']);
});
