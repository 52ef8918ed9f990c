/** The ObjectStore conformance suite against the LMDB implementation (`repo.objects` and `repo.index` of a local repository). */
import { objectStoreSuite } from './object-store.suite.js';
import { lmdbHarness } from './lmdb-harness.js';
import { lmdb } from '../helpers/lmdb.js';

objectStoreSuite(lmdbHarness('objects (lmdb)', (repo) => ({
  objects: repo.objects,
  index: repo.index,
  exclusive: (fn) => repo.withExclusive(fn),
  damage: async (kind, oid, stored) => { lmdb(repo).putStoredUnchecked(kind, oid, stored); },
})));
