/**
 * Tests of derive and the mutable tree under it: every edit kind gives the tree id that committing the same edit made
 * on a real directory gives; hardlink groups; refusals; derivation records; build avoidance.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { EditFailedError, PathNotFoundError, RevisionNotFoundError, SourceReadError, UsageError } from '../../src/errors.js';
import { derive, type EditSpec } from '../../src/ops/derive.js';
import { parseEdit } from '../../src/ops/edit-syntax.js';
import { decodeDerivation, recipeId } from '../../src/model/derivation.js';
import { readCommit } from '../../src/store/typed.js';
import { MutableTree } from '../../src/tree/mutable-tree.js';
import { AUTHOR, TIME, commitAt, tmpDir, tmpRepo, writeTree, type Spec } from '../helpers/repo.js';

const SPEC: Spec = {
  etc: { hostname: 'base\n', motd: 'welcome\n', ssh: { sshd_config: 'Port 22\n' } },
  usr: { bin: { tool: 'binary\0data' }, share: { doc: { 'a.txt': 'a'.repeat(1000) } } },
  var: { lib: { x: 'x' } },
};
const EDIT_TIME = TIME + 100;
const FIXED = new Date('2020-01-02T03:04:05Z');

/** Gives `p` (not following symlinks) the mtime `date` (seconds). */
function touch(p: string, seconds: number): void {
  execFileSync('touch', ['-h', '-d', `@${seconds}`, p]);
}

/** Commits `dir`, derives `edits` from it, applies `onHost` to a copy and commits that: the two tree ids must agree. */
async function sameAsHost(t: import('ava').ExecutionContext, spec: Spec, edits: EditSpec[], onHost: (root: string) => void): Promise<void> {
  const { repo, dir } = tmpRepo(t);
  const base = path.join(dir, 'base');
  writeTree(base, spec);
  await commitAt(repo, base, { branch: 'base' });
  const d = await derive(repo, { base: 'base', branch: 'derived', edits, author: AUTHOR, time: EDIT_TIME });
  const copy = path.join(dir, 'copy');
  execFileSync('cp', ['-a', base, copy]);
  onHost(copy);
  // Directories keep their metadata under derive: put back the mtimes the host edits bumped.
  for (const p of execFileSync('find', [copy, '-type', 'd'], { encoding: 'utf8' }).trim().split('\n')) {
    const rel = path.relative(copy, p);
    const orig = path.join(base, rel);
    if (fs.existsSync(orig) && fs.lstatSync(orig).isDirectory()) fs.utimesSync(p, FIXED, FIXED);
  }
  const c = await commitAt(repo, copy, { branch: 'host' });
  t.is(d.tree, c.tree);
  const dc = readCommit(repo.objects, d.id);
  t.deepEqual(dc.rootMeta, readCommit(repo.objects, c.id).rootMeta);
}

test('derive: --set on an existing file keeps its mode and owner, takes the commit time', (t) =>
  sameAsHost(t, SPEC, [{ op: 'set', path: 'etc/hostname', data: Buffer.from('web01\n') }], (r) => {
    fs.writeFileSync(path.join(r, 'etc/hostname'), 'web01\n');
    touch(path.join(r, 'etc/hostname'), EDIT_TIME);
  }));

test('derive: --set of a new file in new directories is 0644 root:root, parents 0755, times the commit time', (t) =>
  sameAsHost(t, SPEC, [{ op: 'set', path: 'srv/www/index.html', data: Buffer.from('<h1>') }], (r) => {
    fs.mkdirSync(path.join(r, 'srv/www'), { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(r, 'srv/www/index.html'), '<h1>', { mode: 0o644 });
    fs.chmodSync(path.join(r, 'srv/www/index.html'), 0o644);
    fs.chmodSync(path.join(r, 'srv'), 0o755);
    fs.chmodSync(path.join(r, 'srv/www'), 0o755);
    for (const p of ['srv/www/index.html', 'srv/www', 'srv']) touch(path.join(r, p), EDIT_TIME);
  }));

test('derive: rm of a file and of a subtree, mkdir, symlink, rename', (t) =>
  sameAsHost(t, SPEC, [
    { op: 'rm', path: 'etc/motd' },
    { op: 'rm', path: 'usr/share' },
    { op: 'mkdir', path: 'opt/app', mode: 0o750 },
    { op: 'symlink', path: 'opt/current', target: 'app' },
    { op: 'rename', path: 'var/lib/x', to: 'var/y' },
  ], (r) => {
    fs.rmSync(path.join(r, 'etc/motd'));
    fs.rmSync(path.join(r, 'usr/share'), { recursive: true });
    fs.mkdirSync(path.join(r, 'opt/app'), { recursive: true });
    fs.chmodSync(path.join(r, 'opt'), 0o755);
    fs.chmodSync(path.join(r, 'opt/app'), 0o750);
    fs.symlinkSync('app', path.join(r, 'opt/current'));
    fs.renameSync(path.join(r, 'var/lib/x'), path.join(r, 'var/y'));
    for (const p of ['opt/current', 'opt/app', 'opt']) touch(path.join(r, p), EDIT_TIME);
  }));

test('derive: chmod (setuid), chown, xattrs set and removed, mtime', async (t) => {
  const xattrs = (() => { try { execFileSync('setfattr', ['--version']); return true; } catch { return false; } })();
  const edits: EditSpec[] = [
    { op: 'chmod', path: 'usr/bin/tool', mode: 0o4755 },
    { op: 'chown', path: 'etc/ssh', uid: 1000, gid: 100 },
    { op: 'mtime', path: 'etc/hostname', time: 1_600_000_000 },
  ];
  if (xattrs) edits.push({ op: 'xattr', path: 'etc/hostname', name: 'user.role', value: Buffer.from('web') }, { op: 'xattr', path: 'etc/motd', name: 'user.gone', value: Buffer.from('1') }, { op: 'rm-xattr', path: 'etc/motd', name: 'user.gone' });
  await sameAsHost(t, SPEC, edits, (r) => {
    fs.chmodSync(path.join(r, 'usr/bin/tool'), 0o4755);
    fs.chownSync(path.join(r, 'etc/ssh'), 1000, 100);
    touch(path.join(r, 'etc/hostname'), 1_600_000_000);
    if (xattrs) execFileSync('setfattr', ['-n', 'user.role', '-v', 'web', path.join(r, 'etc/hostname')]);
  });
});

test('derive: --add of a host directory merges it in with its metadata; of a file places it; of a tar unpacks it', async (t) => {
  const { dir } = tmpRepo(t);
  const overlay = path.join(dir, 'overlay');
  writeTree(overlay, { etc: { motd: 'overlaid\n', 'app.conf': 'a=1\n' }, opt: { tool: 'T' } });
  const single = path.join(dir, 'single.txt');
  fs.writeFileSync(single, 'one file\n');
  fs.chmodSync(single, 0o600);
  const tar = path.join(dir, 'bundle.tar');
  execFileSync('tar', ['-C', overlay, '--numeric-owner', '-cf', tar, 'opt']);
  await sameAsHost(t, SPEC, [
    { op: 'add', host: overlay, path: '' },
    { op: 'add', host: single, path: 'root/notes.txt' },
    { op: 'add', host: tar, path: 'srv' },
  ], (r) => {
    execFileSync('cp', ['-a', `${overlay}/.`, r]);
    fs.mkdirSync(path.join(r, 'root'));
    fs.chmodSync(path.join(r, 'root'), 0o755);
    execFileSync('cp', ['-a', single, path.join(r, 'root/notes.txt')]);
    touch(path.join(r, 'root'), EDIT_TIME);
    fs.mkdirSync(path.join(r, 'srv'));
    fs.chmodSync(path.join(r, 'srv'), 0o755);
    execFileSync('tar', ['-C', path.join(r, 'srv'), '--numeric-owner', '-xpf', tar]);
    touch(path.join(r, 'srv'), EDIT_TIME);
  });
});

test('derive: hardlinked files change together; removing the first name renames the group', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const base = path.join(dir, 'base');
  writeTree(base, { a: { one: 'same' }, b: { two: 'other' } });
  fs.linkSync(path.join(base, 'a/one'), path.join(base, 'b/link'));
  fs.linkSync(path.join(base, 'a/one'), path.join(base, 'c-link'));
  fs.utimesSync(path.join(base, 'b'), FIXED, FIXED);
  fs.utimesSync(base, FIXED, FIXED);
  await commitAt(repo, base, { branch: 'base' });

  // chmod of one name is a chmod of the inode; content written in place changes every name.
  const d1 = await derive(repo, { base: 'base', branch: 'd1', author: AUTHOR, time: EDIT_TIME, edits: [
    { op: 'chmod', path: 'b/link', mode: 0o600 },
    { op: 'set', path: 'c-link', data: Buffer.from('new') },
  ] });
  const h1 = path.join(dir, 'h1');
  execFileSync('cp', ['-a', base, h1]);
  fs.chmodSync(path.join(h1, 'b/link'), 0o600);
  fs.writeFileSync(path.join(h1, 'c-link'), 'new');
  touch(path.join(h1, 'c-link'), EDIT_TIME);
  t.is(d1.tree, (await commitAt(repo, h1, { branch: 'h1' })).tree);

  // Removing the group's canonical (smallest) name: the others are still one group, named by the next one.
  const d2 = await derive(repo, { base: 'base', branch: 'd2', author: AUTHOR, time: EDIT_TIME, edits: [{ op: 'rm', path: 'a/one' }] });
  const h2 = path.join(dir, 'h2');
  execFileSync('cp', ['-a', base, h2]);
  fs.rmSync(path.join(h2, 'a/one'));
  fs.utimesSync(path.join(h2, 'a'), FIXED, FIXED);
  t.is(d2.tree, (await commitAt(repo, h2, { branch: 'h2' })).tree);

  // Down to one name: no group at all.
  const d3 = await derive(repo, { base: 'base', branch: 'd3', author: AUTHOR, time: EDIT_TIME, edits: [{ op: 'rm', path: 'a' }, { op: 'rm', path: 'c-link' }] });
  const h3 = path.join(dir, 'h3');
  execFileSync('cp', ['-a', base, h3]);
  fs.rmSync(path.join(h3, 'a'), { recursive: true });
  fs.rmSync(path.join(h3, 'c-link'));
  fs.utimesSync(h3, FIXED, FIXED);
  t.is(d3.tree, (await commitAt(repo, h3, { branch: 'h3' })).tree);
});

test('derive: --add of a host directory with hardlinks keeps them one group, named by their new paths', async (t) => {
  const { dir } = tmpRepo(t);
  const overlay = path.join(dir, 'overlay');
  writeTree(overlay, { bin: { tool: 'T' }, sbin: {} });
  fs.linkSync(path.join(overlay, 'bin/tool'), path.join(overlay, 'sbin/tool'));
  fs.utimesSync(path.join(overlay, 'sbin'), FIXED, FIXED);
  await sameAsHost(t, SPEC, [{ op: 'add', host: overlay, path: 'opt/pkg' }], (r) => {
    fs.mkdirSync(path.join(r, 'opt'));
    fs.chmodSync(path.join(r, 'opt'), 0o755);
    execFileSync('cp', ['-a', overlay, path.join(r, 'opt/pkg')]);
    touch(path.join(r, 'opt'), EDIT_TIME);
  });
});

test('derive: one edit on a nested path, alone, is applied (the root is written even when the edit reads it first)', async (t) => {
  for (const edit of [
    { op: 'rm', path: 'etc/motd' }, { op: 'chown', path: 'etc/motd', uid: 1, gid: 2 }, { op: 'mtime', path: 'etc/motd', time: 5 },
    { op: 'symlink', path: 'etc/l', target: 'x' }, { op: 'xattr', path: 'etc/motd', name: 'user.a', value: Buffer.from('1') },
  ] as EditSpec[]) {
    const { repo, dir } = tmpRepo(t);
    const base = path.join(dir, 'base');
    writeTree(base, SPEC);
    const b = await commitAt(repo, base, { branch: 'base' });
    const d = await derive(repo, { base: 'base', branch: 'd', author: AUTHOR, time: EDIT_TIME, edits: [edit] });
    t.not(d.tree, b.tree, edit.op);
    t.is(d.treesWritten, 2, edit.op);
  }
});

test('derive: only the directories on edited paths are written; the base is not read beyond them', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const base = path.join(dir, 'base');
  writeTree(base, SPEC);
  await commitAt(repo, base, { branch: 'base' });
  const r = await derive(repo, { base: 'base', branch: 'd', author: AUTHOR, time: EDIT_TIME, edits: [{ op: 'set', path: 'etc/ssh/sshd_config', data: Buffer.from('Port 2222\n') }] });
  t.is(r.treesWritten, 3); // root, etc, etc/ssh
  const tree = MutableTree.open(repo.objects, { tree: readCommit(repo.objects, repo.refs.resolve('refs/heads/base')?.oid!).root });
  tree.chmod(Buffer.from('etc/motd'), 0o600);
  // usr and var were never read.
  const root = tree.root.children!;
  t.is(root.get('usr')!.children, undefined);
  t.is(root.get('var')!.children, undefined);
});

test('derive: refusals name the edit and leave the branch where it was', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const base = path.join(dir, 'base');
  writeTree(base, SPEC);
  fs.symlinkSync('etc', path.join(base, 'link'));
  await commitAt(repo, base, { branch: 'base' });
  const run = (edits: EditSpec[]) => derive(repo, { base: 'base', branch: 'x', author: AUTHOR, time: EDIT_TIME, edits });
  const through = await t.throwsAsync(run([{ op: 'set', path: 'link/hostname', data: Buffer.from('x') }]), { instanceOf: EditFailedError });
  t.regex(through!.message, /'link' is a symlink/);
  t.regex((await t.throwsAsync(run([{ op: 'set', path: '../escape', data: Buffer.from('x') }]), { instanceOf: EditFailedError }))!.message, /name '\.\.'/);
  const missing = await t.throwsAsync(run([{ op: 'rm', path: 'etc/nope' }]), { instanceOf: EditFailedError });
  t.true(missing!.cause instanceof PathNotFoundError);
  await t.throwsAsync(run([{ op: 'chmod', path: 'nope/x', mode: 0o600 }]), { instanceOf: EditFailedError });
  await t.throwsAsync(run([{ op: 'rm-xattr', path: 'etc/motd', name: 'user.none' }]), { instanceOf: EditFailedError });
  await t.throwsAsync(run([{ op: 'set', path: 'etc', data: Buffer.from('x') }]), { instanceOf: EditFailedError });
  await t.throwsAsync(run([{ op: 'rm', path: '' }]), { instanceOf: UsageError });
  // A name that reached us with U+FFFD for its non-UTF-8 bytes would write another file.
  await t.throwsAsync(run([{ op: 'set', path: 'etc/bad\uFFFDname', data: Buffer.from('x') }]), { instanceOf: UsageError, message: /not UTF-8/ });
  await t.throwsAsync(run([{ op: 'set', path: 'etc/motd/', data: Buffer.from('x') }]), { instanceOf: UsageError, message: /ending in '\/'/ });
  // As mv -T: a directory never replaces a file.
  await t.throwsAsync(run([{ op: 'rename', path: 'etc/ssh', to: 'etc/motd' }]), { instanceOf: EditFailedError, message: /is not a directory/ });
  t.throws(() => parseEdit('xattr', 'etc/motd:user.a=0s!!!'), { instanceOf: UsageError, message: /not valid base64/ });
  t.throws(() => parseEdit('xattr', 'etc/motd:bogus.a=v'), { instanceOf: UsageError, message: /not in a namespace/ });
  t.throws(() => parseEdit('chmod', '17777:etc/motd'), { instanceOf: UsageError, message: /out of range/ });
  t.deepEqual(parseEdit('set', '"etc/a=b"=text'), { op: 'set', path: '"etc/a=b"', data: Buffer.from('text') });
  await t.throwsAsync(run([{ op: 'add', host: path.join(dir, 'missing'), path: 'x' }]), { instanceOf: SourceReadError });
  await t.throwsAsync(derive(repo, { base: 'nope', branch: 'x', author: AUTHOR, edits: [{ op: 'rm', path: 'etc' }] }), { instanceOf: RevisionNotFoundError });
  t.is(repo.refs.resolve('refs/heads/x')?.oid, undefined);
});

test('derive: the commit carries its derivation; a second derive on the branch has the first as parent', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const base = path.join(dir, 'base');
  writeTree(base, SPEC);
  const b = await commitAt(repo, base, { branch: 'base' });
  const edits: EditSpec[] = [{ op: 'set', path: 'etc/hostname', data: Buffer.from('web01\n') }, { op: 'rm', path: 'etc/motd' }];
  const d = await derive(repo, { base: 'base', branch: 'web', author: AUTHOR, time: EDIT_TIME, edits });
  const c = readCommit(repo.objects, d.id);
  t.deepEqual(c.parents, []);
  const dv = decodeDerivation(c.derivation!);
  if (dv.kind !== 'derive') return t.fail(`a ${dv.kind} derivation, not derive`);
  t.deepEqual(dv.bases, [{ commit: b.id, rootKind: 'tree', root: b.root }]);
  t.is(dv.recipe.time, EDIT_TIME);
  t.deepEqual(dv.recipe.edits.map((e) => e.op), ['write', 'rm']);
  t.is(recipeId(dv.recipe), d.recipe);
  t.regex(dv.tool, /^viva \d+\.\d+\.\d+/);
  const again = await derive(repo, { base: 'base', branch: 'web', author: AUTHOR, time: EDIT_TIME, edits });
  t.deepEqual(readCommit(repo.objects, again.id).parents, [d.id]);
  // The same recipe on the same base tree: its earlier result is reused, not made again.
  t.true(again.reused);
  t.is(again.tree, d.tree);
});
