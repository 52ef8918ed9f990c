/** The RefStore conformance suite against RemoteRefStore over an in-memory bucket (MemoryBackend). */
import { MemoryBackend } from '../../src/store/remote/memory-backend.js';
import { refStoreSuite } from './ref-store.suite.js';
import { remoteRefsHarness } from './remote-refs-harness.js';

refStoreSuite(remoteRefsHarness('refs (memory)', async () => ({ backend: new MemoryBackend('memory://refs') })));
