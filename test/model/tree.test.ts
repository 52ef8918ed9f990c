/** Tests of tree objects: round trips, canonical order, strict decoding of malformed input, and pinned ids. */
import test from 'ava';
import crypto from 'node:crypto';
import { DecodeError, Encoder } from '../../src/model/codec.js';
import {
  ENTRY_TYPE_CODES, TREE_VERSION, compareListedNames, decodeTree, encodeTree, findEntry, hashTree, invalidNameReason, listingEntry,
  normalizeTree, sameListedEntry, scanTree, type Tree, type TreeEntry,
} from '../../src/model/tree.js';
import { EMPTY_BLOB_OID } from '../../src/model/oid.js';

const HELLO_OID = crypto.createHash('sha256').update('hello\n').digest('hex');
const SUB_OID = '11'.repeat(32);

function ent(name: string | Buffer, type: TreeEntry['type'], extra: Partial<TreeEntry> = {}): TreeEntry {
  const e: TreeEntry = {
    name: typeof name === 'string' ? Buffer.from(name) : name, type, mode: type === 'dir' ? 0o755 : 0o644,
    uid: 0, gid: 0, mtimeNs: 1_600_000_000_000_000_000n, size: 0, xattrs: [],
  };
  if (type === 'file') Object.assign(e, { oid: EMPTY_BLOB_OID });
  if (type === 'dir') Object.assign(e, { oid: SUB_OID });
  return Object.assign(e, extra);
}

/** One entry of every kind and every optional field, in canonical order. */
function fixtureTree(): Tree {
  return {
    entries: [
      ent('blk', 'blk', { mode: 0o660, gid: 6, rdev: { major: 7, minor: 0 } }),
      ent('chr', 'chr', { mode: 0o666, rdev: { major: 1, minor: 3 } }),
      ent('etc', 'dir', { mode: 0o755, mtimeNs: -1n }),
      ent('fifo', 'fifo', { mode: 0o600, uid: 1000, gid: 1000 }),
      ent('hello', 'file', {
        mode: 0o4755, uid: 1234, gid: 5678, mtimeNs: 981_173_106_123_456_789n, size: 6, oid: HELLO_OID,
        xattrs: [{ name: 'security.capability', value: Buffer.from('01000002', 'hex') }, { name: 'user.viva', value: Buffer.from('v') }],
        hardlink: Buffer.from('hello'),
      }),
      ent('hello2', 'file', { mode: 0o4755, uid: 1234, gid: 5678, mtimeNs: 981_173_106_123_456_789n, size: 6, oid: HELLO_OID, hardlink: Buffer.from('hello') }),
      ent('link', 'symlink', { mode: 0o777, size: 5, linkTarget: Buffer.from('hello') }),
      ent(Buffer.from([0x6e, 0xff, 0xfe]), 'file', { size: 0 }),
      ent('sock', 'socket', { mode: 0o755 }),
      ent('sparse', 'file', { size: 1 << 30, oid: '22'.repeat(32), holes: [{ offset: 0, length: 4096 }, { offset: 8192, length: (1 << 30) - 8192 }] }),
    ],
  };
}

test('tree: entry type codes are frozen', (t) => {
  t.deepEqual({ ...ENTRY_TYPE_CODES }, { file: 1, dir: 2, symlink: 3, chr: 4, blk: 5, fifo: 6, socket: 7 });
  t.is(TREE_VERSION, 1);
});

test('tree: every entry kind round trips', (t) => {
  const tree = fixtureTree();
  const enc = encodeTree(tree);
  const back = decodeTree(enc);
  t.deepEqual(back, tree);
  t.deepEqual(encodeTree(back), enc);
});

test('tree: a listing decodes each entry as decodeTree does; equal entries are equal bytes, any changed field is not', (t) => {
  const tree = fixtureTree();
  const l = scanTree(encodeTree(tree));
  t.is(l.length, tree.entries.length);
  for (let i = 0; i < l.length; i++) {
    t.deepEqual(listingEntry(l, i), tree.entries[i]);
    t.true(sameListedEntry(l, i, l, i));
    if (i > 0) t.true(compareListedNames(l, i - 1, l, i) < 0 && compareListedNames(l, i, l, i - 1) > 0);
  }
  // The same entry in another tree (other neighbours) is the same; each field changed on its own is not.
  const hello = tree.entries.find((e) => e.name.toString() === 'hello')!;
  const alone = scanTree(encodeTree({ entries: [hello] }));
  const at = tree.entries.indexOf(hello);
  t.true(sameListedEntry(alone, 0, l, at));
  t.is(compareListedNames(alone, 0, l, at), 0);
  const changes: Array<Partial<TreeEntry>> = [
    { mode: 0o755 }, { uid: 1 }, { gid: 1 }, { mtimeNs: hello.mtimeNs + 1n }, { size: 7 }, { oid: SUB_OID },
    { xattrs: [{ name: 'user.viva', value: Buffer.from('v') }] }, { xattrs: [...hello.xattrs.slice(0, 1), { name: 'user.viva', value: Buffer.from('w') }] },
    { hardlink: undefined }, { hardlink: Buffer.from('hello2') }, { holes: [{ offset: 0, length: 4096 }], size: 8192 },
  ];
  for (const c of changes) {
    const other = scanTree(encodeTree({ entries: [{ ...hello, ...c }] }));
    t.false(sameListedEntry(other, 0, l, at), JSON.stringify(Object.keys(c)));
    t.deepEqual(listingEntry(other, 0), Object.fromEntries(Object.entries({ ...hello, ...c }).filter(([, v]) => v !== undefined)));
  }
});

test('tree: the empty tree round trips and has a pinned encoding', (t) => {
  const enc = encodeTree({ entries: [] });
  t.is(enc.toString('hex'), '747265650001' + '00');
  t.deepEqual(decodeTree(enc), { entries: [] });
  t.is(hashTree(enc), '43e41e81b8f5d23d8838fc981c5316223d3f6f5cc00131a280ff93ca5a4908eb');
});

test('tree: known answer: a one-file tree has a pinned encoding and id', (t) => {
  const tree: Tree = {
    entries: [ent('hello', 'file', { mode: 0o644, uid: 0, gid: 0, mtimeNs: 1_000_000_000_000_000_000n, size: 6, oid: HELLO_OID })],
  };
  const enc = encodeTree(tree);
  t.is(
    enc.toString('hex'),
    '747265650001' // 'tree' NUL version 1
      + '01' // one entry
      + '0568656c6c6f' // name 'hello'
      + '01' // type file
      + 'a403' // mode 0644
      + '00' + '00' // uid, gid
      + '8080a0f6f4acdbe01b' // mtime ns 10^18, zigzag
      + '06' // size
      + '00' // no xattrs
      + HELLO_OID // blob id
      + '00' // no holes
      + '00', // no hardlink group
  );
  t.is(hashTree(enc), crypto.createHash('sha256').update(enc).digest('hex'));
  t.is(hashTree(enc), '0697c406ae64560c0729b4a4e56c74c39b8f234c7db5f7c831d2db8b6fe2b331');
});

test('tree: known answer: the tree with every entry kind has a pinned id', (t) => {
  t.is(hashTree(encodeTree(fixtureTree())), '99fc7f0bd7657839d39d902f24699b488c1b5d353b0ebed5e2ff4605dbe48a73');
});

test('tree: normalizeTree sorts entries by name bytes and xattrs by name, without touching its input', (t) => {
  const names = ['é', 'a', 'B', 'Z', '\u{1F600}', 'a.b', 'a-b', 'ab'];
  const input = [...names.map((n) => ent(n, 'fifo')), ent(Buffer.from([0xff]), 'fifo'), ent(Buffer.from([0x80]), 'fifo')];
  input[1]!.xattrs = [{ name: 'user.b', value: Buffer.from('2') }, { name: 'trusted.a', value: Buffer.from('1') }, { name: 'user.a', value: Buffer.from('3') }];
  const before = input.map((e) => e.name.toString('hex'));
  const norm = normalizeTree(input);
  t.deepEqual(input.map((e) => e.name.toString('hex')), before);
  t.deepEqual(input[1]!.xattrs.map((x) => x.name), ['user.b', 'trusted.a', 'user.a']);
  t.deepEqual(
    norm.entries.map((e) => e.name.toString('hex')),
    ['B', 'Z', 'a', 'a-b', 'a.b', 'ab'].map((n) => Buffer.from(n).toString('hex')).concat(['80', 'c3a9', 'f09f9880', 'ff']),
  );
  t.deepEqual(norm.entries.find((e) => e.name.equals(Buffer.from('a')))!.xattrs.map((x) => x.name), ['trusted.a', 'user.a', 'user.b']);
  // The same entries in any order give the same bytes.
  const shuffled = [...input].reverse();
  t.deepEqual(encodeTree(normalizeTree(shuffled)), encodeTree(norm));
});

test('tree: encodeTree enforces canonical order and valid entries', (t) => {
  const enc = (entries: TreeEntry[]) => () => encodeTree({ entries });
  t.throws(enc([ent('b', 'fifo'), ent('a', 'fifo')]), { message: /not sorted or duplicated/ });
  t.throws(enc([ent('a', 'fifo'), ent('a', 'fifo')]), { message: /not sorted or duplicated/ });
  t.throws(enc([ent('a', 'fifo', { xattrs: [{ name: 'user.b', value: Buffer.alloc(0) }, { name: 'user.a', value: Buffer.alloc(0) }] })]), { message: /xattrs not sorted/ });
  t.throws(enc([ent('a', 'fifo', { xattrs: [{ name: 'user.a', value: Buffer.alloc(0) }, { name: 'user.a', value: Buffer.alloc(1) }] })]), { message: /xattrs not sorted or duplicated/ });
  t.throws(enc([ent('f', 'file', { oid: undefined })]), { message: /without blob id/ });
  t.throws(enc([ent('d', 'dir', { oid: undefined })]), { message: /without tree id/ });
  for (const bad of ['', '.', '..', 'a/b', 'a\0b']) t.throws(enc([ent(bad, 'fifo')]), { message: /cannot encode tree entry/ }, JSON.stringify(bad));
});

test('tree: encodeTree refuses hole lists that decodeTree would refuse', (t) => {
  const withHoles = (size: number, holes: Array<{ offset: number; length: number }>) => () =>
    encodeTree({ entries: [ent('f', 'file', { size, holes })] });
  t.throws(withHoles(100, [{ offset: 10, length: 0 }]), { message: /hole/ });
  t.throws(withHoles(100, [{ offset: 50, length: 10 }, { offset: 10, length: 10 }]), { message: /hole/ });
  t.throws(withHoles(100, [{ offset: 10, length: 20 }, { offset: 20, length: 10 }]), { message: /hole/ });
  t.throws(withHoles(100, [{ offset: 90, length: 20 }]), { message: /hole/ });
  t.notThrows(withHoles(100, [{ offset: 0, length: 10 }, { offset: 20, length: 80 }]));
});

test('tree: invalidNameReason', (t) => {
  const table: Array<[string | Buffer, string | undefined]> = [
    ['a', undefined], ['.a', undefined], ['..a', undefined], ['...', undefined], [Buffer.from([0xff]), undefined], ['a b', undefined],
    ['', 'empty name'], ['.', "name '.'"], ['..', "name '..'"], ['a/b', "name contains '/'"], ['/', "name contains '/'"],
    ['a\0', 'name contains NUL'],
  ];
  for (const [name, reason] of table) t.is(invalidNameReason(Buffer.from(name)), reason, JSON.stringify(name.toString()));
});

test('tree: findEntry finds every entry by binary search and misses absent names', (t) => {
  const tree = normalizeTree(Array.from({ length: 101 }, (_, i) => ent(`n${i}`, 'fifo', { uid: i })));
  for (let i = 0; i < 101; i++) t.is(findEntry(tree, Buffer.from(`n${i}`))?.uid, i);
  for (const miss of ['', 'n', 'n101', 'o', 'a', 'n00']) t.is(findEntry(tree, Buffer.from(miss)), undefined, miss);
  t.is(findEntry({ entries: [] }, Buffer.from('a')), undefined);
});

// --- Malformed input: hand-written encodings (the format written out field by field, as docs/format.md describes it). ---

interface RawEntry {
  name: Buffer | string;
  type?: number;
  mode?: number;
  size?: number;
  xattrs?: Array<[string, string]>;
  holes?: Array<[number, number]>;
  /** Replaces the whole encoded entry body after the name with these hex bytes. */
  body?: string;
}

function rawTree(entries: RawEntry[], opts: { count?: number; version?: number; trailer?: string } = {}): Buffer {
  const e = new Encoder().raw(Buffer.from('tree\0', 'latin1')).u8(opts.version ?? 1).uint(opts.count ?? entries.length);
  for (const r of entries) {
    e.bytes(Buffer.from(r.name));
    if (r.body !== undefined) { e.raw(Buffer.from(r.body, 'hex')); continue; }
    const type = r.type ?? 6;
    e.u8(type).uint(r.mode ?? 0o644).uint(0).uint(0).sbig(0n).uint(r.size ?? 0);
    e.uint(r.xattrs?.length ?? 0);
    for (const [n, v] of r.xattrs ?? []) e.str(n).str(v);
    if (type === 1) {
      e.raw(Buffer.from(EMPTY_BLOB_OID, 'hex')).uint(r.holes?.length ?? 0);
      for (const [o, l] of r.holes ?? []) e.uint(o).uint(l);
    }
    if (type === 2) e.raw(Buffer.from(SUB_OID, 'hex'));
    if (type !== 2) e.uint(0);
  }
  if (opts.trailer) e.raw(Buffer.from(opts.trailer, 'hex'));
  return e.finish();
}

test('tree: the hand-written encoder agrees with encodeTree on valid input', (t) => {
  t.deepEqual(rawTree([{ name: 'a' }, { name: 'b', type: 2, mode: 0o755 }, { name: 'c', type: 1, size: 10, holes: [[0, 10]] }]), encodeTree({
    entries: [
      ent('a', 'fifo', { mtimeNs: 0n }), ent('b', 'dir', { mtimeNs: 0n }),
      ent('c', 'file', { mtimeNs: 0n, size: 10, holes: [{ offset: 0, length: 10 }] }),
    ],
  }));
});

const decodeRejects = test.macro({
  exec(t, buf: Buffer, message: RegExp) {
    const err = t.throws(() => decodeTree(buf), { instanceOf: DecodeError });
    t.regex(err?.message ?? '', message);
  },
  title: (title) => `tree: decodeTree rejects ${title}`,
});

test('unsorted entries', decodeRejects, rawTree([{ name: 'b' }, { name: 'a' }]), /not sorted or duplicated/);
test('duplicate entries', decodeRejects, rawTree([{ name: 'a' }, { name: 'a' }]), /not sorted or duplicated/);
test('entries in UTF-16 rather than byte order', decodeRejects, rawTree([{ name: '\u{1F600}' }, { name: '\uff01' }]), /not sorted/);
test("the name '.'", decodeRejects, rawTree([{ name: '.' }]), /invalid entry: name '.'/);
test("the name '..'", decodeRejects, rawTree([{ name: '..' }]), /invalid entry: name '..'/);
test("a name with '/'", decodeRejects, rawTree([{ name: 'a/b' }]), /invalid entry: name contains '\/'/);
test('a name with NUL', decodeRejects, rawTree([{ name: 'a\0b' }]), /invalid entry: name contains NUL/);
test('an empty name', decodeRejects, rawTree([{ name: '' }]), /invalid entry: empty name/);
test('entry type 0', decodeRejects, rawTree([{ name: 'a', type: 0 }]), /unknown entry type 0/);
test('entry type 8', decodeRejects, rawTree([{ name: 'a', type: 8 }]), /unknown entry type 8/);
test('a mode above 07777', decodeRejects, rawTree([{ name: 'a', mode: 0o10644 }]), /mode out of range/);
test('trailing bytes', decodeRejects, rawTree([{ name: 'a' }], { trailer: '00' }), /trailing bytes/);
test('more entries than present', decodeRejects, rawTree([{ name: 'a' }], { count: 2 }), /unexpected end|truncated/);
test('an entry count larger than the object', decodeRejects, rawTree([], { count: 1000 }), /entry count exceeds/);
test('version 2', decodeRejects, rawTree([], { version: 2 }), /unsupported tree version 2/);
test('a blob header', decodeRejects, Buffer.from('blob\0\x01\x00', 'latin1'), /not a tree object/);
test('a non-canonical entry count', decodeRejects, Buffer.from('747265650001' + '8000', 'hex'), /non-canonical varint/);
test('a non-canonical mode', decodeRejects, rawTree([{ name: 'a', body: '06' + 'a48300' + '00000000' + '00' + '00' }]), /non-canonical varint/);
test('a non-canonical mtime', decodeRejects, rawTree([{ name: 'a', body: '06a403' + '0000' + '8000' + '00' + '00' + '00' }]), /non-canonical varint/);
test('an overlapping hole list', decodeRejects, rawTree([{ name: 'f', type: 1, size: 100, holes: [[10, 20], [20, 10]] }]), /invalid hole list/);
test('adjacent holes (one hole written as two)', decodeRejects, rawTree([{ name: 'f', type: 1, size: 100, holes: [[10, 10], [20, 10]] }]), /invalid hole list/);
test('a zero-length hole', decodeRejects, rawTree([{ name: 'f', type: 1, size: 100, holes: [[10, 0]] }]), /invalid hole list/);
test('a hole beyond the size', decodeRejects, rawTree([{ name: 'f', type: 1, size: 100, holes: [[90, 20]] }]), /invalid hole list/);
test('unsorted xattrs', decodeRejects, rawTree([{ name: 'a', xattrs: [['user.b', '1'], ['user.a', '2']] }]), /xattrs not sorted or duplicated/);
test('an xattr name that is not UTF-8 (it would decode lossily)', decodeRejects, rawTree([{ name: 'a', body: '06a403000000000102' + '61ff' + '0100' + '00' }]), /invalid UTF-8/);
test('duplicate xattrs', decodeRejects, rawTree([{ name: 'a', xattrs: [['user.a', '1'], ['user.a', '2']] }]), /xattrs not sorted or duplicated/);

test('tree: decodeTree rejects every truncation of a valid encoding', (t) => {
  const enc = encodeTree(fixtureTree());
  for (let n = 0; n < enc.length; n++) {
    t.throws(() => decodeTree(enc.subarray(0, n)), { instanceOf: DecodeError }, `length ${n}`);
  }
});

test('tree: decodeTree never throws anything but DecodeError on corrupted bytes', (t) => {
  const enc = encodeTree(fixtureTree());
  let rng = 12345;
  const next = () => (rng = (rng * 1103515245 + 12345) & 0x7fffffff);
  for (let i = 0; i < 2000; i++) {
    const bad = Buffer.from(enc);
    bad[next() % bad.length] ^= 1 + (next() % 255);
    try {
      const tree = decodeTree(bad);
      // A flip that still decodes must re-encode to the same bytes (one encoding per tree).
      t.deepEqual(encodeTree(tree), bad);
    } catch (e) {
      if (!(e instanceof DecodeError)) t.fail(`flip ${i}: ${String(e)}`);
    }
  }
  t.pass();
});
