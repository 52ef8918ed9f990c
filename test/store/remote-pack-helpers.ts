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
