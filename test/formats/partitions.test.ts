import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { readPartitionTable, gaps, type PartitionTable } from '../../src/formats/partitions.js';
import { bufferBlockSource, fileBlockSource } from '../../src/formats/ext4.js';
import { CorruptInputError } from '../../src/errors.js';

const MiB = 1 << 20;

function tmpdir(t: ExecutionContext): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-part-test-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

function run(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] }).toString();
}

const MBR_SCRIPT = 'label: dos\nlabel-id: 0x12345678\n,4MiB,83,*\n,4MiB,82\n,,5\n,2MiB,83\n,2MiB,83\n,,83\n';

function makeMbr(dir: string): string {
  const img = path.join(dir, 'mbr.img');
  run('truncate', ['-s', '20M', img]);
  run('sfdisk', [img], MBR_SCRIPT);
  return img;
}

function makeGpt(dir: string): string {
  const img = path.join(dir, 'gpt.img');
  run('truncate', ['-s', '40M', img]);
  // No -q: with it sgdisk silently writes nothing.
  run('sgdisk', ['-n', '1:2048:+8M', '-t', '1:EF00', '-c', '1:EFI', '-n', '2:0:+16M', '-t', '2:8300', '-c', '2:root', '-A', '2:set:2',
    '-n', '3:0:0', '-t', '3:8200', img]);
  return img;
}

interface SfdiskJson {
  partitiontable: {
    label: string; id: string; sectorsize: number; firstlba?: number; lastlba?: number;
    partitions: Array<{ node: string; start: number; size: number; type: string; bootable?: boolean; uuid?: string; name?: string; attrs?: string }>;
  };
}

function sfdiskJson(img: string): SfdiskJson['partitiontable'] {
  return (JSON.parse(run('sfdisk', ['--json', img])) as SfdiskJson).partitiontable;
}

async function parseFile(img: string): Promise<PartitionTable | undefined> {
  const src = await fileBlockSource(img);
  try {
    return await readPartitionTable(src, img);
  } finally {
    await src.close();
  }
}

function parseBuffer(buf: Buffer, name = 'disk.img'): Promise<PartitionTable | undefined> {
  return readPartitionTable(bufferBlockSource(buf), name);
}

test('MBR: primaries, bootable flag, extended chain with 3 logicals match sfdisk --json', async (t) => {
  const img = makeMbr(tmpdir(t));
  const table = await parseFile(img);
  const ref = sfdiskJson(img);
  t.truthy(table);
  t.is(table!.kind, 'mbr');
  t.is(table!.sectorSize, 512);
  t.is(table!.diskSize, 20 * MiB);
  t.is(table!.diskSignature, ref.id);
  t.is(table!.bootCode.length, 440);
  t.deepEqual(table!.bootCode, fs.readFileSync(img).subarray(0, 440));
  t.deepEqual(
    table!.partitions.map((p) => ({ index: p.index, start: p.start / 512, size: p.size / 512, type: Number.parseInt(p.type, 16), bootable: p.bootable || undefined })),
    ref.partitions.map((p) => ({ index: Number(/(\d+)$/.exec(p.node)![1]), start: p.start, size: p.size, type: Number.parseInt(p.type, 16), bootable: p.bootable })),
  );
  t.deepEqual(table!.partitions.filter((p) => p.logical).map((p) => p.index), [5, 6, 7]);
  t.is(table!.partitions[0]!.type, '0x83');
  t.is(table!.partitions[2]!.type, '0x05');
});

test('MBR: gaps cover MBR, EBRs and alignment holes; with data partitions they tile the disk', async (t) => {
  const img = makeMbr(tmpdir(t));
  const table = (await parseFile(img))!;
  const g = gaps(table);
  t.deepEqual(g[0], { start: 0, size: 2048 * 512 });
  // The first EBR sits at the start of the extended partition, before the first logical.
  t.true(g.some((r) => r.start === 18432 * 512 && r.size === 2048 * 512));
  const data = table.partitions.filter((p) => p.type !== '0x05').map((p) => ({ start: p.start, size: p.size }));
  const all = [...g, ...data].sort((a, b) => a.start - b.start);
  let pos = 0;
  for (const r of all) {
    t.is(r.start, pos);
    pos += r.size;
  }
  t.is(pos, table.diskSize);
});

test('GPT: ESP, root and swap with names, GUIDs and attributes match sfdisk --json', async (t) => {
  const img = makeGpt(tmpdir(t));
  const table = await parseFile(img);
  const ref = sfdiskJson(img);
  t.truthy(table);
  t.is(table!.kind, 'gpt');
  t.is(table!.headerCrcOk, true);
  t.is(table!.diskGuid, ref.id.toLowerCase());
  t.is(table!.firstUsable, ref.firstlba! * 512);
  t.is(table!.lastUsable, (ref.lastlba! + 1) * 512);
  t.deepEqual(
    table!.partitions.map((p) => ({ start: p.start / 512, size: p.size / 512, type: p.type, guid: p.guid, name: p.name || undefined })),
    ref.partitions.map((p) => ({ start: p.start, size: p.size, type: p.type.toLowerCase(), guid: p.uuid!.toLowerCase(), name: p.name })),
  );
  t.deepEqual(table!.partitions.map((p) => p.index), [1, 2, 3]);
  t.is(table!.partitions[0]!.type, 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b');
  t.is(table!.partitions[1]!.attributes, '0x0000000000000004'); // LegacyBIOSBootable (bit 2)
  t.is(ref.partitions[1]!.attrs, 'LegacyBIOSBootable');
  t.is(table!.partitions[0]!.attributes, '0x0000000000000000');
  const g = gaps(table!);
  t.deepEqual(g[0], { start: 0, size: 2048 * 512 });
  t.is(g[g.length - 1]!.start + g[g.length - 1]!.size, table!.diskSize); // backup array + header at the end
});

test('GPT: corrupted primary header CRC falls back to the backup header', async (t) => {
  const img = makeGpt(tmpdir(t));
  const good = (await parseFile(img))!;
  const buf = fs.readFileSync(img);
  buf[512 + 16] ^= 0xff; // header CRC32 field
  const table = (await parseBuffer(buf))!;
  t.is(table.headerCrcOk, false);
  t.deepEqual(table.partitions, good.partitions);
  t.is(table.diskGuid, good.diskGuid);
  // A damaged primary partition array also falls back.
  const buf2 = fs.readFileSync(img);
  buf2[1024 + 40] ^= 0x01;
  const table2 = (await parseBuffer(buf2))!;
  t.is(table2.headerCrcOk, false);
  t.deepEqual(table2.partitions, good.partitions);
});

test('GPT: both headers damaged → CorruptInputError', async (t) => {
  const img = makeGpt(tmpdir(t));
  const buf = fs.readFileSync(img);
  buf[512 + 16] ^= 0xff;
  buf[buf.length - 512 + 16] ^= 0xff;
  const e = await t.throwsAsync(parseBuffer(buf, 'both.img'), { instanceOf: CorruptInputError });
  t.is((e as CorruptInputError).data.file, 'both.img');
  t.is((e as CorruptInputError).data.where, 'GPT header at offset 512');
});

test('GPT: absurd entry size and overlapping entries → CorruptInputError', async (t) => {
  const img = makeGpt(tmpdir(t));
  const fix = (buf: Buffer, at: number): void => {
    buf.writeUInt32LE(0, at + 16);
    buf.writeUInt32LE(zlib.crc32(buf.subarray(at, at + 92)), at + 16);
  };
  // Entry size not a multiple of 128, in both headers (CRCs fixed up so only the field is wrong).
  const buf = fs.readFileSync(img);
  for (const at of [512, buf.length - 512]) {
    buf.writeUInt32LE(100, at + 84);
    fix(buf, at);
  }
  await t.throwsAsync(parseBuffer(buf), { instanceOf: CorruptInputError, message: /entry size 100/ });
  // Partition 2 moved onto partition 1 (array CRC fixed up in the primary header).
  const buf2 = fs.readFileSync(img);
  buf2.writeBigUInt64LE(4096n, 1024 + 128 + 32);
  buf2.writeUInt32LE(zlib.crc32(buf2.subarray(1024, 1024 + 128 * 128)), 512 + 88);
  fix(buf2, 512);
  const e = await t.throwsAsync(parseBuffer(buf2), { instanceOf: CorruptInputError });
  t.is((e as CorruptInputError).data.where, 'partition 2');
  t.regex(e!.message, /overlaps partition 1/);
  // Partition 1 starting before firstUsable.
  const buf3 = fs.readFileSync(img);
  buf3.writeBigUInt64LE(2n, 1024 + 32);
  buf3.writeUInt32LE(zlib.crc32(buf3.subarray(1024, 1024 + 128 * 128)), 512 + 88);
  fix(buf3, 512);
  await t.throwsAsync(parseBuffer(buf3), { instanceOf: CorruptInputError, message: /partition 1.*usable/ });
});

test('MBR: overlapping primaries → CorruptInputError', async (t) => {
  const buf = fs.readFileSync(makeMbr(tmpdir(t)));
  buf.writeUInt32LE(4096, 446 + 16 + 8); // partition 2 now starts inside partition 1
  const e = await t.throwsAsync(parseBuffer(buf, 'overlap.img'), { instanceOf: CorruptInputError });
  t.is((e as CorruptInputError).data.where, 'partition 2');
  t.regex(e!.message, /overlap\.img: partition 2: overlaps partition 1/);
});

test('MBR: partition past the end of the disk → CorruptInputError', async (t) => {
  const buf = fs.readFileSync(makeMbr(tmpdir(t)));
  buf.writeUInt32LE(1_000_000, 446 + 16 + 12); // size of partition 2
  const e = await t.throwsAsync(parseBuffer(buf), { instanceOf: CorruptInputError });
  t.is((e as CorruptInputError).data.where, 'partition 2');
  // Same for a truncated image read through a file.
  const dir = tmpdir(t);
  const img = makeMbr(dir);
  run('truncate', ['-s', '15M', img]);
  await t.throwsAsync(parseFile(img), { instanceOf: CorruptInputError, message: /partition 3/ });
});

test('MBR: EBR chain loop → CorruptInputError', async (t) => {
  const buf = fs.readFileSync(makeMbr(tmpdir(t)));
  const extLba = buf.readUInt32LE(446 + 32 + 8);
  const firstEbr = extLba * 512;
  const secondRel = buf.readUInt32LE(firstEbr + 446 + 16 + 8);
  const secondEbr = (extLba + secondRel) * 512;
  t.not(buf.readUInt32LE(secondEbr + 446 + 16 + 12), 0); // has a next link
  buf.writeUInt32LE(secondRel, secondEbr + 446 + 16 + 8); // next → itself
  const e = await t.throwsAsync(parseBuffer(buf), { instanceOf: CorruptInputError, message: /loops/ });
  t.is((e as CorruptInputError).data.where, `EBR at offset ${secondEbr}`);
});

test('no 0x55AA signature → undefined (bare file system)', async (t) => {
  t.is(await parseBuffer(Buffer.alloc(MiB)), undefined);
  t.is(await parseBuffer(Buffer.alloc(100)), undefined);
  const buf = fs.readFileSync(makeMbr(tmpdir(t)));
  buf[511] = 0;
  t.is(await parseBuffer(buf), undefined);
});

test('MBR: sectorSize 4096 scales LBAs to bytes', async (t) => {
  const buf = Buffer.alloc(8 * MiB);
  buf.writeUInt16BE(0x55aa, 510);
  buf[446] = 0x80;
  buf[446 + 4] = 0x83;
  buf.writeUInt32LE(256, 446 + 8);
  buf.writeUInt32LE(512, 446 + 12);
  const table = (await readPartitionTable(bufferBlockSource(buf), '4k.img', { sectorSize: 4096 }))!;
  t.is(table.sectorSize, 4096);
  t.deepEqual(table.partitions, [{ index: 1, start: MiB, size: 2 * MiB, type: '0x83', bootable: true }]);
  t.deepEqual(gaps(table), [{ start: 0, size: MiB }, { start: 3 * MiB, size: 5 * MiB }]);
});
