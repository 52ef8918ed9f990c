/**
 * The CLI on a real terminal (a tmux pane) and on a pipe: progress, colour and the pager only on a terminal, global
 * flags before the command, "did you mean" for a mistyped command, shell completion. Each terminal run records what
 * the program wrote to the pane (tmux pipe-pane), so a progress line drawn and then cleared is still seen.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, ROOT, cleanEnv, delay, tmpDir, viva, vivaOk } from '../helpers/cli.js';
import { randomBytes } from '../helpers/repo.js';
import { hoistGlobalFlags } from '../../src/cli/argv.js';
import { closestCommand, editDistance } from '../../src/cli/hooks/not-found.js';
import { colorWanted } from '../../src/cli/color.js';
import { formatEta, progressLine } from '../../src/cli/progress.js';

const haveTmux = spawnSync('tmux', ['-V']).status === 0;
const tmuxTest = haveTmux ? test : test.skip;
/** Any SGR colour sequence (`ESC [ 33 m`, `ESC [ 1;32 m`), not the bare reset or cursor moves. */
// eslint-disable-next-line no-control-regex
const COLOR = /\x1b\[[0-9;]*3[0-7]m/;

interface PaneRun {
  /** Everything the command wrote to the terminal, escape sequences included. */
  output: string;
  code: number;
}

let sessions = 0;

/**
 * Runs `node bin/run.js ...args` in a new tmux pane (stdin, stdout and stderr a terminal) in `cwd`, with the test
 * environment plus `env`. `keys` are typed into the pane once `waitFor` shows in its output.
 */
async function inPane(t: ExecutionContext, cwd: string, args: string[], env: Record<string, string | undefined> = {}, keys?: { waitFor: RegExp; send: string[] }): Promise<PaneRun> {
  const dir = tmpDir(t, 'viva-tty-');
  const socket = `viva-tty-${process.pid}-${sessions++}`;
  const full = cleanEnv({ NO_COLOR: undefined, TERM: 'xterm-256color', ...env });
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const exports = Object.entries(full).filter(([k]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k)).map(([k, v]) => `export ${k}=${q(v ?? '')}`);
  const unset = Object.keys(env).filter((k) => env[k] === undefined).map((k) => `unset ${k}`);
  const script = path.join(dir, 'run.sh');
  const log = path.join(dir, 'pane.log');
  const exit = path.join(dir, 'exit');
  const go = path.join(dir, 'go');
  fs.writeFileSync(script, [
    ...exports, ...unset, 'unset TMUX TMUX_PANE', `cd ${q(cwd)}`,
    // Wait until the pane is recorded, then run.
    `while [ ! -e ${q(go)} ]; do sleep 0.05; done`,
    `${q(process.execPath)} ${q(BIN)} ${args.map(q).join(' ')}`,
    `echo $? > ${q(exit)}.tmp && mv ${q(exit)}.tmp ${q(exit)}`, 'sleep 60', '',
  ].join('\n'));
  const tmux = (...a: string[]) => execFileSync('tmux', ['-L', socket, '-f', '/dev/null', ...a], { encoding: 'utf8' });
  tmux('new-session', '-d', '-x', '160', '-y', '40', `sh ${q(script)}`);
  t.teardown(() => { try { tmux('kill-server'); } catch { /* already gone */ } });
  tmux('pipe-pane', '-o', `cat >> ${q(log)}`);
  fs.writeFileSync(go, '');
  const deadline = Date.now() + 90_000;
  let typed = false;
  while (!fs.existsSync(exit)) {
    if (Date.now() > deadline) throw new Error(`no exit after 90 s; pane:\n${tmux('capture-pane', '-p')}`);
    if (keys && !typed && keys.waitFor.test(fs.existsSync(log) ? fs.readFileSync(log, 'latin1') : '')) {
      typed = true;
      tmux('send-keys', ...keys.send);
    }
    await delay(50);
  }
  // pipe-pane's cat may still be writing the last bytes.
  await delay(300);
  return { output: fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '', code: Number(fs.readFileSync(exit, 'utf8').trim()) };
}

/** A repository with one commit of a small tree, and an uncompressed tar of 8 MiB in 16 files next to it. */
async function fixture(t: ExecutionContext): Promise<{ dir: string; repo: string; tar: string }> {
  const dir = tmpDir(t, 'viva-tty-');
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'hello'), 'hello\n');
  await vivaOk(t, ['commit', '-C', repo, src, '-m', 'first']);
  fs.writeFileSync(path.join(src, 'hello'), 'hello again\n');
  await vivaOk(t, ['commit', '-C', repo, src, '-m', 'second']);
  const big = path.join(dir, 'big');
  fs.mkdirSync(big);
  for (let i = 0; i < 16; i++) fs.writeFileSync(path.join(big, `f${i}`), randomBytes(512 * 1024, `tty-${i}`));
  const tar = path.join(dir, 'big.tar');
  execFileSync('tar', ['-cf', tar, '-C', dir, 'big']);
  return { dir, repo, tar };
}

tmuxTest('tty: commit, checkout, fsck and gc show progress on a terminal, with a percentage for a tar; nothing on a pipe or with --quiet', async (t) => {
  const { dir, repo, tar } = await fixture(t);
  const c = await inPane(t, dir, ['commit', '-C', repo, tar, '-b', 'big', '-m', 'big']);
  t.is(c.code, 0, c.output);
  t.regex(c.output, /committing: +\d+% \[[#-]+\] [\d.]+ (KiB|MiB)\/8\.0 MiB/);
  t.regex(c.output, /ETA /);
  t.regex(c.output, /\[big \(root-commit\) [0-9a-f]{12}\] 16 files/);
  const co = await inPane(t, dir, ['checkout', '-C', repo, 'big', path.join(dir, 'out.tar')]);
  t.is(co.code, 0, co.output);
  t.regex(co.output, /checking out: +\d+% \[[#-]+\] [\d.]+ (B|KiB|MiB)\/8\.0 MiB/);
  const f = await inPane(t, dir, ['fsck', '-C', repo]);
  t.is(f.code, 0, f.output);
  t.regex(f.output, /checking objects: +\d+% \[[#-]+\] \d+\/\d+ objects/);
  const g = await inPane(t, dir, ['gc', '-C', repo]);
  t.is(g.code, 0, g.output);
  t.regex(g.output, /(marking reachable objects|removing objects|compacting packs):/);

  const quiet = await inPane(t, dir, ['commit', '-q', '-C', repo, tar, '-b', 'big2', '-m', 'again']);
  t.is(quiet.code, 0, quiet.output);
  t.notRegex(quiet.output, /committing/);
  t.notRegex(quiet.output, /root-commit/, '--quiet drops the summary line too');
  const json = await inPane(t, dir, ['fsck', '--json', '-C', repo]);
  t.notRegex(json.output, /checking objects/);

  const piped = await vivaOk(t, ['commit', '-C', repo, tar, '-b', 'big3', '-m', 'piped']);
  t.notRegex(piped.stderr, /committing|%|\x1b/);
  t.is(piped.stderr, '');
});

tmuxTest('tty: colour on a terminal, none with NO_COLOR, --no-color or on a pipe; --color=always on a pipe', async (t) => {
  const { dir, repo } = await fixture(t);
  const on = await inPane(t, dir, ['log', '--no-pager', '-C', repo]);
  t.is(on.code, 0, on.output);
  t.regex(on.output, /\x1b\[33mcommit [0-9a-f]{64}\x1b\[m/, 'ids yellow, as git');
  t.regex(on.output, /\x1b\[1;32mmain\x1b\[m/, 'branches bold green in decorations');
  const noColor = await inPane(t, dir, ['log', '--no-pager', '-C', repo], { NO_COLOR: '1' });
  t.regex(noColor.output, /commit [0-9a-f]{64}/);
  t.notRegex(noColor.output, COLOR);
  const flag = await inPane(t, dir, ['--no-color', 'log', '--no-pager', '-C', repo]);
  t.regex(flag.output, /commit [0-9a-f]{64}/);
  t.notRegex(flag.output, COLOR);

  const piped = await vivaOk(t, ['log', '-C', repo], { env: { NO_COLOR: undefined } });
  t.notRegex(piped.stdout, /\x1b/);
  const forced = await vivaOk(t, ['log', '-C', repo, '--color=always']);
  t.regex(forced.stdout, /\x1b\[33mcommit /, '--color=always wins over NO_COLOR and a pipe');
  const bare = await vivaOk(t, ['--color', 'log', '-C', repo, '--oneline']);
  t.regex(bare.stdout, /^\x1b\[33m[0-9a-f]{12}\x1b\[m /m, 'a bare --color is --color=always, as git');
  const json = await vivaOk(t, ['log', '-C', repo, '--json', '--color=always']);
  t.notRegex(json.stdout, /\x1b/, 'never colour in --json');
});

tmuxTest('tty: long output goes through VIVA_PAGER on a terminal, not with --no-pager, --json or on a pipe', async (t) => {
  const { dir, repo } = await fixture(t);
  const marker = path.join(dir, 'pager-ran');
  const pager = path.join(dir, 'pager.sh');
  fs.writeFileSync(pager, `#!/bin/sh\necho "LESS=$LESS LIBC=\${LIBC-unset} MSGPACKR=\${MSGPACKR_NATIVE_ACCELERATION_DISABLED-unset}" > '${marker}'\ncat\n`, { mode: 0o755 });
  const paged = await inPane(t, dir, ['log', '-C', repo], { VIVA_PAGER: pager, LESS: undefined, LIBC: undefined, MSGPACKR_NATIVE_ACCELERATION_DISABLED: undefined });
  t.is(paged.code, 0, paged.output);
  t.true(fs.existsSync(marker), 'the pager ran');
  // LESS=FRX as git sets it when unset; LIBC and MSGPACKR_NATIVE_ACCELERATION_DISABLED, which bin/run.js sets while
  // lmdb loads, are gone by then.
  t.is(fs.readFileSync(marker, 'utf8'), 'LESS=FRX LIBC=unset MSGPACKR=unset\n');
  t.regex(paged.output, /commit [0-9a-f]{64}/, "the log came through the pager's cat");
  fs.rmSync(marker);

  const viaPager = await inPane(t, dir, ['diff', '-C', repo, 'main~1', 'main'], { PAGER: pager, VIVA_PAGER: undefined });
  t.is(viaPager.code, 0, viaPager.output);
  t.true(fs.existsSync(marker), 'PAGER when VIVA_PAGER is unset');
  t.is(fs.readFileSync(marker, 'utf8'), 'LESS=FRX LIBC=unset MSGPACKR=unset\n');
  fs.rmSync(marker);

  for (const args of [['log', '--no-pager', '-C', repo], ['--no-pager', 'log', '-C', repo], ['log', '--json', '-C', repo]]) {
    const r = await inPane(t, dir, args, { VIVA_PAGER: pager });
    t.is(r.code, 0, r.output);
    t.false(fs.existsSync(marker), `no pager with ${args.join(' ')}`);
    t.regex(r.output, /[0-9a-f]{64}/);
  }
  const cat = await inPane(t, dir, ['log', '-C', repo], { VIVA_PAGER: 'cat', PAGER: pager });
  t.is(cat.code, 0);
  t.false(fs.existsSync(marker), 'VIVA_PAGER=cat turns the pager off');

  await vivaOk(t, ['log', '-C', repo], { env: { VIVA_PAGER: pager } });
  t.false(fs.existsSync(marker), 'no pager on a pipe');

  const missing = await inPane(t, dir, ['log', '-C', repo], { VIVA_PAGER: path.join(dir, 'no-such-pager') });
  t.is(missing.code, 0, missing.output);
  t.regex(missing.output, /warning: cannot run pager '.*no-such-pager': not found/);
  t.regex(missing.output, /commit [0-9a-f]{64}/, 'the output is not lost to a pager that cannot run');
});

tmuxTest('tty: a mistyped command asks on a terminal; answering no is a usage error', async (t) => {
  const dir = tmpDir(t, 'viva-tty-');
  const r = await inPane(t, dir, ['lgo'], {}, { waitFor: /Did you mean/, send: ['n', 'Enter'] });
  t.regex(r.output, /Did you mean .*log/);
  t.regex(r.output, /error: 'lgo' is not a viva command; did you mean 'log'\?/);
  t.is(r.code, 2);
});

test('tty: a mistyped command on a pipe names the closest command and exits 2, without asking', async (t) => {
  const r = await viva(['lgo'], { input: 'y\n' });
  t.is(r.code, 2);
  t.is(r.stderr, "error: 'lgo' is not a viva command; did you mean 'log'?\nSee 'viva --help'.\n");
  t.is(r.stdout, '');
  const topic = await viva(['remote', 'ad', 'x', 'y']);
  t.is(topic.code, 2);
  t.regex(topic.stderr, /^error: 'remote ad' is not a viva command; did you mean 'remote add'\?$/m);
  const far = await viva(['xyzzy']);
  t.is(far.stderr, "error: 'xyzzy' is not a viva command\nSee 'viva --help'.\n", 'no suggestion when nothing is close');
  const inTopic = await viva(['remote', 'zzz']);
  t.is(inTopic.stderr, "error: 'remote zzz' is not a viva command\nSee 'viva --help'.\n", "a topic's commands only, none close");
});

test('tty: global flags before the command, -h as --help', async (t) => {
  const dir = tmpDir(t, 'viva-tty-');
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  fs.mkdirSync(path.join(dir, 'src'));
  fs.writeFileSync(path.join(dir, 'src', 'a'), 'a');
  await vivaOk(t, ['-C', repo, 'commit', path.join(dir, 'src'), '-m', 'one']);
  const log = await vivaOk(t, ['-C', repo, 'log', '--oneline']);
  t.regex(log.stdout, /^[0-9a-f]{12} one\n$/);
  t.is((await vivaOk(t, [`--repo=${repo}`, '--no-pager', '--no-color', 'log', '--oneline'])).stdout, log.stdout);
  t.is((await vivaOk(t, ['--no-pager', '-C', repo, 'ls', 'main'])).stdout, 'a\n');
  const help = await vivaOk(t, ['-h']);
  t.regex(help.stdout, /^USAGE/m);
  const logHelp = await vivaOk(t, ['log', '-h']);
  t.regex(logHelp.stdout, /show the history of an image branch/);
  t.regex(logHelp.stdout, /--no-pager/);
  // The version as oclif prints it, for --version and git's -v alike (without loading oclif).
  const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string;
  const line = `viva/${version} ${process.platform}-${process.arch} node-${process.version}\n`;
  t.is((await vivaOk(t, ['--version'])).stdout, line);
  t.is((await vivaOk(t, ['-v'])).stdout, line);
  t.is((await vivaOk(t, ['--no-pager', '-v'])).stdout, line);
});

test('tty: shell completion scripts for bash and zsh', async (t) => {
  const cache = tmpDir(t, 'viva-tty-');
  for (const shell of ['bash', 'zsh']) {
    const setup = await vivaOk(t, ['autocomplete', shell], { env: { XDG_CACHE_HOME: cache } });
    t.regex(setup.stdout, new RegExp(`viva autocomplete script ${shell}`));
    const script = await vivaOk(t, ['autocomplete', 'script', shell], { env: { XDG_CACHE_HOME: cache } });
    t.regex(script.stdout, /VIVA_AC_/);
  }
  // `viva autocomplete SHELL` built the cache the script sources: every command with its flags.
  const functions = fs.readFileSync(path.join(cache, 'viva', 'autocomplete', 'functions', 'bash', 'viva.bash'), 'utf8');
  t.regex(functions, /^checkout .*--no-pager/m);
  t.regex(functions, /^complete -F \S+ viva$/m);
  t.true(fs.existsSync(path.join(cache, 'viva', 'autocomplete', 'functions', 'zsh', '_viva')));
});

test('tty: hoistGlobalFlags moves leading global flags after the command, before --', (t) => {
  t.deepEqual(hoistGlobalFlags(['-C', 'r', 'log']), ['log', '-C', 'r']);
  t.deepEqual(hoistGlobalFlags(['-Cr', '--no-pager', 'remote', 'add', 'o', 'u']), ['remote', 'add', 'o', 'u', '-Cr', '--no-pager']);
  t.deepEqual(hoistGlobalFlags(['--repo=r', 'log', '--', 'etc']), ['log', '--repo=r', '--', 'etc']);
  t.deepEqual(hoistGlobalFlags(['--color', 'log', '--', '--color']), ['log', '--color=always', '--', '--color']);
  t.deepEqual(hoistGlobalFlags(['--no-color', 'diff', 'a', 'b']), ['diff', 'a', 'b', '--no-color']);
  t.deepEqual(hoistGlobalFlags(['-h']), ['--help']);
  t.deepEqual(hoistGlobalFlags(['-C', 'r']), ['--help']);
  t.deepEqual(hoistGlobalFlags([]), []);
  t.deepEqual(hoistGlobalFlags(['--version']), ['--version']);
  t.deepEqual(hoistGlobalFlags(['log', '-C', 'r']), ['log', '-C', 'r']);
});

test('tty: closestCommand counts a swap of two letters as one edit and suggests nothing far', (t) => {
  t.is(editDistance('lgo', 'log'), 1);
  t.is(editDistance('comit', 'commit'), 1);
  t.is(editDistance('', 'abc'), 3);
  const ids = ['log', 'gc', 'commit', 'checkout', 'remote:add'];
  t.is(closestCommand('lgo', ids), 'log');
  t.is(closestCommand('chekcout', ids), 'checkout');
  t.is(closestCommand('remote:ad', ids), 'remote:add');
  t.is(closestCommand('xyzzy', ids), undefined);
  t.is(closestCommand('remote:ad:origin:url', ids), 'remote:add', 'the arguments after the command are not compared');
});

test('tty: colorWanted follows --color, then NO_COLOR, TERM=dumb and the terminal; never with --json', (t) => {
  const tty = { isTTY: true };
  const pipe = { isTTY: false };
  t.true(colorWanted(undefined, tty, false, {}));
  t.false(colorWanted(undefined, pipe, false, {}));
  t.false(colorWanted(undefined, tty, false, { NO_COLOR: '1' }));
  t.true(colorWanted(undefined, tty, false, { NO_COLOR: '' }), 'an empty NO_COLOR is unset (no-color.org)');
  t.false(colorWanted(undefined, tty, false, { TERM: 'dumb' }));
  t.false(colorWanted('never', tty, false, {}));
  t.true(colorWanted('always', pipe, false, { NO_COLOR: '1' }));
  t.false(colorWanted('always', tty, true, {}));
});

test('tty: progressLine shows percentage and ETA with a total, counts and rate without', (t) => {
  const bar = (p: number) => '#'.repeat(Math.round(p * 10)).padEnd(10, '-');
  t.is(progressLine('committing', undefined, 0, bar, 0), 'committing: …');
  t.is(progressLine('committing', { phase: 'commit', files: 3, bytes: 1 << 20, totalBytes: 4 << 20 }, 1, bar, 3),
    'committing:  25% [###-------] 1.0 MiB/4.0 MiB, 1.0 MiB/s, ETA 3s');
  t.is(progressLine('receiving', { phase: 'receiving', files: 5, bytes: 2048, totalFiles: 10 }, 2, bar, 2),
    'receiving:  50% [#####-----] 5/10 objects, 1.0 KiB/s, ETA 2s');
  t.is(progressLine('committing', { phase: 'commit', files: 1, bytes: 0 }, 0, bar, NaN), 'committing: 1 file');
  t.is(formatEta(125), '2m05s');
  t.is(formatEta(Infinity), '?');
  t.is(formatEta(3720), '1h02m');
});
