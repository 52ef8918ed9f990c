/** Tests of commit objects: round trips, canonical label order, strict decoding, author parsing and pinned ids. */
import test from 'ava';
import crypto from 'node:crypto';
import { DecodeError, Encoder } from '../../src/model/codec.js';
import {
  COMMIT_VERSION, MAX_COMMIT_TIME, MIN_COMMIT_TIME, ROOT_KIND_CODES, decodeCommit, encodeCommit, hashCommit, parseAuthor,
  parseCommitTime, type Commit,
} from '../../src/model/commit.js';
import { InvalidTimeError } from '../../src/errors.js';
import { isoDate } from '../../src/ops/log.js';

const TREE = '99fc7f0bd7657839d39d902f24699b488c1b5d353b0ebed5e2ff4605dbe48a73';
const P1 = 'aa'.repeat(32);
const P2 = 'bb'.repeat(32);

function fixture(extra: Partial<Commit> = {}): Commit {
  return {
    rootKind: 'tree', root: TREE, parents: [], author: 'Viva Test <test@example.org>', time: 1_700_000_000, tzOffset: 60,
    message: 'base image\n\nwith a body', labels: [], source: { format: 'dir' }, ...extra,
  };
}

test('commit: root kind codes are frozen', (t) => {
  t.deepEqual({ ...ROOT_KIND_CODES }, { tree: 1, disk: 2 });
  t.is(COMMIT_VERSION, 1);
});

const roundTrip = test.macro({
  exec(t, c: Commit) {
    const enc = encodeCommit(c);
    const back = decodeCommit(enc);
    t.deepEqual(back, c);
    t.deepEqual(encodeCommit(back), enc);
  },
  title: (title) => `commit: round trips ${title}`,
});

test('a minimal commit', roundTrip, fixture());
test('a commit with two parents', roundTrip, fixture({ parents: [P1, P2] }));
test('a disk root', roundTrip, fixture({ rootKind: 'disk' }));
test('labels, source, root metadata and a derivation', roundTrip, fixture({
  parents: [P1],
  labels: [['arch', 'amd64'], ['distro', 'debian'], ['ünïcode', '✓']],
  source: { format: 'tar+zstd', size: 123456789, name: 'rootfs.tar.zst' },
  rootMeta: { mode: 0o1755, uid: 0, gid: 0, mtimeNs: -5n, xattrs: [{ name: 'security.selinux', value: Buffer.from('x') }, { name: 'user.a', value: Buffer.from([0, 1]) }] },
  derivation: Buffer.from('opaque'),
}));
test('omitted source paths (not UTF-8 too)', roundTrip, fixture({ source: { format: 'dir', name: 'src', omitted: [Buffer.from('private'), Buffer.from([0x66, 0xff])] } }));
test('negative time and timezone', roundTrip, fixture({ time: -86_400, tzOffset: -330 }));
test('an empty message and a unicode author', roundTrip, fixture({ message: '', author: 'Zoë Ünicode <zoe@exämple.org>' }));

test('commit: labels are encoded in key order whatever the input order', (t) => {
  const a = encodeCommit(fixture({ labels: [['b', '2'], ['a', '1'], ['c', '3']] }));
  const b = encodeCommit(fixture({ labels: [['c', '3'], ['a', '1'], ['b', '2']] }));
  t.deepEqual(a, b);
  t.deepEqual(decodeCommit(a).labels, [['a', '1'], ['b', '2'], ['c', '3']]);
});

test('commit: root xattrs are encoded in name order whatever the input order', (t) => {
  const meta = (names: string[]) => ({ mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, xattrs: names.map((name) => ({ name, value: Buffer.from(name) })) });
  t.deepEqual(encodeCommit(fixture({ rootMeta: meta(['user.b', 'user.a']) })), encodeCommit(fixture({ rootMeta: meta(['user.a', 'user.b']) })));
});

test('commit: encodeCommit refuses duplicate label keys', (t) => {
  t.throws(() => encodeCommit(fixture({ labels: [['a', '1'], ['a', '2']] })), { message: /duplicate label 'a'/ });
});

test('commit: encodeCommit refuses times it could not show again (fractions, beyond year 9999, NaN)', (t) => {
  for (const time of [1.5, 1e20, MAX_COMMIT_TIME + 1, MIN_COMMIT_TIME - 1, Number.NaN, Infinity]) {
    t.throws(() => encodeCommit(fixture({ time })), { instanceOf: InvalidTimeError, code: 'ERR_INVALID_TIME' }, String(time));
  }
  for (const tzOffset of [0.5, 24 * 60 + 1, Number.NaN]) {
    t.throws(() => encodeCommit(fixture({ tzOffset })), { instanceOf: InvalidTimeError }, String(tzOffset));
  }
  // The limits themselves round-trip and display with four-digit years.
  for (const time of [MIN_COMMIT_TIME, 0, MAX_COMMIT_TIME]) {
    const c = decodeCommit(encodeCommit(fixture({ time, tzOffset: 0 })));
    t.is(c.time, time);
    t.regex(isoDate(c.time, 0), /^\d{4}-\d{2}-\d{2}T/);
  }
  t.is(isoDate(MAX_COMMIT_TIME, 0), '9999-12-31T23:59:59+00:00');
});

test('commit: parseCommitTime takes whole decimal seconds only', (t) => {
  t.is(parseCommitTime('1700000000'), 1_700_000_000);
  t.is(parseCommitTime('-86400'), -86_400);
  t.is(parseCommitTime('0'), 0);
  t.is(parseCommitTime(String(MAX_COMMIT_TIME)), MAX_COMMIT_TIME);
  for (const s of ['abc', '1.5', '1e20', '', ' 1', '0x10', '+5', String(MAX_COMMIT_TIME + 1), '9'.repeat(40)]) {
    t.throws(() => parseCommitTime(s, 'VIVA_DATE'), { instanceOf: InvalidTimeError, message: new RegExp(`^VIVA_DATE '${s.replace(/[.+]/g, '\\$&')}' is not a valid time: `) }, s);
  }
});

test('log: isoDate of a time no Date holds (written by an older viva) is @SECONDS, not a crash', (t) => {
  t.is(isoDate(1e20, 0), '@100000000000000000000');
});

test('commit: an absent source size and name are the same as 0 and the empty string', (t) => {
  t.deepEqual(encodeCommit(fixture({ source: { format: 'dir', size: 0, name: '' } })), encodeCommit(fixture()));
  t.deepEqual(decodeCommit(encodeCommit(fixture({ source: { format: 'dir', size: 0, name: '' } }))).source, { format: 'dir' });
});

test('commit: known answer: a fixed commit has a pinned encoding and id', (t) => {
  const c = fixture({
    parents: [P1], labels: [['arch', 'amd64']], source: { format: 'dir', size: 6, name: 'rootfs' },
    rootMeta: { mode: 0o755, uid: 0, gid: 0, mtimeNs: 1_000_000_000_000_000_000n, xattrs: [] },
  });
  const enc = encodeCommit(c);
  t.is(
    enc.toString('hex'),
    '636f6d6d69740001' // 'commit' NUL version 1
      + '01' + TREE // root kind tree + id
      + '01' + P1 // one parent
      + '1c' + Buffer.from('Viva Test <test@example.org>').toString('hex')
      + '80c49fd50c' // time 1700000000, zigzag
      + '78' // tz +60 minutes, zigzag 120
      + '17' + Buffer.from('base image\n\nwith a body').toString('hex')
      + '01' + '0461726368' + '05616d643634' // labels
      + '03646972' + '06' + '06726f6f746673' + '00' // source format, size, name, no backing files
      + '01' + 'ed03' + '00' + '00' + '8080a0f6f4acdbe01b' + '00' // root meta
      + '00', // no derivation
  );
  t.is(hashCommit(enc), crypto.createHash('sha256').update(enc).digest('hex'));
  t.is(hashCommit(enc), 'ad4de0e02d48156a99875e2144b4d63e41bc849aef416bac65e80d87b65f7fef');
});

// --- Malformed input ---

interface RawCommit {
  kind?: number;
  parents?: number;
  labels?: Array<[string, string]>;
  metaFlag?: number;
  metaMode?: number;
  metaXattrs?: string[];
  trailer?: string;
}

/** The commit format written out field by field, without the encoder's checks. */
function rawCommit(r: RawCommit = {}): Buffer {
  const e = new Encoder().raw(Buffer.from('commit\0', 'latin1')).u8(1).u8(r.kind ?? 1).raw(Buffer.from(TREE, 'hex'));
  e.uint(r.parents ?? 0);
  for (let i = 0; i < (r.parents ?? 0); i++) e.raw(Buffer.from(P1, 'hex'));
  e.str('A <a@b>').sbig(0n).sbig(0n).str('m');
  e.uint(r.labels?.length ?? 0);
  for (const [k, v] of r.labels ?? []) e.str(k).str(v);
  e.str('dir').uint(0).str('').uint(0);
  e.u8(r.metaFlag ?? 0);
  if (r.metaFlag === 1) {
    e.uint(r.metaMode ?? 0o755).uint(0).uint(0).sbig(0n).uint(r.metaXattrs?.length ?? 0);
    for (const x of r.metaXattrs ?? []) e.str(x).bytes(Buffer.alloc(0));
  }
  e.bytes(Buffer.alloc(0));
  if (r.trailer) e.raw(Buffer.from(r.trailer, 'hex'));
  return e.finish();
}

test('commit: the hand-written encoder agrees with encodeCommit', (t) => {
  const c: Commit = { rootKind: 'tree', root: TREE, parents: [P1], author: 'A <a@b>', time: 0, tzOffset: 0, message: 'm', labels: [['a', '1']], source: { format: 'dir' } };
  t.deepEqual(rawCommit({ parents: 1, labels: [['a', '1']] }), encodeCommit(c));
  t.deepEqual(decodeCommit(rawCommit({ metaFlag: 1, metaXattrs: ['user.a', 'user.b'] })).rootMeta?.xattrs.map((x) => x.name), ['user.a', 'user.b']);
});

const decodeRejects = test.macro({
  exec(t, buf: Buffer, message: RegExp) {
    const err = t.throws(() => decodeCommit(buf), { instanceOf: DecodeError });
    t.regex(err?.message ?? '', message);
  },
  title: (title) => `commit: decodeCommit rejects ${title}`,
});

test('root kind 0', decodeRejects, rawCommit({ kind: 0 }), /unknown root kind 0/);
test('root kind 3', decodeRejects, rawCommit({ kind: 3 }), /unknown root kind 3/);
test('more than 1024 parents', decodeRejects, rawCommit({ parents: 1025 }), /too many parents/);
test('trailing bytes', decodeRejects, rawCommit({ trailer: '00' }), /unknown trailing section/);
test('trailing bytes after the omitted section', decodeRejects, rawCommit({ trailer: '0101017800' }), /trailing bytes/);
test('a bad root metadata flag', decodeRejects, rawCommit({ metaFlag: 2 }), /bad root metadata flag/);
test('unsorted labels', decodeRejects, rawCommit({ labels: [['b', '1'], ['a', '2']] }), /labels not sorted or duplicated/);
test('duplicate labels', decodeRejects, rawCommit({ labels: [['a', '1'], ['a', '2']] }), /labels not sorted or duplicated/);
test('a root mode above 07777', decodeRejects, rawCommit({ metaFlag: 1, metaMode: 0o40755 }), /mode out of range/);
test('unsorted root xattrs', decodeRejects, rawCommit({ metaFlag: 1, metaXattrs: ['user.b', 'user.a'] }), /xattrs not sorted or duplicated/);
test('a tree object', decodeRejects, Buffer.from('747265650001' + '00', 'hex'), /not a commit object/);

test('commit: decodeCommit rejects every truncation of a valid encoding', (t) => {
  const enc = encodeCommit(fixture({
    parents: [P1, P2], labels: [['k', 'v']], source: { format: 'tar', size: 99, name: 'x.tar' },
    rootMeta: { mode: 0o755, uid: 1, gid: 2, mtimeNs: 3n, xattrs: [{ name: 'user.x', value: Buffer.from('y') }] }, derivation: Buffer.from('d'),
  }));
  for (let n = 0; n < enc.length; n++) t.throws(() => decodeCommit(enc.subarray(0, n)), { instanceOf: DecodeError }, `length ${n}`);
});

test('commit: a corrupted byte either fails to decode or re-encodes to the same bytes', (t) => {
  const enc = encodeCommit(fixture({
    parents: [P1], labels: [['a', 'b'], ['c', 'd']], source: { format: 'tar', size: 99, name: 'x.tar' },
    rootMeta: { mode: 0o755, uid: 1, gid: 2, mtimeNs: 3n, xattrs: [{ name: 'user.x', value: Buffer.from('y') }, { name: 'user.y', value: Buffer.from('z') }] },
  }));
  let rng = 99;
  const next = () => (rng = (rng * 1103515245 + 12345) & 0x7fffffff);
  for (let i = 0; i < 2000; i++) {
    const bad = Buffer.from(enc);
    bad[next() % bad.length] ^= 1 + (next() % 255);
    let c: Commit;
    try {
      c = decodeCommit(bad);
    } catch (e) {
      if (!(e instanceof DecodeError)) t.fail(`flip ${i}: ${String(e)}`);
      continue;
    }
    t.deepEqual(encodeCommit(c), bad, `flip ${i}`);
  }
  t.pass();
});

test('commit: parseAuthor', (t) => {
  const table: Array<[string, { name: string; email: string } | undefined]> = [
    ['Viva Test <test@example.org>', { name: 'Viva Test', email: 'test@example.org' }],
    ['  spaced   <a@b>  ', { name: 'spaced', email: 'a@b' }],
    ['<only@email>', { name: '', email: 'only@email' }],
    ['Zoë <zoë@exämple.org>', { name: 'Zoë', email: 'zoë@exämple.org' }],
    ['no email', undefined],
    ['a <b> c', undefined],
    ['a <b <c>>', undefined],
    ['a\nb <c@d>', undefined],
    ['', undefined],
  ];
  for (const [s, want] of table) t.deepEqual(parseAuthor(s), want, JSON.stringify(s));
});

test('commit: the omitted section is trailing and optional: a commit without one encodes as before; an unknown tag or an empty list is refused', (t) => {
  const plain = encodeCommit(fixture());
  const withOmitted = encodeCommit(fixture({ source: { format: 'dir', omitted: [Buffer.from('x')] } }));
  t.deepEqual(withOmitted.subarray(0, plain.length), plain);
  t.deepEqual(withOmitted.subarray(plain.length), Buffer.from([1, 1, 1, 0x78]));
  t.throws(() => decodeCommit(Buffer.concat([plain, Buffer.from([2, 1, 1, 0x78])])), { instanceOf: DecodeError, message: /unknown trailing section/ });
  t.throws(() => decodeCommit(Buffer.concat([plain, Buffer.from([1, 0])])), { instanceOf: DecodeError, message: /empty omitted list/ });
});
