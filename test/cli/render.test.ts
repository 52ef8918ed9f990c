/** Tests of the CLI's human renderers. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import {
  MAX_LISTED_WARNINGS, displayWidth, modeString, renderDiffStat, renderLs, renderPackageDiff, renderPackages, renderRefs, renderWarnings,
} from '../../src/cli/render.js';
import type { DiffEntry } from '../../src/ops/diff.js';
import type { LsEntry } from '../../src/ops/ls.js';
import { tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';
import { ustarArchive } from '../helpers/ustar.js';

test('render: few checkout warnings are listed one by one', (t) => {
  const w = [{ path: '/d/a', message: 'cannot set owner 0:0 (EPERM)' }];
  t.deepEqual(renderWarnings(w), ['/d/a: cannot set owner 0:0 (EPERM)']);
});

test('render: many checkout warnings are grouped by kind with a count and examples', (t) => {
  const w = Array.from({ length: MAX_LISTED_WARNINGS + 5 }, (_, i) => ({ path: `/d/f${i}`, message: `cannot set owner ${i}:${i} (EPERM)` }));
  w.push({ path: '/d/chr', message: 'cannot create character device 1:3 (EPERM)' });
  w.push({ path: '/d/x', message: "cannot set xattr 'trusted.viva' (EPERM)" });
  t.deepEqual(renderWarnings(w), [
    'cannot set owner: 15 entries (/d/f0, /d/f1, /d/f2, …)',
    'cannot create character device: 1 entry (/d/chr)',
    'cannot set xattr: 1 entry (/d/x)',
  ]);
});

test('render: a summary warning counts its entries when many warnings are grouped', (t) => {
  const w: Array<{ path: string; message: string; count?: number }> = Array.from({ length: MAX_LISTED_WARNINGS + 1 }, (_, i) => ({ path: `/d/s${i}`, message: 'sockets cannot be stored in a tar archive: skipped' }));
  w.unshift({ path: '/d', message: 'cannot set owner 0:0 (EPERM), nor the owners of 41 more entries', count: 42 });
  t.deepEqual(renderWarnings(w), [
    'cannot set owner: 42 entries (/d, …)',
    'sockets cannot be stored in a tar archive: skipped: 11 entries (/d/s0, /d/s1, /d/s2, …)',
  ]);
});

/** The terminal column where `marker` starts on each line (display width of what precedes it). */
const columnOf = (text: string, marker: RegExp) => text.split('\n').map((l) => displayWidth(l.slice(0, l.search(marker))));

const WIDE = ['main', '日本語のブランチ', 'release/🚀', 'café', 'e\u0301t\u00e9', '한국어'];
const OID = 'a'.repeat(64);

test('render: displayWidth counts CJK and emoji as two columns, combining marks as none', (t) => {
  t.is(displayWidth('main'), 4);
  t.is(displayWidth('日本語'), 6);
  t.is(displayWidth('🚀'), 2);
  t.is(displayWidth('e\u0301'), 1);
});

test('render: branch and tag lists align the ids by display width (CJK, emoji, combining marks)', (t) => {
  const out = renderRefs(WIDE.map((name, i) => ({ name, ref: `refs/heads/${name}`, oid: OID, ...(i === 0 ? { head: true } : {}) })));
  const cols = columnOf(out, /aaaaaaaa/);
  t.is(new Set(cols).size, 1, out);
  t.is(cols[0], 2 + displayWidth('日本語のブランチ') + 2);
});

test('render: diff --stat, diff --packages and packages align their columns by display width', (t) => {
  const entries: DiffEntry[] = WIDE.map((name) => ({ status: 'A', path: `etc/${name}`, new: { type: 'file', size: 3 } }) as DiffEntry);
  const stat = renderDiffStat(entries).split('\n').slice(0, -1).join('\n');
  t.is(new Set(columnOf(stat, / \| /)).size, 1, stat);
  const pkgs = renderPackageDiff({ changes: WIDE.map((name) => ({ change: 'added', name, to: '1.0-1', arch: 'amd64' })) } as never);
  t.is(new Set(columnOf(pkgs, /1\.0-1/)).size, 1, pkgs);
  const rows = renderPackages(WIDE.map((name, i) => ({ name, version: i % 2 ? '二.0' : '2.0', arch: 'amd64' }))).join('\n');
  t.is(new Set(columnOf(rows, /amd64/)).size, 1, rows);
});

test('render: modeString shows type, setuid, setgid and sticky like ls -l', (t) => {
  t.is(modeString('file', '4755'), '-rwsr-xr-x');
  t.is(modeString('dir', '1777'), 'drwxrwxrwt');
  t.is(modeString('file', '2644'), '-rw-r-Sr--');
  t.is(modeString('chr', '0600'), 'crw-------');
});

const fileAt = (mtimeNs: string): LsEntry => ({ path: 'f', type: 'file', mode: '644', uid: 0, gid: 0, size: 0, mtimeNs });
const timeOf = (mtimeNs: string) => renderLs([fileAt(mtimeNs)], true).split(/ +/)[4]!.concat(' ', renderLs([fileAt(mtimeNs)], true).split(/ +/)[5]!);

test('render: ls -l times to the nanosecond, also before the epoch, beyond year 9999 with seconds, and as @SECONDS.NANOS where no Date reaches', (t) => {
  t.is(timeOf('1700000000123456789'), '2023-11-14 22:13:20.123456789');
  // Before the epoch: the second before, plus a non-negative fraction.
  t.is(timeOf('-1500000000'), '1969-12-31 23:59:58.500000000');
  // Years outside 0–9999 keep their seconds.
  t.is(timeOf('-100000000000000000000'), '-001199-02-15 14:13:20.000000000');
  t.is(timeOf('300000000000000000001'), '+011476-08-15 05:20:00.000000001');
  t.is(timeOf('8640000000000000000000'), '+275760-09-13 00:00:00.000000000');
  // Out of any Date's range: the exact value, never an exception.
  t.is(renderLs([fileAt('1000000000000000000000000')], true).split(/ +/)[4], '@1000000000000000.000000000');
  t.is(renderLs([fileAt('-8640000000001500000000')], true).split(/ +/)[4], '@-8640000000001.500000000');
});

/** A pax extended header ('x') member setting `records` for the next member. */
function paxHeader(records: Record<string, string>): { name: string; type: 'x'; data: Buffer } {
  const lines = Object.entries(records).map(([k, v]) => {
    const body = ` ${k}=${v}\n`;
    let n = body.length + 1;
    while (String(n).length + body.length !== n) n = String(n).length + body.length;
    return `${n}${body}`;
  });
  return { name: 'PaxHeader/f', type: 'x', data: Buffer.from(lines.join(''), 'latin1') };
}

test('cli ls -l: a tar entry whose pax mtime no Date can show lists as @SECONDS.NANOS instead of failing with exit 70', async (t) => {
  const dir = tmpDir(t);
  const tar = path.join(dir, 'far.tar');
  fs.writeFileSync(tar, ustarArchive([
    paxHeader({ mtime: '1000000000000000' }), { name: 'far', data: 'x\n' },
    paxHeader({ mtime: '-100000000000.25' }), { name: 'old', data: 'y\n' },
  ]));
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', '-C', repo, tar, '-m', 'far times']);
  const r = await viva(['ls', '-C', repo, '-l', 'main']);
  t.is(r.code, EXIT.OK, r.stderr);
  t.is(r.stderr, '');
  t.regex(r.stdout, /^-rw-r--r-- +0 +0 +2 @1000000000000000\.000000000 far$/m);
  t.regex(r.stdout, /^-rw-r--r-- +0 +0 +2 -001199-02-15 14:13:19\.750000000 old$/m);
  // JSON keeps the exact nanoseconds.
  const j = await vivaJson(t, ['ls', '-C', repo, '-l', 'main', '--json']);
  t.truthy(JSON.stringify(j).includes('"1000000000000000000000000"'));
});

test('cli branch, tag: names with CJK characters and emoji line the ids up in one column', async (t) => {
  const dir = tmpDir(t);
  const tar = path.join(dir, 'a.tar');
  fs.writeFileSync(tar, ustarArchive([{ name: 'f', data: 'x\n' }]));
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', '-C', repo, tar, '-m', 'one']);
  for (const name of ['日本語', 'release/🚀', 'x']) {
    await vivaOk(t, ['branch', '-C', repo, name]);
    await vivaOk(t, ['tag', '-C', repo, `v-${name}`]);
  }
  for (const [cmd, n] of [['branch', 4], ['tag', 3]] as const) {
    const out = (await vivaOk(t, [cmd, '-C', repo])).stdout.trimEnd();
    t.is(out.split('\n').length, n, out);
    t.is(new Set(columnOf(out, /[0-9a-f]{12}$/)).size, 1, out);
  }
});
