/** The PackStore conformance suite against LMDB (LmdbPackStore, `repo.packs` of a local repository). */
import { lmdbHarness } from './lmdb-harness.js';
import { packStoreSuite } from './pack-store.suite.js';

packStoreSuite(lmdbHarness('packs (lmdb)', (repo) => repo.packs));
