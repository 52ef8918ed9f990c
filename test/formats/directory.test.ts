/** Tests of the directory reader and writer: lossless round trips, reader order and entries, change detection, writer safety. */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { openDirectory, createDirectoryWriter, DEFAULT_READ_SIZE, splitDev } from '../../src/formats/directory.js';
import type { DataPiece, ImageEntry, ImageReader, ImageWriter } from '../../src/formats/types.js';
import {
  AbortedError, CheckoutError, DestinationNotEmptyError, SourceChangedError, SourceReadError, UnsafeInputError,
} from '../../src/errors.js';
import { native } from '../../src/native/index.js';
import { mkedgePath, snapshotTree } from '../helpers/snapshot.js';

const MiB = 1 << 20;
const isRoot = process.getuid?.() === 0;

function tmpDir(t: ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-dir-test-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** All pieces of a content, each copied: a piece's data is only valid until the next one is asked for. */
async function readAll(entry: ImageEntry): Promise<DataPiece[]> {
  const pieces: DataPiece[] = [];
  if (entry.content) for await (const p of entry.content.read()) pieces.push({ offset: p.offset, data: Buffer.from(p.data) });
  return pieces;
}

async function copyTree(reader: ImageReader, writer: ImageWriter) {
  for await (const entry of reader.entries()) await writer.add(entry);
  return writer.finish();
}

function entry(p: string | Buffer, type: ImageEntry['type'], extra: Partial<ImageEntry> = {}): ImageEntry {
  return {
    path: typeof p === 'string' ? Buffer.from(p) : p, type, mode: type === 'dir' ? 0o755 : 0o644,
    uid: 0, gid: 0, mtimeNs: 1_000_000_000_123_456_789n, xattrs: [], ...extra,
  };
}

function bytes(data: string | Buffer, offset = 0): ImageEntry['content'] {
  const buf = Buffer.from(data);
  return { size: offset + buf.length, async *read() { if (buf.length) yield { offset, data: buf }; } };
}

// Skipped unless root.
(isRoot ? test : test.skip)('directory: round trip of the edge tree is lossless', async (t) => {
  const dir = tmpDir(t);
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  execFileSync('bash', [mkedgePath(), a], { stdio: 'ignore' });
  const { warnings } = await copyTree(openDirectory(a), createDirectoryWriter(b));
  t.deepEqual(warnings, []);
  t.deepEqual(snapshotTree(b, { holes: true }), snapshotTree(a, { holes: true }));
  // The sparse file keeps its holes: 100 MiB logical, a few KiB on disk.
  const st = fs.statSync(path.join(b, 'sparse'));
  t.is(st.size, 100 * MiB);
  t.true(st.blocks * 512 <= 64 * 1024);
});

test('directory: reader yields sorted, parents-first entries with all metadata', async (t) => {
  const dir = tmpDir(t);
  const root = path.join(dir, 'tree');
  fs.mkdirSync(root);
  fs.chmodSync(root, 0o755);
  fs.writeFileSync(path.join(root, 'a'), 'hello');
  fs.chmodSync(path.join(root, 'a'), 0o640);
  native().lsetxattr(path.join(root, 'a'), 'user.b', Buffer.from('2'));
  native().lsetxattr(path.join(root, 'a'), 'user.a', Buffer.from('1'));
  fs.mkdirSync(path.join(root, 'b'));
  fs.chmodSync(path.join(root, 'b'), 0o2750);
  fs.linkSync(path.join(root, 'a'), path.join(root, 'b/c'));
  fs.symlinkSync('a', path.join(root, 'd'));
  native().mknod(path.join(root, 'e'), 0o010000 | 0o600, 0, 0);
  fs.chmodSync(path.join(root, 'e'), 0o604);
  if (isRoot) {
    fs.chownSync(path.join(root, 'a'), 11, 22);
    native().mknod(path.join(root, 'n'), 0o020000 | 0o600, 300, 70000);
  }

  const reader = openDirectory(root);
  const entries: ImageEntry[] = [];
  for await (const e of reader.entries()) entries.push(e);
  const summary = entries.map((e) => [e.path.toString(), e.type, e.mode.toString(8), e.linkTarget?.toString() ?? null]);
  t.deepEqual(summary, [
    ['', 'dir', '755', null],
    ['a', 'file', '640', null],
    ['b', 'dir', '2750', null],
    ['b/c', 'hardlink', '640', 'a'],
    ['d', 'symlink', '777', 'a'],
    ['e', 'fifo', '604', null],
    ...(isRoot ? [['n', 'chr', '600', null]] : []),
  ]);

  const a = entries[1];
  const st = fs.lstatSync(path.join(root, 'a'), { bigint: true });
  t.is(a.mtimeNs, st.mtimeNs);
  if (isRoot) t.deepEqual([a.uid, a.gid], [11, 22]);
  t.deepEqual(a.xattrs.map((x) => [x.name, Buffer.from(x.value).toString()]), [['user.a', '1'], ['user.b', '2']]);
  t.deepEqual(entries[3].xattrs.map((x) => x.name), ['user.a', 'user.b']);
  t.is(a.content?.size, 5);
  t.is(a.content?.cache?.key, `dir:${path.join(root, 'a')}`);
  t.is(a.content?.cache?.signature, `${st.dev}:${st.ino}:5:${st.mtimeNs}:${st.ctimeNs}`);
  const pieces = await readAll(a);
  t.deepEqual(pieces.map((p) => [p.offset, Buffer.from(p.data).toString()]), [[0, 'hello']]);
  t.is(entries[3].content, undefined);
  if (isRoot) t.deepEqual(entries[6].rdev, { major: 300, minor: 70000 });
  t.is(reader.description.format, 'dir');
  t.is(reader.description.name, root);
  // Every name of a file counts (a and its hardlink), as in the commit's byte total.
  t.is(reader.description.size, 10);
});

test('directory: splitDev decodes the Linux dev_t layout', (t) => {
  t.deepEqual(splitDev(0x0103n), { major: 1, minor: 3 });
  // major 300, minor 70000: minor's high bits live above the major's low 12 bits.
  const dev = (70000n & 0xffn) | ((300n & 0xfffn) << 8n) | ((70000n & ~0xffn) << 12n);
  t.deepEqual(splitDev(dev), { major: 300, minor: 70000 });
  // glibc's makedev for 32-bit numbers: major 0x12345678, minor 0x9abcdef0.
  const [ma, mi] = [0x12345678n, 0x9abcdef0n];
  const big = ((ma & 0x00000fffn) << 8n) | ((ma & 0xfffff000n) << 32n) | (mi & 0x000000ffn) | ((mi & 0xffffff00n) << 12n);
  t.deepEqual(splitDev(big), { major: 0x12345678, minor: 0x9abcdef0 });
});

test('directory: file data comes in pieces of at most 1 MiB and skips holes', async (t) => {
  const dir = tmpDir(t);
  const data = Buffer.alloc(3 * MiB + 10);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
  fs.writeFileSync(path.join(dir, 'big'), data);
  const fd = fs.openSync(path.join(dir, 'sparse'), 'w');
  fs.writeSync(fd, 'x', 5 * MiB);
  fs.ftruncateSync(fd, 10 * MiB);
  fs.closeSync(fd);

  const entries = new Map<string, ImageEntry>();
  for await (const e of openDirectory(dir).entries()) entries.set(e.path.toString(), e);
  const big = await readAll(entries.get('big')!);
  t.deepEqual(big.map((p) => [p.offset, p.data.length]), [[0, MiB], [MiB, MiB], [2 * MiB, MiB], [3 * MiB, 10]]);
  t.true(big.every((p) => p.data.length <= DEFAULT_READ_SIZE));
  t.true(Buffer.concat(big.map((p) => p.data)).equals(data));

  const sparse = await readAll(entries.get('sparse')!);
  t.is(entries.get('sparse')!.content!.size, 10 * MiB);
  t.true(sparse.length >= 1);
  t.true(sparse.reduce((n, p) => n + p.data.length, 0) <= 64 * 1024);
  const piece = sparse.find((p) => p.offset <= 5 * MiB && p.offset + p.data.length > 5 * MiB)!;
  t.is(piece.data[5 * MiB - piece.offset], 'x'.charCodeAt(0));
});

test('directory: pieces are read into one reused buffer, valid until the next piece; concurrent reads do not share it', async (t) => {
  const dir = tmpDir(t);
  const a = Buffer.alloc(3 * MiB + 10);
  const b = Buffer.alloc(2 * MiB + 3);
  for (let i = 0; i < a.length; i++) a[i] = (i * 7 + 3) & 0xff;
  for (let i = 0; i < b.length; i++) b[i] = (i * 13 + 1) & 0xff;
  fs.writeFileSync(path.join(dir, 'a'), a);
  fs.writeFileSync(path.join(dir, 'b'), b);
  fs.writeFileSync(path.join(dir, 'c'), 'small');
  const entries = new Map<string, ImageEntry>();
  for await (const e of openDirectory(dir).entries()) entries.set(e.path.toString(), e);

  // One file: every piece is checked while it is current, and all of them share one buffer (no allocation per piece).
  const buffers = new Set<ArrayBufferLike>();
  for await (const p of entries.get('a')!.content!.read()) {
    t.true(Buffer.from(p.data).equals(a.subarray(p.offset, p.offset + p.data.length)), `piece at ${p.offset}`);
    buffers.add(p.data.buffer);
  }
  t.is(buffers.size, 1);

  // The next read reuses it (the buffer went back to the reader when the first read ended)...
  const [small] = await readAll(entries.get('c')!);
  for await (const p of entries.get('c')!.content!.read()) t.true(buffers.has(p.data.buffer));
  t.is(small.data.toString(), 'small');

  // ...but two reads in progress at once each have their own, so interleaving them is safe.
  const ia = entries.get('a')!.content!.read()[Symbol.asyncIterator]();
  const ib = entries.get('b')!.content!.read()[Symbol.asyncIterator]();
  const got = { a: [] as Buffer[], b: [] as Buffer[] };
  for (let done = { a: false, b: false }; !done.a || !done.b;) {
    const [ra, rb] = [done.a ? undefined : await ia.next(), done.b ? undefined : await ib.next()];
    // Both current pieces are valid together.
    if (ra && !ra.done) t.true(Buffer.from(ra.value.data).equals(a.subarray(ra.value.offset, ra.value.offset + ra.value.data.length)));
    if (rb && !rb.done) t.true(Buffer.from(rb.value.data).equals(b.subarray(rb.value.offset, rb.value.offset + rb.value.data.length)));
    if (ra && !ra.done && rb && !rb.done) t.not(ra.value.data.buffer, rb.value.data.buffer);
    if (ra && !ra.done) got.a.push(Buffer.from(ra.value.data)); else done.a = true;
    if (rb && !rb.done) got.b.push(Buffer.from(rb.value.data)); else done.b = true;
  }
  t.true(Buffer.concat(got.a).equals(a));
  t.true(Buffer.concat(got.b).equals(b));
});

test('directory: non-UTF-8 names and symlink targets round trip', async (t) => {
  const dir = tmpDir(t);
  const a = path.join(dir, 'a');
  fs.mkdirSync(a);
  const base = Buffer.from(a + '/');
  const d = Buffer.from([0x66, 0xff, 0xfe]);
  const f = Buffer.from([0xc3, 0x28, 0x0a, 0x80]);
  fs.mkdirSync(Buffer.concat([base, d]));
  fs.writeFileSync(Buffer.concat([base, d, Buffer.from('/'), f]), 'x');
  fs.symlinkSync(Buffer.from([0x2e, 0x2e, 0x2f, 0xff]), Buffer.concat([base, Buffer.from('l')]));

  const paths: Buffer[] = [];
  for await (const e of openDirectory(a).entries()) paths.push(e.path);
  t.deepEqual(paths.map((p) => p.toString('hex')), ['', d.toString('hex'), Buffer.concat([d, Buffer.from('/'), f]).toString('hex'),
    Buffer.from('l').toString('hex')]);

  const b = path.join(dir, 'b');
  await copyTree(openDirectory(a), createDirectoryWriter(b));
  t.deepEqual(snapshotTree(b, { holes: true }), snapshotTree(a, { holes: true }));
  t.true(fs.readlinkSync(Buffer.from(b + '/l'), { encoding: 'buffer' }).equals(Buffer.from([0x2e, 0x2e, 0x2f, 0xff])));
});

// Skipped unless root (chown).
(isRoot ? test : test.skip)('directory: default ACLs and setgid directories do not leak onto the children the writer creates', async (t) => {
  const dir = tmpDir(t);
  const a = path.join(dir, 'a');
  fs.mkdirSync(path.join(a, 'acl/sub'), { recursive: true });
  fs.writeFileSync(path.join(a, 'acl/file'), 'x');
  execFileSync('setfacl', ['-d', '-m', 'g:5678:rx', path.join(a, 'acl')]);
  fs.mkdirSync(path.join(a, 'sgid/child'), { recursive: true });
  fs.chownSync(path.join(a, 'sgid'), 0, 777);
  fs.chmodSync(path.join(a, 'sgid'), 0o2775);
  fs.chmodSync(path.join(a, 'sgid/child'), 0o755);
  const b = path.join(dir, 'b');
  await copyTree(openDirectory(a), createDirectoryWriter(b));
  const snap = snapshotTree(b, { holes: true });
  t.deepEqual(snap, snapshotTree(a, { holes: true }));
  t.true(snap.some((l) => l.startsWith('acl dir') && l.includes('xattr:system.posix_acl_default')));
  t.false(snap.some((l) => l.startsWith('acl/file') && l.includes('xattr:')));
});

test('directory: a file appended to while it is read is SourceChangedError', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'f');
  fs.writeFileSync(file, Buffer.alloc(3 * MiB, 1));
  for await (const e of openDirectory(dir).entries()) {
    if (e.type !== 'file') continue;
    await t.throwsAsync(async () => {
      let first = true;
      for await (const _ of e.content!.read()) {
        if (first) fs.appendFileSync(file, 'more');
        first = false;
      }
    }, { instanceOf: SourceChangedError, message: /'.*\/f' changed while it was being read/ });
  }
});

test('directory: a file rewritten in place (same size) while it is read is SourceChangedError', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'f');
  fs.writeFileSync(file, Buffer.alloc(2 * MiB + 1, 1));
  fs.utimesSync(file, 1_000_000, 1_000_000); // an old mtime, so the rewrite surely moves it
  for await (const e of openDirectory(dir).entries()) {
    if (e.type !== 'file') continue;
    await t.throwsAsync(async () => {
      for await (const p of e.content!.read()) {
        if (p.offset === 0) fs.writeFileSync(file, Buffer.alloc(2 * MiB + 1, 2));
      }
    }, { instanceOf: SourceChangedError });
  }
});

test('directory: a file changed between listing and reading is SourceChangedError', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'f');
  fs.writeFileSync(file, 'abc');
  for await (const e of openDirectory(dir).entries()) {
    if (e.type !== 'file') continue;
    fs.appendFileSync(file, 'def');
    await t.throwsAsync(() => readAll(e), { instanceOf: SourceChangedError });
  }
});

test('directory: a missing root, a file root, a vanished path and a replaced directory are SourceReadError', async (t) => {
  const dir = tmpDir(t);
  const drain = async (root: string, onEntry: (e: ImageEntry) => void = () => {}) => {
    for await (const e of openDirectory(root).entries()) onEntry(e);
  };
  await t.throwsAsync(() => drain(path.join(dir, 'missing')), { instanceOf: SourceReadError, message: /missing/ });
  fs.writeFileSync(path.join(dir, 'file'), 'x');
  await t.throwsAsync(() => drain(path.join(dir, 'file')), { instanceOf: SourceReadError, message: /not a directory/ });

  const vanish = path.join(dir, 'vanish');
  fs.mkdirSync(vanish);
  fs.writeFileSync(path.join(vanish, 'a'), 'a');
  fs.writeFileSync(path.join(vanish, 'b'), 'b');
  await t.throwsAsync(() => drain(vanish, (e) => { if (e.path.toString() === 'a') fs.rmSync(path.join(vanish, 'b')); }),
    { instanceOf: SourceReadError, message: /vanish\/b'/ });

  const replace = path.join(dir, 'replace');
  fs.mkdirSync(path.join(replace, 'd'), { recursive: true });
  fs.writeFileSync(path.join(replace, 'd/x'), 'x');
  await t.throwsAsync(() => drain(replace, (e) => {
    if (e.path.toString() !== 'd') return;
    fs.rmSync(path.join(replace, 'd'), { recursive: true });
    fs.writeFileSync(path.join(replace, 'd'), 'now a file');
  }), { instanceOf: SourceReadError, message: /replace\/d'/ });
});

test('directory: an aborted signal stops the reader with AbortedError', async (t) => {
  const dir = tmpDir(t);
  const controller = new AbortController();
  controller.abort();
  await t.throwsAsync(async () => {
    for await (const _ of openDirectory(dir, { signal: controller.signal }).entries()) { /* drain */ }
  }, { instanceOf: AbortedError });
});

test('directory: writer keeps a 1 GiB file with one 8 KiB piece sparse', async (t) => {
  const dir = tmpDir(t);
  const out = path.join(dir, 'out');
  const w = createDirectoryWriter(out);
  const piece = Buffer.alloc(8192, 0xab);
  await w.add(entry('', 'dir'));
  await w.add(entry('big', 'file', {
    content: { size: 1 << 30, async *read() { yield { offset: 512 * MiB, data: piece }; } },
  }));
  await w.finish();
  const st = fs.statSync(path.join(out, 'big'));
  t.is(st.size, 1 << 30);
  t.true(st.blocks * 512 <= 64 * 1024, `uses ${st.blocks * 512} bytes`);
  const fd = fs.openSync(path.join(out, 'big'), 'r');
  const back = Buffer.alloc(8192);
  fs.readSync(fd, back, 0, 8192, 512 * MiB);
  fs.closeSync(fd);
  t.true(back.equals(piece));
  t.is(fs.statSync(path.join(out, 'big'), { bigint: true }).mtimeNs, 1_000_000_000_123_456_789n);
});

test('directory: writer applies directory modes and times last, and an empty file without content', async (t) => {
  const dir = tmpDir(t);
  const out = path.join(dir, 'out');
  const w = createDirectoryWriter(out);
  await w.add(entry('', 'dir', { mode: 0o700, mtimeNs: 5_000_000_001n }));
  await w.add(entry('ro', 'dir', { mode: 0o555, mtimeNs: 7_000_000_002n }));
  await w.add(entry('ro/f', 'file', { mode: 0o4755, content: bytes('data') }));
  await w.add(entry('ro/empty', 'file', { mode: 0o600 }));
  await w.finish();
  const ro = fs.lstatSync(path.join(out, 'ro'), { bigint: true });
  t.is(Number(ro.mode & 0o7777n), 0o555);
  t.is(ro.mtimeNs, 7_000_000_002n);
  t.is(fs.lstatSync(out, { bigint: true }).mtimeNs, 5_000_000_001n);
  t.is(fs.lstatSync(path.join(out, 'ro/f')).mode & 0o7777, 0o4755);
  t.is(fs.readFileSync(path.join(out, 'ro/f'), 'utf8'), 'data');
  t.is(fs.statSync(path.join(out, 'ro/empty')).size, 0);
});

test('directory: writer refuses a non-empty destination', (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'x'), 'x');
  t.throws(() => createDirectoryWriter(dir), { instanceOf: DestinationNotEmptyError });
  t.throws(() => createDirectoryWriter(path.join(dir, 'x')), { instanceOf: DestinationNotEmptyError });
  fs.symlinkSync(path.join(dir, 'empty'), path.join(dir, 'link'));
  fs.mkdirSync(path.join(dir, 'empty'));
  t.throws(() => createDirectoryWriter(path.join(dir, 'link')), { instanceOf: DestinationNotEmptyError });
  t.notThrows(() => createDirectoryWriter(path.join(dir, 'empty')));
});

test('directory: writer refuses unsafe paths and never writes outside the destination', async (t) => {
  const dir = tmpDir(t);
  const outside = path.join(dir, 'outside');
  fs.mkdirSync(outside);
  const out = path.join(dir, 'out');
  const w = createDirectoryWriter(out);
  await w.add(entry('', 'dir'));
  await w.add(entry('link', 'symlink', { linkTarget: Buffer.from(outside) }));
  await w.add(entry('up', 'symlink', { linkTarget: Buffer.from('..') }));
  await w.add(entry('f', 'file', { content: bytes('f') }));
  const unsafe = (e: ImageEntry, reason: RegExp) => t.throwsAsync(() => w.add(e), { instanceOf: UnsafeInputError, message: reason });
  await unsafe(entry('../escape', 'file', { content: bytes('x') }), /'\.\.' component/);
  await unsafe(entry('a/../../escape', 'file'), /'\.\.' component/);
  await unsafe(entry('./x', 'file'), /'\.' component/);
  await unsafe(entry('/abs', 'file'), /empty component/);
  await unsafe(entry('x/', 'dir'), /empty component/);
  await unsafe(entry(Buffer.from('x\0y'), 'file'), /NUL/);
  await unsafe(entry('link/x', 'file', { content: bytes('x') }), /parent is not a directory/);
  await unsafe(entry('link/sub', 'dir'), /parent is not a directory/);
  await unsafe(entry('up/escape', 'symlink', { linkTarget: Buffer.from('x') }), /parent is not a directory/);
  await unsafe(entry('f/x', 'file'), /parent is not a directory/);
  await unsafe(entry('missing/x', 'file'), /parent is not a directory/);
  await unsafe(entry('link', 'file', { content: bytes('x') }), /duplicate entry/);
  await unsafe(entry('h1', 'hardlink', { linkTarget: Buffer.from('../outside/y') }), /'\.\.' component/);
  await unsafe(entry('h2', 'hardlink', { linkTarget: Buffer.from('nothing') }), /hardlink target/);
  await unsafe(entry('h3', 'hardlink', { linkTarget: Buffer.from('') }), /hardlink target/);
  await w.add(entry('sub', 'dir'));
  await unsafe(entry('h5', 'hardlink', { linkTarget: Buffer.from('sub') }), /hardlink target 'sub'/);
  await w.add(entry('h4', 'hardlink', { linkTarget: Buffer.from('link') }));
  await w.finish();
  t.deepEqual(fs.readdirSync(outside), []);
  t.deepEqual(fs.readdirSync(dir).sort(), ['out', 'outside']);
  t.deepEqual(fs.readdirSync(out).sort(), ['f', 'h4', 'link', 'sub', 'up']);
  t.true(fs.lstatSync(path.join(out, 'h4')).isSymbolicLink(), 'a hardlink to a symlink links the symlink itself');
});

test('directory: abort removes a destination the writer created, and only that', async (t) => {
  const dir = tmpDir(t);
  const created = path.join(dir, 'new');
  const w1 = createDirectoryWriter(created);
  await w1.add(entry('', 'dir'));
  await w1.add(entry('f', 'file', { content: bytes('x') }));
  await w1.abort();
  t.false(fs.existsSync(created));

  const existing = path.join(dir, 'existing');
  fs.mkdirSync(existing);
  const w2 = createDirectoryWriter(existing);
  await w2.add(entry('', 'dir'));
  await w2.abort();
  t.true(fs.statSync(existing).isDirectory());
});

/** Runs the writer in a child node that drops to nobody (65534) after loading the modules; returns its JSON result. */
async function writeAsNobody(dest: string, strict: boolean): Promise<{ ok: boolean; warnings?: Array<{ path: string; message: string }>; code?: string }> {
  const mod = pathToFileURL(path.resolve('src/formats/directory.ts')).href;
  const nat = pathToFileURL(path.resolve('src/native/index.ts')).href;
  const script = `
    const { createDirectoryWriter } = await import(${JSON.stringify(mod)});
    const { native } = await import(${JSON.stringify(nat)});
    native();
    process.setgroups([]); process.setgid(65534); process.setuid(65534);
    const e = (p, type, extra = {}) => ({ path: Buffer.from(p), type, mode: 0o644, uid: 1234, gid: 5678, mtimeNs: 1000000000000000000n, xattrs: [], ...extra });
    try {
      const w = createDirectoryWriter(${JSON.stringify(dest)}, { strict: ${strict} });
      await w.add(e('', 'dir', { uid: 65534, gid: 65534 }));
      await w.add(e('owned', 'file', {
        content: { size: 2, async *read() { yield { offset: 0, data: Buffer.from('hi') }; } },
        xattrs: [{ name: 'trusted.viva', value: Buffer.from('t') }, { name: 'user.viva', value: Buffer.from('u') }],
      }));
      await w.add(e('null', 'chr', { rdev: { major: 1, minor: 3 }, uid: 65534, gid: 65534 }));
      await w.add(e('null2', 'hardlink', { linkTarget: Buffer.from('null') }));
      await w.add(e('fifo', 'fifo', { uid: 65534, gid: 65534 }));
      const { warnings } = await w.finish();
      console.log(JSON.stringify({ ok: true, warnings }));
    } catch (err) {
      console.log(JSON.stringify({ ok: false, code: err.code, message: err.message }));
    }`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
  return JSON.parse(stdout);
}

// Skipped unless root (it drops privileges).
(isRoot ? test : test.skip)('directory: without privileges, owners, devices and trusted xattrs become warnings, or CheckoutError when strict', async (t) => {
  const dir = tmpDir(t);
  fs.chmodSync(dir, 0o755);
  const parent = path.join(dir, 'p');
  fs.mkdirSync(parent);
  fs.chownSync(parent, 65534, 65534);

  const lenient = path.join(parent, 'lenient');
  const r = await writeAsNobody(lenient, false);
  t.true(r.ok, JSON.stringify(r));
  const messages = (r.warnings ?? []).map((w) => `${path.relative(lenient, w.path)}: ${w.message}`).sort();
  t.deepEqual(messages, [
    "null2: cannot link to 'null', which was not created",
    'null: cannot create character device 1:3 (EPERM)',
    "owned: cannot set xattr 'trusted.viva' (EPERM)",
    'owned: cannot set owner 1234:5678 (EPERM)',
  ].sort());
  t.is(fs.readFileSync(path.join(lenient, 'owned'), 'utf8'), 'hi');
  t.is(native().lgetxattr(path.join(lenient, 'owned'), 'user.viva').toString(), 'u');
  t.is(fs.lstatSync(path.join(lenient, 'owned')).uid, 65534);
  t.true(fs.lstatSync(path.join(lenient, 'fifo')).isFIFO());
  t.false(fs.existsSync(path.join(lenient, 'null')));
  t.is(fs.lstatSync(path.join(lenient, 'fifo'), { bigint: true }).mtimeNs, 1000000000000000000n);

  const strict = await writeAsNobody(path.join(parent, 'strict'), true);
  t.false(strict.ok);
  t.is(strict.code, CheckoutError.code);
});

test('openDirectory: a root given as a symlink (or a chain of them) is followed; symlinks inside stay symlinks', async (t) => {
  const dir = tmpDir(t);
  const root = path.join(dir, 'rootfs');
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/hostname'), 'web01\n');
  fs.symlinkSync('etc', path.join(root, 'link'));
  fs.symlinkSync('rootfs', path.join(dir, 'L'));
  fs.symlinkSync(path.join(dir, 'L'), path.join(dir, 'L2'));
  const list = async (src: string) => {
    const out: string[] = [];
    for await (const e of openDirectory(src).entries()) out.push(`${e.path.toString()} ${e.type} ${e.linkTarget?.toString() ?? ''}`);
    return out;
  };
  const want = await list(root);
  t.true(want.includes('link symlink etc'));
  t.deepEqual(await list(path.join(dir, 'L')), want);
  t.deepEqual(await list(path.join(dir, 'L2')), want);
  // The exclusion of a path still applies when the root is reached through a link.
  const ex: string[] = [];
  for await (const e of openDirectory(path.join(dir, 'L'), { exclude: [path.join(root, 'etc')] }).entries()) ex.push(e.path.toString());
  t.false(ex.includes('etc'));
});
