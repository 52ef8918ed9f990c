/** viva diff and viva packages on the command line: output, --json, --exit-code, paths after --, errors. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import { tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';

const STATUS = (v: string) => `Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${v}\n\nPackage: broken\nVersion: 1\n`;

async function setup(t: import('ava').ExecutionContext): Promise<string> {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(src, 'var/lib/dpkg'), { recursive: true });
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'one\n');
  fs.writeFileSync(path.join(src, 'var/lib/dpkg/status'), STATUS('3.0.11-1'));
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', '-C', repo, src, '-b', 'img', '-m', 'one']);
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'two\n');
  fs.writeFileSync(path.join(src, 'etc/added'), 'new\n');
  fs.writeFileSync(path.join(src, 'var/lib/dpkg/status'), STATUS('3.0.13-1'));
  await vivaOk(t, ['commit', '-C', repo, src, '-b', 'img', '-m', 'two']);
  return repo;
}

test('cli diff: name-status lines, -p, --stat, --json, paths after --, one-revision form, --exit-code', async (t) => {
  const repo = await setup(t);
  const r = await vivaOk(t, ['diff', '-C', repo, 'img~1', 'img', '--ignore-mtime']);
  t.is(r.stdout, 'A\tetc/added\nM\tetc/hostname\t[content]\nM\tvar/lib/dpkg/status\t[content]\n');
  t.is((await vivaOk(t, ['diff', '-C', repo, 'img', '--ignore-mtime'])).stdout, r.stdout, 'one revision: compared with its parent');
  const p = await vivaOk(t, ['diff', '-C', repo, 'img~1', 'img', '-p', '--', 'etc/hostname']);
  t.is((await vivaOk(t, ['diff', '-C', repo, 'img', '-p', '--', 'etc/hostname'])).stdout, p.stdout, 'one revision with paths: the paths are not a revision');
  t.is((await viva(['diff', '-C', repo, '--', 'etc'])).code, EXIT.USAGE, 'paths without a revision');
  t.regex(p.stdout, /^M\tetc\/hostname\t\[content, mtime\]\n={10,}\n--- a\/etc\/hostname\n\+\+\+ b\/etc\/hostname\n@@ -1,1 \+1,1 @@\n-one\n\+two\n$/);
  t.regex((await vivaOk(t, ['diff', '-C', repo, 'img~1', 'img', '--stat', '--ignore-mtime'])).stdout, /3 entries changed \(1 added, 0 deleted, 2 modified, 0 type changes, 0 renamed\)/);
  const j = JSON.parse((await vivaOk(t, ['diff', '-C', repo, 'img~1', 'img', '--json', '--', 'etc'])).stdout);
  t.deepEqual(j.entries.map((e: { status: string; path: string }) => `${e.status} ${e.path}`), ['M etc', 'A etc/added', 'M etc/hostname']);
  t.is((await viva(['diff', '-C', repo, 'img~1', 'img', '--exit-code'])).code, EXIT.FAILURE);
  const same = await viva(['diff', '-C', repo, 'img', 'img', '--exit-code']);
  t.is(same.code, 0);
  t.is(same.stdout, '');
});

test('cli diff --packages and viva packages: versions in Debian order; malformed records are warnings', async (t) => {
  const repo = await setup(t);
  const d = await vivaOk(t, ['diff', '-C', repo, '--packages', 'img~1', 'img']);
  t.is(d.stdout, 'upgraded   openssl 3.0.11-1 -> 3.0.13-1 (amd64)\n');
  // Warnings are one line each, `warning: …`, as every other command's.
  // Both sides have the bad record: each line says which revision.
  t.is(d.stderr, "warning: img~1: var/lib/dpkg/status:6: package 'broken' has no Status field\nwarning: img: var/lib/dpkg/status:6: package 'broken' has no Status field\n");
  const pk = await vivaOk(t, ['packages', '-C', repo, 'img']);
  t.is(pk.stderr, "warning: var/lib/dpkg/status:6: package 'broken' has no Status field\n");
  const none = await vivaOk(t, ['packages', '-C', repo, 'img:var']);
  t.regex(none.stderr, /^warning: no package database \(.*\) in img:var\n$/);
  const j = await vivaJson(t, ['packages', '-C', repo, 'img']);
  t.deepEqual(j.packages, [{ name: 'openssl', version: '3.0.13-1', arch: 'amd64' }]);
  t.is((await vivaOk(t, ['packages', '-C', repo, 'img~1'])).stdout, 'openssl  3.0.11-1  amd64\n');
});

test('cli diff: bad revisions, paths and flags exit with their documented codes', async (t) => {
  const repo = await setup(t);
  const bad = await viva(['diff', '-C', repo, 'nope', 'img']);
  t.is(bad.code, EXIT.NOT_FOUND);
  t.regex(bad.stderr, /^error: unknown revision 'nope'\n$/);
  t.is((await viva(['diff', '-C', repo, 'img:no/such', 'img'])).code, EXIT.NOT_FOUND);
  t.is((await viva(['diff', '-C', repo, 'img~1', 'img', '-p', '--max-patch-size', 'huge'])).code, EXIT.USAGE);
  t.is((await viva(['diff', '-C', repo, 'img~1', 'img', 'img'])).code, EXIT.USAGE);
  const root = await viva(['diff', '-C', repo, 'img~1']);
  t.is(root.code, EXIT.USAGE, 'the root commit has no parent');
  t.regex(root.stderr, /^error: 'img~1' is a root commit: it has no parent to compare with/);
  // A range whose right side names a path inside its image.
  const ranged = await vivaOk(t, ['diff', '-C', repo, 'img~1..img:etc', '--ignore-mtime']);
  t.is(ranged.stdout, (await vivaOk(t, ['diff', '-C', repo, 'img~1', 'img:etc', '--ignore-mtime'])).stdout);
});

test('cli diff with a directory or tar on the host: compared as commit would read it, nothing written; ambiguous words refused', async (t) => {
  const repo = await setup(t);
  const dir = path.dirname(repo);
  const src = path.join(dir, 'src');
  // The last commit's source, unchanged: no difference, and nothing was added to the repository.
  const before = (await vivaJson(t, ['stats', '-C', repo])).objects;
  t.is((await vivaOk(t, ['diff', '-C', repo, 'img', src, '--exit-code'])).stdout, '');
  const work = path.join(dir, 'work');
  fs.cpSync(src, work, { recursive: true, preserveTimestamps: true });
  fs.writeFileSync(path.join(work, 'etc/hostname'), 'three\n');
  fs.rmSync(path.join(work, 'etc/added'));
  fs.writeFileSync(path.join(work, 'etc/brand-new'), 'brand new\n');
  const r = await viva(['diff', '-C', repo, 'img', work, '--ignore-mtime', '-p', '--exit-code', '--', 'etc']);
  t.is(r.code, EXIT.FAILURE, r.stderr);
  t.regex(r.stdout, /^D\tetc\/added\n/m);
  t.regex(r.stdout, /^A\tetc\/brand-new\n={10,}\n--- \/dev\/null\n\+\+\+ b\/etc\/brand-new\n@@ -0,0 \+1,1 @@\n\+brand new\n/m);
  t.regex(r.stdout, /^M\tetc\/hostname\t\[content 4 -> 6 bytes\]\n={10,}\n--- a\/etc\/hostname\n\+\+\+ b\/etc\/hostname\n@@ -1,1 \+1,1 @@\n-two\n\+three\n/m);
  // A tar of it, and two host sides; a host path alone is compared with HEAD.
  const tar = path.join(dir, 'work.tar');
  const { spawnSync } = await import('node:child_process');
  t.is(spawnSync('tar', ['--xattrs', '-C', work, '-cf', tar, '.']).status, 0);
  const names = async (args: string[]) => JSON.parse((await vivaOk(t, ['diff', '-C', repo, ...args, '--json', '--ignore-mtime'])).stdout).entries.map((e: { status: string; path: string }) => `${e.status} ${e.path}`);
  const want = ['D etc/added', 'A etc/brand-new', 'M etc/hostname'];
  t.deepEqual(await names(['img', tar]), want);
  t.deepEqual(await names([src, work]), want);
  t.deepEqual(await names([work]), want);
  t.deepEqual(await names([tar, 'img']), ['A etc/added', 'D etc/brand-new', 'M etc/hostname']);
  t.deepEqual((await vivaJson(t, ['stats', '-C', repo])).objects, before, 'nothing written');
  // A word that is a revision and a host path is ambiguous; ./ says the path.
  fs.mkdirSync(path.join(dir, 'img'));
  const amb = await viva(['diff', '-C', repo, 'img~1', 'img'], { cwd: dir });
  t.is(amb.code, EXIT.USAGE, amb.stderr);
  t.regex(amb.stderr, /ambiguous argument 'img': both a revision and a path on the host \(say \.\/img/);
  t.is((await viva(['diff', '-C', repo, 'img~1', './img'], { cwd: dir })).code, 0);
  t.is((await viva(['diff', '-C', repo, 'img', './nope'])).code, 14);
});
