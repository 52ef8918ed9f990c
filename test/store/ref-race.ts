/** The ref race of issue 18 (20 writers, one winner per round), shared by the memory, faulty and S3 test files. */
import type { ExecutionContext } from 'ava';
import { RefConflictError } from '../../src/errors.js';
import type { Backend } from '../../src/store/remote/backend.js';
import { MemoryLocalHead, RemoteRefStore } from '../../src/store/remote/remote-refs.js';

const MAIN = 'refs/heads/main';
const oid = (i: number) => i.toString(16).padStart(64, '0');
const open = (b: Backend) => RemoteRefStore.open(b, new MemoryLocalHead());

/**
 * The race of the issue: `writers` stores (one per backend `handle(i)` gives), `rounds` rounds; in each round every
 * store refreshes, then all CAS the same ref from the same expected value at once. Exactly one wins per round and the
 * others get RefConflictError; the ref's reflog then lists the winners, one entry per round.
 */
export async function refRace(t: ExecutionContext, handle: (i: number) => Backend, writers = 20, rounds = 10): Promise<void> {
  const stores = await Promise.all(Array.from({ length: writers }, (_, i) => open(handle(i))));
  let expected: string | null = null;
  const winners: string[] = [];
  for (let round = 0; round < rounds; round++) {
    await Promise.all(stores.map((s) => s.refresh()));
    const results = await Promise.allSettled(stores.map((s, i) =>
      s.update([{ ref: MAIN, newOid: oid(round * 100 + i + 1), expectedOld: expected, message: `round ${round} writer ${i}` }], `w${i}`, { time: round })));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    t.is(won.length, 1, `round ${round}: one winner`);
    t.is(lost.length, writers - 1);
    t.true(lost.every((e) => e instanceof RefConflictError), `round ${round}: every loser got RefConflictError (${lost.find((e) => !(e instanceof RefConflictError))})`);
    expected = oid(round * 100 + won[0]! + 1);
    winners.push(expected);
  }
  const fresh = await open(handle(writers));
  t.is(fresh.resolve(MAIN)?.oid, winners.at(-1));
  const log = fresh.reflog(MAIN);
  t.is(log.length, rounds);
  t.deepEqual(log.map((e) => e.new), [...winners].reverse());
  t.deepEqual(log.map((e) => e.old), [null, ...winners.slice(0, -1)].reverse());
}
