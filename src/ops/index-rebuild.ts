/** `viva index rebuild` and fsck's check of the content index: both derive it from the tree, disk and commit objects. */
import { KIND_BY_CODE, type ObjectKind } from '../store/object-store.js';
import { CONTENT_INDEX_VERSION, type DerivedEntry, derivedEntries } from '../store/content-index.js';
import type { Repository } from '../store/repository.js';
import { readCommit } from '../store/typed.js';
import { packageIndexEntries } from './image-packages.js';
import { UsageError } from '../errors.js';
import type { ProgressEvent } from './ingest.js';

const META_KINDS: ObjectKind[] = ['tree', 'disk', 'commit'];

/** Every entry the index should hold, as `db key-hex value-hex` strings. */
function expected(repo: Repository, problems?: Array<{ oid: string; problem: string }>): Map<string, DerivedEntry> {
  const out = new Map<string, DerivedEntry>();
  for (const kind of META_KINDS) {
    for (const oid of repo.index.list(kind)) {
      let d: DerivedEntry[];
      try {
        d = derivedEntries(kind, oid, repo.objects.readObject(kind, oid));
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
  /** A bucket repository: the segments ingested again, and the packs whose headers were read (`fromPacks`). */
  bucket?: { segments: number; packs: number };
}

/** Options of {@link rebuildIndex}. */
export interface IndexRebuildOptions {
  /** A bucket repository whose segments are lost or damaged: index the packs themselves (their headers) first. */
  fromPacks?: boolean;
  onProgress?: (e: ProgressEvent) => void;
}

/**
 * Drops and rebuilds the content index and the package index (one entry per distinct package database of the
 * commits' images). For a repository in a bucket, this host's index of the bucket is rebuilt first (from the
 * segments, or with `fromPacks` from the packs). Locking: needs the repository open for writing.
 */
export async function rebuildIndex(repo: Repository, options: IndexRebuildOptions = {}): Promise<IndexRebuildResult> {
  if (options.fromPacks && !repo.inBucket) throw new UsageError('--from-packs is for a repository in a bucket (a local repository\'s index is its packs\')');
  const bucket = await repo.rebuildStorageIndex({
    fromPacks: options.fromPacks,
    onProgress: (done, total) => options.onProgress?.({ phase: 'reading pack headers', files: done, bytes: 0, totalFiles: total }),
  });
  const want = [...expected(repo).values()].sort((a, b) => a[0].localeCompare(b[0]) || Buffer.compare(a[1], b[1]));
  const pkgs = new Map<string, [Buffer, Buffer]>();
  // Emptied first, so that the package databases are parsed again rather than read back from the old entries.
  repo.packageIndex.replaceAll([]);
  for (const oid of repo.index.list('commit')) {
    const c = readCommit(repo.objects, oid);
    for (const e of await packageIndexEntries(repo, c)) pkgs.set(e[0].toString('hex'), e);
  }
  repo.contentIndex.replaceAll(want);
  repo.packageIndex.replaceAll([...pkgs.values()]);
  return { entries: want.length, packageDatabases: pkgs.size, ...(bucket ? { bucket } : {}) };
}

/** Whether an `ix-parent` value (object key: kind byte + id) names an object in the index. */
function isIndexed(repo: Repository, v: Buffer): boolean {
  const kind = KIND_BY_CODE[v[0]!];
  return kind !== undefined && v.length >= 33 && repo.index.has(kind, v.subarray(1, 33).toString('hex'));
}

/** Differences between the content index and what the objects imply (fsck). */
export function checkIndex(repo: Repository): Array<{ kind: 'index'; oid: string; problem: string }> {
  const version = repo.contentIndex.version();
  if (version !== CONTENT_INDEX_VERSION) {
    return [{ kind: 'index', oid: 'content-index', problem: `missing or version ${version ?? 'none'} (want ${CONTENT_INDEX_VERSION}): run 'viva index rebuild'` }];
  }
  const problems: Array<{ kind: 'index'; oid: string; problem: string }> = [];
  const bad: Array<{ oid: string; problem: string }> = [];
  const want = expected(repo, bad);
  for (const b of bad) problems.push({ kind: 'index', ...b });
  let extra = 0;
  const missing = new Set(want.keys());
  for (const [name, key, v] of repo.contentIndex.entries()) {
    const k = `${name} ${key.toString('hex')} ${v.toString('hex')}`;
    if (missing.delete(k)) continue;
    // An entry of an object that is gone (damage the object checks report) is not a separate index problem.
    const source = name === 'ix-parent' ? isIndexed(repo, v) : repo.objects.hasObject('commit', v.toString('hex'));
    if (source) extra++;
  }
  // Package index entries: keyed by a package database blob that exists, holding an inventory.
  for (const [key, value] of repo.packageIndex.entries()) {
    const oid = key.toString('hex');
    let ok = false;
    try { ok = Array.isArray((JSON.parse(value.toString('utf8')) as { packages?: unknown }).packages); } catch { ok = false; }
    if (!ok) problems.push({ kind: 'index', oid, problem: `package index entry does not hold an inventory: run 'viva index rebuild'` });
    else if (!repo.objects.hasObject('blob', oid)) problems.push({ kind: 'index', oid, problem: `package index entry for a blob that does not exist: run 'viva index rebuild'` });
  }
  if (missing.size) problems.push({ kind: 'index', oid: 'content-index', problem: `${missing.size} entries missing (e.g. ${[...missing][0]}): run 'viva index rebuild'` });
  if (extra) problems.push({ kind: 'index', oid: 'content-index', problem: `${extra} entries for objects that do not exist: run 'viva index rebuild'` });
  return problems;
}
