/** Bounded concurrency and the retry of reads that the remote stores share. */
import { RemoteError, RepositoryCorruptError } from '../../errors.js';
import { hashBytes } from '../../model/oid.js';
import type { Backend } from './backend.js';

/**
 * Runs at most `max` tasks at a time; the others wait in call order. A finished task hands its slot straight to the
 * next waiter, so the bound holds however many callers call `run` without awaiting.
 *
 * @example
 * const puts = new Limiter(4);
 * await Promise.all(packs.map((p) => puts.run(() => backend.put(key(p), p))));   // never more than 4 PUTs at once
 */
export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`a limiter needs at least one slot, not ${max}`);
  }

  /** Tasks running now. */
  get running(): number { return this.active; }

  /** Runs `task` when a slot is free and returns its result. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active < this.max) this.active++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/** Attempts of one read of an immutable object (a pack or an index segment), the first one included. */
export const READ_ATTEMPTS = 3;
/** The first pause between two attempts of a read, in ms; it doubles each time (with jitter). */
export const READ_BACKOFF_MS = 50;

/**
 * True for a failure that another attempt may not meet: a server error (5xx) or no answer at all (a connection reset,
 * a timeout). A refusal (403, 404, 416) is final.
 */
export function isTransient(err: unknown): boolean {
  return err instanceof RemoteError && (err.status === undefined || err.status >= 500);
}

/**
 * Runs `read` up to READ_ATTEMPTS times while it fails transiently. Only for reads of immutable, verified objects:
 * the SDK's own retry (S3Backend) covers a request until its response headers arrive, but not a body cut off while it
 * streams in (aws-sdk-js-v3 issues 4897 and 8098), and MemoryBackend and FaultyBackend retry nothing.
 */
export async function retryRead<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (e) {
      if (attempt >= READ_ATTEMPTS || !isTransient(e)) throw e;
      const ms = READ_BACKOFF_MS * 2 ** (attempt - 1) * (0.5 + Math.random() / 2);
      await new Promise((resolve) => setTimeout(resolve, ms));
    }
  }
}

/**
 * The bytes of a content-named object (`what` `key`, named `sha`), read with retryRead and checked against its name:
 * undefined when the key does not exist; RepositoryCorruptError naming the key when the bytes hash to something else.
 */
export async function getNamed(backend: Backend, key: string, sha: string, what: string): Promise<Buffer | undefined> {
  const r = await retryRead(() => backend.get(key));
  if (!r) return undefined;
  const actual = hashBytes(r.body);
  if (actual !== sha) {
    throw new RepositoryCorruptError(key, `its bytes hash to ${actual}, not to its name`,
      `${what} '${key}' does not match its name (repository damaged: run 'viva fsck')`, { key, ...(what === 'pack' ? { pack: sha } : {}), actual });
  }
  return r.body;
}

/** Runs `fn` on every item, at most `limit` at a time; the first failure rejects (after the running calls end). */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  let failed: { e: unknown } | undefined;
  const worker = async () => {
    while (i < items.length && !failed) {
      const item = items[i++]!;
      try { await fn(item); } catch (e) { failed ??= { e }; }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failed.e;
}
