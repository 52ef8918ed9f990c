import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { allocatedExtents, isQcow2, openQcow2, type Qcow2Source } from '../../src/formats/qcow2.js';
import { CorruptInputError, UnsupportedInputError } from '../../src/errors.js';

const MiB = 1 << 20;
const SIZE = 40 * MiB + 1536; // not a multiple of the cluster size
let work: string;

function run(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { cwd: work, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
const p = (name: string) => path.join(work, name);

/** Deterministic pseudo-random bytes. */
function prng(seed: number, n: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

test.before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-qcow2-test-'));
  const fd = fs.openSync(p('disk.raw'), 'w');
  fs.ftruncateSync(fd, SIZE);
  // Scattered regions: random (incompressible) and text-like (compressible), at unaligned offsets, with holes between.
  const regions: Array<[number, number]> = [[0, 4096], [123_457, 300_000], [3 * MiB + 17, 70_000], [9 * MiB, 2 * MiB + 5],
    [17 * MiB - 1000, 2000], [25 * MiB + 333, 640_000], [33 * MiB, 64 * 1024], [SIZE - 5000, 5000]];
  regions.forEach(([off, len], i) => {
    const data = i % 2 === 0 ? prng(i + 7, len) : Buffer.alloc(len, `line ${i} of compressible text, `);
    fs.writeSync(fd, data, 0, len, off);
  });
  fs.closeSync(fd);
  run('qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', 'disk.raw', 'plain.qcow2');
  run('qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', '-c', 'disk.raw', 'zlib.qcow2');
  run('qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', '-c', '-o', 'compression_type=zstd', 'disk.raw', 'zstd.qcow2');
  run('qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', '-o', 'compat=0.10', 'disk.raw', 'v2.qcow2');
  run('qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', '-o', 'cluster_size=4096', 'disk.raw', 'small.qcow2');
  // Overlay over a compressed base: data written, a zero-write over base data, a write in a hole.
  run('qemu-img', 'create', '-f', 'qcow2', '-b', 'zlib.qcow2', '-F', 'qcow2', 'top.qcow2');
  run('qemu-io', '-c', 'write -P 0x55 1M 64k', '-c', 'write -z 9M 64k', '-c', 'write -P 0x66 5M 3k', 'top.qcow2');
  // Overlay with a different cluster size on top of the overlay (chain of 3), then one over a raw base.
  run('qemu-img', 'create', '-f', 'qcow2', '-o', 'cluster_size=8192', '-b', 'top.qcow2', '-F', 'qcow2', 'top2.qcow2');
  run('qemu-io', '-c', 'write -P 0x77 9M 4k', '-c', 'write -z 0 8k', 'top2.qcow2');
  run('qemu-img', 'create', '-f', 'qcow2', '-b', 'disk.raw', '-F', 'raw', 'overraw.qcow2');
  run('qemu-io', '-c', 'write -P 0x11 2M 100k', 'overraw.qcow2');
  // Extended L2 entries (32 subclusters per cluster): converted, compressed, and written at subcluster offsets, alone
  // and over a backing file (subclusters allocated, zero, or left to the backing file within one cluster).
  run('qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', '-o', 'extended_l2=on', 'disk.raw', 'extl2.qcow2');
  run('qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', '-c', '-o', 'extended_l2=on,cluster_size=128k', 'disk.raw', 'extl2-zlib.qcow2');
  run('qemu-img', 'create', '-f', 'qcow2', '-o', 'extended_l2=on', 'extl2-sub.qcow2', String(SIZE));
  run('qemu-io', '-c', 'write -P 0x55 4096 2048', '-c', 'write -P 0x56 10240 6144', '-c', 'write -P 0x57 1048575 3',
    '-c', 'write -P 0x58 9437184 65536', '-c', 'write -z 9439232 4096', 'extl2-sub.qcow2');
  run('qemu-img', 'create', '-f', 'qcow2', '-o', 'extended_l2=on', '-b', 'plain.qcow2', '-F', 'qcow2', 'extl2-top.qcow2');
  run('qemu-io', '-c', 'write -P 0x55 126976 2048', '-c', 'write -z 124928 2048', '-c', 'write -P 0x66 3145745 5000',
    '-c', 'write -z 25165824 131072', '-c', 'write -P 0x67 41943040 1536', 'extl2-top.qcow2');
});

test.after.always(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function expectedRaw(name: string): string {
  const out = p(`${name}.expected.raw`);
  if (!fs.existsSync(out)) run('qemu-img', 'convert', '-O', 'raw', name, out);
  return out;
}

async function hashAll(src: Qcow2Source): Promise<string> {
  const h = crypto.createHash('sha256');
  for (let off = 0; off < src.size; off += MiB) h.update(await src.read(off, Math.min(MiB, src.size - off)));
  return h.digest('hex');
}

const IMAGES = ['plain.qcow2', 'zlib.qcow2', 'zstd.qcow2', 'v2.qcow2', 'small.qcow2', 'top.qcow2', 'top2.qcow2', 'overraw.qcow2',
  'extl2.qcow2', 'extl2-zlib.qcow2', 'extl2-sub.qcow2', 'extl2-top.qcow2'];

for (const name of IMAGES) {
  test(`reads ${name} byte-identical to qemu-img convert`, async (t) => {
    const raw = expectedRaw(name);
    const src = await openQcow2(p(name));
    try {
      t.is(src.size, fs.statSync(raw).size);
      t.is(await hashAll(src), crypto.createHash('sha256').update(fs.readFileSync(raw)).digest('hex'));
      // Random unaligned reads, some crossing clusters and L2 boundaries.
      const fd = fs.openSync(raw, 'r');
      try {
        const rnd = prng(name.length * 31 + 5, 400);
        for (let i = 0; i < 100; i++) {
          const off = Math.floor((rnd.readUInt32LE(i * 4) / 2 ** 32) * src.size);
          const len = Math.min(src.size - off, 1 + (rnd.readUInt16LE(i * 2) * 7));
          const want = Buffer.alloc(len);
          fs.readSync(fd, want, 0, len, off);
          t.true((await src.read(off, len)).equals(want), `read ${len} at ${off}`);
        }
        t.is((await src.read(src.size - 1, 1)).length, 1);
        t.is((await src.read(0, 0)).length, 0);
      } finally {
        fs.closeSync(fd);
      }
      await t.throwsAsync(src.read(src.size - 1, 2));
    } finally {
      await src.close();
    }
  });

  test(`allocatedExtents of ${name} matches qemu-img map`, async (t) => {
    const map = JSON.parse(run('qemu-img', 'map', '--output=json', name)) as Array<{ start: number; length: number; data: boolean }>;
    const want: Array<[number, number]> = [];
    for (const e of map) {
      if (!e.data) continue;
      const last = want[want.length - 1];
      if (last && last[1] === e.start) last[1] = e.start + e.length;
      else want.push([e.start, e.start + e.length]);
    }
    const src = await openQcow2(p(name));
    try {
      const got: Array<[number, number]> = [];
      for await (const e of allocatedExtents(src)) got.push([e.offset, e.offset + e.length]);
      if (name === 'overraw.qcow2') {
        // A raw backing file counts as allocated over its whole length (no SEEK_DATA in Node).
        t.deepEqual(got, [[0, SIZE]]);
      } else {
        t.deepEqual(got, want);
      }
      t.true(got.length > 0);
    } finally {
      await src.close();
    }
  });
}

test('info and isQcow2', async (t) => {
  t.true(isQcow2(fs.readFileSync(p('plain.qcow2')).subarray(0, 8)));
  t.false(isQcow2(Buffer.from('QFI')));
  t.false(isQcow2(fs.readFileSync(p('disk.raw')).subarray(0, 8)));
  const z = await openQcow2(p('zstd.qcow2'));
  t.like(z.info, { version: 3, virtualSize: SIZE, clusterSize: 65536, compressionType: 'zstd', dirty: false, backingChain: [] });
  t.is(z.info.backingFile, undefined);
  await z.close();
  const v2 = await openQcow2(p('v2.qcow2'));
  t.like(v2.info, { version: 2, compressionType: 'zlib' });
  await v2.close();
  const top = await openQcow2(p('top2.qcow2'));
  t.like(top.info, { clusterSize: 8192, backingFile: 'top.qcow2' });
  t.deepEqual(top.info.backingChain, [p('top.qcow2'), p('zlib.qcow2')]);
  await top.close();
  await t.throwsAsync(openQcow2(p('top2.qcow2'), { maxChain: 1 }), { instanceOf: UnsupportedInputError });
  await t.throwsAsync(openQcow2(p('disk.raw')), { instanceOf: CorruptInputError });
});

// ---- bad input -------------------------------------------------------------------------------------------------

function copy(from: string, to: string, patch?: (b: Buffer) => Buffer): string {
  let b: Buffer = fs.readFileSync(p(from));
  if (patch) b = patch(b);
  fs.writeFileSync(p(to), b);
  return p(to);
}

/** Opens and reads everything; must reject with `cls` naming the file, within a second. */
async function rejects(t: import('ava').ExecutionContext, file: string, cls: new (...args: any[]) => Error, name = file) {
  const t0 = Date.now();
  const err = await t.throwsAsync((async () => {
    const src = await openQcow2(file);
    try {
      await hashAll(src);
    } finally {
      await src.close();
    }
  })(), { instanceOf: cls });
  t.true(err!.message.includes(name), err!.message);
  // A loop must be detected, not followed until some limit: well inside the 10 s the issue allows any bad image.
  t.true(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
  return err!;
}

test('truncated image', async (t) => {
  const f = copy('plain.qcow2', 'trunc.qcow2', (b) => b.subarray(0, b.length >> 1));
  await rejects(t, f, CorruptInputError);
  await rejects(t, copy('plain.qcow2', 'trunc2.qcow2', (b) => b.subarray(0, 50)), CorruptInputError);
});

test('L1 table past EOF', async (t) => {
  const f = copy('plain.qcow2', 'l1eof.qcow2', (b) => { b.writeBigUInt64BE(BigInt(b.length + 65536 * 10), 40); return b; });
  const err = await rejects(t, f, CorruptInputError);
  t.regex(err.message, /l1_table_offset/);
});

test('L1 entry pointing past EOF', async (t) => {
  const f = copy('plain.qcow2', 'l1entry.qcow2', (b) => {
    const l1 = Number(b.readBigUInt64BE(40));
    b.writeBigUInt64BE(BigInt(b.length + 65536 * 4) | (1n << 63n), l1);
    return b;
  });
  await rejects(t, f, CorruptInputError);
});

test('L2 entry pointing past EOF', async (t) => {
  const f = copy('plain.qcow2', 'l2eof.qcow2', (b) => {
    const l1 = Number(b.readBigUInt64BE(40));
    const l2 = Number(b.readBigUInt64BE(l1) & 0x00fffffffffffe00n);
    // First allocated data cluster: guest offset 0.
    t.not(b.readBigUInt64BE(l2), 0n);
    b.writeBigUInt64BE(BigInt(b.length + 65536 * 100) | (1n << 63n), l2);
    return b;
  });
  const err = await rejects(t, f, CorruptInputError);
  t.regex(err.message, /L2 entry 0/);
});

test('L2 entry not cluster-aligned, L2 table misaligned, absurd header fields', async (t) => {
  const l2patch = (v: bigint) => (b: Buffer) => {
    const l1 = Number(b.readBigUInt64BE(40));
    const l2 = Number(b.readBigUInt64BE(l1) & 0x00fffffffffffe00n);
    b.writeBigUInt64BE(v, l2);
    return b;
  };
  await rejects(t, copy('plain.qcow2', 'l2mis.qcow2', l2patch(0x10200n)), CorruptInputError);
  await rejects(t, copy('plain.qcow2', 'l1mis.qcow2', (b) => {
    const l1 = Number(b.readBigUInt64BE(40));
    b.writeBigUInt64BE(b.readBigUInt64BE(l1) + 512n, l1);
    return b;
  }), CorruptInputError);
  await rejects(t, copy('plain.qcow2', 'cbits.qcow2', (b) => { b.writeUInt32BE(30, 20); return b; }), CorruptInputError);
  await rejects(t, copy('plain.qcow2', 'cbits8.qcow2', (b) => { b.writeUInt32BE(8, 20); return b; }), CorruptInputError);
  await rejects(t, copy('plain.qcow2', 'vsize.qcow2', (b) => { b.writeBigUInt64BE(1n << 60n, 24); return b; }), CorruptInputError);
  await rejects(t, copy('plain.qcow2', 'l1size.qcow2', (b) => { b.writeUInt32BE(0xffffffff, 36); return b; }), CorruptInputError);
  await rejects(t, copy('plain.qcow2', 'l1small.qcow2', (b) => { b.writeUInt32BE(0, 36); return b; }), CorruptInputError);
  await rejects(t, copy('zlib.qcow2', 'badz.qcow2', (b) => {
    // Corrupt every compressed cluster's payload: find L2 entries with bit 62 and overwrite their first bytes.
    const l1 = Number(b.readBigUInt64BE(40));
    const l2 = Number(b.readBigUInt64BE(l1) & 0x00fffffffffffe00n);
    for (let i = 0; i < 8192; i++) {
      const e = b.readBigUInt64BE(l2 + i * 8);
      if (e & (1n << 62n)) b.fill(0xff, Number(e & ((1n << 54n) - 1n)), Number(e & ((1n << 54n) - 1n)) + 64);
    }
    return b;
  }), CorruptInputError);
});

test('backing file loop', async (t) => {
  run('qemu-img', 'create', '-f', 'qcow2', 'loopa.qcow2', '1M');
  run('qemu-img', 'create', '-f', 'qcow2', '-b', 'loopa.qcow2', '-F', 'qcow2', 'loopb.qcow2');
  run('qemu-img', 'rebase', '-u', '-b', 'loopb.qcow2', '-F', 'qcow2', 'loopa.qcow2');
  const err = await rejects(t, p('loopb.qcow2'), CorruptInputError, 'loop');
  t.regex(err.message, /loop/);
  // A self-reference, too.
  run('qemu-img', 'create', '-f', 'qcow2', 'self.qcow2', '1M');
  run('qemu-img', 'rebase', '-u', '-b', 'self.qcow2', '-F', 'qcow2', 'self.qcow2');
  await rejects(t, p('self.qcow2'), CorruptInputError);
});

test('refuses encryption, external data file, unknown features', async (t) => {
  await rejects(t, copy('plain.qcow2', 'enc.qcow2', (b) => { b.writeUInt32BE(1, 32); return b; }), UnsupportedInputError);
  await rejects(t, copy('plain.qcow2', 'ext.qcow2', (b) => { b[79] |= 4; return b; }), UnsupportedInputError);
  await rejects(t, copy('plain.qcow2', 'unk.qcow2', (b) => { b[78] |= 1; return b; }), UnsupportedInputError);
  await rejects(t, copy('plain.qcow2', 'ver.qcow2', (b) => { b.writeUInt32BE(4, 4); return b; }), UnsupportedInputError);
  // The dirty bit is fine and reported.
  const d = await openQcow2(copy('plain.qcow2', 'dirty.qcow2', (b) => { b[79] |= 1; return b; }));
  t.true(d.info.dirty);
  await d.close();
});

test('extended L2 entries: subcluster bitmap read as qemu reads it; a subcluster both allocated and zero is refused', async (t) => {
  const src = await openQcow2(p('extl2-sub.qcow2'));
  t.true(src.info.extendedL2);
  // 2 KiB subclusters of a 64 KiB cluster: written ones hold the pattern, the rest of the cluster reads as zeros.
  t.true((await src.read(4096, 2048)).equals(Buffer.alloc(2048, 0x55)));
  t.true((await src.read(2048, 2048)).equals(Buffer.alloc(2048)));
  t.true((await src.read(9437184 + 2048, 4096)).equals(Buffer.alloc(4096)));
  t.true((await src.read(9437184 + 6144, 2048)).equals(Buffer.alloc(2048, 0x58)));
  // Extents at subcluster granularity (the loop above compares them with qemu-img map): the first starts at 4096.
  for await (const e of allocatedExtents(src)) {
    t.is(e.offset, 4096);
    break;
  }
  await src.close();
  // The first data L2 entry of the first L2 table, its zero bits set over its allocated ones.
  await rejects(t, copy('extl2-sub.qcow2', 'extl2-bad.qcow2', (b) => {
    const l2 = Number(b.readBigUInt64BE(Number(b.readBigUInt64BE(40))) & 0x00fffffffffffe00n);
    let i = 0;
    while (b.readUInt32BE(l2 + i * 16 + 12) === 0) i++;
    b.writeUInt32BE(b.readUInt32BE(l2 + i * 16 + 12), l2 + i * 16 + 8);
    return b;
  }), CorruptInputError);
});
