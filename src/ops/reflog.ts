/** The reflog op: the history of where a ref pointed, newest first. */
import { RefNotFoundError } from '../errors.js';
import { HEAD } from '../model/ref.js';
import type { ReflogEntry } from '../store/refs.js';
import type { Repository } from '../store/repository.js';
import { findReflog } from './resolve.js';

/** A ref's reflog ({@link reflog}): its past values, newest first. */
export interface ReflogResult {
  ref: string;
  /** Each entry with the name that selects its value as a revision (`HEAD@{0}`, `main@{2}`). */
  entries: Array<ReflogEntry & { selector: string }>;
}

/**
 * The reflog of `name` (default HEAD: HEAD's own, which records its moves — `checkout: moving from a to b` — and every
 * update of the branch it points at). Throws RefNotFoundError when no ref of that name exists. Locking: none.
 * @example reflog(repo, 'main').entries[1]!.selector; // 'main@{1}'
 */
export function reflog(repo: Repository, name = HEAD): ReflogResult {
  const r = findReflog(repo, name);
  if (!r) throw new RefNotFoundError(name);
  return { ref: r.ref, entries: r.entries.map((e, i) => ({ ...e, selector: `${name}@{${i}}` })) };
}
