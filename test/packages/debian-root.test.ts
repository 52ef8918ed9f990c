/**
 * The test helpers for package installs against real dpkg: debianRoot (a Debian root built from the host's packages)
 * must hold a dpkg database dpkg itself finds sound, and run a package's maintainer scripts, triggers, alternatives
 * and diversions in a chroot as a Debian system does; buildDeb must make reproducible packages dpkg-deb reads back
 * as specified, and scanPackages a flat repository index of every version.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { BASE_PACKAGES, copyRoot, debianRoot, debianRootAvailable, hostClosure, runInRoot, scratchDir, type DebianRoot } from '../helpers/debian-root.js';
import { DEB_MTIME, buildDeb, debFileName, scanPackages } from '../helpers/debs.js';
import { isRoot, sha256, tmpDir } from '../helpers/repo.js';

function has(cmd: string, args = ['--version']): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}
const withRoot = debianRootAvailable ? test : test.skip;
/** The library of the test package is compiled at test time. */
const withRootAndCc = debianRootAvailable && has('cc') ? test : test.skip;
/** Files owned by other users survive dpkg-deb --build only as root. */
const withDebTools = isRoot && has('dpkg-deb') && has('dpkg-scanpackages', ['--help']) ? test : test.skip;

/** One root per test file; each test changes its own `cp -a` copy. */
let base: (DebianRoot & { dir: string; ms: number }) | undefined;

test.before(() => {
  if (!debianRootAvailable) return;
  const dir = scratchDir('viva-debroot-');
  const t0 = performance.now();
  base = { ...debianRoot(dir), dir, ms: Math.round(performance.now() - t0) };
});

test.after.always(() => {
  if (base) fs.rmSync(base.dir, { recursive: true, force: true });
});

function freshRoot(t: Parameters<typeof tmpDir>[0]): string {
  const dir = scratchDir('viva-debroot-copy-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return copyRoot(base!.root, path.join(dir, 'root'));
}

/** Runs in the root and fails the test, with the output, if the command fails. */
function ok(t: Parameters<typeof tmpDir>[0], root: string, argv: string[]): string {
  const r = runInRoot(root, argv);
  t.is(r.status, 0, `${argv.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** The host's name for a user or group id (tar records it beside the id), else the id. */
function hostName(db: 'passwd' | 'group', id: number): string {
  const r = spawnSync('getent', [db, String(id)], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split(':')[0]! : String(id);
}

/** The stanzas of a deb822 file, without the blank lines between them. */
function stanzas(text: string): string[] {
  return text.split(/\n\n+/).filter((s) => s.trim());
}

withRoot('debianRoot: dpkg finds the database sound: --audit is silent, -l lists the packages, -V finds no difference', (t) => {
  const root = freshRoot(t);
  t.log(`built in ${base!.ms} ms: ${base!.packages.length} packages: ${base!.packages.join(' ')}`);
  for (const p of BASE_PACKAGES) t.true(base!.packages.includes(p) || base!.packages.some((k) => k.startsWith(`${p}:`)), p);

  t.is(ok(t, root, ['dpkg', '--audit']), '');
  const listed = ok(t, root, ['dpkg-query', '-W', '-f=${db:Status-Abbrev}${binary:Package}\n']).trim().split('\n');
  t.deepEqual(listed, base!.packages.map((p) => `ii ${p}`));
  t.regex(ok(t, root, ['dpkg', '-l']), /^ii {2}dpkg {2,}\S+ +amd64 /m);
  // dpkg of the host checking the root's files against the root's database, and dpkg of the root doing the same:
  // no difference but the files the host itself lacks (none on a full Debian install).
  t.log(`listed files the host lacks: ${base!.missing.length}`);
  const missing = new Set(base!.missing);
  const unexpected = (out: string) => out.split('\n').filter((l) => l && !(/^missing {5}/.test(l) && missing.has(l.slice(12))));
  const verify = spawnSync('dpkg', [`--root=${root}`, '--verify'], { encoding: 'utf8' });
  t.is(verify.stderr, '');
  t.deepEqual(unexpected(verify.stdout), []);
  t.deepEqual(unexpected(runInRoot(root, ['dpkg', '--verify']).stdout), []);
  if (missing.size === 0) t.is(verify.stdout, '');

  // The status file holds the host's stanzas of exactly these packages, byte for byte.
  const hostStanzas = new Set(stanzas(fs.readFileSync('/var/lib/dpkg/status', 'utf8')));
  const rootStatus = stanzas(fs.readFileSync(path.join(root, 'var/lib/dpkg/status'), 'utf8'));
  t.is(rootStatus.length, base!.packages.length);
  t.true(rootStatus.every((s) => hostStanzas.has(s)));
  for (const p of base!.packages) t.true(fs.existsSync(path.join(root, 'var/lib/dpkg/info', `${p}.list`)), p);

  // Merged /usr as on the host; the root's tools run in the chroot (not the host's through a leaked path).
  for (const d of ['bin', 'sbin', 'lib', 'lib64']) {
    const host = fs.lstatSync(`/${d}`, { throwIfNoEntry: false });
    if (host?.isSymbolicLink()) t.is(fs.readlinkSync(path.join(root, d)), fs.readlinkSync(`/${d}`), d);
  }
  t.is(ok(t, root, ['sh', '-c', 'readlink /bin; readlink -f /usr/bin/awk; command -v which']), 'usr/bin\n/usr/bin/mawk\n/usr/bin/which\n');
  t.is(fs.readFileSync(path.join(root, 'etc/passwd'), 'utf8'), 'root:x:0:0:root:/root:/bin/sh\n');
  t.regex(fs.readFileSync(path.join(root, 'etc/group'), 'utf8'), /^root:x:0:\n(?:.*\n)*shadow:x:42:\n/);
  t.is(ok(t, root, ['dpkg-divert', '--list', '/bin/sh']), 'diversion of /bin/sh to /bin/sh.distrib by dash\n');
  t.regex(ok(t, root, ['ldconfig', '-p']), /libc\.so\.6 \(libc6,x86-64\)/);
  // The chroot ran in its own mount namespace: nothing of the root is mounted here.
  t.false(fs.readFileSync('/proc/mounts', 'utf8').includes(root));
});

withRootAndCc('debianRoot: dpkg -i runs the scripts, user, conffile, ldconfig trigger, alternative and diversion; --remove and --purge undo them', (t) => {
  const root = freshRoot(t);
  const dir = tmpDir(t, 'viva-debs-');
  fs.writeFileSync(path.join(dir, 'lib.c'), 'int vivatest_answer(void) { return 42; }\n');
  execFileSync('cc', ['-shared', '-fPIC', '-Wl,-soname,libvivatest.so.1', '-o', path.join(dir, 'lib.so'), path.join(dir, 'lib.c')]);
  const deb = buildDeb(dir, {
    name: 'vivatest', version: '1.0-1', arch: 'amd64',
    fields: { Depends: 'libc6 (>= 2.34), passwd', Section: 'misc', Priority: 'optional' },
    files: {
      '/etc/vivatest.conf': 'setting = 1\n',
      '/usr/lib/x86_64-linux-gnu/libvivatest.so.1.0.0': { data: fs.readFileSync(path.join(dir, 'lib.so')) },
      '/usr/lib/x86_64-linux-gnu/libvivatest.so.1': { symlink: 'libvivatest.so.1.0.0' },
      '/usr/lib/vivatest/vivatool': { data: '#!/bin/sh\necho vivatool\n', mode: 0o755 },
      '/usr/sbin/delgroup': '#!/bin/sh\necho vivatest delgroup\n',
    },
    conffiles: ['/etc/vivatest.conf'],
    triggers: 'activate-noawait ldconfig\n',
    scripts: {
      preinst: `#!/bin/sh
set -e
if [ "$1" = install ] || [ "$1" = upgrade ]; then
  dpkg-divert --package vivatest --add --rename --divert /usr/sbin/delgroup.adduser /usr/sbin/delgroup
fi
`,
      postinst: `#!/bin/sh
set -e
if [ "$1" = configure ]; then
  getent passwd vivatest >/dev/null || useradd --system --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin vivatest
  update-alternatives --install /usr/bin/vivatool vivatool /usr/lib/vivatest/vivatool 50
fi
`,
      prerm: `#!/bin/sh
set -e
if [ "$1" = remove ]; then update-alternatives --remove vivatool /usr/lib/vivatest/vivatool; fi
`,
      postrm: `#!/bin/sh
set -e
if [ "$1" = remove ] || [ "$1" = abort-install ]; then
  dpkg-divert --package vivatest --remove --rename --divert /usr/sbin/delgroup.adduser /usr/sbin/delgroup
fi
if [ "$1" = purge ]; then userdel vivatest; fi
`,
    },
  });
  const at = (rel: string) => path.join(root, rel);
  const delgroup = fs.readFileSync(at('usr/sbin/delgroup'));
  const cache = () => fs.readFileSync(at('etc/ld.so.cache')).includes('libvivatest.so.1');
  t.false(cache());
  fs.copyFileSync(deb, at('tmp/vivatest.deb'));

  const out = ok(t, root, ['dpkg', '-i', '/tmp/vivatest.deb']);
  t.regex(out, /Adding 'diversion of \/usr\/sbin\/delgroup to \/usr\/sbin\/delgroup.adduser by vivatest'/);
  t.regex(out, /Processing triggers for libc-bin/);
  t.is(ok(t, root, ['dpkg-query', '-W', '-f=${db:Status-Status} ${Version}', 'vivatest']), 'installed 1.0-1');
  t.is(ok(t, root, ['dpkg', '--audit']), '');
  // The user, with a group of its own, in the system range.
  t.regex(fs.readFileSync(at('etc/passwd'), 'utf8'), /^vivatest:x:(\d{3}):\1::\/nonexistent:\/usr\/sbin\/nologin$/m);
  t.regex(fs.readFileSync(at('etc/group'), 'utf8'), /^vivatest:x:\d{3}:$/m);
  t.regex(fs.readFileSync(at('etc/shadow'), 'utf8'), /^vivatest:!:/m);
  // The conffile, recorded with its hash.
  t.is(fs.readFileSync(at('etc/vivatest.conf'), 'utf8'), 'setting = 1\n');
  t.regex(ok(t, root, ['dpkg-query', '-W', '-f=${Conffiles}', 'vivatest']), /^ \/etc\/vivatest\.conf [0-9a-f]{32}$/);
  // ldconfig ran through the trigger.
  t.true(cache());
  t.regex(ok(t, root, ['ldconfig', '-p']), /libvivatest\.so\.1 \(libc6,x86-64\) => /);
  // The alternative.
  t.is(fs.readlinkSync(at('usr/bin/vivatool')), '/etc/alternatives/vivatool');
  t.is(fs.readlinkSync(at('etc/alternatives/vivatool')), '/usr/lib/vivatest/vivatool');
  t.is(ok(t, root, ['vivatool']), 'vivatool\n');
  // The diversion: adduser's file moved aside, the package's in its place.
  t.deepEqual(fs.readFileSync(at('usr/sbin/delgroup.adduser')), delgroup);
  t.is(fs.readFileSync(at('usr/sbin/delgroup'), 'utf8'), '#!/bin/sh\necho vivatest delgroup\n');
  t.is(ok(t, root, ['dpkg-divert', '--listpackage', '/usr/sbin/delgroup']), 'vivatest\n');
  t.is(ok(t, root, ['dpkg', '--verify']), '');

  // --remove: files, alternative, diversion and the library's cache entry go; conffile and user stay.
  ok(t, root, ['dpkg', '--remove', 'vivatest']);
  t.is(ok(t, root, ['dpkg-query', '-W', '-f=${db:Status-Status}', 'vivatest']), 'config-files');
  t.false(fs.existsSync(at('usr/lib/vivatest')));
  t.false(fs.existsSync(at('usr/bin/vivatool')) || fs.existsSync(at('etc/alternatives/vivatool')) || fs.existsSync(at('var/lib/dpkg/alternatives/vivatool')));
  t.deepEqual(fs.readFileSync(at('usr/sbin/delgroup')), delgroup);
  t.false(fs.existsSync(at('usr/sbin/delgroup.adduser')));
  t.is(ok(t, root, ['dpkg-divert', '--listpackage', '/usr/sbin/delgroup']), '');
  t.false(cache());
  t.true(fs.existsSync(at('etc/vivatest.conf')));
  t.regex(fs.readFileSync(at('etc/passwd'), 'utf8'), /^vivatest:/m);

  // --purge: the conffile and, by the postrm, the user go; the database is as before.
  ok(t, root, ['dpkg', '--purge', 'vivatest']);
  t.is(runInRoot(root, ['dpkg-query', '-W', 'vivatest']).status, 1);
  t.false(fs.existsSync(at('etc/vivatest.conf')));
  t.is(fs.readFileSync(at('etc/passwd'), 'utf8'), 'root:x:0:0:root:/root:/bin/sh\n');
  t.notRegex(fs.readFileSync(at('etc/group'), 'utf8'), /vivatest/);
  t.deepEqual(fs.readdirSync(at('var/lib/dpkg/info')).filter((f) => f.startsWith('vivatest.')), []);
  t.is(ok(t, root, ['dpkg', '--audit']), '');
  t.is(ok(t, root, ['dpkg', '--verify']), '');
  t.is(fs.readFileSync(at('var/lib/dpkg/status'), 'utf8'), fs.readFileSync(path.join(base!.root, 'var/lib/dpkg/status'), 'utf8'));
  t.false(fs.readFileSync('/proc/mounts', 'utf8').includes(root));
});

withRoot('debianRoot: a package that is not installed on the host is an error, not a smaller root', (t) => {
  t.throws(() => hostClosure(['dpkg', 'viva-no-such-package']), { message: "package 'viva-no-such-package' is not installed on this host" });
  // extra packages come with their dependencies.
  const closure = hostClosure(['dash']).map((p) => p.key);
  t.true(closure.includes('debianutils') && closure.includes('dpkg') && closure.some((k) => k.startsWith('libc6')));
});

withDebTools('buildDeb: reproducible; dpkg-deb reads back owners, modes, symlinks, control, conffiles, scripts; scanPackages lists every version', (t) => {
  const a = tmpDir(t, 'viva-debs-');
  const b = tmpDir(t, 'viva-debs-');
  const spec = (version: string) => ({
    name: 'vt-pkg', version, arch: 'amd64',
    fields: { 'Pre-Depends': 'dpkg (>= 1.19)', Depends: 'libc6', Provides: 'vt-virtual', Conflicts: 'vt-old', Replaces: 'vt-old', 'Multi-Arch': 'foreign', Priority: 'optional', Section: 'misc', Description: 'a test package\n with a long description' },
    files: {
      '/usr/bin/vt': '#!/bin/sh\necho vt\n',
      'usr/share/vt/data': { data: 'secret\n', mode: 0o640, uid: 1000, gid: 1001 },
      '/usr/share/vt/link': { symlink: 'data' },
      '/etc/vt.conf': 'x = 1\n',
    },
    conffiles: ['/etc/vt.conf'],
    scripts: { postinst: '#!/bin/sh\nset -e\n' },
    triggers: 'interest-noawait /usr/share/vt\n',
    compression: 'gzip' as const,
  });
  const one = buildDeb(a, spec('1:1.0-1'));
  const again = buildDeb(b, spec('1:1.0-1'));
  t.is(path.basename(one), 'vt-pkg_1.0-1_amd64.deb');
  t.is(path.basename(one), debFileName(spec('1:1.0-1')));
  t.is(sha256(fs.readFileSync(one)), sha256(fs.readFileSync(again)), 'the same spec gives the same bytes');
  t.deepEqual(fs.readdirSync(a), ['vt-pkg_1.0-1_amd64.deb'], 'the staging directory is removed');

  const contents = execFileSync('dpkg-deb', ['--contents', one]).toString().trim().split('\n')
    .map((l) => l.replace(/\s+/g, ' '));
  t.deepEqual(contents, [
    'drwxr-xr-x root/root 0 2020-01-02 03:04 ./',
    'drwxr-xr-x root/root 0 2020-01-02 03:04 ./etc/',
    '-rw-r--r-- root/root 6 2020-01-02 03:04 ./etc/vt.conf',
    'drwxr-xr-x root/root 0 2020-01-02 03:04 ./usr/',
    'drwxr-xr-x root/root 0 2020-01-02 03:04 ./usr/bin/',
    '-rwxr-xr-x root/root 18 2020-01-02 03:04 ./usr/bin/vt',
    'drwxr-xr-x root/root 0 2020-01-02 03:04 ./usr/share/',
    'drwxr-xr-x root/root 0 2020-01-02 03:04 ./usr/share/vt/',
    `-rw-r----- ${hostName('passwd', 1000)}/${hostName('group', 1001)} 7 2020-01-02 03:04 ./usr/share/vt/data`,
    'lrwxrwxrwx root/root 0 2020-01-02 03:04 ./usr/share/vt/link -> data',
  ]);
  t.is(new Date(DEB_MTIME * 1000).toISOString(), '2020-01-02T03:04:05.000Z');
  t.is(execFileSync('dpkg-deb', ['--field', one]).toString(), `Package: vt-pkg
Version: 1:1.0-1
Architecture: amd64
Maintainer: Viva Test <test@example.org>
Pre-Depends: dpkg (>= 1.19)
Depends: libc6
Provides: vt-virtual
Conflicts: vt-old
Replaces: vt-old
Multi-Arch: foreign
Priority: optional
Section: misc
Description: a test package
 with a long description
`);
  const control = tmpDir(t, 'viva-debs-control-');
  execFileSync('dpkg-deb', ['--control', one, control]);
  t.deepEqual(fs.readdirSync(control).sort(), ['conffiles', 'control', 'md5sums', 'postinst', 'triggers']);
  t.is(fs.readFileSync(path.join(control, 'conffiles'), 'utf8'), '/etc/vt.conf\n');
  t.regex(fs.readFileSync(path.join(control, 'md5sums'), 'utf8'), /^[0-9a-f]{32} {2}usr\/bin\/vt\n[0-9a-f]{32} {2}usr\/share\/vt\/data\n$/);
  t.is(fs.statSync(path.join(control, 'postinst')).mode & 0o777, 0o755);
  t.is(fs.readFileSync(path.join(control, 'triggers'), 'utf8'), 'interest-noawait /usr/share/vt\n');
  // The compression asked for: gzip members; and xz by default.
  t.regex(execFileSync('ar', ['t', one]).toString(), /^debian-binary\ncontrol\.tar\.gz\ndata\.tar\.gz\n$/);
  t.regex(execFileSync('ar', ['t', buildDeb(a, { name: 'vt-min', version: '1' })]).toString(), /data\.tar\.xz/);

  buildDeb(a, spec('2.0-1'));
  scanPackages(a);
  const index = fs.readFileSync(path.join(a, 'Packages'), 'utf8');
  t.deepEqual(gunzipSync(fs.readFileSync(path.join(a, 'Packages.gz'))).toString(), index);
  t.deepEqual(stanzas(index).map((s) => `${/^Package: (.*)$/m.exec(s)?.[1]} ${/^Version: (.*)$/m.exec(s)?.[1]} ${/^Filename: (.*)$/m.exec(s)?.[1]}`).sort(), [
    'vt-min 1 ./vt-min_1_all.deb',
    'vt-pkg 1:1.0-1 ./vt-pkg_1.0-1_amd64.deb',
    'vt-pkg 2.0-1 ./vt-pkg_2.0-1_amd64.deb',
  ]);

  // Mistakes in a spec are errors, not odd packages.
  t.throws(() => buildDeb(a, { ...spec('3'), conffiles: ['/etc/nope.conf'] }), { message: "conffile '/etc/nope.conf' of package 'vt-pkg' is not one of its regular files" });
  t.throws(() => buildDeb(a, { name: 'vt-bad', version: '1', files: { '/usr/../etc/x': 'x' } }), { message: "bad file name '/usr/../etc/x' in package 'vt-bad'" });
  t.throws(() => buildDeb(a, { name: 'vt-bad', version: 'not a version!' }), { message: /^dpkg-deb --build failed for 'vt-bad': dpkg-deb: error: / });
});
