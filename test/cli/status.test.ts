/** viva status: a checkout records what it came from; status lists what changed since, from the directory or below it. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import { tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';
import { writeTree } from '../helpers/repo.js';

const lines = (s: string) => s.split('\n').filter(Boolean);

test('status: clean after checkout; changes listed as diff lists them, also from inside the directory; --exit-code; the stat cache spares unchanged files', async (t) => {
  const dir = tmpDir(t);
  const repo = path.join(dir, 'repo');
  writeTree(path.join(dir, 'src'), { etc: { hostname: 'web\n', motd: 'hi\n' }, usr: { bin: { tool: 'tool' } } }, { mtime: new Date('2024-01-01T00:00:00Z') });
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', path.join(dir, 'src'), '-b', 'web', '-m', 'web', '-C', repo]);
  const co = path.join(dir, 'co');
  await vivaOk(t, ['checkout', 'web', co, '-C', repo]);
  // The checkout recorded its files in the stat cache: the first status reads none of them.
  const first = await vivaJson(t, ['status', co, '-C', repo]);
  t.like(first, { read: 0, cached: 3, entries: [] });
  const clean = await vivaOk(t, ['status', co, '--exit-code', '-C', repo]);
  t.deepEqual(lines(clean.stdout).slice(1), ['nothing changed since the checkout']);
  t.regex(lines(clean.stdout)[0]!, new RegExp(`^checked out from web \\([0-9a-f]{12}\\) to ${co.replace(/[/.]/g, '\\$&')} on \\d{4}-`));
  fs.writeFileSync(path.join(co, 'etc/hostname'), 'web-01\n');
  fs.rmSync(path.join(co, 'etc/motd'));
  fs.writeFileSync(path.join(co, 'usr/bin/new'), 'new');
  fs.chmodSync(path.join(co, 'usr/bin/tool'), 0o755);
  const r = await viva(['status', co, '--exit-code', '-C', repo]);
  t.is(r.code, EXIT.FAILURE, r.stderr);
  t.deepEqual(lines(r.stdout).slice(1), ['M\tetc/hostname\t[content 4 -> 7 bytes]', 'D\tetc/motd', 'A\tusr/bin/new', 'M\tusr/bin/tool\t[mode 0644 -> 0755]']);
  // From inside: only what lies below.
  const inside = await vivaOk(t, ['status', '-C', repo], { cwd: path.join(co, 'usr') });
  t.deepEqual(lines(inside.stdout).slice(1), ['A\tusr/bin/new', 'M\tusr/bin/tool\t[mode 0644 -> 0755]']);
  // The same answer as diff of the commit and the directory (mtime aside).
  const d = await vivaOk(t, ['diff', 'web', co, '--ignore-mtime', '-C', repo]);
  t.deepEqual(lines(r.stdout).slice(1), lines(d.stdout));
  // Once the files are older than the racy window, status records them: the next one reads only the two files whose
  // new content is not in the repository (nothing to name it by there), not the unchanged tool.
  await new Promise((resolve) => setTimeout(resolve, 2100));
  await vivaOk(t, ['status', co, '-C', repo]);
  const again = await vivaJson(t, ['status', co, '-C', repo]);
  t.is(again.read, 2);
  t.is(again.cached, 1);
});

test('status: REV:path and --path checkouts compare what they wrote; a directory no checkout wrote, or one replaced since, is exit 3', async (t) => {
  const dir = tmpDir(t);
  const repo = path.join(dir, 'repo');
  writeTree(path.join(dir, 'src'), { etc: { hostname: 'web\n', ssh: { sshd_config: 'x\n' } }, usr: { bin: { tool: 'tool' } } });
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', path.join(dir, 'src'), '-b', 'web', '-m', 'web', '-C', repo]);
  const sub = path.join(dir, 'etc');
  await vivaOk(t, ['checkout', 'web:etc', sub, '-C', repo]);
  fs.writeFileSync(path.join(sub, 'ssh/sshd_config'), 'y\n');
  const s = await vivaJson(t, ['status', sub, '-C', repo]);
  t.is(s.path, 'etc');
  t.deepEqual(s.entries.map((e: { status: string; path: string }) => `${e.status} ${e.path}`), ['M ssh/sshd_config']);
  const part = path.join(dir, 'part');
  await vivaOk(t, ['checkout', 'web', part, '--path', 'usr/bin', '-C', repo]);
  t.deepEqual((await vivaJson(t, ['status', part, '-C', repo])).entries, [], 'what --path left out is not "deleted"');
  const other = path.join(dir, 'other');
  fs.mkdirSync(other);
  const r = await viva(['status', other, '-C', repo]);
  t.is(r.code, EXIT.NOT_FOUND);
  t.regex(r.stderr, /^error: not a checkout of this repository: '.*other'/);
  // Removed and made again at the same place: another directory.
  fs.rmSync(sub, { recursive: true });
  fs.mkdirSync(sub);
  t.is((await viva(['status', sub, '-C', repo])).code, EXIT.NOT_FOUND);
});

test('status and diff: a REV:path checkout with hardlinks is clean (groups are named from the compared directory); a broken link shows', async (t) => {
  const dir = tmpDir(t);
  const repo = path.join(dir, 'repo');
  const src = path.join(dir, 'src');
  writeTree(src, { top: 'x\n', sub: { a: 'linked\n', deeper: { c: 'other\n' } } });
  fs.linkSync(path.join(src, 'sub/a'), path.join(src, 'sub/b'));
  fs.linkSync(path.join(src, 'sub/deeper/c'), path.join(src, 'sub/deeper/d'));
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', src, '-b', 'main', '-m', 'm', '-C', repo]);
  const out = path.join(dir, 'out');
  await vivaOk(t, ['checkout', 'main:sub', out, '-C', repo]);
  t.is(fs.statSync(path.join(out, 'a')).ino, fs.statSync(path.join(out, 'b')).ino);
  t.deepEqual((await vivaJson(t, ['status', out, '-C', repo])).entries, []);
  t.is((await vivaOk(t, ['diff', 'main:sub', out, '-C', repo])).stdout, '');
  // A whole-image checkout still compares as before.
  const whole = path.join(dir, 'whole');
  await vivaOk(t, ['checkout', 'main', whole, '-C', repo]);
  t.deepEqual((await vivaJson(t, ['status', whole, '-C', repo])).entries, []);
  // b made a copy of a instead of a link: both names leave the group.
  fs.rmSync(path.join(out, 'b'));
  fs.copyFileSync(path.join(out, 'a'), path.join(out, 'b'));
  const s = await vivaJson(t, ['status', out, '-C', repo]);
  t.deepEqual(s.entries.map((e: { status: string; path: string; changes?: string[] }) => `${e.status} ${e.path} ${e.changes?.join(',')}`), ['M a hardlink', 'M b hardlink']);
});
