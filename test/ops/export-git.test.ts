/** export-git and import-git on real repositories and real git: history, merges, incremental exports, round trips, edits made in git, errors. */
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CorruptInputError, DestinationNotEmptyError, RefConflictError, RefExistsError, RefNotFoundError, RevisionNotFoundError, UnsupportedInputError, UsageError } from '../../src/errors.js';
import { exportGit } from '../../src/ops/export-git.js';
import { importGit } from '../../src/ops/import-git.js';
import { merge } from '../../src/ops/merge.js';
import { createRef } from '../../src/ops/branch.js';
import { readCommit, readTree } from '../../src/store/typed.js';
import { AUTHOR, TIME, commitAt, randomBytes, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';

const haveGit = spawnSync('git', ['--version']).status === 0;
const gitTest = haveGit ? test : test.skip;

function gitOut(dir: string, ...args: string[]): string {
  return execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: dir } });
}

function fsckStrict(t: ExecutionContext, dir: string): void {
  const r = spawnSync('git', ['-C', dir, 'fsck', '--strict', '--no-dangling'], { encoding: 'utf8' });
  t.is(r.status, 0, `git fsck --strict: ${r.stdout}${r.stderr}`);
  t.notRegex(r.stderr + r.stdout, /error|warning/i);
}

/** main: base → second; feature: base → feat; main merged with feature. */
async function history(t: ExecutionContext) {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, { etc: { hostname: 'base\n', motd: 'hello\n' }, usr: { bin: { tool: '#!/bin/sh\n' } } });
  fs.chmodSync(path.join(src, 'usr/bin/tool'), 0o4755);
  const base = await commitAt(repo, src, { branch: 'main', message: 'base image' });
  writeTree(src, { etc: { hostname: 'second\n' } });
  const second = await commitAt(repo, src, { branch: 'main', message: 'second\n\nwith a body', tick: 10 });
  const src2 = path.join(dir, 'src2');
  writeTree(src2, { etc: { hostname: 'base\n', motd: 'hello\n', extra: 'feature\n' }, usr: { bin: { tool: '#!/bin/sh\n' } } });
  fs.chmodSync(path.join(src2, 'usr/bin/tool'), 0o4755);
  await createRef(repo, { kind: 'branch', name: 'feature', rev: base.id });
  const feat = await commitAt(repo, src2, { branch: 'feature', message: 'add extra', tick: 20 });
  const m = await merge(repo, { a: 'main', b: 'feature', message: 'merge feature', author: AUTHOR, time: TIME + 30 });
  t.is(m.status, 'merged');
  return { repo, dir, src, base, second, feat, merged: repo.refs.resolve('refs/heads/main')?.oid! };
}

gitTest('export-git: one git commit per viva commit with author, date, message and the merge; fsck --strict is clean', async (t) => {
  const h = await history(t);
  const out = path.join(h.dir, 'out.git');
  const r = await exportGit(h.repo, { revs: ['main', 'feature'], dir: out });
  t.true(r.created);
  t.true(r.bare);
  t.is(r.commits, 4);
  t.deepEqual(r.refs.map((x) => x.ref), ['refs/heads/main', 'refs/heads/feature']);
  t.is(r.head, 'refs/heads/main');
  fsckStrict(t, out);
  t.is(gitOut(out, 'log', '--format=%s|%an <%ae>|%at', 'main'), [
    `merge feature|Viva Test <test@example.org>|${TIME + 30}`,
    `add extra|Viva Test <test@example.org>|${TIME + 20}`,
    `second|Viva Test <test@example.org>|${TIME + 10}`,
    `base image|Viva Test <test@example.org>|${TIME}`,
  ].join('\n') + '\n');
  const tz = readCommit(h.repo.objects, h.base.id).tzOffset;
  const sign = tz < 0 ? '-' : '+';
  t.is(gitOut(out, 'log', '-1', '--format=%ad', '--date=format:%z', 'main~1~1').trim(), `${sign}${String(Math.floor(Math.abs(tz) / 60)).padStart(2, '0')}${String(Math.abs(tz) % 60).padStart(2, '0')}`);
  t.is(gitOut(out, 'rev-list', '--merges', '--count', 'main').trim(), '1');
  t.is(gitOut(out, 'log', '-1', '--format=%B', 'main~1').trim(), 'second\n\nwith a body');
  t.is(gitOut(out, 'symbolic-ref', 'HEAD').trim(), 'refs/heads/main');
  t.is(gitOut(out, 'show', 'main:etc/hostname'), 'second\n');
  // The setuid bit is in the sidecar; git itself knows the file as executable.
  t.regex(gitOut(out, 'ls-tree', 'main:usr/bin'), /^100755 blob \w+\ttool$/m);
  t.regex(gitOut(out, 'show', 'main:usr/bin/.viva-meta'), /^tool file 4755 \d+:\d+ \d+$/m);
  t.regex(gitOut(out, 'show', 'main:.viva-meta'), /^@root dir 0755 /m);
});

gitTest('export-git: a second export writes only the new commits; unchanged directories are not written again', async (t) => {
  const h = await history(t);
  const out = path.join(h.dir, 'out.git');
  const first = await exportGit(h.repo, { revs: ['main'], dir: out });
  t.is(first.commits, 4);
  const again = await exportGit(h.repo, { revs: ['main'], dir: out });
  t.is(again.commits, 0);
  t.is(again.upToDate, 1);
  t.is(again.blobs, 0);
  writeTree(h.src, { etc: { hostname: 'third\n' } });
  await commitAt(h.repo, h.src, { branch: 'main', message: 'third', tick: 40 });
  const third = await exportGit(h.repo, { revs: ['main'], dir: out });
  t.is(third.commits, 1);
  // Only the changed file is a new blob (the sidecars record no file sizes, and no other metadata changed); the
  // trees of etc/ and of the root are new, usr/ is reused.
  t.is(third.blobs, 1);
  t.is(third.trees, 2);
  t.is(gitOut(out, 'rev-list', '--count', 'main').trim(), '5');
  t.is(gitOut(out, 'log', '-1', '--format=%s', 'main').trim(), 'third');
  t.regex(fs.readFileSync(path.join(out, 'viva/export-map'), 'utf8'), /^viva-export 1 full\n([0-9a-f]{64} [0-9a-f]{40}\n){5}$/);
  fsckStrict(t, out);
});

gitTest('import-git: the round trip gives the identical commits (ids), trees and history, merge included', async (t) => {
  const h = await history(t);
  const out = path.join(h.dir, 'out.git');
  await exportGit(h.repo, { revs: ['main'], dir: out });
  const { repo: fresh } = tmpRepo(t);
  const r = await importGit(fresh, { dir: out, ref: 'main' });
  t.is(r.branch, 'refs/heads/main');
  t.is(r.id, h.merged);
  t.is(r.commits, 4);
  t.is(r.identical, 4);
  const mc = readCommit(fresh.objects, r.id);
  t.is(mc.parents.length, 2);
  t.truthy(mc.derivation, 'the merge keeps its derivation record');
  t.deepEqual(mc, readCommit(h.repo.objects, h.merged));
  t.is(readCommit(fresh.objects, h.second.id).root, h.second.tree);
  // Again: nothing changes.
  const again = await importGit(fresh, { dir: out, ref: 'main' });
  t.is(again.id, h.merged);
});

gitTest('export-git: names git refuses or treats specially (.git, .gitmodules, .viva-meta, not UTF-8) are escaped; fsck --strict stays clean and the round trip is exact', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, {
    '.git': { config: '[core]\n\tbare = true\n' },
    sub: { '.gitmodules': '[submodule "../../evil"]\n\tpath = x\n\turl = --upload-pack=touch\n', '.GITattributes': 'x'.repeat(10) },
    '.viva-meta': 'not a sidecar\n',
    'git~1': 'ntfs\n',
    'a b': 'space\n',
  });
  fs.writeFileSync(Buffer.from(path.join(src, 'latin1-\xe9'), 'latin1'), 'x\n');
  fs.symlinkSync('target', path.join(src, 'sub', '.gitignore'));
  const c = await commitAt(repo, src, { branch: 'main', message: 'odd names' });
  const out = path.join(dir, 'out.git');
  await exportGit(repo, { revs: ['main'], dir: out });
  fsckStrict(t, out);
  const names = gitOut(out, 'ls-tree', '-r', '--name-only', 'main').split('\n').filter((n) => n);
  t.deepEqual(names.filter((n) => !n.includes('.viva-x-') && !n.endsWith('.viva-meta')).sort(), ['a b']);
  t.true(names.includes('.viva-x-2e676974/config'));
  t.true(names.includes('.viva-x-2e766976612d6d657461'));
  const { repo: fresh } = tmpRepo(t);
  const r = await importGit(fresh, { dir: out, ref: 'main' });
  t.is(r.tree, c.tree);
  t.is(r.id, c.id);
});

gitTest('import-git: large files stream (same blob ids), holes come back as holes; bytes written into a hole in git are refused', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, { big: randomBytes(6 << 20, 'big') });
  const sparse = path.join(src, 'sparse');
  const fd = fs.openSync(sparse, 'w');
  fs.writeSync(fd, Buffer.from('middle'), 0, 6, 8 << 20);
  fs.ftruncateSync(fd, 16 << 20);
  fs.closeSync(fd);
  const c = await commitAt(repo, src, { branch: 'main', message: 'large and sparse' });
  const sp = readTree(repo.objects, c.tree).entries.find((e) => e.name.toString() === 'sparse')!;
  const out = path.join(dir, 'out.git');
  await exportGit(repo, { revs: ['main'], dir: out });
  const { repo: fresh } = tmpRepo(t);
  const r = await importGit(fresh, { dir: out, ref: 'main' });
  t.is(r.tree, c.tree);
  t.deepEqual(readTree(fresh.objects, r.tree).entries.find((e) => e.name.toString() === 'sparse')!.holes, sp.holes);
  if (!sp.holes?.length) return t.log('this file system made no holes: the hole check below is not reached');
  const wt = path.join(dir, 'wt');
  execFileSync('git', ['clone', '-q', out, wt]);
  const f = fs.openSync(path.join(wt, 'sparse'), 'r+');
  fs.writeSync(f, Buffer.from('X'), 0, 1, sp.holes[0]!.offset);
  fs.closeSync(f);
  execFileSync('git', ['-C', wt, '-c', 'user.name=G', '-c', 'user.email=g@x', 'commit', '-qam', 'write into a hole']);
  const { repo: other } = tmpRepo(t);
  await t.throwsAsync(importGit(other, { dir: wt, ref: 'main' }), { instanceOf: CorruptInputError, message: /: sparse: hole \d+\+\d+ holds bytes that are not zero$/ });
  t.is(other.refs.list().length, 0);
});

gitTest('import-git: reads packed objects too (after git gc), and export-git adds to a packed repository', async (t) => {
  const h = await history(t);
  const out = path.join(h.dir, 'out.git');
  await exportGit(h.repo, { revs: ['main'], dir: out });
  execFileSync('git', ['-C', out, 'gc', '-q', '--prune=now']);
  t.is(execFileSync('find', [path.join(out, 'objects'), '-type', 'f', '-path', '*/objects/??/*'], { encoding: 'utf8' }), '', 'no loose objects left');
  const { repo: fresh } = tmpRepo(t);
  const r = await importGit(fresh, { dir: out, ref: 'main' });
  t.is(r.id, h.merged);
  writeTree(h.src, { etc: { hostname: 'after gc\n' } });
  await commitAt(h.repo, h.src, { branch: 'main', message: 'after gc', tick: 60 });
  t.is((await exportGit(h.repo, { revs: ['main'], dir: out })).commits, 1);
  fsckStrict(t, out);
  t.is((await importGit(fresh, { dir: out, ref: 'main' })).commits, 5);
});

gitTest('import-git: a commit made in git comes back as a new commit on top; untouched directories keep their tree ids', async (t) => {
  const h = await history(t);
  const out = path.join(h.dir, 'out.git');
  await exportGit(h.repo, { revs: ['main'], dir: out });
  const wt = path.join(h.dir, 'wt');
  execFileSync('git', ['clone', '-q', out, wt]);
  fs.writeFileSync(path.join(wt, 'etc/hostname'), 'edited in git\n');
  fs.writeFileSync(path.join(wt, 'etc/new-file'), 'new\n');
  execFileSync('git', ['-C', wt, '-c', 'user.name=Git User', '-c', 'user.email=git@example.org', 'commit', '-qam', 'edit in git']);
  execFileSync('git', ['-C', wt, 'add', 'etc/new-file']);
  execFileSync('git', ['-C', wt, '-c', 'user.name=Git User', '-c', 'user.email=git@example.org', 'commit', '-qm', 'add a file in git']);
  const r = await importGit(h.repo, { dir: wt, ref: 'main', branch: 'main' });
  t.is(r.commits, 6);
  t.is(r.identical, 4);
  const c = readCommit(h.repo.objects, r.id);
  t.is(c.message, 'add a file in git');
  t.is(c.author, 'Git User <git@example.org>');
  t.is(readCommit(h.repo.objects, c.parents[0]!).parents[0], h.merged, 'fast-forward on top of the exported history');
  const root = readTree(h.repo.objects, c.root);
  const usr = root.entries.find((e) => e.name.toString() === 'usr')!;
  const oldUsr = readTree(h.repo.objects, readCommit(h.repo.objects, h.merged).root).entries.find((e) => e.name.toString() === 'usr')!;
  t.deepEqual(usr, oldUsr);
  const etc = readTree(h.repo.objects, root.entries.find((e) => e.name.toString() === 'etc')!.oid!);
  const nf = etc.entries.find((e) => e.name.toString() === 'new-file')!;
  t.like(nf, { type: 'file', mode: 0o644, uid: 0, gid: 0, size: 4 });
  const hn = etc.entries.find((e) => e.name.toString() === 'hostname')!;
  t.is(hn.size, 'edited in git\n'.length);
});

gitTest('import-git: a malformed sidecar is refused naming the file, commit and line; nothing is written', async (t) => {
  const h = await history(t);
  const out = path.join(h.dir, 'out.git');
  await exportGit(h.repo, { revs: ['main'], dir: out });
  const wt = path.join(h.dir, 'wt');
  execFileSync('git', ['clone', '-q', out, wt]);
  const sc = path.join(wt, 'etc/.viva-meta');
  const lines = fs.readFileSync(sc, 'utf8').split('\n');
  lines[2] = lines[2]!.replace(/ 0644 /, ' 644 ');
  fs.writeFileSync(sc, lines.join('\n'));
  execFileSync('git', ['-C', wt, '-c', 'user.name=G', '-c', 'user.email=g@x', 'commit', '-qam', 'break the sidecar']);
  const sha = gitOut(wt, 'rev-parse', 'HEAD').trim();
  const { repo: fresh } = tmpRepo(t);
  const before = [...fresh.index.list('tree', '')].length;
  const e = await t.throwsAsync(importGit(fresh, { dir: wt, ref: 'main' }), { instanceOf: CorruptInputError });
  t.is(e!.message, `${wt}: etc/.viva-meta in commit ${sha.slice(0, 12)}: line 3: bad mode '644'`);
  t.is(fresh.refs.list().length, 0);
  // A fifo of the sidecar that git has as a file is refused too, before anything is written.
  execFileSync('git', ['-C', wt, 'reset', '-q', '--hard', 'HEAD~1']);
  fs.writeFileSync(sc, fs.readFileSync(sc, 'utf8').replace(/^motd file /m, 'motd fifo '));
  execFileSync('git', ['-C', wt, '-c', 'user.name=G', '-c', 'user.email=g@x', 'commit', '-qam', 'a fifo in the sidecar, a file in git']);
  await t.throwsAsync(importGit(fresh, { dir: wt, ref: 'main' }), { instanceOf: CorruptInputError, message: /etc\/\.viva-meta in commit [0-9a-f]{12}: 'motd': the sidecar lists it as a fifo, but git has it as a blob$/ });
  t.is([...fresh.index.list('tree', '')].length, before);
  t.is([...fresh.index.list('blob', '')].length, 0);
});

gitTest('export-git --manifests-only: one manifest per image, incremental; import refuses it', async (t) => {
  const h = await history(t);
  const out = path.join(h.dir, 'review.git');
  const r = await exportGit(h.repo, { revs: ['main'], dir: out, manifestsOnly: true });
  t.true(r.manifestsOnly);
  t.is(r.commits, 4);
  fsckStrict(t, out);
  t.is(gitOut(out, 'ls-tree', '--name-only', 'main'), 'manifest.txt\n');
  const m = gitOut(out, 'show', 'main:manifest.txt');
  t.regex(m, /^# viva manifest 1\n# tree [0-9a-f]{64}\n\. dir 0755 /);
  t.regex(m, /^etc\/hostname file 0644 \d+:\d+ 7 [0-9a-f]{64} 2020-01-02T03:04:05\.000000000Z xattrs=0$/m);
  t.regex(m, /^usr\/bin\/tool file 4755 /m);
  const diff = gitOut(out, 'diff', 'main~1~1', 'main~1', '--', 'manifest.txt');
  t.regex(diff, /^-etc\/hostname file .* 5 /m);
  t.regex(diff, /^\+etc\/hostname file .* 7 /m);
  t.is((await exportGit(h.repo, { revs: ['main'], dir: out, manifestsOnly: true })).commits, 0);
  await t.throwsAsync(exportGit(h.repo, { revs: ['main'], dir: out }), { instanceOf: UsageError, message: /holds a manifests-only export/ });
  const { repo: fresh } = tmpRepo(t);
  await t.throwsAsync(importGit(fresh, { dir: out, ref: 'main' }), { instanceOf: UnsupportedInputError, message: /'main' is a manifests-only export/ });
});

gitTest('export-git: into an existing git repository with a work tree, its .git gets the objects', async (t) => {
  const h = await history(t);
  const out = path.join(h.dir, 'work');
  execFileSync('git', ['init', '-q', out]);
  const r = await exportGit(h.repo, { revs: ['feature'], dir: out });
  t.false(r.bare);
  t.false(r.created);
  t.is(r.gitDir, path.join(out, '.git'));
  t.is(gitOut(out, 'log', '--format=%s', 'feature'), 'add extra\nbase image\n');
  fsckStrict(t, out);
  // A branch of the repository's own (a commit no export wrote) is never overwritten.
  execFileSync('git', ['-C', out, '-c', 'user.name=G', '-c', 'user.email=g@x', 'commit', '-q', '--allow-empty', '-m', 'own work']);
  const own = gitOut(out, 'rev-parse', 'HEAD').trim();
  execFileSync('git', ['-C', out, 'branch', '-f', 'main', own]);
  await t.throwsAsync(exportGit(h.repo, { revs: ['main'], dir: out }), { instanceOf: RefConflictError, message: `git ref 'refs/heads/main' in '${out}' points at ${own.slice(0, 12)}, which no viva export wrote: export into another directory, or delete that ref` });
  t.is(gitOut(out, 'rev-parse', 'main').trim(), own);
});

test('export-git and import-git: errors name what is wrong', async (t) => {
  const h = await history(t);
  const notGit = path.join(h.dir, 'not-git');
  fs.mkdirSync(notGit);
  fs.writeFileSync(path.join(notGit, 'x'), '');
  await t.throwsAsync(exportGit(h.repo, { revs: ['main'], dir: notGit }), { instanceOf: DestinationNotEmptyError, message: `destination '${notGit}' exists and is neither empty nor a git repository` });
  const out = path.join(h.dir, 'out.git');
  await t.throwsAsync(exportGit(h.repo, { revs: ['nosuch'], dir: out }), { instanceOf: RevisionNotFoundError, message: "unknown revision 'nosuch'" });
  t.false(fs.existsSync(out), 'nothing created for a bad revision');
  await t.throwsAsync(importGit(h.repo, { dir: notGit, ref: 'main' }), { instanceOf: UnsupportedInputError, message: `${notGit}: not a git repository` });
  await exportGit(h.repo, { revs: ['main'], dir: out });
  await t.throwsAsync(importGit(h.repo, { dir: out, ref: 'nosuch' }), { instanceOf: RefNotFoundError, message: `ref 'nosuch' not found in '${out}'` });
  // A branch that exists and is not part of the imported history is not overwritten.
  await commitAt(h.repo, h.src, { branch: 'other', message: 'unrelated', tick: 50 });
  const other = h.repo.refs.resolve('refs/heads/other')?.oid;
  await t.throwsAsync(importGit(h.repo, { dir: out, ref: 'main', branch: 'other' }), { instanceOf: RefExistsError, message: /branch 'other' already exists and is not part of the imported history/ });
  t.is(h.repo.refs.resolve('refs/heads/other')?.oid, other);
});

test('export-git: a revision that names no branch gets a refs/viva/commits/ ref and a detached HEAD', async (t) => {
  const h = await history(t);
  const out = path.join(tmpDir(t), 'g');
  const r = await exportGit(h.repo, { revs: ['main~1'], dir: out });
  t.deepEqual(r.refs.map((x) => x.ref), [`refs/viva/commits/${h.second.id}`]);
  t.is(r.head, r.refs[0]!.gitCommit);
});
