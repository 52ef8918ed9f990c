/**
 * Turns one file's content (data pieces with holes) into stored objects: content-defined chunks (zstd), a blob
 * record, and the blob id = sha256 of the whole content. Holes are recorded, never stored as bytes.
 */
import crypto from 'node:crypto';
import { Chunker } from '../chunking/chunker.js';
import { ChunkedBlobBuilder, inlineBlobHeader } from '../model/blob.js';
import type { Oid } from '../model/oid.js';
import type { Hole } from '../model/tree.js';
import type { FileContent } from '../formats/types.js';
import type { ObjectWriter } from './object-store.js';

export const ZERO_BUFFER_SIZE = 1024 * 1024;
const ZEROS = Buffer.alloc(ZERO_BUFFER_SIZE);

export interface StoredContent {
  oid: Oid;
  size: number;
  holes: Hole[];
  /** Number of chunks that were already present (dedup). */
  dedupChunks: number;
}

export class ContentError extends Error {}

function hashZeros(h: crypto.Hash, n: number): void {
  while (n > 0) {
    const k = Math.min(n, ZERO_BUFFER_SIZE);
    h.update(ZEROS.subarray(0, k));
    n -= k;
  }
}

/**
 * Where a small file's inline blob record is assembled: writeObject copies it at the call, so one buffer (at most a
 * chunk and a header) serves every file. Allocating each record, as large as the file, left the garbage collector
 * hundreds of MB to free while committing a tree of small files.
 */
let recordScratch = Buffer.alloc(0);

/** The inline blob record of `data` (encodeBlob's bytes), in recordScratch: valid until the next call. */
function inlineRecord(data: Uint8Array): Buffer {
  const header = inlineBlobHeader(data.length);
  const n = header.length + data.length;
  if (recordScratch.length < n) recordScratch = Buffer.allocUnsafeSlow(Math.max(n, 2 * recordScratch.length));
  header.copy(recordScratch);
  recordScratch.set(data, header.length);
  return recordScratch.subarray(0, n);
}

/** sha256 of a chunk as an oid (what `hashBytes` computes), one-shot: no Hash object per chunk. */
function chunkOid(c: Uint8Array): Oid {
  return crypto.hash('sha256', c, 'hex');
}

/**
 * Reads `content` to its end and writes what is missing to `objects`. Pieces must come in increasing offset order
 * within `content.size` (else ContentError, which the caller turns into a CorruptInputError naming the file).
 *
 * Buffers: a piece's data is borrowed (valid until the next piece is asked for, see DataPiece) and nothing here keeps
 * a reference past that without copying: chunks go straight to `objects.writeObject`, which copies them at the call
 * (ObjectWriter implementations must), and the one chunk that may be held back across pieces is copied first. So
 * are the chunker's own (`reuse`): valid until its next push.
 */
export async function storeContent(objects: ObjectWriter, content: FileContent, signal?: AbortSignal): Promise<StoredContent> {
  const size = content.size;
  const hash = crypto.createHash('sha256');
  // The blob record's segment list, encoded as it grows (made at the first segment: most files are one chunk, inline).
  let segments: ChunkedBlobBuilder | undefined;
  /** Zeros not yet in `segments`: adjacent holes make one zero segment. */
  let zeros = 0;
  const holes: Hole[] = [];
  // Chunks are written (copied) as they come: the chunker may reuse its storage, and pass it on to the next file.
  const chunker = new Chunker({ reuse: true });
  let pos = 0;
  let dedupChunks = 0;
  // The first chunk is held back: a file that turns out to be a single chunk is stored inline in its blob record.
  let held: Uint8Array | undefined;
  /** `held` is a copy of its own (made when it had to outlive the push that returned it). */
  let heldCopied = false;
  let chunkCount = 0;
  let stored: StoredContent | undefined;

  const writeChunk = (c: Uint8Array) => {
    const oid = chunkOid(c);
    if (objects.hasObject('chunk', oid)) dedupChunks++;
    else objects.writeObject('chunk', oid, c);
    segments ??= new ChunkedBlobBuilder();
    if (zeros) { segments.zero(zeros); zeros = 0; }
    segments.chunk(oid, c.length);
  };
  const emit = (chunks: Uint8Array[]) => {
    for (const c of chunks) {
      chunkCount++;
      if (chunkCount === 1) { held = c; heldCopied = false; continue; }
      if (held) { writeChunk(held); held = undefined; }
      writeChunk(c);
    }
  };
  const hole = (length: number) => {
    emit(chunker.end());
    if (held) { writeChunk(held); held = undefined; }
    hashZeros(hash, length);
    zeros += length;
    const last = holes[holes.length - 1];
    if (last && last.offset + last.length === pos) last.length += length;
    else holes.push({ offset: pos, length });
    pos += length;
  };
  /** Completes the blob once all data is in; called while the last piece (which `held` may point into) is valid. */
  const finish = (): StoredContent => {
    if (pos < size) hole(size - pos);
    emit(chunker.end());
    const oid = hash.digest('hex');
    const first = held;
    held = undefined;
    if (objects.hasObject('blob', oid)) {
      // Same content stored before (whole-file dedup); a held chunk is not needed.
      return { oid, size, holes, dedupChunks };
    }
    let record: Buffer;
    if (holes.length === 0 && chunkCount <= 1) {
      record = inlineRecord(first ?? new Uint8Array(0));
    } else {
      if (first) writeChunk(first);
      segments ??= new ChunkedBlobBuilder();
      if (zeros) segments.zero(zeros);
      record = segments.finish(size);
      // The builder's buffer is not used again: a writer may take it as it is (a 10 GiB file's record is 6 MB).
      if (objects.writeObjectGiven) {
        objects.writeObjectGiven('blob', oid, record);
        return { oid, size, holes, dedupChunks };
      }
    }
    objects.writeObject('blob', oid, record);
    return { oid, size, holes, dedupChunks };
  };

  for await (const { offset, data } of content.read(signal)) {
    if (offset < pos || offset + data.length > size) {
      throw new ContentError(`data piece at offset ${offset} out of order or beyond the size ${size}`);
    }
    if (data.length === 0) continue;
    if (offset > pos) hole(offset - pos);
    hash.update(data);
    pos += data.length;
    if (pos === size) {
      // The last piece: no bytes can follow, so chunk it to the end (no tail copy) and finish while it is valid.
      // The loop still runs on: the reader checks the file after its last piece (SourceChangedError).
      emit(chunker.push(data, true));
      stored = finish();
    } else {
      emit(chunker.push(data));
      // A held chunk, a view of `data` or of the chunker's storage, must outlive the next push (rare: a piece that
      // completes only the first chunk).
      if (held && !heldCopied) { held = held.slice(); heldCopied = true; }
    }
    await objects.drain();
  }
  stored ??= finish();
  chunker.release();
  return stored;
}

/** Stores bytes held in memory as a blob (small content: generated files, region maps, `--set` text). */
export async function storeBytes(objects: ObjectWriter, buf: Buffer, signal?: AbortSignal): Promise<StoredContent> {
  const content: FileContent = {
    size: buf.length,
    async *read() {
      if (buf.length) yield { offset: 0, data: buf };
    },
  };
  return storeContent(objects, content, signal);
}
