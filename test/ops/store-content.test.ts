/** Tests of storeContent: borrowed piece buffers (a reader that reuses and overwrites its buffer), holes, inline blobs. */
import test from 'ava';
import { storeContent } from '../../src/store/store-content.js';
import { decodeBlob } from '../../src/model/blob.js';
import type { FileContent } from '../../src/formats/types.js';
import type { ObjectKind, ObjectWriter } from '../../src/store/object-store.js';
import { MiB, randomBytes, sha256 } from '../helpers/repo.js';

/** An in-memory ObjectWriter that copies at writeObject, as the real ones must. */
class MemoryWriter implements ObjectWriter {
  readonly objects = new Map<string, Buffer>();
  hasObject(kind: ObjectKind, oid: string): boolean {
    return this.objects.has(`${kind}:${oid}`);
  }
  writeObject(kind: ObjectKind, oid: string, data: Uint8Array): void {
    this.objects.set(`${kind}:${oid}`, Buffer.from(data));
  }
  async drain(): Promise<void> {}
  flush(): void {}

  /** The file content a blob describes (zeros for zero segments). */
  content(oid: string): Buffer {
    const rec = decodeBlob(this.objects.get(`blob:${oid}`)!);
    if (rec.form === 'inline') return rec.data;
    return Buffer.concat(rec.segments.map((s) => {
      if (s.kind === 'zero') return Buffer.alloc(s.length);
      const c = this.objects.get(`chunk:${s.oid}`)!;
      if (sha256(c) !== s.oid) throw new Error('chunk does not match its id');
      return c;
    }));
  }
}

type Layout = Array<[offset: number, length: number]>;

/**
 * Content of `data` with only the `layout` ranges as pieces (the rest are holes), split into pieces of `piece` bytes.
 * `reuse`: like the directory reader, all pieces share one buffer; here it is even scribbled over as soon as the
 * consumer asks for the next piece (and when the read ends), so a consumer that keeps a reference sees garbage.
 */
function contentOf(data: Buffer, layout: Layout, piece: number, reuse: boolean): FileContent {
  return {
    size: data.length,
    async *read() {
      const buf = Buffer.alloc(piece);
      for (const [start, length] of layout) {
        for (let off = start; off < start + length; off += piece) {
          const n = Math.min(piece, start + length - off);
          const out = reuse ? buf.subarray(0, n) : Buffer.from(data.subarray(off, off + n));
          if (reuse) data.copy(buf, 0, off, off + n);
          yield { offset: off, data: out };
          if (reuse) buf.fill(0xee);
        }
      }
    },
  };
}

/** `data` with the bytes outside `layout` zeroed (what the content reads as). */
function withHoles(data: Buffer, layout: Layout): Buffer {
  const out = Buffer.alloc(data.length);
  for (const [o, l] of layout) data.copy(out, o, o, o + l);
  return out;
}

const DATA = randomBytes(5 * MiB + 12_345, 'store-content');

const CASES: Array<{ name: string; size: number; layout?: Layout; pieces: number[] }> = [
  { name: 'a small file (one chunk, inline)', size: 10_000, pieces: [MiB, 1000, 7] },
  { name: 'one chunk in several pieces', size: 200_000, pieces: [MiB, 65_536, 4099] },
  { name: 'a large file', size: DATA.length, pieces: [MiB, 300_000, 65_537] },
  // The first chunk of DATA ends at 22,683 and the second at 93,556: with 50 KB pieces the first chunk is a view into
  // the first piece that must be held (copied) across pieces; with 20 KB ones it is assembled in the chunker.
  { name: 'a first chunk held across pieces', size: 2 * MiB, pieces: [50_000, 20_000, 16_385] },
  { name: 'holes in the middle and at the end', size: 4 * MiB, layout: [[0, 300_000], [MiB, 5000], [2 * MiB + 17, 700_000]], pieces: [MiB, 20_000] },
  { name: 'a leading hole and one small piece', size: 3 * MiB, layout: [[2 * MiB, 10_000]], pieces: [MiB] },
  { name: 'only holes', size: 2 * MiB, layout: [], pieces: [MiB] },
  { name: 'an empty file', size: 0, pieces: [MiB] },
];

for (const c of CASES) {
  for (const piece of c.pieces) {
    test(`storeContent: ${c.name}, pieces of ${piece}: a reused, overwritten piece buffer stores the same objects as fresh buffers`, async (t) => {
      const data = DATA.subarray(0, c.size);
      const layout = c.layout ?? (c.size ? [[0, c.size]] : []);
      const expected = withHoles(data, layout);

      const fresh = new MemoryWriter();
      const a = await storeContent(fresh, contentOf(data, layout, piece, false));
      const reused = new MemoryWriter();
      const b = await storeContent(reused, contentOf(data, layout, piece, true));

      t.is(a.oid, sha256(expected));
      t.deepEqual(b, a);
      t.deepEqual([...reused.objects.keys()].sort(), [...fresh.objects.keys()].sort());
      for (const [k, v] of fresh.objects) t.true(reused.objects.get(k)!.equals(v), k);
      t.true(reused.content(b.oid).equals(expected));
      const rec = decodeBlob(reused.objects.get(`blob:${b.oid}`)!);
      const holeBytes = a.holes.reduce((n, h) => n + h.length, 0);
      t.is(holeBytes, c.size - layout.reduce((n, [, l]) => n + l, 0));
      if (holeBytes === 0 && c.size <= 16 * 1024) t.is(rec.form, 'inline');
    });
  }
}

test('storeContent: the same content again is deduplicated as a whole, and a piece after the last one is refused', async (t) => {
  const w = new MemoryWriter();
  const data = DATA.subarray(0, 3 * MiB);
  const first = await storeContent(w, contentOf(data, [[0, data.length]], MiB, true));
  const count = w.objects.size;
  const again = await storeContent(w, contentOf(data, [[0, data.length]], 700_000, true));
  t.is(again.oid, first.oid);
  t.is(w.objects.size, count);
  t.true(again.dedupChunks > 0);

  const extra: FileContent = {
    size: 10,
    async *read() {
      yield { offset: 0, data: Buffer.alloc(10, 1) };
      yield { offset: 10, data: Buffer.alloc(0) }; // empty pieces are fine
      yield { offset: 10, data: Buffer.alloc(1, 2) };
    },
  };
  await t.throwsAsync(storeContent(new MemoryWriter(), extra), { message: /beyond the size/ });
});

test('storeContent: an error the reader throws after its last piece (a changed file) still fails the call', async (t) => {
  const changed: FileContent = {
    size: 5,
    async *read() {
      yield { offset: 0, data: Buffer.from('hello') };
      throw new Error('changed while it was being read');
    },
  };
  await t.throwsAsync(storeContent(new MemoryWriter(), changed), { message: /changed/ });
});
