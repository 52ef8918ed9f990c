/**
 * The ObjectStore (and MetaStore) conformance suites against a repository in a bucket (memory://, and S3 on Ceph): `repo.objects` is
 * the host cache in remote mode, used inside a writer session as every writing op uses it; a second handle is the
 * same host opening the repository again (what the first made durable was published when it closed).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Repository } from '../../src/store/repository.js';
import { objectStoreSuite, type ObjectStoreSubject } from './object-store.suite.js';
import { metaStoreSuite } from './meta-store.suite.js';
import type { Harness } from './suite.js';
import { lmdb } from '../helpers/lmdb.js';
import { filePrefix, removePrefix, s3Env, s3Skip, s3Url } from '../helpers/s3.js';
import test from 'ava';

function subject(repo: Repository): ObjectStoreSubject {
  return {
    objects: repo.objects,
    index: repo.index,
    exclusive: (fn) => repo.withExclusive(fn),
    damage: async (kind, oid, stored) => { lmdb(repo).putStoredUnchecked(kind, oid, stored); },
  };
}

function bucketHarness<T>(name: string, url: () => string, view: (repo: Repository) => T, skip?: string): Harness<T> {
  return {
    name,
    ...(skip ? { skip } : {}),
    async make() {
      const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-suite-cache-'));
      const where = url();
      let repo = await Repository.create(where, { cacheDir });
      await repo.beginSession('conformance suite');
      return {
        it: view(repo),
        async reopen() {
          await repo.close();
          repo = await Repository.connect(where, 'write', { cacheDir });
          await repo.beginSession('conformance suite');
          return view(repo);
        },
        async close() {
          await repo.close();
          fs.rmSync(cacheDir, { recursive: true, force: true });
        },
      };
    },
  };
}

let n = 0;
objectStoreSuite(bucketHarness('objects (memory bucket)', () => `memory://object-suite-${process.pid}-${n++}`, subject));
// A bucket repository's host settings (remotes, upstreams, …) are this host's: kept in its cache.
metaStoreSuite(bucketHarness('meta (memory bucket)', () => `memory://meta-suite-${process.pid}-${n++}`, (repo) => repo.meta));

const skip = s3Skip();
const root = filePrefix(import.meta.filename);
if (!skip) {
  Object.assign(process.env, s3Env());
  test.after.always(() => removePrefix(root));
}
objectStoreSuite(bucketHarness('objects (s3 bucket)', () => s3Url(`${root}${n++}`), subject, skip));
