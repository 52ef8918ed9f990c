/**
 * Index segments (`index/<sha>.vix`): the byte layout pinned, round trips, and every kind of damage reported as a
 * RepositoryCorruptError naming the key and the offset of the fault, never as a crash.
 */
import test from 'ava';
import crypto from 'node:crypto';
import { RepositoryCorruptError } from '../../src/errors.js';
import { hashBytes } from '../../src/model/oid.js';
import { MemoryBackend } from '../../src/store/remote/memory-backend.js';
import { SegmentStore, decodeSegment, encodeSegment, segmentKey, type Segment } from '../../src/store/remote/segment.js';
import { tamperKey } from './remote-pack-helpers.js';

const P1 = '11'.repeat(32);
const P2 = '22'.repeat(32);
const R1 = '33'.repeat(32);
const KEY = 'index/test.vix';
const k = (kind: number, fill: number) => Buffer.concat([Buffer.from([kind]), Buffer.alloc(32, fill)]);

/** Two packs, four copies (one object in both packs), a retired pack, a tombstone: every section in use. */
function small(): Segment {
  return {
    packs: [{ id: P1, size: 200, class: 'data' }, { id: P2, size: 100, class: 'meta' }],
    entries: [
      { key: k(3, 0xcc), pack: P2, offset: 45, length: 20 },
      { key: k(1, 0xaa), pack: P1, offset: 86, length: 50 },
      { key: k(1, 0xaa), pack: P2, offset: 65, length: 10 },
      { key: k(2, 0xbb), pack: P1, offset: 136, length: 64 },
    ],
    retired: [R1],
    tombstones: [{ key: k(1, 0xaa), pack: P2 }],
  };
}

/** The small segment, field by field as docs/format.md lays it out. */
const PINNED = [
  '7669787365670001',                                                      // "vixseg" 0x00 0x01
  '00000002',                                                              // 2 packs
  `${P1}000000c800`, `${P2}0000006401`,                                    // sha, u32 size, class
  '00000004',                                                              // 4 entries, sorted by (key, pack#)
  `01${'aa'.repeat(32)}000000000000005600000032`,
  `01${'aa'.repeat(32)}00000001000000410000000a`,
  `02${'bb'.repeat(32)}000000000000008800000040`,
  `03${'cc'.repeat(32)}000000010000002d00000014`,
  `00000001${R1}`,                                                          // 1 retired pack
  `00000001` + `01${'aa'.repeat(32)}00000001`,                             // 1 tombstone: key, pack#
].join('');
const ENTRIES_AT = 8 + 4 + 2 * 37 + 4;

test('segment: the bytes of a small segment are pinned; its name is their sha256', (t) => {
  const bytes = encodeSegment(small());
  t.is(bytes.toString('hex'), PINNED);
  t.is(bytes.length, 347);
  t.is(hashBytes(bytes), '502a050f123d625dc49fd9ea575077447e97071f9675552ceffe39840d214643');
});

test('segment: decode(encode(s)) gives s back, sorted; the encoding does not depend on input order', (t) => {
  const seg = small();
  const back = decodeSegment(encodeSegment(seg), KEY);
  t.deepEqual(back.packs, seg.packs);
  t.deepEqual(back.entries, [seg.entries[1], seg.entries[2], seg.entries[3], seg.entries[0]]);
  t.deepEqual(back.retired, [R1]);
  t.deepEqual(back.tombstones, seg.tombstones);
  const shuffled = { ...seg, entries: [...seg.entries].reverse(), retired: [R1, R1] };
  t.deepEqual(encodeSegment(shuffled), encodeSegment(seg));
  const empty = { packs: [], entries: [], retired: [], tombstones: [] };
  t.deepEqual(decodeSegment(encodeSegment(empty), KEY), empty);
  t.is(encodeSegment(empty).toString('hex'), `7669787365670001${'00000000'.repeat(4)}`);
});

test('segment: a large random segment round-trips', (t) => {
  const packs = Array.from({ length: 50 }, (_, i) => ({ id: hashBytes(Buffer.from([i])), size: 1 << 20, class: i % 2 ? 'meta' as const : 'data' as const }));
  const entries = Array.from({ length: 5000 }, (_, i) => ({
    key: Buffer.concat([Buffer.from([1 + (i % 5)]), crypto.randomBytes(32)]), pack: packs[i % 50]!.id, offset: i, length: 100,
  }));
  const tombstones = entries.slice(0, 300).map((e) => ({ key: e.key, pack: e.pack }));
  const seg = { packs, entries, retired: packs.slice(0, 3).map((p) => p.id).sort(), tombstones };
  const back = decodeSegment(encodeSegment(seg), KEY);
  const order = (a: { key: Buffer }, b: { key: Buffer }) => Buffer.compare(a.key, b.key);
  t.deepEqual(back.entries, [...entries].sort(order));
  t.deepEqual(back.tombstones, [...tombstones].sort(order));
  t.deepEqual(back.packs, packs);
  t.deepEqual(back.retired, seg.retired);
});

test('segment: the encoder refuses what the layout cannot say', (t) => {
  const bad: Array<[string, (s: Segment) => void]> = [
    ['a pack not listed', (s) => { s.entries[0]!.pack = R1; }],
    ['a tombstone of a pack not listed', (s) => { s.tombstones[0]!.pack = R1; }],
    ['a pack listed twice', (s) => { s.packs.push({ ...s.packs[0]! }); }],
    ['a short key', (s) => { s.entries[0]!.key = Buffer.alloc(32, 1); }],
    ['an unknown object kind', (s) => { s.entries[0]!.key = k(9, 1); }],
    ['a copy outside its pack', (s) => { s.entries[0]!.length = 1000; }],
    ['the same copy twice', (s) => { s.entries.push({ ...s.entries[0]! }); }],
    ['an offset beyond u32', (s) => { s.entries[0]!.offset = 2 ** 32; }],
    ['a bad pack id', (s) => { s.retired.push('xyz'); }],
  ];
  for (const [what, damage] of bad) {
    const s = small();
    damage(s);
    t.throws(() => encodeSegment(s), { instanceOf: RangeError }, what);
  }
});

/** Decoding `bytes` fails with a RepositoryCorruptError naming KEY and `offset` (and the reason matching `why`). */
function faultAt(t: import('ava').ExecutionContext, bytes: Buffer, offset: number, why: RegExp, what: string): void {
  const e = t.throws(() => decodeSegment(bytes, KEY), { instanceOf: RepositoryCorruptError }, what);
  t.is(e?.data.key, KEY, what);
  t.is(e?.data.offset, offset, `${what}: ${e?.message}`);
  t.regex(e?.message ?? '', new RegExp(`^index segment '${KEY}' is damaged at offset ${offset}: `), what);
  t.regex(e?.message ?? '', why, what);
}

test('segment: truncation at every offset is a RepositoryCorruptError at the field that does not fit', (t) => {
  const bytes = encodeSegment(small());
  for (let len = 0; len < bytes.length; len++) {
    const e = t.throws(() => decodeSegment(bytes.subarray(0, len), KEY), { instanceOf: RepositoryCorruptError }, `cut at ${len}`);
    const offset = e?.data.offset as number;
    t.true(Number.isInteger(offset) && offset <= len, `cut at ${len}: offset ${offset}`);
    t.regex(e?.message ?? '', /truncated|need \d+ bytes/, `cut at ${len}`);
  }
  faultAt(t, bytes.subarray(0, 5), 0, /truncated: the header needs 8 bytes, 5 left/, 'inside the magic');
  faultAt(t, bytes.subarray(0, ENTRIES_AT + 45 + 10), ENTRIES_AT - 4, /4 entries need 180 bytes, 55 left/, 'inside the entries');
  faultAt(t, bytes.subarray(0, bytes.length - 1), bytes.length - 41, /1 tombstones need 37 bytes, 36 left/, 'inside the last tombstone');
});

test('segment: each kind of damage names its offset', (t) => {
  const at = (damage: (b: Buffer) => Buffer | void): Buffer => {
    const b = Buffer.from(encodeSegment(small()));
    return damage(b) ?? b;
  };
  faultAt(t, at((b) => { b[0] = 0x56; }), 0, /bad magic/, 'bad magic');
  faultAt(t, Buffer.from('not a segment at all'), 0, /bad magic/, 'something else');
  faultAt(t, at((b) => { b.writeUInt16BE(2, 6); }), 6, /unsupported segment version 2/, 'version');
  faultAt(t, at((b) => { b.writeUInt32BE(0xffffffff, 8); }), 8, /4294967295 packs need/, 'pack count');
  faultAt(t, at((b) => { b[12 + 36] = 2; }), 48, /pack 0 has unknown class 2/, 'pack class');
  faultAt(t, at((b) => { b.fill(0x11, 49, 81); }), 49, /is listed twice/, 'duplicate pack');
  faultAt(t, at((b) => { b.writeUInt32BE(0xffffffff, ENTRIES_AT - 4); }), ENTRIES_AT - 4, /4294967295 entries need/, 'entry count');
  faultAt(t, at((b) => { b[ENTRIES_AT] = 9; }), ENTRIES_AT, /entry 0 has unknown object kind 9/, 'object kind');
  faultAt(t, at((b) => { b.writeUInt32BE(2, ENTRIES_AT + 33); }), ENTRIES_AT + 33, /entry 0 names pack 2, but the segment lists 2/, 'entry pack# out of range');
  faultAt(t, at((b) => { b.writeUInt32BE(0x7fffffff, ENTRIES_AT + 45 + 37); }), ENTRIES_AT + 45 + 37, /entry 1 \(65\+10\) lies outside pack 1|entry 1 .* lies outside pack 1/, 'entry outside its pack');
  faultAt(t, at((b) => {
    const first = Buffer.from(b.subarray(ENTRIES_AT, ENTRIES_AT + 45));
    b.copy(b, ENTRIES_AT, ENTRIES_AT + 90, ENTRIES_AT + 135);
    first.copy(b, ENTRIES_AT + 90);
  }), ENTRIES_AT + 45, /entry 1 is not sorted after entry 0/, 'unsorted keys');
  faultAt(t, at((b) => { b.copy(b, ENTRIES_AT + 45, ENTRIES_AT, ENTRIES_AT + 45); }), ENTRIES_AT + 45, /entry 1 is not sorted after entry 0/, 'the same copy twice');
  faultAt(t, at((b) => { b.writeUInt32BE(5, b.length - 4); }), 343, /tombstone 0 names pack 5, but the segment lists 2/, 'tombstone pack# out of range');
  faultAt(t, at((b) => Buffer.concat([b, Buffer.from([0])])), 347, /1 bytes follow the tombstones/, 'trailing bytes');
  const twoRetired = encodeSegment({ ...small(), retired: [R1, '44'.repeat(32)] });
  const swapped = Buffer.from(twoRetired);
  const r = 8 + 4 + 74 + 4 + 180 + 4;
  twoRetired.copy(swapped, r, r + 32, r + 64);
  twoRetired.copy(swapped, r + 32, r, r + 32);
  faultAt(t, swapped, r + 32, /retired pack 1 is not sorted after retired pack 0/, 'unsorted retired packs');
});

test('segment: random damage is either a valid segment or a RepositoryCorruptError, never a crash', (t) => {
  const bytes = encodeSegment(small());
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.from(bytes);
    for (let j = 0; j < 1 + (i % 4); j++) b[crypto.randomInt(b.length)] = crypto.randomInt(256);
    try {
      decodeSegment(b, KEY);
    } catch (e) {
      if (!(e instanceof RepositoryCorruptError)) return t.fail(`${(e as Error).name}: ${(e as Error).message} for ${b.toString('hex')}`);
      t.is(typeof e.data.offset, 'number');
      refused++;
    }
  }
  t.true(refused > 1000, `${refused} refused`);
});

test('segment store: put names a segment by its sha256; get checks and decodes it; list finds it', async (t) => {
  const backend = new MemoryBackend('memory://segments');
  const store = new SegmentStore(backend);
  const sha = await store.putSegment(small());
  t.is(sha, '502a050f123d625dc49fd9ea575077447e97071f9675552ceffe39840d214643');
  t.deepEqual((await backend.get(segmentKey(sha)))?.body.toString('hex'), PINNED);
  t.deepEqual(await store.getSegment(sha), decodeSegment(Buffer.from(PINNED, 'hex'), KEY));
  t.is(await store.putSegment(small()), sha, 'the same segment again: the same name');
  await backend.put('index/README', Buffer.from('not a segment'));
  await backend.put(`index/${'ab'.repeat(32)}.vix.tmp`, Buffer.from('x'));
  const listed = [];
  for await (const s of store.listSegments()) listed.push(s);
  t.deepEqual(listed.map((s) => [s.sha, s.size]), [[sha, 347]]);
  t.is(await store.getSegment('ab'.repeat(32)), undefined);
});

test('segment store: a tampered segment, or one that does not decode, is a RepositoryCorruptError naming its key', async (t) => {
  const backend = new MemoryBackend('memory://segments');
  const store = new SegmentStore(backend);
  const sha = await store.putSegment(small());
  await tamperKey(backend, segmentKey(sha));
  const e = await t.throwsAsync(store.getSegment(sha), { instanceOf: RepositoryCorruptError });
  t.is(e?.message, `index segment 'index/${sha}.vix' does not match its name (repository damaged: run 'viva fsck')`);
  const garbage = Buffer.from('vixseg\x00\x01\x00\x00\x00\x09', 'latin1');
  const name = hashBytes(garbage);
  await backend.put(segmentKey(name), garbage);
  const d = await t.throwsAsync(store.getSegment(name), { instanceOf: RepositoryCorruptError });
  t.is(d?.data.key, `index/${name}.vix`);
  t.is(d?.data.offset, 8);
});
