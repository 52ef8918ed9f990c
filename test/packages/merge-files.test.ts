/**
 * The semantic file mergers of `viva merge`: dpkg status and apt's extended_states per package stanza, dpkg's
 * package files all-or-nothing, trigger interests as a set, account databases per record (unique ids, member sets),
 * append-only logs, tool backups.
 */
import test from 'ava';
import { IMAGE_MERGERS } from '../../src/packages/merge-files.js';

function merge(path: string, base: string | undefined, ours: string, theirs: string): string | { conflict: string } {
  const m = IMAGE_MERGERS.find((x) => x.matches(Buffer.from(path)));
  if (!m) throw new Error(`no merger for ${path}`);
  const r = m.merge({ path: Buffer.from(path), ...(base !== undefined ? { base: Buffer.from(base) } : {}), ours: Buffer.from(ours), theirs: Buffer.from(theirs) });
  return 'data' in r ? r.data.toString() : r;
}

const stanza = (name: string, version: string, status = 'install ok installed', arch = 'amd64') =>
  `Package: ${name}\nStatus: ${status}\nPriority: optional\nArchitecture: ${arch}\nVersion: ${version}\nDescription: ${name}\n`;
const status = (...s: string[]) => s.map((x) => `${x}\n`).join('');

test('merge-files: dpkg status: two sides installing different packages merge, in dpkg\'s order', (t) => {
  const base = status(stanza('bash', '5.2'), stanza('dpkg', '1.21'));
  const ours = status(stanza('bash', '5.2'), stanza('dpkg', '1.21'), stanza('htop', '3.2'));
  const theirs = status(stanza('bash', '5.2'), stanza('curl', '7.88'), stanza('dpkg', '1.21'));
  t.is(merge('var/lib/dpkg/status', base, ours, theirs), status(stanza('bash', '5.2'), stanza('curl', '7.88'), stanza('dpkg', '1.21'), stanza('htop', '3.2')));
  // Symmetric.
  t.is(merge('var/lib/dpkg/status', base, theirs, ours), merge('var/lib/dpkg/status', base, ours, theirs));
  // One side upgrades, the other removes another package.
  const up = status(stanza('bash', '5.3'), stanza('dpkg', '1.21'));
  const rm = status(stanza('dpkg', '1.21'));
  t.deepEqual(merge('var/lib/dpkg/status', base, up, rm), { conflict: 'package bash:amd64: ours 5.3, install ok installed, theirs removed' });
  t.is(merge('var/lib/dpkg/status', base, up, status(stanza('bash', '5.2'))), status(stanza('bash', '5.3')));
});

test('merge-files: dpkg status: the same package at two versions is a conflict naming it; the same change on both is taken once', (t) => {
  const base = status(stanza('dpkg', '1.21'));
  const a = status(stanza('dpkg', '1.21'), stanza('htop', '3.2'));
  const b = status(stanza('dpkg', '1.21'), stanza('htop', '3.3'));
  const r = merge('var/lib/dpkg/status', base, a, b);
  t.deepEqual(r, { conflict: 'package htop:amd64: ours 3.2, install ok installed, theirs 3.3, install ok installed' });
  t.is(merge('var/lib/dpkg/status', base, a, a), a);
  // Multi-Arch: same instances of two architectures are two packages.
  const i386 = status(stanza('dpkg', '1.21'), stanza('libc6', '2.36', 'install ok installed', 'i386'));
  const amd64 = status(stanza('dpkg', '1.21'), stanza('libc6', '2.36'));
  t.is(merge('var/lib/dpkg/status', base, i386, amd64), status(stanza('dpkg', '1.21'), stanza('libc6', '2.36'), stanza('libc6', '2.36', 'install ok installed', 'i386')));
});

test('merge-files: dpkg package files are taken only when both sides agree', (t) => {
  t.is(merge('var/lib/dpkg/info/htop.list', undefined, '/usr/bin/htop\n', '/usr/bin/htop\n'), '/usr/bin/htop\n');
  const r = merge('var/lib/dpkg/info/htop.list', '/.\n', '/.\n/usr/bin/htop\n', '/.\n/usr/bin/htop\n/usr/share/htop\n');
  t.deepEqual(r, { conflict: 'htop.list differs: the package differs on the two sides' });
  t.falsy(IMAGE_MERGERS.find((m) => m.matches(Buffer.from('var/lib/dpkg/info/format'))));
});

test('merge-files: apt extended_states per package; trigger interests as a set', (t) => {
  const e = (n: string) => `Package: ${n}\nArchitecture: amd64\nAuto-Installed: 1\n`;
  t.is(merge('var/lib/apt/extended_states', status(e('a')), status(e('a'), e('z')), status(e('a'), e('b'))), status(e('a'), e('b'), e('z')));
  t.is(merge('var/lib/apt/extended_states', status(e('a')), status(e('a'), e('b')), status(e('a'), e('z'))), status(e('a'), e('b'), e('z')), 'either way round');
  const base = '/usr/share/man man-db/noawait\n/usr/lib/x x/noawait\n';
  const ours = '/usr/share/man man-db/noawait\n/usr/lib/x x/noawait\n/etc/php php/noawait\n';
  const theirs = '/usr/share/man man-db/noawait\n/etc/mysql mariadb-server/noawait\n';
  t.is(merge('var/lib/dpkg/triggers/File', base, ours, theirs), '/usr/share/man man-db/noawait\n/etc/mysql mariadb-server/noawait\n/etc/php php/noawait\n');
  t.is(merge('var/lib/dpkg/triggers/File', base, theirs, ours), '/usr/share/man man-db/noawait\n/etc/mysql mariadb-server/noawait\n/etc/php php/noawait\n');
});

test('merge-files: passwd: users added on both sides merge; one uid for two names is a conflict; a changed record both ways is a conflict', (t) => {
  const base = 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n';
  const ours = `${base}mysql:x:101:102:MySQL:/nonexistent:/bin/false\n`;
  const theirs = `${base}www:x:102:103::/var/www:/usr/sbin/nologin\n`;
  t.is(merge('etc/passwd', base, ours, theirs), `${base}mysql:x:101:102:MySQL:/nonexistent:/bin/false\nwww:x:102:103::/var/www:/usr/sbin/nologin\n`);
  const clash = `${base}www:x:101:103::/var/www:/usr/sbin/nologin\n`;
  t.deepEqual(merge('etc/passwd', base, ours, clash), { conflict: "id 101 given to both 'mysql' and 'www'" });
  const shellA = base.replace('root:/root:/bin/bash', 'root:/root:/bin/zsh');
  const shellB = base.replace('root:/root:/bin/bash', 'root:/root:/bin/sh');
  t.deepEqual(merge('etc/passwd', base, shellA, shellB), { conflict: "'root': ours 'root:x:0:0:root:/root:/bin/zsh', theirs 'root:x:0:0:root:/root:/bin/sh'" });
  // One side removes a user, the other leaves it: removed.
  t.is(merge('etc/passwd', base, 'root:x:0:0:root:/root:/bin/bash\n', base), 'root:x:0:0:root:/root:/bin/bash\n');
});

test('merge-files: group: members added to one group on both sides merge as a set; gshadow likewise; same gid twice is a conflict', (t) => {
  const base = 'root:x:0:\nsudo:x:27:alice\n';
  const ours = 'root:x:0:\nsudo:x:27:alice,bob\nmysql:x:102:\n';
  const theirs = 'root:x:0:\nsudo:x:27:carol,alice\n';
  t.is(merge('etc/group', base, ours, theirs), 'root:x:0:\nsudo:x:27:alice,bob,carol\nmysql:x:102:\n');
  t.is(merge('etc/group', base, 'root:x:0:\nsudo:x:27:\n', theirs), 'root:x:0:\nsudo:x:27:carol\n');
  t.is(merge('etc/gshadow', 'sudo:!::alice\n', 'sudo:!::alice,bob\n', 'sudo:!:adm:alice\n'), 'sudo:!:adm:alice,bob\n');
  t.deepEqual(merge('etc/group', base, `${base}a:x:500:\n`, `${base}b:x:500:\n`), { conflict: "id 500 given to both 'a' and 'b'" });
});

test('merge-files: append-only logs keep both sides\' lines after the base, the earlier block first; backups merge as their file, else ours', (t) => {
  const base = '2026-01-01 startup\n';
  const a = '2026-01-02 10:00:00 install a\n2026-01-02 10:00:01 configure a\n';
  const b = '2026-01-01 12:00:00 install b\n';
  t.is(merge('var/log/dpkg.log', base, `${base}${a}`, `${base}${b}`), `${base}${b}${a}`);
  t.is(merge('var/log/dpkg.log', base, `${base}${b}`, `${base}${a}`), `${base}${b}${a}`, 'either way round');
  t.deepEqual(merge('var/log/dpkg.log', base, 'rotated\n', `${base}b1\n`), { conflict: 'not only appended to on both sides' });
  const st = (...names: string[]) => names.map((n) => `Package: ${n}\nStatus: install ok installed\nVersion: 1\n\n`).join('');
  t.is(merge('var/lib/dpkg/status-old', st('a'), st('a', 'c'), st('a', 'b')), st('a', 'b', 'c'));
  t.is(merge('var/lib/dpkg/status-old', 'x', 'ours', 'theirs'), 'ours');
  t.is(merge('etc/shadow-', 'root:*:1::::::\n', 'root:*:1::::::\nb:!:2::::::\n', 'root:*:1::::::\na:!:3::::::\n'), 'root:*:1::::::\na:!:3::::::\nb:!:2::::::\n');
  t.is(merge('etc/shadow-', 'root:x:1::::::\n', 'root:y:1::::::\n', 'root:z:1::::::\n'), 'root:y:1::::::\n');
  t.falsy(IMAGE_MERGERS.find((m) => m.matches(Buffer.from('etc/hostname'))));
});

test('merge-files: etc/hosts per address and etc/fstab per mount point; additions at the end on both sides merge', (t) => {
  const base = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n::1\tip6-loopback\n\n# local\n';
  const ours = `${base}10.0.0.5 db\n`;
  const theirs = `${base}10.0.0.7 cache\n`;
  t.is(merge('etc/hosts', base, ours, theirs), `${base}10.0.0.5 db\n10.0.0.7 cache\n`);
  t.is(merge('etc/hosts', base, theirs, ours), `${base}10.0.0.5 db\n10.0.0.7 cache\n`);
  // One side renames the host, the other adds one; the second ::1 line stays its own record.
  const renamed = base.replace('127.0.0.1\tlocalhost', '127.0.0.1\tlocalhost web');
  t.is(merge('etc/hosts', base, renamed, theirs), `${renamed}10.0.0.7 cache\n`);
  t.is(merge('etc/hosts', base, base.replace('::1\tip6-loopback\n', ''), theirs), `${base.replace('::1\tip6-loopback\n', '')}10.0.0.7 cache\n`);
  t.deepEqual(merge('etc/hosts', base, `${base}10.0.0.5 db\n`, `${base}10.0.0.5 db2\n`), { conflict: "address 10.0.0.5: ours '10.0.0.5 db', theirs '10.0.0.5 db2'" });
  const fstab = 'UUID=1 / ext4 errors=remount-ro 0 1\n/swapfile none swap sw 0 0\n';
  const a = `${fstab}UUID=2 /srv ext4 defaults 0 2\n`;
  const b = fstab.replace('errors=remount-ro', 'noatime,errors=remount-ro') + 'tmpfs /tmp tmpfs defaults 0 0\n';
  t.is(merge('etc/fstab', fstab, a, b), `${fstab.replace('errors=remount-ro', 'noatime,errors=remount-ro')}UUID=2 /srv ext4 defaults 0 2\ntmpfs /tmp tmpfs defaults 0 0\n`);
  t.deepEqual(merge('etc/fstab', fstab, fstab.replace('0 1', '0 0'), fstab.replace('ext4', 'xfs')), { conflict: "mount point /: ours 'UUID=1 / ext4 errors=remount-ro 0 0', theirs 'UUID=1 / xfs errors=remount-ro 0 1'" });
});
