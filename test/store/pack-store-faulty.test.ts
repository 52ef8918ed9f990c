/**
 * The PackStore conformance suite on RemotePackStore over FaultyBackend(memory): latency on every call, and every
 * third GET fails (a 500, a lost connection or a lost response, in turn), which the store's read retry must absorb.
 * Plus the retry's limits: reads give up after READ_ATTEMPTS failures in a row, and only transient failures retry.
 */
import test from 'ava';
import { RemoteError } from '../../src/errors.js';
import { READ_ATTEMPTS } from '../../src/store/remote/concurrency.js';
import { FaultyBackend, type Fault, type PlannedFault } from '../../src/store/remote/faulty-backend.js';
import { MemoryBackend } from '../../src/store/remote/memory-backend.js';
import { RemotePackStore } from '../../src/store/remote/remote-packs.js';
import { packStoreSuite, samplePack } from './pack-store.suite.js';
import { tamperKey } from './remote-pack-helpers.js';

const FAULTS: Fault[] = ['500', 'unreachable', 'lost-response'];

/** Every third GET fails, up to GET 3000. */
function everyThirdGet(): PlannedFault[] {
  return Array.from({ length: 1000 }, (_, i) => ({ op: 'get' as const, nth: 3 * (i + 1), fault: FAULTS[i % FAULTS.length]! }));
}

packStoreSuite({
  name: 'packs (faulty(memory))',
  make: async () => {
    const inner = new MemoryBackend('memory://pack-store-faulty');
    const backend = new FaultyBackend(inner, { latencyMs: () => Math.random() * 3, faults: everyThirdGet() });
    return {
      it: new RemotePackStore(backend),
      reopen: async () => new RemotePackStore(backend),
      tamper: (id) => tamperKey(inner, `packs/${id}`),
      close: async () => {},
    };
  },
});

test('packs (faulty): a failed GET is retried, and the faults really happened', async (t) => {
  const backend = new FaultyBackend(new MemoryBackend('memory://f'));
  const store = new RemotePackStore(backend);
  const { bytes } = samplePack(2, 100);
  const id = await store.put(bytes);
  backend.inject('500', 'get');
  t.deepEqual(await store.get(id), bytes);
  backend.inject('unreachable', 'get');
  t.deepEqual(await store.getRange(id, 0, 4), bytes.subarray(0, 4));
  t.is(backend.calls.get, 4);
  t.deepEqual(backend.injected.map((f) => f.fault), ['500', 'unreachable']);
});

test('packs (faulty): READ_ATTEMPTS failures in a row are a RemoteError (exit 17)', async (t) => {
  const backend = new FaultyBackend(new MemoryBackend('memory://f'));
  const store = new RemotePackStore(backend);
  const id = await store.put(samplePack(1, 10).bytes);
  for (let i = 0; i < READ_ATTEMPTS; i++) backend.inject('500', 'get', i + 1);
  const e = await t.throwsAsync(store.get(id), { instanceOf: RemoteError });
  t.is(e?.status, 500);
  t.is(backend.calls.get, READ_ATTEMPTS);
});

test('packs (faulty): PUTs are not retried by the store (the SDK retries them); the failure is a RemoteError', async (t) => {
  const backend = new FaultyBackend(new MemoryBackend('memory://f'));
  const store = new RemotePackStore(backend);
  backend.inject('500', 'put');
  await t.throwsAsync(store.put(samplePack(1, 10).bytes), { instanceOf: RemoteError });
  t.is(backend.calls.put, 1);
});
