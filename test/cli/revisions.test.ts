/** Revision syntax on the command line: @, REF@{N}, @{N}, @{-N}, @{upstream}, remotes/origin/x, A..B, A...B, ^REV; rev-parse, show-ref, reflog names. */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import { tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';

interface Fixture {
  dir: string;
  src: string;
  /** main: one, two, four; feature (from two): three; tag v1 at one; HEAD on main, feature checked out before. */
  lib: string;
  /** A clone of lib: origin/main, origin/feature; main tracks origin/main. */
  work: string;
  c: { one: string; two: string; three: string; four: string };
}

let fx: Fixture;

async function commit(t: ExecutionContext, repo: string, src: string, message: string, time: number): Promise<string> {
  const r = await vivaJson<{ id: string }>(t, ['commit', src, '-C', repo, '-m', message], { env: { VIVA_DATE: String(time) } });
  return r.id;
}

test.before(async (t) => {
  const dir = tmpDir(undefined, 'viva-revisions-');
  const src = path.join(dir, 'src');
  const lib = path.join(dir, 'lib');
  fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'one\n');
  await vivaOk(t as unknown as ExecutionContext, ['init', lib]);
  const tt = t as unknown as ExecutionContext;
  const one = await commit(tt, lib, src, 'one', 1_700_000_000);
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'two\n');
  const two = await commit(tt, lib, src, 'two', 1_700_000_100);
  await vivaOk(tt, ['switch', '-C', lib, '-c', 'feature']);
  fs.writeFileSync(path.join(src, 'feature'), 'x\n');
  const three = await commit(tt, lib, src, 'three', 1_700_000_200);
  await vivaOk(tt, ['switch', '-C', lib, 'main']);
  fs.rmSync(path.join(src, 'feature'));
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'four\n');
  const four = await commit(tt, lib, src, 'four', 1_700_000_300);
  await vivaOk(tt, ['tag', '-C', lib, 'v1', one]);
  const work = path.join(dir, 'work');
  await vivaOk(tt, ['clone', lib, work]);
  fx = { dir, src, lib, work, c: { one, two, three, four } };
});

test.after.always(() => {
  if (fx) fs.rmSync(fx.dir, { recursive: true, force: true });
});

/** `viva rev-parse ARGS` in REPO: its output lines. */
async function revParse(t: ExecutionContext, repo: string, ...args: string[]): Promise<string[]> {
  const r = await vivaOk(t, ['rev-parse', '-C', repo, ...args]);
  return r.stdout.split('\n').filter(Boolean);
}

async function logIds(t: ExecutionContext, repo: string, ...revs: string[]): Promise<string[]> {
  return (await vivaJson<Array<{ id: string }>>(t, ['log', '-C', repo, ...revs])).map((e) => e.id);
}

test('revisions: @ is HEAD; HEAD@{N} walks HEAD\'s reflog, REF@{N} the ref\'s, @{N} the branch HEAD is on', async (t) => {
  const { lib, c } = fx;
  t.deepEqual(await revParse(t, lib, '@', 'HEAD', '@~1', '@^'), [c.four, c.four, c.two, c.two]);
  // HEAD's reflog: commit four, checkout feature → main, commit three, checkout main → feature, two, one.
  t.deepEqual(await revParse(t, lib, 'HEAD@{0}', 'HEAD@{1}', 'HEAD@{2}', 'HEAD@{3}', 'HEAD@{5}'), [c.four, c.two, c.three, c.two, c.one]);
  // main's own reflog: four, two, one; feature's: three, created at two.
  t.deepEqual(await revParse(t, lib, 'main@{0}', 'main@{1}', 'main@{2}', 'feature@{1}', 'refs/heads/main@{1}'), [c.four, c.two, c.one, c.two, c.two]);
  t.deepEqual(await revParse(t, lib, '@{1}', '@{2}', 'main@{1}~1', '@{0}^'), [c.two, c.one, c.one, c.two]);
});

test('revisions: REF@{N} past the end of the reflog exits 3 with git\'s message', async (t) => {
  const r = await viva(['rev-parse', '-C', fx.lib, 'main@{3}']);
  t.is(r.code, EXIT.NOT_FOUND);
  t.is(r.stderr, "error: log for 'main' only has 3 entries\n");
  const l = await viva(['log', '-C', fx.lib, 'feature@{9}']);
  t.is(l.code, EXIT.NOT_FOUND);
  t.regex(l.stderr, /log for 'feature' only has 2 entries/);
});

test('revisions: @{-1} is the branch checked out before (from HEAD\'s reflog); without one it exits 3', async (t) => {
  const { lib, work, c } = fx;
  t.deepEqual(await revParse(t, lib, '@{-1}', '@{-1}~1', '@{-2}'), [c.three, c.two, c.four]);
  t.deepEqual(await revParse(t, lib, '--symbolic-full-name', '@{-1}'), ['refs/heads/feature']);
  t.deepEqual(await revParse(t, lib, '--abbrev-ref', '@{-1}'), ['feature']);
  // A fresh clone has switched nowhere.
  const r = await viva(['rev-parse', '-C', work, '@{-1}']);
  t.is(r.code, EXIT.NOT_FOUND);
  t.regex(r.stderr, /'@\{-1\}': HEAD's reflog records no earlier checkouts/);
});

test('reflog: HEAD has its own reflog, printed with git\'s names and messages', async (t) => {
  const { lib, c } = fx;
  const s = (o: string) => o.slice(0, 12);
  t.is((await vivaOk(t, ['reflog', '-C', lib])).stdout, [
    `${s(c.four)} HEAD@{0}: commit: four`,
    `${s(c.two)} HEAD@{1}: checkout: moving from feature to main`,
    `${s(c.three)} HEAD@{2}: commit: three`,
    `${s(c.two)} HEAD@{3}: checkout: moving from main to feature`,
    `${s(c.two)} HEAD@{4}: commit: two`,
    `${s(c.one)} HEAD@{5}: commit (initial): one`,
  ].join('\n') + '\n');
  t.is((await vivaOk(t, ['reflog', '-C', lib, 'main'])).stdout, `${s(c.four)} main@{0}: commit: four\n${s(c.two)} main@{1}: commit: two\n${s(c.one)} main@{2}: commit (initial): one\n`);
  const j = await vivaJson(t, ['reflog', '-C', lib]);
  t.is(j.ref, 'HEAD');
  t.like(j.entries[1], { old: c.three, new: c.two, message: 'checkout: moving from feature to main', selector: 'HEAD@{1}' });
  // Each selector printed resolves to the id printed beside it.
  t.deepEqual(await revParse(t, lib, ...j.entries.map((e: { selector: string }) => e.selector)), j.entries.map((e: { new: string }) => e.new));
  // A clone's HEAD starts with git's clone entry.
  t.regex((await vivaOk(t, ['reflog', '-C', fx.work])).stdout, /^[0-9a-f]{12} HEAD@\{0\}: clone: from .*lib\n$/);
});

test('revisions: origin/x, remotes/origin/x and refs/remotes/origin/x name the remote-tracking branch', async (t) => {
  const { work, c } = fx;
  t.deepEqual(await revParse(t, work, 'origin/feature', 'remotes/origin/feature', 'refs/remotes/origin/feature', 'remotes/origin/main~1'), [c.three, c.three, c.three, c.two]);
  t.deepEqual(await revParse(t, work, '--abbrev-ref', 'remotes/origin/feature'), ['origin/feature']);
  t.deepEqual(await logIds(t, work, 'remotes/origin/feature'), [c.three, c.two, c.one]);
});

test('revisions: @{upstream} and @{u} name the upstream of a branch; none configured exits 3', async (t) => {
  const { work, lib, c } = fx;
  t.deepEqual(await revParse(t, work, '@{u}', '@{upstream}', 'main@{u}', 'HEAD@{u}~1'), [c.four, c.four, c.four, c.two]);
  t.deepEqual(await revParse(t, work, '--abbrev-ref', '@{u}'), ['origin/main']);
  t.deepEqual(await revParse(t, work, '--symbolic-full-name', '@{upstream}'), ['refs/remotes/origin/main']);
  const r = await viva(['rev-parse', '-C', lib, '@{u}']);
  t.is(r.code, EXIT.NOT_FOUND);
  t.is(r.stderr, "error: no upstream configured for branch 'main'\n");
});

test('log: A..B lists what B has and A lacks, A...B what either has and the other lacks, ^A leaves out A\'s history', async (t) => {
  const { lib, c } = fx;
  t.deepEqual(await logIds(t, lib, 'main..feature'), [c.three]);
  t.deepEqual(await logIds(t, lib, 'feature..main'), [c.four]);
  t.deepEqual(await logIds(t, lib, 'main...feature'), [c.four, c.three]);
  t.deepEqual(await logIds(t, lib, 'feature', '^main'), [c.three]);
  t.deepEqual(await logIds(t, lib, '^main~1', 'main'), [c.four]);
  t.deepEqual(await logIds(t, lib, 'feature', 'main', '^v1'), [c.four, c.three, c.two]);
  // An empty side is HEAD (main); a range with nothing in it lists nothing.
  t.deepEqual(await logIds(t, lib, 'feature..'), [c.four]);
  t.deepEqual(await logIds(t, lib, '..feature'), [c.three]);
  t.deepEqual(await logIds(t, lib, 'main..main'), []);
  t.is((await vivaOk(t, ['log', '-C', lib, '--oneline', 'main..feature'])).stdout, `${c.three.slice(0, 12)} three\n`);
  const bad = await viva(['log', '-C', lib, 'main..nope']);
  t.is(bad.code, EXIT.NOT_FOUND);
});

test('diff: A..B is diff A B, A...B compares B with the merge base of A and B', async (t) => {
  const { lib } = fx;
  const paths = (d: { entries: Array<{ status: string; path: string }> }) => d.entries.map((e) => `${e.status} ${e.path}`).filter((p) => p !== 'M ').sort();
  const twoDots = await vivaJson(t, ['diff', '-C', lib, 'main..feature']);
  t.deepEqual(twoDots, await vivaJson(t, ['diff', '-C', lib, 'main', 'feature']));
  t.deepEqual(paths(twoDots), ['A feature', 'M etc/hostname']);
  const threeDots = await vivaJson(t, ['diff', '-C', lib, 'main...feature']);
  t.is(threeDots.a.commit, fx.c.two);
  t.deepEqual(paths(threeDots), ['A feature']);
  // Reflog names work in ranges too.
  t.deepEqual(paths(await vivaJson(t, ['diff', '-C', lib, 'main@{1}..main'])), ['M etc/hostname']);
});

test('rev-parse: full ids, --short, ranges as git prints them, REV:path, --verify; a missing revision exits 3', async (t) => {
  const { lib, c } = fx;
  t.deepEqual(await revParse(t, lib, 'main', 'v1'), [c.four, c.one]);
  t.deepEqual(await revParse(t, lib, '--short', 'main'), [c.four.slice(0, 12)]);
  t.deepEqual(await revParse(t, lib, 'main..feature'), [c.three, `^${c.four}`]);
  t.deepEqual(await revParse(t, lib, 'main...feature'), [c.three, c.four, `^${c.two}`]);
  t.deepEqual(await revParse(t, lib, '^v1', 'feature'), [`^${c.one}`, c.three]);
  const entry = await vivaJson(t, ['ls', '-C', lib, 'main:etc']);
  t.deepEqual(await revParse(t, lib, 'main:etc/hostname'), [entry.find((e: { path: string }) => e.path.endsWith('hostname')).oid]);
  t.deepEqual(await revParse(t, lib, '--verify', 'main~1'), [c.two]);
  for (const args of [['--verify', 'main..feature'], ['--verify', 'main', 'feature']]) {
    const r = await viva(['rev-parse', '-C', lib, ...args]);
    t.is(r.code, EXIT.USAGE, args.join(' '));
    t.is(r.stderr, 'error: needed a single revision\n');
  }
  const missing = await viva(['rev-parse', '-C', lib, '--verify', 'nope']);
  t.is(missing.code, EXIT.NOT_FOUND);
  t.is(missing.stdout, '');
  t.regex(missing.stderr, /unknown revision 'nope'/);
  const json = await vivaJson(t, ['rev-parse', '-C', lib, 'HEAD']);
  t.like(json[0], { arg: 'HEAD', oid: c.four, exclude: false, ref: 'refs/heads/main', text: c.four });
});

test('rev-parse: --abbrev-ref and --symbolic-full-name name the ref, and print nothing for a commit id', async (t) => {
  const { lib, work, c } = fx;
  t.deepEqual(await revParse(t, lib, '--abbrev-ref', 'HEAD', '@', 'feature', 'v1', c.two, 'main~1'), ['main', 'main', 'feature', 'v1']);
  t.deepEqual(await revParse(t, lib, '--symbolic-full-name', 'HEAD', 'v1', 'main@{1}'), ['refs/heads/main', 'refs/tags/v1']);
  t.deepEqual(await revParse(t, work, '--symbolic-full-name', 'origin/main'), ['refs/remotes/origin/main']);
});

test('show-ref: "<id> <full ref>" in name order; --heads, --tags, tail patterns; exit 1 when nothing matches', async (t) => {
  const { lib, work, c } = fx;
  t.is((await vivaOk(t, ['show-ref', '-C', lib])).stdout, `${c.three} refs/heads/feature\n${c.four} refs/heads/main\n${c.one} refs/tags/v1\n`);
  t.is((await vivaOk(t, ['show-ref', '-C', lib, '--heads'])).stdout, `${c.three} refs/heads/feature\n${c.four} refs/heads/main\n`);
  t.is((await vivaOk(t, ['show-ref', '-C', lib, '--tags'])).stdout, `${c.one} refs/tags/v1\n`);
  t.is((await vivaOk(t, ['show-ref', '-C', lib, '--heads', '--tags', 'v1', 'feature'])).stdout, `${c.three} refs/heads/feature\n${c.one} refs/tags/v1\n`);
  // A pattern matches whole trailing components: main matches refs/heads/main and refs/remotes/origin/main, not 'ain'.
  t.is((await vivaOk(t, ['show-ref', '-C', work, 'main'])).stdout, `${c.four} refs/heads/main\n${c.four} refs/remotes/origin/main\n`);
  t.is((await vivaOk(t, ['show-ref', '-C', work, 'origin/feature'])).stdout, `${c.three} refs/remotes/origin/feature\n`);
  const none = await viva(['show-ref', '-C', lib, 'ain']);
  t.is(none.code, EXIT.FAILURE);
  t.is(none.stdout, '');
  t.deepEqual(await vivaJson(t, ['show-ref', '-C', lib, '--tags']), [{ ref: 'refs/tags/v1', oid: c.one }]);
});
