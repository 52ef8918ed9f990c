/** Tests of the content-defined chunker: size bounds, determinism, streaming independence and shift resistance. */
import test from 'ava';
import crypto from 'node:crypto';
import { Chunker, DEFAULT_CHUNK_AVG, DEFAULT_CHUNK_MAX, DEFAULT_CHUNK_MIN, nextCut } from '../../src/chunking/chunker.js';

const MiB = 1 << 20;

/** Deterministic pseudo-random bytes (AES-256-CTR keystream keyed by the seed), so failures reproduce. */
function randomBytes(n: number, seed: string): Buffer {
  const key = crypto.createHash('sha256').update(seed).digest();
  const cipher = crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(n)), cipher.final()]);
}

function chunkAll(data: Uint8Array, pieces: number[] = [data.length]): Uint8Array[] {
  const c = new Chunker();
  const out: Uint8Array[] = [];
  let pos = 0;
  let k = 0;
  while (pos < data.length) {
    const n = Math.min(pieces[k++ % pieces.length]!, data.length - pos);
    out.push(...c.push(data.subarray(pos, pos + n)));
    pos += n;
  }
  out.push(...c.end());
  return out;
}

function lengths(chunks: Uint8Array[]): number[] {
  return chunks.map((c) => c.length);
}

function hashes(chunks: Uint8Array[]): string[] {
  return chunks.map((c) => crypto.createHash('sha256').update(c).digest('hex'));
}

const DATA = randomBytes(8 * MiB, 'chunker');

test('chunker: the defaults are 16 KiB / 64 KiB / 256 KiB', (t) => {
  t.deepEqual([DEFAULT_CHUNK_MIN, DEFAULT_CHUNK_AVG, DEFAULT_CHUNK_MAX], [16 * 1024, 64 * 1024, 256 * 1024]);
});

test('chunker: chunks cover the input exactly and stay within min and max (all but the last)', (t) => {
  const chunks = chunkAll(DATA);
  t.true(Buffer.concat(chunks).equals(DATA));
  const ls = lengths(chunks);
  for (const l of ls.slice(0, -1)) t.true(l >= DEFAULT_CHUNK_MIN && l <= DEFAULT_CHUNK_MAX, `chunk of ${l} bytes`);
  t.true(ls[ls.length - 1]! > 0 && ls[ls.length - 1]! <= DEFAULT_CHUNK_MAX);
  // Random data: the mean is near the target average (normalised chunking keeps it within a factor ~1.5).
  const mean = DATA.length / chunks.length;
  t.true(mean > DEFAULT_CHUNK_AVG / 1.5 && mean < DEFAULT_CHUNK_AVG * 1.5, `mean chunk size ${mean}`);
});

test('chunker: known answer: the boundaries of a fixed input are pinned (gear table and masks are format)', (t) => {
  const chunks = chunkAll(randomBytes(MiB, 'pinned'));
  const digest = crypto.createHash('sha256').update(lengths(chunks).join(',')).digest('hex');
  t.is(`${chunks.length}:${digest}`, '14:22f04569005fab9d024e1afe1f0fb1e6554f9cfc41b6c0c10f1e9e696706d4b2');
});

test('chunker: the same bytes always give the same chunks', (t) => {
  t.deepEqual(lengths(chunkAll(DATA)), lengths(chunkAll(Buffer.from(DATA))));
  t.deepEqual(hashes(chunkAll(DATA)), hashes(chunkAll(DATA)));
});

test('chunker: streaming in pieces of any size gives the same boundaries as one buffer', (t) => {
  const whole = lengths(chunkAll(DATA));
  for (const pieces of [[1000], [4096], [65_537], [MiB], [3 * MiB + 7], [1, 70_000, 13, 300_000, 16_384, 262_144, 262_145]]) {
    t.deepEqual(lengths(chunkAll(DATA, pieces)), whole, `pieces ${pieces.join(',')}`);
  }
});

test('chunker: the streaming Chunker cuts exactly where nextCut does', (t) => {
  const data = Buffer.from(DATA.subarray(0, 3 * MiB));
  data.fill(0, 500_000, 1_200_000); // a stretch without cut points
  const reference: number[] = [];
  for (let pos = 0; pos < data.length;) {
    const n = nextCut(data, pos, data.length, true);
    reference.push(n);
    pos += n;
  }
  t.deepEqual(lengths(chunkAll(data)), reference);
  t.deepEqual(lengths(chunkAll(data, [7, 100_003, 1, 333])), reference);
  t.deepEqual(lengths(chunkAll(data, [DEFAULT_CHUNK_MAX])), reference);
  t.deepEqual(lengths(chunkAll(data, [DEFAULT_CHUNK_MIN, DEFAULT_CHUNK_MIN + 1])), reference);
});

test('chunker: pushing one byte at a time is fast (linear, not quadratic)', (t) => {
  const data = DATA.subarray(0, MiB);
  const started = Date.now();
  t.deepEqual(lengths(chunkAll(data, [1])), lengths(chunkAll(data)));
  t.true(Date.now() - started < 5000, `${Date.now() - started} ms`);
});

test('chunker: chunks stay valid after later pushes (no buffer reuse)', (t) => {
  const c = new Chunker();
  const kept: Uint8Array[] = [];
  for (let pos = 0; pos < 2 * MiB; pos += 10_000) kept.push(...c.push(Buffer.from(DATA.subarray(pos, Math.min(pos + 10_000, 2 * MiB)))));
  kept.push(...c.end());
  t.true(Buffer.concat(kept).equals(DATA.subarray(0, 2 * MiB)));
});

test('chunker: the caller may overwrite its buffer as soon as push returns (chunks consumed at once)', (t) => {
  const whole = hashes(chunkAll(DATA));
  for (const pieces of [[1000], [65_537], [MiB], [1, 70_000, 13, 300_000, 16_384, 262_144, 262_145]]) {
    // Like the directory reader: one scratch buffer, refilled for every piece, scribbled over after each push.
    const scratch = Buffer.alloc(Math.max(...pieces));
    const c = new Chunker();
    const got: string[] = [];
    const consume = (chunks: Uint8Array[]) => { for (const x of chunks) got.push(crypto.createHash('sha256').update(x).digest('hex')); };
    let k = 0;
    for (let pos = 0; pos < DATA.length;) {
      const n = Math.min(pieces[k++ % pieces.length]!, DATA.length - pos);
      DATA.copy(scratch, 0, pos, pos + n);
      consume(c.push(scratch.subarray(0, n)));
      scratch.fill(0xa5);
      pos += n;
    }
    consume(c.end());
    t.deepEqual(got, whole, `pieces ${pieces.join(',')}`);
  }
});

test('chunker: with reuse, what one push returns stays intact until the next push, also across release() to the next stream', (t) => {
  const whole = hashes(chunkAll(DATA));
  const second = DATA.subarray(0, 3 * MiB);
  const wholeSecond = hashes(chunkAll(second));
  for (const pieces of [[1000], [65_537], [MiB], [1, 70_000, 13, 300_000, 16_384, 262_144, 262_145]]) {
    const scratch = Buffer.alloc(Math.max(...pieces));
    const run = (c: Chunker, data: Buffer): string[] => {
      const got: string[] = [];
      // A push's chunks are read only after the push returned (its later appends must not have overwritten them),
      // then the storage is scribbled over as the next push would (a switch back to the store handed out before).
      const consume = (chunks: Uint8Array[]) => { for (const x of chunks) got.push(crypto.createHash('sha256').update(x).digest('hex')); };
      let k = 0;
      for (let pos = 0; pos < data.length;) {
        const n = Math.min(pieces[k++ % pieces.length]!, data.length - pos);
        data.copy(scratch, 0, pos, pos + n);
        consume(c.push(scratch.subarray(0, n)));
        scratch.fill(0xa5);
        pos += n;
      }
      consume(c.end());
      c.release();
      return got;
    };
    t.deepEqual(run(new Chunker({ reuse: true }), DATA), whole, `pieces ${pieces.join(',')}`);
    t.deepEqual(run(new Chunker({ reuse: true }), second), wholeSecond, `second stream, pieces ${pieces.join(',')}`);
  }
});

test('chunker: push(data, true) is push(data) then end(), and the chunker is reusable after it', (t) => {
  const c = new Chunker();
  for (const n of [0, 1, DEFAULT_CHUNK_MIN, DEFAULT_CHUNK_MIN + 1, 100_000, DEFAULT_CHUNK_MAX, 3 * MiB + 7]) {
    const data = DATA.subarray(0, n);
    const expected = lengths(chunkAll(data));
    t.deepEqual(lengths(c.push(data, true)), expected, `${n} bytes in one final push`);
    // With bytes pending from earlier pushes.
    const split = Math.floor(n / 3);
    const got = [...c.push(data.subarray(0, split)), ...c.push(data.subarray(split), true)];
    t.deepEqual(lengths(got), expected, `${n} bytes in two pushes`);
    t.true(Buffer.concat(got).equals(data));
    t.deepEqual(c.end(), []);
  }
});

test('chunker: any byte alignment and plain Uint8Arrays or Buffers give the same boundaries', (t) => {
  const whole = lengths(chunkAll(DATA.subarray(0, 2 * MiB)));
  for (let shift = 0; shift < 8; shift++) {
    const backing = new Uint8Array(2 * MiB + shift);
    backing.set(DATA.subarray(0, 2 * MiB), shift);
    const plain = backing.subarray(shift);
    t.deepEqual(lengths(chunkAll(plain)), whole, `plain, offset ${shift}`);
    t.deepEqual(lengths(chunkAll(Buffer.from(backing.buffer, shift, 2 * MiB), [65_537, 3])), whole, `buffer, offset ${shift}`);
  }
});

test('chunker: small and empty inputs', (t) => {
  t.deepEqual(chunkAll(Buffer.alloc(0)), []);
  const c = new Chunker();
  t.deepEqual(c.push(Buffer.alloc(0)), []);
  t.deepEqual(c.end(), []);
  t.deepEqual(lengths(chunkAll(Buffer.from('x'))), [1]);
  t.deepEqual(lengths(chunkAll(DATA.subarray(0, DEFAULT_CHUNK_MIN))), [DEFAULT_CHUNK_MIN]);
  t.deepEqual(lengths(chunkAll(DATA.subarray(0, DEFAULT_CHUNK_MIN + 1))), [DEFAULT_CHUNK_MIN + 1]);
});

test('chunker: data without cut points is cut at the maximum', (t) => {
  const zeros = Buffer.alloc(3 * MiB + 5);
  const ls = lengths(chunkAll(zeros));
  t.is(ls.reduce((a, b) => a + b, 0), zeros.length);
  for (const l of ls) t.true(l <= DEFAULT_CHUNK_MAX);
  t.true(ls.length >= Math.ceil(zeros.length / DEFAULT_CHUNK_MAX));
});

test('chunker: nextCut waits for more bytes unless final', (t) => {
  const b = Buffer.alloc(DEFAULT_CHUNK_MAX - 1);
  t.is(nextCut(b, 0, b.length, false), 0);
  t.is(nextCut(b, 0, b.length, true), b.length);
  t.is(nextCut(b, 0, 100, true), 100);
  const big = Buffer.alloc(DEFAULT_CHUNK_MAX + 10);
  t.is(nextCut(big, 0, big.length, false), DEFAULT_CHUNK_MAX);
  t.is(nextCut(big, 5, big.length, false), DEFAULT_CHUNK_MAX);
});

test('chunker: inserting a few bytes near the start of a 24 MiB file changes only a few chunks', (t) => {
  const a = randomBytes(24 * MiB, 'shift');
  const at = 100_000;
  const b = Buffer.concat([a.subarray(0, at), Buffer.from('INSERTED'), a.subarray(at)]);
  const ha = hashes(chunkAll(a, [MiB]));
  const hb = hashes(chunkAll(b, [MiB]));
  const known = new Set(ha);
  const changed = hb.filter((h) => !known.has(h)).length;
  t.true(ha.length > 200, `${ha.length} chunks`);
  t.true(changed >= 1 && changed <= 3, `${changed} of ${hb.length} chunks differ`);
  // Also for a deletion and for an overwrite in the middle.
  const del = Buffer.concat([a.subarray(0, at), a.subarray(at + 5)]);
  t.true(hashes(chunkAll(del, [MiB])).filter((h) => !known.has(h)).length <= 3);
  const over = Buffer.from(a);
  over.write('OVERWRITE', 12 * MiB);
  t.true(hashes(chunkAll(over, [MiB])).filter((h) => !known.has(h)).length <= 3);
});
