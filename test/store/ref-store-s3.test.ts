/**
 * The RefStore conformance suite against RemoteRefStore on S3 (the Ceph radosgw of `.ci/ceph up`); each test takes its
 * own prefix, and `reopen()` opens it through a second S3Backend (its own client), as a second host would.
 */
import test from 'ava';
import type { S3Backend } from '../../src/store/remote/s3-backend.js';
import { filePrefix, removePrefix, s3Backend, s3Skip } from '../helpers/s3.js';
import { refStoreSuite } from './ref-store.suite.js';
import { remoteRefsHarness } from './remote-refs-harness.js';

const skip = s3Skip();
const root = filePrefix(import.meta.filename);
let n = 0;

refStoreSuite(remoteRefsHarness('refs (s3)', async () => {
  const prefix = `${root}${n++}/`;
  const backends: S3Backend[] = [s3Backend(prefix)];
  return {
    backend: backends[0]!,
    another: () => { const b = s3Backend(prefix); backends.push(b); return b; },
    close: async () => { for (const b of backends) await b.close(); },
  };
}, skip));

if (!skip) test.after.always(() => removePrefix(root));
