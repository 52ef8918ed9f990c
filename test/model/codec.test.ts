/** Tests of the canonical encoding primitives: varints, zigzag bigints, length-prefixed bytes, object headers. */
import test from 'ava';
import { Decoder, DecodeError, Encoder, decodeHeader, encodeHeader } from '../../src/model/codec.js';

const uintRoundTrip = test.macro({
  exec(t, v: number, hex: string) {
    const enc = new Encoder().uint(v).finish();
    t.is(enc.toString('hex'), hex);
    const d = new Decoder(enc);
    t.is(d.uint(), v);
    t.true(d.done);
  },
  title: (_p, v: number) => `codec: uint ${v} round trips with its LEB128 bytes`,
});

test(uintRoundTrip, 0, '00');
test(uintRoundTrip, 1, '01');
test(uintRoundTrip, 127, '7f');
test(uintRoundTrip, 128, '8001');
test(uintRoundTrip, 300, 'ac02');
test(uintRoundTrip, 16383, 'ff7f');
test(uintRoundTrip, 16384, '808001');
test(uintRoundTrip, 2 ** 32, '8080808010');
test(uintRoundTrip, Number.MAX_SAFE_INTEGER, 'ffffffffffffff0f');

const sbigRoundTrip = test.macro({
  exec(t, v: bigint, hex: string) {
    const enc = new Encoder().sbig(v).finish();
    t.is(enc.toString('hex'), hex);
    const d = new Decoder(enc);
    t.is(d.sbig(), v);
    t.true(d.done);
  },
  title: (_p, v: bigint) => `codec: sbig ${v} round trips with its zigzag LEB128 bytes`,
});

test(sbigRoundTrip, 0n, '00');
test(sbigRoundTrip, -1n, '01');
test(sbigRoundTrip, 1n, '02');
test(sbigRoundTrip, -64n, '7f');
test(sbigRoundTrip, 64n, '8001');
test(sbigRoundTrip, 1_700_000_000_123_456_789n, 'aab4aed8c7bfce972f');
test(sbigRoundTrip, -1_000_000_000_000_000_000n, 'ffff9ff6f4acdbe01b');
test(sbigRoundTrip, 2n ** 63n - 1n, 'feffffffffffffffff01');
test(sbigRoundTrip, -(2n ** 63n), 'ffffffffffffffffff01');

test('codec: bytes, str, u8 and raw round trip in sequence', (t) => {
  const name = Buffer.from([0xff, 0x00, 0x2f, 0x41]);
  const enc = new Encoder().u8(7).bytes(name).str('héllo').raw(Buffer.from('xyz')).bytes(Buffer.alloc(0)).finish();
  const d = new Decoder(enc);
  t.is(d.u8(), 7);
  t.deepEqual(d.bytes(), name);
  t.is(d.str(), 'héllo');
  t.deepEqual(d.raw(3), Buffer.from('xyz'));
  t.deepEqual(d.bytes(), Buffer.alloc(0));
  t.notThrows(() => d.expectEnd());
});

test('codec: the encoder grows past its initial buffer', (t) => {
  const big = Buffer.alloc(100_000, 0xab);
  const e = new Encoder();
  for (let i = 0; i < 1000; i++) e.uint(i);
  e.bytes(big);
  const d = new Decoder(e.finish());
  for (let i = 0; i < 1000; i++) t.is(d.uint(), i);
  t.deepEqual(d.bytes(), big);
  t.true(d.done);
});

test('codec: decoding from a subarray with a non-zero byte offset reads the right bytes', (t) => {
  const enc = new Encoder().str('abc').uint(300).finish();
  const padded = Buffer.concat([Buffer.from('junk'), enc]);
  const d = new Decoder(padded.subarray(4));
  t.is(d.str(), 'abc');
  t.is(d.uint(), 300);
  t.true(d.done);
});

test('codec: uint refuses negative, fractional and unsafe values', (t) => {
  for (const v of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN, Infinity]) {
    t.throws(() => new Encoder().uint(v), { instanceOf: RangeError }, String(v));
  }
});

const rejects = test.macro({
  exec(t, hex: string, read: (d: Decoder) => unknown, message: RegExp) {
    const err = t.throws(() => read(new Decoder(Buffer.from(hex, 'hex'))), { instanceOf: DecodeError });
    t.regex(err?.message ?? '', message);
  },
  title: (title) => `codec: rejects ${title}`,
});

test('a non-canonical uint (trailing zero group)', rejects, '8000', (d) => d.uint(), /non-canonical varint/);
test('a non-canonical uint of 3 bytes', rejects, '818000', (d) => d.uint(), /non-canonical varint/);
test('a non-canonical sbig', rejects, '8200', (d) => d.sbig(), /non-canonical varint/);
test('a truncated uint', rejects, '8080', (d) => d.uint(), /unexpected end/);
test('an empty uint', rejects, '', (d) => d.uint(), /unexpected end/);
test('a truncated sbig', rejects, 'ff', (d) => d.sbig(), /unexpected end/);
test('a uint longer than 8 bytes', rejects, '808080808080808001', (d) => d.uint(), /out of range/);
test('a uint above 2^53', rejects, 'ffffffffffffff7f', (d) => d.uint(), /out of range/);
test('an sbig longer than 12 bytes', rejects, '80'.repeat(12) + '01', (d) => d.sbig(), /out of range/);
test('bytes longer than the buffer', rejects, '05616263', (d) => d.bytes(), /truncated/);
test('a raw read past the end', rejects, '0102', (d) => d.raw(3), /truncated/);
test('a string that is not valid UTF-8', rejects, '0261ff', (d) => d.str(), /invalid UTF-8 string at offset 0/);
test('a string with a UTF-8-encoded surrogate', rejects, '03eda080', (d) => d.str(), /invalid UTF-8/);
test('trailing bytes', rejects, '0000', (d) => { d.u8(); d.expectEnd(); }, /trailing bytes/);

test('codec: DecodeError reports the offset', (t) => {
  const d = new Decoder(Buffer.from('01028000', 'hex'));
  d.u8();
  d.u8();
  const err = t.throws(() => d.uint(), { instanceOf: DecodeError });
  t.is(err?.offset, 3);
  t.regex(err?.message ?? '', /at offset 3$/);
});

test('codec: headers are kind, NUL, version', (t) => {
  const enc = encodeHeader(new Encoder(), 'tree', 1).finish();
  t.is(enc.toString('hex'), '7472656500' + '01');
  t.is(decodeHeader(new Decoder(enc), 'tree', 1), 1);
  t.is(decodeHeader(new Decoder(encodeHeader(new Encoder(), 'tree', 2).finish()), 'tree', 3), 2);
});

test('codec: decodeHeader rejects another kind, a missing NUL, version 0 and a future version', (t) => {
  const hdr = (kind: string, v: number) => encodeHeader(new Encoder(), kind, v).finish();
  t.throws(() => decodeHeader(new Decoder(hdr('blob', 1)), 'tree', 1), { instanceOf: DecodeError, message: /not a tree object/ });
  t.throws(() => decodeHeader(new Decoder(Buffer.from('treex\x01', 'latin1')), 'tree', 1), { instanceOf: DecodeError, message: /not a tree object/ });
  t.throws(() => decodeHeader(new Decoder(hdr('tree', 0)), 'tree', 1), { instanceOf: DecodeError, message: /unsupported tree version 0/ });
  t.throws(() => decodeHeader(new Decoder(hdr('tree', 2)), 'tree', 1), { instanceOf: DecodeError, message: /unsupported tree version 2/ });
  t.throws(() => decodeHeader(new Decoder(Buffer.from('tr')), 'tree', 1), { instanceOf: DecodeError, message: /truncated/ });
  t.throws(() => decodeHeader(new Decoder(Buffer.from('tree\0')), 'tree', 1), { instanceOf: DecodeError, message: /unexpected end/ });
});

test('codec: an Encoder that grows past 64 KiB (in place) and past its reserved 64 MiB (copied) keeps every byte', (t) => {
  const e = new Encoder();
  const parts: Buffer[] = [];
  let n = 0;
  for (let i = 0; n < 70 * 1024 * 1024; i++) {
    // Small writes while it is small, then pieces of up to 1 MiB.
    const piece = Buffer.alloc(n < 300_000 ? 1 + (i % 50) : 1 + ((i * 7919) % (1 << 20)), i % 251);
    e.raw(piece);
    e.uint(i);
    parts.push(piece, new Encoder().uint(i).finish());
    n += piece.length;
  }
  const expected = Buffer.concat(parts);
  t.is(e.length, expected.length);
  t.true(e.finish().equals(expected));
  t.true(e.view().equals(expected));
});

test('codec: Encoder.skip leaves room that view() fills in; hex() writes an id\'s bytes and refuses what is not hex', (t) => {
  const e = new Encoder(4).skip(3).hex('0aff');
  e.view().set([1, 2, 3], 0);
  t.deepEqual([...e.finish()], [1, 2, 3, 0x0a, 0xff]);
  t.throws(() => new Encoder().hex('zz'), { instanceOf: RangeError });
});
