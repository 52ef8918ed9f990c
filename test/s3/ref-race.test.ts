/**
 * The ref race of issue 18 on S3 (Ceph radosgw): 20 RemoteRefStores, each with its own S3Backend (its own client and
 * connections), 10 rounds in which all compare-and-swap one ref from the same expected value: exactly one winner per
 * round, 19 RefConflictError, and a reflog of exactly 10 entries. RGW may answer a loser with 500 instead of 412; the
 * CAS loop's re-read must still call it a conflict.
 */
import test from 'ava';
import type { S3Backend } from '../../src/store/remote/s3-backend.js';
import { filePrefix, removePrefix, s3Backend, s3Skip } from '../helpers/s3.js';
import { refRace } from '../store/ref-race.js';

const skip = s3Skip();
const root = filePrefix(import.meta.filename);

(skip ? test.skip : test)(`20 writers, each with its own S3 client, 10 rounds: exactly one winner per round${skip ? ` (${skip})` : ''}`, async (t) => {
  const backends: S3Backend[] = [];
  try {
    await refRace(t, () => {
      const b = s3Backend(root);
      backends.push(b);
      return b;
    });
  } finally {
    for (const b of backends) await b.close();
  }
});

if (!skip) test.after.always(() => removePrefix(root));
