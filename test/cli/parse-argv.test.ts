/**
 * The command-line parser (src/cli/parse-argv.ts): oclif's rules, checked case by case, plus a check that a command
 * runs without loading oclif (or other modules it does not need).
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { Args, Flags } from '../../src/cli/flags.js';
import { CommandLineError, parseArgv } from '../../src/cli/parse-argv.js';
import { tmpDir } from '../helpers/repo.js';

const flags = {
  message: Flags.string({ char: 'm' }),
  all: Flags.boolean({ char: 'a' }),
  quiet: Flags.boolean({ char: 'q' }),
  pager: Flags.boolean({ allowNo: true }),
  count: Flags.integer({ char: 'n', min: 0, max: 10 }),
  label: Flags.string({ char: 'l', multiple: true }),
  grep: Flags.string({ multiple: true, multipleNonGreedy: true }),
  color: Flags.option({ options: ['always', 'never', 'auto'] as const })(),
  depth: Flags.integer({ default: 1 }),
  ours: Flags.boolean({ exclusive: ['theirs'] }),
  theirs: Flags.boolean(),
  upstream: Flags.string({ dependsOn: ['message'], aliases: ['up'] }),
};
const args = { src: Args.string({ description: 'the source' }), dest: Args.string({ description: 'where to' }) };
const parse = (argv: string[], strict = true) => parseArgv(argv, { flags, args, strict });
const message = async (argv: string[], strict = true) => ((await parse(argv, strict).then(() => undefined, (e: unknown) => e)) as Error | undefined)?.message;

test('parseArgv: long, short, attached and = values; grouped booleans; --no-; defaults', async (t) => {
  const r = await parse(['-m', 'hi', '-aq', 'x', '--count=3', '--no-pager', 'y']);
  t.deepEqual(r.flags, { message: 'hi', all: true, quiet: true, count: 3, pager: false, depth: 1 });
  t.deepEqual(r.args, { src: 'x', dest: 'y' });
  t.deepEqual(r.argv, ['x', 'y']);
  t.true(r.metadata.flags.depth?.setFromDefault);
  t.deepEqual((await parse(['-n5', '-m=a=b', '--message', 'c'].slice(0, 2))).flags.message, 'a=b');
  t.is((await parse(['-n5'])).flags.count, 5);
  t.is((await parse(['--up', 'u', '-m', 'x'])).flags.upstream, 'u');
  // A value may look like a negative number or a single dash.
  t.deepEqual((await parse(['-m', '-', '-1'], false)).argv, ['-1']);
});

test('parseArgv: multiple flags, greedy and not; -- ends the flags', async (t) => {
  t.deepEqual((await parse(['-l', 'a=1', '-l', 'b=2'])).flags.label, ['a=1', 'b=2']);
  // A greedy multiple flag takes the words after it (oclif's behaviour), a non-greedy one only its own.
  t.deepEqual((await parse(['--label', 'a', 'b'])).flags.label, ['a', 'b']);
  const r = await parse(['--grep', 'a', 'b', '--grep', 'c'], false);
  t.deepEqual(r.flags.grep, ['a', 'c']);
  t.deepEqual(r.args, { src: 'b' });
  const d = await parse(['x', '--', '--all', '-q'], false);
  t.is(d.flags.all, undefined);
  t.deepEqual(d.argv, ['x', '--all', '-q']);
});

test('parseArgv: errors as oclif words them', async (t) => {
  t.is(await message(['--bogus']), 'Nonexistent flag: --bogus');
  t.is(await message(['--bogus', '-z']), 'Nonexistent flags: --bogus, -z');
  t.is(await message(['a', 'b', 'c']), 'Unexpected argument: c');
  t.is(await message(['-m']), 'Flag --message expects a value');
  t.is(await message(['-m', '--all']), 'Flag --message expects a value');
  t.is(await message(['-m', 'a', '-m', 'b']), 'Flag --message can only be specified once');
  t.is(await message(['--color', 'red']), 'Expected --color=red to be one of: always, never, auto');
  t.is(await message(['--color']), 'Flag --color expects one of these values: always, never, auto');
  t.is(await message(['-n', 'x']), 'Parsing --count \n\tExpected an integer but received: x');
  t.is(await message(['-n', '11']), 'Parsing --count \n\tExpected an integer less than or equal to 10 but received: 11');
  t.is(await message(['-n', '-1']), 'Parsing --count \n\tExpected an integer greater than or equal to 0 but received: -1');
  t.is(await message(['--ours', '--theirs']), 'The following error occurred:\n  --theirs=true cannot also be provided when using --ours');
  t.is(await message(['--upstream', 'u']), 'The following error occurred:\n  All of the following must be provided when using --upstream: --message');
  const required = await parseArgv([], { flags: { m: Flags.string({ required: true }) }, args: { a: Args.string({ required: true, description: 'the thing' }) }, strict: true }).catch((e: unknown) => e);
  t.true(required instanceof CommandLineError);
  t.is((required as Error).message, 'Missing 1 required arg:\na  the thing');
  t.is((required as CommandLineError).oclif.exit, 2);
  const flag = await parseArgv(['x'], { flags: { m: Flags.string({ required: true }) }, args: { a: Args.string({ required: true }) }, strict: true }).catch((e: unknown) => e);
  t.is((flag as Error).message, 'The following error occurred:\n  Missing required flag m');
  t.is(await message(['a', 'b', 'c'], false), undefined);
});

test('a command runs without loading oclif or modules it does not need', (t) => {
  const dir = tmpDir(t, 'viva-start-');
  const hook = path.join(dir, 'hook.cjs');
  const out = path.join(dir, 'loaded.txt');
  fs.writeFileSync(hook, `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(out)}, Object.keys(require.cache).join('\\n')));\n`);
  const bin = path.resolve('bin/run.js');
  execFileSync('node', [bin, 'init', path.join(dir, 'r')], { stdio: 'ignore' });
  const run = (...argv: string[]) => {
    // (log in an empty repository exits 3: what matters is what it loaded.)
    spawnSync('node', ['--require', hook, bin, '-C', path.join(dir, 'r'), ...argv], { stdio: 'ignore' });
    return fs.readFileSync(out, 'utf8');
  };
  const loaded = run('log', '-n', '1');
  t.false(loaded.includes('@oclif/core'), 'log loaded oclif');
  t.false(loaded.includes('isomorphic-git'));
  t.true(loaded.includes('lmdb'), 'the hook sees the modules a command loads');
  // Help still comes from oclif.
  t.true(run('log', '--help').includes('@oclif/core'));
});
