/** Tests of KeyTable: the binary hash table a commit keeps its sent ids and deferred index entries in. */
import crypto from 'node:crypto';
import test from 'ava';
import { KeyTable } from '../../src/store/key-table.js';

/** Object-key-like keys: a kind byte, then 32 random bytes. */
function keys(n: number, seed = 1): Buffer[] {
  return Array.from({ length: n }, (_, i) => Buffer.concat([Buffer.from([1 + (i % 5)]), crypto.createHash('sha256').update(`${seed}:${i}`).digest()]));
}

test('KeyTable: holds 20 000 keys with their values across blocks and rehashes, and knows no other key', (t) => {
  const table = new KeyTable(33, 12);
  const ks = keys(20_000);
  ks.forEach((k, i) => {
    const v = table.insert(k);
    t.truthy(v);
    v!.writeUInt32BE(i, 0);
    v!.writeUInt32BE(i * 3, 4);
    v!.writeUInt32BE(i * 7, 8);
  });
  t.is(table.size, 20_000);
  let wrong = 0;
  ks.forEach((k, i) => {
    const v = table.get(k);
    if (!v || v.readUInt32BE(0) !== i || v.readUInt32BE(4) !== i * 3 || v.readUInt32BE(8) !== i * 7 || !table.has(k)) wrong++;
  });
  t.is(wrong, 0);
  for (const k of keys(2000, 2)) t.false(table.has(k));
  // Same id, another kind: another key.
  const other = Buffer.from(ks[0]!);
  other[0] = 9;
  t.false(table.has(other));
});

test('KeyTable: a key inserted again is refused and keeps its value; the all-zero key is a key like any other', (t) => {
  const table = new KeyTable(33, 4);
  const [k] = keys(1);
  table.insert(k!)!.writeUInt32BE(42);
  t.is(table.insert(Buffer.from(k!)), undefined);
  t.is(table.get(k!)!.readUInt32BE(), 42);
  t.is(table.size, 1);
  const zero = Buffer.alloc(33);
  t.false(table.has(zero));
  t.truthy(table.insert(zero));
  t.true(table.has(zero));
  t.is(table.size, 2);
});

test('KeyTable: sortedEntries lists every entry in the keys\' byte order, also keys that share their first bytes', (t) => {
  const table = new KeyTable(33, 0);
  const ks = keys(10_000);
  // Keys equal in their first six bytes (what the sort compares as a number) and different after.
  for (let i = 0; i < 50; i++) {
    const k = Buffer.from(ks[0]!);
    k[20] = i;
    ks.push(k);
  }
  for (const k of ks) table.insert(k);
  const sorted = [...table.sortedEntries()].map((e) => table.keyAt(e).toString('hex'));
  const expected = [...new Set(ks.map((k) => k.toString('hex')))].sort();
  t.deepEqual(sorted, expected);
});

test('KeyTable: a key of the wrong length is a programming error', (t) => {
  const table = new KeyTable(33, 0);
  t.throws(() => table.insert(Buffer.alloc(32)), { instanceOf: RangeError });
  t.throws(() => table.has(Buffer.alloc(34)), { instanceOf: RangeError });
  t.throws(() => new KeyTable(3, 0), { instanceOf: RangeError });
});

test('KeyTable: a table of keys only (the sender\'s set) answers has() after inserts', (t) => {
  const table = new KeyTable(33, 0);
  const ks = keys(3000);
  for (const k of ks.slice(0, 1500)) t.truthy(table.insert(k));
  t.true(ks.slice(0, 1500).every((k) => table.has(k)));
  t.true(ks.slice(1500).every((k) => !table.has(k)));
  t.is(table.insert(ks[7]!), undefined);
});
