/**
 * push, fetch and clone to and from a repository in a bucket (memory://, the in-process bucket with S3's semantics;
 * test/s3/ runs the same against Ceph's radosgw): objects move verified, only what is missing.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { Repository } from '../../src/store/repository.js';
import { addRemote, clone, fetch, push } from '../../src/ops/sync.js';
import { checkout } from '../../src/ops/checkout.js';
import { fsck } from '../../src/ops/fsck.js';
import { cat } from '../../src/ops/ls.js';
import { collect, commitAt, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';

let n = 0;
const bucket = () => `memory://bucket-sync-${process.pid}-${n++}`;

test('clone from a bucket, fetch what it gained, push back, and a third host sees it', async (t) => {
  const url = bucket();
  const a = await Repository.create(url, { cacheDir: tmpDir(t) });
  const src = tmpDir(t);
  writeTree(src, { etc: { hostname: 'base\n', big: Buffer.alloc(500_000, 4) } });
  const c1 = await commitAt(a, src, { branch: 'main', message: 'base' });

  const dir = path.join(tmpDir(t), 'clone');
  const r = await clone(url, dir);
  t.is(r.branch, 'main');
  const local = Repository.open(dir, 'write');
  t.is(local.refs.resolve('refs/heads/main')?.oid, c1.commit);
  const out = path.join(tmpDir(t), 'co');
  await checkout(local, { rev: 'main', dest: out });
  t.deepEqual(fs.readFileSync(path.join(out, 'etc/big')), Buffer.alloc(500_000, 4));
  t.deepEqual((await fsck(local)).problems, []);

  fs.writeFileSync(path.join(src, 'etc/hostname'), 'second\n');
  const c2 = await commitAt(a, src, { branch: 'main', message: 'second', tick: 1 });
  const f = await fetch(local, 'origin');
  t.deepEqual(f.updated.map((u) => [u.ref, u.new]), [['refs/remotes/origin/main', c2.commit]]);
  t.true(f.objects > 0 && f.objects < 10, `only the new objects (${f.objects})`);

  const w = tmpDir(t);
  writeTree(w, { srv: { www: { 'index.html': '<h1>web</h1>\n' } } });
  const c3 = await commitAt(local, w, { branch: 'web', message: 'web', tick: 2 });
  const p = await push(local, 'origin', [{ src: 'refs/heads/web', dst: 'refs/heads/web' }]);
  t.true(p.objects > 0);
  const third = await Repository.connect(url, 'read', { cacheDir: tmpDir(t) });
  t.is(third.refs.resolve('refs/heads/web')?.oid, c3.commit);
  t.is((await collect(cat(third, 'web:srv/www/index.html'))).toString(), '<h1>web</h1>\n');
  await third.close();
  await local.close();
  await a.close();
});

test('push a local repository into an empty bucket repository; a remote named by URL works as a remote', async (t) => {
  const { repo } = tmpRepo(t);
  const src = tmpDir(t);
  writeTree(src, { a: 'one\n', b: Buffer.alloc(100_000, 1) });
  const c = await commitAt(repo, src, { branch: 'main' });
  const url = bucket();
  const empty = await Repository.create(url, { cacheDir: tmpDir(t) });
  await empty.close();
  addRemote(repo, 'archive', url);
  const p = await push(repo, 'archive', [{ src: 'refs/heads/main', dst: 'refs/heads/main' }]);
  t.true(p.objects >= 4);
  const again = await push(repo, 'archive', [{ src: 'refs/heads/main', dst: 'refs/heads/main' }]);
  t.is(again.objects, 0, 'nothing twice');
  const b = await Repository.connect(url, 'read', { cacheDir: tmpDir(t) });
  t.is(b.refs.resolve('refs/heads/main')?.oid, c.commit);
  t.is((await collect(cat(b, 'main:a'))).toString(), 'one\n');
  await b.close();
});
