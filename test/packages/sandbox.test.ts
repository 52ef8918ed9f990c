/**
 * The install sandbox on a real busybox root: a program's changes (new, changed, removed, replaced entries) become
 * tree edits equal to making them on a copy; no network; no mount or process left behind, also after kill -9.
 */
import test from 'ava';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Sandbox, applyChanges } from '../../src/packages/sandbox.js';
import { SandboxError } from '../../src/errors.js';
import { diff } from '../../src/ops/diff.js';
import { storeContent } from '../../src/store/store-content.js';
import { encodeCommit, hashCommit, type Commit } from '../../src/model/commit.js';
import { readCommit } from '../../src/store/typed.js';
import { MutableTree } from '../../src/tree/mutable-tree.js';
import { AUTHOR, TIME, commitAt, isRoot, tmpDir, tmpRepo } from '../helpers/repo.js';

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p));
const overlayOk = isRoot && fs.readFileSync('/proc/filesystems', 'utf8').includes('overlay') && spawnSync('sh', ['-c', 'command -v unshare && command -v setpriv']).status === 0;
const maybe = BUSYBOX && overlayOk ? test : test.skip;

/** A minimal root: busybox and its applets, /etc with two files, /proc /sys /dev /tmp. */
function busyboxRoot(dir: string): string {
  const root = path.join(dir, 'root');
  for (const d of ['bin', 'usr/bin', 'etc/old', 'proc', 'sys', 'dev', 'tmp', 'var/lib']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.copyFileSync(BUSYBOX!, path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  for (const a of ['sh', 'cat', 'rm', 'mkdir', 'ln', 'sleep', 'ls', 'echo', 'chmod']) fs.symlinkSync('busybox', path.join(root, 'bin', a));
  fs.symlinkSync('../../bin/busybox', path.join(root, 'usr/bin/env'));
  fs.writeFileSync(path.join(root, 'etc/hostname'), 'base\n');
  fs.writeFileSync(path.join(root, 'etc/motd'), 'hello\n');
  fs.writeFileSync(path.join(root, 'etc/old/a'), 'a\n');
  fs.writeFileSync(path.join(root, 'var/lib/state'), '1\n');
  return root;
}

async function treeAfter(repo: Parameters<typeof commitAt>[0], baseTree: string, rootMeta: Commit['rootMeta'], upper: string): Promise<string> {
  const tree = MutableTree.open(repo.objects, { tree: baseTree, ...(rootMeta ? { rootMeta } : {}) });
  await applyChanges(upper, tree, async (e) => storeContent(repo.objects, e.content!));
  const w = tree.write(repo.objects);
  const c: Commit = { rootKind: 'tree', root: w.oid, parents: [], author: AUTHOR, time: TIME, tzOffset: 0, message: 'sandbox', labels: [], source: { format: 'dir' }, rootMeta: tree.rootMeta() };
  const enc = encodeCommit(c);
  const oid = hashCommit(enc);
  repo.objects.writeObject('commit', oid, enc);
  await repo.objects.flush();
  await repo.refs.update([{ ref: 'refs/heads/sandboxed', newOid: oid, expectedOld: null, message: 'test' }], AUTHOR);
  return w.oid;
}

maybe('sandbox: changes become tree edits; the lower root is untouched; no network', async (t) => {
  const { repo, dir } = tmpRepo(t);
  const root = busyboxRoot(dir);
  const b = await commitAt(repo, root, { branch: 'base' });
  const before = execFileSync('find', [root, '-printf', '%p %m %s %T@\n']).toString();
  const sb = Sandbox.create(root, path.join(dir, 'sandboxes'));
  t.teardown(() => sb.remove());
  const r = await sb.run(['/bin/sh', '-c', [
    'echo web01 > /etc/hostname', 'rm /etc/motd', 'rm -r /etc/old', 'mkdir /etc/old', 'echo b > /etc/old/b',
    'mkdir -p /opt/app', 'ln -s app /opt/current', 'chmod 600 /var/lib/state', 'cat /proc/net/dev',
  ].join(' && ')]);
  t.is(r.code, 0, r.output);
  // Only the loopback device exists in the sandbox's network namespace.
  t.regex(r.output, /lo:/);
  t.notRegex(r.output, /eth|ens|enp/);
  t.is(execFileSync('find', [root, '-printf', '%p %m %s %T@\n']).toString(), before, 'the lower root is not changed');
  t.false(fs.readFileSync('/proc/mounts', 'utf8').includes(sb.dir), 'no mount left');

  const after = await treeAfter(repo, readCommit(repo.objects, b.id).root, readCommit(repo.objects, b.id).rootMeta, sb.upper);
  // The same changes made on a copy, committed: equal but for directory mtimes.
  const copy = path.join(dir, 'copy');
  execFileSync('cp', ['-a', root, copy]);
  execFileSync('sh', ['-c', `cd '${copy}' && echo web01 > etc/hostname && rm etc/motd && rm -r etc/old && mkdir etc/old && echo b > etc/old/b && mkdir -p opt/app && ln -s app opt/current && chmod 600 var/lib/state`]);
  await commitAt(repo, copy, { branch: 'copy' });
  void after;
  const d = diff(repo, { a: 'sandboxed', b: 'copy', ignoreMtime: true });
  t.deepEqual(d.entries.map((e) => `${e.status} ${e.path}`), []);
});

/** What is known of the processes matching `pattern`: command line, parent, state, pid namespace and root. */
function survivors(pattern: string): string {
  const pids = spawnSync('pgrep', ['-f', pattern]).stdout.toString().split('\n').filter(Boolean);
  const read = (f: string, how: (f: string) => string) => { try { return how(f); } catch { return '?'; } };
  return pids.map((pid) => {
    const status = read(`/proc/${pid}/status`, (f) => fs.readFileSync(f, 'utf8'));
    const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '?';
    const cmd = read(`/proc/${pid}/cmdline`, (f) => fs.readFileSync(f, 'latin1').split('\0').join(' ').trim());
    const parent = read(`/proc/${field('PPid')}/cmdline`, (f) => fs.readFileSync(f, 'latin1').split('\0').join(' ').trim());
    return `${pid} '${cmd}' ppid ${field('PPid')} ('${parent}') state ${field('State')} nspid ${field('NSpid')} pidns ${read(`/proc/${pid}/ns/pid`, (f) => fs.readlinkSync(f))} root ${read(`/proc/${pid}/root`, (f) => fs.readlinkSync(f))}`;
  }).join('; ');
}

maybe('sandbox: a failing program is a result with its output; a kill -9 of the caller leaves no process or mount', async (t) => {
  const dir = tmpDir(t);
  const root = busyboxRoot(dir);
  const work = path.join(dir, 'sandboxes');
  const sb = Sandbox.create(root, work);
  const r = await sb.run(['/bin/sh', '-c', 'echo going wrong >&2; exit 3']);
  t.is(r.code, 3);
  t.regex(r.output, /going wrong/);
  t.notRegex(r.output, /viva-sandbox/);
  sb.remove();
  // A sandbox that cannot be set up (its lower root is gone) is the sandbox's error, naming why.
  const broken = Sandbox.create(path.join(dir, 'no-such-root'), work);
  const e = await t.throwsAsync(broken.run(['/bin/true']), { instanceOf: SandboxError });
  t.regex(e!.message, /^sandbox: setting up the sandbox: /);
  broken.remove();

  // A node process runs a long program in a sandbox, and is killed with SIGKILL: once while the sandbox is being set
  // up (before setpriv has armed its parent-death signal, if the kill is quick enough) and once while the program runs.
  // It sleeps a number of seconds no other process sleeps (this test's pid): a plain 'sleep 300' of the CI machine,
  // outside any sandbox (root /, the host's pid namespace), once failed this test.
  const secs = `${process.pid}0`;
  const script = `
    import { Sandbox } from ${JSON.stringify(path.resolve('src/packages/sandbox.ts'))};
    const sb = Sandbox.create(${JSON.stringify(root)}, ${JSON.stringify(work)});
    console.log(sb.dir);
    await sb.run(['/bin/sleep', '${secs}']);`;
  const sbDirs: string[] = [];
  for (const when of ['at once', 'running']) {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const sbDir = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())));
    sbDirs.push(sbDir);
    // Wait until the sleep itself runs inside the sandbox (its command line, not setpriv's that ends with it).
    if (when === 'running') for (let i = 0; i < 100 && spawnSync('pgrep', ['-f', `^/bin/sleep ${secs}$`]).status !== 0; i++) await new Promise((r2) => setTimeout(r2, 100));
    child.kill('SIGKILL');
    await new Promise((r2) => child.on('close', r2));
    // Under load (the whole suite on two cores) the namespace's teardown can take seconds: wait up to 30 s.
    const pattern = `${path.basename(sbDir)}|sleep ${secs}`;
    let alive = true;
    for (let i = 0; i < 300 && alive; i++) {
      alive = spawnSync('pgrep', ['-f', pattern]).status === 0;
      if (alive) await new Promise((r2) => setTimeout(r2, 100));
    }
    t.false(alive, `killed ${when}: the sandbox processes died with their caller (still running: ${survivors(pattern)})`);
    t.false(fs.readFileSync('/proc/mounts', 'utf8').includes(sbDir), 'no mount left');
    t.true(fs.existsSync(sbDir));
  }
  // The next run removes what the killed one left.
  t.is(Sandbox.removeStale(work), 2);
  for (const sbDir of sbDirs) t.false(fs.existsSync(sbDir));
});
