/** Package databases: dpkg status and apk installed files, malformed records, and inventory diffs. */
import test from 'ava';
import { diffInventories, parseApkInstalled, parseDpkgStatus } from '../../src/packages/inventory.js';
import { compareDebVersions } from '../../src/packages/debversion.js';

const STATUS = `Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: 1:1.2.13.dfsg-1
Description: compression library
 a continuation line
 .
 another

Package: removed-pkg
Status: deinstall ok config-files
Version: 1.0

Package: adduser
Status: install ok installed
Architecture: all
Version: 3.134

Status: install ok installed
Version: 1.0

Package: noversion
Status: install ok installed

Package: badstatus
Status: installed
Version: 1

Package: badversion
Status: install ok installed
Version: abc
garbage line without colon
`;

test('inventory: dpkg status lists installed packages and reports malformed records with their line', (t) => {
  const inv = parseDpkgStatus(STATUS);
  t.deepEqual(inv.packages.map((p) => [p.name, p.version, p.arch ?? null, p.source ?? null]), [
    ['adduser', '3.134', 'all', null], ['badversion', 'abc', null, null], ['zlib1g', '1:1.2.13.dfsg-1', 'amd64', 'zlib'],
  ]);
  t.deepEqual(inv.problems.map((p) => [p.line, p.message]), [
    [20, 'record without a Package field'],
    [23, "installed package 'noversion' has no Version field"],
    [26, "package 'badstatus' has a malformed Status 'installed'"],
    [33, "line is not a 'Field: value' pair"],
    [30, "package 'badversion' version 'abc': version number does not start with digit"],
  ]);
});

test('inventory: apk installed database', (t) => {
  const inv = parseApkInstalled('C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\nP:busybox\nV:1.36.1-r5\nA:x86_64\n\nP:broken\n\nX\n');
  t.deepEqual(inv.packages.map((p) => `${p.name} ${p.version}`), ['busybox 1.36.1-r5', 'musl 1.2.4-r2']);
  t.deepEqual(inv.problems.map((p) => p.line), [11, 13]);
});

test('inventory: diff by name and arch, in Debian version order', (t) => {
  const a = [{ name: 'openssl', version: '3.0.11-1~deb12u2', arch: 'amd64' }, { name: 'gone', version: '1' }, { name: 'old', version: '2.0' }];
  const b = [{ name: 'openssl', version: '3.0.13-1~deb12u1', arch: 'amd64' }, { name: 'new', version: '1' }, { name: 'old', version: '2.0~rc1' }];
  t.deepEqual(diffInventories(a, b, compareDebVersions), [
    { name: 'gone', change: 'removed', from: '1' },
    { name: 'new', change: 'added', to: '1' },
    { name: 'old', change: 'downgraded', from: '2.0', to: '2.0~rc1' },
    { name: 'openssl', arch: 'amd64', change: 'upgraded', from: '3.0.11-1~deb12u2', to: '3.0.13-1~deb12u1' },
  ]);
});
