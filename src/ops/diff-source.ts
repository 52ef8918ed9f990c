/**
 * An image on the host (a directory or a tar) read as a diff side without committing it: read with commit's own
 * readers and hashed exactly as commit would store it, so that its ids compare with the repository's, but kept in
 * memory (objects the repository already has are not kept twice) and never written.
 */
import fs from 'node:fs';
import { UsageError } from '../errors.js';
import type { Oid } from '../model/oid.js';
import type { TreeEntry } from '../model/tree.js';
import { type ObjectKind, type ObjectReader, type ObjectWriter, objectKey } from '../store/object-store.js';
import type { Repository } from '../store/repository.js';
import type { IngestContext, ProgressEvent } from './ingest.js';
import { dirEntry, resolveRevision } from './resolve.js';

/** New file content kept in memory for patches (`diff -p`); beyond it, content is hashed and dropped. */
export const HOST_SIDE_KEEP_BYTES = 256 << 20;

/**
 * The repository's objects with those of a host image over them, in memory: written objects the repository lacks
 * are kept (chunks only up to HOST_SIDE_KEEP_BYTES in all); reads look here first.
 */
export class HostOverlay implements ObjectReader, ObjectWriter {
  private readonly objects = new Map<string, Buffer | null>();
  private kept = 0;

  constructor(private readonly base: ObjectReader) {}

  hasObject(kind: ObjectKind, oid: Oid): boolean {
    return this.objects.has(objectKey(kind, oid).toString('latin1')) || this.base.hasObject(kind, oid);
  }

  writeObject(kind: ObjectKind, oid: Oid, data: Uint8Array): void {
    const key = objectKey(kind, oid).toString('latin1');
    if (this.objects.has(key) || this.base.hasObject(kind, oid)) return;
    const keep = kind !== 'chunk' || this.kept + data.length <= HOST_SIDE_KEEP_BYTES;
    if (keep && kind === 'chunk') this.kept += data.length;
    this.objects.set(key, keep ? Buffer.from(data) : null);
  }

  drain(): Promise<void> {
    return Promise.resolve();
  }

  flush(): void {}

  readObject(kind: ObjectKind, oid: Oid): Buffer {
    const v = this.tryReadObject(kind, oid);
    if (v === undefined) return this.base.readObject(kind, oid);
    return v;
  }

  tryReadObject(kind: ObjectKind, oid: Oid): Buffer | undefined {
    const key = objectKey(kind, oid).toString('latin1');
    if (!this.objects.has(key)) return this.base.tryReadObject(kind, oid);
    const v = this.objects.get(key);
    if (v === null) throw new UsageError(`the host image's content is larger than diff keeps in memory (${HOST_SIDE_KEEP_BYTES >> 20} MiB of new data): no patch for it; commit it to compare it in full`);
    return v;
  }

  tryReadUnverified(kind: ObjectKind, oid: Oid): Buffer | undefined {
    return this.tryReadObject(kind, oid);
  }
}

/**
 * A directory or tar on the host read as one side of a diff ({@link readHostSide}): its root entry and its objects, kept apart from the repository's.
 */
export interface HostSide {
  /** What the user named. */
  name: string;
  /** The image's root as a directory entry. */
  entry: TreeEntry;
  /** Its objects over the repository's. */
  objects: HostOverlay;
  files: number;
  /** Files whose id came from commit's stat cache without being read (the directory was committed before). */
  cachedFiles: number;
  /** Stat cache entries for the files read (not racily recent): what a writer may record for the next read. */
  cacheUpdates: IngestContext['cacheUpdates'];
}

/**
 * Reads the directory or tar `source` as an image, as `commit` would (same readers, same ids; the repository's own
 * `.viva` left out), without writing to the repository. Files the stat cache knows (a directory committed before)
 * are not read. `objects`: the overlay of another host side to add to. Throws what commit throws for a bad source (SourceReadError, CorruptInputError, …).
 *
 * @example
 * const side = await readHostSide(repo, '/srv/rootfs'); // side.entry.oid is the tree id a commit would make
 */
export async function readHostSide(repo: Repository, source: string, options: { signal?: AbortSignal; onProgress?: (e: ProgressEvent) => void; objects?: HostOverlay } = {}): Promise<HostSide> {
  const { signal, onProgress } = options;
  // Two host sides share one overlay, so that the diff reads both through it.
  const objects = options.objects ?? new HostOverlay(repo.objects);
  // The readers and the ingest pipeline load only when a host image is compared (not for diff of two revisions).
  const { ingestHostTree } = await import('./ingest.js');
  const { tree, oid, ctx } = await ingestHostTree(repo, source, objects, { useCache: true, ...(signal ? { signal } : {}), ...(onProgress ? { onProgress } : {}) });
  return { name: source, entry: dirEntry(oid, tree.rootMeta()), objects, files: ctx.files, cachedFiles: ctx.cachedFiles, cacheUpdates: ctx.cacheUpdates };
}

/**
 * Whether a diff argument names an image on the host rather than a revision: a path that starts with `/`, `./` or
 * `../` always does; another word does when it exists on the host and is no revision. A word that is both is
 * ambiguous (UsageError, as git's "ambiguous argument"): `./NAME` says the path.
 */
export function isHostArgument(repo: Repository, arg: string): boolean {
  if (/^(\/|\.\.?\/|\.\.?$)/.test(arg)) return true;
  if (arg.includes(':') || !existsOnHost(arg)) return false;
  let isRev = true;
  try {
    resolveRevision(repo, arg);
  } catch {
    isRev = false;
  }
  if (isRev) throw new UsageError(`ambiguous argument '${arg}': both a revision and a path on the host (say ./${arg} for the path, or a full ref name such as refs/heads/${arg})`);
  return true;
}

function existsOnHost(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
