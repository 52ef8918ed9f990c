/** The diff op: name-status with attributes, renames, type changes, path limits, patches, packages; checked against diff -r. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { diff, patchFor } from '../../src/ops/diff.js';
import { diffPackages } from '../../src/ops/image-packages.js';
import { commitAt, isRoot, randomBytes, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';
import { native } from '../../src/native/index.js';
import type { Repository } from '../../src/store/repository.js';

const T0 = new Date('2024-01-02T03:04:05Z');

function statusFile(pkgs: Array<[string, string]>): string {
  return pkgs.map(([n, v]) => `Package: ${n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${v}\n`).join('\n');
}

/** Two trees with one change of every kind, all mtimes pinned unless a change is about mtime. */
function makePair(dir: string): { a: string; b: string } {
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  const common = {
    etc: { hostname: 'one\n', motd: 'welcome\n', 'perm.conf': 'x\n', 'touched': 'same\n' },
    usr: { share: { doc: { big: randomBytes(200_000, 'doc'), readme: 'docs\n' } } },
    var: { lib: { dpkg: { status: statusFile([['openssl', '3.0.11-1~deb12u2'], ['bash', '5.2.15-2+b2'], ['gone', '1.0']]) } } },
    data: { 'moved-from': randomBytes(5000, 'moved'), 'bin.dat': Buffer.from([0, 1, 2, 3]) },
    thing: 'a file that becomes a directory\n',
  };
  writeTree(a, common);
  writeTree(b, {
    ...common,
    etc: { ...common.etc, hostname: 'two\n', 'new.conf': 'added\n' },
    var: { lib: { dpkg: { status: statusFile([['openssl', '3.0.13-1~deb12u1'], ['bash', '5.2.15-2+b2'], ['htop', '3.2.2-2']]) } } },
    data: { 'moved-to': randomBytes(5000, 'moved'), 'bin.dat': Buffer.from([0, 1, 2, 4]) },
    thing: { inside: 'now a directory\n' },
  });
  fs.symlinkSync('hostname', path.join(a, 'etc/link'));
  fs.symlinkSync('motd', path.join(b, 'etc/link'));
  fs.chmodSync(path.join(b, 'etc/perm.conf'), 0o600);
  native().lsetxattr(path.join(b, 'etc/motd'), 'user.note', Buffer.from('hi'));
  for (const root of [a, b]) {
    for (const f of execFileSync('find', [root, '-depth']).toString().trim().split('\n').reverse()) {
      fs.lutimesSync(f, T0, T0);
    }
  }
  const later = new Date('2025-01-01T00:00:00Z');
  fs.utimesSync(path.join(b, 'etc/touched'), later, later);
  return { a, b };
}

/** A repository with the pair committed as branches a and b. */
async function committedPair(t: import('ava').ExecutionContext): Promise<Repository> {
  const dir = tmpDir(t);
  const { a, b } = makePair(dir);
  const { repo } = tmpRepo(t);
  await commitAt(repo, a, { branch: 'a' });
  await commitAt(repo, b, { branch: 'b' });
  return repo;
}

test('diff: one line per change with the attributes that changed; identical images give nothing', async (t) => {
  const repo = await committedPair(t);
  const d = diff(repo, { a: 'a', b: 'b' });
  const lines = d.entries.map((e) => `${e.status} ${e.from ? `${e.from} -> ` : ''}${e.path}${e.changes ? ` [${e.changes.join(',')}]` : ''}`);
  t.deepEqual(lines, [
    'M data/bin.dat [content]',
    'R data/moved-from -> data/moved-to',
    'M etc/hostname [content]',
    'M etc/link [target]',
    'M etc/motd [xattrs]',
    'A etc/new.conf',
    'M etc/perm.conf [mode]',
    'M etc/touched [mtime]',
    'T thing',
    'A thing/inside',
    'M var/lib/dpkg/status [content]',
  ]);
  t.deepEqual(diff(repo, { a: 'a', b: 'a' }).entries, []);
  // --ignore-mtime drops mtime-only changes.
  t.false(diff(repo, { a: 'a', b: 'b', ignoreMtime: true }).entries.some((e) => e.path === 'etc/touched'));
  // Paths limit the diff.
  t.deepEqual(diff(repo, { a: 'a', b: 'b', paths: ['etc/hostname', 'thing'] }).entries.map((e) => e.path), ['etc/hostname', 'thing', 'thing/inside']);
  // Without rename detection a rename is a deletion and an addition.
  t.deepEqual(diff(repo, { a: 'a', b: 'b', renames: false }).entries.filter((e) => e.path.startsWith('data/moved')).map((e) => e.status), ['D', 'A']);
});

test('diff: content changes agree with diff -r of the two trees', async (t) => {
  const dir = tmpDir(t);
  const { a, b } = makePair(dir);
  const { repo } = tmpRepo(t);
  await commitAt(repo, a, { branch: 'a' });
  await commitAt(repo, b, { branch: 'b' });
  let out = '';
  try { execFileSync('diff', ['-rq', '--no-dereference', a, b]); } catch (e) { out = String((e as { stdout: Buffer }).stdout); }
  const fromDiffR = new Set<string>();
  for (const line of out.trim().split('\n')) {
    let m = /^Files (\S+) and \S+ differ$/.exec(line);
    if (m) { fromDiffR.add(path.relative(a, m[1]!)); continue; }
    m = /^Only in (\S+): (.+)$/.exec(line);
    if (m) { fromDiffR.add(path.relative(m[1]!.startsWith(a) ? a : b, path.join(m[1]!, m[2]!))); continue; }
    m = /^Symbolic links (\S+) and \S+ differ$/.exec(line);
    if (m) { fromDiffR.add(path.relative(a, m[1]!)); continue; }
    m = /^File (\S+) is a (.+) while file \S+ is a .+$/.exec(line);
    if (m) { fromDiffR.add(path.relative(a, m[1]!)); continue; }
    t.fail(`unexpected diff -r line: ${line}`);
  }
  const ours = new Set<string>();
  for (const e of diff(repo, { a: 'a', b: 'b', renames: false }).entries) {
    const top = e.status === 'A' || e.status === 'D' ? e.path : undefined;
    // diff -r names a new or removed directory once, not its children.
    if (top && [...ours].some((p) => top.startsWith(`${p}/`))) continue;
    if (e.status === 'A' || e.status === 'D' || e.status === 'T' || e.changes?.some((c) => c === 'content' || c === 'target')) ours.add(e.path);
  }
  t.deepEqual([...ours].sort(), [...fromDiffR].sort());
});

test('diff: patches for text, a note for binary and oversized files; package-level diff', async (t) => {
  const repo = await committedPair(t);
  const d = diff(repo, { a: 'a', b: 'b' });
  const byPath = new Map(d.entries.map((e) => [e.path, e]));
  t.regex((await patchFor(repo, byPath.get('etc/hostname')!))!, /--- a\/etc\/hostname\n\+\+\+ b\/etc\/hostname\n@@ -1,1 \+1,1 @@\n-one\n\+two/);
  t.is(await patchFor(repo, byPath.get('data/bin.dat')!), 'Binary files a/data/bin.dat and b/data/bin.dat differ\n');
  t.regex((await patchFor(repo, byPath.get('etc/hostname')!, { maxBytes: 2 }))!, /larger than 2 bytes/);
  t.is(await patchFor(repo, byPath.get('etc/perm.conf')!), undefined);
  const p = await diffPackages(repo, 'a', 'b');
  t.deepEqual(p.changes.map((c) => `${c.change} ${c.name} ${c.from ?? ''}>${c.to ?? ''}`), [
    'removed gone 1.0>', 'added htop >3.2.2-2', 'upgraded openssl 3.0.11-1~deb12u2>3.0.13-1~deb12u1',
  ]);
});

(isRoot ? test : test.skip)('diff: owners (as root) and a disk partition against a directory', async (t) => {
  const dir = tmpDir(t);
  const { a } = makePair(dir);
  const b = path.join(dir, 'b2');
  execFileSync('cp', ['-a', a, b]);
  fs.lchownSync(path.join(b, 'etc/hostname'), 1000, 1000);
  fs.lutimesSync(path.join(b, 'etc/hostname'), T0, T0);
  const { repo } = tmpRepo(t);
  await commitAt(repo, a, { branch: 'a' });
  await commitAt(repo, b, { branch: 'b' });
  const e = diff(repo, { a: 'a', b: 'b' }).entries;
  t.deepEqual(e.map((x) => [x.path, x.changes]), [['etc/hostname', ['owner']]]);
  // The same tree as a bare ext4 disk: only what mke2fs adds (lost+found) and directory mtimes differ.
  const img = path.join(dir, 'fs.img');
  execFileSync('truncate', ['-s', '32M', img]);
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', a, img]);
  await commitAt(repo, img, { branch: 'disk' });
  const vs = diff(repo, { a: 'a', b: 'disk', ignoreMtime: true }).entries;
  t.deepEqual(vs.map((x) => `${x.status} ${x.path}`), ['A lost+found']);
});
