/**
 * The HTTP protocol's binary framing (docs/protocol.md): object ids as 33-byte keys (kind byte + sha256), and object
 * streams as frames `key(33) length(u32 BE) stored-bytes`, closed by an end frame (33 zero bytes) so that a cut
 * stream is told from a finished one.
 */
import { KIND_BY_CODE, OBJECT_KINDS } from '../store/object-store.js';
import { bytesToOid, oidToBytes } from '../model/oid.js';
import type { ObjectId, StoredObject } from './peer.js';

export const KEY_BYTES = 33;
/** The largest single object a frame may carry (chunks are ≤ 256 KiB, trees and blob records far smaller). */
export const MAX_FRAME_BYTES = 64 << 20;

export class WireError extends Error {}

export function encodeKeys(ids: ObjectId[]): Buffer {
  const b = Buffer.allocUnsafe(ids.length * KEY_BYTES);
  ids.forEach((i, n) => {
    b[n * KEY_BYTES] = OBJECT_KINDS[i.kind];
    oidToBytes(i.oid).copy(b, n * KEY_BYTES + 1);
  });
  return b;
}

export function decodeKeys(b: Buffer): ObjectId[] {
  if (b.length % KEY_BYTES) throw new WireError(`key list of ${b.length} bytes is not a multiple of ${KEY_BYTES}`);
  const out: ObjectId[] = [];
  for (let o = 0; o < b.length; o += KEY_BYTES) {
    const kind = KIND_BY_CODE[b[o]!];
    if (!kind) throw new WireError(`unknown object kind ${b[o]} at byte ${o}`);
    out.push({ kind, oid: bytesToOid(b.subarray(o + 1, o + KEY_BYTES)) });
  }
  return out;
}

/** A frame's header: kind, id and the stored value's length (the value follows it). */
export function frameHead(o: StoredObject): Buffer {
  const head = Buffer.allocUnsafe(KEY_BYTES + 4);
  head[0] = OBJECT_KINDS[o.kind];
  oidToBytes(o.oid).copy(head, 1);
  head.writeUInt32BE(o.stored.length, KEY_BYTES);
  return head;
}

export function encodeFrame(o: StoredObject): Buffer {
  return Buffer.concat([frameHead(o), o.stored]);
}

/** Stream chunks of about this size carry many frames: a chunk per object cost a stream step and a write each. */
export const FRAME_BLOCK_BYTES = 1 << 20;

/**
 * The frame stream of `objects` in blocks of about FRAME_BLOCK_BYTES (each object copied once, into its block),
 * ending with the end frame.
 */
export async function* frameBlocks(objects: AsyncIterable<StoredObject>): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  for await (const o of objects) {
    const head = frameHead(o);
    parts.push(head, o.stored);
    size += head.length + o.stored.length;
    if (size >= FRAME_BLOCK_BYTES) {
      yield Buffer.concat(parts, size);
      parts = [];
      size = 0;
    }
  }
  parts.push(END_FRAME);
  yield Buffer.concat(parts, size + END_FRAME.length);
}

export const END_FRAME = Buffer.alloc(KEY_BYTES);

/**
 * Parses a frame stream from byte chunks; throws WireError on garbage, oversized frames or a missing end frame.
 * Incoming chunks are kept in a list and joined only when a frame is complete (joining on every chunk copied a large
 * frame over and over); each object's value is its own copy.
 */
export async function* decodeFrames(chunks: AsyncIterable<Uint8Array>, limits: { maxTotal?: number } = {}): AsyncGenerator<StoredObject> {
  let buf: Buffer = Buffer.alloc(0);
  const more: Uint8Array[] = [];
  let moreBytes = 0;
  /** Bytes buf must hold before the next step can be taken (a key, a header, a whole frame). */
  let need = KEY_BYTES;
  let total = 0;
  let ended = false;
  for await (const c of chunks) {
    total += c.length;
    if (limits.maxTotal !== undefined && total > limits.maxTotal) throw new WireError(`object stream exceeds ${limits.maxTotal} bytes`);
    if (ended) { if (c.length) throw new WireError('bytes after the end frame'); continue; }
    more.push(c);
    moreBytes += c.length;
    if (buf.length + moreBytes < need) continue;
    buf = Buffer.concat([buf, ...more], buf.length + moreBytes);
    more.length = 0;
    moreBytes = 0;
    for (;;) {
      need = KEY_BYTES;
      if (buf.length < KEY_BYTES) break;
      if (buf[0] === 0) {
        if (!buf.subarray(0, KEY_BYTES).equals(END_FRAME)) throw new WireError('malformed end frame');
        ended = true;
        if (buf.length > KEY_BYTES) throw new WireError('bytes after the end frame');
        buf = Buffer.alloc(0);
        break;
      }
      need = KEY_BYTES + 4;
      if (buf.length < need) break;
      const kind = KIND_BY_CODE[buf[0]!];
      if (!kind) throw new WireError(`unknown object kind ${buf[0]}`);
      const len = buf.readUInt32BE(KEY_BYTES);
      if (len > MAX_FRAME_BYTES) throw new WireError(`object of ${len} bytes exceeds the ${MAX_FRAME_BYTES}-byte frame limit`);
      need = KEY_BYTES + 4 + len;
      if (buf.length < need) break;
      yield { kind, oid: bytesToOid(buf.subarray(1, KEY_BYTES)), stored: Buffer.from(buf.subarray(KEY_BYTES + 4, need)) };
      buf = buf.subarray(need);
    }
  }
  if (!ended) throw new WireError('the object stream ended without its end frame (cut off?)');
}
