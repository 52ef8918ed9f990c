/**
 * viva install / upgrade / remove on a real Debian root (the host's dpkg, libc-bin, dash, coreutils, passwd, adduser,
 * … with their genuine dpkg database, test/helpers/debian-root.ts) and packages built at test time with dpkg-deb:
 * the result is compared with what the real `dpkg -i` leaves in a copy of the same root, committed; memoization,
 * --no-scripts, upgrades with a locally changed conffile, removal and purge, the fleet form, rebuild from the
 * recorded packages, and every kind of bad input (exit codes, nothing moved, no sandbox left behind).
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { debianRoot, debianRootAvailable, copyRoot, runInRoot } from '../helpers/debian-root.js';
import { buildDeb, scanPackages, type DebSpec } from '../helpers/debs.js';
import { viva, vivaJson, vivaOk, tmpDir } from '../helpers/cli.js';

const overlayOk = fs.readFileSync('/proc/filesystems', 'utf8').includes('overlay')
  && spawnSync('sh', ['-c', 'command -v setpriv && command -v unshare'], { stdio: 'ignore' }).status === 0;
const maybe = debianRootAvailable && overlayOk ? test : test.skip;
const serial = debianRootAvailable && overlayOk ? test.serial : test.skip;

let shared: string | undefined;
/** One Debian root per file, copied for each test (cp -a keeps everything). */
function root(t: ExecutionContext): string {
  if (!shared) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-droot-'));
    shared = debianRoot(dir).root;
  }
  return copyRoot(shared, path.join(tmpDir(t), 'root'));
}
test.after.always(() => {
  if (shared) fs.rmSync(path.dirname(shared), { recursive: true, force: true });
});

const LIB_SO = '\x7fELF not really a library, but ldconfig only needs the name\n';

/** The packages of most tests: an app that needs a library (via a virtual name), with conffile, user, alternative. */
function packages(dir: string, extra: DebSpec[] = []): string {
  const repoDir = path.join(dir, 'debs');
  fs.mkdirSync(repoDir, { recursive: true });
  const specs: DebSpec[] = [
    {
      name: 'libfoo1', version: '1.0-1', arch: 'amd64',
      fields: { Provides: 'libfoo-abi', 'Multi-Arch': 'same' },
      files: { '/usr/lib/x86_64-linux-gnu/libfoo.so.1.0': LIB_SO },
      scripts: { postinst: '#!/bin/sh\nset -e\nif [ "$1" = configure ]; then echo "$DPKG_MAINTSCRIPT_PACKAGE configured" > /var/lib/libfoo.state; fi\n' },
      triggers: 'activate-noawait ldconfig\n',
    },
    {
      name: 'app', version: '1.0-1', arch: 'amd64',
      fields: { Depends: 'libfoo-abi | libbar1, passwd' },
      files: {
        '/usr/bin/app': { data: '#!/bin/sh\necho app 1.0\n', mode: 0o755 },
        '/usr/share/app/data.txt': 'data 1\n',
        '/usr/share/app/old.txt': 'only in 1.0\n',
        '/etc/app.conf': 'setting=1\n',
        '/usr/share/watch-a/app.txt': 'a\n',
        '/usr/share/watch-b/sub/app.txt': 'b\n',
      },
      conffiles: ['/etc/app.conf'],
      scripts: {
        preinst: '#!/bin/sh\nset -e\necho "preinst $*" >> /var/lib/app.log\n',
        postinst: '#!/bin/sh\nset -e\necho "postinst $*" >> /var/lib/app.log\n'
          + 'if [ "$1" = configure ]; then\n  getent passwd appuser >/dev/null || useradd --system --no-create-home --home-dir /nonexistent appuser\n'
          + '  update-alternatives --install /usr/bin/app-run app-run /usr/bin/app 50\nfi\n',
        prerm: '#!/bin/sh\nset -e\necho "prerm $*" >> /var/lib/app.log\nif [ "$1" = remove ]; then update-alternatives --remove app-run /usr/bin/app; fi\n',
        postrm: '#!/bin/sh\nset -e\nif [ "$1" = purge ]; then userdel appuser || true; rm -f /var/lib/app.log; fi\n',
      },
    },
    {
      // Interested in two directories (file triggers): app's files there activate both.
      name: 'watcher', version: '1', triggers: 'interest-noawait /usr/share/watch-a\ninterest /usr/share/watch-b\n',
      scripts: { postinst: '#!/bin/sh\nset -e\nif [ "$1" = triggered ]; then echo "triggered $2" >> /var/lib/watcher.log; fi\n' },
    },
    ...extra,
  ];
  for (const s of specs) buildDeb(repoDir, s);
  scanPackages(repoDir);
  return repoDir;
}

/** A repository with the root committed on `base`. */
async function setup(t: ExecutionContext, extra: DebSpec[] = []): Promise<{ repo: string; dir: string; rootDir: string; debs: string }> {
  const dir = tmpDir(t);
  const rootDir = root(t);
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', rootDir, '-b', 'base', '-m', 'debian root', '-C', repo]);
  return { repo, dir, rootDir, debs: packages(dir, extra) };
}

/** What differs between a viva install and dpkg's own, by design (docs/packages.md). */
function unexpected(diffText: string): string[] {
  return diffText.split('\n').filter(Boolean).filter((l) => {
    const [, p = '', what = ''] = /^\S+\t(\S+)(?:\t(.*))?$/.exec(l) ?? [];
    if (what === '[mtime]') return false;
    if (['var/lib/dpkg/status-old', 'var/log/dpkg.log', 'var/log/alternatives.log', 'var/cache/ldconfig/aux-cache', 'var/cache/debconf/config.dat-old', 'var/cache/debconf/templates.dat-old'].includes(p)) return false;
    // A backup file of shadow-utils' (`-` suffix) is written by useradd with the time of the run.
    if (/^etc\/(passwd|group|shadow|gshadow)-$/.test(p)) return false;
    return true;
  });
}

maybe('install: the same as dpkg -i in a copy of the image, but for the documented files; dpkg -V and -l agree', async (t) => {
  const { repo, dir, rootDir, debs } = await setup(t);
  // watcher first (its trigger interests in place), then app, whose files activate them.
  await vivaOk(t, ['install', 'base', 'watcher', '-b', 'viva', '--from', debs, '-C', repo]);
  const r = await vivaJson(t, ['install', 'viva', 'app', '-b', 'viva', '--from', debs, '-C', repo]);
  t.is(r.done, 1);
  t.deepEqual(r.items[0].installed.map((p: { name: string }) => p.name), ['libfoo1', 'app']);

  // The classic way: dpkg -i of the same files in a copy, committed.
  const classic = copyRoot(rootDir, path.join(dir, 'classic'));
  fs.mkdirSync(path.join(classic, 'tmp/debs'), { recursive: true });
  for (const f of fs.readdirSync(debs).filter((n) => n.endsWith('.deb'))) fs.copyFileSync(path.join(debs, f), path.join(classic, 'tmp/debs', f));
  const w = runInRoot(classic, ['sh', '-c', 'dpkg -i /tmp/debs/watcher_*.deb']);
  t.is(w.status, 0, w.stderr);
  const out = runInRoot(classic, ['sh', '-c', 'dpkg -i /tmp/debs/libfoo1_*.deb /tmp/debs/app_*.deb']);
  t.is(out.status, 0, out.stderr);
  fs.rmSync(path.join(classic, 'tmp/debs'), { recursive: true });
  await vivaOk(t, ['commit', classic, '-b', 'classic', '-m', 'dpkg -i', '-C', repo]);
  const d = await viva(['diff', 'classic', 'viva', '-C', repo]);
  t.deepEqual(unexpected(d.stdout), [], d.stdout);

  // The scripts ran: user, alternative, trigger (ldconfig made a cache naming the library), postinst state.
  const cat = async (p: string) => (await viva(['cat', `viva:${p}`, '-C', repo])).stdout;
  t.regex(await cat('etc/passwd'), /^appuser:/m);
  t.is((await viva(['ls', '-l', 'viva:etc/alternatives/app-run', '-C', repo])).stdout.includes('/usr/bin/app'), true);
  t.is(await cat('var/lib/libfoo.state'), 'libfoo1 configured\n');
  t.is(await cat('var/lib/app.log'), 'preinst install\npostinst configure \n');
  // dpkg lists pending triggers newest first.
  t.is(await cat('var/lib/watcher.log'), 'triggered /usr/share/watch-b /usr/share/watch-a\n');

  // dpkg inside a checkout of viva's result says what it says in dpkg's own.
  const co = path.join(dir, 'co');
  await vivaOk(t, ['checkout', 'viva', co, '-C', repo]);
  for (const args of [['dpkg', '-V'], ['dpkg-query', '-W', '-f', '${Package} ${Version} ${Status}\n'], ['dpkg', '--audit']]) {
    const a = runInRoot(co, args);
    const b = runInRoot(classic, args);
    t.is(a.stdout, b.stdout, args.join(' '));
    t.is(a.status, b.status, args.join(' '));
  }
  // No sandbox left, nothing mounted.
  t.deepEqual(fs.readdirSync(path.join(repo, '.viva/tmp/sandbox')), []);
  t.false(fs.readFileSync('/proc/mounts', 'utf8').includes(repo));
});

maybe('install: the same request again reuses the result (no sandbox, no new objects); the derivation names packages by sha256', async (t) => {
  const { repo, dir, debs } = await setup(t);
  // The sandbox's checkout of base goes where VIVA_ROOTFS_CACHE says (shared by repositories), else into .viva.
  const shared = path.join(dir, 'rootfs-cache');
  const first = await vivaJson(t, ['install', 'base', 'app', '-b', 'a', '--from', debs, '-C', repo], { env: { VIVA_ROOTFS_CACHE: shared } });
  t.falsy(first.items[0].reused);
  t.is(fs.readdirSync(shared).length, 1);
  t.false(fs.existsSync(path.join(repo, '.viva/cache/rootfs')));
  const objects = async () => (await vivaJson(t, ['stats', '-C', repo])).objects as Record<string, number>;
  const before = await objects();
  const again = await vivaJson(t, ['install', 'base', 'app', '-b', 'b', '--from', debs, '-C', repo]);
  t.true(again.items[0].reused);
  t.is(again.items[0].unpacked, 0);
  const a = await vivaJson(t, ['show', 'a', '-C', repo]);
  const b = await vivaJson(t, ['show', 'b', '-C', repo]);
  t.is(a.tree, b.tree);
  const after = await objects();
  // One commit more, nothing else.
  t.deepEqual(after, { ...before, commit: before.commit! + 1 });
  const dv = (await vivaJson(t, ['show', 'b', '-C', repo])).derivation;
  t.is(dv.kind, 'install');
  t.deepEqual(dv.recipe.packages.request, [{ name: 'app' }]);
  t.true(dv.recipe.packages.debs.every((d: { sha256: string }) => /^[0-9a-f]{64}$/.test(d.sha256)));
  t.regex((await viva(['show', 'b', '--derivation', '-C', repo])).stdout, /app 1\.0-1 amd64 {2}sha256 [0-9a-f]{64}/);
});

maybe('install --no-scripts: unpacked, not configured, no script run; recorded in the derivation', async (t) => {
  const { repo, debs } = await setup(t);
  await vivaOk(t, ['install', 'base', 'app', '-b', 'u', '--from', debs, '--no-scripts', '-C', repo]);
  const status = (await viva(['cat', 'u:var/lib/dpkg/status', '-C', repo])).stdout;
  t.regex(status, /Package: app\nStatus: install ok unpacked\n/);
  t.true((await viva(['cat', 'u:etc/app.conf.dpkg-new', '-C', repo])).code === 0);
  t.is((await viva(['cat', 'u:var/lib/app.log', '-C', repo])).code, 3);
  t.notRegex((await viva(['cat', 'u:etc/passwd', '-C', repo])).stdout, /appuser/);
  t.regex((await viva(['show', 'u', '--derivation', '-C', repo])).stdout, /scripts: not run/);
});

maybe('upgrade: new version in, dropped file out, a locally changed conffile kept with the new one as .dpkg-dist; old prerm/postrm and new preinst run', async (t) => {
  const v2: DebSpec = {
    name: 'app', version: '2.0-1', arch: 'amd64', fields: { Depends: 'libfoo-abi | libbar1, passwd' },
    files: { '/usr/bin/app': { data: '#!/bin/sh\necho app 2.0\n', mode: 0o755 }, '/usr/share/app/data.txt': 'data 2\n', '/etc/app.conf': 'setting=2\n' },
    conffiles: ['/etc/app.conf'],
    scripts: { preinst: '#!/bin/sh\nset -e\necho "preinst2 $*" >> /var/lib/app.log\n', postinst: '#!/bin/sh\nset -e\necho "postinst2 $*" >> /var/lib/app.log\n' },
  };
  const { repo, dir } = await setup(t);
  const d1 = packages(path.join(dir, 'one'));
  await vivaOk(t, ['install', 'base', 'app', '-b', 'img', '--from', d1, '-C', repo]);
  await vivaOk(t, ['derive', 'img', '-b', 'img', '--set', 'etc/app.conf=setting=local\n', '-C', repo]);
  const d2 = path.join(dir, 'two');
  fs.mkdirSync(d2);
  buildDeb(d2, v2);
  scanPackages(d2);
  const r = await vivaJson(t, ['upgrade', 'img', '-b', 'img', '--from', d1, '--from', d2, '-C', repo]);
  t.deepEqual(r.items[0].installed, [{ name: 'app', arch: 'amd64', version: '2.0-1', from: '1.0-1' }]);
  const cat = async (p: string) => (await viva(['cat', `img:${p}`, '-C', repo]));
  t.is((await cat('usr/bin/app')).stdout, '#!/bin/sh\necho app 2.0\n');
  t.is((await cat('usr/share/app/old.txt')).code, 3);
  t.is((await cat('etc/app.conf')).stdout, 'setting=local\n');
  t.is((await cat('etc/app.conf.dpkg-dist')).stdout, 'setting=2\n');
  t.is((await cat('var/lib/app.log')).stdout, 'preinst install\npostinst configure \nprerm upgrade 2.0-1\npreinst2 upgrade 1.0-1\npostinst2 configure 1.0-1\n');
  t.regex((await cat('var/lib/dpkg/status')).stdout, /Package: app\nStatus: install ok installed\n[^]*?Version: 2\.0-1\n/);
  // Nothing newer: upgrade says so (exit 0, as apt), no commit.
  const head = (await viva(['log', '-n', '1', '--oneline', 'img', '-C', repo])).stdout;
  const again = await viva(['upgrade', 'img', '-b', 'img', '--from', d2, '-C', repo]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /^img: nothing to do on img \([0-9a-f]{12}\): nothing to upgrade: every package is at the newest version the sources have; no commit\n$/);
  t.is((await viva(['log', '-n', '1', '--oneline', 'img', '-C', repo])).stdout, head);
});

maybe('remove and purge: dpkg\'s own result; prerm ran; conffiles stay until purge; not installed is exit 18', async (t) => {
  const { repo, debs } = await setup(t);
  await vivaOk(t, ['install', 'base', 'app', '-b', 'img', '--from', debs, '-C', repo]);
  await vivaOk(t, ['remove', 'img', 'app', '-b', 'removed', '-C', repo]);
  const cat = async (rev: string, p: string) => (await viva(['cat', `${rev}:${p}`, '-C', repo]));
  t.is((await cat('removed', 'usr/bin/app')).code, 3);
  t.is((await cat('removed', 'etc/app.conf')).stdout, 'setting=1\n');
  t.regex((await cat('removed', 'var/lib/dpkg/status')).stdout, /Package: app\nStatus: deinstall ok config-files\n/);
  t.is((await cat('removed', 'etc/alternatives/app-run')).code, 3);
  await vivaOk(t, ['remove', 'img', 'app', '-b', 'purged', '--purge', '-C', repo]);
  t.is((await cat('purged', 'etc/app.conf')).code, 3);
  t.notRegex((await cat('purged', 'var/lib/dpkg/status')).stdout, /Package: app\n/);
  t.notRegex((await cat('purged', 'etc/passwd')).stdout, /appuser/);
  const r = await viva(['remove', 'img', 'nosuch', '-b', 'x', '-C', repo]);
  t.is(r.code, 18);
  t.regex(r.stderr, /^error: img: package 'nosuch' is not installed, so not removed\n$/);
  t.is((await viva(['log', 'x', '-C', repo])).code, 3);
});

maybe('fleet: --branches installs into every clone, each on its own branch; a broken clone fails alone', async (t) => {
  const { repo, debs } = await setup(t);
  for (const n of ['web/1', 'web/2', 'web/3']) await vivaOk(t, ['derive', 'base', '-b', n, '--set', `etc/hostname=${n.replace('/', '')}\n`, '-C', repo]);
  // web/3 loses its dpkg database: it cannot take the install.
  await vivaOk(t, ['derive', 'web/3', '-b', 'web/3', '--rm', 'var/lib/dpkg/status', '-C', repo]);
  const before3 = (await viva(['log', '--oneline', '-n', '1', 'web/3', '-C', repo])).stdout;
  const r = await viva(['install', '--branches', 'web/*', 'app', '--from', debs, '--json', '-C', repo]);
  t.is(r.code, 1, r.stderr);
  const out = JSON.parse(r.stdout);
  t.deepEqual(out.items.map((i: { branch: string; status: string }) => `${i.branch} ${i.status}`), ['refs/heads/web/1 done', 'refs/heads/web/2 done', 'refs/heads/web/3 failed']);
  t.regex(r.stderr, /web\/3: no dpkg database/);
  t.is((await viva(['log', '--oneline', '-n', '1', 'web/3', '-C', repo])).stdout, before3);
  for (const n of ['web/1', 'web/2']) {
    t.is((await viva(['cat', `${n}:etc/hostname`, '-C', repo])).stdout, `${n.replace('/', '')}\n`);
    t.regex((await viva(['cat', `${n}:etc/passwd`, '-C', repo])).stdout, /^appuser:/m);
    // Parent is the branch's old head.
    const log = (await vivaJson(t, ['log', '-n', '2', n, '-C', repo]));
    t.is(log.length, 2);
  }
  // One cached checkout (of base) served every clone.
  t.is(fs.readdirSync(path.join(repo, '.viva/cache/rootfs')).length, 1);
});

maybe('rebuild replays an install on a newer base from the recorded packages alone (no source); gc keeps them', async (t) => {
  const { repo, debs } = await setup(t);
  await vivaOk(t, ['install', 'base', 'app', '-b', 'tools', '--from', debs, '-C', repo]);
  fs.rmSync(debs, { recursive: true });
  await vivaOk(t, ['gc', '-C', repo]);
  await vivaOk(t, ['derive', 'base', '-b', 'base', '--set', 'etc/motd=new base\n', '-C', repo]);
  const r = await vivaJson(t, ['rebuild', '--derived-from', 'base', '-C', repo]);
  t.is(r.rebuilt, 1, JSON.stringify(r));
  t.is((await viva(['cat', 'tools:etc/motd', '-C', repo])).stdout, 'new base\n');
  t.regex((await viva(['cat', 'tools:etc/passwd', '-C', repo])).stdout, /^appuser:/m);
  t.is((await viva(['fsck', '-C', repo])).code, 0);
});

maybe('bad input: missing dependency, broken .deb, lying index, failing script, no dpkg database — exit codes, one line, nothing moved', async (t) => {
  const failing: DebSpec = { name: 'bad-script', version: '1', scripts: { postinst: '#!/bin/sh\necho "about to fail" >&2\necho "the reason" >&2\nexit 3\n' } };
  const needy: DebSpec = { name: 'needy', version: '1', fields: { Depends: 'nowhere (>= 2)' } };
  const { repo, dir, debs } = await setup(t, [failing, needy]);
  await vivaOk(t, ['derive', 'base', '-b', 'nodb', '--rm', 'var/lib/dpkg', '-C', repo]);
  const refs = async () => (await viva(['branch', '-l', '-C', repo])).stdout;
  const before = await refs();

  let r = await viva(['install', 'base', 'needy', '-b', 'x', '--from', debs, '-C', repo]);
  t.is(r.code, 18);
  t.regex(r.stderr, /^error: .*nowhere.*\n$/);

  r = await viva(['install', 'base', 'bad-script', '-b', 'x', '--from', debs, '-C', repo]);
  t.is(r.code, 19);
  t.regex(r.stderr, /^error: base: dpkg --configure of bad-script failed with exit code 1: .*\n/);
  t.regex(r.stderr, / {2}\| the reason\n/);
  t.deepEqual(fs.readdirSync(path.join(repo, '.viva/tmp/sandbox')), []);

  const broken = path.join(dir, 'broken.deb');
  fs.writeFileSync(broken, 'not an ar archive at all');
  r = await viva(['install', 'base', broken, '-b', 'x', '-C', repo]);
  t.is(r.code, 13);
  t.regex(r.stderr, /^error: .*broken\.deb.*\n$/);

  // An index that lies about the size of app's file.
  const liar = path.join(dir, 'liar');
  fs.cpSync(debs, liar, { recursive: true });
  const idx = fs.readFileSync(path.join(liar, 'Packages'), 'utf8').replace(/(Package: app\n[^]*?Size: )(\d+)/, (_m, a: string, n: string) => `${a}${Number(n) + 1}`);
  fs.writeFileSync(path.join(liar, 'Packages'), idx);
  fs.rmSync(path.join(liar, 'Packages.gz'), { force: true });
  r = await viva(['install', 'base', 'app', '-b', 'x', '--from', liar, '-C', repo]);
  t.is(r.code, 13, r.stderr);
  t.regex(r.stderr, /app/);

  r = await viva(['install', 'nodb', 'app', '-b', 'x', '--from', debs, '-C', repo]);
  t.is(r.code, 18);
  t.regex(r.stderr, /^error: nodb: no dpkg database/);

  r = await viva(['install', 'base', 'app', '-b', 'x', '-C', repo]);
  t.is(r.code, 2);
  r = await viva(['install', 'base', 'Bad_Name!', '-b', 'x', '--from', debs, '-C', repo]);
  t.is(r.code, 2);

  t.is(await refs(), before);
  t.is((await viva(['log', 'x', '-C', repo])).code, 3);
});

serial('kill -9 of viva while a script runs: no process, mount or sandbox left; the next run cleans up and works', async (t) => {
  const slow: DebSpec = { name: 'slow', version: '1', scripts: { postinst: '#!/bin/sh\ntouch /tmp/started\nsleep 60\n' } };
  const { repo, debs } = await setup(t, [slow]);
  const { spawnViva } = await import('../helpers/cli.js');
  const child = spawnViva(['install', 'base', 'slow', '-b', 's', '--from', debs, '-C', repo]);
  const sandboxes = path.join(repo, '.viva/tmp/sandbox');
  const deadline = Date.now() + 60_000;
  const started = () => fs.existsSync(sandboxes) && fs.readdirSync(sandboxes).some((d) => {
    try { return fs.readdirSync(path.join(sandboxes, d)).some((u) => /^u\d+$/.test(u) && fs.existsSync(path.join(sandboxes, d, u, 'tmp/started'))); } catch { return false; }
  });
  while (!started() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  t.true(started(), 'the script started');
  child.kill('SIGKILL');
  await new Promise((r) => child.on('close', r));
  await new Promise((r) => setTimeout(r, 500));
  t.false(spawnSync('pgrep', ['-f', 'sleep 60']).status === 0, 'the script was killed with viva');
  t.false(fs.readFileSync('/proc/mounts', 'utf8').includes(sandboxes), 'nothing mounted');
  t.is((await viva(['log', 's', '-C', repo])).code, 3);
  // The next run removes the dead run's directory.
  await vivaOk(t, ['install', 'base', 'app', '-b', 'ok', '--from', debs, '-C', repo]);
  t.deepEqual(fs.readdirSync(sandboxes), []);
});

maybe('install from a repository over HTTP: packages fetched once, verified, kept by hash; a source that cannot be read is exit 14', async (t) => {
  const http = await import('node:http');
  const { repo, debs } = await setup(t);
  let debRequests = 0;
  const server = http.createServer((req, res) => {
    if (req.url!.endsWith('.deb')) debRequests++;
    const file = path.join(debs, decodeURIComponent(new URL(req.url!, 'http://x').pathname));
    if (!file.startsWith(debs) || !fs.existsSync(file) || !fs.statSync(file).isFile()) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-length': fs.statSync(file).size });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}/`;
  const r = await vivaJson(t, ['install', 'base', 'app', '-b', 'web', '--from', url, '-C', repo]);
  t.is(r.done, 1);
  t.regex((await viva(['cat', 'web:usr/bin/app', '-C', repo])).stdout, /app 1\.0/);
  const kept = fs.readdirSync(path.join(repo, '.viva/cache/packages/debs'));
  t.is(kept.length, 2);
  // Another image, the same packages: the records are in the repository, no package is downloaded again.
  await vivaOk(t, ['derive', 'base', '-b', 'other', '--set', 'etc/hostname=other\n', '-C', repo]);
  t.is(debRequests, 2);
  await vivaOk(t, ['install', 'other', 'app', '-b', 'other', '--from', url, '-C', repo]);
  t.is(debRequests, 2, 'no package downloaded again');
  const bad = await viva(['install', 'base', 'app', '-b', 'x', '--from', `${url}nothing-here/`, '-C', repo]);
  t.is(bad.code, 14, bad.stderr);
  t.regex(bad.stderr, /^error: .*nothing-here.*\n$/);
});

const haveMke2fs = spawnSync('sh', ['-c', 'command -v mke2fs && command -v e2fsck'], { stdio: 'ignore' }).status === 0;
(debianRootAvailable && overlayOk && haveMke2fs ? test : test.skip)('install into a disk image: the ext4 file system holding the dpkg database is patched in place; e2fsck-clean; rebuild works on disks too', async (t) => {
  const dir = tmpDir(t);
  const rootDir = root(t);
  const repo = path.join(dir, 'repo');
  const img = path.join(dir, 'root.ext4');
  const mk = spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', rootDir, img, '256M']);
  t.is(mk.status, 0, mk.stderr.toString());
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', img, '-b', 'vm/base', '-m', 'disk', '-C', repo]);
  const debs = packages(dir);
  const r = await vivaJson(t, ['install', 'vm/base', 'app', '-b', 'vm/app', '--from', debs, '-C', repo]);
  t.is(r.done, 1);
  const show = await vivaJson(t, ['show', 'vm/app', '-C', repo]);
  t.is(show.rootKind, 'disk');
  t.is(show.derivation.kind, 'install');
  t.regex((await viva(['cat', 'vm/app:usr/bin/app', '-C', repo])).stdout, /app 1\.0/);
  t.regex((await viva(['cat', 'vm/app:etc/passwd', '-C', repo])).stdout, /^appuser:/m);
  // The disk checks out bit-exact and its file system is clean; dpkg inside it sees the package.
  const out = path.join(dir, 'app.ext4');
  await vivaOk(t, ['checkout', 'vm/app', out, '-C', repo]);
  const fsck = spawnSync('e2fsck', ['-fn', out]);
  t.is(fsck.status, 0, fsck.stdout.toString() + fsck.stderr.toString());
  const dump = spawnSync('debugfs', ['-R', 'cat /var/lib/dpkg/status', out]);
  t.regex(dump.stdout.toString(), /Package: app\nStatus: install ok installed\n/);
  // The base disk moves: rebuild replays the install on it.
  await vivaOk(t, ['derive', 'vm/base', '-b', 'vm/base', '--set', 'etc/motd=disk v2\n', '-C', repo]);
  const rb = await vivaJson(t, ['rebuild', '--derived-from', 'vm/base', '-C', repo]);
  t.is(rb.rebuilt, 1, JSON.stringify(rb));
  t.is((await viva(['cat', 'vm/app:etc/motd', '-C', repo])).stdout, 'disk v2\n');
  t.regex((await viva(['cat', 'vm/app:usr/bin/app', '-C', repo])).stdout, /app 1\.0/);
});

maybe('install: a package that conflicts with an installed one removes it first (its prerm runs), as apt-get does', async (t) => {
  const ng: DebSpec = {
    name: 'app-ng', version: '1', arch: 'amd64', fields: { Conflicts: 'app', Replaces: 'app', Provides: 'app-runtime' },
    files: { '/usr/bin/app': { data: '#!/bin/sh\necho ng\n', mode: 0o755 } },
  };
  const { repo, debs } = await setup(t, [ng]);
  await vivaOk(t, ['install', 'base', 'app', '-b', 'img', '--from', debs, '-C', repo]);
  const r = await vivaJson(t, ['install', 'img', 'app-ng', '-b', 'img', '--from', debs, '-C', repo]);
  t.deepEqual(r.items[0].installed.map((p: { name: string }) => p.name), ['app-ng']);
  t.deepEqual(r.items[0].removed, [{ name: 'app', arch: 'amd64', from: '1.0-1' }]);
  const cat = async (p: string) => (await viva(['cat', `img:${p}`, '-C', repo]));
  t.is((await cat('usr/bin/app')).stdout, '#!/bin/sh\necho ng\n');
  t.regex((await cat('var/lib/app.log')).stdout, /prerm remove\n$/);
  const status = (await cat('var/lib/dpkg/status')).stdout;
  t.regex(status, /Package: app\nStatus: deinstall ok config-files\n/);
  t.regex(status, /Package: app-ng\nStatus: install ok installed\n/);
  t.regex((await viva(['show', 'img', '--derivation', '-C', repo])).stdout, /removed app/);
});

maybe('merge of two installs: both packages installed, the dpkg database consistent, as installing both at once', async (t) => {
  const { repo, dir, debs } = await setup(t);
  await vivaOk(t, ['install', 'base', 'app', '-b', 'with-app', '--from', debs, '-C', repo]);
  await vivaOk(t, ['install', 'base', 'watcher', '-b', 'with-watcher', '--from', debs, '-C', repo]);
  // One clock for both merges: merged files take the merge's time as their mtime.
  const at = { env: { VIVA_DATE: '1790000000' } };
  const m = await vivaJson(t, ['merge', 'with-app', 'with-watcher', '-b', 'merged', '-C', repo], at);
  t.is(m.status, 'merged', JSON.stringify(m.conflicts));
  await vivaOk(t, ['install', 'base', 'app', 'watcher', '-b', 'both', '--from', debs, '-C', repo]);
  const d = await viva(['diff', 'both', 'merged', '-C', repo]);
  t.deepEqual(unexpected(d.stdout), [], d.stdout);
  // The other way round: the same image (tree id and root metadata).
  await vivaOk(t, ['merge', 'with-watcher', 'with-app', '-b', 'merged-back', '-C', repo], at);
  const tree = async (b: string) => { const s = await vivaJson(t, ['show', b, '-C', repo]); return [s.root, JSON.stringify(s.rootMeta)]; };
  const back = await viva(['diff', 'merged', 'merged-back', '--stat', '-C', repo]);
  t.is(back.stdout, '', back.stdout);
  t.deepEqual(await tree('merged-back'), await tree('merged'));
  const co = path.join(dir, 'co');
  await vivaOk(t, ['checkout', 'merged', co, '-C', repo]);
  for (const args of [['dpkg', '-V'], ['dpkg', '--audit']]) {
    const r = runInRoot(co, args);
    t.is(r.status, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    t.is(r.stdout, '', args.join(' '));
  }
  t.regex(runInRoot(co, ['dpkg-query', '-W', '-f', '${Package} ${Status}\n', 'app', 'watcher', 'libfoo1']).stdout, /^app install ok installed\nlibfoo1 install ok installed\nwatcher install ok installed\n$/);
  // The same package at two versions on the two sides is a conflict naming it; nothing moves.
  const v2 = path.join(dir, 'v2');
  fs.mkdirSync(v2);
  buildDeb(v2, { name: 'watcher', version: '2', triggers: 'interest-noawait /usr/share/watch-a\n' });
  scanPackages(v2);
  await vivaOk(t, ['install', 'base', 'watcher', '-b', 'watcher2', '--from', v2, '-C', repo]);
  const c = await viva(['merge', 'with-watcher', 'watcher2', '-b', 'x', '-C', repo]);
  t.is(c.code, 1, c.stderr);
  t.regex(c.stdout, /^CONFLICT \(semantic\): var\/lib\/dpkg\/status: dpkg status: package watcher:all: ours 1, install ok installed, theirs 2, install ok installed$/m);
  t.is((await viva(['log', 'x', '-C', repo])).code, 3);
});
