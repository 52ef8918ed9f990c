/** The content index and find: checksums through parent links, scopes, predicates, packages, gc, rebuild, fsck. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Resolver, find, findFiles, scopeCommits, type FindHit, type FindOptions, type FindScope } from '../../src/ops/find.js';
import { indexKey } from '../../src/store/content-index.js';
import { fsck } from '../../src/ops/fsck.js';
import { gc } from '../../src/ops/gc.js';
import { deleteRef } from '../../src/ops/branch.js';
import { rebuildIndex } from '../../src/ops/index-rebuild.js';
import { UsageError, InvalidTimeError } from '../../src/errors.js';
import { commitAt, randomBytes, sha256, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';
import type { Repository } from '../../src/store/repository.js';
import { lmdb } from '../helpers/lmdb.js';

/** The (commit, path) pairs of a Resolver's flat list. */
const pairs = (flat: string[]): Array<[string, string]> => Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i]!, flat[2 * i + 1]!]);

/** The hits of find, sorted; for a query without packages, findFiles (the synchronous path the CLI takes) must give the very same. */
async function all(repo: Repository, o: FindOptions): Promise<string[]> {
  const out: string[] = [];
  for await (const h of find(repo, o)) out.push(describe(h));
  out.sort();
  if (o.package === undefined && o.version === undefined) {
    const sync = [...findFiles(repo, o)].map(describe).sort();
    if (JSON.stringify(sync) !== JSON.stringify(out)) throw new Error(`findFiles gave ${JSON.stringify(sync)}, find ${JSON.stringify(out)}`);
  }
  return out;
}

function describe(h: FindHit): string {
  return h.package ? `${h.ref} ${h.package.name}=${h.package.version}` : `${h.ref} ${h.path}`;
}

const SHARED = randomBytes(70_000, 'shared');
const STATUS = (v: string) => `Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${v}\n\nPackage: libc6\nStatus: install ok installed\nVersion: 2.36-9\n`;

async function setup(t: import('ava').ExecutionContext): Promise<{ repo: Repository; src: string }> {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  writeTree(src, {
    usr: { lib: { 'libshared.so': SHARED, 'other.so': 'x' }, share: { doc: { README: 'read me\n' } } },
    opt: { app: { 'copy.so': SHARED } },
    etc: { 'ssl.conf': 'conf\n' },
    var: { lib: { dpkg: { status: STATUS('3.0.11-1~deb12u2') } } },
  });
  fs.linkSync(path.join(src, 'usr/lib/libshared.so'), path.join(src, 'usr/lib/libshared.so.1'));
  fs.chmodSync(path.join(src, 'etc/ssl.conf'), 0o4755);
  const { repo } = tmpRepo(t);
  await commitAt(repo, src, { branch: 'team/a' });
  // The next version: libshared removed from usr/lib (only in history now), openssl upgraded.
  fs.rmSync(path.join(src, 'usr/lib/libshared.so'));
  fs.rmSync(path.join(src, 'usr/lib/libshared.so.1'));
  fs.writeFileSync(path.join(src, 'var/lib/dpkg/status'), STATUS('3.0.13-1~deb12u1'));
  await commitAt(repo, src, { branch: 'team/a', tick: 1 });
  await commitAt(repo, src, { branch: 'other/b', tick: 2 });
  return { repo, src };
}

test('find: a checksum is found in every commit and path, through shared subtrees, within the scope', async (t) => {
  const { repo } = await setup(t);
  const h = sha256(SHARED);
  t.deepEqual(await all(repo, { sha256: [h] }), [
    'other/b opt/app/copy.so', 'team/a opt/app/copy.so', 'team/a opt/app/copy.so', 'team/a usr/lib/libshared.so', 'team/a usr/lib/libshared.so.1',
  ]);
  t.deepEqual(await all(repo, { sha256: [h], scope: { kind: 'heads' } }), ['other/b opt/app/copy.so', 'team/a opt/app/copy.so']);
  t.deepEqual(await all(repo, { sha256: [h.slice(0, 10)], scope: { kind: 'ref', prefix: 'other' } }), ['other/b opt/app/copy.so']);
  t.deepEqual(await all(repo, { sha256: ['0'.repeat(64)] }), []);
  // With a predicate: only hits whose entry also matches.
  t.deepEqual(await all(repo, { sha256: [h], name: 'libshared*', scope: { kind: 'all' } }), ['team/a usr/lib/libshared.so', 'team/a usr/lib/libshared.so.1']);
});

test('find: a checksum inside a disk commit\'s file system, and under a name too long for the index', async (t) => {
  const dir = tmpDir(t);
  const { repo } = tmpRepo(t);
  // A bare ext4 image: the file's path is its path in the file system (a disk link adds nothing to it).
  const tree = path.join(dir, 'tree');
  writeTree(tree, { data: { 'file.bin': SHARED }, etc: { hostname: 'vm\n' } });
  const image = path.join(dir, 'fs.img');
  execFileSync('truncate', ['-s', '16M', image]);
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, image], { stdio: 'ignore' });
  await commitAt(repo, image, { branch: 'vm/disk' });
  // A tar whose directory holds a name of 1100 bytes (a PAX header): the index keeps no name that long, so the
  // parent tree is read to find it.
  const long = 'n'.repeat(1100);
  const tar = path.join(dir, 'long.tar');
  execFileSync('python3', ['-c', [
    'import io, sys, tarfile',
    'with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:',
    '  data = b"long name\\n"',
    '  i = tarfile.TarInfo("dir/" + sys.argv[2]); i.size = len(data); t.addfile(i, io.BytesIO(data))',
    '  i = tarfile.TarInfo("dir/short"); i.size = len(data); t.addfile(i, io.BytesIO(data))',
  ].join('\n'), tar, long]);
  await commitAt(repo, tar, { branch: 'tar/long' });
  t.deepEqual(await all(repo, { sha256: [sha256(SHARED)] }), ['vm/disk data/file.bin']);
  t.deepEqual(await all(repo, { sha256: [sha256('long name\n')] }), [`tar/long dir/${long}`, 'tar/long dir/short']);
});

test('find: a checksum hit under a name that is not UTF-8 carries its bytes (pathHex); a UTF-8 name holding U+FFFD does not', async (t) => {
  const dir = tmpDir(t);
  const { repo } = tmpRepo(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(Buffer.concat([Buffer.from(`${src}/odd`), Buffer.from([0xff, 0xfe])]), 'same\n');
  fs.writeFileSync(path.join(src, 'ok\ufffd'), 'same\n');
  // UTF-8 beyond ASCII, in a directory's name and a file's: joined as bytes, reported as text.
  fs.mkdirSync(path.join(src, 'café'));
  fs.writeFileSync(path.join(src, 'café', 'naïve €'), 'same\n');
  await commitAt(repo, src, { branch: 'main' });
  const hits = [...findFiles(repo, { sha256: [sha256('same\n')] })].map((h) => [h.path, h.pathHex]).sort();
  t.deepEqual(hits, [['café/naïve €', undefined], ['odd\ufffd\ufffd', '6f6464fffe'], ['ok\ufffd', undefined]]);
});

test('find: the roots of the scope\'s commits, read with the scope, give what the index\'s ix-root gives', async (t) => {
  const { repo, src } = await setup(t);
  // The same tree as the root of more commits (a branch of the same content, and its second commit).
  await commitAt(repo, src, { branch: 'same/c', tick: 3 });
  await commitAt(repo, src, { branch: 'same/c', tick: 4 });
  const scopes: FindScope[] = [{ kind: 'all' }, { kind: 'heads' }, { kind: 'ref', prefix: 'same' }, { kind: 'ref', prefix: 'team' }];
  for (const scope of scopes) {
    const roots = new Map<string, string[]>();
    const commits = scopeCommits(repo, scope, roots);
    for (const h of [sha256(SHARED), sha256('conf\n'), sha256('read me\n')]) {
      const viaIndex = pairs(new Resolver(repo).occurrences(indexKey('blob', h))).filter(([c]) => commits.has(c)).map(([c, p]) => `${c} ${p}`);
      const viaScope = pairs(new Resolver(repo, roots).occurrences(indexKey('blob', h))).map(([c, p]) => `${c} ${p}`);
      t.deepEqual(viaScope, viaIndex, `${JSON.stringify(scope)} ${h}`);
      t.true(viaScope.length > 0);
    }
  }
});

test('find: name, path, size, type, mode and time predicates', async (t) => {
  const { repo } = await setup(t);
  const heads = { kind: 'heads' } as const;
  t.deepEqual(await all(repo, { name: '*.so', scope: heads }), ['other/b opt/app/copy.so', 'other/b usr/lib/other.so', 'team/a opt/app/copy.so', 'team/a usr/lib/other.so']);
  t.deepEqual(await all(repo, { path: 'usr/**', type: 'f', scope: { kind: 'ref', prefix: 'other' } }), ['other/b usr/lib/other.so', 'other/b usr/share/doc/README']);
  t.deepEqual(await all(repo, { size: '+65k', scope: heads }), ['other/b opt/app/copy.so', 'team/a opt/app/copy.so']);
  t.deepEqual(await all(repo, { mode: '/4000', scope: heads }), ['other/b etc/ssl.conf', 'team/a etc/ssl.conf']);
  t.deepEqual(await all(repo, { type: 'd', name: 'doc', scope: heads }), ['other/b usr/share/doc', 'team/a usr/share/doc']);
  t.deepEqual(await all(repo, { newer: '2999-01-01', scope: heads }), []);
  for (const bad of [{ name: '[abc' }, { size: 'big' }, { type: 'x' }, { mode: '999' }, { sha256: ['xyz'] }, {}, { package: 'a', version: '<<<' }]) {
    await t.throwsAsync(all(repo, bad as FindOptions), { instanceOf: UsageError }, JSON.stringify(bad));
  }
  await t.throwsAsync(all(repo, { newer: 'yesterday' } as FindOptions), { instanceOf: InvalidTimeError });
  t.throws(() => [...findFiles(repo, { package: 'openssl' })], { instanceOf: UsageError, message: /answered by find\(\)/ });
});

test('find: packages by name and Debian version constraint, from each image\'s database', async (t) => {
  const { repo } = await setup(t);
  // Each distinct package database was indexed by the commit that brought it (keyed by its content id).
  t.is([...repo.packageIndex.entries()].length, 2);
  t.deepEqual(await all(repo, { package: 'openssl', version: '<3.0.13' }), ['team/a openssl=3.0.11-1~deb12u2']);
  t.deepEqual(await all(repo, { package: 'openssl', version: '>=3.0.13', scope: { kind: 'heads' } }), ['other/b openssl=3.0.13-1~deb12u1', 'team/a openssl=3.0.13-1~deb12u1']);
  t.deepEqual(await all(repo, { package: 'lib*', scope: { kind: 'ref', prefix: 'other' } }), ['other/b libc6=2.36-9']);
});

test('content index: kept by commit and gc, checked by fsck, rebuilt on demand; many hits stream', async (t) => {
  const { repo, src } = await setup(t);
  t.deepEqual((await fsck(repo)).problems, []);
  // Removing a branch and collecting its objects takes their index entries along.
  await deleteRef(repo, 'branch', 'team/a', true);
  const removed = (await gc(repo)).removed;
  t.true(removed > 0, 'gc removed the objects only team/a reached');
  t.deepEqual((await fsck(repo)).problems.filter((p) => p.kind === 'index'), []);
  t.deepEqual(await all(repo, { sha256: [sha256(SHARED)] }), ['other/b opt/app/copy.so']);
  // A damaged index is reported, and rebuilt.
  lmdb(repo).env.transactionSync(() => lmdb(repo).ixParent.clearSync());
  t.true((await fsck(repo)).problems.some((p) => p.kind === 'index'));
  t.true((await rebuildIndex(repo)).entries > 0);
  t.deepEqual((await fsck(repo)).problems.filter((p) => p.kind === 'index'), []);
  // 3000 copies of one file: every hit comes out.
  const many = path.join(src, 'many');
  fs.mkdirSync(many);
  for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(many, `f${i}`), 'same content\n');
  await commitAt(repo, src, { branch: 'other/b', tick: 3 });
  let n = 0;
  for await (const h of find(repo, { sha256: [sha256('same content\n')], scope: { kind: 'heads' } })) { n++; void h; }
  t.is(n, 3000);
});
