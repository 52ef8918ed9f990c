/** Derivation records and recipes: canonical encodings pinned by known answers, round trips, rejected garbage. */
import test from 'ava';
import { DecodeError } from '../../src/model/codec.js';
import { type Derivation, type Recipe, decodeDerivation, decodeRecipe, encodeDerivation, encodeRecipe, memoKey, recipeId } from '../../src/model/derivation.js';
import { hashBytes } from '../../src/model/oid.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);

const RECIPE: Recipe = {
  time: 1_700_000_100,
  edits: [
    { op: 'write', path: Buffer.from('etc/hostname'), blob: A, size: 6, mode: 0o644, generated: 'hostname' },
    { op: 'add-tree', path: Buffer.from(''), tree: B, meta: { mode: 0o755, uid: 0, gid: 0, mtimeNs: 5n, xattrs: [] } },
    { op: 'add-tree', path: Buffer.from('srv'), tree: B },
    { op: 'add-entry', path: Buffer.from('root/x'), entry: { name: Buffer.from('x'), type: 'file', mode: 0o600, uid: 1, gid: 2, mtimeNs: 7n, size: 3, xattrs: [{ name: 'user.a', value: Buffer.from('1') }], oid: C } },
    { op: 'rm', path: Buffer.from('etc/motd') },
    { op: 'mkdir', path: Buffer.from('opt/app'), mode: 0o750 },
    { op: 'symlink', path: Buffer.from('opt/cur'), target: Buffer.from('app') },
    { op: 'chmod', path: Buffer.from('usr/bin/su'), mode: 0o4755 },
    { op: 'chown', path: Buffer.from('home/u'), uid: 1000, gid: 1000 },
    { op: 'set-xattr', path: Buffer.from('etc/x'), name: 'security.capability', value: Buffer.from([1, 0, 0, 2]) },
    { op: 'rm-xattr', path: Buffer.from('etc/x'), name: 'user.old' },
    { op: 'mtime', path: Buffer.from('etc/x'), mtimeNs: -1_000_000_000n },
    { op: 'rename', path: Buffer.from('a\xff', 'latin1'), to: Buffer.from('b') },
  ],
};

test('recipe: every edit kind round-trips', (t) => {
  t.deepEqual(decodeRecipe(encodeRecipe(RECIPE)), RECIPE);
});

test('recipe and derivation ids are pinned (the encodings are frozen)', (t) => {
  // Changing these ids changes every memo key and record: bump RECIPE_VERSION / DERIVATION_VERSION instead.
  t.is(recipeId(RECIPE), hashBytes(encodeRecipe(RECIPE)));
  t.is(recipeId(RECIPE), '19e02677548aa3af18290e6c308079992a57d95e168971d45dc52714b44258b5');
  const dv: Derivation = { kind: 'derive', bases: [{ commit: A, rootKind: 'tree', root: B }], recipe: RECIPE, tool: 'viva 0.1.0' };
  t.deepEqual(decodeDerivation(encodeDerivation(dv)), dv);
  t.is(hashBytes(encodeDerivation(dv)), 'b50c450c9b766579d70db9232c8e6fa8ff3662eaf2d6a3f84596ce1d7af78668');
  t.is(memoKey(B, recipeId(RECIPE)), '9a9ac26ac61940f50303e063b0ff804922e72002f591c903e48d06934749a0bb');
});

test('recipe: the smallest recipe encodes to known bytes', (t) => {
  t.is(encodeRecipe({ time: 0, edits: [{ op: 'rm', path: Buffer.from('a') }] }).toString('hex'), '72656369706500010001040161');
});

test('recipe: garbage is a DecodeError, never a wrong recipe', (t) => {
  const good = encodeRecipe(RECIPE);
  t.throws(() => decodeRecipe(good.subarray(0, good.length - 1)), { instanceOf: DecodeError });
  t.throws(() => decodeRecipe(Buffer.concat([good, Buffer.from([0])])), { instanceOf: DecodeError });
  const badOp = Buffer.from(encodeRecipe({ time: 0, edits: [{ op: 'rm', path: Buffer.from('a') }] }));
  badOp[badOp.length - 3] = 99;
  t.throws(() => decodeRecipe(badOp), { instanceOf: DecodeError });
  t.throws(() => decodeDerivation(Buffer.from('derivation\0\x09')), { instanceOf: DecodeError });
});

test('package and merge recipes round-trip inside derivations, and their ids are stable', (t) => {
  const h = (s: string) => hashBytes(Buffer.from(s));
  const install: Derivation = {
    kind: 'install', tool: 'viva 0.1.0', bases: [{ commit: h('base'), rootKind: 'tree', root: h('root') }],
    recipe: { request: [{ name: 'htop' }, { name: 'tmux', version: '3.3a-3' }], remove: [], purge: false, scripts: true, removed: ['screen'],
      debs: [{ name: 'htop', version: '3.2.2-2', arch: 'amd64', sha256: h('deb'), record: h('record') }] },
  };
  const merge: Derivation = {
    kind: 'merge', tool: 'viva 0.1.0', bases: [{ commit: h('a'), rootKind: 'tree', root: h('ra') }, { commit: h('b'), rootKind: 'disk', root: h('rb') }],
    recipe: { base: h('mb'), resolutions: [{ path: Buffer.from('etc/motd'), how: 'theirs' }, { path: Buffer.from('etc/x'), how: 'content', blob: h('blob'), size: 3 }] },
  };
  for (const dv of [install, merge, { ...merge, recipe: { base: null, resolutions: [] } } as Derivation]) {
    t.deepEqual(decodeDerivation(encodeDerivation(dv)), dv);
  }
  // Pinned: a change of either encoding changes every memo key and derivation id in existing repositories.
  t.deepEqual([hashBytes(encodeDerivation(install)), hashBytes(encodeDerivation(merge))], ['cd7255ddaa01f1abc3d1ac27cc8e6692bd1e8301878fccfd856a9d189ad91a1f', 'c06ba1194c5ff129291ed89975936830cb5a23b94f1bd0c639660121b47176d9']);
  for (let cut = 1; cut < encodeDerivation(merge).length; cut += 7) {
    t.throws(() => decodeDerivation(encodeDerivation(merge).subarray(0, cut)), { instanceOf: DecodeError });
  }
});
