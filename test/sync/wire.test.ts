/** The object stream's framing: blocks of many frames, and a decoder that takes the bytes cut anywhere. */
import test from 'ava';
import crypto from 'node:crypto';
import { FRAME_BLOCK_BYTES, WireError, decodeFrames, encodeFrame, END_FRAME, frameBlocks } from '../../src/sync/wire.js';
import type { StoredObject } from '../../src/sync/peer.js';

const objects: StoredObject[] = [
  { kind: 'chunk', oid: 'aa'.repeat(32), stored: crypto.randomBytes(3000) },
  { kind: 'blob', oid: 'bb'.repeat(32), stored: Buffer.alloc(0) },
  { kind: 'tree', oid: 'cc'.repeat(32), stored: crypto.randomBytes(37) },
  { kind: 'chunk', oid: 'dd'.repeat(32), stored: crypto.randomBytes(FRAME_BLOCK_BYTES + 5) },
  { kind: 'commit', oid: 'ee'.repeat(32), stored: crypto.randomBytes(1) },
];

async function* from<T>(items: T[]): AsyncGenerator<T> {
  for (const i of items) yield i;
}

async function decodeAll(chunks: Uint8Array[]): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const o of decodeFrames(from(chunks))) out.push(o);
  return out;
}

test('frameBlocks: the frames of every object, in order, then the end frame, in blocks of about 1 MiB', async (t) => {
  const blocks: Buffer[] = [];
  for await (const b of frameBlocks(from(objects))) blocks.push(b);
  t.is(blocks.length, 2);
  const all = Buffer.concat(blocks);
  t.deepEqual(all, Buffer.concat([...objects.map(encodeFrame), END_FRAME]));
  t.true(all.subarray(-END_FRAME.length).equals(END_FRAME));
  const empty: Buffer[] = [];
  for await (const b of frameBlocks(from([]))) empty.push(b);
  t.deepEqual(empty, [END_FRAME]);
});

test('decodeFrames: the same objects whatever the stream is cut into', async (t) => {
  const stream = Buffer.concat([...objects.slice(0, 3).map(encodeFrame), encodeFrame(objects[4]!), END_FRAME]);
  const want = [objects[0], objects[1], objects[2], objects[4]];
  // Every single cut point (the end frame alone in the last chunk included), then byte by byte.
  for (let cut = 0; cut <= stream.length; cut++) {
    t.deepEqual(await decodeAll([stream.subarray(0, cut), stream.subarray(cut)]), want, `cut at ${cut}`);
  }
  t.deepEqual(await decodeAll([...stream].map((b) => Buffer.from([b]))), want);
  const big = Buffer.concat([encodeFrame(objects[3]!), END_FRAME]);
  const pieces: Buffer[] = [];
  for (let at = 0; at < big.length; at += 65536) pieces.push(big.subarray(at, at + 65536));
  t.deepEqual(await decodeAll(pieces), [objects[3]]);
});

test('decodeFrames: a stream without its end frame, or with bytes after it, is a WireError', async (t) => {
  const frames = Buffer.concat(objects.slice(0, 2).map(encodeFrame));
  await t.throwsAsync(decodeAll([frames]), { instanceOf: WireError, message: /ended without its end frame/ });
  await t.throwsAsync(decodeAll([frames.subarray(0, frames.length - 1)]), { instanceOf: WireError });
  await t.throwsAsync(decodeAll([Buffer.concat([frames, END_FRAME, Buffer.from([1])])]), { instanceOf: WireError, message: /after the end frame/ });
});
