/**
 * Blob records: how one file's content is stored. The blob's *id* is the sha256 of the content itself (what
 * `sha256sum` prints); the record below is the stored value under that id and is not hashed.
 * Encoding (docs/format.md §blob): header `blob\0` + version, size, form, then inline bytes or a segment list.
 */
import { Decoder, DecodeError, Encoder, decodeHeader, encodeHeader } from './codec.js';
import { type Oid, OID_BYTES, bytesToOid, isOid } from './oid.js';

export const BLOB_VERSION = 1;

/** Frozen form codes. */
export const BLOB_INLINE = 0;
export const BLOB_CHUNKED = 1;
/** Frozen segment codes. */
export const SEG_CHUNK = 0;
export const SEG_ZERO = 1;

export type Segment = { kind: 'chunk'; oid: Oid; length: number } | { kind: 'zero'; length: number };

export type BlobRecord =
  | { form: 'inline'; size: number; data: Buffer }
  | { form: 'chunked'; size: number; segments: Segment[] };

/** What an inline record of `size` bytes holds before the bytes themselves: header, size, form. */
export function inlineBlobHeader(size: number): Buffer {
  return encodeHeader(new Encoder(), 'blob', BLOB_VERSION).uint(size).u8(BLOB_INLINE).finish();
}

export function encodeBlob(rec: BlobRecord): Buffer {
  if (rec.form === 'inline') {
    if (rec.data.length !== rec.size) throw new Error('inline blob size mismatch');
    // One allocation of the exact size (the growing Encoder copied the data twice).
    return Buffer.concat([inlineBlobHeader(rec.size), rec.data]);
  }
  const b = new ChunkedBlobBuilder();
  for (const s of rec.segments) {
    if (s.kind === 'chunk') b.chunk(s.oid, s.length);
    else b.zero(s.length);
  }
  return b.finish(rec.size);
}

/**
 * A chunked blob record built segment by segment: encodeBlob's bytes, encoded as the segments come. A file's segment
 * list as objects cost about 190 bytes per chunk until its record was written (an object and a 64-digit string per
 * chunk: 30 MB for a 10 GiB file); encoded, it costs its 38 bytes. The segments are written after room for the
 * header, which goes in front of them at the end: the record is never copied (an Encoder of that size grows in place).
 */
export class ChunkedBlobBuilder {
  /** The most the header takes: `blob\0`, the version, the size and the count as varints (8 bytes each at most), the form. */
  private static readonly HEAD_ROOM = 5 + 1 + 8 + 1 + 8;
  /**
   * Bytes left free before the header, where a writer given the record's buffer puts its own framing (a codec byte,
   * a pack's header: see ObjectWriter.writeObjectGiven), so that not even a large record is copied.
   */
  static readonly ROOM = 64;
  private readonly e = new Encoder(4096).skip(ChunkedBlobBuilder.ROOM + ChunkedBlobBuilder.HEAD_ROOM);
  private count = 0;
  private total = 0;

  chunk(oid: Oid, length: number): void {
    if (!isOid(oid)) throw new RangeError(`not an object id: '${oid}'`);
    this.e.u8(SEG_CHUNK).hex(oid).uint(length);
    this.count++;
    this.total += length;
  }

  zero(length: number): void {
    this.e.u8(SEG_ZERO).uint(length);
    this.count++;
    this.total += length;
  }

  /** The record of a blob of `size` bytes (which the segments must add up to): a view, valid until the next write. */
  finish(size: number): Buffer {
    if (this.total !== size) throw new Error('chunked blob size mismatch');
    const head = encodeHeader(new Encoder(), 'blob', BLOB_VERSION).uint(size).u8(BLOB_CHUNKED).uint(this.count).view();
    const all = this.e.view();
    const at = ChunkedBlobBuilder.ROOM + ChunkedBlobBuilder.HEAD_ROOM - head.length;
    all.set(head, at);
    return all.subarray(at);
  }
}

export function decodeBlob(buf: Uint8Array): BlobRecord {
  const d = new Decoder(buf);
  decodeHeader(d, 'blob', BLOB_VERSION);
  const size = d.uint();
  const form = d.u8();
  if (form === BLOB_INLINE) {
    const data = d.raw(buf.length - d.pos);
    if (data.length !== size) throw new DecodeError('inline blob size mismatch', d.pos);
    return { form: 'inline', size, data };
  }
  if (form !== BLOB_CHUNKED) throw new DecodeError(`unknown blob form ${form}`, d.pos - 1);
  const n = d.uint();
  if (n > buf.length) throw new DecodeError('segment count exceeds object size', d.pos);
  const segments: Segment[] = [];
  let total = 0;
  for (let i = 0; i < n; i++) {
    const k = d.u8();
    if (k === SEG_CHUNK) {
      const oid = bytesToOid(d.raw(OID_BYTES));
      segments.push({ kind: 'chunk', oid, length: d.uint() });
    } else if (k === SEG_ZERO) {
      segments.push({ kind: 'zero', length: d.uint() });
    } else {
      throw new DecodeError(`unknown segment kind ${k}`, d.pos - 1);
    }
    total += segments[segments.length - 1]!.length;
  }
  d.expectEnd();
  if (total !== size) throw new DecodeError('segments do not add up to the blob size', d.pos);
  return { form: 'chunked', size, segments };
}
