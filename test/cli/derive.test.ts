/** derive, rebuild, derivations, show --derivation and log --derived-from on the command line: order, output, exit codes. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import { tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';

async function setup(t: import('ava').ExecutionContext): Promise<{ repo: string; src: string; dir: string }> {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'base\n');
  fs.writeFileSync(path.join(src, 'etc/motd'), 'hello\n');
  fs.symlinkSync('etc', path.join(src, 'link'));
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', '-C', repo, src, '-b', 'base', '-m', 'base']);
  return { repo, src, dir };
}

test('cli derive: edits apply in the order given, across flag kinds; the result is a commit with a derivation', async (t) => {
  const { repo } = await setup(t);
  // rm then set on the same path: only the given order makes this a new file (0644), not a failed rm.
  const r = await vivaOk(t, ['derive', '-C', repo, 'base', '-b', 'web/01', '--set', 'etc/x=one', '--rm', 'etc/x', '--set=etc/x=two', '-m', '--rm etc/motd', '--chmod', '0600:etc/x']);
  t.regex(r.stdout, /^\[web\/01 \(root-commit\) [0-9a-f]{12}\] derived from base \([0-9a-f]{12}\): 4 edits, 2 directories written; recipe [0-9a-f]{12}\n$/);
  t.is((await vivaOk(t, ['cat', '-C', repo, 'web/01:etc/x'])).stdout, 'two');
  // -m's value was a message, not an edit: motd is still there.
  t.is((await vivaOk(t, ['cat', '-C', repo, 'web/01:etc/motd'])).stdout, 'hello\n');
  const ls = await vivaJson(t, ['ls', '-C', repo, 'web/01:etc']);
  t.is(ls.find((e: { path: string }) => e.path === 'etc/x').mode, '0600');
  const show = await vivaOk(t, ['show', '-C', repo, 'web/01', '--derivation']);
  t.regex(show.stdout, /base:   [0-9a-f]{64} \(base\)/);
  t.regex(show.stdout, /\n {4}1 {2}write etc\/x\n {4}2 {2}rm etc\/x\n {4}3 {2}write etc\/x\n {4}4 {2}chmod 0600 etc\/x\n?$/);
  const j = await vivaJson(t, ['show', '-C', repo, 'web/01']);
  t.is(j.derivation.recipe.edits.length, 4);
  t.is(j.derivation.bases[0].refs[0], 'refs/heads/base');
  const json = await vivaJson(t, ['derive', '-C', repo, 'base', '-b', 'web/02', '--mkdir', 'srv', '--json']);
  t.is(json.branch, 'refs/heads/web/02');
  t.is(json.edits, 1);
});

test('cli derive: bad input is one line with a documented exit code, and no branch moves', async (t) => {
  const { repo, dir } = await setup(t);
  const cases: Array<[string[], number, RegExp]> = [
    [['base', '-b', 'x'], EXIT.USAGE, /nothing to derive/],
    [['-b', 'x', '--rm', 'a'], EXIT.USAGE, /give BASE and -b BRANCH/],
    [['base', '-b', 'x', '--rm', 'etc/nope'], EXIT.USAGE, /^error: edit 1 \(rm etc\/nope\) does not apply: path 'etc\/nope' does not exist in 'base'\n$/],
    [['base', '-b', 'x', '--set', 'link/hostname=x'], EXIT.USAGE, /'link' is a symlink \(edits never follow symlinks\)/],
    [['base', '-b', 'x', '--set', '../x=1'], EXIT.USAGE, /name '\.\.'/],
    [['base', '-b', 'x', '--chmod', '0999:etc/motd'], EXIT.USAGE, /mode '0999' is not octal/],
    [['base', '-b', 'x', '--chown', 'root:0:etc/motd'], EXIT.USAGE, /uid 'root' is not a number/],
    [['base', '-b', 'x', '--set', 'noequals'], EXIT.USAGE, /--set 'noequals': expected PATH=TEXT/],
    [['base', '-b', 'x', '--rm-xattr', 'etc/motd:user.none'], EXIT.USAGE, /has no xattr 'user\.none'/],
    [['base', '-b', 'x', '--add', `${dir}/absent:etc/a`], EXIT.SOURCE_UNREADABLE, /cannot read '.*absent': no such file or directory/],
    [['nope', '-b', 'x', '--rm', 'etc/motd'], EXIT.NOT_FOUND, /unknown revision 'nope'/],
    [['base', '-b', 'bad..name', '--rm', 'etc/motd'], EXIT.USAGE, /bad\.\.name/],
    [['--batch', `${dir}/absent.yaml`], EXIT.SOURCE_UNREADABLE, /cannot read/],
    [['--batch', 'x.yaml', 'base'], EXIT.USAGE, /give it alone/],
  ];
  for (const [args, code, re] of cases) {
    const r = await viva(['derive', '-C', repo, ...args]);
    t.is(r.code, code, args.join(' '));
    t.regex(r.stderr, re, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, args.join(' '));
  }
  const spec = path.join(dir, 'dup.yaml');
  fs.writeFileSync(spec, 'base: base\nvariants:\n  - branch: a\n    edits: [{ rm: etc/motd }]\n  - branch: a\n    edits: [{ rm: etc/hostname }]\n');
  const dup = await viva(['derive', '-C', repo, '--batch', spec]);
  t.is(dup.code, EXIT.USAGE);
  t.regex(dup.stderr, /dup\.yaml:5: branch 'a' is also made at .*dup\.yaml:3/);
  t.deepEqual((await vivaOk(t, ['branch', '-C', repo])).stdout.trim().split('\n').map((l) => l.replace(/^\*?\s+/, '').split(/\s+/)[0]), ['base']);
});

test('cli rebuild and derivations: behind, rebuilt, unchanged; a failed branch makes exit 1', async (t) => {
  const { repo, src } = await setup(t);
  await vivaOk(t, ['derive', '-C', repo, 'base', '-b', 'web', '--set', 'etc/hostname=web\n']);
  await vivaOk(t, ['derive', '-C', repo, 'base', '-b', 'nomotd', '--rm', 'etc/motd']);
  t.regex((await vivaOk(t, ['derivations', '-C', repo])).stdout, /^nomotd <- base \(up to date\), 1 edit, recipe [0-9a-f]{12}\nweb    <- base \(up to date\), 1 edit/);
  fs.rmSync(path.join(src, 'etc/motd'));
  await vivaOk(t, ['commit', '-C', repo, src, '-b', 'base', '-m', 'no motd']);
  t.regex((await vivaOk(t, ['derivations', '-C', repo, 'base'])).stdout, /web {4}<- base \(1 behind\)/);
  t.regex((await vivaOk(t, ['derivations', '-C', repo, '--dot'])).stdout, /"base" -> "web" \[label="1 behind", style=dashed\];/);
  t.is((await vivaOk(t, ['log', '-C', repo, '--derived-from', 'base', '--oneline'])).stdout.trim().split('\n').length, 2);
  const r = await viva(['rebuild', '-C', repo, '--derived-from', 'base']);
  t.is(r.code, 1);
  t.regex(r.stdout, /^failed {4}nomotd: edit 1 \(rm etc\/motd\) does not apply/m);
  t.regex(r.stdout, /^rebuilt {3}web: [0-9a-f]{12} on [0-9a-f]{12}$/m);
  t.regex(r.stdout, /1 rebuilt, 0 unchanged, 1 failed\n$/);
  const second = await viva(['rebuild', '-C', repo, '--derived-from', 'base', '--json']);
  t.is(second.code, 1); // nomotd still does not apply
  const again = JSON.parse(second.stdout);
  t.is(again.rebuilt, 0);
  t.is(again.items.find((i: { branch: string }) => i.branch === 'refs/heads/web').status, 'unchanged');
  const bad = await viva(['rebuild', '-C', repo, 'base', '--onto', 'web', '-b', 'x']);
  t.is(bad.code, EXIT.USAGE);
  t.regex(bad.stderr, /has no derivation record/);
  t.regex((await vivaOk(t, ['derive', '--help'])).stdout, /EXIT STATUS/);
});
