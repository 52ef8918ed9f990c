/** The compact op: shrink the repository file to the pages in use (LMDB never shrinks it by itself). */
import type { Repository } from '../store/repository.js';

/** What {@link compact} reclaimed: the size of the repository's data file before and after. */
export interface CompactResult {
  /** Size of `.viva/data.mdb` before and after, in bytes. */
  before: number;
  after: number;
  /** Bytes returned to the file system (before − after). */
  reclaimed: number;
}

/**
 * Writes a compacted copy of the repository's LMDB file and renames it over the old one (crash-safe: a kill at any
 * moment leaves the old or the new file; see store/compact.ts). Run gc first: compaction drops free pages, gc frees
 * them.
 * Locking: exclusive. Throws RepositoryLockedError while a writer session (a commit) is live or any other process has
 * the repository open; CompactionError when the copy cannot be written (the repository is unchanged).
 * @example await gc(repo); const { before, after } = await compact(repo);
 */
export async function compact(repo: Repository): Promise<CompactResult> {
  const { before, after } = await repo.compact();
  return { before, after, reclaimed: before - after };
}
