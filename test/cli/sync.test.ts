/** remote, fetch, push, clone, pull, ls-remote on the command line between repositories on local paths. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import { tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';

test('cli sync: clone, commit, push, fetch, pull, ls-remote; non-fast-forward exits 12', async (t) => {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'one\n');
  const lib = path.join(dir, 'library');
  await vivaOk(t, ['init', lib]);
  await vivaOk(t, ['commit', '-C', lib, src, '-b', 'debian/base', '-m', 'one']);
  const c = await vivaOk(t, ['clone', lib, path.join(dir, 'work')]);
  t.regex(c.stdout, /^cloned .*library into .*work: \d+ objects, .*; on branch debian\/base\n$/);
  const work = path.join(dir, 'work');
  t.regex((await vivaOk(t, ['remote', 'list', '-C', work])).stdout, /^origin\t.*library\n$/);
  const ls = await vivaOk(t, ['ls-remote', lib]);
  t.regex(ls.stdout, /^ref: refs\/heads\/debian\/base\tHEAD\n[0-9a-f]{64}\trefs\/heads\/debian\/base\n$/);
  // Work commits and pushes; the library gets only the new objects.
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'two\n');
  await vivaOk(t, ['commit', '-C', work, src, '-m', 'two']);
  const p = await vivaJson(t, ['push', '-C', work, 'origin', 'debian/base']);
  t.is(p.objects, 4);
  t.is((await vivaOk(t, ['log', '-C', lib, '--oneline', 'debian/base'])).stdout.split('\n').filter(Boolean).length, 2);
  // A second clone pulls later work.
  const other = path.join(dir, 'other');
  await vivaOk(t, ['clone', lib, other]);
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'three\n');
  await vivaOk(t, ['commit', '-C', work, src, '-m', 'three']);
  await vivaOk(t, ['push', '-C', work, 'origin', 'debian/base']);
  t.regex((await vivaOk(t, ['pull', '-C', other])).stdout, /^debian\/base: fast-forward [0-9a-f]{12}\.\.[0-9a-f]{12}\n$/);
  t.regex((await vivaOk(t, ['fetch', '-C', other])).stdout, /\(up to date\)/);
  // other commits on top of an older state than the library now has: its push is refused.
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'four\n');
  await vivaOk(t, ['commit', '-C', work, src, '-m', 'four']);
  await vivaOk(t, ['push', '-C', work, 'origin', 'debian/base']);
  await vivaOk(t, ['commit', '-C', other, src, '-m', 'diverged']);
  const refused = await viva(['push', '-C', other, 'origin', 'debian/base']);
  t.is(refused.code, EXIT.CONFLICT);
  t.regex(refused.stderr, /non-fast-forward/);
  const diverged = await viva(['pull', '-C', other]);
  t.is(diverged.code, EXIT.CONFLICT);
  t.regex(diverged.stderr, /diverged/);
  t.regex((await vivaOk(t, ['push', '-C', other, 'origin', 'debian/base', '--force'])).stdout, /\(forced\)/);
  t.regex((await vivaOk(t, ['fsck', '-C', lib])).stdout, /: ok$/m);
  // Bad remotes and names.
  t.is((await viva(['remote', 'add', '-C', other, 'a/b', lib])).code, EXIT.USAGE);
  t.is((await viva(['fetch', '-C', other, path.join(dir, 'nowhere')])).code, EXIT.REMOTE);
  t.is((await viva(['push', '-C', other, 'origin', 'no-such-rev'])).code, EXIT.NOT_FOUND);
});
