/**
 * The records of disks built to serve directory commits (see build-tree-disk.ts): `tree-disk:TREE/SIZE` in the
 * store's meta. Kept apart from the builder so that gc, fsck and the commands that only look at them do not load the
 * checkout and commit machinery.
 */
import type { Oid } from '../model/oid.js';
import type { Repository } from '../store/repository.js';
import { resolveRevision } from './resolve.js';

/** Key prefix, in the store's meta database, of the disks built for trees: `tree-disk:TREE/SIZE` → {@link TreeDiskRecord}. */
export const TREE_DISK_PREFIX = 'tree-disk:';

/** What the meta record of a built disk holds. */
export interface TreeDiskRecord {
  disk: Oid;
  /** The disk's virtual size in bytes. */
  size: number;
}

/** The meta key of the disk built for `tree` at `size` bytes (undefined: the default size). */
export function treeDiskKey(tree: Oid, size: number | undefined): string {
  return `${TREE_DISK_PREFIX}${tree}/${size ?? 'auto'}`;
}

/** The tree a `tree-disk:` meta key was built from, or undefined for another key. */
export function treeOfDiskKey(key: string): Oid | undefined {
  return key.startsWith(TREE_DISK_PREFIX) ? key.slice(TREE_DISK_PREFIX.length).split('/')[0] : undefined;
}

/** Every `tree-disk:` record: the tree it was built from and the disk (gc and fsck keep those of reachable trees). */
export function listTreeDisks(repo: Repository): Array<{ key: string; tree: Oid; disk: Oid }> {
  const out: Array<{ key: string; tree: Oid; disk: Oid }> = [];
  for (const [key, value] of repo.meta.shared.range(TREE_DISK_PREFIX)) {
    const tree = treeOfDiskKey(key);
    if (tree) out.push({ key, tree, disk: (value as TreeDiskRecord).disk });
  }
  return out;
}

/**
 * Whether any of `revs` names a directory commit (whose disk may have to be built, which writes). A revision that does
 * not resolve is left to the caller's own resolution to report.
 */
export function namesDirectoryCommit(repo: Repository, revs: readonly string[]): boolean {
  return revs.some((rev) => {
    try {
      return resolveRevision(repo, rev).commit.rootKind === 'tree';
    } catch {
      return false;
    }
  });
}
