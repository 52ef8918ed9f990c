/**
 * viva nbd --writable as its own process: real clients (qemu-io) and a raw socket write into a session's overlay;
 * reads see the writes; `viva commit nbd:SESSION` of file-level edits equals committing the edited image directly
 * while reading only the changed files; a kill -9 keeps the last flushed state committable; --list, --drop, one
 * writer per session, writes past the end refused.
 */
import test from 'ava';
import { execFileSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import { finished, spawnViva, tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';
import { makeXfsImage, withMount, xfsAvailable } from '../helpers/xfs-images.js';

function has(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const have = has('qemu-io', ['--version']) && has('mke2fs', ['-V']) && has('debugfs', ['-V']) && has('e2fsck', ['-V']);
const maybe = have ? test : test.skip;

const BLOCK = 4096;

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

interface Running { uri: string; child: ChildProcess; log: () => string; port: number }

/** Starts `viva nbd` and resolves once it printed its URI. */
async function startNbd(t: import('ava').ExecutionContext, args: string[]): Promise<Running> {
  const child = spawnViva(['nbd', ...args]);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const uri = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URI: ${err}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.endsWith('\n')) { clearTimeout(timer); resolve(out.trim()); }
    });
    child.on('exit', () => reject(new Error(`nbd exited: ${err}`)));
  });
  t.teardown(() => { child.kill('SIGKILL'); });
  return { uri, child, log: () => err, port: Number(/:(\d+)\//.exec(uri)?.[1] ?? 0) };
}

/** A directory of `n` files in 10 subdirectories, an ext4 image of it (4 KiB blocks) and a repository with it on 'base'. */
async function setup(t: import('ava').ExecutionContext, n: number) {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  for (let i = 0; i < n; i++) {
    fs.mkdirSync(path.join(src, `d${i % 10}`), { recursive: true });
    fs.writeFileSync(path.join(src, `d${i % 10}`, `f${i}`), crypto.randomBytes(1000 + ((i * 7919) % 30000)));
  }
  const image = path.join(dir, 'base.raw');
  run('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', String(BLOCK), '-d', src, '-E', 'root_owner=0:0', image, '32M']);
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', '-C', repo, image, '-b', 'base', '-m', 'base']);
  return { dir, repo, image };
}

/** Runs of 4 KiB blocks where two images differ: [first block, end block). */
function changedRuns(a: Buffer, b: Buffer): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < a.length / BLOCK; i++) {
    if (a.subarray(i * BLOCK, (i + 1) * BLOCK).equals(b.subarray(i * BLOCK, (i + 1) * BLOCK))) continue;
    const last = out[out.length - 1];
    if (last && last[1] === i) last[1]++;
    else out.push([i, i + 1]);
  }
  return out;
}

maybe('nbd --writable: file edits written block by block through qemu-io commit to the tree of the edited image, reading only the changed files', async (t) => {
  const { dir, repo, image } = await setup(t, 300);
  const baseId = (await vivaJson<Array<{ id: string }>>(t, ['log', '-C', repo, 'base', '--json']))[0]!.id;
  // The edits, made offline on a copy: 3 files changed in place (same blocks), 2 rewritten, 1 added, 1 chmod.
  const edited = path.join(dir, 'edited.raw');
  fs.copyFileSync(image, edited);
  const fd = fs.openSync(edited, 'r+');
  for (const f of ['d1/f11', 'd2/f42', 'd3/f73']) {
    const blk = Number(run('debugfs', ['-R', `bmap ${f} 0`, edited]).trim());
    fs.writeSync(fd, Buffer.from(`changed in place: ${f}`), 0, undefined, blk * BLOCK);
  }
  fs.closeSync(fd);
  const note = path.join(dir, 'note');
  fs.writeFileSync(note, 'rewritten\n');
  for (const f of ['d4/f14', 'd5/f25']) {
    run('debugfs', ['-w', '-R', `rm ${f}`, edited]);
    run('debugfs', ['-w', '-R', `write ${note} ${f}`, edited]);
  }
  run('debugfs', ['-w', '-R', `write ${note} d6/new`, edited]);
  run('debugfs', ['-w', '-R', 'sif d7/f17 mode 0100600', edited]);
  run('e2fsck', ['-fn', edited]);

  const s = await startNbd(t, ['-C', repo, 'base', '--writable', '--name', 'edit', '--listen', '127.0.0.1:0']);
  t.is(s.uri, `nbd://127.0.0.1:${s.port}/edit`);
  t.regex(s.log(), /nbd session 'edit' created: commit it with 'viva commit nbd:edit/);
  const a = fs.readFileSync(image);
  const b = fs.readFileSync(edited);
  const runs = changedRuns(a, b);
  t.true(runs.length > 5);
  const args = ['-f', 'raw'];
  runs.forEach(([from, to], i) => {
    const f = path.join(dir, `run${i}`);
    fs.writeFileSync(f, b.subarray(from * BLOCK, to * BLOCK));
    args.push('-c', `write -s ${f} ${from * BLOCK} ${(to - from) * BLOCK}`);
  });
  run('qemu-io', [...args, s.uri]);
  // The list while it runs: live, the changed bytes counted at the flush qemu-io sent on closing.
  const live = await vivaJson<Array<{ name: string; live: boolean; changedBytes: number; rev: string }>>(t, ['nbd', '-C', repo, '--list', '--json']);
  t.is(live.length, 1);
  t.like(live[0], { name: 'edit', live: true, rev: 'base', changedBytes: runs.reduce((n, [x, y]) => n + (y - x) * BLOCK, 0) });
  // A second writer on the live session is refused; --drop of it too.
  const second = await viva(['nbd', '-C', repo, 'base', '--writable', '--name', 'edit', '--listen', '127.0.0.1:0']);
  t.is(second.code, EXIT.LOCKED);
  t.regex(second.stderr, /nbd session 'edit' in use by pid \d+/);
  const drop = await viva(['nbd', '-C', repo, '--drop', 'edit']);
  t.is(drop.code, EXIT.LOCKED);
  s.child.kill('SIGTERM');
  t.is((await finished(s.child)).code, 0);
  t.regex(s.log(), /'edit' \d+ requests 0 bytes read \d+ bytes written/);

  const viaNbd = await vivaJson(t, ['commit', '-C', repo, 'nbd:edit', '-b', 'edited', '-m', 'edited through nbd', '--json']);
  const direct = await vivaJson(t, ['commit', '-C', repo, edited, '-b', 'direct', '-m', 'edited directly', '--json']);
  t.is(viaNbd.tree, direct.tree, 'same tree as committing the edited image');
  t.is(viaNbd.files, 301);
  t.is(viaNbd.cachedFiles, 301 - 6, 'only the 3 changed, 2 rewritten and 1 new files are read');
  t.regex(viaNbd.source.name, /^nbd:edit over 'base' \(commit [0-9a-f]{64}\)$/);
  t.is(viaNbd.parent, baseId, 'a new branch starts at the base commit');
  const log = await vivaJson<Array<{ id: string }>>(t, ['log', '-C', repo, 'edited', '--json']);
  t.deepEqual(log.map((e) => e.id), [viaNbd.id, baseId]);
  // Stored: the new files and the metadata chunks that changed, not the disk.
  t.true(viaNbd.storedBytes < 256 << 10, `stored ${viaNbd.storedBytes} bytes`);
  const out = path.join(dir, 'out.raw');
  await vivaOk(t, ['checkout', '-C', repo, 'edited', out]);
  t.true(fs.readFileSync(out).equals(b), 'the checkout is the edited image, byte for byte');
  run('e2fsck', ['-fn', out]);
  t.regex(run('debugfs', ['-R', 'stat d7/f17', out]), /Mode:\s+0600/);

  const listed = await viva(['nbd', '-C', repo, '--list']);
  t.regex(listed.stdout, /^edit {2}stopped {2}[\d.]+ KiB changed {2}over 'base' \([0-9a-f]{12}\) {2}created /);
  await vivaOk(t, ['nbd', '-C', repo, '--drop', 'edit']);
  t.deepEqual(await vivaJson(t, ['nbd', '-C', repo, '--list', '--json']), []);
  t.false(fs.existsSync(path.join(repo, '.viva', 'nbd', 'edit')));
  t.is((await viva(['nbd', '-C', repo, '--drop', 'edit'])).code, EXIT.NOT_FOUND);
  t.is((await viva(['commit', '-C', repo, 'nbd:edit', '-b', 'x', '-m', 'x'])).code, EXIT.NOT_FOUND);
});

/** A minimal NBD client: handshake with GO, simple replies, writes with payload. */
class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private closed = false;
  private readonly sock: net.Socket;

  constructor(port: number) {
    this.sock = net.connect(port, '127.0.0.1');
    this.sock.on('data', (d: Buffer) => { this.buf = Buffer.concat([this.buf, d]); this.wake(); });
    this.sock.on('close', () => { this.closed = true; this.wake(); });
    this.sock.on('error', () => undefined);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.closed) throw new Error('closed');
      await new Promise<void>((r) => this.waiters.push(r));
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Handshake and NBD_OPT_GO of `name`: the export's size and transmission flags. */
  async open(name: string): Promise<{ size: number; flags: number }> {
    await this.read(18);
    this.sock.write(u32(3));
    const n = Buffer.from(name);
    const data = Buffer.concat([u32(n.length), n, Buffer.from([0, 0])]);
    this.sock.write(Buffer.concat([Buffer.from('IHAVEOPT'), u32(7), u32(data.length), data]));
    let info = { size: 0, flags: 0 };
    for (;;) {
      const h = await this.read(20);
      const d = await this.read(h.readUInt32BE(16));
      const type = h.readUInt32BE(12);
      if (type === 3 && d.readUInt16BE(0) === 0) info = { size: Number(d.readBigUInt64BE(2)), flags: d.readUInt16BE(10) };
      else if (type === 1) return info;
      else throw new Error(`GO failed: ${type}`);
    }
  }

  /** One request and its simple reply: the error, and a read's data. */
  async request(type: number, offset: number, length: number, payload?: Buffer, flags = 0): Promise<{ error: number; data?: Buffer }> {
    const b = Buffer.alloc(28);
    b.writeUInt32BE(0x25609513, 0);
    b.writeUInt16BE(flags, 4);
    b.writeUInt16BE(type, 6);
    b.writeBigUInt64BE(7n, 8);
    b.writeBigUInt64BE(BigInt(offset), 16);
    b.writeUInt32BE(length, 24);
    this.sock.write(payload ? Buffer.concat([b, payload]) : b);
    const h = await this.read(16);
    const error = h.readUInt32BE(4);
    return type === 0 && !error ? { error, data: await this.read(length) } : { error };
  }

  close(): void {
    this.sock.destroy();
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

const CMD = { READ: 0, WRITE: 1, FLUSH: 3, TRIM: 4, WRITE_ZEROES: 6 };

maybe('nbd --writable: reads see writes (qemu-io), write-zeroes and trim, flags; kill -9 keeps the last flushed state; reopen; past the end is ENOSPC', async (t) => {
  const { dir, repo, image } = await setup(t, 20);
  const baseBytes = fs.readFileSync(image);
  const s = await startNbd(t, ['-C', repo, 'base', '--writable', '--listen', '127.0.0.1:0']);
  const name = /nbd session '([^']+)' created/.exec(s.log())?.[1];
  t.truthy(name, 'a generated session name is printed');
  t.regex(name!, /^\d{8}-\d{6}-[0-9a-f]{1,4}$/);
  // qemu-io: written data reads back (same and another connection), zeroes and discards.
  run('qemu-io', ['-f', 'raw', '-c', 'write -P 0xab 1M 64k', '-c', 'read -P 0xab 1M 64k', '-c', 'write -z 2M 64k', '-c', 'write -P 0x11 3M 8k', '-c', 'discard 3M 4k', s.uri]);
  const check = run('qemu-io', ['-r', '-f', 'raw', '-c', 'read -P 0xab 1M 64k', '-c', 'read -P 0 2M 64k', '-c', 'read -P 0 3145728 4096', '-c', 'read -P 0x11 3149824 4096', s.uri]);
  t.notRegex(check, /Pattern verification failed/);
  t.regex(check, /read 4096\/4096 bytes at offset 3149824/); // a trimmed block reads as zeros here

  const c = new RawClient(s.port);
  const { size, flags } = await c.open('');
  t.is(size, 32 << 20);
  t.is(flags & 0x2, 0, 'not read-only');
  t.is(flags & (0x4 | 0x8 | 0x20 | 0x40), 0x4 | 0x8 | 0x20 | 0x40, 'SEND_FLUSH, SEND_FUA, SEND_TRIM, SEND_WRITE_ZEROES');
  // An unaligned write is merged with the block around it.
  t.is((await c.request(CMD.WRITE, (5 << 20) + 100, 10, Buffer.alloc(10, 0x5a))).error, 0);
  const back = (await c.request(CMD.READ, 5 << 20, BLOCK)).data!;
  const want = Buffer.from(baseBytes.subarray(5 << 20, (5 << 20) + BLOCK));
  want.fill(0x5a, 100, 110);
  t.true(back.equals(want));
  // Past the end: ENOSPC, payload skipped, the connection goes on.
  t.is((await c.request(CMD.WRITE, (32 << 20) - 512, BLOCK, Buffer.alloc(BLOCK, 1))).error, 28);
  t.is((await c.request(CMD.WRITE_ZEROES, 32 << 20, BLOCK)).error, 28);
  t.is((await c.request(CMD.READ, 0, 512)).error, 0);
  // A flushed write (FUA), then one never flushed, then kill -9.
  t.is((await c.request(CMD.WRITE, 6 << 20, BLOCK, Buffer.alloc(BLOCK, 0xcd), 1)).error, 0);
  t.is((await c.request(CMD.WRITE, 7 << 20, BLOCK, Buffer.alloc(BLOCK, 0xef))).error, 0);
  t.is((await c.request(CMD.READ, 7 << 20, BLOCK)).data![0], 0xef);
  s.child.kill('SIGKILL');
  await finished(s.child);
  c.close();
  const list = await vivaJson<Array<{ name: string; live: boolean }>>(t, ['nbd', '-C', repo, '--list', '--json']);
  t.like(list[0], { name: name!, live: false });

  const committed = await vivaOk(t, ['commit', '-C', repo, `nbd:${name}`, '-b', 'after', '-m', 'after kill -9']);
  t.regex(committed.stderr, new RegExp(`remove it with 'viva nbd --drop ${name}'`));
  const out = path.join(dir, 'after.raw');
  await vivaOk(t, ['checkout', '-C', repo, 'after', out]);
  const got = fs.readFileSync(out);
  t.true(got.subarray(1 << 20, (1 << 20) + (64 << 10)).equals(Buffer.alloc(64 << 10, 0xab)));
  t.true(got.subarray(2 << 20, (2 << 20) + (64 << 10)).equals(Buffer.alloc(64 << 10)));
  t.true(got.subarray(6 << 20, (6 << 20) + BLOCK).equals(Buffer.alloc(BLOCK, 0xcd)), 'the flushed write is there');
  t.true(got.subarray(7 << 20, (7 << 20) + BLOCK).equals(baseBytes.subarray(7 << 20, (7 << 20) + BLOCK)), 'the unflushed one is lost, as in a write cache');
  t.true(got.subarray(5 << 20, (5 << 20) + BLOCK).equals(want));
  run('e2fsck', ['-fn', out]);

  // Reopened: the session's flushed state is served; new writes go on top.
  const again = await startNbd(t, ['-C', repo, 'base', '--writable', '--name', name!, '--listen', '127.0.0.1:0']);
  t.regex(again.log(), new RegExp(`nbd session '${name}' reopened`));
  const v = run('qemu-io', ['-f', 'raw', '-c', 'read -P 0xcd 6M 4k', '-c', 'write -P 0x77 8M 4k', again.uri]);
  t.notRegex(v, /Pattern verification failed/);
  // A live session commits at its last flush (qemu-io flushed when it closed) while the server goes on.
  await vivaOk(t, ['commit', '-C', repo, `nbd:${name}`, '-b', 'live', '-m', 'while served']);
  const liveOut = path.join(dir, 'live.raw');
  await vivaOk(t, ['checkout', '-C', repo, 'live', liveOut]);
  t.true(fs.readFileSync(liveOut).subarray(8 << 20, (8 << 20) + BLOCK).equals(Buffer.alloc(BLOCK, 0x77)));
  // Another revision cannot reopen it.
  again.child.kill('SIGTERM');
  t.is((await finished(again.child)).code, 0);
  await vivaOk(t, ['commit', '-C', repo, out, '-b', 'other', '-m', 'other']);
  const wrong = await viva(['nbd', '-C', repo, 'other', '--writable', '--name', name!, '--listen', '127.0.0.1:0']);
  t.is(wrong.code, EXIT.USAGE);
  t.regex(wrong.stderr, /is over 'base'/);
  const dropped = await viva(['nbd', '-C', repo, '--drop', name!]);
  t.is(dropped.code, 0);
});

(have && xfsAvailable ? test : test.skip)('nbd --writable over an XFS disk: the commit reads only the file whose blocks the session changed', async (t) => {
  t.timeout(300_000);
  const dir = tmpDir(t);
  const a = path.join(dir, 'a.xfs');
  makeXfsImage(a);
  withMount(a, false, (mnt) => {
    fs.mkdirSync(path.join(mnt, 'data'));
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(mnt, `data/f${i}`), crypto.randomBytes(64 << 10));
  });
  const b = path.join(dir, 'b.xfs');
  fs.copyFileSync(a, b);
  // One file changed in place (its blocks, not new ones): the edit a guest makes.
  withMount(b, false, (mnt) => {
    const fd = fs.openSync(path.join(mnt, 'data/f3'), 'r+');
    fs.writeSync(fd, Buffer.from('changed by the guest'), 0, undefined, 8192);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  });
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', '-C', repo, a, '-b', 'base', '-m', 'xfs']);
  const s = await startNbd(t, ['-C', repo, 'base', '--writable', '--name', 'xfs-edit', '--listen', '127.0.0.1:0']);
  const runs = changedRuns(fs.readFileSync(a), fs.readFileSync(b));
  const args = ['-f', 'raw'];
  runs.forEach(([from, to], i) => {
    const f = path.join(dir, `run${i}`);
    fs.writeFileSync(f, fs.readFileSync(b).subarray(from * BLOCK, to * BLOCK));
    args.push('-c', `write -s ${f} ${from * BLOCK} ${(to - from) * BLOCK}`);
  });
  run('qemu-io', [...args, s.uri]);
  s.child.kill('SIGTERM');
  await finished(s.child);
  const viaNbd = await vivaJson(t, ['commit', '-C', repo, 'nbd:xfs-edit', '-b', 'edited', '-m', 'through nbd', '--json']);
  const direct = await vivaJson(t, ['commit', '-C', repo, b, '-b', 'direct', '-m', 'directly', '--json']);
  t.is(viaNbd.tree, direct.tree, 'the same tree as committing the edited image');
  // Of 19,093 files, the changed one and at most the 3 of the populated shapes whose runs the disk's file map does
  // not hold whole (the reflinked copy shares its original's blocks, preallocated files have unwritten extents): read.
  const read = viaNbd.files - viaNbd.cachedFiles;
  t.true(read >= 1 && read <= 4, `read ${read} of ${viaNbd.files} files`);
  t.true((await vivaOk(t, ['cat', '-C', repo, 'edited:data/f3'])).stdout.includes('changed by the guest'));
});
