/** viva serve and HTTP remotes, against real servers on 127.0.0.1: clone, fetch, push with tokens, refusals, garbage both ways. */
import test from 'ava';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { serve } from '../../src/sync/server.js';
import { HttpPeer } from '../../src/sync/http-peer.js';
import { decodeFrames, encodeFrame, END_FRAME } from '../../src/sync/wire.js';
import { decodeStored, encodeStored } from '../../src/store/object-store.js';
import { decodeBlob } from '../../src/model/blob.js';
import type { StoredObject } from '../../src/sync/peer.js';
import { addRemote, clone, fetch, lsRemote, parsePushSpec, push } from '../../src/ops/sync.js';
import { fsck } from '../../src/ops/fsck.js';
import { Repository } from '../../src/store/repository.js';
import { RefConflictError, RemoteError } from '../../src/errors.js';
import { commitAt, randomBytes, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';
import { setFaults } from '../../src/store/faults.js';

async function library(t: import('ava').ExecutionContext, options: { allowPush?: boolean } = {}) {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  writeTree(src, { usr: { big: randomBytes(400_000, 'lib') }, etc: { hostname: 'lib\n' } });
  const lib = tmpRepo(t);
  await commitAt(lib.repo, src, { branch: 'debian/base' });
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, 's3cret-token\n');
  const lines: string[] = [];
  const server = await serve(lib.repo, { listen: '127.0.0.1:0', ...(options.allowPush ? { allowPush: true, tokenFile } : {}), log: (l) => lines.push(l) });
  t.teardown(() => server.close());
  return { dir, src, lib: lib.repo, url: server.url, tokenFile, lines };
}

test('http: clone, ls-remote and a fetch with nothing new; every request is logged', async (t) => {
  const { dir, url, lib, lines } = await library(t);
  const c = await clone(url, path.join(dir, 'c'));
  t.is(c.branch, 'debian/base');
  const repo = Repository.open(path.join(dir, 'c'), 'write');
  t.teardown(() => repo.close());
  t.is(repo.refs.resolve('refs/heads/debian/base')?.oid, lib.refs.resolve('refs/heads/debian/base')?.oid);
  t.deepEqual((await fsck(repo)).problems, []);
  const again = await fetch(repo, 'origin');
  t.is(again.objects, 0);
  t.is(again.queries, 1);
  const ls = await lsRemote(undefined, url);
  t.is(ls.head, 'refs/heads/debian/base');
  t.true(lines.some((l) => / GET \/v1\/refs 200 /.test(l)));
  t.true(lines.some((l) => / POST \/v1\/objects 200 /.test(l)));
});

test('http: push needs the token; wrong or missing tokens and read-only servers are refused, the repository unchanged', async (t) => {
  const { dir, src, url, lib, tokenFile } = await library(t, { allowPush: true });
  await clone(url, path.join(dir, 'w'));
  const w = Repository.open(path.join(dir, 'w'), 'write');
  t.teardown(() => w.close());
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'changed\n');
  await commitAt(w, src, { branch: 'debian/base', tick: 1 });
  const before = lib.refs.resolve('refs/heads/debian/base')?.oid;
  const e1 = await t.throwsAsync(push(w, 'origin', [{ src: 'debian/base', dst: 'debian/base' }]), { instanceOf: RemoteError });
  t.regex(e1!.message, /HTTP 401/);
  const wrong = path.join(dir, 'wrong');
  fs.writeFileSync(wrong, 'nope\n');
  const e2 = await t.throwsAsync(push(w, 'origin', [{ src: 'debian/base', dst: 'debian/base' }], { tokenFile: wrong }), { instanceOf: RemoteError });
  t.regex(e2!.message, /HTTP 403: wrong token/);
  t.is(lib.refs.resolve('refs/heads/debian/base')?.oid, before);
  const ok = await push(w, 'origin', [{ src: 'debian/base', dst: 'debian/base' }], { tokenFile });
  t.is(ok.objects, 4);
  const fresh = Repository.open(lib.root, 'read');
  t.is(fresh.refs.resolve('refs/heads/debian/base')?.oid, w.refs.resolve('refs/heads/debian/base')?.oid);
  t.deepEqual((await fsck(fresh)).problems, []);
  await fresh.close();
  // A read-only server refuses pushes whatever the token.
  const ro = await library(t);
  addRemote(w, 'ro', ro.url);
  const e3 = await t.throwsAsync(push(w, 'ro', [{ src: 'debian/base', dst: 'x' }], { tokenFile: ro.tokenFile }), { instanceOf: RemoteError });
  t.regex(e3!.message, /HTTP 403: this server is read-only/);
});

test('http: a concurrent push loses the compare-and-swap', async (t) => {
  const { dir, src, url, tokenFile } = await library(t, { allowPush: true });
  await clone(url, path.join(dir, 'a'));
  await clone(url, path.join(dir, 'b'));
  const a = Repository.open(path.join(dir, 'a'), 'write');
  const b = Repository.open(path.join(dir, 'b'), 'write');
  t.teardown(async () => { await a.close(); await b.close(); });
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'a\n');
  await commitAt(a, src, { branch: 'debian/base', tick: 1 });
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'b\n');
  await commitAt(b, src, { branch: 'debian/base', tick: 2 });
  // b lists the remote, then a pushes first: b's (forced) update still names the old value and fails.
  const peer = new HttpPeer(url, 's3cret-token');
  const listed = (await peer.listRefs()).refs.find((r) => r.ref === 'refs/heads/debian/base')!.oid;
  await push(a, 'origin', [{ src: 'debian/base', dst: 'debian/base' }], { tokenFile });
  const bTip = b.refs.resolve('refs/heads/debian/base')?.oid!;
  const { LocalPeer } = await import('../../src/sync/peer.js');
  const { planTransfer } = await import('../../src/sync/transfer.js');
  const local = new LocalPeer(b);
  const plan = await planTransfer(local, (ids) => peer.has(ids), [bTip]);
  await peer.write(local.read(plan.objects));
  await t.throwsAsync(peer.updateRefs([{ ref: 'refs/heads/debian/base', newOid: bTip, expectedOld: listed }], 'b <b@x>'), { instanceOf: RefConflictError });
});

test('http: garbage requests get a 4xx and the server keeps serving', async (t) => {
  const { url } = await library(t, { allowPush: true });
  const req = async (method: string, p: string, body?: Buffer | string, headers: Record<string, string> = {}) => {
    const r = await globalThis.fetch(new URL(p, url), { method, ...(body !== undefined ? { body: typeof body === 'string' ? body : new Uint8Array(body) } : {}), headers });
    return r.status;
  };
  t.is(await req('POST', 'v1/has', Buffer.from('short')), 400);
  t.is(await req('POST', 'v1/has', Buffer.alloc(33, 9)), 400);
  t.is(await req('POST', 'v1/objects', Buffer.concat([Buffer.from([1]), Buffer.alloc(32, 7)])), 404);
  t.is(await req('GET', '../../etc/passwd'), 404);
  t.is(await req('GET', 'v1/refs/../../x'), 404);
  t.is(await req('POST', 'v1/update-refs', '{not json', { authorization: 'Bearer s3cret-token' }), 400);
  t.is(await req('POST', 'v1/update-refs', JSON.stringify({ updates: [{ ref: 'refs/heads/../x', newOid: 'ab'.repeat(32) }] }), { authorization: 'Bearer s3cret-token' }), 400);
  t.is(await req('POST', 'v1/receive', Buffer.from('garbage garbage garbage garbage garbage garbage'), { authorization: 'Bearer s3cret-token' }), 400);
  // A pushed object whose bytes do not match its id is refused (422) and not stored.
  const fake = encodeFrame({ kind: 'chunk', oid: 'cd'.repeat(32), stored: Buffer.from([0, 1, 2, 3]) });
  t.is(await req('POST', 'v1/receive', Buffer.concat([fake, END_FRAME]), { authorization: 'Bearer s3cret-token' }), 422);
  t.is(await req('GET', 'v1/refs'), 200, 'still serving');
});

test('http: a server that sends wrong objects, cut streams or garbage gets a clear error; nothing is referenced', async (t) => {
  const { url } = await library(t);
  const real = new HttpPeer(url);
  const refs = await real.listRefs();
  // A proxy that tampers with the object stream in one of three ways.
  for (const mode of ['flip', 'cut', 'garbage', 'badref'] as const) {
    const proxy = http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const upstream = await globalThis.fetch(new URL(req.url!, url), { method: req.method!, ...(chunks.length ? { body: Buffer.concat(chunks) } : {}) });
      let body: Buffer = Buffer.from(await upstream.arrayBuffer());
      if (req.url === '/v1/refs' && mode === 'badref') body = Buffer.from(JSON.stringify({ refs: [{ ref: 'refs/heads/../../evil', oid: refs.refs[0]!.oid }] }));
      if (req.url === '/v1/objects') {
        if (mode === 'flip') body[body.length - 40] ^= 0xff;
        if (mode === 'cut') body = body.subarray(0, body.length - 100);
        if (mode === 'garbage') body = Buffer.from('<html>surprise</html>');
      }
      res.writeHead(upstream.status);
      res.end(body);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    const purl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/`;
    const dir = tmpDir(t);
    const repo = Repository.init(path.join(dir, 'r'));
    const e = await t.throwsAsync(fetch(repo, purl));
    t.truthy(e, mode);
    t.notRegex(e!.message, /^\s+at /m, mode);
    t.deepEqual(repo.refs.list('refs/'), [], `${mode}: no ref moved`);
    await repo.close();
    await new Promise<void>((r) => proxy.close(() => r()));
  }
});

/** Re-encodes an object stream with `edit` applied to each object's decoded bytes (the edit returns undefined to keep them). */
async function editObjects(body: Buffer, edit: (o: StoredObject, raw: Buffer) => Buffer | undefined): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const o of decodeFrames((async function* () { yield body; })())) {
    const changed = edit(o, decodeStored(o.stored));
    out.push(encodeFrame(changed ? { ...o, stored: encodeStored(changed) } : o));
  }
  return Buffer.concat([...out, END_FRAME]);
}

test('http: a blob or chunk the server sends that fails verification is the remote\'s bad data (RemoteError, exit 17) naming the object, not local damage', async (t) => {
  const { url } = await library(t);
  const isInline = (o: StoredObject, raw: Buffer) => { try { return o.kind === 'blob' && decodeBlob(raw).form === 'inline'; } catch { return false; } };
  for (const mode of ['blob', 'chunk'] as const) {
    const damaged = new Set<string>();
    const proxy = http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const upstream = await globalThis.fetch(new URL(req.url!, url), { method: req.method!, ...(chunks.length ? { body: Buffer.concat(chunks) } : {}) });
      let body: Buffer = Buffer.from(await upstream.arrayBuffer());
      if (req.url === '/v1/objects' && upstream.status === 200) {
        // The same change every time the object is sent: the blob record still decodes (its content changed), a
        // chunk's bytes no longer hash to its id.
        body = await editObjects(body, (o, raw) => {
          if (!(mode === 'blob' ? isInline(o, raw) : o.kind === 'chunk')) return undefined;
          damaged.add(o.oid);
          const copy = Buffer.from(raw);
          copy[copy.length - 1] ^= 0x01;
          return copy;
        });
      }
      res.writeHead(upstream.status);
      res.end(body);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    t.teardown(() => new Promise<void>((r) => proxy.close(() => r())));
    const purl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/`;
    const dir = tmpDir(t);
    const repo = Repository.init(path.join(dir, 'r'));
    const e = await t.throwsAsync(fetch(repo, purl), { instanceOf: RemoteError }, mode);
    const m = new RegExp(`^${purl.replace(/[.]/g, '\\.')}: ${mode} '([0-9a-f]{64})' content does not match its id \\(the remote sent bad data\\)$`).exec(e!.message);
    t.truthy(m, e!.message);
    t.true(damaged.has(m![1]!), mode);
    t.deepEqual(repo.refs.list('refs/'), [], `${mode}: no ref moved`);
    t.false(repo.objects.hasObject(mode, m![1]!), `${mode}: the bad object is not stored`);
    await repo.close();
    // A clone says the same, and leaves nothing behind.
    const ce = await t.throwsAsync(clone(purl, path.join(dir, 'c')), { instanceOf: RemoteError }, mode);
    t.regex(ce!.message, /\(the remote sent bad data\)$/);
    t.false(fs.existsSync(path.join(dir, 'c')));
  }
});

test.serial('http: a server that stalls (headers, then silence) or never answers gets a clear timeout error', async (t) => {
  for (const mode of ['silent-body', 'no-answer'] as const) {
    const stall = http.createServer((req, res) => {
      if (req.url === '/v1/refs') { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ refs: [{ ref: 'refs/heads/x', oid: 'ab'.repeat(32) }] })); return; }
      if (req.url === '/v1/has') { res.writeHead(200); res.end(Buffer.from([0])); return; }
      if (mode === 'silent-body') res.writeHead(200); // then nothing, forever
    });
    await new Promise<void>((r) => stall.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(stall.address() as AddressInfo).port}/`;
    const dir = tmpDir(t);
    const repo = Repository.init(path.join(dir, 'r'));
    process.env.VIVA_HTTP_TIMEOUT = '1';
    try {
      const e = await t.throwsAsync(fetch(repo, url), { instanceOf: RemoteError });
      t.regex(e!.message, /no (data|answer) for 1 s/, mode);
      t.deepEqual(repo.refs.list('refs/'), []);
    } finally {
      delete process.env.VIVA_HTTP_TIMEOUT;
      await repo.close();
      stall.closeAllConnections();
      await new Promise<void>((r) => stall.close(() => r()));
    }
  }
});

test('http: a tag pushed or fetched by its short name stays a tag', async (t) => {
  const { dir, src, url, lib, tokenFile } = await library(t, { allowPush: true });
  await clone(url, path.join(dir, 'w'));
  const w = Repository.open(path.join(dir, 'w'), 'write');
  t.teardown(() => w.close());
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'tagged\n');
  const c = await commitAt(w, src, { branch: 'debian/base', tick: 1 });
  await w.refs.update([{ ref: 'refs/tags/v1', newOid: c.commit, message: 'test' }], 'Test <t@x>');
  const r = await push(w, 'origin', [parsePushSpec('v1')], { tokenFile });
  t.deepEqual(r.updated.map((u) => u.ref), ['refs/tags/v1']);
  const ls = await lsRemote(undefined, url);
  t.deepEqual(ls.refs.map((x) => x.ref).sort(), ['refs/heads/debian/base', 'refs/tags/v1']);
  void lib;
  const other = Repository.init(path.join(dir, 'o'));
  t.teardown(() => other.close());
  addRemote(other, 'lib', url);
  const f = await fetch(other, 'lib', ['v1', 'debian/base']);
  t.deepEqual(f.updated.map((u) => u.ref).sort(), ['refs/remotes/lib/debian/base', 'refs/tags/v1']);
  t.is(other.refs.resolve('refs/tags/v1')?.oid, c.commit);
});

test('http: a clone from an unreachable server or cut midway leaves nothing behind; the retry succeeds', async (t) => {
  const { dir, url } = await library(t);
  const target = path.join(dir, 'c');
  const e1 = await t.throwsAsync(clone('http://127.0.0.1:1/', target), { instanceOf: RemoteError });
  t.regex(e1!.message, /cannot connect/);
  t.false(fs.existsSync(target));
  // A proxy that cuts the object stream after some of it went through.
  const proxy = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const upstream = await globalThis.fetch(new URL(req.url!, url), { method: req.method!, ...(chunks.length ? { body: Buffer.concat(chunks) } : {}) });
    const body = Buffer.from(await upstream.arrayBuffer());
    res.writeHead(upstream.status);
    if (req.url === '/v1/objects') { res.write(body.subarray(0, Math.floor(body.length / 2))); res.destroy(); return; }
    res.end(body);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => proxy.close(() => r())));
  const purl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/`;
  const e2 = await t.throwsAsync(clone(purl, target), { instanceOf: RemoteError });
  t.notRegex(e2!.message, /already exists/);
  t.false(fs.existsSync(target));
  const ok = await clone(url, target);
  t.is(ok.branch, 'debian/base');
});

test.serial('http: the server\'s own disk filling up is a 507 for the client (exit 17), without the server\'s paths; nothing referenced', async (t) => {
  const { dir, src, url, lib, tokenFile, lines } = await library(t, { allowPush: true });
  await clone(url, path.join(dir, 'w'));
  const w = Repository.open(path.join(dir, 'w'), 'write');
  t.teardown(() => w.close());
  writeTree(src, { opt: { more: randomBytes(300_000, 'more') } });
  await commitAt(w, src, { branch: 'debian/base', tick: 1 });
  const before = lib.refs.resolve('refs/heads/debian/base')?.oid;
  // Client and server share this process: the first write transaction from here on is the server storing the push.
  setFaults('write:1:ENOSPC');
  try {
    const e = await t.throwsAsync(push(w, 'origin', [{ src: 'debian/base', dst: 'debian/base' }], { tokenFile }), { instanceOf: RemoteError });
    t.is(e!.status, 507);
    t.regex(e!.message, /HTTP 507: the server cannot store the objects/);
    t.false(e!.message.includes(lib.dataDir), 'no server path in the answer');
  } finally {
    setFaults(undefined);
  }
  t.true(lines.some((l) => / 507 .*no space left/.test(l)), 'the server logs the real reason');
  t.is(lib.refs.resolve('refs/heads/debian/base')?.oid, before);
});
