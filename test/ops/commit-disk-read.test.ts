/** Region reads of a disk commit: a short read or an abort is an error, never a region stored cut short. */
import test from 'ava';
import { AbortedError, SourceReadError } from '../../src/errors.js';
import type { DiskSource, Extent } from '../../src/formats/disk.js';
import { regionPieces } from '../../src/ops/commit-disk.js';
import path from 'node:path';
import { commitAt, randomBytes, tmpDir, tmpRepo } from '../helpers/repo.js';
import { SECTOR, makeMbrDisk, patchBytes } from '../helpers/mbr-disk.js';

const MiB = 1 << 20;

/** A DiskSource over bytes in memory whose reads may come back short from a given offset on. */
function memorySource(bytes: Buffer, shortFrom = Infinity): DiskSource & { reads: number } {
  const src = {
    format: 'raw' as const, name: 'mem.img', fileSize: bytes.length, backing: [], size: bytes.length, reads: 0,
    async read(at: number, n: number): Promise<Buffer> {
      src.reads++;
      return bytes.subarray(at, at + (at + n > shortFrom ? Math.max(0, shortFrom - at) : n));
    },
    async *extents(): AsyncIterable<Extent> {
      yield { offset: 0, length: bytes.length };
    },
    async close(): Promise<void> {},
  };
  return src;
}

async function collect(src: DiskSource, signal?: AbortSignal, onPiece?: () => void): Promise<number> {
  let n = 0;
  for await (const p of regionPieces(src, { offset: 0, size: src.size }, [{ offset: 0, length: src.size }], [], signal)) {
    n += p.data.length;
    onPiece?.();
  }
  return n;
}

test('regionPieces: a source that reads in full yields every byte', async (t) => {
  t.is(await collect(memorySource(randomBytes(3 * MiB, 'full'))), 3 * MiB);
});

test('regionPieces: a short read is a SourceReadError naming the file and the offset', async (t) => {
  const src = memorySource(randomBytes(3 * MiB, 'short'), 2 * MiB + 100);
  const e = await t.throwsAsync(collect(src), { instanceOf: SourceReadError });
  t.is(e!.message, `cannot read 'mem.img': short read at offset ${2 * MiB}: 100 of ${MiB} bytes`);
});

test('regionPieces: an abort mid-region is an AbortedError, not a quiet end', async (t) => {
  const src = memorySource(randomBytes(4 * MiB, 'abort'));
  const ac = new AbortController();
  let pieces = 0;
  await t.throwsAsync(collect(src, ac.signal, () => {
    if (++pieces === 1) ac.abort();
  }), { instanceOf: AbortedError });
  t.true(src.reads < 4, 'reading stopped at the abort');
});

test('regionPieces: an abort before the first read reads nothing', async (t) => {
  const src = memorySource(randomBytes(MiB, 'pre'));
  const ac = new AbortController();
  ac.abort();
  await t.throwsAsync(collect(src, ac.signal), { instanceOf: AbortedError });
  t.is(src.reads, 0);
});

test('commit of a disk: an aborted signal is an AbortedError and the branch does not move', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'disk.raw');
  makeMbrDisk(file, 8, [{ start: 2048, sectors: 8192, type: 0x0c }]);
  patchBytes(file, 2048 * SECTOR, randomBytes(3 * MiB, 'p1'));
  const { repo } = tmpRepo(t);
  const ac = new AbortController();
  ac.abort();
  await t.throwsAsync(commitAt(repo, file, { branch: 'vm/a', signal: ac.signal }), { instanceOf: AbortedError });
  t.is(repo.refs.resolve('refs/heads/vm/a')?.oid, undefined);
  const ok = await commitAt(repo, file, { branch: 'vm/b' });
  t.truthy(ok);
});
