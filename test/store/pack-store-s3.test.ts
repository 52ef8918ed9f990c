/** The PackStore conformance suite on RemotePackStore over S3 (the Ceph radosgw of `.ci/ceph up`). */
import test from 'ava';
import { decodePackHeader } from '../../src/store/lmdb-store.js';
import { RemotePackStore } from '../../src/store/remote/remote-packs.js';
import { filePrefix, removePrefix, s3Backend, s3Skip } from '../helpers/s3.js';
import { packStoreSuite, samplePack } from './pack-store.suite.js';
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

(skip ? test.skip : test)(`packs (s3): readHeader reads a pack's header with range GETs${skip ? ` (${skip})` : ''}`, async (t) => {
  const backend = s3Backend(`${root}header/`);
  const store = new RemotePackStore(backend);
  const { bytes } = samplePack(6, 2000);
  const id = await store.put(bytes);
  t.deepEqual(await store.readHeader(id), decodePackHeader(id, bytes));
  t.deepEqual(await store.readHeader(id, bytes.length), decodePackHeader(id, bytes));
  await backend.close();
});
