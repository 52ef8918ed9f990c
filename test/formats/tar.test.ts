import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { openTar, createTarWriter, tarCompressionForName } from '../../src/formats/tar.js';
import type { ImageEntry, ImageReader, DataPiece } from '../../src/formats/types.js';
import { CorruptInputError, UnsafeInputError, UnsupportedInputError } from '../../src/errors.js';
import { native } from '../../src/native/index.js';
import { kind, snapshotTree, mkedgePath } from '../helpers/snapshot.js';

const GNU_TAR_CREATE = ['--xattrs', '--xattrs-include=*', '--acls', '--format=pax', '--sparse', '-cpf'];
const GNU_TAR_EXTRACT = ['--xattrs', '--xattrs-include=*', '--acls', '--numeric-owner', '-xpf'];
const MiB = 1 << 20;

function tmpdir(t: ExecutionContext): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-tar-test-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

function run(cmd: string, args: string[], opts: { input?: Buffer } = {}): Buffer {
  return execFileSync(cmd, args, { input: opts.input, stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'], maxBuffer: 64 * MiB });
}

function gnuExtract(archive: string, dest: string): void {
  fs.mkdirSync(dest, { recursive: true });
  run('tar', [...GNU_TAR_EXTRACT, archive, '-C', dest]);
}

interface ReadEntry {
  entry: ImageEntry;
  pieces: DataPiece[];
}

/** Reads every entry and its pieces (keeping the data; fine for the test trees). */
async function readAll(file: string): Promise<ReadEntry[]> {
  const out: ReadEntry[] = [];
  for await (const entry of openTar(file).entries()) {
    const pieces: DataPiece[] = [];
    if (entry.content) for await (const p of entry.content.read()) pieces.push(p);
    out.push({ entry, pieces });
  }
  return out;
}

function byPath(entries: ReadEntry[]): Map<string, ReadEntry> {
  return new Map(entries.map((e) => [e.entry.path.toString('latin1'), e]));
}

/** Logical content of a dense entry. */
function joined(pieces: DataPiece[]): Buffer {
  return Buffer.concat(pieces.map((p) => p.data));
}

function sha256(b: Uint8Array): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

/** Checks each piece holds the file's bytes at its offset; returns the bytes covered. */
function checkPiecesAgainstFile(t: ExecutionContext, file: fs.PathLike, pieces: DataPiece[]): number {
  const fd = fs.openSync(file, 'r');
  let covered = 0;
  let end = 0;
  try {
    for (const p of pieces) {
      t.true(p.offset >= end, 'pieces are ordered');
      t.true(p.data.length > 0 && p.data.length <= MiB, 'pieces are 1..1MiB');
      const buf = Buffer.alloc(p.data.length);
      fs.readSync(fd, buf, 0, buf.length, p.offset);
      t.true(buf.equals(p.data), `piece at ${p.offset} matches the file`);
      end = p.offset + p.data.length;
      covered += p.data.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  return covered;
}

function xattrsOf(p: Buffer | string): Array<{ name: string; value: string }> {
  return native().llistxattr(p).map((n) => n.toString()).sort()
    .map((name) => ({ name, value: native().lgetxattr(p, name).toString('hex') }));
}

/** Linux's dev_t encoding (glibc makedev). */
function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return (mi & 0xffn) | ((ma & 0xfffn) << 8n) | ((mi & ~0xffn) << 12n) | ((ma & ~0xfffn) << 32n);
}

// --- hand-made archives, for input GNU tar refuses to create -----------------------------------------------------

interface HeaderSpec {
  name: string | Buffer;
  type?: string;
  size?: number;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string | Buffer;
  prefix?: string;
  /** Raw bytes to put at header offsets before the checksum is computed (base-256 fields, ...). */
  raw?: Array<[offset: number, bytes: number[]]>;
  signedChecksum?: boolean;
}

function octal(b: Buffer, off: number, len: number, v: number): void {
  b.write(v.toString(8).padStart(len - 1, '0'), off, len - 1, 'latin1');
}

function ustarHeader(h: HeaderSpec): Buffer {
  const b = Buffer.alloc(512);
  Buffer.from(h.name).copy(b, 0, 0, 100);
  octal(b, 100, 8, h.mode ?? 0o644);
  octal(b, 108, 8, h.uid ?? 0);
  octal(b, 116, 8, h.gid ?? 0);
  octal(b, 124, 12, h.size ?? 0);
  octal(b, 136, 12, h.mtime ?? 1_000_000_000);
  b.write(h.type ?? '0', 156, 1, 'latin1');
  if (h.linkname) Buffer.from(h.linkname).copy(b, 157, 0, 100);
  b.write('ustar\u000000', 257, 8, 'latin1');
  if (h.prefix) b.write(h.prefix, 345, 155, 'latin1');
  for (const [off, bytes] of h.raw ?? []) Buffer.from(bytes).copy(b, off);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += h.signedChecksum && c > 127 ? c - 256 : c;
  b.write(sum.toString(8).padStart(6, '0'), 148, 6, 'latin1');
  b[154] = 0;
  return b;
}

function pad(b: Buffer): Buffer {
  return Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);
}

function member(h: HeaderSpec, data: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([ustarHeader({ ...h, size: h.size ?? data.length }), pad(data)]);
}

function paxRecord(key: string, value: string | Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function paxMember(records: Array<[string, string | Buffer]>, type = 'x'): Buffer {
  return member({ name: 'PaxHeaders/x', type }, Buffer.concat(records.map(([k, v]) => paxRecord(k, v))));
}

function archive(...parts: Buffer[]): Buffer {
  return Buffer.concat([...parts, Buffer.alloc(1024)]);
}

function writeFile(dir: string, name: string, data: Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, data);
  return p;
}

// --- the edge tree, built once -----------------------------------------------------------------------------------

let edge: { dir: string; tree: string; archive: string } | undefined;

test.before(() => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-tar-edge-'));
  const tree = path.join(dir, 'tree');
  run('bash', [mkedgePath(), tree]);
  const archivePath = path.join(dir, 'gnu.tar');
  // GNU tar cannot store the socket (it would warn and skip it).
  run('tar', [...GNU_TAR_CREATE, archivePath, '--exclude=./sock', '-C', tree, '.']);
  edge = { dir, tree, archive: archivePath };
});

test.after.always(() => {
  if (edge) fs.rmSync(edge.dir, { recursive: true, force: true });
});

test('openTar: reads a GNU tar pax archive of the edge tree with every kind of metadata', async (t) => {
  const { tree, archive: file } = edge!;
  const reader = openTar(file);
  t.deepEqual(reader.description, { format: 'tar', size: fs.statSync(file).size, name: file });
  const entries = await readAll(file);
  const m = byPath(entries);
  t.is(m.size, entries.length, 'each path once');

  // Every path of the tree but the socket, and nothing else.
  const expected = snapshotTree(tree).length - 1;
  t.is(entries.length, expected);
  t.false(m.has('sock'));

  for (const { entry: e, pieces } of entries) {
    const abs = e.path.length ? Buffer.concat([Buffer.from(`${tree}/`), e.path]) : Buffer.from(tree);
    const st = fs.lstatSync(abs, { bigint: true });
    const name = e.path.toString('latin1');
    t.is(e.type === 'hardlink' ? kind(fs.lstatSync(Buffer.concat([Buffer.from(`${tree}/`), e.linkTarget!]), { bigint: true })) : e.type, kind(st), name);
    t.is(e.mode, Number(st.mode) & 0o7777, `${name} mode`);
    t.is(e.uid, Number(st.uid), `${name} uid`);
    t.is(e.gid, Number(st.gid), `${name} gid`);
    if (e.type !== 'hardlink') {
      t.is(e.mtimeNs, st.mtimeNs, `${name} mtime`);
      t.deepEqual(e.xattrs.map((x) => ({ name: x.name, value: Buffer.from(x.value).toString('hex') })), xattrsOf(abs), `${name} xattrs`);
    }
    if (e.type === 'symlink') t.deepEqual(e.linkTarget, fs.readlinkSync(abs, { encoding: 'buffer' }), `${name} target`);
    if (e.type === 'chr' || e.type === 'blk') t.is(makedev(e.rdev!.major, e.rdev!.minor), st.rdev, `${name} rdev`);
    if (e.type === 'file') {
      t.is(e.content!.size, Number(st.size), `${name} size`);
      const covered = checkPiecesAgainstFile(t, abs, pieces);
      if (name === 'sparse') t.true(covered <= 64 * 1024, 'the sparse file yields only its data');
      else t.is(covered, Number(st.size), `${name} is dense`);
    }
  }

  // Spot checks of the interesting ones.
  t.is(m.get('suid')!.entry.mode, 0o4755);
  t.is(m.get('sgid')!.entry.mode, 0o2755);
  t.is(m.get('sticky')!.entry.mode, 0o1777);
  t.is(m.get('mode0000')!.entry.mode, 0);
  t.like(m.get('owned')!.entry, { uid: 1234, gid: 5678 });
  t.like(m.get('owneddir')!.entry, { uid: 4321, gid: 8765, type: 'dir' });
  t.is(m.get('plain')!.entry.mtimeNs, 981173106123456789n);
  t.is(m.get('rel-link')!.entry.mtimeNs, 981173106123456789n);
  t.is(m.get('old')!.entry.mtimeNs, 1_000_000_000n);
  t.is(m.get('empty/dir')!.entry.mtimeNs, 1012615322500000000n);
  t.is(m.get('')!.entry.type, 'dir', "'./' is the root");
  t.true(m.has(Buffer.from('non-utf8-\xff\xfe', 'latin1').toString('latin1')), 'non-UTF-8 name kept as bytes');
  t.true(m.has('new\nline'));
  t.deepEqual(m.get('abs-link')!.entry.linkTarget, Buffer.from('/etc/passwd'));
  t.deepEqual(m.get('chr')!.entry.rdev, { major: 1, minor: 3 });
  t.deepEqual(m.get('blk')!.entry.rdev, { major: 7, minor: 0 });
  t.true(m.get('capped')!.entry.xattrs.some((x) => x.name === 'security.capability'));
  t.true(m.get('acl-file')!.entry.xattrs.some((x) => x.name === 'system.posix_acl_access'));
  t.true(m.get('acl-dir')!.entry.xattrs.some((x) => x.name === 'system.posix_acl_default'));
  t.deepEqual(m.get('xattr-trusted')!.entry.xattrs.map((x) => [x.name, Buffer.from(x.value).toString('hex')]), [['trusted.viva', '00ff01']]);
  const links = ['hl1', 'hl2', 'sticky/hl3'].map((p) => m.get(p)!.entry);
  const files = links.filter((e) => e.type === 'file');
  t.is(files.length, 1, 'one of the hardlinked names carries the data');
  for (const e of links.filter((l) => l.type === 'hardlink')) t.deepEqual(e.linkTarget, files[0]!.path);
  const sparse = m.get('sparse')!;
  t.is(sparse.entry.content!.size, 100 * MiB);
  t.true(joined(sparse.pieces).includes('middle'));
  t.true(sparse.pieces[0]!.offset >= 50 * MiB - 4096);
});

test('createTarWriter: GNU tar extracts the rewritten edge archive identical to the tree', async (t) => {
  const { tree, archive: file } = edge!;
  const dir = tmpdir(t);
  const out = path.join(dir, 'viva.tar');
  const w = createTarWriter(out);
  for await (const e of openTar(file).entries()) await w.add(e);
  t.deepEqual(await w.finish(), { warnings: [] });

  const extracted = path.join(dir, 'x');
  gnuExtract(out, extracted);
  const withoutSocket = snapshotTree(tree, { holes: false }).filter((l) => !l.startsWith('sock '));
  t.deepEqual(snapshotTree(extracted), withoutSocket);

  // The 100 MiB sparse file costs a few blocks: the archive is the 20 MB random file plus change.
  t.true(fs.statSync(out).size < fs.statSync(path.join(tree, 'big-random')).size + MiB, `archive is ${fs.statSync(out).size} bytes`);
  const fd = fs.openSync(path.join(extracted, 'sparse'), 'r');
  try {
    const ext = native().dataExtents(fd, 100 * MiB);
    let data = 0;
    for (let i = 1; i < ext.length; i += 2) data += ext[i]!;
    t.true(data <= MiB, 'GNU tar restored the holes');
  } finally {
    fs.closeSync(fd);
  }
});

// --- compression ------------------------------------------------------------------------------------------------

function makeSmallTree(root: string): void {
  fs.mkdirSync(path.join(root, 'd/e'), { recursive: true });
  fs.writeFileSync(path.join(root, 'd/random'), crypto.randomBytes(300_000));
  fs.writeFileSync(path.join(root, 'd/e/text'), 'hello tar\n'.repeat(1000));
  fs.symlinkSync('d/random', path.join(root, 'link'));
  fs.writeFileSync(path.join(root, 'x'), 'x');
  native().lsetxattr(path.join(root, 'x'), 'user.k', Buffer.from([0, 1, 2, 0xff]));
  fs.chmodSync(path.join(root, 'x'), 0o640);
  native().utimens(path.join(root, 'x'), 0n, 0n, 1234567890n, 987654321n);
}

function summary(entries: ReadEntry[]): string[] {
  return entries.map(({ entry: e, pieces }) => [
    e.path.toString('latin1'), e.type, e.mode.toString(8), `${e.uid}:${e.gid}`, e.mtimeNs,
    e.xattrs.map((x) => `${x.name}=${Buffer.from(x.value).toString('hex')}`).join(','),
    e.linkTarget?.toString('latin1') ?? '', e.content ? `${e.content.size}:${sha256(joined(pieces))}` : '',
  ].join(' '));
}

const COMPRESSORS: Record<string, { args: string[]; format: string }> = {
  gzip: { args: ['gzip', '-c'], format: 'tar+gzip' },
  zstd: { args: ['zstd', '-q', '-c'], format: 'tar+zstd' },
  xz: { args: ['xz', '-c'], format: 'tar+xz' },
  bzip2: { args: ['bzip2', '-c'], format: 'tar+bzip2' },
};

for (const [name, c] of Object.entries(COMPRESSORS)) {
  test(`openTar: detects ${name} by content, not by name`, async (t) => {
    const dir = tmpdir(t);
    const tree = path.join(dir, 'tree');
    makeSmallTree(tree);
    const plain = path.join(dir, 'plain.tar');
    run('tar', [...GNU_TAR_CREATE, plain, '-C', tree, '.']);
    const compressed = writeFile(dir, 'misleading.tar', run(c.args[0]!, [...c.args.slice(1), plain]));
    t.is(openTar(compressed).description.format, c.format);
    t.deepEqual(summary(await readAll(compressed)), summary(await readAll(plain)));
  });
}

for (const name of ['xz', 'bzip2'] as const) {
  test(`openTar: a small ${name} archive whose decompressor exits before the first read is read whole`, async (t) => {
    // Node drops the unread output of a child that exited (child_process flushStdio) unless someone listens.
    const dir = tmpdir(t);
    const tree = path.join(dir, 'tree');
    // Smaller than a pipe buffer, so the decompressor can write it all and exit without anyone reading.
    fs.mkdirSync(tree);
    fs.writeFileSync(path.join(tree, 'hostname'), 'web01\n');
    const plain = path.join(dir, 'plain.tar');
    run('tar', [...GNU_TAR_CREATE, plain, '-C', tree, '.']);
    const c = COMPRESSORS[name]!;
    const compressed = writeFile(dir, 'small.bin', run(c.args[0]!, [...c.args.slice(1), plain]));
    const want = summary(await readAll(plain));
    // Keep the thread pool busy so that the reader's own file close (between spawning the child and its first read)
    // waits until the child has exited.
    let stop = false;
    const spin = async () => {
      while (!stop) await new Promise((resolve) => crypto.pbkdf2('x', 'y', 100_000, 32, 'sha256', resolve));
    };
    const spinners = Array.from({ length: 4 }, spin);
    const got: Array<PromiseSettledResult<string[]>> = [];
    for (let round = 0; round < 4; round++) got.push(...await Promise.allSettled(Array.from({ length: 8 }, async () => summary(await readAll(compressed)))));
    stop = true;
    await Promise.all(spinners);
    for (const g of got) t.deepEqual(g.status === 'fulfilled' ? g.value : String(g.reason), want);
  });
}

for (const compression of ['gzip', 'zstd', 'xz', 'bzip2'] as const) {
  test(`createTarWriter: writes ${compression} that GNU tar and openTar read back`, async (t) => {
    const dir = tmpdir(t);
    const tree = path.join(dir, 'tree');
    makeSmallTree(tree);
    const plain = path.join(dir, 'plain.tar');
    run('tar', [...GNU_TAR_CREATE, plain, '-C', tree, '.']);
    const out = path.join(dir, 'out.bin');
    const w = createTarWriter(out, { compression });
    for await (const e of openTar(plain).entries()) await w.add(e);
    await w.finish();
    t.is(openTar(out).description.format, COMPRESSORS[compression]!.format);
    t.deepEqual(summary(await readAll(out)), summary(await readAll(plain)));
    gnuExtract(out, path.join(dir, 'x'));
    t.deepEqual(snapshotTree(path.join(dir, 'x')), snapshotTree(tree));
  });
}

test('createTarWriter: picks the compression from the name when not told', async (t) => {
  const dir = tmpdir(t);
  const out = path.join(dir, 'a.tar.gz');
  const w = createTarWriter(out);
  await w.add({ path: Buffer.alloc(0), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [] });
  await w.finish();
  t.deepEqual([...fs.readFileSync(out).subarray(0, 2)], [0x1f, 0x8b]);
});

test('tarCompressionForName: maps tar names to compressions', (t) => {
  const cases: Array<[string, ReturnType<typeof tarCompressionForName>]> = [
    ['a.tar', 'none'], ['a.TAR', 'none'], ['a.tar.gz', 'gzip'], ['a.tgz', 'gzip'], ['a.tar.zst', 'zstd'],
    ['a.tzst', 'zstd'], ['a.tar.xz', 'xz'], ['a.txz', 'xz'], ['a.tar.bz2', 'bzip2'], ['a.tbz2', 'bzip2'], ['a.TBZ', 'bzip2'],
    ['a.taz', 'gzip'], ['a.tar.z', 'gzip'], ['a.tar.gzip', 'gzip'], ['a.tb2', 'bzip2'], ['a.tbz', 'bzip2'], ['a.tz2', 'bzip2'],
    ['a.tar.bzip2', 'bzip2'], ['a.tar.zstd', 'zstd'], ['a.tar.Z', undefined], ['a.taZ', undefined], ['a.tar.lzo', undefined],
    ['a.img', undefined], ['dir', undefined], ['a.bz2', undefined],
  ];
  for (const [n, c] of cases) t.is(tarCompressionForName(n), c, n);
});

// --- sparse formats -----------------------------------------------------------------------------------------------

const SPARSE_SPOTS = 30; // more than fit in an old GNU header (4) plus one extension block (21)

function makeSparseFile(p: string): void {
  const fd = fs.openSync(p, 'w');
  try {
    fs.ftruncateSync(fd, 8 * MiB);
    for (let i = 0; i < SPARSE_SPOTS; i++) fs.writeSync(fd, Buffer.from(`data-${i}`), 0, undefined, i * 256 * 1024 + 1000);
  } finally {
    fs.closeSync(fd);
  }
}

const SPARSE_FORMATS: Array<[string, string[], (raw: Buffer) => boolean]> = [
  ['old GNU (S)', ['--format=gnu'], (raw) => String.fromCharCode(raw[156]!) === 'S' && raw[482] === 1],
  ['pax 0.0', ['--format=pax', '--sparse-version=0.0'], (raw) => raw.includes('GNU.sparse.offset=')],
  ['pax 0.1', ['--format=pax', '--sparse-version=0.1'], (raw) => raw.includes('GNU.sparse.map=')],
  ['pax 1.0', ['--format=pax', '--sparse-version=1.0'], (raw) => raw.includes('GNU.sparse.major=1')],
];

for (const [label, args, isFormat] of SPARSE_FORMATS) {
  test(`openTar: reads ${label} sparse members as data pieces at their offsets`, async (t) => {
    const dir = tmpdir(t);
    const src = path.join(dir, 'holes');
    makeSparseFile(src);
    const file = path.join(dir, 'a.tar');
    run('tar', ['--sparse', ...args, '-cf', file, '-C', dir, 'holes']);
    t.true(isFormat(fs.readFileSync(file)), 'GNU tar wrote the intended format');
    const [only, ...rest] = await readAll(file);
    t.is(rest.length, 0);
    t.deepEqual(only!.entry.path, Buffer.from('holes'), 'the real name, not GNUSparseFile.N');
    t.is(only!.entry.content!.size, 8 * MiB);
    const covered = checkPiecesAgainstFile(t, src, only!.pieces);
    t.true(covered <= SPARSE_SPOTS * 8192, `only data is yielded (${covered} bytes)`);
    const data = joined(only!.pieces).toString('latin1');
    for (let i = 0; i < SPARSE_SPOTS; i++) t.true(data.includes(`data-${i}`), `spot ${i}`);
  });
}

test('createTarWriter: a 100 MiB file with holes becomes a small GNU sparse 1.0 member', async (t) => {
  const dir = tmpdir(t);
  const out = path.join(dir, 'sparse.tar');
  const w = createTarWriter(out);
  const pieces: DataPiece[] = [{ offset: 0, data: Buffer.from('head') }, { offset: 50 * MiB, data: Buffer.from('middle') }];
  await w.add({
    path: Buffer.from('big'), type: 'file', mode: 0o600, uid: 0, gid: 0, mtimeNs: 1_500_000_000_000_000_000n, xattrs: [],
    content: { size: 100 * MiB, async *read() { yield* pieces; } },
  });
  await w.finish();
  t.true(fs.statSync(out).size <= 10240, `archive is ${fs.statSync(out).size} bytes`);
  t.true(fs.readFileSync(out).includes('GNU.sparse.major=1'));

  const [back] = await readAll(out);
  t.deepEqual(back!.entry.path, Buffer.from('big'));
  t.is(back!.entry.content!.size, 100 * MiB);
  // Regions are widened to whole blocks (GNU tar reads each region from a block boundary).
  t.deepEqual(back!.pieces.map((p) => [p.offset, p.data.length]), [[0, 512], [50 * MiB, 512]]);
  t.is(Buffer.from(back!.pieces[0]!.data).toString('latin1', 0, 4), 'head');
  t.is(Buffer.from(back!.pieces[1]!.data).toString('latin1', 0, 6), 'middle');

  gnuExtract(out, path.join(dir, 'x'));
  const got = path.join(dir, 'x/big');
  t.is(fs.statSync(got).size, 100 * MiB);
  const fd = fs.openSync(got, 'r');
  try {
    const buf = Buffer.alloc(6);
    fs.readSync(fd, buf, 0, 6, 50 * MiB);
    t.is(buf.toString(), 'middle');
  } finally {
    fs.closeSync(fd);
  }
});

test('createTarWriter: spools large files whose hole map is not known up front', async (t) => {
  const dir = tmpdir(t);
  const out = path.join(dir, 'spool.tar');
  const denseData = crypto.randomBytes(9 * MiB);
  const tailHole = crypto.randomBytes(7 * MiB);
  const chunks = (b: Buffer, base: number): DataPiece[] => {
    const r: DataPiece[] = [];
    for (let o = 0; o < b.length; o += MiB) r.push({ offset: base + o, data: b.subarray(o, o + MiB) });
    return r;
  };
  const w = createTarWriter(out);
  await w.add({ path: Buffer.alloc(0), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [] });
  await w.add({
    path: Buffer.from('dense'), type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [],
    content: { size: denseData.length, async *read() { yield* chunks(denseData, 0); } },
  });
  await w.add({
    path: Buffer.from('tail-hole'), type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [],
    content: { size: 20 * MiB, async *read() { yield* chunks(tailHole, 0); } },
  });
  await w.finish();
  t.deepEqual(fs.readdirSync(dir), ['spool.tar'], 'no spool file left behind');
  const m = byPath(await readAll(out));
  t.is(sha256(joined(m.get('dense')!.pieces)), sha256(denseData));
  t.is(m.get('tail-hole')!.entry.content!.size, 20 * MiB);
  t.is(sha256(joined(m.get('tail-hole')!.pieces)), sha256(tailHole));
  gnuExtract(out, path.join(dir, 'x'));
  t.is(sha256(fs.readFileSync(path.join(dir, 'x/dense'))), sha256(denseData));
  const th = fs.readFileSync(path.join(dir, 'x/tail-hole'));
  t.is(th.length, 20 * MiB);
  t.true(th.subarray(0, 7 * MiB).equals(tailHole));
  t.true(th.subarray(7 * MiB).every((c) => c === 0));
});

// --- writer details -----------------------------------------------------------------------------------------------

test('createTarWriter: long and non-UTF-8 names, large ids, ns and negative mtimes survive GNU tar and openTar', async (t) => {
  const dir = tmpdir(t);
  const out = path.join(dir, 'names.tar');
  const longDir = Buffer.from(`d/${'a'.repeat(200)}`);
  const longFile = Buffer.concat([longDir, Buffer.from(`/${'b'.repeat(150)}`)]);
  const weird = Buffer.from([0x77, 0xff, 0xfe, 0x0a, 0x80]);
  const base = { mode: 0o644, uid: 0, gid: 0, xattrs: [] };
  const entries: ImageEntry[] = [
    { ...base, path: Buffer.alloc(0), type: 'dir', mode: 0o700, mtimeNs: 5n },
    { ...base, path: Buffer.from('d'), type: 'dir', mode: 0o755, mtimeNs: 1_000_000_001n },
    { ...base, path: longDir, type: 'dir', mode: 0o750, mtimeNs: -1_500_000_000n },
    { ...base, path: longFile, type: 'file', uid: 3_000_000, gid: 4_000_000_000, mtimeNs: 123n, content: { size: 3, async *read() { yield { offset: 0, data: Buffer.from('abc') }; } } },
    { ...base, path: weird, type: 'file', mtimeNs: 2_000_000_000_123_456_789n, xattrs: [{ name: 'user.bin', value: Buffer.from([0, 0x3d, 0x0a, 0xff]) }] },
    { ...base, path: Buffer.from('longlink'), type: 'symlink', mode: 0o777, mtimeNs: 7_000_000_000n, linkTarget: Buffer.concat([Buffer.from('../'.repeat(40)), weird]) },
    { ...base, path: Buffer.from('hard'), type: 'hardlink', mtimeNs: 0n, linkTarget: longFile },
    { ...base, path: Buffer.from('null'), type: 'chr', mtimeNs: 0n, rdev: { major: 1, minor: 3 } },
    { ...base, path: Buffer.from('bigminor'), type: 'blk', mtimeNs: 0n, rdev: { major: 259, minor: 1048575 } },
    { ...base, path: Buffer.from('pipe'), type: 'fifo', mode: 0o600, mtimeNs: 0n },
    { ...base, path: Buffer.from('sock'), type: 'socket', mtimeNs: 0n },
  ];
  const w = createTarWriter(out);
  for (const e of entries) await w.add(e);
  const { warnings } = await w.finish();
  t.deepEqual(warnings.map((x) => x.path), ['sock']);
  t.regex(warnings[0]!.message, /socket/);
  t.is(fs.statSync(out).size % 10240, 0, 'padded to whole records like GNU tar');

  const raw = fs.readFileSync(out);
  t.is(raw.toString('latin1', 0, 2), 'Pa', 'the root has pax records (its mtime has ns)');
  const back = await readAll(out);
  const stored = entries.filter((e) => e.type !== 'socket');
  t.is(back.length, stored.length);
  back.forEach(({ entry: got, pieces }, i) => {
    const want = stored[i]!;
    t.deepEqual(got.path, want.path);
    t.like(got, { type: want.type, mode: want.mode, uid: want.uid, gid: want.gid, mtimeNs: want.mtimeNs });
    t.deepEqual(got.xattrs.map((x) => [x.name, Buffer.from(x.value).toString('hex')]), want.xattrs.map((x) => [x.name, Buffer.from(x.value).toString('hex')]));
    if (want.linkTarget) t.deepEqual(got.linkTarget, want.linkTarget);
    if (want.rdev) t.deepEqual(got.rdev, want.rdev);
    if (want.content) t.is(joined(pieces).toString(), 'abc');
  });

  const x = path.join(dir, 'x');
  gnuExtract(out, x);
  const st = (p: Buffer) => fs.lstatSync(Buffer.concat([Buffer.from(`${x}/`), p]), { bigint: true });
  t.is(st(longFile).uid, 3_000_000n);
  t.is(st(longFile).gid, 4_000_000_000n);
  t.is(st(longFile).mtimeNs, 123n);
  t.is(st(longDir).mtimeNs, -1_500_000_000n);
  t.is(Number(st(longDir).mode) & 0o7777, 0o750);
  t.is(st(Buffer.from('d')).mtimeNs, 1_000_000_001n);
  t.is(st(weird).mtimeNs, 2_000_000_000_123_456_789n);
  t.is(st(Buffer.from('hard')).ino, st(longFile).ino);
  t.deepEqual(fs.readlinkSync(Buffer.concat([Buffer.from(`${x}/`), Buffer.from('longlink')]), { encoding: 'buffer' }), entries[5]!.linkTarget);
  t.deepEqual(native().lgetxattr(Buffer.concat([Buffer.from(`${x}/`), weird]), 'user.bin'), Buffer.from([0, 0x3d, 0x0a, 0xff]));
  t.is(st(Buffer.from('bigminor')).rdev, makedev(259, 1048575));
  t.true(st(Buffer.from('pipe')).isFIFO());
  const root = fs.lstatSync(x, { bigint: true });
  t.is(Number(root.mode) & 0o7777, 0o700, "the root's metadata is kept via './'");
  t.is(root.mtimeNs, 5n);
});

test('createTarWriter: abort removes the partial archive', async (t) => {
  const dir = tmpdir(t);
  const out = path.join(dir, 'partial.tar.zst');
  const w = createTarWriter(out);
  await w.add({ path: Buffer.from('f'), type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [], content: { size: 1, async *read() { yield { offset: 0, data: Buffer.from('1') }; } } });
  await w.abort();
  t.deepEqual(fs.readdirSync(dir), []);
});

// --- reader details -----------------------------------------------------------------------------------------------

test('openTar: pax records are raw bytes (hdrcharset=BINARY names, binary xattrs, LIBARCHIVE.xattr, exact times)', async (t) => {
  const dir = tmpdir(t);
  const name = Buffer.from([0x66, 0xff, 0x80, 0x0a, 0x3d]);
  const link = Buffer.from([0x2f, 0xc3, 0x28]);
  const file = writeFile(dir, 'pax.tar', archive(
    paxMember([
      ['hdrcharset', 'BINARY'], ['path', name], ['SCHILY.xattr.user.bin', Buffer.from([0, 0xff, 0x0a, 0x3d])],
      ['LIBARCHIVE.xattr.user.%41b', Buffer.from('hi').toString('base64')], ['mtime', '-1.25'], ['uid', '3000000000'],
      ['gid', '4294967295'], ['atime', '1.5'], ['comment', 'ignored'],
    ]),
    member({ name: 'placeholder' }, Buffer.from('data')),
    paxMember([['linkpath', link], ['mtime', '1234567890.123456789123']]),
    member({ name: 'sym', type: '2', linkname: 'short' }),
  ));
  const [f, s] = await readAll(file);
  t.deepEqual(f!.entry.path, name);
  t.is(f!.entry.mtimeNs, -1_250_000_000n);
  t.like(f!.entry, { uid: 3_000_000_000, gid: 4294967295 });
  t.deepEqual(f!.entry.xattrs.map((x) => [x.name, Buffer.from(x.value).toString('hex')]), [['user.Ab', '6869'], ['user.bin', '00ff0a3d']]);
  t.is(joined(f!.pieces).toString(), 'data');
  t.deepEqual(s!.entry.linkTarget, link);
  t.is(s!.entry.mtimeNs, 1234567890123456789n, 'digits past ns are dropped, never rounded through a float');
});

test('openTar: reads sparse regions laid out block by block, as GNU tar does when they are unaligned', async (t) => {
  const dir = tmpdir(t);
  const file = writeFile(dir, 'unaligned.tar', archive(
    paxMember([['GNU.sparse.major', '1'], ['GNU.sparse.minor', '0'], ['GNU.sparse.name', 'u'], ['GNU.sparse.realsize', '2000']]),
    member({ name: 'GNUSparseFile.0/u' }, Buffer.concat([pad(Buffer.from('2\n0\n10\n1000\n5\n')), pad(Buffer.from('0123456789')), Buffer.from('abcde')])),
    member({ name: 'next' }, Buffer.from('next')),
  ));
  const [u, next] = await readAll(file);
  t.deepEqual(u!.pieces.map((p) => [p.offset, Buffer.from(p.data).toString()]), [[0, '0123456789'], [1000, 'abcde']]);
  t.is(joined(next!.pieces).toString(), 'next');
});

test('openTar: global pax headers apply to later members, per-member records win', async (t) => {
  const dir = tmpdir(t);
  const file = writeFile(dir, 'g.tar', archive(
    paxMember([['uid', '77'], ['mtime', '5.5']], 'g'),
    member({ name: 'a' }),
    paxMember([['uid', '88']]),
    member({ name: 'b' }),
    member({ name: 'c', uid: 1 }),
  ));
  const got = (await readAll(file)).map(({ entry: e }) => [e.path.toString(), e.uid, e.mtimeNs]);
  t.deepEqual(got, [['a', 77, 5_500_000_000n], ['b', 88, 5_500_000_000n], ['c', 77, 5_500_000_000n]]);
});

test('openTar: base-256 fields, the ustar prefix, signed checksums, no end marker, repeated paths', async (t) => {
  const dir = tmpdir(t);
  const uid = [0x80, 0, 0, 0, 0xb2, 0xd0, 0x5e, 0x00]; // 3000000000
  const mtime = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x9c]; // -100
  const file = writeFile(dir, 'b256.tar', Buffer.concat([
    member({ name: './', type: '5' }),
    member({ name: 'file', prefix: 'some/long/dir', raw: [[108, uid], [136, mtime]] }, Buffer.from('xyz')),
    member({ name: Buffer.from('caf\xe9\xe9\xe9', 'latin1'), signedChecksum: true }),
    member({ name: 'olddir/', type: '\0' }),
    member({ name: 'file', prefix: 'some/long/dir' }, Buffer.from('second')),
    // no end-of-archive blocks: GNU tar accepts EOF after a member
  ]));
  const got = await readAll(file);
  t.deepEqual(got.map(({ entry: e }) => [e.path.toString('latin1'), e.type]), [
    ['', 'dir'], ['some/long/dir/file', 'file'], ['caf\xe9\xe9\xe9', 'file'], ['olddir', 'dir'], ['some/long/dir/file', 'file'],
  ]);
  t.like(got[1]!.entry, { uid: 3_000_000_000, mtimeNs: -100_000_000_000n });
  t.is(joined(got[4]!.pieces).toString(), 'second', 'a later member with the same path is yielded again');
});

test('openTar: GNU long names and link targets (L/K records)', async (t) => {
  const dir = tmpdir(t);
  const tree = path.join(dir, 'tree');
  const deep = path.join('p'.repeat(90), 'q'.repeat(90), 'r'.repeat(60));
  fs.mkdirSync(path.join(tree, path.dirname(deep)), { recursive: true });
  fs.writeFileSync(path.join(tree, deep), 'deep');
  const target = `${'t'.repeat(150)}/x`;
  fs.symlinkSync(target, path.join(tree, 'l'));
  const file = path.join(dir, 'gnu.tar');
  run('tar', ['--format=gnu', '-cf', file, '-C', tree, '.']);
  t.true(fs.readFileSync(file).includes('././@LongLink'));
  const m = byPath(await readAll(file));
  t.is(joined(m.get(deep)!.pieces).toString(), 'deep');
  t.deepEqual(m.get('l')!.entry.linkTarget, Buffer.from(target));
});

test('openTar: ACLs stored only as SCHILY.acl text (tar --acls) become posix ACL xattrs', async (t) => {
  const dir = tmpdir(t);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'dflt'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'f'), 'acl');
  run('setfacl', ['-m', 'u:1234:rw,g:77:r', path.join(tree, 'f')]);
  run('setfacl', ['-d', '-m', 'g:5678:rx', path.join(tree, 'dflt')]);
  const file = path.join(dir, 'acl.tar');
  run('tar', ['--acls', '--format=pax', '-cf', file, '-C', tree, 'f', 'dflt']);
  t.false(fs.readFileSync(file).includes('SCHILY.xattr'), 'only the text form is in the archive');
  const m = byPath(await readAll(file));
  const hex = (e: ImageEntry, n: string) => Buffer.from(e.xattrs.find((x) => x.name === n)?.value ?? []).toString('hex');
  t.is(hex(m.get('f')!.entry, 'system.posix_acl_access'), native().lgetxattr(path.join(tree, 'f'), 'system.posix_acl_access').toString('hex'));
  t.is(hex(m.get('dflt')!.entry, 'system.posix_acl_default'), native().lgetxattr(path.join(tree, 'dflt'), 'system.posix_acl_default').toString('hex'));
  t.false(m.get('dflt')!.entry.xattrs.some((x) => x.name === 'system.posix_acl_access'), 'a minimal access ACL is just the mode');
});

test('openTar: content the consumer leaves unread is skipped', async (t) => {
  const dir = tmpdir(t);
  const big = crypto.randomBytes(3 * MiB + 17);
  const plain = writeFile(dir, 'skip.tar', archive(
    member({ name: 'big' }, big),
    member({ name: 'after' }, Buffer.from('after')),
    member({ name: 'partly' }, big),
    member({ name: 'last' }, Buffer.from('last')),
  ));
  const gz = writeFile(dir, 'skip.tgz', zlib.gzipSync(fs.readFileSync(plain)));
  for (const file of [plain, gz]) {
    const seen: string[] = [];
    let stale: ImageEntry | undefined;
    for await (const e of openTar(file).entries()) {
      const name = e.path.toString();
      if (name === 'big') stale = e; // never read
      if (name === 'partly') {
        for await (const p of e.content!.read()) {
          t.true(p.data.length <= MiB);
          break; // read one piece only
        }
      }
      if (name === 'after' || name === 'last') {
        const pieces: DataPiece[] = [];
        for await (const p of e.content!.read()) pieces.push(p);
        seen.push(`${name}=${joined(pieces).toString()}`);
      } else {
        seen.push(name);
      }
    }
    t.deepEqual(seen, ['big', 'after=after', 'partly', 'last=last'], file);
    t.throws(() => stale!.content!.read(), { message: /moved on/ });
  }
});

// --- bad input ----------------------------------------------------------------------------------------------------

/** One of CorruptInputError, UnsafeInputError, UnsupportedInputError (in the shape ava's instanceOf takes). */
type ErrorClass = { readonly prototype: Error; new (...args: any[]): Error };

const rejects = test.macro(async (t, build: (dir: string) => Buffer, cls: ErrorClass, where: RegExp) => {
  const dir = tmpdir(t);
  const file = writeFile(dir, 'bad.tar', build(dir));
  const err = await t.throwsAsync(async () => {
    for await (const e of openTar(file).entries()) if (e.content) for await (const _ of e.content.read()) { /* drain */ }
  }, { instanceOf: cls });
  t.true(err!.message.startsWith(`${file}: `), err!.message);
  t.regex(err!.message, where);
  t.false(/\n\s+at /.test(err!.message), 'no stack trace in the message');
});

function validArchive(): Buffer {
  return archive(
    member({ name: 'd/', type: '5' }),
    member({ name: 'd/random' }, crypto.randomBytes(200_000)),
    member({ name: 'd/text' }, Buffer.from('text\n'.repeat(30_000))),
  );
}

test('openTar rejects: archive cut mid-member', rejects, () => validArchive().subarray(0, 1024 + 100_000), CorruptInputError, /offset \d+: unexpected end of archive/);
test('openTar rejects: archive cut mid-header', rejects, () => {
  const a = validArchive();
  const second = 1024 + Math.ceil(200_000 / 512) * 512;
  return a.subarray(0, second + 100);
}, CorruptInputError, /offset 201316: unexpected end of archive/);
test('openTar rejects: corrupt header checksum', rejects, () => {
  const a = validArchive();
  a[512 + 3] ^= 0x20;
  return a;
}, CorruptInputError, /offset 512: header checksum mismatch/);
test('openTar rejects: a file that is not a tar archive', rejects, () => Buffer.from('this is not a tar archive\n'.repeat(100)), CorruptInputError, /offset 0: not a tar archive/);
test('openTar rejects: an empty file', rejects, () => Buffer.alloc(0), CorruptInputError, /offset 0: not a tar archive/);
test('openTar rejects: truncated gzip', rejects, () => {
  const gz = zlib.gzipSync(validArchive());
  return gz.subarray(0, gz.length >> 1);
}, CorruptInputError, /offset \d+: truncated gzip data/);
test('openTar rejects: gzip with a bad checksum', rejects, () => {
  const gz = zlib.gzipSync(validArchive());
  gz[gz.length - 8] ^= 0x55; // the CRC32 in the trailer: caught after the end-of-archive blocks
  return gz;
}, CorruptInputError, /offset \d+: corrupt gzip data \(incorrect data check\)/);
test('openTar rejects: gzip with damaged data', rejects, () => {
  const gz = zlib.gzipSync(validArchive());
  for (let i = 1000; i < 1100; i++) gz[i] ^= 0x55;
  return gz;
}, CorruptInputError, /offset \d+: /);
test('openTar rejects: truncated zstd', rejects, () => {
  const z = run('zstd', ['-q', '-c'], { input: validArchive() });
  return z.subarray(0, z.length >> 1);
}, CorruptInputError, /offset \d+: truncated zstd data/);
test('openTar rejects: truncated xz', rejects, () => {
  const z = run('xz', ['-c'], { input: validArchive() });
  return z.subarray(0, z.length >> 1);
}, CorruptInputError, /offset \d+: corrupt xz data: .*unexpected end of input/i);
test('openTar rejects: an absolute name', rejects, () => archive(member({ name: '/etc/passwd' }, Buffer.from('x'))), UnsafeInputError, /member '\/etc\/passwd': absolute/);
test('openTar rejects: a ../ name', rejects, () => archive(member({ name: 'a/' , type: '5' }), member({ name: 'a/../../evil' })), UnsafeInputError, /member 'a\/\.\.\/\.\.\/evil': '\.\.'/);
test('openTar rejects: an empty component in the middle', rejects, () => archive(member({ name: 'a//b' })), UnsafeInputError, /member 'a\/\/b': empty path component/);
test('openTar rejects: a member through an earlier symlink', rejects, () => archive(
  member({ name: 'link', type: '2', linkname: '/etc' }),
  member({ name: './link/passwd' }, Buffer.from('root::0:0::/:/bin/sh\n')),
), UnsafeInputError, /member '\.\/link\/passwd': path goes through the symlink 'link'/);
test('openTar rejects: a member through a hardlink to a symlink', rejects, () => archive(
  member({ name: 'link', type: '2', linkname: '/etc' }),
  member({ name: 'alias', type: '1', linkname: 'link' }),
  member({ name: 'alias/shadow' }),
), UnsafeInputError, /member 'alias\/shadow': path goes through the symlink 'alias'/);
test('openTar rejects: a hardlink to a missing member', rejects, () => archive(
  member({ name: 'f' }, Buffer.from('f')),
  member({ name: 'hl', type: '1', linkname: 'missing' }),
), CorruptInputError, /member 'hl': hardlink target 'missing' is not an earlier member/);
test('openTar rejects: a hardlink to a directory', rejects, () => archive(
  member({ name: 'd', type: '5' }),
  member({ name: 'hl', type: '1', linkname: 'd' }),
), UnsafeInputError, /member 'hl': hardlink to the directory 'd'/);
test('openTar rejects: an unknown entry type', rejects, () => archive(member({ name: 'q', type: 'Q' })), UnsupportedInputError, /member 'q' at offset 0: unsupported tar entry type 'Q'/);
test('openTar rejects: a malformed pax record', rejects, () => archive(
  member({ name: 'PaxHeaders/x', type: 'x' }, Buffer.from('99 path=x\n')),
  member({ name: 'x' }),
), CorruptInputError, /offset 0: malformed pax record/);
test('openTar rejects: a sparse map that does not match the data', rejects, () => archive(
  paxMember([['GNU.sparse.major', '1'], ['GNU.sparse.minor', '0'], ['GNU.sparse.name', 's'], ['GNU.sparse.realsize', '100']]),
  member({ name: 'GNUSparseFile.0/s' }, Buffer.concat([pad(Buffer.from('1\n10\n50\n')), Buffer.alloc(20)])),
), CorruptInputError, /member 's' at offset 1024: GNU sparse map covers 50 bytes but the member stores 20/);

test('openTar: a missing file fails in entries() with SourceReadError', async (t) => {
  const dir = tmpdir(t);
  const r = openTar(path.join(dir, 'nope.tar'));
  await t.throwsAsync(async () => { for await (const _ of r.entries()) { /* nothing */ } }, { code: 'ERR_SOURCE_READ' });
});

// --- an archive inside another file (a .deb member) -------------------------------------------------------------

const RANGE_COMPRESSIONS: Array<[name: string, compress: (b: Buffer) => Buffer, named?: 'lzma']> = [
  ['none', (b) => b], ['gzip', (b) => zlib.gzipSync(b)], ['zstd', (b) => run('zstd', ['-q', '-c'], { input: b })],
  ['xz', (b) => run('xz', ['-c'], { input: b })], ['bzip2', (b) => run('bzip2', ['-c'], { input: b })],
  ['lzma', (b) => run('xz', ['--format=lzma', '-c'], { input: b }), 'lzma'],
];

for (const [name, compress, named] of RANGE_COMPRESSIONS) {
  test(`openTar: range: a ${name} archive between other bytes reads as the archive alone`, async (t) => {
    const dir = tmpdir(t);
    const plain = validArchive();
    const inner = compress(plain);
    const alone = writeFile(dir, 'alone.tar', plain);
    // Bytes before and after the range that would break the archive if they were read.
    const file = writeFile(dir, 'outer', Buffer.concat([Buffer.alloc(777, 0x41), inner, Buffer.alloc(1500, 0x42)]));
    const r = openTar(file, { range: { offset: 777, length: inner.length }, member: 'data.tar', ...(named ? { compression: named } : {}) });
    t.is(r.description.format, name === 'none' ? 'tar' : `tar+${name}`);
    t.is(r.description.size, inner.length);
    const got = await readAllFrom(r);
    const want = await readAll(alone);
    t.deepEqual(got.map((e) => [e.entry.path.toString(), sha256(joined(e.pieces))]), want.map((e) => [e.entry.path.toString(), sha256(joined(e.pieces))]));
    // Read twice: each entries() call reads the range again.
    t.is((await readAllFrom(r)).length, want.length);
  });
}

test('openTar: range: errors name the file and the member, offsets count from the range start', async (t) => {
  const dir = tmpdir(t);
  const cut = validArchive().subarray(0, 1024 + 100_000);
  const file = writeFile(dir, 'outer', Buffer.concat([Buffer.alloc(512), cut, Buffer.alloc(4096, 0x43)]));
  const err = await t.throwsAsync(readAllFrom(openTar(file, { range: { offset: 512, length: cut.length }, member: 'data.tar' })), { instanceOf: CorruptInputError });
  t.is(err!.message, `${file}: data.tar offset ${cut.length}: unexpected end of archive`);
  const bad = writeFile(dir, 'bad', Buffer.concat([Buffer.alloc(100), archive(member({ name: '../x' }))]));
  const e2 = await t.throwsAsync(readAllFrom(openTar(bad, { range: { offset: 100, length: 2048 }, member: 'data.tar.gz' })), { instanceOf: UnsafeInputError });
  t.is(e2!.message, `${bad}: data.tar.gz member '../x': '..' in member name`);
  const empty = await t.throwsAsync(readAllFrom(openTar(bad, { range: { offset: 100, length: 0 }, compression: 'xz' })), { instanceOf: CorruptInputError });
  t.regex(empty!.message, /offset 0: not a tar archive \(empty\)/);
});

async function readAllFrom(r: ImageReader): Promise<ReadEntry[]> {
  const out: ReadEntry[] = [];
  for await (const entry of r.entries()) {
    const pieces: DataPiece[] = [];
    if (entry.content) for await (const p of entry.content.read()) pieces.push({ offset: p.offset, data: Buffer.from(p.data) });
    out.push({ entry, pieces });
  }
  return out;
}
