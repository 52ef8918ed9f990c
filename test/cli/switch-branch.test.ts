/** switch, branch -r/-a/-v/-vv and upstream tracking, push -u and push without a refspec, clone's HEAD and directory, checkout/switch of a remote branch. */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import { tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';
import { defaultCloneDir } from '../../src/ops/sync.js';

interface Lib {
  dir: string;
  src: string;
  /** Branches main (one, two) and team/img (from one: img); tag v1 at one; HEAD on main. */
  lib: string;
  c: { one: string; two: string; img: string };
}

async function commit(t: ExecutionContext, repo: string, src: string, message: string, extra: string[] = []): Promise<string> {
  return (await vivaJson<{ id: string }>(t, ['commit', src, '-C', repo, '-m', message, ...extra])).id;
}

function write(src: string, name: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(src, name)), { recursive: true });
  fs.writeFileSync(path.join(src, name), text);
}

async function library(t: ExecutionContext): Promise<Lib> {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  const lib = path.join(dir, 'lib');
  write(src, 'etc/hostname', 'one\n');
  await vivaOk(t, ['init', lib]);
  const one = await commit(t, lib, src, 'one');
  write(src, 'etc/hostname', 'two\n');
  const two = await commit(t, lib, src, 'two');
  await vivaOk(t, ['branch', '-C', lib, 'team/img', one]);
  await vivaOk(t, ['tag', '-C', lib, 'v1', one]);
  write(src, 'img', 'img\n');
  // commit -b moves HEAD to team/img; switch back so that HEAD is on main.
  const img = await commit(t, lib, src, 'img', ['-b', 'team/img']);
  await vivaOk(t, ['switch', '-C', lib, 'main']);
  fs.rmSync(path.join(src, 'img'));
  return { dir, src, lib, c: { one, two, img } };
}

async function head(t: ExecutionContext, repo: string): Promise<string> {
  return (await vivaOk(t, ['rev-parse', '-C', repo, '--symbolic-full-name', 'HEAD'])).stdout.trim();
}

// ---------------------------------------------------------------------------------------------------------------
// switch

test('switch: moves HEAD to a branch (log and show follow it), records the move in HEAD\'s reflog, says so as git', async (t) => {
  const { lib, c } = await library(t);
  t.is(await head(t, lib), 'refs/heads/main');
  const r = await vivaOk(t, ['switch', '-C', lib, 'team/img']);
  t.is(r.stdout, "Switched to branch 'team/img'\n");
  t.is(await head(t, lib), 'refs/heads/team/img');
  t.is((await vivaJson(t, ['show', '-C', lib])).id, c.img);
  t.deepEqual((await vivaJson<Array<{ id: string }>>(t, ['log', '-C', lib])).map((e) => e.id), [c.img, c.one]);
  t.is((await vivaOk(t, ['switch', '-C', lib, 'team/img'])).stdout, "Already on 'team/img'\n");
  const j = await vivaJson(t, ['switch', '-C', lib, 'main']);
  t.like(j, { branch: 'refs/heads/main', oid: c.two, previous: 'team/img' });
  const rl = await vivaJson(t, ['reflog', '-C', lib]);
  t.deepEqual(rl.entries.slice(0, 4).map((e: { message: string; old: string; new: string }) => [e.message, e.old, e.new]), [
    ['checkout: moving from team/img to main', c.img, c.two],
    ['checkout: moving from team/img to team/img', c.img, c.img],
    ['checkout: moving from main to team/img', c.two, c.img],
    // switch in library(): back from the branch commit -b moved HEAD to.
    ['checkout: moving from team/img to main', c.img, c.two],
  ]);
  // commit -b moved HEAD too, and said so in HEAD's reflog before its commit entry.
  t.deepEqual(rl.entries.slice(4, 6).map((e: { message: string }) => e.message), ['commit: img', 'checkout: moving from main to team/img']);
  // A commit without -b goes to the branch HEAD is on now.
  await vivaOk(t, ['switch', '-C', lib, 'team/img']);
  const src = path.join(path.dirname(lib), 'src');
  write(src, 'img', 'img2\n');
  const next = await commit(t, lib, src, 'img2');
  t.is((await vivaJson(t, ['rev-parse', '-C', lib, 'team/img']))[0].oid, next);
  t.is((await vivaJson(t, ['rev-parse', '-C', lib, 'main']))[0].oid, c.two);
});

test('switch -c / --create NEW [START]: a new branch at START (default HEAD); an existing one exits 12 unless --force-create', async (t) => {
  const { lib, c } = await library(t);
  t.is((await vivaOk(t, ['switch', '-C', lib, '-c', 'customers/acme/web'])).stdout, "Switched to a new branch 'customers/acme/web'\n");
  t.is(await head(t, lib), 'refs/heads/customers/acme/web');
  t.is((await vivaJson(t, ['rev-parse', '-C', lib, 'HEAD']))[0].oid, c.two);
  await vivaOk(t, ['switch', '-C', lib, '--create', 'old', 'v1']);
  t.is((await vivaJson(t, ['rev-parse', '-C', lib, 'HEAD']))[0].oid, c.one);
  t.is((await vivaJson(t, ['reflog', '-C', lib, 'old'])).entries[0].message, 'branch: created from v1');
  t.is((await vivaJson(t, ['reflog', '-C', lib])).entries[0].message, 'checkout: moving from customers/acme/web to old');
  const exists = await viva(['switch', '-C', lib, '-c', 'main', 'v1']);
  t.is(exists.code, EXIT.CONFLICT);
  t.is(exists.stderr, "error: a branch named 'main' already exists\n");
  t.is(await head(t, lib), 'refs/heads/old');
  t.is((await vivaJson(t, ['rev-parse', '-C', lib, 'main']))[0].oid, c.two);
  // --force-create (git's -C) resets it.
  await vivaOk(t, ['switch', '-C', lib, '--force-create', 'main', 'v1']);
  t.is((await vivaJson(t, ['rev-parse', '-C', lib, 'main']))[0].oid, c.one);
  t.is(await head(t, lib), 'refs/heads/main');
  const bad = await viva(['switch', '-C', lib, '-c', 'x', 'nope']);
  t.is(bad.code, EXIT.NOT_FOUND);
});

test('switch: a missing branch is git\'s "invalid reference" (exit 3); a tag or commit needs --detach (exit 2)', async (t) => {
  const { lib, c } = await library(t);
  const missing = await viva(['switch', '-C', lib, 'nope']);
  t.is(missing.code, EXIT.NOT_FOUND);
  t.is(missing.stderr, "error: invalid reference: 'nope'\n");
  const tag = await viva(['switch', '-C', lib, 'v1']);
  t.is(tag.code, EXIT.USAGE);
  t.is(tag.stderr, "error: a branch is expected, got tag 'v1' (use --detach to switch to it without a branch)\n");
  const id = await viva(['switch', '-C', lib, c.one.slice(0, 12)]);
  t.is(id.code, EXIT.USAGE);
  t.regex(id.stderr, /a branch is expected, got commit '[0-9a-f]{12}'/);
  t.is(await head(t, lib), 'refs/heads/main');
  const none = await viva(['switch', '-C', lib]);
  t.is(none.code, EXIT.USAGE);
});

test('switch --detach REV: HEAD names a commit; commit without -b is refused; switch - goes back', async (t) => {
  const { lib, src, c } = await library(t);
  const r = await vivaOk(t, ['switch', '-C', lib, '--detach', 'v1']);
  t.is(r.stdout, `HEAD is now at ${c.one.slice(0, 12)} one\n`);
  t.is((await vivaJson(t, ['rev-parse', '-C', lib, 'HEAD']))[0].oid, c.one);
  t.deepEqual((await vivaOk(t, ['rev-parse', '-C', lib, '--abbrev-ref', 'HEAD'])).stdout, 'HEAD\n');
  t.like((await vivaJson(t, ['reflog', '-C', lib])).entries[0], { message: 'checkout: moving from main to v1', old: c.two, new: c.one });
  const refused = await viva(['commit', src, '-C', lib, '-m', 'x']);
  t.is(refused.code, EXIT.USAGE);
  t.regex(refused.stderr, /HEAD is detached at [0-9a-f]{12}: name a branch/);
  t.is((await vivaOk(t, ['switch', '-C', lib, '-'])).stdout, "Switched to branch 'main'\n");
  t.like((await vivaJson(t, ['reflog', '-C', lib])).entries[0], { message: `checkout: moving from ${c.one} to main` });
  // @{-1} is now the detached commit: switch - needs --detach for it.
  const back = await viva(['switch', '-C', lib, '-']);
  t.is(back.code, EXIT.USAGE);
  await vivaOk(t, ['switch', '-C', lib, 'team/img']);
  t.is((await vivaOk(t, ['switch', '-C', lib, '@{-1}'])).stdout, "Switched to branch 'main'\n");
});

test('switch --help: nothing is materialized, HEAD moves are in the reflog', async (t) => {
  const r = await vivaOk(t, ['switch', '--help']);
  const text = r.stdout.replace(/\s+/g, ' ');
  t.regex(text, /Nothing is materialized: viva images are not checked out into a work tree/);
  t.regex(text, /checkout: moving from A to B/);
  t.regex(r.stdout, /-c, --create=NEW/);
});

// ---------------------------------------------------------------------------------------------------------------
// clone

test('clone: a local branch for the remote HEAD\'s branch, tracking it; DIR defaults to the last component of URL', async (t) => {
  const { dir, lib, c } = await library(t);
  const parent = path.join(dir, 'clones');
  fs.mkdirSync(parent);
  const r = await vivaOk(t, ['clone', lib], { cwd: parent });
  t.is(r.stderr, '');
  t.regex(r.stdout, /^cloned .*lib into .*clones\/lib: .*; on branch main\n$/);
  const work = path.join(parent, 'lib');
  t.is(await head(t, work), 'refs/heads/main');
  t.is((await vivaOk(t, ['branch', '-C', work, '-vv'])).stdout, `* main  ${c.two.slice(0, 12)} [origin/main] two\n`);
  // A trailing '/', the .viva directory itself, and a NAME.viva directory all name the clone after the repository.
  fs.renameSync(lib, path.join(dir, 'images.viva'));
  await vivaOk(t, ['clone', path.join(dir, 'images.viva') + '/'], { cwd: parent });
  t.true(fs.existsSync(path.join(parent, 'images', '.viva')));
  fs.mkdirSync(path.join(dir, 'other'));
  await vivaOk(t, ['clone', path.join(dir, 'images.viva', '.viva')], { cwd: path.join(dir, 'other') });
  t.true(fs.existsSync(path.join(dir, 'other', 'images', '.viva')));
  // The name is taken: as git, refused (exit 12), and nothing of it is removed.
  const again = await viva(['clone', path.join(dir, 'images.viva')], { cwd: parent });
  t.is(again.code, EXIT.CONFLICT);
  t.true(fs.existsSync(path.join(parent, 'images', '.viva')));
});

test('clone: the default directory of a URL, as git names it', (t) => {
  for (const [url, dir] of [
    ['/srv/images', 'images'], ['/srv/images/', 'images'], ['/srv/images.viva', 'images'], ['/srv/images/.viva', 'images'],
    ['/srv/images/.viva/', 'images'], ['../lib', 'lib'], ['https://host.example:8443/repos/web', 'web'],
    ['https://host.example:8443/repos/web.viva/', 'web'], ['http://host.example/', 'host.example'], ['http://host.example', 'host.example'],
  ]) t.is(defaultCloneDir(url!), dir, url);
  for (const url of ['/', '.', '..', '/.viva']) t.throws(() => defaultCloneDir(url), { message: /cannot guess a directory name/ }, url);
});

test('clone: an empty remote, or a remote HEAD on a missing branch, warns as git and claims no branch', async (t) => {
  const dir = tmpDir(t);
  const empty = path.join(dir, 'empty');
  await vivaOk(t, ['init', empty]);
  const e = await vivaOk(t, ['clone', empty, path.join(dir, 'e')]);
  t.is(e.stderr, 'warning: You appear to have cloned an empty repository.\n');
  t.regex(e.stdout, /^cloned .*: 0 objects, 0 B, 0 refs\n$/);
  const unborn = await viva(['log', '-C', path.join(dir, 'e')]);
  t.is(unborn.code, EXIT.NOT_FOUND);
  t.regex(unborn.stderr, /your current branch 'main' does not have any commits yet/);

  // HEAD on a branch that does not exist (deleted with --force while HEAD pointed at it).
  const { lib } = await library(t);
  await vivaOk(t, ['switch', '-C', lib, '-c', 'gone']);
  await vivaOk(t, ['branch', '-C', lib, '-d', '--force', 'gone']);
  const g = await vivaJson(t, ['clone', lib, path.join(dir, 'g')]);
  t.deepEqual(g.warnings, ['remote HEAD refers to nonexistent ref, unable to checkout']);
  t.is(g.branch, undefined);
  const text = await vivaOk(t, ['clone', lib, path.join(dir, 'g2')]);
  t.is(text.stderr, 'warning: remote HEAD refers to nonexistent ref, unable to checkout\n');
  t.notRegex(text.stdout, /on branch/);
  t.regex((await viva(['log', '-C', path.join(dir, 'g2')])).stderr, /your current branch 'gone' does not have any commits yet/);
  t.is((await viva(['show-ref', '-C', path.join(dir, 'g2'), '--heads'])).code, EXIT.FAILURE);
  // A detached remote HEAD: no branch either, and a warning that says so.
  await vivaOk(t, ['switch', '-C', lib, '--detach', 'main']);
  const d = await vivaOk(t, ['clone', lib, path.join(dir, 'd')]);
  t.is(d.stderr, 'warning: remote HEAD is not on a branch: no local branch was created\n');
  t.notRegex(d.stdout, /on branch/);
});

test('switch and checkout of a branch only origin has: a local branch tracking it, as git\'s DWIM', async (t) => {
  const { dir, lib, c } = await library(t);
  const work = path.join(dir, 'work');
  await vivaOk(t, ['clone', lib, work]);
  t.is((await vivaOk(t, ['show-ref', '-C', work, '--heads'])).stdout, `${c.two} refs/heads/main\n`);
  const s = await vivaOk(t, ['switch', '-C', work, 'team/img']);
  t.is(s.stdout, "branch 'team/img' set up to track 'origin/team/img'\nSwitched to a new branch 'team/img'\n");
  t.is(await head(t, work), 'refs/heads/team/img');
  t.deepEqual((await vivaOk(t, ['rev-parse', '-C', work, '--abbrev-ref', '@{u}'])).stdout, 'origin/team/img\n');
  // checkout REV DEST does the same without moving HEAD.
  const other = path.join(dir, 'other');
  await vivaOk(t, ['clone', lib, other]);
  const co = await vivaOk(t, ['checkout', '-C', other, 'team/img', path.join(dir, 'out')]);
  t.regex(co.stdout, /^branch 'team\/img' set up to track 'origin\/team\/img'\nchecked out [0-9a-f]{12} to /);
  t.is(fs.readFileSync(path.join(dir, 'out', 'img'), 'utf8'), 'img\n');
  t.is(await head(t, other), 'refs/heads/main');
  t.is((await vivaOk(t, ['branch', '-C', other, '-vv'])).stdout, `* main      ${c.two.slice(0, 12)} [origin/main] two\n  team/img  ${c.img.slice(0, 12)} [origin/team/img] img\n`);
  // A second checkout finds the local branch: nothing more is created.
  t.notRegex((await vivaOk(t, ['checkout', '-C', other, 'team/img', path.join(dir, 'out2')])).stdout, /set up to track/);
  // Two remotes with that branch: ambiguous, so no DWIM (git's rule: exactly one remote).
  const third = path.join(dir, 'third');
  await vivaOk(t, ['clone', lib, third]);
  // --no-guess: no DWIM.
  const noGuess = await viva(['switch', '-C', third, '--no-guess', 'team/img']);
  t.is(noGuess.code, EXIT.NOT_FOUND);
  t.is(noGuess.stderr, "error: invalid reference: 'team/img'\n");
  await vivaOk(t, ['remote', 'add', '-C', third, 'mirror', lib]);
  await vivaOk(t, ['fetch', '-C', third, 'mirror']);
  const amb = await viva(['switch', '-C', third, 'team/img']);
  t.is(amb.code, EXIT.NOT_FOUND);
  t.is(amb.stderr, "error: invalid reference: 'team/img'\n");
  t.is((await viva(['checkout', '-C', third, 'team/img', path.join(dir, 'out3')])).code, EXIT.NOT_FOUND);
  // switch -c NEW origin/X: a new branch from a remote-tracking branch tracks it (git's autoSetupMerge).
  const n = await vivaOk(t, ['switch', '-C', third, '-c', 'mine', 'mirror/team/img']);
  t.is(n.stdout, "branch 'mine' set up to track 'mirror/team/img'\nSwitched to a new branch 'mine'\n");
});

// ---------------------------------------------------------------------------------------------------------------
// branch listing and upstreams

test('branch -r, -a, -v, -vv: remote-tracking branches, subjects, ahead/behind against the upstream', async (t) => {
  const { dir, lib, src, c } = await library(t);
  const work = path.join(dir, 'work');
  await vivaOk(t, ['clone', lib, work]);
  const s = (o: string) => o.slice(0, 12);
  t.is((await vivaOk(t, ['branch', '-C', work, '-r'])).stdout, `  origin/main      ${s(c.two)}\n  origin/team/img  ${s(c.img)}\n`);
  t.is((await vivaOk(t, ['branch', '-C', work, '-a'])).stdout, `* main                     ${s(c.two)}\n  remotes/origin/main      ${s(c.two)}\n  remotes/origin/team/img  ${s(c.img)}\n`);
  t.is((await vivaOk(t, ['branch', '-C', work, '-r', '-v'])).stdout, `  origin/main      ${s(c.two)} two\n  origin/team/img  ${s(c.img)} img\n`);
  // One commit here, one more on the library: ahead 1, behind 1.
  write(src, 'etc/hostname', 'mine\n');
  const mine = await commit(t, work, src, 'mine');
  write(src, 'etc/hostname', 'theirs\n');
  await commit(t, lib, src, 'theirs');
  await vivaOk(t, ['fetch', '-C', work]);
  t.is((await vivaOk(t, ['branch', '-C', work, '-v'])).stdout, `* main  ${s(mine)} [ahead 1, behind 1] mine\n`);
  t.is((await vivaOk(t, ['branch', '-C', work, '-vv'])).stdout, `* main  ${s(mine)} [origin/main: ahead 1, behind 1] mine\n`);
  t.is((await vivaOk(t, ['branch', '-C', work, '-v', '-v'])).stdout, `* main  ${s(mine)} [origin/main: ahead 1, behind 1] mine\n`);
  const j = await vivaJson(t, ['branch', '-C', work, '-vv']);
  t.like(j[0], { name: 'main', upstream: 'origin/main', ahead: 1, behind: 1, subject: 'mine', head: true });
  // A branch without upstream shows no brackets; an upstream whose ref is gone shows 'gone'.
  await vivaOk(t, ['branch', '-C', work, 'local', c.one]);
  await vivaOk(t, ['switch', '-C', work, 'team/img']);
  await vivaOk(t, ['remote', 'remove', '-C', work, 'origin']);
  t.is((await vivaOk(t, ['branch', '-C', work, '-vv'])).stdout, [
    `  local     ${s(c.one)} one`,
    `  main      ${s(mine)} [origin/main: gone] mine`,
    `* team/img  ${s(c.img)} [origin/team/img: gone] img`,
  ].join('\n') + '\n');
  t.is((await vivaOk(t, ['branch', '-C', work, '-v'])).stdout, `  local     ${s(c.one)} one\n  main      ${s(mine)} [gone] mine\n* team/img  ${s(c.img)} [gone] img\n`);
});

test('branch -u / --set-upstream-to / --unset-upstream; the upstream follows a rename and goes with a delete', async (t) => {
  const { dir, lib, c } = await library(t);
  const work = path.join(dir, 'work');
  await vivaOk(t, ['clone', lib, work]);
  await vivaOk(t, ['branch', '-C', work, 'img', c.one]);
  t.is((await vivaOk(t, ['branch', '-C', work, '-u', 'origin/team/img', 'img'])).stdout, "branch 'img' set up to track 'origin/team/img'\n");
  t.is((await vivaOk(t, ['rev-parse', '-C', work, '--abbrev-ref', 'img@{u}'])).stdout, 'origin/team/img\n');
  t.regex((await vivaOk(t, ['branch', '-C', work, '-vv', '--list', 'img'])).stdout, /^ {2}img {2}[0-9a-f]{12} \[origin\/team\/img: behind 1\] one\n$/);
  // Without NAME: HEAD's branch; a local branch as upstream; remotes/origin/x spelled out.
  t.is((await vivaOk(t, ['branch', '-C', work, '--set-upstream-to', 'img'])).stdout, "branch 'main' set up to track 'img'\n");
  t.is((await vivaOk(t, ['rev-parse', '-C', work, '--symbolic-full-name', '@{u}'])).stdout, 'refs/heads/img\n');
  await vivaOk(t, ['branch', '-C', work, '-u', 'remotes/origin/main']);
  t.is((await vivaOk(t, ['rev-parse', '-C', work, '--abbrev-ref', '@{u}'])).stdout, 'origin/main\n');
  const missing = await viva(['branch', '-C', work, '-u', 'origin/nope']);
  t.is(missing.code, EXIT.NOT_FOUND);
  t.is(missing.stderr, "error: the requested upstream branch 'origin/nope' does not exist\n");
  const noBranch = await viva(['branch', '-C', work, '-u', 'origin/main', 'nope']);
  t.is(noBranch.code, EXIT.NOT_FOUND);
  t.is(noBranch.stderr, "error: branch 'nope' does not exist\n");
  // Rename carries it; delete drops it (a new branch of that name starts without one).
  await vivaOk(t, ['branch', '-C', work, '-m', 'img', 'img2']);
  t.is((await vivaOk(t, ['rev-parse', '-C', work, '--abbrev-ref', 'img2@{u}'])).stdout, 'origin/team/img\n');
  await vivaOk(t, ['branch', '-C', work, '-d', 'img2']);
  await vivaOk(t, ['branch', '-C', work, 'img2', c.one]);
  t.is((await viva(['rev-parse', '-C', work, 'img2@{u}'])).code, EXIT.NOT_FOUND);
  t.is((await vivaOk(t, ['branch', '-C', work, '--unset-upstream'])).stdout, '');
  const none = await viva(['branch', '-C', work, '--unset-upstream']);
  t.is(none.code, EXIT.USAGE);
  t.is(none.stderr, "error: branch 'main' has no upstream information\n");
  t.is((await vivaOk(t, ['branch', '-C', work, '-vv'])).stdout.split('\n')[1], `* main  ${c.two.slice(0, 12)} two`);
});

// ---------------------------------------------------------------------------------------------------------------
// push

test('push -u sets the upstream; push REMOTE and push without arguments push the current branch to it', async (t) => {
  const { dir, lib, src, c } = await library(t);
  const work = path.join(dir, 'work');
  await vivaOk(t, ['clone', lib, work]);
  await vivaOk(t, ['switch', '-C', work, '-c', 'customers/acme']);
  write(src, 'etc/hostname', 'acme\n');
  const acme = await commit(t, work, src, 'acme');
  // No upstream: refused as git's push.default=simple refuses it (exit 2), nothing pushed.
  for (const args of [['push', 'origin'], ['push']]) {
    const r = await viva([...args, '-C', work]);
    t.is(r.code, EXIT.USAGE, args.join(' '));
    t.is(r.stderr, "error: the current branch 'customers/acme' has no upstream branch: to push it and set the remote as upstream, use 'viva push -u origin customers/acme'\n");
  }
  t.is((await viva(['rev-parse', '-C', lib, 'customers/acme'])).code, EXIT.NOT_FOUND);
  const u = await vivaOk(t, ['push', '-C', work, '-u', 'origin', 'customers/acme']);
  t.regex(u.stdout, /\* \[new\] +customers\/acme\nbranch 'customers\/acme' set up to track 'origin\/customers\/acme'\n$/);
  t.is((await vivaJson(t, ['rev-parse', '-C', lib, 'customers/acme']))[0].oid, acme);
  t.is((await vivaOk(t, ['branch', '-C', work, '-vv', '--list', 'customers/'])).stdout, `* customers/acme  ${acme.slice(0, 12)} [origin/customers/acme] acme\n`);
  // Now push REMOTE and push alone send the current branch to its upstream.
  write(src, 'etc/hostname', 'acme2\n');
  const acme2 = await commit(t, work, src, 'acme2');
  t.regex((await vivaOk(t, ['push', '-C', work, 'origin'])).stdout, /\.\.[0-9a-f]{12} {2}customers\/acme\n$/);
  t.is((await vivaJson(t, ['rev-parse', '-C', lib, 'customers/acme']))[0].oid, acme2);
  write(src, 'etc/hostname', 'acme3\n');
  const acme3 = await commit(t, work, src, 'acme3');
  const p = await vivaJson(t, ['push', '-C', work]);
  t.deepEqual(p.updated.map((x: { ref: string }) => x.ref), ['refs/heads/customers/acme']);
  t.is((await vivaJson(t, ['rev-parse', '-C', lib, 'customers/acme']))[0].oid, acme3);
  t.is((await vivaOk(t, ['push', '-C', work])).stdout, 'pushed to ' + lib + ': 0 objects, 0 B (everything up to date)\n');
  // An upstream of another name: refused as git's simple mode does.
  await vivaOk(t, ['branch', '-C', work, '-u', 'origin/main']);
  const other = await viva(['push', '-C', work, 'origin']);
  t.is(other.code, EXIT.USAGE);
  t.regex(other.stderr, /the upstream branch of your current branch does not match the name of your current branch/);
  // push -u REMOTE without a refspec: the current branch under its own name, tracked from now on.
  await vivaOk(t, ['switch', '-C', work, '-c', 'fresh']);
  t.regex((await vivaOk(t, ['push', '-C', work, '-u', 'origin'])).stdout, /branch 'fresh' set up to track 'origin\/fresh'\n$/);
  t.is((await vivaJson(t, ['rev-parse', '-C', lib, 'fresh']))[0].oid, acme3);
  // To another remote than the branch's, push REMOTE sends the branch under its own name (git's triangular case).
  const mirror = path.join(dir, 'mirror');
  await vivaOk(t, ['init', mirror]);
  await vivaOk(t, ['remote', 'add', '-C', work, 'mirror', mirror]);
  t.deepEqual((await vivaJson(t, ['push', '-C', work, 'mirror'])).updated.map((x: { ref: string }) => x.ref), ['refs/heads/fresh']);
  t.is((await vivaJson(t, ['rev-parse', '-C', mirror, 'fresh']))[0].oid, acme3);
  // -u with a path instead of a remote name has nowhere to keep the upstream.
  const byPath = await viva(['push', '-C', work, '-u', lib, 'fresh']);
  t.is(byPath.code, EXIT.USAGE);
  t.regex(byPath.stderr, /push -u needs a configured remote/);
  t.is(c.one.length, 64);
});

test('push: with HEAD detached and no refspec, git\'s "not currently on a branch" (exit 2)', async (t) => {
  const { dir, lib } = await library(t);
  const work = path.join(dir, 'work');
  await vivaOk(t, ['clone', lib, work]);
  await vivaOk(t, ['switch', '-C', work, '--detach', 'HEAD~1']);
  const r = await viva(['push', '-C', work]);
  t.is(r.code, EXIT.USAGE);
  t.regex(r.stderr, /you are not currently on a branch/);
});

test('gc: HEAD\'s reflog keeps no commit alive; its entries for the commits gc removes go, the others stay', async (t) => {
  const { lib, src, c } = await library(t);
  write(src, 'big', 'garbage '.repeat(10_000));
  const tmp = await commit(t, lib, src, 'tmp', ['-b', 'tmp']);
  await vivaOk(t, ['switch', '-C', lib, 'main']);
  t.is((await vivaJson(t, ['reflog', '-C', lib])).entries[1].new, tmp);
  await vivaOk(t, ['branch', '-C', lib, '-d', 'tmp']);
  const fsck = await vivaJson(t, ['fsck', '-C', lib]);
  t.true(fsck.unreachable > 0, 'the deleted branch\'s commit is garbage although HEAD\'s reflog names it');
  const g = await vivaJson(t, ['gc', '-C', lib]);
  t.is(g.removed, fsck.unreachable);
  const after = await vivaJson(t, ['reflog', '-C', lib]);
  t.false(after.entries.some((e: { new: string }) => e.new === tmp));
  t.deepEqual(after.entries.slice(0, 2).map((e: { message: string; new: string }) => [e.message, e.new]), [
    ['checkout: moving from tmp to main', c.two],
    ['checkout: moving from team/img to main', c.two],
  ]);
  // Every selector still resolves.
  t.deepEqual((await vivaOk(t, ['rev-parse', '-C', lib, ...after.entries.map((e: { selector: string }) => e.selector)])).stdout.trim().split('\n'), after.entries.map((e: { new: string }) => e.new));
  t.like(await vivaJson(t, ['fsck', '-C', lib]), { ok: true, unreachable: 0 });
});
