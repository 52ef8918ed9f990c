/** The LVM2 reader: metadata text parser, label and metadata area checks, LV layout; against lvs for a real PV. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { CorruptInputError } from '../../src/errors.js';
import type { BlockSource } from '../../src/formats/ext4.js';
import { findLvmLabel, lvmCrc, parseLvmMetadata, readLvmPv, volumeSource } from '../../src/formats/lvm.js';
import { type Disk, type LvmContent, decodeDisk, diskReferences, encodeDisk } from '../../src/model/disk.js';
import { MiB, tmpDir } from '../helpers/repo.js';
import { MDA_AT, PE_START, handMadePv, haveLvm, lvText, makePv, vgText } from '../helpers/lvm.js';

function bufferSource(b: Buffer): BlockSource {
  return {
    size: b.length,
    async read(at: number, n: number): Promise<Buffer> {
      if (at < 0 || at + n > b.length) throw new RangeError(`read ${at}+${n} outside ${b.length}`);
      return b.subarray(at, at + n);
    },
  };
}

test('lvmCrc: lvm2\'s CRC-32 variant (initial 0xf597a6cf, no final inversion)', (t) => {
  t.is(lvmCrc(Buffer.alloc(0)), 0xf597a6cf);
  // The same polynomial as zlib's CRC-32, which inverts before and after: lvm(x, init) = ~zlib(x, ~init).
  const data = Buffer.from('Text Format Volume Group');
  t.is((lvmCrc(data, 0xffffffff) ^ 0xffffffff) >>> 0, crc32(data));
});

function crc32(b: Buffer): number {
  let c = 0xffffffff;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

test('parseLvmMetadata: sections, integers, strings with escapes, lists and comments', (t) => {
  const s = parseLvmMetadata('vg {\n  id = "a\\"b" # comment\n  n = -12\n  list = ["x", 3, "y"]\n  empty = []\n  sub { k = 1 }\n}\ntop = "t"\n', 'f', 'w');
  const vg = s.get('vg') as Map<string, unknown>;
  t.is(vg.get('id'), 'a"b');
  t.is(vg.get('n'), -12);
  t.deepEqual(vg.get('list'), ['x', 3, 'y']);
  t.deepEqual(vg.get('empty'), []);
  t.is((vg.get('sub') as Map<string, unknown>).get('k'), 1);
  t.is(s.get('top'), 't');
});

test('parseLvmMetadata: malformed text is a CorruptInputError naming the line, never a hang or a stack overflow', (t) => {
  const cases: Array<[string, RegExp]> = [
    ['vg {\n a = \n}', /line 3: expected a value, found '}'/],
    ['vg {\n a = "open\n', /unterminated string/],
    ['vg {\n a = [1 2]\n}', /line 2: expected ',' or ']' in a list/],
    ['vg {\n a = 1\n', /unterminated section/],
    ['}', /unexpected '}'/],
    ['a b', /expected '=' or '\{' after 'a'/],
    ['x = 99999999999999999999', /out of range/],
    ['a {'.repeat(100_000), /nested too deeply/],
  ];
  for (const [text, re] of cases) {
    const e = t.throws(() => parseLvmMetadata(text, 'disk.raw', 'LVM metadata'), { instanceOf: CorruptInputError });
    t.regex(e!.message, /^disk\.raw: LVM metadata: metadata text line \d+: /);
    t.regex(e!.message, re);
  }
});

const ROOT_TWO_SEGMENTS = lvText('root', [{ count: 4, pe: 6 }, { count: 2, pe: 1 }]);

test('readLvmPv: a hand-made PV: linear LVs of one or several segments (in any PV order), hidden LVs, other types unreadable', async (t) => {
  const text = vgText('vg0', 20, [
    ROOT_TWO_SEGMENTS,
    lvText('swap', [{ count: 1, pe: 0 }]),
    lvText('pool', [{ type: 'thin-pool', count: 2, extra: 'metadata = "m"\n' }]),
    lvText('hidden', [{ count: 2, pe: 3 }], false),
    lvText('striped2', [{ type: 'striped', count: 2, pe: 10 }]).replace('stripe_count = 1\nstripes = [\n"pv0", 10\n]', 'stripe_count = 2\nstripe_size = 128\nstripes = [\n"pv0", 10,\n"pv0", 12\n]'),
  ]);
  const pv = await readLvmPv(bufferSource(handMadePv(24 * MiB, text)), 'pv.img');
  t.is(pv.vg, 'vg0');
  t.is(pv.pvName, 'pv0');
  t.is(pv.extentSize, MiB);
  t.is(pv.peStart, PE_START);
  t.is(pv.peCount, 20);
  t.is(pv.seqno, 3);
  t.deepEqual(pv.metadata, { at: MDA_AT + 512, length: Buffer.byteLength(text) });
  const byName = new Map(pv.volumes.map((v) => [v.name, v]));
  t.deepEqual(byName.get('root')!.extents, [{ at: PE_START + 6 * MiB, length: 4 * MiB }, { at: PE_START + MiB, length: 2 * MiB }]);
  t.is(byName.get('root')!.size, 6 * MiB);
  t.deepEqual(byName.get('swap')!.extents, [{ at: PE_START, length: MiB }]);
  t.is(byName.get('pool')!.unsupported, "segment type 'thin-pool'");
  t.false(byName.get('hidden')!.visible);
  t.is(byName.get('striped2')!.unsupported, '2 stripes');
  t.is(await findLvmLabel(bufferSource(handMadePv(24 * MiB, text))), 1);
});

test('volumeSource: reads across segments in LV order', async (t) => {
  const disk = Buffer.alloc(64);
  for (let i = 0; i < 64; i++) disk[i] = i;
  const v = volumeSource(bufferSource(disk), 8, [{ at: 20, length: 4 }, { at: 0, length: 4 }]);
  t.is(v.size, 8);
  t.deepEqual([...await v.read(0, 8)], [28, 29, 30, 31, 8, 9, 10, 11]);
  t.deepEqual([...await v.read(3, 2)], [31, 8]);
  await t.throwsAsync(v.read(6, 4), { instanceOf: RangeError });
});

/** A copy of `pv` with the metadata text replaced (checksums fixed unless `badCrc`). */
function withText(pv: Buffer, text: string, badCrc = false): Buffer {
  const out = Buffer.from(pv);
  const t = Buffer.from(text);
  t.copy(out, MDA_AT + 512);
  const h = out.subarray(MDA_AT, MDA_AT + 512);
  h.writeBigUInt64LE(BigInt(t.length), 48);
  h.writeUInt32LE((lvmCrc(t) ^ (badCrc ? 1 : 0)) >>> 0, 56);
  h.writeUInt32LE(lvmCrc(h.subarray(4)), 0);
  return out;
}

test('readLvmPv: damaged PVs are CorruptInputErrors naming what is wrong', async (t) => {
  const good = handMadePv(24 * MiB, vgText('vg0', 20, [ROOT_TWO_SEGMENTS]));
  const damaged: Array<[string, Buffer, RegExp]> = [];
  const label = Buffer.from(good); label[512 + 40] ^= 1;
  damaged.push(['label crc', label, /LVM label: label checksum, sector number or type does not match/]);
  const mdah = Buffer.from(good); mdah[MDA_AT + 8] ^= 1;
  damaged.push(['mda header crc', mdah, /metadata area at byte 4096: metadata area header checksum does not match/]);
  const magic = Buffer.from(good); magic[MDA_AT + 8] ^= 1; magic.writeUInt32LE(lvmCrc(magic.subarray(MDA_AT + 4, MDA_AT + 512)), MDA_AT);
  damaged.push(['mda magic', magic, /bad metadata area header magic/]);
  damaged.push(['text crc', withText(good, vgText('vg0', 20, [ROOT_TWO_SEGMENTS]), true), /metadata text checksum does not match/]);
  damaged.push(['garbage text', withText(good, 'vg0 { extent_size = = }'), /metadata text line 1: expected a value, found '='/]);
  damaged.push(['past the PV', withText(good, vgText('vg0', 20, [lvText('root', [{ count: 4, pe: 18 }])])), /logical volume 'root': segment1: extents 18\.\.21 lie past the physical volume's 20 extents/]);
  damaged.push(['pe_count past the device', withText(good, vgText('vg0', 2000, [])), /2000 extents of 1048576 bytes from byte 1048576 run past the 25165824-byte volume/]);
  damaged.push(['overlap', withText(good, vgText('vg0', 20, [lvText('a', [{ count: 4, pe: 0 }]), lvText('b', [{ count: 4, pe: 2 }])])), /logical volumes 'a' and 'b' overlap at physical extent 2/]);
  damaged.push(['segment loop', withText(good, vgText('vg0', 20, [lvText('a', [{ count: 4, pe: 0 }, { count: 4, pe: 4 }]).replace('start_extent = 4', 'start_extent = 0')])), /segment2: starts at extent 0 with 4 extents, expected a non-empty segment at extent 4/]);
  damaged.push(['missing segment', withText(good, vgText('vg0', 20, [lvText('a', [{ count: 4, pe: 0 }]).replace('segment_count = 1', 'segment_count = 3')])), /logical volume 'a': missing section 'segment2'/]);
  damaged.push(['huge segment count', withText(good, vgText('vg0', 20, [lvText('a', [{ count: 4, pe: 0 }]).replace('segment_count = 1', 'segment_count = 9007199254740991')])), /segment_count 9007199254740991/]);
  damaged.push(['two VGs', withText(good, `${vgText('vg0', 20, [])}\nvg1 { }\n`), /2 volume groups in the metadata text, expected 1/]);
  const loc = Buffer.from(good); loc.writeBigUInt64LE(BigInt(PE_START * 4), MDA_AT + 40); loc.writeUInt32LE(lvmCrc(loc.subarray(MDA_AT + 4, MDA_AT + 512)), MDA_AT);
  damaged.push(['text location', loc, /metadata text location \d+\+\d+ lies outside the \d+-byte area/]);
  for (const [what, buf, re] of damaged) {
    const e = await t.throwsAsync(readLvmPv(bufferSource(buf), 'pv.img'), { instanceOf: CorruptInputError }, what);
    t.regex(e!.message, /^pv\.img: /, what);
    t.regex(e!.message, re, what);
  }
  t.is(await findLvmLabel(bufferSource(label)), 'bad');
  t.is(await findLvmLabel(bufferSource(Buffer.alloc(4096))), undefined);
});

test('readLvmPv: metadata text that wraps around the end of the metadata area (a ring) is read', async (t) => {
  const text = Buffer.from(vgText('vg0', 20, [ROOT_TWO_SEGMENTS]));
  const pv = handMadePv(24 * MiB, '');
  const areaSize = PE_START - MDA_AT;
  const first = 100;
  const off = areaSize - first;
  text.copy(pv, MDA_AT + off, 0, first);
  text.copy(pv, MDA_AT + 512, first);
  const h = pv.subarray(MDA_AT, MDA_AT + 512);
  h.writeBigUInt64LE(BigInt(off), 40);
  h.writeBigUInt64LE(BigInt(text.length), 48);
  h.writeUInt32LE(lvmCrc(text), 56);
  h.writeUInt32LE(lvmCrc(h.subarray(4)), 0);
  const r = await readLvmPv(bufferSource(pv), 'pv.img');
  t.is(r.volumes[0]!.name, 'root');
});

(haveLvm ? test : test.skip)('readLvmPv: a PV made by pvcreate/vgcreate/lvcreate/lvextend is laid out as lvs reports it', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'pv.img');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, 40 * MiB);
  const layout = makePv(file, [{ start: 0, size: 40 * MiB }], 'vgx', (lvm) => {
    lvm('lvcreate', '--activate', 'n', '--zero', 'n', '-L', '4M', '-n', 'a', 'vgx');
    lvm('lvcreate', '--activate', 'n', '--zero', 'n', '-L', '8M', '-n', 'b', 'vgx');
    lvm('lvextend', '-L', '+4M', 'vgx/a');
    lvm('lvcreate', '--activate', 'n', '--zero', 'n', '-L', '1M', '-n', 'c', 'vgx');
    lvm('lvextend', '-L', '+2M', 'vgx/a');
  }, '1M');
  const pv = await readLvmPv(bufferSource(fs.readFileSync(file)), file);
  t.is(pv.vg, 'vgx');
  t.is(pv.peStart, layout.peStart);
  t.is(pv.extentSize, layout.extentSize);
  t.deepEqual(pv.volumes.map((v) => v.name).sort(), [...layout.lvs.keys()].sort());
  for (const v of pv.volumes) {
    const segs = layout.lvs.get(v.name)!;
    // lvs lists one range per segment; the reader merges ranges adjacent on the PV.
    const expected: Array<{ at: number; length: number }> = [];
    for (const s of segs) {
      const at = layout.peStart + s.pvStart * layout.extentSize;
      const last = expected[expected.length - 1];
      if (last && last.at + last.length === at) last.length += s.count * layout.extentSize;
      else expected.push({ at, length: s.count * layout.extentSize });
    }
    t.deepEqual(v.extents, expected, v.name);
  }
  t.is(pv.volumes.find((v) => v.name === 'a')!.extents!.length, 3, "'a' has three segments, each after another LV");
});

test('disk model: an LVM region is encoded as version 3 and decodes back; disks without one keep their encoding', (t) => {
  const oid = (c: string) => c.repeat(64);
  const fsContent = { kind: 'fs' as const, fsType: 'ext4', params: [['uuid', '"u"']] as Array<[string, string]>, tree: oid('1'), rootMeta: { mode: 0o755, uid: 0, gid: 0, mtimeNs: 5n, xattrs: [] }, data: oid('2'), map: oid('3') };
  const disk: Disk = {
    size: 64 * MiB, sectorSize: 512, table: { kind: 'mbr', id: '0x12345678' }, view: oid('9'),
    regions: [
      { offset: 0, size: MiB, content: { kind: 'raw', data: oid('4'), map: oid('5') } },
      {
        offset: MiB, size: 63 * MiB, partition: { index: 1, type: '0x8e' },
        content: { kind: 'lvm', vg: 'vg0', params: [['vgUuid', '"x"']], data: oid('6'), map: oid('7'), volumes: [{ name: 'root', segments: [{ at: 9 * MiB, length: MiB }, { at: 2 * MiB, length: 4 * MiB }], content: fsContent }] },
      },
    ],
  };
  const enc = encodeDisk(disk);
  t.is(enc.readUInt8(5), 3, 'version byte after the "disk\\0" tag');
  t.deepEqual(decodeDisk(enc), disk);
  t.true(encodeDisk(decodeDisk(enc)).equals(enc));
  t.deepEqual(diskReferences(disk).map((r) => r.oid).sort(), [oid('1'), oid('2'), oid('3'), oid('4'), oid('5'), oid('6'), oid('7'), oid('9')].sort());
  const withOverlay = { ...disk, overlay: { base: oid('a'), patch: oid('b') } };
  t.deepEqual(decodeDisk(encodeDisk(withOverlay)), withOverlay);
  const plain: Disk = { ...disk, regions: [disk.regions[0]!] };
  t.is(encodeDisk(plain).readUInt8(5), 1);
  // Segments outside the region or overlapping are refused both ways.
  const bad = structuredClone(disk);
  (bad.regions[1]!.content as LvmContent).volumes[0]!.segments.push({ at: 9 * MiB + 512, length: 512 });
  t.throws(() => encodeDisk(bad), { instanceOf: RangeError, message: /overlaps another/ });
});
