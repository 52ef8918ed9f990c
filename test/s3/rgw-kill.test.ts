/**
 * radosgw killed during a push (issue 18): a push goes to a second gateway of the test cluster that is killed with
 * SIGKILL while packs go up. Restarted a second later, the push completes through the client's retries; kept down,
 * the push fails with one line (exit 17), the ref is unchanged, and running it again completes. Every ref then names a
 * complete image (fsck from a fresh host is clean).
 */
import test, { type ExecutionContext } from 'ava';
import path from 'node:path';
import { spawnViva, finished, vivaOk, tmpDir, viva } from '../helpers/cli.js';
import { CEPH_DIR, RGW_B_ENDPOINT, filePrefix, killRgwB, removePrefix, s3Env, s3Skip, startRgwB } from '../helpers/s3.js';
import { writeTree } from '../helpers/repo.js';
import { parseS3Url } from '../../src/store/remote/s3-backend.js';

const skip = s3Skip() ?? (CEPH_DIR ? undefined : 'set VIVA_TEST_CEPH_DIR (the directory of .ci/ceph up)');
const root = filePrefix(import.meta.filename);
if (!skip) test.after.always(async () => { await killRgwB(); await removePrefix(root); });

const urlB = (p: string) => parseS3Url(`s3://viva-ci/${root}${p}`, { endpoint: RGW_B_ENDPOINT, region: 'us-east-1' }).url;

/** A local repository with one commit of about 40 MB of distinct content (several 8 MiB packs to upload). */
async function source(t: ExecutionContext): Promise<string> {
  const dir = tmpDir(t);
  const src = tmpDir(t);
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 40; i++) files[`f${i}`] = Buffer.from(Array.from({ length: 1 << 20 }, (_, j) => (j * 2654435761 + i * 40503) >>> 24));
  writeTree(src, { data: files });
  await vivaOk(t, ['init', dir]);
  await vivaOk(t, ['commit', '-C', dir, src, '-b', 'main', '-m', 'big']);
  return dir;
}

/** Starts a push to the bucket through gateway b and kills the gateway once the first pack is in the bucket. */
async function pushKilled(t: ExecutionContext, local: string, url: string, env: Record<string, string>, downMs: number) {
  const push = spawnViva(['push', '-C', local, url, 'main'], { env });
  const done = finished(push, 180_000);
  // Kill b once something of this push is in the bucket (read through gateway a).
  const { s3Backend } = await import('../helpers/s3.js');
  const a = s3Backend(`${root}${url.includes('p1') ? 'p1' : 'p2'}/`);
  for (let i = 0; i < 600; i++) {
    let packs = 0;
    for await (const _ of a.list('packs/')) packs++;
    if (packs > 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await a.close();
  await killRgwB();
  setTimeout(() => { if (downMs < 60_000) void startRgwB(); }, downMs);
  return done;
}

(skip ? test.skip : test.serial)(`a gateway killed during a push and back a second later: the push completes${skip ? ` (${skip})` : ''}`, async (t) => {
  t.timeout(240_000);
  await startRgwB();
  const local = await source(t);
  const url = urlB('p1');
  const env = { ...s3Env(), VIVA_CACHE_DIR: tmpDir(t) };
  await vivaOk(t, ['init', '--storage', url], { env });
  const r = await pushKilled(t, local, url, env, 1000);
  t.is(r.code, 0, r.stderr);
  const fresh = { ...s3Env(), VIVA_CACHE_DIR: tmpDir(t) };
  const fsck = await viva(['-C', url, 'fsck'], { env: fresh });
  t.is(fsck.code, 0, fsck.stdout + fsck.stderr);
  t.is((await vivaOk(t, ['-C', url, 'rev-parse', 'main'], { env: fresh })).stdout, (await vivaOk(t, ['-C', local, 'rev-parse', 'main'])).stdout);
});

(skip ? test.skip : test.serial)(`a gateway killed during a push and kept down: exit 17, the ref unchanged; the push run again completes${skip ? ` (${skip})` : ''}`, async (t) => {
  t.timeout(300_000);
  await startRgwB();
  const local = await source(t);
  const url = urlB('p2');
  const env = { ...s3Env(), VIVA_CACHE_DIR: tmpDir(t) };
  await vivaOk(t, ['init', '--storage', url], { env });
  const r = await pushKilled(t, local, url, env, 120_000);
  t.is(r.code, 17, r.stderr);
  t.regex(r.stderr, /^error: s3:\/\/viva-ci\/.*: cannot reach http:\/\/127\.0\.0\.1:7481/);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  await startRgwB();
  const fresh = { ...s3Env(), VIVA_CACHE_DIR: tmpDir(t) };
  t.is((await viva(['-C', url, 'rev-parse', '--verify', '-q', 'main'], { env: fresh })).code !== 0, true, 'the ref did not move');
  const again = await viva(['push', '-C', local, url, 'main'], { env });
  t.is(again.code, 0, again.stderr);
  const fsck = await viva(['-C', url, 'fsck'], { env: { ...s3Env(), VIVA_CACHE_DIR: tmpDir(t) } });
  t.is(fsck.code, 0, fsck.stdout + fsck.stderr);
});
