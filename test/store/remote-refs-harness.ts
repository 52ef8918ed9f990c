/**
 * A conformance-suite harness over RemoteRefStore (see suite.ts): each `make()` is an empty bucket prefix and a fresh
 * host-local HEAD; `reopen()` is a second host opening the same prefix (a new store over a new backend handle when the
 * runner gives one) with the same HEAD.
 */
import type { RefStore } from '../../src/store/interfaces.js';
import type { Backend } from '../../src/store/remote/backend.js';
import { MemoryLocalHead, RemoteRefStore } from '../../src/store/remote/remote-refs.js';
import type { Harness } from './suite.js';

/** One empty prefix: the backend the store starts on, `another()` for each reopen, `close()` to remove the prefix. */
export interface RefPrefix {
  backend: Backend;
  another?(): Backend;
  close?(): Promise<void>;
}

/** A harness whose stores are RemoteRefStores over the prefixes `prefix()` makes. */
export function remoteRefsHarness(name: string, prefix: () => Promise<RefPrefix>, skip?: string): Harness<RefStore> {
  return {
    name,
    ...(skip ? { skip } : {}),
    async make() {
      const p = await prefix();
      const head = new MemoryLocalHead();
      return {
        it: await RemoteRefStore.open(p.backend, head),
        reopen: async () => RemoteRefStore.open(p.another?.() ?? p.backend, head),
        close: async () => { await p.close?.(); },
      };
    },
  };
}
