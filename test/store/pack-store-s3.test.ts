/** The PackStore conformance suite on RemotePackStore over S3 (the Ceph radosgw of `.ci/ceph up`). */
import test from 'ava';
import { RemotePackStore } from '../../src/store/remote/remote-packs.js';
import { filePrefix, removePrefix, s3Backend, s3Skip } from '../helpers/s3.js';
import { packStoreSuite } from './pack-store.suite.js';
import { tamperKey } from './remote-pack-helpers.js';

const skip = s3Skip();
const root = filePrefix(import.meta.filename);
let n = 0;

packStoreSuite({
  name: 'packs (s3)',
  skip,
  make: async () => {
    const backend = s3Backend(`${root}${n++}/`);
    return {
      it: new RemotePackStore(backend),
      reopen: async () => new RemotePackStore(backend),
      tamper: (id) => tamperKey(backend, `packs/${id}`),
      close: () => backend.close(),
    };
  },
});

if (!skip) test.after.always(() => removePrefix(root));
