/** Tests of blob records: inline and chunked forms, zero segments, strict decoding and pinned encodings. */
import test from 'ava';
import { DecodeError, Encoder } from '../../src/model/codec.js';
import {
  BLOB_CHUNKED, BLOB_INLINE, BLOB_VERSION, ChunkedBlobBuilder, SEG_CHUNK, SEG_ZERO, decodeBlob, encodeBlob, type BlobRecord, type Segment,
} from '../../src/model/blob.js';

const C1 = '01'.repeat(32);
const C2 = '02'.repeat(32);

test('blob: form and segment codes are frozen', (t) => {
  t.deepEqual([BLOB_VERSION, BLOB_INLINE, BLOB_CHUNKED, SEG_CHUNK, SEG_ZERO], [1, 0, 1, 0, 1]);
});

const roundTrip = test.macro({
  exec(t, rec: BlobRecord) {
    const enc = encodeBlob(rec);
    const back = decodeBlob(enc);
    t.deepEqual(back, rec);
    t.deepEqual(encodeBlob(back), enc);
  },
  title: (title) => `blob: round trips ${title}`,
});

test('an empty inline blob', roundTrip, { form: 'inline', size: 0, data: Buffer.alloc(0) });
test('a small inline blob', roundTrip, { form: 'inline', size: 6, data: Buffer.from('hello\n') });
test('an inline blob of 300 bytes (two-byte size)', roundTrip, { form: 'inline', size: 300, data: Buffer.alloc(300, 7) });
test('a chunked blob', roundTrip, { form: 'chunked', size: 300_000, segments: [{ kind: 'chunk', oid: C1, length: 100_000 }, { kind: 'chunk', oid: C2, length: 200_000 }] });
test('a chunked blob with holes', roundTrip, {
  form: 'chunked', size: 2 ** 40,
  segments: [{ kind: 'zero', length: 2 ** 39 }, { kind: 'chunk', oid: C1, length: 8192 }, { kind: 'zero', length: 2 ** 39 - 8192 }],
});
test('an all-hole blob', roundTrip, { form: 'chunked', size: 1 << 30, segments: [{ kind: 'zero', length: 1 << 30 }] });

test('blob: known answer: pinned encodings of both forms', (t) => {
  t.is(encodeBlob({ form: 'inline', size: 6, data: Buffer.from('hello\n') }).toString('hex'), '626c6f620001' + '06' + '00' + '68656c6c6f0a');
  t.is(
    encodeBlob({ form: 'chunked', size: 20000, segments: [{ kind: 'zero', length: 4096 }, { kind: 'chunk', oid: C1, length: 15904 }] }).toString('hex'),
    '626c6f620001' + 'a09c01' + '01' + '02' + '01' + '8020' + '00' + C1 + 'a07c',
  );
});

test('blob: encodeBlob refuses sizes that do not match', (t) => {
  t.throws(() => encodeBlob({ form: 'inline', size: 5, data: Buffer.from('hello\n') }), { message: /inline blob size mismatch/ });
  t.throws(() => encodeBlob({ form: 'chunked', size: 10, segments: [{ kind: 'zero', length: 9 }] }), { message: /chunked blob size mismatch/ });
});

function raw(hex: string): Buffer {
  return Buffer.from('626c6f620001' + hex, 'hex');
}

const decodeRejects = test.macro({
  exec(t, buf: Buffer, message: RegExp) {
    const err = t.throws(() => decodeBlob(buf), { instanceOf: DecodeError });
    t.regex(err?.message ?? '', message);
  },
  title: (title) => `blob: decodeBlob rejects ${title}`,
});

test('an inline blob longer than its size', decodeRejects, raw('02' + '00' + '616263'), /inline blob size mismatch/);
test('an inline blob shorter than its size', decodeRejects, raw('04' + '00' + '616263'), /inline blob size mismatch/);
test('an unknown form', decodeRejects, raw('00' + '02'), /unknown blob form 2/);
test('an unknown segment kind', decodeRejects, raw('05' + '01' + '01' + '02' + '05'), /unknown segment kind 2/);
test('segments that do not add up', decodeRejects, raw('06' + '01' + '01' + '01' + '05'), /do not add up/);
test('trailing bytes after the segments', decodeRejects, raw('05' + '01' + '01' + '01' + '05' + '00'), /trailing bytes/);
test('a segment count larger than the object', decodeRejects, raw('00' + '01' + 'e807'), /segment count exceeds/);
test('a non-canonical size', decodeRejects, raw('8500' + '01' + '01' + '01' + '05'), /non-canonical varint/);
test('a tree header', decodeRejects, Buffer.from('747265650001' + '00', 'hex'), /not a blob object/);
test('a future version', decodeRejects, Buffer.from('626c6f620002' + '0000', 'hex'), /unsupported blob version 2/);

test('blob: decodeBlob rejects every truncation of a chunked record', (t) => {
  const enc = encodeBlob({ form: 'chunked', size: 300_000, segments: [{ kind: 'chunk', oid: C1, length: 100_000 }, { kind: 'zero', length: 1 }, { kind: 'chunk', oid: C2, length: 199_999 }] });
  for (let n = 0; n < enc.length; n++) t.throws(() => decodeBlob(enc.subarray(0, n)), { instanceOf: DecodeError }, `length ${n}`);
});

test('blob: the hand-written encoding matches encodeBlob', (t) => {
  const e = new Encoder().raw(Buffer.from('blob\0', 'latin1')).u8(1).uint(5).u8(1).uint(1).u8(1).uint(5);
  t.deepEqual(e.finish(), encodeBlob({ form: 'chunked', size: 5, segments: [{ kind: 'zero', length: 5 }] }));
});

test('blob: ChunkedBlobBuilder writes encodeBlob\'s bytes over many blocks of segments', (t) => {
  // 5000 segments (≈ 190 KB of segment list) span several of the builder's 64 KiB blocks; lengths of 1 to 4 varint bytes.
  const segments: Segment[] = [];
  let size = 0;
  for (let i = 0; i < 5000; i++) {
    const length = [1, 200, 70_000, 3_000_000][i % 4]! + i;
    segments.push(i % 7 === 3 ? { kind: 'zero', length } : { kind: 'chunk', oid: (i % 256).toString(16).padStart(2, '0').repeat(32), length });
    size += length;
  }
  // The record written out by hand, field by field.
  const e = new Encoder().raw(Buffer.from('blob\0', 'latin1')).u8(1).uint(size).u8(1).uint(segments.length);
  for (const s of segments) {
    if (s.kind === 'chunk') e.u8(0).raw(Buffer.from(s.oid, 'hex')).uint(s.length);
    else e.u8(1).uint(s.length);
  }
  const b = new ChunkedBlobBuilder();
  for (const s of segments) {
    if (s.kind === 'chunk') b.chunk(s.oid, s.length);
    else b.zero(s.length);
  }
  const rec = b.finish(size);
  t.deepEqual(rec, e.finish());
  t.deepEqual(encodeBlob({ form: 'chunked', size, segments }), rec);
  t.deepEqual(decodeBlob(rec), { form: 'chunked', size, segments });
});

test('blob: ChunkedBlobBuilder refuses an id that is not 64 hex digits, and a size its segments do not add up to', (t) => {
  const b = new ChunkedBlobBuilder();
  t.throws(() => b.chunk('ab'.repeat(31), 5), { instanceOf: RangeError });
  t.throws(() => b.chunk('zz'.repeat(32), 5), { instanceOf: RangeError });
  b.chunk(C1, 5);
  t.throws(() => b.finish(6), { message: /chunked blob size mismatch/ });
  t.is(b.finish(5).length, 6 + 1 + 1 + 1 + 1 + 32 + 1);
});
