/** Debian version ordering, checked against `dpkg --compare-versions` itself, and version constraints. */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { compareDebVersions, parseConstraint, parseDebVersion } from '../../src/packages/debversion.js';
import { UsageError } from '../../src/errors.js';

const VERSIONS = [
  '0', '1', '1.0', '1.00', '1.0.0', '1.0-1', '1.0-1ubuntu1', '1.0-1.1', '1.0~rc1', '1.0~rc1-1', '1.0~', '1.0~~', '1.0+b1',
  '1.0a', '1.0A', '1.0.a', '1:0.9', '2:0', '9', '10', '3.0.11-1~deb12u2', '3.0.13-1', '3.0.13-1~deb12u1', '1.2.3-4+deb12u1',
  '1.2.3-4.1', '2.36-9+deb12u4', '1.6-2.1+deb12u3', '7.88.1-10+deb12u5', '252.30-1~deb12u2', '1:2.3-1', '0:2.3-1', '2.3-a',
];

function dpkgSays(a: string, op: string, b: string): boolean {
  try {
    execFileSync('dpkg', ['--compare-versions', a, op, b], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

let haveDpkg = true;
try { execFileSync('dpkg', ['--version'], { stdio: 'ignore' }); } catch { haveDpkg = false; }

(haveDpkg ? test : test.skip)('debversion: every pair of a tricky list orders as dpkg --compare-versions says', (t) => {
  const wrong: string[] = [];
  for (const a of VERSIONS) {
    for (const b of VERSIONS) {
      const c = compareDebVersions(a, b);
      const expected = dpkgSays(a, 'lt', b) ? -1 : dpkgSays(a, 'eq', b) ? 0 : 1;
      if (c !== expected) wrong.push(`${a} vs ${b}: viva ${c}, dpkg ${expected}`);
    }
  }
  t.deepEqual(wrong, []);
});

test('debversion: parse errors name what dpkg refuses', (t) => {
  t.deepEqual(parseDebVersion('1:2.3-4'), { epoch: 1, upstream: '2.3', revision: '4' });
  t.deepEqual(parseDebVersion('2.3-4-5'), { epoch: 0, upstream: '2.3-4', revision: '5' });
  t.is(parseDebVersion(''), 'version string is empty');
  t.is(parseDebVersion('a1.0'), 'version number does not start with digit');
  t.is(parseDebVersion('x:1.0'), 'epoch in version is not number');
  t.is(parseDebVersion('1.0-'), 'revision number is empty');
  t.is(parseDebVersion('1 0'), 'version string has embedded spaces');
  t.is(parseDebVersion('1.0_1'), 'invalid character in version number');
});

test('debversion: constraints', (t) => {
  const lt = parseConstraint('<3.0.13');
  t.true(lt.test('3.0.11-1~deb12u2'));
  t.false(lt.test('3.0.13-1'));
  t.true(parseConstraint('>= 1:0').test('1:0.1'));
  t.false(parseConstraint('>>2.0').test('2.0'));
  t.true(parseConstraint('2.0').test('2.0'));
  t.true(parseConstraint('!=2.0').test('2.0-1'));
  t.throws(() => parseConstraint('<='), { instanceOf: UsageError });
  t.throws(() => parseConstraint('~> 1.0'), { instanceOf: UsageError });
  t.throws(() => parseConstraint('< abc'), { instanceOf: UsageError, message: /does not start with digit/ });
});
