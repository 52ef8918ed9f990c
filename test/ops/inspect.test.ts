/** grep, stats, du and search on small images. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { grep } from '../../src/ops/grep.js';
import { du, imageStats, repositoryStats } from '../../src/ops/stats.js';
import { search } from '../../src/ops/search.js';
import { UsageError } from '../../src/errors.js';
import { commitAt, randomBytes, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';
import type { Repository } from '../../src/store/repository.js';

async function collectAll<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function setup(t: import('ava').ExecutionContext): Promise<Repository> {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  const big = randomBytes(300_000, 'big');
  writeTree(src, {
    etc: { ssh: { sshd_config: '# comment\nPermitRootLogin yes\nPasswordAuthentication no\n' }, hostname: 'web01\n' },
    usr: { bin: { nginx: Buffer.concat([Buffer.from('ELF\0'), big]) }, share: { a: big, b: big } },
    var: { lib: { dpkg: { status: 'Package: nginx\nStatus: install ok installed\nVersion: 1.22.1-9\n' } } },
  });
  const { repo } = tmpRepo(t);
  await commitAt(repo, src, { branch: 'customers/acme/web', message: 'acme web server', labels: [['env', 'prod']] });
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'db01\n');
  fs.rmSync(path.join(src, 'var/lib/dpkg/status'));
  await commitAt(repo, src, { branch: 'customers/other/db', message: 'database', tick: 1 });
  return repo;
}

test('grep: matching lines with numbers, paths after --, binary files skipped, bad patterns refused', async (t) => {
  const repo = await setup(t);
  t.deepEqual(await collectAll(grep(repo, { pattern: 'PermitRoot', rev: 'customers/acme/web' })), [{ path: 'etc/ssh/sshd_config', line: 2, text: 'PermitRootLogin yes' }]);
  t.deepEqual((await collectAll(grep(repo, { pattern: 'web0', rev: 'customers/acme/web', paths: ['etc/hostname'] }))).map((h) => h.path), ['etc/hostname']);
  t.deepEqual(await collectAll(grep(repo, { pattern: 'ELF', rev: 'customers/acme/web' })), [], 'the binary file is skipped');
  t.is((await collectAll(grep(repo, { pattern: 'permitrootlogin', rev: 'customers/acme/web:etc', ignoreCase: true }))).length, 1);
  t.is((await collectAll(grep(repo, { pattern: 'a.b', rev: 'customers/acme/web', fixed: true }))).length, 0);
  await t.throwsAsync(collectAll(grep(repo, { pattern: '(', rev: 'customers/acme/web' })), { instanceOf: UsageError });
});

test('stats and du: logical, unique and stored sizes from manifests', async (t) => {
  const repo = await setup(t);
  const s = imageStats(repo, 'customers/acme/web');
  t.is(s.files, 6);
  t.is(s.blobs, 6 - 1, 'usr/share/a and b are one blob');
  t.is(s.logicalBytes, s.uniqueBytes + 300_000);
  t.true(s.dedupRatio > 1);
  t.true(s.storedBytes > 0 && s.storedBytes < s.uniqueBytes + 10_000);
  const r = repositoryStats(repo);
  t.is(r.commits, 2);
  t.is(r.refs, 2);
  const d = du(repo, 'customers/acme/web', 1);
  t.deepEqual(d.map((e) => e.path), ['etc', 'usr', 'var', '.']);
  t.is(d.find((e) => e.path === 'usr')!.bytes, 900_004);
  t.is(d.at(-1)!.bytes, s.logicalBytes);
  t.deepEqual(du(repo, 'customers/acme/web:usr', 0).map((e) => [e.path, e.files]), [['usr', 3]]);
});

test('search: every word must match; refs, labels and messages outrank packages and file names', async (t) => {
  const repo = await setup(t);
  const hits = await search(repo, ['acme']);
  t.deepEqual(hits.map((h) => h.ref), ['customers/acme/web']);
  t.true(hits[0]!.matches.includes('ref customers/acme/web'));
  const nginx = await search(repo, ['nginx']);
  t.deepEqual(nginx.map((h) => h.ref), ['customers/acme/web', 'customers/other/db'], 'the package and the file outrank the file alone');
  t.deepEqual((await search(repo, ['prod', 'sshd'])).map((h) => h.ref), ['customers/acme/web']);
  t.deepEqual(await search(repo, ['nothing-like-this']), []);
  await t.throwsAsync(search(repo, [' ']), { instanceOf: UsageError });
});
