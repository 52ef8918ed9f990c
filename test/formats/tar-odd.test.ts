import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { openTar } from '../../src/formats/tar.js';
import { CorruptInputError } from '../../src/errors.js';
import { SBIG_MAX, SBIG_MIN } from '../../src/model/codec.js';
import { header, data, archive, pax } from '../helpers/tar-bytes.js';
import { tmpDir, vivaOk } from '../helpers/cli.js';

/** What viva reads: 'type path' and, for files, their content. */
async function vivaRead(file: string): Promise<Map<string, { type: string; content?: Buffer; mtimeNs: bigint }>> {
  const out = new Map<string, { type: string; content?: Buffer; mtimeNs: bigint }>();
  for await (const e of openTar(file).entries()) {
    let content: Buffer | undefined;
    if (e.content) {
      content = Buffer.alloc(e.content.size);
      for await (const p of e.content.read()) Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength).copy(content, p.offset);
    }
    out.set(e.path.toString(), { type: e.type, content, mtimeNs: e.mtimeNs });
  }
  return out;
}

/** What GNU tar extracts (exit status ignored: it warns about odd headers and goes on): regular file path -> content, or 'dir'. */
function gnuExtract(t: ExecutionContext, file: string): Map<string, Buffer | 'dir'> {
  const dest = tmpDir(t, 'viva-tar-odd-x-');
  spawnSync('tar', ['-xf', file, '-C', dest], { stdio: 'ignore' });
  const out = new Map<string, Buffer | 'dir'>();
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(dest, rel))) {
      const p = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(dest, p));
      if (st.isDirectory()) {
        out.set(p, 'dir');
        walk(p);
      } else if (st.isFile()) {
        out.set(p, fs.readFileSync(path.join(dest, p)));
      }
    }
  };
  walk('');
  return out;
}

/** Every member GNU tar extracts is read by viva with the same content. */
async function sameAsGnu(t: ExecutionContext, bytes: Buffer): Promise<Map<string, { type: string; content?: Buffer; mtimeNs: bigint }>> {
  const file = path.join(tmpDir(t, 'viva-tar-odd-'), 'a.tar');
  fs.writeFileSync(file, bytes);
  const gnu = gnuExtract(t, file);
  const ours = await vivaRead(file);
  t.true(gnu.size > 0);
  for (const [p, c] of gnu) {
    const v = ours.get(p);
    t.truthy(v, `viva lost '${p}'`);
    if (c === 'dir') t.is(v?.type, 'dir', p);
    else t.deepEqual(v?.content, c, p);
  }
  return ours;
}

const FOURTEEN = 'fourteen bytes';

test('a directory with a size but no data does not swallow the next member', async (t) => {
  const ours = await sameAsGnu(t, archive(
    header({ name: 'd/', typeflag: '5', size: 14 }),
    header({ name: 'b', size: 14 }), data(FOURTEEN),
    header({ name: 'c', size: 0 }),
  ));
  t.deepEqual(['b', 'c', 'd'].filter((k) => ours.has(k)), ['b', 'c', 'd']);
  t.is(ours.get('b')?.content?.toString(), FOURTEEN);
});

test('a directory with a size and data stored after it: the data is skipped, the next member kept', async (t) => {
  const ours = await sameAsGnu(t, archive(
    header({ name: 'd/', typeflag: '5', size: 14 }), data('dir data here!'),
    header({ name: 'b', size: 14 }), data(FOURTEEN),
  ));
  t.is(ours.get('b')?.content?.toString(), FOURTEEN);
});

test('a last empty member after a directory with a size is not taken for the end of the archive', async (t) => {
  const ours = await sameAsGnu(t, archive(
    header({ name: 'd/', typeflag: '5', size: 600 }),
    header({ name: 'e', size: 0 }),
  ));
  t.true(ours.has('e'));
});

test('an old-style directory (regular type, trailing slash) with a size keeps the next member', async (t) => {
  const file = path.join(tmpDir(t), 'a.tar');
  fs.writeFileSync(file, archive(header({ name: 'd/', typeflag: '0', size: 14 }), header({ name: 'b', size: 14 }), data(FOURTEEN)));
  const ours = await vivaRead(file);
  t.is(ours.get('d')?.type, 'dir');
  t.is(ours.get('b')?.content?.toString(), FOURTEEN);
});

const TIMES: Array<[string, Buffer, bigint]> = [
  ['base-256 2^64-1', Buffer.from([0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), SBIG_MAX],
  ['base-256 largest', Buffer.from([0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), SBIG_MAX],
  ['base-256 negative', Buffer.from([0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), SBIG_MIN],
  ['base-256 -2', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]), -2_000_000_000n],
  ['octal without terminator', Buffer.from('777777777777', 'latin1'), 0o777777777777n * 1_000_000_000n],
];
for (const [label, field, want] of TIMES) {
  test(`an mtime field ${label} keeps the content (14 bytes) and a storable time`, async (t) => {
    const ours = await sameAsGnu(t, archive(header({ name: 'a', size: 14, mtime: field }), data(FOURTEEN)));
    t.is(ours.get('a')?.content?.toString(), FOURTEEN);
    t.is(ours.get('a')?.mtimeNs, want);
  });
}

test('a pax mtime beyond what a tree stores is clamped, the content kept', async (t) => {
  const ours = await sameAsGnu(t, archive(pax({ mtime: '9'.repeat(40) }), header({ name: 'a', size: 14 }), data(FOURTEEN)));
  t.is(ours.get('a')?.content?.toString(), FOURTEEN);
  t.is(ours.get('a')?.mtimeNs, SBIG_MAX);
});

test('a commit of a member with an out-of-range mtime stores a readable tree with the 14 bytes', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'a.tar');
  fs.writeFileSync(file, archive(header({ name: 'a', size: 14, mtime: TIMES[0]![1] }), data(FOURTEEN)));
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', file, '-m', 'odd'], { cwd: repo });
  const cat = await vivaOk(t, ['cat', 'HEAD:a'], { cwd: repo });
  t.is(cat.stdout, FOURTEEN);
});

// Fields that cannot be read give a clear error naming the file and the offset, never fewer members.
const BAD: Array<[string, Buffer, RegExp]> = [
  ['an mtime that is not a number', header({ name: 'a', size: 14, mtime: Buffer.from('9999', 'latin1') }), /offset 0: invalid mtime field/],
  ['a negative base-256 size', header({ name: 'a', size: Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf2]) }), /offset 0: invalid size field/],
  ['a base-256 size beyond 2^53', header({ name: 'a', size: Buffer.from([0x80, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0]) }), /offset 0: invalid size field/],
  ['a size with junk digits', header({ name: 'a', size: Buffer.from('00000000x16\0', 'latin1') }), /offset 0: invalid size field/],
  ['a uid beyond 32 bits', header({ name: 'a', size: 14, uid: Buffer.from([0x80, 0, 0, 0x01, 0, 0, 0, 0]) }), /offset 0: invalid uid field/],
  ['a mode with junk', header({ name: 'a', size: 14, mode: Buffer.from('0064x\0\0\0', 'latin1') }), /offset 0: invalid mode field/],
  ['a bad checksum', header({ name: 'a', size: 14, chksum: Buffer.from('0000001\0', 'latin1') }), /offset 0: not a tar archive/],
];
for (const [label, hdr, msg] of BAD) {
  test(`${label} is a clear error naming the file and the offset`, async (t) => {
    const file = path.join(tmpDir(t), 'a.tar');
    fs.writeFileSync(file, archive(hdr, data(FOURTEEN)));
    const e = await t.throwsAsync(vivaRead(file), { instanceOf: CorruptInputError });
    t.regex(e!.message, msg);
    t.true(e!.message.includes(file));
  });
}

test('a pax size larger than the header size is the size read (as GNU tar)', async (t) => {
  const ours = await sameAsGnu(t, archive(pax({ size: '14' }), header({ name: 'a', size: 3 }), data(FOURTEEN), header({ name: 'b', size: 1 }), data('x')));
  t.is(ours.get('a')?.content?.toString(), FOURTEEN);
  t.is(ours.get('b')?.content?.toString(), 'x');
});

test('a member whose data is cut short by the end of the archive is an error, not a short file', async (t) => {
  const file = path.join(tmpDir(t), 'a.tar');
  fs.writeFileSync(file, Buffer.concat([header({ name: 'a', size: 2000 }), data(FOURTEEN)]));
  await t.throwsAsync(vivaRead(file), { instanceOf: CorruptInputError, message: /unexpected end of archive/ });
});

test('a GNU long name member whose size runs past the archive is an error', async (t) => {
  const file = path.join(tmpDir(t), 'a.tar');
  fs.writeFileSync(file, Buffer.concat([header({ name: '././@LongLink', typeflag: 'L', size: 4000, magic: 'gnu' }), data('x'.repeat(600))]));
  await t.throwsAsync(vivaRead(file), { instanceOf: CorruptInputError, message: /unexpected end of archive/ });
});

test('a lone zero block between members does not end the archive early (GNU tar stops there with a warning)', async (t) => {
  const file = path.join(tmpDir(t), 'a.tar');
  fs.writeFileSync(file, archive(header({ name: 'a', size: 14 }), data(FOURTEEN), Buffer.alloc(512), header({ name: 'b', size: 14 }), data(FOURTEEN)));
  const ours = await vivaRead(file);
  t.is(ours.get('a')?.content?.toString(), FOURTEEN);
  t.is(ours.get('b')?.content?.toString(), FOURTEEN);
});

test('two archives concatenated: the end-of-archive marker still ends the read, as GNU tar without --ignore-zeros', async (t) => {
  const ours = await sameAsGnu(t, Buffer.concat([archive(header({ name: 'a', size: 14 }), data(FOURTEEN)), archive(header({ name: 'b', size: 1 }), data('x'))]));
  t.deepEqual([...ours.keys()].filter((k) => k), ['a']);
});

test('a symlink or device member with a size: its data is skipped and the next member kept (as GNU tar)', async (t) => {
  const ours = await sameAsGnu(t, archive(
    header({ name: 's', typeflag: '2', linkname: 'b', size: 14 }), data(FOURTEEN),
    header({ name: 'f', typeflag: '6', size: 600 }), data('y'.repeat(600)),
    header({ name: 'b', size: 14 }), data(FOURTEEN),
  ));
  t.is(ours.get('s')?.type, 'symlink');
  t.is(ours.get('f')?.type, 'fifo');
  t.is(ours.get('b')?.content?.toString(), FOURTEEN);
});

test('a header with a bad checksum after the first member is a clear error naming its offset, not the end of the archive', async (t) => {
  const file = path.join(tmpDir(t), 'a.tar');
  fs.writeFileSync(file, archive(header({ name: 'a', size: 14 }), data(FOURTEEN), header({ name: 'c', size: 14, chksum: Buffer.from('0000001\0', 'latin1') }), data(FOURTEEN)));
  await t.throwsAsync(vivaRead(file), { instanceOf: CorruptInputError, message: /offset 1024: header checksum mismatch/ });
});

test('a GNU sparse 0.1 member keeps its data and its trailing hole (as GNU tar)', async (t) => {
  const ours = await sameAsGnu(t, archive(
    pax({ 'GNU.sparse.size': '20', 'GNU.sparse.numblocks': '2', 'GNU.sparse.map': '0,14,20,0', 'GNU.sparse.name': 'a' }),
    header({ name: 'GNUSparseFile.1/a', size: 14 }), data(FOURTEEN),
  ));
  t.deepEqual(ours.get('a')?.content, Buffer.concat([Buffer.from(FOURTEEN), Buffer.alloc(6)]));
});

test('a GNU sparse 0.1 map without the final (size, 0) entry: the declared size is kept (GNU tar stops at the last data)', async (t) => {
  const file = path.join(tmpDir(t), 'a.tar');
  fs.writeFileSync(file, archive(
    pax({ 'GNU.sparse.size': '20', 'GNU.sparse.numblocks': '1', 'GNU.sparse.map': '0,14', 'GNU.sparse.name': 'a' }),
    header({ name: 'GNUSparseFile.1/a', size: 14 }), data(FOURTEEN),
  ));
  const gnu = gnuExtract(t, file).get('a');
  t.deepEqual(gnu, Buffer.from(FOURTEEN), 'GNU tar leaves the trailing hole out');
  t.deepEqual((await vivaRead(file)).get('a')?.content, Buffer.concat([Buffer.from(FOURTEEN), Buffer.alloc(6)]));
});

const BAD_SPARSE: Array<[string, Record<string, string>, RegExp]> = [
  ['a map past the real size', { 'GNU.sparse.size': '10', 'GNU.sparse.map': '0,14' }, /sparse/],
  ['a map covering more than the member stores', { 'GNU.sparse.size': '40', 'GNU.sparse.map': '0,30' }, /sparse map covers 30 bytes but the member stores 14/],
  ['a map with an odd number of values', { 'GNU.sparse.size': '20', 'GNU.sparse.map': '0,14,20' }, /invalid GNU sparse map/],
];
for (const [label, records, msg] of BAD_SPARSE) {
  test(`a GNU sparse member with ${label} is a clear error naming the member and offset`, async (t) => {
    const file = path.join(tmpDir(t), 'a.tar');
    fs.writeFileSync(file, archive(pax({ ...records, 'GNU.sparse.name': 'a' }), header({ name: 'GNUSparseFile.1/a', size: 14 }), data(FOURTEEN)));
    const e = await t.throwsAsync(vivaRead(file), { instanceOf: CorruptInputError, message: msg });
    t.regex(e!.message, /member 'a' at offset 1024/);
  });
}
