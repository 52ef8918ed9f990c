/** viva serve as its own process (plain and TLS), used by clone, push and ls-remote over the network on 127.0.0.1. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { EXIT } from '../../src/cli/exit-codes.js';
import { finished, spawnViva, startServer, tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';

async function setup(t: import('ava').ExecutionContext) {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'one\n');
  const lib = path.join(dir, 'lib');
  await vivaOk(t, ['init', lib]);
  await vivaOk(t, ['commit', '-C', lib, src, '-b', 'base', '-m', 'one']);
  const token = path.join(dir, 'token');
  fs.writeFileSync(token, 'tok-123\n');
  return { dir, src, lib, token };
}

test('cli serve: clone, push with VIVA_TOKEN, refused without it (exit 17); SIGTERM stops the server', async (t) => {
  const { dir, src, lib, token } = await setup(t);
  const s = await startServer(t, ['--repo', lib, '--allow-push', '--token-file', token]);
  const work = path.join(dir, 'work');
  await vivaOk(t, ['clone', s.url, work]);
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'two\n');
  await vivaOk(t, ['commit', '-C', work, src, '-m', 'two']);
  const refused = await viva(['push', '-C', work, 'origin', 'base']);
  t.is(refused.code, EXIT.REMOTE);
  t.regex(refused.stderr, /^error: http:\/\/127\.0\.0\.1:\d+\/: HTTP 401/);
  const pushed = await vivaJson(t, ['push', '-C', work, 'origin', 'base'], { env: { VIVA_TOKEN: 'tok-123' } });
  t.is(pushed.objects, 4);
  t.regex((await vivaOk(t, ['ls-remote', s.url])).stdout, /\trefs\/heads\/base\n$/);
  t.regex((await vivaOk(t, ['log', '-C', lib, '--oneline'])).stdout, /two/);
  t.regex(s.log(), /POST \/v1\/receive 200/);
  s.child.kill('SIGTERM');
  t.is((await finished(s.child)).code, 0);
  // With the server gone: a clear error, exit 17.
  const gone = await viva(['fetch', '-C', work]);
  t.is(gone.code, EXIT.REMOTE);
  t.regex(gone.stderr, /cannot connect/);
});

test('cli serve: TLS with --tls-cert/--tls-key; --allow-push without a token file is refused', async (t) => {
  const { dir, lib } = await setup(t);
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const s = await startServer(t, ['--repo', lib, '--tls-cert', cert, '--tls-key', key]);
  t.regex(s.url, /^https:\/\//);
  const c = await vivaOk(t, ['clone', s.url, path.join(dir, 'tls-clone')], { env: { NODE_EXTRA_CA_CERTS: cert } });
  t.regex(c.stdout, /on branch base/);
  const untrusted = await viva(['ls-remote', s.url]);
  t.is(untrusted.code, EXIT.REMOTE, 'a certificate the client does not trust is an error');
  const bad = await viva(['serve', '--repo', lib, '--listen', '127.0.0.1:0', '--allow-push']);
  t.is(bad.code, EXIT.USAGE);
  t.regex(bad.stderr, /--allow-push needs --token-file/);
});

test('cli serve: a push killed midway keeps what arrived; the retry sends only the rest', async (t) => {
  const { dir, src, lib, token } = await setup(t);
  // 120 files of 512 KiB random bytes: a push that takes a while.
  fs.mkdirSync(path.join(src, 'data'));
  for (let i = 0; i < 120; i++) fs.writeFileSync(path.join(src, 'data', `f${i}`), (await import('node:crypto')).randomBytes(512 << 10));
  const work = path.join(dir, 'work');
  await vivaOk(t, ['init', work]);
  await vivaOk(t, ['commit', '-C', work, src, '-b', 'big', '-m', 'big']);
  const s = await startServer(t, ['--repo', lib, '--allow-push', '--token-file', token]);
  const first = spawnViva(['push', '-C', work, s.url, 'big', '--json'], { env: { VIVA_TOKEN: 'tok-123' } });
  // Kill it once the server has stored some objects (or after 5 s at the latest).
  const t0 = Date.now();
  while (Date.now() - t0 < 5000) {
    await new Promise((r) => setTimeout(r, 100));
    if (fs.statSync(path.join(lib, '.viva', 'data.mdb')).size > 8 << 20) break;
  }
  first.kill('SIGKILL');
  await finished(first);
  const retry = await vivaJson(t, ['push', '-C', work, s.url, 'big', '--json'], { env: { VIVA_TOKEN: 'tok-123' } });
  const stats = await vivaJson(t, ['stats', '-C', work]);
  const total = Object.values(stats.objects as Record<string, number>).reduce((a, b) => a + b, 0);
  t.true(retry.objects > 0 && retry.objects < total, `the retry stored ${retry.objects} of ${total} objects`);
  t.regex((await vivaOk(t, ['fsck', '-C', lib])).stdout, /: ok$/m);
  t.is((await vivaOk(t, ['ls', '-C', lib, 'big:data'])).stdout.split('\n').filter(Boolean).length, 120);
});
