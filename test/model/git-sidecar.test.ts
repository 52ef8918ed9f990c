/** The git export's text formats: sidecar encode/decode (known answers, round trips, every malformed line), git names, manifest lines. */
import test from 'ava';
import { SidecarSyntaxError, decodeSidecar, encodeSidecar, gitName, manifestHeader, manifestLine, quoteField, type Sidecar } from '../../src/model/git-sidecar.js';
import type { TreeEntry } from '../../src/model/tree.js';

const b = (s: string) => Buffer.from(s, 'latin1');
const OID = 'a'.repeat(64);

const entries: TreeEntry[] = [
  { name: b('bin'), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 1_700_000_000_123_456_789n, size: 0, xattrs: [], oid: OID },
  { name: b('dev-null'), type: 'chr', mode: 0o666, uid: 0, gid: 0, mtimeNs: 0n, size: 0, xattrs: [], rdev: { major: 1, minor: 3 } },
  { name: b('disk'), type: 'file', mode: 0o4755, uid: 1234, gid: 5678, mtimeNs: -1_500_000_000n, size: 100, xattrs: [{ name: 'user.b', value: b('x y') }, { name: 'security.capability', value: b('\x00\xff') }], oid: OID, holes: [{ offset: 0, length: 10 }, { offset: 50, length: 50 }], hardlink: b('a b/c') },
  { name: b('link'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtimeNs: 5n, size: 4, xattrs: [], linkTarget: b('disk') },
  { name: b('new\nline'), type: 'fifo', mode: 0o600, uid: 0, gid: 0, mtimeNs: 1n, size: 0, xattrs: [] },
  { name: b('non-utf8-\xff'), type: 'socket', mode: 0o755, uid: 0, gid: 0, mtimeNs: 1n, size: 0, xattrs: [] },
  { name: b('with space'), type: 'file', mode: 0o600, uid: 0, gid: 0, mtimeNs: 1n, size: 3, xattrs: [{ name: 'user.odd name=:', value: b('') }], oid: OID },
];

const KNOWN = `viva-meta 1
@root dir 0755 0:0 1700000000000000000 xattr=user.r:cg==
@disk ${'b'.repeat(64)}
bin dir 0755 0:0 1700000000123456789
dev-null chr 0666 0:0 0 rdev=1:3
disk file 4755 1234:5678 -1500000000 holes=0+10,50+50 hardlink="a b/c" xattr=security.capability:AP8= xattr=user.b:eCB5
link symlink 0777 0:0 5
"new\\nline" fifo 0600 0:0 1
"non-utf8-\\377" socket 0755 0:0 1
"with space" file 0600 0:0 1 xattr=user.odd%20name%3D%3A:
`;

const sidecar: Sidecar = { root: { mode: 0o755, uid: 0, gid: 0, mtimeNs: 1_700_000_000_000_000_000n, xattrs: [{ name: 'user.r', value: b('r') }] }, disk: 'b'.repeat(64), entries: entries as Sidecar['entries'] };

test('git-sidecar: encodes a directory to the known text (frozen format, version 1)', (t) => {
  t.is(encodeSidecar(sidecar), KNOWN);
  t.is(encodeSidecar({ entries: [] }), 'viva-meta 1\n');
});

test('git-sidecar: decodes back every field, binary xattr values and names that are not UTF-8 included', (t) => {
  const d = decodeSidecar(KNOWN, true);
  t.deepEqual(d.root, { mode: 0o755, uid: 0, gid: 0, mtimeNs: 1_700_000_000_000_000_000n, xattrs: [{ name: 'user.r', value: b('r') }] });
  t.is(d.disk, 'b'.repeat(64));
  t.deepEqual(d.entries.map((e) => e.name), entries.map((e) => e.name));
  const disk = d.entries[2]!;
  t.is(disk.mode, 0o4755);
  t.is(disk.uid, 1234);
  t.is(disk.gid, 5678);
  t.is(disk.mtimeNs, -1_500_000_000n);
  t.deepEqual(disk.holes, [{ offset: 0, length: 10 }, { offset: 50, length: 50 }]);
  t.deepEqual(disk.hardlink, b('a b/c'));
  t.deepEqual(disk.xattrs.map((x) => [x.name, Buffer.from(x.value)]), [['security.capability', b('\x00\xff')], ['user.b', b('x y')]]);
  t.deepEqual(d.entries[1]!.rdev, { major: 1, minor: 3 });
  t.deepEqual(d.entries[6]!.xattrs, [{ name: 'user.odd name=:', value: Buffer.alloc(0) }]);
  t.is(encodeSidecar(d), KNOWN, 'decode then encode gives the same text');
});

const bad: Array<[string, string, number, RegExp]> = [
  ['no version line', 'bin dir 0755 0:0 1\n', 1, /expected 'viva-meta 1'/],
  ['a newer version', 'viva-meta 2\n', 1, /version 2 is not supported/],
  ['no final newline', 'viva-meta 1\nbin dir 0755 0:0 1', 2, /no newline at the end/],
  ['an unknown type', 'viva-meta 1\nx door 0755 0:0 1\n', 2, /unknown entry type 'door'/],
  ['a bad mode', 'viva-meta 1\nx file 755 0:0 1\n', 2, /bad mode '755'/],
  ['a bad owner', 'viva-meta 1\nx file 0755 root 1\n', 2, /bad owner 'root'/],
  ['a bad mtime', 'viva-meta 1\nx file 0755 0:0 1.5\n', 2, /bad mtime '1.5'/],
  ['two spaces', 'viva-meta 1\nx  file 0755 0:0 1\n', 2, /malformed line/],
  ['names out of order', 'viva-meta 1\nb file 0755 0:0 1\na file 0755 0:0 1\n', 3, /not in name order/],
  ['an unknown field', 'viva-meta 1\nx file 0755 0:0 1 colour=red\n', 2, /unknown field 'colour=red'/],
  ['rdev on a file', 'viva-meta 1\nx file 0755 0:0 1 rdev=1:2\n', 2, /unknown field/],
  ['a bad xattr value', 'viva-meta 1\nx file 0755 0:0 1 xattr=user.a:!!\n', 2, /bad xattr value/],
  ['overlapping holes', 'viva-meta 1\nx file 0755 0:0 1 holes=0+10,5+10\n', 2, /invalid hole list/],
  ['an unterminated quote', 'viva-meta 1\n"x file 0755 0:0 1\n', 2, /malformed line/],
  ['a name with a slash', 'viva-meta 1\na/b file 0755 0:0 1\n', 2, /invalid name/],
  ['@root below the root', 'viva-meta 1\n@root dir 0755 0:0 1\n', 2, /only at the image root/],
];
for (const [what, text, line, re] of bad) {
  test(`git-sidecar: refuses ${what}, naming the line`, (t) => {
    const e = t.throws(() => decodeSidecar(text, what.startsWith('@root') ? false : true), { instanceOf: SidecarSyntaxError });
    t.is(e!.line, line);
    t.regex(e!.reason, re);
  });
}

test('git-sidecar: gitName keeps ordinary names and escapes what git cannot hold or treats specially', (t) => {
  t.is(gitName(b('etc')), 'etc');
  t.is(gitName(Buffer.from('café')), 'café');
  t.is(gitName(b('new\nline')), 'new\nline');
  for (const n of ['.git', '.GIT', '.gitmodules', '.Gitattributes', 'git~1', '.viva-meta', '.viva-x-2e676974', 'a\\.git', '.git. .', '.g\u200cit']) {
    t.is(gitName(Buffer.from(n)), `.viva-x-${Buffer.from(n).toString('hex')}`, n);
  }
  t.is(gitName(b('non-utf8-\xff\xfe')), '.viva-x-6e6f6e2d757466382dfffe');
  t.is(gitName(b('.gi')), '.gi');
});

test('git-sidecar: quoteField makes one token of any name', (t) => {
  t.is(quoteField(b('plain')), 'plain');
  t.is(quoteField(b('a b')), '"a b"');
  t.is(quoteField(b('@x')), '"@x"');
  t.is(quoteField(b('')), '""');
  t.is(quoteField(b('q"')), '"q\\""');
});

test('git-sidecar: manifest lines (known answers)', (t) => {
  t.is(manifestHeader({ kind: 'tree', root: OID, tree: OID }), `# viva manifest 1\n# tree ${OID}\n`);
  t.is(manifestLine(b('usr/bin/disk'), entries[2]!, 'abcdefabcdef'),
    `usr/bin/disk file 4755 1234:5678 100 ${OID} 1969-12-31T23:59:58.500000000Z xattrs=2:abcdefabcdef holes=2 hardlink="a b/c"`);
  t.is(manifestLine(b('l'), entries[3]!), 'l symlink 0777 0:0 4 disk 1970-01-01T00:00:00.000000005Z xattrs=0');
  t.is(manifestLine(b('dev/null'), entries[1]!), 'dev/null chr 0666 0:0 0 1:3 1970-01-01T00:00:00.000000000Z xattrs=0');
});
