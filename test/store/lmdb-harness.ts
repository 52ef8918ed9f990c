/** A conformance-suite harness over a fresh LMDB repository in a temporary directory (see suite.ts). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Repository } from '../../src/store/repository.js';
import type { Harness } from './suite.js';

/** A harness whose stores are `view(repo)` of a new repository; reopen closes the repository and opens it again. */
export function lmdbHarness<T>(name: string, view: (repo: Repository) => T): Harness<T> {
  return {
    name,
    async make() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-suite-'));
      let repo = Repository.init(dir);
      return {
        it: view(repo),
        async reopen() {
          await repo.close();
          repo = Repository.open(dir, 'write');
          return view(repo);
        },
        async close() {
          await repo.close();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}
