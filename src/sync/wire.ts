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

export function encodeFrame(o: StoredObject): Buffer {
  const head = Buffer.allocUnsafe(KEY_BYTES + 4);
  head[0] = OBJECT_KINDS[o.kind];
  oidToBytes(o.oid).copy(head, 1);
  head.writeUInt32BE(o.stored.length, KEY_BYTES);
  return Buffer.concat([head, o.stored]);
}

export const END_FRAME = Buffer.alloc(KEY_BYTES);

/** Parses a frame stream from byte chunks; throws WireError on garbage, oversized frames or a missing end frame. */
export async function* decodeFrames(chunks: AsyncIterable<Uint8Array>, limits: { maxTotal?: number } = {}): AsyncGenerator<StoredObject> {
  let buf = Buffer.alloc(0);
  let total = 0;
  let ended = false;
  for await (const c of chunks) {
    total += c.length;
    if (limits.maxTotal !== undefined && total > limits.maxTotal) throw new WireError(`object stream exceeds ${limits.maxTotal} bytes`);
    if (ended) { if (c.length) throw new WireError('bytes after the end frame'); continue; }
    buf = buf.length ? Buffer.concat([buf, c]) : Buffer.from(c);
    for (;;) {
      if (buf.length < KEY_BYTES) break;
      if (buf[0] === 0) {
        if (!buf.subarray(0, KEY_BYTES).equals(END_FRAME)) throw new WireError('malformed end frame');
        ended = true;
        if (buf.length > KEY_BYTES) throw new WireError('bytes after the end frame');
        buf = Buffer.alloc(0);
        break;
      }
      if (buf.length < KEY_BYTES + 4) break;
      const kind = KIND_BY_CODE[buf[0]!];
      if (!kind) throw new WireError(`unknown object kind ${buf[0]}`);
      const len = buf.readUInt32BE(KEY_BYTES);
      if (len > MAX_FRAME_BYTES) throw new WireError(`object of ${len} bytes exceeds the ${MAX_FRAME_BYTES}-byte frame limit`);
      if (buf.length < KEY_BYTES + 4 + len) break;
      yield { kind, oid: bytesToOid(buf.subarray(1, KEY_BYTES)), stored: Buffer.from(buf.subarray(KEY_BYTES + 4, KEY_BYTES + 4 + len)) };
      buf = buf.subarray(KEY_BYTES + 4 + len);
    }
  }
  if (!ended) throw new WireError('the object stream ended without its end frame (cut off?)');
}
