/** Tests of the checkout op: lossless round trips through the repository, partial checkouts, refusals, old revisions. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { DestinationNotEmptyError, PathNotFoundError, RevisionNotFoundError } from '../../src/errors.js';
import { checkout } from '../../src/ops/checkout.js';
import { mkedgePath, snapshotTree } from '../helpers/snapshot.js';
import { MiB, commitAt, isRoot, randomBytes, tmpRepo, writeTree } from '../helpers/repo.js';

// Skipped unless root.
(isRoot ? test : test.skip)('checkout: the edge tree survives commit and checkout losslessly', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  execFileSync('bash', [mkedgePath(), a], { stdio: 'ignore' });
  const before = snapshotTree(a, { holes: true });
  const c = await commitAt(repo, a);
  const r = await checkout(repo, { rev: 'HEAD', dest: b });
  t.deepEqual(r.warnings, []);
  t.is(r.commit, c.commit);
  t.is(r.tree, c.tree);
  t.is(r.format, 'dir');
  // Both count every name of a file (hl1's two extra names included).
  t.is(r.files, c.files);
  t.is(r.bytes, c.bytes);
  t.deepEqual(snapshotTree(b, { holes: true }), before);
  // The checkout commits back to the same tree.
  const again = await commitAt(repo, b, { branch: 'again' });
  t.is(again.tree, c.tree);
});

// Skipped unless root.
(isRoot ? test : test.skip)('checkout: --paths of one subdirectory and one file creates their parents with the image metadata', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const a = path.join(dir, 'a');
  execFileSync('bash', [mkedgePath(), a], { stdio: 'ignore' });
  fs.mkdirSync(path.join(a, 'sticky/deeper'));
  fs.writeFileSync(path.join(a, 'sticky/deeper/file'), 'deep file');
  fs.chmodSync(path.join(a, 'sticky/deeper'), 0o710);
  fs.chownSync(path.join(a, 'sticky/deeper'), 321, 654);
  fs.utimesSync(path.join(a, 'sticky/deeper'), new Date('2003-03-03T03:03:03Z'), new Date('2003-03-03T03:03:03Z'));
  const source = snapshotTree(a, { holes: true });
  await commitAt(repo, a);

  const out = path.join(dir, 'partial');
  const r = await checkout(repo, { rev: 'HEAD', dest: out, paths: ['empty/dir', '/sticky/deeper/file'] });
  t.deepEqual(r.warnings, []);
  t.is(r.files, 1);
  const wanted = new Set(['.', 'empty', 'empty/dir', 'sticky', 'sticky/deeper', 'sticky/deeper/file']);
  const expected = source.filter((l) => wanted.has(l.split(' ')[0]!));
  t.is(expected.length, wanted.size);
  t.deepEqual(snapshotTree(out, { holes: true }), expected);
});

test('checkout: --paths of a hardlinked file and of a symlink', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, { 'a': 'one', 'd': { 'x': 'x' } });
  fs.linkSync(path.join(src, 'a'), path.join(src, 'd/b'));
  fs.symlinkSync('../a', path.join(src, 'd/link'));
  await commitAt(repo, src);
  const out = path.join(dir, 'out');
  await checkout(repo, { rev: 'HEAD', dest: out, paths: ['d/b', 'd/link'] });
  t.deepEqual(fs.readdirSync(out), ['d']);
  t.deepEqual(fs.readdirSync(path.join(out, 'd')).sort(), ['b', 'link']);
  t.is(fs.readFileSync(path.join(out, 'd/b'), 'utf8'), 'one');
  t.is(fs.readlinkSync(path.join(out, 'd/link')), '../a');
  // Both names of the hardlink group: linked again.
  const both = path.join(dir, 'both');
  await checkout(repo, { rev: 'HEAD', dest: both, paths: ['a', 'd/b'] });
  t.is(fs.statSync(path.join(both, 'a')).ino, fs.statSync(path.join(both, 'd/b')).ino);
});

test('checkout: overlapping --paths are written once', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, { 'd': { 'e': { 'f': 'f' }, 'g': 'g' } });
  await commitAt(repo, src);
  const out = path.join(dir, 'out');
  const r = await checkout(repo, { rev: 'HEAD', dest: out, paths: ['d', 'd/e/f', 'd/e'] });
  t.is(r.files, 2);
  t.is(fs.readFileSync(path.join(out, 'd/e/f'), 'utf8'), 'f');
  t.is(fs.readFileSync(path.join(out, 'd/g'), 'utf8'), 'g');
});

test('checkout: an older revision gives the older content', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, { 'f': 'version 1', 'gone': 'later removed' });
  await commitAt(repo, src);
  fs.writeFileSync(path.join(src, 'f'), 'version 2');
  fs.rmSync(path.join(src, 'gone'));
  await commitAt(repo, src, { tick: 1 });
  const v1 = path.join(dir, 'v1');
  const v2 = path.join(dir, 'v2');
  await checkout(repo, { rev: 'HEAD~1', dest: v1 });
  await checkout(repo, { rev: 'main', dest: v2 });
  t.is(fs.readFileSync(path.join(v1, 'f'), 'utf8'), 'version 1');
  t.true(fs.existsSync(path.join(v1, 'gone')));
  t.is(fs.readFileSync(path.join(v2, 'f'), 'utf8'), 'version 2');
  t.false(fs.existsSync(path.join(v2, 'gone')));
});

test('checkout: refuses a non-empty destination and writes nothing', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, { 'f': 'x' });
  await commitAt(repo, src);
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(out, 'mine'), 'keep me');
  await t.throwsAsync(checkout(repo, { rev: 'HEAD', dest: out }), { instanceOf: DestinationNotEmptyError });
  t.deepEqual(fs.readdirSync(out), ['mine']);
  // An existing empty directory is fine.
  const empty = path.join(dir, 'empty');
  fs.mkdirSync(empty);
  await checkout(repo, { rev: 'HEAD', dest: empty });
  t.is(fs.readFileSync(path.join(empty, 'f'), 'utf8'), 'x');
});

test('checkout: a missing path or revision fails before the destination is created', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, { 'f': 'x', 'd': { 'g': 'y' } });
  await commitAt(repo, src);
  const out = path.join(dir, 'out');
  const err = await t.throwsAsync(checkout(repo, { rev: 'HEAD', dest: out, paths: ['d/g', 'd/nope'] }), { instanceOf: PathNotFoundError });
  t.deepEqual(err?.data, { path: 'd/nope', rev: 'HEAD' });
  // A path below a file is missing too.
  await t.throwsAsync(checkout(repo, { rev: 'HEAD', dest: out, paths: ['f/x'] }), { instanceOf: PathNotFoundError });
  await t.throwsAsync(checkout(repo, { rev: 'nope', dest: out }), { instanceOf: RevisionNotFoundError });
  t.false(fs.existsSync(out));
});

test('checkout: a large file streams back byte for byte', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  const data = randomBytes(12 * MiB + 12345, 'large');
  fs.writeFileSync(path.join(src, 'big'), data);
  await commitAt(repo, src);
  const out = path.join(dir, 'out');
  const r = await checkout(repo, { rev: 'HEAD', dest: out });
  t.is(r.bytes, data.length);
  t.true(fs.readFileSync(path.join(out, 'big')).equals(data));
});

test('checkout: a tar destination commits back to the same tree', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, { 'a': 'x', 'd': { 'b': randomBytes(300_000, 'tar'), 'e': {} } });
  fs.symlinkSync('a', path.join(src, 'link'));
  fs.lutimesSync(path.join(src, 'link'), new Date(0), new Date(0));
  fs.utimesSync(src, new Date(0), new Date(0));
  const c = await commitAt(repo, src);
  const tar = path.join(dir, 'image.tar');
  const r = await checkout(repo, { rev: 'HEAD', dest: tar });
  t.is(r.format, 'tar');
  const back = await commitAt(repo, tar, { branch: 'from-tar' });
  t.is(back.tree, c.tree);
  t.is(back.source.format, 'tar');
});

test('checkout: content read ahead on a worker thread (many files, shared blobs, hardlinks, sparse) comes back exact', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  const spec: Record<string, Buffer | string> = {};
  // 40 × 1 MiB distinct files and a few duplicates: more than PREFETCH_MIN_TOTAL, each below PREFETCH_MAX_BLOB.
  for (let i = 0; i < 40; i++) spec[`f${String(i).padStart(2, '0')}`] = randomBytes(MiB, `f${i}`);
  spec.dup1 = spec.f01 as Buffer;
  spec.dup2 = spec.f02 as Buffer;
  spec.small = 'tiny';
  writeTree(src, { d: spec });
  fs.linkSync(path.join(src, 'd/f03'), path.join(src, 'hardlink'));
  const sparse = path.join(src, 'sparse');
  fs.writeFileSync(sparse, '');
  fs.truncateSync(sparse, 4 * MiB);
  const fd = fs.openSync(sparse, 'r+');
  fs.writeSync(fd, randomBytes(8192, "sparse"), 0, 8192, 2 * MiB);
  fs.closeSync(fd);
  const before = snapshotTree(src, { holes: true });
  await commitAt(repo, src);
  const out = path.join(dir, 'out');
  const r = await checkout(repo, { rev: 'HEAD', dest: out });
  t.is(r.files, 45);
  t.deepEqual(snapshotTree(out, { holes: true }), before);
});

test('checkout: an existing tar file is refused unless force', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, { a: 'one' });
  await commitAt(repo, src);
  const out = path.join(dir, 'out.tar');
  fs.writeFileSync(out, 'precious');
  await t.throwsAsync(checkout(repo, { rev: 'HEAD', dest: out }), { instanceOf: DestinationNotEmptyError, message: /exists/ });
  t.is(fs.readFileSync(out, 'utf8'), 'precious');
  const r = await checkout(repo, { rev: 'HEAD', dest: out, force: true });
  t.is(r.format, 'tar');
  t.true(fs.statSync(out).size >= 1024);
});
