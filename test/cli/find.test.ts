/** viva find and viva index on the command line: checksums from --stdin, scopes, --json, errors, reading during a commit. */
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import { spawnViva, finished, tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';

function sha(s: string | Buffer): string {
  return crypto.createHash('sha256').update(s).digest('hex');
}

async function setup(t: import('ava').ExecutionContext): Promise<{ repo: string; src: string; dir: string }> {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'etc/ssl'), { recursive: true });
  fs.writeFileSync(path.join(src, 'etc/ssl/cert.pem'), 'CERT\n');
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'web\n');
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', '-C', repo, src, '-b', 'customers/acme/web', '-m', 'web']);
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'db\n');
  await vivaOk(t, ['commit', '-C', repo, src, '-b', 'customers/acme/db', '-m', 'db']);
  return { repo, src, dir };
}

test('cli find: checksums from --stdin (sha256sum output), --json, scopes', async (t) => {
  const { repo, src } = await setup(t);
  const input = `${sha('CERT\n')}  etc/ssl/cert.pem\n${sha('web\n')}  etc/hostname\n${'0'.repeat(64)}  absent\n`;
  const r = await vivaOk(t, ['find', '-C', repo, '--stdin'], { input });
  const lines = r.stdout.trim().split('\n').map((l) => l.split('\t').slice(0, 3).join(' ').replace(/ [0-9a-f]{12} /, ' '));
  t.deepEqual(lines.sort(), ['customers/acme/db etc/ssl/cert.pem', 'customers/acme/web etc/hostname', 'customers/acme/web etc/ssl/cert.pem']);
  const j = await vivaJson(t, ['find', '-C', repo, '--sha256', sha('web\n'), '--heads']);
  t.deepEqual(j.map((h: { ref: string; path: string; sha256: string }) => [h.ref, h.path, h.sha256]), [['customers/acme/web', 'etc/hostname', sha('web\n')]]);
  t.is((await vivaOk(t, ['find', '-C', repo, '--name', '*.pem', '--ref', 'customers/acme/d'])).stdout.split('\t')[2], 'etc/ssl/cert.pem\n');
  void src;
});

test('cli find: bad queries exit 2 with one line', async (t) => {
  const { repo } = await setup(t);
  for (const args of [['--name', '[x'], ['--sha256', 'nothex'], ['--size', 'huge'], ['--package', 'x', '--version', '<'], [], ['--heads', '--all', '--name', 'x']]) {
    const r = await viva(['find', '-C', repo, ...args]);
    t.is(r.code, EXIT.USAGE, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /^error: [^\n]+\n(See 'viva find --help'\.\n)?$/, r.stderr);
  }
});

test('cli find: a repository from before the content index says to rebuild it; index rebuild fixes it; find runs while a commit does', async (t) => {
  const { repo, src, dir } = await setup(t);
  // Simulate an older repository: no index version.
  const { open } = await import('lmdb');
  const env = open({ path: path.join(repo, '.viva', 'data.mdb'), maxDbs: 64 });
  const meta = env.openDB({ name: 'meta', encoding: 'msgpack' });
  await meta.remove('content-index');
  await env.close();
  const old = await viva(['find', '-C', repo, '--sha256', sha('web\n')]);
  t.is(old.code, EXIT.USAGE);
  t.regex(old.stderr, /viva index rebuild/);
  t.regex((await vivaOk(t, ['index', 'rebuild', '-C', repo])).stdout, /content index rebuilt: \d+ entries/);
  t.is((await vivaOk(t, ['find', '-C', repo, '--sha256', sha('web\n')])).stdout.split('\t')[0], 'customers/acme/web');
  // A big commit in the background; find answers meanwhile from the last committed state.
  fs.writeFileSync(path.join(src, 'big'), crypto.randomBytes(64 << 20));
  const committing = spawnViva(['commit', '-C', repo, src, '-b', 'big', '-m', 'big']);
  const during = await vivaOk(t, ['find', '-C', repo, '--name', 'hostname']);
  t.regex(during.stdout, /customers\/acme\/web/);
  t.is((await finished(committing)).code, 0);
  void dir;
});

test('cli grep: path:line:text, -l, --json streamed, exit 1 without a match; stats and du run', async (t) => {
  const { repo } = await setup(t);
  t.is((await vivaOk(t, ['grep', '-C', repo, 'web', 'customers/acme/web'])).stdout, 'etc/hostname:1:web\n');
  t.is((await vivaOk(t, ['grep', '-C', repo, '-l', 'CERT', 'customers/acme/web', '--', 'etc/ssl'])).stdout, 'etc/ssl/cert.pem\n');
  t.deepEqual(await vivaJson(t, ['grep', '-C', repo, '-i', 'cert', 'customers/acme/web']), [{ path: 'etc/ssl/cert.pem', line: 1, text: 'CERT' }]);
  const none = await viva(['grep', '-C', repo, 'nothing', 'customers/acme/web']);
  t.is(none.code, EXIT.FAILURE);
  t.is(none.stdout, '');
  t.deepEqual(await vivaJson(t, ['find', '-C', repo, '--name', 'nothing']), []);
  t.regex((await vivaOk(t, ['stats', '-C', repo, 'customers/acme/web'])).stdout, /^image [0-9a-f]{12}: 2 files/);
  t.regex((await vivaOk(t, ['du', '-C', repo, 'customers/acme/web', '-b'])).stdout, /\s+9  \.\n$/);
});
