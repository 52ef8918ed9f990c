/**
 * What every conformance suite (`*.suite.ts`) shares: the harness a runner file provides, and the registrar that makes
 * each suite test run on a fresh store (or registers it as skipped, with the reason in its title).
 */
import test, { type ExecutionContext } from 'ava';

/** What a harness's `make()` returns: a fresh store, released (and removed) by `close()`. */
export interface Made<T> {
  it: T;
  close(): Promise<void>;
}

/**
 * How a runner provides fresh stores: each `make()` is an empty repository (its own directory or prefix);
 * `reopen()` closes `it` and opens the same repository again (durability), `close()` releases and removes it.
 */
export interface Harness<T> {
  name: string;
  /** Set to register every test as skipped, with this reason in the title. */
  skip?: string;
  make(): Promise<Made<T> & { reopen(): Promise<T> }>;
}

/**
 * The `it(name, body)` of a suite over `h`: each test is titled `NAME: test`, gets what `make()` returned, and closes
 * it however the body ends.
 */
export function suiteTests<M extends Made<unknown>>(h: { name: string; skip?: string; make(): Promise<M> }): (name: string, body: (t: ExecutionContext, made: M) => Promise<void>) => void {
  return (name, body) => {
    if (h.skip) {
      test.skip(`${h.name}: ${name} (${h.skip})`, () => {});
      return;
    }
    test(`${h.name}: ${name}`, async (t) => {
      const made = await h.make();
      try {
        await body(t, made);
      } finally {
        await made.close();
      }
    });
  };
}
