/** The MetaStore conformance suite against the LMDB implementation (LmdbMetaStore, `repo.meta` of a local repository). */
import { metaStoreSuite } from './meta-store.suite.js';
import { lmdbHarness } from './lmdb-harness.js';

metaStoreSuite(lmdbHarness('meta (lmdb)', (repo) => repo.meta));
