/** Tests of ref names: validation against git check-ref-format itself, branch/tag expansion, and ref globs. */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { InvalidRefNameError } from '../../src/errors.js';
import { assertRefName, branchRef, refGlob, refNameProblem, shortRefName, tagRef } from '../../src/model/ref.js';

/** Names git and viva must judge alike (git cannot take NUL in argv; those are checked below separately). */
const NAMES = [
  'a', 'main', 'debian/12/base', 'customers/acme/web', 'a-b_c', 'v1.0', 'a.b/c.d', 'HEAD', 'ü', 'π/λ', '@a', 'a@b', 'a@', 'x/-a', 'a-',
  'a{b}', 'a}', '{', 'lock', 'a.lockx', 'x.lock.y', 'a/b/c/d/e/f', 'A', '0', '1234567890abcdef',
  '', '@', '/a', 'a/', '/', 'a//b', 'a.', 'a/b.', 'a..b', '..', '.', 'a/..', 'a/.', 'a@{b', '@{', 'a b', ' a', 'a\tb', 'a\nb',
  'a\x01', 'a\x7f', 'a~1', 'a^', 'a:b', 'a?', 'a*', 'a/*', 'a[b', 'a]b', 'a\\b', '.a', 'a/.b', '.a/b', 'a.lock', 'a/b.lock',
  'a.lock/b', 'a/b.lock/c', '.lock', 'a/.lock', 'x/y/', 'a@{1}', 'ä\u00a0b', '\u2028',
];

function gitAccepts(name: string): boolean {
  const r = spawnSync('git', ['check-ref-format', '--allow-onelevel', name], { stdio: 'ignore' });
  if (r.error) throw r.error;
  return r.status === 0;
}

const hasGit = spawnSync('git', ['--version'], { stdio: 'ignore' }).status === 0;

// Skipped where git is not installed.
(hasGit ? test : test.skip)('ref: refNameProblem agrees with git check-ref-format --allow-onelevel', (t) => {
  for (const name of NAMES) {
    const git = gitAccepts(name);
    const problem = refNameProblem(name);
    t.is(problem === undefined, git, `${JSON.stringify(name)}: git ${git ? 'accepts' : 'refuses'}, viva says ${problem ?? 'valid'}`);
  }
});

test('ref: a leading dash is valid, as in git (which can only be asked with a prefix: argv would take it for an option)', (t) => {
  if (hasGit) t.true(gitAccepts('refs/heads/-a'));
  t.is(refNameProblem('-a'), undefined);
});

test('ref: refNameProblem refuses NUL and names over 1024 bytes', (t) => {
  t.truthy(refNameProblem('a\0b'));
  t.is(refNameProblem('a'.repeat(1024)), undefined);
  t.regex(refNameProblem('a'.repeat(1025)) ?? '', /longer than 1024 bytes/);
  t.regex(refNameProblem('é'.repeat(513)) ?? '', /longer than 1024 bytes/);
});

test('ref: assertRefName throws InvalidRefNameError with the name and reason', (t) => {
  t.is(assertRefName('debian/12/base'), 'debian/12/base');
  const err = t.throws(() => assertRefName('a..b'), { instanceOf: InvalidRefNameError });
  t.is(err?.code, 'ERR_INVALID_REF_NAME');
  t.is(err?.data.ref, 'a..b');
  t.is(err?.data.reason, "it contains '..'");
  t.is(err?.message, "'a..b' is not a valid ref name: it contains '..'");
});

test('ref: branchRef and tagRef expand short names and accept full ones', (t) => {
  t.is(branchRef('debian/12/base'), 'refs/heads/debian/12/base');
  t.is(branchRef('refs/heads/main'), 'refs/heads/main');
  t.is(tagRef('v1'), 'refs/tags/v1');
  t.is(tagRef('refs/tags/v1'), 'refs/tags/v1');
  t.throws(() => branchRef('HEAD'), { instanceOf: InvalidRefNameError, message: /'HEAD' is reserved/ });
  t.throws(() => branchRef('a b'), { instanceOf: InvalidRefNameError });
  t.throws(() => branchRef('refs/heads/'), { instanceOf: InvalidRefNameError });
  t.throws(() => tagRef('v1.lock'), { instanceOf: InvalidRefNameError });
});

test('ref: shortRefName', (t) => {
  t.is(shortRefName('refs/heads/debian/12/base'), 'debian/12/base');
  t.is(shortRefName('refs/tags/v1'), 'v1');
  t.is(shortRefName('refs/remotes/origin/main'), 'origin/main');
  t.is(shortRefName('HEAD'), 'HEAD');
  t.is(shortRefName('refs/other/x'), 'refs/other/x');
});

const glob = test.macro({
  exec(t, pattern: string, yes: string[], no: string[]) {
    const re = refGlob(pattern);
    for (const n of yes) t.true(re.test(n), `${pattern} should match ${n}`);
    for (const n of no) t.false(re.test(n), `${pattern} should not match ${n}`);
  },
  title: (_title, pattern: string) => `ref: refGlob ${pattern}`,
});

test(glob, 'debian/*', ['debian/12', 'debian/', 'debian/x.y'], ['debian/12/base', 'debian', 'ubuntu/12', 'xdebian/12']);
test(glob, 'debian/*/base', ['debian/12/base', 'debian/sid/base'], ['debian/12/x/base', 'debian/base', 'debian/12/base2']);
test(glob, '**/web', ['customers/acme/web', 'a/web', 'web'], ['customers/acme/web2', 'customers/acme/web/x', 'aweb']);
test(glob, 'customers/**', ['customers/acme', 'customers/acme/web'], ['customers', 'other/acme']);
test(glob, 'a/**/b', ['a/b', 'a/x/b', 'a/x/y/b'], ['a/xb', 'ab', 'a/b/c']);
test(glob, 'v?', ['v1', 'v2'], ['v', 'v10', 'v/']);
test(glob, 'v1.0', ['v1.0'], ['v1x0', 'v1.00']);
test(glob, 'a+b(c)|d$^{e}', ['a+b(c)|d$^{e}'], ['aab(c)|d$^{e}', 'a+bc|d']);
test(glob, '*', ['main', 'x'], ['a/b']);
test(glob, '**', ['main', 'a/b/c'], []);
