/** The RefStore conformance suite against the LMDB implementation (LmdbRefStore, `repo.refs` of a local repository). */
import { refStoreSuite } from './ref-store.suite.js';
import { lmdbHarness } from './lmdb-harness.js';

refStoreSuite(lmdbHarness('refs (lmdb)', (repo) => repo.refs));
