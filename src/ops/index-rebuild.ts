/** `viva index rebuild` and fsck's check of the content index: both derive it from the tree, disk and commit objects. */
import type { ObjectKind } from '../store/object-store.js';
import { CONTENT_INDEX_VERSION, type DerivedEntry, derivedEntries } from '../store/content-index.js';
import type { Repository } from '../store/repository.js';

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

export interface IndexRebuildResult {
  entries: number;
}

/** Drops and rebuilds the content index in one transaction. Locking: needs the repository open for writing. */
export function rebuildIndex(repo: Repository): IndexRebuildResult {
  const want = [...expected(repo).values()].sort((a, b) => a[0].localeCompare(b[0]) || Buffer.compare(a[1], b[1]));
  const store = repo.store;
  store.env.transactionSync(() => {
    store.ixParent.clearSync();
    store.ixRoot.clearSync();
    store.putDerived(want);
    store.meta.putSync('content-index', CONTENT_INDEX_VERSION);
  });
  return { entries: want.length };
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
  for (const [name, db] of [['ix-parent', store.ixParent], ['ix-root', store.ixRoot]] as const) {
    for (const { key, value } of db.getRange({})) {
      const v = value as Buffer;
      const k = `${name} ${(key as Buffer).toString('hex')} ${v.toString('hex')}`;
      if (missing.delete(k)) continue;
      // An entry of an object that is gone (damage the object checks report) is not a separate index problem.
      const source = name === 'ix-parent' ? store.index.doesExist(v.subarray(0, 33)) : store.hasObject('commit', v.toString('hex'));
      if (source) extra++;
    }
  }
  if (missing.size) problems.push({ kind: 'index', oid: 'content-index', problem: `${missing.size} entries missing (e.g. ${[...missing][0]}): run 'viva index rebuild'` });
  if (extra) problems.push({ kind: 'index', oid: 'content-index', problem: `${extra} entries for objects that do not exist: run 'viva index rebuild'` });
  return problems;
}
