/** Host settings and shared settings of a repository in LMDB's `meta` database (MetaStore, SharedMeta). */
import type { LmdbStore } from './lmdb-store.js';
import type { MetaStore, SharedMeta } from './interfaces.js';

/** The keys of `meta` in `prefix`…`prefix\uffff`, in key order. */
function* rangeOf(store: LmdbStore, prefix: string): Iterable<[string, unknown]> {
  for (const { key, value } of store.meta.getRange({ start: prefix, end: `${prefix}\uffff` })) yield [key as string, value];
}

/** Runs `fn` in a write transaction of its own, or in the caller's when one is open already. */
function write<T>(store: LmdbStore, fn: () => T): T {
  return store.inWriteTransaction ? fn() : store.writeTransaction(fn);
}

/**
 * The settings all hosts of a repository share (`tree-disk:*`): for a local repository, the same `meta` database.
 * Writes are one write transaction each (or part of the caller's).
 */
export class LmdbSharedMeta implements SharedMeta {
  constructor(private readonly store: LmdbStore) {}

  get<T>(key: string): T | undefined {
    return this.store.meta.get(key) as T | undefined;
  }

  range(prefix: string): Iterable<[string, unknown]> {
    return rangeOf(this.store, prefix);
  }

  async put(key: string, v: unknown): Promise<void> {
    write(this.store, () => { this.store.meta.putSync(key, v); });
  }

  async remove(key: string): Promise<void> {
    write(this.store, () => { this.store.meta.removeSync(key); });
  }
}

/**
 * This host's settings in LMDB's `meta` database (remotes, upstreams, checkout records, merge state, ...). Each write
 * is one durable write transaction (putAll: one for the batch), or part of the caller's when one is open.
 */
export class LmdbMetaStore implements MetaStore {
  readonly shared: SharedMeta;

  constructor(private readonly store: LmdbStore) {
    this.shared = new LmdbSharedMeta(store);
  }

  get<T>(key: string): T | undefined {
    return this.store.meta.get(key) as T | undefined;
  }

  put(key: string, v: unknown): void {
    write(this.store, () => { this.store.meta.putSync(key, v); });
  }

  putAll(entries: Array<[string, unknown]>): void {
    if (!entries.length) return;
    write(this.store, () => { for (const [k, v] of entries) this.store.meta.putSync(k, v); });
  }

  remove(key: string): void {
    write(this.store, () => { this.store.meta.removeSync(key); });
  }

  range(prefix: string): Iterable<[string, unknown]> {
    return rangeOf(this.store, prefix);
  }
}
