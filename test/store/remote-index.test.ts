/** RemoteIndex: ingesting index segments into the host cache, in any order, with retirements and tombstones. */
import test from 'ava';
import { open } from 'lmdb';
import { objectKey } from '../../src/store/object-store.js';
import { RemoteIndex } from '../../src/store/remote/remote-index.js';
import type { Segment } from '../../src/store/remote/segment.js';
import { tmpDir } from '../helpers/repo.js';

const P1 = '11'.repeat(32);
const P2 = '22'.repeat(32);
const A = objectKey('chunk', 'aa'.repeat(32));
const B = objectKey('tree', 'bb'.repeat(32));

function index(t: Parameters<typeof tmpDir>[0]): RemoteIndex {
  const env = open({ path: `${tmpDir(t)}/cache.mdb`, maxDbs: 16, keyEncoding: 'ordered-binary' });
  t.teardown(() => env.close());
  return new RemoteIndex(env);
}

const filled: Segment = {
  packs: [{ id: P1, size: 1000, class: 'data' }, { id: P2, size: 500, class: 'meta' }],
  entries: [{ key: A, pack: P1, offset: 4, length: 100 }, { key: B, pack: P2, offset: 4, length: 50 }, { key: A, pack: P2, offset: 54, length: 100 }],
  retired: [], tombstones: [],
};
const retireP1: Segment = { packs: [], entries: [], retired: [P1], tombstones: [] };
const markA2: Segment = { packs: [{ id: P2, size: 500, class: 'meta' }], entries: [], retired: [], tombstones: [{ key: A, pack: P2 }] };

test('ingest: copies are located in their packs; a segment is ingested once', (t) => {
  const ix = index(t);
  t.false(ix.ingested('01'.repeat(32)));
  ix.ingest('01'.repeat(32), filled);
  ix.ingest('01'.repeat(32), filled);
  t.true(ix.ingested('01'.repeat(32)));
  t.deepEqual(ix.ingestedSegments(), ['01'.repeat(32)]);
  t.deepEqual(ix.locate(A), { pack: P1, offset: 4, length: 100 });
  t.deepEqual(ix.liveCopies(A), [{ pack: P1, offset: 4, length: 100 }]);
  t.deepEqual(ix.liveCopies(A, false).length, 2);
  t.deepEqual(ix.locate(B), { pack: P2, offset: 4, length: 50 });
  t.is(ix.locate(objectKey('blob', 'cc'.repeat(32))), undefined);
  t.deepEqual(ix.pack(P2), { size: 500, class: 'meta', retired: false });
  t.deepEqual([...ix.keys()].map((k) => k.toString('hex')).sort(), [A, B].map((k) => k.toString('hex')).sort());
});

test('a retired pack\'s copies are not used; the other copy is; order of ingestion does not matter', (t) => {
  for (const order of [[filled, retireP1, markA2], [retireP1, markA2, filled], [markA2, filled, retireP1]]) {
    const ix = index(t);
    order.forEach((s, i) => ix.ingest(String(i).padStart(64, '0'), s));
    t.true(ix.pack(P1)?.retired);
    t.is(ix.locate(A), undefined, 'one copy retired, the other tombstoned');
    t.false(ix.hasLive(A), 'a writer must upload A again');
    t.deepEqual(ix.liveCopies(A, false), [{ pack: P2, offset: 54, length: 100 }], 'the tombstoned copy is still readable');
    t.true(ix.hasLive(B));
    t.deepEqual([...ix.livePacks()].map((p) => p.id), [P2]);
    t.deepEqual([...ix.keys()].map((k) => k.toString('hex')), [B.toString('hex')]);
  }
});

test('clear forgets everything', (t) => {
  const ix = index(t);
  ix.ingest('01'.repeat(32), filled);
  ix.clear();
  t.false(ix.ingested('01'.repeat(32)));
  t.is(ix.locate(A), undefined);
  t.deepEqual([...ix.livePacks()], []);
});
