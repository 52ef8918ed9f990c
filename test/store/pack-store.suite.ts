/**
 * The conformance suite of `PackStore`: every implementation (LMDB, remote over memory, faulty(memory) and S3) must
 * pass the same tests. A runner file calls `packStoreSuite(harness)`; this file registers no test on its own.
 */
import type { ExecutionContext } from 'ava';
import crypto from 'node:crypto';
import { RepositoryCorruptError } from '../../src/errors.js';
import type { PackId, PackStore } from '../../src/store/interfaces.js';
import { encodePack } from '../../src/store/lmdb-store.js';
import { encodeStored, objectKey } from '../../src/store/object-store.js';
import { hashBytes } from '../../src/model/oid.js';
import { suiteTests, type Made } from './suite.js';

/** What a pack-store runner's `make()` returns: a fresh, empty store, and hooks to reopen it and to damage a pack. */
export interface PackStoreMade extends Made<PackStore> {
  /** Closes `it` and opens the same store again. */
  reopen(): Promise<PackStore>;
  /** Flips one byte of pack `id` where it is stored (without going through the store); absent where not possible yet. */
  tamper?(id: PackId): Promise<void>;
}

/** How a runner provides fresh pack stores. */
export interface PackStoreHarness {
  name: string;
  /** Set to register every test as skipped, with this reason in the title. */
  skip?: string;
  make(): Promise<PackStoreMade>;
}

type Body = (t: ExecutionContext, made: PackStoreMade) => Promise<void>;

/** A pack in the real format: `n` random objects of `size` bytes each (stored raw), plus their keys. */
export function samplePack(n: number, size: number): { bytes: Buffer; objects: Array<[Buffer, Buffer]> } {
  const objects: Array<[Buffer, Buffer]> = Array.from({ length: n }, () => {
    const data = crypto.randomBytes(size);
    return [objectKey('chunk', hashBytes(data)), encodeStored(data)];
  });
  return { bytes: encodePack(objects).value, objects };
}

/** Every pack the store lists, by id. */
export async function listed(store: PackStore): Promise<Map<PackId, { size: number; mtime: number }>> {
  const out = new Map<PackId, { size: number; mtime: number }>();
  for await (const p of store.list()) out.set(p.id, { size: p.size, mtime: p.mtime });
  return out;
}

/** An id no pack of the store has. */
function absentId(store: PackStore): PackId {
  return store.contentNamed ? hashBytes(crypto.randomBytes(16)) : '4000000000';
}

/** Registers the PackStore conformance tests for `h`. */
export function packStoreSuite(h: PackStoreHarness): void {
  const it: (name: string, body: Body) => void = suiteTests(h);

  it('put and get round trip; a missing pack is undefined; packs survive a reopen', async (t, made) => {
    const store = made.it;
    const one = samplePack(3, 1000).bytes;
    const two = samplePack(5, 200).bytes;
    const a = await store.put(one);
    const b = await store.put(two);
    t.not(a, b);
    if (store.contentNamed) t.is(a, hashBytes(one), 'a content-named pack is named by its sha256');
    t.deepEqual(await store.get(a), one);
    t.deepEqual(await store.get(b), two);
    t.is(await store.get(absentId(store)), undefined);
    const again = await made.reopen();
    t.deepEqual(await again.get(a), one);
    t.deepEqual(await again.get(b), two);
  });

  it('getRange returns exactly the bytes asked for: each stored value of a pack', async (t, { it: store }) => {
    const { bytes, objects } = samplePack(4, 3000);
    const id = await store.put(bytes);
    const header = 4 + 41 * objects.length;
    let offset = header;
    for (const [, stored] of objects) {
      t.deepEqual(await store.getRange(id, offset, stored.length), stored);
      offset += stored.length;
    }
    t.deepEqual(await store.getRange(id, 0, 4), bytes.subarray(0, 4));
    t.deepEqual(await store.getRange(id, 0, bytes.length), bytes);
    t.deepEqual(await store.getRange(id, bytes.length - 1, 1), bytes.subarray(bytes.length - 1));
  });

  it('getRange outside a pack or of a missing pack throws', async (t, { it: store }) => {
    const { bytes } = samplePack(1, 100);
    const id = await store.put(bytes);
    await t.throwsAsync(store.getRange(id, bytes.length - 2, 4));
    await t.throwsAsync(store.getRange(id, bytes.length + 10, 4));
    await t.throwsAsync(store.getRange(absentId(store), 0, 4));
  });

  it('list names every pack with its size and a modification time', async (t, { it: store }) => {
    t.is((await listed(store)).size, 0);
    const packs = [samplePack(1, 10).bytes, samplePack(2, 5000).bytes, samplePack(7, 1).bytes];
    const ids = [];
    for (const p of packs) ids.push(await store.put(p));
    const all = await listed(store);
    t.deepEqual([...all.keys()].sort(), [...ids].sort());
    ids.forEach((id, i) => {
      t.is(all.get(id)?.size, packs[i]!.length);
      t.true(Math.abs(all.get(id)!.mtime - Date.now()) < 5 * 60_000, 'mtime is in ms, near now');
    });
  });

  it('delete removes packs; a missing id and an empty list are no error', async (t, { it: store }) => {
    const a = await store.put(samplePack(1, 100).bytes);
    const b = await store.put(samplePack(1, 200).bytes);
    await store.delete([a, absentId(store)]);
    await store.delete([]);
    t.is(await store.get(a), undefined);
    t.truthy(await store.get(b));
    t.deepEqual([...(await listed(store)).keys()], [b]);
    await store.delete([a]);
    await store.delete([b]);
    t.is((await listed(store)).size, 0);
  });

  it('a pack above 16 MiB round-trips (multipart on S3), ranges across its parts too', async (t, { it: store }) => {
    const big = Buffer.concat([samplePack(1, 64).bytes, crypto.randomBytes((16 << 20) + 100)]);
    const id = await store.put(big);
    const got = await store.get(id);
    t.is(got?.length, big.length);
    t.true(got?.equals(big));
    const at = (8 << 20) - 3;
    t.deepEqual(await store.getRange(id, at, 10), big.subarray(at, at + 10));
    t.is((await listed(store)).get(id)?.size, big.length);
  });

  it('content-named stores: put of the same bytes is idempotent, also when concurrent', async (t, { it: store }) => {
    if (!store.contentNamed) { t.pass('ids are allocated, not derived from content'); return; }
    const { bytes } = samplePack(3, 500);
    const a = await store.put(bytes);
    t.is(await store.put(Buffer.from(bytes)), a);
    const many = await Promise.all(Array.from({ length: 6 }, () => store.put(Buffer.from(bytes))));
    t.deepEqual(new Set(many), new Set([a]));
    t.deepEqual([...(await listed(store)).keys()], [a]);
    t.deepEqual(await store.get(a), bytes);
  });

  it('content-named stores: tampered bytes are refused on get with RepositoryCorruptError naming the pack', async (t, made) => {
    const store = made.it;
    if (!store.contentNamed || !made.tamper) { t.pass('no tamper hook for this store yet'); return; }
    const { bytes } = samplePack(2, 700);
    const id = await store.put(bytes);
    const other = await store.put(samplePack(1, 10).bytes);
    await made.tamper(id);
    const e = await t.throwsAsync(store.get(id), { instanceOf: RepositoryCorruptError });
    t.true(e?.message.includes(`packs/${id}`), e?.message);
    t.is(e?.code, 'ERR_REPOSITORY_CORRUPT');
    t.truthy(await store.get(other), 'other packs still read');
  });
}
