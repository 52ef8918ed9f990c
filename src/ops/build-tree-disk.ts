/**
 * The disk a directory or tar commit is served as (`viva nbd`, `viva run`): such a commit has no disk object, so one
 * is built once from its tree exactly as `viva checkout REV disk.raw --size N` builds one (GPT, one ext4 partition at
 * 1 MiB, made by mke2fs), then read back as a disk object. Its files' contents are the tree's blobs again (same bytes,
 * same ids), so what is new is only the file system's metadata. The built disk is remembered in the store's meta per
 * tree and size (`tree-disk:TREE/SIZE`), so the next server of any commit with that tree starts at once; gc keeps a
 * built disk while its tree is reachable and drops it with the tree (see reachable.ts; the records are tree-disk.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import type { Commit } from '../model/commit.js';
import type { Oid } from '../model/oid.js';
import type { ObjectWriter } from '../store/object-store.js';
import type { Repository } from '../store/repository.js';
import { walkTree } from '../tree/walk.js';
import { MIN_TABLE_DISK_BYTES } from './build-disk.js';
import { checkout } from './checkout.js';
import { ingestDisk } from './commit-disk.js';
import { treeDiskKey, type TreeDiskRecord } from './tree-disk.js';
import type { IngestContext } from './ingest.js';

const MiB = 1 << 20;

/** The disk {@link diskOfTree} serves a directory commit as, and whether it was built now or found. */
export interface TreeDisk extends TreeDiskRecord {
  built: boolean;
}

/** The options of {@link diskOfTree}. */
export interface TreeDiskOptions {
  /** Virtual size in bytes; default {@link autoTreeDiskSize}. */
  size?: number;
  signal?: AbortSignal;
}

/**
 * A size that holds the tree with room to spare, as a disk for a VM wants: its data in 4 KiB blocks plus a fifth, at
 * least 16 KiB per entry (mke2fs's default bytes-per-inode, so every entry gets an inode), plus 64 MiB for the
 * journal and metadata, rounded up to whole MiB.
 */
export function autoTreeDiskSize(repo: Repository, tree: Oid): number {
  let blocks = 0;
  let entries = 0;
  walkTree(repo.objects, tree, (_path, entry) => {
    entries++;
    if (entry.type === 'file') blocks += Math.ceil(entry.size / 4096);
    else blocks++;
  });
  const bytes = Math.max(blocks * 4096 * 1.2, entries * 16384 * 1.2) + 64 * MiB + MIN_TABLE_DISK_BYTES;
  return Math.ceil(bytes / MiB) * MiB;
}

/**
 * The disk a directory commit is served as: found in the meta record, or built from its tree now (mke2fs, so the
 * tools of checkout --size must be installed) and recorded. The repository must be open for writing to build.
 * Locking: a writer session while building (gc waits); none when the disk is found.
 * Throws: UsageError (`c` is a disk commit), CheckoutError (the tree does not fit `size`, mke2fs missing).
 *
 * @example
 * const { disk, size } = await diskOfTree(repo, 'files/etc', resolveRevision(repo, 'files/etc').commit);
 */
export async function diskOfTree(repo: Repository, rev: string, c: Commit, options: TreeDiskOptions = {}): Promise<TreeDisk> {
  if (c.rootKind !== 'tree') throw new UsageError(`'${rev}' is a disk commit: it is served as it is`);
  const key = treeDiskKey(c.root, options.size);
  const found = repo.meta.shared.get<TreeDiskRecord>(key);
  if (found && repo.objects.hasObject('disk', found.disk)) return { ...found, built: false };
  const size = options.size ?? autoTreeDiskSize(repo, c.root);
  // Beside the repository's data: the same file system, which has room for what the disk will hold.
  const tmp = fs.mkdtempSync(path.join(repo.dataDir, 'tree-disk-'));
  await repo.beginSession('nbd: building a disk for a directory commit');
  const background = repo.objects.backgroundWriter();
  const writer: ObjectWriter = background ?? repo.objects;
  try {
    const image = path.join(tmp, 'disk.raw');
    await checkout(repo, { rev, dest: image, format: 'raw', build: { size }, cache: true, ...(options.signal ? { signal: options.signal } : {}) });
    const ctx: IngestContext = {
      store: repo.objects, statCache: repo.statCache, writer, useCache: false, startNs: BigInt(Date.now()) * 1_000_000n, cacheUpdates: [], files: 0, bytes: 0, cachedFiles: 0,
      ...(options.signal ? { signal: options.signal } : {}),
    };
    const d = await ingestDisk(ctx, image);
    await writer.flush();
    if (writer !== repo.objects) await repo.objects.flush();
    const record: TreeDiskRecord = { disk: d.disk, size };
    await repo.meta.shared.put(key, record);
    return { ...record, built: true };
  } catch (e) {
    repo.objects.discard();
    throw e;
  } finally {
    await background?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
    await repo.endSession();
  }
}
