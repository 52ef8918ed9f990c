/**
 * The RefStore conformance suite against RemoteRefStore over FaultyBackend(MemoryBackend): calls are delayed by a
 * random latency, and one PUT in three fails as RGW's do (answer lost after it applied, 409, 500, connection refused).
 * Every test must still pass: that is what the compare-and-swap loop's re-read is for. HEAD is kept in an LMDB host
 * cache here (LmdbLocalHead), as a bucket repository keeps it.
 */
import { FaultyBackend, type Fault, type PlannedFault } from '../../src/store/remote/faulty-backend.js';
import { MemoryBackend } from '../../src/store/remote/memory-backend.js';
import { refStoreSuite } from './ref-store.suite.js';
import { remoteRefsHarness } from './remote-refs-harness.js';

const FAULTS: Fault[] = ['lost-response', '409', '500', 'unreachable'];

/** Faults on the 2nd, 5th, 8th, … PUT, cycling through FAULTS from `offset`. */
function everyThirdPut(offset: number): PlannedFault[] {
  const out: PlannedFault[] = [];
  for (let nth = 2, i = offset; nth < 3000; nth += 3, i++) out.push({ op: 'put', nth, fault: FAULTS[i % FAULTS.length]! });
  return out;
}

refStoreSuite(remoteRefsHarness('refs (faulty memory)', async () => {
  const inner = new MemoryBackend('memory://refs-faulty');
  const faulty = (offset: number) => new FaultyBackend(inner, { faults: everyThirdPut(offset), latencyMs: () => Math.random() * 2 });
  let n = 0;
  return { backend: faulty(n++), another: () => faulty(n++) };
}, undefined, 'lmdb'));
