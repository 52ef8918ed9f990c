/**
 * unpackDebs against dpkg itself: small packages are built at test time with `dpkg-deb --build`, a minimal image
 * root with a dpkg database is committed, and a copy of it is unpacked by the real `dpkg --root=COPY --unpack`
 * (scripts trivial and run outside a chroot, no triggers). viva's result must equal a commit of dpkg's, except for
 * what dpkg writes that an unpack without a run of dpkg does not (ALLOWED below).
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { FileConflictError } from '../../src/errors.js';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { debTree } from '../../src/ops/deb-tree.js';
import { type DiffEntry, diff } from '../../src/ops/diff.js';
import { type UnpackDeb, unpackDebs } from '../../src/ops/unpack-debs.js';
import { writeCommits } from '../../src/ops/write-commit.js';
import { readCommit } from '../../src/store/typed.js';
import type { Repository } from '../../src/store/repository.js';
import { MutableTree } from '../../src/tree/mutable-tree.js';
import { AUTHOR, TIME, commitAt, isRoot, tmpDir, tmpRepo } from '../helpers/repo.js';

function has(cmd: string): boolean {
  try { execFileSync(cmd, ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
}
/** dpkg --root needs root to chown what it unpacks; owners survive dpkg-deb --build only as root. */
const withDpkg = has('dpkg') && has('dpkg-deb') && isRoot ? test : test.skip;

/** Every file of the test packages has this mtime (the archives carry it). */
const MTIME = new Date('2020-01-02T03:04:05Z');
/** The mtime viva gives the database files it writes. */
const DB_MTIME_NS = 1_600_000_000n * 1_000_000_000n;
const SCRIPT = '#!/bin/sh\nexit 0\n';

/**
 * What dpkg leaves that unpackDebs does not make, or makes with another time:
 * - `status-old`, `available`, `lock`, `lock-frontend`, `triggers/Lock`, `triggers/Unincorp` and `updates/`: written by
 *   dpkg's run itself (journal, locks, its backup of the status file);
 * - mtimes of directories: dpkg leaves them at the time of the run (it never sets a directory's mtime), viva keeps
 *   an existing directory's and gives a new one the archive's;
 * - mtimes of the database files dpkg writes (status, `.list`, generated `.md5sums`, `info/format`, the trigger
 *   interest files `triggers/File` and `triggers/NAME`): the time of the
 *   run; viva writes `mtimeNs`.
 */
function allowed(e: DiffEntry): boolean {
  const p = e.path;
  if (/^var\/lib\/dpkg\/(status-old|available|lock|lock-frontend|triggers\/(Lock|Unincorp)|updates)(\/|$)/.test(p)) return true;
  if (e.status !== 'M' || !e.changes?.every((c) => c === 'mtime')) return false;
  return e.old?.type === 'dir' || /^var\/lib\/dpkg\/(status|info\/[^/]+\.(list|md5sums)|info\/format|triggers\/[^/]+)$/.test(p);
}

function w(root: string, rel: string, data: string, mode = 0o644, owner?: [number, number]): void {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data);
  if (owner) fs.chownSync(p, owner[0], owner[1]);
  fs.chmodSync(p, mode);
}

/** Sets every mtime below `dir` (symlinks themselves too) to MTIME, children first. */
function stamp(dir: string): void {
  execFileSync('find', [dir, '-depth', '-exec', 'touch', '-h', '-d', MTIME.toISOString(), '{}', '+']);
}

function control(fields: string): string {
  return `${fields.trim()}\nMaintainer: Viva Test <test@example.org>\n`;
}

/** Builds the test packages into `dir`; returns their paths by name. */
function buildPackages(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const build = (name: string, fill: (root: string) => void, rootOwner = true) => {
    const root = path.join(dir, name);
    fill(root);
    stamp(root);
    const deb = path.join(dir, `${name}.deb`);
    execFileSync('dpkg-deb', [...(rootOwner ? ['--root-owner-group'] : []), '-Zgzip', '--build', root, deb], { stdio: 'ignore' });
    out[name] = deb;
  };
  // pa 1: two conffiles, maintainer scripts, triggers, md5sums, a symlink, a diverted file, a doc file v2 drops.
  const pa = (version: string, v2: boolean) => (root: string) => {
    w(root, 'DEBIAN/control', `Package: pa
Version: ${version}
Architecture: all
Maintainer: Viva Test <test@example.org>
Installed-Size: 12
Section: misc
Priority: optional
Homepage: https://example.org/pa
Depends: pb (>= 1.0) | pc,   libc6:any
Description: package a
 Long description.
 .
 More.
`);
    w(root, 'etc/pa.conf', v2 ? 'conf v2\n' : 'conf v1\n');
    if (!v2) w(root, 'etc/pa-old.conf', 'dropped in v2\n');
    w(root, 'DEBIAN/conffiles', v2 ? '/etc/pa.conf\n' : '/etc/pa.conf\n/etc/pa-old.conf\n');
    w(root, 'usr/bin/pa', `#!/bin/sh\necho ${version}\n`, 0o755);
    fs.symlinkSync('pa', path.join(root, 'usr/bin/pa-link'));
    w(root, 'usr/share/doc/pa/copyright', 'free\n');
    w(root, v2 ? 'usr/share/doc/pa/new.txt' : 'usr/share/doc/pa/old/old.txt', version);
    for (const s of ['preinst', 'postinst', 'prerm', 'postrm']) w(root, `DEBIAN/${s}`, SCRIPT, 0o755);
    // Trigger interests (v2 drops the file trigger and takes an explicit one): registered at unpack.
    w(root, 'DEBIAN/triggers', v2 ? 'interest pa-explicit\ninterest-noawait /usr/share/pa2\n' : 'interest-noawait /usr/share/pa\n');
    const sums = execFileSync('sh', ['-c', 'find etc usr -type f | LC_ALL=C sort | xargs md5sum'], { cwd: root });
    w(root, 'DEBIAN/md5sums', sums.toString());
  };
  build('pa1', pa('1.0-1', false));
  build('pa2', pa('2.0-1', true));
  // pb: no md5sums (dpkg makes them), a file owned by another user in a setgid directory, a file pc takes over.
  build('pb', (root) => {
    w(root, 'DEBIAN/control', control('Package: pb\nVersion: 1.0\nArchitecture: amd64\nDescription: b'));
    w(root, 'usr/share/common/file', 'from b\n');
    w(root, 'opt/pb/data', 'owned\n', 0o640, [1000, 1000]);
    fs.chmodSync(path.join(root, 'opt/pb'), 0o750);
    fs.chmodSync(path.join(root, 'opt'), 0o2755);
  }, false);
  // pc: Replaces pb, ships the same file.
  build('pc', (root) => {
    w(root, 'DEBIAN/control', control('Package: pc\nVersion: 1.0\nArchitecture: amd64\nReplaces: pb (<< 2)\nDescription: c'));
    w(root, 'usr/share/common/file', 'from c\n');
  });
  // pd: ships the same file without Replaces.
  build('pd', (root) => {
    w(root, 'DEBIAN/control', control('Package: pd\nVersion: 1.0\nArchitecture: amd64\nReplaces: pb (<< 1.0)\nDescription: d'));
    w(root, 'usr/share/common/file', 'from d\n');
  });
  // pm: Multi-Arch: same, files under /lib (a symlink to usr/lib on the image), every status field dpkg orders.
  build('pm', (root) => {
    w(root, 'DEBIAN/control', `Package: pm
Original-Maintainer: O <o@example.org>
Tag: role::shared-lib
Description: field order
 text
Enhances: foo
Conflicts: bar (<< 1)
Breaks: baz (<<  2)
Suggests: s1
Recommends: r1,r2
Pre-Depends: dpkg (>= 1.0)
Replaces: old
Provides: virt (= 1.0)
Version: 1:2.0
Source: pmsrc (1.9)
Multi-Arch: same
Bugs: mailto:x@example.org
Architecture: amd64
Maintainer: Viva Test <test@example.org>
Origin: Debian
Installed-Size: 4
Section: libs
Priority: optional
Protected: yes
Essential: no
Built-Using: gcc (= 12)
Homepage: https://example.org/pm
`);
    w(root, 'lib/x86_64-linux-gnu/libpm.so.1', 'elf\n', 0o644);
    w(root, 'usr/share/doc/pm/a', 'same\n');
    fs.linkSync(path.join(root, 'usr/share/doc/pm/a'), path.join(root, 'usr/share/doc/pm/b'));
    w(root, 'DEBIAN/postinst', SCRIPT, 0o755);
    w(root, 'DEBIAN/shlibs', 'libpm 1 pm\n');
  });
  return out;
}

/** A minimal image root: a dpkg database, an unrelated installed package, a diversion, merged /lib, odd directories. */
function makeBase(root: string): void {
  w(root, 'var/lib/dpkg/status', `Package: aa-first
Status: install ok installed
Maintainer: X <x@example.org>
Architecture: all
Version: 1
Description: first

Package: zz-last
Status: install ok installed
Maintainer: X <x@example.org>
Architecture: all
Version: 1
Description: last
`);
  w(root, 'var/lib/dpkg/info/aa-first.list', '/.\n/usr\n/usr/share\n/usr/share/aa\n');
  w(root, 'var/lib/dpkg/info/zz-last.list', '/.\n');
  w(root, 'usr/share/aa', 'aa\n');
  w(root, 'var/lib/dpkg/available', '');
  w(root, 'var/lib/dpkg/diversions', '/usr/bin/pa\n/usr/bin/pa.distrib\n:\n');
  fs.mkdirSync(path.join(root, 'var/lib/dpkg/updates'), { recursive: true });
  fs.mkdirSync(path.join(root, 'usr/lib'), { recursive: true });
  fs.symlinkSync('usr/lib', path.join(root, 'lib'));
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.chmodSync(path.join(root, 'etc'), 0o700);
  fs.chownSync(path.join(root, 'etc'), 5, 5);
  stamp(root);
}

function dpkg(root: string, args: string[]): { status: number; output: string } {
  const r = spawnSync('dpkg', [`--root=${root}`, '--force-script-chrootless', '--no-triggers', '--force-depends', ...args], {
    encoding: 'utf8', env: { ...process.env, DPKG_COLORS: 'never', DEBIAN_FRONTEND: 'noninteractive' },
  });
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

function copy(from: string, to: string): void {
  execFileSync('cp', ['-a', from, to]);
}

async function prepare(repo: Repository, debs: Record<string, string>, names: string[]): Promise<UnpackDeb[]> {
  const out: UnpackDeb[] = [];
  for (const n of names) {
    const r = await debTree(repo, repo.objects, debs[n]!);
    out.push({ file: debs[n]!, deb: r.deb, debTree: r.tree, files: r.files });
  }
  await repo.objects.flush();
  return out;
}

/** Commits `baseDir`, unpacks `names` with viva onto it, commits the result on `viva`; returns the unpack result. */
async function vivaUnpack(repo: Repository, baseDir: string, debs: Record<string, string>, names: string[]) {
  const base = await commitAt(repo, baseDir, { branch: 'base' });
  const tree = MutableTree.open(repo.objects, { tree: base.tree });
  const result = await unpackDebs(repo.objects, repo.objects, tree, await prepare(repo, debs, names), { mtimeNs: DB_MTIME_NS });
  const { oid } = tree.write(repo.objects);
  const c = readCommit(repo.objects, base.id);
  await writeCommits(repo, [{ commit: { ...c, root: oid, parents: [base.id], message: 'unpack', time: TIME + 1 }, ref: 'refs/heads/viva', expectedOld: null, reflog: 'unpack' }]);
  return result;
}

async function compareWithDpkg(t: ExecutionContext, repo: Repository, dpkgDir: string): Promise<void> {
  await commitAt(repo, dpkgDir, { branch: 'dpkg', tick: 2, author: AUTHOR });
  const d = diff(repo, { a: 'dpkg', b: 'viva', renames: false });
  const unexpected = d.entries.filter((e) => !allowed(e));
  if (process.env.VIVA_SHOW_ALLOWED) t.log(d.entries.filter(allowed).map((e) => `${e.status} ${e.path} ${e.changes?.join(',') ?? ''}`).join('\n'));
  t.deepEqual(unexpected.map((e) => ({ status: e.status, path: e.path, changes: e.changes, old: e.old, new: e.new })), []);
}

/** The test packages, a base root, and a copy of it for the real dpkg. */
function freshRoots(t: import('ava').ExecutionContext): { debs: Record<string, string>; baseDir: string; dpkgDir: string } {
  const dir = tmpDir(t);
  const debs = buildPackages(path.join(dir, 'debs'));
  const baseDir = path.join(dir, 'base');
  makeBase(baseDir);
  const dpkgDir = path.join(dir, 'dpkg');
  copy(baseDir, dpkgDir);
  return { debs, baseDir, dpkgDir };
}

function readFile(dir: string, rel: string): string {
  return fs.readFileSync(path.join(dir, rel), 'utf8');
}

withDpkg('unpackDebs: new packages (conffiles, scripts, symlink, diversion, Replaces, Multi-Arch: same, /lib symlink, hardlinks) as dpkg --unpack leaves them', async (t) => {
  const { debs, baseDir, dpkgDir } = freshRoots(t);
  const names = ['pa1', 'pb', 'pc', 'pm'];
  for (const n of names) {
    const r = dpkg(dpkgDir, ['--unpack', debs[n]!]);
    t.is(r.status, 0, r.output);
  }
  const { repo } = tmpRepo(t);
  const result = await vivaUnpack(repo, baseDir, debs, names);
  await compareWithDpkg(t, repo, dpkgDir);
  // What dpkg wrote, so that a failure above is readable and the properties are pinned.
  t.true(readFile(dpkgDir, 'var/lib/dpkg/status').includes('Conffiles:\n /etc/pa.conf newconffile\n /etc/pa-old.conf newconffile\n'));
  t.true(fs.existsSync(path.join(dpkgDir, 'usr/bin/pa.distrib')));
  t.false(readFile(dpkgDir, 'var/lib/dpkg/info/pb.list').includes('/usr/share/common/file'));
  t.deepEqual(result.packages.map((p) => [p.package, p.conffiles, p.takenOver, p.diverted]), [
    ['pa', ['/etc/pa-old.conf', '/etc/pa.conf'], [], [{ path: '/usr/bin/pa', to: '/usr/bin/pa.distrib' }]],
    ['pb', [], [], []],
    ['pc', [], [{ path: '/usr/share/common/file', from: 'pb' }], []],
    ['pm', [], [], []],
  ]);
});

withDpkg('unpackDebs: an upgrade over a configured version removes dropped files, keeps obsolete conffiles and the admin\'s edit, as dpkg --unpack', async (t) => {
  const dir = tmpDir(t);
  const debs = buildPackages(path.join(dir, 'debs'));
  // The base is made by dpkg itself: pa 1 and pb unpacked and configured, then the admin edits a conffile.
  const baseDir = path.join(dir, 'base');
  makeBase(baseDir);
  t.is(dpkg(baseDir, ['--unpack', debs.pa1!, debs.pb!]).status, 0);
  const conf = dpkg(baseDir, ['--configure', '-a']);
  t.is(conf.status, 0, conf.output);
  fs.appendFileSync(path.join(baseDir, 'etc/pa.conf'), 'admin edit\n');
  for (const f of ['status-old', 'lock', 'lock-frontend']) fs.rmSync(path.join(baseDir, 'var/lib/dpkg', f), { force: true });
  for (const f of ['Lock', 'Unincorp']) fs.rmSync(path.join(baseDir, 'var/lib/dpkg/triggers', f), { force: true });
  const dpkgDir = path.join(dir, 'dpkg');
  copy(baseDir, dpkgDir);
  const r = dpkg(dpkgDir, ['--unpack', debs.pa2!]);
  t.is(r.status, 0, r.output);
  const { repo } = tmpRepo(t);
  const result = await vivaUnpack(repo, baseDir, debs, ['pa2']);
  await compareWithDpkg(t, repo, dpkgDir);
  const status = readFile(dpkgDir, 'var/lib/dpkg/status');
  t.regex(status, /Version: 2\.0-1\nConfig-Version: 1\.0-1\n/);
  t.regex(status, /Conffiles:\n \/etc\/pa\.conf [0-9a-f]{32}\n \/etc\/pa-old\.conf [0-9a-f]{32} obsolete\n/);
  t.true(readFile(dpkgDir, 'etc/pa.conf').endsWith('admin edit\n'));
  const pa = result.packages[0]!;
  t.is(pa.previousVersion, '1.0-1');
  t.deepEqual(pa.removed, ['/usr/share/doc/pa/old/old.txt', '/usr/share/doc/pa/old']);
});

withDpkg('unpackDebs: a file another package owns is refused without Replaces of its version, as dpkg refuses it (exit 18)', async (t) => {
  const { debs, baseDir, dpkgDir } = freshRoots(t);
  t.is(dpkg(dpkgDir, ['--unpack', debs.pb!]).status, 0);
  const r = dpkg(dpkgDir, ['--unpack', debs.pd!]);
  t.not(r.status, 0);
  t.regex(r.output, /trying to overwrite '\/usr\/share\/common\/file', which is also in package pb/);
  const { repo } = tmpRepo(t);
  const e = await t.throwsAsync(vivaUnpack(repo, baseDir, debs, ['pb', 'pd']), { instanceOf: FileConflictError });
  t.is(e.message, `cannot unpack '${debs.pd}': 'pd' would overwrite '/usr/share/common/file', which is also in package 'pb' (1.0) and not replaced by it`);
  t.deepEqual(e.data, { file: debs.pd, package: 'pd', path: '/usr/share/common/file', owner: 'pb', ownerVersion: '1.0' });
  t.is(exitCodeFor(e.code), 18);
});
