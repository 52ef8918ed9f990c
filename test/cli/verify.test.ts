/**
 * Every read is checked against the id it was asked for: a chunk, tree, commit or inline blob whose stored bytes were
 * changed makes cat, checkout (directory and tar, with and without the read-ahead thread), ls and log fail with one
 * line naming the object and the path, exit 15, and no partial output left behind.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { copyRepository, tmpDir, viva, vivaOk } from '../helpers/cli.js';
import { Repository } from '../../src/store/repository.js';
import { resolveRevision, resolveSpec } from '../../src/ops/resolve.js';
import { readBlobRecord } from '../../src/store/typed.js';
import { encodeStored, type ObjectKind } from '../../src/store/object-store.js';
import { lmdb } from '../helpers/lmdb.js';

const MiB = 1 << 20;
const DAMAGED = 15;

/** A repository with one commit on main: an inline file, chunked files read ahead and one streamed (> 8 MiB). */
async function pristine(t: ExecutionContext): Promise<{ dir: string; base: string }> {
  const dir = tmpDir(t, 'viva-verify-');
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(src, 'many'));
  fs.writeFileSync(path.join(src, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(path.join(src, 'big.bin'), crypto.randomBytes(3 * MiB));
  fs.writeFileSync(path.join(src, 'huge.bin'), crypto.randomBytes(9 * MiB));
  // Enough small-enough files that checkout starts its read-ahead thread (PREFETCH_MIN_TOTAL).
  for (let i = 0; i < 8; i++) fs.writeFileSync(path.join(src, 'many', `f${i}.bin`), crypto.randomBytes(2 * MiB));
  const base = path.join(dir, 'base');
  await vivaOk(t, ['init', base]);
  await vivaOk(t, ['commit', src, '-m', 'original message', '-b', 'main'], { cwd: base });
  return { dir, base };
}

/** A copy of the pristine repository with `change` applied to it (in this process, closed again before use). */
async function damaged(dir: string, base: string, name: string, change: (repo: Repository) => void): Promise<string> {
  const root = copyRepository(base, path.join(dir, name));
  const repo = Repository.open(root, 'write');
  try {
    change(repo);
  } finally {
    await repo.close();
  }
  return root;
}

function replaceStored(repo: Repository, kind: ObjectKind, oid: string, edit: (data: Buffer) => void): void {
  const data = Buffer.from(repo.objects.readObject(kind, oid));
  edit(data);
  lmdb(repo).putStoredUnchecked(kind, oid, encodeStored(data));
}

/** Flips one byte of the first chunk of `path` in main; returns the chunk's id. */
function flipChunk(repo: Repository, file: string): string {
  const rec = readBlobRecord(repo.objects, resolveSpec(repo, `main:${file}`).entry.oid!);
  if (rec.form !== 'chunked') throw new Error(`${file} is not chunked`);
  const seg = rec.segments.find((s) => s.kind === 'chunk')!;
  if (seg.kind !== 'chunk') throw new Error('no chunk');
  replaceStored(repo, 'chunk', seg.oid, (d) => { d[1000]! ^= 0x01; });
  return seg.oid;
}

/** Changes one letter of `text` inside an object's encoding (keeps it decodable: only the hash check can tell). */
function editText(repo: Repository, kind: ObjectKind, oid: string, text: string): void {
  replaceStored(repo, kind, oid, (d) => {
    const at = d.indexOf(text);
    if (at < 0) throw new Error(`'${text}' not in ${kind} ${oid}`);
    d[at]! ^= 0x20;
  });
}

function oneLine(t: ExecutionContext, stderr: string, pattern: RegExp): void {
  const lines = stderr.trimEnd().split('\n');
  t.is(lines.length, 1, stderr);
  t.regex(lines[0]!, pattern);
}

test('verify: a flipped byte in a chunk fails cat and every checkout with exit 15, naming chunk and path, leaving no output', async (t) => {
  t.timeout(120_000);
  const { dir, base } = await pristine(t);
  let chunk = '';
  const repo = await damaged(dir, base, 'chunk', (r) => { chunk = flipChunk(r, 'big.bin'); });
  const mismatch = new RegExp(`^error: chunk '${chunk}' of 'big\\.bin' does not match its id \\(repository damaged: run 'viva fsck'\\)`);

  const cat = await viva(['cat', 'main:big.bin'], { cwd: repo });
  t.is(cat.code, DAMAGED, cat.stderr);
  oneLine(t, cat.stderr, mismatch);
  t.regex(cat.stderr, /bytes already written are not the file's content/);

  // Read ahead by the worker thread (3 MiB file), as a directory and as a tar file.
  for (const dest of ['out', 'out.tar']) {
    const r = await viva(['checkout', 'main', path.join(dir, dest)], { cwd: repo });
    t.is(r.code, DAMAGED, `${dest}: ${r.stderr}`);
    oneLine(t, r.stderr, mismatch);
    t.false(fs.existsSync(path.join(dir, dest)), `${dest} left behind`);
  }
  // An existing empty directory is emptied again.
  fs.mkdirSync(path.join(dir, 'empty'));
  const r = await viva(['checkout', 'main', path.join(dir, 'empty')], { cwd: repo });
  t.is(r.code, DAMAGED, r.stderr);
  t.deepEqual(fs.readdirSync(path.join(dir, 'empty')), []);

  // Only the damaged file's content is affected.
  await vivaOk(t, ['cat', 'main:many/f1.bin'], { cwd: repo });
  const fsck = await viva(['fsck'], { cwd: repo });
  t.is(fsck.code, 1, fsck.stderr);
});

test('verify: a damaged chunk of a file streamed by the main thread (> 8 MiB) fails checkout', async (t) => {
  t.timeout(120_000);
  const { dir, base } = await pristine(t);
  let chunk = '';
  const repo = await damaged(dir, base, 'huge', (r) => { chunk = flipChunk(r, 'huge.bin'); });
  const mismatch = new RegExp(`^error: chunk '${chunk}' of 'huge\\.bin' does not match its id`);
  for (const dest of ['out', 'out.tar']) {
    const r = await viva(['checkout', 'main', path.join(dir, dest)], { cwd: repo });
    t.is(r.code, DAMAGED, `${dest}: ${r.stderr}`);
    oneLine(t, r.stderr, mismatch);
    t.false(fs.existsSync(path.join(dir, dest)), `${dest} left behind`);
  }
  const sub = await viva(['checkout', 'main', path.join(dir, 'part'), '--path', 'huge.bin'], { cwd: repo });
  t.is(sub.code, DAMAGED, sub.stderr);
  t.false(fs.existsSync(path.join(dir, 'part')));
});

test('verify: a changed inline blob, tree or commit fails with exit 15 naming the object', async (t) => {
  t.timeout(120_000);
  const { dir, base } = await pristine(t);

  let blob = '';
  const inline = await damaged(dir, base, 'inline', (r) => {
    blob = resolveSpec(r, 'main:etc/passwd').entry.oid!;
    editText(r, 'blob', blob, 'root:x');
  });
  const cat = await viva(['cat', 'main:etc/passwd'], { cwd: inline });
  t.is(cat.code, DAMAGED, cat.stderr);
  oneLine(t, cat.stderr, new RegExp(`^error: blob '${blob}' of 'etc/passwd' does not match its id`));
  t.is(cat.stdout, '', 'inline content is checked before it is written');
  const co = await viva(['checkout', 'main', path.join(dir, 'o1')], { cwd: inline });
  t.is(co.code, DAMAGED, co.stderr);
  t.false(fs.existsSync(path.join(dir, 'o1')));

  let tree = '';
  const treeRepo = await damaged(dir, base, 'tree', (r) => {
    tree = resolveSpec(r, 'main:etc').entry.oid!;
    editText(r, 'tree', tree, 'passwd');
  });
  const ls = await viva(['ls', 'main:etc'], { cwd: treeRepo });
  t.is(ls.code, DAMAGED, ls.stderr);
  oneLine(t, ls.stderr, new RegExp(`tree '${tree}'.* does not match its id`));
  const co2 = await viva(['checkout', 'main', path.join(dir, 'o2')], { cwd: treeRepo });
  t.is(co2.code, DAMAGED, co2.stderr);
  oneLine(t, co2.stderr, new RegExp(`^error: tree '${tree}' of 'etc' does not match its id`));
  t.false(fs.existsSync(path.join(dir, 'o2')));

  let commit = '';
  const commitRepo = await damaged(dir, base, 'commit', (r) => {
    commit = resolveRevision(r, 'main').oid;
    editText(r, 'commit', commit, 'original');
  });
  for (const args of [['log', 'main'], ['checkout', 'main', path.join(dir, 'o3')], ['cat', 'main:etc/passwd']]) {
    const r = await viva(args, { cwd: commitRepo });
    t.is(r.code, DAMAGED, `${args[0]}: ${r.stderr}`);
    oneLine(t, r.stderr, new RegExp(`^error: commit '${commit}' does not match its id`));
  }
  t.false(fs.existsSync(path.join(dir, 'o3')));
});

test('verify: grep stopping at a damaged first chunk that reads as binary fails with exit 15, not "no match"', async (t) => {
  t.timeout(120_000);
  const dir = tmpDir(t, 'viva-verify-grep-');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  // 3 MiB of text without a NUL, FINDME at 2 MiB: several chunks, the first of them damaged to start with a NUL.
  const text = Buffer.alloc(3 * MiB, 'abcdefghijklmnopqrstuvwxyz0123456789\n');
  text.write('FINDME', 2 * MiB);
  fs.writeFileSync(path.join(src, 'big.txt'), text);
  const base = path.join(dir, 'base');
  await vivaOk(t, ['init', base]);
  await vivaOk(t, ['commit', src, '-m', 'text', '-b', 'main'], { cwd: base });
  let chunk = '';
  const repo = await damaged(dir, base, 'nul', (r) => {
    const rec = readBlobRecord(r.objects, resolveSpec(r, 'main:big.txt').entry.oid!);
    if (rec.form !== 'chunked') throw new Error('big.txt is not chunked');
    const seg = rec.segments.find((s) => s.kind === 'chunk')!;
    if (seg.kind !== 'chunk') throw new Error('no chunk');
    chunk = seg.oid;
    replaceStored(r, 'chunk', seg.oid, (d) => { d[0] = 0x00; });
  });
  const g = await viva(['grep', 'FINDME', 'main'], { cwd: repo });
  t.is(g.code, DAMAGED, g.stderr);
  oneLine(t, g.stderr, new RegExp(`^error: chunk '${chunk}' of 'big\\.txt' does not match its id`));
  const cat = await viva(['cat', 'main:big.txt'], { cwd: repo });
  t.is(cat.code, DAMAGED, cat.stderr);
});

test('verify: a failed checkout --force over an existing tar file keeps the file that was there', async (t) => {
  t.timeout(120_000);
  const { dir, base } = await pristine(t);
  const repo = await damaged(dir, base, 'chunk', (r) => { flipChunk(r, 'big.bin'); });
  for (const name of ['exist.tar', 'exist.tar.gz']) {
    const dest = path.join(dir, name);
    fs.writeFileSync(dest, 'the old archive\n');
    const r = await viva(['checkout', 'main', dest, '--force'], { cwd: repo });
    t.is(r.code, DAMAGED, `${name}: ${r.stderr}`);
    t.is(fs.readFileSync(dest, 'utf8'), 'the old archive\n', `${name} replaced or removed`);
    t.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.tmp-')), [], 'temporary file left behind');
  }
  // A successful --force replaces it.
  const ok = path.join(dir, 'ok.tar');
  fs.writeFileSync(ok, 'the old archive\n');
  await vivaOk(t, ['checkout', 'main', ok, '--force', '--path', 'etc'], { cwd: repo });
  t.true(fs.statSync(ok).size > 1024);
});
