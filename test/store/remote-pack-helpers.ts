/** Helpers of the remote pack and segment tests. */
import type { Backend } from '../../src/store/remote/backend.js';

/** Flips one byte in the middle of the object at `key`, writing it back through the backend (not through a store). */
export async function tamperKey(backend: Backend, key: string): Promise<void> {
  const got = await backend.get(key);
  if (!got) throw new Error(`nothing to tamper with at '${key}'`);
  const body = Buffer.from(got.body);
  body[body.length >> 1] ^= 0x01;
  const r = await backend.put(key, body);
  if (!r.ok) throw new Error(`tampered put of '${key}' failed`);
}

/** A backend wrapper that counts the PUTs in flight at once (and the most there ever were). */
export class InFlightBackend implements Backend {
  putsNow = 0;
  maxPuts = 0;

  constructor(private readonly inner: Backend) {}

  get url(): string { return this.inner.url; }
  get(...a: Parameters<Backend['get']>): ReturnType<Backend['get']> { return this.inner.get(...a); }
  head(...a: Parameters<Backend['head']>): ReturnType<Backend['head']> { return this.inner.head(...a); }
  list(prefix: string): ReturnType<Backend['list']> { return this.inner.list(prefix); }
  delete(keys: string[]): Promise<void> { return this.inner.delete(keys); }

  async put(...a: Parameters<Backend['put']>): ReturnType<Backend['put']> {
    this.putsNow++;
    this.maxPuts = Math.max(this.maxPuts, this.putsNow);
    try {
      return await this.inner.put(...a);
    } finally {
      this.putsNow--;
    }
  }
}
