/**
 * The conformance suite of `ObjectStore` (with the `ObjectIndex` that lists what it stored): every implementation
 * (LMDB today; memory and S3 later) must pass the same tests. A runner file calls `objectStoreSuite(harness)`; this
 * file registers no test on its own.
 */
import type { ExecutionContext } from 'ava';
import { ObjectNotFoundError, RepositoryCorruptError } from '../../src/errors.js';
import { hashBytes, type Oid } from '../../src/model/oid.js';
import { encodeTree, hashTree } from '../../src/model/tree.js';
import type { ObjectIndex } from '../../src/store/interfaces.js';
import { CODEC_ZSTD, decodeStored, encodeStored, type ObjectKind, type ObjectStore } from '../../src/store/object-store.js';
import { randomBytes } from '../helpers/repo.js';
import { suiteTests, type Harness } from './suite.js';

/** What the suite works on: a repository's objects and index, and the two things only the implementation can do. */
export interface ObjectStoreSubject {
  objects: ObjectStore;
  index: ObjectIndex;
  /** Runs `fn` as gc does (LMDB: inside the repository's exclusive write transaction). */
  exclusive<T>(fn: () => T): T;
  /** Replaces the stored value of an object without any check (damage, as a failing disk or a tampered pack makes it). */
  damage(kind: ObjectKind, oid: Oid, stored: Buffer): Promise<void>;
}

type Body = (t: ExecutionContext, s: ObjectStoreSubject, reopen: () => Promise<ObjectStoreSubject>) => Promise<void>;

/** `n` chunks of `size` random bytes each (distinct per `seed`), with their ids. */
function chunks(n: number, seed: string, size = 3000): Array<{ oid: Oid; data: Buffer }> {
  return Array.from({ length: n }, (_, i) => {
    const data = randomBytes(size, `${seed} ${i}`);
    return { oid: hashBytes(data), data };
  });
}

/** Registers the ObjectStore conformance tests for `h`. */
export function objectStoreSuite(h: Harness<ObjectStoreSubject>): void {
  const test_ = suiteTests(h);
  const it = (name: string, body: Body): void => test_(name, (t, made) => body(t, made.it, made.reopen));

  it('a written object is queued (hasObject) before flush and durable (index) after; reads are verified copies', async (t, s) => {
    const [c] = chunks(1, 'one');
    const tree = encodeTree({ entries: [] });
    const treeOid = hashTree(tree);
    s.objects.writeObject('chunk', c!.oid, c!.data);
    s.objects.writeObject('tree', treeOid, tree);
    t.true(s.objects.hasObject('chunk', c!.oid), 'queued objects count for dedup');
    t.false(s.index.has('chunk', c!.oid), 'not durable before flush');
    await s.objects.flush();
    t.true(s.index.has('chunk', c!.oid));
    t.true(s.index.has('tree', treeOid));
    t.true(s.objects.hasObject('chunk', c!.oid));
    t.false(s.objects.hasObject('tree', c!.oid), 'the kind is part of the key');
    t.true(s.objects.readObject('chunk', c!.oid).equals(c!.data));
    t.true(s.objects.tryReadObject('tree', treeOid)!.equals(tree));
    t.true(s.objects.tryReadUnverified('chunk', c!.oid)!.equals(c!.data));
    const missing = 'ee'.repeat(32);
    t.is(s.objects.tryReadObject('chunk', missing), undefined);
    t.is(s.objects.readStored('chunk', missing), undefined);
    t.throws(() => s.objects.readObject('chunk', missing), { instanceOf: ObjectNotFoundError });
  });

  it('readStored returns the stored value (codec byte + payload); writeStoredObject takes one as it is', async (t, s) => {
    const text = Buffer.from('compressible text, compressible text, compressible text\n'.repeat(200));
    const oid = hashBytes(text);
    s.objects.writeObject('chunk', oid, text);
    await s.objects.flush();
    const stored = s.objects.readStored('chunk', oid)!;
    t.is(stored[0], CODEC_ZSTD);
    t.true(stored.length < text.length);
    t.true(decodeStored(stored).equals(text));
    const other = Buffer.from('other text, other text, other text\n'.repeat(100));
    const otherOid = hashBytes(other);
    s.objects.writeStoredObject('chunk', otherOid, encodeStored(other));
    await s.objects.flush();
    t.true(s.objects.readObject('chunk', otherOid).equals(other));
  });

  it('written counts the objects and stored bytes a flush made durable, once per object', async (t, s) => {
    const before = { ...s.objects.written };
    const cs = chunks(5, 'count');
    for (const c of cs) s.objects.writeObject('chunk', c.oid, c.data);
    s.objects.writeObject('chunk', cs[0]!.oid, cs[0]!.data);
    await s.objects.flush();
    t.is(s.objects.written.objects - before.objects, 5);
    const stored = cs.reduce((n, c) => n + s.objects.readStored('chunk', c.oid)!.length, 0);
    t.is(s.objects.written.bytes - before.bytes, stored);
    // Written again: already stored, nothing new.
    for (const c of cs) s.objects.writeObject('chunk', c.oid, c.data);
    await s.objects.flush();
    t.is(s.objects.written.objects - before.objects, 5);
  });

  it('discard drops the queued objects: a flush after it writes none of them', async (t, s) => {
    const [kept, dropped] = chunks(2, 'discard');
    s.objects.writeObject('chunk', kept!.oid, kept!.data);
    await s.objects.flush();
    s.objects.writeObject('chunk', dropped!.oid, dropped!.data);
    t.true(s.objects.hasObject('chunk', dropped!.oid));
    s.objects.discard();
    t.false(s.objects.hasObject('chunk', dropped!.oid));
    await s.objects.flush();
    t.false(s.index.has('chunk', dropped!.oid));
    t.is(s.objects.tryReadObject('chunk', dropped!.oid), undefined);
    t.true(s.objects.readObject('chunk', kept!.oid).equals(kept!.data));
  });

  it('the index lists what was stored: by kind, by id prefix, and all with stored sizes and locations', async (t, s) => {
    const cs = chunks(20, 'list');
    for (const c of cs) s.objects.writeObject('chunk', c.oid, c.data);
    await s.objects.flush();
    t.deepEqual([...s.index.list('chunk')].sort(), cs.map((c) => c.oid).sort());
    t.deepEqual([...s.index.list('tree')], []);
    const prefix = cs[0]!.oid.slice(0, 3);
    t.deepEqual([...s.index.list('chunk', prefix)].sort(), cs.filter((c) => c.oid.startsWith(prefix)).map((c) => c.oid).sort());
    const all = [...s.index.listAll()];
    t.is(all.length, 20);
    for (const o of all) {
      t.is(o.kind, 'chunk');
      t.is(o.storedSize, s.objects.readStored('chunk', o.oid)!.length);
      const loc = s.index.locate('chunk', o.oid)!;
      t.is(loc.length, o.storedSize);
      t.is(typeof loc.pack, 'string');
      // The pack holds the object at that place, live.
      const inspected = s.objects.inspectPack(loc.pack)!;
      const i = inspected.header.findIndex((e) => e.offset === loc.offset);
      t.true(i >= 0);
      t.is(inspected.header[i]!.key.subarray(1).toString('hex'), o.oid);
      t.true(inspected.live[i]);
    }
    t.is(s.index.locate('chunk', 'ee'.repeat(32)), undefined);
  });

  it('remove deletes objects with their index entries; the others stay readable', async (t, s) => {
    const cs = chunks(10, 'remove');
    for (const c of cs) s.objects.writeObject('chunk', c.oid, c.data);
    await s.objects.flush();
    const doomed = cs.filter((_, i) => i % 3 === 0);
    const freed = s.exclusive(() => s.objects.remove(doomed.map((c) => ({ kind: 'chunk' as const, oid: c.oid }))));
    t.true(freed >= doomed.length * 3000);
    for (const [i, c] of cs.entries()) {
      const gone = i % 3 === 0;
      t.is(s.objects.hasObject('chunk', c.oid), !gone);
      t.is(s.index.has('chunk', c.oid), !gone);
      if (!gone) t.true(s.objects.readObject('chunk', c.oid).equals(c.data));
    }
    t.deepEqual([...s.index.list('chunk')].sort(), cs.filter((_, i) => i % 3 !== 0).map((c) => c.oid).sort());
    // Removing what is not there is not an error.
    t.is(s.exclusive(() => s.objects.remove([{ kind: 'chunk', oid: 'ee'.repeat(32) }])), 0);
  });

  it('prefetch resolves, for stored and for unknown objects, and reads after it see the objects', async (t, s) => {
    const cs = chunks(4, 'prefetch');
    for (const c of cs) s.objects.writeObject('chunk', c.oid, c.data);
    await s.objects.flush();
    await s.objects.prefetch([...cs.map((c) => ({ kind: 'chunk' as const, oid: c.oid })), { kind: 'blob', oid: 'ee'.repeat(32) }]);
    await s.objects.prefetch([]);
    for (const c of cs) t.true(s.objects.readObject('chunk', c.oid).equals(c.data));
  });

  it('a second handle reads what the first flushed, and nothing it only queued', async (t, s, reopen) => {
    const [durable, queued] = chunks(2, 'reopen');
    s.objects.writeObject('chunk', durable!.oid, durable!.data);
    await s.objects.flush();
    s.objects.writeObject('chunk', queued!.oid, queued!.data);
    const again = await reopen();
    t.true(again.objects.readObject('chunk', durable!.oid).equals(durable!.data));
    t.true(again.index.has('chunk', durable!.oid));
    t.false(again.objects.hasObject('chunk', queued!.oid));
    t.deepEqual([...again.index.list('chunk')], [durable!.oid]);
  });

  it('a damaged stored value is a RepositoryCorruptError when read: bytes that do not match the id, or do not decode', async (t, s) => {
    const [flippedC, garbledC] = chunks(2, 'damage', 5000);
    const tree = encodeTree({ entries: [] });
    const treeOid = hashTree(tree);
    s.objects.writeObject('chunk', flippedC!.oid, flippedC!.data);
    s.objects.writeObject('chunk', garbledC!.oid, garbledC!.data);
    s.objects.writeObject('tree', treeOid, tree);
    await s.objects.flush();
    const flipped = Buffer.from(flippedC!.data);
    flipped[4000]! ^= 0x10;
    await s.damage('chunk', flippedC!.oid, encodeStored(flipped));
    const err = t.throws(() => s.objects.readObject('chunk', flippedC!.oid), { instanceOf: RepositoryCorruptError });
    t.regex(err?.message ?? '', /does not match its id/);
    t.throws(() => s.objects.tryReadObject('chunk', flippedC!.oid), { instanceOf: RepositoryCorruptError });
    t.true(s.objects.tryReadUnverified('chunk', flippedC!.oid)!.equals(flipped), 'unverified reads leave the check to the caller');
    await s.damage('chunk', garbledC!.oid, Buffer.from([CODEC_ZSTD, 1, 2, 3, 4, 5]));
    t.throws(() => s.objects.readObject('chunk', garbledC!.oid), { instanceOf: RepositoryCorruptError, message: /cannot decode/ });
    await s.damage('tree', treeOid, encodeStored(Buffer.from('not the tree')));
    t.throws(() => s.objects.readObject('tree', treeOid), { instanceOf: RepositoryCorruptError });
  });
}
