/**
 * bin/run.js keeps V8's compiled code of a command's bundle (dist/run/…cjs) and of the package files it requires:
 * a second run uses it, a cache that does not fit its source (another build, damaged bytes) is not used and is
 * written again, and a cache directory that others can write is never used.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir, viva, vivaOk } from '../helpers/cli.js';
import { writeTree } from '../helpers/repo.js';

async function repository(t: ExecutionContext): Promise<string> {
  const dir = tmpDir(t);
  const repo = path.join(dir, 'repo');
  writeTree(path.join(dir, 'a'), { f: 'one\n', d: { g: 'two\n' } });
  writeTree(path.join(dir, 'b'), { f: 'three\n', d: { g: 'two\n', h: 'four\n' } });
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', path.join(dir, 'a'), '-b', 'a', '-m', 'a'], { cwd: repo });
  await vivaOk(t, ['commit', path.join(dir, 'b'), '-b', 'b', '-m', 'b'], { cwd: repo });
  return repo;
}

const list = (dir: string) => fs.readdirSync(dir).sort();

test('code cache: a first run writes the compiled code of the command and its packages, a second run uses it with the same output', async (t) => {
  const repo = await repository(t);
  const cache = path.join(tmpDir(t), 'cache');
  const plain = await vivaOk(t, ['diff', '-p', 'a', 'b'], { cwd: repo, env: { VIVA_CODE_CACHE: '0' } });
  t.false(fs.existsSync(cache));
  const first = await vivaOk(t, ['diff', '-p', 'a', 'b'], { cwd: repo, env: { VIVA_CODE_CACHE: cache } });
  t.is(first.stdout, plain.stdout);
  t.is(fs.statSync(cache).mode & 0o777, 0o700);
  const files = list(cache);
  t.true(files.some((f) => f.startsWith('dist%2Frun%2Fdiff.cjs-')), files.join(' '));
  t.true(files.some((f) => f.startsWith('node_modules%2Flmdb%2F')), 'the packages the command requires are cached too');
  const mtimes = files.map((f) => fs.statSync(path.join(cache, f)).mtimeMs);
  const second = await vivaOk(t, ['diff', '-p', 'a', 'b'], { cwd: repo, env: { VIVA_CODE_CACHE: cache } });
  t.is(second.stdout, plain.stdout);
  t.deepEqual(list(cache), files, 'nothing new');
  t.deepEqual(files.map((f) => fs.statSync(path.join(cache, f)).mtimeMs), mtimes, 'a usable cache is not written again');
});

test('code cache: damaged cache files are not used (the output is right) and are written again', async (t) => {
  // V8 itself would take most of these: it checks a code cache's header, not its bytes.
  const repo = await repository(t);
  const cache = path.join(tmpDir(t), 'cache');
  const plain = await vivaOk(t, ['log', '--oneline'], { cwd: repo, env: { VIVA_CODE_CACHE: '0' } });
  await vivaOk(t, ['log', '--oneline'], { cwd: repo, env: { VIVA_CODE_CACHE: cache } });
  const files = list(cache);
  const damaged = new Map<string, Buffer>();
  for (const f of files) {
    const p = path.join(cache, f);
    const b = fs.readFileSync(p);
    b[Math.floor(b.length * 0.6)] ^= 0x5a;
    fs.writeFileSync(p, b);
    damaged.set(f, b);
  }
  const r = await vivaOk(t, ['log', '--oneline'], { cwd: repo, env: { VIVA_CODE_CACHE: cache } });
  t.is(r.stdout, plain.stdout);
  t.is(r.stderr, '');
  for (const f of files) t.false(fs.readFileSync(path.join(cache, f)).equals(damaged.get(f)!), `${f} written again`);
  // Written again: a run after it leaves every file as it is.
  const mtimes = files.map((f) => fs.statSync(path.join(cache, f)).mtimeMs);
  t.is((await vivaOk(t, ['log', '--oneline'], { cwd: repo, env: { VIVA_CODE_CACHE: cache } })).stdout, plain.stdout);
  t.deepEqual(files.map((f) => fs.statSync(path.join(cache, f)).mtimeMs), mtimes);
});

test('code cache: a cache directory others can write is not used; a cache file of another source size is not read', async (t) => {
  const repo = await repository(t);
  const cache = path.join(tmpDir(t), 'cache');
  fs.mkdirSync(cache, { mode: 0o700 });
  fs.chmodSync(cache, 0o777);
  const r = await vivaOk(t, ['log', '--oneline'], { cwd: repo, env: { VIVA_CODE_CACHE: cache } });
  t.deepEqual(list(cache), [], 'a world-writable directory is left alone');
  fs.chmodSync(cache, 0o700);
  // A file named for another build of the same command (another size) is garbage to this one, never read.
  fs.writeFileSync(path.join(cache, 'dist%2Frun%2Flog.cjs-1-1-1-v0-x64.v8'), 'garbage');
  const again = await viva(['log', '--oneline'], { cwd: repo, env: { VIVA_CODE_CACHE: cache } });
  t.is(again.code, 0, again.stderr);
  t.is(again.stdout, r.stdout);
  t.true(list(cache).some((f) => f.startsWith('dist%2Frun%2Flog.cjs-') && !f.startsWith('dist%2Frun%2Flog.cjs-1-1-1-')));
});
