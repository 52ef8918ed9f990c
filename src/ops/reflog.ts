/** The reflog op: the history of where a ref pointed, newest first. */
import { RefNotFoundError } from '../errors.js';
import { HEAD } from '../model/ref.js';
import { readReflog, resolveRefChain, type ReflogEntry } from '../store/refs.js';
import type { Repository } from '../store/repository.js';
import { refCandidates } from './resolve.js';

export interface ReflogResult {
  ref: string;
  entries: Array<ReflogEntry & { selector: string }>;
}

/** Throws RefNotFoundError when no ref of that name exists. Locking: none. */
export function reflog(repo: Repository, name = HEAD): ReflogResult {
  for (const cand of refCandidates(name)) {
    const r = resolveRefChain(repo.store, cand);
    if (!r) continue;
    const entries = readReflog(repo.store, r.ref).map((e, i) => ({ ...e, selector: `${name}@{${i}}` }));
    return { ref: r.ref, entries };
  }
  throw new RefNotFoundError(name);
}
