/** The Backend conformance suite on the in-process MemoryBackend. */
import { MemoryBackend } from '../../src/store/remote/memory-backend.js';
import { backendSuite } from './backend.suite.js';

backendSuite({
  name: 'memory',
  make: async () => ({ it: new MemoryBackend('memory://backend-test'), close: async () => {} }),
});
