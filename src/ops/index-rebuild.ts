/** `viva index rebuild` and fsck's check of the content index: both derive it from the tree, disk and commit objects. */
import type { ObjectKind } from '../store/object-store.js';
import { CONTENT_INDEX_VERSION, type DerivedEntry, derivedEntries } from '../store/content-index.js';
import type { Repository } from '../store/repository.js';
import { readCommit } from '../store/typed.js';
import { packageIndexEntries } from './image-packages.js';

const META_KINDS: ObjectKind[] = ['tree', 'disk', 'commit'];

/** Every entry the index should hold, as `db key-hex value-hex` strings. */
function expected(repo: Repository, problems?: Array<{ oid: string; problem: string }>): Map<string, DerivedEntry> {
  const out = new Map<string, DerivedEntry>();
  for (const kind of META_KINDS) {
    for (const oid of repo.store.listObjects(kind)) {
      let d: DerivedEntry[];
      try {
        d = derivedEntries(kind, oid, repo.store.readObject(kind, oid));
      } catch (e) {
        problems?.push({ oid, problem: `${kind} cannot be indexed: ${(e as Error).message}` });
        continue;
      }
      for (const x of d) out.set(`${x[0]} ${x[1].toString('hex')} ${x[2].toString('hex')}`, x);
    }
  }
  return out;
}

/** What {@link rebuildIndex} wrote: content index entries and package databases indexed. */
export interface IndexRebuildResult {
  entries: number;
  packageDatabases: number;
}

/**
 * Drops and rebuilds the content index and the package index (one entry per distinct package database of the
 * commits' images) in one transaction. Locking: needs the repository open for writing.
 */
export async function rebuildIndex(repo: Repository): Promise<IndexRebuildResult> {
  const want = [...expected(repo).values()].sort((a, b) => a[0].localeCompare(b[0]) || Buffer.compare(a[1], b[1]));
  const store = repo.store;
  const pkgs = new Map<string, [Buffer, Buffer]>();
  store.writeTransaction(() => store.ixPkg.clearSync());
  for (const oid of store.listObjects('commit')) {
    const c = readCommit(store, oid);
    for (const e of await packageIndexEntries(repo, c)) pkgs.set(e[0].toString('hex'), e);
  }
  store.writeTransaction(() => {
    store.ixParent.clearSync();
    store.ixRoot.clearSync();
    store.ixDeriv.clearSync();
    store.putDerived(want);
    for (const [k, v] of pkgs.values()) store.ixPkg.putSync(k, v);
    store.meta.putSync('content-index', CONTENT_INDEX_VERSION);
  });
  return { entries: want.length, packageDatabases: pkgs.size };
}

/** Differences between the content index and what the objects imply (fsck). */
export function checkIndex(repo: Repository): Array<{ kind: 'index'; oid: string; problem: string }> {
  const store = repo.store;
  const version = store.meta.get('content-index') as number | undefined;
  if (version !== CONTENT_INDEX_VERSION) {
    return [{ kind: 'index', oid: 'content-index', problem: `missing or version ${version ?? 'none'} (want ${CONTENT_INDEX_VERSION}): run 'viva index rebuild'` }];
  }
  const problems: Array<{ kind: 'index'; oid: string; problem: string }> = [];
  const bad: Array<{ oid: string; problem: string }> = [];
  const want = expected(repo, bad);
  for (const b of bad) problems.push({ kind: 'index', ...b });
  let extra = 0;
  const missing = new Set(want.keys());
  for (const [name, db] of [['ix-parent', store.ixParent], ['ix-root', store.ixRoot], ['ix-deriv', store.ixDeriv]] as const) {
    for (const { key, value } of db.getRange({})) {
      const v = value as Buffer;
      const k = `${name} ${(key as Buffer).toString('hex')} ${v.toString('hex')}`;
      if (missing.delete(k)) continue;
      // An entry of an object that is gone (damage the object checks report) is not a separate index problem.
      const source = name === 'ix-parent' ? store.index.doesExist(v.subarray(0, 33)) : store.hasObject('commit', v.toString('hex'));
      if (source) extra++;
    }
  }
  // Package index entries: keyed by a package database blob that exists, holding an inventory.
  for (const { key, value } of store.ixPkg.getRange({})) {
    const oid = (key as Buffer).toString('hex');
    let ok = false;
    try { ok = Array.isArray((JSON.parse((value as Buffer).toString('utf8')) as { packages?: unknown }).packages); } catch { ok = false; }
    if (!ok) problems.push({ kind: 'index', oid, problem: `package index entry does not hold an inventory: run 'viva index rebuild'` });
    else if (!store.hasObject('blob', oid)) problems.push({ kind: 'index', oid, problem: `package index entry for a blob that does not exist: run 'viva index rebuild'` });
  }
  if (missing.size) problems.push({ kind: 'index', oid: 'content-index', problem: `${missing.size} entries missing (e.g. ${[...missing][0]}): run 'viva index rebuild'` });
  if (extra) problems.push({ kind: 'index', oid: 'content-index', problem: `${extra} entries for objects that do not exist: run 'viva index rebuild'` });
  return problems;
}
