/** Package tools on disk commits: every file system's package database, each named by its partition. */
import test from 'ava';
import path from 'node:path';
import { diffPackages, imageFileSystems, inventoriesOf, inventoryOf, packageDatabaseOf } from '../../src/ops/image-packages.js';
import { find, type FindHit } from '../../src/ops/find.js';
import { rebuildIndex } from '../../src/ops/index-rebuild.js';
import { search } from '../../src/ops/search.js';
import { readCommit } from '../../src/store/typed.js';
import { commitAt, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';
import { haveMke2fs, makeMbrDisk } from '../helpers/mbr-disk.js';

const status = (pkgs: Array<[string, string]>) => pkgs.map(([n, v]) => `Package: ${n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${v}\n`).join('\n');

/** A disk: p1 a Debian root with `p1pkgs`, p2 another root with `p2pkgs` (none: an ext4 without a database). */
function disk(dir: string, name: string, p1pkgs: Array<[string, string]>, p2pkgs?: Array<[string, string]>): string {
  const t1 = path.join(dir, `${name}-t1`);
  writeTree(t1, { etc: { hostname: 'vm\n' }, var: { lib: { dpkg: { status: status(p1pkgs) } } } });
  const t2 = path.join(dir, `${name}-t2`);
  writeTree(t2, p2pkgs ? { var: { lib: { dpkg: { status: status(p2pkgs) } } } } : { data: { x: 'x\n' } });
  const file = path.join(dir, `${name}.raw`);
  makeMbrDisk(file, 40, [{ start: 2048, sectors: 30720, type: 0x83, ext4Tree: t1 }, { start: 32768, sectors: 30720, type: 0x83, ext4Tree: t2 }]);
  return file;
}

(haveMke2fs() ? test : test.skip)('packages: a disk commit lists every file system\'s packages with its partition; find and diff --packages see them', async (t) => {
  const dir = tmpDir(t);
  const { repo } = tmpRepo(t);
  await commitAt(repo, disk(dir, 'a', [['bash', '5.2-1'], ['coreutils', '9.1-1']]), { branch: 'images/a' });
  await commitAt(repo, disk(dir, 'b', [['bash', '5.2-2'], ['coreutils', '9.1-1']], [['busybox', '1.36-1']]), { branch: 'images/b' });
  // The whole image: every file system with a package database.
  const a = await inventoriesOf(repo, 'images/a');
  t.deepEqual(a.map((i) => [i.partition, i.file, i.packages.map((p) => p.name)]), [['p1', 'var/lib/dpkg/status', ['bash', 'coreutils']]]);
  const b = await inventoriesOf(repo, 'images/b');
  t.deepEqual(b.map((i) => [i.partition, i.packages.map((p) => `${p.name} ${p.version}`)]), [['p1', ['bash 5.2-2', 'coreutils 9.1-1']], ['p2', ['busybox 1.36-1']]]);
  t.is((await inventoryOf(repo, 'images/b:p2'))?.partition, 'p2', 'one partition named: still says which');
  // find --package over refs that are not named vm/*: disk commits are searched too.
  const hits: FindHit[] = [];
  for await (const h of find(repo, { package: 'bash' })) hits.push(h);
  t.deepEqual(hits.map((h) => [h.ref, h.path, h.partition, h.package?.version]).sort(), [
    ['images/a', 'p1/var/lib/dpkg/status', 'p1', '5.2-1'], ['images/b', 'p1/var/lib/dpkg/status', 'p1', '5.2-2'],
  ]);
  // search finds the image by a package of its p2.
  t.deepEqual((await search(repo, ['busybox'])).map((h) => h.ref), ['images/b']);
  // diff --packages pairs the file systems by partition.
  const d = await diffPackages(repo, 'images/a', 'images/b');
  t.deepEqual(d.changes, [
    { partition: 'p1', name: 'bash', arch: 'amd64', change: 'upgraded', from: '5.2-1', to: '5.2-2' },
    { partition: 'p2', name: 'busybox', arch: 'amd64', change: 'added', to: '1.36-1' },
  ]);
  t.is(d.a?.partition, 'p1');
  // The package index holds every partition's database, at commit and after a rebuild.
  const c = readCommit(repo.objects, repo.refs.resolve('refs/heads/images/b')?.oid!);
  const dbs = imageFileSystems(repo, c).map((f) => packageDatabaseOf(repo, f.tree)?.oid).filter(Boolean) as string[];
  t.is(dbs.length, 2);
  for (const oid of dbs) t.truthy(repo.packageIndex.get(oid), `ix-pkg has ${oid}`);
  t.is((await rebuildIndex(repo)).packageDatabases, 3);
});
