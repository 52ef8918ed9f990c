/**
 * The conformance suite of `MetaStore` (host settings) and its `shared` part: every implementation must pass the same
 * tests. A runner file calls `metaStoreSuite(harness)`; this file registers no test on its own.
 */
import type { ExecutionContext } from 'ava';
import type { MetaStore } from '../../src/store/interfaces.js';
import { suiteTests, type Harness } from './suite.js';

type Body = (t: ExecutionContext, meta: MetaStore, reopen: () => Promise<MetaStore>) => Promise<void>;

/** Registers the MetaStore conformance tests for `h`. */
export function metaStoreSuite(h: Harness<MetaStore>): void {
  const test_ = suiteTests(h);
  const it = (name: string, body: Body): void => test_(name, (t, made) => body(t, made.it, made.reopen));

  it('get, put and remove round trip values of every kind viva stores', async (t, meta) => {
    t.is(meta.get('remotes'), undefined);
    meta.put('remotes', { origin: { url: 'https://example.org/repo' } });
    meta.put('checkout:/srv/x', JSON.stringify({ rev: 'main' }));
    meta.put('partial', { filter: 'manifests', remote: 'origin' });
    meta.put('n', 42);
    meta.put('raw', Buffer.from([0, 1, 2, 255]));
    t.deepEqual(meta.get('remotes'), { origin: { url: 'https://example.org/repo' } });
    t.is(meta.get<string>('checkout:/srv/x'), '{"rev":"main"}');
    t.deepEqual(meta.get('partial'), { filter: 'manifests', remote: 'origin' });
    t.is(meta.get<number>('n'), 42);
    t.deepEqual(Buffer.from(meta.get<Uint8Array>('raw')!), Buffer.from([0, 1, 2, 255]));
    meta.put('n', 43);
    t.is(meta.get<number>('n'), 43);
    meta.remove('n');
    t.is(meta.get('n'), undefined);
    t.notThrows(() => meta.remove('never-there'));
  });

  it('range lists the keys with a prefix, in key order, and nothing beside them', async (t, meta) => {
    meta.putAll([['debindex:b', 'B'], ['debindex:a', 'A'], ['debindex:c/d', 'CD'], ['debindex', 'bare'], ['debindey:x', 'next'], ['checkout:/a', '1']]);
    t.deepEqual([...meta.range('debindex:')], [['debindex:a', 'A'], ['debindex:b', 'B'], ['debindex:c/d', 'CD']]);
    t.deepEqual([...meta.range('checkout:')], [['checkout:/a', '1']]);
    t.deepEqual([...meta.range('nothing:')], []);
    meta.putAll([]);
    t.is(meta.get<string>('debindex:a'), 'A');
  });

  it('shared settings: get, put, remove and range (tree-disk records)', async (t, meta) => {
    const shared = meta.shared;
    t.is(shared.get('tree-disk:aa/0'), undefined);
    await shared.put('tree-disk:aa/0', { disk: 'dd'.repeat(32), size: 1 << 20 });
    await shared.put('tree-disk:bb/4096', { disk: 'ee'.repeat(32), size: 4096 });
    t.deepEqual(shared.get('tree-disk:aa/0'), { disk: 'dd'.repeat(32), size: 1 << 20 });
    t.deepEqual([...shared.range('tree-disk:')].map(([k]) => k), ['tree-disk:aa/0', 'tree-disk:bb/4096']);
    await shared.remove('tree-disk:aa/0');
    await shared.remove('tree-disk:never');
    t.deepEqual([...shared.range('tree-disk:')].map(([k]) => k), ['tree-disk:bb/4096']);
  });

  it('reopen: host and shared settings are durable', async (t, meta, reopen) => {
    meta.put('branches', { 'refs/heads/main': { remote: 'origin', merge: 'refs/heads/main' } });
    meta.putAll([['promised-blob:aa', Buffer.from('x')], ['promised-blob:bb', Buffer.from('y')]]);
    await meta.shared.put('tree-disk:cc/0', { disk: 'ff'.repeat(32), size: 8 });
    meta.put('gone', 1);
    meta.remove('gone');
    const again = await reopen();
    t.deepEqual(again.get('branches'), { 'refs/heads/main': { remote: 'origin', merge: 'refs/heads/main' } });
    t.deepEqual([...again.range('promised-blob:')].map(([k, v]) => [k, Buffer.from(v as Uint8Array).toString()]), [['promised-blob:aa', 'x'], ['promised-blob:bb', 'y']]);
    t.deepEqual(again.shared.get('tree-disk:cc/0'), { disk: 'ff'.repeat(32), size: 8 });
    t.is(again.get('gone'), undefined);
  });
}
