/**
 * The session overlay's files: reads merge the overlay over the base, partial blocks are merged, zeros and trims,
 * and what survives a crash: the journal is replayed up to its last valid flush record, whatever follows it (records
 * never flushed, a torn record, garbage) is dropped, and a writer reopening cuts the files back to that state.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { NbdSessionBusyError, NbdSessionNotFoundError, UsageError } from '../../src/errors.js';
import { OVERLAY_BLOCK, Overlay, listSessionNames, sessionDir } from '../../src/ops/nbd-overlay.js';
import type { DiskExtent } from '../../src/ops/disk-reader.js';
import { tmpDir } from '../helpers/cli.js';

const SIZE = 64 * OVERLAY_BLOCK + 1000; // a short last block
/** A base disk of bytes i & 0xff, with its second half zeros. */
const BASE = Buffer.alloc(SIZE, 0).map((_, i) => (i < SIZE / 2 ? (i & 0xff) | 1 : 0));
const base = {
  read: (o: number, n: number) => Buffer.from(BASE.subarray(o, o + n)),
  extents: (o: number, n: number): DiskExtent[] => {
    const half = Math.floor(SIZE / 2);
    const out: DiskExtent[] = [];
    if (o < half) out.push({ offset: o, length: Math.min(o + n, half) - o, zero: false });
    if (o + n > half) out.push({ offset: Math.max(o, half), length: o + n - Math.max(o, half), zero: true });
    return out;
  },
};
const INFO = { name: 's', rev: 'base', commit: 'c'.repeat(64), disk: 'd'.repeat(64), size: SIZE };

function expected(): Buffer {
  return Buffer.from(BASE);
}

test('overlay: reads merge writes over the base; partial blocks, zeros, trims, the short last block', (t) => {
  const data = tmpDir(t);
  const o = Overlay.create(data, INFO, base);
  const want = expected();
  o.write(OVERLAY_BLOCK + 10, Buffer.alloc(20, 0xab));
  want.fill(0xab, OVERLAY_BLOCK + 10, OVERLAY_BLOCK + 30);
  o.write(3 * OVERLAY_BLOCK, Buffer.alloc(2 * OVERLAY_BLOCK, 0xcd));
  want.fill(0xcd, 3 * OVERLAY_BLOCK, 5 * OVERLAY_BLOCK);
  o.zero(6 * OVERLAY_BLOCK + 100, 2 * OVERLAY_BLOCK);
  want.fill(0, 6 * OVERLAY_BLOCK + 100, 8 * OVERLAY_BLOCK + 100);
  o.zero(10 * OVERLAY_BLOCK + 100, 2 * OVERLAY_BLOCK, true); // trim: the whole block 11 only
  want.fill(0, 11 * OVERLAY_BLOCK, 12 * OVERLAY_BLOCK);
  o.write(SIZE - 10, Buffer.alloc(10, 0xee));
  want.fill(0xee, SIZE - 10);
  t.true(o.read(0, SIZE).equals(want));
  t.true(o.read(OVERLAY_BLOCK + 5, 30).equals(want.subarray(OVERLAY_BLOCK + 5, OVERLAY_BLOCK + 35)));
  t.throws(() => o.write(SIZE - 5, Buffer.alloc(10)), { instanceOf: RangeError });
  // Overlay blocks in the base's zero half are data.
  const ext = o.extents(SIZE - OVERLAY_BLOCK * 2, OVERLAY_BLOCK * 2);
  t.deepEqual(ext[ext.length - 1], { offset: 64 * OVERLAY_BLOCK, length: 1000, zero: false });
  t.true(o.touches(3 * OVERLAY_BLOCK + 5, 1));
  t.false(o.touches(2 * OVERLAY_BLOCK, OVERLAY_BLOCK));
  o.close();
  const r = Overlay.open(sessionDir(data, 's'), base, 'read');
  t.true(r.read(0, SIZE).equals(want), 'a clean close flushed everything');
  r.close();
  t.deepEqual(listSessionNames(data), ['s']);
});

test('overlay: after a crash the last flush is what remains; a torn or garbage tail is dropped; a writer cuts the files back', (t) => {
  const data = tmpDir(t);
  const dir = sessionDir(data, 's');
  const o = Overlay.create(data, INFO, base);
  o.write(0, Buffer.alloc(OVERLAY_BLOCK, 1));
  o.flush();
  o.write(0, Buffer.alloc(OVERLAY_BLOCK, 2)); // the flushed slot is not rewritten: a new one
  o.write(OVERLAY_BLOCK, Buffer.alloc(OVERLAY_BLOCK, 3));
  // No flush and no close: as after kill -9. A reader sees the flushed state only.
  const r = Overlay.open(dir, base, 'read');
  t.is(r.read(0, 1)[0], 1);
  t.is(r.read(OVERLAY_BLOCK, 1)[0], BASE[OVERLAY_BLOCK]);
  t.is(r.blocks, 1);
  r.close();
  // A live writer holds the lock: a second one is refused.
  t.throws(() => Overlay.open(dir, base, 'write'), { instanceOf: NbdSessionBusyError });
  // A torn record and garbage after the journal's end do not stop a replay.
  fs.appendFileSync(path.join(dir, 'journal'), Buffer.from('VNJ1 torn record'));
  const r2 = Overlay.open(dir, base, 'read');
  t.is(r2.read(0, 1)[0], 1);
  r2.close();
  // The writer "dies": its lock names a process that is gone; a new writer takes over and cuts both files back.
  fs.writeFileSync(path.join(dir, 'lock'), '999999999\n');
  const w = Overlay.open(dir, base, 'write');
  t.is(fs.statSync(path.join(dir, 'data')).size, OVERLAY_BLOCK);
  t.is(fs.statSync(path.join(dir, 'journal')).size, 64);
  t.is(w.read(0, 1)[0], 1);
  w.write(2 * OVERLAY_BLOCK, Buffer.alloc(OVERLAY_BLOCK, 4));
  w.close();
  const r3 = Overlay.open(dir, base, 'read');
  t.deepEqual([r3.read(0, 1)[0], r3.read(2 * OVERLAY_BLOCK, 1)[0]], [1, 4]);
  r3.close();
  // A flipped bit in a record ends the replay there (its CRC fails): the flush after it is not reached.
  const j = fs.readFileSync(path.join(dir, 'journal'));
  j[64 + 9] ^= 1;
  fs.writeFileSync(path.join(dir, 'journal'), j);
  const r4 = Overlay.open(dir, base, 'read');
  t.is(r4.read(2 * OVERLAY_BLOCK, 1)[0], BASE[2 * OVERLAY_BLOCK]);
  r4.close();
});

test('overlay: session names are checked; a missing session is NbdSessionNotFoundError', (t) => {
  const data = tmpDir(t);
  t.throws(() => sessionDir(data, '../x'), { instanceOf: UsageError });
  t.throws(() => sessionDir(data, ''), { instanceOf: UsageError });
  t.throws(() => Overlay.open(sessionDir(data, 'none'), base, 'read'), { instanceOf: NbdSessionNotFoundError });
  const e = new NbdSessionBusyError('s', 'in use by pid 1');
  t.is(e.code, 'ERR_SESSION_BUSY');
  t.is(e.name, 'NbdSessionBusyError');
  t.is(new NbdSessionNotFoundError('s').code, 'ERR_SESSION_NOT_FOUND');
});
