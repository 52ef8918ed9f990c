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
/** The same table as int32s, for the hot loop (int32 arithmetic never leaves V8's unboxed fast path). */
const GEAR_I32 = new Int32Array(GEAR.buffer);
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

/** Hash state where the last scanFrom stopped without a cut (module state keeps the hot loop free of allocations). */
let scanHash = 0;

/**
 * Continues the gear hash `h` at index `i`: returns the index of the byte that ends a chunk (MASK_S before `norm`,
 * MASK_L after), or -1 at `lim` with the hash in `scanHash`.
 */
function scanFrom(b: Uint8Array, i: number, h: number, norm: number, lim: number): number {
  // The hash is kept as a signed int32 (`| 0`, same bits as `>>> 0`) so the loop never boxes a number.
  let x = h | 0;
  for (; i < norm; i++) {
    x = ((x << 1) + GEAR_I32[b[i]!]!) | 0;
    if ((x & MASK_S) === 0) return i;
  }
  for (; i < lim; i++) {
    x = ((x << 1) + GEAR_I32[b[i]!]!) | 0;
    if ((x & MASK_L) === 0) return i;
  }
  scanHash = x;
  return -1;
}

/**
 * Streaming chunker: push contiguous bytes, get complete chunks back; `end()` returns the rest.
 * Chunks are views into the pushed buffers or into internal buffers; neither is ever written again, so they stay valid.
 *
 * The gear hash of the pending bytes is kept between pushes and new bytes are appended into spare capacity, so the
 * cost is linear in the input whatever the piece size (re-scanning and re-copying the pending bytes on every push
 * made small pieces quadratic: 1-byte pushes took seconds per 100 KB). Boundaries are exactly those of `nextCut`.
 */
export class Chunker {
  private buf: Uint8Array = new Uint8Array(0);
  /** buf[pos, len) is pending; buf[len, buf.length) is spare capacity, only when `owned`. */
  private pos = 0;
  private len = 0;
  private owned = false;
  /** Gear hash state of the pending chunk: bytes before index `next` of buf are hashed into `h`. */
  private next = 0;
  private h = 0;

  private append(data: Uint8Array): void {
    const pending = this.len - this.pos;
    if (pending === 0) {
      // Nothing pending: cut the caller's buffer directly (no copy).
      this.buf = data;
      this.pos = 0;
      this.len = data.length;
      this.owned = false;
      this.next = 0;
      this.h = 0;
      return;
    }
    if (this.owned && this.buf.length - this.len >= data.length) {
      this.buf.set(data, this.len);
      this.len += data.length;
      return;
    }
    const need = pending + data.length;
    const grown = new Uint8Array(Math.max(need, 2 * DEFAULT_CHUNK_MAX));
    grown.set(this.buf.subarray(this.pos, this.len), 0);
    grown.set(data, pending);
    this.next = Math.max(0, this.next - this.pos);
    this.buf = grown;
    this.pos = 0;
    this.len = need;
    this.owned = true;
  }

  /** Length of the next chunk at `pos`, or 0 when more bytes are needed (never 0 when `final`). */
  private cut(final: boolean): number {
    const start = this.pos;
    const n = this.len - start;
    if (n <= DEFAULT_CHUNK_MIN) return final ? n : 0;
    const lim = Math.min(this.len, start + DEFAULT_CHUNK_MAX);
    const norm = Math.min(lim, start + DEFAULT_CHUNK_AVG);
    const from = Math.max(this.next, start + DEFAULT_CHUNK_MIN);
    const end = scanFrom(this.buf, from, from === this.next ? this.h : 0, norm, lim);
    if (end >= 0) return end + 1 - start;
    if (lim === start + DEFAULT_CHUNK_MAX || final) return lim - start;
    this.next = lim;
    this.h = scanHash;
    return 0;
  }

  private take(final: boolean): Uint8Array[] {
    const out: Uint8Array[] = [];
    while (this.pos < this.len) {
      const n = this.cut(final);
      if (n === 0) break;
      out.push(this.buf.subarray(this.pos, this.pos + n));
      this.pos += n;
      this.next = 0;
      this.h = 0;
    }
    return out;
  }

  push(data: Uint8Array): Uint8Array[] {
    if (data.length === 0) return [];
    this.append(data);
    return this.take(false);
  }

  end(): Uint8Array[] {
    const out = this.take(true);
    this.buf = new Uint8Array(0);
    this.pos = this.len = this.next = this.h = 0;
    this.owned = false;
    return out;
  }
}
