/**
 * viva merge as a user runs it: clones of one base merged through their derivation base, fast-forward and up to
 * date, conflicts (nothing moves, exit 1), --resolve, --checkout and --continue, unrelated images, bad input, and a
 * merge of disk images.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { viva, vivaJson, vivaOk, tmpDir } from '../helpers/cli.js';
import { writeTree } from '../helpers/repo.js';

async function setup(t: ExecutionContext): Promise<{ repo: string; dir: string }> {
  const dir = tmpDir(t);
  const repo = path.join(dir, 'repo');
  writeTree(path.join(dir, 'base'), {
    etc: { hostname: 'base\n', motd: 'line 1\nline 2\nline 3\nline 4\nline 5\n', passwd: 'root:x:0:0:root:/root:/bin/sh\n', group: 'root:x:0:\nstaff:x:50:\n' },
    usr: { share: { doc: { a: 'a\n' } } },
  });
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', path.join(dir, 'base'), '-b', 'base', '-m', 'base', '-C', repo]);
  return { repo, dir };
}

const cat = async (repo: string, spec: string) => (await viva(['cat', spec, '-C', repo])).stdout;
const head = async (repo: string, b: string) => (await viva(['log', '-n', '1', '--oneline', '--no-decorate', b, '-C', repo])).stdout;

test('merge: two clones of one base meet at it (through derivations); each side\'s changes, text merged line by line, users merged per record', async (t) => {
  const { repo } = await setup(t);
  await vivaOk(t, ['derive', 'base', '-b', 'web', '--set', 'etc/hostname=web\n', '--set', 'etc/motd=line 1 web\nline 2\nline 3\nline 4\nline 5\n',
    '--set', 'etc/passwd=root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n', '--set', 'etc/group=root:x:0:\nstaff:x:50:www\n', '--set', 'srv/web/index.html=hi\n', '-C', repo]);
  await vivaOk(t, ['derive', 'base', '-b', 'sec', '--set', 'etc/motd=line 1\nline 2\nline 3\nline 4\nline 5 hardened\n', '--chmod', '0600:etc/motd',
    '--set', 'etc/passwd=root:x:0:0:root:/root:/bin/sh\nauditor:x:34:34::/nonexistent:/bin/false\n', '--set', 'etc/group=root:x:0:\nstaff:x:50:auditor\n', '--rm', 'usr/share/doc/a', '-C', repo]);
  const mb = await viva(['merge-base', 'web', 'sec', '-C', repo]);
  t.is(mb.stdout.trim(), (await vivaJson(t, ['show', 'base', '-C', repo])).id);
  const r = await vivaJson(t, ['merge', 'web', 'sec', '-C', repo]);
  t.is(r.status, 'merged');
  t.is(r.via, 'derivation');
  t.is(await cat(repo, 'web:etc/hostname'), 'web\n');
  t.is(await cat(repo, 'web:etc/motd'), 'line 1 web\nline 2\nline 3\nline 4\nline 5 hardened\n');
  // Records both sides added come after the base's, each side's as a block, the blocks in the order of their content.
  t.is(await cat(repo, 'web:etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nauditor:x:34:34::/nonexistent:/bin/false\nwww:x:33:33::/var/www:/bin/false\n');
  t.is(await cat(repo, 'web:etc/group'), 'root:x:0:\nstaff:x:50:auditor,www\n');
  t.is(await cat(repo, 'web:srv/web/index.html'), 'hi\n');
  t.is((await viva(['cat', 'web:usr/share/doc/a', '-C', repo])).code, 3);
  // The mode change of one side and the content change of both merge independently.
  t.regex((await viva(['ls', '-l', 'web:etc/motd', '-C', repo])).stdout, /^-rw-------/);
  const show = await vivaJson(t, ['show', 'web', '-C', repo]);
  t.is(show.parents.length, 2);
  t.is(show.derivation.kind, 'merge');
  t.is(show.derivation.bases.length, 2);
  // The other direction gives the same files.
  const back = await vivaJson(t, ['merge', 'sec', 'web~1', '-b', 'back', '-C', repo]);
  t.is(back.status, 'merged');
  for (const f of ['etc/motd', 'etc/passwd', 'etc/group', 'etc/hostname']) t.is(await cat(repo, `back:${f}`), await cat(repo, `web:${f}`), f);
});

test('merge: up to date, fast-forward, --no-ff', async (t) => {
  const { repo } = await setup(t);
  await vivaOk(t, ['branch', 'topic', 'base', '-C', repo]);
  await vivaOk(t, ['derive', 'topic', '-b', 'topic', '--set', 'etc/x=1\n', '-C', repo]);
  // topic's derive on itself is a child of base's head? derive makes topic's new commit with parent = topic's head.
  let r = await vivaJson(t, ['merge', 'topic', 'base', '-C', repo]);
  t.is(r.status, 'up-to-date');
  r = await vivaJson(t, ['merge', 'base', 'topic', '-C', repo]);
  t.is(r.status, 'fast-forward');
  t.is(await cat(repo, 'base:etc/x'), '1\n');
  await vivaOk(t, ['derive', 'topic', '-b', 'topic', '--set', 'etc/y=2\n', '-C', repo]);
  r = await vivaJson(t, ['merge', 'base', 'topic', '--no-ff', '-C', repo]);
  t.is(r.status, 'merged');
  t.is((await vivaJson(t, ['show', 'base', '-C', repo])).parents.length, 2);
});

test('merge: conflicts move nothing (exit 1, listed); --resolve; --checkout with markers and --continue', async (t) => {
  const { repo, dir } = await setup(t);
  // etc/bin: binary (a NUL byte), added on both sides differently.
  fs.writeFileSync(path.join(dir, 'bin-ours'), '\u0000ours');
  fs.writeFileSync(path.join(dir, 'bin-theirs'), '\u0000theirs');
  await vivaOk(t, ['derive', 'base', '-b', 'a', '--set', 'etc/motd=ours\n', '--set-file', `etc/bin=${path.join(dir, 'bin-ours')}`, '-C', repo]);
  await vivaOk(t, ['derive', 'base', '-b', 'b', '--set', 'etc/motd=theirs\n', '--set-file', `etc/bin=${path.join(dir, 'bin-theirs')}`, '-C', repo]);
  const before = await head(repo, 'a');
  const r = await viva(['merge', 'a', 'b', '-C', repo]);
  t.is(r.code, 1, r.stderr);
  t.regex(r.stdout, /^CONFLICT \(content\): etc\/motd: 1 overlapping change$/m);
  t.regex(r.stdout, /^CONFLICT \(add\/add\): etc\/bin: binary file$/m);
  t.is(await head(repo, 'a'), before);
  const json = await viva(['merge', 'a', 'b', '--json', '-C', repo]);
  t.deepEqual(JSON.parse(json.stdout).conflicts.map((c: { path: string; kind: string }) => `${c.kind} ${c.path}`), ['add/add etc/bin', 'content etc/motd']);
  // A resolution for a path without a conflict is refused.
  const bad = await viva(['merge', 'a', 'b', '--resolve', 'etc/hostname=ours', '--resolve', 'etc/motd=theirs', '--resolve', 'etc/bin=ours', '-C', repo]);
  t.is(bad.code, 2, bad.stderr);
  t.regex(bad.stderr, /etc\/hostname/);
  // Resolved up front: merged.
  fs.writeFileSync(path.join(dir, 'motd'), 'both\n');
  const ok = await vivaJson(t, ['merge', 'a', 'b', '-b', 'ab', '--resolve', `etc/motd=@${path.join(dir, 'motd')}`, '--resolve', 'etc/bin=theirs', '-C', repo]);
  t.is(ok.status, 'merged');
  t.is(await cat(repo, 'ab:etc/motd'), 'both\n');
  t.is(await cat(repo, 'ab:etc/bin'), '\u0000theirs');
  // By hand: checkout, fix, continue.
  const co = path.join(dir, 'co');
  const c = await viva(['merge', 'a', 'b', '--checkout', co, '-C', repo]);
  t.is(c.code, 1);
  t.regex(fs.readFileSync(path.join(co, 'etc/motd'), 'utf8'), /^<<<<<<< a\nours\n\|\|\|\|\|\|\| merge base [0-9a-f]{12}\nline 1\n(line \d\n)+=======\ntheirs\n>>>>>>> b\n$/);
  t.is(fs.readFileSync(path.join(co, 'etc/bin~theirs'), 'latin1'), '\u0000theirs');
  let cont = await viva(['merge', '--continue', co, '-C', repo]);
  t.is(cont.code, 2);
  t.regex(cont.stderr, /etc\/motd.*conflict markers|etc\/bin/);
  fs.writeFileSync(path.join(co, 'etc/motd'), 'fixed\n');
  fs.rmSync(path.join(co, 'etc/bin~theirs'));
  cont = await viva(['merge', '--continue', co, '-C', repo]);
  t.is(cont.code, 0, cont.stderr);
  t.is(await cat(repo, 'a:etc/motd'), 'fixed\n');
  t.is((await vivaJson(t, ['show', 'a', '-C', repo])).parents.length, 2);
  // The state is gone: a second continue has nothing to do.
  t.is((await viva(['merge', '--continue', co, '-C', repo])).code, 2);
});

test('merge: unrelated images are refused unless --allow-unrelated; a destination that is another branch is refused; a non-empty checkout is exit 12', async (t) => {
  const { repo, dir } = await setup(t);
  writeTree(path.join(dir, 'other'), { opt: { x: 'x\n' } });
  await vivaOk(t, ['commit', path.join(dir, 'other'), '-b', 'other', '-m', 'other', '-C', repo]);
  let r = await viva(['merge', 'base', 'other', '-C', repo]);
  t.is(r.code, 2);
  t.regex(r.stderr, /^error: refusing to merge unrelated images/);
  r = await viva(['merge', 'base', 'other', '-b', 'both', '--allow-unrelated', '-C', repo]);
  t.is(r.code, 0, r.stderr);
  t.is(await cat(repo, 'both:opt/x'), 'x\n');
  t.is(await cat(repo, 'both:etc/hostname'), 'base\n');
  r = await viva(['merge', 'base', 'other', '-b', 'both', '--allow-unrelated', '-C', repo]);
  t.is(r.code, 2);
  await vivaOk(t, ['derive', 'base', '-b', 'a', '--set', 'etc/motd=ours\n', '-C', repo]);
  await vivaOk(t, ['derive', 'base', '-b', 'b', '--set', 'etc/motd=theirs\n', '-C', repo]);
  const full = path.join(dir, 'full');
  fs.mkdirSync(full);
  fs.writeFileSync(path.join(full, 'x'), 'x');
  r = await viva(['merge', 'a', 'b', '--checkout', full, '-C', repo]);
  t.is(r.code, 12, r.stderr);
});

const haveE2fs = spawnSync('sh', ['-c', 'command -v mke2fs && command -v e2fsck'], { stdio: 'ignore' }).status === 0;
(haveE2fs ? test : test.skip)('merge: two derived disks of one base merge into a disk (e2fsck-clean)', async (t) => {
  const dir = tmpDir(t);
  const repo = path.join(dir, 'repo');
  writeTree(path.join(dir, 'root'), { etc: { hostname: 'base\n' } });
  const img = path.join(dir, 'root.ext4');
  t.is(spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', path.join(dir, 'root'), img, '16M']).status, 0);
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', img, '-b', 'vm', '-m', 'disk', '-C', repo]);
  await vivaOk(t, ['derive', 'vm', '-b', 'vm-a', '--set', 'etc/a=a\n', '-C', repo]);
  await vivaOk(t, ['derive', 'vm', '-b', 'vm-b', '--set', 'etc/b=b\n', '--set', 'etc/hostname=b\n', '-C', repo]);
  const r = await vivaJson(t, ['merge', 'vm-a', 'vm-b', '-C', repo]);
  t.is(r.status, 'merged');
  t.is((await vivaJson(t, ['show', 'vm-a', '-C', repo])).rootKind, 'disk');
  t.is(await cat(repo, 'vm-a:etc/a'), 'a\n');
  t.is(await cat(repo, 'vm-a:etc/b'), 'b\n');
  t.is(await cat(repo, 'vm-a:etc/hostname'), 'b\n');
  const out = path.join(dir, 'out.ext4');
  await vivaOk(t, ['checkout', 'vm-a', out, '-C', repo]);
  const fsck = spawnSync('e2fsck', ['-fn', out]);
  t.is(fsck.status, 0, fsck.stdout.toString());
  // A conflict on a disk: checked out as the disk's view (one directory per file system), resolved, continued.
  await vivaOk(t, ['derive', 'vm', '-b', 'vm-c', '--set', 'etc/hostname=c\n', '-C', repo]);
  const before = await head(repo, 'vm-a');
  const co = path.join(dir, 'co');
  const c = await viva(['merge', 'vm-a', 'vm-c', '--checkout', co, '-C', repo]);
  t.is(c.code, 1, c.stderr);
  t.regex(c.stdout, /^CONFLICT \(content\): etc\/hostname/m);
  t.is(await head(repo, 'vm-a'), before);
  t.regex(fs.readFileSync(path.join(co, 'etc/hostname'), 'utf8'), /^<<<<<<< vm-a\nb\n/);
  fs.writeFileSync(path.join(co, 'etc/hostname'), 'bc\n');
  const cont = await viva(['merge', '--continue', co, '-C', repo]);
  t.is(cont.code, 0, cont.stderr);
  const s = await vivaJson(t, ['show', 'vm-a', '-C', repo]);
  t.is(s.rootKind, 'disk');
  t.is(s.parents.length, 2);
  t.is(await cat(repo, 'vm-a:etc/hostname'), 'bc\n');
  t.is(await cat(repo, 'vm-a:etc/a'), 'a\n');
  await vivaOk(t, ['checkout', 'vm-a', out, '--force', '-C', repo]);
  const fsck2 = spawnSync('e2fsck', ['-fn', out]);
  t.is(fsck2.status, 0, fsck2.stdout.toString());
});

test('merge: a branch that moves while the merge runs is left where it moved (exit 12), directly and on --continue', async (t) => {
  const { repo, dir } = await setup(t);
  await vivaOk(t, ['derive', 'base', '-b', 'a', '--set', 'etc/motd=ours\n', '-C', repo]);
  await vivaOk(t, ['derive', 'base', '-b', 'b', '--set', 'etc/motd=theirs\n', '-C', repo]);
  // The merge blocks reading its resolution from a FIFO (after it has read the branches) until the branch has moved.
  const fifo = path.join(dir, 'fifo');
  t.is(spawnSync('mkfifo', [fifo]).status, 0);
  const running = viva(['merge', 'a', 'b', '--resolve', `etc/motd=@${fifo}`, '-C', repo]);
  // Only once the merge has the FIFO open for reading can it be opened for writing without blocking (else ENXIO):
  // then it has resolved both branches, and the move below happens while it runs, whatever the machine's load.
  let w: number | undefined;
  for (let i = 0; i < 600 && w === undefined; i++) {
    try {
      w = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  if (w === undefined) t.fail('the merge never opened its resolution file');
  await vivaOk(t, ['derive', 'a', '-b', 'a', '--set', 'etc/moved=1\n', '-C', repo]);
  const moved = await head(repo, 'a');
  fs.writeSync(w!, 'resolved\n');
  fs.closeSync(w!);
  const r = await running;
  t.is(r.code, 12, r.stderr);
  t.regex(r.stderr, /^error: .*refs\/heads\/a/m);
  t.is(await head(repo, 'a'), moved);
  // The same on --continue: the branch moved since the checkout.
  const co = path.join(dir, 'co');
  t.is((await viva(['merge', 'a', 'b', '--checkout', co, '-C', repo])).code, 1);
  fs.writeFileSync(path.join(co, 'etc/motd'), 'fixed\n');
  await vivaOk(t, ['derive', 'a', '-b', 'a', '--set', 'etc/moved=2\n', '-C', repo]);
  const moved2 = await head(repo, 'a');
  const cont = await viva(['merge', '--continue', co, '-C', repo]);
  t.is(cont.code, 12, cont.stderr);
  t.is(await head(repo, 'a'), moved2);
});

test('merge: rebuild replays a merge on the moved base, with the other input as this run rebuilt it, and the recorded resolutions', async (t) => {
  const { repo, dir } = await setup(t);
  await vivaOk(t, ['derive', 'base', '-b', 'a', '--set', 'etc/a=a\n', '--set', 'etc/motd=ours\n', '-C', repo]);
  await vivaOk(t, ['derive', 'base', '-b', 'b', '--set', 'etc/b=b\n', '--set', 'etc/motd=theirs\n', '-C', repo]);
  fs.writeFileSync(path.join(dir, 'motd'), 'resolved\n');
  await vivaOk(t, ['merge', 'a', 'b', '--resolve', `etc/motd=@${path.join(dir, 'motd')}`, '-C', repo]);
  t.regex((await viva(['show', 'a', '--derivation', '-C', repo])).stdout, /kind: {3}merge/);
  // The base moves; every branch derived from it is rebuilt, the merge layer of a with b's new head.
  await vivaOk(t, ['derive', 'base', '-b', 'base', '--set', 'etc/hostname=base v2\n', '-C', repo]);
  const r = await vivaJson(t, ['rebuild', '--derived-from', 'base', '-C', repo]);
  t.is(r.failed, 0, JSON.stringify(r.items));
  t.is(r.rebuilt, 2);
  for (const [p, v] of [['etc/hostname', 'base v2\n'], ['etc/a', 'a\n'], ['etc/b', 'b\n'], ['etc/motd', 'resolved\n']]) t.is(await cat(repo, `a:${p}`), v, p);
  const show = await vivaJson(t, ['show', 'a', '-C', repo]);
  t.is(show.derivation.kind, 'merge');
  t.is(show.parents.length, 2);
  t.is(show.parents[1], (await vivaJson(t, ['show', 'b', '-C', repo])).id, 'the merge takes b as rebuilt in the same run');
});
