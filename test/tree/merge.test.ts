/**
 * Tests of the three-way tree merge: every rule is checked by committing real directories for base, ours and theirs,
 * merging the committed trees, and comparing the result with the commit of a directory built by hand as the expected
 * merge (tree ids equal); conflicts by kind and path, the conflict tree (markers, PATH~theirs), resolutions,
 * symmetry, identical subtrees unread, FileMergers and hardlink groups.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AbortedError, UsageError } from '../../src/errors.js';
import type { ObjectReader } from '../../src/store/object-store.js';
import type { Repository } from '../../src/store/repository.js';
import { readBlobBytes, readCommit, tryReadPath } from '../../src/store/typed.js';
import { type FileMerger, type MergeSide, type MergeTreesOptions, type MergeTreesResult, type Resolution, mergeTrees } from '../../src/tree/merge.js';
import { mergeText } from '../../src/tree/merge-text.js';
import { commitAt, tmpRepo, writeTree, type Spec } from '../helpers/repo.js';

const FIXED = new Date('2020-01-02T03:04:05Z');
/** The mtime the merge gives files whose content it produced (whole seconds, so a host file can have it). */
const MERGE_S = 1_800_000_000;
const MERGE_NS = BigInt(MERGE_S) * 1_000_000_000n;

interface Ctx {
  t: ExecutionContext;
  repo: Repository;
  dir: string;
}

function setup(t: ExecutionContext): Ctx {
  const { repo, dir } = tmpRepo(t);
  return { t, repo, dir };
}

/** Gives every directory below `root` (and `root`) the fixed mtime again: host edits made after writeTree bump them. */
function fixDirTimes(root: string): void {
  const visit = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) visit(path.join(d, e.name));
    fs.utimesSync(d, FIXED, FIXED);
  };
  visit(root);
}

/** Writes `spec` as directory `name`, applies `tweak` to it, commits it: one side of a merge (or an expected result). */
async function side(c: Ctx, name: string, spec: Spec, tweak?: (root: string) => void): Promise<MergeSide> {
  const root = path.join(c.dir, name);
  writeTree(root, spec);
  tweak?.(root);
  fixDirTimes(root);
  const commit = await commitAt(c.repo, root, { branch: name });
  return { tree: commit.tree, rootMeta: readCommit(c.repo.objects, commit.id).rootMeta! };
}

function merge(c: Ctx, b: MergeSide, o: MergeSide, t: MergeSide, options: Partial<MergeTreesOptions> = {}): Promise<MergeTreesResult> {
  return mergeTrees(c.repo.objects, c.repo.objects, b, o, t, { mtimeNs: MERGE_NS, ...options });
}

/** The conflicts as `kind path` lines. */
function kinds(r: MergeTreesResult): string[] {
  return r.conflicts.map((x) => `${x.kind} ${x.path.toString()}`);
}

async function fileAt(objects: ObjectReader, tree: string, p: string): Promise<string> {
  const e = tryReadPath(objects, tree, Buffer.from(p));
  if (e?.type !== 'file') throw new Error(`no file at ${p}`);
  return (await readBlobBytes(objects, e.oid!, e.size)).toString('utf8');
}

/** Sets a file's mtime to the merge's. */
function merged(root: string, ...files: string[]): void {
  for (const f of files) fs.utimesSync(path.join(root, f), MERGE_S, MERGE_S);
}

function symlink(root: string, p: string, target: string): void {
  fs.rmSync(path.join(root, p), { force: true });
  fs.symlinkSync(target, path.join(root, p));
  fs.lutimesSync(path.join(root, p), FIXED, FIXED);
}

function setXattr(root: string, p: string, name: string, value: string): void {
  execFileSync('setfattr', ['-h', '-n', name, '-v', value, path.join(root, p)]);
}

/** Rewrites a file in place (every hardlink of it changes), keeping its mtime fixed. */
function rewrite(root: string, p: string, data: string): void {
  fs.writeFileSync(path.join(root, p), data);
  fs.utimesSync(path.join(root, p), FIXED, FIXED);
}

const TEXT = 'one\ntwo\nthree\nfour\nfive\nsix\nseven\n';
const BASE: Spec = {
  etc: { 'hosts': '127.0.0.1 localhost\n', 'motd': 'hello\n', 'conf': TEXT, 'same': 'same\n' },
  usr: { bin: { tool: 'tool v1\0bin' }, share: { doc: { a: 'a\n', b: 'b\n' } } },
  var: { log: { x: 'x\n' } },
};

/** `spec` with `edits` applied: a value replaces (undefined deletes) the entry at a slash path. */
function edit(spec: Spec, edits: Record<string, string | Buffer | Spec | undefined>): Spec {
  const copy: Spec = structuredClone(spec);
  for (const [p, v] of Object.entries(edits)) {
    const parts = p.split('/');
    let d = copy;
    for (const part of parts.slice(0, -1)) d = (d[part] ??= {}) as Spec;
    if (v === undefined) delete d[parts[parts.length - 1]!];
    else d[parts[parts.length - 1]!] = v;
  }
  return copy;
}

/** Merges both ways round: a clean merge must give one tree whichever side is ours. */
async function mergeBothWays(c: Ctx, b: MergeSide, o: MergeSide, t: MergeSide, options: Partial<MergeTreesOptions> = {}): Promise<MergeTreesResult> {
  const r = await merge(c, b, o, t, options);
  const swapped = await merge(c, b, t, o, options);
  c.t.deepEqual(kinds(r), [], 'a clean merge');
  c.t.is(swapped.tree, r.tree, 'the same tree with the sides swapped');
  c.t.is(swapped.rootMeta.mode, r.rootMeta.mode);
  return r;
}

test('merge: a change on one side is taken, the same change on both once, and both orders give one tree', async (t) => {
  const c = setup(t);
  const b = await side(c, 'base', BASE);
  const both = { 'etc/same': 'both\n', 'usr/share/doc/b': undefined, 'srv': { www: { index: 'i\n' } } };
  const o = await side(c, 'ours', edit(BASE, { 'etc/motd': 'ours\n', 'etc/new-ours': 'n\n', 'var/log/x': undefined, ...both }));
  const th = await side(c, 'theirs', edit(BASE, {
    'usr/share/doc/a': 'theirs\n', 'opt': { app: { run: 'r\n' } }, 'etc/hosts': undefined, 'usr/bin/tool': { real: 'now a dir\n' }, ...both,
  }));
  const r = await mergeBothWays(c, b, o, th);
  const want = await side(c, 'want', edit(BASE, {
    'etc/motd': 'ours\n', 'etc/new-ours': 'n\n', 'var/log/x': undefined, ...both,
    'usr/share/doc/a': 'theirs\n', 'opt': { app: { run: 'r\n' } }, 'etc/hosts': undefined, 'usr/bin/tool': { real: 'now a dir\n' },
  }));
  t.is(r.tree, want.tree);
  t.is(r.merged, 0);
});

test('merge: one side unchanged gives the other side\'s tree without a walk', async (t) => {
  const c = setup(t);
  const b = await side(c, 'base', BASE);
  const th = await side(c, 'theirs', edit(BASE, { 'etc/motd': 'theirs\n' }));
  const r = await mergeBothWays(c, b, b, th);
  t.is(r.tree, th.tree);
  t.is(r.visited, 0);
});

test('merge: a text file both changed merges line by line, gets the merge mtime, and is the same both ways', async (t) => {
  const c = setup(t);
  const b = await side(c, 'base', BASE);
  // Both make one change the same way (line four): taken once, not a conflict.
  const o = await side(c, 'ours', edit(BASE, { 'etc/conf': 'ONE\ntwo\nthree\nFOUR\nfive\nsix\nseven\n' }));
  const th = await side(c, 'theirs', edit(BASE, { 'etc/conf': 'one\ntwo\nthree\nFOUR\nfive\nsix\nSEVEN\neight' }));
  const r = await mergeBothWays(c, b, o, th);
  t.is(r.merged, 1);
  const want = await side(c, 'want', edit(BASE, { 'etc/conf': 'ONE\ntwo\nthree\nFOUR\nfive\nsix\nSEVEN\neight' }), (root) => merged(root, 'etc/conf'));
  t.is(r.tree, want.tree);
});

test('merge: text keeps its line endings (CRLF lines, no final newline)', (t) => {
  const r = mergeText(Buffer.from('a\r\nb\r\nc\r\nd'), Buffer.from('A\r\nb\r\nc\r\nd'), Buffer.from('a\r\nb\r\nc\r\nD'));
  t.is(r.conflicts, 0);
  t.is(r.data.toString(), 'A\r\nb\r\nc\r\nD');
});

test('merge: overlapping text changes conflict; the tree holds git-style markers (labels configurable)', async (t) => {
  const c = setup(t);
  const b = await side(c, 'base', BASE);
  const o = await side(c, 'ours', edit(BASE, { 'etc/conf': 'one\nTWO (ours)\nthree\nfour\nfive\nsix\nseven\n', 'etc/motd': 'ours\n' }));
  const th = await side(c, 'theirs', edit(BASE, { 'etc/conf': 'one\nTWO (theirs)\nthree\nfour\nfive\nsix\nSEVEN\n' }));
  const r = await merge(c, b, o, th);
  t.deepEqual(kinds(r), ['content etc/conf']);
  t.is(r.merged, 0);
  const markers = 'one\n<<<<<<< ours\nTWO (ours)\n||||||| base\ntwo\n=======\nTWO (theirs)\n>>>>>>> theirs\nthree\nfour\nfive\nsix\nSEVEN\n';
  t.is(await fileAt(c.repo.objects, r.tree, 'etc/conf'), markers);
  const want = await side(c, 'want', edit(BASE, { 'etc/conf': markers, 'etc/motd': 'ours\n' }), (root) => merged(root, 'etc/conf'));
  t.is(r.tree, want.tree);
  const labelled = await merge(c, b, o, th, { labels: { ours: 'A', base: 'O', theirs: 'B' } });
  t.regex(await fileAt(c.repo.objects, labelled.tree, 'etc/conf'), /^one\n<<<<<<< A\nTWO \(ours\)\n\|\|\|\|\|\|\| O\ntwo\n=======\nTWO \(theirs\)\n>>>>>>> B\n/);
});

test('merge: binary files both changed conflict: ours stays, theirs and base go beside it', async (t) => {
  const c = setup(t);
  const b = await side(c, 'base', BASE);
  const o = await side(c, 'ours', edit(BASE, { 'usr/bin/tool': 'tool v2\0ours' }));
  const th = await side(c, 'theirs', edit(BASE, { 'usr/bin/tool': 'tool v2\0theirs' }));
  const r = await merge(c, b, o, th);
  t.deepEqual(kinds(r), ['content usr/bin/tool']);
  t.is(r.conflicts[0]!.detail, 'binary file');
  const want = await side(c, 'want', edit(BASE, { 'usr/bin/tool': 'tool v2\0ours', 'usr/bin/tool~theirs': 'tool v2\0theirs', 'usr/bin/tool~base': 'tool v1\0bin' }));
  t.is(r.tree, want.tree);
});

test('merge: a name taken beside a conflict gets a number', async (t) => {
  const c = setup(t);
  const spec = edit(BASE, { 'usr/bin/tool~theirs': 'taken' });
  const b = await side(c, 'base', spec);
  const o = await side(c, 'ours', edit(spec, { 'usr/bin/tool': 'tool v2\0ours' }));
  const th = await side(c, 'theirs', edit(spec, { 'usr/bin/tool': 'tool v2\0theirs' }));
  const r = await merge(c, b, o, th);
  const want = await side(c, 'want', edit(spec, { 'usr/bin/tool': 'tool v2\0ours', 'usr/bin/tool~theirs_1': 'tool v2\0theirs', 'usr/bin/tool~base': 'tool v1\0bin' }));
  t.is(r.tree, want.tree);
});

test('merge: chmod on one side and content on the other merge; both chmod differently conflict (ours kept)', async (t) => {
  const c = setup(t);
  const b = await side(c, 'base', BASE);
  const o = await side(c, 'ours', edit(BASE, { 'etc/conf': 'ONE\ntwo\nthree\nfour\nfive\nsix\nseven\n' }), (root) => {
    fs.chmodSync(path.join(root, 'etc/hosts'), 0o600);
    fs.chmodSync(path.join(root, 'usr/bin'), 0o700);
  });
  const th = await side(c, 'theirs', edit(BASE, { 'etc/hosts': '10.0.0.1 db\n' }), (root) => {
    fs.chmodSync(path.join(root, 'etc/conf'), 0o640);
    fs.chmodSync(path.join(root, 'usr/bin'), 0o750);
  });
  const r = await merge(c, b, o, th);
  t.deepEqual(kinds(r), ['mode usr/bin']);
  t.is(r.conflicts[0]!.detail, 'ours 0700, theirs 0750');
  const want = await side(c, 'want', edit(BASE, { 'etc/conf': 'ONE\ntwo\nthree\nfour\nfive\nsix\nseven\n', 'etc/hosts': '10.0.0.1 db\n' }), (root) => {
    fs.chmodSync(path.join(root, 'etc/hosts'), 0o600);
    fs.chmodSync(path.join(root, 'etc/conf'), 0o640);
    fs.chmodSync(path.join(root, 'usr/bin'), 0o700);
  });
  t.is(r.tree, want.tree);
  // Without the directory's conflict the same edits merge cleanly, whichever side is ours.
  const o2 = await side(c, 'ours2', edit(BASE, { 'etc/conf': 'ONE\ntwo\nthree\nfour\nfive\nsix\nseven\n' }), (root) => fs.chmodSync(path.join(root, 'etc/hosts'), 0o600));
  const t2 = await side(c, 'theirs2', edit(BASE, { 'etc/hosts': '10.0.0.1 db\n' }), (root) => fs.chmodSync(path.join(root, 'etc/conf'), 0o640));
  await mergeBothWays(c, b, o2, t2);
});

test('merge: owner and xattrs merge field by field, each xattr name on its own; both changing one differently conflicts', async (t) => {
  const c = setup(t);
  const base = (root: string) => {
    setXattr(root, 'etc/motd', 'user.keep', 'k');
    setXattr(root, 'etc/motd', 'user.gone', 'g');
    setXattr(root, 'etc/motd', 'user.fight', 'f');
  };
  const b = await side(c, 'base', BASE, base);
  const o = await side(c, 'ours', BASE, (root) => {
    base(root);
    fs.chownSync(path.join(root, 'etc/motd'), 1000, 1000);
    setXattr(root, 'etc/motd', 'user.ours', 'o');
    setXattr(root, 'etc/motd', 'user.fight', 'ours');
    fs.chownSync(path.join(root, 'var/log'), 1, 1);
  });
  const th = await side(c, 'theirs', BASE, (root) => {
    base(root);
    execFileSync('setfattr', ['-x', 'user.gone', path.join(root, 'etc/motd')]);
    setXattr(root, 'etc/motd', 'user.fight', 'theirs');
    fs.chownSync(path.join(root, 'var/log'), 2, 2);
    fs.chownSync(path.join(root, 'etc/hosts'), 5, 5);
  });
  const r = await merge(c, b, o, th);
  t.deepEqual(kinds(r), ['xattr etc/motd', 'owner var/log']);
  t.regex(r.conflicts[0]!.detail!, /user\.fight/);
  const want = await side(c, 'want', BASE, (root) => {
    base(root);
    fs.chownSync(path.join(root, 'etc/motd'), 1000, 1000);
    execFileSync('setfattr', ['-x', 'user.gone', path.join(root, 'etc/motd')]);
    setXattr(root, 'etc/motd', 'user.ours', 'o');
    setXattr(root, 'etc/motd', 'user.fight', 'ours');
    fs.chownSync(path.join(root, 'var/log'), 1, 1);
    fs.chownSync(path.join(root, 'etc/hosts'), 5, 5);
  });
  t.is(r.tree, want.tree);
});

test('merge: mtime never conflicts: the side that changed it wins, both changed: the later', async (t) => {
  const c = setup(t);
  const at = (root: string, p: string, s: number) => fs.utimesSync(path.join(root, p), s, s);
  const b = await side(c, 'base', BASE);
  const o = await side(c, 'ours', BASE, (root) => { at(root, 'etc/motd', 1_600_000_000); at(root, 'etc/hosts', 1_500_000_000); });
  const th = await side(c, 'theirs', BASE, (root) => { at(root, 'etc/motd', 1_700_000_000); at(root, 'etc/same', 1_400_000_000); });
  await mergeBothWays(c, b, o, th);
  const r = await merge(c, b, o, th);
  const want = await side(c, 'want', BASE, (root) => { at(root, 'etc/motd', 1_700_000_000); at(root, 'etc/hosts', 1_500_000_000); at(root, 'etc/same', 1_400_000_000); });
  t.is(r.tree, want.tree);
});

test('merge: the root directory\'s own metadata merges as any directory\'s', async (t) => {
  const c = setup(t);
  const b = await side(c, 'base', BASE);
  const o = await side(c, 'ours', edit(BASE, { 'etc/motd': 'ours\n' }), (root) => fs.chmodSync(root, 0o700));
  const th = await side(c, 'theirs', edit(BASE, { 'etc/hosts': 'theirs\n' }), (root) => fs.chownSync(root, 7, 7));
  const r = await mergeBothWays(c, b, o, th);
  t.like(r.rootMeta, { mode: 0o700, uid: 7, gid: 7 });
  const o2 = await side(c, 'ours2', BASE, (root) => fs.chmodSync(root, 0o750));
  const r2 = await merge(c, b, o, o2);
  t.deepEqual(kinds(r2), ['mode ']);
  t.is(r2.rootMeta.mode, 0o700);
  const r3 = await merge(c, b, o, o2, { resolutions: new Map([['', 'theirs']]) });
  t.is(r3.rootMeta.mode, 0o750);
  t.deepEqual(r3.conflicts, []);
});

test('merge: add/add: same content is fine, different content conflicts, same content with another mode conflicts on the mode', async (t) => {
  const c = setup(t);
  const b = await side(c, 'base', BASE);
  const o = await side(c, 'ours', edit(BASE, { 'etc/same-add': 'x\n', 'etc/diff-add': 'ours\n', 'etc/mode-add': 'm\n', 'etc/bin-add': 'o\0' }), (root) => fs.chmodSync(path.join(root, 'etc/mode-add'), 0o600));
  const th = await side(c, 'theirs', edit(BASE, { 'etc/same-add': 'x\n', 'etc/diff-add': 'theirs\n', 'etc/mode-add': 'm\n', 'etc/bin-add': 't\0' }));
  const r = await merge(c, b, o, th);
  t.deepEqual(kinds(r), ['add/add etc/bin-add', 'add/add etc/diff-add', 'mode etc/mode-add']);
  const markers = '<<<<<<< ours\nours\n||||||| base\n=======\ntheirs\n>>>>>>> theirs\n';
  const want = await side(c, 'want', edit(BASE, {
    'etc/same-add': 'x\n', 'etc/diff-add': markers, 'etc/mode-add': 'm\n', 'etc/bin-add': 'o\0', 'etc/bin-add~theirs': 't\0',
  }), (root) => {
    fs.chmodSync(path.join(root, 'etc/mode-add'), 0o600);
    merged(root, 'etc/diff-add');
  });
  t.is(r.tree, want.tree);
});

test('merge: modify/delete and delete/modify conflict; a deleted directory with changes inside is named at the directory', async (t) => {
  const c = setup(t);
  const b = await side(c, 'base', BASE);
  const o = await side(c, 'ours', edit(BASE, { 'etc/motd': 'ours\n', 'etc/hosts': undefined, 'usr/share': undefined }));
  const th = await side(c, 'theirs', edit(BASE, { 'etc/motd': undefined, 'etc/hosts': 'theirs\n', 'usr/share/doc/b': 'theirs\n' }));
  const r = await merge(c, b, o, th);
  t.deepEqual(kinds(r), ['delete/modify etc/hosts', 'modify/delete etc/motd', 'delete/modify usr/share']);
  const theirsShare = { doc: { a: 'a\n', b: 'theirs\n' } };
  const want = await side(c, 'want', edit(BASE, {
    'etc/motd': 'ours\n', 'etc/motd~base': 'hello\n', 'etc/hosts': undefined, 'etc/hosts~theirs': 'theirs\n', 'etc/hosts~base': '127.0.0.1 localhost\n',
    'usr/share': undefined, 'usr/share~theirs': theirsShare, 'usr/share~base': { doc: { a: 'a\n', b: 'b\n' } },
  }));
  t.is(r.tree, want.tree);
});

test('merge: types changed differently conflict; symlink targets are content; a symlink changed on one side is taken', async (t) => {
  const c = setup(t);
  const links = (root: string) => { symlink(root, 'etc/link', 'motd'); symlink(root, 'etc/other', 'hosts'); };
  const b = await side(c, 'base', BASE, links);
  const o = await side(c, 'ours', edit(BASE, { 'var/log': 'now a file\n' }), (root) => {
    links(root);
    symlink(root, 'etc/link', 'conf');
    symlink(root, 'etc/motd', 'hosts');
  });
  const th = await side(c, 'theirs', edit(BASE, { 'var/log': { x: 'changed\n' }, 'etc/motd': 'theirs\n' }), (root) => {
    links(root);
    symlink(root, 'etc/link', 'same');
    symlink(root, 'etc/other', 'conf');
  });
  const r = await merge(c, b, o, th);
  t.deepEqual(kinds(r), ['content etc/link', 'type etc/motd', 'type var/log']);
  const want = await side(c, 'want', edit(BASE, {
    'var/log': 'now a file\n', 'var/log~theirs': { x: 'changed\n' }, 'var/log~base': { x: 'x\n' },
    'etc/motd~theirs': 'theirs\n', 'etc/motd~base': 'hello\n',
  }), (root) => {
    links(root);
    symlink(root, 'etc/link', 'conf');
    symlink(root, 'etc/link~theirs', 'same');
    symlink(root, 'etc/link~base', 'motd');
    symlink(root, 'etc/motd', 'hosts');
    symlink(root, 'etc/other', 'conf');
  });
  t.is(r.tree, want.tree);
});

test('merge: devices: numbers changed on one side are taken, on both differently conflict', async (t) => {
  const c = setup(t);
  const dev = (root: string, p: string, minor: number) => {
    fs.rmSync(path.join(root, p), { force: true });
    execFileSync('mknod', [path.join(root, p), 'c', '1', String(minor)]);
    fs.utimesSync(path.join(root, p), FIXED, FIXED);
  };
  const devs = (root: string) => { dev(root, 'etc/null', 3); dev(root, 'etc/zero', 5); };
  const b = await side(c, 'base', BASE, devs);
  const o = await side(c, 'ours', BASE, (root) => { devs(root); dev(root, 'etc/null', 7); dev(root, 'etc/zero', 8); });
  const th = await side(c, 'theirs', BASE, (root) => { devs(root); dev(root, 'etc/null', 9); });
  const r = await merge(c, b, o, th);
  t.deepEqual(kinds(r), ['content etc/null']);
  const want = await side(c, 'want', BASE, (root) => { devs(root); dev(root, 'etc/null', 7); dev(root, 'etc/null~theirs', 9); dev(root, 'etc/null~base', 3); dev(root, 'etc/zero', 8); });
  t.is(r.tree, want.tree);
});

test('merge: a sparse file goes with its content: holes from the side that wrote it, mode from the other', async (t) => {
  const c = setup(t);
  const sparse = (root: string) => {
    const p = path.join(root, 'var/disk.img');
    const fd = fs.openSync(p, 'w');
    fs.writeSync(fd, Buffer.from('head'), 0, 4, 0);
    fs.writeSync(fd, Buffer.from('tail'), 0, 4, 8 * 1024 * 1024);
    fs.closeSync(fd);
    fs.chmodSync(p, 0o644);
    fs.utimesSync(p, FIXED, FIXED);
  };
  const spec = edit(BASE, { 'var/disk.img': 'small\n' });
  const b = await side(c, 'base', spec);
  const o = await side(c, 'ours', spec, (root) => fs.chmodSync(path.join(root, 'var/disk.img'), 0o600));
  const th = await side(c, 'theirs', spec, sparse);
  const r = await mergeBothWays(c, b, o, th);
  const want = await side(c, 'want', spec, (root) => { sparse(root); fs.chmodSync(path.join(root, 'var/disk.img'), 0o600); });
  t.is(r.tree, want.tree);
  t.like(tryReadPath(c.repo.objects, r.tree, Buffer.from('var/disk.img')), { mode: 0o600, size: 8 * 1024 * 1024 + 4 });
  t.true((tryReadPath(c.repo.objects, r.tree, Buffer.from('var/disk.img'))?.holes?.length ?? 0) > 0, 'the holes came along');
});

test('merge: identical subtrees are skipped unread: a big tree with one change on each side visits a few paths', async (t) => {
  const c = setup(t);
  const big: Spec = { etc: { motd: 'm\n' } };
  for (let i = 0; i < 40; i++) {
    const d: Spec = {};
    for (let j = 0; j < 25; j++) d[`f${j}`] = `${i}/${j}\n`;
    big[`d${String(i).padStart(2, '0')}`] = d;
  }
  const b = await side(c, 'base', big);
  const o = await side(c, 'ours', edit(big, { 'd07/f3': 'ours\n' }));
  const th = await side(c, 'theirs', edit(big, { 'd31/f9': 'theirs\n' }));
  const reads: string[] = [];
  const store = c.repo.objects;
  const objects: ObjectReader = {
    hasObject: (k, oid) => store.hasObject(k, oid),
    readObject: (k, oid) => { if (k === 'tree') reads.push(oid); return store.readObject(k, oid); },
    tryReadObject: (k, oid) => store.tryReadObject(k, oid),
    tryReadUnverified: (k, oid) => store.tryReadUnverified(k, oid),
  };
  const r = await mergeTrees(objects, store, b, o, th, { mtimeNs: MERGE_NS });
  t.deepEqual(kinds(r), []);
  // Of the roots' 41 entries only d07 (ours', kept) and d31 (theirs', taken by id) differ; nothing below them is
  // walked. Tree reads: the three roots, ours' root again to edit it, and theirs' and base's d31 for the hardlink
  // scan (no group changed on theirs, so ours' d07 is not read).
  t.is(r.visited, 2);
  t.is(reads.length, 6);
  const want = await side(c, 'want', edit(big, { 'd07/f3': 'ours\n', 'd31/f9': 'theirs\n' }));
  t.is(r.tree, want.tree);
});

test('merge: a FileMerger runs before the line merge for the paths it matches; its refusal is a semantic conflict', async (t) => {
  const c = setup(t);
  const calls: string[] = [];
  const union: FileMerger = {
    name: 'union',
    matches: (p) => p.toString() === 'etc/list.txt',
    merge({ path: p, base, ours, theirs }) {
      calls.push(`${p.toString()} ${base === undefined ? 'no base' : 'base'}`);
      const lines = [...new Set([...ours.toString().split('\n'), ...theirs.toString().split('\n')].filter(Boolean))].sort();
      if (lines.includes('refuse')) return { conflict: 'cannot merge a refusal' };
      return { data: Buffer.from(lines.map((l) => `${l}\n`).join('')) };
    },
  };
  const spec = edit(BASE, { 'etc/list.txt': 'a\nb\n' });
  const b = await side(c, 'base', spec);
  const o = await side(c, 'ours', edit(spec, { 'etc/list.txt': 'a\nb\nc\n', 'etc/added.txt': 'x\n' }));
  const th = await side(c, 'theirs', edit(spec, { 'etc/list.txt': 'a\nb\nd\n', 'etc/added.txt': 'y\n' }));
  const r = await merge(c, b, o, th, { mergers: [union] });
  // The line merge would conflict (both appended after 'b'); the union does not. etc/added.txt is not its path.
  t.deepEqual(kinds(r), ['add/add etc/added.txt']);
  t.deepEqual(calls, ['etc/list.txt base']);
  t.is(r.merged, 1);
  t.is(await fileAt(c.repo.objects, r.tree, 'etc/list.txt'), 'a\nb\nc\nd\n');
  calls.length = 0;
  const all = await merge(c, b, o, th, { mergers: [{ ...union, matches: () => true }] });
  t.deepEqual(kinds(all), []);
  t.deepEqual(calls.sort(), ['etc/added.txt no base', 'etc/list.txt base']);
  t.is(await fileAt(c.repo.objects, all.tree, 'etc/added.txt'), 'x\ny\n');
  const th2 = await side(c, 'theirs-refuses', edit(spec, { 'etc/list.txt': 'a\nb\nrefuse\n' }));
  const r2 = await merge(c, b, o, th2, { mergers: [union] });
  t.deepEqual(kinds(r2), ['semantic etc/list.txt']);
  t.is(r2.conflicts[0]!.detail, 'union: cannot merge a refusal');
  t.is(await fileAt(c.repo.objects, r2.tree, 'etc/list.txt~theirs'), 'a\nb\nrefuse\n');
});

/** A base and two sides with one conflict of each resolvable kind. */
async function conflicted(c: Ctx): Promise<{ b: MergeSide; o: MergeSide; th: MergeSide }> {
  const b = await side(c, 'base', BASE);
  const o = await side(c, 'ours', edit(BASE, {
    'etc/conf': 'ONE (ours)\ntwo\nthree\nfour\nfive\nsix\nseven\n', 'usr/bin/tool': 'ours\0', 'etc/motd': undefined, 'etc/hosts': 'ours\n', 'etc/added': 'o\n',
  }));
  const th = await side(c, 'theirs', edit(BASE, {
    'etc/conf': 'ONE (theirs)\ntwo\nthree\nfour\nfive\nsix\nseven\n', 'usr/bin/tool': 'theirs\0', 'etc/motd': 'theirs\n', 'etc/hosts': 'theirs\n', 'etc/added': 't\n',
  }));
  return { b, o, th };
}

test('merge: resolutions settle conflicts by path: ours, theirs, base (absent in base: removed), content', async (t) => {
  const c = setup(t);
  const { b, o, th } = await conflicted(c);
  const unresolved = await merge(c, b, o, th);
  t.deepEqual(kinds(unresolved), ['add/add etc/added', 'content etc/conf', 'content etc/hosts', 'delete/modify etc/motd', 'content usr/bin/tool']);
  const resolutions = new Map<string, Resolution>([
    ['etc/conf', 'theirs'], ['usr/bin/tool', 'ours'], ['etc/motd', 'base'], ['etc/added', 'base'], ['etc/hosts', { data: Buffer.from('resolved\n') }],
  ]);
  const r = await merge(c, b, o, th, { resolutions });
  t.deepEqual(r.conflicts, []);
  const want = await side(c, 'want', edit(BASE, {
    'etc/conf': 'ONE (theirs)\ntwo\nthree\nfour\nfive\nsix\nseven\n', 'usr/bin/tool': 'ours\0', 'etc/hosts': 'resolved\n',
  }), (root) => merged(root, 'etc/hosts'));
  t.is(r.tree, want.tree);
  // Some resolved, the rest left as conflicts.
  const part = await merge(c, b, o, th, { resolutions: new Map([['etc/motd', 'theirs']]) });
  t.deepEqual(kinds(part), ['add/add etc/added', 'content etc/conf', 'content etc/hosts', 'content usr/bin/tool']);
  t.is(await fileAt(c.repo.objects, part.tree, 'etc/motd'), 'theirs\n');
  t.is(tryReadPath(c.repo.objects, part.tree, Buffer.from('etc/motd~theirs')), undefined);
});

test('merge: a resolution with content keeps the metadata the file merged to', async (t) => {
  const c = setup(t);
  const b = await side(c, 'base', BASE);
  const o = await side(c, 'ours', edit(BASE, { 'usr/bin/tool': 'ours\0' }));
  const th = await side(c, 'theirs', edit(BASE, { 'usr/bin/tool': 'theirs\0' }), (root) => fs.chmodSync(path.join(root, 'usr/bin/tool'), 0o755));
  const r = await merge(c, b, o, th, { resolutions: new Map([['usr/bin/tool', { data: Buffer.from('fixed\0') }]]) });
  t.deepEqual(r.conflicts, []);
  const want = await side(c, 'want', edit(BASE, { 'usr/bin/tool': 'fixed\0' }), (root) => {
    fs.chmodSync(path.join(root, 'usr/bin/tool'), 0o755);
    merged(root, 'usr/bin/tool');
  });
  t.is(r.tree, want.tree);
});

test('merge: a resolution for a path without a conflict is a UsageError naming it', async (t) => {
  const c = setup(t);
  const { b, o, th } = await conflicted(c);
  const e = await t.throwsAsync(merge(c, b, o, th, { resolutions: new Map([['etc/same', 'ours']]) }), { instanceOf: UsageError });
  t.is(e.message, "no conflict at 'etc/same' to resolve");
  t.is(e.code, 'ERR_USAGE');
  await t.throwsAsync(merge(c, b, o, th, { resolutions: new Map([['etc', { data: Buffer.from('x') }]]) }), { instanceOf: UsageError, message: "no conflict at 'etc' to resolve" });
});

test('merge: an aborted signal stops the merge', async (t) => {
  const c = setup(t);
  const { b, o, th } = await conflicted(c);
  await t.throwsAsync(merge(c, b, o, th, { signal: AbortSignal.abort() }), { instanceOf: AbortedError });
});

// ---- hardlink groups ----

/** BASE with a hardlink group {a/x, b/y} (c/ holds an unrelated file). */
const LINKS: Spec = { a: { x: 'shared\n', other: 'o\n' }, b: { y: 'placeholder' }, c: { z0: 'z\n' } };
function linkGroup(root: string): void {
  fs.rmSync(path.join(root, 'b/y'));
  fs.linkSync(path.join(root, 'a/x'), path.join(root, 'b/y'));
}

test('merge: a hardlink group one side changed is taken whole from that side', async (t) => {
  const c = setup(t);
  const b = await side(c, 'base', LINKS, linkGroup);
  // Theirs rewrites the shared file (both names) and adds a third name; ours edits a file beside a member.
  const theirs = (root: string) => {
    linkGroup(root);
    rewrite(root, 'a/x', 'theirs\n');
    fs.linkSync(path.join(root, 'a/x'), path.join(root, 'c/z'));
  };
  const th = await side(c, 'theirs', LINKS, theirs);
  const o = await side(c, 'ours', edit(LINKS, { 'a/other': 'ours\n' }), linkGroup);
  const r = await mergeBothWays(c, b, o, th);
  const want = await side(c, 'want', edit(LINKS, { 'a/other': 'ours\n' }), theirs);
  t.is(r.tree, want.tree);
  // A chmod of the group on one side and an unrelated change on the other.
  const o2 = await side(c, 'ours-chmod', LINKS, (root) => { linkGroup(root); fs.chmodSync(path.join(root, 'a/x'), 0o600); });
  const t2 = await side(c, 'theirs-other', edit(LINKS, { 'a/other': 'theirs\n' }), linkGroup);
  const r2 = await mergeBothWays(c, b, o2, t2);
  const want2 = await side(c, 'want2', edit(LINKS, { 'a/other': 'theirs\n' }), (root) => { linkGroup(root); fs.chmodSync(path.join(root, 'a/x'), 0o600); });
  t.is(r2.tree, want2.tree);
});

test('merge: a hardlink group both sides changed differently conflicts at its paths, also across subtrees taken whole', async (t) => {
  const c = setup(t);
  const b = await side(c, 'base', LINKS, linkGroup);
  // Ours rewrites the shared content (a/ and b/ change on ours only); theirs adds a name in c/ (c/ changes on theirs
  // only): every directory is taken whole, and the group is found by reading them.
  const o = await side(c, 'ours', LINKS, (root) => { linkGroup(root); rewrite(root, 'a/x', 'ours\n'); });
  const th = await side(c, 'theirs', LINKS, (root) => { linkGroup(root); fs.linkSync(path.join(root, 'a/x'), path.join(root, 'c/z')); });
  const r = await merge(c, b, o, th);
  t.deepEqual(kinds(r), ['content a/x', 'content b/y', 'content c/z']);
  t.regex(r.conflicts[0]!.detail!, /hardlink group changed differently on both sides \(a\/x, b\/y, c\/z\)/);
  // The conflict tree holds ours' names, theirs' beside, each a file of its own.
  const want = await side(c, 'want', edit(LINKS, {
    'a/x': 'ours\n', 'a/x~theirs': 'shared\n', 'a/x~base': 'shared\n', 'b/y': 'ours\n', 'b/y~theirs': 'shared\n', 'b/y~base': 'shared\n', 'c/z~theirs': 'shared\n',
  }));
  t.is(r.tree, want.tree);
  // Resolved as a group: one resolution given at any of its paths.
  const ours = await merge(c, b, o, th, { resolutions: new Map([['c/z', 'ours']]) });
  t.deepEqual(ours.conflicts, []);
  t.is(ours.tree, o.tree);
  const theirs = await merge(c, b, o, th, { resolutions: new Map([['b/y', 'theirs']]) });
  t.is(theirs.tree, th.tree);
  await t.throwsAsync(merge(c, b, o, th, { resolutions: new Map<string, Resolution>([['a/x', 'ours'], ['c/z', 'theirs']]) }), { instanceOf: UsageError, message: /conflicting resolutions for the hardlink group of/ });
  await t.throwsAsync(merge(c, b, o, th, { resolutions: new Map([['a/x', { data: Buffer.from('x') }]]) }), { instanceOf: UsageError, message: /hardlink group/ });
  // One path both changed: a group merges whole, not field by field (ours' chmod, theirs' content: a conflict).
  const chmod = await side(c, 'ours-chmod', LINKS, (root) => { linkGroup(root); fs.chmodSync(path.join(root, 'a/x'), 0o600); });
  const content = await side(c, 'theirs-content', LINKS, (root) => { linkGroup(root); rewrite(root, 'a/x', 'theirs\n'); });
  t.deepEqual(kinds(await merge(c, b, chmod, content)), ['content a/x', 'content b/y']);
});
