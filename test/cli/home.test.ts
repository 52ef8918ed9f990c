/**
 * A run whose $HOME cannot be read (a service account, `su nobody`): oclif looks for user plugins in
 * ~/.local/share/viva and used to print an EACCES warning before every command's output.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import { tmpDir, viva } from '../helpers/cli.js';

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

(isRoot ? test : test.skip)('cli: an unreadable $HOME gives no warnings, only the command\'s own output', async (t) => {
  const dir = tmpDir(t);
  const home = path.join(dir, 'home');
  fs.mkdirSync(home, { mode: 0o700 }); // root's: nobody can neither read nor enter it
  fs.mkdirSync(path.join(home, '.local/share/viva'), { recursive: true });
  fs.writeFileSync(path.join(home, '.local/share/viva/package.json'), '{}');
  const work = path.join(dir, 'work');
  fs.mkdirSync(work);
  fs.chownSync(work, NOBODY, NOBODY);
  const as = { uid: NOBODY, gid: NOBODY, cwd: work, env: { HOME: home, XDG_DATA_HOME: undefined, XDG_CONFIG_HOME: undefined, XDG_CACHE_HOME: undefined } };
  const version = await viva(['--version'], as);
  t.is(version.code, 0, version.stderr);
  t.is(version.stderr, '');
  const init = await viva(['init', 'repo'], as);
  t.is(init.code, 0, init.stderr);
  t.is(init.stderr, '');
  t.regex(init.stdout, /^Initialized empty viva repository in .*\n$/);
  const log = await viva(['log', '-C', 'repo'], as);
  t.is(log.code, EXIT.NOT_FOUND, log.stderr);
  t.is(log.stderr, "error: your current branch 'main' does not have any commits yet\n");
  const unknown = await viva(['bogus'], as);
  t.is(unknown.code, EXIT.USAGE);
  t.is(unknown.stderr, "error: 'bogus' is not a viva command\nSee 'viva --help'.\n");
  const help = await viva(['gc', '--help'], as);
  t.is(help.code, 0);
  t.is(help.stderr, '');
});
