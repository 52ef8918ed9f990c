/** deb822 paragraphs and relation fields, on lines taken from Debian's own Packages and status files. */
import test from 'ava';
import { fieldValue, formatDeb822, formatRelationGroup, parseDeb822, parseRelations, relationAppliesTo } from '../../src/packages/deb822.js';
import { RelationSyntaxError } from '../../src/errors.js';

const PACKAGES = `Package: coreutils
Essential: yes
Priority: required
Version: 9.1-1
Pre-Depends: libacl1 (>= 2.2.23), libattr1 (>= 1:2.4.44), libc6 (>= 2.34), libgmp10 (>= 2:6.2.1+dfsg1), libselinux1 (>= 3.1~), libssl3 (>= 3.0.0)
Description: GNU core utilities
 This package contains the basic file, shell and text manipulation
 utilities which are expected to exist on every operating system.
 .
   indented more

package: mawk
Provides: awk
Multi-Arch: foreign
`;

test('deb822: paragraphs keep field order, names as written and continuation lines', (t) => {
  const ps = parseDeb822(PACKAGES);
  t.is(ps.length, 2);
  t.deepEqual(ps[0]!.fields.map((f) => f.name), ['Package', 'Essential', 'Priority', 'Version', 'Pre-Depends', 'Description']);
  t.is(ps[0]!.line, 1);
  t.is(ps[1]!.line, 12);
  t.is(fieldValue(ps[0]!, 'description'), 'GNU core utilities\nThis package contains the basic file, shell and text manipulation\nutilities which are expected to exist on every operating system.\n.\n  indented more');
  t.is(fieldValue(ps[1]!, 'Package'), 'mawk');
  t.is(fieldValue(ps[1]!, 'Depends'), undefined);
  t.deepEqual(ps.flatMap((p) => p.problems), []);
  t.is(formatDeb822(ps), PACKAGES);
});

test('deb822: bad lines, stray continuations and duplicate fields are problems, not errors', (t) => {
  const ps = parseDeb822('Package: a\r\nPackage: b\r\n continued\r\nnot a field\r\n more\r\n \t\r\n\r\n\r\nPackage: c\n');
  t.deepEqual(ps.map((p) => [p.line, fieldValue(p, 'package')]), [[1, 'a'], [9, 'c']]);
  t.deepEqual(ps[0]!.problems, [
    { line: 2, message: "duplicate field 'Package'" },
    { line: 4, message: "line is not a 'Field: value' pair" },
    { line: 5, message: 'continuation line outside a field' },
  ]);
  t.deepEqual(parseDeb822('# comment\nA: 1\n', { comments: true })[0]!.fields, [{ name: 'A', value: '1' }]);
});

test('parseRelations: alternatives, versions, arch qualifiers (real Debian lines)', (t) => {
  t.deepEqual(parseRelations('libc6 (>= 2.34), libtinfo6 (>= 6), debconf (>= 0.5) | debconf-2.0'), [
    [{ name: 'libc6', op: '>=', version: '2.34' }],
    [{ name: 'libtinfo6', op: '>=', version: '6' }],
    [{ name: 'debconf', op: '>=', version: '0.5' }, { name: 'debconf-2.0' }],
  ]);
  t.deepEqual(parseRelations('python3:any (>= 3.6~), perl:native, libfoo:amd64 (= 1:2.0-1+b1)'), [
    [{ name: 'python3', archQualifier: 'any', op: '>=', version: '3.6~' }],
    [{ name: 'perl', archQualifier: 'native' }],
    [{ name: 'libfoo', archQualifier: 'amd64', op: '=', version: '1:2.0-1+b1' }],
  ]);
  // Every operator; the deprecated < and > mean <= and >= (dpkg, apt); a bare version means =.
  t.deepEqual(parseRelations('a (<< 1), b (<= 1), c (= 1), d (>= 1), e (>> 1), f (< 1), g (> 1), h (1)', 'Breaks').map((g) => g[0]!.op),
    ['<<', '<=', '=', '>=', '>>', '<=', '>=', '=']);
  // Folded over lines (as in a status file), no space before the parenthesis, a trailing comma.
  t.deepEqual(parseRelations('libc6(>=2.36),\n libssl3 (>= 3.0.0),'), [
    [{ name: 'libc6', op: '>=', version: '2.36' }], [{ name: 'libssl3', op: '>=', version: '3.0.0' }],
  ]);
  t.deepEqual(parseRelations(''), []);
});

test('parseRelations: architecture restrictions and build profiles (source package fields)', (t) => {
  const groups = parseRelations('debhelper-compat (= 13), libsystemd-dev [linux-any] <!stage1>, python3-pytest <!nocheck> <cross>, libfoo [!hurd-i386 !kfreebsd-amd64]', 'Build-Depends');
  t.deepEqual(groups[1], [{ name: 'libsystemd-dev', arches: ['linux-any'], profiles: [['!stage1']] }]);
  t.deepEqual(groups[2], [{ name: 'python3-pytest', profiles: [['!nocheck'], ['cross']] }]);
  t.is(formatRelationGroup(groups[3]!), 'libfoo [!hurd-i386 !kfreebsd-amd64]');
  t.true(relationAppliesTo(groups[3]![0]!, 'amd64'));
  t.false(relationAppliesTo(groups[3]![0]!, 'hurd-i386'));
  t.false(relationAppliesTo({ name: 'x', arches: ['arm64'] }, 'amd64'));
  t.is(formatRelationGroup(parseRelations('a:any (>= 1.2) | b')[0]!), 'a:any (>= 1.2) | b');
});

const bad: Array<[string, RegExp]> = [
  ['a (>= 1.0', /version of 'a' unterminated/],
  ['a (>= )', /bad version relationship/],
  ['a (>< 1)', /bad version relationship/],
  ['a (>= 1.0) (<< 2)', /syntax error after reference to package 'a'/],
  ['a | , b', /empty alternative/],
  ['a b', /syntax error after reference to package 'a': 'b'/],
  ['a (>= x1)', /version 'x1' of 'a': version number does not start with digit/],
  ['-a', /invalid package name '-a'/],
  ['a:', /invalid architecture qualifier '' of 'a'/],
  ['a [amd64 !i386]', /mixes negated and plain/],
  ['a <!nocheck', /build profile list of 'a' unterminated/],
];
for (const [text, re] of bad) {
  test(`parseRelations: refuses '${text}' naming the field and the text`, (t) => {
    const e = t.throws(() => parseRelations(text, 'Pre-Depends'), { instanceOf: RelationSyntaxError });
    t.regex(e!.message, re);
    t.true(e!.message.startsWith(`cannot parse Pre-Depends field '${text}': `), e!.message);
    t.is(e!.code, 'ERR_RELATION_SYNTAX');
  });
}
