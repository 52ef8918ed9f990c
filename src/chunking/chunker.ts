/**
 * Content-defined chunking (FastCDC-style gear hash with normalised chunking), so that an insertion near the start
 * of a file moves only the chunks around it. The gear table and masks are part of the format: changing them changes
 * every chunk boundary (dedup against older data would be lost, not correctness).
 */
import crypto from 'node:crypto';

export const DEFAULT_CHUNK_MIN = 16 * 1024;
export const DEFAULT_CHUNK_AVG = 64 * 1024;
export const DEFAULT_CHUNK_MAX = 256 * 1024;

/** Gear table: 256 values from sha256("viva-gear" + i), frozen forever. */
const GEAR = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  GEAR[i] = crypto.createHash('sha256').update(`viva-gear${i}`).digest().readUInt32BE(0);
}
/** Harder mask (18 bits) before the average size, easier one (14 bits) after: FastCDC's normalisation level 2. */
const MASK_S = 0xffffc000 >>> 0;
const MASK_L = 0xfffc0000 >>> 0;

/** Length of the next chunk of `b[start, end)`; `final` says no more bytes follow `end`. Returns 0 when undecided. */
export function nextCut(b: Uint8Array, start: number, end: number, final: boolean): number {
  const n = end - start;
  if (n < DEFAULT_CHUNK_MAX && !final) {
    // Might still find a cut inside: scan what we have; if none, wait for more bytes.
    const c = scan(b, start, end);
    return c === end - start ? 0 : c;
  }
  if (n <= DEFAULT_CHUNK_MIN) return n;
  return scan(b, start, Math.min(end, start + DEFAULT_CHUNK_MAX));
}

function scan(b: Uint8Array, start: number, lim: number): number {
  const n = lim - start;
  if (n <= DEFAULT_CHUNK_MIN) return n;
  let h = 0;
  let i = start + DEFAULT_CHUNK_MIN;
  const norm = start + Math.min(DEFAULT_CHUNK_AVG, n);
  for (; i < norm; i++) {
    h = ((h << 1) + GEAR[b[i]!]!) >>> 0;
    if ((h & MASK_S) === 0) return i + 1 - start;
  }
  for (; i < lim; i++) {
    h = ((h << 1) + GEAR[b[i]!]!) >>> 0;
    if ((h & MASK_L) === 0) return i + 1 - start;
  }
  return n;
}

/**
 * Streaming chunker: push contiguous bytes, get complete chunks back; `end()` returns the rest.
 * Chunks are views into internal buffers that stay valid (they are never reused).
 */
export class Chunker {
  private buf: Uint8Array = new Uint8Array(0);

  push(data: Uint8Array): Uint8Array[] {
    const b = this.buf.length ? concat(this.buf, data) : data;
    const out: Uint8Array[] = [];
    let pos = 0;
    for (;;) {
      const len = nextCut(b, pos, b.length, false);
      if (len === 0) break;
      out.push(b.subarray(pos, pos + len));
      pos += len;
    }
    this.buf = b.subarray(pos);
    return out;
  }

  end(): Uint8Array[] {
    const b = this.buf;
    this.buf = new Uint8Array(0);
    const out: Uint8Array[] = [];
    let pos = 0;
    while (pos < b.length) {
      const len = nextCut(b, pos, b.length, true);
      out.push(b.subarray(pos, pos + len));
      pos += len;
    }
    return out;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
