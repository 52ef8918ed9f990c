/** A disk whose content viva cannot read file by file is committed as raw bytes with one warning naming it. */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { CorruptInputError } from '../../src/errors.js';
import { checkout } from '../../src/ops/checkout.js';
import { fsck } from '../../src/ops/fsck.js';
import { MiB, commitAt, randomBytes, tmpDir, tmpRepo } from '../helpers/repo.js';
import { vivaOk, viva } from '../helpers/cli.js';

function have(tool: string, args: string[] = ['--version']): boolean {
  try {
    execFileSync(tool, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const fileSha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

/** A sparse `sizeMiB` MiB file with `bytes` written at each offset. */
function image(file: string, sizeMiB: number, writes: Array<[number, Buffer]>): string {
  const fd = fs.openSync(file, 'w');
  try {
    fs.ftruncateSync(fd, sizeMiB * MiB);
    for (const [at, b] of writes) fs.writeSync(fd, b, 0, b.length, at);
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

/** Commits `file`, checks the one warning, a bit-exact raw checkout, fsck, and that strict refuses. */
async function rawRoundTrip(t: ExecutionContext, file: string, what: string): Promise<void> {
  const { repo } = tmpRepo(t);
  const r = await commitAt(repo, file, { branch: 'vm/a' });
  t.deepEqual(r.warnings, [`${file}: ${what} without a partition table, which viva does not read: stored as raw bytes, files inside are not indexed`]);
  t.is(r.files, 0);
  const out = path.join(path.dirname(file), 'out.raw');
  await checkout(repo, { rev: 'vm/a', dest: out });
  t.is(fs.statSync(out).size, fs.statSync(file).size);
  t.is(fileSha(out), fileSha(file), 'the raw checkout is the same disk');
  t.deepEqual((await fsck(repo)).problems, []);
  const e = await t.throwsAsync(commitAt(repo, file, { branch: 'vm/strict', strict: true }), { instanceOf: CorruptInputError });
  t.regex(e!.message, /whole disk: .* \(--strict\)$/);
  t.is(repo.refs.resolve('refs/heads/vm/strict')?.oid, undefined);
}

test('an XFS disk (magic written by hand) is committed raw with one warning and checks out bit-exact', async (t) => {
  const dir = tmpDir(t);
  const sb = Buffer.alloc(512);
  sb.write('XFSB', 0, 'latin1');
  sb.writeUInt32BE(4096, 4);
  const file = image(path.join(dir, 'xfs.img'), 16, [[0, sb], [3 * MiB + 17, randomBytes(2 * MiB, 'xfs-a')], [12 * MiB, randomBytes(70_000, 'xfs-b')]]);
  await rawRoundTrip(t, file, 'xfs file system');
});

const SIGNED: Array<[string, Array<[number, string]>, string]> = [
  ['btrfs', [[0x10040, '_BHRfS_M']], 'btrfs file system'],
  ['LUKS', [[0, 'LUKS\xba\xbe']], 'LUKS encrypted volume'],
  ['LVM2', [[512, 'LABELONE']], 'LVM2 physical volume'],
  ['NTFS', [[3, 'NTFS    '], [510, '\x55\xaa']], 'NTFS file system'],
  ['swap', [[4086, 'SWAPSPACE2']], 'swap space'],
];
for (const [label, sigs, what] of SIGNED) {
  test(`a ${label} disk (signature written by hand) is committed raw as '${what}' and checks out bit-exact`, async (t) => {
    const dir = tmpDir(t);
    const file = image(path.join(dir, `${label}.img`), 8, [...sigs.map(([at, s]): [number, Buffer] => [at, Buffer.from(s, 'latin1')]), [5 * MiB, randomBytes(MiB, label)]]);
    await rawRoundTrip(t, file, what);
  });
}

(have('mkfs.vfat', ['--help']) ? test : test.skip)('a whole-disk FAT file system (mkfs.vfat) is read file by file, not kept raw, and checks out bit-exact', async (t) => {
  const dir = tmpDir(t);
  const file = image(path.join(dir, 'esp.img'), 33, []);
  execFileSync('mkfs.vfat', ['-F', '32', file], { stdio: 'ignore' });
  const { repo } = tmpRepo(t);
  const r = await commitAt(repo, file, { branch: 'vm/esp' });
  t.deepEqual(r.warnings, []);
  const out = path.join(dir, 'out.raw');
  await checkout(repo, { rev: 'vm/esp', dest: out });
  t.is(fileSha(out), fileSha(file));
});

(have('mkswap', ['--version']) ? test : test.skip)('a swap disk (mkswap) is committed raw and checks out bit-exact', async (t) => {
  const dir = tmpDir(t);
  const file = image(path.join(dir, 'swap.img'), 8, []);
  execFileSync('mkswap', [file], { stdio: 'ignore' });
  await rawRoundTrip(t, file, 'swap space');
});

(have('qemu-img') ? test : test.skip)('a qcow2 of content no signature names is committed raw as unknown content', async (t) => {
  const dir = tmpDir(t);
  const raw = image(path.join(dir, 'blob.raw'), 4, [[MiB, randomBytes(MiB, 'unknown')]]);
  const q = path.join(dir, 'blob.qcow2');
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, q], { stdio: 'ignore' });
  const { repo } = tmpRepo(t);
  const r = await commitAt(repo, q, { branch: 'vm/q' });
  t.deepEqual(r.warnings, [`${q}: unknown content without a partition table, which viva does not read: stored as raw bytes, files inside are not indexed`]);
  const out = path.join(dir, 'out.raw');
  await checkout(repo, { rev: 'vm/q', dest: out });
  t.is(fileSha(out), fileSha(raw));
});

test('viva commit of an XFS image takes the disk path and prints the one warning; a file with no signature stays an error', async (t) => {
  const dir = tmpDir(t);
  const file = image(path.join(dir, 'x.img'), 4, [[0, Buffer.from('XFSB')], [MiB, randomBytes(4096, 'cli')]]);
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  const r = await vivaOk(t, ['commit', file, '-m', 'xfs'], { cwd: repo });
  t.is(r.stderr, `warning: ${file}: xfs file system without a partition table, which viva does not read: stored as raw bytes, files inside are not indexed\n`);
  const junk = path.join(dir, 'junk.img');
  fs.writeFileSync(junk, randomBytes(8192, 'junk'));
  const bad = await viva(['commit', junk, '-m', 'junk'], { cwd: repo });
  t.not(bad.code, 0);
  t.regex(bad.stderr, /not a tar archive/);
});

test('a tar whose first member is named XFSB is still committed as a tar', async (t) => {
  const dir = tmpDir(t);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  fs.writeFileSync(path.join(tree, 'XFSB'), 'not a file system\n');
  const tar = path.join(dir, 'a.tar');
  execFileSync('tar', ['-cf', tar, '-C', tree, 'XFSB'], { stdio: 'ignore' });
  t.is(fs.readFileSync(tar).toString('latin1', 0, 4), 'XFSB');
  const { repo } = tmpRepo(t);
  const r = await commitAt(repo, tar, { branch: 'vm/tar' });
  t.deepEqual(r.warnings, []);
  t.is(r.files, 1);
});
