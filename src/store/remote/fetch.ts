/**
 * Bringing objects of a bucket repository into the host's cache: synchronously for a read that missed (through
 * `SyncReader`), asynchronously ahead of bulk readers (`prefetch`). Everything that enters the cache is checked
 * first: a whole pack against its name (sha256), an object fetched alone against its id, so a damaged or tampered
 * bucket can never put wrong bytes into the cache (blob records, whose id is their content's hash, only come in
 * whole packs for that reason).
 */
import { RepositoryCorruptError } from '../../errors.js';
import { hashBytes } from '../../model/oid.js';
import type { LmdbStore } from '../lmdb-store.js';
import { decodePackHeader } from '../lmdb-store.js';
import { KIND_BY_CODE, decodeStored, type ObjectKind } from '../object-store.js';
import type { Location } from '../interfaces.js';
import type { RemoteIndex } from './remote-index.js';
import { packKey } from './remote-packs.js';
import type { SyncReader } from './sync-reader.js';
import type { Backend } from './backend.js';
import { forEachLimit } from './concurrency.js';

/** A pack up to this size is fetched whole even for one object (one request either way; its neighbours come along). */
export const WHOLE_PACK_MAX = 1 << 20;
/** Packs fetched at once by `prefetch`. */
export const PREFETCH_CONCURRENCY = 6;

/** One GET the fetcher plans: a whole pack, or one object's stored bytes. */
type Plan = { pack: string; whole: true; keys: Buffer[] } | { pack: string; whole: false; key: Buffer; loc: Location };

/**
 * Fetches objects named by their 33-byte keys into `store` (the host cache), from the bucket the index describes.
 *
 * @example
 * const f = new RemoteFetcher(cache, remoteIndex, backend.url);
 * f.fetchSync([objectKey('tree', oid)], SyncReader.for(backend));   // blocks; then cache.readObject('tree', oid)
 */
export class RemoteFetcher {
  constructor(private readonly store: LmdbStore, private readonly index: RemoteIndex, private readonly url: string) {}

  /**
   * Brings the objects in, blocking this thread; keys the bucket's index does not know are left out (the caller
   * reports them missing). Throws RepositoryCorruptError for bytes that do not match, RemoteError when the bucket fails.
   */
  fetchSync(keys: Buffer[], reader: SyncReader): void {
    const plans = this.plan(keys);
    if (plans.length === 0) return;
    const answers = reader.getMany(plans.map((p) => (p.whole ? { key: packKey(p.pack) } : { key: packKey(p.pack), range: { offset: p.loc.offset, length: p.loc.length } })));
    const objects: Array<[Buffer, Buffer]> = [];
    plans.forEach((p, i) => objects.push(...this.take(p, answers[i]?.body)));
    this.store.putCached(objects);
  }

  /** The asynchronous form, for bulk readers: up to PREFETCH_CONCURRENCY GETs at once. */
  async prefetch(keys: Buffer[], backend: Backend): Promise<void> {
    await forEachLimit(this.plan(keys), PREFETCH_CONCURRENCY, async (p) => {
      const got = await backend.get(packKey(p.pack), p.whole ? undefined : { offset: p.loc.offset, length: p.loc.length });
      this.store.putCached(this.take(p, got?.body));
    });
  }

  /** Groups the keys not in the cache by pack: whole packs where worth it (or needed to check), ranges otherwise. */
  private plan(keys: Buffer[]): Plan[] {
    const byPack = new Map<string, Array<{ key: Buffer; loc: Location }>>();
    for (const key of keys) {
      if (this.store.index.doesExist(key)) continue;
      const loc = this.index.locate(key) ?? this.index.liveCopies(key, false)[0];
      if (!loc) continue;
      let list = byPack.get(loc.pack);
      if (!list) byPack.set(loc.pack, (list = []));
      if (!list.some((x) => x.key.equals(key))) list.push({ key, loc });
    }
    const plans: Plan[] = [];
    for (const [pack, wanted] of byPack) {
      const size = this.index.pack(pack)?.size ?? Infinity;
      const needsWhole = wanted.some((w) => KIND_BY_CODE[w.key[0]!] === 'blob');
      if (needsWhole || wanted.length > 1 || size <= WHOLE_PACK_MAX) plans.push({ pack, whole: true, keys: wanted.map((w) => w.key) });
      else plans.push({ pack, whole: false, key: wanted[0]!.key, loc: wanted[0]!.loc });
    }
    return plans;
  }

  /** Checks what a GET brought; returns its objects (key, stored value) for the cache. */
  private take(p: Plan, body: Buffer | undefined): Array<[Buffer, Buffer]> {
    const where = packKey(p.pack);
    if (!body) {
      throw new RepositoryCorruptError(where, 'is missing', `pack '${where}' is missing from ${this.url} (run 'viva fsck'; another host's gc may have repacked it: 'viva index rebuild')`, { missing: true, pack: p.pack });
    }
    if (p.whole) {
      const actual = hashBytes(body);
      if (actual !== p.pack) throw new RepositoryCorruptError(where, `its bytes hash to ${actual}`, `pack '${where}' does not match its name (repository damaged: run 'viva fsck')`, { pack: p.pack, actual });
      return decodePackHeader(where, body).map((e) => [e.key, body.subarray(e.offset, e.offset + e.length)]);
    }
    const kind = KIND_BY_CODE[p.key[0]!] as ObjectKind;
    const oid = p.key.subarray(1).toString('hex');
    let data: Buffer;
    try {
      data = decodeStored(body);
    } catch {
      throw RepositoryCorruptError.mismatch(kind, oid, where);
    }
    if (hashBytes(data) !== oid) throw RepositoryCorruptError.mismatch(kind, oid, where);
    return [[p.key, body]];
  }
}
