/**
 * Container formats other than qcow2 (VHD fixed/dynamic, VHDX fixed/dynamic, VDI static/dynamic, VMDK
 * monolithicSparse/streamOptimized/monolithicFlat):
 * a GPT + ext4 raw disk built at test time is converted with qemu-img to each format and back to raw; committing the
 * container must give the same disk and tree ids as committing the raw. Damaged copies (truncated, bad magic, bad checksums, table entries and tables
 * outside the file) fail with a clean CorruptInputError (exit 13) naming the file and an offset.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { viva, vivaJson } from '../helpers/cli.js';
import { writeTree } from '../helpers/repo.js';
import { bytes } from '../helpers/ext4-images.js';
import { commitIds, have, initRepo, makeGptExt4Disk, run } from '../helpers/gpt-disk.js';
import { crc32c } from '../../src/formats/ext4.js';

const HAVE = have('qemu-img') && have('mke2fs') && have('sfdisk');
const maybe = HAVE ? test : test.skip;

/** A new repository and a 24 MiB sparse GPT disk with one ext4 partition holding a few files (one of them 3 MiB of noise). */
async function setup(t: import('ava').ExecutionContext): Promise<{ dir: string; repo: string; raw: string }> {
  const { dir, repo } = await initRepo(t);
  const tree = path.join(dir, 'tree');
  writeTree(tree, { etc: { hostname: 'vm\n' }, data: { big: bytes(3 * 1024 * 1024 + 77, 'big'), small: 'tiny' } });
  const raw = path.join(dir, 'disk.raw');
  makeGptExt4Disk(raw, tree);
  return { dir, repo, raw };
}

/** Converts `raw` to `format` with qemu-img options, commits it and the image converted back to raw: same ids. */
async function sameAsRaw(t: import('ava').ExecutionContext, format: string, options: string[], expect: string): Promise<string> {
  const { dir, repo, raw } = await setup(t);
  const img = path.join(dir, `disk.${format}`);
  run('qemu-img', ['convert', '-f', 'raw', '-O', format, ...options, raw, img]);
  const back = path.join(dir, 'back.raw');
  // -f: qemu-img does not probe a fixed VHD (its footer is at the end) and would copy it whole as raw.
  run('qemu-img', ['convert', '-f', format, '-O', 'raw', img, back]);
  const a = await commitIds(t, repo, [img]);
  const b = await commitIds(t, repo, [back]);
  t.is(a.format, expect);
  t.is(b.format, 'raw');
  t.is(a.root, b.root);
  t.is(a.tree, b.tree);
  const ls = await viva(['cat', 'HEAD~1:p1/data/small', '-C', repo]);
  t.is(ls.stdout, 'tiny', ls.stderr);
  return img;
}

/** Commits `file` and expects exit 13 with a message naming the file and an offset. */
async function corrupt(t: import('ava').ExecutionContext, repo: string, file: string, what: RegExp): Promise<void> {
  const r = await viva(['commit', file, '-C', repo, '-m', 'x'], { timeoutMs: 30_000 });
  t.is(r.code, 13, r.stderr);
  t.true(r.stderr.includes(file), r.stderr);
  t.regex(r.stderr, /offset \d+/);
  t.regex(r.stderr, what);
  t.notRegex(r.stderr, /internal error|\n\s+at /);
}

function patch(file: string, at: number, data: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, data, 0, data.length, at);
  fs.closeSync(fd);
}

function copy(src: string, dir: string, name: string): string {
  const to = path.join(dir, name);
  fs.copyFileSync(src, to);
  return to;
}

/** Recomputes a VHD checksum (one's complement of the byte sum, the field itself as zero) of `len` bytes at `at`. */
function fixVhdChecksum(file: string, at: number, len: number, field: number): void {
  const buf = Buffer.alloc(len);
  const fd = fs.openSync(file, 'r+');
  fs.readSync(fd, buf, 0, len, at);
  buf.writeUInt32BE(0, field);
  let sum = 0;
  for (const b of buf) sum += b;
  buf.writeUInt32BE(~sum >>> 0, field);
  fs.writeSync(fd, buf, 0, len, at);
  fs.closeSync(fd);
}

maybe('vhd fixed: same disk and tree as the raw disk; a bad footer checksum is refused', async (t) => {
  const img = await sameAsRaw(t, 'vpc', ['-o', 'subformat=fixed'], 'vhd');
  const dir = path.dirname(img);
  const sum = copy(img, dir, 'sum.vhd');
  patch(sum, fs.statSync(img).size - 512 + 40, Buffer.from([0xff]));
  await corrupt(t, path.join(dir, 'repo'), sum, /footer\.checksum/);
});

maybe('vhd dynamic: same disk and tree as the raw disk; damaged copies are refused cleanly', async (t) => {
  const img = await sameAsRaw(t, 'vpc', ['-o', 'subformat=dynamic'], 'vhd');
  const dir = path.dirname(img);
  const repo = path.join(dir, 'repo');
  const dyn = fs.readFileSync(img).subarray(512, 1536);
  t.is(dyn.toString('latin1', 0, 8), 'cxsparse');
  const batAt = Number(dyn.readBigUInt64BE(16));

  const truncated = copy(img, dir, 'truncated.vhd');
  fs.truncateSync(truncated, Math.floor(fs.statSync(img).size / 2));
  await corrupt(t, repo, truncated, /BAT entry \d+ .*past the end/);

  const magic = copy(img, dir, 'magic.vhd');
  patch(magic, 512, Buffer.from('xxsparse'));
  await corrupt(t, repo, magic, /cxsparse/);

  const sum = copy(img, dir, 'sum.vhd');
  patch(sum, 40, Buffer.from([0xff]));
  await corrupt(t, repo, sum, /checksum/);

  const entry = copy(img, dir, 'entry.vhd');
  const first = fs.readFileSync(img).subarray(batAt, batAt + 4 * 12);
  let allocated = 0;
  while (first.readUInt32BE(allocated * 4) === 0xffffffff) allocated++;
  patch(entry, batAt + allocated * 4, Buffer.from([0x00, 0xff, 0xff, 0x00]));
  await corrupt(t, repo, entry, /BAT entry .*past the end/);

  const table = copy(img, dir, 'table.vhd');
  const far = Buffer.alloc(8);
  far.writeBigUInt64BE(1n << 40n);
  patch(table, 512 + 16, far);
  fixVhdChecksum(table, 512, 1024, 36);
  await corrupt(t, repo, table, /BAT at .*past the end/);
});

maybe('vdi static: same disk and tree as the raw disk', async (t) => {
  await sameAsRaw(t, 'vdi', ['-o', 'static=on'], 'vdi');
});

maybe('vdi dynamic: same disk and tree as the raw disk; damaged copies are refused cleanly', async (t) => {
  const img = await sameAsRaw(t, 'vdi', [], 'vdi');
  const dir = path.dirname(img);
  const repo = path.join(dir, 'repo');
  const h = fs.readFileSync(img).subarray(0, 0x200);
  const mapAt = h.readUInt32LE(0x154);

  const truncated = copy(img, dir, 'truncated.vdi');
  fs.truncateSync(truncated, Math.floor(fs.statSync(img).size / 2));
  await corrupt(t, repo, truncated, /block map entry \d+ .*past the end/);

  const magic = copy(img, dir, 'magic.vdi');
  patch(magic, 0x40, Buffer.from([0, 0, 0, 0]));
  // Without its signature the file is no VDI at all: commit finds no disk and no tar in it.
  const r = await viva(['commit', magic, '-C', repo, '-m', 'x']);
  t.not(r.code, 0);
  t.notRegex(r.stderr, /internal error|\n\s+at /);

  const entry = copy(img, dir, 'entry.vdi');
  const map = fs.readFileSync(img).subarray(mapAt, mapAt + 4 * 16);
  let allocated = 0;
  while (map.readUInt32LE(allocated * 4) === 0xffffffff) allocated++;
  patch(entry, mapAt + allocated * 4, Buffer.from([0x00, 0x00, 0x10, 0x00]));
  await corrupt(t, repo, entry, /block map entry .*outside/);

  const table = copy(img, dir, 'table.vdi');
  patch(table, 0x154, Buffer.from([0x00, 0x00, 0x00, 0x70]));
  await corrupt(t, repo, table, /offset_bmap .*past the end/);

  const size = copy(img, dir, 'size.vdi');
  patch(size, 0x178, Buffer.from([0x01, 0x00, 0x00, 0x00]));
  await corrupt(t, repo, size, /block_size/);
});

/** The grain directory's offset of a VMDK: the header's, or the footer's for a streamOptimized image. */
function vmdkHeader(img: string): { at: number; gdAt: number } {
  const buf = fs.readFileSync(img);
  let at = 0;
  if (buf.readUInt32LE(56) === 0xffffffff && buf.readUInt32LE(60) === 0xffffffff) at = buf.length - 1024;
  return { at, gdAt: Number(buf.readBigUInt64LE(at + 56)) * 512 };
}

for (const sub of ['monolithicSparse', 'streamOptimized']) {
  maybe(`vmdk ${sub}: same disk and tree as the raw disk; damaged copies are refused cleanly`, async (t) => {
    const img = await sameAsRaw(t, 'vmdk', ['-o', `subformat=${sub}`], 'vmdk');
    const dir = path.dirname(img);
    const repo = path.join(dir, 'repo');
    const { at, gdAt } = vmdkHeader(img);
    const gtAt = fs.readFileSync(img).readUInt32LE(gdAt) * 512;

    const truncated = copy(img, dir, 'truncated.vmdk');
    fs.truncateSync(truncated, Math.floor(fs.statSync(img).size / 2));
    await corrupt(t, repo, truncated, /past the end/);

    const magic = copy(img, dir, 'magic.vmdk');
    patch(magic, at, Buffer.from('XXXX'));
    if (at === 0) {
      const r = await viva(['commit', magic, '-C', repo, '-m', 'x']);
      t.not(r.code, 0);
      t.notRegex(r.stderr, /internal error|\n\s+at /);
    } else {
      await corrupt(t, repo, magic, /KDMV/);
    }

    const gd = copy(img, dir, 'gd.vmdk');
    patch(gd, gdAt, Buffer.from([0xff, 0xff, 0xff, 0x0f]));
    await corrupt(t, repo, gd, /grain directory entry 0 .*past the end/);

    const gt = copy(img, dir, 'gt.vmdk');
    const entries = fs.readFileSync(img).subarray(gtAt, gtAt + 512 * 4);
    let j = 0;
    while (entries.readUInt32LE(j * 4) <= 1) j++;
    patch(gt, gtAt + j * 4, Buffer.from([0xff, 0xff, 0xff, 0x0f]));
    await corrupt(t, repo, gt, /grain table 0 entry \d+ .*past the end/);

    const table = copy(img, dir, 'table.vmdk');
    patch(table, at + 56, Buffer.from([0, 0, 0, 0x40, 0, 0, 0, 0]));
    await corrupt(t, repo, table, /gdOffset .*past the end/);

    if (sub === 'streamOptimized') {
      // As VMware writes it: the grain directory's offset only in a footer (marker, header copy, end-of-stream marker).
      const footed = copy(img, dir, 'footed.vmdk');
      const header = fs.readFileSync(img).subarray(0, 512);
      const marker = Buffer.alloc(512);
      marker.writeUInt32LE(1, 0);
      marker.writeUInt32LE(3, 12);
      fs.appendFileSync(footed, Buffer.concat([marker, header, Buffer.alloc(512)]));
      patch(footed, 56, Buffer.alloc(8, 0xff));
      const expected = await vivaJson(t, ['show', 'HEAD', '-C', repo]);
      const c = await commitIds(t, repo, [footed]);
      t.is(c.root, expected.root);
      const lost = copy(footed, dir, 'lost.vmdk');
      patch(lost, fs.statSync(footed).size - 1024 + 56, Buffer.alloc(8, 0xff));
      await corrupt(t, repo, lost, /footer\.gdOffset/);

      const grain = copy(img, dir, 'grain.vmdk');
      const s = entries.readUInt32LE(j * 4) * 512;
      patch(grain, s + 12, Buffer.alloc(16, 0xaa));
      await corrupt(t, repo, grain, /cannot inflate/);
      const huge = copy(img, dir, 'huge.vmdk');
      patch(huge, s + 8, Buffer.from([0xff, 0xff, 0xff, 0x7f]));
      await corrupt(t, repo, huge, /compressed grain of 2147483647 bytes is larger/);
    }
  });
}

maybe('vmdk monolithicFlat: the descriptor commits like the raw disk; a short or missing extent file is refused cleanly', async (t) => {
  const img = await sameAsRaw(t, 'vmdk', ['-o', 'subformat=monolithicFlat'], 'vmdk');
  const dir = path.dirname(img);
  const repo = path.join(dir, 'repo');
  const flat = path.join(dir, 'disk-flat.vmdk');
  t.true(fs.existsSync(flat));
  fs.truncateSync(flat, 1024 * 1024);
  await corrupt(t, repo, img, /extent 'disk-flat\.vmdk' .*past the end/);
  fs.rmSync(flat);
  const r = await viva(['commit', img, '-C', repo, '-m', 'x']);
  t.not(r.code, 0);
  t.regex(r.stderr, /disk-flat\.vmdk/);
  t.notRegex(r.stderr, /internal error|\n\s+at /);
});

/** Sets the CRC-32C field (4 bytes at `field`) of the `len`-byte VHDX structure at `at` to match its bytes. */
function fixVhdxChecksum(file: string, at: number, len: number, field = 4): void {
  const buf = Buffer.alloc(len);
  const fd = fs.openSync(file, 'r+');
  fs.readSync(fd, buf, 0, len, at);
  buf.writeUInt32LE(0, field);
  buf.writeUInt32LE((crc32c(~0, buf) ^ ~0) >>> 0, field);
  fs.writeSync(fd, buf, 0, len, at);
  fs.closeSync(fd);
}

/** The BAT's file offset, from the first region table (GUID 2DC27766-F623-4200-9D64-115E9BFD4A08). */
function vhdxBat(img: string): number {
  const t = fs.readFileSync(img).subarray(192 * 1024, 256 * 1024);
  const id = Buffer.from('6677c22d23f600429d64115e9bfd4a08', 'hex');
  for (let i = 0; i < t.readUInt32LE(8); i++) if (t.subarray(16 + i * 32, 32 + i * 32).equals(id)) return Number(t.readBigUInt64LE(16 + i * 32 + 16));
  throw new Error('no BAT region');
}

for (const [name, options] of [['dynamic', []], ['dynamic, 1 MiB blocks', ['-o', 'block_size=1M']], ['fixed', ['-o', 'subformat=fixed']]] as const) {
  maybe(`vhdx ${name}: same disk and tree as the raw disk`, async (t) => {
    await sameAsRaw(t, 'vhdx', [...options], 'vhdx');
  });
}

maybe('vhdx: damaged copies are refused cleanly; one damaged header copy is survived; a log to replay is refused', async (t) => {
  const img = await sameAsRaw(t, 'vhdx', ['-o', 'block_size=1M'], 'vhdx');
  const dir = path.dirname(img);
  const repo = path.join(dir, 'repo');
  const expected = await vivaJson(t, ['show', 'HEAD~1', '-C', repo]);

  const truncated = copy(img, dir, 'truncated.vhdx');
  fs.truncateSync(truncated, Math.floor(fs.statSync(img).size / 2));
  await corrupt(t, repo, truncated, /BAT entry \d+ .*past the end/);

  const magic = copy(img, dir, 'magic.vhdx');
  patch(magic, 0, Buffer.from('xxxx'));
  const r = await viva(['commit', magic, '-C', repo, '-m', 'x']);
  t.not(r.code, 0);
  t.notRegex(r.stderr, /internal error|\n\s+at /);

  // One header copy with a bad crc32c: the other one is used.
  const one = copy(img, dir, 'one.vhdx');
  patch(one, 64 * 1024 + 4, Buffer.from([0xde, 0xad, 0xbe, 0xef]));
  t.is((await commitIds(t, repo, [one])).root, expected.root);
  const both = copy(one, dir, 'both.vhdx');
  patch(both, 128 * 1024 + 4, Buffer.from([0xde, 0xad, 0xbe, 0xef]));
  await corrupt(t, repo, both, /no valid header: .*checksum/);

  const regions = copy(img, dir, 'regions.vhdx');
  patch(regions, 192 * 1024 + 4, Buffer.from([1, 2, 3, 4]));
  patch(regions, 256 * 1024 + 4, Buffer.from([1, 2, 3, 4]));
  await corrupt(t, repo, regions, /no valid region table/);

  const batAt = vhdxBat(img);
  const bat = fs.readFileSync(img).subarray(batAt, batAt + 8 * 64);
  let i = 0;
  while ((bat[i * 8]! & 7) !== 6) i++;
  const entry = copy(img, dir, 'entry.vhdx');
  patch(entry, batAt + i * 8, Buffer.from(((1n << 40n) << 20n | 6n).toString(16).padStart(16, '0'), 'hex').reverse());
  await corrupt(t, repo, entry, new RegExp(`BAT entry ${i} \\(offset ${batAt + i * 8}\\): block \\d+ at \\d+ .*past the end`));

  // A non-zero log GUID in both headers but no entry of it in the log: an empty log, read as before.
  const guid = copy(img, dir, 'guid.vhdx');
  for (const at of [64 * 1024, 128 * 1024]) {
    patch(guid, at + 48, Buffer.alloc(16, 0x11));
    fixVhdxChecksum(guid, at, 4096);
  }
  t.is((await commitIds(t, repo, [guid])).root, expected.root);
  // An entry header ('loge') with that GUID in the log: it may need replaying.
  const log = copy(guid, dir, 'log.vhdx');
  const logAt = Number(fs.readFileSync(img).readBigUInt64LE(64 * 1024 + 72));
  const entry2 = Buffer.alloc(64);
  entry2.write('loge', 0, 'latin1');
  entry2.writeUInt32LE(4096, 8);
  entry2.fill(0x11, 32, 48);
  patch(log, logAt + 8192, entry2);
  const l = await viva(['commit', log, '-C', repo, '-m', 'x']);
  t.is(l.code, 13, l.stderr);
  t.regex(l.stderr, new RegExp(`log entry at offset ${logAt + 8192}.*not closed cleanly`));
});

maybe('checkout to vmdk: a streamOptimized image qemu-img checks clean and finds identical, committed back to the same disk', async (t) => {
  const { dir, repo } = await initRepo(t);
  // 80 MiB + 3 sectors (three grain tables, a partial last grain), data in the first and the last 32 MiB.
  const tree = path.join(dir, 'tree');
  writeTree(tree, { etc: { hostname: 'vm\n' }, data: { big: bytes(3 * 1024 * 1024 + 77, 'big') } });
  const raw = path.join(dir, 'disk.raw');
  makeGptExt4Disk(raw, tree, String(80 * 1024 * 1024 + 1536));
  patch(raw, 75 * 1024 * 1024 + 3, bytes(200_000, 'tail'));
  const c = await vivaJson(t, ['commit', raw, '-C', repo, '-b', 'vm', '-m', 'raw']);
  const want = (await vivaJson(t, ['show', c.id, '-C', repo])).root;

  const out = path.join(dir, 'out.vmdk');
  const r = await vivaJson(t, ['checkout', 'vm', out, '-C', repo]);
  t.is(r.format, 'vmdk');
  t.regex(execFileSync('qemu-img', ['check', out]).toString(), /No errors were found/);
  t.regex(execFileSync('qemu-img', ['compare', '-f', 'raw', '-F', 'vmdk', raw, out]).toString(), /Images are identical/);
  const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', out]).toString());
  t.is(info['format-specific'].data['create-type'], 'streamOptimized');
  t.is(info['virtual-size'], fs.statSync(raw).size);
  // Compressed: far smaller than the data it holds.
  t.true(fs.statSync(out).size < 4 * 1024 * 1024, String(fs.statSync(out).size));
  const back = await commitIds(t, repo, [out]);
  t.is(back.format, 'vmdk');
  t.is(back.root, want);

  // --format vmdk whatever the name; an existing destination needs --force.
  const named = path.join(dir, 'out.img');
  await vivaJson(t, ['checkout', 'vm', named, '--format', 'vmdk', '-C', repo]);
  t.regex(execFileSync('qemu-img', ['compare', '-f', 'raw', '-F', 'vmdk', raw, named]).toString(), /Images are identical/);
  const again = await viva(['checkout', 'vm', out, '-C', repo]);
  t.is(again.code, 12, again.stderr);
});

maybe('checkout to vmdk: a directory commit becomes a new streamOptimized disk', async (t) => {
  const { dir, repo } = await initRepo(t);
  const tree = path.join(dir, 'tree');
  writeTree(tree, { etc: { hostname: 'web\n' } });
  await vivaJson(t, ['commit', tree, '-C', repo, '-b', 'web', '-m', 'tree']);
  const out = path.join(dir, 'web.vmdk');
  const r = await vivaJson(t, ['checkout', 'web', out, '--size', '64M', '-C', repo]);
  t.true(r.rebuilt);
  t.regex(execFileSync('qemu-img', ['check', out]).toString(), /No errors were found/);
  await vivaJson(t, ['commit', out, '-C', repo, '-b', 'disk', '-m', 'vmdk']);
  const cat = await viva(['cat', 'disk:p1/etc/hostname', '-C', repo]);
  t.is(cat.stdout, 'web\n', cat.stderr);
});
