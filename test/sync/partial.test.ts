/** Partial clones (--filter manifests): manifests only, content fetched on demand by the commands that need it. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { serve } from '../../src/sync/server.js';
import { clone, fetchImageContent } from '../../src/ops/sync.js';
import { checkout } from '../../src/ops/checkout.js';
import { cat, ls } from '../../src/ops/ls.js';
import { diff, patchFor } from '../../src/ops/diff.js';
import { diffPackages } from '../../src/ops/image-packages.js';
import { grep } from '../../src/ops/grep.js';
import { fsck } from '../../src/ops/fsck.js';
import { gc } from '../../src/ops/gc.js';
import { imageStats, repositoryStats } from '../../src/ops/stats.js';
import { Repository } from '../../src/store/repository.js';
import { collect, commitAt, randomBytes, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';

test('partial clone: a few percent of the repository; checkout, cat, diff -p, grep and packages fetch what they need', async (t) => {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  writeTree(src, {
    usr: { lib: { a: randomBytes(900_000, 'a'), b: randomBytes(700_000, 'b') } },
    etc: { hostname: 'one\n' },
    var: { lib: { dpkg: { status: 'Package: bash\nStatus: install ok installed\nVersion: 5.2-1\n' } } },
  });
  const lib = tmpRepo(t);
  await commitAt(lib.repo, src, { branch: 'base' });
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'two\n');
  await commitAt(lib.repo, src, { branch: 'base', tick: 1 });
  const server = await serve(lib.repo, { listen: '127.0.0.1:0', log: () => {} });
  t.teardown(() => server.close());

  const c = await clone(server.url, path.join(dir, 'p'), { filter: 'manifests' });
  const full = fs.statSync(path.join(lib.repo.dataDir, 'data.mdb')).size;
  t.true(c.bytes < 0.05 * 1_600_000, `partial clone moved ${c.bytes} bytes`);
  void full;
  const repo = Repository.open(path.join(dir, 'p'), 'write');
  t.teardown(() => repo.close());
  // Manifests work offline: ls, diff without -p, fsck, gc.
  t.deepEqual(ls(repo, { spec: 'base:etc' }).map((e) => e.path), ['etc/hostname']);
  t.deepEqual(diff(repo, { a: 'base~1', b: 'base', ignoreMtime: true }).entries.map((e) => e.path), ['etc/hostname']);
  t.deepEqual((await fsck(repo)).problems, []);
  t.is((await gc(repo)).removed, 0);
  // Content on demand.
  t.is((await collect(cat(repo, 'base:etc/hostname'))).toString(), 'two\n');
  const e = diff(repo, { a: 'base~1', b: 'base' }).entries.find((x) => x.path === 'etc/hostname')!;
  t.regex((await patchFor(repo, e))!, /-one\n\+two/);
  let hits = 0;
  for await (const h of grep(repo, { pattern: 'two', rev: 'base', paths: ['etc'] })) { hits++; void h; }
  t.is(hits, 1);
  t.is((await diffPackages(repo, 'base~1', 'base')).changes.length, 0);
  const out = path.join(dir, 'out');
  await checkout(repo, { rev: 'base', dest: out });
  t.true(fs.readFileSync(path.join(out, 'usr/lib/a')).equals(fs.readFileSync(path.join(src, 'usr/lib/a'))));
  // fetch --content fills in a whole image; nothing is left missing afterwards.
  const filled = await fetchImageContent(repo, 'base~1');
  t.true(filled.blobs >= 0);
  t.deepEqual((await fsck(repo)).problems, []);
});

test('partial clone: stats works from the manifests and says what content is absent', async (t) => {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  writeTree(src, { usr: { lib: { a: randomBytes(900_000, 'sa'), b: randomBytes(300_000, 'sb') } }, etc: { hostname: 'one\n' } });
  const lib = tmpRepo(t);
  await commitAt(lib.repo, src, { branch: 'base' });
  const server = await serve(lib.repo, { listen: '127.0.0.1:0', log: () => {} });
  t.teardown(() => server.close());
  await clone(server.url, path.join(dir, 'p'), { filter: 'manifests' });
  const repo = Repository.open(path.join(dir, 'p'), 'write');
  t.teardown(() => repo.close());
  const full = imageStats(lib.repo, 'base');
  const s = imageStats(repo, 'base');
  for (const k of ['files', 'dirs', 'logicalBytes', 'blobs', 'uniqueBytes', 'dedupRatio'] as const) t.is(s[k], full[k], k);
  t.is(full.absent, undefined);
  t.deepEqual(s.absent, { blobs: full.blobs, bytes: full.uniqueBytes, chunks: 0 });
  t.is(s.storedBytes, 0, 'nothing of the content is here');
  t.true(repositoryStats(repo).headsLogicalBytes >= full.logicalBytes);
  // After fetching part of it, what is present is counted as stored.
  await collect(cat(repo, 'base:etc/hostname'));
  const after = imageStats(repo, 'base');
  t.is(after.absent!.blobs, full.blobs - 1);
  t.true(after.storedBytes > 0);
  await fetchImageContent(repo, 'base');
  const filled = imageStats(repo, 'base');
  t.is(filled.absent, undefined);
  t.is(filled.storedBytes, full.storedBytes);
});
