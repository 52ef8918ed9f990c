/** The XFS reader against the kernel's view of the same image, and against damaged copies of it. */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { AbortedError, CorruptInputError, UnsupportedInputError } from '../../src/errors.js';
import { bufferBlockSource, fileBlockSource } from '../../src/formats/ext4.js';
import { aclFromXfs, isXfsSuperblock, openXfs, xfsChecksum } from '../../src/formats/xfs.js';
import { bytes, snapshotOf, type ReadImage } from '../helpers/ext4-images.js';
import { snapshotTree } from '../helpers/snapshot.js';
import {
  XFS_SIZE, XFS_V4_ARGS, haveXfsprogs, inodeField, inodeOf, makeXfsImage, readXfsImage, withMount, withoutSgiAcl, xfsAvailable, xfsDb, type ReadXfs,
} from '../helpers/xfs-images.js';
import { patchBytes } from '../helpers/mbr-disk.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-xfs-'));
test.after.always(() => fs.rmSync(work, { recursive: true, force: true }));

let built: Promise<string> | undefined;
/** The populated image, made once for all tests of this file. */
function image(): Promise<string> {
  built ??= Promise.resolve().then(() => {
    const file = path.join(work, 'fs.xfs');
    makeXfsImage(file);
    return file;
  });
  return built;
}

let copies = 0;
/** A copy of the populated image to damage (sparse, by cp). */
async function copy(): Promise<string> {
  const out = path.join(work, `copy-${copies++}.xfs`);
  execFileSync('cp', ['--sparse=always', await image(), out]);
  return out;
}

const asImage = (r: ReadXfs) => r as unknown as ReadImage;

/** Reads `file` and expects a CorruptInputError whose one-line message matches `re`; returns it. */
async function expectCorrupt(t: ExecutionContext, file: string, re: RegExp): Promise<void> {
  const started = Date.now();
  const e = await t.throwsAsync(readXfsImage(file), { instanceOf: CorruptInputError });
  t.regex(e!.message, re);
  t.false(e!.message.includes('\n'));
  t.true(e!.message.startsWith(`${file}: `), 'names the file');
  t.true(Date.now() - started < 20_000, 'bounded time');
}

const xtest = xfsAvailable ? test : test.skip;

xtest('xfs: matches the kernel\'s view of a loop mount (modes, owners, ns and bigtime times, xattrs, ACLs, devices, hardlinks)', async (t) => {
  const file = await image();
  const ours = snapshotOf(asImage(await readXfsImage(file)), { mtime: true });
  const kernel = withMount(file, true, (mnt) => snapshotTree(mnt).map(withoutSgiAcl));
  t.deepEqual(ours.filter((l) => !l.startsWith('. ')), kernel.filter((l) => !l.startsWith('. ')));
  t.true(ours.length > 18_000);
  // The shapes the image was made for are there.
  const line = (p: string) => ours.find((l) => l.startsWith(`${p} `)) ?? '';
  t.regex(line('selinux'), /xattr:security\.selinux=/);
  t.regex(line('acl-many'), /xattr:system\.posix_acl_access=02000000/);
  t.regex(line('acl-default'), /xattr:system\.posix_acl_default=02000000/);
  t.true(line('future').includes(` mtime=${BigInt(Date.UTC(2200, 2, 4, 5, 6, 7)) * 1_000_000n + 123_456_789n} `), 'bigtime: 2200 is past 2038');
  t.true(line('past').includes(` mtime=${BigInt(Date.UTC(1901, 11, 14)) * 1_000_000n} `), 'before 1970');
  t.regex(line('edge/hl2'), /link=edge\/hl1/);
  t.regex(line('long-link'), /target=(long-target\/){80}end/);
});

// Kernels drop v4 (CONFIG_XFS_SUPPORT_V4), so the v4 image is filled by mkfs.xfs itself from a protofile: no mount,
// no xattrs, mkfs-time mtimes; types, modes, owners, devices, contents and 500-entry (leaf) directories are compared.
(haveXfsprogs ? test : test.skip)('xfs: a v4 file system (no CRCs) filled from a protofile reads back', async (t) => {
  const dir = path.join(work, 'proto');
  fs.mkdirSync(dir, { recursive: true });
  const big = bytes(1_000_003, 'v4');
  fs.writeFileSync(path.join(dir, 'big'), big);
  fs.writeFileSync(path.join(dir, 'small'), 'small\n');
  const many = Array.from({ length: 500 }, (_, i) => `entry-with-a-long-name-${String(i).padStart(4, '0')} ---644 0 0 ${path.join(dir, 'small')}`);
  const longTarget = `${'long/'.repeat(120)}end`;
  const proto = [
    '/dev/null', '0 0', 'd--755 0 0',
    `big -u-755 1000 1001 ${path.join(dir, 'big')}`, `small ---600 0 0 ${path.join(dir, 'small')}`,
    'tty c--620 0 5 4 1', 'sda b--660 0 6 8 0', 'pipe p--600 0 0', 'link l--777 0 0 small', `long l--777 0 0 ${longTarget}`,
    'sub d-g750 7 8', ...many, '$', '$', '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'proto'), proto);
  const file = path.join(work, 'v4.xfs');
  fs.closeSync(fs.openSync(file, 'w'));
  fs.truncateSync(file, XFS_SIZE);
  execFileSync('mkfs.xfs', ['-q', '-f', ...XFS_V4_ARGS, '-p', path.join(dir, 'proto'), file], { stdio: 'pipe' });
  const r = await readXfsImage(file);
  t.is(r.info.version, 4);
  t.true(r.info.features.compat.includes('ftype'));
  const by = new Map(r.entries.map((e) => [e.path.toString(), e]));
  t.like(by.get('big'), { type: 'file', mode: 0o4755, uid: 1000, gid: 1001 });
  t.is(r.files.get('big')!.sha256, crypto.createHash('sha256').update(big).digest('hex'));
  t.like(by.get('small'), { type: 'file', mode: 0o600 });
  t.deepEqual(by.get('tty')!.rdev, { major: 4, minor: 1 });
  t.like(by.get('sda'), { type: 'blk', mode: 0o660, gid: 6 });
  t.like(by.get('pipe'), { type: 'fifo', mode: 0o600 });
  t.is(by.get('link')!.linkTarget!.toString(), 'small');
  t.is(by.get('long')!.linkTarget!.toString(), longTarget, 'a remote symlink without the v5 header');
  t.like(by.get('sub'), { type: 'dir', mode: 0o2750, uid: 7, gid: 8 });
  t.is(r.entries.filter((e) => e.path.toString().startsWith('sub/')).length, 500);
  // Without CRCs every structure is parsed as found: random bytes in its metadata blocks (inodes, directory, btree
  // and AG header blocks) give a full read or a one-line CorruptInputError/UnsupportedInputError, quickly.
  const outcomes = await fuzzMetadata(file, 300);
  t.deepEqual(outcomes.other, []);
  t.true(outcomes.corrupt > 50, `${outcomes.corrupt} of 300 damaged copies refused`);
  t.true(outcomes.slowestMs < 5_000);
  fs.rmSync(file);
});

/**
 * Reads `file` `iterations` times, each time with 1-3 of its metadata blocks holding 1-24 random bytes (a fixed
 * seed: failures reproduce), through a BlockSource that patches the bytes in as they are read.
 */
async function fuzzMetadata(file: string, iterations: number): Promise<{ ok: number; corrupt: number; other: string[]; slowestMs: number }> {
  const base = await fileBlockSource(file);
  try {
    const bs = 4096;
    const magics = new Set(['XFSB', 'XAGF', 'XAGI', 'XAFL', 'XD2B', 'XD2D', 'XDB3', 'XDD3', 'BMAP', 'BMA3']);
    const blocks: number[] = [];
    for (let at = 0; at < base.size; at += 1 << 20) {
      const chunk = await base.read(at, Math.min(1 << 20, base.size - at));
      for (let o = 0; o < chunk.length; o += bs) {
        const m = chunk.toString('latin1', o, o + 4);
        if (magics.has(m) || chunk.readUInt16BE(o) === 0x494e || [0xd2f1, 0xd2ff, 0xfebe, 0xfbee].includes(chunk.readUInt16BE(o + 8))) blocks.push((at + o) / bs);
      }
    }
    let seed = 20261207;
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const out = { ok: 0, corrupt: 0, other: [] as string[], slowestMs: 0 };
    for (let i = 0; i < iterations; i++) {
      const patch = new Map<number, number>();
      for (let k = 1 + rnd(3); k > 0; k--) {
        const b = blocks[rnd(blocks.length)]!;
        for (let n = 1 + rnd(24); n > 0; n--) patch.set(b * bs + rnd(bs), rnd(256));
      }
      const src = {
        size: base.size,
        async read(at: number, n: number): Promise<Buffer> {
          const buf = Buffer.from(await base.read(at, n));
          for (const [p, v] of patch) if (p >= at && p < at + n) buf[p - at] = v;
          return buf;
        },
      };
      const started = Date.now();
      try {
        const { reader } = await openXfs(src, 'fuzz');
        for await (const e of reader.entries()) if (e.content) for await (const _ of e.content.read()) { /* drain */ }
        out.ok++;
      } catch (e) {
        if (e instanceof CorruptInputError || e instanceof UnsupportedInputError) {
          out.corrupt++;
          if (e.message.includes('\n')) out.other.push(`iteration ${i}: a message of several lines`);
        } else {
          out.other.push(`iteration ${i}: ${String(e)}`);
        }
      }
      out.slowestMs = Math.max(out.slowestMs, Date.now() - started);
    }
    return out;
  } finally {
    await base.close();
  }
}

xtest('xfs: large extent counts (nrext64) read the same as the kernel shows them', async (t) => {
  const file = path.join(work, 'nrext64.xfs');
  makeXfsImage(file, ['-i', 'nrext64=1']);
  const r = await readXfsImage(file);
  t.true(r.info.features.incompat.includes('nrext64'));
  t.regex(xfsDb(file, [`inode ${inodeOf(file, 'frag')}`, 'print v3.nrext64']), /v3\.nrext64 = 1/);
  const kernel = withMount(file, true, (mnt) => snapshotTree(mnt).map(withoutSgiAcl));
  t.deepEqual(snapshotOf(asImage(r), { mtime: true }).filter((l) => !l.startsWith('. ')), kernel.filter((l) => !l.startsWith('. ')));
  fs.rmSync(file);
});

xtest('xfs: the image has every fork and directory form, and the reader reports the superblock', async (t) => {
  const file = await image();
  const ino = (p: string) => inodeOf(file, p);
  // Data fork formats: 1 local, 2 extents, 3 btree.
  t.is(inodeField(file, ino('short'), 'core.format'), '1 (local)');
  t.is(inodeField(file, ino('block'), 'core.format'), '2 (extents)');
  t.is(inodeField(file, ino('btree'), 'core.format'), '3 (btree)');
  t.is(inodeField(file, ino('frag'), 'core.format'), '3 (btree)');
  t.is(inodeField(file, ino('long-link'), 'core.format'), '2 (extents)');
  t.is(inodeField(file, ino('short-link'), 'core.format'), '1 (local)');
  t.is(inodeField(file, ino('edge/plain'), 'core.aformat'), '2 (extents)', 'no attribute fork');
  t.is(inodeField(file, ino('edge/xattr-user'), 'core.aformat'), '1 (local)');
  // Attribute forks: a node block (0x3ebe) over leaves, a single leaf (0x3bee).
  const attrMagic = (p: string) => /hdr\.info\.hdr\.magic = (0x[0-9a-f]+)/.exec(xfsDb(file, [`inode ${ino(p)}`, 'ablock 0', 'print hdr.info.hdr.magic']))?.[1];
  t.is(attrMagic('attrs-node'), '0x3ebe');
  t.is(attrMagic('attrs-leaf'), '0x3bee');
  t.is(attrMagic('attrs-remote'), '0x3bee');
  t.is(Number(inodeField(file, ino('block'), 'core.nextents')), 1, 'a block directory is one block');
  t.true(Number(inodeField(file, ino('leaf'), 'core.nextents')) > 1);
  t.true(Number(inodeField(file, ino('node'), 'core.nextents')) > 2);
  const r = await readXfsImage(file);
  t.like(r.info, { type: 'xfs', version: 5, label: 'vivatest', blockSize: 4096, inodeSize: 512, agCount: 4 });
  for (const f of ['ftype', 'sparse', 'bigtime']) t.true(r.info.features.incompat.includes(f), f);
  for (const f of ['finobt', 'reflink']) t.true(r.info.features.roCompat.includes(f), f);
  const names = (dir: string) => r.entries.filter((e) => path.dirname(e.path.toString()) === dir).length;
  t.is(names('block'), 40);
  t.is(names('leaf'), 400);
  t.is(names('node'), 6000);
  t.is(names('btree'), 12000);
  // 1000 extents, each its own piece; unwritten extents are holes.
  t.is(r.files.get('frag')!.data.length, 1000);
  t.deepEqual(r.files.get('prealloc')!.data, [[0, 4096], [3 << 20, 4096]]);
  t.is(r.files.get('reflinked')!.size, 3_000_000);
  t.not(r.files.get('reflinked')!.sha256, r.files.get('original')!.sha256);
  const attrs = r.entries.find((e) => e.path.toString() === 'attrs-node')!.xattrs;
  t.is(attrs.length, 701);
  t.is(Buffer.from(attrs.find((x) => x.name === 'trusted.big')!.value).length, 10_240);
});

xtest('xfs: file pieces name where their bytes lie in the image', async (t) => {
  const file = await image();
  const src = await fileBlockSource(file);
  try {
    const { reader } = await openXfs(src, file);
    let checked = 0;
    for await (const e of reader.entries()) {
      if (!e.content || !['frag', 'reflinked', 'original', 'edge/big-random'].includes(e.path.toString())) continue;
      for await (const p of e.content.read()) {
        t.true(p.data.length <= 1 << 20);
        t.true(Buffer.from(p.data).equals(await src.read(p.source!, p.data.length)));
        checked++;
      }
    }
    t.true(checked > 1000);
  } finally {
    await src.close();
  }
});

xtest('xfs: an aborted walk stops with AbortedError', async (t) => {
  const file = await image();
  const src = await fileBlockSource(file);
  try {
    const ac = new AbortController();
    const { reader } = await openXfs(src, file, { signal: ac.signal });
    await t.throwsAsync(async () => {
      let n = 0;
      for await (const _ of reader.entries()) if (++n === 100) ac.abort();
    }, { instanceOf: AbortedError });
  } finally {
    await src.close();
  }
});

test('xfs: ACLs convert from XFS\'s big-endian form to the kernel\'s xattr form', (t) => {
  const disk = Buffer.alloc(4 + 3 * 12);
  disk.writeUInt32BE(3, 0);
  [[0x01, 0, 6], [0x02, 1000, 4], [0x20, 0, 0]].forEach(([tag, id, perm], i) => {
    disk.writeUInt32BE(tag!, 4 + i * 12);
    disk.writeUInt32BE(id!, 8 + i * 12);
    disk.writeUInt16BE(perm!, 12 + i * 12);
  });
  t.is(aclFromXfs(disk)!.toString('hex'), '02000000' + '01000600ffffffff' + '02000400e8030000' + '20000000ffffffff');
  t.is(aclFromXfs(disk.subarray(0, 20)), undefined, 'truncated');
  t.is(aclFromXfs(Buffer.alloc(4)), undefined, 'empty');
});

test('xfs: a bare magic is no superblock; a bad one is a clean error', async (t) => {
  const sb = Buffer.alloc(512);
  sb.write('XFSB', 0, 'latin1');
  t.false(isXfsSuperblock(sb));
  await t.throwsAsync(openXfs(bufferBlockSource(Buffer.alloc(100)), 'tiny'), { instanceOf: CorruptInputError, message: /^tiny: superblock: image of 100 bytes/ });
  await t.throwsAsync(openXfs(bufferBlockSource(Buffer.concat([sb, Buffer.alloc(4096)])), 'zero'), { instanceOf: CorruptInputError, message: /^zero: superblock: / });
});

xtest('xfs: damaged superblocks: truncated image, bad magic, bad checksum', async (t) => {
  const truncated = await copy();
  fs.truncateSync(truncated, 100 << 20);
  await expectCorrupt(t, truncated, /: superblock: \d+ blocks of 4096 bytes exceed the 104857600-byte image \(truncated\?\)$/);
  const magic = await copy();
  patchBytes(magic, 0, Buffer.from('XFSC'));
  await expectCorrupt(t, magic, /: superblock: bad magic 0x58465343, expected 0x58465342 \('XFSB'\)$/);
  const crc = await copy();
  patchBytes(crc, 108, Buffer.from('damaged\0'));
  await expectCorrupt(t, crc, /: superblock: checksum mismatch \(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\)$/);
  // The checksum is XFS's: recomputing it makes the label change readable.
  const buf = fs.readFileSync(crc).subarray(0, 512);
  const fixed = Buffer.alloc(4);
  fixed.writeUInt32LE(xfsChecksum(buf, 224));
  patchBytes(crc, 224, fixed);
  t.is((await readXfsImage(crc)).info.label, 'damaged');
});

xtest('xfs: a corrupted inode is named by number', async (t) => {
  const file = await copy();
  const ino = inodeOf(file, 'edge/plain');
  const at = Number(/\((\d+)\)/.exec(xfsDb(file, [`convert inode ${ino} byte`]))![1]);
  patchBytes(file, at + 8, Buffer.from([0x12, 0x34])); // di_uid, without fixing the CRC
  await expectCorrupt(t, file, new RegExp(`: inode ${ino} \\('edge/plain'\\): checksum mismatch at offset ${at} `));
});

xtest('xfs: a directory block mapped twice, a btree pointer loop and an extent past the end are clean errors', async (t) => {
  // xfs_db -x recomputes the inode CRC after each write, so only the structure is wrong.
  const dir = await copy();
  const leaf = inodeOf(dir, 'frag-dir');
  t.is(inodeField(dir, leaf, 'core.format'), '2 (extents)');
  t.true(Number(inodeField(dir, leaf, 'u3.bmx[1].startoff')) < 2 ** 35 / 4096, 'the second extent holds data blocks');
  const first = inodeField(dir, leaf, 'u3.bmx[0].startblock');
  xfsDb(dir, [`inode ${leaf}`, `write u3.bmx[1].startblock ${first}`], true);
  await expectCorrupt(t, dir, new RegExp(`: inode ${leaf} \\('frag-dir'\\): directory block \\d+: block at offset \\d+ is visited twice \\(a loop\\)$`));

  // A damaged hash (leaf) block: its entries are not needed for the listing, but it is checked.
  const hash = await copy();
  const leafDir = inodeOf(hash, 'leaf');
  const last = Number(inodeField(hash, leafDir, 'core.nextents')) - 1;
  t.is(inodeField(hash, leafDir, `u3.bmx[${last}].startoff`), String(2 ** 35 / 4096));
  const fsb = inodeField(hash, leafDir, `u3.bmx[${last}].startblock`);
  const leafAt = Number(/\((\d+)\)/.exec(xfsDb(hash, [`convert fsblock ${fsb} byte`]))![1]);
  patchBytes(hash, leafAt + 200, Buffer.from([0xde, 0xad]));
  await expectCorrupt(t, hash, new RegExp(`: inode ${leafDir} \\('leaf'\\): directory index block \\d+ at offset ${leafAt}: checksum mismatch`));

  const tree = await copy();
  const frag = inodeOf(tree, 'frag');
  const ptr = inodeField(tree, frag, 'u3.bmbt.ptrs[1]');
  xfsDb(tree, [`inode ${frag}`, `write u3.bmbt.ptrs[2] ${ptr}`], true);
  await expectCorrupt(t, tree, new RegExp(`: inode ${frag} \\('frag'\\): btree block ${ptr} is visited twice \\(a loop\\)$`));

  const far = await copy();
  const big = inodeOf(far, 'edge/big-random');
  xfsDb(far, [`inode ${big}`, 'write u3.bmx[0].startblock 99999999'], true);
  await expectCorrupt(t, far, new RegExp(`: inode ${big} \\('edge/big-random'\\): block 99999999 \\(AG \\d+, block \\d+\\) \\+\\d+ lies outside the file system$`));
});
