/**
 * gc of a repository in a bucket through the command line, against Ceph's radosgw (`.ci/ceph up`): `viva gc --wait`
 * in one process while another commits content that gc is marking; both succeed, nothing the new commit needs is
 * lost, and a fresh host checks it out byte-identical. Also the refusal of a second gc (exit 11) and --json's shape.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { viva, vivaJson, vivaOk, tmpDir } from '../helpers/cli.js';
import { filePrefix, removePrefix, s3Backend, s3Env, s3Skip, s3Url } from '../helpers/s3.js';
import { randomBytes, sleep, writeTree, type Spec } from '../helpers/repo.js';

const skip = s3Skip();
const root = filePrefix(import.meta.filename);
let n = 0;
const s3 = skip ? (name: string, _f?: unknown) => test.skip(`${name} (${skip})`, () => {}) : (name: string, f: (t: ExecutionContext) => Promise<void>) => test.serial(name, f);
if (!skip) test.after.always(() => removePrefix(root));

/** A "host": its own cache directory, the test server's keys, gc's grace 0. */
function host(t: ExecutionContext) {
  return { ...s3Env(), VIVA_CACHE_DIR: tmpDir(t, 'viva-cache-'), VIVA_GC_GRACE: '0' };
}

function source(t: ExecutionContext, spec: Spec): string {
  const dir = tmpDir(t);
  writeTree(dir, spec);
  return dir;
}

function files(root: string, rel = ''): string[] {
  return fs.readdirSync(path.join(root, rel), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(root, path.join(rel, e.name)) : [path.join(rel, e.name)]);
}

interface GcJson {
  removed: number; removedBytes: number; kept: number; dryRun: boolean;
  bucket: { graceSeconds: number; marked: number; swept: { marks: number; objects: number; packs: number; repacked: number }; orphans: { packs: number }; pendingMarks: number };
}

s3('gc --wait while another process commits content gc is marking: both succeed, a fresh host checks out identical', async (t) => {
  const prefix = `${root}r${n++}`;
  const url = s3Url(prefix);
  const backend = s3Backend(prefix);
  t.teardown(() => backend.close());
  const a = host(t);
  await vivaOk(t, ['init', '--storage', url], { env: a });
  await vivaOk(t, ['-C', url, 'commit', source(t, { etc: { hostname: 'base\n' } }), '-b', 'main', '-m', 'base'], { env: a });
  // Content an unreachable commit holds and the concurrent commit shares, plus many small files to make it slow.
  const shared = randomBytes(3_000_000, 'gc-shared');
  const many: Spec = {};
  for (let i = 0; i < 3000; i++) many[`f${i}`] = randomBytes(4_000, `many-${i}`);
  await vivaOk(t, ['-C', url, 'commit', source(t, { img: shared, old: 'old\n' }), '-b', 'old', '-m', 'old'], { env: a });
  await vivaOk(t, ['-C', url, 'branch', '-d', '-f', 'old'], { env: a });

  const src = source(t, { img: shared, many, etc: { hostname: 'new\n' } });
  const committing = viva(['-C', url, 'commit', src, '-b', 'new', '-m', 'new'], { env: host(t) });
  // gc starts once the commit's writer session is in the bucket.
  for (let i = 0; i < 200; i++) {
    let found = false;
    for await (const o of backend.list('sessions/')) found ||= !!o.key;
    if (found) break;
    await sleep(25);
  }
  const g = host(t);
  const gcRun = viva(['-C', url, 'gc', '--wait', '--json'], { env: g });
  const [c, r] = await Promise.all([committing, gcRun]);
  t.is(c.code, 0, c.stderr);
  t.is(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as GcJson;
  t.log(JSON.stringify(res.bucket));
  t.is(res.dryRun, false);
  t.is(res.bucket.graceSeconds, 0);
  t.true(res.bucket.marked > 0, r.stdout);
  t.true(res.removed >= 1, r.stdout);

  // Whatever order they ran in, another run settles every mark; then a fresh host has everything.
  await vivaOk(t, ['-C', url, 'gc', '--wait'], { env: host(t) });
  const fresh = host(t);
  const fsck = await viva(['-C', url, 'fsck'], { env: fresh });
  t.is(fsck.code, 0, fsck.stdout + fsck.stderr);
  const out = path.join(tmpDir(t), 'co');
  await vivaOk(t, ['-C', url, 'checkout', 'new', out], { env: fresh });
  for (const f of files(src)) t.deepEqual(fs.readFileSync(path.join(out, f)), fs.readFileSync(path.join(src, f)), f);
  const cat = await viva(['-C', url, 'cat', 'old:old'], { env: fresh });
  t.not(cat.code, 0, 'the deleted branch is gone');
});

s3('a second gc while one holds the lease exits 11; text output and --dry-run', async (t) => {
  const prefix = `${root}r${n++}`;
  const url = s3Url(prefix);
  const a = host(t);
  await vivaOk(t, ['init', '--storage', url], { env: a });
  await vivaOk(t, ['-C', url, 'commit', source(t, { f: randomBytes(100_000, 'x') }), '-b', 'tmp', '-m', 'tmp'], { env: a });
  await vivaOk(t, ['-C', url, 'commit', source(t, { g: 'keep\n' }), '-b', 'main', '-m', 'keep'], { env: a });
  await vivaOk(t, ['-C', url, 'branch', '-d', '-f', 'tmp'], { env: a });
  const dry = await vivaJson<GcJson>(t, ['-C', url, 'gc', '--dry-run'], { env: a });
  t.true(dry.dryRun);
  t.true(dry.bucket.marked >= 3);
  const backend = s3Backend(prefix);
  t.teardown(() => backend.close());
  await backend.put('gc/lease.json', Buffer.from(JSON.stringify({ holder: 'h', host: 'otherhost', pid: 42, expires: Date.now() + 600_000 })), { ifNoneMatch: '*' });
  const locked = await viva(['-C', url, 'gc'], { env: a });
  t.is(locked.code, 11, locked.stderr);
  t.regex(locked.stderr, /gc running on otherhost \(pid 42\)/);
  await backend.delete(['gc/lease.json']);
  const first = await vivaOk(t, ['-C', url, 'gc'], { env: a });
  t.regex(first.stdout, /^removed 0 objects \(0 B deleted from the bucket\), kept \d+\nmarked \d+ objects \(.+\) for deletion/m);
  const second = await vivaOk(t, ['-C', url, 'gc'], { env: a });
  t.regex(second.stdout, /^removed [1-9]\d* objects \(.+ deleted from the bucket\), kept \d+$/m);
});
