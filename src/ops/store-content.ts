/**
 * Turns one file's content (data pieces with holes) into stored objects: content-defined chunks (zstd), a blob
 * record, and the blob id = sha256 of the whole content. Holes are recorded, never stored as bytes.
 */
import crypto from 'node:crypto';
import { Chunker } from '../chunking/chunker.js';
import { encodeBlob, type Segment } from '../model/blob.js';
import { type Oid, hashBytes } from '../model/oid.js';
import type { Hole } from '../model/tree.js';
import type { FileContent } from '../formats/types.js';
import type { ObjectWriter } from '../store/object-store.js';

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
 * Reads `content` to its end and writes what is missing to `objects`. Pieces must come in increasing offset order
 * within `content.size` (else ContentError, which the caller turns into a CorruptInputError naming the file).
 */
export async function storeContent(objects: ObjectWriter, content: FileContent, signal?: AbortSignal): Promise<StoredContent> {
  const hash = crypto.createHash('sha256');
  const segments: Segment[] = [];
  const holes: Hole[] = [];
  let chunker = new Chunker();
  let pos = 0;
  let dedupChunks = 0;
  // The first chunk is held back: a file that turns out to be a single chunk is stored inline in its blob record.
  let held: Uint8Array | undefined;
  let chunkCount = 0;

  const writeChunk = (c: Uint8Array) => {
    const oid = hashBytes(c);
    if (objects.hasObject('chunk', oid)) dedupChunks++;
    else objects.writeObject('chunk', oid, c);
    segments.push({ kind: 'chunk', oid, length: c.length });
  };
  const emit = (chunks: Uint8Array[]) => {
    for (const c of chunks) {
      chunkCount++;
      if (chunkCount === 1) { held = c; continue; }
      if (held) { writeChunk(held); held = undefined; }
      writeChunk(c);
    }
  };
  const hole = (length: number) => {
    emit(chunker.end());
    chunker = new Chunker();
    if (held) { writeChunk(held); held = undefined; }
    hashZeros(hash, length);
    segments.push({ kind: 'zero', length });
    const last = holes[holes.length - 1];
    if (last && last.offset + last.length === pos) last.length += length;
    else holes.push({ offset: pos, length });
    pos += length;
  };

  for await (const piece of content.read(signal)) {
    if (piece.offset < pos || piece.offset + piece.data.length > content.size) {
      throw new ContentError(`data piece at offset ${piece.offset} out of order or beyond the size ${content.size}`);
    }
    if (piece.data.length === 0) continue;
    if (piece.offset > pos) hole(piece.offset - pos);
    hash.update(piece.data);
    emit(chunker.push(piece.data));
    pos += piece.data.length;
    await objects.drain();
  }
  if (pos < content.size) hole(content.size - pos);
  emit(chunker.end());
  const oid = hash.digest('hex');
  if (objects.hasObject('blob', oid)) {
    // Same content stored before (whole-file dedup); a held chunk is not needed.
    return { oid, size: content.size, holes, dedupChunks };
  }
  let record: Buffer;
  if (holes.length === 0 && chunkCount <= 1) {
    record = encodeBlob({ form: 'inline', size: content.size, data: Buffer.from(held ?? new Uint8Array(0)) });
  } else {
    if (held) writeChunk(held);
    record = encodeBlob({ form: 'chunked', size: content.size, segments: mergeZeros(segments) });
  }
  objects.writeObject('blob', oid, record);
  return { oid, size: content.size, holes, dedupChunks };
}

function mergeZeros(segs: Segment[]): Segment[] {
  const out: Segment[] = [];
  for (const s of segs) {
    const last = out[out.length - 1];
    if (s.kind === 'zero' && last?.kind === 'zero') last.length += s.length;
    else out.push({ ...s });
  }
  return out;
}
