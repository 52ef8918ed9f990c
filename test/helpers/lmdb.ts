/**
 * The LMDB environment behind a local repository, for the tests that damage a repository on purpose (overwrite a
 * stored value, plant a stale session, spoil a pack). viva's ops never reach it: they use the repository's interfaces.
 */
import { Repository } from '../../src/store/repository.js';
import type { LmdbStore } from '../../src/store/lmdb-store.js';

/** The LmdbStore of `repo` (the one its accessors delegate to). */
export function lmdb(repo: Repository): LmdbStore {
  return Repository.lmdbOf(repo);
}
