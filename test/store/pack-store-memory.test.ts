/** The PackStore conformance suite on RemotePackStore over the in-process MemoryBackend. */
import { MemoryBackend } from '../../src/store/remote/memory-backend.js';
import { RemotePackStore } from '../../src/store/remote/remote-packs.js';
import { packStoreSuite } from './pack-store.suite.js';
import { tamperKey } from './remote-pack-helpers.js';

packStoreSuite({
  name: 'packs (memory)',
  make: async () => {
    const backend = new MemoryBackend('memory://pack-store');
    return {
      it: new RemotePackStore(backend),
      reopen: async () => new RemotePackStore(backend),
      tamper: (id) => tamperKey(backend, `packs/${id}`),
      close: async () => {},
    };
  },
});
