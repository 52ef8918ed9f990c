/**
 * Partial clones (`clone --filter manifests`): commits, trees and disks are local, file content is fetched on demand
 * from the remote the clone came from (its "promisor", as git calls it) the first time a command needs it —
 * checkout, cat, diff -p, grep, package queries — or all at once with `viva fetch --content REV`.
 */
import { type BlobRecord, decodeBlob } from '../model/blob.js';
import type { Oid } from '../model/oid.js';
import type { Repository } from '../store/repository.js';
import { readBlobRecord, commitTree, readDisk } from '../store/typed.js';
import { diskReferences } from '../model/disk.js';
import { walkTree } from '../tree/walk.js';
import type { ObjectId } from './peer.js';

export interface PartialConfig {
  remote: string;
  filter: 'manifests';
}

const KEY = 'partial';

export function partialConfig(repo: Repository): PartialConfig | undefined {
  return repo.meta.get(KEY) as PartialConfig | undefined;
}

export function setPartial(repo: Repository, cfg: PartialConfig): void {
  repo.meta.put(KEY, cfg);
}

/** What is missing of these blobs: the blob (record and chunks) when its record is absent, else its absent chunks. */
export function missingContent(repo: Repository, blobs: Iterable<Oid>): ObjectId[] {
  const out: ObjectId[] = [];
  const seen = new Set<Oid>();
  for (const b of blobs) {
    if (!b || seen.has(b)) continue;
    seen.add(b);
    if (!repo.objects.hasObject('blob', b)) { out.push({ kind: 'blob', oid: b }); continue; }
    const rec = readBlobRecord(repo.objects, b);
    if (rec.form !== 'chunked') continue;
    for (const s of rec.segments) {
      if (s.kind === 'chunk' && !seen.has(s.oid) && !repo.objects.hasObject('chunk', s.oid)) { seen.add(s.oid); out.push({ kind: 'chunk', oid: s.oid }); }
    }
  }
  return out;
}

/** Fetches `ids` (with their children, or, with `manifests`, blob records without their chunks); resolves with the bytes received. */
/** Key prefix, in the store's meta database, of blob records received without their content (see {@link putPromisedRecords}). */
const PROMISED = 'promised-blob:';

/**
 * Keeps blob records a demand fetch received without their chunks. A blob's id is the hash of its whole content,
 * so such a record cannot be verified until every chunk is local, and it does not go into the object store (which
 * holds verified objects only): it is kept beside it, from the promisor remote (trusted as the clone's source), and
 * every chunk read through it is still verified against its own id. A later full fetch stores the verified record,
 * which is read in preference.
 */
export function putPromisedRecords(repo: Repository, records: Array<{ oid: Oid; raw: Buffer }>): void {
  if (!records.length) return;
  repo.meta.putAll(records.map((r) => [PROMISED + r.oid, r.raw]));
}

/** A blob record kept by {@link putPromisedRecords}, or undefined. */
export function tryReadPromisedRecord(repo: Repository, oid: Oid): BlobRecord | undefined {
  const raw = repo.meta.get(PROMISED + oid) as Uint8Array | undefined;
  return raw ? decodeBlob(raw) : undefined;
}

/** Whether a blob's record is local: stored, or kept by {@link putPromisedRecords}. */
export function hasBlobRecord(repo: Repository, oid: Oid): boolean {
  return repo.objects.hasObject('blob', oid) || repo.meta.get(PROMISED + oid) !== undefined;
}

type Fetcher = (repo: Repository, remote: string, ids: ObjectId[], options?: { filter?: 'manifests' }) => Promise<number>;
let fetcher: Fetcher | undefined;

/** Installed by ops/sync.ts (which knows how to reach remotes); keeps this module free of transport code. */
export function setContentFetcher(f: Fetcher): void {
  fetcher = f;
}

/** Makes sure these blobs (and their chunks) are present, fetching what a partial clone lacks. */
export async function ensureContent(repo: Repository, blobs: Iterable<Oid>): Promise<number> {
  const cfg = partialConfig(repo);
  if (!cfg) return 0;
  const missing = missingContent(repo, blobs);
  if (!missing.length || !fetcher) return 0;
  await fetcher(repo, cfg.remote, missing);
  return missing.length;
}

/**
 * Fetches these objects from the promisor remote as they are: a blob id brings its record only (`manifests`), a chunk
 * id its chunk (`withContent`: a blob with its chunks). Each is verified as it is stored. Resolves with the bytes received (0 in a repository that is not a
 * partial clone, or when nothing is missing). Throws RemoteError when the remote cannot be reached or lacks them.
 */
export async function fetchObjects(repo: Repository, ids: ObjectId[], options: { withContent?: boolean } = {}): Promise<number> {
  const cfg = partialConfig(repo);
  if (!cfg || !fetcher) return 0;
  const missing = ids.filter((i) => !repo.objects.hasObject(i.kind, i.oid));
  if (!missing.length) return 0;
  return fetcher(repo, cfg.remote, missing, options.withContent ? {} : { filter: 'manifests' });
}

/** Every blob an image (tree or disk commit) needs: files, and a disk's data and map blobs. */
export function imageBlobs(repo: Repository, commit: { rootKind: 'tree' | 'disk'; root: Oid }, treeOverride?: Oid): Oid[] {
  const out = new Set<Oid>();
  const seen = new Set<Oid>();
  // Each distinct directory once: a subtree seen before is pruned.
  const walk = (t: Oid) => {
    if (seen.has(t)) return;
    seen.add(t);
    walkTree(repo.objects, t, (_p, e) => {
      if (e.type === 'file' && e.oid) out.add(e.oid);
      else if (e.type === 'dir' && e.oid) {
        if (seen.has(e.oid)) return false;
        seen.add(e.oid);
      }
      return undefined;
    });
  };
  if (treeOverride) walk(treeOverride);
  else {
    walk(commitTree(repo.objects, commit as never));
    if (commit.rootKind === 'disk') {
      // Every blob the disk's bytes come from, through an overlay's bases too.
      const disks = [commit.root];
      while (disks.length) {
        for (const ref of diskReferences(readDisk(repo.objects, disks.pop()!))) {
          if (ref.kind === 'blob') out.add(ref.oid);
          else if (ref.kind === 'disk') disks.push(ref.oid);
          else walk(ref.oid);
        }
      }
    }
  }
  return [...out];
}
