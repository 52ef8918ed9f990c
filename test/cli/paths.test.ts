/**
 * Where commit reads from and checkout writes to: sources given through symlinks, destinations inside the repository,
 * destination names (stdout, .tar.bz2, bare .ext4, unsupported image formats), and names that are not plain UTF-8.
 */
import test, { type ExecutionContext } from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { makeMbrDisk } from '../helpers/mbr-disk.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { EXIT } from '../../src/cli/exit-codes.js';
import { BIN, cleanEnv, tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}
const HAS_E2FS = has('mke2fs') && has('e2fsck');
const HAS_SFDISK = has('sfdisk');
const HAS_BZIP2 = has('bzip2');
const HAS_SCRIPT = has('script');

function sha(p: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

/** A small tree with a file, a subdirectory and a symlink inside. */
function makeTree(dir: string): string {
  const root = path.join(dir, 'rootfs');
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/hostname'), 'web01\n');
  fs.symlinkSync('etc/hostname', path.join(root, 'link'));
  return root;
}

async function repoWithCommit(t: ExecutionContext): Promise<{ dir: string; repo: string; tree: string }> {
  const dir = tmpDir(t);
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  const root = makeTree(dir);
  const c = await vivaJson(t, ['commit', '-C', repo, root, '-m', 'base']);
  return { dir, repo, tree: c.tree as string };
}

/** Every file under `.viva` with the sha256 of its bytes (LMDB's lock file, which readers touch, left out). */
function repoBytes(repo: string): string[] {
  const d = path.join(repo, '.viva');
  return fs.readdirSync(d).sort().filter((n) => !n.endsWith('-lock')).map((n) => `${n} ${sha(path.join(d, n))}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Point: checkout never writes into the repository.

test('checkout: a destination inside .viva is refused (direct, symlink, .. after a symlink, dangling link, hard link, -C .viva) and the repository is unchanged', async (t) => {
  const { dir, repo } = await repoWithCommit(t);
  fs.symlinkSync('.viva', path.join(repo, 'vv'));
  fs.symlinkSync('.viva/new-file', path.join(repo, 'dangling'));
  fs.linkSync(path.join(repo, '.viva/data.mdb'), path.join(dir, 'hardlink'));
  const before = repoBytes(repo);
  const cases: Array<[string[], { cwd: string }]> = [
    [['checkout', 'main', '.viva/data.mdb', '--format', 'tar', '--force'], { cwd: repo }],
    [['checkout', 'main', '.viva/data.mdb', '--format', 'raw', '--force', '--size', '8M'], { cwd: repo }],
    [['checkout', 'main', '.viva/new.tar'], { cwd: repo }],
    [['checkout', 'main', '.viva/sub/'], { cwd: repo }],
    [['checkout', 'main', 'vv/x.tar'], { cwd: repo }],
    [['checkout', 'main', 'vv/../.viva/x.tar'], { cwd: repo }],
    [['checkout', 'main', 'dangling', '--format', 'tar'], { cwd: repo }],
    [['checkout', 'main', path.join(dir, 'hardlink'), '--format', 'tar', '--force'], { cwd: repo }],
    [['checkout', '-C', path.join(repo, '.viva'), 'main', path.join(repo, '.viva', 'data.mdb'), '--format', 'tar', '--force'], { cwd: dir }],
    [['checkout', 'main', 'sub'], { cwd: path.join(repo, '.viva') }],
  ];
  for (const [args, opts] of cases) {
    const r = await viva(args, opts);
    t.is(r.code, EXIT.USAGE, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /^error: destination '.*' is inside the repository '.*\.viva': checkout never writes into it\n$/, args.join(' '));
  }
  t.deepEqual(repoBytes(repo), before);
  t.false(fs.existsSync(path.join(repo, '.viva/new-file')));
  await vivaOk(t, ['fsck', '-C', repo]);
  // A sibling of .viva is fine.
  await vivaOk(t, ['checkout', 'main', 'out.tar'], { cwd: repo });
});

test("checkout: a destination inside another repository's .viva is refused too (data file, marker only, via a symlink, the .viva itself) and that repository is unchanged", async (t) => {
  const { dir, repo } = await repoWithCommit(t);
  const other = path.join(dir, 'other');
  await vivaOk(t, ['init', other]);
  await vivaOk(t, ['commit', '-C', other, makeTree(path.join(dir, 'o')), '-m', 'other base']);
  fs.symlinkSync(path.join(other, '.viva'), path.join(dir, 'ov'));
  // A .viva that lost its data file but keeps the format marker is still a repository's data directory.
  const lost = path.join(dir, 'lost');
  await vivaOk(t, ['init', lost]);
  fs.rmSync(path.join(lost, '.viva/data.mdb'));
  fs.rmSync(path.join(lost, '.viva/data.mdb-lock'), { force: true });
  const before = repoBytes(other);
  const cases: string[][] = [
    ['checkout', 'main', '../other/.viva/data.mdb', '--format', 'tar', '--force'],
    ['checkout', 'main', '../other/.viva/data.mdb', '--format', 'raw', '--force', '--size', '8M'],
    ['checkout', 'main', '../other/.viva/new.tar'],
    ['checkout', 'main', '../other/.viva/sub/'],
    ['checkout', 'main', '../other/.viva', '--format', 'dir', '--force'],
    ['checkout', 'main', '../ov/x.tar'],
    ['checkout', 'main', '../lost/.viva/x.tar'],
  ];
  for (const args of cases) {
    const r = await viva(args, { cwd: repo });
    t.is(r.code, EXIT.USAGE, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /^error: destination '.*' is inside the repository '.*\.viva': checkout never writes into it\n$/, args.join(' '));
  }
  // The same from outside any repository, with -C.
  const r = await viva(['checkout', '-C', repo, 'main', path.join(other, '.viva/data.mdb'), '--format', 'tar', '--force'], { cwd: dir });
  t.is(r.code, EXIT.USAGE, r.stderr);
  t.deepEqual(repoBytes(other), before);
  t.false(fs.existsSync(path.join(other, '.viva/new.tar')));
  t.false(fs.existsSync(path.join(lost, '.viva/x.tar')));
  await vivaOk(t, ['log', '-C', other]);
  await vivaOk(t, ['fsck', '-C', other]);
  // A directory that is merely named .viva (nothing of viva's in it) is an ordinary destination.
  fs.mkdirSync(path.join(dir, 'plain/.viva'), { recursive: true });
  await vivaOk(t, ['checkout', '-C', repo, 'main', path.join(dir, 'plain/.viva/out.tar')]);
});

test("checkout --force: an existing file that is another repository's database through a hard link elsewhere is refused (exit 2), that repository unchanged", async (t) => {
  const { dir, repo } = await repoWithCommit(t);
  const other = path.join(dir, 'other');
  await vivaOk(t, ['init', other]);
  await vivaOk(t, ['commit', '-C', other, makeTree(path.join(dir, 'o')), '-m', 'other base']);
  const data = path.join(other, '.viva/data.mdb');
  const ino = fs.statSync(data).ino;
  const before = repoBytes(other);
  for (const [name, extra] of [['backup.tar', []], ['backup.tar.gz', []], ['backup.raw', ['--size', '8M']], ['backup.qcow2', ['--size', '8M']], ['backup', ['--format', 'tar']]] as const) {
    const link = path.join(dir, 'links', name);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.linkSync(data, link);
    const r = await viva(['checkout', '-C', repo, 'main', link, '--force', ...extra], { cwd: dir });
    t.is(r.code, EXIT.USAGE, `${name}: ${r.stderr}`);
    t.is(r.stderr, `error: destination '${link}' is a repository database (an LMDB data file): checkout never writes over it\n`, name);
    t.is(fs.statSync(link).ino, ino, `${name} is still the database's link`);
  }
  // A copy of it is refused as well: its content says what it is.
  const copy = path.join(dir, 'copy.tar');
  fs.copyFileSync(data, copy);
  t.is((await viva(['checkout', '-C', repo, 'main', copy, '--force'])).code, EXIT.USAGE);
  t.deepEqual(repoBytes(other), before);
  await vivaOk(t, ['fsck', '-C', other]);
  // An ordinary existing file is still overwritten with --force.
  const plain = path.join(dir, 'plain.tar');
  fs.writeFileSync(plain, 'old');
  await vivaOk(t, ['checkout', '-C', repo, 'main', plain, '--force']);
});

// ---------------------------------------------------------------------------------------------------------------
// Point: a SOURCE given as a symlink is followed.

test('commit: a symlink to a directory is followed; symlinks inside the tree stay symlinks', async (t) => {
  const { dir, repo, tree } = await repoWithCommit(t);
  fs.symlinkSync('rootfs', path.join(dir, 'L'));
  const c = await vivaJson(t, ['commit', '-C', repo, path.join(dir, 'L'), '-b', 'via-link', '-m', 'through a link']);
  t.is(c.tree, tree);
  const ls = await vivaOk(t, ['ls', '-C', repo, '-l', 'via-link']);
  t.regex(ls.stdout, /^l.* link -> etc\/hostname$/m);
  // A relative symlink given relative to the current directory, and a chain of two links.
  fs.symlinkSync('L', path.join(dir, 'L2'));
  t.is((await vivaJson(t, ['commit', '-C', repo, 'L2', '-b', 'via-link', '-m', 'two links'], { cwd: dir })).tree, tree);
});

test('commit: a symlink to a tar archive is followed', async (t) => {
  const { dir, repo } = await repoWithCommit(t);
  const tar = path.join(dir, 'img.tar');
  await vivaOk(t, ['checkout', '-C', repo, 'main', tar]);
  fs.symlinkSync('img.tar', path.join(dir, 'T'));
  const direct = await vivaJson(t, ['commit', '-C', repo, tar, '-b', 'tar', '-m', 'tar']);
  const linked = await vivaJson(t, ['commit', '-C', repo, path.join(dir, 'T'), '-b', 'tar-link', '-m', 'tar via link']);
  t.is(linked.tree, direct.tree);
});

test('commit: a SOURCE that is a symlink loop is one line in the system\'s words (exit 14), not Node\'s ELOOP message', async (t) => {
  const { repo } = await repoWithCommit(t);
  fs.symlinkSync('loopy', path.join(repo, 'loopy'));
  fs.symlinkSync('b', path.join(repo, 'a'));
  fs.symlinkSync('a', path.join(repo, 'b'));
  const before = repoBytes(repo);
  for (const name of ['loopy', 'a']) {
    const r = await viva(['commit', name, '-m', 'loop'], { cwd: repo });
    t.is(r.code, EXIT.SOURCE_UNREADABLE, r.stderr);
    t.is(r.stderr, `error: cannot read '${name}': too many levels of symbolic links\n`);
  }
  const missing = await viva(['commit', 'nope', '-m', 'x'], { cwd: repo });
  t.is(missing.stderr, "error: cannot read 'nope': no such file or directory\n");
  t.deepEqual(repoBytes(repo), before);
});

(HAS_E2FS && HAS_SFDISK ? test : test.skip)('commit: a symlink to a raw or qcow2 disk image is followed', async (t) => {
  const { dir, repo } = await repoWithCommit(t);
  for (const name of ['disk.raw', 'disk.qcow2']) {
    const img = path.join(dir, name);
    await vivaOk(t, ['checkout', '-C', repo, 'main', img, '--size', '16M']);
    const link = path.join(dir, `link-to-${name}`);
    fs.symlinkSync(name, link);
    const direct = await vivaJson(t, ['commit', '-C', repo, img, '-b', `d/${name}`, '-m', 'disk']);
    const linked = await vivaJson(t, ['commit', '-C', repo, link, '-b', `l/${name}`, '-m', 'disk via link']);
    t.is(linked.tree, direct.tree, name);
    const show = await vivaJson(t, ['show', '-C', repo, `l/${name}`]);
    t.truthy(show.disk, `${name}: committed as a disk`);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Point: checkout destinations by name.

test("checkout: '-' writes a tar to standard output, the summary to stderr", async (t) => {
  const { dir, repo, tree } = await repoWithCommit(t);
  const r = await vivaOk(t, ['checkout', '-C', repo, 'main', '-']);
  t.regex(r.stderr, /^checked out [0-9a-f]{12} to standard output \(tar\): 1 file, 2 directories/m);
  t.is(r.stdoutBytes.toString('latin1', 257, 262), 'ustar');
  const tar = path.join(dir, 'from-stdout.tar');
  fs.writeFileSync(tar, r.stdoutBytes);
  t.is((await vivaJson(t, ['commit', '-C', repo, tar, '-b', 'back', '-m', 'back'])).tree, tree);
  t.false(fs.existsSync(path.join(dir, '-')));
  // A disk image or --json cannot go to stdout; --format dir makes a directory named '-'.
  t.is((await viva(['checkout', '-C', repo, 'main', '-', '--format', 'raw'])).code, EXIT.USAGE);
  const j = await viva(['checkout', '-C', repo, 'main', '-', '--json']);
  t.is(j.code, EXIT.USAGE);
  await vivaOk(t, ['checkout', '-C', repo, 'main', '-', '--format', 'dir'], { cwd: dir });
  t.true(fs.statSync(path.join(dir, '-')).isDirectory());
});

(HAS_SCRIPT ? test : test.skip)("checkout: '-' is refused when standard output is a terminal", async (t) => {
  const { dir, repo } = await repoWithCommit(t);
  // script(1) runs the command on a pseudo-terminal.
  const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} checkout -C ${JSON.stringify(repo)} main -; echo "rc=$?"`;
  const out = execFileSync('script', ['-qec', cmd, '/dev/null'], { cwd: dir, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  t.regex(out, /error: refusing to write a tar archive to a terminal/);
  t.regex(out, new RegExp(`rc=${EXIT.USAGE}`));
  t.notRegex(out, /ustar/);
  t.false(fs.existsSync(path.join(dir, '-')));
});

(HAS_BZIP2 ? test : test.skip)('checkout: .tar.bz2 writes a bzip2 tar that commit reads back to the same tree', async (t) => {
  const { dir, repo, tree } = await repoWithCommit(t);
  for (const name of ['img.tar.bz2', 'img.tbz2']) {
    const out = path.join(dir, name);
    const r = await vivaOk(t, ['checkout', '-C', repo, 'main', out]);
    t.regex(r.stdout, /\(tar\)/);
    t.is(fs.readFileSync(out).toString('latin1', 0, 3), 'BZh', name);
    t.regex(execFileSync('tar', ['-tjf', out]).toString(), /etc\/hostname/);
    t.is((await vivaJson(t, ['commit', '-C', repo, out, '-b', 'bz', '-m', 'bz2'])).tree, tree);
  }
});

(HAS_E2FS ? test : test.skip)('checkout: .ext4 writes a bare ext4 file system (no partition table) that commit reads back', async (t) => {
  const { dir, repo } = await repoWithCommit(t);
  const out = path.join(dir, 'root.ext4');
  // A directory commit has no size to reuse.
  const noSize = await viva(['checkout', '-C', repo, 'main', out]);
  t.is(noSize.code, EXIT.USAGE);
  t.regex(noSize.stderr, /needs --size/);
  t.false(fs.existsSync(out));
  await vivaOk(t, ['checkout', '-C', repo, 'main', out, '--size', '16M']);
  t.is(fs.statSync(out).size, 16 << 20);
  const sb = Buffer.alloc(2);
  const fd = fs.openSync(out, 'r');
  fs.readSync(fd, sb, 0, 2, 1024 + 0x38);
  fs.closeSync(fd);
  t.deepEqual([...sb], [0x53, 0xef], 'ext superblock magic at 1024 + 0x38: a bare file system');
  execFileSync('e2fsck', ['-fn', out], { stdio: 'ignore' });
  const c = await vivaJson(t, ['commit', '-C', repo, out, '-b', 'fs', '-m', 'bare']);
  const show = await vivaJson(t, ['show', '-C', repo, 'fs']);
  t.falsy(show.disk.table, 'no partition table');
  t.is((await vivaOk(t, ['cat', '-C', repo, 'fs:etc/hostname'])).stdout, 'web01\n');
  t.truthy(c.tree);
  // A bare ext4 disk commit comes back bit-exact.
  const again = path.join(dir, 'again.ext4');
  const r = await vivaOk(t, ['checkout', '-C', repo, 'fs', again]);
  t.regex(r.stdout, /bit-exact/);
  t.is(sha(again), sha(out));
});

(HAS_E2FS && HAS_SFDISK ? test : test.skip)('checkout: a partitioned disk commit to .ext4 becomes its first file system, bare, of the same size', async (t) => {
  const { dir, repo } = await repoWithCommit(t);
  const disk = path.join(dir, 'disk.raw');
  await vivaOk(t, ['checkout', '-C', repo, 'main', disk, '--size', '16M']);
  await vivaOk(t, ['commit', '-C', repo, disk, '-b', 'vm', '-m', 'gpt disk']);
  const p1 = (await vivaJson(t, ['show', '-C', repo, 'vm'])).disk.regions.find((r: { kind: string }) => r.kind === 'fs');
  const out = path.join(dir, 'p1.ext4');
  await vivaOk(t, ['checkout', '-C', repo, 'vm', out]);
  t.is(fs.statSync(out).size, p1.size);
  execFileSync('e2fsck', ['-fn', out], { stdio: 'ignore' });
  await vivaOk(t, ['commit', '-C', repo, out, '-b', 'p1', '-m', 'p1']);
  t.is((await vivaOk(t, ['cat', '-C', repo, 'p1:etc/hostname'])).stdout, 'web01\n');
});

(HAS_E2FS ? test : test.skip)('checkout: a disk commit with two file systems is refused as a bare .ext4 (which holds one), nothing written', async (t) => {
  const { dir, repo } = await repoWithCommit(t);
  const tree = path.join(dir, 'rootfs');
  const disk = path.join(dir, 'two.raw');
  makeMbrDisk(disk, 40, [
    { start: 2048, sectors: 16 * 2048, type: 0x83, ext4Tree: tree },
    { start: 2048 + 16 * 2048, sectors: 16 * 2048, type: 0x83, ext4Tree: tree },
  ]);
  await vivaOk(t, ['commit', '-C', repo, disk, '-b', 'vm2', '-m', 'two file systems']);
  const out = path.join(dir, 'one.ext4');
  const r = await viva(['checkout', '-C', repo, 'vm2', out]);
  t.is(r.code, EXIT.USAGE, r.stderr);
  t.regex(r.stderr, /^error: 'vm2' holds 2 file systems \(p1, p2\), a bare ext4 image holds one; /);
  t.false(fs.existsSync(out));
});

(HAS_BZIP2 ? test : test.skip)('checkout: every tar name GNU tar --auto-compress knows for gzip, bzip2, xz, zstd writes that archive, never a directory', async (t) => {
  const { dir, repo, tree } = await repoWithCommit(t);
  const magic: Record<string, number[]> = { gzip: [0x1f, 0x8b], bzip2: [0x42, 0x5a, 0x68], xz: [0xfd, 0x37, 0x7a, 0x58, 0x5a], zstd: [0x28, 0xb5, 0x2f, 0xfd] };
  const names: Array<[string, string]> = [
    ['a.taz', 'gzip'], ['a.TAZ', 'gzip'], ['a.tar.z', 'gzip'], ['a.tar.gzip', 'gzip'],
    ['a.tb2', 'bzip2'], ['a.tbz', 'bzip2'], ['a.tbz2', 'bzip2'], ['a.tz2', 'bzip2'], ['a.tar.bzip2', 'bzip2'],
    ['a.txz', 'xz'], ['a.tzst', 'zstd'], ['a.tar.zstd', 'zstd'],
  ];
  for (const [name, compression] of names) {
    const out = path.join(dir, name);
    const r = await vivaOk(t, ['checkout', '-C', repo, 'main', out]);
    t.regex(r.stdout, /\(tar\)/, name);
    t.true(fs.statSync(out).isFile(), `${name} is a file`);
    t.deepEqual([...fs.readFileSync(out).subarray(0, magic[compression]!.length)], magic[compression], `${name} is ${compression}`);
    t.regex(execFileSync('tar', ['-taf', out, '--force-local']).toString(), /etc\/hostname/, name);
    t.is((await vivaJson(t, ['commit', '-C', repo, out, '-b', `c/${name}`, '-m', name])).tree, tree, name);
  }
});

test('checkout: tar names of compressions viva does not write (.tar.Z, .taZ, .tar.lzo, .tzo, .lzma, .lz) are refused with exit 2', async (t) => {
  const { dir, repo } = await repoWithCommit(t);
  for (const [name, ext] of [['a.tar.Z', '.tar.Z'], ['a.taZ', '.taZ'], ['a.tar.lzo', '.tar.lzo'], ['a.tzo', '.tzo'], ['a.lzma', '.lzma'], ['a.lz', '.lz'], ['a.Z', '.Z']]) {
    const out = path.join(dir, name!);
    const r = await viva(['checkout', '-C', repo, 'main', out]);
    t.is(r.code, EXIT.USAGE, name);
    t.true(r.stderr.startsWith(`error: unsupported destination format '${ext}' (supported: `), r.stderr);
    t.false(fs.existsSync(out), `${name} not created`);
  }
});

test('checkout: unsupported image names (.vhd, .vdi, .iso, ...) are refused with exit 2 unless --format dir', async (t) => {
  const { dir, repo } = await repoWithCommit(t);
  for (const name of ['disk.vhd', 'disk.VHDX', 'disk.vdi', 'cd.iso', 'a.zip', 'rootfs.squashfs', 'x.tar.lz4']) {
    const out = path.join(dir, name);
    const r = await viva(['checkout', '-C', repo, 'main', out]);
    t.is(r.code, EXIT.USAGE, name);
    const ext = name.slice(name.indexOf('.'));
    t.is(r.stderr, `error: unsupported destination format '${ext}' (supported: .tar, .tar.gz, .tgz, .tar.zst, .tar.xz, .tar.bz2, .raw, .img, .qcow2, .vmdk, .ext4, .ext3, .ext2, - (tar to stdout), a directory); --format dir makes a directory of that name\n`, name);
    t.false(fs.existsSync(out), `${name} not created`);
  }
  const out = path.join(dir, 'disk.vmdk');
  await vivaOk(t, ['checkout', '-C', repo, 'main', out, '--format', 'dir']);
  t.is(fs.readFileSync(path.join(out, 'etc/hostname'), 'utf8'), 'web01\n');
  // Dotted directory names that are no image format stay directories.
  await vivaOk(t, ['checkout', '-C', repo, 'main', path.join(dir, 'debian-12.5')]);
  t.true(fs.statSync(path.join(dir, 'debian-12.5')).isDirectory());
});

// ---------------------------------------------------------------------------------------------------------------
// Point: names that are not UTF-8 or hold control characters are quoted in human output and can be addressed.

const isRoot = process.getuid?.() === 0;
const HAS_MKEDGE_TOOLS = isRoot && ['setfattr', 'setcap', 'setfacl', 'mknod', 'python3'].every(has);

(HAS_MKEDGE_TOOLS ? test : test.skip)('ls: the mkedge tree lists one line per entry, odd names C-quoted, and cat takes the quoted names back', async (t) => {
  const dir = tmpDir(t);
  const tree = path.join(dir, 'edge');
  execFileSync('bash', [path.join(path.dirname(BIN), '../test/fixtures/mkedge.sh'), tree], { stdio: 'ignore' });
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', '-C', repo, tree, '-m', 'edge']);
  const json = await vivaJson(t, ['ls', '-C', repo, 'main']);
  const lines = (await vivaOk(t, ['ls', '-C', repo, 'main'])).stdout.replace(/\n$/, '').split('\n');
  t.is(lines.length, json.length, 'one line per entry');
  t.true(lines.includes('"non-utf8-\\377\\376"'));
  t.true(lines.includes('"new\\nline"'));
  t.true(lines.includes('plain'));
  const long = (await vivaOk(t, ['ls', '-C', repo, '-l', 'main'])).stdout.replace(/\n$/, '').split('\n');
  t.is(long.length, json.length);
  // JSON keeps the lossy text and the exact bytes.
  const odd = json.find((e: { pathHex?: string }) => e.pathHex);
  t.is(Buffer.from(odd.pathHex, 'hex').toString('latin1'), 'non-utf8-\xff\xfe');
  t.is(odd.path, 'non-utf8-\ufffd\ufffd');
  t.is((await vivaOk(t, ['cat', '-C', repo, 'main:"non-utf8-\\377\\376"'])).stdout, 'x');
  t.is((await vivaOk(t, ['cat', '-C', repo, 'main:"new\\nline"'])).stdout, 'x');
});

/** A tree of awkward names, committed twice (a rename of a non-UTF-8 name and a change to a name with a newline). */
async function awkwardRepo(t: ExecutionContext): Promise<{ dir: string; repo: string }> {
  const dir = tmpDir(t);
  const root = Buffer.from(path.join(dir, 'tree'));
  const at = (name: string) => Buffer.concat([root, Buffer.from('/'), Buffer.from(name, 'latin1')]);
  fs.mkdirSync(root);
  fs.writeFileSync(at('non-utf8-\xff\xfe'), 'x\n');
  fs.writeFileSync(at('new\nline'), 'nl\n');
  fs.writeFileSync(at('quo"te'), 'q\n');
  fs.writeFileSync(at('back\\slash'), 'b\n');
  fs.writeFileSync(Buffer.concat([root, Buffer.from('/café')]), 'cafe\n');
  fs.mkdirSync(at('dir\xff'));
  fs.writeFileSync(at('dir\xff/f'), 'inner\n');
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  const env = { env: { VIVA_DATE: '1700000000' } };
  await vivaOk(t, ['commit', '-C', repo, path.join(dir, 'tree'), '-m', 'one'], env);
  fs.appendFileSync(at('new\nline'), 'more\n');
  fs.renameSync(at('non-utf8-\xff\xfe'), at('moved\xfe'));
  await vivaOk(t, ['commit', '-C', repo, path.join(dir, 'tree'), '-m', 'two'], env);
  return { dir, repo };
}

test('ls/cat/checkout: quoted names list on one line and are accepted back in REV:path and --path', async (t) => {
  const { dir, repo } = await awkwardRepo(t);
  const ls = await vivaOk(t, ['ls', '-C', repo, '-r', 'main']);
  t.is(ls.stdout, ['"back\\\\slash"', 'café', '"dir\\377/"', '"dir\\377/f"', '"moved\\376"', '"new\\nline"', '"quo\\"te"', ''].join('\n'));
  t.is((await vivaOk(t, ['cat', '-C', repo, 'main~1:"non-utf8-\\377\\376"'])).stdout, 'x\n');
  t.is((await vivaOk(t, ['cat', '-C', repo, 'main:"new\\nline"'])).stdout, 'nl\nmore\n');
  t.is((await vivaOk(t, ['cat', '-C', repo, 'main:"quo\\"te"'])).stdout, 'q\n');
  t.is((await vivaOk(t, ['cat', '-C', repo, 'main:"back\\\\slash"'])).stdout, 'b\n');
  t.is((await vivaOk(t, ['cat', '-C', repo, 'main:café'])).stdout, 'cafe\n');
  t.is((await vivaOk(t, ['ls', '-C', repo, 'main:"dir\\377/"'])).stdout, '"dir\\377/f"\n');
  const out = path.join(dir, 'out');
  await vivaOk(t, ['checkout', '-C', repo, 'main', out, '--path', '"dir\\377"']);
  t.is(fs.readFileSync(Buffer.from(`${out}/dir\xff/f`, 'latin1')).toString(), 'inner\n');
  // A missing quoted name is reported quoted; a malformed one is a usage error.
  const missing = await viva(['cat', '-C', repo, 'main:"nope\\377"']);
  t.is(missing.code, EXIT.NOT_FOUND);
  t.regex(missing.stderr, /path '"nope\\377"' does not exist/);
  const bad = await viva(['cat', '-C', repo, 'main:"open']);
  t.is(bad.code, EXIT.USAGE);
  t.is(bad.stderr, `error: path '"open' is not a valid quoted path: no closing double quote\n`);
});

test('diff/grep/find/du: names are quoted in human output, JSON keeps path and pathHex', async (t) => {
  const { repo } = await awkwardRepo(t);
  const d = await vivaOk(t, ['diff', '-C', repo, 'main']);
  t.true(d.stdout.split('\n').includes('R\t"non-utf8-\\377\\376" -> "moved\\376"'), d.stdout);
  t.true(d.stdout.split('\n').some((l) => l.startsWith('M\t"new\\nline"\t[content 3 -> 8 bytes')), d.stdout);
  const stat = await vivaOk(t, ['diff', '-C', repo, '--stat', 'main']);
  t.regex(stat.stdout, /^ R "non-utf8-\\377\\376" -> "moved\\376" +\| 2 -> 2$/m);
  const p = await vivaOk(t, ['diff', '-C', repo, '-p', 'main~1', 'main', '--', '"new\\nline"']);
  t.regex(p.stdout, /^--- "a\/new\\nline"$/m);
  t.regex(p.stdout, /^\+\+\+ "b\/new\\nline"$/m);
  t.regex(p.stdout, /^\+more$/m);
  const dj = await vivaJson(t, ['diff', '-C', repo, 'main']);
  const r = dj.entries.find((e: { status: string }) => e.status === 'R');
  t.is(Buffer.from(r.pathHex, 'hex').toString('latin1'), 'moved\xfe');
  t.is(Buffer.from(r.fromHex, 'hex').toString('latin1'), 'non-utf8-\xff\xfe');

  const g = await vivaOk(t, ['grep', '-C', repo, '.', 'main']);
  t.is(g.stdout, ['"back\\\\slash":1:b', 'café:1:cafe', '"dir\\377/f":1:inner', '"moved\\376":1:x', '"new\\nline":1:nl', '"new\\nline":2:more', '"quo\\"te":1:q', ''].join('\n'));
  t.is((await vivaOk(t, ['grep', '-C', repo, '-l', 'more', 'main'])).stdout, '"new\\nline"\n');
  t.is((await vivaOk(t, ['grep', '-C', repo, 'inner', 'main', '--', '"dir\\377"'])).stdout, '"dir\\377/f":1:inner\n');
  const gj = await vivaJson(t, ['grep', '-C', repo, 'inner', 'main']);
  t.is(Buffer.from(gj[0].pathHex, 'hex').toString('latin1'), 'dir\xff/f');

  const f = await vivaOk(t, ['find', '-C', repo, '--name', 'moved*']);
  t.regex(f.stdout, /^main\t[0-9a-f]{12}\t"moved\\376"$/m);
  const fj = await vivaJson(t, ['find', '-C', repo, '--name', 'moved*']);
  t.is(Buffer.from(fj[0].pathHex, 'hex').toString('latin1'), 'moved\xfe');

  const du = await vivaOk(t, ['du', '-C', repo, '-b', 'main']);
  t.regex(du.stdout, /^ +6 {2}"dir\\377"$/m);
});

(has('python3') ? test : test.skip)('checkout: warnings name entries quoted', async (t) => {
  const dir = tmpDir(t);
  const root = path.join(dir, 'tree');
  fs.mkdirSync(root);
  // A socket cannot go into a tar: the warning names it.
  execFileSync('python3', ['-c', `import socket,os; s=socket.socket(socket.AF_UNIX); s.bind(os.fsencode(${JSON.stringify(root)}) + b"/sock\\xff\\n")`]);
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', '-C', repo, root, '-m', 'socket']);
  const r = await vivaOk(t, ['checkout', '-C', repo, 'main', path.join(dir, 'out.tar')]);
  // One line `warning: …`, not oclif's indented, wrapped ` ›   Warning:` block.
  t.regex(r.stderr, /^warning: .*"sock\\377\\n": sockets cannot be stored in a tar archive: skipped\n$/);
  const j = await vivaJson(t, ['checkout', '-C', repo, 'main', path.join(dir, 'out2.tar')]);
  t.is(Buffer.from(j.warnings[0].pathHex, 'hex').toString('latin1'), 'sock\xff\n');
  // With --json the warning stays on stderr, in the same form; stdout is only the JSON document.
  const jr = await viva(['checkout', '-C', repo, 'main', path.join(dir, 'out3.tar'), '--json']);
  t.is(jr.code, 0, jr.stderr);
  t.regex(jr.stderr, /^warning: .*"sock\\377\\n": sockets cannot be stored in a tar archive: skipped\n$/);
});
