/**
 * What packages an image holds: the package databases of its file systems, their parsed inventories (from the
 * package index `ix-pkg` when there), the index entries a new commit writes, and package-level diffs.
 */
import { UsageError } from '../errors.js';
import type { Commit } from '../model/commit.js';
import { diskFileSystems, partitionDirName } from '../model/disk.js';
import type { Oid } from '../model/oid.js';
import { PACKAGE_DATABASES, type Inventory, type PackageChange, type PackageFormat, diffInventories, parseInventory, versionOrder } from '../packages/inventory.js';
import type { Repository } from '../store/repository.js';
import { readBlobBytes, readDisk, tryReadPath } from '../store/typed.js';
import { ensureContent } from '../sync/partial.js';
import { resolveSpec } from './resolve.js';


/**
 * The file systems of an image, where package databases live: a tree commit's root; each file system of a disk
 * commit (`partition` 'pN', 'VG/LV' for an LVM logical volume, none for a bare file system). Raw regions hold none.
 */
export function imageFileSystems(repo: Repository, c: Pick<Commit, 'rootKind' | 'root'>): Array<{ partition?: string; tree: Oid }> {
  if (c.rootKind !== 'disk') return [{ tree: c.root }];
  const out: Array<{ partition?: string; tree: Oid }> = [];
  for (const f of diskFileSystems(readDisk(repo.objects, c.root))) {
    const where = f.volume ? `${f.volume.vg}/${f.volume.name}` : f.region.partition ? partitionDirName(f.region.partition.index) : undefined;
    out.push({ ...(where ? { partition: where } : {}), tree: f.content.tree });
  }
  return out;
}

/**
 * The package inventories of an image (`REV[:path]`): of the directory named, or — for a whole disk commit — of every
 * file system on it that has a package database, each with its `partition`. Empty when there is none.
 */
export async function inventoriesOf(repo: Repository, spec: string): Promise<Inventory[]> {
  const root = resolveSpec(repo, spec);
  if (root.commit.rootKind === 'disk' && root.path.length === 0) {
    const out: Inventory[] = [];
    for (const fsys of imageFileSystems(repo, root.commit)) {
      const inv = await inventoryAt(repo, fsys.tree);
      if (inv) out.push(fsys.partition ? { ...inv, partition: fsys.partition } : inv);
    }
    return out;
  }
  if (root.entry.type !== 'dir' || !root.entry.oid) return [];
  const inv = await inventoryAt(repo, root.entry.oid);
  if (!inv) return [];
  // A partition's directory of a disk commit (`vm/web:p1`) says so too.
  const first = root.path.toString('latin1').split('/')[0]!;
  const partition = root.commit.rootKind === 'disk' && root.path.length === first.length && /^p\d+$/.test(first) ? first : undefined;
  return [partition ? { ...inv, partition } : inv];
}

/** The first package inventory of an image (see inventoriesOf), or undefined. */
export async function inventoryOf(repo: Repository, spec: string): Promise<Inventory | undefined> {
  return (await inventoriesOf(repo, spec))[0];
}

/** The package database file of an image directory (its tree id): the first of PACKAGE_DATABASES present in it. */
export function packageDatabaseOf(repo: Repository, dir: Oid): { format: PackageFormat; path: string; oid: Oid; size: number } | undefined {
  for (const db of PACKAGE_DATABASES) {
    const e = tryReadPath(repo.objects, dir, Buffer.from(db.path));
    if (e?.type === 'file' && e.oid) return { format: db.format, path: db.path, oid: e.oid, size: e.size };
  }
  return undefined;
}

/**
 * The package inventory of a package database file: from the package index (`ix-pkg`, keyed by the file's content
 * id, so it can never be stale) when it is there, else parsed from the blob.
 */
export async function inventoryOfDatabase(repo: Repository, db: { format: PackageFormat; path: string; oid: Oid; size: number }): Promise<Inventory> {
  const cached = repo.packageIndex.get(db.oid);
  if (cached) {
    try { return { ...(JSON.parse(cached.toString('utf8')) as Inventory), file: db.path }; } catch { /* damaged: parse again (fsck reports it) */ }
  }
  if (db.size > 256 << 20) throw new UsageError(`${db.path} is ${db.size} bytes: too large for a package database`);
  await ensureContent(repo, [db.oid]);
  return parseInventory(db.format, await readBlobBytes(repo.objects, db.oid, db.size, db.path), db.path);
}

/** The index entry (key, value) for the package database of an image directory (its tree id), if it has one. */
export async function packageIndexEntry(repo: Repository, dir: Oid): Promise<[Buffer, Buffer] | undefined> {
  const db = packageDatabaseOf(repo, dir);
  if (!db) return undefined;
  const inv = await inventoryOfDatabase(repo, db);
  return [Buffer.from(db.oid, 'hex'), Buffer.from(JSON.stringify(inv))];
}

/** The package index entries of an image: one per file system that has a package database (see imageFileSystems). */
export async function packageIndexEntries(repo: Repository, c: Pick<Commit, 'rootKind' | 'root'>): Promise<Array<[Buffer, Buffer]>> {
  const out: Array<[Buffer, Buffer]> = [];
  for (const fsys of imageFileSystems(repo, c)) {
    const e = await packageIndexEntry(repo, fsys.tree).catch(() => undefined);
    if (e) out.push(e);
  }
  return out;
}

/** The package inventory of an image directory (its tree id), or undefined when it holds no package database. */
export async function inventoryAt(repo: Repository, dir: Oid): Promise<Inventory | undefined> {
  const db = packageDatabaseOf(repo, dir);
  return db ? inventoryOfDatabase(repo, db) : undefined;
}

/** The package changes between two images ({@link diffPackages}), with each side's package database. */
export interface PackageDiff {
  /** The first inventory of each side (see inventoriesOf); `changes` covers all of them. */
  a?: Inventory;
  b?: Inventory;
  changes: PackageChange[];
}

/**
 * Package-level diff of two images, in the version order of the newer image's package format. Images with one
 * package database each are compared directly (a tree with a disk's p1, p1 with p2); disks with several are compared
 * partition by partition, and each change names its `partition`.
 */
export async function diffPackages(repo: Repository, a: string, b: string): Promise<PackageDiff> {
  const la = await inventoriesOf(repo, a);
  const lb = await inventoriesOf(repo, b);
  const pairs: Array<[Inventory | undefined, Inventory | undefined]> = [];
  if (la.length <= 1 && lb.length <= 1) pairs.push([la[0], lb[0]]);
  else {
    const key = (i: Inventory) => i.partition ?? '';
    for (const x of la) pairs.push([x, lb.find((y) => key(y) === key(x))]);
    for (const y of lb) if (!la.some((x) => key(x) === key(y))) pairs.push([undefined, y]);
  }
  const changes: PackageChange[] = [];
  for (const [x, y] of pairs) {
    const order = versionOrder(y?.format ?? x?.format);
    const partition = y?.partition ?? x?.partition;
    for (const c of diffInventories(x?.packages ?? [], y?.packages ?? [], order)) changes.push(partition ? { partition, ...c } : c);
  }
  return { ...(la[0] ? { a: la[0] } : {}), ...(lb[0] ? { b: lb[0] } : {}), changes };
}
