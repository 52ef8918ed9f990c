import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { bufferBlockSource, crc32c, fileBlockSource, mke2fsArgs, openExt4 } from '../../src/formats/ext4.js';
import { AbortedError, CorruptInputError, UnsupportedInputError, VivaError } from '../../src/errors.js';
import { snapshotTree } from '../helpers/snapshot.js';
import {
  EXT_CORPUS, TREE, canLoopMount, debugfs, inodeOffset, makeSourceTree, mkfs, readImage, run, snapshotOf, type ReadImage,
} from '../helpers/ext4-images.js';

const MiB = 1 << 20;
const CORPUS = EXT_CORPUS;

let work: string;
let src: string;
let tiny: string;
/** The source tree as snapshotTree() sees it, without the root line (mke2fs gives the root its own mode). */
let srcLines: string[];
/** mtime seconds of every source path (mke2fs -d keeps only whole seconds). */
const srcSeconds = new Map<string, bigint>();

test.before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-ext4-test-'));
  src = path.join(work, 'src');
  makeSourceTree(src);
  srcLines = snapshotTree(src, { ignoreMtime: true }).filter((l) => !l.startsWith('. '));
  const walk = (rel: Buffer) => {
    const abs = rel.length ? Buffer.concat([Buffer.from(`${src}/`), rel]) : Buffer.from(src);
    const st = fs.lstatSync(abs, { bigint: true });
    srcSeconds.set(rel.toString('latin1'), st.mtimeNs / 1_000_000_000n);
    if (st.isDirectory()) {
      for (const n of fs.readdirSync(abs, { encoding: 'buffer' })) walk(rel.length ? Buffer.concat([rel, Buffer.from('/'), n]) : n);
    }
  };
  walk(Buffer.alloc(0));
  // A small tree for the corruption tests (quick to build, one of each structure worth breaking).
  tiny = path.join(work, 'tiny');
  fs.mkdirSync(path.join(tiny, 'dir/sub'), { recursive: true });
  fs.writeFileSync(path.join(tiny, 'small'), 'small\n');
  fs.writeFileSync(path.join(tiny, 'dir/file'), 'in dir\n');
  fs.writeFileSync(path.join(tiny, 'data'), Buffer.alloc(300_000, 7));
  fs.writeFileSync(path.join(tiny, 'xattr'), 'x');
  run('setfattr', ['-n', 'user.big', '-v', `0x${Buffer.alloc(700, 0x61).toString('hex')}`, path.join(tiny, 'xattr')]);
});

test.after.always(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

let counter = 0;
function imagePath(name: string): string {
  return path.join(work, `${name.replace(/[^a-z0-9]+/gi, '-')}-${counter++}.img`);
}

/** mke2fs -d the source tree, then `e2fsck -fyD` so large directories become htrees (mke2fs -d writes linear ones). */
function buildImage(name: string, type: string, args: string[], size: string, tree = src): string {
  const img = imagePath(name);
  mkfs(img, tree, type, ['-N', '8192', ...args], size);
  try {
    execFileSync('e2fsck', ['-fyD', img], { stdio: 'ignore' });
  } catch (e) {
    // 1: file system modified (directories optimised); anything else is a real problem.
    if ((e as { status?: number }).status !== 1) throw e;
  }
  return img;
}

function isLostFound(line: string): boolean {
  return /^lost\+found( |\/)/.test(line);
}

/** Compares an image's entries with the source tree: everything snapshotTree() records, and the mtime seconds. */
function assertMatchesSource(t: ExecutionContext, img: ReadImage): void {
  t.is(img.entries[0].path.length, 0, 'the root comes first');
  t.is(img.entries[0].type, 'dir');
  const seen = new Set<string>();
  for (const e of img.entries) {
    const p = e.path.toString('latin1');
    if (p !== '') {
      const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
      t.true(seen.has(parent), `parent of '${p}' comes before it`);
    }
    seen.add(p);
  }
  const lines = snapshotOf(img).filter((l) => !l.startsWith('. ') && !isLostFound(l));
  t.deepEqual(lines, srcLines);
  const wrong: string[] = [];
  for (const e of img.entries) {
    const p = e.path.toString('latin1');
    if (p === '' || p === 'lost+found') continue;
    const want = srcSeconds.get(p);
    const got = e.mtimeNs / 1_000_000_000n;
    if (want !== got || e.mtimeNs % 1_000_000_000n !== 0n) wrong.push(`${p}: ${e.mtimeNs} vs ${want}s`);
  }
  t.deepEqual(wrong, [], 'mtimes (whole seconds)');
  for (const [p, f] of img.files) t.true(f.maxPiece <= MiB, `${p}: pieces of at most 1 MiB`);
}

/** The reader's info against `dumpe2fs -h`. */
function assertInfoMatchesDumpe2fs(t: ExecutionContext, file: string, img: ReadImage): void {
  const out = run('dumpe2fs', ['-h', file]);
  const field = (name: string): string => new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(out)?.[1].trim() ?? '';
  const { info } = img;
  t.is(info.uuid, field('Filesystem UUID'));
  t.is(String(info.blockSize), field('Block size'));
  t.is(String(info.inodeSize), field('Inode size') || '128');
  t.is(String(info.inodesCount), field('Inode count'));
  t.is(String(info.blocksCount), field('Block count'));
  t.is(String(info.reservedBlocks), field('Reserved block count'));
  t.is(String(info.inodesPerGroup), field('Inodes per group'));
  t.is(String(info.blocksPerGroup), field('Blocks per group'));
  t.is(info.hashSeed, field('Directory Hash Seed'));
  const features = [...info.features.compat, ...info.features.incompat, ...info.features.roCompat].sort();
  t.deepEqual(features, field('Filesystem features').split(/\s+/).sort());
  if (field('Flex block group size')) t.is(String(info.flexBgSize), field('Flex block group size'));
  if (field('Journal inode')) t.like(info.journal, { inode: Number(field('Journal inode')) });
}

let base: string | undefined;
/** A copy of the 4 KiB-block ext4 image of the source tree (built once; copies are cheap, the image is sparse). */
function baseImageCopy(name: string): string {
  base ??= buildImage('base', 'ext4', ['-b', '4096'], '96M');
  const copy = imagePath(name);
  execFileSync('cp', ['--sparse=always', base, copy]);
  return copy;
}

interface Variant {
  title: string;
  type: 'ext2' | 'ext3' | 'ext4';
  args: string[];
  size: string;
  check?: (t: ExecutionContext, file: string, img: ReadImage) => void;
}

const variants: Variant[] = [
  {
    title: 'ext4, 4 KiB blocks (metadata_csum, 64bit, flex_bg, huge_file): depth-2 extent tree, htree',
    type: 'ext4', args: ['-b', '4096'], size: '96M',
    check(t, file, img) {
      t.true(img.info.features.roCompat.includes('metadata_csum'));
      t.true(img.info.features.incompat.includes('64bit'));
      t.regex(debugfs(file, `ex /${TREE.frag}`), /^\s*2\/\s*2\s/m, 'frag has a depth-2 extent tree');
      t.regex(debugfs(file, `stat /${TREE.bigDir}`), /Flags: 0x81000/, 'big is an htree directory');
      // The sparse file reports only its data blocks: 4 ranges, rounded out to blocks.
      const sparse = img.files.get(TREE.sparse)!;
      t.deepEqual(sparse.data, [[0, 8192], [10 * MiB, 12288], [65 * MiB, 8192], [66 * MiB - 4096, 4096]]);
      t.is(img.files.get(TREE.frag)!.data.length, TREE.fragRegions);
    },
  },
  {
    title: 'ext4, 1 KiB blocks: two-level htree',
    type: 'ext4', args: ['-b', '1024'], size: '96M',
    check(t, file) {
      t.regex(debugfs(file, `htree /${TREE.bigDir}`), /Indirect levels: 1/);
    },
  },
  { title: 'ext4, 64 KiB blocks, no journal', type: 'ext4', args: ['-b', '65536', '-O', '^has_journal'], size: '256M' },
  {
    title: 'ext2, 1 KiB blocks: block maps up to triple indirect',
    type: 'ext2', args: ['-b', '1024'], size: '96M',
    check(t, file, img) {
      t.is(img.info.type, 'ext2');
      t.regex(debugfs(file, `stat /${TREE.sparse}`), /\(TIND\)/);
    },
  },
  { title: 'ext3, 4 KiB blocks', type: 'ext3', args: ['-b', '4096'], size: '96M', check: (t, _f, img) => t.is(img.info.type, 'ext3') },
  {
    title: 'ext4 with inline_data: inline files, directories and symlinks',
    type: 'ext4', args: ['-b', '4096', '-O', 'inline_data'], size: '96M',
    check(t, file) {
      t.regex(debugfs(file, 'stat /small'), /Size of inline data: 60/);
      t.regex(debugfs(file, 'stat /hl/b'), /Flags: 0x10000000/, 'hl/b is an inline directory');
      t.regex(debugfs(file, `stat /${TREE.longLink}`), /Flags: 0x10000000[^]*system\.data/, 'the long symlink is inline');
      t.regex(debugfs(file, 'stat /exactly-60'), /Size of inline data: 60/);
    },
  },
  { title: 'ext4 without 64bit and metadata_csum, with uninit_bg (crc16 descriptors)', type: 'ext4', args: ['-b', '4096', '-O', '^64bit,^metadata_csum,uninit_bg'], size: '96M' },
  { title: 'ext4 with 128-byte inodes (xattrs in blocks, no ns times)', type: 'ext4', args: ['-b', '4096', '-I', '128'], size: '96M' },
  {
    title: 'ext4 with meta_bg, 1 KiB blocks, 1024 blocks per group',
    type: 'ext4', args: ['-b', '1024', '-g', '1024', '-O', 'meta_bg,^resize_inode'], size: '96M',
    check: (t, _f, img) => t.true(img.info.groupCount > 32),
  },
  { title: 'ext4 with bigalloc (16 KiB clusters)', type: 'ext4', args: ['-b', '4096', '-O', 'bigalloc', '-C', '16384'], size: '96M' },
];

for (const v of variants) {
  test(`ext4: reads ${v.title}`, async (t) => {
    const file = v.args.join(' ') === '-b 4096' && v.type === 'ext4' ? baseImageCopy(v.title) : buildImage(v.title, v.type, v.args, v.size);
    const img = await readImage(file);
    assertMatchesSource(t, img);
    assertInfoMatchesDumpe2fs(t, file, img);
    v.check?.(t, file, img);
  });
}

test('ext4: casefold and metadata_csum_seed (uuid changed after mkfs)', async (t) => {
  const file = buildImage('casefold', 'ext4', ['-b', '4096', '-O', 'casefold,metadata_csum_seed'], '96M');
  run('tune2fs', ['-U', '01234567-89ab-cdef-0123-456789abcdef', file]);
  const img = await readImage(file);
  assertMatchesSource(t, img);
  t.is(img.info.uuid, '01234567-89ab-cdef-0123-456789abcdef');
  t.not(img.info.checksumSeed, crc32c(0xffffffff, Buffer.from('0123456789abcdef0123456789abcdef', 'hex')));
  t.deepEqual(img.info.encoding, { name: 'utf8-12.1', flags: [] });
  // Casefolded directories (this kernel cannot create them: set the flag) keep their names as stored.
  debugfs(file, 'sif /links flags 0x40080000', true);
  debugfs(file, `sif /${TREE.bigDir} flags 0x40081000`, true);
  t.deepEqual(snapshotOf(await readImage(file)), snapshotOf(img));
});

test('ext4: crc32c matches the CRC-32C check value', (t) => {
  t.is((crc32c(0xffffffff, Buffer.from('123456789')) ^ 0xffffffff) >>> 0, 0xe3069283);
});

/** Builds the main image and sets ns mtimes with debugfs, as `mke2fs -d` drops them. */
function imageWithNsTimes(): string {
  const file = baseImageCopy('ns');
  debugfs(file, `sif /small mtime_extra ${(123456789 << 2) >>> 0}`, true);
  debugfs(file, `sif /old mtime_extra ${((999999999 << 2) | 1) >>> 0}`, true); // epoch bit: + 2^32 s
  debugfs(file, 'sif /private mtime 19600101000000', true); // negative seconds
  debugfs(file, `sif /${TREE.bigDir} mtime_extra ${(5 << 2) >>> 0}`, true);
  debugfs(file, `sif /links/short mtime_extra ${(7 << 2) >>> 0}`, true);
  return file;
}

test('ext4: ns mtimes, epoch bits and times before 1970 as debugfs sets them', async (t) => {
  const file = imageWithNsTimes();
  const img = await readImage(file);
  const mtime = (p: string) => img.entries.find((e) => e.path.toString() === p)!.mtimeNs;
  t.is(mtime('small'), srcSeconds.get('small')! * 1_000_000_000n + 123456789n);
  t.is(mtime('old'), (1n + 2n ** 32n) * 1_000_000_000n + 999999999n);
  t.is(mtime('private'), -315532800n * 1_000_000_000n); // 1960-01-01
  t.is(mtime(TREE.bigDir) % 1_000_000_000n, 5n);
  t.is(mtime('links/short') % 1_000_000_000n, 7n);
});

test('ext4: 128-byte inodes have whole-second mtimes only', async (t) => {
  const img = await readImage(buildImage('small-inodes', 'ext4', ['-b', '1024', '-I', '128'], '64M', tiny));
  t.is(img.info.inodeSize, 128);
  for (const e of img.entries) t.is(e.mtimeNs % 1_000_000_000n, 0n);
});

// Skipped where this process cannot loop-mount (not root, no loop devices); CI runs it.
(canLoopMount() ? test : test.skip)('ext4: matches the kernel\'s view of a loop mount (xattrs, ACLs, ns times, devices)', async (t) => {
  const file = imageWithNsTimes();
  const img = await readImage(file);
  const mnt = path.join(work, 'mnt');
  fs.mkdirSync(mnt, { recursive: true });
  execFileSync('mount', ['-o', 'loop,ro', file, mnt], { stdio: 'ignore' });
  try {
    const kernel = snapshotTree(mnt).filter((l) => !l.startsWith('. '));
    const ours = snapshotOf(img, { mtime: true }).filter((l) => !l.startsWith('. '));
    t.deepEqual(ours, kernel);
  } finally {
    execFileSync('umount', [mnt], { stdio: 'ignore' });
  }
});

test('ext4: unwritten (fallocated) extents read as holes', async (t) => {
  const file = baseImageCopy('uninit');
  const before = (await readImage(file)).files.get(TREE.sparse)!;
  debugfs(file, `fallocate /${TREE.sparse} 1000 1999`, true);
  t.regex(debugfs(file, `ex /${TREE.sparse}`), /1000 -\s+1999 .* Uninit/);
  const after = (await readImage(file)).files.get(TREE.sparse)!;
  t.deepEqual(after, before);
});

test('ext4: reads a file system at an offset inside a larger file (a partition)', async (t) => {
  const file = buildImage('partition', 'ext4', ['-b', '4096'], '16M', tiny);
  const disk = imagePath('disk');
  fs.writeFileSync(disk, Buffer.alloc(MiB, 0xee));
  fs.appendFileSync(disk, fs.readFileSync(file));
  fs.appendFileSync(disk, Buffer.alloc(MiB, 0xee));
  const direct = snapshotOf(await readImage(file));
  const source = await fileBlockSource(disk, MiB, fs.statSync(file).size);
  try {
    const { reader } = await openExt4(source, disk);
    const names: string[] = [];
    for await (const e of reader.entries()) names.push(e.path.toString());
    t.is(names.length, direct.length);
  } finally {
    await source.close();
  }
  // The same from memory.
  const { reader } = await openExt4(bufferBlockSource(fs.readFileSync(file)), 'memory');
  let n = 0;
  for await (const e of reader.entries()) {
    if (e.content) for await (const piece of e.content.read()) t.true(piece.data.length > 0);
    n++;
  }
  t.is(n, direct.length);
  await t.throwsAsync(fileBlockSource(disk, 0, 100 * MiB), { code: 'ERR_SOURCE_READ' });
});

test('ext4: mke2fsArgs() recreates the geometry, features, uuid and hash seed', async (t) => {
  const file = buildImage('orig', 'ext4', ['-b', '4096', '-L', 'rootfs', '-O', 'inline_data'], '64M', tiny);
  const { info } = await readImage(file);
  const copy = imagePath('copy');
  fs.writeFileSync(copy, '');
  fs.truncateSync(copy, info.blocksCount * info.blockSize);
  run('mke2fs', ['-q', '-F', ...mke2fsArgs(info), copy]);
  const again = (await readImage(copy)).info;
  const shape = (i: typeof info) => ({ ...i, freeBlocks: 0, freeInodes: 0, createdAt: 0, reservedBlocks: 0 });
  t.deepEqual(shape(again), shape(info));
  t.true(Math.abs(again.reservedBlocks - info.reservedBlocks) <= 1);
  t.is(info.label, 'rootfs');
});

test('ext4: an aborted walk throws AbortedError', async (t) => {
  const file = buildImage('abort', 'ext4', ['-b', '4096'], '16M', tiny);
  const source = await fileBlockSource(file);
  try {
    const { reader } = await openExt4(source, file);
    const ac = new AbortController();
    await t.throwsAsync(async () => {
      for await (const e of reader.entries(ac.signal)) if (e.path.length) ac.abort();
    }, { instanceOf: AbortedError });
  } finally {
    await source.close();
  }
});

// ----------------------------------------------------------------------------------------------------------------
// Damaged images: each must fail with a VivaError that names the file and the structure, quickly.

async function readEverything(file: string): Promise<void> {
  const source = await fileBlockSource(file);
  try {
    const { reader } = await openExt4(source, file);
    for await (const e of reader.entries()) if (e.content) for await (const piece of e.content.read()) void piece;
  } finally {
    await source.close();
  }
}

function patch(file: string, offset: number, edit: (b: Buffer) => void, length = 1): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(length);
    fs.readSync(fd, b, 0, length, offset);
    edit(b);
    fs.writeSync(fd, b, 0, length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

async function rejects(
  t: ExecutionContext, file: string, where: RegExp, reason: RegExp,
  cls: new (...args: any[]) => VivaError = CorruptInputError,
): Promise<void> {
  const start = Date.now();
  const err = await t.throwsAsync<VivaError>(readEverything(file), { instanceOf: cls });
  // A bound against hangs and runaway loops (the issue allows 10 s per image), not a speed test.
  t.true(Date.now() - start < 10_000, 'fails within seconds');
  if (!err) return;
  t.is(err.data.file, file, 'names the file');
  if (err instanceof CorruptInputError) t.regex(String(err.data.where), where);
  t.regex(err.message, reason);
}

const tinyImage = (name: string, args: string[] = ['-b', '4096'], type = 'ext4') => buildImage(name, type, args, '16M', tiny);

test('ext4: rejects a truncated image', async (t) => {
  const file = tinyImage('truncated');
  fs.truncateSync(file, 8 * MiB);
  await rejects(t, file, /^superblock$/, /truncated/);
});

test('ext4: rejects a zeroed superblock magic', async (t) => {
  const file = tinyImage('magic');
  patch(file, 0x438, (b) => b.fill(0), 2);
  await rejects(t, file, /^offset 0x438$/, /not an ext2\/ext3\/ext4 file system/);
});

test('ext4: rejects superblock and group descriptor checksum mismatches', async (t) => {
  const sb = tinyImage('sb-csum');
  patch(sb, 1024 + 0x78, (b) => { b[0] ^= 0x20; }); // the label
  await rejects(t, sb, /^superblock$/, /superblock checksum mismatch/);
  const gd = tinyImage('gd-csum');
  patch(gd, 4096 + 0xc, (b) => { b[0] ^= 1; }); // group 0: free blocks count
  await rejects(t, gd, /^group descriptor 0$/, /checksum mismatch/);
  const crc16 = tinyImage('gd-crc16', ['-b', '4096', '-O', '^metadata_csum,^64bit,uninit_bg']);
  patch(crc16, 4096 + 0xc, (b) => { b[0] ^= 1; });
  await rejects(t, crc16, /^group descriptor 0$/, /checksum mismatch/);
});

test('ext4: rejects an inode whose metadata_csum checksum does not match', async (t) => {
  const file = tinyImage('inode-csum');
  const ino = /Inode: (\d+)/.exec(debugfs(file, 'stat /small'))![1];
  patch(file, inodeOffset(file, '/small', 4096) + 0x10, (b) => { b[0] ^= 0xff; }); // i_mtime
  await rejects(t, file, new RegExp(`^inode ${ino}$`), /inode checksum mismatch/);
});

test('ext4: rejects directory and extent blocks out of range, bad extent depth and checksums', async (t) => {
  const dir = tinyImage('dir-range');
  debugfs(dir, 'sif /dir block[5] 0x7fffffff', true); // first extent's physical block
  await rejects(t, dir, /^inode \d+$/, /outside the file system/);
  const ext2 = tinyImage('dir-range-ext2', ['-b', '1024'], 'ext2');
  debugfs(ext2, 'sif /dir block[0] 99999999', true);
  await rejects(t, ext2, /^inode \d+$/, /block 99999999 is outside the file system/);
  const deep = tinyImage('depth');
  debugfs(deep, `sif /data block[1] ${(6 << 16) | 4}`, true);
  await rejects(t, deep, /^inode \d+$/, /extent tree depth 6 exceeds 5/);
  const dirCsum = tinyImage('dir-csum');
  const dirBlock = Number(/\(0\):(\d+)/.exec(debugfs(dirCsum, 'stat /dir'))![1]);
  patch(dirCsum, dirBlock * 4096 + 12 + 8, (b) => { b[0] ^= 1; }); // a byte of the '..' entry's name
  await rejects(t, dirCsum, /^inode \d+$/, /directory block checksum mismatch/);
  const xattr = tinyImage('xattr-csum');
  const acl = Number(/File ACL: (\d+)/.exec(debugfs(xattr, 'stat /xattr'))![1]);
  t.true(acl > 0);
  patch(xattr, acl * 4096 + 4096 - 8, (b) => { b[0] ^= 1; }); // inside the value
  await rejects(t, xattr, /^inode \d+$/, /xattr block \d+: checksum mismatch/);
});

test('ext4: rejects a directory loop and a second name of a directory', async (t) => {
  const file = tinyImage('loop');
  debugfs(file, 'ln / /dir/sub/loop', true);
  await rejects(t, file, /^inode 2$/, /linked twice/);
});

test('ext4: refuses a journal that needs recovery and encrypted inodes', async (t) => {
  const journal = tinyImage('recover', ['-b', '4096', '-O', '^metadata_csum']);
  patch(journal, 1024 + 0x60, (b) => { b[0] |= 0x4; });
  await rejects(t, journal, /.*/, /journal needs recovery: run 'e2fsck/, UnsupportedInputError);
  const encrypted = tinyImage('encrypted');
  debugfs(encrypted, 'sif /small flags 0x80800', true);
  await rejects(t, encrypted, /.*/, /'small'\) is encrypted/, UnsupportedInputError);
});

test('ext4: random damage to metadata blocks is read or rejected with a VivaError, never a crash or a hang', async (t) => {
  const file = buildImage('fuzz', 'ext4', ['-b', '1024', '-N', '64', '-O', '^metadata_csum,^has_journal,inline_data'], '4M', tiny);
  const image = fs.readFileSync(file);
  const data = new Set(debugfs(file, 'blocks /data').trim().split(/\s+/).map(Number));
  const metadata: number[] = [];
  for (let b = 0; b < image.length / 1024; b++) {
    if (!data.has(b) && image.subarray(b * 1024, (b + 1) * 1024).some((x) => x !== 0)) metadata.push(b);
  }
  let seed = 12345;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return Math.floor((seed / 0x80000000) * n);
  };
  const outcomes: Record<string, number> = {};
  for (let i = 0; i < 400; i++) {
    const damaged = Buffer.from(image);
    for (let k = 1 + random(16); k > 0; k--) damaged[metadata[random(metadata.length)] * 1024 + random(1024)] = random(256);
    const start = Date.now();
    try {
      const { reader } = await openExt4(bufferBlockSource(damaged), 'fuzz.img');
      for await (const e of reader.entries()) if (e.content) for await (const piece of e.content.read()) void piece;
      outcomes.read = (outcomes.read ?? 0) + 1;
    } catch (e) {
      if (!(e instanceof VivaError)) throw e;
      outcomes[e.name] = (outcomes[e.name] ?? 0) + 1;
    }
    t.true(Date.now() - start < 2000, `iteration ${i} finishes quickly`);
  }
  t.log(JSON.stringify(outcomes));
});

// ----------------------------------------------------------------------------------------------------------------

(fs.existsSync(CORPUS) ? test : test.skip)('ext4: every damaged image of the e2fsprogs corpus is read or rejected with a VivaError', async (t) => {
  const names = fs.readdirSync(CORPUS).filter((n) => n.endsWith('.img.gz')).sort();
  const counts = { ok: 0, corrupt: 0, unsupported: 0 };
  const reasons = new Map<string, number>();
  const bad: string[] = [];
  for (const name of names) {
    const image = zlib.gunzipSync(fs.readFileSync(path.join(CORPUS, name)));
    const start = Date.now();
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => { ac.abort(); reject(new Error('timeout')); }, 10_000);
    });
    try {
      await Promise.race([(async () => {
        // Every read waits for a macrotask, so that the timeout above can fire even if the reader looped.
        const memory = bufferBlockSource(image);
        const source = { size: memory.size, read: (o: number, n: number) => new Promise<Buffer>((resolve, reject) => setImmediate(() => memory.read(o, n).then(resolve, reject))) };
        const { reader } = await openExt4(source, name, { signal: ac.signal });
        for await (const e of reader.entries()) if (e.content) for await (const piece of e.content.read()) void piece;
      })(), timeout]);
      counts.ok++;
    } catch (e) {
      if (e instanceof CorruptInputError) {
        counts.corrupt++;
        const reason = String(e.data.reason).replace(/\d+/g, 'N').replace(/'[^']*'/g, "'…'").slice(0, 60);
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      } else if (e instanceof UnsupportedInputError) {
        counts.unsupported++;
      } else if (!(e instanceof VivaError)) {
        bad.push(`${name}: ${(e as Error).stack ?? String(e)}`);
      }
    } finally {
      clearTimeout(timer);
    }
    if (Date.now() - start > 10_000) bad.push(`${name}: took ${Date.now() - start} ms`);
  }
  t.log(`${names.length} images: ${counts.ok} read, ${counts.corrupt} CorruptInputError, ${counts.unsupported} UnsupportedInputError, ${bad.length} other`);
  t.log([...reasons].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([r, n]) => `${n}× ${r}`).join('\n'));
  t.deepEqual(bad, []);
});
