/**
 * Thin views of an LmdbStore as the index and pack interfaces (ObjectIndex, ContentIndex, PackageIndex, PackStore):
 * they delegate to today's databases and methods, so that callers can move to the interfaces one by one.
 */
import fs from 'node:fs';
import { OBJECT_KINDS, type ObjectKind } from './object-store.js';
import { CONTENT_INDEX_VERSION, type DerivedEntry } from './content-index.js';
import { type LmdbStore, packKey } from './lmdb-store.js';
import type { ContentIndex, Location, ObjectIndex, PackageIndex, PackId, PackStore } from './interfaces.js';
import type { Oid } from '../model/oid.js';

/** The object index (`index` database) of an LmdbStore. */
export class LmdbObjectIndex implements ObjectIndex {
  constructor(private readonly store: LmdbStore) {}

  has(kind: ObjectKind, oid: Oid): boolean {
    return this.store.hasDurableObject(kind, oid);
  }

  locate(kind: ObjectKind, oid: Oid): Location | undefined {
    const loc = this.store.locate(kind, oid);
    return loc && { pack: String(loc.pack), offset: loc.offset, length: loc.length };
  }

  list(kind: ObjectKind, hexPrefix?: string): Iterable<Oid> {
    return this.store.listObjects(kind, hexPrefix);
  }

  listAll(): Iterable<{ kind: ObjectKind; oid: Oid; storedSize: number }> {
    return this.store.listAllObjects();
  }
}

/** The content indexes (`ix-parent`, `ix-root`, `ix-deriv`) of an LmdbStore. */
export class LmdbContentIndex implements ContentIndex {
  constructor(private readonly store: LmdbStore) {}

  version(): number | undefined {
    return this.store.meta.get('content-index') as number | undefined;
  }

  parents(key: Buffer): Buffer[] {
    return [...this.store.ixParent.getValues(key)] as Buffer[];
  }

  roots(key: Buffer): Buffer[] {
    return [...this.store.ixRoot.getValues(key)] as Buffer[];
  }

  derived(prefix: number, oid: Oid): Oid[] {
    return this.store.derivedCommits(prefix, oid);
  }

  *parentKeys(kind: 'blob' | 'tree', hexPrefix: string): Iterable<Buffer> {
    const code = OBJECT_KINDS[kind];
    const start = Buffer.concat([Buffer.from([code]), Buffer.from(hexPrefix.slice(0, hexPrefix.length & ~1), 'hex')]);
    for (const key of this.store.ixParent.getKeys({ start })) {
      const k = key as Buffer;
      if (k[0] !== code || !k.subarray(1).toString('hex').startsWith(hexPrefix)) {
        if (k[0] !== code || k.subarray(1).toString('hex').slice(0, hexPrefix.length) > hexPrefix) return;
        continue;
      }
      yield k;
    }
  }

  *scanParents(): Iterable<{ key: Buffer; value: Buffer }> {
    for (const { key, value } of this.store.ixParent.getRange({})) yield { key: key as Buffer, value: value as Buffer };
  }

  *entries(): Iterable<DerivedEntry> {
    for (const [name, db] of [['ix-parent', this.store.ixParent], ['ix-root', this.store.ixRoot], ['ix-deriv', this.store.ixDeriv]] as const) {
      for (const { key, value } of db.getRange({})) yield [name, key as Buffer, value as Buffer];
    }
  }

  put(e: DerivedEntry[]): void {
    this.store.writeTransaction(() => this.store.putDerived(e));
  }

  replaceAll(e: DerivedEntry[]): void {
    this.store.writeTransaction(() => {
      this.store.ixParent.clearSync();
      this.store.ixRoot.clearSync();
      this.store.ixDeriv.clearSync();
      this.store.putDerived(e);
      this.store.meta.putSync('content-index', CONTENT_INDEX_VERSION);
    });
  }
}

/** The package index (`ix-pkg`) of an LmdbStore. */
export class LmdbPackageIndex implements PackageIndex {
  constructor(private readonly store: LmdbStore) {}

  get(blob: Oid): Buffer | undefined {
    return this.store.ixPkg.get(Buffer.from(blob, 'hex'));
  }

  put(e: Array<[Buffer, Buffer]>): void {
    this.store.writeTransaction(() => { for (const [k, v] of e) this.store.ixPkg.putSync(k, v); });
  }

  *entries(): Iterable<[Buffer, Buffer]> {
    for (const { key, value } of this.store.ixPkg.getRange({})) yield [key as Buffer, value as Buffer];
  }

  replaceAll(e: Array<[Buffer, Buffer]>): void {
    this.store.writeTransaction(() => {
      this.store.ixPkg.clearSync();
      for (const [k, v] of e) this.store.ixPkg.putSync(k, v);
    });
  }
}

/** The `packs` database of an LmdbStore as a PackStore: ids are the u32 keys in decimal ("0", "1", …). */
export class LmdbPackStore implements PackStore {
  readonly contentNamed = false;

  constructor(private readonly store: LmdbStore) {}

  async put(bytes: Buffer): Promise<PackId> {
    return this.store.writeTransaction(() => {
      // The same allocator as the store's own pack writes (meta `next-pack`, docs/format.md).
      const next = (this.store.meta.get('next-pack') as number | undefined) ?? 0;
      this.store.packs.putSync(packKey(String(next)), bytes);
      this.store.meta.putSync('next-pack', next + 1);
      return String(next);
    }, bytes.length);
  }

  async get(id: PackId): Promise<Buffer | undefined> {
    const v = this.store.packs.get(packKey(id));
    return v && Buffer.from(v);
  }

  async getRange(id: PackId, offset: number, length: number): Promise<Buffer> {
    const v = this.store.packs.getBinaryFast(packKey(id));
    if (!v || offset + length > v.length) throw new RangeError(`pack ${id}: range ${offset}+${length} is outside the pack`);
    return Buffer.from(v.subarray(offset, offset + length));
  }

  async *list(): AsyncIterable<{ id: PackId; size: number; mtime: number }> {
    // LMDB keeps no time per pack: the data file's is an upper bound.
    const mtime = Math.floor(fs.statSync(this.store.path).mtimeMs);
    for (const { key, value } of this.store.packs.getRange({})) {
      yield { id: String((key as Buffer).readUInt32BE(0)), size: (value as Buffer).length, mtime };
    }
  }

  async delete(ids: PackId[]): Promise<void> {
    if (!ids.length) return;
    this.store.writeTransaction(() => { for (const id of ids) this.store.packs.removeSync(packKey(id)); });
  }
}
