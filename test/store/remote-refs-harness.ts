/**
 * A conformance-suite harness over RemoteRefStore (see suite.ts): each `make()` is an empty bucket prefix and a fresh
 * host-local HEAD; `reopen()` is a second host opening the same prefix (a new store over a new backend handle when the
 * runner gives one) with the same HEAD.
 */
import type { RefStore } from '../../src/store/interfaces.js';
import type { Backend } from '../../src/store/remote/backend.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { LmdbLocalHead } from '../../src/store/remote/lmdb-local-head.js';
import { MemoryLocalHead, RemoteRefStore, type LocalHead } from '../../src/store/remote/remote-refs.js';
import type { Harness } from './suite.js';

/** One empty prefix: the backend the store starts on, `another()` for each reopen, `close()` to remove the prefix. */
export interface RefPrefix {
  backend: Backend;
  another?(): Backend;
  close?(): Promise<void>;
}

/** HEAD on the host: in memory (default), or in an LMDB host cache (`lmdbHead`), as a bucket repository keeps it. */
export type HeadKind = 'memory' | 'lmdb';

/** A harness whose stores are RemoteRefStores over the prefixes `prefix()` makes. */
export function remoteRefsHarness(name: string, prefix: () => Promise<RefPrefix>, skip?: string, headKind: HeadKind = 'memory'): Harness<RefStore> {
  return {
    name,
    ...(skip ? { skip } : {}),
    async make() {
      const p = await prefix();
      let cache: LmdbStore | undefined;
      let head: LocalHead = new MemoryLocalHead();
      if (headKind === 'lmdb') {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-head-'));
        cache = new LmdbStore(path.join(dir, 'cache.mdb'));
        head = new LmdbLocalHead(cache);
      }
      return {
        it: await RemoteRefStore.open(p.backend, head),
        reopen: async () => RemoteRefStore.open(p.another?.() ?? p.backend, head),
        close: async () => {
          await p.close?.();
          if (cache) {
            await cache.close();
            fs.rmSync(path.dirname(cache.path), { recursive: true, force: true });
          }
        },
      };
    },
  };
}
