import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { bufferBlockSource, fileBlockSource } from '../../src/formats/ext4.js';
import { FAT_ATTRIBUTES_XATTR, fatTimeToSeconds, lfnChecksum, openFat, type FatInfo } from '../../src/formats/fat.js';
import type { ImageEntry } from '../../src/formats/types.js';
import { AbortedError, CorruptInputError } from '../../src/errors.js';

function haveTools(): boolean {
  try {
    for (const t of [['mkfs.vfat', '--help'], ['mcopy', '-V'], ['mattrib', '-V'], ['mtype', '-V']]) execFileSync(t[0], [t[1]], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const have = haveTools();
const tt = have ? test : test.skip;

/** mtools in UTC (FAT times are local time: UTC is how viva reads them), UTF-8 names, no geometry checks. */
const ENV = { ...process.env, mtools_skip_check: '1', LC_ALL: 'C.UTF-8', TZ: 'UTC' };
const mt = (cmd: string, args: string[]): Buffer => execFileSync(cmd, args, { env: ENV, maxBuffer: 64 << 20 });

let work: string;
let src: string;
/** The tree every image holds: long names, Unicode, a deep directory, an empty and a multi-cluster file. */
const FILES: Record<string, Buffer> = {
  'Long File Name With Spaces.txt': Buffer.from('long\n'),
  'ünïcödé-名前.txt': Buffer.from('unicode\n'),
  'deep/a/b/c/d/e/f/g/deep.txt': Buffer.from('deep\n'),
  'empty.txt': Buffer.alloc(0),
  'big.bin': Buffer.alloc(0),
  'readonly.txt': Buffer.from('ro\n'),
  'hidden.txt': Buffer.from('hidden\n'),
  'system.sys': Buffer.from('system\n'),
  'lower.txt': Buffer.from('lower\n'),
  'UPPER.TXT': Buffer.from('upper\n'),
  'Mixed.Txt': Buffer.from('mixed\n'),
};

test.before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-fat-test-'));
  src = path.join(work, 'src');
  FILES['big.bin'] = Buffer.alloc(300_000);
  for (let i = 0; i < FILES['big.bin'].length; i++) FILES['big.bin'][i] = (i * 7 + (i >> 9)) & 0xff;
  for (const [rel, data] of Object.entries(FILES)) {
    fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
    fs.writeFileSync(path.join(src, rel), data);
    // Odd seconds: FAT keeps 2-second steps.
    fs.utimesSync(path.join(src, rel), 1_700_000_001, 1_700_000_001);
  }
});

test.after.always(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

let images = 0;
const SIZES = { 12: 2048, 16: 8192, 32: 40960 } as const;

/** A FAT image of the tree, with attributes set, a volume label and a deleted file. */
function makeImage(bits: 12 | 16 | 32): string {
  const img = path.join(work, `fat${bits}-${++images}.img`);
  execFileSync('mkfs.vfat', ['-C', '-F', String(bits), ...(bits === 12 ? [] : ['-s', '1']), '-n', 'VIVATEST', img, String(SIZES[bits])], { stdio: 'ignore' });
  mt('mcopy', ['-s', '-m', '-i', img, ...fs.readdirSync(src).map((n) => path.join(src, n)), '::/']);
  mt('mcopy', ['-i', img, path.join(src, 'lower.txt'), '::/deleted.txt']);
  mt('mdel', ['-i', img, '::/deleted.txt']);
  mt('mattrib', ['-i', img, '+r', '::/readonly.txt']);
  mt('mattrib', ['-i', img, '+h', '::/hidden.txt']);
  mt('mattrib', ['-i', img, '+s', '-a', '::/system.sys']);
  return img;
}

async function walk(img: string | Buffer): Promise<{ info: FatInfo; entries: Array<ImageEntry & { data?: Buffer }> }> {
  const source = typeof img === 'string' ? await fileBlockSource(img) : bufferBlockSource(img);
  try {
    const { info, reader } = await openFat(source, 'x.img');
    const entries: Array<ImageEntry & { data?: Buffer }> = [];
    for await (const e of reader.entries()) {
      let data: Buffer | undefined;
      if (e.content) {
        const parts: Buffer[] = [];
        for await (const p of e.content.read()) parts.push(Buffer.from(p.data));
        data = Buffer.concat(parts);
      }
      entries.push({ ...e, data });
    }
    return { info, entries };
  } finally {
    if ('close' in source) await (source as { close(): Promise<void> }).close();
  }
}

/** mattrib -/ : every entry (hidden ones too) with its attribute letters. */
function mtoolsAttributes(img: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of mt('mattrib', ['-/', '-i', img, '::/']).toString('utf8').split('\n')) {
    const m = /^(.*?)::\/(.*)$/.exec(line);
    if (!m) continue;
    let a = 0;
    if (m[1].includes('R')) a |= 1;
    if (m[1].includes('H')) a |= 2;
    if (m[1].includes('S')) a |= 4;
    if (m[1].includes('A')) a |= 0x20;
    out.set(m[2], a);
  }
  return out;
}

for (const bits of [12, 16, 32] as const) {
  tt(`FAT${bits}: the walk matches mtools (names, attributes, contents) and the source (sizes, mtimes)`, async (t) => {
    const img = makeImage(bits);
    const { info, entries } = await walk(img);
    t.is(info.type, `fat${bits}`);
    t.is(info.label, 'VIVATEST');
    if (bits === 32) t.true(info.rootCluster! >= 2);
    const attrs = mtoolsAttributes(img);
    attrs.delete('');
    const paths = entries.map((e) => e.path.toString('utf8'));
    t.is(paths[0], '');
    t.deepEqual(paths.slice(1).sort(), [...attrs.keys()].sort());
    t.false(paths.includes('deleted.txt'));
    for (const e of entries.slice(1)) {
      const p = e.path.toString('utf8');
      const a = attrs.get(p)!;
      const x = e.xattrs.find((y) => y.name === FAT_ATTRIBUTES_XATTR);
      t.is(x ? x.value[0] : 0, a, p);
      t.is(e.uid, 0);
      t.is(e.gid, 0);
      if (e.type === 'dir') {
        t.is(e.mode, 0o755, p);
        continue;
      }
      t.is(e.type, 'file');
      t.is(e.mode, a & 1 ? 0o444 : 0o644, p);
      t.deepEqual(e.data, FILES[p], p);
      t.deepEqual(e.data, mt('mtype', ['-i', img, `::/${p}`]), p);
      t.is(e.content!.size, FILES[p].length);
      t.is(e.mtimeNs, 1_700_000_000n * 1_000_000_000n, p);
    }
    t.is(attrs.get('readonly.txt'), 0x21);
    t.is(attrs.get('hidden.txt'), 0x22);
    t.is(attrs.get('system.sys'), 0x04);
    // Walking twice gives the same (cluster claims start over).
    t.deepEqual((await walk(img)).entries.map((e) => e.path.toString('utf8')), paths);
  });
}

tt('an aborted walk stops with AbortedError', async (t) => {
  const ac = new AbortController();
  const { reader } = await openFat(bufferBlockSource(fs.readFileSync(makeImage(12))), 'x.img', { signal: ac.signal });
  let n = 0;
  await t.throwsAsync(async () => {
    for await (const e of reader.entries()) {
      void e;
      if (++n === 3) ac.abort();
    }
  }, { instanceOf: AbortedError });
  t.is(n, 3);
});

tt('pieces name where their bytes lie in the source (the map a bit-exact rebuild needs)', async (t) => {
  const img = fs.readFileSync(makeImage(16));
  const { reader, info } = await openFat(bufferBlockSource(img), 'x.img');
  t.is(info.clusterSize * info.clusterCount <= img.length, true);
  let checked = 0;
  for await (const e of reader.entries()) {
    if (!e.content) continue;
    for await (const p of e.content.read()) {
      t.deepEqual(Buffer.from(p.data), img.subarray(p.source!, p.source! + p.data.length));
      checked++;
    }
  }
  t.true(checked > 5);
});

test('long-name checksum and FAT times', (t) => {
  // fatgen103's ChkSum over 'FOO     BAR'.
  let sum = 0;
  for (const c of Buffer.from('FOO     BAR')) sum = ((((sum & 1) << 7) | (sum >> 1)) + c) & 0xff;
  t.is(lfnChecksum(Buffer.from('FOO     BAR')), sum);
  // 2023-11-14 22:13:20 UTC.
  t.is(fatTimeToSeconds(((2023 - 1980) << 9) | (11 << 5) | 14, (22 << 11) | (13 << 5) | 10), 1_700_000_000);
  t.is(fatTimeToSeconds(0, 0), 0);
});

// ---------------------------------------------------------------------------------------------------------------
// Damaged images

interface Geometry { bps: number; fatOffset: number; type: string }

function geometry(img: Buffer): Geometry {
  const bps = img.readUInt16LE(11);
  const fat16 = img.readUInt16LE(22);
  return { bps, fatOffset: img.readUInt16LE(14) * bps, type: fat16 === 0 ? 'fat32' : img.readUInt16LE(19) && img.readUInt16LE(19) / img[13] < 4085 ? 'fat12' : 'fat16' };
}

function setFat(img: Buffer, g: Geometry, c: number, v: number): void {
  if (g.type === 'fat32') img.writeUInt32LE(v, g.fatOffset + c * 4);
  else if (g.type === 'fat16') img.writeUInt16LE(v, g.fatOffset + c * 2);
  else {
    const o = g.fatOffset + c + (c >> 1);
    const w = img.readUInt16LE(o);
    img.writeUInt16LE(c & 1 ? (w & 0x000f) | (v << 4) : (w & 0xf000) | v, o);
  }
}

/** Offset of the 8.3 entry named `short` (11 bytes, as stored). */
function entryOf(img: Buffer, short: string): number {
  const at = img.indexOf(Buffer.from(short, 'latin1'));
  if (at < 0) throw new Error(`no entry '${short}'`);
  return at;
}

async function rejects(t: ExecutionContext, img: Buffer, pattern: RegExp): Promise<void> {
  const started = Date.now();
  const e = await t.throwsAsync(walk(img), { instanceOf: CorruptInputError });
  t.regex(e!.message, pattern);
  t.regex(e!.message, /^x\.img: /);
  t.true(Date.now() - started < 5000);
}

for (const bits of [12, 16, 32] as const) {
  tt(`FAT${bits} damaged: truncated, bad BPB, cluster loop, cluster past the end, chain too short, checksum mismatch`, async (t) => {
    const good = fs.readFileSync(makeImage(bits));
    const g = geometry(good);
    await t.notThrowsAsync(walk(good));

    await rejects(t, good.subarray(0, good.length >> 1), /boot sector: .*exceed the .*truncated/);
    await rejects(t, good.subarray(0, 100), /too small/);

    let img = Buffer.from(good);
    img.writeUInt16LE(300, 11);
    await rejects(t, img, /bytes per sector 300/);
    img = Buffer.from(good);
    img[13] = 3;
    await rejects(t, img, /sectors per cluster 3 is not a power of two/);
    img = Buffer.from(good);
    img[16] = 0;
    await rejects(t, img, /FAT count is 0/);

    const big = entryOf(good, 'BIG     BIN');
    const first = good.readUInt16LE(big + 26) + (bits === 32 ? good.readUInt16LE(big + 20) * 65536 : 0);
    img = Buffer.from(good);
    setFat(img, g, first + 2, first);
    await rejects(t, img, /cluster chain of 'big\.bin' loops/);

    img = Buffer.from(good);
    img.writeUInt16LE(0xfff0 & (bits === 12 ? 0xfff : 0xffff), big + 26);
    if (bits === 32) img.writeUInt16LE(0x0fff, big + 20);
    await rejects(t, img, /cluster \d+ lies outside clusters 2\.\./);

    img = Buffer.from(good);
    setFat(img, g, first + 1, bits === 12 ? 0xfff : bits === 16 ? 0xffff : 0x0fffffff);
    await rejects(t, img, /'big\.bin' has 2 clusters, its size needs/);

    img = Buffer.from(good);
    img.writeUInt32LE(1000, big + 28);
    await rejects(t, img, /chain of 'big\.bin' is longer than its size needs/);

    // A directory whose cluster is its parent's: the walk stops at the second claim instead of recursing.
    img = Buffer.from(good);
    const deepAt = entryOf(good, 'DEEP       ');
    const aAt = entryOf(good, 'A          ');
    img.writeUInt16LE(good.readUInt16LE(deepAt + 26), aAt + 26);
    img.writeUInt16LE(good.readUInt16LE(deepAt + 20), aAt + 20);
    await rejects(t, img, /belongs to another file too \(cross-linked\)/);

    // 'Mixed.Txt' has one long-name entry right before its 8.3 entry.
    img = Buffer.from(good);
    const mixed = entryOf(good, 'MIXED   TXT');
    t.is(img[mixed - 32 + 11], 0x0f);
    img[mixed - 32 + 13] ^= 0x55;
    await rejects(t, img, /long-name checksum \d+ does not match the short name's/);
  });
}
