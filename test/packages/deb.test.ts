/**
 * .deb reading, checked against dpkg-deb itself: packages are built at test time with `dpkg-deb --build` (every
 * compression it writes; bzip2 and lzma members are made by hand, as dpkg-deb only reads those), read back, and
 * compared with `dpkg-deb --field`, `-e`, `--contents` and a commit of the extracted `--fsys-tarfile`. Hostile
 * packages are assembled byte by byte.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import {
  CorruptInputError, UnsafeInputError, UnsupportedInputError, type VivaError,
} from '../../src/errors.js';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { type Relations, debControlFromFields, formatRelations, parseDebControl, readDeb } from '../../src/packages/deb.js';
import { debTree, hashDeb } from '../../src/ops/deb-tree.js';
import { findEntry } from '../../src/model/tree.js';
import { readTree } from '../../src/store/typed.js';
import type { Oid } from '../../src/model/oid.js';
import type { Repository } from '../../src/store/repository.js';
import { commitAt, isRoot, randomBytes, tmpDir, tmpRepo } from '../helpers/repo.js';
import { ustarArchive, type UstarMember } from '../helpers/ustar.js';

let haveDpkgDeb = true;
try { execFileSync('dpkg-deb', ['--version'], { stdio: 'ignore' }); } catch { haveDpkgDeb = false; }
/** Owners and setuid bits survive `dpkg-deb -x` only as root. */
const withDpkg = haveDpkgDeb ? test : test.skip;
const withDpkgRoot = haveDpkgDeb && isRoot ? test : test.skip;

function run(cmd: string, args: string[]): Buffer {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}

const CONTROL = `Package: viva-hello
Version: 1:2.10-3+deb12u1
Architecture: all
Maintainer: Viva Test <test@example.org>
Installed-Size: 345
Source: hello-src (2.10-3)
Multi-Arch: foreign
Pre-Depends: dpkg (>= 1.19.1)
Depends: libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, perl:any
Recommends: less
Provides: hello-world (= 2.10), editor
Conflicts: hello-old (<< 2.0)
Breaks: hello-tools (<< 2.10~)
Replaces: hello-tools (<< 2.10~)
Section: misc
Priority: optional
Homepage: https://example.org/hello
Description: the classic greeting
 GNU hello prints a friendly greeting.
 .
 It is a test package.
`;

/**
 * A package source tree with conffiles, maintainer scripts, a setuid file, owned files and directories with odd
 * modes, relative and absolute symlinks, a hardlink, an empty file and one file large enough to span many pieces.
 */
function makePackageDir(root: string): void {
  const w = (rel: string, data: string | Buffer, mode = 0o644, owner?: [number, number]) => {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, data);
    if (owner) fs.chownSync(p, owner[0], owner[1]); // before chmod: chown clears setuid
    fs.chmodSync(p, mode);
  };
  const d = (rel: string, mode: number, owner?: [number, number]) => {
    const p = path.join(root, rel);
    fs.mkdirSync(p, { recursive: true });
    if (owner) fs.chownSync(p, owner[0], owner[1]);
    fs.chmodSync(p, mode);
  };
  w('DEBIAN/control', CONTROL);
  w('DEBIAN/conffiles', '/etc/hello.conf\n');
  w('DEBIAN/postinst', '#!/bin/sh\nset -e\necho configured\n', 0o755);
  w('DEBIAN/prerm', '#!/bin/sh\nexit 0\n', 0o755);
  w('DEBIAN/triggers', 'interest-noawait /usr/share/hello\n');
  w('DEBIAN/shlibs', 'libhello 1 viva-hello (>= 2.10)\n');
  w('etc/hello.conf', 'greeting = hello\n');
  w('DEBIAN/md5sums', 'bb5b41c2a9e7b3a8c4cc5ac7e66f4cd6  etc/hello.conf\n');
  w('usr/bin/hello', '#!/bin/sh\necho hello\n', 0o755);
  fs.linkSync(path.join(root, 'usr/bin/hello'), path.join(root, 'usr/bin/hello-again'));
  w('usr/bin/hello-su', 'setuid\n', 0o4755, isRoot ? [0, 0] : undefined);
  w('usr/lib/hello/libhello.so.1.2', randomBytes(300_000, 'libhello'));
  fs.symlinkSync('libhello.so.1.2', path.join(root, 'usr/lib/hello/libhello.so.1'));
  fs.symlinkSync('/etc/alternatives/hello', path.join(root, 'usr/lib/hello/alternative'));
  fs.symlinkSync('../../../etc/hello.conf', path.join(root, 'usr/lib/hello/escaping-but-fine'));
  w('usr/share/hello/empty', '');
  w('usr/share/hello/a name with spaces', 'x\n');
  w('var/lib/hello/state', 'owned\n', 0o640, isRoot ? [1234, 5678] : undefined);
  d('var/lib/hello', 0o2750, isRoot ? [1234, 5678] : undefined);
  d('var/spool/hello', 0o1777);
  d('srv/hello-empty', 0o700);
}

const COMPRESSIONS = [
  { flag: 'gzip', data: 'data.tar.gz' }, { flag: 'xz', data: 'data.tar.xz' }, { flag: 'zstd', data: 'data.tar.zst' }, { flag: 'none', data: 'data.tar' },
];

function buildDeb(t: ExecutionContext, compression: string): { deb: string; dir: string } {
  const dir = tmpDir(t, 'viva-deb-');
  const src = path.join(dir, 'src');
  makePackageDir(src);
  const deb = path.join(dir, `hello-${compression}.deb`);
  run('dpkg-deb', [`-Z${compression}`, '--build', src, deb]);
  return { deb, dir };
}

/** An ar archive as dpkg-deb writes it: 16-byte names padded with blanks, members padded to an even size. */
function arArchive(members: Array<{ name: string; data: Buffer | string }>): Buffer {
  const parts: Buffer[] = [Buffer.from('!<arch>\n')];
  for (const m of members) {
    const data = Buffer.from(m.data);
    const h = `${m.name.padEnd(16)}${'0'.padEnd(12)}${'0'.padEnd(6)}${'0'.padEnd(6)}${'100644'.padEnd(8)}${String(data.length).padEnd(10)}\`\n`;
    parts.push(Buffer.from(h, 'latin1'), data);
    if (data.length & 1) parts.push(Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

function controlTar(control = 'Package: bad\nVersion: 1.0\nArchitecture: all\nDescription: bad\n'): Buffer {
  return zlib.gzipSync(ustarArchive([{ name: './', type: '5' }, { name: './control', data: control }]));
}

/** A .deb whose data.tar is `members` (uncompressed), written into `dir`. */
function handDeb(dir: string, name: string, members: UstarMember[], extra: { control?: string } = {}): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, arArchive([
    { name: 'debian-binary', data: '2.0\n' },
    { name: 'control.tar.gz', data: controlTar(extra.control) },
    { name: 'data.tar', data: ustarArchive(members) },
  ]));
  return file;
}

async function drain(deb: string): Promise<number> {
  const d = await readDeb(deb);
  let n = 0;
  for await (const e of d.data.entries()) {
    if (e.content) for await (const p of e.content.read()) n += p.data.length;
  }
  return n;
}

function lookup(repo: Repository, tree: Oid, p: string) {
  let oid = tree;
  const parts = p.split('/');
  for (let i = 0; i < parts.length; i++) {
    const e = findEntry(readTree(repo.objects, oid), Buffer.from(parts[i]!));
    if (!e) return undefined;
    if (i === parts.length - 1) return e;
    oid = e.oid!;
  }
  return undefined;
}

/** One line, naming the file, and the error class and exit code the CLI documents (13). */
function checkError(t: ExecutionContext, e: unknown, cls: typeof CorruptInputError | typeof UnsafeInputError | typeof UnsupportedInputError, file: string, text?: RegExp): void {
  t.true(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
  const err = e as VivaError;
  t.is(err.code, cls.code);
  t.false(err.message.includes('\n'), err.message);
  t.true(err.message.startsWith(`${file}: `), err.message);
  t.is(exitCodeFor(err.code), 13);
  if (text) t.regex(err.message, text);
}

// ---------------------------------------------------------------------------------------------------------------
// Packages built by dpkg-deb.

for (const c of COMPRESSIONS) {
  withDpkg(`readDeb: -Z${c.flag}: members, control fields and control files are what dpkg-deb reads`, async (t) => {
    const { deb, dir } = buildDeb(t, c.flag);
    const pkg = await readDeb(deb);
    t.is(pkg.formatVersion, '2.0');
    t.deepEqual(pkg.members.map((m) => m.name), run('ar', ['t', deb]).toString().trim().split('\n'));
    t.is(pkg.members[2]!.name, c.data);
    t.is(pkg.data.description.format, c.flag === 'none' ? 'tar' : `tar+${c.flag}`);

    // Every field, in order, with the value dpkg-deb --field prints.
    const names = run('dpkg-deb', ['--field', deb]).toString().split('\n').filter((l) => /^\S/.test(l)).map((l) => l.slice(0, l.indexOf(':')));
    t.deepEqual(pkg.control.fields.map((f) => f.name), names);
    for (const f of pkg.control.fields) t.is(`${f.value}\n`, run('dpkg-deb', ['--field', deb, f.name]).toString(), f.name);

    const ctl = pkg.control;
    t.is(ctl.package, 'viva-hello');
    t.is(ctl.version, '1:2.10-3+deb12u1');
    t.is(ctl.architecture, 'all');
    t.deepEqual(ctl.source, { name: 'hello-src', version: '2.10-3' });
    t.is(ctl.multiArch, 'foreign');
    t.is(ctl.installedSize, 345);
    t.false(ctl.essential);
    t.is(formatRelations(ctl.depends), 'libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, perl:any');
    t.is(formatRelations(ctl.preDepends), 'dpkg (>= 1.19.1)');
    t.is(formatRelations(ctl.provides), 'hello-world (= 2.10), editor');
    t.is(formatRelations(ctl.conflicts), 'hello-old (<< 2.0)');
    t.is(formatRelations(ctl.breaks), 'hello-tools (<< 2.10~)');
    t.is(formatRelations(ctl.replaces), 'hello-tools (<< 2.10~)');
    t.is(formatRelations(ctl.recommends), 'less');

    // Control files: what dpkg-deb -e extracts, with their modes.
    const ctlDir = path.join(dir, 'control');
    run('dpkg-deb', ['-e', deb, ctlDir]);
    const want = fs.readdirSync(ctlDir).filter((n) => n !== 'control').sort();
    t.deepEqual([...pkg.controlFiles.keys()].sort(), want);
    t.true(want.includes('md5sums') && want.includes('postinst') && want.includes('conffiles'));
    for (const n of want) {
      const f = pkg.controlFiles.get(n)!;
      t.deepEqual(f.data, fs.readFileSync(path.join(ctlDir, n)), n);
      t.is(f.mode, fs.statSync(path.join(ctlDir, n)).mode & 0o7777, n);
    }
    t.is(pkg.controlFiles.get('postinst')!.mode, 0o755);

    // Data: the member names of the file system archive, normalised to image paths, in order.
    const tarNames = execFileSync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -t', 'sh', deb]).toString().trim().split('\n');
    const ours: string[] = [];
    for await (const e of pkg.data.entries()) ours.push(e.path.toString());
    t.deepEqual(ours, tarNames.map((n) => n.replace(/^\.\/?/, '').replace(/\/$/, '')));
  });
}

for (const c of COMPRESSIONS) {
  withDpkgRoot(`debTree: -Z${c.flag}: the tree equals a commit of the extracted package (modes, owners, times, links, contents)`, async (t) => {
    const { deb, dir } = buildDeb(t, c.flag);
    const { repo } = tmpRepo(t);
    const out = path.join(dir, 'x');
    fs.mkdirSync(out);
    // Not `dpkg-deb -x`: dpkg-deb puts symlinks at the end of data.tar, and the tar it runs sets a directory's
    // mtime when it leaves the directory, so creating the symlinks later leaves the extraction time on their
    // directories. --delay-directory-restore sets directory metadata after the last member, as the archive says.
    execFileSync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xp --numeric-owner --delay-directory-restore -f - -C "$2"', 'sh', deb, out]);
    const r = await debTree(repo, repo.objects, deb);
    const committed = await commitAt(repo, out);
    t.is(r.tree, committed.tree);
    t.is(r.rootMeta.mode, 0o755);
    t.is(r.rootMeta.uid, 0);
    t.is(r.deb.control.package, 'viva-hello');
    t.deepEqual(r.files[0], { path: Buffer.alloc(0), type: 'dir' });
    t.true(r.files.some((f) => f.path.toString() === 'usr/bin/hello-again' && f.type === 'hardlink'));
    t.is(r.fileCount, r.files.filter((f) => f.type === 'file').length);

    const su = lookup(repo, r.tree, 'usr/bin/hello-su')!;
    t.is(su.mode, 0o4755);
    const state = lookup(repo, r.tree, 'var/lib/hello')!;
    t.is(state.mode, 0o2750);
    t.deepEqual([state.uid, state.gid], [1234, 5678]);
    t.is(lookup(repo, r.tree, 'var/spool/hello')!.mode, 0o1777);
    t.is(lookup(repo, r.tree, 'usr/lib/hello/alternative')!.linkTarget!.toString(), '/etc/alternatives/hello');
    t.is(lookup(repo, r.tree, 'usr/lib/hello/escaping-but-fine')!.linkTarget!.toString(), '../../../etc/hello.conf');
    t.is(lookup(repo, r.tree, 'usr/lib/hello/libhello.so.1.2')!.size, 300_000);
    t.truthy(lookup(repo, r.tree, 'usr/bin/hello')!.hardlink);
  });
}

withDpkg('debTree: the same package with other compressions gives the same tree; hashDeb is the sha256 of the file', async (t) => {
  const dir = tmpDir(t, 'viva-deb-');
  const src = path.join(dir, 'src');
  makePackageDir(src);
  const { repo } = tmpRepo(t);
  const trees = new Set<string>();
  for (const c of COMPRESSIONS) {
    const deb = path.join(dir, `${c.flag}.deb`);
    run('dpkg-deb', [`-Z${c.flag}`, '--build', src, deb]);
    trees.add((await debTree(repo, repo.objects, deb)).tree);
    t.is(await hashDeb(deb), run('sha256sum', [deb]).toString().slice(0, 64));
  }
  t.is(trees.size, 1);
});

withDpkg('readDeb: data.tar.bz2 and data.tar.lzma (read by dpkg-deb, not written by it) give the uncompressed package\'s tree', async (t) => {
  const { deb } = buildDeb(t, 'none');
  const dir = path.dirname(deb);
  const { repo } = tmpRepo(t);
  const plain = await debTree(repo, repo.objects, deb);
  const pkg = await readDeb(deb);
  const bytes = fs.readFileSync(deb);
  const member = (n: number) => bytes.subarray(pkg.members[n]!.offset, pkg.members[n]!.offset + pkg.members[n]!.size);
  for (const [suffix, prog] of [['bz2', ['bzip2', '-c']], ['lzma', ['xz', '--format=lzma', '-c']]] as const) {
    const data = execFileSync(prog[0], prog.slice(1), { input: member(2) });
    const file = path.join(dir, `hand-${suffix}.deb`);
    fs.writeFileSync(file, arArchive([{ name: 'debian-binary', data: member(0) }, { name: 'control.tar', data: member(1) }, { name: `data.tar.${suffix}`, data }]));
    // dpkg-deb reads the package too.
    t.is(run('dpkg-deb', ['--contents', file]).toString(), run('dpkg-deb', ['--contents', deb]).toString());
    t.is((await debTree(repo, repo.objects, file)).tree, plain.tree, suffix);
  }
});

test('readDeb: GNU ar names (\'debian-binary/\') and \'_\' extension members are accepted, as dpkg does', async (t) => {
  const dir = tmpDir(t, 'viva-deb-');
  const file = path.join(dir, 'gnu.deb');
  fs.writeFileSync(file, arArchive([
    { name: 'debian-binary/', data: '2.0\n' },
    { name: '_gpgorigin', data: 'signature' },
    { name: 'control.tar.gz/', data: controlTar() },
    { name: 'data.tar/', data: ustarArchive([{ name: './', type: '5' }, { name: './x', data: 'x' }]) },
  ]));
  const pkg = await readDeb(file);
  t.is(pkg.control.package, 'bad');
  t.is(await drain(file), 1);
});

// ---------------------------------------------------------------------------------------------------------------
// Broken and hostile packages.

test('readDeb: a bad ar magic is corrupt input naming the file', async (t) => {
  const dir = tmpDir(t, 'viva-deb-');
  const file = path.join(dir, 'bad.deb');
  fs.writeFileSync(file, 'PK\x03\x04 not an ar archive at all');
  checkError(t, await t.throwsAsync(readDeb(file)), CorruptInputError, file, /bad ar magic/);
  const old = path.join(dir, 'old.deb');
  fs.writeFileSync(old, '0.939000\n123\n');
  checkError(t, await t.throwsAsync(readDeb(old)), UnsupportedInputError, old, /0\.939/);
});

test('readDeb: malformed ar headers, missing and misplaced members, other format versions', async (t) => {
  const dir = tmpDir(t, 'viva-deb-');
  const good = arArchive([
    { name: 'debian-binary', data: '2.0\n' }, { name: 'control.tar.gz', data: controlTar() },
    { name: 'data.tar', data: ustarArchive([{ name: './', type: '5' }]) },
  ]);
  const cases: Array<[string, Buffer, typeof CorruptInputError | typeof UnsupportedInputError, RegExp]> = [
    ['bad-fmag', Buffer.concat([good.subarray(0, 66), Buffer.from('xx'), good.subarray(68)]), CorruptInputError, /offset 8: malformed ar member header/],
    ['bad-size', Buffer.concat([good.subarray(0, 56), Buffer.from('-1'), good.subarray(58)]), CorruptInputError, /malformed size '-1' in the header of ar member 'debian-binary'/],
    ['cut-header', good.subarray(0, 8 + 60 + 4 + 30), CorruptInputError, /offset 72: truncated ar member header/],
    ['cut-member', good.subarray(0, good.length - 100), CorruptInputError, /ar member 'data.tar' .* runs past the end of the file/],
    ['empty-ar', Buffer.from('!<arch>\n'), CorruptInputError, /no debian-binary member/],
    ['no-data', arArchive([{ name: 'debian-binary', data: '2.0\n' }, { name: 'control.tar.gz', data: controlTar() }]), CorruptInputError, /no data\.tar member/],
    ['no-control', arArchive([{ name: 'debian-binary', data: '2.0\n' }, { name: 'data.tar', data: ustarArchive([]) }]), CorruptInputError, /data\.tar comes before control\.tar/],
    ['first-not-binary', arArchive([{ name: 'control.tar.gz', data: controlTar() }]), CorruptInputError, /first member must be 'debian-binary'/],
    ['stray-member', arArchive([{ name: 'debian-binary', data: '2.0\n' }, { name: 'README', data: 'x' }]), CorruptInputError, /ar member 'README': unexpected member/],
    ['version-3', arArchive([{ name: 'debian-binary', data: '3.0\n' }]), UnsupportedInputError, /format version 3\.0 is not supported/],
    ['version-junk', arArchive([{ name: 'debian-binary', data: 'two\n' }]), CorruptInputError, /malformed format version/],
    ['data-bz3', arArchive([{ name: 'debian-binary', data: '2.0\n' }, { name: 'control.tar.gz', data: controlTar() }, { name: 'data.tar.bz3', data: 'x' }]), UnsupportedInputError, /unsupported compression/],
    ['control-no-control', arArchive([{ name: 'debian-binary', data: '2.0\n' }, { name: 'control.tar', data: ustarArchive([{ name: './md5sums', data: '' }]) }, { name: 'data.tar', data: ustarArchive([]) }]), CorruptInputError, /no 'control' file/],
    ['control-comment', arArchive([{ name: 'debian-binary', data: '2.0\n' }, { name: 'control.tar.gz', data: controlTar('# hi\nPackage: x\n') }, { name: 'data.tar', data: ustarArchive([]) }]), CorruptInputError, /control' line 1: comments are not allowed/],
    ['control-no-version', arArchive([{ name: 'debian-binary', data: '2.0\n' }, { name: 'control.tar.gz', data: controlTar('Package: x\nArchitecture: all\n') }, { name: 'data.tar', data: ustarArchive([]) }]), CorruptInputError, /control field 'Version': missing/],
    ['control-bad-depends', arArchive([{ name: 'debian-binary', data: '2.0\n' }, { name: 'control.tar.gz', data: controlTar('Package: x\nVersion: 1\nArchitecture: all\nDepends: a (>= 1\n') }, { name: 'data.tar', data: ustarArchive([]) }]), CorruptInputError, /control field 'Depends': version of 'a' unterminated/],
  ];
  for (const [name, bytes, cls, re] of cases) {
    const file = path.join(dir, `${name}.deb`);
    fs.writeFileSync(file, bytes);
    const e = await t.throwsAsync(readDeb(file));
    checkError(t, e, cls, file, re);
  }
});

test('readDeb: a truncated data.tar (inside a consistent ar member) fails while reading, naming the member', async (t) => {
  const dir = tmpDir(t, 'viva-deb-');
  const tar = ustarArchive([{ name: './', type: '5' }, { name: './big', data: randomBytes(100_000, 'big') }]);
  for (const [suffix, data] of [['', tar.subarray(0, 40_000)], ['.gz', zlib.gzipSync(tar).subarray(0, 30_000)], ['.xz', execFileSync('xz', ['-c'], { input: tar }).subarray(0, 30_000)]] as const) {
    const file = path.join(dir, `cut${suffix}.deb`);
    fs.writeFileSync(file, arArchive([{ name: 'debian-binary', data: '2.0\n' }, { name: 'control.tar.gz', data: controlTar() }, { name: `data.tar${suffix}`, data }]));
    const e = await t.throwsAsync(drain(file));
    checkError(t, e, CorruptInputError, file, new RegExp(`data\\.tar${suffix.replace('.', '\\.')} offset \\d+: (unexpected end|truncated|corrupt)`));
  }
});

test('readDeb: unsafe data members are refused naming the file and member; escaping symlink targets are fine', async (t) => {
  const dir = tmpDir(t, 'viva-deb-');
  const root: UstarMember = { name: './', type: '5' };
  const cases: Array<[string, UstarMember[], typeof CorruptInputError | typeof UnsafeInputError, RegExp]> = [
    ['dotdot', [root, { name: '../etc/passwd', data: 'root::0:0::/:/bin/sh\n' }], UnsafeInputError, /data\.tar member '\.\.\/etc\/passwd': '\.\.' in member name/],
    ['inner-dotdot', [root, { name: './usr/../../etc/passwd', data: 'x' }], UnsafeInputError, /'\.\.' in member name/],
    ['absolute', [root, { name: '/etc/x', data: 'x' }], UnsafeInputError, /member '\/etc\/x': absolute member name/],
    ['through-symlink', [root, { name: './lib', type: '2', linkname: '/etc' }, { name: './lib/passwd', data: 'x' }], UnsafeInputError, /member '\.\/lib\/passwd': path goes through the symlink 'lib'/],
    ['hardlink-outside', [root, { name: './x', type: '1', linkname: '../../etc/shadow' }], UnsafeInputError, /hardlink target '\.\.\/\.\.\/etc\/shadow'/],
    ['hardlink-absolute', [root, { name: './x', type: '1', linkname: '/etc/shadow' }], UnsafeInputError, /hardlink target '\/etc\/shadow': absolute/],
    ['hardlink-missing', [root, { name: './x', type: '1', linkname: './etc/shadow' }], CorruptInputError, /is not an earlier member/],
  ];
  for (const [name, members, cls, re] of cases) {
    const file = handDeb(dir, `${name}.deb`, members);
    checkError(t, await t.throwsAsync(drain(file)), cls, file, re);
    // debTree refuses it the same way, before anything references what it stored.
    const { repo } = tmpRepo(t);
    checkError(t, await t.throwsAsync(debTree(repo, repo.objects, file)), cls, file, re);
  }
  const ok = handDeb(dir, 'symlinks.deb', [root, { name: './lib', type: '2', linkname: '/etc' }, { name: './up', type: '2', linkname: '../../../../etc/passwd' }]);
  const { repo } = tmpRepo(t);
  const r = await debTree(repo, repo.objects, ok);
  t.is(lookup(repo, r.tree, 'lib')!.linkTarget!.toString(), '/etc');
  t.is(lookup(repo, r.tree, 'up')!.linkTarget!.toString(), '../../../../etc/passwd');
});

test('readDeb: a missing file is a read error', async (t) => {
  const e = await t.throwsAsync(readDeb('/nonexistent/x.deb'));
  t.is((e as VivaError).code, 'ERR_SOURCE_READ');
});

// ---------------------------------------------------------------------------------------------------------------
// Control paragraphs and relations.

test('parseDebControl: continuation lines, blanks around the value, one paragraph, unique names', (t) => {
  const f = parseDebControl('Package: a\nDescription:  short  \n long\n .\n  indented\nX-Empty:\n\n\n', 'f');
  t.deepEqual(f, [{ name: 'Package', value: 'a' }, { name: 'Description', value: 'short\n long\n .\n  indented' }, { name: 'X-Empty', value: '' }]);
  const bad: Array<[string, RegExp]> = [
    ['Package: a\n\nVersion: 1\n', /line 3: more than one paragraph/],
    [' x\nPackage: a\n', /line 1: continuation line before the first field/],
    ['Package: a\npackage: b\n', /line 2: duplicate field 'package'/],
    ['Package a\n', /line 1: line without a field name/],
    ['-----BEGIN PGP: x\n', /invalid field name/],
  ];
  for (const [text, re] of bad) {
    const e = t.throws(() => parseDebControl(text, 'pkg.deb'));
    t.true(e instanceof CorruptInputError);
    t.regex(e!.message, re);
  }
});

/** Real Depends-style lines (Debian 12) and what they parse to, written back canonically. */
const REAL_RELATIONS: Array<[field: string, text: string, canonical?: string]> = [
  ['Depends', 'libc6 (>= 2.34), libselinux1 (>= 3.1~), libzstd1 (>= 1.5.2), zlib1g (>= 1:1.1.4)'],
  ['Pre-Depends', 'libc6 (>= 2.36), libpam0g (>= 0.99.7.1), libpam-modules, libpam-runtime'],
  ['Depends', 'debconf (>= 0.5) | debconf-2.0, init-system-helpers (>= 1.52), adduser'],
  ['Depends', 'perl:any, libc6 (>= 2.34), libssl3 (>= 3.0.0)'],
  ['Depends', 'python3:any (>= 3.11~), python3-six'],
  ['Depends', 'libstdc++6 (>= 12), libgcc-s1 (>= 3.0)'],
  ['Depends', 'default-mta | mail-transport-agent, cron | cron-daemon'],
  ['Breaks', 'libsystemd0 (<< 252.30-1~deb12u2), systemd-timesyncd (<< 252.30-1~deb12u2)'],
  ['Conflicts', 'e2fsprogs (<< 1.45.5-1), systemd-shim (<< 10-4~)'],
  ['Replaces', 'manpages-de (<< 4.13-4), sysvinit-utils (<< 2.96-3~)'],
  ['Provides', 'libpython3-stdlib (= 3.11.2-1+b1), editor, mail-transport-agent'],
  ['Depends', 'gcc-12-base (= 12.2.0-14)'],
  ['Depends', 'libc6(>=2.34),libfoo1   (  >>  1.0  )  |  libbar', 'libc6 (>= 2.34), libfoo1 (>> 1.0) | libbar'],
  ['Depends', 'old (< 1.0), older (> 2.0)', 'old (<= 1.0), older (>= 2.0)'],
  ['Build-Depends', 'debhelper-compat (= 13), libfoo-dev [amd64 arm64], pkg-config <!nocheck>, dh-sequence-python3 <!nopython> <stage1 cross>,'],
  ['Build-Depends', 'gcc-multilib [!armel !armhf]'],
  ['Depends', '', ''],
];

test('control: relation fields parse as dpkg reads them and write back canonically', (t) => {
  for (const [field, text, canonical] of REAL_RELATIONS) {
    if (field.startsWith('Build-')) continue; // source-package syntax: see deb822.test.ts
    const ctl = debControlFromFields([{ name: 'Package', value: 'p' }, { name: 'Version', value: '1' }, { name: 'Architecture', value: 'all' }, { name: field, value: text }], 'x.deb');
    const key = field === 'Pre-Depends' ? 'preDepends' : (field.toLowerCase() as 'depends');
    t.is(formatRelations(ctl[key] as Relations), canonical ?? text, text);
  }
});

test('control: relation syntax a binary package may not use is refused, naming the .deb and the field', (t) => {
  const bad: Array<[string, string, RegExp]> = [
    ['Depends', 'a (>= 1.0', /version of 'a' unterminated/],
    ['Conflicts', 'a | b', /alternatives \('\|'\) are not allowed in Conflicts/],
    ['Provides', 'a (>= 1)', /only exact versions/],
    ['Depends', 'a [amd64]', /belong to source packages/],
    ['Depends', 'A_b!c', /invalid package name/],
  ];
  for (const [field, text, re] of bad) {
    const e = t.throws(() => debControlFromFields([{ name: 'Package', value: 'p' }, { name: 'Version', value: '1' }, { name: 'Architecture', value: 'all' }, { name: field, value: text }], 'x.deb'), undefined, text);
    t.true(e instanceof CorruptInputError, text);
    t.regex(e!.message, /^x\.deb: control field/, text);
    t.regex(e!.message, re, text);
  }
});
