/**
 * Repositories in a bucket through the command line, against Ceph's radosgw (`.ci/ceph up`): init --storage, commits
 * from several "hosts" (processes with their own caches), -C s3://…, clone/push/fetch, and the refusals (exit codes of
 * docs/cli.md): an existing repository (12), no repository (10; as a remote 17), wrong credentials and a missing
 * bucket (17), a tampered pack (15).
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, viva, vivaJson, vivaOk, tmpDir } from '../helpers/cli.js';
import { filePrefix, removePrefix, s3Backend, s3Env, s3Skip, s3Url } from '../helpers/s3.js';
import { writeTree } from '../helpers/repo.js';

const skip = s3Skip();
const root = filePrefix(import.meta.filename);
let n = 0;
const s3 = skip ? (name: string, _f?: unknown) => test.skip(`${name} (${skip})`, () => {}) : (name: string, f: (t: ExecutionContext) => Promise<void>) => test(name, f);
if (!skip) test.after.always(() => removePrefix(root));

/** A "host": its own cache directory, the test server's keys. */
function host(t: ExecutionContext, extra: Record<string, string> = {}) {
  const env = { ...s3Env(), VIVA_CACHE_DIR: tmpDir(t, 'viva-cache-'), ...extra };
  return { env, run: (args: string[], cwd?: string) => viva(args, { env, ...(cwd ? { cwd } : {}) }) };
}

function source(t: ExecutionContext, files: Record<string, string | Buffer>): string {
  const dir = tmpDir(t);
  writeTree(dir, { etc: files, usr: { bin: { tool: Buffer.alloc(70_000, 5) } } });
  return dir;
}

s3('init --storage binds a directory; commits there land in the bucket; another host reads them with -C URL', async (t) => {
  const url = s3Url(`${root}r${n++}`);
  const a = host(t);
  const dir = tmpDir(t);
  const init = await vivaOk(t, ['init', '--storage', url, dir], { env: a.env });
  t.regex(init.stdout, /^Initialized empty viva repository in s3:\/\/viva-ci\/.+ \(cache in .+\/\.viva\)\n$/);
  t.true(fs.existsSync(path.join(dir, '.viva/storage.json')));
  const again = await a.run(['init', '--storage', url, tmpDir(t)]);
  t.is(again.code, 12, again.stderr);
  t.regex(again.stderr, /already exists/);
  const c = await vivaJson(t, ['commit', source(t, { hostname: 'a\n' }), '-b', 'images/base', '-m', 'base'], { env: a.env, cwd: dir });
  const b = host(t);
  const log = await vivaJson<Array<{ id: string; message: string }>>(t, ['-C', url, 'log', 'images/base'], { env: b.env });
  t.deepEqual(log.map((e) => [e.id, e.message]), [[c.commit, 'base']]);
  t.is((await vivaOk(t, ['-C', url, 'cat', 'images/base:etc/hostname'], { env: b.env })).stdout, 'a\n');
  const out = path.join(tmpDir(t), 'co');
  await vivaOk(t, ['-C', url, 'checkout', 'images/base', out], { env: b.env });
  t.deepEqual(fs.readFileSync(path.join(out, 'usr/bin/tool')), Buffer.alloc(70_000, 5));
  t.is((await vivaOk(t, ['-C', url, 'fsck'], { env: b.env })).code, 0);
});

s3('clone from a bucket, push to it as a remote, fetch from it; only missing objects move', async (t) => {
  const url = s3Url(`${root}r${n++}`);
  const a = host(t);
  await vivaOk(t, ['init', '--storage', url], { env: a.env });
  await vivaOk(t, ['-C', url, 'commit', source(t, { hostname: 'base\n' }), '-b', 'main', '-m', 'base'], { env: a.env });
  const local = path.join(tmpDir(t), 'clone');
  await vivaOk(t, ['clone', url, local], { env: a.env });
  const w = await vivaJson(t, ['commit', source(t, { hostname: 'web\n' }), '-b', 'web', '-m', 'web'], { env: a.env, cwd: local });
  const p = await vivaJson<{ objects: number }>(t, ['push', 'origin', 'web'], { env: a.env, cwd: local });
  t.true(p.objects > 0 && p.objects < 10, `only the new objects (${p.objects})`);
  const b = host(t);
  t.is((await vivaOk(t, ['-C', url, 'rev-parse', 'web'], { env: b.env })).stdout.trim(), w.commit);
  await vivaOk(t, ['-C', url, 'commit', source(t, { hostname: 'base2\n' }), '-b', 'main', '-m', 'base2'], { env: b.env });
  const f = await vivaJson<{ updated: Array<{ ref: string }> }>(t, ['fetch', 'origin'], { env: a.env, cwd: local });
  t.deepEqual(f.updated.map((u) => u.ref), ['refs/remotes/origin/main']);
  const other = tmpRepoDir(t);
  await vivaOk(t, ['init', other]);
  await vivaOk(t, ['remote', 'add', 'archive', url], { cwd: other, env: a.env });
  t.regex((await vivaOk(t, ['remote', 'list'], { cwd: other, env: a.env })).stdout, /^archive\s+s3:\/\/viva-ci\/.+\?endpoint=/m);
});

s3('two hosts commit at once: both land on their branches; on one branch, each commit lands or exits 12; fsck is clean', async (t) => {
  const url = s3Url(`${root}r${n++}`);
  const a = host(t);
  const b = host(t);
  await vivaOk(t, ['init', '--storage', url], { env: a.env });
  const [ra, rb] = await Promise.all([
    a.run(['-C', url, 'commit', source(t, { hostname: 'a\n' }), '-b', 'a', '-m', 'a']),
    b.run(['-C', url, 'commit', source(t, { hostname: 'b\n' }), '-b', 'b', '-m', 'b']),
  ]);
  t.is(ra.code, 0, ra.stderr);
  t.is(rb.code, 0, rb.stderr);
  const same = await Promise.all([1, 2, 3].map((i) => (i % 2 ? a : b).run(['-C', url, 'commit', source(t, { hostname: `${i}\n` }), '-b', 'shared', '-m', `c${i}`])));
  for (const r of same) t.true(r.code === 0 || r.code === 12, `${r.code}: ${r.stderr}`);
  const c = host(t);
  const log = await vivaJson<unknown[]>(t, ['-C', url, 'log', 'shared'], { env: c.env });
  // Each commit that landed extended the branch (a commit whose parent moved meanwhile exits 12, changing nothing).
  t.is(log.length, same.filter((r) => r.code === 0).length);
  t.true(log.length >= 1);
  const fsck = await c.run(['-C', url, 'fsck']);
  t.is(fsck.code, 0, fsck.stdout + fsck.stderr);
});

s3('refusals: no repository (10, and 17 as a remote), wrong credentials (17), a missing bucket (17), a tampered pack (15)', async (t) => {
  const empty = s3Url(`${root}empty${n++}`);
  const a = host(t);
  const none = await a.run(['-C', empty, 'log']);
  t.is(none.code, 10, none.stderr);
  t.regex(none.stderr, /not a viva repository/);
  const asRemote = await a.run(['clone', empty, path.join(tmpDir(t), 'x')]);
  t.is(asRemote.code, 17, asRemote.stderr);

  const prefix = `${root}r${n++}`;
  const url = s3Url(prefix);
  await vivaOk(t, ['init', '--storage', url], { env: a.env });
  await vivaOk(t, ['-C', url, 'commit', source(t, { hostname: 'x\n' }), '-b', 'main', '-m', 'x'], { env: a.env });
  const wrong = host(t, { AWS_SECRET_ACCESS_KEY: 'wrong' });
  for (const args of [['-C', url, 'log'], ['init', '--storage', s3Url(`${root}w${n++}`)], ['clone', url, path.join(tmpDir(t), 'c')]]) {
    const r = await wrong.run(args);
    t.is(r.code, 17, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /^error: s3:\/\/.*: access denied: the credentials were refused \(\w+\); check AWS_ACCESS_KEY_ID/);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  const nobucket = await a.run(['init', '--storage', 's3://viva-no-such-bucket/x', '--endpoint', s3Url('x').match(/endpoint=([^&]+)/)![1]!.replace(/%3A/g, ':').replace(/%2F/g, '/')]);
  t.is(nobucket.code, 17, nobucket.stderr);
  t.regex(nobucket.stderr, /no such bucket 'viva-no-such-bucket'/);

  // Flip one byte of one pack in the bucket: a fresh host's fsck names it, its checkout refuses it.
  const backend = s3Backend(`${prefix}/`);
  const packs: string[] = [];
  for await (const o of backend.list('packs/')) packs.push(o.key);
  t.true(packs.length > 0);
  for (const key of packs) {
    const got = (await backend.get(key))!.body;
    got[10]! ^= 0xff;
    await backend.put(key, got);
  }
  await backend.close();
  const fresh = host(t);
  const co = await fresh.run(['-C', url, 'checkout', 'main', path.join(tmpDir(t), 'co')]);
  t.is(co.code, 15, co.stderr);
  t.regex(co.stderr, /packs\/[0-9a-f]{64}/);
});

function tmpRepoDir(t: ExecutionContext): string {
  return path.join(tmpDir(t), 'repo');
}

s3('two servers of one bucket, each with its own cache: a push to one is seen by the other within a second', async (t) => {
  const url = s3Url(`${root}r${n++}`);
  const a = host(t);
  await vivaOk(t, ['init', '--storage', url], { env: a.env });
  const token = path.join(tmpDir(t), 'token');
  fs.writeFileSync(token, 'tok-s3\n');
  const one = await startServer(t, ['--storage', url, '--allow-push', '--token-file', token], { env: host(t).env });
  const two = await startServer(t, ['--storage', url], { env: host(t).env });
  t.regex(one.log(), /^serving s3:\/\/viva-ci\//);
  const local = tmpDir(t);
  await vivaOk(t, ['init', local]);
  const c = await vivaJson(t, ['commit', source(t, { hostname: 'pushed\n' }), '-b', 'main', '-m', 'm'], { cwd: local });
  await vivaOk(t, ['push', one.url, 'main'], { cwd: local, env: { VIVA_TOKEN: 'tok-s3' } });
  await new Promise((r) => setTimeout(r, 1100));
  const ls = await vivaJson<{ refs: Array<{ ref: string; oid: string }> }>(t, ['ls-remote', two.url]);
  t.deepEqual(ls.refs.map((r) => [r.ref, r.oid]), [['refs/heads/main', c.commit]]);
  const cloned = path.join(tmpDir(t), 'clone');
  await vivaOk(t, ['clone', two.url, cloned]);
  t.is((await vivaOk(t, ['cat', 'main:etc/hostname'], { cwd: cloned })).stdout, 'pushed\n');
});
