/**
 * viva nbd as its own process: qemu-img, qemu-io and qemu-nbd read the exports and get exactly what `viva checkout
 * REV out.raw` writes (bare ext4, MBR with ext4 + raw, a qcow2 source, a derived overlay disk), several exports from
 * one server; malformed traffic from raw sockets gets NBD errors or a closed connection and the server goes on.
 */
import test from 'ava';
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import { finished, spawnViva, tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';
import { haveMke2fs, makeMbrDisk, patchBytes } from '../helpers/mbr-disk.js';
import { Repository } from '../../src/store/repository.js';
import { resolveSpec } from '../../src/ops/resolve.js';
import { readBlobRecord } from '../../src/store/typed.js';
import { encodeStored } from '../../src/store/object-store.js';
import { lmdb } from '../helpers/lmdb.js';

function hasNbd(): boolean {
  try {
    return execFileSync('qemu-img', ['--help'], { encoding: 'utf8' }).includes('nbd') && haveMke2fs();
  } catch {
    return false;
  }
}
const have = hasNbd();
const maybe = have ? test : test.skip;
const maybeSerial = have ? test.serial : test.skip;

interface Running { uris: string[]; child: ChildProcess; log: () => string; port: number }

/** Starts `viva nbd` and resolves once it printed one URI per export. */
async function startNbd(t: import('ava').ExecutionContext, args: string[], exports: number): Promise<Running> {
  const child = spawnViva(['nbd', ...args]);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const uris = await new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URIs: ${err}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const lines = out.split('\n').filter(Boolean);
      if (lines.length >= exports && out.endsWith('\n')) { clearTimeout(timer); resolve(lines); }
    });
    child.on('exit', () => reject(new Error(`nbd exited: ${err}`)));
  });
  t.teardown(() => { child.kill('SIGKILL'); });
  const port = Number(/:(\d+)\//.exec(uris[0]!)?.[1] ?? 0);
  return { uris, child, log: () => err, port };
}

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `qemu-io -r -c 'read -v AT N'` on an export: the bytes it dumps. */
function qemuRead(port: number, name: string, at: number, n: number): Buffer {
  const dump = run('qemu-io', ['-r', '-f', 'raw', '-c', `read -v ${at} ${n}`, `nbd://127.0.0.1:${port}/${name}`]);
  return Buffer.from(dump.split('\n').filter((l) => /^[0-9a-f]{8}:/.test(l)).map((l) => l.slice(10, 58).replace(/ /g, '')).join(''), 'hex');
}

/** A repository with four disk commits: bare ext4, MBR (ext4 + raw partition), the MBR disk as qcow2, a derived overlay. */
async function setup(t: import('ava').ExecutionContext) {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'base\n');
  fs.writeFileSync(path.join(src, 'random.bin'), crypto.randomBytes(3 << 20));
  fs.writeFileSync(path.join(src, 'text.txt'), 'line\n'.repeat(50_000));
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  const ext4 = path.join(dir, 'bare.ext4');
  run('truncate', ['-s', '48M', ext4]);
  run('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', src, '-E', 'root_owner=0:0', ext4]);
  await vivaOk(t, ['commit', '-C', repo, ext4, '-b', 'vm/bare', '-m', 'bare']);
  const mbr = path.join(dir, 'mbr.raw');
  makeMbrDisk(mbr, 40, [{ start: 2048, sectors: 32 * 2048, type: 0x83, ext4Tree: src }, { start: 34 * 2048, sectors: 4 * 2048, type: 0xda }]);
  patchBytes(mbr, 34 << 20, crypto.randomBytes(1 << 20));
  await vivaOk(t, ['commit', '-C', repo, mbr, '-b', 'vm/mbr', '-m', 'mbr']);
  const qcow = path.join(dir, 'mbr.qcow2');
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', mbr, qcow]);
  await vivaOk(t, ['commit', '-C', repo, qcow, '-b', 'vm/qcow', '-m', 'qcow2']);
  await vivaOk(t, ['derive', '-C', repo, 'vm/bare', '-b', 'vm/derived', '--set', 'etc/hostname=derived', '-m', 'derived']);
  return { dir, repo };
}

maybe('nbd: four exports from one server read back byte-identical to checkout; qemu-io, qemu-img info and map, qemu-nbd --list', async (t) => {
  const { dir, repo } = await setup(t);
  const names = ['vm/bare', 'vm/mbr', 'vm/qcow', 'vm/derived'];
  const s = await startNbd(t, ['-C', repo, ...names, '--listen', '127.0.0.1:0'], names.length);
  t.deepEqual(s.uris, names.map((n) => `nbd://127.0.0.1:${s.port}/${n}`));
  for (const name of names) {
    const ref = path.join(dir, `${name.replace('/', '-')}.ref.raw`);
    const out = path.join(dir, `${name.replace('/', '-')}.nbd.raw`);
    await vivaOk(t, ['checkout', '-C', repo, name, ref]);
    run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', `nbd://127.0.0.1:${s.port}/${name}`, out]);
    t.true(fs.readFileSync(out).equals(fs.readFileSync(ref)), `${name}: the NBD export is the checkout, byte for byte`);
    const info = JSON.parse(run('qemu-img', ['info', '--output=json', `nbd://127.0.0.1:${s.port}/${name}`]));
    t.is(info['virtual-size'], fs.statSync(ref).size);
    // A random read in the middle of file data (and the derived file's changed block) as qemu-io prints it.
    const at = name === 'vm/mbr' || name === 'vm/qcow' ? (34 << 20) + 4096 : 4096;
    t.deepEqual(qemuRead(s.port, name, at, 512), fs.readFileSync(ref).subarray(at, at + 512));
  }
  // The derived disk really differs from its base where the edit went.
  t.false(fs.readFileSync(path.join(dir, 'vm-derived.nbd.raw')).equals(fs.readFileSync(path.join(dir, 'vm-bare.nbd.raw'))));
  // Block status: the sparse ext4 has zero stretches, the raw partition's random MiB is data.
  const map = JSON.parse(run('qemu-img', ['map', '--output=json', '-f', 'raw', `nbd://127.0.0.1:${s.port}/vm/mbr`])) as Array<{ start: number; length: number; data: boolean; zero: boolean }>;
  t.true(map.some((m) => !m.data && m.zero && m.length >= 1 << 20), 'holes are reported');
  t.true(map.some((m) => m.data && m.start <= 34 << 20 && m.start + m.length >= 35 << 20), 'the raw partition is data');
  // The default export (no name) is the first one.
  t.is(JSON.parse(run('qemu-img', ['info', '--output=json', `nbd://127.0.0.1:${s.port}`]))['virtual-size'], 48 << 20);
  const list = run('qemu-nbd', ['-L', '-b', '127.0.0.1', '-p', String(s.port)]);
  t.regex(list, /exports available: 4/);
  for (const n of names) t.true(list.includes(`export: '${n}'`));
  t.regex(list, /base:allocation/);
  t.regex(s.log(), /'vm\/bare' \d+ requests \d+ bytes read \d+ms disconnected/);
  s.child.kill('SIGTERM');
  t.is((await finished(s.child)).code, 0);
});

/** A minimal NBD client over a raw socket, for traffic no real client sends. */
class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  readonly sock: net.Socket;

  constructor(port: number) {
    this.sock = net.connect(port, '127.0.0.1');
    this.sock.on('data', (d: Buffer) => { this.buf = Buffer.concat([this.buf, d]); this.wake(); });
    this.sock.on('close', () => { this.closed = true; this.wake(); });
    this.sock.on('error', () => undefined);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** `n` bytes, or undefined once the server closed the connection. */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.buf.length < n) {
      if (this.closed) return undefined;
      await new Promise<void>((r) => this.waiters.push(r));
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  async waitClosed(): Promise<boolean> {
    while (!this.closed) await new Promise<void>((r) => this.waiters.push(r));
    return true;
  }

  send(b: Buffer): void {
    this.sock.write(b);
  }

  async greeting(): Promise<void> {
    const g = (await this.read(18))!;
    if (g.toString('latin1', 0, 16) !== 'NBDMAGICIHAVEOPT') throw new Error('bad greeting');
    this.send(u32(3)); // fixed newstyle, no zeroes
  }

  option(opt: number, data: Buffer = Buffer.alloc(0), magic = 'IHAVEOPT'): void {
    this.send(Buffer.concat([Buffer.from(magic, 'latin1'), u32(opt), u32(data.length), data]));
  }

  /** One option reply: its type and data. */
  async optReply(): Promise<{ type: number; data: Buffer } | undefined> {
    const h = await this.read(20);
    if (!h) return undefined;
    const data = (await this.read(h.readUInt32BE(16)))!;
    return { type: h.readUInt32BE(12), data };
  }

  /** NBD_OPT_GO for `name`; resolves with the export size, or the error reply type. */
  async go(name: string): Promise<{ size?: number; error?: number }> {
    const n = Buffer.from(name);
    this.option(7, Buffer.concat([u32(n.length), n, Buffer.from([0, 0])]));
    let size: number | undefined;
    for (;;) {
      const r = await this.optReply();
      if (!r) throw new Error('closed during GO');
      if (r.type === 3 && r.data.readUInt16BE(0) === 0) size = Number(r.data.readBigUInt64BE(2));
      else if (r.type === 1) return { size: size! };
      else if (r.type >= 2 ** 31) return { error: r.type };
    }
  }

  request(type: number, offset: number, length: number, cookie = 1, magic = 0x25609513): void {
    const b = Buffer.alloc(28);
    b.writeUInt32BE(magic, 0);
    b.writeUInt16BE(type, 6);
    b.writeBigUInt64BE(BigInt(cookie), 8);
    b.writeBigUInt64BE(BigInt(offset), 16);
    b.writeUInt32BE(length, 24);
    this.send(b);
  }

  /** A simple reply: error and cookie; a read's data after it is left to read(). */
  async simpleReply(): Promise<{ error: number; cookie: number } | undefined> {
    const h = await this.read(16);
    if (!h) return undefined;
    if (h.readUInt32BE(0) !== 0x67446698) throw new Error('not a simple reply');
    return { error: h.readUInt32BE(4), cookie: Number(h.readBigUInt64BE(8)) };
  }
}

/** The chunks of one structured reply, up to the one flagged done. */
async function structuredReply(c: RawClient): Promise<Array<{ type: number; cookie: number; payload: Buffer }>> {
  const out: Array<{ type: number; cookie: number; payload: Buffer }> = [];
  for (;;) {
    const h = await c.read(20);
    if (!h) throw new Error('closed during a structured reply');
    if (h.readUInt32BE(0) !== 0x668e33ef) throw new Error('not a structured reply');
    out.push({ type: h.readUInt16BE(6), cookie: Number(h.readBigUInt64BE(8)), payload: (await c.read(h.readUInt32BE(16)))! });
    if (h.readUInt16BE(4) & 1) return out;
  }
}

/** A reply of OFFSET_DATA / OFFSET_HOLE chunks put together over [offset, offset + length). */
function assemble(chunks: Array<{ type: number; payload: Buffer }>, offset: number, length: number): Buffer {
  const out = Buffer.alloc(length, 0xaa);
  for (const c of chunks) {
    const at = Number(c.payload.readBigUInt64BE(0)) - offset;
    if (c.type === 1) c.payload.copy(out, at, 8);
    else if (c.type === 2) out.fill(0, at, at + c.payload.readUInt32BE(8));
  }
  return out;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

const EINVAL = 22;
const EPERM = 1;

// Serial: the other tests of this file run qemu-img and mke2fs synchronously in this process, which would stall the
// raw clients below past the handshake deadline (a GO closed by the server for a client that was not slow itself).
maybeSerial('nbd: malformed traffic gets NBD errors or a closed connection, never a crash; a good client still reads', async (t) => {
  const { dir, repo } = await setup(t);
  // The handshake deadline is generous: on a loaded machine a client that did send its option must not be timed out.
  const s = await startNbd(t, ['-C', repo, 'vm/bare', 'vm/mbr', '--listen', '127.0.0.1:0', '--handshake-timeout', '5'], 2);
  const size = 48 << 20;
  const ref = path.join(dir, 'ref.raw');
  await vivaOk(t, ['checkout', '-C', repo, 'vm/bare', ref]);
  const refBytes = fs.readFileSync(ref);

  // Bad option magic: hung up.
  const a = new RawClient(s.port);
  await a.greeting();
  a.option(7, Buffer.alloc(6), 'NOTMAGIC');
  t.true(await a.waitClosed());

  // Unknown option, STARTTLS, malformed GO, unknown export: error replies; the connection goes on to a working GO.
  const b = new RawClient(s.port);
  await b.greeting();
  b.option(99);
  t.is((await b.optReply())!.type, 2 ** 31 + 1, 'unknown option: NBD_REP_ERR_UNSUP');
  b.option(5);
  t.is((await b.optReply())!.type, 2 ** 31 + 1, 'STARTTLS: NBD_REP_ERR_UNSUP (the server has no --tls-cert)');
  b.option(7, Buffer.from([0, 0, 0, 200, 1]));
  t.is((await b.optReply())!.type, 2 ** 31 + 3, 'malformed GO: NBD_REP_ERR_INVALID');
  b.option(3, Buffer.from('x'));
  t.is((await b.optReply())!.type, 2 ** 31 + 3, 'LIST with data: NBD_REP_ERR_INVALID');
  t.deepEqual(await b.go('vm/nope'), { error: 2 ** 31 + 6 });
  t.deepEqual(await b.go('vm/bare'), { size });
  // Read past the end, a 64 MiB read, an unknown command: EINVAL. A write (payload sent), trim, write-zeroes: EPERM.
  b.request(0, size - 512, 1024, 11);
  t.deepEqual(await b.simpleReply(), { error: EINVAL, cookie: 11 });
  b.request(0, 2 ** 62, 512, 12);
  t.deepEqual(await b.simpleReply(), { error: EINVAL, cookie: 12 });
  b.request(0, 0, 64 << 20, 13);
  t.deepEqual(await b.simpleReply(), { error: EINVAL, cookie: 13 });
  b.request(42, 0, 512, 14);
  t.deepEqual(await b.simpleReply(), { error: EINVAL, cookie: 14 });
  b.request(1, 0, 4096, 15);
  b.send(Buffer.alloc(4096, 0xee));
  t.deepEqual(await b.simpleReply(), { error: EPERM, cookie: 15 });
  b.request(4, 0, 4096, 16);
  t.deepEqual(await b.simpleReply(), { error: EPERM, cookie: 16 });
  b.request(6, 0, 4096, 17);
  t.deepEqual(await b.simpleReply(), { error: EPERM, cookie: 17 });
  b.request(7, 0, 4096, 18);
  t.deepEqual(await b.simpleReply(), { error: EINVAL, cookie: 18 }, 'block status without a meta context');
  b.request(3, 0, 0, 19);
  t.deepEqual(await b.simpleReply(), { error: 0, cookie: 19 }, 'flush is a no-op');
  // Still in step: a read returns the checkout's bytes.
  b.request(0, 1024, 4096, 20);
  t.deepEqual(await b.simpleReply(), { error: 0, cookie: 20 });
  t.deepEqual(await b.read(4096), refBytes.subarray(1024, 1024 + 4096));
  // Bad request magic: hung up.
  b.request(0, 0, 512, 21, 0x12345678);
  t.true(await b.waitClosed());

  // Old-style EXPORT_NAME for a name that does not exist: hung up (the option has no error reply).
  const c = new RawClient(s.port);
  await c.greeting();
  c.option(1, Buffer.from('vm/nope\n2026-01-01T00:00:00Z forged line'));
  t.true(await c.waitClosed());

  // A client that disconnects mid-request, one that sends half an option, and one that sends nothing at all.
  const d = new RawClient(s.port);
  await d.greeting();
  t.deepEqual(await d.go(''), { size });
  d.send(Buffer.alloc(10, 0x25));
  d.sock.end();
  const e = new RawClient(s.port);
  await e.greeting();
  e.send(Buffer.from('IHAVE'));
  e.sock.end();
  const f = new RawClient(s.port);
  t.true(await f.waitClosed(), 'a silent client is dropped after --handshake-timeout');

  // A write announcing more than 32 MiB: EINVAL, then the connection is closed (its payload cannot be trusted).
  const g = new RawClient(s.port);
  await g.greeting();
  await g.go('vm/mbr');
  g.request(1, 0, 0xffffffff, 30);
  t.deepEqual(await g.simpleReply(), { error: EINVAL, cookie: 30 });
  t.true(await g.waitClosed());

  // And the server still serves a real client.
  t.deepEqual(qemuRead(s.port, 'vm/bare', 40 << 20, 512), refBytes.subarray(40 << 20, (40 << 20) + 512));
  const log = s.log();
  t.regex(log, /bad option magic/);
  t.regex(log, /bad request magic 0x12345678/);
  t.regex(log, /unknown export 'vm\/nope\?2026-01-01T00:00:00Z forged line'/, 'a control character in a name cannot start a log line');
  t.regex(log, /in the middle of a message/);
  t.regex(log, /handshake timed out after 5s/);
  t.regex(log, /write of 4294967295 bytes refused/);
  t.is(s.child.exitCode, null, 'the server is still running');
});

maybe('nbd: --name renames an export; a Unix socket; a non-loopback address warns; bad arguments', async (t) => {
  const { dir, repo } = await setup(t);
  // --size is for directory commits: a disk is served at its own size.
  const sized = await viva(['nbd', '-C', repo, 'vm/bare', '--size', '1G', '--listen', '127.0.0.1:0']);
  t.is(sized.code, EXIT.USAGE);
  t.regex(sized.stderr, /^error: --size sizes the disk built for a directory commit: 'vm\/bare' is a disk commit/m);
  const two = await viva(['nbd', '-C', repo, 'vm/bare', 'vm/mbr', '--name', 'x', '--listen', '127.0.0.1:0']);
  t.is(two.code, EXIT.USAGE);
  const missing = await viva(['nbd', '-C', repo, 'vm/none', '--listen', '127.0.0.1:0']);
  t.is(missing.code, EXIT.NOT_FOUND);

  const sock = path.join(dir, 'nbd.sock');
  const u = await startNbd(t, ['-C', repo, 'vm/bare', '--socket', sock, '--name', 'web'], 1);
  t.deepEqual(u.uris, [`nbd+unix:///web?socket=${sock}`]);
  t.is(JSON.parse(run('qemu-img', ['info', '--output=json', u.uris[0]!]))['virtual-size'], 48 << 20);
  u.child.kill('SIGINT');
  t.is((await finished(u.child)).code, 0);
  t.false(fs.existsSync(sock), 'the socket is removed on exit');

  const w = await startNbd(t, ['-C', repo, 'vm/bare', '--listen', '0.0.0.0:0'], 1);
  t.regex(w.log(), /^warning: listening on '0\.0\.0\.0:0', beyond loopback: NBD has no authentication/m);
  const busy = await viva(['nbd', '-C', repo, 'vm/bare', '--listen', `127.0.0.1:${w.port}`]);
  t.is(busy.code, EXIT.USAGE);
  t.regex(busy.stderr, /^error: cannot listen on --listen '127\.0\.0\.1:\d+': /m);
  w.child.kill('SIGTERM');
  const end = await finished(w.child);
  t.is(end.code, 0, `exit ${end.code} ${end.signal}: ${w.log()}`);
});

maybe('nbd: random reads across run boundaries match checkout (simple and structured replies); holes, block status and errors as structured chunks', async (t) => {
  const { dir, repo } = await setup(t);
  const s = await startNbd(t, ['-C', repo, 'vm/derived', 'vm/mbr', '--listen', '127.0.0.1:0'], 2);
  for (const name of ['vm/derived', 'vm/mbr']) {
    const ref = path.join(dir, `${name.replace('/', '-')}.raw`);
    await vivaOk(t, ['checkout', '-C', repo, name, ref]);
    const bytes = fs.readFileSync(ref);
    const simple = new RawClient(s.port);
    await simple.greeting();
    t.deepEqual(await simple.go(name), { size: bytes.length });
    const structured = new RawClient(s.port);
    await structured.greeting();
    structured.option(8);
    t.is((await structured.optReply())!.type, 1);
    const q = Buffer.from('base:allocation');
    const n = Buffer.from(name);
    structured.option(10, Buffer.concat([u32(n.length), n, u32(1), u32(q.length), q]));
    const ctx = (await structured.optReply())!;
    t.is(ctx.type, 4);
    t.is(ctx.data.subarray(4).toString(), 'base:allocation');
    t.is((await structured.optReply())!.type, 1);
    t.deepEqual(await structured.go(name), { size: bytes.length });
    // Deterministic pseudo-random reads: many short ones (inside and across runs) and some long ones (across holes).
    let seed = 7;
    const rnd = (m: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % m; };
    for (let i = 0; i < 150; i++) {
      const length = i % 10 === 0 ? 1 + rnd(4 << 20) : 1 + rnd(70_000);
      const offset = rnd(bytes.length - length);
      simple.request(0, offset, length, i);
      t.deepEqual(await simple.simpleReply(), { error: 0, cookie: i });
      const got = await simple.read(length);
      structured.request(0, offset, length, i);
      const chunks = await structuredReply(structured);
      if (!got!.equals(bytes.subarray(offset, offset + length)) || !assemble(chunks, offset, length).equals(bytes.subarray(offset, offset + length))) {
        t.fail(`${name}: read of ${length} bytes at ${offset} differs from the checkout`);
        return;
      }
    }
    // A whole-disk-sized stretch of the sparse MBR disk: holes come as OFFSET_HOLE chunks.
    structured.request(0, 20 << 20, 8 << 20, 500);
    const sparse = await structuredReply(structured);
    t.true(sparse.some((c) => c.type === 2), `${name}: a hole chunk`);
    t.true(assemble(sparse, 20 << 20, 8 << 20).equals(bytes.subarray(20 << 20, 28 << 20)));
    // Block status covers the range asked, hole+zero only where the checkout has zeros.
    structured.request(7, 0, 16 << 20, 501);
    const [bs] = await structuredReply(structured);
    t.is(bs!.type, 5);
    let at = 0;
    for (let i = 4; i < bs!.payload.length; i += 8) {
      const len = bs!.payload.readUInt32BE(i);
      if (bs!.payload.readUInt32BE(i + 4) === 3) t.true(bytes.subarray(at, at + len).equals(Buffer.alloc(len)), `${name}: hole at ${at} is zeros`);
      at += len;
    }
    t.is(at, 16 << 20);
    // Errors are ERROR chunks: EINVAL past the end.
    structured.request(0, bytes.length - 10, 20, 502);
    const [err] = await structuredReply(structured);
    t.is(err!.type, 2 ** 15 + 1);
    t.is(err!.payload.readUInt32BE(0), EINVAL);
    simple.request(2, 0, 0);
    structured.request(2, 0, 0);
    t.true(await simple.waitClosed());
    t.true(await structured.waitClosed());
  }
});

maybe('nbd: a damaged chunk fails the reads that touch it with EIO, names the chunk in the log, and the server goes on', async (t) => {
  const { dir, repo } = await setup(t);
  const ref = path.join(dir, 'ref.raw');
  await vivaOk(t, ['checkout', '-C', repo, 'vm/bare', ref]);
  let chunk = '';
  const r = Repository.open(repo, 'write');
  try {
    const rec = readBlobRecord(r.objects, resolveSpec(r, 'vm/bare:random.bin').entry.oid!);
    if (rec.form !== 'chunked') throw new Error('random.bin is not chunked');
    const seg = rec.segments.find((x) => x.kind === 'chunk')!;
    if (seg.kind !== 'chunk') throw new Error('no chunk');
    chunk = seg.oid;
    const data = Buffer.from(r.objects.readObject('chunk', chunk));
    data[1000]! ^= 1;
    lmdb(r).putStoredUnchecked('chunk', chunk, encodeStored(data));
  } finally {
    await r.close();
  }
  const s = await startNbd(t, ['-C', repo, 'vm/bare', '--listen', '127.0.0.1:0'], 1);
  const bad = await new Promise<number | null>((resolve) => {
    execFile('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', s.uris[0]!, path.join(dir, 'out.raw')], (e) => resolve(e ? (e.code as number) : 0));
  });
  t.not(bad, 0, 'the copy fails');
  // The connection's line is written when the server sees it close, which may come after qemu-img has exited.
  const line = new RegExp(`\\d+ failed, first: chunk '${chunk}' does not match its id`);
  for (let i = 0; i < 100 && !line.test(s.log()); i++) await new Promise((r2) => setTimeout(r2, 100));
  t.regex(s.log(), line);
  t.deepEqual(qemuRead(s.port, 'vm/bare', 1024, 512), fs.readFileSync(ref).subarray(1024, 1536), 'other reads still work');
  t.is(s.child.exitCode, null);
});

/** The file `name` in partition 1 of the GPT disk `image` (debugfs on a copy of the partition). */
function catInPartition1(dir: string, image: string, name: string): Buffer {
  const p1 = JSON.parse(run('sfdisk', ['--json', image])).partitiontable.partitions[0];
  const part = path.join(dir, `p1-${path.basename(image)}`);
  run('dd', [`if=${image}`, `of=${part}`, 'bs=512', `skip=${p1.start}`, `count=${p1.size}`, 'status=none']);
  run('e2fsck', ['-fn', part]);
  return execFileSync('debugfs', ['-R', `cat ${name}`, part], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 });
}

maybe('nbd: a directory and a tar commit are served as a disk built once from the tree (GPT + ext4), kept for the next server, dropped by gc with the tree', async (t) => {
  const dir = tmpDir(t);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'etc/hostname'), 'from-a-tree\n');
  const big = crypto.randomBytes(6 << 20);
  fs.writeFileSync(path.join(tree, 'big.bin'), big);
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', '-C', repo, tree, '-b', 'files', '-m', 'files']);
  const tar = path.join(dir, 'tree.tar');
  run('tar', ['-C', tree, '-cf', tar, '.']);
  await vivaOk(t, ['commit', '-C', repo, tar, '-b', 'tarred', '-m', 'tar']);
  const before = (await vivaJson(t, ['stats', '-C', repo])).totalStoredBytes as number;

  const sock = path.join(dir, 'nbd.sock');
  const first = await startNbd(t, ['-C', repo, 'files', 'tarred', '--socket', sock], 2);
  t.regex(first.log(), /^'files' is a directory commit: finding or building its disk\.\.\.\nbuilt a disk for 'files'/m);
  const out = path.join(dir, 'files.raw');
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', first.uris[0]!, out]);
  t.is(JSON.parse(run('sfdisk', ['--json', out])).partitiontable.label, 'gpt');
  t.is(catInPartition1(dir, out, 'etc/hostname').toString(), 'from-a-tree\n');
  t.true(catInPartition1(dir, out, 'big.bin').equals(big));
  // The tar commit (its own tree: the tar's root entry has other metadata): its own disk, the same files.
  const outTar = path.join(dir, 'tarred.raw');
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', first.uris[1]!, outTar]);
  t.true(catInPartition1(dir, outTar, 'big.bin').equals(big));
  first.child.kill('SIGTERM');
  await finished(first.child);
  // File contents are the tree's own blobs: the built disk costs its metadata, not another copy of big.bin.
  const after = (await vivaJson(t, ['stats', '-C', repo])).totalStoredBytes as number;
  t.true(after - before < 2 << 20, `stored ${after - before} bytes for the built disk`);
  // The next server finds it: nothing built, the same bytes.
  const second = await startNbd(t, ['-C', repo, 'files', '--socket', sock], 1);
  t.notRegex(second.log(), /built a disk/);
  const again = path.join(dir, 'again.raw');
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', second.uris[0]!, again]);
  t.true(fs.readFileSync(again).equals(fs.readFileSync(out)));
  second.child.kill('SIGTERM');
  await finished(second.child);
  // fsck counts it as reachable, gc keeps it while the tree is reachable and drops it with the tree.
  await vivaOk(t, ['fsck', '-C', repo]);
  t.regex((await vivaOk(t, ['gc', '-C', repo])).stdout, /^removed 0 objects/);
  await vivaOk(t, ['branch', '-C', repo, '-d', '-f', 'files']);
  await vivaOk(t, ['branch', '-C', repo, '-d', '-f', 'tarred']);
  const gc = await vivaOk(t, ['gc', '-C', repo]);
  t.regex(gc.stdout, /^removed [1-9]\d* objects, kept 0:/m);
  await vivaOk(t, ['fsck', '-C', repo]);
  // --size: a disk of that size (a size the tree does not fit is the checkout's error, exit 16 with mke2fs's words).
  await vivaOk(t, ['commit', '-C', repo, tree, '-b', 'files', '-m', 'again']);
  const sized = await startNbd(t, ['-C', repo, 'files', '--size', '96M', '--socket', sock], 1);
  t.is(JSON.parse(run('qemu-img', ['info', '--output=json', sized.uris[0]!]))['virtual-size'], 96 << 20);
  sized.child.kill('SIGTERM');
  await finished(sized.child);
  const tooSmall = await viva(['nbd', '-C', repo, 'files', '--size', '4M', '--socket', sock]);
  t.not(tooSmall.code, 0);
  t.regex(tooSmall.stderr, /^error: /m);
  t.notRegex(tooSmall.stderr, /\n\s+at /);
});

maybe('nbd: the blocks read first are kept as the disk\'s read profile, in order; a short session keeps it; a damaged profile is ignored', async (t) => {
  const { dir, repo } = await setup(t);
  const sock = path.join(dir, 'nbd.sock');
  const uri = `nbd+unix:///vm/bare?socket=${sock}`;
  const disk = JSON.parse((await vivaOk(t, ['show', '-C', repo, 'vm/bare', '--json'])).stdout).root as string;
  const profile = path.join(repo, '.viva/nbd-profiles', disk);
  const serveAndRead = async (reads: string[]) => {
    const s = await startNbd(t, ['-C', repo, 'vm/bare', '--socket', sock], 1);
    run('qemu-io', ['-r', '-f', 'raw', ...reads.flatMap((r) => ['-c', r]), uri]);
    s.child.kill('SIGTERM');
    t.is((await finished(s.child)).code, 0);
  };
  // 2 MiB at 8 MiB, then 1 MiB at 1 MiB: 48 blocks of 64 KiB in that order.
  await serveAndRead(['read 8M 2M', 'read 1M 1M']);
  const p = JSON.parse(fs.readFileSync(profile, 'utf8'));
  t.like(p, { version: 1, blockSize: 65536 });
  t.deepEqual(p.blocks, [...Array.from({ length: 32 }, (_, i) => 128 + i), ...Array.from({ length: 16 }, (_, i) => 16 + i)]);
  // A probe (one small read) leaves the profile of the last real session.
  await serveAndRead(['read 0 4096']);
  t.deepEqual(JSON.parse(fs.readFileSync(profile, 'utf8')).blocks, p.blocks);
  // A damaged profile (garbage, out-of-range blocks) is a hint only: the server starts and reads right.
  fs.writeFileSync(profile, '{"version":1,"blockSize":65536,"blocks":[1e12,-1,"x",3]}');
  const ref = path.join(dir, 'ref.raw');
  await vivaOk(t, ['checkout', '-C', repo, 'vm/bare', ref]);
  const s = await startNbd(t, ['-C', repo, 'vm/bare', '--socket', sock], 1);
  const out = path.join(dir, 'out.raw');
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', uri, out]);
  t.true(fs.readFileSync(out).equals(fs.readFileSync(ref)));
  fs.writeFileSync(profile, 'not json');
  s.child.kill('SIGTERM');
  await finished(s.child);
  // The whole-disk read (its data blocks: qemu-img skips the holes block status reports) became the profile.
  const whole = JSON.parse(fs.readFileSync(profile, 'utf8')).blocks as number[];
  t.true(whole.length >= 16 && whole.length <= 512, String(whole.length));
  t.deepEqual(whole, [...whole].sort((a, b) => a - b), 'a sequential read: ascending blocks');
});

/** A CA and a server certificate for 127.0.0.1 made with openssl: `dir` holds server-*.pem, `dir/client` the CA for qemu. */
function makeCerts(dir: string, name = 'ca'): { cert: string; key: string; clientDir: string } {
  fs.mkdirSync(path.join(dir, 'client'), { recursive: true });
  const p = (f: string) => path.join(dir, f);
  run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca-key.pem'), '-out', p('ca-cert.pem'), '-days', '2', '-subj', `/CN=viva test ${name}`]);
  run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('server-key.pem'), '-out', p('server.csr'), '-subj', '/CN=localhost']);
  fs.writeFileSync(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n');
  run('openssl', ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca-cert.pem'), '-CAkey', p('ca-key.pem'), '-CAcreateserial', '-out', p('server-cert.pem'), '-days', '2', '-extfile', p('ext.cnf')]);
  fs.copyFileSync(p('ca-cert.pem'), path.join(dir, 'client/ca-cert.pem'));
  return { cert: p('server-cert.pem'), key: p('server-key.pem'), clientDir: path.join(dir, 'client') };
}

const haveOpenssl = (() => { try { execFileSync('openssl', ['version'], { stdio: 'ignore' }); return true; } catch { return false; } })();

(have && haveOpenssl ? test : test.skip)('nbd --tls-cert/--tls-key: TLS is required (STARTTLS), qemu reads byte-identical through it; clear-text and wrong-CA clients are refused; bad files are clean errors', async (t) => {
  const { dir, repo } = await setup(t);
  const certs = makeCerts(path.join(dir, 'pki'));
  const other = makeCerts(path.join(dir, 'other-pki'), 'other');
  const s = await startNbd(t, ['-C', repo, 'vm/bare', '--listen', '127.0.0.1:0', '--tls-cert', certs.cert, '--tls-key', certs.key], 1);
  t.regex(s.uris[0]!, /^nbds:\/\/127\.0\.0\.1:\d+\/vm\/bare$/);
  const opts = (clientDir: string) => ['--object', `tls-creds-x509,id=tls0,endpoint=client,dir=${clientDir}`, '--image-opts', `driver=nbd,host=127.0.0.1,port=${s.port},export=vm/bare,tls-creds=tls0`];
  const out = path.join(dir, 'tls.raw');
  run('qemu-img', ['convert', ...opts(certs.clientDir), '-O', 'raw', out]);
  const ref = path.join(dir, 'ref.raw');
  await vivaOk(t, ['checkout', '-C', repo, 'vm/bare', ref]);
  t.true(fs.readFileSync(out).equals(fs.readFileSync(ref)));
  // In clear text: NBD_REP_ERR_TLS_REQD, which qemu reports as "TLS negotiation required".
  const clear = t.throws(() => run('qemu-img', ['info', '-f', 'raw', `nbd://127.0.0.1:${s.port}/vm/bare`]));
  t.regex(String((clear as { stderr?: string }).stderr), /TLS negotiation required/);
  // A client that trusts another CA: the handshake fails on its side, the server logs it and goes on.
  t.throws(() => run('qemu-img', ['info', ...opts(other.clientDir)]));
  t.regex(run('qemu-img', ['info', ...opts(certs.clientDir)]), /virtual size: 48 MiB/);
  for (let i = 0; i < 50 && (s.log().match(/ tls 'vm\/bare'/g) ?? []).length < 2; i++) await new Promise((r) => setTimeout(r, 100));
  t.regex(s.log(), / tls 'vm\/bare' \d+ requests \d+ bytes read/);
  t.is(s.child.exitCode, null);
  // A missing file names it (exit 14); a key that is not the certificate's is a usage error.
  const missing = await viva(['nbd', '-C', repo, 'vm/bare', '--listen', '127.0.0.1:0', '--tls-cert', path.join(dir, 'nope.pem'), '--tls-key', certs.key]);
  t.is(missing.code, EXIT.SOURCE_UNREADABLE);
  t.regex(missing.stderr, /nope\.pem/);
  const mismatch = await viva(['nbd', '-C', repo, 'vm/bare', '--listen', '127.0.0.1:0', '--tls-cert', certs.cert, '--tls-key', path.join(dir, 'other-pki/server-key.pem')]);
  t.is(mismatch.code, EXIT.USAGE);
  t.regex(mismatch.stderr, /are not a matching PEM certificate and key/);
  t.is((await viva(['nbd', '-C', repo, 'vm/bare', '--tls-cert', certs.cert])).code, EXIT.USAGE, '--tls-cert needs --tls-key');
});
