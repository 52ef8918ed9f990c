/** A `Backend` held in Maps: S3's semantics (conditional PUTs, paging, ranges, ETags) without a server, for tests. */
import { createHash } from 'node:crypto';
import { RemoteError } from '../../errors.js';
import { PAGE_SIZE, type Backend, type ByteRange, type ObjectInfo, type PutCondition, type PutResult } from './backend.js';

interface Stored { body: Buffer; etag: string; mtime: number }

/**
 * An in-process bucket. Each operation yields to the event loop once before it acts, so that concurrent callers
 * interleave as they would against a server, and then acts atomically: of N concurrent creates exactly one wins, as
 * with RGW's `If-None-Match: *`. ETags are the body's MD5 in hex, as S3's for a single-part object.
 * Conditions as S3: `ifNoneMatch: '*'` on an existing key and `ifMatch` on a missing key or another ETag give
 * `{ ok: false, why: 'precondition' }`.
 *
 * @example
 * const b = new MemoryBackend('memory://test');
 * await b.put('refs/heads/main', Buffer.from('{}'), { ifNoneMatch: '*' });
 */
export class MemoryBackend implements Backend {
  private readonly objects = new Map<string, Stored>();

  /** `url` names the bucket in errors; `pageSize` is the listing page (S3: 1000). */
  constructor(readonly url = 'memory://', private readonly pageSize = PAGE_SIZE) {}

  async get(key: string, range?: ByteRange): Promise<{ body: Buffer; etag: string } | undefined> {
    await tick();
    return this.getSync(key, range);
  }

  /** `get` without yielding: an in-process bucket can answer a synchronous read (see `SyncReader`). */
  getSync(key: string, range?: ByteRange): { body: Buffer; etag: string } | undefined {
    const o = this.objects.get(key);
    if (!o) return undefined;
    if (!range) return { body: Buffer.from(o.body), etag: o.etag };
    checkRange(range);
    if (range.offset >= o.body.length) throw new RemoteError(this.url, `range ${range.offset}+${range.length} of '${key}' is not satisfiable (size ${o.body.length})`, 416);
    return { body: Buffer.from(o.body.subarray(range.offset, range.offset + range.length)), etag: o.etag };
  }

  async head(key: string): Promise<Omit<ObjectInfo, 'key'> | undefined> {
    await tick();
    const o = this.objects.get(key);
    return o && { etag: o.etag, size: o.body.length, mtime: o.mtime };
  }

  async put(key: string, body: Buffer, cond?: PutCondition): Promise<PutResult> {
    await tick();
    const cur = this.objects.get(key);
    if (cond && 'ifNoneMatch' in cond && cur) return { ok: false, why: 'precondition' };
    if (cond && 'ifMatch' in cond && (!cur || cur.etag !== cond.ifMatch)) return { ok: false, why: 'precondition' };
    const etag = createHash('md5').update(body).digest('hex');
    this.objects.set(key, { body: Buffer.from(body), etag, mtime: Date.now() });
    return { ok: true, etag };
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let after = '';
    for (;;) {
      await tick();
      const page = [...this.objects.keys()].filter((k) => k.startsWith(prefix) && k > after).sort().slice(0, this.pageSize);
      for (const key of page) {
        const o = this.objects.get(key);
        if (o) yield { key, etag: o.etag, size: o.body.length, mtime: o.mtime };
      }
      if (page.length < this.pageSize) return;
      after = page[page.length - 1]!;
    }
  }

  async delete(keys: string[]): Promise<void> {
    await tick();
    for (const k of keys) this.objects.delete(k);
  }
}

/** Throws on a range that S3 could not express (negative, fractional or empty). */
export function checkRange(range: ByteRange): void {
  if (!Number.isSafeInteger(range.offset) || !Number.isSafeInteger(range.length) || range.offset < 0 || range.length < 1) {
    throw new RangeError(`invalid byte range ${range.offset}+${range.length}`);
  }
}

function tick(): Promise<void> { return new Promise((resolve) => setImmediate(resolve)); }
