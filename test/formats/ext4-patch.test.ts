import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { CowDevice, patchExt4, type Ext4Change, type Ext4PatchOptions, type Ext4PatchResult } from '../../src/formats/ext4-patch.js';
import { Ext4PatchError } from '../../src/errors.js';
import { bytes, mkfs, readImage } from '../helpers/ext4-images.js';

const TOOLS = ['mke2fs', 'e2fsck', 'debugfs', 'dumpe2fs'];
const haveTools = TOOLS.every((t) => spawnSync('sh', ['-c', `command -v ${t} || test -x /sbin/${t} || test -x /usr/sbin/${t}`]).status === 0);
const maybe = haveTools ? test : test.skip;

const T0 = 1_700_000_000_123_456_789n;
const b = (s: string) => Buffer.from(s);

let work: string;
test.before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-ext4-patch-'));
});
test.after.always(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

let counter = 0;
/** `mke2fs -t type -d tree` of a tree written by `fill`; `index` runs `e2fsck -fyD` so big directories become htrees. */
function image(type: string, size: string, fill: (root: string) => void, args: string[] = [], index = false): string {
  const n = counter++;
  const root = path.join(work, `tree-${n}`);
  fs.mkdirSync(root);
  fill(root);
  const img = path.join(work, `fs-${n}.img`);
  mkfs(img, root, type, args, size);
  if (index) {
    const r = spawnSync('e2fsck', ['-fyD', img]);
    if (r.status !== 0 && r.status !== 1) throw new Error(`e2fsck -fyD: ${r.stdout}${r.stderr}`);
  }
  return img;
}

/** A base tree with a bit of everything the changes touch. */
function baseTree(root: string): void {
  const p = (rel: string) => path.join(root, rel);
  fs.mkdirSync(p('etc'));
  fs.writeFileSync(p('etc/hostname'), 'base\n');
  fs.writeFileSync(p('etc/big'), bytes(40_000, 'big'));
  fs.mkdirSync(p('var/lib/app'), { recursive: true });
  for (let i = 0; i < 5; i++) fs.writeFileSync(p(`var/lib/app/f${i}`), bytes(3000 * i, `f${i}`));
  fs.mkdirSync(p('var/lib/app/sub'));
  fs.writeFileSync(p('var/lib/app/sub/deep'), 'deep\n');
  fs.symlinkSync('../f1', p('var/lib/app/sub/link'));
  fs.mkdirSync(p('hl'));
  fs.writeFileSync(p('hl/one'), 'linked\n');
  fs.linkSync(p('hl/one'), p('hl/two'));
  fs.writeFileSync(p('plain'), 'plain\n');
}

interface Patched {
  result: Ext4PatchResult;
  out: string;
  cowBlocks: number;
  baseBytesRead: number;
}

/** Reads `img` through a CowDevice, patches, and writes the changed blocks into a copy. */
function patch(img: string, changes: Ext4Change[], options?: Ext4PatchOptions): Patched {
  const fd = fs.openSync(img, 'r');
  let dev: CowDevice;
  let result: Ext4PatchResult;
  let baseBytesRead = 0;
  try {
    const size = fs.fstatSync(fd).size;
    dev = new CowDevice(size, (offset, length) => {
      const buf = Buffer.alloc(length);
      baseBytesRead += length;
      let done = 0;
      while (done < length) {
        const got = fs.readSync(fd, buf, done, length - done, offset + done);
        if (got === 0) throw new Error('short read');
        done += got;
      }
      return buf;
    });
    result = patchExt4(dev, changes, options);
  } finally {
    fs.closeSync(fd);
  }
  const out = `${img}.patched-${counter++}`;
  fs.copyFileSync(img, out);
  const wfd = fs.openSync(out, 'r+');
  const blocks = dev.changedBlocks();
  for (const { offset, data } of blocks) fs.writeSync(wfd, data, 0, data.length, offset);
  fs.closeSync(wfd);
  return { result, out, cowBlocks: blocks.length, baseBytesRead };
}

/** `e2fsck -fn` must be clean, and dumpe2fs's free counts must be the ones e2fsck counts. */
function fsck(t: ExecutionContext, img: string): void {
  const r = spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' });
  if (r.status !== 0) t.fail(`e2fsck -fn exited ${r.status}:\n${r.stdout}${r.stderr}`);
  const m = /(\d+)\/(\d+) files .* (\d+)\/(\d+) blocks/.exec(r.stdout);
  t.truthy(m, r.stdout);
  const head = execFileSync('dumpe2fs', ['-h', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(head)![1]);
  t.is(field('Free inodes'), Number(m![2]) - Number(m![1]), 'free inodes');
  t.is(field('Free blocks'), Number(m![4]) - Number(m![3]), 'free blocks');
}

function debugfs(img: string, request: string): Buffer {
  return execFileSync('debugfs', ['-R', request, img], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 });
}

function cat(img: string, p: string): Buffer {
  return debugfs(img, `cat "/${p}"`);
}

/** Mode, owner, links, size and mtime of a path as `debugfs stat` shows them. */
function stat(img: string, p: string): { mode: number; type: string; uid: number; gid: number; links: number; size: number; mtime: bigint; text: string } {
  const text = debugfs(img, `stat "/${p}"`).toString();
  const num = (re: RegExp) => {
    const m = re.exec(text);
    if (!m) throw new Error(`no ${re} in:\n${text}`);
    return m[1];
  };
  const mt = /mtime: 0x([0-9a-f]+)(?::([0-9a-f]+))?/.exec(text)!;
  const extra = mt[2] ? parseInt(mt[2], 16) : 0;
  const sec = BigInt(parseInt(mt[1], 16) | 0) + (BigInt(extra & 3) << 32n);
  return {
    text,
    type: num(/Type: (\S+)/),
    mode: parseInt(num(/Mode:\s+(\d+)/), 8),
    uid: Number(num(/User:\s+(\d+)/)),
    gid: Number(num(/Group:\s+(\d+)/)),
    links: Number(num(/Links: (\d+)/)),
    size: Number(num(/Size: (\d+)/)),
    mtime: sec * 1_000_000_000n + BigInt(extra >>> 2),
  };
}

function exists(img: string, p: string): boolean {
  return !/File not found/.test(spawnSync('debugfs', ['-R', `stat "/${p}"`, img], { encoding: 'utf8' }).stderr);
}

function write(p: string, data: Buffer | string, mode = 0o644, extra: Partial<Extract<Ext4Change, { op: 'write' }>> = {}): Ext4Change {
  return { op: 'write', path: b(p), data: Buffer.from(data), mode, uid: 1000, gid: 100, mtimeNs: T0, ...extra };
}

/** [label, mke2fs type, mke2fs args, tune2fs args run afterwards]. */
const KINDS: Array<[string, string, string[], string[]?]> = [
  ['ext4 4k', 'ext4', ['-b', '4096']],
  ['ext4 1k', 'ext4', []],
  // The checksum seed stays the old uuid's once the uuid changes.
  ['ext4 metadata_csum_seed', 'ext4', ['-b', '4096', '-O', 'metadata_csum_seed'], ['-U', 'random']],
  // crc16 group descriptors, 32-byte descriptors, no inode or block checksums.
  ['ext4 uninit_bg', 'ext4', ['-O', '^metadata_csum,^64bit,uninit_bg']],
  ['ext3', 'ext3', []],
  ['ext2', 'ext2', []],
];

for (const [label, type, args, tune] of KINDS) {
  const base = (): string => {
    const img = image(type, '16M', baseTree, args);
    if (tune) execFileSync('tune2fs', [...tune, img], { stdio: 'ignore' });
    return img;
  };

  maybe(`patchExt4: ${label}: replace a file with smaller and larger content, keeping the rest`, (t) => {
    const img = base();
    const small = patch(img, [write('etc/big', 'tiny\n', 0o600)]);
    fsck(t, small.out);
    t.is(cat(small.out, 'etc/big').toString(), 'tiny\n');
    const st = stat(small.out, 'etc/big');
    t.is(st.mode, 0o600);
    t.is(st.uid, 1000);
    t.is(st.gid, 100);
    t.is(st.size, 5);
    t.is(st.mtime, T0);
    t.true(small.result.blocksFreed > small.result.blocksAllocated);
    const bigger = bytes(300_000, 'larger');
    const large = patch(img, [write('etc/hostname', bigger)]);
    fsck(t, large.out);
    t.deepEqual(cat(large.out, 'etc/hostname'), bigger);
    t.is(cat(large.out, 'plain').toString(), 'plain\n');
    t.deepEqual(cat(large.out, 'etc/big'), bytes(40_000, 'big'));
    t.is(large.result.inodesAllocated, 0);
  });

  maybe(`patchExt4: ${label}: new files in an existing and in new directories, growing a directory by blocks`, (t) => {
    const img = base();
    const changes: Ext4Change[] = [
      write('etc/new.conf', 'new\n', 0o640),
      { op: 'mkdir', path: b('opt'), mode: 0o755, uid: 0, gid: 0, mtimeNs: T0 },
      { op: 'mkdir', path: b('opt/app'), mode: 0o750, uid: 5, gid: 6, mtimeNs: T0 + 1n },
      write('opt/app/bin', bytes(70_000, 'bin'), 0o755),
    ];
    for (let i = 0; i < 150; i++) changes.push(write(`opt/app/entry-with-a-long-name-${i}`, `${i}\n`));
    const { result, out } = patch(img, changes);
    fsck(t, out);
    t.is(cat(out, 'etc/new.conf').toString(), 'new\n');
    t.deepEqual(cat(out, 'opt/app/bin'), bytes(70_000, 'bin'));
    t.is(cat(out, 'opt/app/entry-with-a-long-name-149').toString(), '149\n');
    const dir = stat(out, 'opt/app');
    t.is(dir.mode, 0o750);
    t.is(dir.uid, 5);
    t.is(dir.links, 2);
    t.true(dir.size > 4096 || dir.size > 1024 * 3, `directory grew: ${dir.size}`);
    t.is(dir.mtime, T0, 'parent mtime is the last change');
    t.is(stat(out, 'opt').links, 3);
    t.is(result.inodesAllocated, 154);
    const ls = debugfs(out, 'ls -l /opt/app').toString();
    t.regex(ls, /entry-with-a-long-name-0\b/);
  });

  maybe(`patchExt4: ${label}: remove a file, a non-empty directory and one name of a hardlinked file`, (t) => {
    const img = base();
    const before = stat(img, 'var/lib').links;
    const { result, out } = patch(img, [
      { op: 'remove', path: b('plain') },
      { op: 'remove', path: b('var/lib/app') },
      { op: 'remove', path: b('hl/one') },
    ], { now: T0 });
    fsck(t, out);
    t.false(exists(out, 'plain'));
    t.false(exists(out, 'var/lib/app'));
    t.false(exists(out, 'hl/one'));
    t.is(cat(out, 'hl/two').toString(), 'linked\n');
    t.is(stat(out, 'hl/two').links, 1);
    t.is(stat(out, 'var/lib').links, before - 1);
    t.is(stat(out, 'var/lib').mtime, T0);
    // plain, app, f0..f4, sub, deep, link
    t.is(result.inodesFreed, 10);
    t.is(result.inodesAllocated, 0);
  });

  maybe(`patchExt4: ${label}: writing one name of a hardlinked file gives it a new inode`, (t) => {
    const img = base();
    const { result, out } = patch(img, [write('hl/one', 'changed\n')]);
    fsck(t, out);
    t.is(cat(out, 'hl/one').toString(), 'changed\n');
    t.is(cat(out, 'hl/two').toString(), 'linked\n');
    t.is(stat(out, 'hl/two').links, 1);
    t.is(stat(out, 'hl/one').links, 1);
    t.is(result.inodesAllocated, 1);
    t.is(result.inodesFreed, 0);
  });

  maybe(`patchExt4: ${label}: fast and slow symlinks, replacing a file`, async (t) => {
    const img = base();
    const long = `${'long/'.repeat(30)}end`;
    const { out } = patch(img, [
      { op: 'symlink', path: b('etc/fast'), target: b('hostname'), uid: 0, gid: 0, mtimeNs: T0 },
      { op: 'symlink', path: b('etc/slow'), target: b(long), uid: 0, gid: 0, mtimeNs: T0 },
      { op: 'symlink', path: b('plain'), target: b('etc/hostname'), uid: 0, gid: 0, mtimeNs: T0 },
    ]);
    fsck(t, out);
    const img2 = await readImage(out);
    const byPath = new Map(img2.entries.map((e) => [e.path.toString(), e]));
    t.is(byPath.get('etc/fast')?.linkTarget?.toString(), 'hostname');
    t.is(byPath.get('etc/slow')?.linkTarget?.toString(), long);
    t.is(byPath.get('plain')?.type, 'symlink');
    t.is(stat(out, 'etc/fast').type, 'symlink');
  });

  maybe(`patchExt4: ${label}: setattr with a setuid mode, owner, mtime and an xattr`, async (t) => {
    const img = base();
    const { out } = patch(img, [
      { op: 'setattr', path: b('etc/hostname'), mode: 0o4755, uid: 12345, gid: 70000, mtimeNs: T0, xattrs: [{ name: 'user.note', value: b('hello') }, { name: 'security.capability', value: Buffer.from('0100000201000000000000000000000000000000', 'hex') }] },
      { op: 'setattr', path: b(''), mode: 0o700 },
    ]);
    fsck(t, out);
    const st = stat(out, 'etc/hostname');
    t.is(st.mode, 0o4755);
    t.is(st.uid, 12345);
    t.is(st.gid, 70000);
    t.is(st.mtime, T0);
    t.is(cat(out, 'etc/hostname').toString(), 'base\n');
    const ea = debugfs(out, 'ea_list /etc/hostname').toString();
    t.regex(ea, /user\.note.*hello/);
    t.regex(ea, /security\.capability/);
    const read = await readImage(out);
    const e = read.entries.find((x) => x.path.toString() === 'etc/hostname')!;
    t.deepEqual(e.xattrs.map((x) => x.name), ['security.capability', 'user.note']);
    t.is(read.entries[0].mode, 0o700);
  });
}

maybe('patchExt4: ext4: a one-file write on a 64 MB file system changes few blocks', (t) => {
  const img = image('ext4', '64M', baseTree, ['-b', '4096']);
  const { result, out, cowBlocks, baseBytesRead } = patch(img, [write('etc/hostname', 'derived\n')]);
  t.true(baseBytesRead < 256 * 1024, `${baseBytesRead} bytes read`);
  fsck(t, out);
  t.is(cat(out, 'etc/hostname').toString(), 'derived\n');
  t.true(result.changedBlocks.length < 16, `${result.changedBlocks.length} blocks changed`);
  t.true(cowBlocks < 16);
  const added = patch(img, [write('etc/added', 'added\n')]);
  fsck(t, added.out);
  t.true(added.result.changedBlocks.length < 16, `${added.result.changedBlocks.length} blocks changed`);
  t.is(added.result.dirBlocksChanged, 1);
});

maybe('patchExt4: ext4: an htree directory takes an insert and a remove (turned linear)', (t) => {
  const img = image('ext4', '32M', (root) => {
    fs.mkdirSync(path.join(root, 'many'));
    for (let i = 0; i < 2000; i++) fs.writeFileSync(path.join(root, `many/entry-number-${String(i).padStart(5, '0')}`), '');
  }, ['-b', '4096'], true);
  t.regex(debugfs(img, 'htree /many').toString(), /Root node dump/);
  const { result, out } = patch(img, [
    write('many/added', 'added\n'),
    { op: 'remove', path: b('many/entry-number-01000') },
  ]);
  fsck(t, out);
  t.is(cat(out, 'many/added').toString(), 'added\n');
  t.false(exists(out, 'many/entry-number-01000'));
  t.true(exists(out, 'many/entry-number-01999'));
  t.true(result.dirBlocksChanged <= 4);
  // `ls -p`: one '/inode/mode/uid/gid/name/size/' line per entry. A removed entry that was first in its block keeps
  // its name with inode 0 (as the kernel leaves it; whether that happens depends on the file system's random hash
  // seed), so only live entries are counted.
  const live = debugfs(out, 'ls -p /many').toString().split('\n').filter((l) => /^\/[1-9]\d*\/[^/]*\/[^/]*\/[^/]*\/entry-number-/.test(l));
  t.is(live.length, 1999);
});

maybe('patchExt4: ext4 1k: a two-level htree directory turned linear (root and index nodes become empty leaves)', (t) => {
  const img = image('ext4', '32M', (root) => {
    fs.mkdirSync(path.join(root, 'many'));
    for (let i = 0; i < 6000; i++) fs.writeFileSync(path.join(root, `many/entry-number-${String(i).padStart(5, '0')}`), '');
  }, [], true);
  t.regex(debugfs(img, 'htree /many').toString(), /Indirect levels: 1/);
  const { result, out } = patch(img, [
    { op: 'remove', path: b('many/entry-number-00000') },
    { op: 'mkdir', path: b('many/sub'), mode: 0o755, uid: 0, gid: 0, mtimeNs: T0 },
  ]);
  fsck(t, out);
  t.true(exists(out, 'many/sub'));
  t.false(exists(out, 'many/entry-number-00000'));
  t.true(exists(out, 'many/entry-number-05999'));
  t.true(result.dirBlocksChanged >= 3, `${result.dirBlocksChanged}`);
});

maybe('patchExt4: ext2: files needing indirect blocks (block maps)', (t) => {
  const img = image('ext2', '16M', baseTree);
  const data = bytes(600_000, 'indirect');
  const { out } = patch(img, [write('var/data', data), write('etc/hostname', bytes(20_000, 'twenty'))]);
  fsck(t, out);
  t.deepEqual(cat(out, 'var/data'), data);
  t.deepEqual(cat(out, 'etc/hostname'), bytes(20_000, 'twenty'));
  const removed = patch(out, [{ op: 'remove', path: b('var/data') }]);
  fsck(t, removed.out);
  // A directory past 12 blocks needs an indirect block of its own.
  const names: Ext4Change[] = [{ op: 'mkdir', path: b('var/many'), mode: 0o755, uid: 0, gid: 0, mtimeNs: T0 }];
  for (let i = 0; i < 500; i++) names.push(write(`var/many/a-rather-long-file-name-number-${i}`, i % 2 ? '' : `${i}`));
  const grown = patch(img, names);
  fsck(t, grown.out);
  t.true(stat(grown.out, 'var/many').size > 12 * 1024);
  t.is(cat(grown.out, 'var/many/a-rather-long-file-name-number-498').toString(), '498');
  const shrunk = patch(grown.out, [{ op: 'remove', path: b('var/many') }]);
  fsck(t, shrunk.out);
  t.false(exists(shrunk.out, 'var/many'));
});

maybe('patchExt4: ext4 1k: a file larger than a group takes blocks from uninitialised groups', (t) => {
  const img = image('ext4', '40M', baseTree);
  const data = bytes(12 << 20, 'large');
  const uninit = (f: string) => (execFileSync('dumpe2fs', [f], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).match(/BLOCK_UNINIT/g) ?? []).length;
  const before = uninit(img);
  t.true(before > 0);
  const { out, result } = patch(img, [write('large', data)]);
  t.true(uninit(out) < before);
  fsck(t, out);
  t.deepEqual(cat(out, 'large'), data);
  t.true(result.blocksAllocated >= 12 * 1024);
});

maybe('patchExt4: ext4: a file in fragmented free space gets an extent tree', (t) => {
  const img = image('ext4', '16M', (root) => {
    for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(root, `s${String(i).padStart(3, '0')}`), bytes(4096, `s${i}`));
  }, ['-b', '4096', '-O', '^has_journal']);
  const head = execFileSync('dumpe2fs', ['-h', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const free = Number(/^Free blocks:\s+(\d+)/m.exec(head)![1]);
  const changes: Ext4Change[] = [write('filler', Buffer.alloc((free - 150) * 4096, 1))];
  for (let i = 0; i < 200; i += 2) changes.push({ op: 'remove', path: b(`s${String(i).padStart(3, '0')}`) });
  const frag = bytes(240 * 4096, 'frag');
  changes.push(write('frag', frag));
  const { out } = patch(img, changes);
  fsck(t, out);
  t.deepEqual(cat(out, 'frag'), frag);
  t.regex(debugfs(out, 'stat /frag').toString(), /\(ETB0\)/);
});

maybe('patchExt4: a full file system is refused with no-space, the device unchanged', (t) => {
  const img = image('ext4', '8M', baseTree, ['-b', '4096']);
  const freeBlocks = (f: string) => Number(/^Free blocks:\s+(\d+)/m.exec(execFileSync('dumpe2fs', ['-h', f], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))![1]);
  // Fill every free block (the free space is a few runs: the extents fit in the inode, no tree block needed).
  const full = patch(img, [write('filler', Buffer.alloc(freeBlocks(img) * 4096, 7))]).out;
  fsck(t, full);
  t.is(freeBlocks(full), 0);
  const fd = fs.openSync(full, 'r');
  const dev = new CowDevice(fs.fstatSync(fd).size, (o, n) => {
    const buf = Buffer.alloc(n);
    fs.readSync(fd, buf, 0, n, o);
    return buf;
  });
  try {
    const err = t.throws(() => patchExt4(dev, [write('etc/empty', ''), write('etc/one-byte', 'x')]), { instanceOf: Ext4PatchError });
    t.is(err?.kind, 'no-space');
    t.is(err?.code, 'ERR_EXTFS_PATCH');
    t.regex(err!.message, /^cannot patch 'etc\/one-byte': no space left/);
    t.is(dev.changedBlocks().length, 0);
    const missing = t.throws(() => patchExt4(dev, [write('nope/x', 'x')]), { instanceOf: Ext4PatchError });
    t.is(missing?.kind, 'not-found');
    t.regex(missing!.message, /'nope\/x'.*'nope' does not exist/);
    t.is(dev.changedBlocks().length, 0);
    // What needs no block still applies: an empty file in a directory with room.
    patchExt4(dev, [write('etc/empty', '')]);
    t.true(dev.changedBlocks().length > 0);
  } finally {
    fs.closeSync(fd);
  }
});

maybe('patchExt4: running out of inodes is no-space, naming the path', (t) => {
  const img = image('ext4', '8M', baseTree, ['-b', '4096', '-N', '32']);
  const changes: Ext4Change[] = [];
  for (let i = 0; i < 40; i++) changes.push(write(`etc/n${i}`, ''));
  const err = t.throws(() => patch(img, changes), { instanceOf: Ext4PatchError });
  t.is(err?.kind, 'no-space');
  t.regex(err!.message, /^cannot patch 'etc\/n\d+': no space left: no free inode$/);
});

maybe('CowDevice: reads see written blocks, the base is untouched, blocks come out sorted', (t) => {
  const base = bytes(20_000, 'base');
  const dev = new CowDevice(base.length, (o, n) => Buffer.from(base.subarray(o, o + n)), 4096);
  dev.write(10_000, Buffer.alloc(100, 0xaa));
  dev.write(100, Buffer.alloc(4, 0xbb));
  const view = dev.read(0, base.length);
  t.deepEqual(view.subarray(10_000, 10_100), Buffer.alloc(100, 0xaa));
  t.deepEqual(view.subarray(100, 104), Buffer.alloc(4, 0xbb));
  t.deepEqual(view.subarray(0, 100), base.subarray(0, 100));
  t.deepEqual(view.subarray(10_100), base.subarray(10_100));
  t.deepEqual(dev.changedBlocks().map((x) => x.offset), [0, 8192]);
  t.deepEqual(bytes(20_000, 'base'), base);
});

maybe('patchExt4: refuses features it does not handle, and xattrs that do not fit in the inode', (t) => {
  const inline = image('ext4', '8M', baseTree, ['-O', 'inline_data']);
  const e1 = t.throws(() => patch(inline, [write('x', 'x')]), { instanceOf: Ext4PatchError });
  t.is(e1?.kind, 'unsupported');
  t.regex(e1!.message, /feature inline_data is not supported/);
  const img = image('ext4', '8M', baseTree, ['-b', '4096']);
  const e2 = t.throws(() => patch(img, [{ op: 'setattr', path: b('plain'), xattrs: [{ name: 'user.big', value: Buffer.alloc(200, 1) }] }]), { instanceOf: Ext4PatchError });
  t.regex(e2!.message, /^cannot patch 'plain': xattrs do not fit in the inode/);
  const e3 = t.throws(() => patch(img, [{ op: 'remove', path: b('etc/missing') }]), { instanceOf: Ext4PatchError });
  t.is(e3?.kind, 'not-found');
  const e4 = t.throws(() => patch(img, [write('etc', 'x')]), { instanceOf: Ext4PatchError });
  t.is(e4?.kind, 'invalid');
});

maybe('patchExt4: mkdir on an existing directory sets its attributes; later changes see earlier ones', (t) => {
  const img = image('ext4', '16M', baseTree, ['-b', '4096']);
  const { out } = patch(img, [
    { op: 'mkdir', path: b('etc'), mode: 0o700, uid: 7, gid: 8, mtimeNs: T0 },
    write('etc/tmp', 'tmp'),
    { op: 'remove', path: b('etc/tmp') },
    { op: 'mkdir', path: b('etc/d'), mode: 0o755, uid: 0, gid: 0, mtimeNs: T0 },
    { op: 'remove', path: b('etc/d') },
  ], { now: T0 + 5n });
  fsck(t, out);
  const st = stat(out, 'etc');
  t.is(st.mode, 0o700);
  t.is(st.uid, 7);
  t.is(st.links, 2);
  t.false(exists(out, 'etc/tmp'));
  t.false(exists(out, 'etc/d'));
});
